/*  test_speech.c -- spoken translation with espeak-ng (audio_worker/speech.c).

    Synthesises real speech with the installed espeak-ng and checks what the
    audio worker relies on: audio of a plausible length that is not
    silence, for every language the captions offer; -1 (and no buffer) for
    unknown languages and for empty, blank or over-long text, and when the
    audio would run over TOLK_SPEECH_MAX_SECONDS; markup and control
    characters read as plain text; one start of espeak-ng per process (not
    again after destroy, but again after a start that failed); the caller's
    LC_CTYPE kept; the count of syntheses. The suite must fork (it forces
    CK_FORK): each test is a process of its own, which starts espeak-ng
    afresh. Also prints (does not assert) the real-time factor of ten-word
    sentences.
*/
#include "../../audio_worker/speech.h" /* the Makefile has no -Iaudio_worker */

#include <check.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_DATA_PARENT "/usr/lib/x86_64-linux-gnu" /* Debian keeps espeak-ng-data here */
#define S_DATA_DIR    S_DATA_PARENT "/espeak-ng-data"
#define S_MIN_RMS     300.0 /* RMS of speech is in the thousands; silence is 0 */
#define S_MIN_SEC     0.3   /* shortest plausible phrase */
#define S_MAX_SEC     5.0   /* longest plausible short phrase */
#define S_RTF_RUNS    5     /* syntheses timed for the real-time factor */
#define S_DRIFT       0.03  /* how much two syntheses of one text may differ in length */

/* Monotonic clock in seconds. */
static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Root mean square of pcm. */
static double s_rms(const int16_t *pcm, size_t samples)
{
    double sum = 0;
    for (size_t i = 0; i < samples; i++)
        sum += (double)pcm[i] * pcm[i];
    return samples ? sqrt(sum / (double)samples) : 0;
}

/* Assert that two syntheses of the same text are as long, give or take
   S_DRIFT (espeak-ng's output varies by a few samples from call to call;
   an obeyed embedded command or markup would change it by far more). */
static void s_assert_near(size_t a, size_t b)
{
    double ratio = (double)a / (double)b;
    ck_assert_msg(ratio > 1 - S_DRIFT && ratio < 1 + S_DRIFT, "%zu vs %zu samples", a, b);
}

/* A speech engine on the default data, checked. */
static tolk_speech_t *s_speech(void)
{
    tolk_speech_t *speech = tolk_speech_new(NULL);
    ck_assert_ptr_nonnull(speech);
    return speech;
}

/* Synthesise text in lang, expect success and speech (not silence)
   lasting S_MIN_SEC to max_sec; returns the number of samples (the buffer
   is freed). */
static size_t s_speak(tolk_speech_t *speech, const char *lang, const char *text, double max_sec)
{
    int16_t *pcm = NULL;
    size_t samples = 0;
    int rc = tolk_speech_synthesize(speech, lang, text, &pcm, &samples);
    ck_assert_msg(rc == 0, "%s: \"%s\" failed", lang, text);
    ck_assert_ptr_nonnull(pcm);
    double seconds = (double)samples / tolk_speech_rate(speech);
    double rms = s_rms(pcm, samples);
    char shown[41]; /* text as printed: its start, control characters as '?' */
    size_t n = 0;
    for (; text[n] && n < sizeof shown - 1; n++)
        shown[n] = (unsigned char)text[n] < 0x20 || text[n] == 0x7f ? '?' : text[n];
    shown[n] = 0;
    fprintf(stderr, "test_speech: %s \"%s\": %zu samples, %.2f s, RMS %.0f\n", lang, shown, samples,
            seconds, rms);
    ck_assert_msg(seconds >= S_MIN_SEC && seconds <= max_sec, "%s: %.2f s", lang, seconds);
    ck_assert_msg(rms > S_MIN_RMS, "%s: RMS %.0f, silent", lang, rms);
    free(pcm);
    return samples;
}

/* s_speak for a short phrase: at most S_MAX_SEC. */
static size_t s_speak_ok(tolk_speech_t *speech, const char *lang, const char *text)
{
    return s_speak(speech, lang, text, S_MAX_SEC);
}

/* Synthesise text in lang and expect -1 with nothing returned. */
static void s_speak_fails(tolk_speech_t *speech, const char *lang, const char *text)
{
    int16_t *pcm = (int16_t *)&pcm; /* not NULL: the call must clear it */
    size_t samples = 12345;
    ck_assert_int_eq(tolk_speech_synthesize(speech, lang, text, &pcm, &samples), -1);
    ck_assert_ptr_null(pcm);
    ck_assert_uint_eq(samples, 0);
}

START_TEST(test_new_destroy)
{
    /* espeak-ng sets LC_CTYPE to C.UTF-8; new puts the caller's back */
    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));
    tolk_speech_t *speech = s_speech();
    ck_assert_str_eq(setlocale(LC_CTYPE, NULL), "C");
    ck_assert_int_eq(tolk_speech_rate(speech), 22050);
    ck_assert_uint_eq(tolk_speech_count(speech), 0);
    /* one per process... */
    ck_assert_ptr_null(tolk_speech_new(NULL));
    s_speak_ok(speech, "en", "hello world");
    tolk_speech_destroy(&speech);
    ck_assert_ptr_null(speech);
    tolk_speech_destroy(&speech);
    tolk_speech_destroy(NULL);
    /* ...and once: espeak-ng 1.51 would deadlock stopping a second time */
    ck_assert_ptr_null(tolk_speech_new(NULL));
}
END_TEST

START_TEST(test_data_dir)
{
    tolk_speech_t *speech = tolk_speech_new(S_DATA_DIR "/");
    ck_assert_ptr_nonnull(speech);
    s_speak_ok(speech, "en", "hello world");
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_data_parent)
{
    tolk_speech_t *speech = tolk_speech_new(S_DATA_PARENT);
    ck_assert_ptr_nonnull(speech);
    s_speak_ok(speech, "es", "hola, buenos días");
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_data_missing)
{
    /* refused before espeak-ng starts (it would use its default data) */
    ck_assert_ptr_null(tolk_speech_new("/nonexistent/espeak-ng-data"));
    ck_assert_ptr_null(tolk_speech_new("/tmp/nonexistent"));
    ck_assert_ptr_null(tolk_speech_new(""));
    char long_path[512];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = 0;
    ck_assert_ptr_null(tolk_speech_new(long_path));

    /* refused by espeak-ng itself: a phontab that is no phoneme table */
    char dir[] = "/tmp/test_speech_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char file[sizeof dir + 16];
    snprintf(file, sizeof file, "%s/phontab", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a phoneme table\n", f);
    fclose(f);
    tolk_speech_t *speech = tolk_speech_new(dir);
    unlink(file);
    rmdir(dir);
    ck_assert_ptr_null(speech);

    /* a failed start does not use up the process's one start */
    speech = s_speech();
    s_speak_ok(speech, "en", "hello world");
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_spanish_english)
{
    tolk_speech_t *speech = s_speech();
    s_speak_ok(speech, "es", "hola, buenos días");
    s_speak_ok(speech, "en", "hello world");
    s_speak_ok(speech, "es", "hola, buenos días");
    ck_assert_uint_eq(tolk_speech_count(speech), 3);
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_has_voice)
{
    tolk_speech_t *speech = s_speech();
    const char *yes[] = {"en", "es", "ca", "gl",    "eo",    "fr",    "pt",
                         "it", "ro", "EN", "pt-BR", "pt_br", "en-us", "es-419"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(tolk_speech_has_voice(speech, yes[i]), "no voice for %s", yes[i]);
    const char *no[] = {"zz", "", "e", "english", "es;", "es-", "-es", "en us", "../en", "mb-en1"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!tolk_speech_has_voice(speech, no[i]), "a voice for \"%s\"", no[i]);
    ck_assert(!tolk_speech_has_voice(speech, NULL));
    ck_assert(!tolk_speech_has_voice(NULL, "en"));
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_every_language)
{
    tolk_speech_t *speech = s_speech();
    static const char *phrases[][2] = {
        {"en", "good morning"},     {"es", "buenos días"},        {"ca", "bon dia a tothom"},
        {"gl", "bos días a todos"}, {"eo", "bonan matenon"},      {"fr", "bonjour à tous"},
        {"pt", "bom dia a todos"},  {"it", "buongiorno a tutti"}, {"ro", "bună dimineața"},
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        s_speak_ok(speech, phrases[i][0], phrases[i][1]);
    ck_assert_uint_eq(tolk_speech_count(speech), sizeof phrases / sizeof phrases[0]);
    /* Galician has no voice of its own: it is the Spanish one */
    s_assert_near(s_speak_ok(speech, "gl", "bos días a todos"),
                  s_speak_ok(speech, "es", "bos días a todos"));
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_unknown_language)
{
    tolk_speech_t *speech = s_speech();
    s_speak_fails(speech, "zz", "hello world");
    s_speak_fails(speech, "", "hello world");
    s_speak_fails(speech, "english", "hello world");
    s_speak_fails(speech, NULL, "hello world");
    /* a failed selection does not spoil the next one */
    s_speak_ok(speech, "en", "hello world");
    s_speak_fails(speech, "zz", "hello world");
    s_speak_ok(speech, "en", "hello world");
    ck_assert_uint_eq(tolk_speech_count(speech), 2);
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_bad_text)
{
    tolk_speech_t *speech = s_speech();
    s_speak_fails(speech, "en", "");
    s_speak_fails(speech, "en", "   ");
    s_speak_fails(speech, "en", "\n\t\r\x01\x7f ");
    s_speak_fails(speech, "en", NULL);

    /* TOLK_SPEECH_TEXT_MAX bytes pass, one more does not */
    char text[TOLK_SPEECH_TEXT_MAX + 2];
    memset(text, ' ', sizeof text);
    memcpy(text, "hello world", 11);
    text[TOLK_SPEECH_TEXT_MAX] = 0;
    s_speak_ok(speech, "en", text);
    text[TOLK_SPEECH_TEXT_MAX] = ' ';
    text[TOLK_SPEECH_TEXT_MAX + 1] = 0;
    s_speak_fails(speech, "en", text);

    int16_t *pcm = NULL;
    size_t samples = 0;
    ck_assert_int_eq(tolk_speech_synthesize(NULL, "en", "hello", &pcm, &samples), -1);
    ck_assert_int_eq(tolk_speech_synthesize(speech, "en", "hello", NULL, &samples), -1);
    ck_assert_int_eq(tolk_speech_synthesize(speech, "en", "hello", &pcm, NULL), -1);
    ck_assert_ptr_null(pcm);
    ck_assert_uint_eq(tolk_speech_count(speech), 1);
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_audio_cap)
{
    /* under the byte limit but far over TOLK_SPEECH_MAX_SECONDS of speech */
    tolk_speech_t *speech = s_speech();
    size_t before = s_speak_ok(speech, "en", "hello world");
    char text[TOLK_SPEECH_TEXT_MAX + 1] = "";
    while (strlen(text) + 12 <= TOLK_SPEECH_TEXT_MAX)
        strcat(text, "one two six ");
    double start = s_now();
    s_speak_fails(speech, "en", text);
    fprintf(stderr, "test_speech: stopped at the %d s cap after %.2f s\n", TOLK_SPEECH_MAX_SECONDS,
            s_now() - start);
    ck_assert_uint_eq(tolk_speech_count(speech), 1);
    /* espeak-ng was stopped cleanly: the next synthesis is whole (and about
       as long as ever: espeak-ng's output drifts by a few samples from one
       synthesis to the next, so lengths are compared with a tolerance) */
    s_assert_near(s_speak_ok(speech, "en", "hello world"), before);
    ck_assert_uint_eq(tolk_speech_count(speech), 2);
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_plain_text)
{
    tolk_speech_t *speech = s_speech();
    /* markup is read out, not obeyed: "speak" is said twice more */
    size_t plain = s_speak_ok(speech, "es", "hola a todos");
    size_t markup = s_speak_ok(speech, "es", "<speak>hola a todos</speak>");
    ck_assert_msg(markup > plain * 3 / 2, "markup %zu vs plain %zu samples", markup, plain);
    s_speak(speech, "en", "<speak><prosody rate=\"x-fast\">a < b & c &amp; d</prosody>", 20);
    s_speak(speech, "en", "<audio src=\"/etc/passwd\"/> [[h@l'oU]] <!-- x --> <", 20);

    /* control characters are spaces: no embedded commands (\x01 starts
       one in espeak-ng), escape sequences or NULs in the middle */
    size_t spaced = s_speak_ok(speech, "en", "hello    50S  world");
    size_t controls = s_speak_ok(speech, "en", "hello\x01\x1b\n\t50S\x7f\r\fworld");
    s_assert_near(controls, spaced);
    size_t c1 = s_speak_ok(speech, "en",
                           "hello\xc2\x85\xc2\x9b"
                           "50S world");
    s_assert_near(c1, s_speak_ok(speech, "en", "hello  50S world"));

    /* invalid UTF-8 (stray continuation, truncated, overlong, surrogate) */
    s_speak_ok(speech, "es", "\x80hola\xff \xc3 buenos\xc0\xaf d\xed\xa0\x80ías \xe2\x82");
    tolk_speech_destroy(&speech);
}
END_TEST

START_TEST(test_count)
{
    tolk_speech_t *speech = s_speech();
    uint64_t expect = 0;
    for (int i = 0; i < 3; i++) {
        s_speak_ok(speech, "en", "hello world");
        ck_assert_uint_eq(tolk_speech_count(speech), ++expect);
        s_speak_fails(speech, "zz", "hello world");
        s_speak_fails(speech, "en", "");
        ck_assert_uint_eq(tolk_speech_count(speech), expect);
        ck_assert(tolk_speech_has_voice(speech, "fr"));
        ck_assert_uint_eq(tolk_speech_count(speech), expect);
    }
    tolk_speech_destroy(&speech);
    ck_assert_uint_eq(tolk_speech_count(NULL), 0);
    ck_assert_int_eq(tolk_speech_rate(NULL), 0);
}
END_TEST

START_TEST(test_real_time_factor)
{
    tolk_speech_t *speech = s_speech();
    const char *langs[][2] = {
        {"en", "the quick brown fox jumps over the lazy dog every morning"},
        {"es", "el veloz zorro marrón salta sobre el perro perezoso cada mañana"},
    };
    for (size_t l = 0; l < sizeof langs / sizeof langs[0]; l++) {
        double busy = 0, audio = 0;
        for (int i = 0; i < S_RTF_RUNS; i++) {
            int16_t *pcm = NULL;
            size_t samples = 0;
            double start = s_now();
            ck_assert_int_eq(
                tolk_speech_synthesize(speech, langs[l][0], langs[l][1], &pcm, &samples), 0);
            busy += s_now() - start;
            audio += (double)samples / tolk_speech_rate(speech);
            free(pcm);
        }
        fprintf(stderr,
                "test_speech: %s, 10 words: %.2f s of audio in %.1f ms, real-time factor %.4f\n",
                langs[l][0], audio / S_RTF_RUNS, busy * 1000 / S_RTF_RUNS, busy / audio);
    }
    tolk_speech_destroy(&speech);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("speech");
    TCase *tc = tcase_create("espeak-ng");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_destroy);
    tcase_add_test(tc, test_data_dir);
    tcase_add_test(tc, test_data_parent);
    tcase_add_test(tc, test_data_missing);
    tcase_add_test(tc, test_spanish_english);
    tcase_add_test(tc, test_has_voice);
    tcase_add_test(tc, test_every_language);
    tcase_add_test(tc, test_unknown_language);
    tcase_add_test(tc, test_bad_text);
    tcase_add_test(tc, test_audio_cap);
    tcase_add_test(tc, test_plain_text);
    tcase_add_test(tc, test_count);
    tcase_add_test(tc, test_real_time_factor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one espeak-ng start per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
