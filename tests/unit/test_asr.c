/*  test_asr.c -- unit tests of streaming recognition (audio_worker/asr.c
    and asr_pocketsphinx.c).

    The accuracy promise is checked against pocketsphinx itself: the five
    LibriVox recordings of pocketsphinx-testdata are streamed in 100 ms
    chunks, as a speaker's client sends them, and the word error rate of
    the finals may be at most 2 points worse than that of
    pocketsphinx_continuous decoding the whole files with the same model.
    The same recordings check the shape of the result stream (segments in
    order, partials that never shrink, sane times) and that the chunk size
    does not change the outcome. The stability filter is tested on made-up
    hypotheses, the failure paths on bad names and directories. Every test
    frees the decoder pool in its teardown, so under make SAN=1 the leak
    checker sees a clean heap.
*/
#include "../../audio_worker/asr.h" /* the Makefile has no -Iaudio_worker */
#include "../../audio_worker/asr_stable.h"
#include "../support/wer.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The model the worker uses by default. */
#define MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
/* Real read speech with reference transcripts (pocketsphinx-testdata). */
#define DATA_DIR WER_LIBRIVOX_DIR

/* The five recordings, by file id. */
static const char *const s_files[] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930",
};
#define FILE_COUNT (sizeof s_files / sizeof s_files[0])

/* Free the decoder pool after every test, in the forked child that used it. */
static void s_teardown(void)
{
    tolk_asr_shutdown();
}

/* ---------------------------------------------------------------------
   Helpers
*/

/* A recording's samples, its WAV header skipped. */
typedef struct {
    int16_t *pcm;   /* 16 kHz mono samples */
    size_t samples; /* how many */
} s_audio_t;

/* Load DATA_DIR/<id>.wav, walking the RIFF chunks to the "data" one. */
static s_audio_t s_audio_load(const char *id)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.wav", DATA_DIR, id);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (is pocketsphinx-testdata installed?)", path);
    unsigned char head[12];
    ck_assert_uint_eq(fread(head, 1, 12, f), 12);
    ck_assert(memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WAVE", 4) == 0);
    s_audio_t audio = {0};
    for (;;) {
        unsigned char chunk[8];
        ck_assert_msg(fread(chunk, 1, 8, f) == 8, "%s: no data chunk", path);
        long size = chunk[4] | chunk[5] << 8 | chunk[6] << 16 | (long)chunk[7] << 24;
        if (memcmp(chunk, "data", 4) != 0) {
            ck_assert_int_eq(fseek(f, size + (size & 1), SEEK_CUR), 0);
            continue;
        }
        audio.samples = (size_t)size / 2;
        audio.pcm = malloc(audio.samples * 2 + 1);
        ck_assert_ptr_nonnull(audio.pcm);
        ck_assert_uint_eq(fread(audio.pcm, 2, audio.samples, f), audio.samples);
        break;
    }
    fclose(f);
    return audio;
}

/* One result as the callback saw it, its text copied. */
typedef struct {
    tolk_asr_result_t r; /* r.text points at text */
    char *text;          /* owned copy */
} s_result_t;

/* Every result of a run, in order. */
typedef struct {
    s_result_t *items; /* grown by s_collect */
    size_t count;      /* used */
    size_t cap;        /* allocated */
} s_results_t;

/* The emit callback: keep a copy of each result. */
static void s_collect(void *arg, const tolk_asr_result_t *result)
{
    s_results_t *list = arg;
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        ck_assert_ptr_nonnull(list->items);
    }
    s_result_t *item = &list->items[list->count++];
    item->r = *result;
    item->text = strdup(result->text);
    ck_assert_ptr_nonnull(item->text);
    item->r.text = item->text;
}

/* Forget a run's results. */
static void s_results_free(s_results_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].text);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* Stream a whole recording in chunks of `chunk` samples, then finish,
   collecting every result. */
static void s_stream_file(const s_audio_t *audio, size_t chunk, s_results_t *out)
{
    tolk_asr_stream_t *stream = tolk_asr_stream_new("pocketsphinx", MODEL_DIR, s_collect, out);
    ck_assert_ptr_nonnull(stream);
    for (size_t at = 0; at < audio->samples; at += chunk) {
        size_t n = audio->samples - at < chunk ? audio->samples - at : chunk;
        ck_assert_int_eq(tolk_asr_stream_feed(stream, audio->pcm + at, n), 0);
    }
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    tolk_asr_stream_destroy(&stream);
    ck_assert_ptr_null(stream);
}

/* The finals of a run joined with spaces, malloc'd. */
static char *s_finals_text(const s_results_t *list)
{
    size_t size = 1;
    for (size_t i = 0; i < list->count; i++)
        size += strlen(list->items[i].text) + 1;
    char *text = calloc(1, size);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < list->count; i++) {
        if (!list->items[i].r.is_final)
            continue;
        if (*text)
            strcat(text, " ");
        strcat(text, list->items[i].text);
    }
    return text;
}

/* Start pocketsphinx_continuous on a file with the worker's model; its
   stdout carries one hypothesis line per utterance. */
static FILE *s_continuous_start(const char *id)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "pocketsphinx_continuous -infile %s/%s.wav -hmm %s/en-us -lm %s/en-us.lm.bin "
             "-dict %s/cmudict-en-us.dict -logfn /dev/null 2>/dev/null",
             DATA_DIR, id, MODEL_DIR, MODEL_DIR, MODEL_DIR);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Read a pocketsphinx_continuous run to the end: its lines joined. */
static char *s_continuous_read(FILE *p)
{
    size_t size = 4096, used = 0;
    char *text = calloc(1, size), line[2048];
    ck_assert_ptr_nonnull(text);
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        ck_assert_uint_lt(used + strlen(line) + 2, size);
        if (used)
            text[used++] = ' ';
        strcpy(text + used, line);
        used += strlen(line);
    }
    ck_assert_int_eq(pclose(p), 0);
    return text;
}

/* Check the shape of one stream's results: segments numbered in order from
   0, partials that never shrink within a segment, every segment closed by
   a non-empty final whose times are sane and follow the previous final.
   Returns how many segments had a partial before their final. */
static size_t s_check_shape(const s_results_t *results, int64_t audio_ms)
{
    uint32_t segment = 0;      /* the segment the next result must carry */
    size_t stable_words = 0;   /* words of the segment's last partial */
    int64_t prev_end = 0;      /* end of the previous final */
    bool partial_seen = false; /* this segment had a partial */
    size_t with_partials = 0;
    for (size_t i = 0; i < results->count; i++) {
        const tolk_asr_result_t *r = &results->items[i].r;
        ck_assert_uint_eq(r->segment, segment);
        ck_assert_int_ge(r->start_ms, prev_end);
        ck_assert_int_ge(r->end_ms, r->start_ms);
        ck_assert_int_le(r->end_ms, audio_ms);
        ck_assert_uint_gt(tolk_asr_words(r->text), 0);
        if (r->is_final) {
            with_partials += partial_seen;
            segment++;
            stable_words = 0;
            prev_end = r->end_ms;
            partial_seen = false;
            continue;
        }
        size_t n = tolk_asr_words(r->text);
        ck_assert_msg(n >= stable_words, "partial shrank to '%s'", r->text);
        stable_words = n;
        partial_seen = true;
    }
    ck_assert_msg(!partial_seen, "partials without a final");
    ck_assert_uint_gt(segment, 0);
    return with_partials;
}

/* ---------------------------------------------------------------------
   Accuracy against pocketsphinx_continuous
*/

/* The recordings are long to decode, so this one pass over them also checks
   the shape of each file's results. */
START_TEST(test_librivox)
{
    /* the reference decoder runs alongside ours, one process per file */
    FILE *runs[FILE_COUNT];
    for (size_t i = 0; i < FILE_COUNT; i++)
        runs[i] = s_continuous_start(s_files[i]);

    size_t stream_errors = 0, ref_errors = 0, words = 0;
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_audio_t audio = s_audio_load(s_files[i]);
        s_results_t results = {0};
        s_stream_file(&audio, 1600, &results);
        ck_assert_uint_gt(s_check_shape(&results, (int64_t)audio.samples / 16), 0);
        char *ours = s_finals_text(&results);
        char *theirs = s_continuous_read(runs[i]);
        char *ref = wer_reference(DATA_DIR, s_files[i]);
        ck_assert_msg(ref != NULL, "no transcription for %s", s_files[i]);
        size_t n;
        stream_errors += wer_errors(ref, ours, &n);
        ref_errors += wer_errors(ref, theirs, &n);
        words += n;
        printf("asr: %s\n  ref:        %s\n  streaming:  %s\n  continuous: %s\n", s_files[i], ref,
               ours, theirs);
        free(ref);
        free(theirs);
        free(ours);
        s_results_free(&results);
        free(audio.pcm);
    }
    ck_assert_uint_gt(words, 0);
    double ours = 100.0 * (double)stream_errors / (double)words;
    double theirs = 100.0 * (double)ref_errors / (double)words;
    printf("asr: streaming WER %.1f%% vs pocketsphinx_continuous %.1f%% (%zu words)\n", ours,
           theirs, words);
    fflush(stdout);
    ck_assert_msg(ours <= theirs + 2.0, "streaming WER %.1f%% > continuous %.1f%% + 2", ours,
                  theirs);
}
END_TEST

/* ---------------------------------------------------------------------
   Shape of the result stream
*/

/* Two recordings with a second of silence after each, in one stream: the
   endpointer ends each utterance by itself (no finish), segments number
   on, and the times fall where the speech is. */
START_TEST(test_utterances)
{
    s_audio_t first = s_audio_load(s_files[1]), second = s_audio_load(s_files[4]);
    static const int16_t quiet[16000]; /* one second */
    s_results_t results = {0};
    tolk_asr_stream_t *stream = tolk_asr_stream_new("pocketsphinx", MODEL_DIR, s_collect, &results);
    ck_assert_ptr_nonnull(stream);
    const s_audio_t *parts[] = {&first, &second};
    for (size_t p = 0; p < 2; p++) {
        for (size_t at = 0; at < parts[p]->samples; at += 1600) {
            size_t n = parts[p]->samples - at < 1600 ? parts[p]->samples - at : 1600;
            ck_assert_int_eq(tolk_asr_stream_feed(stream, parts[p]->pcm + at, n), 0);
        }
        for (size_t at = 0; at < 16000; at += 1600)
            ck_assert_int_eq(tolk_asr_stream_feed(stream, quiet + at, 1600), 0);
    }
    size_t before_finish = results.count;
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    ck_assert_uint_eq(results.count, before_finish); /* nothing was left open */
    tolk_asr_stream_destroy(&stream);

    int64_t first_ms = (int64_t)first.samples / 16, second_ms = (int64_t)second.samples / 16;
    ck_assert_uint_eq(s_check_shape(&results, first_ms + second_ms + 2000), 2);
    const tolk_asr_result_t *finals[2];
    size_t n = 0;
    for (size_t i = 0; i < results.count; i++)
        if (results.items[i].r.is_final)
            finals[n++] = &results.items[i].r;
    ck_assert_uint_eq(n, 2);
    /* the first utterance ends before the second recording starts; the
       second starts near it (the onset estimate may be early by a block) */
    ck_assert_int_lt(finals[0]->end_ms, first_ms + 1000);
    ck_assert_int_gt(finals[0]->end_ms, first_ms / 2);
    ck_assert_int_ge(finals[1]->start_ms, first_ms + 1000 - 200);
    ck_assert_int_lt(finals[1]->end_ms, first_ms + 1000 + second_ms + 1000);
    ck_assert_uint_ge(tolk_asr_words(finals[0]->text), 5);
    ck_assert_uint_ge(tolk_asr_words(finals[1]->text), 5);
    s_results_free(&results);
    free(first.pcm);
    free(second.pcm);
}
END_TEST

/* The engine decodes in fixed blocks whatever the chunk size, so about
   20 ms chunks (333 samples, which straddle the blocks) and 200 ms chunks
   give the same finals; the decoder pool's reuse between the two runs must
   not change them either. */
START_TEST(test_chunk_size)
{
    s_audio_t audio = s_audio_load(s_files[1]);
    s_results_t small = {0}, large = {0};
    s_stream_file(&audio, 333, &small);
    s_stream_file(&audio, 3200, &large);
    char *a = s_finals_text(&small), *b = s_finals_text(&large);
    ck_assert_uint_gt(tolk_asr_words(a), 5);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    s_results_free(&small);
    s_results_free(&large);
    free(audio.pcm);
}
END_TEST

/* ---------------------------------------------------------------------
   Failure paths and the pool
*/

START_TEST(test_bad_open)
{
    s_results_t results = {0};
    ck_assert_ptr_null(tolk_asr_stream_new("whisper", MODEL_DIR, s_collect, &results));
    ck_assert_ptr_null(tolk_asr_stream_new(NULL, MODEL_DIR, s_collect, &results));
    ck_assert_ptr_null(
        tolk_asr_stream_new("pocketsphinx", "/nonexistent/model", s_collect, &results));
    ck_assert_ptr_null(tolk_asr_stream_new("pocketsphinx", NULL, s_collect, &results));
    ck_assert_ptr_null(tolk_asr_stream_new("pocketsphinx", MODEL_DIR, NULL, NULL));
    tolk_asr_stream_t *none = NULL;
    tolk_asr_stream_destroy(&none);
    tolk_asr_stream_destroy(NULL);
    ck_assert_int_eq(tolk_asr_stream_feed(NULL, NULL, 0), -1);
    ck_assert_int_eq(tolk_asr_stream_finish(NULL), -1);
    ck_assert_uint_eq(results.count, 0);
}
END_TEST

START_TEST(test_pool_reuse)
{
    s_audio_t audio = s_audio_load(s_files[1]);
    s_results_t first = {0}, again = {0};

    /* silence and an empty finish report nothing */
    tolk_asr_stream_t *stream = tolk_asr_stream_new("pocketsphinx", MODEL_DIR, s_collect, &first);
    ck_assert_ptr_nonnull(stream);
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    static const int16_t quiet[1600];
    ck_assert_int_eq(tolk_asr_stream_feed(stream, quiet, 1600), 0);
    ck_assert_int_eq(tolk_asr_stream_feed(stream, quiet, 0), 0);
    ck_assert_int_eq(tolk_asr_stream_feed(stream, NULL, 10), -1);
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    ck_assert_uint_eq(first.count, 0);
    tolk_asr_stream_destroy(&stream);
    ck_assert_ptr_null(stream);
    tolk_asr_stream_destroy(&stream);

    /* the parked decoder serves the next stream, which goes on after a
       finish: a new utterance, numbered on */
    stream = tolk_asr_stream_new("pocketsphinx", MODEL_DIR, s_collect, &first);
    ck_assert_ptr_nonnull(stream);
    ck_assert_int_eq(tolk_asr_stream_feed(stream, audio.pcm, audio.samples), 0);
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    char *a = s_finals_text(&first);
    size_t before = first.count;
    ck_assert_uint_gt(before, 0);
    uint32_t next = first.items[before - 1].r.segment + 1;
    ck_assert_int_eq(tolk_asr_stream_feed(stream, audio.pcm, audio.samples), 0);
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    tolk_asr_stream_destroy(&stream);
    ck_assert_uint_gt(first.count, before);
    ck_assert_uint_eq(first.items[0].r.segment, 0);
    ck_assert_uint_eq(first.items[before].r.segment, next);
    ck_assert(first.items[first.count - 1].r.is_final);

    /* that decoder, back in the pool after hearing the speaker twice, is as
       good as new for the next stream: the same words as its first pass */
    s_stream_file(&audio, 1600, &again);
    char *b = s_finals_text(&again);
    ck_assert_uint_gt(tolk_asr_words(a), 3);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    s_results_free(&first);
    s_results_free(&again);
    free(audio.pcm);
}
END_TEST

/* ---------------------------------------------------------------------
   Stability filter
*/

_Static_assert(TOLK_ASR_STABLE_DEPTH == 3, "test_stable_filter is written for depth 3");

START_TEST(test_stable_filter)
{
    tolk_asr_stable_t *f = tolk_asr_stable_new();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(tolk_asr_stable_emitted(f), "");

    /* fewer hypotheses than the depth are no agreement */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "he"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "  he   was "));
    /* agreed words only, whole words, single-spaced */
    ck_assert_str_eq(tolk_asr_stable_push(f, "he was not"), "he");
    ck_assert_str_eq(tolk_asr_stable_push(f, "he was not an"), "he was");
    /* the same stable text again is not news */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "he was knot"));
    /* the engine changed its mind about "was": a shorter stable text is not
       sent, the partial shown stays */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "he wasn't an"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "he wasn't an ill"));
    ck_assert_str_eq(tolk_asr_stable_emitted(f), "he was");
    /* longer and different: sent, it replaces the shown one */
    ck_assert_str_eq(tolk_asr_stable_push(f, "he wasn't an ill disposed"), "he wasn't an");
    ck_assert_str_eq(tolk_asr_stable_push(f, "he wasn't an ill disposed young"),
                     "he wasn't an ill");
    /* "he was" is not a word prefix of "he wasn't" */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "he was"));
    ck_assert_str_eq(tolk_asr_stable_emitted(f), "he wasn't an ill");
    /* an empty hypothesis agrees on nothing */
    ck_assert_ptr_null(tolk_asr_stable_push(f, ""));
    ck_assert_ptr_null(tolk_asr_stable_push(f, NULL));

    /* a new utterance starts from nothing */
    tolk_asr_stable_reset(f);
    ck_assert_str_eq(tolk_asr_stable_emitted(f), "");
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to be"));
    ck_assert_str_eq(tolk_asr_stable_push(f, "unless to be rather"), "unless to");
    /* agreement is between consecutive hypotheses only: one odd one out
       blocks the filter until it has left the window */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "hello study"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to be rather cold"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to be rather cold hearted"));
    ck_assert_str_eq(tolk_asr_stable_push(f, "unless to be rather cold hearted and"),
                     "unless to be rather cold");
    /* a change of the same length is sent too */
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to be rather bold"));
    ck_assert_ptr_null(tolk_asr_stable_push(f, "unless to be rather bold hearted"));
    ck_assert_str_eq(tolk_asr_stable_push(f, "unless to be rather bold heart"),
                     "unless to be rather bold");

    tolk_asr_stable_destroy(&f);
    ck_assert_ptr_null(f);
    tolk_asr_stable_destroy(&f);
    tolk_asr_stable_destroy(NULL);

    ck_assert_uint_eq(tolk_asr_words(""), 0);
    ck_assert_uint_eq(tolk_asr_words(NULL), 0);
    ck_assert_uint_eq(tolk_asr_words("  a  bb\tc "), 3);
}
END_TEST

/* The load-test recogniser: one scripted final per period of audio, numbered
   segments, its text ending with a CLOCK_MONOTONIC stamp taken at the emit,
   and what is left at finish as one more final. */
START_TEST(test_loadtest_engine)
{
    s_results_t results = {0};
    tolk_asr_loadtest_set_period(200);
    tolk_asr_stream_t *stream = tolk_asr_stream_new("loadtest", "", s_collect, &results);
    ck_assert_ptr_nonnull(stream);
    int16_t chunk[1600] = {0}; /* 100 ms */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long before = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(tolk_asr_stream_feed(stream, chunk, 1600), 0);
    ck_assert_uint_eq(results.count, 5);
    tolk_asr_loadtest_set_period(50); /* a chunk longer than the period: two finals */
    ck_assert_int_eq(tolk_asr_stream_feed(stream, chunk, 1600), 0);
    ck_assert_uint_eq(results.count, 7);
    tolk_asr_loadtest_set_period(200);
    ck_assert_int_eq(tolk_asr_stream_feed(stream, chunk, 800), 0); /* 50 ms more */
    ck_assert_int_eq(tolk_asr_stream_finish(stream), 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long after = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    ck_assert_uint_eq(results.count, 8);
    static const int64_t ends[] = {200, 400, 600, 800, 1000, 1050, 1100, 1150};
    for (size_t i = 0; i < results.count; i++) {
        const tolk_asr_result_t *r = &results.items[i].r;
        ck_assert(r->is_final);
        ck_assert_uint_eq(r->segment, i);
        ck_assert_int_eq(r->start_ms, i ? ends[i - 1] : 0);
        ck_assert_int_eq(r->end_ms, ends[i]);
        ck_assert(strncmp(r->text, "loadtest ", 9) == 0);
        const char *stamp = strrchr(r->text, ' ');
        ck_assert_ptr_nonnull(stamp);
        long long t = atoll(stamp + 1);
        ck_assert(t >= before && t <= after);
    }
    tolk_asr_stream_destroy(&stream);
    s_results_free(&results);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("asr");
    TCase *tc = tcase_create("stable");
    tcase_add_test(tc, test_stable_filter);
    suite_add_tcase(s, tc);

    tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 120); /* model loads and whole recordings */
    tcase_add_test(tc, test_bad_open);
    tcase_add_test(tc, test_loadtest_engine);
    tcase_add_test(tc, test_pool_reuse);
    tcase_add_test(tc, test_chunk_size);
    tcase_add_test(tc, test_utterances);
    tcase_add_test(tc, test_librivox);
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
