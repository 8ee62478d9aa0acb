/*  freeze.h -- stop a process with SIGSTOP for a while, from a guard
    process that always continues it.

    Why: a test that freezes a server (APy, Redis) to prove that nothing
    waits on it must continue the server again however the test ends. A
    Check test in fork mode leaves with _exit on a failed assertion and is
    SIGKILLed on a timeout, so no cleanup of its own runs; a server left
    stopped then holds up harness_stop (supervisord's stop waits on it) and
    everything after. The guard is a child of the test process, in a
    process group of its own (Check kills the test's group), that sends
    SIGCONT when freeze_destroy asks, when the test process dies
    (PR_SET_PDEATHSIG), or at the latest after max_ms.
*/
#ifndef TOLK_FREEZE_H
#define TOLK_FREEZE_H

#include <sys/types.h>

typedef struct _freeze_t freeze_t;

/* SIGSTOP pid, and return once the kernel shows it stopped. A guard
   continues it after max_ms at the latest, or as soon as the calling
   process dies. NULL on failure (pid not > 0, fork failed, pid did not
   stop within 2 s); pid is then running. */
freeze_t *freeze_new(pid_t pid, int max_ms);

/* Continue the process now (if the guard has not already) and reap the
   guard. Idempotent; NULLs the caller's pointer. */
void freeze_destroy(freeze_t **self_p);

#endif
