/*  redis_async.h -- an asynchronous hiredis connection on a libev loop that
    heals itself and never lets work pile up behind a stalled Redis.

    Why: a process whose loop must never wait (the gateway) cannot use the
    synchronous link of redis_link.h, whose every command can hold the loop
    for up to redis_timeout_ms. This link sends a command and returns; the
    reply comes later as a callback on the same loop (hiredis's
    asynchronous API and its libev adapter).

    What it adds to hiredis, which does none of it by itself:
    - reconnects after a disconnect or a failed connect, waiting 50 ms after
      the first failure and doubling up to 1 s;
    - bounds the connect itself by timeout_ms (hiredis 0.14 has no connect
      timeout for its asynchronous contexts);
    - counts Redis as down (tolk_redis_async_up is false) while the oldest
      reply is more than timeout_ms late, and drops the connection (then
      reconnects) once it is TOLK_REDIS_ASYNC_STALL_FACTOR times late, so a
      Redis that never answers is not waited on for ever;
    - refuses a command while disconnected or while
      TOLK_REDIS_ASYNC_MAX_PENDING replies are outstanding, so a stall
      never grows a queue: callers retry on their next round.

    The host is resolved once, in tolk_redis_async_new (before the loop
    runs): a reconnect never resolves a name on the loop.
*/
#ifndef TOLK_REDIS_ASYNC_H
#define TOLK_REDIS_ASYNC_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>

struct ev_loop; /* libev's; callers that only hold the link need not include ev.h */

/* Most commands whose reply has not come yet. */
#define TOLK_REDIS_ASYNC_MAX_PENDING 64
/* A reply this many times timeout_ms late drops the connection. */
#define TOLK_REDIS_ASYNC_STALL_FACTOR 10

typedef struct tolk_redis_async_t tolk_redis_async_t;

/* What a command's sender gets back, on the loop: the reply (borrowed, freed
   by hiredis after the call), or NULL when none will come (the connection
   was dropped or the link destroyed). */
typedef void(tolk_redis_async_fn)(void *arg, redisReply *reply);

/* A link to host:port on loop. Connects at once (without waiting) and
   again after every failure. Returns NULL when the host cannot be resolved
   or memory runs out. */
tolk_redis_async_t *tolk_redis_async_new(struct ev_loop *loop, const char *host, int port,
                                         int timeout_ms);

/* Drop the connection (every outstanding callback gets NULL first), stop
   the link's watchers and free it; nulls the caller's pointer. Call it
   before the loop is destroyed. Safe on NULL. */
void tolk_redis_async_destroy(tolk_redis_async_t **self_p);

/* Send one command (printf-style as redisCommand). fn (may be NULL) gets
   the reply later, never from inside this call. Returns 0, or -1 when it
   was not sent: not connected, or too many replies outstanding. */
int tolk_redis_async_command(tolk_redis_async_t *self, tolk_redis_async_fn *fn, void *arg,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same with a va_list, for wrappers that take a format themselves. */
int tolk_redis_async_vcommand(tolk_redis_async_t *self, tolk_redis_async_fn *fn, void *arg,
                              const char *fmt, va_list ap);

/* True while connected and no reply is more than timeout_ms late. */
bool tolk_redis_async_up(tolk_redis_async_t *self);

/* Commands sent whose reply has not come. */
int tolk_redis_async_pending(tolk_redis_async_t *self);

/* Run the loop until every outstanding reply has come or timeout_ms has
   passed, whichever is first, for a bounded best-effort write at exit.
   Returns the replies still outstanding (0: all came). Only call it
   outside the loop (after ev_run returned). */
int tolk_redis_async_flush(tolk_redis_async_t *self, int timeout_ms);

#endif
