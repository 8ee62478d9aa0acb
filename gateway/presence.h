/*  presence.h -- the gateway's entries in Redis: its ROUTER endpoint in
    the registry (tolk:gw:<id>, which workers follow and whose expiry tells
    the sweeper the gateway died) and its status feed, renewed once a
    heartbeat without ever waiting on Redis.

    Every write goes through the asynchronous link (redis_async.h) and the
    registry's store (registry_store.h). A round whose writes are still
    unanswered when the next heartbeat comes makes that round be skipped,
    so a stalled Redis never grows a queue in the gateway; the TTLs are
    heartbeat_ms * heartbeat_misses (the gateway key) and 5 s (the feed),
    so one or two skipped rounds lose nothing.
*/
#ifndef TOLK_GW_PRESENCE_H
#define TOLK_GW_PRESENCE_H

#include "gateway.h"

/* Open the Redis link and the status feed on gw's loop. Returns 0, or -1
   when either cannot be made (an unresolvable redis_host, a bad
   status_endpoint). */
int presence_start(gateway_t *gw);

/* Once a heartbeat: publish the counters on the feed, then register the
   gateway and the feed again unless the last round is still unanswered
   (counted in registry_skipped). */
void presence_beat(gateway_t *gw);

/* Between beats (every tick): register again at once while the gateway is
   not registered (at start, after an outage), unless a round is
   outstanding, so readiness does not wait for the next beat. */
void presence_retry(gateway_t *gw);

/* Whether Redis takes our registrations: the last one was applied and no
   reply is more than redis_timeout_ms late. /readyz says so. */
bool presence_ok(gateway_t *gw);

/* A clean exit: delete tolk:gw:<id> and the feed's keys, and run the loop
   (nothing else is on it by now) until Redis has answered or
   GW_UNREGISTER_WAIT_MS have passed. Best effort: the keys expire anyway. */
void presence_leave(gateway_t *gw);

/* Close the feed and the link. Safe to call twice. */
void presence_stop(gateway_t *gw);

#endif
