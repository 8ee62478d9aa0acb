/*  sweeper.h -- housekeeping: what no request will ever clean up.

    Ends sessions whose speaker did not come back within the grace period
    or that outlived the maximum duration, and cleans up after gateways
    that died without saying goodbye. Only the holder of a lease in Redis
    acts, so a second sweeper is a hot standby, not a second cleaner.
*/
#ifndef TOLK_SWEEPER_H
#define TOLK_SWEEPER_H

#include "config.h"
#include "gwlink.h"
#include "redis_link.h"
#include "statfeed.h"
#include "worker.h"

typedef struct {
    tolk_config_t cfg;        /* settings */
    tolk_worker_t *base;      /* links, feed, loop, stop: the shape every worker shares */
    char id[TOLK_ID_MAX + 1]; /* the base's id: lease owner name and DEALER identity */
    tolk_redis_t *redis;      /* the base's: state */
    tolk_gwlink_t *link;      /* the base's: to tell gateways about ended sessions */
    bool leader;              /* holds the lease now */
    int64_t sweeps, sessions_expired, gateways_cleaned, connections_cleaned, errors;
    int64_t counts_reconciled; /* sessions whose counts were wrong and were recounted */
    int64_t reconcile_cursor;  /* rank in tolk:sessions where the next recount starts */
} sweeper_t;

/* A sweeper on the worker base, sweeping every sweep_interval_ms. Returns
   the base, which tolk_worker_main runs and whose destroy frees the
   sweeper; NULL on failure. */
tolk_worker_t *sweeper_new(const tolk_config_t *cfg);

/* One pass: take or keep the lease, then sweep if we hold it. */
void sweeper_sweep(sweeper_t *self);

/* The program around it, for its main(): name, log, --help text, constructor. */
extern const tolk_worker_program_t sweeper_program;

#endif
