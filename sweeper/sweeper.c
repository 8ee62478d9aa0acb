/*  sweeper.c -- grace expiry, maximum duration, dead gateways; see sweeper.h. */
#include "sweeper.h"
#include "ids.h"
#include "lease_store.h"
#include "log.h"
#include "session_store.h"

#include <string.h>

#define SWEEP_BATCH     100 /* sessions or gateways handled per pass, so a pass stays short */
#define RECONCILE_BATCH 20  /* sessions recounted per pass: O(members) each */

static bool s_hold_lease(sweeper_t *self)
{
    bool held = tolk_lease_hold(self->redis, self->id, self->cfg.sweep_interval_ms * 3) == 1;
    if (held != self->leader)
        tolk_info("lease", NULL, "%s the sweeper lease", held ? "took" : "lost");
    self->leader = held;
    return held;
}

/* Session ids from a ZRANGEBYSCORE -inf..max. */
static redisReply *s_due(sweeper_t *self, const char *zset, int64_t max)
{
    redisReply *r = tolk_redis_command(self->redis, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", zset,
                                       (long long)max, SWEEP_BATCH);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Speakers who did not come back in time. */
static void s_expire_grace(sweeper_t *self, int64_t now)
{
    redisReply *due = s_due(self, "tolk:grace", now);
    for (size_t i = 0; due && i < due->elements; i++) {
        const char *sid = tolk_reply_str(due->element[i]);
        if (!sid)
            continue;
        char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
        int n = tolk_store_end_expired(self->redis, sid, now, self->cfg.transcript_retention_s, gws,
                                       TOLK_STORE_MAX_GWS);
        if (n >= 0) {
            tolk_store_publish_ended(self->link, gws, n, sid, "speakerTimeout");
            self->sessions_expired++;
            tolk_info("expire", sid, "the speaker did not come back: session ended");
        } else if (n != TOLK_STORE_DOWN) {
            /* gone already, or live again: the index entry is stale */
            redisReply *r = tolk_redis_command(self->redis, "ZREM tolk:grace %s", sid);
            if (r)
                freeReplyObject(r);
        }
    }
    if (due)
        freeReplyObject(due);
}

/* Sessions not refreshed within the maximum duration. */
static void s_expire_old(sweeper_t *self, int64_t now)
{
    redisReply *due = s_due(self, "tolk:sessions", now - (int64_t)self->cfg.max_session_s * 1000);
    for (size_t i = 0; due && i < due->elements; i++) {
        const char *sid = tolk_reply_str(due->element[i]);
        if (!sid)
            continue;
        char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
        int n = tolk_store_end(self->redis, sid, self->cfg.transcript_retention_s, gws,
                               TOLK_STORE_MAX_GWS);
        if (n >= 0) {
            tolk_store_publish_ended(self->link, gws, n, sid, "maxDuration");
            self->sessions_expired++;
            tolk_info("expire", sid, "maximum session duration reached: session ended");
        } else if (n == TOLK_STORE_NOT_FOUND) {
            redisReply *r = tolk_redis_command(self->redis, "ZREM tolk:sessions %s", sid);
            if (r)
                freeReplyObject(r);
        }
    }
    if (due)
        freeReplyObject(due);
}

/* Recount a few sessions each pass, round the live ones in turn, so a
   count that drifted is right again within (sessions / batch) passes. */
static void s_reconcile(sweeper_t *self)
{
    redisReply *ids = tolk_redis_command(self->redis, "ZRANGE tolk:sessions %lld %lld",
                                         (long long)self->reconcile_cursor,
                                         (long long)self->reconcile_cursor + RECONCILE_BATCH - 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject(ids);
        return;
    }
    self->reconcile_cursor =
        ids->elements < RECONCILE_BATCH ? 0 : self->reconcile_cursor + (int64_t)ids->elements;
    for (size_t i = 0; i < ids->elements; i++) {
        const char *sid = tolk_reply_str(ids->element[i]);
        if (sid && tolk_store_reconcile(self->redis, sid) == 1) {
            self->counts_reconciled++;
            tolk_warn("reconcile", sid, "listener counts had drifted: recounted from the members");
        }
    }
    freeReplyObject(ids);
}

/* A gateway's registration expired: its connections are gone with it. */
static void s_clean_gateway(sweeper_t *self, const char *gw, int64_t now)
{
    redisReply *conns = tolk_redis_command(self->redis, "HGETALL tolk:gwconns:%s", gw);
    if (!conns || conns->type != REDIS_REPLY_ARRAY) {
        if (conns)
            freeReplyObject(conns);
        return;
    }
    for (size_t i = 0; i + 1 < conns->elements; i += 2) {
        const char *conn_s = tolk_reply_str(conns->element[i]);
        const char *sid = tolk_reply_str(conns->element[i + 1]);
        if (!conn_s || !sid)
            continue;
        uint64_t conn = strtoull(conn_s, NULL, 10);
        redisReply *m =
            tolk_redis_command(self->redis, "HGET tolk:{%s}:members %s/%s", sid, gw, conn_s);
        const char *what = tolk_reply_str(m);
        bool speaker = what && strcmp(what, "S") == 0;
        if (m)
            freeReplyObject(m);
        if (speaker) {
            int rc = tolk_store_speaker_gone(self->redis, sid, gw, conn, false, now,
                                             self->cfg.grace_period_s);
            if (rc == TOLK_SPEAKER_GONE_GRACE) {
                char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1], json[256];
                int n = tolk_store_gateways(self->redis, sid, gws, TOLK_STORE_MAX_GWS);
                snprintf(json, sizeof json,
                         "{\"type\":\"speakerDisconnected\",\"sessionId\":\"%s\","
                         "\"gracePeriod\":%d,\"timestamp\":%lld}",
                         sid, self->cfg.grace_period_s, (long long)tolk_now_ms());
                if (n > 0)
                    tolk_store_publish(self->link, gws, n, sid, TOLK_AUDIENCE_LISTENERS, json, 0,
                                       0);
            }
        } else {
            tolk_store_leave(self->redis, sid, gw, conn);
        }
        self->connections_cleaned++;
    }
    freeReplyObject(conns);
    redisReply *r = tolk_redis_command(self->redis, "DEL tolk:gwconns:%s", gw);
    if (r)
        freeReplyObject(r);
    r = tolk_redis_command(self->redis, "SREM tolk:gateways %s", gw);
    if (r)
        freeReplyObject(r);
    self->gateways_cleaned++;
    tolk_info("gateway", NULL, "cleaned up after gateway %s", gw);
}

static void s_dead_gateways(sweeper_t *self, int64_t now)
{
    redisReply *ids = tolk_redis_command(self->redis, "SMEMBERS tolk:gateways");
    for (size_t i = 0; ids && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        const char *gw = tolk_reply_str(ids->element[i]);
        if (!gw)
            continue;
        redisReply *alive = tolk_redis_command(self->redis, "EXISTS tolk:gw:%s", gw);
        long long exists = tolk_reply_int(alive, 1);
        if (alive)
            freeReplyObject(alive);
        if (exists == 0)
            s_clean_gateway(self, gw, now);
    }
    if (ids)
        freeReplyObject(ids);
}

void sweeper_sweep(sweeper_t *self)
{
    if (!s_hold_lease(self))
        return;
    int64_t now = tolk_now_ms();
    s_dead_gateways(self, now);
    s_expire_grace(self, now);
    s_expire_old(self, now);
    s_reconcile(self);
    self->sweeps++;
}

/* The base's handlers and the sweep timer. */
static void s_on_report(void *arg, tolk_statfeed_t *feed)
{
    sweeper_t *self = arg;
    tolk_statfeed_set(feed, "leader", self->leader);
    tolk_statfeed_set(feed, "sweeps", self->sweeps);
    tolk_statfeed_set(feed, "counts_reconciled", self->counts_reconciled);
    tolk_statfeed_set(feed, "sessions_expired", self->sessions_expired);
    tolk_statfeed_set(feed, "gateways_cleaned", self->gateways_cleaned);
    tolk_statfeed_set(feed, "connections_cleaned", self->connections_cleaned);
    tolk_statfeed_set(feed, "errors", self->errors);
}

static void s_on_sweep(void *arg, int64_t now_ms)
{
    (void)now_ms;
    sweeper_t *self = arg;
    if (!tolk_worker_stopping(self->base))
        sweeper_sweep(self);
}

/* At a stop: hand the lease over now rather than when it expires. */
static bool s_on_finish(void *arg)
{
    sweeper_t *self = arg;
    if (self->leader)
        tolk_lease_release(self->redis, self->id);
    self->leader = false;
    return true;
}

tolk_worker_t *sweeper_new(const tolk_config_t *cfg)
{
    sweeper_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    tolk_worker_handlers_t handlers = {
        .on_report = s_on_report, .on_finish = s_on_finish, .on_destroy = free};
    tolk_worker_t *base = tolk_worker_new(TOLK_WORKER_SWEEPER, cfg, &handlers, self);
    if (base) {
        tolk_worker_lend(base, &self->base, self->id, sizeof self->id, &self->redis, &self->link);
        tolk_worker_timer(base, cfg->sweep_interval_ms, true, s_on_sweep, self);
    }
    return base;
}

const tolk_worker_program_t sweeper_program = {
    "tolk-sweeper", "sweeper",
    "Ends sessions whose speaker did not return or that ran too long, and\n"
    "cleans up after dead gateways. One acts at a time (a lease in Redis).",
    sweeper_new};
