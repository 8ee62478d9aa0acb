/*  wsconn.h -- a non-blocking WebSocket client connection for a worker's loop.

    The audio worker keeps a WebSocket to a recognition server (vosk-server)
    per stream, on the same single-threaded loop that carries the gateways
    and APy: nothing here may wait. The connection is a state machine driven
    by its one fd, which the loop polls (tolk_wsconn_pollitem) and hands
    back with what poll saw (tolk_wsconn_run): the TCP connect, the HTTP
    upgrade, every frame in and out go as far as the socket allows and pick
    up on the next turn. Names are never resolved here (that blocks): the
    caller gives an address it resolved beforehand.

    Bounded on both sides: what waits to be sent is at most queue_max bytes
    (send refuses more: the server is too slow for the audio), and what the
    server sends is decoded by wsframe's decoder with at most message_max
    bytes per message; a server that breaks the protocol fails the
    connection. The time a connect or handshake may take is the caller's to
    bound (it knows its deadlines): tolk_wsconn_age_ms helps.
*/
#ifndef TOLK_WSCONN_H
#define TOLK_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <zmq.h>

typedef enum {
    TOLK_WSCONN_CONNECTING, /* TCP connect or the HTTP upgrade under way */
    TOLK_WSCONN_OPEN,       /* messages flow */
    TOLK_WSCONN_CLOSED      /* closed by either side or failed: destroy it */
} tolk_wsconn_state_t;

typedef struct tolk_wsconn_t tolk_wsconn_t;

/* A whole message from the server (text or binary); data has a NUL after
   it and is valid only during the call. The callback must not destroy
   the connection. */
typedef void(tolk_wsconn_msg_fn)(void *arg, bool text, const char *data, size_t len);

/* Start connecting to addr (resolved already) and upgrading at path, with
   host as the Host header. Messages go to on_msg. NULL when no socket can
   be made (out of fds or memory); a refused or unreachable server shows
   as a CLOSED state later, never as a wait. */
tolk_wsconn_t *tolk_wsconn_new(const struct sockaddr *addr, socklen_t addrlen, const char *host,
                               const char *path, size_t message_max, size_t queue_max,
                               tolk_wsconn_msg_fn *on_msg, void *arg);

/* Close the socket at once and free everything; NULLs *self_p. */
void tolk_wsconn_destroy(tolk_wsconn_t **self_p);

/* Queue one message (sent once the upgrade is done, in order). Returns 0,
   or -1 when the connection is closed or closing, or the queue would pass
   queue_max. */
int tolk_wsconn_send(tolk_wsconn_t *self, bool text, const void *data, size_t len);

/* Send a close frame after what is queued; the server's close (or its
   dropping the TCP connection) then makes the state CLOSED. */
void tolk_wsconn_close(tolk_wsconn_t *self);

/* The poll item the connection needs (socket NULL, its fd, POLLIN and
   POLLOUT while it has something to write). Returns 1, or 0 when closed. */
int tolk_wsconn_pollitem(tolk_wsconn_t *self, zmq_pollitem_t *item);

/* Do what the socket allows after poll saw revents (0 is fine: it tries
   anyway, without waiting), calling on_msg for each message. */
void tolk_wsconn_run(tolk_wsconn_t *self, short revents);

tolk_wsconn_state_t tolk_wsconn_state(tolk_wsconn_t *self);

/* Why it closed: "" while open, else a short description. */
const char *tolk_wsconn_error(tolk_wsconn_t *self);

/* Milliseconds since tolk_wsconn_new (CLOCK_MONOTONIC). */
int64_t tolk_wsconn_age_ms(tolk_wsconn_t *self);

/* The socket, to find the connection's item among a turn's (-1 when closed). */
int tolk_wsconn_fd(tolk_wsconn_t *self);

/* Bytes waiting to be sent. */
size_t tolk_wsconn_queued(tolk_wsconn_t *self);

#endif
