/*  main.c -- tolk-control-worker: a thin shell around control_worker. */
#include "control_worker.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    bool help = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else if (opt == 'V') {
            printf("tolk-control-worker %s\n", TOLK_VERSION);
            return 0;
        } else if (opt == 'h')
            help = true;
        else
            return 2;
    }
    tolk_config_t cfg;
    char err[256];
    if (tolk_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-control-worker: %s\n", err);
        return 1;
    }
    if (help) {
        printf("usage: tolk-control-worker [--config FILE] [--help] [--version]\n\n"
               "Owns session state: connect, join, refresh, disconnect, broadcast controls.\n"
               "Finds the gateways in Redis and connects to each. Settings:\n");
        tolk_config_print(&cfg, stdout);
        return 0;
    }
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
