/*  test_latency_hist.c -- unit tests of the latency histogram
    (common/latency_hist.c): every value lands in a bucket that holds it,
    buckets are within 1/32 of their values, percentiles match a sorted
    array within that error, and merging equals recording everything in one.
*/
#include "latency_hist.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_buckets_hold_their_values)
{
    uint64_t values[] = {0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456789, UINT64_MAX / 3, UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        unsigned b = tolk_hist_bucket(values[i]);
        ck_assert_uint_lt(b, TOLK_HIST_BUCKETS);
        ck_assert_uint_ge(tolk_hist_bucket_top(b), values[i]);
        if (b > 0)
            ck_assert_uint_lt(tolk_hist_bucket_top(b - 1), values[i]);
        /* relative width: the bucket's top is within 1/32 above its values */
        ck_assert(tolk_hist_bucket_top(b) - values[i] <= values[i] / TOLK_HIST_SUB + 1);
    }
    /* bucket tops increase strictly: the layout has no holes or overlaps */
    for (unsigned b = 1; b < TOLK_HIST_BUCKETS; b++)
        ck_assert_uint_gt(tolk_hist_bucket_top(b), tolk_hist_bucket_top(b - 1));
    ck_assert_uint_eq(tolk_hist_bucket_top(TOLK_HIST_BUCKETS - 1), UINT64_MAX);
}
END_TEST

START_TEST(test_percentiles_match_sorted)
{
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tolk_hist_t h;
    tolk_hist_reset(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* a long-tailed spread, microseconds to seconds in ns */
        v[i] = (uint64_t)1000 << (rand() % 20);
        v[i] += (uint64_t)rand() % v[i];
        tolk_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof *v, s_cmp_u64);
    double pcts[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < 4; i++) {
        uint64_t exact = v[(size_t)(pcts[i] / 100.0 * N + 0.999999) - 1];
        uint64_t got = tolk_hist_percentile(&h, pcts[i]);
        ck_assert_uint_ge(got, exact);
        ck_assert(got - exact <= exact / TOLK_HIST_SUB + 1);
    }
    ck_assert_uint_eq(tolk_hist_percentile(&h, 100), v[N - 1]);
    ck_assert_uint_eq(h.max, v[N - 1]);
    ck_assert_uint_eq(h.min, v[0]);
    ck_assert_uint_eq(h.n, N);
    free(v);
}
END_TEST

START_TEST(test_merge_and_empty)
{
    tolk_hist_t a, b, all;
    tolk_hist_reset(&a);
    tolk_hist_reset(&b);
    tolk_hist_reset(&all);
    ck_assert_uint_eq(tolk_hist_percentile(&a, 99), 0);
    ck_assert(tolk_hist_mean(&a) == 0.0);
    for (uint64_t i = 1; i <= 1000; i++) {
        tolk_hist_record(i % 2 ? &a : &b, i * 1000);
        tolk_hist_record(&all, i * 1000);
    }
    tolk_hist_merge(&a, &b);
    ck_assert_mem_eq(&a, &all, sizeof a);
    ck_assert_uint_eq(tolk_hist_percentile(&a, 50), tolk_hist_percentile(&all, 50));
    ck_assert(tolk_hist_mean(&a) == 500500.0);
    /* one sample: every percentile is that sample, exactly */
    tolk_hist_t one;
    tolk_hist_reset(&one);
    tolk_hist_record(&one, 12345);
    ck_assert_uint_eq(tolk_hist_percentile(&one, 0), 12345);
    ck_assert_uint_eq(tolk_hist_percentile(&one, 99.9), 12345);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("latency_hist");
    TCase *tc = tcase_create("hist");
    tcase_add_test(tc, test_buckets_hold_their_values);
    tcase_add_test(tc, test_percentiles_match_sorted);
    tcase_add_test(tc, test_merge_and_empty);
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
