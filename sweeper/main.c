/*  main.c -- tolk-sweeper: a thin shell around the sweeper. */
#include "sweeper.h"

/* The sweeper's base, which tolk_worker_main runs and destroys. */
static tolk_worker_t *s_create(const tolk_config_t *cfg)
{
    sweeper_t *sweeper = sweeper_new(cfg);
    return sweeper ? sweeper->base : NULL;
}

int main(int argc, char **argv)
{
    const tolk_worker_program_t program = {
        "tolk-sweeper", "sweeper",
        "Ends sessions whose speaker did not return or that ran too long, and\n"
        "cleans up after dead gateways. One acts at a time (a lease in Redis).",
        s_create};
    return tolk_worker_main(argc, argv, &program);
}
