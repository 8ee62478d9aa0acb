/*  test_chrf.c -- unit tests of tests/support/chrf.c on values worked out
    by hand from Popović's definition (chrf.h): n = 1..6, spaces ignored,
    P and R averaged over the orders, then F with beta = 2.
*/
#include "chrf.h"

#include <check.h>
#include <stdlib.h>

#define EPS 1e-9

START_TEST(test_identical_and_disjoint)
{
    ck_assert_double_eq_tol(chrf("el hombre joven", "el hombre joven"), 100, EPS);
    ck_assert_double_eq_tol(chrf("xyz", "abc"), 0, EPS);
    ck_assert_double_eq_tol(chrf("", "abc"), 0, EPS);
    ck_assert_double_eq_tol(chrf("", ""), 0, EPS);
}
END_TEST

START_TEST(test_hand_worked)
{
    /* abd against abc: n=1 2 of 3 match (P = R = 2/3), n=2 ab of 2 (1/2),
       n=3 none; no 4- to 6-grams. chrP = chrR = (2/3 + 1/2 + 0) / 3 = 7/18 */
    ck_assert_double_eq_tol(chrf("abd", "abc"), 100.0 * 7 / 18, EPS);
    /* aa against aaaa: n=1 P = 2/2, R = 2/4; n=2 P = 1/1, R = 1/3.
       chrP = 1, chrR = 5/12, F2 = 5 * 5/12 / (4 + 5/12) = 25/53 */
    ck_assert_double_eq_tol(chrf("aa", "aaaa"), 100.0 * 25 / 53, EPS);
    /* the same backwards: chrP = 5/12, chrR = 1, F2 = 5 * 5/12 / (4 * 5/12 + 1) = 25/32:
       recall weighs more, so a short hypothesis loses more than a long one */
    ck_assert_double_eq_tol(chrf("aaaa", "aa"), 100.0 * 25 / 32, EPS);
}
END_TEST

START_TEST(test_spaces_ignored_case_kept)
{
    ck_assert_double_eq_tol(chrf("a b  c", "abc"), 100, EPS);
    ck_assert_double_eq_tol(chrf("Abd", "abd"), chrf("xbd", "abd"), EPS);
    ck_assert(chrf("Abd", "abd") < 100);
}
END_TEST

START_TEST(test_utf8_characters)
{
    chrf_stats_t s = {0};
    chrf_add(&s, "años", "anos");
    ck_assert_double_eq_tol(s.hyp[0], 4, EPS); /* ñ is one character, not two bytes */
    ck_assert_double_eq_tol(s.ref[0], 4, EPS);
    ck_assert_double_eq_tol(s.match[0], 3, EPS);
    ck_assert_double_eq_tol(s.hyp[3], 1, EPS);
    ck_assert_double_eq_tol(s.match[3], 0, EPS);
    ck_assert_double_eq_tol(chrf("canción", "canción"), 100, EPS);
}
END_TEST

START_TEST(test_segments_summed)
{
    /* document level: counts summed over segments, then P and R */
    chrf_stats_t s = {0};
    chrf_add(&s, "abd", "abc");
    chrf_add(&s, "abc", "abc");
    /* n=1 5/6, n=2 3/4, n=3 1/2 (P = R) */
    ck_assert_double_eq_tol(chrf_score(&s), 100.0 * (5.0 / 6 + 3.0 / 4 + 1.0 / 2) / 3, EPS);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("chrf");
    TCase *tc = tcase_create("score");
    tcase_add_test(tc, test_identical_and_disjoint);
    tcase_add_test(tc, test_hand_worked);
    tcase_add_test(tc, test_spaces_ignored_case_kept);
    tcase_add_test(tc, test_utf8_characters);
    tcase_add_test(tc, test_segments_summed);
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
