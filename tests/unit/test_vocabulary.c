/*  test_vocabulary.c -- unit tests of the session vocabulary
    (common/vocabulary.c): entries are trimmed and single-spaced, keep the
    speaker's case, are deduplicated ignoring case (the first kept), and
    every bound and bad input is refused with its message and nothing
    kept; the stored form reads back the same.
*/
#include "vocabulary.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tolk_vocab_t s_v;
static char s_err[TOLK_VOCAB_ERR_MAX];

/* Parse a comma list; the refusal (or NULL) is returned. */
static const char *s_list(const char *text)
{
    s_err[0] = 0;
    return tolk_vocab_parse_list(&s_v, text, strlen(text), ',', s_err) ? NULL : s_err;
}

/* Parse JSON text as setVocabulary's value. */
static const char *s_json(const char *text)
{
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(j);
    s_err[0] = 0;
    bool ok = tolk_vocab_parse_json(&s_v, j, s_err);
    json_decref(j);
    return ok ? NULL : s_err;
}

START_TEST(test_trim_case_dedupe)
{
    ck_assert_ptr_null(s_list(" Dashwood ,John   Dashwood,ZeroMQ,zeromq,, DASHWOOD,Norland "));
    ck_assert_int_eq(s_v.n, 4);
    ck_assert_str_eq(s_v.entries[0], "Dashwood");
    ck_assert_str_eq(s_v.entries[1], "John Dashwood");
    ck_assert_str_eq(s_v.entries[2], "ZeroMQ");
    ck_assert_str_eq(s_v.entries[3], "Norland");
    ck_assert_int_eq(tolk_vocab_find(&s_v, "zeroMQ", 6), 2);
    ck_assert_int_eq(tolk_vocab_find(&s_v, "zero", 4), -1);
    /* non-ASCII letters are kept as they are */
    ck_assert_ptr_null(s_list("Café Müller,Dvořák"));
    ck_assert_int_eq(s_v.n, 2);
    ck_assert_str_eq(s_v.entries[0], "Café Müller");
    /* an empty list and a list of blanks are an empty vocabulary */
    ck_assert_ptr_null(s_list(""));
    ck_assert_int_eq(s_v.n, 0);
    ck_assert_ptr_null(s_list(" , ,"));
    ck_assert_int_eq(s_v.n, 0);
}
END_TEST

START_TEST(test_bounds)
{
    char buf[TOLK_VOCAB_MAX * 8 + 64] = "";
    /* exactly 200 entries, and 200 plus duplicates: accepted */
    for (int i = 0; i < TOLK_VOCAB_MAX; i++)
        sprintf(buf + strlen(buf), "%sw%d", i ? "," : "", i);
    ck_assert_ptr_null(s_list(buf));
    ck_assert_int_eq(s_v.n, TOLK_VOCAB_MAX);
    strcat(buf, ",W0,w1");
    ck_assert_ptr_null(s_list(buf));
    ck_assert_int_eq(s_v.n, TOLK_VOCAB_MAX);
    /* 201 distinct: refused, nothing kept */
    strcat(buf, ",extra");
    ck_assert_str_eq(s_list(buf), "the vocabulary has more than 200 entries");
    ck_assert_int_eq(s_v.n, 0);
    /* 64 bytes (trimmed) fit, 65 do not */
    char e64[80], e65[80];
    memset(e64, 'a', 64), e64[64] = 0;
    memset(e65, 'b', 65), e65[65] = 0;
    snprintf(buf, sizeof buf, "  %s  ,x", e64);
    ck_assert_ptr_null(s_list(buf));
    ck_assert_int_eq(strlen(s_v.entries[0]), 64);
    snprintf(buf, sizeof buf, "x,%s", e65);
    ck_assert_str_eq(s_list(buf), "vocabulary entry 2 is longer than 64 bytes");
    ck_assert_int_eq(s_v.n, 0);
    /* inner runs of spaces count once */
    snprintf(buf, sizeof buf, "%.30s          %.33s", e64, e64);
    ck_assert_ptr_null(s_list(buf));
    ck_assert_int_eq(strlen(s_v.entries[0]), 64);
}
END_TEST

START_TEST(test_bad_bytes)
{
    ck_assert_str_eq(s_list("ok,caf\xc3"), "vocabulary entry 2 is not valid UTF-8");
    ck_assert_str_eq(s_list("\xc0\xaf"), "vocabulary entry 1 is not valid UTF-8"); /* overlong */
    ck_assert_str_eq(s_list("a,b,\xed\xa0\x80"),
                     "vocabulary entry 3 is not valid UTF-8"); /* surrogate */
    ck_assert_str_eq(s_list("\xf4\x90\x80\x80"),
                     "vocabulary entry 1 is not valid UTF-8"); /* > U+10FFFF */
    ck_assert_str_eq(s_list("tab\there"), "vocabulary entry 1 has a control character");
    ck_assert_str_eq(s_list("x,del\x7f"), "vocabulary entry 2 has a control character");
    ck_assert_str_eq(s_list("nel\xc2\x85"), "vocabulary entry 1 has a control character");
    ck_assert_int_eq(s_v.n, 0);
    /* the stored form's separator cannot hide inside an entry */
    ck_assert_str_eq(s_list("a\nb"), "vocabulary entry 1 has a control character");
    ck_assert_int_eq(s_v.n, 0);
}
END_TEST

START_TEST(test_json)
{
    ck_assert_ptr_null(s_json("[\"Dashwood\", \" John  Dashwood \", \"dashwood\", \"\"]"));
    ck_assert_int_eq(s_v.n, 2);
    ck_assert_str_eq(s_v.entries[1], "John Dashwood");
    ck_assert_ptr_null(s_json("[]"));
    ck_assert_int_eq(s_v.n, 0);
    ck_assert_str_eq(s_json("\"Dashwood\""), "vocabulary must be an array of strings");
    ck_assert_str_eq(s_json("{}"), "vocabulary must be an array of strings");
    ck_assert_str_eq(s_json("[\"a\", 3]"), "vocabulary entry 2 is not a string");
    ck_assert_str_eq(s_json("[\"a\\u0000b\"]"), "vocabulary entry 1 has a control character");
    ck_assert_str_eq(s_json("[\"line\\nbreak\"]"), "vocabulary entry 1 has a control character");
    ck_assert_int_eq(s_v.n, 0);
    /* a flood of empty strings is refused without looking at each */
    char *flood = malloc(TOLK_VOCAB_MAX * 4 * 3 + 16);
    strcpy(flood, "[");
    for (int i = 0; i <= TOLK_VOCAB_MAX * 4; i++)
        strcat(flood, i ? ",\"\"" : "\"\"");
    strcat(flood, "]");
    ck_assert_str_eq(s_json(flood), "the vocabulary has more than 200 entries");
    free(flood);
}
END_TEST

START_TEST(test_stored_form)
{
    ck_assert_ptr_null(s_list("Dashwood,John Dashwood,ZeroMQ"));
    char *joined = tolk_vocab_join(&s_v, "\n");
    ck_assert_str_eq(joined, "Dashwood\nJohn Dashwood\nZeroMQ");
    tolk_vocab_t back;
    ck_assert(tolk_vocab_parse_list(&back, joined, strlen(joined), '\n', s_err));
    ck_assert_int_eq(back.n, 3);
    ck_assert_str_eq(back.entries[2], "ZeroMQ");
    free(joined);
    char *prompt = tolk_vocab_join(&s_v, ", ");
    ck_assert_str_eq(prompt, "Dashwood, John Dashwood, ZeroMQ");
    free(prompt);
    tolk_vocab_clear(&s_v);
    joined = tolk_vocab_join(&s_v, "\n");
    ck_assert_str_eq(joined, "");
    free(joined);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("vocabulary");
    TCase *tc = tcase_create("vocabulary");
    tcase_add_test(tc, test_trim_case_dedupe);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_bad_bytes);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_stored_form);
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
