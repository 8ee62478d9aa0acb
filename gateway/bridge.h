/*  bridge.h -- the gateway's transport to the workers: the ROUTER, the
    table of workers with their liveness, and routing.

    Workers connect DEALERs, say READY with their kind and beat every
    heartbeat (the zguide's Paranoid Pirate); a worker that stops says
    LEAVE and is answered LEAVE on the same pipe. A message goes to the
    live worker of its kind that wins the rendezvous hash of its key, so
    one session's messages reach one worker in order, and when that worker
    dies or leaves only its sessions move. Everything else a worker sends (SEND,
    BIND, PUBLISH) is handed to gw->deliver: the bridge knows nothing of
    connections.
*/
#ifndef TOLK_GW_BRIDGE_H
#define TOLK_GW_BRIDGE_H

#include "gateway.h"

/* Bind the ROUTER on tcp://<backend_host>:* and watch it on the loop.
   Returns 0, or -1 when it cannot be bound. */
int bridge_start(gateway_t *gw);

/* Stop watching and close the ROUTER (its linger lets queued messages go). */
void bridge_stop(gateway_t *gw);

/* Read every waiting message (10,000 at most per call: the rest on the
   next loop turn). */
void bridge_drain(gateway_t *gw);

/* Once per heartbeat: mark workers not heard from for heartbeat_ms *
   heartbeat_misses dead, beat to the live ones, forget long-dead ones. */
void bridge_beat(gateway_t *gw);

/* Send env to the live worker of kind chosen by the rendezvous hash of key
   (stamping our id and the send time). A failed send marks that worker dead
   and tries the next. Returns 0, or -1 when no worker of that kind is live. */
int bridge_route(gateway_t *gw, tolk_worker_kind_t kind, const char *key, tolk_envelope_t *env);

/* bridge_route that keeps a session on one worker: while the worker named
   in pin is live it gets the message, whatever the hash says; otherwise
   the hash picks one and pin names it from then on. The audio of a
   session goes this way, so a worker that joins (a restarted one) takes
   no stream from another mid-utterance (that stream's open utterance
   would be lost: its final would come after the new worker's); streams
   move only when their worker leaves or dies. */
int bridge_route_pinned(gateway_t *gw, tolk_worker_kind_t kind, const char *key,
                        tolk_envelope_t *env, char pin[TOLK_ID_MAX + 1]);

/* Live workers of kind. */
int bridge_live_count(gateway_t *gw, tolk_worker_kind_t kind);

/* Whether every required kind has a live worker. */
bool bridge_ready(gateway_t *gw);

#endif
