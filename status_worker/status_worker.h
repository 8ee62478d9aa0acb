/*  status_worker.h -- the status worker: getSessionStatus answers and the
    sessionStatus pushes a speaker gets without asking.

    It keeps no session state in memory. A query is one Lua script (rate
    check plus read); a push decision is one Lua script per live session
    that also records the push in the session's own hash, so any number of
    status workers can run and an event is still pushed once. Every
    status_poll_ms the worker runs that script for every live session in
    pipelined batches.
*/
#ifndef TOLK_STATUS_WORKER_H
#define TOLK_STATUS_WORKER_H

#include "config.h"
#include "envelope.h"
#include "gwlink.h"
#include "redis_link.h"
#include "statfeed.h"
#include "worker.h"

typedef struct {
    tolk_config_t cfg;        /* settings */
    tolk_worker_t *base;      /* links, feed, loop, stop: the shape every worker shares */
    char id[TOLK_ID_MAX + 1]; /* the base's id: DEALER identity, unique per process */
    tolk_redis_t *redis;      /* the base's: all state lives there */
    tolk_gwlink_t *link;      /* the base's: the gateways */
    int64_t messages_in;      /* envelopes handled */
    int64_t messages_out;     /* replies and pushes sent */
    int64_t errors;           /* error replies, failed sends, Redis failures */
    int64_t queries;          /* getSessionStatus answered with a sessionStatus */
    int64_t rate_limited;     /* getSessionStatus refused with 429 */
    int64_t pushes;           /* sessionStatus pushes sent */
    int64_t polls;            /* passes over the live sessions */
    int64_t sessions;         /* live sessions seen at the last pass (gauge) */
} status_worker_t;

/* A status worker on the worker base, polling every status_poll_ms.
   Returns the base, which tolk_worker_main runs and whose destroy frees
   the worker; NULL on failure. */
tolk_worker_t *status_worker_new(const tolk_config_t *cfg);

/* Handle one envelope that came from gateway gw (getSessionStatus). */
void status_worker_handle(status_worker_t *self, const char *gw, const tolk_envelope_t *env);

/* One pass over the live sessions: push every status that is due.
   Returns the number pushed, or -1 when Redis failed. */
int status_worker_poll(status_worker_t *self);

/* The program around it, for its main(): name, log, --help text, constructor. */
extern const tolk_worker_program_t status_worker_program;

#endif
