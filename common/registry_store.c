/*  registry_store.c -- the registry's keys, read and written; see
    registry_store.h.

    A registry read is SMEMBERS of the set, then one MGET of the ids' keys,
    so following every gateway costs two round trips however many there
    are. An asynchronous write is a small batch of commands whose replies
    are counted down before the caller hears back once.
*/
#include "registry_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_GATEWAYS "tolk:gateways"
#define S_GW       "tolk:gw:"
#define S_FEEDS    "tolk:feeds"
#define S_FEED     "tolk:feed:"
/* Most ids one read looks at: a registry polluted beyond this is read in
   part rather than grow a command without bound. */
#define S_SCAN_MAX 4096
/* Room for a key: the longest prefix plus the longest id. */
#define S_KEY_MAX (sizeof S_FEED + TOLK_REGISTRY_ID_MAX + 1)

/* ------------------------------------------------------------ reading */

/* The ids of a set that fit an entry, as pointers into reply (which the
   caller frees); the count, or -1 when Redis could not be read. */
static int s_members(tolk_redis_t *redis, const char *set, redisReply **reply_p,
                     const char ***ids_p)
{
    *reply_p = NULL;
    *ids_p = NULL;
    redisReply *r = tolk_redis_command(redis, "SMEMBERS %s", set);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    size_t n = r->elements < S_SCAN_MAX ? r->elements : S_SCAN_MAX;
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids) {
        freeReplyObject(r);
        return -1;
    }
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        /* an id that would not fit an entry, or holds a NUL, is not ours */
        if (e->type == REDIS_REPLY_STRING && e->len <= TOLK_REGISTRY_ID_MAX &&
            strlen(e->str) == e->len)
            ids[count++] = e->str;
    }
    *reply_p = r;
    *ids_p = ids;
    return count;
}

/* MGET prefix+id for every id: the reply (an array of as many values), or
   NULL when Redis could not be read. */
static redisReply *s_mget(tolk_redis_t *redis, const char *prefix, const char **ids, int n)
{
    const char **argv = calloc((size_t)n + 1, sizeof *argv);
    size_t *lens = calloc((size_t)n + 1, sizeof *lens);
    char(*keys)[S_KEY_MAX] = calloc((size_t)n ? (size_t)n : 1, sizeof *keys);
    redisReply *r = NULL;
    if (argv && lens && keys) {
        argv[0] = "MGET";
        lens[0] = 4;
        for (int i = 0; i < n; i++) {
            snprintf(keys[i], sizeof keys[i], "%s%s", prefix, ids[i]);
            argv[i + 1] = keys[i];
            lens[i + 1] = strlen(keys[i]);
        }
        r = tolk_redis_argv(redis, n + 1, argv, lens);
        if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n)) {
            freeReplyObject(r);
            r = NULL;
        }
    }
    free(argv);
    free(lens);
    free(keys);
    return r;
}

/* Copy id and a value of an MGET into an entry; false when the value is
   missing or too long for one. */
static bool s_entry(tolk_registry_entry_t *e, const char *id, const redisReply *value)
{
    if (!value || value->type != REDIS_REPLY_STRING || value->len > TOLK_REGISTRY_ENDPOINT_MAX ||
        strlen(value->str) != value->len)
        return false;
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->endpoint, sizeof e->endpoint, "%s", value->str);
    return true;
}

int tolk_registry_gateways(tolk_redis_t *redis, tolk_registry_entry_t *out, int cap)
{
    redisReply *members;
    const char **ids;
    int n = s_members(redis, S_GATEWAYS, &members, &ids);
    if (n < 0)
        return -1;
    int count = 0;
    redisReply *values = n ? s_mget(redis, S_GW, ids, n) : NULL;
    if (n && !values)
        count = -1;
    for (int i = 0; values && i < n && count < cap; i++)
        count += s_entry(&out[count], ids[i], values->element[i]);
    if (values)
        freeReplyObject(values);
    free(ids);
    freeReplyObject(members);
    return count;
}

int tolk_registry_gateway_ids(tolk_redis_t *redis, tolk_registry_id_t *out, int cap)
{
    redisReply *members;
    const char **ids;
    int n = s_members(redis, S_GATEWAYS, &members, &ids);
    if (n < 0)
        return -1;
    int count = 0;
    for (int i = 0; i < n && count < cap; i++)
        snprintf(out[count++].id, sizeof out->id, "%s", ids[i]);
    free(ids);
    freeReplyObject(members);
    return count;
}

int tolk_registry_gateway_alive(tolk_redis_t *redis, const char *id)
{
    redisReply *r = tolk_redis_command(redis, "EXISTS " S_GW "%s", id);
    int alive = r && r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : -1;
    if (r)
        freeReplyObject(r);
    return alive;
}

int tolk_registry_gateway_forget(tolk_redis_t *redis, const char *id)
{
    redisReply *r = tolk_redis_command(redis, "SREM " S_GATEWAYS " %s", id);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* SREM every id of ids[0..n) from set, one command; errors are left to the
   next read, which finds the same ids again. */
static void s_srem(tolk_redis_t *redis, const char *set, const char **ids, int n)
{
    const char **argv = calloc((size_t)n + 2, sizeof *argv);
    size_t *lens = calloc((size_t)n + 2, sizeof *lens);
    if (argv && lens) {
        argv[0] = "SREM";
        argv[1] = set;
        for (int i = 0; i < n + 2; i++) {
            if (i >= 2)
                argv[i] = ids[i - 2];
            lens[i] = strlen(argv[i]);
        }
        redisReply *r = tolk_redis_argv(redis, n + 2, argv, lens);
        if (r)
            freeReplyObject(r);
    }
    free(argv);
    free(lens);
}

int tolk_registry_feeds(tolk_redis_t *redis, tolk_registry_entry_t *out, int cap, int *over)
{
    if (over)
        *over = 0;
    redisReply *members;
    const char **ids;
    int n = s_members(redis, S_FEEDS, &members, &ids);
    if (n < 0)
        return -1;
    int count = 0, expired = 0;
    redisReply *values = n ? s_mget(redis, S_FEED, ids, n) : NULL;
    if (n && !values)
        count = -1;
    for (int i = 0; values && i < n; i++) {
        const redisReply *v = values->element[i];
        if (v->type == REDIS_REPLY_NIL)
            ids[expired++] = ids[i]; /* its owner stopped: forget the id below */
        else if (count == cap) {
            if (over)
                (*over)++;
        } else
            count += s_entry(&out[count], ids[i], v);
    }
    if (expired)
        s_srem(redis, S_FEEDS, ids, expired);
    if (values)
        freeReplyObject(values);
    free(ids);
    freeReplyObject(members);
    return count;
}

/* ------------------------------------------------ feeds, synchronously */

/* Read n pipelined replies, freeing them; 0 when every one arrived and none
   was a Redis error. Always reads all n so the context stays in step. */
static int s_drain(redisContext *redis, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(redis, (void **)&reply) != REDIS_OK || !reply)
            return -1; /* the context is broken now; nothing more to read */
        if (reply->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject(reply);
    }
    return rc;
}

int tolk_registry_feed_register(redisContext *redis, const char *id, const char *endpoint,
                                int ttl_s)
{
    if (!redis || redis->err || !id || !endpoint || ttl_s <= 0)
        return -1;
    if (redisAppendCommand(redis, "SET " S_FEED "%s %s EX %d", id, endpoint, ttl_s) != REDIS_OK)
        return -1;
    if (redisAppendCommand(redis, "SADD " S_FEEDS " %s", id) != REDIS_OK) {
        s_drain(redis, 1);
        return -1;
    }
    return s_drain(redis, 2);
}

void tolk_registry_feed_unregister(redisContext *redis, const char *id)
{
    if (!redis || redis->err || !id)
        return;
    if (redisAppendCommand(redis, "DEL " S_FEED "%s", id) != REDIS_OK)
        return;
    if (redisAppendCommand(redis, "SREM " S_FEEDS " %s", id) != REDIS_OK) {
        s_drain(redis, 1);
        return;
    }
    s_drain(redis, 2);
}

/* ------------------------------------------------------- asynchronously */

/* One asynchronous write of several commands: the caller hears once, when
   the last reply is in. */
typedef struct {
    tolk_registry_done_fn *done; /* the caller's callback, or NULL */
    void *arg;                   /* its argument */
    int left;                    /* replies still to come */
    bool failed;                 /* one reply was an error, or none came */
} s_batch_t;

static void s_batch_reply(void *arg, redisReply *reply)
{
    s_batch_t *b = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        b->failed = true;
    if (--b->left > 0)
        return;
    if (b->done)
        b->done(b->arg, b->failed ? -1 : 0);
    free(b);
}

static s_batch_t *s_batch_new(tolk_registry_done_fn *done, void *arg)
{
    s_batch_t *b = calloc(1, sizeof *b);
    if (b) {
        b->done = done;
        b->arg = arg;
    }
    return b;
}

/* Send one more command of the batch *b_p (printf-style). The first one
   that cannot go ends the batch: when nothing went, the batch is freed;
   otherwise the replies already on their way finish it as a failure.
   Either way *b_p is NULLed, so later calls do nothing. Returns 0 when the
   command went, else -1. */
static int s_batch_add(s_batch_t **b_p, tolk_redis_async_t *ra, const char *fmt, ...)
{
    s_batch_t *b = *b_p;
    if (!b)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = tolk_redis_async_vcommand(ra, s_batch_reply, b, fmt, ap);
    va_end(ap);
    if (rc == 0) {
        b->left++; /* replies come from the loop, never during the send */
        return 0;
    }
    if (b->left == 0)
        free(b);
    else
        b->failed = true;
    *b_p = NULL;
    return -1;
}

int tolk_registry_gateway_register_async(tolk_redis_async_t *ra, const char *id,
                                         const char *endpoint, int ttl_ms,
                                         tolk_registry_done_fn *done, void *arg)
{
    s_batch_t *b = s_batch_new(done, arg);
    int rc = s_batch_add(&b, ra, "SET " S_GW "%s %s PX %d", id, endpoint, ttl_ms);
    s_batch_add(&b, ra, "SADD " S_GATEWAYS " %s", id);
    return rc;
}

int tolk_registry_gateway_unregister_async(tolk_redis_async_t *ra, const char *id,
                                           tolk_registry_done_fn *done, void *arg)
{
    s_batch_t *b = s_batch_new(done, arg);
    return s_batch_add(&b, ra, "DEL " S_GW "%s", id);
}

int tolk_registry_feed_register_async(tolk_redis_async_t *ra, const char *id, const char *endpoint,
                                      int ttl_s, tolk_registry_done_fn *done, void *arg)
{
    s_batch_t *b = s_batch_new(done, arg);
    int rc = s_batch_add(&b, ra, "SET " S_FEED "%s %s EX %d", id, endpoint, ttl_s);
    s_batch_add(&b, ra, "SADD " S_FEEDS " %s", id);
    return rc;
}

int tolk_registry_feed_unregister_async(tolk_redis_async_t *ra, const char *id,
                                        tolk_registry_done_fn *done, void *arg)
{
    s_batch_t *b = s_batch_new(done, arg);
    int rc = s_batch_add(&b, ra, "DEL " S_FEED "%s", id);
    s_batch_add(&b, ra, "SREM " S_FEEDS " %s", id);
    return rc;
}

/* The feed read inside Redis: KEYS[1] the set, ARGV[1] the key prefix,
   ARGV[2] the most entries, ARGV[3] the most ids looked at; returns a flat
   array id, endpoint, id, endpoint, ... of the live ones. */
static const char s_feeds_lua[] =
    "local out, seen = {}, 0 "
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  seen = seen + 1 "
    "  if seen > tonumber(ARGV[3]) or #out >= 2 * tonumber(ARGV[2]) then break end "
    "  local e = redis.call('GET', ARGV[1] .. id) "
    "  if e then out[#out + 1] = id; out[#out + 1] = e end "
    "end "
    "return out";

/* An asynchronous feed read on its way. */
typedef struct {
    tolk_registry_feeds_fn *fn; /* the caller's callback */
    void *arg;                  /* its argument */
    int cap;                    /* most entries asked for */
} s_feeds_read_t;

static void s_feeds_reply(void *arg, redisReply *reply)
{
    s_feeds_read_t *rd = arg;
    int n = -1;
    tolk_registry_entry_t *out = NULL;
    if (reply && reply->type == REDIS_REPLY_ARRAY &&
        (out = calloc((size_t)rd->cap + 1, sizeof *out)) != NULL) {
        n = 0;
        for (size_t i = 0; i + 1 < reply->elements && n < rd->cap; i += 2) {
            const redisReply *id = reply->element[i];
            if (id->type == REDIS_REPLY_STRING && id->len > 0 && id->len <= TOLK_REGISTRY_ID_MAX &&
                strlen(id->str) == id->len)
                n += s_entry(&out[n], id->str, reply->element[i + 1]);
        }
    }
    rd->fn(rd->arg, out, n);
    free(out);
    free(rd);
}

int tolk_registry_feeds_async(tolk_redis_async_t *ra, int cap, tolk_registry_feeds_fn *fn,
                              void *arg)
{
    if (!ra || !fn || cap < 1 || cap > 1024)
        return -1;
    s_feeds_read_t *rd = calloc(1, sizeof *rd);
    if (!rd)
        return -1;
    rd->fn = fn;
    rd->arg = arg;
    rd->cap = cap;
    if (tolk_redis_async_command(ra, s_feeds_reply, rd, "EVAL %s 1 " S_FEEDS " " S_FEED " %d %d",
                                 s_feeds_lua, cap, S_SCAN_MAX) != 0) {
        free(rd);
        return -1;
    }
    return 0;
}
