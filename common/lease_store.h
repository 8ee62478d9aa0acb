/*  lease_store.h -- the sweeper's lease: which of several sweepers acts.

    One key, tolk:sweeper:lease, holding the id of the sweeper that acts,
    with a TTL. The holder renews it every pass; a standby takes it once it
    has expired, or at once when the holder hands it over at a clean stop.
    Both steps are Lua scripts, so a lease is never taken from its holder.
*/
#ifndef TOLK_LEASE_STORE_H
#define TOLK_LEASE_STORE_H

#include "redis_link.h"

/* Keep the lease if it is id's, take it if it is free, for ttl_ms.
   Returns 1 when id holds it now, 0 when another does, -1 when Redis is
   down. */
int tolk_lease_hold(tolk_redis_t *redis, const char *id, int ttl_ms);

/* Give the lease up if id holds it (a clean stop). */
void tolk_lease_release(tolk_redis_t *redis, const char *id);

#endif
