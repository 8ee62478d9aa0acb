/*  sweeper.c -- grace expiry, maximum duration, dead gateways; see sweeper.h. */
#include "sweeper.h"
#include "ids.h"
#include "lease_store.h"
#include "log.h"
#include "registry_store.h"
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

/* Speakers who did not come back in time. */
static void s_expire_grace(sweeper_t *self, int64_t now)
{
    char due[SWEEP_BATCH][TOLK_ID_MAX + 1];
    int ndue = tolk_store_grace_due(self->redis, now, due, SWEEP_BATCH);
    for (int i = 0; i < ndue; i++) {
        const char *sid = due[i];
        char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
        int n = tolk_store_end_expired(self->redis, sid, now, self->cfg.transcript_retention_s, gws,
                                       TOLK_STORE_MAX_GWS);
        if (n >= 0) {
            tolk_store_publish_ended(self->link, gws, n, sid, "speakerTimeout");
            self->sessions_expired++;
            tolk_info("expire", sid, "the speaker did not come back: session ended");
        } else if (n != TOLK_STORE_DOWN) {
            /* gone already, or live again: the index entry is stale */
            tolk_store_grace_forget(self->redis, sid);
        }
    }
}

/* Sessions not refreshed within the maximum duration. */
static void s_expire_old(sweeper_t *self, int64_t now)
{
    char due[SWEEP_BATCH][TOLK_ID_MAX + 1];
    int ndue = tolk_store_sessions_before(
        self->redis, now - (int64_t)self->cfg.max_session_s * 1000, due, SWEEP_BATCH);
    for (int i = 0; i < ndue; i++) {
        const char *sid = due[i];
        char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
        int n = tolk_store_end(self->redis, sid, "maxDuration", self->cfg.transcript_retention_s,
                               gws, TOLK_STORE_MAX_GWS);
        if (n >= 0) {
            tolk_store_publish_ended(self->link, gws, n, sid, "maxDuration");
            self->sessions_expired++;
            tolk_info("expire", sid, "maximum session duration reached: session ended");
        } else if (n == TOLK_STORE_NOT_FOUND) {
            tolk_store_sessions_forget(self->redis, sid);
        }
    }
}

/* Recount a few sessions each pass, round the live ones in turn, so a
   count that drifted is right again within (sessions / batch) passes. */
static void s_reconcile(sweeper_t *self)
{
    char sids[RECONCILE_BATCH][TOLK_ID_MAX + 1];
    int ranks;
    int n = tolk_store_sessions_page(self->redis, self->reconcile_cursor, sids, RECONCILE_BATCH,
                                     &ranks);
    if (n < 0)
        return;
    self->reconcile_cursor = ranks < RECONCILE_BATCH ? 0 : self->reconcile_cursor + ranks;
    for (int i = 0; i < n; i++) {
        if (tolk_store_reconcile(self->redis, sids[i]) == 1) {
            self->counts_reconciled++;
            tolk_warn("reconcile", sids[i],
                      "listener counts had drifted: recounted from the members");
        }
    }
}

/* What s_clean_conn needs besides the connection. */
typedef struct {
    sweeper_t *self;
    const char *gw; /* the dead gateway */
    int64_t now;    /* the pass's clock */
} s_clean_t;

/* One connection of a dead gateway: a speaker starts its grace period (and
   the listeners hear of it), a listener leaves. */
static void s_clean_conn(void *arg, const char *sid, uint64_t conn)
{
    s_clean_t *c = arg;
    sweeper_t *self = c->self;
    if (tolk_store_is_speaker(self->redis, sid, c->gw, conn) == 1) {
        int rc = tolk_store_speaker_gone(self->redis, sid, c->gw, conn, false, c->now,
                                         self->cfg.grace_period_s);
        if (rc == TOLK_SPEAKER_GONE_GRACE) {
            char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1], json[256];
            int n = tolk_store_gateways(self->redis, sid, gws, TOLK_STORE_MAX_GWS);
            snprintf(json, sizeof json,
                     "{\"type\":\"speakerDisconnected\",\"sessionId\":\"%s\","
                     "\"gracePeriod\":%d,\"timestamp\":%lld}",
                     sid, self->cfg.grace_period_s, (long long)tolk_now_ms());
            if (n > 0)
                tolk_store_publish(self->link, gws, n, sid, TOLK_AUDIENCE_LISTENERS, json, 0, 0);
        }
    } else {
        tolk_store_leave(self->redis, sid, c->gw, conn);
    }
    self->connections_cleaned++;
}

/* A gateway's registration expired: its connections are gone with it. */
static void s_clean_gateway(sweeper_t *self, const char *gw, int64_t now)
{
    s_clean_t clean = {self, gw, now};
    if (tolk_store_gateway_conns(self->redis, gw, s_clean_conn, &clean) < 0)
        return;
    tolk_store_gateway_forget(self->redis, gw);
    tolk_registry_gateway_forget(self->redis, gw);
    self->gateways_cleaned++;
    tolk_info("gateway", NULL, "cleaned up after gateway %s", gw);
}

static void s_dead_gateways(sweeper_t *self, int64_t now)
{
    tolk_registry_id_t *ids = malloc(SWEEP_BATCH * sizeof *ids);
    int n = ids ? tolk_registry_gateway_ids(self->redis, ids, SWEEP_BATCH) : -1;
    for (int i = 0; i < n; i++)
        if (tolk_registry_gateway_alive(self->redis, ids[i].id) == 0) /* -1: Redis away, not dead */
            s_clean_gateway(self, ids[i].id, now);
    free(ids);
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
