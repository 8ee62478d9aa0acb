/*  itest_session.c -- sessions and connections end to end: a real
    redis-server, two gateways, two control workers and the sweeper under
    supervisord, driven over real WebSockets.

    Covers the spine issue's list: create/join/end with 100 listeners on two
    gateways, the 500 cap under 600 racing joins, the JWT attack list, frame
    refusals and rate limits, disconnects, grace and refresh, heartbeat ages,
    and a control worker killed with SIGKILL under traffic.
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET   "integration-test-secret-0123456789"
#define ISSUER   "tolk-test"
#define AUDIENCE "tolk"

static harness_t *s_h;
static int s_problems; /* sanitizer findings reported by harness_stop */

static void s_setup(void)
{
    harness_opts_t opts = {.gateways = 2,
                           .control_workers = 2,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=" ISSUER,
                                         "TOLK_JWT_AUDIENCE=" AUDIENCE, "TOLK_GRACE_PERIOD_S=2",
                                         "TOLK_REFRESH_REQUIRED_S=2", "TOLK_REFRESH_WARNING_S=4",
                                         "TOLK_FAILED_JOINS_PER_HOUR=30",
                                         "TOLK_SESSION_CREATE_PER_HOUR=10",
                                         "TOLK_DRAIN_TIMEOUT_MS=1500", NULL}};
    s_h = harness_start(&opts);
    if (!s_h) {
        fprintf(stderr, "itest_session: the system did not start\n");
        exit(1);
    }
}

static void s_teardown(void)
{
    s_problems += harness_stop(&s_h);
}

/* ------------------------------------------------------------ helpers */

/* Tokens as this system demands them: its secret, issuer and audience. */
static const ic_jwt_t s_jwt = {.secret = SECRET, .issuer = ISSUER, .audience = AUDIENCE};

/* A speaker on gateway gw creates a session; its id goes to sid. This
   suite also checks the language and tier it was created with. */
static ws_client_t *s_speaker(int gw, const char *sub, char *sid)
{
    json_t *j;
    ws_client_t *c = ic_speaker(s_h, gw, &s_jwt, sub, sid, &j);
    ck_assert_str_eq(ic_get(j, "sourceLanguage"), "en");
    ck_assert_str_eq(ic_get(j, "qualityTier"), "standard");
    json_decref(j);
    return c;
}

/* A listener joins sid in lang on gateway gw. This suite also checks the
   session and language the answer names. */
static ws_client_t *s_listener(int gw, const char *sid, const char *lang)
{
    json_t *j;
    ws_client_t *c = ic_listener(s_h, gw, sid, lang, &j);
    ck_assert_str_eq(ic_get(j, "sessionId"), sid);
    ck_assert_str_eq(ic_get(j, "targetLanguage"), lang);
    json_decref(j);
    return c;
}

/* Keys of one session left in Redis, plus its index entries; not the
   reason it ended, which is kept (expiring) for listeners who come back. */
static long long s_session_keys(const char *sid)
{
    redisReply *r = redisCommand(harness_redis(s_h), "KEYS tolk:{%s}:*", sid);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    n -= ic_redis_int(s_h, "EXISTS tolk:{%s}:ended", sid) == 1 &&
         ic_redis_int(s_h, "PTTL tolk:{%s}:ended", sid) > 0;
    n += ic_redis_int(s_h, "ZSCORE tolk:sessions %s", sid) >= 0;
    n += ic_redis_int(s_h, "ZSCORE tolk:grace %s", sid) >= 0;
    return n;
}

/* Is a session wholly gone from Redis? For ic_wait_for (arg: its id). */
static bool s_session_gone(void *arg)
{
    return s_session_keys(arg) == 0;
}

/* Wait (generously) until the session is gone from Redis, then assert it:
   the clients are told the session ended while its keys are being
   deleted, so none of them proves the deletion is done. */
static void s_wait_gone(const char *sid)
{
    ic_wait_for(s_session_gone, (void *)sid, 10000);
    ck_assert_int_eq(s_session_keys(sid), 0);
}

/* -------------------------------------------------------------- tests */

START_TEST(test_create_join_end_100_listeners)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "speaker-100", sid);
    ws_client_t *ls[100];
    for (int i = 0; i < 100; i++)
        ls[i] = s_listener(i % 2, sid, i % 3 ? "es" : "ca");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 100);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs es", sid), 66);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs ca", sid), 34);
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"endSession\"}"), 0);
    for (int i = 0; i < 100; i++) {
        json_t *j = ic_json(ws_recv_type(ls[i], "sessionEnded", IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "sessionId"), sid);
        ck_assert_str_eq(ic_get(j, "reason"), "endSession");
        json_decref(j);
        ck_assert_int_eq(ws_wait_closed(ls[i], IC_WAIT_MS), 1000);
        ws_destroy(&ls[i]);
    }
    json_t *j = ic_json(ws_recv_type(spk, "sessionEnded", IC_WAIT_MS));
    json_decref(j);
    ck_assert_int_eq(ws_wait_closed(spk, IC_WAIT_MS), 1000);
    ws_destroy(&spk);
    s_wait_gone(sid);
}
END_TEST

START_TEST(test_600_joins_race_for_500_slots)
{
    char sid[80];
    ws_client_t *spk = s_speaker(1, "speaker-race", sid);
    static ws_client_t *ls[600];
    /* open all 600 first: their joins are in flight together on both gateways */
    for (int i = 0; i < 600; i++)
        ls[i] = ic_open(s_h, i % 2, "/ws?action=joinSession&sessionId=%s&targetLanguage=es", sid);
    int joined = 0, full = 0;
    for (int i = 0; i < 600; i++) {
        json_t *j = ic_json(ws_recv_text(ls[i], IC_WAIT_MS));
        if (strcmp(ic_get(j, "type"), "sessionJoined") == 0)
            joined++;
        else if (strcmp(ic_get(j, "code"), "SESSION_FULL") == 0 &&
                 json_integer_value(json_object_get(j, "status")) == 409) {
            full++;
            ck_assert_int_eq(ws_wait_closed(ls[i], IC_WAIT_MS), 4409);
        }
        json_decref(j);
    }
    ck_assert_int_eq(joined, 500);
    ck_assert_int_eq(full, 100);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 500);
    ck_assert_int_eq(ic_redis_int(s_h, "HLEN tolk:{%s}:members", sid), 501);
    for (int i = 0; i < 600; i++)
        ws_destroy(&ls[i]);
    ck_assert_int_eq(ic_wait_int(s_h, 0, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     0);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    s_wait_gone(sid);
}
END_TEST

/* base64url without padding */
static void s_b64url(const unsigned char *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t j = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[j++] = tbl[(v >> 18) & 63];
        out[j++] = tbl[(v >> 12) & 63];
        if (i + 1 < len)
            out[j++] = tbl[(v >> 6) & 63];
        if (i + 2 < len)
            out[j++] = tbl[v & 63];
    }
    out[j] = 0;
}

/* A token with this header and payload, HS256-signed with key (NULL: no signature). */
static char *s_forge(const char *header, const char *payload, const char *key)
{
    char *tok = malloc(16384), h[4096], p[8192];
    s_b64url((const unsigned char *)header, strlen(header), h);
    s_b64url((const unsigned char *)payload, strlen(payload), p);
    int n = snprintf(tok, 16384, "%s.%s.", h, p);
    if (key) {
        unsigned char mac[32];
        unsigned maclen = 0;
        HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok, (size_t)n - 1, mac,
             &maclen);
        s_b64url(mac, maclen, tok + n);
    }
    return tok;
}

START_TEST(test_jwt_attack_list)
{
    long now = (long)time(NULL);
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char good[512], expired[512], future[512], noexp[512], strexp[512], badiss[512], badaud[512],
        big[6000];
    snprintf(good, sizeof good, "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld}",
             ISSUER, AUDIENCE, now + 600);
    snprintf(expired, sizeof expired,
             "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld}", ISSUER, AUDIENCE,
             now - 3600);
    snprintf(future, sizeof future,
             "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"nbf\":%ld}", ISSUER,
             AUDIENCE, now + 7200, now + 3600);
    snprintf(noexp, sizeof noexp, "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\"}", ISSUER,
             AUDIENCE);
    snprintf(strexp, sizeof strexp,
             "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":\"%ld\"}", ISSUER,
             AUDIENCE, now + 600);
    snprintf(badiss, sizeof badiss,
             "{\"sub\":\"mallory\",\"iss\":\"evil\",\"aud\":\"%s\",\"exp\":%ld}", AUDIENCE,
             now + 600);
    snprintf(badaud, sizeof badaud,
             "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"evil\",\"exp\":%ld}", ISSUER,
             now + 600);
    int n = snprintf(big, sizeof big,
                     "{\"sub\":\"mallory\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"pad\":\"",
                     ISSUER, AUDIENCE, now + 600);
    memset(big + n, 'x', 3500);
    strcpy(big + n + 3500, "\"}");

    char *tampered_payload = s_forge(hs, good, SECRET);
    {
        /* swap the payload for another one, keep the signature */
        char *other = s_forge(hs, badiss, SECRET);
        char *p1 = strchr(tampered_payload, '.'), *s1 = strrchr(tampered_payload, '.');
        char *p2 = strchr(other, '.'), *s2 = strrchr(other, '.');
        char buf[16384];
        snprintf(buf, sizeof buf, "%.*s%.*s%s", (int)(p1 - tampered_payload), tampered_payload,
                 (int)(s2 - p2), p2, s1);
        strcpy(tampered_payload, buf);
        free(other);
    }
    char *tampered_sig = s_forge(hs, good, SECRET);
    char *last = tampered_sig + strlen(tampered_sig) - 2;
    *last = *last == 'A' ? 'B' : 'A';

    char *attacks[] = {
        s_forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", good, NULL),
        s_forge(hs, good, "-----BEGIN PUBLIC KEY-----\nnot the secret\n-----END PUBLIC KEY-----\n"),
        tampered_payload,
        tampered_sig,
        s_forge(hs, expired, SECRET),
        s_forge(hs, future, SECRET),
        s_forge(hs, noexp, SECRET),
        s_forge(hs, strexp, SECRET),
        s_forge(hs, badiss, SECRET),
        s_forge(hs, badaud, SECRET),
        s_forge(hs, big, SECRET),
    };
    size_t count = sizeof attacks / sizeof *attacks;
    ck_assert_int_gt((int)strlen(attacks[count - 1]), 4096);
    for (size_t i = 0; i < count; i++) {
        ws_client_t *c = ic_open(
            s_h, (int)i % 2,
            "/ws?action=createSession&sourceLanguage=en&qualityTier=standard&token=%s", attacks[i]);
        ic_expect_refusal(c, 401, "UNAUTHENTICATED");
        ws_destroy(&c);
    }
    /* the control: the same claims, properly signed, are accepted */
    char *ok = s_forge(hs, good, SECRET);
    ws_client_t *c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=en&token=%s", ok);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    json_decref(j);
    ws_close(c, 1000, "done");
    ws_destroy(&c);
    free(ok);
    /* no token reaches a log: look for each signature in every log */
    char cmd[512];
    for (size_t i = 0; i < count; i++) {
        const char *sig = strrchr(attacks[i], '.') + 1;
        if (strlen(sig) >= 16) {
            snprintf(cmd, sizeof cmd, "grep -rqF -- '%.40s' %s/logs", sig, harness_dir(s_h));
            ck_assert_msg(system(cmd) != 0, "a token appears in the logs");
        }
        free(attacks[i]);
    }
}
END_TEST

START_TEST(test_connect_refusals)
{
    ws_client_t *c = ic_open(s_h, 0, "/ws?action=joinSession&sessionId=nope&targetLanguage=es");
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    c = ic_open(s_h, 1, "/ws?action=joinSession&sessionId=quiet-lake-123&targetLanguage=es");
    ic_expect_refusal(c, 404, "SESSION_NOT_FOUND");
    ws_destroy(&c);
    c = ic_open(s_h, 0, "/ws?action=dance");
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    c = ic_open(s_h, 0, "/ws");
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    char *token = ic_mint(&s_jwt, "refusals");
    c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=xx&token=%s", token);
    ic_expect_refusal(c, 400, "UNSUPPORTED_LANGUAGE");
    ws_destroy(&c);
    c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=english&token=%s", token);
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=en&qualityTier=gold&token=%s",
                token);
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=en");
    ic_expect_refusal(c, 401, "UNAUTHENTICATED");
    ws_destroy(&c);
    char sid[80];
    ws_client_t *spk = s_speaker(0, "refusals", sid);
    c = ic_open(s_h, 1, "/ws?action=joinSession&sessionId=%s&targetLanguage=zz", sid);
    ic_expect_refusal(c, 400, "UNSUPPORTED_LANGUAGE");
    ws_destroy(&c);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 0);
    /* a speaker refresh with another identity's token */
    char *other = ic_mint(&s_jwt, "somebody-else");
    c = ic_open(s_h, 1, "/ws?action=refreshConnection&sessionId=%s&role=speaker&token=%s", sid,
                other);
    ic_expect_refusal(c, 403, "UNAUTHORIZED");
    ws_destroy(&c);
    free(other);
    free(token);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_bad_frames_and_rate_limit)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "frames", sid);
    ws_client_t *l = s_listener(1, sid, "es");
    ws_send_text(spk, "this is not json");
    ic_expect_error(spk, 400, "INVALID_MESSAGE");
    ws_send_text(spk, "{\"volumeLevel\":0.5}");
    ic_expect_error(spk, 400, "INVALID_MESSAGE");
    ws_send_text(spk, "{\"action\":\"teleport\"}");
    ic_expect_error(spk, 400, "INVALID_ACTION");
    char big[5000];
    snprintf(big, sizeof big, "{\"action\":\"setVolume\",\"volumeLevel\":0.5,\"pad\":\"%04500d\"}",
             0);
    ws_send_text(spk, big);
    ic_expect_error(spk, 413, "PAYLOAD_TOO_LARGE");
    ws_send_text(l, "{\"action\":\"pauseBroadcast\"}");
    ic_expect_error(l, 403, "UNAUTHORIZED");
    ws_send_text(spk, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"ca\"}");
    ic_expect_error(spk, 403, "UNAUTHORIZED");
    char pcm[3200] = {0};
    ws_send_binary(l, pcm, sizeof pcm);
    ic_expect_error(l, 403, "UNAUTHORIZED");
    ws_send_text(spk, "{\"action\":\"setVolume\",\"volumeLevel\":1.5}");
    ic_expect_error(spk, 400, "INVALID_PARAMETERS");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session volume", sid), 1);
    /* the connection still works after every refusal */
    ws_send_text(spk, "{\"action\":\"heartbeat\"}");
    json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "heartbeatAck");
    json_decref(j);
    sleep(1); /* the rate limit's window: the bucket refills */
    /* 15 control messages at once: 10 pass, 5 get 429 with retryAfter */
    for (int i = 0; i < 15; i++)
        ws_send_text(l, "{\"action\":\"heartbeat\"}");
    int acks = 0, limited = 0;
    for (int i = 0; i < 15; i++) {
        j = ic_json(ws_recv_text(l, IC_WAIT_MS));
        if (strcmp(ic_get(j, "type"), "heartbeatAck") == 0)
            acks++;
        else if (strcmp(ic_get(j, "code"), "RATE_LIMIT_EXCEEDED") == 0 &&
                 json_integer_value(json_object_get(j, "retryAfter")) >= 1)
            limited++;
        json_decref(j);
    }
    /* the burst of 10, plus at most one token refilled while the 15 arrive */
    ck_assert_int_ge(acks, 10);
    ck_assert_int_le(acks, 11);
    ck_assert_int_eq(limited, 15 - acks);
    /* over 128 KB: closed with 1009 */
    size_t huge = 129 * 1024;
    char *h = malloc(huge);
    memset(h, 'a', huge);
    ws_send_binary(spk, h, huge);
    free(h);
    ck_assert_int_eq(ws_wait_closed(spk, IC_WAIT_MS), 1009);
    ws_destroy(&spk);
    ws_destroy(&l);
}
END_TEST

START_TEST(test_controls_reach_listeners_on_both_gateways)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "controls", sid);
    ws_client_t *a = s_listener(0, sid, "es"), *b = s_listener(1, sid, "ca");
    ws_send_text(spk, "{\"action\":\"pauseBroadcast\"}");
    ws_client_t *all[] = {spk, a, b};
    for (int i = 0; i < 3; i++) {
        json_t *j = ic_json(ws_recv_type(all[i], "broadcastPaused", IC_WAIT_MS));
        ck_assert(json_is_true(json_object_get(json_object_get(j, "broadcastState"), "isPaused")));
        json_decref(j);
    }
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session isPaused", sid), 1);
    ws_send_text(b, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"es\"}");
    json_t *j = ic_json(ws_recv_type(b, "languageChanged", IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "targetLanguage"), "es");
    json_decref(j);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs es", sid), 2);
    ck_assert_int_eq(ic_redis_int(s_h, "HEXISTS tolk:{%s}:langs ca", sid), 0);
    ws_close(spk, 1000, "done");
    for (int i = 1; i < 3; i++) {
        j = ic_json(ws_recv_type(all[i], "sessionEnded", IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "reason"), "speakerEnded");
        json_decref(j);
    }
    for (int i = 0; i < 3; i++)
        ws_destroy(&all[i]);
}
END_TEST

START_TEST(test_listener_leave_and_refresh)
{
    char sid[80];
    ws_client_t *spk = s_speaker(1, "leave", sid);
    ws_client_t *a = s_listener(0, sid, "es"), *b = s_listener(1, sid, "es");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 2);
    ws_close(a, 1000, "bye");
    ws_destroy(&a);
    ck_assert_int_eq(ic_wait_int(s_h, 1, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     1);
    /* b refreshes onto the other gateway, then drops the old connection */
    ws_client_t *b2 = ic_open(
        s_h, 0, "/ws?action=refreshConnection&sessionId=%s&role=listener&targetLanguage=es", sid);
    json_t *j = ic_json(ws_recv_text(b2, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "connectionRefreshComplete");
    json_decref(j);
    ws_close(b, 1000, "refreshed");
    ws_destroy(&b);
    ck_assert_int_eq(ic_wait_int(s_h, 1, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     1);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs es", sid), 1);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&b2);
}
END_TEST

START_TEST(test_speaker_drop_grace_and_return)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "grace", sid);
    ws_client_t *l = s_listener(1, sid, "es");
    ws_destroy(&spk); /* abnormal drop: no close frame */
    json_t *j = ic_json(ws_recv_type(l, "speakerDisconnected", IC_WAIT_MS));
    json_decref(j);
    /* the grace deadline (epoch ms), set before the listeners are told */
    long long until = ic_redis_int(s_h, "ZSCORE tolk:grace %s", sid);
    ck_assert_int_gt(until, 0);
    char *token = ic_mint(&s_jwt, "grace");
    spk = ic_open(s_h, 1, "/ws?action=refreshConnection&sessionId=%s&role=speaker&token=%s", sid,
                  token);
    j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "connectionRefreshComplete");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "listenerCount")), 1);
    json_decref(j);
    j = ic_json(ws_recv_type(l, "speakerReconnected", IC_WAIT_MS));
    json_decref(j);
    /* the grace deadline passes without effect: the session lives on. The
       deadline is time itself; then a sweep that began after it must have
       left the session alone */
    while ((long long)time(NULL) * 1000 <= until)
        usleep(50000); /* the grace period is the behaviour: let it pass */
    long long sweeps = ic_feed_counter(s_h, "sweeper", "sweeps", 3000);
    ck_assert_int_gt(ic_wait_feed_counter(s_h, "sweeper", "sweeps", sweeps + 1, 15000), sweeps);
    ck_assert_int_eq(ic_redis_int(s_h, "EXISTS tolk:{%s}:session", sid), 1);
    /* drop again and stay away: the sweeper ends it after the grace period */
    ws_destroy(&spk);
    j = ic_json(ws_recv_type(l, "sessionEnded", 15000)); /* grace 2 s + a sweep */
    ck_assert_str_eq(ic_get(j, "reason"), "speakerTimeout");
    json_decref(j);
    ck_assert_int_eq(ws_wait_closed(l, IC_WAIT_MS), 1000);
    ws_destroy(&l);
    s_wait_gone(sid);
    free(token);
}
END_TEST

START_TEST(test_heartbeat_connection_age)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "heartbeat", sid);
    ws_send_text(spk, "{\"action\":\"heartbeat\"}");
    json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "heartbeatAck");
    json_decref(j);
    sleep(2); /* the behaviour: the connection's age reaches refresh_required_s = 2 */
    ws_send_text(spk, "{\"action\":\"heartbeat\"}");
    j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "heartbeatAck");
    json_decref(j);
    j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "connectionRefreshRequired");
    ck_assert_str_eq(ic_get(j, "sessionId"), sid);
    json_decref(j);
    sleep(2); /* the behaviour: the age reaches refresh_warning_s = 4 */
    ws_send_text(spk, "{\"action\":\"heartbeat\"}");
    free(ws_recv_text(spk, IC_WAIT_MS));
    j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "connectionWarning");
    json_decref(j);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_control_worker_killed_under_traffic)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "kill", sid);
    ws_client_t *ls[10];
    for (int i = 0; i < 10; i++)
        ls[i] = s_listener(i % 2, sid, "es");
    pid_t victim = harness_pid(s_h, "control-worker:control-worker-0");
    ck_assert_int_gt(victim, 0);
    kill(victim, SIGKILL);
    /* traffic right through the failure. A control already handed to the
       worker when it died is lost with it (at-most-once delivery); a client
       that hears nothing within 3 s (long enough that an answer slowed by a
       loaded machine is not taken for a lost one) asks again. Every control
       must be answered, and at most the one in flight at the kill may need
       asking twice. */
    int retries = 0;
    for (int i = 0; i < 20; i++) {
        const char *ask =
            i % 2 ? "{\"action\":\"resumeBroadcast\"}" : "{\"action\":\"pauseBroadcast\"}";
        const char *want = i % 2 ? "broadcastResumed" : "broadcastPaused";
        char *m = NULL;
        for (int attempt = 0; attempt < 3 && !m; attempt++) {
            retries += attempt > 0;
            ws_send_text(spk, ask);
            m = ws_recv_type(spk, want, 3000);
        }
        ck_assert_msg(m != NULL, "control %d never answered", i);
        free(m);
        usleep(100000); /* pacing: under the control rate */
    }
    ck_assert_int_le(retries, 2);
    /* supervisord restarted it */
    pid_t now = -1;
    for (int64_t end = ic_now_ms() + 15000; now <= 0 && ic_now_ms() < end;) {
        now = harness_pid(s_h, "control-worker:control-worker-0");
        if (now <= 0 || now == victim) {
            now = -1;
            usleep(100000); /* poll interval */
        }
    }
    ck_assert_int_gt(now, 0);
    ck_assert_int_ne(now, victim);
    /* no state lost: counts intact, joins and leaves work */
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 10);
    ws_client_t *late = s_listener(1, sid, "ca");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 11);
    ws_destroy(&late);
    ck_assert_int_eq(ic_wait_int(s_h, 10, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     10);
    ws_send_text(spk, "{\"action\":\"endSession\"}");
    for (int i = 0; i < 10; i++) {
        char *m = ws_recv_type(ls[i], "sessionEnded", IC_WAIT_MS);
        ck_assert_ptr_nonnull(m);
        free(m);
        ws_destroy(&ls[i]);
    }
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_session_creation_rate_limit)
{
    char sid[80];
    for (int i = 0; i < 10; i++) {
        ws_client_t *c = s_speaker(i % 2, "prolific", sid);
        ws_close(c, 1000, "done");
        ws_destroy(&c);
    }
    char *token = ic_mint(&s_jwt, "prolific");
    ws_client_t *c = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=en&token=%s", token);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "code"), "RATE_LIMIT_EXCEEDED");
    ck_assert_int_ge(json_integer_value(json_object_get(j, "retryAfter")), 1);
    json_decref(j);
    ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), 4429);
    ws_destroy(&c);
    free(token);
}
END_TEST

START_TEST(test_failed_joins_rate_limited)
{
    /* runs last: it spends this address's failed-join budget (30 per hour) */
    int limited = 0;
    for (int i = 0; i < 40 && !limited; i++) {
        ws_client_t *c =
            ic_open(s_h, i % 2, "/ws?action=joinSession&sessionId=lost-code-%03d&targetLanguage=es",
                    100 + i);
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        if (strcmp(ic_get(j, "code"), "RATE_LIMIT_EXCEEDED") == 0) {
            limited = i;
            ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), 4429);
        } else
            ck_assert_str_eq(ic_get(j, "code"), "SESSION_NOT_FOUND");
        json_decref(j);
        ws_destroy(&c);
    }
    ck_assert_int_ge(limited, 25); /* earlier tests may have spent a few */
    ck_assert_int_le(limited, 30);
}
END_TEST

START_TEST(test_health_and_readiness)
{
    char body[1024];
    ck_assert_int_eq(
        http_get("127.0.0.1", harness_gateway_port(s_h, 0), "/healthz", body, sizeof body), 200);
    ck_assert_int_eq(
        http_get("127.0.0.1", harness_gateway_port(s_h, 1), "/readyz", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ready\":true"));
    ck_assert_int_eq(
        http_get("127.0.0.1", harness_gateway_port(s_h, 0), "/nothing", body, sizeof body), 404);
}
END_TEST

START_TEST(test_monitor_snapshot)
{
    json_t *j = ic_monitor_snapshot(s_h);
    json_t *procs = json_object_get(j, "processes");
    ck_assert(json_is_array(procs));
    /* two gateways, two control workers, the sweeper */
    ck_assert_int_ge((int)json_array_size(procs), 5);
    int gateways = 0;
    size_t i;
    json_t *row;
    json_array_foreach(procs, i, row) gateways += strcmp(ic_get(row, "kind"), "gateway") == 0;
    ck_assert_int_eq(gateways, 2);
    ck_assert(json_is_object(json_object_get(j, "totals")));
    json_decref(j);
}
END_TEST

START_TEST(test_gateway_drains_on_sigterm)
{
    char sid[80];
    ws_client_t *spk = s_speaker(0, "drain", sid);
    ws_client_t *l = s_listener(1, sid, "es");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 1);
    /* supervisorctl stop sends SIGTERM and waits for the drain to finish */
    ck_assert_int_eq(harness_ctl(s_h, "stop gateway-1"), 0);
    json_t *j = ic_json(ws_recv_type(l, "connectionRefreshRequired", IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "reason"), "serverShutdown");
    json_decref(j);
    ck_assert_int_eq(ws_wait_closed(l, IC_WAIT_MS), 1001);
    ws_destroy(&l);
    ck_assert_int_eq(ic_wait_int(s_h, 0, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     0);
    /* the listener comes back through the other gateway */
    ws_client_t *back = ic_open(
        s_h, 0, "/ws?action=refreshConnection&sessionId=%s&role=listener&targetLanguage=es", sid);
    j = ic_json(ws_recv_text(back, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "connectionRefreshComplete");
    json_decref(j);
    ck_assert_int_eq(harness_ctl(s_h, "start gateway-1"), 0);
    ck_assert_int_eq(harness_wait_ready(s_h, 20000), 0);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&back);
}
END_TEST

START_TEST(test_gateway_killed_is_cleaned_up)
{
    char sid[80];
    /* the speaker and two listeners on gateway 1, one listener on gateway 0 */
    ws_client_t *spk = s_speaker(1, "killed-gateway", sid);
    ws_client_t *a = s_listener(1, sid, "es"), *b = s_listener(1, sid, "ca");
    ws_client_t *c = s_listener(0, sid, "es");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 3);
    pid_t victim = harness_pid(s_h, "gateway-1");
    ck_assert_int_gt(victim, 0);
    kill(victim, SIGKILL);
    /* within the registration TTL plus a sweep: counts corrected, the speaker's grace begins */
    json_t *j = ic_json(ws_recv_type(c, "speakerDisconnected", 15000));
    json_decref(j);
    ck_assert_int_eq(ic_wait_int(s_h, 1, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     1);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs ca", sid), -1);
    /* the speaker never returns: the session ends for the survivor */
    j = ic_json(ws_recv_type(c, "sessionEnded", 15000));
    ck_assert_str_eq(ic_get(j, "reason"), "speakerTimeout");
    json_decref(j);
    ws_destroy(&c);
    ws_destroy(&spk);
    ws_destroy(&a);
    ws_destroy(&b);
    s_wait_gone(sid);
    ck_assert_int_eq(harness_wait_ready(s_h, 20000), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("system");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_health_and_readiness);
    tcase_add_test(tc, test_create_join_end_100_listeners);
    tcase_add_test(tc, test_600_joins_race_for_500_slots);
    tcase_add_test(tc, test_jwt_attack_list);
    tcase_add_test(tc, test_connect_refusals);
    tcase_add_test(tc, test_bad_frames_and_rate_limit);
    tcase_add_test(tc, test_controls_reach_listeners_on_both_gateways);
    tcase_add_test(tc, test_listener_leave_and_refresh);
    tcase_add_test(tc, test_speaker_drop_grace_and_return);
    tcase_add_test(tc, test_heartbeat_connection_age);
    tcase_add_test(tc, test_control_worker_killed_under_traffic);
    tcase_add_test(tc, test_monitor_snapshot);
    tcase_add_test(tc, test_gateway_drains_on_sigterm);
    tcase_add_test(tc, test_gateway_killed_is_cleaned_up);
    tcase_add_test(tc, test_session_creation_rate_limit);
    tcase_add_test(tc, test_failed_joins_rate_limited);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (s_problems)
        fprintf(stderr, "itest_session: %d sanitizer or crash reports in the logs\n", s_problems);
    return failed || s_problems ? 1 : 0;
}
