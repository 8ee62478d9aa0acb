/*  test_vosk.c -- unit tests of what the vosk engine reads from a
    vosk-server: its answers (audio_worker/asr_vosk.c, tolk_vosk_parse) and
    the WebSocket frames they come in (common/wsframe.c's decoder), with the
    shapes asr_server.py sends: partials, finals with word times,
    alternatives, fragments with a ping between them, and what a broken
    server sends.
*/
#include "../../audio_worker/asr_vosk.h" /* the Makefile has no -Iaudio_worker */
#include "wsframe.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Parse text and check its kind and text. */
static void s_expect(const char *text, tolk_vosk_kind_t kind, const char *want)
{
    tolk_vosk_answer_t a;
    ck_assert_int_eq(tolk_vosk_parse(text, strlen(text), &a), kind);
    if (kind == TOLK_VOSK_NONE) {
        ck_assert_ptr_null(a.text);
        return;
    }
    ck_assert_str_eq(a.text, want);
    free(a.text);
}

START_TEST(test_answers)
{
    /* as vosk-server prints them: indented, spaces around the colon */
    s_expect("{\n  \"partial\" : \"he was not\"\n}", TOLK_VOSK_PARTIAL, "he was not");
    s_expect("{\"partial\" : \"\"}", TOLK_VOSK_PARTIAL, "");
    s_expect("{\"text\" : \"  he  was\\tnot \"}", TOLK_VOSK_FINAL, "he was not");
    s_expect("{\"text\" : \"\"}", TOLK_VOSK_FINAL, "");
    s_expect("{\"alternatives\" : [{\"confidence\" : 0.9, \"text\" : \"one two\"}, "
             "{\"text\" : \"won too\"}]}",
             TOLK_VOSK_FINAL, "one two");
    /* not answers: ignored */
    s_expect("{}", TOLK_VOSK_NONE, NULL);
    s_expect("[\"partial\"]", TOLK_VOSK_NONE, NULL);
    s_expect("{\"partial\" : 3}", TOLK_VOSK_NONE, NULL);
    s_expect("{\"text\" : \"a\", \"text\" : \"b\"}", TOLK_VOSK_NONE, NULL);
    s_expect("{\"partial\" : \"cut", TOLK_VOSK_NONE, NULL);
}
END_TEST

START_TEST(test_word_times)
{
    const char *final = "{\"result\" : [{\"conf\" : 1.0, \"end\" : 0.37, \"start\" : 0.15, "
                        "\"word\" : \"and\"}, {\"conf\" : 1.0, \"end\" : 1.01, \"start\" : "
                        "0.63, \"word\" : \"john\"}], \"text\" : \"and john\"}";
    tolk_vosk_answer_t a;
    ck_assert_int_eq(tolk_vosk_parse(final, strlen(final), &a), TOLK_VOSK_FINAL);
    ck_assert_double_eq_tol(a.start_s, 0.15, 1e-9);
    ck_assert_double_eq_tol(a.end_s, 1.01, 1e-9);
    free(a.text);
    /* times out of order or absent: none */
    const char *bad = "{\"result\" : [{\"start\" : 5, \"end\" : 1}], \"text\" : \"x\"}";
    ck_assert_int_eq(tolk_vosk_parse(bad, strlen(bad), &a), TOLK_VOSK_FINAL);
    ck_assert(a.start_s < 0 && a.end_s < 0);
    free(a.text);
}
END_TEST

/* An unmasked server frame of opcode around payload, appended to out. */
static size_t s_frame(uint8_t *out, int fin, int opcode, const char *payload)
{
    size_t n = strlen(payload);
    size_t h = tolk_wsframe_header(out, fin, opcode, 0, NULL, n);
    memcpy(out + h, payload, n);
    return h + n;
}

START_TEST(test_decoder_joins_fragments_around_a_ping)
{
    uint8_t buf[256];
    size_t n = s_frame(buf, 0, 0x1, "{\"partial\" : \"he");
    n += s_frame(buf + n, 1, 0x9, "hi");
    n += s_frame(buf + n, 1, 0x0, " was\"}");
    tolk_wsdec_t *dec = tolk_wsdec_new(TOLK_VOSK_ANSWER_MAX);
    ck_assert_ptr_nonnull(dec);
    tolk_wsmsg_t m;
    /* byte by byte, as a slow socket hands them over */
    int got = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(tolk_wsdec_push(dec, buf + i, 1), 0);
        int r;
        while ((r = tolk_wsdec_next(dec, &m)) == 1) {
            if (got++ == 0) {
                ck_assert_int_eq(m.opcode, 0x9);
                ck_assert_str_eq((const char *)m.data, "hi");
            } else {
                ck_assert_int_eq(m.opcode, 0x1);
                ck_assert_str_eq((const char *)m.data, "{\"partial\" : \"he was\"}");
            }
        }
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(got, 2);
    tolk_wsdec_destroy(&dec);
    tolk_wsdec_destroy(&dec); /* idempotent */
}
END_TEST

/* The decoder fails on what bytes, with what close code. */
static void s_expect_failure(const uint8_t *bytes, size_t n, int code)
{
    tolk_wsdec_t *dec = tolk_wsdec_new(1024);
    ck_assert_int_eq(tolk_wsdec_push(dec, bytes, n), 0);
    tolk_wsmsg_t m;
    ck_assert_int_eq(tolk_wsdec_next(dec, &m), -1);
    ck_assert_int_eq(tolk_wsdec_close_code(dec), code);
    ck_assert_str_ne(tolk_wsdec_error(dec), "");
    ck_assert_int_eq(tolk_wsdec_next(dec, &m), -1); /* and stays failed */
    tolk_wsdec_destroy(&dec);
}

START_TEST(test_decoder_refuses_a_broken_server)
{
    uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    s_expect_failure(masked, sizeof masked, 1002);
    uint8_t rsv[] = {0xC1, 0x01, 'x'};
    s_expect_failure(rsv, sizeof rsv, 1002);
    uint8_t stray[] = {0x80, 0x01, 'x'};
    s_expect_failure(stray, sizeof stray, 1002);
    uint8_t long_ping[] = {0x89, 126, 0x00, 0x7E}; /* refused before its payload */
    s_expect_failure(long_ping, sizeof long_ping, 1002);
    uint8_t huge[] = {0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0};
    s_expect_failure(huge, sizeof huge, 1009);
    uint8_t utf8[] = {0x81, 0x02, 0xC3, 0x28};
    s_expect_failure(utf8, sizeof utf8, 1007);
    /* room is bounded: a decoder never holds more than its bound */
    tolk_wsdec_t *dec = tolk_wsdec_new(1024);
    ck_assert_uint_le(tolk_wsdec_room(dec), 1024 + TOLK_WSFRAME_HEADER_MAX);
    uint8_t big[2048] = {0};
    ck_assert_int_eq(tolk_wsdec_push(dec, big, sizeof big), -1);
    tolk_wsdec_destroy(&dec);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vosk");
    TCase *tc = tcase_create("answers");
    tcase_add_test(tc, test_answers);
    tcase_add_test(tc, test_word_times);
    tcase_add_test(tc, test_decoder_joins_fragments_around_a_ping);
    tcase_add_test(tc, test_decoder_refuses_a_broken_server);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
