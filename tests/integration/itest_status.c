/*  itest_status.c -- the status worker end to end: getSessionStatus
    answers and the sessionStatus pushes, over real WebSockets against a
    real redis-server, two gateways, two control workers, two status
    workers and the sweeper under supervisord.

    Two systems: one with a long push period (600 s) for the requested
    status, refusals, rate limit and change-triggered pushes, where no
    periodic push can get in the way; and one with a 2 s period, started by
    the periodic test itself. With two status workers running, the tests
    also check that no event is pushed twice. That a status costs the same
    with 5 or 500 listeners is a property of the code (one Lua script over
    the session's own keys, see common/status_store.c), not timed here.
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "status-test-secret-0123456789abcdef"

static harness_t *s_h; /* the system the current test talks to */

/* ------------------------------------------------------------ helpers */

/* Start a system with two gateways, two control and two status workers. */
static harness_t *s_start(const char *period_env)
{
    harness_opts_t opts = {.gateways = 2,
                           .control_workers = 2,
                           .status_workers = 2,
                           .audio_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, period_env,
                                         "TOLK_STATUS_POLL_MS=100", "TOLK_STATUS_RATE_PER_S=2",
                                         "TOLK_STATUS_CHANGE_PCT=10", NULL}};
    return harness_start(&opts);
}

/* Tokens as this system demands them: its secret, no issuer or audience. */
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* The speaker of sid comes back on gateway gw; its first push (which may
   overtake connectionRefreshComplete) goes to *push. */
static ws_client_t *s_speaker_refresh(int gw, const char *sub, const char *sid, json_t **push)
{
    char *token = ic_mint(&s_jwt, sub);
    ws_client_t *c = ic_open(
        s_h, gw, "/ws?action=refreshConnection&sessionId=%s&role=speaker&token=%s", sid, token);
    free(token);
    bool refreshed = false;
    *push = NULL;
    while (!refreshed || !*push) {
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        if (strcmp(ic_get(j, "type"), "connectionRefreshComplete") == 0) {
            refreshed = true;
            json_decref(j);
        } else {
            ck_assert_str_eq(ic_get(j, "type"), "sessionStatus");
            *push = j;
        }
    }
    return c;
}

/* Newest push timestamp seen by this test process. */
static long long s_newest;

/* Next sessionStatus push on c within timeout_ms, other messages skipped.
   With two status workers, a push decided earlier can, rarely, arrive
   after one decided later (two DEALERs); such a stale one is skipped. */
static json_t *s_next_status(ws_client_t *c, int timeout_ms)
{
    for (;;) {
        json_t *j = ic_json(ws_recv_type(c, "sessionStatus", timeout_ms));
        long long ts = ic_int(j, "timestamp");
        if (ts >= s_newest) {
            s_newest = ts;
            return j;
        }
        json_decref(j);
    }
}

/* Ask for the status and return the answer: a requested sessionStatus or
   an error. Pushes that arrive first are skipped. */
static json_t *s_request(ws_client_t *c)
{
    ck_assert_int_eq(ws_send_text(c, "{\"action\":\"getSessionStatus\"}"), 0);
    for (;;) {
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        if (strcmp(ic_get(j, "type"), "error") == 0 ||
            (strcmp(ic_get(j, "type"), "sessionStatus") == 0 &&
             strcmp(ic_get(j, "updateReason"), "requested") == 0))
            return j;
        json_decref(j);
    }
}

/* Every field of a sessionStatus, and its duration against createdAt. */
static void s_check_status(json_t *j, const char *sid, const char *reason, long long count,
                           json_t *dist)
{
    ic_assert_keys(j, "type", "sessionId", "listenerCount", "languageDistribution",
                   "sessionDuration", "broadcastState", "updateReason", "timestamp", NULL);
    ck_assert_str_eq(ic_get(j, "type"), "sessionStatus");
    ck_assert_str_eq(ic_get(j, "sessionId"), sid);
    ck_assert_str_eq(ic_get(j, "updateReason"), reason);
    ck_assert_int_eq(ic_int(j, "listenerCount"), count);
    ck_assert_msg(
        json_equal(json_object_get(j, "languageDistribution"), dist), "languageDistribution %s",
        json_dumps(json_object_get(j, "languageDistribution"), JSON_COMPACT | JSON_SORT_KEYS));
    json_decref(dist);
    long long created = ic_redis_int(s_h, "HGET tolk:{%s}:session createdAt", sid);
    ck_assert_int_eq(ic_int(j, "sessionDuration"), (ic_int(j, "timestamp") - created) / 1000);
    json_t *bs = json_object_get(j, "broadcastState");
    ic_assert_keys(bs, "isActive", "isPaused", "isMuted", "volume", "lastStateChange", NULL);
    ck_assert(json_is_true(json_object_get(bs, "isActive")));
    ck_assert_int_eq(ic_int(bs, "lastStateChange"),
                     ic_redis_int(s_h, "HGET tolk:{%s}:session lastStateChange", sid));
}

/* j is an error with this status and code, refusing getSessionStatus;
   returned for the callers' key checks. */
static json_t *s_check_error(json_t *j, int status, const char *code)
{
    ic_check_error(j, status, code);
    ck_assert_str_eq(ic_get(j, "action"), "getSessionStatus");
    return j;
}

static void s_bye(ws_client_t **c)
{
    ws_close(*c, 1000, "done");
    ws_destroy(c);
}

/* ----------------------------------------------- long-period system */

START_TEST(test_requested_status)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "status-requested", sid, NULL);
    ws_client_t *a = ic_listener(s_h, 0, sid, "es", NULL),
                *b = ic_listener(s_h, 1, sid, "es", NULL),
                *c = ic_listener(s_h, 1, sid, "fr", NULL),
                *d = ic_listener(s_h, 0, sid, "ca", NULL);
    s_bye(&d); /* ca drops to 0 listeners: it must not be listed */
    ck_assert_int_eq(ic_wait_int(s_h, 3, IC_WAIT_MS, "HGET tolk:{%s}:session listenerCount", sid),
                     3);
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"pauseBroadcast\"}"), 0);
    json_decref(ic_json(ws_recv_type(spk, "broadcastPaused", IC_WAIT_MS)));
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"setVolume\",\"volumeLevel\":0.5}"), 0);
    json_decref(ic_json(ws_recv_type(spk, "volumeChanged", IC_WAIT_MS)));
    sleep(1); /* the behaviour: a session old enough for a non-zero duration */
    json_t *j = s_request(spk);
    s_check_status(j, sid, "requested", 3, json_pack("{s:i, s:i}", "es", 2, "fr", 1));
    ck_assert_int_ge(ic_int(j, "sessionDuration"), 1);
    json_t *bs = json_object_get(j, "broadcastState");
    ck_assert(json_is_true(json_object_get(bs, "isPaused")));
    ck_assert(json_is_false(json_object_get(bs, "isMuted")));
    ck_assert(json_real_value(json_object_get(bs, "volume")) == 0.5);
    json_decref(j);
    /* what it reported is what Redis holds */
    char key[128];
    snprintf(key, sizeof key, "tolk:{%s}:langs", sid);
    json_t *langs = ic_hgetall(s_h, "HGETALL %s", key),
           *want = json_pack("{s:s, s:s}", "es", "2", "fr", "1");
    ck_assert(json_equal(langs, want));
    json_decref(langs);
    json_decref(want);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 3);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session isPaused", sid), 1);
    s_bye(&spk);
    ws_destroy(&a);
    ws_destroy(&b);
    ws_destroy(&c);
}
END_TEST

START_TEST(test_listener_asking_is_refused)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 1, &s_jwt, "status-listener", sid, NULL);
    ws_client_t *l = ic_listener(s_h, 0, sid, "es", NULL);
    /* let the join's push land, so nothing else changes the session below */
    json_t *j = s_next_status(spk, IC_WAIT_MS);
    ck_assert_str_eq(ic_get(j, "updateReason"), "newLanguage");
    json_decref(j);
    char key[128];
    snprintf(key, sizeof key, "tolk:{%s}:session", sid);
    json_t *before = ic_hgetall(s_h, "HGETALL %s", key);
    ck_assert_int_eq(ws_send_text(l, "{\"action\":\"getSessionStatus\"}"), 0);
    j = s_check_error(ic_json(ws_recv_text(l, IC_WAIT_MS)), 403, "UNAUTHORIZED");
    ic_assert_keys(j, "type", "code", "status", "message", "action", "timestamp", NULL);
    json_decref(j);
    json_t *after = ic_hgetall(s_h, "HGETALL %s", key);
    ck_assert(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    /* a refused query is not counted against the speaker */
    ck_assert_int_eq(ic_redis_int(s_h, "EXISTS tolk:{%s}:statusrate", sid), 0);
    j = s_request(spk);
    s_check_status(j, sid, "requested", 1, json_pack("{s:i}", "es", 1));
    json_decref(j);
    /* the listener's connection still works */
    ck_assert_int_eq(ws_send_text(l, "{\"action\":\"pausePlayback\"}"), 0);
    json_decref(ic_json(ws_recv_type(l, "playbackPaused", IC_WAIT_MS)));
    s_bye(&spk);
    ws_destroy(&l);
}
END_TEST

START_TEST(test_rate_limit)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "status-rate", sid, NULL);
    /* three at once: the third is over 2 per second */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"getSessionStatus\"}"), 0);
    for (int i = 0; i < 2; i++) {
        json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
        s_check_status(j, sid, "requested", 0, json_object());
        json_decref(j);
    }
    json_t *j = s_check_error(ic_json(ws_recv_text(spk, IC_WAIT_MS)), 429, "RATE_LIMIT_EXCEEDED");
    ic_assert_keys(j, "type", "code", "status", "message", "action", "retryAfter", "timestamp",
                   NULL);
    ck_assert_int_eq(ic_int(j, "retryAfter"), 1);
    json_decref(j);
    /* the rate limit's window: retryAfter (1 s), and a little more */
    sleep(1);
    usleep(100000);
    j = s_request(spk);
    s_check_status(j, sid, "requested", 0, json_object());
    json_decref(j);
    s_bye(&spk);
}
END_TEST

START_TEST(test_count_change_pushes)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "status-count", sid, NULL);
    ws_client_t *ls[13];
    for (int i = 0; i < 10; i++)
        ls[i] = ic_listener(s_h, i % 2, sid, "es", NULL);
    /* the joins push (a new language, counts up from 0) until one shows 10:
       from any base below 10, 10 is more than 10 % away */
    json_t *j;
    for (;;) {
        j = s_next_status(spk, IC_WAIT_MS);
        const char *reason = ic_get(j, "updateReason");
        ck_assert_msg(strcmp(reason, "newLanguage") == 0 ||
                          strcmp(reason, "listenerCountChange") == 0,
                      "unexpected reason %s", reason);
        if (ic_int(j, "listenerCount") == 10)
            break;
        json_decref(j);
    }
    s_check_status(j, sid, ic_get(j, "updateReason"), 10, json_pack("{s:i}", "es", 10));
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session stLastPushMs", sid),
                     ic_int(j, "timestamp"));
    json_decref(j);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session stLastCount", sid), 10);
    char *seen = ic_redis_str(s_h, "HGET tolk:{%s}:session stLangs", sid);
    ck_assert_str_eq(seen, ",es,");
    free(seen);
    /* 10 -> 12 is 20 %: pushed */
    ls[10] = ic_listener(s_h, 1, sid, "es", NULL);
    ls[11] = ic_listener(s_h, 0, sid, "es", NULL);
    j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "listenerCountChange", 12, json_pack("{s:i}", "es", 12));
    json_decref(j);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session stLastCount", sid), 12);
    /* 12 -> 13 is 8 %: not pushed (many polls happen in this window) */
    ls[12] = ic_listener(s_h, 1, sid, "es", NULL);
    char *none = ws_recv_type(spk, "sessionStatus", 1500);
    ck_assert_msg(none == NULL, "pushed for a change under the threshold: %s", none);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session stLastCount", sid), 12);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 13);
    /* 13 -> 10 is 17 % under the pushed 12: pushed, with the count it saw */
    for (int i = 0; i < 3; i++)
        ws_destroy(&ls[i]);
    j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "listenerCountChange", 10, json_pack("{s:i}", "es", 10));
    json_decref(j);
    s_bye(&spk);
    for (int i = 3; i < 13; i++)
        ws_destroy(&ls[i]);
}
END_TEST

START_TEST(test_new_language_pushes)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 1, &s_jwt, "status-language", sid, NULL);
    ws_client_t *a = ic_listener(s_h, 0, sid, "es", NULL);
    /* 0 -> 1 is also a count change: the new language wins */
    json_t *j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "newLanguage", 1, json_pack("{s:i}", "es", 1));
    json_decref(j);
    ws_client_t *b = ic_listener(s_h, 1, sid, "fr", NULL);
    j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "newLanguage", 2, json_pack("{s:i, s:i}", "es", 1, "fr", 1));
    json_decref(j);
    /* a listener moving to a language nobody had: same count, new language */
    ck_assert_int_eq(ws_send_text(b, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"ca\"}"),
                     0);
    json_decref(ic_json(ws_recv_type(b, "languageChanged", IC_WAIT_MS)));
    j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "newLanguage", 2, json_pack("{s:i, s:i}", "es", 1, "ca", 1));
    json_decref(j);
    /* a known language: only the count change (2 -> 3) */
    ws_client_t *c = ic_listener(s_h, 0, sid, "es", NULL);
    j = s_next_status(spk, IC_WAIT_MS);
    s_check_status(j, sid, "listenerCountChange", 3, json_pack("{s:i, s:i}", "es", 2, "ca", 1));
    json_decref(j);
    /* back to fr, which a listener had before in this session: no push */
    ck_assert_int_eq(ws_send_text(b, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"fr\"}"),
                     0);
    json_decref(ic_json(ws_recv_type(b, "languageChanged", IC_WAIT_MS)));
    char *none = ws_recv_type(spk, "sessionStatus", 1500);
    ck_assert_msg(none == NULL, "pushed for a language seen before: %s", none);
    char *seen = ic_redis_str(s_h, "HGET tolk:{%s}:session stLangs", sid);
    ck_assert_str_eq(seen, ",es,fr,ca,");
    free(seen);
    /* and a request shows the move */
    j = s_request(spk);
    s_check_status(j, sid, "requested", 3, json_pack("{s:i, s:i}", "es", 2, "fr", 1));
    json_decref(j);
    s_bye(&spk);
    ws_destroy(&a);
    ws_destroy(&b);
    ws_destroy(&c);
}
END_TEST

START_TEST(test_no_push_while_speaker_away)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "status-grace", sid, NULL);
    ws_client_t *a = ic_listener(s_h, 1, sid, "es", NULL);
    json_t *j = s_next_status(spk, IC_WAIT_MS);
    ck_assert_str_eq(ic_get(j, "updateReason"), "newLanguage");
    json_decref(j);
    ws_destroy(&spk); /* abnormal drop: grace period */
    json_decref(ic_json(ws_recv_type(a, "speakerDisconnected", IC_WAIT_MS)));
    char *last = ic_redis_str(s_h, "HGET tolk:{%s}:session stLastPushMs", sid);
    ws_client_t *b = ic_listener(s_h, 0, sid, "fr", NULL);
    /* ten polls of each status worker after the join (status_poll_ms is
       100): any of them would have pushed the new language */
    long long polls = ic_feed_counter(s_h, "status", "polls", 3000);
    ck_assert_int_ge(ic_wait_feed_counter(s_h, "status", "polls", polls + 20, 15000), polls + 20);
    char *now = ic_redis_str(s_h, "HGET tolk:{%s}:session stLastPushMs", sid);
    ck_assert_str_eq(now, last);
    free(now);
    free(last);
    char *seen = ic_redis_str(s_h, "HGET tolk:{%s}:session stLangs", sid);
    ck_assert_str_eq(seen, ",es,");
    free(seen);
    /* the speaker returns on the other gateway and hears what it missed */
    spk = s_speaker_refresh(1, "status-grace", sid, &j);
    s_check_status(j, sid, "newLanguage", 2, json_pack("{s:i, s:i}", "es", 1, "fr", 1));
    json_decref(j);
    s_bye(&spk);
    ws_destroy(&a);
    ws_destroy(&b);
}
END_TEST

START_TEST(test_session_gone)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 1, &s_jwt, "status-gone", sid, NULL);
    /* the session vanishes under a connected speaker (as when another
       process ends it at the same moment) */
    redisReply *r = redisCommand(harness_redis(s_h), "DEL tolk:{%s}:session", sid);
    freeReplyObject(r);
    json_t *j = s_check_error(s_request(spk), 404, "SESSION_NOT_FOUND");
    ic_assert_keys(j, "type", "code", "status", "message", "action", "timestamp", NULL);
    json_decref(j);
    ck_assert_int_eq(ic_redis_int(s_h, "EXISTS tolk:{%s}:statusrate", sid), 0);
    s_bye(&spk);
    r = redisCommand(harness_redis(s_h), "DEL tolk:{%s}:gws tolk:{%s}:members", sid, sid);
    freeReplyObject(r);
    r = redisCommand(harness_redis(s_h), "ZREM tolk:sessions %s", sid);
    freeReplyObject(r);
}
END_TEST

/* --------------------------------------------- periodic (own system) */

/* One push seen by the periodic test. */
typedef struct {
    long long ts;  /* its timestamp: when it was decided */
    bool periodic; /* its updateReason was periodic */
} push_t;

/* Decision order of two pushes, for qsort. */
static int s_by_ts(const void *a, const void *b)
{
    long long x = ((const push_t *)a)->ts, y = ((const push_t *)b)->ts;
    return x < y ? -1 : x > y;
}

/* Record one push. */
static long long s_note(push_t *pushes, int *n, json_t *j)
{
    ck_assert_int_lt(*n, 64);
    pushes[*n].ts = ic_int(j, "timestamp");
    pushes[*n].periodic = strcmp(ic_get(j, "updateReason"), "periodic") == 0;
    return pushes[(*n)++].ts;
}

START_TEST(test_periodic_pushes)
{
    harness_t *h = s_start("TOLK_STATUS_PERIOD_S=2");
    ck_assert_ptr_nonnull(h);
    s_h = h;
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 1, &s_jwt, "status-periodic", sid, NULL);
    push_t pushes[64]; /* every push seen, in arrival order */
    int n = 0;
    /* alone: two periodic pushes, one period apart */
    long long last = 0;
    for (int i = 0; i < 2; i++) {
        json_t *j = s_next_status(spk, 8000);
        s_check_status(j, sid, "periodic", 0, json_object());
        ck_assert_int_ge(ic_int(j, "sessionDuration"), 2 * (i + 1));
        last = s_note(pushes, &n, j);
        json_decref(j);
    }
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session stLastPushMs", sid), last);
    /* ten listeners: pushes until one shows 10 */
    ws_client_t *ls[11];
    for (int i = 0; i < 10; i++)
        ls[i] = ic_listener(s_h, i % 2, sid, "es", NULL);
    for (long long count = -1; count != 10;) {
        json_t *j = s_next_status(spk, 8000);
        s_note(pushes, &n, j);
        count = ic_int(j, "listenerCount");
        json_decref(j);
    }
    /* 10 -> 11 is exactly 10 %: no listenerCountChange; the next push that
       shows 11 is the periodic one */
    ls[10] = ic_listener(s_h, 1, sid, "es", NULL);
    for (long long count = -1; count != 11;) {
        json_t *j = s_next_status(spk, 8000);
        s_note(pushes, &n, j);
        count = ic_int(j, "listenerCount");
        ck_assert_str_eq(ic_get(j, "updateReason"), "periodic");
        if (count == 11)
            s_check_status(j, sid, "periodic", 11, json_pack("{s:i}", "es", 11));
        json_decref(j);
    }
    /* two status workers, each event pushed once: in decision order, every
       periodic push is a whole period after the push before it */
    qsort(pushes, (size_t)n, sizeof *pushes, s_by_ts);
    for (int i = 1; i < n; i++) {
        ck_assert_msg(pushes[i].ts > pushes[i - 1].ts, "two pushes decided at %lld", pushes[i].ts);
        if (pushes[i].periodic)
            ck_assert_msg(pushes[i].ts - pushes[i - 1].ts >= 2000,
                          "periodic push %lld ms after the last", pushes[i].ts - pushes[i - 1].ts);
    }
    s_bye(&spk);
    for (int i = 0; i < 11; i++)
        ws_destroy(&ls[i]);
    ck_assert_int_eq(harness_stop(&h), 0);
    s_h = NULL;
}
END_TEST

int main(void)
{
    /* the periodic test brings its own system, so it runs first, alone */
    Suite *s = suite_create("status");
    TCase *periodic = tcase_create("periodic");
    tcase_set_timeout(periodic, 60);
    tcase_add_test(periodic, test_periodic_pushes);
    suite_add_tcase(s, periodic);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    s_h = s_start("TOLK_STATUS_PERIOD_S=600");
    if (!s_h) {
        fprintf(stderr, "itest_status: the system did not start\n");
        return 1;
    }
    s = suite_create("status");
    TCase *tc = tcase_create("requests and changes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_requested_status);
    tcase_add_test(tc, test_listener_asking_is_refused);
    tcase_add_test(tc, test_rate_limit);
    tcase_add_test(tc, test_count_change_pushes);
    tcase_add_test(tc, test_new_language_pushes);
    tcase_add_test(tc, test_no_push_while_speaker_away);
    tcase_add_test(tc, test_session_gone);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed += srunner_ntests_failed(sr);
    srunner_free(sr);
    int problems = harness_stop(&s_h); /* sanitizer reports in the servers' logs */
    if (problems)
        fprintf(stderr, "itest_status: %d sanitizer or crash reports in the logs\n", problems);
    return failed == 0 && problems == 0 ? 0 : 1;
}
