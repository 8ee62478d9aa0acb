/*  itest_apy_freeze.c -- a frozen translator delays nobody who does not
    need it (issue 14, "Nothing blocks a loop").

    A whole system (redis-server, two gateways, a control worker, the audio
    worker with pocketsphinx, the real APy) hears the LibriVox recordings
    streamed in real time, five files played in sequence three times over
    each followed by 0.6 s of quiet (85 s in all), with an English listener
    on one gateway and a Spanish listener on the other. Run 1 has APy
    running. Run 2, a new session on the same system, plays the same audio
    with APy frozen by SIGSTOP for 60 s from 4 s in: it still accepts TCP
    connections and never answers, the way a wedged translator behaves.

    What a user would notice, and so what is asserted:
    - the English listener, who needs no translation, reads as many of the
      words right: the WER of run 2 is within 3 points of run 1's. Whole
      runs are compared, because only whole runs have a reference that the
      finals can be scored against without word timings; the freeze covers
      60 of the 85 s of audio, so losing the frozen stretch shows in full;
    - the English captions keep their pace: no wait between two English
      finals in run 2 is longer than run 1's longest plus 1 s, where a
      wait is counted beyond the speech between the two utterances' ends
      (their endMs). The endpointer cuts the same audio a little
      differently from run to run (an utterance that ends 1.5 s later in
      run 2 makes a raw wait 1.5 s longer with nothing held up); a loop
      that waits on APy adds its stall to the counted wait all the same.
      The raw waits are printed beside it;
    - no gateway declares the audio worker dead (gateway/bridge.c logs
      "<kind> worker <id> is dead" when it does);
    - the Spanish listener gets finals marked untranslated (text = the
      source text, docs/protocol.md 5.2) while APy is frozen, and
      translated ones again after SIGCONT, within a bounded wait.
    The figures are printed so they can be quoted.
*/
#include "freeze.h"
#include "harness.h"
#include "itest_client.h"
#include "wer.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET       "apy-freeze-test-secret-0123456789abcdef"
#define NFILES       5
#define PASSES       3     /* 5 files are ~25 s: three times over, with pauses ~85 s */
#define CHUNK        3200  /* 100 ms of 16 kHz 16-bit mono */
#define CHUNK_MS     100   /* the pace: one chunk per 100 ms, real time */
#define PAUSE_MS     600   /* quiet after each file: the files end 0.2 s after their last word */
#define TONE_FILE    2     /* the file whose first 100 ms is the pauses' room tone */
#define FREEZE_AT_MS 4000  /* APy is stopped this far into run 2's audio */
#define FREEZE_MS    60000 /* and continued this long after */
#define BEAT_MS      20000 /* listeners send a heartbeat this often (idle timeout) */
#define SETTLE_MS    20000 /* after the audio: every final in, in both languages */
#define RETURN_MS    30000 /* after SIGCONT: a translated Spanish final by then */
#define WER_SLACK    3.0   /* points of WER the frozen run may lose */
#define GAP_SLACK_MS 1000  /* ms the longest wait between English finals may grow */
#define HYP_MAX      65536 /* room for a run's English finals, joined */

static const char *s_files[NFILES] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930"};

/* Tokens as this system demands them: its secret, no issuer or audience. */
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* The audio both runs play and what was said in it. */
typedef struct {
    uint8_t *pcm; /* PASSES x the five files, each followed by PAUSE_MS of quiet */
    size_t len;   /* bytes of pcm */
    char *ref;    /* the reference transcripts, concatenated the same way */
} program_t;

/* One connection's finals, each stamped with when it arrived. */
typedef struct {
    ws_client_t *ws;
    json_t *finals; /* caption messages with isPartial false, plus "arrivedMs" */
    bool open;      /* the last caption was a partial: an utterance is under way */
} inbox_t;

/* What one run measured: the figures asserted on and printed. */
typedef struct {
    double wer;             /* English finals against the reference, percent */
    size_t ref_words;       /* the WER's denominator */
    int en_finals;          /* English finals received */
    int64_t max_gap_ms;     /* longest wait between two consecutive English finals */
    int64_t max_gap_at_ms;  /* when (ms into the audio) that wait ended */
    int64_t max_held_ms;    /* longest such wait beyond the speech between the finals' ends */
    int64_t max_held_at_ms; /* when that wait ended */
    int es_finals;          /* Spanish finals received */
    int es_untranslated;    /* of which marked untranslated */
    int es_untr_frozen;     /* untranslated ones that arrived while APy was frozen */
    int es_back;            /* translated ones that arrived after SIGCONT */
    int64_t back_ms;        /* from SIGCONT to the first of those; -1 if none */
    int64_t frozen_at_ms;   /* ms into the audio APy was stopped; -1 in run 1 */
    int64_t thawed_at_ms;   /* and continued */
    int dead;               /* gateway log lines declaring the audio worker dead */
    long long stale;        /* the audio worker's stale_dropped counter after the run */
} run_t;

/* ------------------------------------------------------------ helpers */

/* bytes of 16 kHz 16-bit mono PCM in one pause */
#define PAUSE_BYTES ((size_t)PAUSE_MS * 32)
/* bytes of room tone taken from the start of s_files[TONE_FILE] */
#define TONE_BYTES ((size_t)CHUNK)

/* Fill a pause with the room tone of the recordings: the first 100 ms of
   one file (before its first word, RMS 64), over and over. The files
   follow each other with only 0.4 s between the words, less than the
   endpointer's 0.5 s, so without pauses several sentences make one
   utterance. A room's quiet rather than digital zeros or synthetic noise
   (white noise at that level reads as speech to pocketsphinx's VAD: one
   utterance for the whole program). */
static void s_pause(uint8_t *out, const uint8_t *tone)
{
    for (size_t off = 0; off < PAUSE_BYTES; off += TONE_BYTES)
        memcpy(out + off, tone, PAUSE_BYTES - off < TONE_BYTES ? PAUSE_BYTES - off : TONE_BYTES);
}

/* The audio and its reference, built once: every run hears the same. */
static void s_program(program_t *p)
{
    size_t lens[NFILES], speech = 0;
    uint8_t *pcm[NFILES];
    for (int f = 0; f < NFILES; f++) {
        pcm[f] = ic_librivox(s_files[f], &lens[f]);
        speech += lens[f] + PAUSE_BYTES;
    }
    p->len = PASSES * speech;
    p->pcm = malloc(p->len);
    size_t cap = 16384, used = 0;
    p->ref = calloc(1, cap);
    ck_assert(p->pcm && p->ref);
    size_t off = 0;
    for (int pass = 0; pass < PASSES; pass++)
        for (int f = 0; f < NFILES; f++) {
            memcpy(p->pcm + off, pcm[f], lens[f]);
            off += lens[f];
            s_pause(p->pcm + off, pcm[TONE_FILE]);
            off += PAUSE_BYTES;
            char *ref = wer_reference(WER_LIBRIVOX_DIR, s_files[f]);
            ck_assert_msg(ref && ref[0], "no reference for %s", s_files[f]);
            ck_assert(used + strlen(ref) + 2 < cap);
            used += (size_t)snprintf(p->ref + used, cap - used, " %s", ref);
            free(ref);
        }
    for (int f = 0; f < NFILES; f++)
        free(pcm[f]);
}

/* Move every message that has arrived on box into it, without waiting;
   finals are kept with their arrival time (ms since t0). */
static void s_drain(inbox_t *box, int64_t t0)
{
    char *m;
    while ((m = ws_recv_text(box->ws, 0)) != NULL) {
        json_t *j = json_loads(m, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", m);
        free(m);
        if (strcmp(ic_get(j, "type"), "caption") == 0) {
            box->open = json_is_true(json_object_get(j, "isPartial"));
            if (!box->open) {
                json_object_set_new(j, "arrivedMs", json_integer(ic_now_ms() - t0));
                json_array_append(box->finals, j);
            }
        }
        json_decref(j);
    }
}

/* Lines of the gateways' logs in which one declares an audio worker dead. */
static int s_dead_lines(harness_t *h)
{
    int n = 0;
    for (int g = 0; g < harness_gateways(h); g++) {
        char path[1024], line[4096];
        snprintf(path, sizeof path, "%s/logs/gateway-%d.log", harness_dir(h), g);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "no log %s", path);
        while (fgets(line, sizeof line, f))
            if (strstr(line, "audio worker") && strstr(line, "is dead")) {
                printf("itest_apy_freeze: %s: %s", path + strlen(harness_dir(h)) + 1, line);
                n++;
            }
        fclose(f);
    }
    return n;
}

/* When a final arrived, in ms since the audio started. */
static int64_t s_arrived(json_t *final)
{
    return (int64_t)json_integer_value(json_object_get(final, "arrivedMs"));
}

/* Play p once to a new session with an English and a Spanish listener,
   freezing APy (apy > 0) from FREEZE_AT_MS for FREEZE_MS, then wait for
   every final, and measure. */
static void s_run(harness_t *h, const program_t *p, const char *sub, pid_t apy, run_t *out)
{
    memset(out, 0, sizeof *out);
    out->frozen_at_ms = out->thawed_at_ms = out->back_ms = -1;
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(h, 0, &s_jwt, sub, sid, NULL);
    inbox_t es = {ic_listener(h, 0, sid, "es", NULL), json_array(), false};
    inbox_t en = {ic_listener(h, 1, sid, "en", NULL), json_array(), false};
    inbox_t sp = {spk, json_array(), false}; /* the speaker gets its own transcript */
    inbox_t *boxes[] = {&en, &es, &sp};
    int dead_before = s_dead_lines(h);

    /* the audio, in real time */
    freeze_t *frozen = NULL;
    int64_t t0 = ic_now_ms(), next_beat = BEAT_MS;
    for (size_t off = 0, i = 0; off < p->len; off += CHUNK, i++) {
        size_t n = p->len - off < CHUNK ? p->len - off : CHUNK;
        ck_assert_int_eq(ws_send_binary(spk, p->pcm + off, n), 0);
        int64_t next = (int64_t)(i + 1) * CHUNK_MS;
        do {
            int64_t at = ic_now_ms() - t0;
            if (apy > 0 && out->frozen_at_ms < 0 && at >= FREEZE_AT_MS) {
                /* the guard gives it a minute more than we mean to */
                frozen = freeze_new(apy, FREEZE_MS + 60000);
                ck_assert_msg(frozen != NULL, "could not freeze APy (pid %d)", (int)apy);
                out->frozen_at_ms = ic_now_ms() - t0;
            }
            if (frozen && at >= out->frozen_at_ms + FREEZE_MS) {
                freeze_destroy(&frozen);
                out->thawed_at_ms = ic_now_ms() - t0;
            }
            if (at >= next_beat) {
                ck_assert_int_eq(ws_send_text(en.ws, "{\"action\":\"heartbeat\"}"), 0);
                ck_assert_int_eq(ws_send_text(es.ws, "{\"action\":\"heartbeat\"}"), 0);
                next_beat += BEAT_MS;
            }
            for (int b = 0; b < 3; b++)
                s_drain(boxes[b], t0);
            usleep(2000);
        } while (ic_now_ms() - t0 < next);
    }
    ck_assert_msg(frozen == NULL, "the audio ended before APy was continued");
    int64_t audio_end = ic_now_ms() - t0;

    /* every final in: English as many as Redis counted, no utterance open,
       Spanish as many as English, and after a freeze a translated Spanish
       final since SIGCONT */
    int64_t deadline = audio_end + SETTLE_MS;
    if (out->thawed_at_ms >= 0 && out->thawed_at_ms + RETURN_MS > deadline)
        deadline = out->thawed_at_ms + RETURN_MS;
    for (;;) {
        for (int b = 0; b < 3; b++)
            s_drain(boxes[b], t0);
        long long seq_en = ic_redis_int(h, "HGET tolk:{%s}:session seq:en", sid);
        int n_en = (int)json_array_size(en.finals), n_es = (int)json_array_size(es.finals);
        bool back = out->thawed_at_ms < 0;
        size_t i;
        json_t *c;
        json_array_foreach(es.finals, i, c) back |=
            s_arrived(c) >= out->thawed_at_ms && !json_is_true(json_object_get(c, "untranslated"));
        if ((n_en > 0 && seq_en == n_en && !en.open && n_es >= n_en && back) ||
            ic_now_ms() - t0 >= deadline)
            break;
        usleep(50000);
    }
    ck_assert_msg(ws_is_open(en.ws) && ws_is_open(es.ws) && ws_is_open(spk),
                  "a connection was closed: en %d, es %d, speaker %d", ws_close_code(en.ws),
                  ws_close_code(es.ws), ws_close_code(spk));

    /* English: accuracy and pace */
    char *hyp = calloc(1, HYP_MAX);
    ck_assert_ptr_nonnull(hyp);
    size_t used = 0, i;
    json_t *c;
    int64_t last = -1, last_end = -1;
    json_array_foreach(en.finals, i, c)
    {
        int64_t end = ic_int(c, "endMs");
        ck_assert_str_eq(ic_get(c, "language"), "en");
        const char *text = ic_get(c, "text");
        ck_assert(used + strlen(text) + 2 < HYP_MAX);
        used += (size_t)snprintf(hyp + used, HYP_MAX - used, " %s", text);
        if (last >= 0 && s_arrived(c) - last > out->max_gap_ms) {
            out->max_gap_ms = s_arrived(c) - last;
            out->max_gap_at_ms = s_arrived(c);
        }
        int64_t held = s_arrived(c) - last - (end - last_end);
        if (last >= 0 && held > out->max_held_ms) {
            out->max_held_ms = held;
            out->max_held_at_ms = s_arrived(c);
        }
        last = s_arrived(c);
        last_end = end;
    }
    out->en_finals = (int)json_array_size(en.finals);
    printf("itest_apy_freeze: %s: English finals arrived at (s):", sub);
    json_array_foreach(en.finals, i, c) printf(" %.1f", (double)s_arrived(c) / 1000);
    printf("\nitest_apy_freeze: %s: their utterances ended at (endMs, s):", sub);
    json_array_foreach(en.finals, i, c) printf(" %.1f", (double)ic_int(c, "endMs") / 1000);
    printf("\n");
    size_t errors = wer_errors(p->ref, hyp, &out->ref_words);
    out->wer = 100.0 * (double)errors / (double)out->ref_words;
    free(hyp);

    /* Spanish: untranslated while frozen, translated again after */
    json_array_foreach(es.finals, i, c)
    {
        ck_assert_str_eq(ic_get(c, "language"), "es");
        int64_t at = s_arrived(c);
        if (json_is_true(json_object_get(c, "untranslated"))) {
            ck_assert_str_eq(ic_get(c, "text"), ic_get(c, "sourceText"));
            out->es_untranslated++;
            out->es_untr_frozen +=
                out->frozen_at_ms >= 0 && at >= out->frozen_at_ms && at <= out->thawed_at_ms;
        } else if (out->thawed_at_ms >= 0 && at >= out->thawed_at_ms) {
            if (out->es_back++ == 0)
                out->back_ms = at - out->thawed_at_ms;
        }
    }
    out->es_finals = (int)json_array_size(es.finals);
    out->dead = s_dead_lines(h) - dead_before;
    out->stale = ic_feed_counter(h, "audio", "stale_dropped", 5000);
    printf("itest_apy_freeze: %s: audio %lld ms, APy frozen %lld..%lld ms; English: %d finals, "
           "WER %.1f%% of %zu words, longest wait between finals %lld ms (ending at %lld ms), "
           "beyond the speech between them %lld ms (ending at %lld ms); "
           "Spanish: %d finals, %d untranslated (%d while frozen), %d translated after SIGCONT "
           "(first %lld ms after); gateway 'audio worker is dead' lines %d; audio worker "
           "stale_dropped %lld (cumulative)\n",
           sub, (long long)audio_end, (long long)out->frozen_at_ms, (long long)out->thawed_at_ms,
           out->en_finals, out->wer, out->ref_words, (long long)out->max_gap_ms,
           (long long)out->max_gap_at_ms, (long long)out->max_held_ms,
           (long long)out->max_held_at_ms, out->es_finals, out->es_untranslated,
           out->es_untr_frozen, out->es_back, (long long)out->back_ms, out->dead, out->stale);
    fflush(stdout);

    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&es.ws);
    ws_destroy(&en.ws);
    for (int b = 0; b < 3; b++)
        json_decref(boxes[b]->finals);
}

/* ------------------------------------------------------------- tests */

START_TEST(test_frozen_apy_delays_no_english_caption)
{
    harness_opts_t opts = {
        .gateways = 2,
        .control_workers = 1,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", NULL}};
    harness_t *h = harness_start(&opts);
    ck_assert_msg(h != NULL, "the system did not start");
    program_t p;
    s_program(&p);

    run_t one, two;
    s_run(h, &p, "freeze-run-1", 0, &one);
    /* run 1 is the yardstick: APy answered every final */
    ck_assert_int_gt(one.en_finals, NFILES * PASSES / 2);
    ck_assert_int_eq(one.es_finals, one.en_finals);
    ck_assert_int_eq(one.es_untranslated, 0);
    ck_assert_int_eq(one.dead, 0);

    pid_t apy = harness_pid(h, "apy");
    ck_assert_msg(apy > 0, "no pid for APy");
    s_run(h, &p, "freeze-run-2", apy, &two);

    printf("itest_apy_freeze: English WER %.1f%% running, %.1f%% frozen (allowed %.1f%%); "
           "longest wait beyond the speech %lld ms running, %lld ms frozen (allowed %lld ms); "
           "longest raw wait %lld ms running, %lld ms frozen\n",
           one.wer, two.wer, one.wer + WER_SLACK, (long long)one.max_held_ms,
           (long long)two.max_held_ms, (long long)(one.max_held_ms + GAP_SLACK_MS),
           (long long)one.max_gap_ms, (long long)two.max_gap_ms);
    fflush(stdout);
    ck_assert_msg(two.dead == 0, "a gateway declared the audio worker dead (%d lines)", two.dead);
    ck_assert_msg(two.wer <= one.wer + WER_SLACK,
                  "English WER %.1f%% with APy frozen against %.1f%% with it running", two.wer,
                  one.wer);
    ck_assert_msg(two.max_held_ms <= one.max_held_ms + GAP_SLACK_MS,
                  "English finals were held %lld ms beyond the speech (until %lld ms in) with "
                  "APy frozen; at most %lld ms with it running",
                  (long long)two.max_held_ms, (long long)two.max_held_at_ms,
                  (long long)one.max_held_ms);
    ck_assert_msg(two.es_untr_frozen > 0, "no untranslated Spanish final while APy was frozen");
    ck_assert_msg(two.es_back > 0, "no translated Spanish final within %d ms of SIGCONT",
                  RETURN_MS);
    ck_assert_int_eq(two.es_finals, two.en_finals);

    free(p.pcm);
    free(p.ref);
    ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apy_freeze");
    TCase *tc = tcase_create("frozen");
    /* two runs of ~85 s of real-time audio, a system start and the waits */
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_frozen_apy_delays_no_english_caption);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
