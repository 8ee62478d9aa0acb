/*  itest_venue.c -- a venue's audience behind one address: mistyped codes
    do not lock the hall out, enumeration still does, and a phone coming
    back to a talk that has ended is told so instead of "not found".

    A whole system with the default failed-join budget (600 per sliding
    hour per client address, docs/protocol.md "Guessing a code"); every
    client here is 127.0.0.1, as a hall behind one NAT address would be.
    The test that spends the address's budget runs last.
*/
#include "harness.h"
#include "itest_client.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET   "venue-test-secret-0123456789abcdef"
#define BUDGET   600 /* failed_joins_per_hour's default */
#define MISTYPED 30
#define VALID    100

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;

/* Failed joins counted for every address (one here: 127.0.0.1). */
static long long s_failures(void)
{
    redisReply *keys = redisCommand(harness_redis(s_h), "KEYS tolk:rl:joinfail:*");
    ck_assert_ptr_nonnull(keys);
    long long n = 0;
    for (size_t i = 0; i < keys->elements; i++)
        n += ic_redis_int(s_h, "ZCARD %s", keys->element[i]->str);
    freeReplyObject(keys);
    return n;
}

/* The first answer to a join with this query; asserts the gateway then
   closed the connection with close_code (0: 4404 or 4429, whichever the
   answer's status says). */
static json_t *s_join_answer(const char *query, int close_code)
{
    ws_client_t *c = ic_open(s_h, 0, "/ws?%s", query);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    if (!close_code)
        close_code = 4000 + (int)json_integer_value(json_object_get(j, "status"));
    ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), close_code);
    ws_destroy(&c);
    return j;
}

START_TEST(test_returning_listener_of_an_ended_session)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "venue-ended", sid, NULL);
    /* the code has the form with 3.7e9 values */
    ck_assert_int_eq((int)strlen(sid) - (int)(strrchr(sid, '-') - sid), 4);
    ws_client_t *l = ic_listener(s_h, 0, sid, "es", NULL);
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"endSession\"}"), 0);
    json_t *j = ic_json(ws_recv_type(l, "sessionEnded", IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "reason"), "endSession");
    json_decref(j);
    ck_assert_int_eq(ws_wait_closed(l, IC_WAIT_MS), 1000);
    ws_destroy(&l);
    ws_destroy(&spk);
    long long before = s_failures();
    /* the phone comes back: by a fresh join, and by a resume with lastSeq */
    char q[256];
    snprintf(q, sizeof q, "action=joinSession&sessionId=%s&targetLanguage=es", sid);
    j = s_join_answer(q, 1000);
    ic_assert_keys(j, "type", "sessionId", "reason", "timestamp", NULL);
    ck_assert_str_eq(ic_get(j, "type"), "sessionEnded");
    ck_assert_str_eq(ic_get(j, "sessionId"), sid);
    ck_assert_str_eq(ic_get(j, "reason"), "endSession");
    json_decref(j);
    snprintf(q, sizeof q,
             "action=refreshConnection&sessionId=%s&role=listener&targetLanguage=es&lastSeq=3",
             sid);
    j = s_join_answer(q, 1000);
    ck_assert_str_eq(ic_get(j, "type"), "sessionEnded");
    ck_assert_str_eq(ic_get(j, "reason"), "endSession");
    json_decref(j);
    /* neither is a failed join, and nothing joined the ended session */
    ck_assert_int_eq(s_failures(), before);
    ck_assert_int_eq(ic_redis_int(s_h, "EXISTS tolk:{%s}:session", sid), 0);
    ck_assert_int_eq(ic_redis_int(s_h, "EXISTS tolk:{%s}:members", sid), 0);
    /* a code that never existed is still "not found", and counted */
    j = s_join_answer("action=joinSession&sessionId=never-was-123-456&targetLanguage=es", 4404);
    ic_check_error(j, 404, "SESSION_NOT_FOUND");
    json_decref(j);
    ck_assert_int_eq(s_failures(), before + 1);
}
END_TEST

START_TEST(test_mistyped_codes_do_not_lock_out_the_hall)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "venue-hall", sid, NULL);
    long long spent = s_failures(); /* the other test's one mistyped code */
    int64_t t0 = ic_now_ms();
    char q[256];
    for (int i = 0; i < MISTYPED; i++) {
        snprintf(q, sizeof q, "action=joinSession&sessionId=%.*s-%03d-%03d&targetLanguage=es",
                 (int)(strchr(strchr(sid, '-') + 1, '-') - sid), sid, 100 + i, i);
        json_t *j = s_join_answer(q, 4404);
        ic_check_error(j, 404, "SESSION_NOT_FOUND");
        json_decref(j);
    }
    /* then the whole row types it right: every one is admitted */
    int admitted = 0;
    for (int i = 0; i < VALID; i++) {
        ws_client_t *l = ic_listener(s_h, 0, sid, i % 2 ? "es" : "fr", NULL);
        admitted++;
        ws_close(l, 1000, "bye");
        ws_destroy(&l);
    }
    int64_t took = ic_now_ms() - t0;
    printf("itest_venue: %d mistyped codes then %d valid joins from one address in %.1f s: "
           "%d admitted\n",
           MISTYPED, VALID, took / 1000.0, admitted);
    fflush(stdout);
    ck_assert_int_eq(admitted, VALID);
    ck_assert_int_lt(took, 60000);
    /* an enumerator at the same address: refused once the budget is spent */
    int not_found = 0;
    json_t *j = NULL;
    for (int i = 0; i < BUDGET + 5; i++) {
        snprintf(q, sizeof q, "action=joinSession&sessionId=enum-code-%03d-%03d&targetLanguage=es",
                 100 + i / 1000, i % 1000);
        j = s_join_answer(q, 0);
        if (strcmp(ic_get(j, "code"), "SESSION_NOT_FOUND") != 0)
            break;
        not_found++;
        json_decref(j);
        j = NULL;
    }
    printf("itest_venue: the enumerator got %d answers before the refusal (budget %d, %lld spent "
           "before)\n",
           not_found, BUDGET, spent + MISTYPED);
    fflush(stdout);
    ck_assert_ptr_nonnull(j);
    ic_check_error(j, 429, "RATE_LIMIT_EXCEEDED");
    long long retry = ic_int(j, "retryAfter");
    ck_assert_msg(retry >= 3500 && retry <= 3600, "retryAfter %lld", retry);
    json_decref(j);
    ck_assert_int_eq(not_found + MISTYPED + spent, BUDGET);
    /* and now even the right code waits: admitting it would tell the
       enumerator which guess is live */
    snprintf(q, sizeof q, "action=joinSession&sessionId=%s&targetLanguage=es", sid);
    j = s_join_answer(q, 4429);
    ic_check_error(j, 429, "RATE_LIMIT_EXCEEDED");
    json_decref(j);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_ASR_ENGINE=loadtest",
                                         "TOLK_LOADTEST_CAPTION_MS=3600000", NULL}};
    s_h = harness_start(&opts);
    if (!s_h)
        return 1; /* harness_start printed why */
    Suite *s = suite_create("venue");
    TCase *tc = tcase_create("one address");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_returning_listener_of_an_ended_session);
    tcase_add_test(tc, test_mistyped_codes_do_not_lock_out_the_hall); /* last: spends the budget */
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int problems = harness_stop(&s_h);
    return failed || problems ? 1 : 0;
}
