/*  wsclient.h -- a small blocking RFC 6455 client for the command-line tools and the tests.

    It speaks WebSocket over a plain TCP socket by hand (no libwebsockets), so
    a test can do what a browser would and also what no browser would: send
    unmasked, oversized, fragmented or reserved-bit frames, or raw bytes.

    Every call blocks for at most its timeout (timeout_ms < 0: no limit,
    0: only what has already arrived). Received frames are checked strictly
    (the server must not mask, set reserved bits, fragment control frames,
    send bad UTF-8 in text, or exceed WS_MAX_MESSAGE); a violation fails the
    connection and ws_error() says what the server did wrong.
*/
#ifndef TOLK_WSCLIENT_H
#define TOLK_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Frame opcodes (RFC 6455 section 5.2), for ws_send_frame and ws_recv_message. */
#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

/* Largest message the client accepts; more fails the connection with 1009. */
#define WS_MAX_MESSAGE (1024 * 1024)

typedef struct _ws_client_t ws_client_t;

/* Open a WebSocket to ws://host:port/path_and_query. origin NULL sends no
   Origin header. Returns NULL on failure: ws_last_http_status() then holds
   the HTTP status of the refusal (0 if there was no HTTP answer at all) and
   ws_last_error() a description. */
ws_client_t *ws_connect(const char *host, int port, const char *path_and_query, const char *origin,
                        int timeout_ms);

/* Same, also asking for a subprotocol (Sec-WebSocket-Protocol) when protocol
   is not NULL. */
ws_client_t *ws_connect_ex(const char *host, int port, const char *path_and_query,
                           const char *origin, const char *protocol, int timeout_ms);

/* What ws_connect_with may be told; NULL fields are left out. */
typedef struct {
    const char *origin;      /* the Origin header */
    const char *protocol;    /* Sec-WebSocket-Protocol */
    const char *source;      /* local address to connect from: a test's other client, 127.0.0.2 */
    const char *headers;     /* more request header lines, each ending in \r\n (X-Forwarded-For) */
    bool tls;                /* wss: TLS (OpenSSL) under the WebSocket */
    const char *tls_ca_file; /* trust this PEM (a self-signed gateway's certificate);
                                NULL: the system's CAs */
    bool tls_insecure;       /* accept any certificate (say so to the user) */
} ws_connect_opts_t;

/* Same, with any of those. */
ws_client_t *ws_connect_with(const char *host, int port, const char *path_and_query,
                             const ws_connect_opts_t *opts, int timeout_ms);

/* HTTP status of this thread's last ws_connect: 101 on success, 0 when the
   TCP connection or the HTTP exchange failed before a status line. */
int ws_last_http_status(void);

/* Why this thread's last ws_connect failed ("" after a success). */
const char *ws_last_error(void);

/* Send one whole masked text / binary message. Return 0, or -1 when the
   connection is closing or closed or the write failed. */
int ws_send_text(ws_client_t *c, const char *text);
int ws_send_binary(ws_client_t *c, const void *data, size_t len);

/* Send one raw frame exactly as described, for abuse tests: fin 0/1, any
   opcode 0..15, rsv the three reserved bits (0..7), masked 0/1 (with a random
   key). Sent whatever the connection state. Returns 0 or -1. */
int ws_send_frame(ws_client_t *c, int fin, int opcode, int rsv, int masked, const void *data,
                  size_t len);

/* Write raw bytes to the socket (a half frame, garbage). Returns 0 or -1. */
int ws_send_raw(ws_client_t *c, const void *data, size_t len);

/* Start the closing handshake with code (0: a close frame without a body)
   and reason (NULL: none), then read for up to 1 s for the server's close
   frame, dropping data messages. Returns 0 once the server's close frame has
   been received (now or before), -1 otherwise. */
int ws_close(ws_client_t *c, int code, const char *reason);

/* Next text message, reassembled from fragments, as a malloc'd NUL
   terminated string; binary messages are dropped, pings answered. NULL on
   timeout or when the connection closes (see ws_close_code). */
char *ws_recv_text(ws_client_t *c, int timeout_ms);

/* Next data message of either kind, malloc'd with a NUL after it; *opcode
   gets WS_OP_TEXT or WS_OP_BINARY, *len its length. Either out pointer may
   be NULL. NULL on timeout or close. */
void *ws_recv_message(ws_client_t *c, int *opcode, size_t *len, int timeout_ms);

/* Receive until a JSON text message whose "type" is type arrives, dropping
   any others; malloc'd, NULL on timeout or close. */
char *ws_recv_type(ws_client_t *c, const char *type, int timeout_ms);

/* Read (dropping data) until the connection closes. Returns the close code,
   or -1 on timeout. */
int ws_wait_closed(ws_client_t *c, int timeout_ms);

/* Close code the server sent: 0 while nothing has closed, 1005 for a close
   frame without a code, 1006 when TCP dropped without a close frame (or the
   client failed the connection: see ws_error). */
int ws_close_code(ws_client_t *c);

/* Reason text of the server's close frame ("" if none). */
const char *ws_close_reason(ws_client_t *c);

/* What the server did wrong when the client failed the connection, else NULL. */
const char *ws_error(ws_client_t *c);

/* Number of pongs received, for ping tests. */
int ws_pongs(ws_client_t *c);

/* The TCP socket, for poll() or setsockopt() in a test. */
int ws_fd(ws_client_t *c);

/* True until a close frame has been sent or received or TCP has dropped. */
bool ws_is_open(ws_client_t *c);

/* Close the TCP socket abruptly, without a close frame (the "abnormal drop"
   case), free the client and NULL the caller's pointer. Idempotent. */
void ws_destroy(ws_client_t **c_p);

/* GET http://host:port/path with a 5 s limit. Copies the body (de-chunked,
   truncated, always NUL terminated) into body when bodycap > 0. Returns the
   HTTP status, or -1 when no complete answer came. */
int http_get(const char *host, int port, const char *path, char *body, size_t bodycap);

/* Same with a chosen time limit. */
int http_get_ex(const char *host, int port, const char *path, char *body, size_t bodycap,
                int timeout_ms);

#endif
