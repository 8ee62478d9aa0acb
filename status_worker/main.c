/*  main.c -- tolk-status-worker: a thin shell around status_worker. */
#include "status_worker.h"

/* The worker's base, which tolk_worker_main runs and destroys. */
static tolk_worker_t *s_create(const tolk_config_t *cfg)
{
    status_worker_t *worker = status_worker_new(cfg);
    return worker ? worker->base : NULL;
}

int main(int argc, char **argv)
{
    const tolk_worker_program_t program = {
        "tolk-status-worker", "status_worker",
        "Answers getSessionStatus and pushes sessionStatus to speakers\n"
        "(periodic, listener count changes, new languages). Finds the\n"
        "gateways in Redis and connects to each.",
        s_create};
    return tolk_worker_main(argc, argv, &program);
}
