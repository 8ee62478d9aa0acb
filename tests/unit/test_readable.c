/*  test_readable.c -- unit tests of audio_worker/readable.c: pocketsphinx's
    bare words become a sentence (first word capitalised, the pronoun I, a
    full stop on a final), the vocabulary keeps its case, and nothing else
    about the words changes.
*/
#include "../../audio_worker/readable.h" /* the Makefile has no -Iaudio_worker */

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* tolk_readable(text, final) compared with want, freed. */
static void s_expect(const char *text, bool final, const char *want)
{
    char *got = tolk_readable(text, final);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_final_is_a_sentence)
{
    s_expect("he was not an ill disposed young man", true, "He was not an ill disposed young man.");
    s_expect("and mister john dashwood had then leisure to consider", true,
             "And mister john dashwood had then leisure to consider.");
}
END_TEST

START_TEST(test_partial_has_no_full_stop)
{
    s_expect("he was", false, "He was");
    s_expect("he was not an", false, "He was not an");
}
END_TEST

START_TEST(test_pronoun_i)
{
    s_expect("so i said i'm sure i'll go and i've been and i'd say it", true,
             "So I said I'm sure I'll go and I've been and I'd say it.");
    s_expect("i think", false, "I think");
    /* words that only start with i keep their case */
    s_expect("in it is ice idle", true, "In it is ice idle.");
    s_expect("it's in", false, "It's in");
}
END_TEST

START_TEST(test_edges)
{
    s_expect("", true, "");
    s_expect("", false, "");
    s_expect("yes", true, "Yes.");
    s_expect("really?", true, "Really?");
    s_expect("stop.", true, "Stop.");
    s_expect("wow!", true, "Wow!");
    char *n = tolk_readable(NULL, true);
    ck_assert_str_eq(n, "");
    free(n);
}
END_TEST

/* tolk_readable_vocab with the test vocabulary, compared with want. */
static void s_vocab(const char *text, bool final, const char *want)
{
    static const char *const entries[] = {"Dashwood", "John Dashwood", "ZeroMQ",
                                          "iPhone",   "Norland Park",  "C++"};
    char *got = tolk_readable_vocab(text, final, entries, 6);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_vocabulary_case)
{
    /* the entries keep the speaker's case, the rest becomes a sentence */
    s_vocab("and mister john dashwood had then leisure", true,
            "And mister John Dashwood had then leisure.");
    s_vocab("mrs dashwood said i use zeromq", true, "Mrs Dashwood said I use ZeroMQ.");
    s_vocab("dashwood came", false, "Dashwood came");
    /* at the start of a sentence too, and an entry as the engine gave it */
    s_vocab("iphone sales", true, "iPhone sales.");
    s_vocab("John Dashwood", true, "John Dashwood.");
    /* whole words only, the longest entry first */
    s_vocab("dashwoods and zeromqs", true, "Dashwoods and zeromqs.");
    s_vocab("norland park and norland", true, "Norland Park and norland.");
    s_vocab("c++ code", false, "C++ code");
    /* without a vocabulary it is tolk_readable */
    char *got = tolk_readable_vocab("john dashwood", true, NULL, 0);
    ck_assert_str_eq(got, "John dashwood.");
    free(got);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("readable");
    TCase *tc = tcase_create("text");
    tcase_add_test(tc, test_final_is_a_sentence);
    tcase_add_test(tc, test_partial_has_no_full_stop);
    tcase_add_test(tc, test_pronoun_i);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_vocabulary_case);
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
