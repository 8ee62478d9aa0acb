/*  test_transcript.c -- unit tests of the transcript formats
    (common/transcript.c): a stored caption becomes a WebVTT cue or a text
    line; WebVTT's special characters are escaped and "-->" cannot end a
    cue early; line breaks cannot start a new cue; what is not a caption is
    skipped rather than written half.
*/
#include "transcript.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static char *s_cue(const char *json, tolk_transcript_format_t f)
{
    return tolk_transcript_cue(json, strlen(json), f);
}

START_TEST(test_vtt_cue)
{
    char *c = s_cue("{\"type\":\"caption\",\"seq\":41,\"text\":\"hola\",\"startMs\":93120,"
                    "\"endMs\":3725870}",
                    TOLK_TRANSCRIPT_VTT);
    ck_assert_str_eq(c, "41\n00:01:33.120 --> 01:02:05.870\nhola\n\n");
    free(c);
    ck_assert_str_eq(tolk_transcript_header(TOLK_TRANSCRIPT_VTT), "WEBVTT\n\n");
    ck_assert_str_eq(tolk_transcript_header(TOLK_TRANSCRIPT_TEXT), "");
}
END_TEST

START_TEST(test_text_line)
{
    char *c = s_cue("{\"seq\":1,\"text\":\"a < b & c\",\"startMs\":0,\"endMs\":10}",
                    TOLK_TRANSCRIPT_TEXT);
    ck_assert_str_eq(c, "a < b & c\n");
    free(c);
}
END_TEST

START_TEST(test_vtt_escapes_and_one_line)
{
    char *c = s_cue("{\"seq\":2,\"text\":\"a --> b <i>&\\n\\nNOTE x\",\"startMs\":5,\"endMs\":5}",
                    TOLK_TRANSCRIPT_VTT);
    /* no arrow, no tag, no blank line inside the cue; the end follows the start */
    ck_assert_str_eq(c, "2\n00:00:00.005 --> 00:00:00.006\na --&gt; b &lt;i&gt;&amp;  NOTE x\n\n");
    free(c);
}
END_TEST

START_TEST(test_not_a_caption)
{
    ck_assert_ptr_null(s_cue("", TOLK_TRANSCRIPT_VTT));
    ck_assert_ptr_null(s_cue("[1,2]", TOLK_TRANSCRIPT_VTT));
    ck_assert_ptr_null(s_cue("{\"text\":\"\"}", TOLK_TRANSCRIPT_VTT));
    ck_assert_ptr_null(s_cue("{\"text\":7}", TOLK_TRANSCRIPT_TEXT));
    ck_assert_ptr_null(s_cue("{\"text\":\"a\",\"text\":\"b\"}", TOLK_TRANSCRIPT_TEXT));
    ck_assert_ptr_null(s_cue("{\"text\":\"a\"", TOLK_TRANSCRIPT_TEXT));
    ck_assert_ptr_null(tolk_transcript_cue(NULL, 0, TOLK_TRANSCRIPT_TEXT));
    /* over the cap: refused before parsing */
    size_t n = TOLK_TRANSCRIPT_CAPTION_MAX + 20;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    memcpy(big, "{\"text\":\"", 9);
    memcpy(big + n - 2, "\"}", 2);
    big[n] = 0;
    ck_assert_ptr_null(tolk_transcript_cue(big, n, TOLK_TRANSCRIPT_TEXT));
    free(big);
    /* missing times: a zero-length cue is widened, not refused */
    char *c = s_cue("{\"text\":\"x\"}", TOLK_TRANSCRIPT_VTT);
    ck_assert_str_eq(c, "0\n00:00:00.000 --> 00:00:00.001\nx\n\n");
    free(c);
}
END_TEST

START_TEST(test_format_names)
{
    ck_assert_int_eq(tolk_transcript_format_parse(NULL), TOLK_TRANSCRIPT_VTT);
    ck_assert_int_eq(tolk_transcript_format_parse("vtt"), TOLK_TRANSCRIPT_VTT);
    ck_assert_int_eq(tolk_transcript_format_parse("text"), TOLK_TRANSCRIPT_TEXT);
    ck_assert_int_eq(tolk_transcript_format_parse("VTT"), -1);
    ck_assert_int_eq(tolk_transcript_format_parse(""), -1);
    ck_assert_int_eq(tolk_transcript_format_parse("srt"), -1);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("transcript");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_vtt_cue);
    tcase_add_test(tc, test_text_line);
    tcase_add_test(tc, test_vtt_escapes_and_one_line);
    tcase_add_test(tc, test_not_a_caption);
    tcase_add_test(tc, test_format_names);
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
