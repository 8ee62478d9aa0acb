/*  gwlink.h -- a worker's links to every live gateway.

    The fixed front binds, the elastic pool connects: each gateway binds a
    ROUTER and registers it in Redis (tolk:gateways, tolk:gw:<id>); a worker
    (or the sweeper) keeps one DEALER per live gateway, says READY with its
    kind, beats every heartbeat, and answers on the DEALER of the gateway
    that asked. Used by every worker kind and the sweeper.
*/
#ifndef TOLK_GWLINK_H
#define TOLK_GWLINK_H

#include "envelope.h"
#include "redis_link.h"

#include <czmq.h>

#define TOLK_GWLINK_MAX 64 /* gateways one worker follows at most */

typedef struct tolk_gwlink_t tolk_gwlink_t;

/* kind: "control", "status", "audio" or "sweeper"; worker_id: unique per
   process instance (it is the DEALER identity the gateways see). */
tolk_gwlink_t *tolk_gwlink_new(const char *kind, const char *worker_id);
void tolk_gwlink_destroy(tolk_gwlink_t **self_p);

/* Follow the registry: connect to new gateways (READY), drop dead ones.
   Call once per heartbeat interval, after tolk_gwlink_beat. Returns the
   number of gateways followed, or -1 when Redis could not be read (the
   current links are then kept). */
int tolk_gwlink_follow(tolk_gwlink_t *self, tolk_redis_t *redis);

/* Send HEARTBEAT to every gateway followed; needs no Redis, so a Redis
   that stalls never makes the gateways think we are dead. */
void tolk_gwlink_beat(tolk_gwlink_t *self);

/* Send LEAVE to every gateway followed (we are stopping) and forget their
   answers so far. Returns how many were told. */
int tolk_gwlink_leave(tolk_gwlink_t *self);

/* Gateway gateway_id answered our LEAVE. */
void tolk_gwlink_left(tolk_gwlink_t *self, const char *gateway_id);

/* Gateways told of our LEAVE that have not answered yet. */
int tolk_gwlink_leaving(tolk_gwlink_t *self);

/* Wait up to timeout_ms for one message from any gateway and for the
   extra poll items (the fds of other event sources, such as libcurl's);
   their revents are set on return, so the caller acts on them whatever
   this returns. At most TOLK_GWLINK_EXTRA_MAX extra items. Returns 1 and
   the frame (caller destroys it) plus the sender's gateway id (valid until
   the next follow), 0 when no message came, -1 when the poll failed
   (EINTR: a signal). */
#define TOLK_GWLINK_EXTRA_MAX 64
int tolk_gwlink_recv_with(tolk_gwlink_t *self, int timeout_ms, zmq_pollitem_t *extra, int n_extra,
                          zframe_t **frame, const char **gateway_id);

/* Send env to one gateway, never blocking. Returns 0, or -1 when that
   gateway is unknown or its queue is full. */
int tolk_gwlink_send(tolk_gwlink_t *self, const char *gateway_id, const tolk_envelope_t *env);

/* Call at the top of every loop turn. When the previous turn was more than
   stall_ms ago (the process was stopped or starved that long), every
   gateway has declared this worker dead by now and routed its work
   elsewhere; what waits in the queues was sent before that and acting on
   it late would undo newer changes. So this drops every message that
   arrives until the queues have been quiet for TOLK_GWLINK_QUIET_MS (at
   most TOLK_GWLINK_DRAIN_MAX_MS), before the caller's next heartbeat tells
   the gateways we are back. Returns the number of messages dropped (0
   when there was no stall). */
#define TOLK_GWLINK_QUIET_MS     100
#define TOLK_GWLINK_DRAIN_MAX_MS 1000
int tolk_gwlink_drop_stale(tolk_gwlink_t *self, int64_t stall_ms);

/* How many gateways are followed now. */
int tolk_gwlink_count(tolk_gwlink_t *self);

/* The id of the worker, as set at creation. */
const char *tolk_gwlink_id(tolk_gwlink_t *self);

#endif
