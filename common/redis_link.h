/*  redis_link.h -- a synchronous hiredis connection that heals itself.

    hiredis does not reconnect by itself. Every tolk process keeps one
    redis_link and calls tolk_redis_command; after a failure the link
    reconnects with backoff at the next call, so a Redis restart is ridden
    out without special code at every call site. A reconnected link is
    probed with a 100 ms PING before it is used, so a Redis that accepts
    connections but does not answer (CLIENT PAUSE, a stall) blocks the
    caller for one command timeout when it begins and for at most 100 ms
    per reconnect attempt after that. Lua scripts run through
    EVALSHA with a fallback to EVAL when Redis has forgotten them.
*/
#ifndef TOLK_REDIS_LINK_H
#define TOLK_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tolk_redis_t tolk_redis_t;

/* A Lua script and its SHA1, computed once. */
typedef struct {
    const char *source; /* the script text */
    char sha[41];       /* its SHA1 in hex, filled by tolk_redis_script_init */
} tolk_redis_script_t;

/* Connect (lazily: a failure here is retried by later calls). */
tolk_redis_t *tolk_redis_new(const char *host, int port, int timeout_ms);
void tolk_redis_destroy(tolk_redis_t **self_p);

/* The current context, connecting first if needed; NULL while Redis is down. */
redisContext *tolk_redis_context(tolk_redis_t *self);

/* True after the last command succeeded at the transport level. */
bool tolk_redis_up(tolk_redis_t *self);

/* Run one command (printf-style as redisCommand). Returns the reply (free
   with freeReplyObject) or NULL on a transport error, after which the link
   is dropped and reconnects on a later call. */
redisReply *tolk_redis_command(tolk_redis_t *self, const char *fmt, ...);

/* Run one command given as argv. */
redisReply *tolk_redis_argv(tolk_redis_t *self, int argc, const char **argv, const size_t *lens);

/* Compute the script's SHA1 (once per process). */
void tolk_redis_script_init(tolk_redis_script_t *script);

/* EVALSHA script with keys and args; on NOSCRIPT, EVAL it. */
redisReply *tolk_redis_eval(tolk_redis_t *self, tolk_redis_script_t *script, int nkeys, int nargs,
                            const char **keys_and_args);

/* Helpers to read replies without repeating type checks. */
long long tolk_reply_int(const redisReply *r, long long fallback);
const char *tolk_reply_str(const redisReply *r); /* NULL unless string/status */

#endif
