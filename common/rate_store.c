/*  rate_store.c -- sliding windows in zsets; see rate_store.h. */
#include "rate_store.h"
#include "envelope.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define S_CREATE_WINDOW_S   3600 /* createSession is limited per hour */
#define S_JOINFAIL_WINDOW_S 3600 /* failed joins are limited per hour */
/* Key buffers: a longer sub or client hash is cut to fit, the same cut for
   every check and count of it. */
#define S_CREATE_KEY_MAX   (TOLK_ID_MAX + 300)
#define S_JOINFAIL_KEY_MAX 128

/* KEYS: zset. ARGV: now window_ms limit record member. Sliding window:
   returns 0 (counted when record is 1) or the seconds to wait. */
static tolk_redis_script_t s_rate = {
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if n >= tonumber(ARGV[3]) then\n"
    "  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  local wait = math.ceil((tonumber(oldest[2]) + ARGV[2] - ARGV[1]) / 1000)\n"
    "  if wait < 1 then wait = 1 end\n"
    "  return wait\n"
    "end\n"
    "if ARGV[4] == '1' then\n"
    "  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n",
    ""};

/* A zset member unique across processes and calls: "<now>-<pid>-<n>". */
static void s_member(char *member, size_t cap, int64_t now_ms)
{
    static unsigned counter;
    snprintf(member, cap, "%lld-%d-%u", (long long)now_ms, (int)getpid(), ++counter);
}

/* The failed-join key of a client. */
static void s_joinfail_key(char *key, size_t cap, const char *client)
{
    snprintf(key, cap, "tolk:rl:joinfail:%s", client ? client : "unknown");
}

/* May key act again (limit per window_s)? Counts the event when record.
   Returns 0, the seconds to wait, or -1. */
static int s_check(tolk_redis_t *r, const char *key, int limit, int window_s, int64_t now_ms,
                   bool record)
{
    char now_s[24], window_ms[24], limit_s[16], member[48];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    snprintf(window_ms, sizeof window_ms, "%lld", (long long)window_s * 1000);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    s_member(member, sizeof member, now_ms);
    const char *argv[] = {key, now_s, window_ms, limit_s, record ? "1" : "0", member};
    redisReply *rep = tolk_redis_eval(r, &s_rate, 1, 5, argv);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int tolk_rate_create(tolk_redis_t *r, const char *sub, int per_hour, int64_t now_ms)
{
    char key[S_CREATE_KEY_MAX];
    snprintf(key, sizeof key, "tolk:rl:create:%s", sub);
    return s_check(r, key, per_hour, S_CREATE_WINDOW_S, now_ms, true);
}

int tolk_rate_join_check(tolk_redis_t *r, const char *client, int per_hour, int64_t now_ms)
{
    char key[S_JOINFAIL_KEY_MAX];
    s_joinfail_key(key, sizeof key, client);
    return s_check(r, key, per_hour, S_JOINFAIL_WINDOW_S, now_ms, false);
}

void tolk_rate_join_failed(tolk_redis_t *r, const char *client, int64_t now_ms)
{
    char key[S_JOINFAIL_KEY_MAX], now_s[24], member[48];
    s_joinfail_key(key, sizeof key, client);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms);
    s_member(member, sizeof member, now_ms);
    redisReply *rep = tolk_redis_command(r, "ZADD %s %s %s", key, now_s, member);
    if (rep)
        freeReplyObject(rep);
    rep = tolk_redis_command(r, "PEXPIRE %s %lld", key, (long long)S_JOINFAIL_WINDOW_S * 1000);
    if (rep)
        freeReplyObject(rep);
}
