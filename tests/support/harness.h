/*  harness.h -- start and stop one whole tolk system for an integration test.

    harness_start() picks free loopback ports, writes the configs with
    tools/tolk-stack into a private tests/tmp/<test>-<pid>/ directory, runs
    supervisord on them as a child in its own process group, and waits until
    every gateway answers GET /readyz with 200 (and Apertium's APy, when
    tolk-stack runs one, answers GET /listPairs). harness_stop() shuts it all
    down and reports sanitizer findings from the programs' logs, so an ASan
    or UBSan error inside a server fails the test that provoked it.

    The system's processes get their settings through the environment
    (TOLK_PORT, TOLK_REDIS_PORT, TOLK_APY_PORT, ...); the test process's own
    environment is left untouched. The repository root comes from $TOLK_TOP
    or, failing that, from the executable's path; binaries from
    $TOLK_TOP/$BUILD/bin (BUILD defaults to "build"; an absolute BUILD is
    used as it is).
*/
#ifndef TOLK_HARNESS_H
#define TOLK_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* Worker count meaning "start none of this kind" (0 means the default). */
#define HARNESS_NONE (-1)

/* How many of each process to run, and settings to override. A zeroed
   struct (or NULL) gives tolk-stack's defaults. */
typedef struct {
    int gateways;              /* 0: one gateway */
    int control_workers;       /* 0: tolk-stack's default; HARNESS_NONE: none */
    int status_workers;        /* 0: tolk-stack's default; HARNESS_NONE: none */
    int audio_workers;         /* 0: tolk-stack's default; HARNESS_NONE: none */
    const char *extra_env[16]; /* "TOLK_KEY=value" overrides for every process, NULL ends;
                                  with TOLK_TLS_CERT_FILE the gateways' readiness is
                                  asked over https */
} harness_opts_t;

typedef struct _harness_t harness_t;

/* Start a system. Returns NULL on failure after printing why (and the tail
   of every log) to stderr; the directory is then kept for inspection. */
harness_t *harness_start(const harness_opts_t *opts);

/* Stop the system: SIGTERM to supervisord, up to 20 s for it to finish,
   then SIGKILL for whatever is left. Scans every .log file in DIR/logs for
   AddressSanitizer, UBSan ("runtime error:") and LeakSanitizer reports, and
   supervisord's log for programs killed by SIGSEGV, SIGABRT, SIGBUS, SIGFPE
   or SIGILL, and prints them. Returns the number of problems found (such
   lines, plus one if the system had to be killed): 0 means clean, so a test asserts
   harness_stop(&h) == 0. Removes the directory when clean unless TOLK_KEEP=1.
   NULLs the caller's pointer; NULL in, 0 out. */
int harness_stop(harness_t **h_p);

/* Wait until every gateway's /readyz answers 200 (after restarting one, for
   instance). Returns 0, or -1 when timeout_ms passed first. */
int harness_wait_ready(harness_t *h, int timeout_ms);

/* Port of gateway i (0-based), or -1 when there is no such gateway. */
int harness_gateway_port(harness_t *h, int i);

/* Number of gateways started. */
int harness_gateways(harness_t *h);

/* Port of the system's Redis. */
int harness_redis_port(harness_t *h);

/* Port of the system's Apertium APy on 127.0.0.1 (tolk-stack's [program:apy];
   the processes find it as apy_url in DIR/tolk.conf). */
int harness_apy_port(harness_t *h);

/* The private directory (configs, logs/, redis/). */
const char *harness_dir(harness_t *h);

/* The directory of the tolk binaries in use. */
const char *harness_bin(harness_t *h);

/* A hiredis connection to the system's Redis for assertions, owned by the
   harness (do not free it). A forked Check test gets its own connection.
   NULL when Redis cannot be reached. */
redisContext *harness_redis(harness_t *h);

/* Pid of one supervisord program: "redis", "gateway-0", "sweeper",
   "control-worker:control-worker-0", ... 0 when it is not running, -1 on
   error. */
pid_t harness_pid(harness_t *h, const char *program);

/* Run `supervisorctl -c DIR/supervisord.conf ARGS` (args split by the shell,
   e.g. "stop gateway-1"). Its output goes to DIR/supervisorctl.out. Returns
   its exit status, or -1 when it could not run. */
int harness_ctl(harness_t *h, const char *args);

/* A speaker token for sub valid for ttl seconds, made by
   `tolk-token --sub SUB --ttl TTL` with TOLK_CONFIG=DIR/tolk.conf and the
   system's environment. tolk-token takes only ttl > 0: for an expired token
   use ttl 1, wait, and start the system with TOLK_JWT_LEEWAY_S=0.
   malloc'd; NULL on failure (printed to stderr). */
char *harness_token(harness_t *h, const char *sub, long ttl);

/* First of count consecutive free TCP ports on 127.0.0.1, chosen at random
   outside the kernel's ephemeral range so outgoing connections cannot take
   them. Returns -1 when none was found. */
int harness_free_ports(int count);

#endif
