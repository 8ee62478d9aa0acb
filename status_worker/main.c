/*  main.c -- tolk-status-worker: a thin shell around status_worker. */
#include "cli.h"
#include "log.h"
#include "status_worker.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, "tolk-status-worker",
                            "Answers getSessionStatus and pushes sessionStatus to speakers\n"
                            "(periodic, listener count changes, new languages). Finds the\n"
                            "gateways in Redis and connects to each.",
                            &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("status_worker", cfg.log_level);
    zsys_init();
    status_worker_t *worker = status_worker_new(&cfg);
    if (!worker) {
        fprintf(stderr, "tolk-status-worker: cannot start\n");
        return 1;
    }
    tolk_info("start", NULL, "status worker %s started", worker->id);
    status_worker_run(worker);
    tolk_info("stop", NULL, "status worker %s stopped", worker->id);
    status_worker_destroy(&worker);
    return 0;
}
