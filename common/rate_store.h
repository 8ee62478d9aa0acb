/*  rate_store.h -- the control worker's sliding-window rate limits.

    One zset per limited actor, a member per counted event scored by its
    time (ms), trimmed to the window on every check and expiring a window
    after its last event:
        tolk:rl:create:<sub>          createSession per speaker, one hour
        tolk:rl:joinfail:<clientHash> failed joins per client, one hour
    Each check is one Lua script, so two workers counting at once never
    both slip under the limit. No other module formats these keys.
*/
#ifndef TOLK_RATE_STORE_H
#define TOLK_RATE_STORE_H

#include "redis_link.h"

#include <stdint.h>

/* May the speaker sub create another session (limit per_hour)? Counts the
   creation when it may. Returns 0 when allowed, the whole seconds (1 or
   more) until it may, or -1 when Redis is down or the script failed. */
int tolk_rate_create(tolk_redis_t *r, const char *sub, int per_hour, int64_t now_ms);

/* May the client (its address hash; NULL counts as "unknown") try to join
   again, having failed fewer than per_hour joins in the last hour?
   Counts nothing. Returns 0 when it may, the whole seconds (1 or more)
   until it may, or -1 when Redis is down or the script failed. */
int tolk_rate_join_check(tolk_redis_t *r, const char *client, int per_hour, int64_t now_ms);

/* Count one failed join for the client (NULL counts as "unknown"). Nothing
   is reported: a failure Redis did not count is simply not counted. */
void tolk_rate_join_failed(tolk_redis_t *r, const char *client, int64_t now_ms);

#endif
