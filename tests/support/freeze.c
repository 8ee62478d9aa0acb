/*  freeze.c -- a process stopped for a while, continued by a guard child
    whatever happens to the test; see freeze.h. */
#include "freeze.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct _freeze_t {
    pid_t pid;   /* the process stopped */
    pid_t guard; /* the child that continues it; 0 once reaped */
};

/* Monotonic milliseconds: the guard's and the stop check's deadlines. */
static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The guard's whole life: wait for SIGTERM (freeze_destroy), SIGHUP (its
   parent died) or max_ms, then continue pid. Both signals are blocked so
   they queue for sigtimedwait instead of killing the guard before it has
   continued pid. Never returns. */
static void s_guard(pid_t pid, pid_t parent, int max_ms, int ready_fd)
{
    /* out of the test's process group: Check SIGKILLs that group when a
       test ends or times out, and the guard must outlive the test */
    setpgid(0, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    /* the parent may have died before prctl: then nobody will freeze pid */
    if (getppid() == parent) {
        char ok = 1;
        if (write(ready_fd, &ok, 1) == 1) {
            long long end = s_now_ms() + max_ms;
            for (long long left = max_ms; left > 0; left = end - s_now_ms()) {
                struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L};
                if (sigtimedwait(&set, NULL, &ts) >= 0 || errno != EINTR)
                    break;
            }
        }
    }
    kill(pid, SIGCONT);
    _exit(0);
}

/* True when /proc says pid is stopped (state T). */
static bool s_stopped(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool stopped = false;
    if (fgets(line, sizeof line, f)) {
        /* "pid (comm) S ...": comm may hold spaces and parentheses */
        char *close = strrchr(line, ')');
        stopped = close && close[1] == ' ' && close[2] == 'T';
    }
    fclose(f);
    return stopped;
}

freeze_t *freeze_new(pid_t pid, int max_ms)
{
    if (pid <= 0 || max_ms <= 0)
        return NULL;
    freeze_t *self = calloc(1, sizeof *self);
    int fds[2];
    if (!self || pipe(fds) != 0) {
        free(self);
        return NULL;
    }
    pid_t parent = getpid();
    self->guard = fork();
    if (self->guard == 0) {
        close(fds[0]);
        s_guard(pid, parent, max_ms, fds[1]);
    }
    close(fds[1]);
    char ok = 0;
    ssize_t n = -1;
    if (self->guard > 0)
        while ((n = read(fds[0], &ok, 1)) < 0 && errno == EINTR)
            ;
    close(fds[0]);
    if (self->guard < 0)
        self->guard = 0;
    self->pid = pid;
    bool stopped = false;
    if (n == 1 && kill(pid, SIGSTOP) == 0)
        for (long long end = s_now_ms() + 2000; !(stopped = s_stopped(pid)) && s_now_ms() < end;)
            usleep(1000);
    if (!stopped)
        freeze_destroy(&self);
    return self;
}

void freeze_destroy(freeze_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    freeze_t *self = *self_p;
    if (self->guard > 0) {
        kill(self->guard, SIGTERM);
        while (waitpid(self->guard, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    kill(self->pid, SIGCONT); /* the guard did it too; this costs nothing */
    free(self);
    *self_p = NULL;
}
