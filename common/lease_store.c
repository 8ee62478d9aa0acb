/*  lease_store.c -- the sweeper's lease; see lease_store.h. */
#include "lease_store.h"

#include <stdio.h>

#define S_LEASE_KEY "tolk:sweeper:lease"

/* KEYS: lease. ARGV: me, ttl_ms. Keep the lease if ours, take it if free. */
static tolk_redis_script_t s_hold = {
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return 0\n",
    ""};

/* KEYS: lease. ARGV: me. Delete the lease only if ours. */
static tolk_redis_script_t s_release = {
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n",
    ""};

int tolk_lease_hold(tolk_redis_t *redis, const char *id, int ttl_ms)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    const char *argv[] = {S_LEASE_KEY, id, ttl};
    redisReply *r = tolk_redis_eval(redis, &s_hold, 1, 2, argv);
    if (!r)
        return -1;
    int held = tolk_reply_int(r, 0) == 1;
    freeReplyObject(r);
    return held;
}

void tolk_lease_release(tolk_redis_t *redis, const char *id)
{
    const char *argv[] = {S_LEASE_KEY, id};
    redisReply *r = tolk_redis_eval(redis, &s_release, 1, 1, argv);
    if (r)
        freeReplyObject(r);
}
