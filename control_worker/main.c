/*  main.c -- tolk-control-worker: a thin shell around control_worker. */
#include "control_worker.h"

int main(int argc, char **argv)
{
    return tolk_worker_main(argc, argv, &control_worker_program);
}
