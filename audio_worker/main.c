/*  main.c -- tolk-audio-worker: a thin shell around audio_worker. */
#include "audio_worker.h"
#include "cli.h"
#include "log.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, "tolk-audio-worker",
                            "Recognises each session's speech (pocketsphinx), translates it\n"
                            "once per language with listeners (Apertium through APy), and sends\n"
                            "the captions to the gateways.",
                            &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("audio_worker", cfg.log_level);
    zsys_init();
    audio_worker_t *worker = audio_worker_new(&cfg);
    if (!worker) {
        fprintf(stderr, "tolk-audio-worker: cannot start\n");
        return 1;
    }
    tolk_info("start", NULL, "audio worker %s started", worker->id);
    audio_worker_run(worker);
    tolk_info("stop", NULL, "audio worker %s stopped", worker->id);
    audio_worker_destroy(&worker);
    return 0;
}
