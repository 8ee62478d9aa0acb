/*  main.c -- tolk-sweeper: a thin shell around sweeper. */
#include "log.h"
#include "sweeper.h"

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
            printf("tolk-sweeper %s\n", TOLK_VERSION);
            return 0;
        } else if (opt == 'h')
            help = true;
        else
            return 2;
    }
    tolk_config_t cfg;
    char err[256];
    if (tolk_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-sweeper: %s\n", err);
        return 1;
    }
    if (help) {
        printf("usage: tolk-sweeper [--config FILE] [--help] [--version]\n\n"
               "Ends sessions whose speaker did not return or that ran too long, and\n"
               "cleans up after dead gateways. One acts at a time (a lease in Redis). Settings:\n");
        tolk_config_print(&cfg, stdout);
        return 0;
    }
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
