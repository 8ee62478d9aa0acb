/*  ws.h -- the gateway's lws protocol: HTTP endpoints and WebSocket frames.

    Turns a WebSocket into envelopes and envelopes back into frames. It
    checks what a gateway can check alone -- the connect URL, the speaker's
    token, message sizes, JSON shape, the action name, the per-connection
    control rate -- and leaves everything about sessions to the workers.
*/
#ifndef TOLK_GW_WS_H
#define TOLK_GW_WS_H

#include "gateway.h"

/* The "tolk" protocol's lws callback (per-session data: gw_conn_t). */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);

/* Drain: ask every client in a session to refresh on another gateway. */
void ws_drain_all(gateway_t *gw);

/* Close connections silent for idle_timeout_s with connectionTimeout;
   looks only at the oldest end of the idle list. */
void ws_close_idle(gateway_t *gw);

/* Close every connection with code after what is queued. */
void ws_close_all(gateway_t *gw, int code);

#endif
