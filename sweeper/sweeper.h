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

typedef struct {
    tolk_config_t cfg;        /* settings */
    char id[TOLK_ID_MAX + 1]; /* lease owner name and DEALER identity */
    tolk_redis_t *redis;      /* state */
    tolk_gwlink_t *link;      /* to tell gateways about ended sessions */
    tolk_statfeed_t *feed;    /* counters */
    bool leader;              /* holds the lease now */
    int64_t sweeps, sessions_expired, gateways_cleaned, connections_cleaned, errors;
    int64_t counts_reconciled; /* sessions whose counts were wrong and were recounted */
    int64_t reconcile_cursor;  /* rank in tolk:sessions where the next recount starts */
} sweeper_t;

sweeper_t *sweeper_new(const tolk_config_t *cfg);
void sweeper_destroy(sweeper_t **self_p);

/* One pass: take or keep the lease, then sweep if we hold it. */
void sweeper_sweep(sweeper_t *self);

/* Sweep every sweep_interval_ms until interrupted. */
int sweeper_run(sweeper_t *self);

#endif
