/*  wsclient.c -- a small blocking RFC 6455 client for the tools and the tests.

    One socket, one read buffer. Frames are parsed out of the buffer only when
    whole, so a timeout never loses half a frame; control frames are handled
    as they pass (pings answered, close recorded and echoed) while data
    frames are reassembled into whole messages. The client is strict about
    what the server sends, because the server is what the tests examine.
*/
#include "wsclient.h"
#include "wsframe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define S_HEADER_MAX      16384             /* longest handshake answer we read */
#define S_CLOSE_WAIT_MS   1000              /* how long ws_close waits for the server */
#define S_HTTP_TIMEOUT_MS 5000              /* http_get's limit */
#define S_SEND_TIMEOUT_MS 5000              /* a write blocked this long fails */
#define S_HTTP_MAX        (4 * 1024 * 1024) /* largest HTTP answer http_get reads */
#define S_READ_CHUNK      65536             /* free room kept in the read buffer */

/* One WebSocket connection and what the tests may ask about it. */
struct _ws_client_t {
    int fd;                 /* TCP socket, -1 once destroyed */
    bool close_sent;        /* we sent a close frame: no more data messages from us */
    bool close_received;    /* the server's close frame arrived */
    bool dropped;           /* TCP is gone (EOF, error, or the client failed it) */
    int close_code;         /* 0, the server's code, 1005 or 1006 */
    char close_reason[124]; /* the server's close reason (at most 123 bytes by RFC) */
    char error[192];        /* what the server did wrong, "" if nothing */
    int pongs;              /* pongs received, for ping tests */
    unsigned char *rbuf;    /* the handshake's answer while it is read */
    size_t rlen;            /* valid bytes in rbuf */
    size_t rcap;            /* capacity of rbuf */
    tolk_wsdec_t *dec;      /* frames after the handshake (wsframe's decoder) */
    SSL_CTX *ctx;           /* wss: the TLS context of this one connection */
    SSL *ssl;               /* wss: the TLS session over fd (non-blocking); NULL: plain */
    bool tls_failed;        /* a fatal TLS error: no close_notify is sent at the end */
};

/* Status and reason of this thread's last ws_connect, for tests of refusals. */
static __thread int s_last_status;
static __thread char s_last_error[256];

/* Monotonic clock in ms, for deadlines that survive clock changes. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a timeout: -1 means none. */
static int64_t s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
}

/* ms left before deadline, as poll() wants it (-1: forever, 0: passed). */
static int s_remaining(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - s_now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Connect a TCP socket to host:port within timeout_ms; blocking (with a
   send timeout) and close-on-exec once connected, so forked helpers do not
   inherit it. Returns the fd, or -1 with a message in err. */
/* Bind fd (of family) to the local address source, any port: a test's
   second client at 127.0.0.2. Returns 0, or -1 with errno set. */
static int s_bind_source(int fd, int family, const char *source)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        len = sizeof *a;
        if (inet_pton(AF_INET, source, &a->sin_addr) != 1)
            return errno = EINVAL, -1;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        len = sizeof *a;
        if (inet_pton(AF_INET6, source, &a->sin6_addr) != 1)
            return errno = EINVAL, -1;
    }
    return bind(fd, (struct sockaddr *)&ss, len);
}

static int s_tcp_connect(const char *host, int port, const char *source, int timeout_ms, char *err,
                         size_t errlen)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "getaddrinfo %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int64_t deadline = s_deadline(timeout_ms);
    int fd = -1;
    snprintf(err, errlen, "no address for %s", host);
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        int soerr = 0;
        if (source && s_bind_source(fd, ai->ai_family, source) != 0) {
            soerr = errno;
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            soerr = errno;
            if (soerr == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int n;
                do
                    n = poll(&pfd, 1, s_remaining(deadline));
                while (n < 0 && errno == EINTR);
                socklen_t sl = sizeof soerr;
                if (n == 0)
                    soerr = ETIMEDOUT;
                else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                    soerr = errno;
            }
        }
        if (soerr != 0) {
            snprintf(err, errlen, "connect %s:%d: %s", host, port, strerror(soerr));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = S_SEND_TIMEOUT_MS / 1000,
                         .tv_usec = (S_SEND_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    err[0] = 0;
    return fd;
}

/* Write all of buf; never raises SIGPIPE. Returns 0 or -1. */
static int s_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Wait until fd is readable or deadline passes: 1 readable, 0 timeout, -1 error. */
static int s_wait_readable(int fd, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, s_remaining(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n;
    }
}

/* Readable for c: TLS may already hold decrypted bytes the socket no
   longer shows. 1 readable, 0 timeout, -1 error. */
static int s_wait_client(ws_client_t *c, int64_t deadline)
{
    if (c->ssl && SSL_pending(c->ssl) > 0)
        return 1;
    return s_wait_readable(c->fd, deadline);
}

/* After SSL_ERROR_WANT_READ/WRITE: wait for what TLS wants, until
   deadline. 1 ready, 0 timeout, -1 error. */
static int s_tls_wait(ws_client_t *c, int err, int64_t deadline)
{
    struct pollfd pfd = {.fd = c->fd, .events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, s_remaining(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n;
    }
}

/* Read what is there (after s_wait_client said so): bytes, 0 at EOF, -1
   with errno EAGAIN when nothing is ready yet (a partial TLS record). */
static ssize_t s_recv_some(ws_client_t *c, void *buf, size_t n)
{
    if (!c->ssl)
        return recv(c->fd, buf, n, MSG_DONTWAIT);
    /* SSL_get_error reads this thread's error queue: clear what an earlier
       connection left there, or its error becomes ours */
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE) /* a reading TLS that must write first: let it */
        s_tls_wait(c, e, s_deadline(S_SEND_TIMEOUT_MS));
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    c->tls_failed = true;
    errno = ECONNRESET;
    return -1;
}

/* Write all of buf on c, plain or TLS; a write blocked S_SEND_TIMEOUT_MS
   fails. Returns 0 or -1. */
static int s_send_all(ws_client_t *c, const void *buf, size_t len)
{
    if (!c->ssl)
        return s_write_all(c->fd, buf, len);
    const char *p = buf;
    int64_t deadline = s_deadline(S_SEND_TIMEOUT_MS);
    while (len > 0) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            c->tls_failed = true;
            ERR_clear_error();
            return -1;
        }
        if (s_tls_wait(c, e, deadline) <= 0)
            return -1;
    }
    return 0;
}

/* Start TLS on c's socket to host, verifying the certificate (against
   ca_file, or the system's CAs) for host's name or address unless
   insecure. Returns 0, or -1 with err set. */
static int s_tls_start(ws_client_t *c, const char *host, const ws_connect_opts_t *o,
                       int64_t deadline, char *err, size_t errlen)
{
    /* OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a write to a
       connection the gateway has closed must fail, not kill the process */
    signal(SIGPIPE, SIG_IGN);
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) {
        snprintf(err, errlen, "TLS: no context");
        return -1;
    }
    if (o->tls_insecure) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        int ok = o->tls_ca_file ? SSL_CTX_load_verify_locations(c->ctx, o->tls_ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(c->ctx);
        /* a gateway's own certificate given as the CA file is trusted as it
           is, with no chain above it: a self-signed one, or a leaf */
        if (o->tls_ca_file)
            X509_STORE_set_flags(SSL_CTX_get_cert_store(c->ctx), X509_V_FLAG_PARTIAL_CHAIN);
        if (ok != 1) {
            snprintf(err, errlen, "TLS: cannot read the CA file %s",
                     o->tls_ca_file ? o->tls_ca_file : "(system)");
            return -1;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(err, errlen, "TLS: no session");
        return -1;
    }
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, host);
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            s_tls_wait(c, e, deadline) > 0)
            continue;
        c->tls_failed = true;
        long v = SSL_get_verify_result(c->ssl);
        const char *why = ERR_reason_error_string(ERR_peek_last_error());
        if (v != X509_V_OK)
            snprintf(err, errlen, "TLS: the certificate of %s is not trusted: %s", host,
                     X509_verify_cert_error_string(v));
        else
            snprintf(err, errlen, "TLS handshake with %s failed: %s", host,
                     e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? "no answer in time"
                     : why                                                 ? why
                     : errno                                               ? strerror(errno)
                                                                           : "connection closed");
        ERR_clear_error();
        return -1;
    }
}

/* Make room for at least need more bytes in the read buffer. Returns 0 or -1. */
static int s_reserve(ws_client_t *c, size_t need)
{
    if (c->rcap - c->rlen >= need)
        return 0;
    size_t cap = c->rcap ? c->rcap : S_READ_CHUNK;
    while (cap - c->rlen < need)
        cap *= 2;
    unsigned char *p = realloc(c->rbuf, cap);
    if (!p)
        return -1;
    c->rbuf = p;
    c->rcap = cap;
    return 0;
}

/* Mark TCP as gone; without a close frame before, the code becomes 1006. */
static void s_dropped(ws_client_t *c)
{
    c->dropped = true;
    if (!c->close_received)
        c->close_code = 1006;
}

/* Read whatever is available (waiting up to deadline) into the buffer:
   1 read something, 0 timeout, -1 the connection is gone. */
static int s_fill(ws_client_t *c, int64_t deadline)
{
    if (c->dropped || c->fd < 0)
        return -1;
    if (s_reserve(c, S_READ_CHUNK) != 0)
        return -1;
    for (;;) {
        int r = s_wait_client(c, deadline);
        if (r == 0)
            return 0;
        if (r < 0) {
            s_dropped(c);
            return -1;
        }
        ssize_t n = s_recv_some(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 1;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        s_dropped(c);
        return -1;
    }
}

/* Drop the first n bytes of the read buffer. */
static void s_consume(ws_client_t *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

/* Build one frame and write it. Returns 0 or -1. */
static int s_send_frame(ws_client_t *c, int fin, int opcode, int rsv, int masked, const void *data,
                        size_t len)
{
    unsigned char *buf = malloc(len + TOLK_WSFRAME_HEADER_MAX);
    if (!buf)
        return -1;
    uint8_t key[4];
    if (masked)
        tolk_wsframe_random(key, sizeof key);
    size_t h = tolk_wsframe_header(buf, fin, opcode, rsv, masked ? key : NULL, len);
    if (len)
        memcpy(buf + h, data, len);
    if (masked)
        tolk_wsframe_mask(buf + h, len, key, 0);
    int rc = s_send_all(c, buf, h + len);
    free(buf);
    return rc;
}

/* Fail the connection because the server broke the protocol: remember why,
   send our close frame with code, and stop reading. Returns -1. */
static int s_fail(ws_client_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    if (!c->close_sent && !c->dropped && c->fd >= 0) {
        unsigned char body[2] = {(unsigned char)(code >> 8), (unsigned char)code};
        s_send_frame(c, 1, WS_OP_CLOSE, 0, 1, body, 2);
    }
    c->close_sent = true;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    s_dropped(c);
    return -1;
}

/* Read what is available (waiting up to deadline) into the decoder: 1
   read something, 0 timeout, -1 the connection is gone. */
static int s_fill_frames(ws_client_t *c, int64_t deadline)
{
    unsigned char buf[S_READ_CHUNK];
    for (;;) {
        if (c->dropped || c->fd < 0)
            return -1;
        int r = s_wait_client(c, deadline);
        if (r == 0)
            return 0;
        if (r < 0) {
            s_dropped(c);
            return -1;
        }
        size_t room = tolk_wsdec_room(c->dec);
        ssize_t n = s_recv_some(c, buf, room < sizeof buf ? room : sizeof buf);
        if (n > 0) {
            tolk_wsdec_push(c->dec, buf, (size_t)n); /* fits: at most room */
            return 1;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        s_dropped(c);
        return -1;
    }
}

/* Handle one control frame (opcode, payload p[0..len); the decoder has
   checked its length and FIN): 0 to go on, -1 when the connection has
   closed. */
static int s_control(ws_client_t *c, int opcode, const unsigned char *p, size_t len)
{
    if (opcode == WS_OP_PING) {
        if (!c->close_sent)
            s_send_frame(c, 1, WS_OP_PONG, 0, 1, p, len);
        return 0;
    }
    if (opcode == WS_OP_PONG) {
        c->pongs++;
        return 0;
    }
    if (len == 1)
        return s_fail(c, 1002, "close frame with a 1-byte body");
    int code = len >= 2 ? (p[0] << 8) | p[1] : 1005;
    if (len > 2 && !tolk_wsframe_utf8_valid(p + 2, len - 2))
        return s_fail(c, 1007, "close reason is not UTF-8");
    c->close_received = true;
    c->close_code = code;
    size_t rlen = len > 2 ? len - 2 : 0;
    if (rlen)
        memcpy(c->close_reason, p + 2, rlen);
    c->close_reason[rlen] = 0;
    if (!c->close_sent) {
        s_send_frame(c, 1, WS_OP_CLOSE, 0, 1, p, len >= 2 ? 2 : 0);
        c->close_sent = true;
    }
    return -1;
}

/* Receive the next data message: 1 with the malloc'd, NUL terminated
   message in data, its length in len and its opcode in opcode; 0 on
   timeout; -1 once the connection has closed. Frames are checked
   strictly by the decoder; a violation fails the connection with the
   close code it calls for. */
static int s_recv_data(ws_client_t *c, int64_t deadline, int *opcode, unsigned char **data,
                       size_t *len)
{
    for (;;) {
        if (!c || c->dropped || c->close_received || c->fd < 0 || !c->dec)
            return -1;
        tolk_wsmsg_t m;
        int r = tolk_wsdec_next(c->dec, &m);
        if (r < 0)
            return s_fail(c, tolk_wsdec_close_code(c->dec), "%s", tolk_wsdec_error(c->dec));
        if (r == 0) {
            r = s_fill_frames(c, deadline);
            if (r <= 0)
                return r;
            continue;
        }
        if (m.opcode >= 0x8) {
            if (s_control(c, m.opcode, m.data, m.len) < 0)
                return -1;
            continue;
        }
        unsigned char *copy = malloc(m.len + 1);
        if (!copy)
            return s_fail(c, 1011, "out of memory");
        memcpy(copy, m.data, m.len + 1);
        *opcode = m.opcode;
        *data = copy;
        *len = m.len;
        return 1;
    }
}

/* Value of header name in the header block hdr into out. */
static bool s_header(const char *hdr, const char *name, char *out, size_t outlen)
{
    return tolk_wsframe_http_header(hdr, name, out, outlen);
}

/* Record why this thread's ws_connect failed. */
static void s_connect_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_last_error, sizeof s_last_error, fmt, ap);
    va_end(ap);
}

ws_client_t *ws_connect(const char *host, int port, const char *path_and_query, const char *origin,
                        int timeout_ms)
{
    return ws_connect_ex(host, port, path_and_query, origin, NULL, timeout_ms);
}

ws_client_t *ws_connect_ex(const char *host, int port, const char *path_and_query,
                           const char *origin, const char *protocol, int timeout_ms)
{
    ws_connect_opts_t o = {.origin = origin, .protocol = protocol};
    return ws_connect_with(host, port, path_and_query, &o, timeout_ms);
}

ws_client_t *ws_connect_with(const char *host, int port, const char *path_and_query,
                             const ws_connect_opts_t *opts, int timeout_ms)
{
    const char *origin = opts ? opts->origin : NULL, *protocol = opts ? opts->protocol : NULL;
    const char *extra = opts && opts->headers ? opts->headers : "";
    s_last_status = 0;
    s_last_error[0] = 0;
    int64_t deadline = s_deadline(timeout_ms);
    char err[192];
    int fd = s_tcp_connect(host, port, opts ? opts->source : NULL, timeout_ms, err, sizeof err);
    if (fd < 0) {
        s_connect_error("%s", err);
        return NULL;
    }
    ws_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        s_connect_error("out of memory");
        return NULL;
    }
    c->fd = fd;
    if (opts && opts->tls && s_tls_start(c, host, opts, deadline, err, sizeof err) != 0) {
        s_connect_error("%s", err);
        goto err;
    }

    char key[TOLK_WSFRAME_KEY_LEN], expect[TOLK_WSFRAME_ACCEPT_LEN];
    tolk_wsframe_key(key, expect);

    char *req = NULL;
    int n =
        asprintf(&req,
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s%s%s\r\n",
                 path_and_query, host, port, key, origin ? "Origin: " : "", origin ? origin : "",
                 origin ? "\r\n" : "", protocol ? "Sec-WebSocket-Protocol: " : "",
                 protocol ? protocol : "", protocol ? "\r\n" : "", extra);
    if (n < 0) {
        s_connect_error("out of memory");
        goto err;
    }
    int rc = s_send_all(c, req, (size_t)n);
    free(req);
    if (rc != 0) {
        s_connect_error("sending the handshake: %s", strerror(errno));
        goto err;
    }

    /* Read the answer's header block; frames may follow it in the same read. */
    char *hend = NULL;
    while (!hend) {
        int r = s_fill(c, deadline);
        if (r <= 0) {
            s_connect_error(r == 0 ? "no handshake answer in time"
                                   : "connection closed during the handshake");
            goto err;
        }
        hend = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!hend && c->rlen > S_HEADER_MAX) {
            s_connect_error("handshake answer longer than %d bytes", S_HEADER_MAX);
            goto err;
        }
    }
    size_t hlen = (size_t)(hend - (char *)c->rbuf) + 4;
    char *hdr = strndup((char *)c->rbuf, hlen);
    if (!hdr) {
        s_connect_error("out of memory");
        goto err;
    }
    s_consume(c, hlen);
    int status = 0;
    if (sscanf(hdr, "HTTP/%*d.%*d %d", &status) != 1) {
        s_connect_error("not an HTTP answer");
        free(hdr);
        goto err;
    }
    s_last_status = status;
    char upgrade[64] = "", connection[128] = "", accept[64] = "", proto[128] = "";
    s_header(hdr, "Upgrade", upgrade, sizeof upgrade);
    s_header(hdr, "Connection", connection, sizeof connection);
    s_header(hdr, "Sec-WebSocket-Accept", accept, sizeof accept);
    bool has_proto = s_header(hdr, "Sec-WebSocket-Protocol", proto, sizeof proto);
    free(hdr);
    if (status != 101) {
        s_connect_error("handshake refused with HTTP %d", status);
        goto err;
    }
    if (strcasecmp(upgrade, "websocket") != 0 || !strcasestr(connection, "upgrade")) {
        s_connect_error("101 without Upgrade: websocket / Connection: Upgrade");
        goto err;
    }
    if (strcmp(accept, expect) != 0) {
        s_connect_error("bad Sec-WebSocket-Accept '%s', expected '%s'", accept, expect);
        goto err;
    }
    if (has_proto && (!protocol || strcmp(proto, protocol) != 0)) {
        s_connect_error("server chose subprotocol '%s' that was not asked for", proto);
        goto err;
    }
    /* frames may have come with the answer */
    c->dec = tolk_wsdec_new(WS_MAX_MESSAGE);
    if (!c->dec || tolk_wsdec_push(c->dec, c->rbuf, c->rlen) != 0) {
        s_connect_error("out of memory");
        goto err;
    }
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    return c;
err:
    ws_destroy(&c);
    return NULL;
}

int ws_last_http_status(void)
{
    return s_last_status;
}

const char *ws_last_error(void)
{
    return s_last_error;
}

int ws_send_text(ws_client_t *c, const char *text)
{
    if (!ws_is_open(c) || !text)
        return -1;
    return s_send_frame(c, 1, WS_OP_TEXT, 0, 1, text, strlen(text));
}

int ws_send_binary(ws_client_t *c, const void *data, size_t len)
{
    if (!ws_is_open(c) || (!data && len))
        return -1;
    return s_send_frame(c, 1, WS_OP_BINARY, 0, 1, data, len);
}

int ws_send_frame(ws_client_t *c, int fin, int opcode, int rsv, int masked, const void *data,
                  size_t len)
{
    if (!c || c->fd < 0 || (!data && len))
        return -1;
    return s_send_frame(c, fin, opcode, rsv, masked, data, len);
}

int ws_send_raw(ws_client_t *c, const void *data, size_t len)
{
    if (!c || c->fd < 0 || (!data && len))
        return -1;
    return s_send_all(c, data, len);
}

int ws_close(ws_client_t *c, int code, const char *reason)
{
    if (!c)
        return -1;
    if (!c->close_sent && !c->dropped && c->fd >= 0) {
        unsigned char body[125];
        size_t len = 0;
        if (code > 0) {
            body[0] = (unsigned char)(code >> 8);
            body[1] = (unsigned char)code;
            len = 2;
            size_t rlen = reason ? strlen(reason) : 0;
            if (rlen > 123)
                rlen = 123;
            if (rlen)
                memcpy(body + 2, reason, rlen);
            len += rlen;
        }
        s_send_frame(c, 1, WS_OP_CLOSE, 0, 1, body, len);
        c->close_sent = true;
    }
    int64_t deadline = s_deadline(S_CLOSE_WAIT_MS);
    for (;;) {
        int opcode;
        unsigned char *data;
        size_t len;
        int r = s_recv_data(c, deadline, &opcode, &data, &len);
        if (r <= 0)
            break;
        free(data);
    }
    return c->close_received ? 0 : -1;
}

void *ws_recv_message(ws_client_t *c, int *opcode, size_t *len, int timeout_ms)
{
    int op;
    unsigned char *data;
    size_t n;
    if (s_recv_data(c, s_deadline(timeout_ms), &op, &data, &n) != 1)
        return NULL;
    if (opcode)
        *opcode = op;
    if (len)
        *len = n;
    return data;
}

char *ws_recv_text(ws_client_t *c, int timeout_ms)
{
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        int op;
        unsigned char *data;
        size_t n;
        if (s_recv_data(c, deadline, &op, &data, &n) != 1)
            return NULL;
        if (op == WS_OP_TEXT)
            return (char *)data;
        free(data);
    }
}

char *ws_recv_type(ws_client_t *c, const char *type, int timeout_ms)
{
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        char *text = ws_recv_text(c, s_remaining(deadline));
        if (!text)
            return NULL;
        json_t *root = json_loads(text, 0, NULL);
        const char *t = json_string_value(json_object_get(root, "type"));
        bool match = t && strcmp(t, type) == 0;
        json_decref(root);
        if (match)
            return text;
        free(text);
    }
}

int ws_wait_closed(ws_client_t *c, int timeout_ms)
{
    if (!c)
        return -1;
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        int op;
        unsigned char *data;
        size_t n;
        int r = s_recv_data(c, deadline, &op, &data, &n);
        if (r < 0)
            return c->close_code;
        if (r == 0)
            return -1;
        free(data);
    }
}

int ws_close_code(ws_client_t *c)
{
    return c ? c->close_code : 0;
}

const char *ws_close_reason(ws_client_t *c)
{
    return c ? c->close_reason : "";
}

const char *ws_error(ws_client_t *c)
{
    return c && c->error[0] ? c->error : NULL;
}

int ws_pongs(ws_client_t *c)
{
    return c ? c->pongs : 0;
}

int ws_fd(ws_client_t *c)
{
    return c ? c->fd : -1;
}

bool ws_is_open(ws_client_t *c)
{
    return c && c->fd >= 0 && !c->close_sent && !c->close_received && !c->dropped;
}

void ws_destroy(ws_client_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    ws_client_t *c = *c_p;
    if (c->ssl) {
        /* our close_notify, best effort (the socket is non-blocking), only on
           a session that is up and has not failed */
        if (SSL_is_init_finished(c->ssl) && !c->tls_failed) {
            ERR_clear_error();
            SSL_shutdown(c->ssl);
        }
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    tolk_wsdec_destroy(&c->dec);
    free(c);
    *c_p = NULL;
}

/* Append n bytes to the body being returned, truncating at cap-1. */
static void s_body_append(char *body, size_t cap, size_t *used, const char *src, size_t n)
{
    if (!body || cap == 0)
        return;
    size_t room = cap - 1 - *used;
    if (n > room)
        n = room;
    memcpy(body + *used, src, n);
    *used += n;
    body[*used] = 0;
}

/* Parse an HTTP answer read so far (eof: the server has closed). Returns the
   status when the answer is complete (body copied), 0 when more is needed,
   -1 when it is malformed or cut short. */
static int s_http_parse(const char *buf, size_t len, bool eof, char *body, size_t cap)
{
    const char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend)
        return eof ? -1 : 0;
    int status;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        return -1;
    size_t hlen = (size_t)(hend - buf) + 4;
    char *hdr = strndup(buf, hlen);
    if (!hdr)
        return -1;
    char te[64] = "", cl[32] = "";
    bool chunked = s_header(hdr, "Transfer-Encoding", te, sizeof te) && strcasestr(te, "chunked");
    bool has_cl = s_header(hdr, "Content-Length", cl, sizeof cl);
    free(hdr);
    const char *p = buf + hlen, *end = buf + len;
    size_t used = 0;
    if (body && cap)
        body[0] = 0;
    if (status == 204 || status == 304 || (status >= 100 && status < 200))
        return status;
    if (chunked) {
        for (;;) {
            const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!nl)
                return eof ? -1 : 0;
            char *e;
            unsigned long size = strtoul(p, &e, 16);
            if (e == p)
                return -1;
            p = nl + 2;
            if (size == 0)
                return status;
            if ((size_t)(end - p) < size + 2)
                return eof ? -1 : 0;
            s_body_append(body, cap, &used, p, size);
            p += size + 2;
        }
    }
    if (has_cl) {
        size_t want = strtoul(cl, NULL, 10);
        if ((size_t)(end - p) < want)
            return eof ? -1 : 0;
        s_body_append(body, cap, &used, p, want);
        return status;
    }
    if (!eof)
        return 0;
    s_body_append(body, cap, &used, p, (size_t)(end - p));
    return status;
}

int http_get(const char *host, int port, const char *path, char *body, size_t bodycap)
{
    return http_get_ex(host, port, path, body, bodycap, S_HTTP_TIMEOUT_MS);
}

int http_get_ex(const char *host, int port, const char *path, char *body, size_t bodycap,
                int timeout_ms)
{
    if (body && bodycap)
        body[0] = 0;
    int64_t deadline = s_deadline(timeout_ms);
    char err[192];
    int fd = s_tcp_connect(host, port, NULL, timeout_ms, err, sizeof err);
    if (fd < 0)
        return -1;
    char *req = NULL;
    int n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path,
                     host, port);
    int status = -1;
    if (n < 0 || s_write_all(fd, req, (size_t)n) != 0)
        goto done;
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    while (buf) {
        if (s_wait_readable(fd, deadline) <= 0)
            break;
        if (cap - len < 4096) {
            char *nb = cap >= S_HTTP_MAX ? NULL : realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        bool eof = got <= 0;
        if (got > 0)
            len += (size_t)got;
        int r = s_http_parse(buf, len, eof, body, bodycap);
        if (r != 0 || eof) {
            status = r > 0 ? r : -1;
            break;
        }
    }
    free(buf);
done:
    free(req);
    close(fd);
    return status;
}
