/*  test_frontend.c -- unit tests of audio_worker/frontend.c: every sample
    fed comes out once, in order of arrival, whatever the chunk sizes; the
    preprocessor really takes noise down; a front end is independent of
    another stream's.
*/
#include "../../audio_worker/frontend.h" /* the Makefile has no -Iaudio_worker */

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE 16000

/* Deterministic white noise of amplitude amp (a linear congruential
   generator, so a failure reproduces). */
static void s_noise(int16_t *out, size_t n, int amp, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        out[i] = (int16_t)((int)((*seed >> 16) % (2u * (unsigned)amp + 1)) - amp);
    }
}

/* Root mean square of n samples. */
static double s_rms(const int16_t *p, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)p[i] * p[i];
    return sqrt(s / (double)n);
}

/* Feed n samples in chunks of the given sizes (cycled), then flush;
   returns how many samples came out, the output in out. */
static size_t s_run(tolk_frontend_t *fe, const int16_t *in, size_t n, const size_t *sizes,
                    size_t nsizes, int16_t *out)
{
    size_t made = 0, k = 0;
    for (size_t off = 0; off < n; k++) {
        size_t c = sizes[k % nsizes];
        if (c > n - off)
            c = n - off;
        made += tolk_frontend_process(fe, in + off, c, out + made);
        off += c;
    }
    return made + tolk_frontend_flush(fe, out + made);
}

START_TEST(test_every_sample_once)
{
    size_t n = RATE * 2 + 77; /* not a whole number of frames */
    int16_t *in = malloc(n * sizeof *in), *a = malloc((n + 320) * sizeof *a),
            *b = malloc((n + 320) * sizeof *b);
    unsigned seed = 1;
    s_noise(in, n, 3000, &seed);
    static const size_t odd[] = {1, 7, 333, 1600, 50, 319, 321};
    static const size_t whole[] = {1600};
    tolk_frontend_t *f1 = tolk_frontend_new(NULL), *f2 = tolk_frontend_new(NULL);
    ck_assert_ptr_nonnull(f1);
    ck_assert_ptr_nonnull(f2);
    ck_assert_uint_eq(s_run(f1, in, n, odd, 7, a), n);
    ck_assert_uint_eq(s_run(f2, in, n, whole, 1, b), n);
    /* the same frames go through the preprocessor whatever the chunks
       (only the flushed tail differs: it was padded at a different place) */
    size_t frames = n / TOLK_FRONTEND_FRAME * TOLK_FRONTEND_FRAME;
    ck_assert_int_eq(memcmp(a, b, frames * sizeof *a), 0);
    /* nothing held after a flush */
    ck_assert_uint_eq(tolk_frontend_flush(f1, a), 0);
    tolk_frontend_destroy(&f1);
    tolk_frontend_destroy(&f1); /* idempotent */
    ck_assert_ptr_null(f1);
    tolk_frontend_destroy(&f2);
    free(in), free(a), free(b);
}
END_TEST

START_TEST(test_noise_taken_down)
{
    size_t n = RATE * 3;
    int16_t *in = malloc(n * sizeof *in), *out = malloc((n + 320) * sizeof *out);
    unsigned seed = 7;
    s_noise(in, n, 2000, &seed);
    tolk_frontend_opts_t opts = {.suppress_db = -20, .agc = false};
    tolk_frontend_t *fe = tolk_frontend_new(&opts);
    static const size_t chunk[] = {1600};
    ck_assert_uint_eq(s_run(fe, in, n, chunk, 1, out), n);
    /* after the first second (the noise estimate settles), steady noise
       comes out at least 10 dB down */
    double before = s_rms(in + RATE, n - RATE), after = s_rms(out + RATE, n - RATE);
    ck_assert_msg(20 * log10(before / after) >= 10, "noise %.0f -> %.0f RMS", before, after);
    tolk_frontend_destroy(&fe);
    free(in), free(out);
}
END_TEST

START_TEST(test_streams_independent)
{
    /* a stream's state is its own: a second front end that heard loud noise
       first does not change what the first one makes of the same audio */
    size_t n = RATE;
    int16_t *in = malloc(n * sizeof *in), *loud = malloc(n * sizeof *loud),
            *a = malloc((n + 320) * sizeof *a), *b = malloc((n + 320) * sizeof *b),
            *junk = malloc((n + 320) * sizeof *junk);
    unsigned seed = 3, seed2 = 9;
    s_noise(in, n, 1000, &seed);
    s_noise(loud, n, 20000, &seed2);
    static const size_t chunk[] = {1600};
    tolk_frontend_t *f1 = tolk_frontend_new(NULL), *f2 = tolk_frontend_new(NULL),
                    *f3 = tolk_frontend_new(NULL);
    s_run(f2, loud, n, chunk, 1, junk);
    s_run(f1, in, n, chunk, 1, a);
    s_run(f3, in, n, chunk, 1, b);
    ck_assert_int_eq(memcmp(a, b, n * sizeof *a), 0);
    tolk_frontend_destroy(&f1), tolk_frontend_destroy(&f2), tolk_frontend_destroy(&f3);
    free(in), free(loud), free(a), free(b), free(junk);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("frontend");
    TCase *tc = tcase_create("preprocess");
    tcase_add_test(tc, test_every_sample_once);
    tcase_add_test(tc, test_noise_taken_down);
    tcase_add_test(tc, test_streams_independent);
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
