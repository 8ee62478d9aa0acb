/*  deliver.h -- what workers send back, delivered to the gateway's
    connections: BIND puts a connection in a session, SEND queues a message
    on one connection, PUBLISH fans one message out to a session's local
    members (serialised once, shared by every queue).

    The bridge hands these envelopes over through gw->deliver, so the
    delivery sits above the transport and calls it (to tell a worker about
    a connection that is gone), never the other way round.
*/
#ifndef TOLK_GW_DELIVER_H
#define TOLK_GW_DELIVER_H

#include "gateway.h"

/* Act on one SEND, BIND or PUBLISH from a worker; other kinds are ignored. */
void deliver_envelope(gateway_t *gw, const tolk_envelope_t *env);

#endif
