/*  status_worker.c -- getSessionStatus answers and sessionStatus pushes.

    A query: role check, then one Lua script (status_store) that counts the
    query in the session's one-second window and reads the session hash and
    its language counts; the answer goes back on the DEALER of the gateway
    that asked. A push: every status_poll_ms, the live sessions are read
    from tolk:sessions and one Lua script per session (pipelined) decides
    and records whether a push is due; each due status is published to the
    speaker on the gateway that holds the speaker.
*/
#include "status_worker.h"
#include "ids.h"
#include "log.h"
#include "session_store.h"
#include "status_store.h"

#include <jansson.h>
#include <string.h>

/* Session ids read from tolk:sessions per page of a poll. */
#define PAGE_MAX (4 * TOLK_STATUS_BATCH)

/* What a pass over the live sessions needs in its callback. */
typedef struct {
    status_worker_t *self; /* the worker, for its link and counters */
    int pushed;            /* pushes sent in this pass */
} poll_ctx_t;

/* ----------------------------------------------------------- replies */

/* Send json to connection conn on gateway gw. */
static void s_reply(status_worker_t *self, const char *gw, uint64_t conn, const char *json)
{
    if (tolk_worker_send(self->base, gw, conn, json, 0, 0) == 0)
        self->messages_out++;
    else
        self->errors++;
}

/* The same error shape as the control worker's (the base makes it). */
static void s_error(status_worker_t *self, const char *gw, uint64_t conn, int status,
                    const char *code, const char *message, const char *action, int retry_after)
{
    self->errors++;
    if (tolk_worker_send_error(self->base, gw, conn, status, code, message, action, retry_after,
                               false) == 0)
        self->messages_out++;
}

/* The sessionStatus message for st, malloc'd; NULL when out of memory.
   broadcastState has exactly the shape the control worker sends. */
static char *s_status_json(const char *sid, const tolk_status_t *st)
{
    json_t *dist = json_object();
    for (int i = 0; dist && i < st->nlangs; i++)
        json_object_set_new(dist, st->langs[i].code, json_integer(st->langs[i].count));
    json_t *state = json_pack("{s:b, s:b, s:b, s:f, s:I}", "isActive", st->is_active, "isPaused",
                              st->is_paused, "isMuted", st->is_muted, "volume", st->volume,
                              "lastStateChange", (json_int_t)st->last_state_change);
    int64_t age_ms = st->now_ms - st->created_at;
    json_t *o = dist && state
                    ? json_pack("{s:s, s:s, s:I, s:O, s:I, s:O, s:s, s:I}", "type", "sessionStatus",
                                "sessionId", sid, "listenerCount", (json_int_t)st->listener_count,
                                "languageDistribution", dist, "sessionDuration",
                                (json_int_t)(age_ms > 0 ? age_ms / 1000 : 0), "broadcastState",
                                state, "updateReason", tolk_status_reason_name(st->reason),
                                "timestamp", (json_int_t)st->now_ms)
                    : NULL;
    json_decref(dist);
    json_decref(state);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* ----------------------------------------------------------- queries */

static void s_get_status(status_worker_t *self, const char *gw, const tolk_envelope_t *env,
                         const char *action)
{
    if (env->role != TOLK_ROLE_SPEAKER) {
        s_error(self, gw, env->conn, 403, "UNAUTHORIZED", "only the speaker can do this", action,
                0);
        return;
    }
    tolk_status_t *st = malloc(sizeof *st);
    if (!st) {
        s_error(self, gw, env->conn, 500, "INTERNAL_ERROR", "out of memory", action, 0);
        return;
    }
    int rc = tolk_status_query(self->redis, env->session, self->cfg.status_rate_per_s,
                               tolk_now_ms(), st);
    if (rc > 0) {
        self->rate_limited++;
        s_error(self, gw, env->conn, 429, "RATE_LIMIT_EXCEEDED", "too many status queries", action,
                rc);
    } else if (rc == TOLK_STORE_NOT_FOUND) {
        s_error(self, gw, env->conn, 404, "SESSION_NOT_FOUND", "the session has ended", action, 0);
    } else if (rc != TOLK_STORE_OK) {
        s_error(self, gw, env->conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action,
                0);
    } else {
        char *text = s_status_json(env->session, st);
        if (text) {
            self->queries++;
            s_reply(self, gw, env->conn, text);
        } else {
            s_error(self, gw, env->conn, 500, "INTERNAL_ERROR", "out of memory", action, 0);
        }
        free(text);
    }
    free(st);
}

static void s_message(status_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)env->payload, env->payload_len, 0, &jerr);
    json_t *a = msg ? json_object_get(msg, "action") : NULL;
    const char *action = json_is_string(a) ? json_string_value(a) : NULL;
    if (!action || !env->session[0]) {
        s_error(self, gw, env->conn, 400, "INVALID_MESSAGE", "the message is not valid", action, 0);
    } else if (strcmp(action, "getSessionStatus") == 0) {
        s_get_status(self, gw, env, action);
    } else {
        /* the gateway routes only getSessionStatus here */
        s_error(self, gw, env->conn, 400, "INVALID_ACTION", "unknown action", action, 0);
    }
    json_decref(msg);
}

void status_worker_handle(status_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    self->messages_in++;
    if (env->kind == TOLK_KIND_MESSAGE)
        s_message(self, gw, env);
}

/* ------------------------------------------------------------ pushes */

/* A push is due and already recorded: send it to the speaker's gateway. */
static void s_push(void *arg, const char *sid, const tolk_status_t *st)
{
    poll_ctx_t *ctx = arg;
    status_worker_t *self = ctx->self;
    if (!st->speaker_gw[0])
        return; /* no speaker connection to tell */
    char *text = s_status_json(sid, st);
    if (!text) {
        self->errors++;
        return;
    }
    /* the gateway that holds the speaker is the only one with someone to
       tell, so the one PUBLISH goes there rather than to every gateway */
    char gws[1][TOLK_ID_MAX + 1];
    strcpy(gws[0], st->speaker_gw);
    tolk_store_publish(self->link, gws, 1, sid, TOLK_AUDIENCE_SPEAKER, text, 0, 0);
    free(text);
    self->pushes++;
    self->messages_out++;
    ctx->pushed++;
    tolk_debug("statusPush", sid, "sessionStatus pushed (%s)", tolk_status_reason_name(st->reason));
}

int status_worker_poll(status_worker_t *self)
{
    poll_ctx_t ctx = {self, 0};
    int64_t period_ms = (int64_t)self->cfg.status_period_s * 1000;
    long start = 0;
    int64_t live = 0;
    char(*page)[TOLK_ID_MAX + 1] = malloc(PAGE_MAX * sizeof *page);
    if (!page) {
        self->errors++;
        return -1;
    }
    self->polls++;
    for (;;) {
        int ranks = 0;
        int n = tolk_status_sessions(self->redis, start, page, PAGE_MAX, &ranks);
        if (n < 0)
            goto err;
        if (n > 0 && tolk_status_due(self->redis, page, n, tolk_now_ms(), period_ms,
                                     self->cfg.status_change_pct, s_push, &ctx) < 0)
            goto err;
        live += n;
        if (ranks < PAGE_MAX)
            break;
        start += ranks;
    }
    free(page);
    self->sessions = live;
    return ctx.pushed;
err:
    free(page);
    self->errors++;
    return -1;
}

/* ------------------------------------------------------------- core */

/* The base's handlers and the poll timer. */
static void s_on_message(void *arg, const char *gw, const tolk_envelope_t *env)
{
    status_worker_handle(arg, gw, env);
}

static void s_on_report(void *arg, tolk_statfeed_t *feed)
{
    status_worker_t *self = arg;
    tolk_statfeed_set(feed, "messages_in", self->messages_in);
    tolk_statfeed_set(feed, "messages_out", self->messages_out);
    tolk_statfeed_set(feed, "errors", self->errors);
    tolk_statfeed_set(feed, "status_queries", self->queries);
    tolk_statfeed_set(feed, "status_rate_limited", self->rate_limited);
    tolk_statfeed_set(feed, "status_pushes", self->pushes);
    tolk_statfeed_set(feed, "polls", self->polls);
    tolk_statfeed_set(feed, "sessions", self->sessions);
}

static void s_on_poll(void *arg, int64_t now_ms)
{
    (void)now_ms;
    status_worker_t *self = arg;
    if (!tolk_worker_stopping(self->base))
        status_worker_poll(self); /* a leaving worker pushes nothing new */
}

tolk_worker_t *status_worker_new(const tolk_config_t *cfg)
{
    status_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    if (self->cfg.status_poll_ms <= 0)
        self->cfg.status_poll_ms = 250;
    /* a query is answered as it arrives and a push is one round trip, so
       there is nothing to finish at a stop */
    tolk_worker_handlers_t handlers = {
        .on_message = s_on_message, .on_report = s_on_report, .on_destroy = free};
    tolk_worker_t *base = tolk_worker_new(TOLK_WORKER_STATUS, &self->cfg, &handlers, self);
    if (!base)
        return NULL;
    tolk_worker_lend(base, &self->base, self->id, sizeof self->id, &self->redis, &self->link);
    tolk_worker_timer(base, self->cfg.status_poll_ms, true, s_on_poll, self);
    return base;
}

const tolk_worker_program_t status_worker_program = {
    "tolk-status-worker", "status_worker",
    "Answers getSessionStatus and pushes sessionStatus to speakers\n"
    "(periodic, listener count changes, new languages). Finds the\n"
    "gateways in Redis and connects to each.",
    status_worker_new};
