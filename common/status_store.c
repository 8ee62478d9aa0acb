/*  status_store.c -- Lua scripts for session status and status pushes;
    see status_store.h for the keys and why each is one script.
*/
#include "status_store.h"
#include "ids.h"
#include "log.h"
#include "session_store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The session fields a status is built from, in this order (Lua HMGET). */
#define STATUS_FIELDS                                                                              \
    "'state', 'createdAt', 'isActive', 'isPaused', 'isMuted', 'volume', 'lastStateChange', "       \
    "'listenerCount', 'speakerGw', 'stLastPushMs', 'stLastCount', 'stLangs', 'refreshedAt'"

/* Positions of STATUS_FIELDS in the reply (0-based). */
enum {
    F_STATE,
    F_CREATED,
    F_ACTIVE,
    F_PAUSED,
    F_MUTED,
    F_VOLUME,
    F_LAST_CHANGE,
    F_COUNT,
    F_SPEAKER_GW,
    F_LAST_PUSH,
    F_LAST_COUNT,
    F_LANGS_SEEN,
    F_REFRESHED,
    F_COUNT_ALL
};

/* KEYS: session langs statusrate. ARGV: now window_ms limit member.
   {0, fields, langs}; {-404}; {-429, seconds}. The session is checked first
   so an unknown id never creates a key. */
static tolk_redis_script_t s_query = {
    "local h = redis.call('HMGET', KEYS[1], " STATUS_FIELDS ")\n"
    "if not h[1] then return {-404} end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1] - ARGV[2])\n"
    "if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then\n"
    "  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')\n"
    "  local wait = math.ceil((tonumber(oldest[2]) + ARGV[2] - ARGV[1]) / 1000)\n"
    "  if wait < 1 then wait = 1 end\n"
    "  return {-429, wait}\n"
    "end\n"
    "redis.call('ZADD', KEYS[3], ARGV[1], ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[3], ARGV[2])\n"
    "return {0, h, redis.call('HGETALL', KEYS[2])}\n",
    ""};

/* KEYS: session langs. ARGV: now period_ms change_pct settle_ms.
   Decides and records a push in one step: false when none is due (or the
   session is gone, its speaker away or bound less than settle_ms ago),
   else {reason, fields, langs}.
   stLangs is ",es,fr," -- every language pushed so far in this session. */
static tolk_redis_script_t s_due = {
    "local h = redis.call('HMGET', KEYS[1], " STATUS_FIELDS ")\n"
    "if h[1] ~= 'live' then return false end\n"
    "local now = tonumber(ARGV[1])\n"
    "if now - (tonumber(h[13]) or 0) < tonumber(ARGV[4]) then return false end\n"
    "local count = tonumber(h[8]) or 0\n"
    "local last = tonumber(h[10]) or tonumber(h[2]) or now\n"
    "local base = tonumber(h[11]) or 0\n"
    "local seen = h[12] or ','\n"
    "local langs = redis.call('HGETALL', KEYS[2])\n"
    "local fresh = ''\n"
    "for i = 1, #langs, 2 do\n"
    "  if (tonumber(langs[i + 1]) or 0) > 0 and\n"
    "     not string.find(seen, ',' .. langs[i] .. ',', 1, true) then\n"
    "    fresh = fresh .. langs[i] .. ','\n"
    "  end\n"
    "end\n"
    "local reason\n"
    "if fresh ~= '' then reason = 3\n"
    "elseif (base == 0 and count ~= 0) or\n"
    "       (base > 0 and math.abs(count - base) * 100 > tonumber(ARGV[3]) * base) then reason = "
    "2\n"
    "elseif now - last >= tonumber(ARGV[2]) then reason = 1\n"
    "else return false end\n"
    "redis.call('HSET', KEYS[1], 'stLastPushMs', ARGV[1], 'stLastCount', tostring(count),\n"
    "  'stLangs', seen .. fresh)\n"
    "return {reason, h, langs}\n",
    ""};

/* The keys of one session this module uses. */
typedef struct {
    char session[TOLK_ID_MAX + 32]; /* tolk:{sid}:session */
    char langs[TOLK_ID_MAX + 32];   /* tolk:{sid}:langs */
    char rate[TOLK_ID_MAX + 32];    /* tolk:{sid}:statusrate */
} keys_t;

static void s_keys(keys_t *k, const char *sid)
{
    snprintf(k->session, sizeof k->session, "tolk:{%s}:session", sid);
    snprintf(k->langs, sizeof k->langs, "tolk:{%s}:langs", sid);
    snprintf(k->rate, sizeof k->rate, "tolk:{%s}:statusrate", sid);
}

/* Fill status from the STATUS_FIELDS array and the flat HGETALL of langs.
   Returns 0, or -1 when the reply does not have that shape. */
static int s_parse(const redisReply *h, const redisReply *langs, tolk_status_t *st, int64_t now)
{
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != F_COUNT_ALL || !langs ||
        langs->type != REDIS_REPLY_ARRAY)
        return -1;
    tolk_status_reason_t reason = st->reason;
    memset(st, 0, sizeof *st);
    st->reason = reason;
    st->now_ms = now;
    const char *v;
    st->created_at = tolk_reply_int(h->element[F_CREATED], now);
    st->is_active = tolk_reply_int(h->element[F_ACTIVE], 1) != 0;
    st->is_paused = tolk_reply_int(h->element[F_PAUSED], 0) != 0;
    st->is_muted = tolk_reply_int(h->element[F_MUTED], 0) != 0;
    st->volume = (v = tolk_reply_str(h->element[F_VOLUME])) ? atof(v) : 1.0;
    st->last_state_change = tolk_reply_int(h->element[F_LAST_CHANGE], 0);
    st->listener_count = (long)tolk_reply_int(h->element[F_COUNT], 0);
    if ((v = tolk_reply_str(h->element[F_SPEAKER_GW])) && strlen(v) <= TOLK_ID_MAX)
        strcpy(st->speaker_gw, v);
    for (size_t i = 0; i + 1 < langs->elements && st->nlangs < TOLK_STATUS_MAX_LANGS; i += 2) {
        const char *code = tolk_reply_str(langs->element[i]);
        long count = (long)tolk_reply_int(langs->element[i + 1], 0);
        if (!code || strlen(code) > TOLK_LANG_MAX || count <= 0)
            continue; /* a language with no listener is not part of the distribution */
        strcpy(st->langs[st->nlangs].code, code);
        st->langs[st->nlangs].count = count;
        st->nlangs++;
    }
    return 0;
}

int tolk_status_query(tolk_redis_t *r, const char *sid, int rate_per_s, int64_t now_ms,
                      tolk_status_t *status)
{
    static unsigned counter;  /* query number in this process, for unique members */
    static uint32_t instance; /* random, so two hosts with one pid never collide */
    if (!instance)
        instance = tolk_random_u32() | 1;
    keys_t k;
    s_keys(&k, sid);
    char now_s[24], limit_s[16], member[64];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    snprintf(limit_s, sizeof limit_s, "%d", rate_per_s > 0 ? rate_per_s : INT_MAX);
    snprintf(member, sizeof member, "%lld-%d-%08x-%u", (long long)now_ms, (int)getpid(), instance,
             ++counter);
    const char *argv[] = {k.session, k.langs, k.rate, now_s, "1000", limit_s, member};
    redisReply *rep = tolk_redis_eval(r, &s_query, 3, 4, argv);
    int rc = TOLK_STORE_DOWN;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1) {
        long long code = tolk_reply_int(rep->element[0], TOLK_STORE_DOWN);
        if (code == 0 && rep->elements == 3) {
            status->reason = TOLK_STATUS_REQUESTED;
            if (s_parse(rep->element[1], rep->element[2], status, now_ms) == 0)
                rc = TOLK_STORE_OK;
        } else if (code == -404) {
            rc = TOLK_STORE_NOT_FOUND;
        } else if (code == -429 && rep->elements == 2) {
            long long wait = tolk_reply_int(rep->element[1], 1);
            rc = wait < 1 ? 1 : (int)wait;
        }
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* Handle one due-script reply: call fn when a push was recorded. Returns 1
   when due, 0 when not, -1 when the reply is an error. */
static int s_due_reply(const redisReply *rep, const char *sid, int64_t now, tolk_status_due_fn *fn,
                       void *arg)
{
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return 0; /* nil: nothing due, or the session is gone or in grace */
    tolk_status_t *st = malloc(sizeof *st);
    if (!st)
        return -1;
    long long reason = tolk_reply_int(rep->element[0], 0);
    st->reason = reason == 3   ? TOLK_STATUS_NEW_LANGUAGE
                 : reason == 2 ? TOLK_STATUS_COUNT_CHANGE
                               : TOLK_STATUS_PERIODIC;
    int due = 0;
    if (s_parse(rep->element[1], rep->element[2], st, now) == 0) {
        fn(arg, sid, st);
        due = 1;
    }
    free(st);
    return due;
}

/* Make the link notice a broken pipeline: a context with err set fails
   the next command, which drops it and reconnects later with backoff. */
static void s_broken(tolk_redis_t *r)
{
    redisReply *rep = tolk_redis_command(r, "PING");
    if (rep)
        freeReplyObject(rep);
}

int tolk_status_due(tolk_redis_t *r, char sids[][TOLK_ID_MAX + 1], int n, int64_t now_ms,
                    int64_t period_ms, int change_pct, tolk_status_due_fn *fn, void *arg)
{
    tolk_redis_script_init(&s_due);
    char now_s[24], period_s[24], pct_s[16], settle_s[16];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    snprintf(settle_s, sizeof settle_s, "%d", TOLK_STATUS_SETTLE_MS);
    snprintf(period_s, sizeof period_s, "%lld", (long long)period_ms);
    snprintf(pct_s, sizeof pct_s, "%d", change_pct);
    int due = 0;
    for (int off = 0; off < n; off += TOLK_STATUS_BATCH) {
        int m = n - off < TOLK_STATUS_BATCH ? n - off : TOLK_STATUS_BATCH;
        redisContext *c = tolk_redis_context(r);
        if (!c)
            return TOLK_STORE_DOWN;
        /* one round trip for the whole batch */
        for (int i = 0; i < m; i++) {
            keys_t k;
            s_keys(&k, sids[off + i]);
            const char *argv[] = {"EVALSHA", s_due.sha, "2",   k.session, k.langs,
                                  now_s,     period_s,  pct_s, settle_s};
            if (redisAppendCommandArgv(c, 9, argv, NULL) != REDIS_OK) {
                s_broken(r);
                return TOLK_STORE_DOWN;
            }
        }
        redisReply *reps[TOLK_STATUS_BATCH] = {0};
        int got = 0;
        for (; got < m; got++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) != REDIS_OK || !rep)
                break;
            reps[got] = rep;
        }
        int rc = got == m ? 0 : TOLK_STORE_DOWN;
        for (int i = 0; i < got; i++) {
            const char *sid = sids[off + i];
            redisReply *rep = reps[i];
            if (rc == 0 && rep->type == REDIS_REPLY_ERROR &&
                strncmp(rep->str, "NOSCRIPT", 8) == 0) {
                /* Redis restarted and forgot the script: this call loads it */
                freeReplyObject(rep);
                keys_t k;
                s_keys(&k, sid);
                const char *argv[] = {k.session, k.langs, now_s, period_s, pct_s, settle_s};
                rep = tolk_redis_eval(r, &s_due, 2, 4, argv);
            }
            int one = s_due_reply(rep, sid, now_ms, fn, arg);
            if (one > 0)
                due++;
            else if (one < 0 && rep && rep->type == REDIS_REPLY_ERROR)
                tolk_error("statusDue", sid, "status script failed: %s", rep->str);
            if (rep)
                freeReplyObject(rep);
        }
        if (rc != 0) {
            s_broken(r);
            return TOLK_STORE_DOWN;
        }
    }
    return due;
}

int tolk_status_sessions(tolk_redis_t *r, long start, char sids[][TOLK_ID_MAX + 1], int max,
                         int *ranks)
{
    return tolk_store_sessions_page(r, start, sids, max, ranks);
}

const char *tolk_status_reason_name(tolk_status_reason_t reason)
{
    switch (reason) {
        case TOLK_STATUS_PERIODIC:
            return "periodic";
        case TOLK_STATUS_COUNT_CHANGE:
            return "listenerCountChange";
        case TOLK_STATUS_NEW_LANGUAGE:
            return "newLanguage";
        default:
            return "requested";
    }
}
