/*  main.c -- tolk-sweeper: a thin shell around sweeper. */
#include "cli.h"
#include "log.h"
#include "sweeper.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, "tolk-sweeper",
                            "Ends sessions whose speaker did not return or that ran too long, and\n"
                            "cleans up after dead gateways. One acts at a time (a lease in Redis).",
                            &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("sweeper", cfg.log_level);
    zsys_init();
    sweeper_t *sweeper = sweeper_new(&cfg);
    if (!sweeper) {
        fprintf(stderr, "tolk-sweeper: cannot start\n");
        return 1;
    }
    tolk_info("start", NULL, "sweeper %s started", sweeper->id);
    sweeper_run(sweeper);
    sweeper_destroy(&sweeper);
    return 0;
}
