/*  wsconn.c -- a non-blocking WebSocket client connection; see wsconn.h.

    One socket, one write queue of frames already built and masked, one
    buffer for the upgrade's answer, then wsframe's decoder for the frames.
    Every step goes as far as the socket allows (EAGAIN ends the turn).
*/
#include "wsconn.h"
#include "wsframe.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S_HEADER_MAX 8192  /* longest upgrade answer read */
#define S_READ_CHUNK 16384 /* most bytes read in one recv */

struct tolk_wsconn_t {
    int fd;                               /* the socket, -1 once closed */
    tolk_wsconn_state_t state;            /* where the machine stands */
    bool connected;                       /* TCP is up (the handshake request is queued) */
    bool closing;                         /* our close frame is queued: send no more */
    int64_t born_ms;                      /* tolk_wsconn_new's time, for the caller's deadlines */
    char accept[TOLK_WSFRAME_ACCEPT_LEN]; /* the Sec-WebSocket-Accept the server owes */
    uint8_t *out;                         /* bytes to write: the request, then frames */
    size_t out_len, out_off;              /* used, and written so far */
    size_t out_cap;                       /* allocated */
    size_t queue_max;                     /* most bytes of frames waiting */
    char head[S_HEADER_MAX + 1];          /* the upgrade's answer while it arrives */
    size_t head_len;                      /* its bytes so far */
    tolk_wsdec_t *dec;                    /* frames after the upgrade */
    tolk_wsconn_msg_fn *on_msg;           /* where messages go */
    void *arg;                            /* and its argument */
    char error[128];                      /* why it closed */
};

/* Monotonic ms. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The connection is over: close the socket, say why (the first reason
   stands). */
static void s_closed(tolk_wsconn_t *self, const char *fmt, ...)
{
    if (self->state == TOLK_WSCONN_CLOSED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    self->state = TOLK_WSCONN_CLOSED;
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
}

/* Append bytes to the write queue; over adds the room a control frame
   may take beyond queue_max. Returns 0 or -1. */
static int s_queue(tolk_wsconn_t *self, const void *data, size_t len, size_t over)
{
    if (self->out_off && self->out_off == self->out_len)
        self->out_len = self->out_off = 0;
    if (self->out_len - self->out_off + len > self->queue_max + over)
        return -1;
    if (self->out_len + len > self->out_cap) {
        if (self->out_off) { /* reuse the written head first */
            memmove(self->out, self->out + self->out_off, self->out_len - self->out_off);
            self->out_len -= self->out_off;
            self->out_off = 0;
        }
        if (self->out_len + len > self->out_cap) {
            size_t cap = self->out_len + len;
            uint8_t *p = realloc(self->out, cap);
            if (!p)
                return -1;
            self->out = p;
            self->out_cap = cap;
        }
    }
    memcpy(self->out + self->out_len, data, len);
    self->out_len += len;
    return 0;
}

/* Build a masked frame and queue it. */
static int s_queue_frame(tolk_wsconn_t *self, int opcode, const void *data, size_t len, size_t over)
{
    uint8_t head[TOLK_WSFRAME_HEADER_MAX], key[4];
    tolk_wsframe_random(key, sizeof key);
    size_t h = tolk_wsframe_header(head, 1, opcode, 0, key, len);
    size_t before = self->out_len;
    if (s_queue(self, head, h, over + len) != 0)
        return -1;
    if (s_queue(self, data, len, over) != 0) {
        self->out_len = before;
        return -1;
    }
    tolk_wsframe_mask(self->out + self->out_len - len, len, key, 0);
    return 0;
}

tolk_wsconn_t *tolk_wsconn_new(const struct sockaddr *addr, socklen_t addrlen, const char *host,
                               const char *path, size_t message_max, size_t queue_max,
                               tolk_wsconn_msg_fn *on_msg, void *arg)
{
    tolk_wsconn_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = -1;
    self->born_ms = s_now_ms();
    self->queue_max = queue_max;
    self->on_msg = on_msg;
    self->arg = arg;
    self->dec = tolk_wsdec_new(message_max);
    self->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!self->dec || self->fd < 0) {
        tolk_wsconn_destroy(&self);
        return NULL;
    }
    int one = 1;
    setsockopt(self->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char key[TOLK_WSFRAME_KEY_LEN];
    tolk_wsframe_key(key, self->accept);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, host, key);
    if (n < 0 || (size_t)n >= sizeof req || s_queue(self, req, (size_t)n, sizeof req) != 0) {
        tolk_wsconn_destroy(&self);
        return NULL;
    }
    self->state = TOLK_WSCONN_CONNECTING;
    if (connect(self->fd, addr, addrlen) == 0)
        self->connected = true;
    else if (errno != EINPROGRESS)
        s_closed(self, "connect: %s", strerror(errno));
    return self;
}

void tolk_wsconn_destroy(tolk_wsconn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_wsconn_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    tolk_wsdec_destroy(&self->dec);
    free(self->out);
    free(self);
    *self_p = NULL;
}

int tolk_wsconn_send(tolk_wsconn_t *self, bool text, const void *data, size_t len)
{
    if (!self || self->state == TOLK_WSCONN_CLOSED || self->closing)
        return -1;
    return s_queue_frame(self, text ? 0x1 : 0x2, data, len, 0);
}

void tolk_wsconn_close(tolk_wsconn_t *self)
{
    if (!self || self->state == TOLK_WSCONN_CLOSED || self->closing)
        return;
    uint8_t code[2] = {1000 >> 8, 1000 & 0xFF};
    if (s_queue_frame(self, 0x8, code, 2, 64) != 0)
        s_closed(self, "closed by us");
    self->closing = true;
}

int tolk_wsconn_pollitem(tolk_wsconn_t *self, zmq_pollitem_t *item)
{
    if (!self || self->fd < 0)
        return 0;
    bool writing = !self->connected || self->out_off < self->out_len;
    *item = (zmq_pollitem_t){.socket = NULL,
                             .fd = self->fd,
                             .events = (short)(ZMQ_POLLIN | (writing ? ZMQ_POLLOUT : 0))};
    return 1;
}

/* Write what the queue holds, as far as the socket takes it. */
static void s_write(tolk_wsconn_t *self)
{
    while (self->fd >= 0 && self->out_off < self->out_len) {
        ssize_t n =
            send(self->fd, self->out + self->out_off, self->out_len - self->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            self->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        s_closed(self, "send: %s", n < 0 ? strerror(errno) : "nothing written");
        return;
    }
}

/* The upgrade's answer is whole in head (len bytes of header block):
   check it. Returns 0, or -1 after closing. */
static int s_upgrade(tolk_wsconn_t *self, size_t len)
{
    char saved = self->head[len];
    self->head[len] = 0;
    int status = 0;
    char upgrade[64] = "", accept[64] = "";
    if (sscanf(self->head, "HTTP/%*d.%*d %d", &status) != 1)
        status = 0;
    tolk_wsframe_http_header(self->head, "Upgrade", upgrade, sizeof upgrade);
    tolk_wsframe_http_header(self->head, "Sec-WebSocket-Accept", accept, sizeof accept);
    self->head[len] = saved;
    if (status != 101) {
        s_closed(self, "upgrade refused (HTTP %d)", status);
        return -1;
    }
    if (strcasecmp(upgrade, "websocket") != 0 || strcmp(accept, self->accept) != 0) {
        s_closed(self, "bad upgrade answer");
        return -1;
    }
    self->state = TOLK_WSCONN_OPEN;
    /* frames may have come in the same read */
    if (tolk_wsdec_push(self->dec, (uint8_t *)self->head + len, self->head_len - len) != 0) {
        s_closed(self, "server sent too much at once");
        return -1;
    }
    return 0;
}

/* Hand out every whole message the decoder holds; answer pings, end at a
   close. */
static void s_messages(tolk_wsconn_t *self)
{
    tolk_wsmsg_t m;
    int r;
    while (self->state == TOLK_WSCONN_OPEN && (r = tolk_wsdec_next(self->dec, &m)) != 0) {
        if (r < 0) {
            uint8_t code[2] = {1002 >> 8, 1002 & 0xFF};
            s_queue_frame(self, 0x8, code, 2, 64);
            s_write(self);
            s_closed(self, "protocol error: %s", tolk_wsdec_error(self->dec));
            return;
        }
        if (m.opcode == 0x9) {
            if (!self->closing)
                s_queue_frame(self, 0xA, m.data, m.len, 256);
        } else if (m.opcode == 0x8) {
            int code = m.len >= 2 ? (m.data[0] << 8) | m.data[1] : 1005;
            if (!self->closing) {
                s_queue_frame(self, 0x8, m.data, m.len >= 2 ? 2 : 0, 64);
                s_write(self);
            }
            s_closed(self, "closed by the server (%d)", code);
            return;
        } else if (m.opcode == 0x1 || m.opcode == 0x2) {
            self->on_msg(self->arg, m.opcode == 0x1, (const char *)m.data, m.len);
        }
    }
}

/* Read what has arrived, as far as the buffers take it. */
static void s_read(tolk_wsconn_t *self)
{
    uint8_t buf[S_READ_CHUNK];
    while (self->fd >= 0) {
        size_t want = sizeof buf;
        if (self->state == TOLK_WSCONN_CONNECTING) {
            want = S_HEADER_MAX - self->head_len;
            if (want == 0) {
                s_closed(self, "upgrade answer too long");
                return;
            }
        } else {
            size_t room = tolk_wsdec_room(self->dec);
            if (room < want)
                want = room;
            if (want == 0) { /* cannot happen: the decoder fails a long frame first */
                s_closed(self, "server message too long");
                return;
            }
        }
        ssize_t n = recv(self->fd, buf, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            s_closed(self, n == 0 ? "the server dropped the connection" : "recv: %s",
                     strerror(errno));
            return;
        }
        if (self->state == TOLK_WSCONN_CONNECTING) {
            memcpy(self->head + self->head_len, buf, (size_t)n);
            self->head_len += (size_t)n;
            self->head[self->head_len] = 0;
            char *end = memmem(self->head, self->head_len, "\r\n\r\n", 4);
            if (end && s_upgrade(self, (size_t)(end - self->head) + 4) != 0)
                return;
        } else if (tolk_wsdec_push(self->dec, buf, (size_t)n) != 0) {
            s_closed(self, "decoder full");
            return;
        }
        s_messages(self);
    }
}

void tolk_wsconn_run(tolk_wsconn_t *self, short revents)
{
    (void)revents; /* every step tries without waiting, so a stale event costs an EAGAIN */
    if (!self || self->fd < 0)
        return;
    if (!self->connected) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(self->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr) {
            s_closed(self, "connect: %s", strerror(soerr));
            return;
        }
        /* still in progress when the socket is not yet writable */
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        if (getpeername(self->fd, (struct sockaddr *)&peer, &pl) != 0)
            return;
        self->connected = true;
    }
    s_write(self);
    s_read(self);
    s_write(self);
}

tolk_wsconn_state_t tolk_wsconn_state(tolk_wsconn_t *self)
{
    return self ? self->state : TOLK_WSCONN_CLOSED;
}

const char *tolk_wsconn_error(tolk_wsconn_t *self)
{
    return self ? self->error : "no connection";
}

int64_t tolk_wsconn_age_ms(tolk_wsconn_t *self)
{
    return self ? s_now_ms() - self->born_ms : 0;
}

size_t tolk_wsconn_queued(tolk_wsconn_t *self)
{
    return self ? self->out_len - self->out_off : 0;
}

int tolk_wsconn_fd(tolk_wsconn_t *self)
{
    return self ? self->fd : -1;
}
