/*  main.c -- tolk-audio-worker: a thin shell around audio_worker. */
#include "audio_worker.h"

int main(int argc, char **argv)
{
    return tolk_worker_main(argc, argv, &audio_worker_program);
}
