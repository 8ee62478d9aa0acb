/*  main.c -- tolk-control-worker: a thin shell around control_worker. */
#include "control_worker.h"

/* The worker's base, which tolk_worker_main runs and destroys. */
static tolk_worker_t *s_create(const tolk_config_t *cfg)
{
    control_worker_t *worker = control_worker_new(cfg);
    return worker ? worker->base : NULL;
}

int main(int argc, char **argv)
{
    const tolk_worker_program_t program = {
        "tolk-control-worker", "control_worker",
        "Owns session state: connect, join, refresh, disconnect, broadcast\n"
        "controls. Finds the gateways in Redis and connects to each.",
        s_create};
    return tolk_worker_main(argc, argv, &program);
}
