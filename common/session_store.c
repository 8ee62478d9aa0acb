/*  session_store.c -- Lua scripts over a session's keys; see session_store.h. */
#include "session_store.h"
#include "log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: session langs gws members. ARGV: sid source tier sub gw conn now
   vocabulary (its stored form; "" for none: vocabRev stays absent) */
static tolk_redis_script_t s_create = {
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'sessionId', ARGV[1], 'sourceLanguage', ARGV[2],\n"
    "  'qualityTier', ARGV[3], 'speakerSub', ARGV[4], 'speakerGw', ARGV[5],\n"
    "  'speakerConn', ARGV[6], 'createdAt', ARGV[7], 'refreshedAt', ARGV[7],\n"
    "  'isActive', '1', 'isPaused', '0', 'isMuted', '0', 'volume', '1.0',\n"
    "  'lastStateChange', ARGV[7], 'listenerCount', '0', 'state', 'live')\n"
    "if ARGV[8] ~= '' then\n"
    "  redis.call('HSET', KEYS[1], 'vocabulary', ARGV[8], 'vocabRev', '1')\n"
    "end\n"
    "redis.call('HSET', KEYS[4], ARGV[5] .. '/' .. ARGV[6], 'S')\n"
    "redis.call('HINCRBY', KEYS[3], ARGV[5], 1)\n"
    "return 1\n",
    ""};

/* The broadcast state's fields, in the order s_broadcast reads them. */
#define BROADCAST_FIELDS "'isActive', 'isPaused', 'isMuted', 'volume', 'lastStateChange'"

/* The fields returned to a joining or returning member, in this order. */
#define INFO_FIELDS                                                                                \
    "'sourceLanguage', 'qualityTier', " BROADCAST_FIELDS ", 'listenerCount', 'state'"

/* KEYS: session langs gws members speech. ARGV: gw conn lang max speech. A
   listener's member value is L:<lang>, or H:<lang> when it hears speech. */
static tolk_redis_script_t s_join = {
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if not st then\n"
    "  local why = redis.call('GET', KEYS[6])\n"
    "  if why then return {-410, why} end\n"
    "  return {-404}\n"
    "end\n"
    "local member = ARGV[1] .. '/' .. ARGV[2]\n"
    "if redis.call('HEXISTS', KEYS[4], member) == 1 then return {-1} end\n"
    "local n = tonumber(redis.call('HGET', KEYS[1], 'listenerCount'))\n"
    "if n >= tonumber(ARGV[4]) then return {-409} end\n"
    "redis.call('HSET', KEYS[4], member, (ARGV[5] == '1' and 'H:' or 'L:') .. ARGV[3])\n"
    "if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[5], ARGV[3], 1) end\n"
    "redis.call('HINCRBY', KEYS[1], 'listenerCount', 1)\n"
    "redis.call('HINCRBY', KEYS[2], ARGV[3], 1)\n"
    "redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
    "return {0, redis.call('HMGET', KEYS[1], " INFO_FIELDS ")}\n",
    ""};

/* Shared by the listener scripts: the counts of one listener's language
   (listeners, and speech hearers for an H: member) move by delta. */
#define COUNT_LISTENER                                                                             \
    "local function count(v, delta)\n"                                                             \
    "  local lang = string.sub(v, 3)\n"                                                            \
    "  local keys = string.sub(v, 1, 1) == 'H' and {KEYS[2], KEYS[5]} or {KEYS[2]}\n"              \
    "  for _, key in ipairs(keys) do\n"                                                            \
    "    if redis.call('HINCRBY', key, lang, delta) <= 0 then redis.call('HDEL', key, lang) end\n" \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function listener(v) return v and (string.sub(v, 1, 2) == 'L:' or\n"                    \
    "  string.sub(v, 1, 2) == 'H:') end\n"

/* KEYS: session langs gws members speech. ARGV: gw conn newlang */
static tolk_redis_script_t s_change_lang = {
    COUNT_LISTENER "if redis.call('EXISTS', KEYS[1]) == 0 then return -404 end\n"
                   "local member = ARGV[1] .. '/' .. ARGV[2]\n"
                   "local v = redis.call('HGET', KEYS[4], member)\n"
                   "if not listener(v) then return -404 end\n"
                   "if string.sub(v, 3) == ARGV[3] then return 0 end\n"
                   "local nv = string.sub(v, 1, 2) .. ARGV[3]\n"
                   "count(v, -1)\n"
                   "count(nv, 1)\n"
                   "redis.call('HSET', KEYS[4], member, nv)\n"
                   "return 0\n",
    ""};

/* KEYS: session langs gws members speech. ARGV: gw conn on. Returns 0, or
   -404 when the session or the listener is gone. */
static tolk_redis_script_t s_set_speech = {
    COUNT_LISTENER "if redis.call('EXISTS', KEYS[1]) == 0 then return -404 end\n"
                   "local member = ARGV[1] .. '/' .. ARGV[2]\n"
                   "local v = redis.call('HGET', KEYS[4], member)\n"
                   "if not listener(v) then return -404 end\n"
                   "local nv = (ARGV[3] == '1' and 'H:' or 'L:') .. string.sub(v, 3)\n"
                   "if nv == v then return 0 end\n"
                   "count(v, -1)\n"
                   "count(nv, 1)\n"
                   "redis.call('HSET', KEYS[4], member, nv)\n"
                   "return 0\n",
    ""};

/* Shared by leave and speaker_gone: drop one member and its counts. */
#define DROP_MEMBER                                                                                \
    COUNT_LISTENER                                                                                 \
    "local function drop(member, gw)\n"                                                            \
    "  local v = redis.call('HGET', KEYS[4], member)\n"                                            \
    "  if not v then return nil end\n"                                                             \
    "  redis.call('HDEL', KEYS[4], member)\n"                                                      \
    "  if redis.call('HINCRBY', KEYS[3], gw, -1) <= 0 then redis.call('HDEL', KEYS[3], gw) end\n"  \
    "  if listener(v) then\n"                                                                      \
    "    redis.call('HINCRBY', KEYS[1], 'listenerCount', -1)\n"                                    \
    "    count(v, -1)\n"                                                                           \
    "  end\n"                                                                                      \
    "  return v\n"                                                                                 \
    "end\n"

/* KEYS: session langs gws members. ARGV: gw conn */
static tolk_redis_script_t s_leave = {
    DROP_MEMBER "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                "if drop(ARGV[1] .. '/' .. ARGV[2], ARGV[1]) then return 1 end\n"
                "return 0\n",
    ""};

/* KEYS: session langs gws members. ARGV: gw conn clean graceUntil */
static tolk_redis_script_t s_speaker_gone = {
    DROP_MEMBER "local cur = redis.call('HMGET', KEYS[1], 'speakerGw', 'speakerConn')\n"
                "if not cur[1] then return 0 end\n"
                "drop(ARGV[1] .. '/' .. ARGV[2], ARGV[1])\n"
                "if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 1 end\n"
                "if ARGV[3] == '1' then return 2 end\n"
                "redis.call('HSET', KEYS[1], 'state', 'grace', 'graceUntil', ARGV[4],\n"
                "  'speakerGw', '', 'speakerConn', '')\n"
                "return 3\n",
    ""};

/* KEYS: session langs gws members. ARGV: gw conn sub now */
static tolk_redis_script_t s_speaker_refresh = {
    "local sub = redis.call('HGET', KEYS[1], 'speakerSub')\n"
    "if not sub then return {-404} end\n"
    "if sub ~= ARGV[3] then return {-403} end\n"
    "local info = redis.call('HMGET', KEYS[1], " INFO_FIELDS ")\n"
    "redis.call('HSET', KEYS[1], 'speakerGw', ARGV[1], 'speakerConn', ARGV[2],\n"
    "  'state', 'live', 'refreshedAt', ARGV[4])\n"
    "redis.call('HDEL', KEYS[1], 'graceUntil')\n"
    "local member = ARGV[1] .. '/' .. ARGV[2]\n"
    "if redis.call('HSETNX', KEYS[4], member, 'S') == 1 then\n"
    "  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
    "end\n"
    "return {0, info}\n",
    ""};

/* KEYS: session langs gws members. Returns {gateways, members} or false. */
/* Shared by the end scripts: the session's keys go, its caption history
   stays for the retention time (ARGV[2] ms) as the speaker's transcript. */
#define END_SESSION                                                                                \
    "local gws = redis.call('HKEYS', KEYS[3])\n"                                                   \
    "local members = redis.call('HKEYS', KEYS[4])\n"                                               \
    "if redis.call('EXISTS', KEYS[6]) == 1 then\n"                                                 \
    "  local meta = redis.call('HMGET', KEYS[1], 'speakerSub', 'sourceLanguage', 'createdAt')\n"   \
    "  redis.call('HSET', KEYS[7], 'speakerSub', meta[1] or '', 'sourceLanguage', meta[2] or "     \
    "'',\n"                                                                                        \
    "    'createdAt', meta[3] or '0', 'endedAt', ARGV[3])\n"                                       \
    "  redis.call('PEXPIRE', KEYS[7], ARGV[2])\n"                                                  \
    "  local prefix = string.gsub(KEYS[6], 'histlangs$', 'hist:')\n"                               \
    "  for _, lang in ipairs(redis.call('SMEMBERS', KEYS[6])) do\n"                                \
    "    redis.call('PEXPIRE', prefix .. lang, ARGV[2])\n"                                         \
    "  end\n"                                                                                      \
    "  redis.call('PEXPIRE', KEYS[6], ARGV[2])\n"                                                  \
    "end\n"                                                                                        \
    "redis.call('SET', KEYS[8], ARGV[4], 'PX', ARGV[2])\n"                                         \
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])\n"                             \
    "return {gws, members}\n"

/* KEYS: session langs gws members speech histlangs transcript ended. ARGV:
   - retention_ms now reason. Returns {gateways, members} or false. */
static tolk_redis_script_t s_end = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n" END_SESSION, ""};

/* KEYS: as s_end. ARGV: now retention_ms now reason. Ends only an expired
   grace. */
static tolk_redis_script_t s_end_expired = {
    "local st = redis.call('HMGET', KEYS[1], 'state', 'graceUntil')\n"
    "if not st[1] then return false end\n"
    "if st[1] ~= 'grace' or tonumber(st[2]) > tonumber(ARGV[1]) then return 0 end\n" END_SESSION,
    ""};

/* The keys of a session (the first five are its live state). */
typedef struct {
    char session[TOLK_ID_MAX + 32], langs[TOLK_ID_MAX + 32], gws[TOLK_ID_MAX + 32],
        members[TOLK_ID_MAX + 32], speech[TOLK_ID_MAX + 32], histlangs[TOLK_ID_MAX + 32],
        transcript[TOLK_ID_MAX + 32], ended[TOLK_ID_MAX + 32];
} keys_t;

static void s_keys(keys_t *k, const char *sid)
{
    snprintf(k->session, sizeof k->session, "tolk:{%s}:session", sid);
    snprintf(k->langs, sizeof k->langs, "tolk:{%s}:langs", sid);
    snprintf(k->gws, sizeof k->gws, "tolk:{%s}:gws", sid);
    snprintf(k->members, sizeof k->members, "tolk:{%s}:members", sid);
    snprintf(k->speech, sizeof k->speech, "tolk:{%s}:speech", sid);
    snprintf(k->histlangs, sizeof k->histlangs, "tolk:{%s}:histlangs", sid);
    snprintf(k->transcript, sizeof k->transcript, "tolk:{%s}:transcript", sid);
    snprintf(k->ended, sizeof k->ended, "tolk:{%s}:ended", sid);
}

static void s_cmd(tolk_redis_t *r, const char *fmt, const char *a, const char *b, const char *c)
{
    redisReply *rep = tolk_redis_command(r, fmt, a, b, c);
    if (rep)
        freeReplyObject(rep);
}

static const char *s_adjectives[] = {
    "amber",  "ancient",  "autumn",  "bold",    "brave",   "bright", "calm",    "clever",
    "cosmic", "crimson",  "crystal", "curious", "dancing", "daring", "dawn",    "eager",
    "early",  "electric", "emerald", "fancy",   "fierce",  "gentle", "gilded",  "golden",
    "grand",  "happy",    "hidden",  "humble",  "icy",     "jolly",  "kind",    "lively",
    "lucky",  "lunar",    "magic",   "mellow",  "misty",   "noble",  "olive",   "polar",
    "proud",  "quick",    "quiet",   "rapid",   "royal",   "rustic", "scarlet", "silent",
    "silver", "solar",    "spring",  "steady",  "stormy",  "sunny",  "swift",   "tidy",
    "vivid",  "warm",     "wild",    "wise",    "witty",   "young",  "zesty",   "velvet"};
static const char *s_nouns[] = {
    "badger", "bear",    "beaver", "bison",   "canyon", "cedar",  "comet",  "condor",
    "coral",  "crane",   "delta",  "dolphin", "eagle",  "falcon", "fern",   "fjord",
    "forest", "fox",     "garden", "glacier", "harbor", "hawk",   "heron",  "island",
    "jaguar", "lagoon",  "lake",   "lark",    "lion",   "lynx",   "maple",  "meadow",
    "meteor", "moose",   "nebula", "oak",     "ocean",  "orca",   "otter",  "owl",
    "panda",  "pine",    "planet", "puffin",  "raven",  "reef",   "river",  "robin",
    "salmon", "sparrow", "spruce", "summit",  "swan",   "tiger",  "tundra", "valley",
    "violet", "walrus",  "whale",  "willow",  "wolf",   "wren",   "yak",    "zebra"};

static void s_new_id(char *sid)
{
    size_t na = sizeof s_adjectives / sizeof *s_adjectives, nn = sizeof s_nouns / sizeof *s_nouns;
    unsigned int r[4];
    FILE *f = fopen("/dev/urandom", "r");
    if (!f || fread(r, sizeof r, 1, f) != 1) {
        for (int i = 0; i < 4; i++)
            r[i] = (unsigned)rand();
    }
    if (f)
        fclose(f);
    /* 64 x 64 x 900 x 1000 = 3.7e9 codes: see "Guessing a code" in docs/protocol.md */
    snprintf(sid, TOLK_ID_MAX + 1, "%s-%s-%03u-%03u", s_adjectives[r[0] % na], s_nouns[r[1] % nn],
             100 + r[2] % 900, r[3] % 1000);
}

int tolk_store_create(tolk_redis_t *r, char *sid, const char *source, const char *tier,
                      const char *sub, const char *gw, uint64_t conn, const char *vocabulary,
                      int64_t now_ms)
{
    char conn_s[24], now_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    for (int attempt = 0; attempt < 16; attempt++) {
        s_new_id(sid);
        keys_t k;
        s_keys(&k, sid);
        const char *argv[] = {k.session, k.langs, k.gws, k.members,
                              sid,       source,  tier,  sub,
                              gw,        conn_s,  now_s, vocabulary ? vocabulary : ""};
        redisReply *rep = tolk_redis_eval(r, &s_create, 4, 8, argv);
        if (!rep || rep->type != REDIS_REPLY_INTEGER) {
            if (rep)
                freeReplyObject(rep);
            return TOLK_STORE_DOWN;
        }
        long long ok = rep->integer;
        freeReplyObject(rep);
        if (ok == 1) {
            s_cmd(r, "HSET tolk:gwconns:%s %s %s", gw, conn_s, sid);
            s_cmd(r, "ZADD tolk:sessions %s %s", now_s, sid, "");
            return TOLK_STORE_OK;
        }
    }
    return TOLK_STORE_EXISTS;
}

/* Read the five BROADCAST_FIELDS values starting at e into state. */
static void s_broadcast(redisReply **e, tolk_broadcast_state_t *state)
{
    const char *v;
    state->is_active = tolk_reply_int(e[0], 1) != 0;
    state->is_paused = tolk_reply_int(e[1], 0) != 0;
    state->is_muted = tolk_reply_int(e[2], 0) != 0;
    state->volume = (v = tolk_reply_str(e[3])) ? atof(v) : 1.0;
    state->last_state_change = tolk_reply_int(e[4], 0);
}

/* Read the INFO_FIELDS array into info. */
static void s_info(const redisReply *a, tolk_session_info_t *info)
{
    memset(info, 0, sizeof *info);
    if (!a || a->type != REDIS_REPLY_ARRAY || a->elements < 9)
        return;
    const char *v;
    if ((v = tolk_reply_str(a->element[0])))
        snprintf(info->source_language, sizeof info->source_language, "%s", v);
    if ((v = tolk_reply_str(a->element[1])))
        snprintf(info->quality_tier, sizeof info->quality_tier, "%s", v);
    s_broadcast(a->element + 2, &info->state);
    info->listener_count = (long)tolk_reply_int(a->element[7], 0);
    info->in_grace = (v = tolk_reply_str(a->element[8])) && strcmp(v, "grace") == 0;
}

/* Run a script returning {code, info}. */
static int s_info_script(tolk_redis_t *r, tolk_redis_script_t *script, int nkeys, int nargs,
                         const char **argv, tolk_session_info_t *info)
{
    redisReply *rep = tolk_redis_eval(r, script, nkeys, nargs, argv);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    int code = (int)tolk_reply_int(rep->element[0], TOLK_STORE_DOWN);
    if (code == 0 && rep->elements > 1)
        s_info(rep->element[1], info);
    if (code == TOLK_STORE_ENDED) {
        const char *why = rep->elements > 1 ? tolk_reply_str(rep->element[1]) : NULL;
        snprintf(info->end_reason, sizeof info->end_reason, "%s", why ? why : "endSession");
    }
    freeReplyObject(rep);
    return code;
}

int tolk_store_join(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                    const char *lang, int max_listeners, bool speech, tolk_session_info_t *info)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24], max_s[16];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    snprintf(max_s, sizeof max_s, "%d", max_listeners);
    const char *argv[] = {k.session, k.langs, k.gws, k.members, k.speech,          k.ended,
                          gw,        conn_s,  lang,  max_s,     speech ? "1" : "0"};
    int rc = s_info_script(r, &s_join, 6, 5, argv, info);
    if (rc == TOLK_STORE_OK)
        s_cmd(r, "HSET tolk:gwconns:%s %s %s", gw, conn_s, sid);
    return rc;
}

int tolk_store_leave(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    const char *argv[] = {k.session, k.langs, k.gws, k.members, k.speech, gw, conn_s};
    redisReply *rep = tolk_redis_eval(r, &s_leave, 5, 2, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : TOLK_STORE_DOWN;
    if (rep)
        freeReplyObject(rep);
    s_cmd(r, "HDEL tolk:gwconns:%s %s", gw, conn_s, "");
    return rc;
}

int tolk_store_change_language(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                               const char *lang)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    const char *argv[] = {k.session, k.langs, k.gws, k.members, k.speech, gw, conn_s, lang};
    redisReply *rep = tolk_redis_eval(r, &s_change_lang, 5, 3, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : TOLK_STORE_DOWN;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int tolk_store_set_speech(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn, bool on)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    const char *argv[] = {k.session, k.langs, k.gws,  k.members,
                          k.speech,  gw,      conn_s, on ? "1" : "0"};
    redisReply *rep = tolk_redis_eval(r, &s_set_speech, 5, 3, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : TOLK_STORE_DOWN;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int tolk_store_speaker_gone(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                            bool clean, int64_t now_ms, int grace_s)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24], until_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    snprintf(until_s, sizeof until_s, "%lld", (long long)(now_ms + (int64_t)grace_s * 1000));
    const char *argv[] = {k.session, k.langs,           k.gws,  k.members, k.speech, gw,
                          conn_s,    clean ? "1" : "0", until_s};
    redisReply *rep = tolk_redis_eval(r, &s_speaker_gone, 5, 4, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : TOLK_STORE_DOWN;
    if (rep)
        freeReplyObject(rep);
    s_cmd(r, "HDEL tolk:gwconns:%s %s", gw, conn_s, "");
    if (rc == TOLK_SPEAKER_GONE_GRACE)
        s_cmd(r, "ZADD tolk:grace %s %s", until_s, sid, "");
    return rc;
}

int tolk_store_speaker_refresh(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                               const char *sub, int64_t now_ms, tolk_session_info_t *info)
{
    keys_t k;
    s_keys(&k, sid);
    char conn_s[24], now_s[24];
    snprintf(conn_s, sizeof conn_s, "%llu", (unsigned long long)conn);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    const char *argv[] = {k.session, k.langs, k.gws, k.members, gw, conn_s, sub, now_s};
    int rc = s_info_script(r, &s_speaker_refresh, 4, 4, argv, info);
    if (rc == TOLK_STORE_OK) {
        s_cmd(r, "HSET tolk:gwconns:%s %s %s", gw, conn_s, sid);
        s_cmd(r, "ZREM tolk:grace %s", sid, "", "");
        s_cmd(r, "ZADD tolk:sessions %s %s", now_s, sid, "");
    }
    return rc;
}

/* Copy the string elements of an array reply that fit an id (gateway or
   session) into ids. */
static int s_id_list(const redisReply *a, char ids[][TOLK_ID_MAX + 1], int max)
{
    int n = 0;
    for (size_t i = 0; a && a->type == REDIS_REPLY_ARRAY && i < a->elements && n < max; i++) {
        const char *v = tolk_reply_str(a->element[i]);
        if (v && strlen(v) <= TOLK_ID_MAX)
            snprintf(ids[n++], TOLK_ID_MAX + 1, "%s", v);
    }
    return n;
}

/* Run an end script and clean the indexes; shared by the two ways to end. */
static int s_end_with(tolk_redis_t *r, tolk_redis_script_t *script, const char *sid,
                      const char *arg, const char *reason, int retention_s,
                      char gws[][TOLK_ID_MAX + 1], int max_gws)
{
    keys_t k;
    s_keys(&k, sid);
    char keep_s[24], now_s[24];
    snprintf(keep_s, sizeof keep_s, "%lld", (long long)(retention_s > 0 ? retention_s : 1) * 1000);
    snprintf(now_s, sizeof now_s, "%lld", (long long)tolk_now_ms());
    const char *argv[] = {k.session,    k.langs, k.gws,           k.members, k.speech, k.histlangs,
                          k.transcript, k.ended, arg ? arg : "-", keep_s,    now_s,    reason};
    redisReply *rep = tolk_redis_eval(r, script, 8, 4, argv);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    if (rep->type == REDIS_REPLY_INTEGER) {
        freeReplyObject(rep);
        return TOLK_STORE_EXISTS;
    }
    int n = TOLK_STORE_NOT_FOUND;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        n = s_id_list(rep->element[0], gws, max_gws);
        const redisReply *members = rep->element[1];
        for (size_t i = 0; members->type == REDIS_REPLY_ARRAY && i < members->elements; i++) {
            const char *m = tolk_reply_str(members->element[i]);
            const char *slash = m ? strrchr(m, '/') : NULL;
            if (!slash)
                continue;
            char gw[TOLK_ID_MAX + 1];
            size_t gl = (size_t)(slash - m);
            if (gl > TOLK_ID_MAX)
                continue;
            memcpy(gw, m, gl);
            gw[gl] = 0;
            s_cmd(r, "HDEL tolk:gwconns:%s %s", gw, slash + 1, "");
        }
    }
    freeReplyObject(rep);
    s_cmd(r, "ZREM tolk:sessions %s", sid, "", "");
    s_cmd(r, "ZREM tolk:grace %s", sid, "", "");
    return n;
}

int tolk_store_end(tolk_redis_t *r, const char *sid, const char *reason, int retention_s,
                   char gws[][TOLK_ID_MAX + 1], int max_gws)
{
    return s_end_with(r, &s_end, sid, NULL, reason, retention_s, gws, max_gws);
}

int tolk_store_end_expired(tolk_redis_t *r, const char *sid, int64_t now_ms, int retention_s,
                           char gws[][TOLK_ID_MAX + 1], int max_gws)
{
    char now_s[24];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    return s_end_with(r, &s_end_expired, sid, now_s, "speakerTimeout", retention_s, gws, max_gws);
}

/* KEYS: session langs gws members speech. Recount listeners, languages,
   speech hearers and gateways from the members hash, the one record of who is there, and
   rewrite whatever drifted. Returns 1 if something was fixed, 0 if not,
   -1 when the session is gone. */
static tolk_redis_script_t s_reconcile = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local m = redis.call('HGETALL', KEYS[4])\n"
    "local n, langs, gws, speech = 0, {}, {}, {}\n"
    "for i = 1, #m, 2 do\n"
    "  local gw = string.match(m[i], '^(.*)/[^/]*$')\n"
    "  if gw then gws[gw] = (gws[gw] or 0) + 1 end\n"
    "  local kind = string.sub(m[i + 1], 1, 2)\n"
    "  if kind == 'L:' or kind == 'H:' then\n"
    "    n = n + 1\n"
    "    local l = string.sub(m[i + 1], 3)\n"
    "    langs[l] = (langs[l] or 0) + 1\n"
    "    if kind == 'H:' then speech[l] = (speech[l] or 0) + 1 end\n"
    "  end\n"
    "end\n"
    "local fixed = 0\n"
    "if tonumber(redis.call('HGET', KEYS[1], 'listenerCount') or '-1') ~= n then\n"
    "  redis.call('HSET', KEYS[1], 'listenerCount', n)\n"
    "  fixed = 1\n"
    "end\n"
    "local function same(key, want)\n"
    "  local have, count = redis.call('HGETALL', key), 0\n"
    "  for i = 1, #have, 2 do\n"
    "    count = count + 1\n"
    "    if tonumber(have[i + 1]) ~= want[have[i]] then return false end\n"
    "  end\n"
    "  for _ in pairs(want) do count = count - 1 end\n"
    "  return count == 0\n"
    "end\n"
    "local wants = {langs, gws, speech}\n"
    "for k, key in ipairs({KEYS[2], KEYS[3], KEYS[5]}) do\n"
    "  local want = wants[k]\n"
    "  if not same(key, want) then\n"
    "    redis.call('DEL', key)\n"
    "    for f, v in pairs(want) do redis.call('HSET', key, f, v) end\n"
    "    fixed = 1\n"
    "  end\n"
    "end\n"
    "return fixed\n",
    ""};

int tolk_store_reconcile(tolk_redis_t *r, const char *sid)
{
    keys_t k;
    s_keys(&k, sid);
    const char *argv[] = {k.session, k.langs, k.gws, k.members, k.speech};
    redisReply *rep = tolk_redis_eval(r, &s_reconcile, 5, 0, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : TOLK_STORE_DOWN;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int tolk_store_gateways(tolk_redis_t *r, const char *sid, char gws[][TOLK_ID_MAX + 1], int max_gws)
{
    redisReply *rep = tolk_redis_command(r, "HKEYS tolk:{%s}:gws", sid);
    if (!rep)
        return TOLK_STORE_DOWN;
    int n = s_id_list(rep, gws, max_gws);
    freeReplyObject(rep);
    return n;
}

/* KEYS: session. ARGV: now, then field/value pairs. Returns the new
   broadcast state, or false when the session has ended. */
static tolk_redis_script_t s_set_state = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "redis.call('HSET', KEYS[1], 'lastStateChange', ARGV[1])\n"
    "return redis.call('HMGET', KEYS[1], " BROADCAST_FIELDS ")\n",
    ""};

int tolk_store_set_state(tolk_redis_t *r, const char *sid, int64_t now_ms, const char **fields,
                         int nfields, tolk_broadcast_state_t *state)
{
    keys_t k;
    s_keys(&k, sid);
    char now_s[24];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    if (nfields > TOLK_STORE_MAX_STATE_FIELDS)
        nfields = TOLK_STORE_MAX_STATE_FIELDS;
    const char *argv[2 + TOLK_STORE_MAX_STATE_FIELDS] = {k.session, now_s};
    for (int i = 0; i < nfields; i++)
        argv[2 + i] = fields[i];
    redisReply *rep = tolk_redis_eval(r, &s_set_state, 1, 1 + nfields, argv);
    int rc = TOLK_STORE_DOWN;
    if (rep && rep->type == REDIS_REPLY_NIL)
        rc = TOLK_STORE_NOT_FOUND;
    else if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 5) {
        s_broadcast(rep->element, state);
        rc = TOLK_STORE_OK;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* KEYS: session langs gws speech. The session's source and creation time,
   the listeners per language, the gateways and the languages someone
   hears spoken; false when the session has ended. */
static tolk_redis_script_t s_snapshot = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "return {redis.call('HMGET', KEYS[1], 'sourceLanguage', 'createdAt', 'vocabRev'),\n"
    "        redis.call('HGETALL', KEYS[2]), redis.call('HKEYS', KEYS[3]),\n"
    "        redis.call('HKEYS', KEYS[4])}\n",
    ""};

/* Fill snap from the snapshot script's four-element reply. */
static void s_snapshot_read(const redisReply *rep, tolk_session_snapshot_t *snap)
{
    memset(snap, 0, sizeof *snap);
    const redisReply *info = rep->element[0], *langs = rep->element[1], *gws = rep->element[2],
                     *spoken = rep->element[3];
    if (info->type == REDIS_REPLY_ARRAY && info->elements == 3) {
        const char *src = tolk_reply_str(info->element[0]);
        if (src)
            snprintf(snap->source, sizeof snap->source, "%s", src);
        long long created = tolk_reply_int(info->element[1], LLONG_MIN);
        snap->created_known = created != LLONG_MIN;
        snap->created_at = snap->created_known ? (int64_t)created : 0;
        long long rev = tolk_reply_int(info->element[2], 0);
        snap->vocab_rev = rev > 0 ? rev : 0;
    }
    for (size_t i = 0; langs->type == REDIS_REPLY_ARRAY && i + 1 < langs->elements &&
                       snap->nlangs < TOLK_STORE_MAX_LANGS;
         i += 2) {
        const char *lang = tolk_reply_str(langs->element[i]);
        const char *n = tolk_reply_str(langs->element[i + 1]);
        if (!lang || !n || atol(n) <= 0 || !tolk_language_code_valid(lang))
            continue;
        tolk_store_lang_t *l = &snap->langs[snap->nlangs++];
        snprintf(l->code, sizeof l->code, "%s", lang);
        l->count = atol(n);
    }
    snap->ngws = s_id_list(gws, snap->gws, TOLK_STORE_MAX_GWS);
    for (size_t i = 0; spoken->type == REDIS_REPLY_ARRAY && i < spoken->elements &&
                       snap->nspoken < TOLK_STORE_MAX_LANGS;
         i++) {
        const char *lang = tolk_reply_str(spoken->element[i]);
        if (lang && strlen(lang) <= TOLK_LANG_MAX)
            snprintf(snap->spoken[snap->nspoken++], TOLK_LANG_MAX + 1, "%s", lang);
    }
}

int tolk_store_snapshot(tolk_redis_t *r, const char *sid, tolk_session_snapshot_t *snap)
{
    keys_t k;
    s_keys(&k, sid);
    const char *argv[] = {k.session, k.langs, k.gws, k.speech};
    redisReply *rep = tolk_redis_eval(r, &s_snapshot, 4, 0, argv);
    int rc = TOLK_STORE_DOWN;
    if (rep && rep->type == REDIS_REPLY_NIL)
        rc = TOLK_STORE_NOT_FOUND;
    else if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        s_snapshot_read(rep, snap);
        rc = TOLK_STORE_OK;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* KEYS: session. ARGV: the vocabulary's stored form. Replaces it and
   counts the change (vocabRev), never resurrecting an ended session
   (false); returns the new vocabRev. */
static tolk_redis_script_t s_set_vocabulary = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "redis.call('HSET', KEYS[1], 'vocabulary', ARGV[1])\n"
    "return redis.call('HINCRBY', KEYS[1], 'vocabRev', 1)\n",
    ""};

long long tolk_store_set_vocabulary(tolk_redis_t *r, const char *sid, const char *vocabulary)
{
    keys_t k;
    s_keys(&k, sid);
    const char *argv[] = {k.session, vocabulary ? vocabulary : ""};
    redisReply *rep = tolk_redis_eval(r, &s_set_vocabulary, 1, 1, argv);
    long long rc = TOLK_STORE_DOWN;
    if (rep && rep->type == REDIS_REPLY_NIL)
        rc = TOLK_STORE_NOT_FOUND;
    else if (rep && rep->type == REDIS_REPLY_INTEGER)
        rc = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

long long tolk_store_vocabulary(tolk_redis_t *r, const char *sid, char **vocabulary)
{
    *vocabulary = NULL;
    redisReply *rep =
        tolk_redis_command(r, "HMGET tolk:{%s}:session vocabulary vocabRev sessionId", sid);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    long long rc = TOLK_STORE_NOT_FOUND;
    if (rep->element[2]->type == REDIS_REPLY_STRING) {
        const char *text = tolk_reply_str(rep->element[0]);
        long long rev = tolk_reply_int(rep->element[1], 0);
        *vocabulary = strdup(text ? text : "");
        rc = !*vocabulary ? TOLK_STORE_DOWN : rev > 0 ? rev : 0;
    }
    freeReplyObject(rep);
    return rc;
}

/* KEYS: session. One more recognition run, never resurrecting an ended
   session (false). */
static tolk_redis_script_t s_asr_epoch_next = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "return redis.call('HINCRBY', KEYS[1], 'asrEpoch', 1)\n",
    ""};

long long tolk_store_asr_epoch_next(tolk_redis_t *r, const char *sid)
{
    keys_t k;
    s_keys(&k, sid);
    const char *argv[] = {k.session};
    redisReply *rep = tolk_redis_eval(r, &s_asr_epoch_next, 1, 0, argv);
    long long rc = TOLK_STORE_DOWN;
    if (rep && rep->type == REDIS_REPLY_NIL)
        rc = TOLK_STORE_NOT_FOUND;
    else if (rep && rep->type == REDIS_REPLY_INTEGER)
        rc = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

long long tolk_store_asr_epoch(tolk_redis_t *r, const char *sid)
{
    redisReply *rep = tolk_redis_command(r, "HGET tolk:{%s}:session asrEpoch", sid);
    if (!rep)
        return TOLK_STORE_DOWN;
    long long epoch = tolk_reply_int(rep, 0);
    freeReplyObject(rep);
    return epoch;
}

/* Members of zset scored at most max_score, the lowest first, at most max. */
static int s_due(tolk_redis_t *r, const char *zset, int64_t max_score, char sids[][TOLK_ID_MAX + 1],
                 int max)
{
    redisReply *rep = tolk_redis_command(r, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", zset,
                                         (long long)max_score, max);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    int n = s_id_list(rep, sids, max);
    freeReplyObject(rep);
    return n;
}

int tolk_store_grace_due(tolk_redis_t *r, int64_t now_ms, char sids[][TOLK_ID_MAX + 1], int max)
{
    return s_due(r, "tolk:grace", now_ms, sids, max);
}

int tolk_store_sessions_before(tolk_redis_t *r, int64_t before_ms, char sids[][TOLK_ID_MAX + 1],
                               int max)
{
    return s_due(r, "tolk:sessions", before_ms, sids, max);
}

int tolk_store_sessions_page(tolk_redis_t *r, int64_t start, char sids[][TOLK_ID_MAX + 1], int max,
                             int *ranks)
{
    *ranks = 0;
    if (max <= 0)
        return 0;
    redisReply *rep = tolk_redis_command(r, "ZRANGE tolk:sessions %lld %lld", (long long)start,
                                         (long long)start + max - 1);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    int n = 0;
    *ranks = (int)rep->elements;
    for (size_t i = 0; i < rep->elements && n < max; i++) {
        const char *sid = tolk_reply_str(rep->element[i]);
        if (sid && tolk_session_id_valid(sid))
            strcpy(sids[n++], sid);
    }
    freeReplyObject(rep);
    return n;
}

void tolk_store_grace_forget(tolk_redis_t *r, const char *sid)
{
    s_cmd(r, "ZREM tolk:grace %s", sid, "", "");
}

void tolk_store_sessions_forget(tolk_redis_t *r, const char *sid)
{
    s_cmd(r, "ZREM tolk:sessions %s", sid, "", "");
}

int tolk_store_gateway_conns(tolk_redis_t *r, const char *gw, tolk_store_conn_fn *fn, void *arg)
{
    redisReply *rep = tolk_redis_command(r, "HGETALL tolk:gwconns:%s", gw);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return TOLK_STORE_DOWN;
    }
    int n = 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const char *conn_s = tolk_reply_str(rep->element[i]);
        const char *sid = tolk_reply_str(rep->element[i + 1]);
        if (!conn_s || !sid)
            continue;
        fn(arg, sid, strtoull(conn_s, NULL, 10));
        n++;
    }
    freeReplyObject(rep);
    return n;
}

int tolk_store_is_speaker(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn)
{
    redisReply *rep =
        tolk_redis_command(r, "HGET tolk:{%s}:members %s/%llu", sid, gw, (unsigned long long)conn);
    if (!rep)
        return TOLK_STORE_DOWN;
    const char *what = tolk_reply_str(rep);
    int speaker = what && strcmp(what, "S") == 0;
    freeReplyObject(rep);
    return speaker;
}

void tolk_store_gateway_forget(tolk_redis_t *r, const char *gw)
{
    s_cmd(r, "DEL tolk:gwconns:%s", gw, "", "");
}

bool tolk_session_id_valid(const char *sid)
{
    /* [a-z]+-[a-z]+-[0-9]{3}(-[0-9]{3})?, at most TOLK_ID_MAX: codes are made
       with both groups of digits; one group is the shape before 0.2, still
       accepted so that a session made by an older control worker during a
       rolling upgrade can be joined */
    size_t n = strlen(sid);
    if (n < 7 || n > TOLK_ID_MAX)
        return false;
    const char *p = sid;
    for (int part = 0; part < 2; part++) {
        const char *start = p;
        while (*p >= 'a' && *p <= 'z')
            p++;
        if (p == start || *p != '-')
            return false;
        p++;
    }
    for (int i = 0; i < 3; i++, p++)
        if (*p < '0' || *p > '9')
            return false;
    if (*p == '-') {
        p++;
        for (int i = 0; i < 3; i++, p++)
            if (*p < '0' || *p > '9')
                return false;
    }
    return *p == 0;
}

bool tolk_language_code_valid(const char *code)
{
    return code && strlen(code) == 2 && code[0] >= 'a' && code[0] <= 'z' && code[1] >= 'a' &&
           code[1] <= 'z';
}

void tolk_store_publish(tolk_gwlink_t *link, char gws[][TOLK_ID_MAX + 1], int n, const char *sid,
                        tolk_audience_t audience, const char *json, int close_code, uint32_t flags)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_PUBLISH);
    tolk_envelope_set_str(env.session, sizeof env.session, sid);
    tolk_envelope_set_str(env.worker, sizeof env.worker, tolk_gwlink_id(link));
    env.audience = (uint32_t)audience;
    env.close_code = (uint32_t)close_code;
    env.flags = flags;
    env.payload = (const uint8_t *)json;
    env.payload_len = json ? strlen(json) : 0;
    env.sent_ns = tolk_now_ns();
    for (int i = 0; i < n; i++)
        if (tolk_gwlink_send(link, gws[i], &env) != 0)
            tolk_warn("publish", sid, "could not reach gateway %s", gws[i]);
}

void tolk_store_publish_ended(tolk_gwlink_t *link, char gws[][TOLK_ID_MAX + 1], int n,
                              const char *sid, const char *reason)
{
    char json[256];
    /* sid and reason are ours: validated id shape and fixed words, no escaping needed */
    snprintf(json, sizeof json,
             "{\"type\":\"sessionEnded\",\"sessionId\":\"%s\",\"reason\":\"%s\","
             "\"timestamp\":%lld}",
             sid, reason, (long long)tolk_now_ms());
    tolk_store_publish(link, gws, n, sid, TOLK_AUDIENCE_ALL, json, 1000, TOLK_FLAG_UNBIND);
}
