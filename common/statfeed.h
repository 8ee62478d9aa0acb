/*  statfeed.h -- the status feed every tolk process publishes once a second.

    Each process owns one statfeed: a ZeroMQ PUB socket bound on an
    ephemeral port plus a small bounded table of named counters. Once a
    second the process calls tolk_statfeed_publish, which sends two frames:

        "tolk.status"
        {"kind":"gateway","id":"gw-1","pid":123,"timestamp":<wall ms>,
         "uptime_s":42,"counters":{"connections":10,"messages_in":5000,...},
         "histograms":{"chunk_processing_seconds":
                       {"le":[3,9,...],"count":12,"sum":0.4}}}

    "histograms" (present when the process has any) carries a few latency
    histograms with prom_hist.h's fixed bounds: "le" the cumulative count
    at each bound in order, "count" every sample (the +Inf bucket), "sum"
    their seconds; running totals like the counters.

    Counters always carry their running totals, never per-interval deltas,
    so a subscriber that misses a message loses nothing: tolk-monitor (and
    /metrics) compute rates from two successive totals. The feed registers
    itself in Redis (tolk:feed:<id> = endpoint with a TTL, id in the set
    tolk:feeds, through registry_store.h) so tolk-monitor can find every
    live process.

    Counter names every process uses where they apply:
        connections   gauge   open client connections (gateway) or peers
        sessions      gauge   sessions this process currently holds
        messages_in   counter messages received (frames, envelopes)
        messages_out  counter messages sent
        errors        counter failures worth an operator's attention
    plus process-specific ones, for example:
        gateway       bytes_in, bytes_out, auth_failures, rate_limited,
                      slow_consumers_closed, workers_live
        control       joins, join_rejected, broadcasts
        status        status_pushes
        audio         audio_bytes, captions_partial, captions_final,
                      asr_restarts, mt_requests, mt_errors
        sweeper       sweeps, idle_closed, orphans_removed, sessions_expired
    The feed itself adds "dropped_counters" (see below) when non-zero.
    Which names are gauges and which counters is said in one place, for
    /metrics: statreport.c's tolk_statreport_is_gauge.

    Histograms (tolk_statfeed_set_hist):
        audio         chunk_processing_seconds, caption_latency_seconds
        control       control_latency_seconds

    Bounds: at most TOLK_STATFEED_MAX_COUNTERS names, each at most
    TOLK_STATFEED_NAME_MAX bytes of [A-Za-z0-9_.-]. An update that would
    need a further name, or names an invalid one, is ignored and counted in
    "dropped_counters", so a bug can never grow the table or the message.
    At most TOLK_STATFEED_MAX_HISTS histograms, under the same name rules.

    Sends never block: the PUB socket has a small send high-water mark and
    every send uses ZMQ_DONTWAIT; a feed nobody listens to simply drops.
    A statfeed is used from one thread only (ZeroMQ sockets are not thread
    safe). Creating it initialises CZMQ's zsys layer, which installs CZMQ's
    SIGINT/SIGTERM handlers unless the process disabled them first
    (zsys_handler_set (NULL) or ZSYS_SIGHANDLER=false).
*/
#ifndef TOLK_STATFEED_H
#define TOLK_STATFEED_H

#include <stdint.h>

#include "prom_hist.h"
#include "redis_link.h"
#include "registry_store.h"

#include <hiredis/hiredis.h>

/* Most distinct counter names one feed keeps. */
#define TOLK_STATFEED_MAX_COUNTERS 64
/* Longest counter name in bytes, without the NUL. */
#define TOLK_STATFEED_NAME_MAX 48
/* Longest kind and id in bytes, without the NUL. */
#define TOLK_STATFEED_KIND_MAX 31
#define TOLK_STATFEED_ID_MAX   127
/* Most histograms one feed carries. */
#define TOLK_STATFEED_MAX_HISTS 4
/* The topic frame every status message starts with. */
#define TOLK_STATFEED_TOPIC "tolk.status"

typedef struct _tolk_statfeed_t tolk_statfeed_t;

/* Bind a PUB socket on endpoint (a "*" port binds an ephemeral one) for the
   process of the given kind and unique id. Returns NULL when an argument is
   missing or too long or the bind fails. uptime_s counts from here, so
   create the feed early in main(). */
tolk_statfeed_t *tolk_statfeed_new(const char *endpoint, const char *kind, const char *id);

/* Destroy the feed and null the caller's pointer; safe on NULL or a
   pointer already destroyed. */
void tolk_statfeed_destroy(tolk_statfeed_t **self_p);

/* The endpoint actually bound, with the resolved port, to connect to and to
   register. Bind a concrete address: a wildcard bind reports 0.0.0.0. */
const char *tolk_statfeed_endpoint(tolk_statfeed_t *self);

/* Set a gauge (connections, sessions) to value. */
void tolk_statfeed_set(tolk_statfeed_t *self, const char *name, int64_t value);

/* Add delta to a counter (messages_in, errors); a new name starts at 0. */
void tolk_statfeed_add(tolk_statfeed_t *self, const char *name, int64_t delta);

/* Publish histogram name as hist stands now (copied; the caller keeps
   observing into its own). A further name past TOLK_STATFEED_MAX_HISTS or
   an invalid one is ignored and counted in "dropped_counters". */
void tolk_statfeed_set_hist(tolk_statfeed_t *self, const char *name, const tolk_prom_hist_t *hist);

/* Send one status message, never blocking. Returns 0, or -1 if ZeroMQ
   refused the message (nothing to retry: the next second sends again). */
int tolk_statfeed_publish(tolk_statfeed_t *self);

/* Announce the feed in Redis for ttl_s seconds in one pipelined round trip:
   SET tolk:feed:<id> <endpoint> EX ttl_s, SADD tolk:feeds <id>. Call it
   every second with publish; a ttl of 3 to 5 s lets a dead process vanish
   quickly. Returns 0, or -1 on any error (redis->err tells whether the
   connection itself broke, so the caller can reconnect). */
int tolk_statfeed_register(tolk_statfeed_t *self, redisContext *redis, int ttl_s);

/* Remove the feed from Redis (DEL + SREM) on a clean exit; errors are
   ignored because the TTL removes it anyway. */
void tolk_statfeed_unregister(tolk_statfeed_t *self, redisContext *redis);

/* The gateway's register and unregister: the same writes on its
   asynchronous link, so its loop never waits on Redis. done(arg, rc)
   follows when the replies are in. Return 0, or -1 when nothing was sent
   (a bad argument, Redis down, or the link's queue full). */
int tolk_statfeed_register_async(tolk_statfeed_t *self, tolk_redis_async_t *ra, int ttl_s,
                                 tolk_registry_done_fn *done, void *arg);
int tolk_statfeed_unregister_async(tolk_statfeed_t *self, tolk_redis_async_t *ra,
                                   tolk_registry_done_fn *done, void *arg);

/* What every process does once per report: publish the counters, then
   renew the registration (5 s) when Redis is reachable. */
void tolk_statfeed_report(tolk_statfeed_t *self, tolk_redis_t *redis);

/* What every process does at a clean exit: unregister when Redis is
   reachable, then destroy. NULLs *self_p; safe with NULLs. */
void tolk_statfeed_retire(tolk_statfeed_t **self_p, tolk_redis_t *redis);

#endif
