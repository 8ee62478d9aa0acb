/*  cli.c -- shared command line of the server processes; see cli.h. */
#include "cli.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

int tolk_cli_start(int argc, char **argv, const char *name, const char *about, tolk_config_t *cfg)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    bool help = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else if (opt == 'V') {
            printf("%s %s\n", name, TOLK_VERSION);
            return 0;
        } else if (opt == 'h')
            help = true;
        else {
            fprintf(stderr, "usage: %s [--config FILE] [--help] [--version]\n", name);
            return 2;
        }
    }
    char err[256];
    if (tolk_config_load(cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return 1;
    }
    if (help) {
        printf("usage: %s [--config FILE] [--help] [--version]\n\n%s\n"
               "Settings come from FILE (or $TOLK_CONFIG) and TOLK_<KEY> variables; now:\n",
               name, about);
        tolk_config_print(cfg, stdout);
        return 0;
    }
    return TOLK_CLI_CONTINUE;
}
