/*  outq.h -- per-connection bounded send queues of shared messages.

    A message for many connections is serialised once (gw_msg_t, counted
    references) and queued on each; lws_write happens only from the
    WRITEABLE callback, one message per call. A connection whose queue is
    full is closed: a listener that cannot keep up slows nobody else down.
*/
#ifndef TOLK_GW_OUTQ_H
#define TOLK_GW_OUTQ_H

#include "gateway.h"

/* A message of len bytes (copied) with one reference; NULL when out of memory. */
gw_msg_t *msg_new(const void *data, size_t len, bool binary);

/* Drop one reference (freeing the message with the last) and NULL the pointer. */
void msg_release(gw_msg_t **msg_p);

/* Queue msg (taking a reference) on c and ask for a write. Returns 0, or -1
   when c's queue is full (c is then closed: it cannot keep up). */
int conn_send(gateway_t *gw, gw_conn_t *c, gw_msg_t *msg);

/* Queue a JSON text made here (copied). */
int conn_send_text(gateway_t *gw, gw_conn_t *c, const char *json);

/* Send an error in the SPEC's form; close with 4000+status when close. */
void conn_error(gateway_t *gw, gw_conn_t *c, int status, const char *code, const char *message,
                const char *action, int retry_after, bool close);

/* Close after everything queued is written. */
void conn_close_after(gw_conn_t *c, int code);

/* Write the next queued message; returns -1 when the connection must close. */
int conn_write_next(gateway_t *gw, gw_conn_t *c);

/* Drop every queued message and give the ring back. */
void conn_clear_queue(gw_conn_t *c);

#endif
