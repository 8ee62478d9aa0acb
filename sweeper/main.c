/*  main.c -- tolk-sweeper: a thin shell around the sweeper. */
#include "sweeper.h"

int main(int argc, char **argv)
{
    return tolk_worker_main(argc, argv, &sweeper_program);
}
