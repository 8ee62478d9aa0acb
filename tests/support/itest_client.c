/*  itest_client.c -- the client-side helpers the integration suites share
    (see itest_client.h): messages, connections, speakers and listeners,
    errors and Redis reads, each asserting with Check.

    Why here: one copy of each, so that a change to the protocol's
    handshake or error shape is made once, and a new suite starts from
    helpers that are already trusted.
*/
#include "itest_client.h"

#include <czmq.h>
#include "jwt_check.h"
#include "wer.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Parse once, free the text: every received message goes through here so
   a missing or garbled one fails with what it was. */
json_t *ic_json(char *text)
{
    ck_assert_msg(text != NULL, "expected a message, got none");
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", text);
    free(text);
    return j;
}

FILE *ic_tool(harness_t *h, const char *env, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "TOLK_CONFIG=%s/tolk.conf %s exec %s/%s", harness_dir(h),
             env ? env : "", harness_bin(h), args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    return p;
}

/* The monitor run as an operator runs it, against h's config. */
json_t *ic_monitor_snapshot(harness_t *h)
{
    FILE *p = ic_tool(h, NULL, "tolk-monitor --once --json");
    char *out = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(out);
    size_t n = fread(out, 1, (1 << 20) - 1, p);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_gt((int)n, 0);
    return ic_json(out);
}

/* "" for a missing field, so that string assertions fail with a value
   instead of crashing on NULL. */
const char *ic_get(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* An integer field, asserted to be one: a 0 from a missing field must not
   pass for a real 0. */
long long ic_int(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
    return (long long)json_integer_value(v);
}

/* Exact key sets: the protocol's messages carry no field more or less. */
void ic_assert_keys(json_t *j, ...)
{
    va_list ap;
    va_start(ap, j);
    size_t n = 0;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *), n++)
        ck_assert_msg(json_object_get(j, k) != NULL, "missing key %s", k);
    va_end(ap);
    ck_assert_int_eq(json_object_size(j), n);
}

/* Connect with the path formatted in place, so callers pass query
   parameters directly; a failed upgrade fails the test with its reason. */
ws_client_t *ic_open(harness_t *h, int gw, const char *fmt, ...)
{
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    ws_client_t *c = ws_connect("127.0.0.1", harness_gateway_port(h, gw), path, NULL, IC_WAIT_MS);
    ck_assert_msg(c != NULL, "cannot connect to gateway %d: %s", gw, ws_last_error());
    return c;
}

/* Tokens minted in process (no tolk-token run): fast enough for hundreds
   of speakers, and signed as the system under test expects. */
char *ic_mint(const ic_jwt_t *jwt, const char *sub)
{
    char *token =
        tolk_jwt_mint(TOLK_JWT_HS256, (const unsigned char *)jwt->secret, strlen(jwt->secret), sub,
                      jwt->issuer, jwt->audience, 3600, time(NULL));
    ck_assert_ptr_nonnull(token);
    return token;
}

/* Most tests start with a session: create one and hand back its id. */
ws_client_t *ic_speaker(harness_t *h, int gw, const ic_jwt_t *jwt, const char *sub, char *sid,
                        json_t **created)
{
    char *token = ic_mint(jwt, sub);
    ws_client_t *c = ic_open(
        h, gw, "/ws?action=createSession&sourceLanguage=en&qualityTier=standard&token=%s", token);
    free(token);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    snprintf(sid, IC_SID_LEN, "%s", ic_get(j, "sessionId"));
    if (created)
        *created = j;
    else
        json_decref(j);
    return c;
}

/* Join and check the answer, so that a refused join fails here with the
   server's message rather than later with a puzzling one. */
ws_client_t *ic_listener(harness_t *h, int gw, const char *sid, const char *lang, json_t **joined)
{
    ws_client_t *c =
        ic_open(h, gw, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid, lang);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_msg(strcmp(ic_get(j, "type"), "sessionJoined") == 0, "join %s: %s", lang,
                  ic_get(j, "message"));
    if (joined)
        *joined = j;
    else
        json_decref(j);
    return c;
}

/* The part of an error every refusal shares (type, code, status); suites
   add the fields their refusals carry. */
void ic_check_error(json_t *j, int status, const char *code)
{
    ck_assert_str_eq(ic_get(j, "type"), "error");
    ck_assert_str_eq(ic_get(j, "code"), code);
    ck_assert_int_eq(ic_int(j, "status"), status);
}

/* Strict order: where nothing else may arrive first, the error must be the
   very next message. */
void ic_expect_error(ws_client_t *c, int status, const char *code)
{
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ic_check_error(j, status, code);
    json_decref(j);
}

/* Where other traffic may interleave (captions, status pushes), only the
   next error counts. */
void ic_await_error(ws_client_t *c, int status, const char *code)
{
    json_t *j = ic_json(ws_recv_type(c, "error", IC_WAIT_MS));
    ic_check_error(j, status, code);
    json_decref(j);
}

/* SPEC: a refused connect is answered in band, then closed with 4000 +
   status. */
void ic_expect_refusal(ws_client_t *c, int status, const char *code)
{
    ic_expect_error(c, status, code);
    ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), 4000 + status);
}

/* One command on the harness's connection; asserts Redis answered. */
static redisReply *s_command(harness_t *h, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(harness_redis(h), fmt, ap);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Counts and flags come back as integers or as hash strings: one reader
   for both, with -1 for "not there". */
static long long s_vredis_int(harness_t *h, const char *fmt, va_list ap)
{
    redisReply *r = s_command(h, fmt, ap);
    long long v = r->type == REDIS_REPLY_INTEGER                    ? r->integer
                  : r->type == REDIS_REPLY_STRING && r->str[0] != 0 ? atoll(r->str)
                                                                    : -1;
    freeReplyObject(r);
    return v;
}

/* The variadic face of s_vredis_int, for assertions on one value. */
long long ic_redis_int(harness_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long v = s_vredis_int(h, fmt, ap);
    va_end(ap);
    return v;
}

/* Fields that are not integers (languages, times compared as text). */
char *ic_redis_str(harness_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s_command(h, fmt, ap);
    va_end(ap);
    char *s;
    if (r->type == REDIS_REPLY_INTEGER) {
        s = malloc(32);
        ck_assert_ptr_nonnull(s);
        snprintf(s, 32, "%lld", r->integer);
    } else {
        s = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
        ck_assert_ptr_nonnull(s);
    }
    freeReplyObject(r);
    return s;
}

/* A whole hash as JSON, so "nothing changed" is one json_equal. */
json_t *ic_hgetall(harness_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s_command(h, fmt, ap);
    va_end(ap);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        json_object_set_new(o, r->element[i]->str, json_string(r->element[i + 1]->str));
    freeReplyObject(r);
    return o;
}

/* Workers write state after they answer: poll instead of sleeping a
   guessed time. */
long long ic_wait_int(harness_t *h, long long want, int timeout_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long v = -2;
    for (int i = 0; i < timeout_ms / 50; i++) {
        va_list again;
        va_copy(again, ap);
        v = s_vredis_int(h, fmt, again);
        va_end(again);
        if (v == want)
            break;
        usleep(50000);
    }
    va_end(ap);
    return v;
}

long long ic_feed_counter(harness_t *h, const char *kind, const char *name, int timeout_ms)
{
    redisReply *ids = redisCommand(harness_redis(h), "SMEMBERS tolk:feeds");
    ck_assert_ptr_nonnull(ids);
    long long sum = 0;
    int reports = 0;
    /* feed ids start with the kind and a dash, except a gateway's:
       gw<port>-<pid> (gateway/main.c) */
    bool gateway = strcmp(kind, "gateway") == 0;
    const char *prefix = gateway ? "gw" : kind;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        if (!id || strncmp(id, prefix, plen) != 0)
            continue;
        if (gateway ? !(id[plen] >= '0' && id[plen] <= '9') : id[plen] != '-')
            continue;
        redisReply *ep = redisCommand(harness_redis(h), "GET tolk:feed:%s", id);
        if (ep && ep->type == REDIS_REPLY_STRING) {
            zsock_t *sub = zsock_new_sub(ep->str, "tolk.status");
            if (sub) {
                zsock_set_rcvtimeo(sub, timeout_ms);
                char *topic = NULL, *body = NULL;
                if (zsock_recv(sub, "ss", &topic, &body) == 0 && body) {
                    json_t *j = json_loads(body, 0, NULL);
                    /* the feed registered there, not a neighbour's that took
                       the port of one that has just died */
                    if (j && strcmp(ic_get(j, "id"), id) == 0) {
                        json_t *v = json_object_get(json_object_get(j, "counters"), name);
                        sum += json_integer_value(v);
                        reports++;
                    }
                    json_decref(j);
                }
                free(topic);
                free(body);
                zsock_destroy(&sub);
            }
        }
        if (ep)
            freeReplyObject(ep);
    }
    freeReplyObject(ids);
    ck_assert_msg(reports > 0, "no %s process reported %s", kind, name);
    return sum;
}

bool ic_wait_for(bool (*ready)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = ic_now_ms() + timeout_ms;
    for (;;) {
        if (ready(arg))
            return true;
        if (ic_now_ms() >= deadline)
            return false;
        usleep(50000);
    }
}

long long ic_wait_feed_counter(harness_t *h, const char *kind, const char *name, long long want,
                               int timeout_ms)
{
    int64_t deadline = ic_now_ms() + timeout_ms;
    long long v;
    /* each read waits for the next report of every feed (one a second) */
    while ((v = ic_feed_counter(h, kind, name, 3000)) < want && ic_now_ms() < deadline)
        ;
    return v;
}

int64_t ic_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint8_t *ic_librivox(const char *name, size_t *len)
{
    uint8_t *pcm = wer_recording(WER_LIBRIVOX_DIR, name, len);
    ck_assert_msg(pcm != NULL, "cannot read the recording %s", name);
    return pcm;
}
