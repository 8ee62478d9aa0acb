/*  main.c -- tolk-status-worker: a thin shell around status_worker. */
#include "status_worker.h"

int main(int argc, char **argv)
{
    return tolk_worker_main(argc, argv, &status_worker_program);
}
