/*  test_action_check.c -- unit tests of the client action and connect
    parameter checks (common/action_check.c): every broadcast-state action
    maps to the fields its script sets and the notification members get;
    every malformed volume, state, speech flag and lastSeq is refused with
    nothing filled in.
*/
#include "action_check.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_t *s_msg(const char *text)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* The fields of a change as "name=value,..." for whole comparisons. */
static const char *s_fields(const tolk_state_change_t *c)
{
    static char out[256];
    out[0] = 0;
    for (int i = 0; i + 1 < c->n; i += 2) {
        strcat(out, c->fields[i]);
        strcat(out, "=");
        strcat(out, c->fields[i + 1]);
        strcat(out, ",");
    }
    return out;
}

START_TEST(test_flag_actions)
{
    static const char *cases[][3] = {{"pauseBroadcast", "isPaused=1,", "broadcastPaused"},
                                     {"resumeBroadcast", "isPaused=0,", "broadcastResumed"},
                                     {"muteBroadcast", "isMuted=1,", "broadcastMuted"},
                                     {"unmuteBroadcast", "isMuted=0,", "broadcastUnmuted"}};
    json_t *m = s_msg("{}");
    for (size_t i = 0; i < 4; i++) {
        tolk_state_change_t c;
        ck_assert_ptr_null(tolk_action_state(cases[i][0], m, &c));
        ck_assert_str_eq(s_fields(&c), cases[i][1]);
        ck_assert_str_eq(c.notification, cases[i][2]);
    }
    tolk_state_change_t c;
    ck_assert_ptr_nonnull(tolk_action_state("endSession", m, &c));
    ck_assert_ptr_nonnull(tolk_action_state("", m, &c));
    json_decref(m);
}
END_TEST

START_TEST(test_volume)
{
    static const char *good[][2] = {{"{\"volumeLevel\":0}", "volume=0,"},
                                    {"{\"volumeLevel\":1}", "volume=1,"},
                                    {"{\"volumeLevel\":0.123456}", "volume=0.1235,"},
                                    {"{\"volumeLevel\":1.0}", "volume=1,"}};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = s_msg(good[i][0]);
        tolk_state_change_t c;
        ck_assert_ptr_null(tolk_action_state("setVolume", m, &c));
        ck_assert_str_eq(s_fields(&c), good[i][1]);
        ck_assert_str_eq(c.notification, "volumeChanged");
        json_decref(m);
    }
    static const char *bad[] = {"{}",
                                "{\"volumeLevel\":-0.001}",
                                "{\"volumeLevel\":1.0001}",
                                "{\"volumeLevel\":\"0.5\"}",
                                "{\"volumeLevel\":true}",
                                "{\"volumeLevel\":null}",
                                "{\"volumeLevel\":[0.5]}",
                                "{\"volumeLevel\":1e308}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *m = s_msg(bad[i]);
        tolk_state_change_t c;
        ck_assert_msg(tolk_action_state("setVolume", m, &c) != NULL, "accepted %s", bad[i]);
        ck_assert_int_eq(c.n, 0);
        json_decref(m);
    }
}
END_TEST

START_TEST(test_speaker_state_change)
{
    json_t *m = s_msg("{\"state\":{\"isMuted\":true,\"volume\":0.25,\"isPaused\":false}}");
    tolk_state_change_t c;
    ck_assert_ptr_null(tolk_action_state("speakerStateChange", m, &c));
    ck_assert_str_eq(s_fields(&c), "isMuted=1,volume=0.25,isPaused=0,");
    ck_assert_str_eq(c.notification, "speakerStateChanged");
    json_decref(m);
    static const char *bad[] = {"{}",
                                "{\"state\":{}}",
                                "{\"state\":[]}",
                                "{\"state\":\"paused\"}",
                                "{\"state\":{\"isPaused\":1}}",
                                "{\"state\":{\"isMuted\":\"true\"}}",
                                "{\"state\":{\"volume\":2}}",
                                "{\"state\":{\"isActive\":false}}",
                                "{\"state\":{\"isPaused\":true,\"extra\":1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = s_msg(bad[i]);
        ck_assert_msg(tolk_action_state("speakerStateChange", b, &c) != NULL, "accepted %s",
                      bad[i]);
        ck_assert_int_eq(c.n, 0);
        json_decref(b);
    }
}
END_TEST

START_TEST(test_speech)
{
    bool on = false;
    json_t *m = s_msg("{\"enabled\":true}");
    ck_assert_ptr_null(tolk_action_speech(m, &on));
    ck_assert(on);
    json_decref(m);
    m = s_msg("{\"enabled\":false}");
    ck_assert_ptr_null(tolk_action_speech(m, &on));
    ck_assert(!on);
    json_decref(m);
    static const char *bad[] = {"{}", "{\"enabled\":1}", "{\"enabled\":\"true\"}",
                                "{\"enabled\":null}"};
    for (size_t i = 0; i < 4; i++) {
        m = s_msg(bad[i]);
        ck_assert_ptr_nonnull(tolk_action_speech(m, &on));
        json_decref(m);
    }
}
END_TEST

START_TEST(test_connect_params)
{
    long v = -1;
    ck_assert(tolk_parse_seq("0", &v) && v == 0);
    ck_assert(tolk_parse_seq("41", &v) && v == 41);
    ck_assert(tolk_parse_seq("2147483647", &v) && v == 2147483647L);
    static const char *bad[] = {"",     "-1",         "+1",          " 1", "1 ",
                                "0x10", "2147483648", "99999999999", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!tolk_parse_seq(bad[i], &v), "accepted %s", bad[i]);
    ck_assert(!tolk_parse_seq(NULL, &v));
    ck_assert_int_eq(tolk_parse_flag(NULL), 0);
    ck_assert_int_eq(tolk_parse_flag("0"), 0);
    ck_assert_int_eq(tolk_parse_flag("false"), 0);
    ck_assert_int_eq(tolk_parse_flag("1"), 1);
    ck_assert_int_eq(tolk_parse_flag("true"), 1);
    ck_assert_int_eq(tolk_parse_flag("yes"), -1);
    ck_assert_int_eq(tolk_parse_flag(""), -1);
    ck_assert_int_eq(tolk_parse_flag("TRUE"), -1);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("action_check");
    TCase *tc = tcase_create("actions");
    tcase_add_test(tc, test_flag_actions);
    tcase_add_test(tc, test_volume);
    tcase_add_test(tc, test_speaker_state_change);
    tcase_add_test(tc, test_speech);
    tcase_add_test(tc, test_connect_params);
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
