/*  control_worker.h -- the control worker: sessions, members, broadcast
    state. The only writer of session state; many can run, each owns the
    sessions the gateways' rendezvous hash gives it.
*/
#ifndef TOLK_CONTROL_WORKER_H
#define TOLK_CONTROL_WORKER_H

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
    tolk_redis_t *redis;      /* the base's: state */
    tolk_gwlink_t *link;      /* the base's: the gateways */
    int64_t messages_in, messages_out, errors, sessions_created, sessions_ended;
    int64_t catchups;                 /* histories sent to joining or returning listeners */
    int64_t joins;                    /* listeners admitted (joinSession answered sessionJoined) */
    tolk_prom_hist_t control_latency; /* a CONNECT or action's receipt to its reply sent */
    char targets[512];       /* languages the translator reaches ("" until an audio worker said) */
    int64_t targets_read_ms; /* when targets was read from Redis */
} control_worker_t;

/* A control worker on the worker base. Returns the base, which
   tolk_worker_main runs and whose destroy frees the worker; NULL on
   failure. */
tolk_worker_t *control_worker_new(const tolk_config_t *cfg);

/* Handle one envelope that came from gateway gw. */
void control_worker_handle(control_worker_t *self, const char *gw, const tolk_envelope_t *env);

/* The program around it, for its main(): name, log, --help text, constructor. */
extern const tolk_worker_program_t control_worker_program;

#endif
