/*  main.c -- tolk-control-worker: a thin shell around control_worker. */
#include "cli.h"
#include "control_worker.h"
#include "log.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, "tolk-control-worker",
                            "Owns session state: connect, join, refresh, disconnect, broadcast\n"
                            "controls. Finds the gateways in Redis and connects to each.",
                            &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("control_worker", cfg.log_level);
    zsys_init();
    control_worker_t *worker = control_worker_new(&cfg);
    if (!worker) {
        fprintf(stderr, "tolk-control-worker: cannot start\n");
        return 1;
    }
    tolk_info("start", NULL, "control worker %s started", worker->id);
    control_worker_run(worker);
    tolk_info("stop", NULL, "control worker %s stopped", worker->id);
    control_worker_destroy(&worker);
    return 0;
}
