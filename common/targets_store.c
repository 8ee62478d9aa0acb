/*  targets_store.c -- tolk:targets:<source>; see targets_store.h. */
#include "targets_store.h"

#include <string.h>

int tolk_targets_set(tolk_redis_t *redis, const char *source, const char *targets, int ttl_s)
{
    redisReply *r =
        tolk_redis_command(redis, "SET tolk:targets:%s %s EX %d", source, targets, ttl_s);
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r)
        freeReplyObject(r);
    return rc;
}

int tolk_targets_get(tolk_redis_t *redis, const char *source, char *out, size_t out_cap)
{
    out[0] = 0;
    redisReply *r = tolk_redis_command(redis, "GET tolk:targets:%s", source);
    if (!r)
        return -1;
    const char *t = tolk_reply_str(r);
    int rc = t && strlen(t) < out_cap;
    if (rc)
        memcpy(out, t, strlen(t) + 1);
    freeReplyObject(r);
    return rc;
}
