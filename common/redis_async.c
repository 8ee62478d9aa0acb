/*  redis_async.c -- asynchronous hiredis on a libev loop; see redis_async.h.

    Replies on one connection come in the order the commands went, so the
    outstanding commands are a FIFO ring: the oldest entry says how late
    Redis is, and each reply belongs to the entry at the head. One 100 ms
    timer (the link's cron) connects, reconnects after the backoff, bounds
    the connect and watches for late replies.
*/
#include "redis_async.h"
#include "log.h"

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CRON_S        0.1  /* how often the cron looks at the link */
#define S_BACKOFF_MIN_S 0.05 /* first wait before a reconnect */
#define S_BACKOFF_MAX_S 1.0  /* longest wait before a reconnect */

/* One command whose reply has not come. */
typedef struct {
    tolk_redis_async_fn *fn; /* the sender's callback, or NULL */
    void *arg;               /* its argument */
    double sent;             /* loop time it was sent, to see a late reply */
} s_pending_t;

struct tolk_redis_async_t {
    struct ev_loop *loop;      /* the process's loop, not ours */
    char ip[INET6_ADDRSTRLEN]; /* Redis's address, resolved once at creation */
    int port;                  /* its port */
    double timeout_s;          /* connect bound, and how late a reply may be */
    redisAsyncContext *ac;     /* NULL while disconnected */
    bool connected;            /* the connect succeeded: commands may go */
    double connect_deadline;   /* loop time by which the connect must succeed */
    double retry_at;           /* loop time of the next connect attempt */
    double backoff_s;          /* wait after the next failure */
    s_pending_t pending[TOLK_REDIS_ASYNC_MAX_PENDING]; /* FIFO of outstanding commands */
    int head, count;                                   /* ring position and fill */
    ev_timer cron;                                     /* S_CRON_S: connect, bounds */
    bool warned;                                       /* the outage was logged once */
    bool late;                                         /* the oldest reply is overdue (logged) */
    bool destroying;                                   /* tearing down: no reconnects */
};

/* A failure: log it once per outage and wait before the next attempt. */
static void s_failed(tolk_redis_async_t *self, const char *why)
{
    if (!self->warned)
        tolk_warn("redis", NULL, "redis connection lost: %s", why);
    self->warned = true;
    self->connected = false;
    self->retry_at = ev_now(self->loop) + self->backoff_s;
    self->backoff_s = self->backoff_s * 2 > S_BACKOFF_MAX_S ? S_BACKOFF_MAX_S : self->backoff_s * 2;
}

/* Every reply (or NULL when the connection goes) lands here, and goes to
   the sender of the oldest outstanding command. */
static void s_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    tolk_redis_async_t *self = privdata;
    if (self->count == 0)
        return; /* a reply nobody asked for: cannot happen on one connection */
    s_pending_t p = self->pending[self->head];
    self->head = (self->head + 1) % TOLK_REDIS_ASYNC_MAX_PENDING;
    self->count--;
    if (!reply)
        self->connected = false; /* the context is going: send nothing more on it */
    if (p.fn)
        p.fn(p.arg, reply);
}

static void s_on_connect(const redisAsyncContext *ac, int status)
{
    tolk_redis_async_t *self = ac->data;
    if (status != REDIS_OK) {
        self->ac = NULL; /* hiredis frees the context after this call */
        s_failed(self, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    self->connected = true;
    self->backoff_s = S_BACKOFF_MIN_S;
    if (self->warned)
        tolk_info("redis", NULL, "redis connection restored");
    self->warned = false;
}

static void s_on_disconnect(const redisAsyncContext *ac, int status)
{
    tolk_redis_async_t *self = ac->data;
    bool ours = self->ac != ac; /* s_drop and destroy forget the context first */
    self->ac = NULL;
    self->connected = false;
    if (!ours && !self->destroying)
        s_failed(self, status == REDIS_OK ? "closed" : ac->errstr);
}

/* Give up on the connection (a connect or a reply took too long): every
   outstanding sender gets NULL, and the cron reconnects after the backoff. */
static void s_drop(tolk_redis_async_t *self, const char *why)
{
    redisAsyncContext *ac = self->ac;
    self->ac = NULL;
    self->connected = false;
    s_failed(self, why);
    if (ac)
        redisAsyncFree(ac);
}

/* Start a connect; it completes (or fails) later on the loop. */
static void s_connect(tolk_redis_async_t *self)
{
    redisAsyncContext *ac = redisAsyncConnect(self->ip, self->port);
    if (!ac || ac->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        s_failed(self, why);
        return;
    }
    ac->data = self;
    if (redisLibevAttach(self->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        s_failed(self, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, s_on_connect);
    redisAsyncSetDisconnectCallback(ac, s_on_disconnect);
    self->ac = ac;
    self->connected = false;
    self->connect_deadline = ev_now(self->loop) + self->timeout_s;
}

/* Loop time the oldest outstanding command has waited; 0 when none. */
static double s_oldest_wait(tolk_redis_async_t *self)
{
    if (self->count == 0)
        return 0;
    return ev_now(self->loop) - self->pending[self->head].sent;
}

static void s_cron(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tolk_redis_async_t *self = w->data;
    double now = ev_now(self->loop);
    if (!self->ac) {
        if (now >= self->retry_at)
            s_connect(self);
        return;
    }
    if (!self->connected) {
        if (now > self->connect_deadline)
            s_drop(self, "connect timed out");
        return;
    }
    double wait = s_oldest_wait(self);
    bool late = wait > self->timeout_s;
    if (late && !self->late)
        tolk_warn("redis", NULL, "no reply from redis for %d ms: counted as down",
                  (int)(wait * 1000));
    else if (!late && self->late)
        tolk_info("redis", NULL, "redis answers again");
    self->late = late;
    if (wait > self->timeout_s * TOLK_REDIS_ASYNC_STALL_FACTOR) {
        char why[96];
        snprintf(why, sizeof why, "no reply for %d ms", (int)(wait * 1000));
        self->late = false;
        s_drop(self, why);
    }
}

/* Resolve host once into a numeric address, so reconnects never resolve a
   name on the loop. */
static int s_resolve(const char *host, char *ip, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -1;
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    const char *ok = inet_ntop(res->ai_family, addr, ip, (socklen_t)cap);
    freeaddrinfo(res);
    return ok ? 0 : -1;
}

tolk_redis_async_t *tolk_redis_async_new(struct ev_loop *loop, const char *host, int port,
                                         int timeout_ms)
{
    if (!loop || !host)
        return NULL;
    tolk_redis_async_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (s_resolve(host, self->ip, sizeof self->ip) != 0) {
        tolk_error("redis", NULL, "cannot resolve redis_host %s", host);
        free(self);
        return NULL;
    }
    self->loop = loop;
    self->port = port;
    self->timeout_s = (timeout_ms > 0 ? timeout_ms : 1000) / 1000.0;
    self->backoff_s = S_BACKOFF_MIN_S;
    ev_timer_init(&self->cron, s_cron, S_CRON_S, S_CRON_S);
    self->cron.data = self;
    ev_timer_start(loop, &self->cron);
    s_connect(self);
    return self;
}

void tolk_redis_async_destroy(tolk_redis_async_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_redis_async_t *self = *self_p;
    self->destroying = true;
    ev_timer_stop(self->loop, &self->cron);
    redisAsyncContext *ac = self->ac;
    self->ac = NULL;
    self->connected = false;
    if (ac)
        redisAsyncFree(ac); /* outstanding senders get NULL now */
    free(self);
    *self_p = NULL;
}

int tolk_redis_async_vcommand(tolk_redis_async_t *self, tolk_redis_async_fn *fn, void *arg,
                              const char *fmt, va_list ap)
{
    if (!self || !self->ac || !self->connected || self->count == TOLK_REDIS_ASYNC_MAX_PENDING)
        return -1;
    if (redisvAsyncCommand(self->ac, s_on_reply, self, fmt, ap) != REDIS_OK)
        return -1;
    /* hiredis calls back only from the loop, so the entry is in place first */
    s_pending_t *p = &self->pending[(self->head + self->count) % TOLK_REDIS_ASYNC_MAX_PENDING];
    p->fn = fn;
    p->arg = arg;
    p->sent = ev_now(self->loop);
    self->count++;
    return 0;
}

int tolk_redis_async_command(tolk_redis_async_t *self, tolk_redis_async_fn *fn, void *arg,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tolk_redis_async_vcommand(self, fn, arg, fmt, ap);
    va_end(ap);
    return rc;
}

bool tolk_redis_async_up(tolk_redis_async_t *self)
{
    return self && self->ac && self->connected && s_oldest_wait(self) <= self->timeout_s;
}

int tolk_redis_async_pending(tolk_redis_async_t *self)
{
    return self ? self->count : 0;
}

/* The flush's deadline: nothing to do but wake ev_run up. */
static void s_flush_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

int tolk_redis_async_flush(tolk_redis_async_t *self, int timeout_ms)
{
    if (!self)
        return 0;
    ev_now_update(self->loop);
    double deadline = ev_now(self->loop) + timeout_ms / 1000.0;
    ev_timer wake;
    ev_timer_init(&wake, s_flush_wake, timeout_ms / 1000.0, 0);
    ev_timer_start(self->loop, &wake);
    while (self->count && ev_now(self->loop) < deadline)
        ev_run(self->loop, EVRUN_ONCE);
    ev_timer_stop(self->loop, &wake);
    return self->count;
}
