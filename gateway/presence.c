/*  presence.c -- the gateway's registry entries and status feed; see
    presence.h.
*/
#include "presence.h"
#include "bridge.h"
#include "log.h"
#include "registry_store.h"

#include <stdio.h>

/* TTL of the feed's registration: a dead process leaves tolk-monitor's
   table within seconds. */
#define S_FEED_TTL_S 5

int presence_start(gateway_t *gw)
{
    gw->redis = tolk_redis_async_new(gw->loop, gw->cfg.redis_host, gw->cfg.redis_port,
                                     gw->cfg.redis_timeout_ms);
    gw->feed = tolk_statfeed_new(gw->cfg.status_endpoint, "gateway", gw->id);
    if (!gw->redis || !gw->feed) {
        tolk_error("start", NULL, "cannot open %s", gw->redis ? "the status feed" : "redis");
        return -1;
    }
    return 0;
}

/* Push the counters into the status feed (never blocks). */
static void s_publish(gateway_t *gw)
{
    tolk_statfeed_t *f = gw->feed;
    tolk_statfeed_set(f, "connections", gw->connections);
    tolk_statfeed_set(f, "sessions", gw->sessions_local);
    tolk_statfeed_set(f, "messages_in", gw->messages_in);
    tolk_statfeed_set(f, "messages_out", gw->messages_out);
    tolk_statfeed_set(f, "errors", gw->errors);
    tolk_statfeed_set(f, "partials_replaced", gw->partials_replaced);
    tolk_statfeed_set(f, "catchups", gw->catchups);
    tolk_statfeed_set(f, "finals_deduplicated", gw->finals_deduplicated);
    tolk_statfeed_set(f, "speech_frames", gw->speech_frames);
    tolk_statfeed_set(f, "audio_chunks", gw->audio_chunks);
    tolk_statfeed_set(f, "audio_dropped_rate", gw->audio_dropped_rate);
    tolk_statfeed_set(f, "audio_dropped_paused", gw->audio_dropped_off);
    tolk_statfeed_set(f, "idle_closed", gw->idle_closed);
    tolk_statfeed_set(f, "slow_closed", gw->slow_closed);
    tolk_statfeed_set(f, "workers_left", gw->workers_left);
    tolk_statfeed_set(f, "registry_skipped", gw->registry_skipped);
    tolk_statfeed_set(f, "foreign_dropped", gw->foreign_dropped);
    tolk_statfeed_set(f, "redis_up", presence_ok(gw));
    for (int k = 0; k < TOLK_WORKER_ROUTED; k++) {
        char name[32];
        snprintf(name, sizeof name, "workers_%s", tolk_worker_kind_name((tolk_worker_kind_t)k));
        tolk_statfeed_set(f, name, bridge_live_count(gw, (tolk_worker_kind_t)k));
    }
    tolk_statfeed_publish(f);
}

/* Redis answered the gateway's registration (rc -1: an error reply, or
   no reply because the link dropped). */
static void s_registered(void *arg, int rc)
{
    gateway_t *gw = arg;
    if (rc != 0 && gw->registry_ok)
        tolk_warn("registry", NULL, "the gateway's registration failed");
    gw->registry_ok = rc == 0;
}

/* One registration round, unless the last is unanswered (Redis slow or
   stalled: sending more would only queue it up). Returns false when
   skipped. */
static bool s_register(gateway_t *gw)
{
    if (tolk_redis_async_pending(gw->redis) > 0)
        return false;
    int ttl_ms = gw->cfg.heartbeat_ms * gw->cfg.heartbeat_misses;
    if (tolk_registry_gateway_register_async(gw->redis, gw->id, gw->endpoint, ttl_ms, s_registered,
                                             gw) != 0)
        gw->registry_ok = false; /* not even sent: Redis is down */
    tolk_statfeed_register_async(gw->feed, gw->redis, S_FEED_TTL_S, NULL, NULL);
    return true;
}

void presence_beat(gateway_t *gw)
{
    s_publish(gw);
    if (!s_register(gw))
        gw->registry_skipped++;
}

void presence_retry(gateway_t *gw)
{
    if (!gw->registry_ok)
        s_register(gw);
}

bool presence_ok(gateway_t *gw)
{
    return gw->registry_ok && tolk_redis_async_up(gw->redis);
}

void presence_leave(gateway_t *gw)
{
    tolk_registry_gateway_unregister_async(gw->redis, gw->id, NULL, NULL);
    tolk_statfeed_unregister_async(gw->feed, gw->redis, NULL, NULL);
    int left = tolk_redis_async_flush(gw->redis, GW_UNREGISTER_WAIT_MS);
    if (left)
        tolk_warn("stop", NULL,
                  "redis did not answer within %d ms: the registration expires by itself",
                  GW_UNREGISTER_WAIT_MS);
}

void presence_stop(gateway_t *gw)
{
    tolk_statfeed_destroy(&gw->feed);
    tolk_redis_async_destroy(&gw->redis);
}
