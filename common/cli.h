/*  cli.h -- the command line every tolk server process shares.

    --config FILE, --help (usage plus the effective settings) and --version,
    then the settings loaded in their three layers, so each main() is a
    thin shell around its actor.
*/
#ifndef TOLK_CLI_H
#define TOLK_CLI_H

#include "config.h"

#define TOLK_CLI_CONTINUE (-1) /* settings loaded: run the process */

/* Parse argv for program name (e.g. "tolk-sweeper") described by about,
   and load cfg. Returns TOLK_CLI_CONTINUE, or the exit status main()
   should return now (0 after --help/--version, 1 on bad settings, 2 on
   bad arguments). */
int tolk_cli_start(int argc, char **argv, const char *name, const char *about, tolk_config_t *cfg);

#endif
