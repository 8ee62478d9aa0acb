/*  test_frame.c -- unit tests of the gateway's text frame verdicts
    (gateway/frame.c).

    frame_check_text is the only thing between a client's bytes and the
    workers, so every refusal it promises is reached here: not JSON, not an
    object, no action, an unknown action, a control message over 4 KB, and
    the sendAudio exemption from that limit. Frames are copied into
    exactly-sized heap blocks without a terminating NUL, as the gateway's
    receive buffer holds them, so under ASan (make SAN=1) a read one byte
    past the end fails.
*/
#include "../../gateway/frame.h" /* the Makefile has no -Igateway */

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Last exact-size copy handed to the checker, freed by the fixture. */
static char *s_exact;

/* Free the last copy, so leak checkers report only real leaks. */
static void s_teardown(void)
{
    free(s_exact);
    s_exact = NULL;
}

/* Judge text[0..len) from an unterminated exact-size heap copy. */
static int s_check_bytes(const char *text, size_t len, frame_verdict_t *v)
{
    free(s_exact);
    s_exact = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(s_exact);
    memcpy(s_exact, text, len);
    return frame_check_text(s_exact, len, v);
}

/* Judge a C string (its NUL is not passed). */
static int s_check(const char *text, frame_verdict_t *v)
{
    return s_check_bytes(text, strlen(text), v);
}

/* A malloc'd JSON object of exactly len bytes naming action, padded with a
   "pad" string member; the size limit tests need byte-exact frames. */
static char *s_sized(const char *action, size_t len)
{
    char head[128];
    int n = snprintf(head, sizeof head, "{\"action\":\"%s\",\"pad\":\"", action);
    ck_assert_int_gt(n, 0);
    size_t fixed = (size_t)n + 2; /* the closing quote and brace */
    ck_assert_uint_ge(len, fixed);
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, (size_t)n);
    memset(s + n, 'x', len - fixed);
    memcpy(s + len - 2, "\"}", 2);
    s[len] = 0;
    return s;
}

/* Assert a refusal with the given status and code; the route is NONE. */
static void s_assert_refused(const char *text, size_t len, int status, const char *code)
{
    frame_verdict_t v;
    int rc = s_check_bytes(text, len, &v);
    ck_assert_msg(rc == -1, "%.60s: accepted", text);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
    ck_assert_int_eq(v.status, status);
    ck_assert_str_eq(v.code, code);
    ck_assert_ptr_nonnull(v.message);
    ck_assert_int_eq(v.rate_limited, 0);
}

/* The routing table as the protocol defines it, kept apart from frame.c's
   own copy so a changed route in frame.c shows up here. */
static const struct {
    const char *name;
    frame_route_t route;
} s_expected[] = {
    {"heartbeat", FRAME_ROUTE_HEARTBEAT},        {"pauseBroadcast", FRAME_ROUTE_CONTROL},
    {"resumeBroadcast", FRAME_ROUTE_CONTROL},    {"muteBroadcast", FRAME_ROUTE_CONTROL},
    {"unmuteBroadcast", FRAME_ROUTE_CONTROL},    {"setVolume", FRAME_ROUTE_CONTROL},
    {"speakerStateChange", FRAME_ROUTE_CONTROL}, {"endSession", FRAME_ROUTE_CONTROL},
    {"pausePlayback", FRAME_ROUTE_CONTROL},      {"resumePlayback", FRAME_ROUTE_CONTROL},
    {"changeLanguage", FRAME_ROUTE_CONTROL},     {"setVocabulary", FRAME_ROUTE_CONTROL},
    {"getSessionStatus", FRAME_ROUTE_STATUS},    {"sendAudio", FRAME_ROUTE_AUDIO},
};
#define EXPECTED_COUNT (sizeof s_expected / sizeof s_expected[0])

/* ---------------------------------------------------------------------
   Routing
*/

START_TEST(test_every_action_routes)
{
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"action\":\"%s\",\"timestamp\":1700000000000}",
                 s_expected[i].name);
        frame_verdict_t v;
        int rc = s_check(text, &v);
        ck_assert_msg(rc == 0, "%s refused: %s", s_expected[i].name, v.code ? v.code : "?");
        ck_assert_msg(v.route == s_expected[i].route, "%s routed to %d", s_expected[i].name,
                      v.route);
        ck_assert_str_eq(v.action, s_expected[i].name);
        ck_assert_int_eq(v.status, 0);
        ck_assert_ptr_null(v.code);
        /* only audio is exempt from the per-connection control rate */
        ck_assert_int_eq(v.rate_limited, s_expected[i].route != FRAME_ROUTE_AUDIO);
    }
}
END_TEST

START_TEST(test_heartbeat)
{
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"heartbeat\"}", &v), 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_HEARTBEAT);
    ck_assert_str_eq(v.action, "heartbeat");
}
END_TEST

START_TEST(test_action_anywhere)
{
    /* members before and after the action, whitespace, nesting */
    frame_verdict_t v;
    ck_assert_int_eq(s_check(" \n{ \"volume\" : 0.5 , \"nested\":{\"action\":\"endSession\"},"
                             "\"action\" : \"setVolume\" }\t",
                             &v),
                     0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_CONTROL);
    ck_assert_str_eq(v.action, "setVolume");
}
END_TEST

START_TEST(test_action_case_sensitive)
{
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"HEARTBEAT\"}", &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_int_eq(s_check("{\"action\":\"sendaudio\"}", &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_int_eq(s_check("{\"action\":\"sendAudio \"}", &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_int_eq(s_check("{\"action\":\"\"}", &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
}
END_TEST

START_TEST(test_escaped_action_name)
{
    /* JSON escapes are decoded before the table lookup */
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"\\u0073endAudio\"}", &v), 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_AUDIO);
    ck_assert_str_eq(v.action, "sendAudio");
}
END_TEST

START_TEST(test_nul_in_action)
{
    /* "heartbeat\u0000x" must not pass as heartbeat by C string truncation */
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"heartbeat\\u0000x\"}", &v), -1);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
    ck_assert_int_eq(v.status, 400);
}
END_TEST

/* ---------------------------------------------------------------------
   Malformed frames
*/

START_TEST(test_not_json)
{
    static const char *const bad[] = {
        "",
        "hello",
        "{",
        "}",
        "{\"action\":\"heartbeat\"",
        "{\"action\":\"heartbeat\",}",
        "{action:\"heartbeat\"}",
        "{'action':'heartbeat'}",
        "{\"action\":\"heartbeat\"} {}",
        "{\"action\":\"heartbeat\"}x",
        "[{\"action\":\"heartbeat\"}]", /* array */
        "[]",
        "\"heartbeat\"", /* string */
        "42",
        "null",
        "true",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_assert_refused(bad[i], strlen(bad[i]), 400, "INVALID_MESSAGE");
}
END_TEST

START_TEST(test_no_action)
{
    static const char *const bad[] = {
        "{}",
        "{\"type\":\"heartbeat\"}",
        "{\"Action\":\"heartbeat\"}",
        "{\"action\":null}",
        "{\"action\":1}",
        "{\"action\":true}",
        "{\"action\":[\"heartbeat\"]}",
        "{\"action\":{\"name\":\"heartbeat\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_assert_refused(bad[i], strlen(bad[i]), 400, "INVALID_MESSAGE");
        frame_verdict_t v;
        s_check(bad[i], &v);
        ck_assert_str_eq(v.action, "");
    }
}
END_TEST

START_TEST(test_unknown_action)
{
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"launchMissiles\"}", &v), -1);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
    ck_assert_int_eq(v.status, 400);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_str_eq(v.action, "launchMissiles");
    /* actions that belong to the connect URL are not frame actions */
    ck_assert_int_eq(s_check("{\"action\":\"joinSession\"}", &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_str_eq(v.action, "joinSession");
}
END_TEST

START_TEST(test_duplicate_keys)
{
    static const char *const dup[] = {
        "{\"action\":\"heartbeat\",\"action\":\"sendAudio\"}",
        "{\"action\":\"setVolume\",\"volume\":1,\"volume\":2}",
        "{\"action\":\"setVolume\",\"o\":{\"a\":1,\"a\":1}}", /* nested */
    };
    for (size_t i = 0; i < sizeof dup / sizeof dup[0]; i++)
        s_assert_refused(dup[i], strlen(dup[i]), 400, "INVALID_MESSAGE");
}
END_TEST

START_TEST(test_invalid_utf8)
{
    static const char *const bad[] = {
        "{\"action\":\"heart\xff"
        "beat\"}",
        "{\"action\":\"setVolume\",\"note\":\"\xc3\"}",         /* truncated sequence */
        "{\"action\":\"setVolume\",\"note\":\"\xc0\xaf\"}",     /* overlong '/' */
        "{\"action\":\"setVolume\",\"note\":\"\xed\xa0\x80\"}", /* UTF-16 surrogate */
        "{\"action\":\"setVolume\",\"n\xfe\":1}",               /* in a key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_assert_refused(bad[i], strlen(bad[i]), 400, "INVALID_MESSAGE");

    /* valid multi-byte text is fine */
    frame_verdict_t v;
    ck_assert_int_eq(
        s_check("{\"action\":\"setVolume\",\"note\":\"caf\xc3\xa9 \xe2\x82\xac\"}", &v), 0);
}
END_TEST

START_TEST(test_raw_nul_byte)
{
    static const char trailing[] = "{\"action\":\"heartbeat\"}\0";
    static const char inside[] = "{\"action\":\"heart\0beat\"}";
    s_assert_refused(trailing, sizeof trailing - 1, 400, "INVALID_MESSAGE");
    s_assert_refused(inside, sizeof inside - 1, 400, "INVALID_MESSAGE");
}
END_TEST

START_TEST(test_long_action_name)
{
    /* longer than v.action: refused as unknown, never copied past the end */
    char name[101];
    memset(name, 'a', 100);
    name[100] = 0;
    char text[160];
    snprintf(text, sizeof text, "{\"action\":\"%s\"}", name);
    frame_verdict_t v;
    memset(&v, 0x5a, sizeof v);
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
    ck_assert_int_eq(v.status, 400);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_uint_lt(strnlen(v.action, sizeof v.action), sizeof v.action);

    /* a known action's name followed by junk is not that action */
    snprintf(text, sizeof text, "{\"action\":\"sendAudio%s\"}", name);
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
}
END_TEST

START_TEST(test_action_buffer_edge)
{
    /* the longest name v.action holds is copied whole; one more is not copied */
    char name[64];
    size_t longest = sizeof(((frame_verdict_t *)0)->action) - 1;
    memset(name, 'b', longest);
    name[longest] = 0;
    char text[128];
    snprintf(text, sizeof text, "{\"action\":\"%s\"}", name);
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_str_eq(v.action, name);

    name[longest] = 'b';
    name[longest + 1] = 0;
    snprintf(text, sizeof text, "{\"action\":\"%s\"}", name);
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_str_eq(v.code, "INVALID_ACTION");
    ck_assert_str_eq(v.action, "");
}
END_TEST

/* ---------------------------------------------------------------------
   Size limits
*/

START_TEST(test_control_at_limit)
{
    char *text = s_sized("setVolume", FRAME_CONTROL_MAX);
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_CONTROL);
    ck_assert_int_eq(v.rate_limited, 1);
    free(text);
}
END_TEST

START_TEST(test_control_over_limit)
{
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        if (s_expected[i].route == FRAME_ROUTE_AUDIO)
            continue;
        /* setVocabulary has its own, larger limit (test_vocabulary_limit) */
        size_t over = strcmp(s_expected[i].name, "setVocabulary") == 0 ? FRAME_VOCABULARY_MAX + 1
                                                                       : FRAME_CONTROL_MAX + 1;
        char *text = s_sized(s_expected[i].name, over);
        frame_verdict_t v;
        ck_assert_int_eq(s_check(text, &v), -1);
        ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
        ck_assert_int_eq(v.status, 413);
        ck_assert_str_eq(v.code, "PAYLOAD_TOO_LARGE");
        ck_assert_str_eq(v.action, s_expected[i].name);
        ck_assert_int_eq(v.rate_limited, 0);
        free(text);
    }
}
END_TEST

START_TEST(test_vocabulary_limit)
{
    /* 200 entries of 64 bytes do not fit 4096 bytes: setVocabulary may have 16384 */
    char *text = s_sized("setVocabulary", FRAME_VOCABULARY_MAX);
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_CONTROL);
    ck_assert_int_eq(v.rate_limited, 1);
    free(text);
    text = s_sized("setVocabulary", FRAME_VOCABULARY_MAX + 1);
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_int_eq(v.status, 413);
    ck_assert_str_eq(v.message, "setVocabulary messages are limited to 16384 bytes");
    free(text);
}
END_TEST

START_TEST(test_audio_exempt)
{
    char *text = s_sized("sendAudio", 40 * 1024);
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_AUDIO);
    ck_assert_int_eq(v.rate_limited, 0);
    ck_assert_str_eq(v.action, "sendAudio");
    free(text);
}
END_TEST

START_TEST(test_large_not_json)
{
    char *text = malloc(FRAME_CONTROL_MAX + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, 'x', FRAME_CONTROL_MAX + 1);
    s_assert_refused(text, FRAME_CONTROL_MAX + 1, 413, "PAYLOAD_TOO_LARGE");
    /* at the limit, the same bytes are only malformed */
    s_assert_refused(text, FRAME_CONTROL_MAX, 400, "INVALID_MESSAGE");
    free(text);

    /* a large array is not an object either; still too large first */
    text = s_sized("sendAudio", 8192);
    text[0] = '[';
    text[8191] = ']';
    s_assert_refused(text, 8192, 413, "PAYLOAD_TOO_LARGE");
    free(text);
}
END_TEST

START_TEST(test_large_unknown_action)
{
    char *text = s_sized("launchMissiles", FRAME_CONTROL_MAX + 1);
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_int_eq(v.status, 413);
    ck_assert_str_eq(v.code, "PAYLOAD_TOO_LARGE");
    ck_assert_str_eq(v.action, "launchMissiles");
    free(text);
}
END_TEST

START_TEST(test_large_audio_duplicate_keys)
{
    /* a malformed audio frame over 4 KB cannot claim the audio exemption */
    char *text = s_sized("sendAudio", 40 * 1024);
    memcpy(text + 1, "\"pad\"   ", 8); /* {"pad"   :"sendAudio","pad":"xxx"} */
    frame_verdict_t v;
    ck_assert_int_eq(s_check(text, &v), -1);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
    ck_assert(v.status == 400 || v.status == 413);
    free(text);
}
END_TEST

START_TEST(test_verdict_reset)
{
    /* a refusal after an acceptance leaves nothing of the first verdict */
    frame_verdict_t v;
    ck_assert_int_eq(s_check("{\"action\":\"setVolume\"}", &v), 0);
    ck_assert_int_eq(s_check("{}", &v), -1);
    ck_assert_str_eq(v.action, "");
    ck_assert_int_eq(v.rate_limited, 0);
    ck_assert_int_eq(v.route, FRAME_ROUTE_NONE);
}
END_TEST

/* ---------------------------------------------------------------------
   Suite
*/

/* Every test case, grouped as above. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("routing");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_every_action_routes);
    tcase_add_test(tc, test_heartbeat);
    tcase_add_test(tc, test_action_anywhere);
    tcase_add_test(tc, test_action_case_sensitive);
    tcase_add_test(tc, test_escaped_action_name);
    tcase_add_test(tc, test_nul_in_action);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_no_action);
    tcase_add_test(tc, test_unknown_action);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_raw_nul_byte);
    tcase_add_test(tc, test_long_action_name);
    tcase_add_test(tc, test_action_buffer_edge);
    tcase_add_test(tc, test_verdict_reset);
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_control_at_limit);
    tcase_add_test(tc, test_control_over_limit);
    tcase_add_test(tc, test_vocabulary_limit);
    tcase_add_test(tc, test_audio_exempt);
    tcase_add_test(tc, test_large_not_json);
    tcase_add_test(tc, test_large_unknown_action);
    tcase_add_test(tc, test_large_audio_duplicate_keys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
