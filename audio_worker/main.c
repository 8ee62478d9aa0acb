/*  main.c -- tolk-audio-worker: a thin shell around audio_worker. */
#include "audio_worker.h"

/* The worker's base, which tolk_worker_main runs and destroys. */
static tolk_worker_t *s_create(const tolk_config_t *cfg)
{
    audio_worker_t *worker = audio_worker_new(cfg);
    return worker ? worker->base : NULL;
}

int main(int argc, char **argv)
{
    const tolk_worker_program_t program = {
        "tolk-audio-worker", "audio_worker",
        "Recognises each session's speech (pocketsphinx), translates it\n"
        "once per language with listeners (Apertium through APy), and sends\n"
        "the captions to the gateways.",
        s_create};
    return tolk_worker_main(argc, argv, &program);
}
