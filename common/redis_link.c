/*  redis_link.c -- self-healing hiredis connection; see redis_link.h. */
#include "redis_link.h"
#include "log.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A link that was lost is probed with a PING this short before it is used
   again: a Redis that accepts connections but does not answer (CLIENT
   PAUSE, a stall) then costs each reconnect attempt this long, not a whole
   command timeout, so the loop keeps turning while Redis is away. */
#define S_PROBE_MS 100

struct tolk_redis_t {
    char host[64];       /* where Redis is */
    int port;            /* its port */
    int timeout_ms;      /* connect and command timeout */
    redisContext *ctx;   /* NULL while disconnected */
    int64_t retry_at_ms; /* next reconnect attempt, for backoff */
    int backoff_ms;      /* grows to 1 s while Redis stays down */
    bool up;             /* last command reached Redis */
    bool warned;         /* logged the outage once, not per call */
    bool lost;           /* the link was dropped: probe before the next use */
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tolk_redis_t *tolk_redis_new(const char *host, int port, int timeout_ms)
{
    tolk_redis_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->host, sizeof self->host, "%s", host);
    self->port = port;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    self->backoff_ms = 50;
    tolk_redis_context(self);
    return self;
}

void tolk_redis_destroy(tolk_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_redis_t *self = *self_p;
    if (self->ctx)
        redisFree(self->ctx);
    free(self);
    *self_p = NULL;
}

static void s_drop(tolk_redis_t *self, const char *why)
{
    if (!self->warned)
        tolk_warn("redis", NULL, "redis connection lost: %s", why);
    self->warned = true;
    self->up = false;
    if (self->ctx)
        redisFree(self->ctx);
    self->ctx = NULL;
    self->lost = true;
    self->retry_at_ms = s_mono_ms() + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > 1000 ? 1000 : self->backoff_ms * 2;
}

redisContext *tolk_redis_context(tolk_redis_t *self)
{
    if (self->ctx)
        return self->ctx;
    if (s_mono_ms() < self->retry_at_ms)
        return NULL;
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(self->host, self->port, tv);
    if (!c || c->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        s_drop(self, why);
        return NULL;
    }
    if (self->lost && self->timeout_ms > S_PROBE_MS) {
        struct timeval probe = {0, S_PROBE_MS * 1000};
        redisSetTimeout(c, probe);
        redisReply *pong = redisCommand(c, "PING");
        bool answered = pong && pong->type == REDIS_REPLY_STATUS;
        if (pong)
            freeReplyObject(pong);
        if (!answered) {
            redisFree(c);
            s_drop(self, "no answer to PING");
            return NULL;
        }
    }
    redisSetTimeout(c, tv);
    self->ctx = c;
    self->lost = false;
    self->up = true;
    self->backoff_ms = 50;
    if (self->warned)
        tolk_info("redis", NULL, "redis connection restored");
    self->warned = false;
    return c;
}

bool tolk_redis_up(tolk_redis_t *self)
{
    return self->up && self->ctx;
}

static redisReply *s_checked(tolk_redis_t *self, redisReply *r)
{
    if (!r) {
        s_drop(self, self->ctx && self->ctx->errstr[0] ? self->ctx->errstr : "no reply");
        return NULL;
    }
    self->up = true;
    return r;
}

redisReply *tolk_redis_command(tolk_redis_t *self, const char *fmt, ...)
{
    redisContext *c = tolk_redis_context(self);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return s_checked(self, r);
}

redisReply *tolk_redis_argv(tolk_redis_t *self, int argc, const char **argv, const size_t *lens)
{
    redisContext *c = tolk_redis_context(self);
    if (!c)
        return NULL;
    return s_checked(self, redisCommandArgv(c, argc, argv, lens));
}

void tolk_redis_script_init(tolk_redis_script_t *script)
{
    if (script->sha[0])
        return;
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script->source, strlen(script->source), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(script->sha + 2 * i, 3, "%02x", md[i]);
}

redisReply *tolk_redis_eval(tolk_redis_t *self, tolk_redis_script_t *script, int nkeys, int nargs,
                            const char **keys_and_args)
{
    tolk_redis_script_init(script);
    int argc = 3 + nkeys + nargs;
    const char *argv[64];
    size_t lens[64];
    if (argc > 64)
        return NULL;
    char numkeys[16];
    snprintf(numkeys, sizeof numkeys, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = script->sha;
    argv[2] = numkeys;
    for (int i = 0; i < nkeys + nargs; i++)
        argv[3 + i] = keys_and_args[i];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = tolk_redis_argv(self, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = script->source;
        lens[0] = 4;
        lens[1] = strlen(script->source);
        r = tolk_redis_argv(self, argc, argv, lens);
    }
    if (r && r->type == REDIS_REPLY_ERROR)
        tolk_error("redis", NULL, "script failed: %s", r->str);
    return r;
}

long long tolk_reply_int(const redisReply *r, long long fallback)
{
    if (!r)
        return fallback;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        char *end;
        long long v = strtoll(r->str, &end, 10);
        return end != r->str ? v : fallback;
    }
    return fallback;
}

const char *tolk_reply_str(const redisReply *r)
{
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        return r->str;
    return NULL;
}
