/*  worker.h -- the one shape of every tolk worker process.

    Control workers, status workers, audio workers and the sweeper all
    repeat the same skeleton: a Redis link, DEALER links to every gateway,
    a status feed, heartbeats, the stale-message drop after a stall, a loop
    with timers and extra poll items, and an orderly stop. tolk_worker_t
    owns all of it; a worker supplies its handlers and nothing else.

    The loop is one thread and one zmq_poll over the gateways' DEALERs, a
    signal pipe and the poll items of the worker's event sources (libcurl's
    sockets, a recogniser server's connection), with the nearest timer as
    its timeout. It is the loop the workers already had, made common; CZMQ's
    zloop would need every libcurl socket registered and unregistered as
    libcurl opens and closes it, and it ends on zsys_interrupted, which
    would take the two-step stop below away from us.

    Orderly stop (nginx's graceful path):
      1. The first SIGTERM (or SIGINT) sends LEAVE to every gateway and
         stops heartbeats. Each gateway stops routing to us and answers
         LEAVE; the pipe from a gateway is ordered, so after its answer
         nothing more comes from it. What arrives before is handled as
         usual.
      2. Once every gateway has answered (or stall_ms has passed: by then
         each has declared us dead anyway), the worker's finish handler is
         called every turn until it says it holds nothing more (an audio
         worker ends its open utterances and sends their finals), or
         stop_timeout_ms has passed since the signal.
      3. The loop returns; destroy retires the status feed.
    A second SIGTERM is the fast path: the loop returns at once.
*/
#ifndef TOLK_WORKER_H
#define TOLK_WORKER_H

#include "config.h"
#include "envelope.h"
#include "gwlink.h"
#include "redis_link.h"
#include "statfeed.h"

#include <stdbool.h>
#include <stdint.h>

#define TOLK_WORKER_TIMERS_MAX  8 /* timers one worker may add */
#define TOLK_WORKER_SOURCES_MAX 4 /* event sources one worker may add */

typedef struct tolk_worker_t tolk_worker_t;

/* What a worker supplies; arg is the worker's own object. Any may be NULL. */
typedef struct {
    /* An envelope from gateway gw; HEARTBEAT and LEAVE never get here. */
    void (*on_message)(void *arg, const char *gw, const tolk_envelope_t *env);
    /* Put the worker's counters into the feed; the base adds its own and
       publishes. Called every heartbeat_ms. */
    void (*on_report)(void *arg, tolk_statfeed_t *feed);
    /* The gateways route nothing more to us: finish what is held. Called
       every turn until it returns true (nothing left) or the stop times
       out. NULL: nothing to finish. */
    bool (*on_finish)(void *arg);
    /* Free the worker's own object: tolk_worker_destroy calls it first, so
       destroying the base destroys the whole worker. */
    void (*on_destroy)(void *arg);
} tolk_worker_handlers_t;

/* A timer's handler; now_ms is CLOCK_MONOTONIC in ms. */
typedef void(tolk_worker_timer_fn)(void *arg, int64_t now_ms);

/* Another event source on the loop, asked every turn: which fds it wants
   watched (zmq poll items with socket NULL, at most max), how long the
   loop may sleep before it must run (-1: no limit), and what to do with
   what poll found (revents set). */
typedef struct {
    int (*pollitems)(void *arg, zmq_pollitem_t *items, int max);
    long (*timeout_ms)(void *arg);
    void (*run)(void *arg, const zmq_pollitem_t *items, int n);
    void *arg;
} tolk_worker_source_t;

/* A worker of kind with a fresh unique id ("<kind>-<pid>-<random>"): its
   Redis link, gateway links and status feed, serving arg (the worker's own
   object) through handlers. Returns NULL when the links cannot be made (a
   feed that cannot bind is only warned about), after handlers->on_destroy
   has freed arg, so a worker's constructor has one failure path. */
tolk_worker_t *tolk_worker_new(tolk_worker_kind_t kind, const tolk_config_t *cfg,
                               const tolk_worker_handlers_t *handlers, void *arg);

/* Hand a worker its base and the parts it uses on every call, into its own
   fields (the base keeps owning them): id (id_cap bytes), the Redis link,
   the gateway links. */
void tolk_worker_lend(tolk_worker_t *self, tolk_worker_t **base, char *id, size_t id_cap,
                      tolk_redis_t **redis, tolk_gwlink_t **link);

/* Free the worker's object (on_destroy), retire the feed (unregister
   it), close the links; NULLs *self_p; safe on NULL. */
void tolk_worker_destroy(tolk_worker_t **self_p);

/* Call fn every interval_ms (first after interval_ms, or at once when
   now is true), counted from the end of the previous call so a slow
   handler never queues calls up. Returns 0, or -1 when full. */
int tolk_worker_timer(tolk_worker_t *self, int interval_ms, bool now, tolk_worker_timer_fn *fn,
                      void *arg);

/* Watch another event source (copied). Returns 0, or -1 when full. */
int tolk_worker_source(tolk_worker_t *self, const tolk_worker_source_t *source);

/* Serve until the stop is done (see above). Returns 0. */
int tolk_worker_run(tolk_worker_t *self);

/* Begin the orderly stop as a SIGTERM would (for tests and tools). */
void tolk_worker_stop(tolk_worker_t *self);

/* True from the first SIGTERM on. */
bool tolk_worker_stopping(tolk_worker_t *self);

/* The parts a worker uses. */
const char *tolk_worker_id(tolk_worker_t *self);
tolk_redis_t *tolk_worker_redis(tolk_worker_t *self);
tolk_gwlink_t *tolk_worker_link(tolk_worker_t *self);
const tolk_config_t *tolk_worker_config(tolk_worker_t *self);

/* Send json to connection conn on gateway gw (a SEND envelope), then
   close it with close_code (0: stay open); flags as in envelope.h.
   Returns 0, or -1 when the gateway is unknown or its queue is full. */
int tolk_worker_send(tolk_worker_t *self, const char *gw, uint64_t conn, const char *json,
                     int close_code, uint32_t flags);

/* Send an error in the protocol's shape (type, code, status, message,
   action when given, retryAfter when > 0, timestamp) to conn; closes with
   4000 + status when close. Returns as tolk_worker_send. */
int tolk_worker_send_error(tolk_worker_t *self, const char *gw, uint64_t conn, int status,
                           const char *code, const char *message, const char *action,
                           int retry_after, bool close);

/* What a worker's main() hands to tolk_worker_main. */
typedef struct {
    const char *program;  /* "tolk-control-worker": --help and messages */
    const char *log_name; /* "control_worker": the log's component */
    const char *summary;  /* what the program does, for --help */
    /* make the worker from its settings and return its base (whose
       destroy frees the worker); NULL on failure */
    tolk_worker_t *(*create)(const tolk_config_t *cfg);
} tolk_worker_program_t;

/* The whole main() of a worker: read the command line and config, set up
   logging and the signal handlers of the two-step stop, create, run,
   destroy. Returns the process's exit status. */
int tolk_worker_main(int argc, char **argv, const tolk_worker_program_t *program);

#endif
