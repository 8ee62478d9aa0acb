/*  registry_store.h -- the registry of live processes in Redis: which
    gateways exist and where their ROUTERs are, and where every process's
    status feed is. The only place the registry's key names are formatted:

        tolk:gateways    set     gateway ids (an id stays until the sweeper removes it)
        tolk:gw:<id>     string  that gateway's ROUTER endpoint, with a TTL
        tolk:feeds       set     status feed ids
        tolk:feed:<id>   string  that feed's PUB endpoint, with a TTL

    A key with a TTL is what says "alive": its owner renews it every beat,
    and it expires when the owner stops. The sets only make the ids findable
    without a SCAN.

    Two kinds of caller:
    - workers, the sweeper and tolk-monitor read (and the sweeper prunes)
      synchronously through their redis_link (tolk_redis_t *), each call a
      bounded number of round trips, each bounded by redis_timeout_ms;
    - the gateway writes asynchronously through its redis_async link
      (tolk_redis_async_t *) and never waits: the *_async calls send and
      return, and done(arg, rc) comes on the loop when every reply is in
      (rc 0: all applied; -1: an error reply, or no reply because the link
      dropped). done is never called when the call returned -1.

    The feed's synchronous registration takes a plain redisContext, as
    statfeed.h's register does (one pipelined round trip on the caller's
    context).
*/
#ifndef TOLK_REGISTRY_STORE_H
#define TOLK_REGISTRY_STORE_H

#include "redis_async.h"
#include "redis_link.h"

#include <hiredis/hiredis.h>

/* Longest id kept: gateway ids are at most 64 bytes (TOLK_ID_MAX), feed ids
   at most 127 (TOLK_STATFEED_ID_MAX). A longer registered id is skipped. */
#define TOLK_REGISTRY_ID_MAX 127
/* Longest endpoint kept; a longer registered one is skipped. */
#define TOLK_REGISTRY_ENDPOINT_MAX 255

/* One registered process: its id and the endpoint it registered. */
typedef struct {
    char id[TOLK_REGISTRY_ID_MAX + 1];
    char endpoint[TOLK_REGISTRY_ENDPOINT_MAX + 1];
} tolk_registry_entry_t;

/* An id, without its endpoint. */
typedef struct {
    char id[TOLK_REGISTRY_ID_MAX + 1];
} tolk_registry_id_t;

/* What an asynchronous registry write reports when every reply is in:
   rc 0 when all were applied, -1 otherwise. */
typedef void(tolk_registry_done_fn)(void *arg, int rc);

/* ---------------------------------------------------- gateways, readers */

/* The live gateways: every id in tolk:gateways whose tolk:gw:<id> is set,
   with that endpoint, into out (at most cap, in no particular order). Two
   round trips (SMEMBERS, then one MGET). Returns how many were written, or
   -1 when Redis could not be read (out is then untouched). */
int tolk_registry_gateways(tolk_redis_t *redis, tolk_registry_entry_t *out, int cap);

/* Every id in tolk:gateways, live or not (a gateway that died stays until
   the sweeper forgets it), into out (at most cap). One round trip. Returns
   how many were written, or -1 when Redis could not be read. */
int tolk_registry_gateway_ids(tolk_redis_t *redis, tolk_registry_id_t *out, int cap);

/* Whether gateway id is registered now (tolk:gw:<id> exists): 1 yes, 0 no,
   -1 when Redis could not be read (the caller must not take it for dead). */
int tolk_registry_gateway_alive(tolk_redis_t *redis, const char *id);

/* Remove id from tolk:gateways (after cleaning up behind a dead gateway).
   Returns 0, or -1 when Redis could not be written. */
int tolk_registry_gateway_forget(tolk_redis_t *redis, const char *id);

/* ---------------------------------------------------- gateways, writers */

/* The gateway's beat: SET tolk:gw:<id> <endpoint> PX ttl_ms, then
   SADD tolk:gateways <id>. Returns 0 (done follows), or -1 when nothing was
   sent (Redis down, or the link's queue full). */
int tolk_registry_gateway_register_async(tolk_redis_async_t *ra, const char *id,
                                         const char *endpoint, int ttl_ms,
                                         tolk_registry_done_fn *done, void *arg);

/* A clean exit: DEL tolk:gw:<id>, so workers drop their link at their next
   tick instead of when the key expires. The id stays in tolk:gateways:
   the sweeper removes it after cleaning up what the gateway left. Returns
   0 (done follows) or -1. */
int tolk_registry_gateway_unregister_async(tolk_redis_async_t *ra, const char *id,
                                           tolk_registry_done_fn *done, void *arg);

/* ------------------------------------------------------------- feeds */

/* Every registered status feed with its endpoint, into out (at most cap).
   Ids whose tolk:feed:<id> expired are removed from tolk:feeds (SREM) and
   not returned. *over, unless NULL, gets the number of registered ids left
   out because out was full. Three round trips at most (SMEMBERS, MGET,
   SREM). Returns how many were written, or -1 when Redis could not be read. */
int tolk_registry_feeds(tolk_redis_t *redis, tolk_registry_entry_t *out, int cap, int *over);

/* Register a feed for ttl_s seconds: SET tolk:feed:<id> <endpoint> EX ttl_s
   and SADD tolk:feeds <id>, pipelined in one round trip on redis. Returns 0,
   or -1 for a bad argument (nothing sent), an error reply or a broken
   connection (redis->err then says so, and the caller reconnects). */
int tolk_registry_feed_register(redisContext *redis, const char *id, const char *endpoint,
                                int ttl_s);

/* Remove a feed (DEL + SREM, one round trip) at a clean exit; errors are
   ignored: the TTL removes it anyway. */
void tolk_registry_feed_unregister(redisContext *redis, const char *id);

/* What an asynchronous feed read hands back on the loop: the registered
   feeds (borrowed for the call) and their count, or n = -1 when Redis
   could not be read. */
typedef void(tolk_registry_feeds_fn)(void *arg, const tolk_registry_entry_t *feeds, int n);

/* The gateway's read of every registered feed, at most cap (1..1024), on
   its asynchronous link: one EVAL (SMEMBERS, then GET of each id's key,
   inside Redis; at most 4096 ids looked at), so one round trip and no
   wait. Expired ids are skipped, not removed (the synchronous readers
   prune). Returns 0 (fn follows, exactly once) or -1 (nothing sent). */
int tolk_registry_feeds_async(tolk_redis_async_t *ra, int cap, tolk_registry_feeds_fn *fn,
                              void *arg);

/* The same two writes on the gateway's asynchronous link. Return 0 (done
   follows) or -1 (nothing sent). */
int tolk_registry_feed_register_async(tolk_redis_async_t *ra, const char *id, const char *endpoint,
                                      int ttl_s, tolk_registry_done_fn *done, void *arg);
int tolk_registry_feed_unregister_async(tolk_redis_async_t *ra, const char *id,
                                        tolk_registry_done_fn *done, void *arg);

#endif
