/*  itest_history.c -- what a listener gets beyond the live captions: the
    finals it missed, the ones said before it came, the translation spoken
    aloud, and the speaker's transcript. A real redis-server, APy, two
    gateways, a control worker and an audio worker (pocketsphinx and
    espeak-ng) under supervisord, with the LibriVox recordings.

    Covers the people's-side issue's list: a listener that drops after seq
    N and resumes with lastSeq=N gets N+1... with nothing missing and
    nothing twice; a late joiner gets the last finals (catchUp) and then
    the live ones without a duplicate; the first listener of a language
    gets the recent finals translated; an audio listener receives speech
    frames for each final of its language, a text-only listener none, and
    two audio listeners cost one synthesis; the transcript comes as WebVTT
    and text, to the speaker only, also after the end, until it expires.
*/
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
#include <time.h>
#include <unistd.h>

#define SECRET "history-test-secret-0123456789abcdef"
#define CHUNK  3200 /* 100 ms */

static const char *s_files[] = {"sense_and_sensibility_01_austen_64kb-0870",
                                "sense_and_sensibility_01_austen_64kb-0880",
                                "sense_and_sensibility_01_austen_64kb-0890"};
#define NFILES ((int)(sizeof s_files / sizeof *s_files))

static harness_t *s_h;
static int s_problems;
static const ic_jwt_t s_jwt = {.secret = SECRET};

static void s_setup(void)
{
    harness_opts_t opts = {.gateways = 2,
                           .control_workers = 1,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_CATCHUP_FINALS=3",
                                         "TOLK_TRANSCRIPT_RETENTION_S=4", NULL}};
    s_h = harness_start(&opts);
    if (!s_h) {
        fprintf(stderr, "itest_history: the system did not start\n");
        exit(1);
    }
}

static void s_teardown(void)
{
    if (getenv("TOLK_KEEP"))
        printf("itest_history: system in %s\n", harness_dir(s_h));
    s_problems += harness_stop(&s_h);
}

/* ------------------------------------------------------------ helpers */

/* Everything one client received: finals, speech frames, the rest. */
typedef struct {
    ws_client_t *ws;
    json_t *finals;   /* caption messages with isPartial false, in arrival order */
    json_t *speech;   /* the JSON headers of speech frames, in arrival order */
    json_t *others;   /* every other text message */
    size_t pcm_bytes; /* PCM received in speech frames */
} inbox_t;

static void s_box(inbox_t *b, ws_client_t *ws)
{
    b->ws = ws;
    b->finals = json_array();
    b->speech = json_array();
    b->others = json_array();
    b->pcm_bytes = 0;
}

static void s_box_free(inbox_t *b)
{
    ws_destroy(&b->ws);
    json_decref(b->finals);
    json_decref(b->speech);
    json_decref(b->others);
}

/* Move what has arrived (waiting up to wait_ms for the first) into b. */
static void s_drain(inbox_t *b, int wait_ms)
{
    if (!b->ws)
        return;
    int op;
    size_t n;
    uint8_t *m;
    while ((m = ws_recv_message(b->ws, &op, &n, wait_ms)) != NULL) {
        wait_ms = 0;
        if (op == WS_OP_BINARY) {
            ck_assert_uint_ge(n, 2);
            size_t hl = (size_t)m[0] << 8 | m[1];
            ck_assert_uint_le(2 + hl, n);
            json_t *hdr = json_loadb((const char *)m + 2, hl, 0, NULL);
            ck_assert_msg(hdr != NULL, "speech frame header is not JSON");
            ck_assert_str_eq(ic_get(hdr, "type"), "speech");
            ck_assert_uint_eq((n - 2 - hl) % 2, 0);
            b->pcm_bytes += n - 2 - hl;
            json_array_append_new(b->speech, hdr);
            free(m);
            continue;
        }
        json_t *j = json_loadb((const char *)m, n, 0, NULL);
        free(m);
        ck_assert_ptr_nonnull(j);
        if (strcmp(ic_get(j, "type"), "caption") == 0 &&
            !json_is_true(json_object_get(j, "isPartial")))
            json_array_append_new(b->finals, j);
        else if (strcmp(ic_get(j, "type"), "caption") == 0)
            json_decref(j);
        else
            json_array_append_new(b->others, j);
    }
}

/* Drain b until nothing has come for quiet_ms: frames of one burst (a
   catch-up, a final's speech) arrive over a few milliseconds. */
static void s_settle(inbox_t *b, int quiet_ms)
{
    for (;;) {
        size_t before =
            json_array_size(b->finals) + json_array_size(b->speech) + json_array_size(b->others);
        s_drain(b, quiet_ms);
        if (json_array_size(b->finals) + json_array_size(b->speech) + json_array_size(b->others) ==
            before)
            return;
    }
}

static void s_drain_all(inbox_t **boxes, int n, int wait_ms)
{
    for (int i = 0; i < n; i++)
        s_drain(boxes[i], i == 0 ? wait_ms : 0);
}

/* Stream one file at 4x real time in 100 ms chunks, draining the boxes. */
static void s_stream(ws_client_t *spk, const char *file, inbox_t **boxes, int nboxes)
{
    size_t len;
    uint8_t *pcm = ic_librivox(file, &len);
    int64_t start = ic_now_ms();
    for (size_t off = 0, i = 0; off + 100 <= len; off += CHUNK, i++) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        ck_assert_int_eq(ws_send_binary(spk, pcm + off, n), 0);
        int64_t next = start + (int64_t)((double)(i + 1) * 25);
        do {
            s_drain_all(boxes, nboxes, 0);
            usleep(2000); /* pacing: the speech goes out at its speed, whatever comes back */
        } while (ic_now_ms() < next);
    }
    free(pcm);
}

/* The session's count of finals in lang (its seq counter in Redis). */
static long s_seq(const char *sid, const char *lang)
{
    return (long)ic_redis_int(s_h, "HGET tolk:{%s}:session seq:%s", sid, lang);
}

/* Wait until b holds a final with seq >= want (or timeout). */
static void s_wait_seq(inbox_t *b, long want, int timeout_ms)
{
    int64_t end = ic_now_ms() + timeout_ms;
    for (;;) {
        size_t n = json_array_size(b->finals);
        if (n && ic_int(json_array_get(b->finals, n - 1), "seq") >= want)
            return;
        if (ic_now_ms() >= end)
            return;
        s_drain(b, 100);
    }
}

/* Stream files until the session has at least want finals in lang. */
static void s_speak_until(ws_client_t *spk, const char *sid, const char *lang, long want,
                          inbox_t **boxes, int nboxes)
{
    for (int f = 0; f < NFILES && s_seq(sid, lang) < want; f++) {
        s_stream(spk, s_files[f], boxes, nboxes);
        /* the gap after a file ends its utterance with a final */
        int64_t end = ic_now_ms() + 8000;
        long before = s_seq(sid, lang);
        while (s_seq(sid, lang) == before && ic_now_ms() < end)
            s_drain_all(boxes, nboxes, 100);
    }
    ck_assert_msg(s_seq(sid, lang) >= want, "only %ld finals in %s", s_seq(sid, lang), lang);
}

/* Asserts the finals of b, from index from on, are first..last, each once. */
static void s_assert_run(inbox_t *b, size_t from, long first, long last)
{
    size_t n = json_array_size(b->finals);
    ck_assert_msg((long)(n - from) == last - first + 1, "%zu finals for seq %ld..%ld", n - from,
                  first, last);
    for (size_t i = from; i < n; i++)
        ck_assert_int_eq(ic_int(json_array_get(b->finals, i), "seq"), first + (long)(i - from));
}

/* A final's text from the history in Redis. */
static json_t *s_history(const char *sid, const char *lang, long seq)
{
    redisReply *r = redisCommand(harness_redis(s_h), "XRANGE tolk:{%s}:hist:%s %ld-0 %ld-0", sid,
                                 lang, seq, seq);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 1);
    redisReply *fields = r->element[0]->element[1];
    json_t *j = json_loads(fields->element[1]->str, 0, NULL);
    freeReplyObject(r);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* ------------------------------------------------------------- tests */

START_TEST(test_resume_gets_exactly_the_missed_finals)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "history-speaker", sid, NULL);
    inbox_t es, sp, stay;
    s_box(&es, ic_listener(s_h, 0, sid, "es", NULL));
    s_box(&sp, spk);
    /* another Spanish listener stays: Spanish is translated while es is away */
    s_box(&stay, ic_listener(s_h, 1, sid, "es", NULL));
    inbox_t *boxes[] = {&es, &sp};
    s_speak_until(spk, sid, "es", 2, boxes, 2);
    s_wait_seq(&es, s_seq(sid, "es"), 5000);
    long n = (long)json_array_size(es.finals);
    ck_assert_int_ge(n, 2);
    s_assert_run(&es, 0, 1, n);
    /* the connection drops (no close frame) after seq n */
    ws_destroy(&es.ws);
    inbox_t *spk_only[] = {&sp};
    s_speak_until(spk, sid, "es", n + 2, spk_only, 1);
    /* back, on the other gateway, with the last seq it saw */
    s_box_free(&es);
    s_box(&es, ic_open(s_h, 1,
                       "/ws?action=refreshConnection&sessionId=%s&role=listener&targetLanguage=es"
                       "&lastSeq=%ld",
                       sid, n));
    char *first = ws_recv_text(es.ws, IC_WAIT_MS);
    json_t *j = ic_json(first);
    ck_assert_str_eq(ic_get(j, "type"), "connectionRefreshComplete");
    json_decref(j);
    /* more speech while it catches up: live finals continue the run */
    inbox_t *both[] = {&es, &sp};
    s_stream(spk, s_files[NFILES - 1], both, 2);
    long total = s_seq(sid, "es");
    s_wait_seq(&es, total, 10000);
    total = s_seq(sid, "es");
    s_settle(&es, 1000);
    s_assert_run(&es, 0, n + 1, total);
    /* the missed ones are marked as catch-up, and are what the history holds */
    json_t *c = json_array_get(es.finals, 0);
    ck_assert(json_is_true(json_object_get(c, "catchUp")));
    json_t *h = s_history(sid, "es", n + 1);
    ck_assert_str_eq(ic_get(c, "text"), ic_get(h, "text"));
    ck_assert_str_eq(ic_get(c, "segmentId"), ic_get(h, "segmentId"));
    json_decref(h);
    int caught = 0;
    for (size_t i = 0; i < json_array_size(es.finals); i++)
        caught += json_is_true(json_object_get(json_array_get(es.finals, i), "catchUp"));
    printf("itest_history: resumed after seq %ld, got %ld..%ld once each, %d from the history\n", n,
           n + 1, total, caught);

    /* a late joiner gets the last catchup_finals (3), then live, no duplicate */
    inbox_t late;
    s_box(&late, ic_listener(s_h, 0, sid, "es", NULL));
    long have = s_seq(sid, "es");
    s_settle(&late, 1000);
    ck_assert_int_ge(have, 3);
    s_assert_run(&late, 0, have - 2, have);
    for (size_t i = 0; i < json_array_size(late.finals); i++)
        ck_assert(json_is_true(json_object_get(json_array_get(late.finals, i), "catchUp")));
    inbox_t *all[] = {&late, &es, &sp};
    s_stream(spk, s_files[0], all, 3);
    long now = s_seq(sid, "es");
    s_wait_seq(&late, now, 10000);
    s_settle(&late, 1000);
    s_assert_run(&late, 0, have - 2, s_seq(sid, "es"));

    /* lastSeq must be a number */
    ws_client_t *bad =
        ic_open(s_h, 0, "/ws?action=joinSession&sessionId=%s&targetLanguage=es&lastSeq=x1", sid);
    ic_expect_refusal(bad, 400, "INVALID_PARAMETERS");
    ws_destroy(&bad);
    ws_close(spk, 1000, "done");
    s_box_free(&stay);
    s_box_free(&late);
    s_box_free(&es);
    s_box_free(&sp);
}
END_TEST

START_TEST(test_first_listener_of_a_language_gets_recent_finals)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "history-speaker", sid, NULL);
    inbox_t sp;
    s_box(&sp, spk);
    inbox_t *boxes[] = {&sp};
    s_speak_until(spk, sid, "en", 3, boxes, 1);
    long said = s_seq(sid, "en");
    /* nobody listened in Catalan: its first listener gets the last 3 translated */
    inbox_t ca;
    s_box(&ca, ic_listener(s_h, 1, sid, "ca", NULL));
    s_wait_seq(&ca, 3, 10000);
    s_settle(&ca, 1000);
    s_assert_run(&ca, 0, 1, 3);
    for (long k = 0; k < 3; k++) {
        json_t *c = json_array_get(ca.finals, (size_t)k);
        json_t *src = s_history(sid, "en", said - 2 + k);
        ck_assert_str_eq(ic_get(c, "sourceText"), ic_get(src, "text"));
        ck_assert_str_eq(ic_get(c, "segmentId"), ic_get(src, "segmentId"));
        ck_assert_str_eq(ic_get(c, "language"), "ca");
        json_decref(src);
    }
    ws_close(spk, 1000, "done");
    s_box_free(&ca);
    s_box_free(&sp);
}
END_TEST

/* How many finals' speech b has whole: speech frames marked last. */
static size_t s_last_parts(inbox_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(b->speech); i++)
        n += json_is_true(json_object_get(json_array_get(b->speech, i), "last"));
    return n;
}

/* Has inbox arg the whole speech of every final it has? Drains first. */
static bool s_spoken_all(void *arg)
{
    inbox_t *b = arg;
    s_drain(b, 0);
    return json_array_size(b->finals) > 0 && s_last_parts(b) >= json_array_size(b->finals);
}

/* Asserts b got speech frames for exactly the finals it got, each final's
   parts numbered 0.. and ending with last. */
static void s_assert_spoken(inbox_t *b)
{
    size_t nf = json_array_size(b->finals), ns = json_array_size(b->speech);
    ck_assert_uint_gt(nf, 0);
    long expect_part = 0, seq = -1;
    size_t finals_spoken = 0;
    for (size_t i = 0; i < ns; i++) {
        json_t *hd = json_array_get(b->speech, i);
        ck_assert_str_eq(ic_get(hd, "language"), "es");
        ck_assert_int_eq(ic_int(hd, "sampleRate"), 22050);
        if (ic_int(hd, "seq") != seq) {
            ck_assert_int_eq(expect_part, 0);
            seq = ic_int(hd, "seq");
        }
        ck_assert_int_eq(ic_int(hd, "part"), expect_part);
        if (json_is_true(json_object_get(hd, "last"))) {
            ck_assert_int_eq(seq, ic_int(json_array_get(b->finals, finals_spoken), "seq"));
            finals_spoken++;
            expect_part = 0;
            seq = -1;
        } else
            expect_part++;
    }
    if (finals_spoken != nf) {
        for (size_t i = 0; i < nf; i++) {
            char *d = json_dumps(json_array_get(b->finals, i), JSON_COMPACT);
            fprintf(stderr, "final: %s\n", d);
            free(d);
        }
        for (size_t i = 0; i < ns; i++) {
            char *d = json_dumps(json_array_get(b->speech, i), JSON_COMPACT);
            fprintf(stderr, "speech: %s\n", d);
            free(d);
        }
    }
    ck_assert_uint_eq(finals_spoken, nf);
    ck_assert_uint_gt(b->pcm_bytes, 22050); /* at least half a second of speech */
}

START_TEST(test_spoken_translation_once_per_language)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "history-speaker", sid, NULL);
    inbox_t a, b, c, sp;
    s_box(&sp, spk);
    /* a asks at connect, c with setSpeech, b never */
    s_box(&a,
          ic_open(s_h, 0, "/ws?action=joinSession&sessionId=%s&targetLanguage=es&speech=1", sid));
    json_t *j = ic_json(ws_recv_text(a.ws, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    ck_assert(json_is_true(json_object_get(j, "speech")));
    json_decref(j);
    s_box(&b, ic_listener(s_h, 1, sid, "es", NULL));
    s_box(&c, ic_listener(s_h, 1, sid, "es", NULL));
    ck_assert_int_eq(ws_send_text(c.ws, "{\"action\":\"setSpeech\",\"enabled\":true}"), 0);
    j = ic_json(ws_recv_type(c.ws, "speechChanged", IC_WAIT_MS));
    ck_assert(json_is_true(json_object_get(j, "enabled")));
    json_decref(j);
    ck_assert_int_eq(ws_send_text(b.ws, "{\"action\":\"setSpeech\",\"enabled\":\"yes\"}"), 0);
    ic_expect_error(b.ws, 400, "INVALID_PARAMETERS");
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"setSpeech\",\"enabled\":true}"), 0);
    ic_await_error(spk, 403, "UNAUTHORIZED");
    ck_assert_int_eq(ic_wait_int(s_h, 2, 3000, "HGET tolk:{%s}:speech es", sid), 2);
    /* no wait for the audio worker: this session has no stream yet, and a
       stream reads who hears when it opens (stream.c, s_refresh) */
    long long synth_before = ic_feed_counter(s_h, "audio", "speech_synth", 3000);
    inbox_t *boxes[] = {&a, &b, &c, &sp};
    s_speak_until(spk, sid, "es", 2, boxes, 4);
    long finals = s_seq(sid, "es");
    for (int i = 0; i < 3; i++)
        s_wait_seq(boxes[i], finals, 10000);
    /* a final's speech follows it (espeak-ng, slow under ASan): wait until
       both hearers have the last part of every final's speech */
    for (int i = 0; i < 3; i += 2)
        ck_assert_msg(ic_wait_for(s_spoken_all, boxes[i], 30000),
                      "listener %d: speech for %zu of %zu finals", i, s_last_parts(boxes[i]),
                      json_array_size(boxes[i]->finals));
    for (int i = 0; i < 4; i++)
        s_settle(boxes[i], 1000); /* a fixed quiet window on purpose: nothing more may come */
    finals = s_seq(sid, "es");
    s_assert_spoken(&a);
    s_assert_spoken(&c);
    ck_assert_uint_eq(json_array_size(a.finals), (size_t)finals);
    ck_assert_uint_eq(json_array_size(b.finals), (size_t)finals);
    ck_assert_uint_eq(json_array_size(b.speech), 0); /* text only: no audio */
    ck_assert_uint_eq(a.pcm_bytes, c.pcm_bytes);
    /* one synthesis per final, not per listener: wait for the feed to count
       them all (it reports once a second), then nothing more may show */
    long long synth =
        ic_wait_feed_counter(s_h, "audio", "speech_synth", synth_before + finals, 15000) -
        synth_before;
    printf("itest_history: %ld Spanish finals, %lld syntheses, %zu bytes of speech each\n", finals,
           synth, a.pcm_bytes);
    ck_assert_int_eq(synth, finals);
    /* turning it off stops the frames; counts follow */
    ck_assert_int_eq(ws_send_text(a.ws, "{\"action\":\"setSpeech\",\"enabled\":false}"), 0);
    j = ic_json(ws_recv_type(a.ws, "speechChanged", IC_WAIT_MS));
    ck_assert(json_is_false(json_object_get(j, "enabled")));
    json_decref(j);
    ck_assert_int_eq(ic_wait_int(s_h, 1, 3000, "HGET tolk:{%s}:speech es", sid), 1);
    ws_destroy(&c.ws); /* its leave takes the last hearer away */
    ck_assert_int_eq(ic_wait_int(s_h, -1, 3000, "HGET tolk:{%s}:speech es", sid), -1);
    ws_close(spk, 1000, "done");
    s_box_free(&a);
    s_box_free(&b);
    s_box_free(&c);
    s_box_free(&sp);
}
END_TEST

/* All parts of a transcript joined; asserts the protocol of the parts and
   the close 1000. */
static char *s_transcript(ws_client_t *c, json_t **languages)
{
    size_t cap = 1 << 20, used = 0;
    char *all = calloc(1, cap);
    for (int part = 1;; part++) {
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "type"), "transcript");
        ck_assert_int_eq(ic_int(j, "part"), part);
        const char *t = ic_get(j, "text");
        ck_assert_uint_lt(used + strlen(t), cap);
        memcpy(all + used, t, strlen(t));
        used += strlen(t);
        bool last = json_is_true(json_object_get(j, "last"));
        if (languages && !*languages)
            *languages = json_incref(json_object_get(j, "languages"));
        json_decref(j);
        if (last)
            break;
    }
    ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), 1000);
    return all;
}

static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(test_transcript_for_the_speaker_only)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "history-speaker", sid, NULL);
    inbox_t es, sp;
    s_box(&es, ic_listener(s_h, 1, sid, "es", NULL));
    s_box(&sp, spk);
    inbox_t *boxes[] = {&es, &sp};
    s_speak_until(spk, sid, "es", 2, boxes, 2);
    long en = s_seq(sid, "en"), nes = s_seq(sid, "es");
    char *tok = ic_mint(&s_jwt, "history-speaker");
    /* WebVTT in the source language while the session runs */
    ws_client_t *t = ic_open(s_h, 1, "/ws?action=getTranscript&sessionId=%s&token=%s", sid, tok);
    json_t *langs = NULL;
    char *vtt = s_transcript(t, &langs);
    ws_destroy(&t);
    ck_assert_msg(strncmp(vtt, "WEBVTT\n\n1\n00:00:", 16) == 0, "not WebVTT: %.40s", vtt);
    ck_assert_int_eq(s_count(vtt, " --> "), en);
    json_t *last = s_history(sid, "en", en);
    ck_assert_ptr_nonnull(strstr(vtt, ic_get(last, "text")));
    json_decref(last);
    ck_assert_uint_eq(json_array_size(langs), 2);
    ck_assert_str_eq(json_string_value(json_array_get(langs, 0)), "en");
    ck_assert_str_eq(json_string_value(json_array_get(langs, 1)), "es");
    json_decref(langs);
    free(vtt);
    /* Spanish as text: one line per final */
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"endSession\"}"), 0);
    ck_assert_int_eq(ws_wait_closed(spk, IC_WAIT_MS), 1000);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s&token=%s&language=es&format=text",
                sid, tok);
    char *text = s_transcript(t, NULL);
    ws_destroy(&t);
    ck_assert_int_eq(s_count(text, "\n"), nes);
    json_t *first = s_history(sid, "es", 1);
    ck_assert_msg(strncmp(text, ic_get(first, "text"), strlen(ic_get(first, "text"))) == 0,
                  "text transcript starts %.40s", text);
    json_decref(first);
    free(text);
    /* refusals: another speaker, no token, bad format, unknown session, a language nobody heard */
    char *other = ic_mint(&s_jwt, "someone-else");
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s&token=%s", sid, other);
    ic_expect_refusal(t, 403, "UNAUTHORIZED");
    ws_destroy(&t);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s", sid);
    ic_expect_refusal(t, 401, "UNAUTHENTICATED");
    ws_destroy(&t);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s&token=%s&format=pdf", sid, tok);
    ic_expect_refusal(t, 400, "INVALID_PARAMETERS");
    ws_destroy(&t);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=quiet-owl-123&token=%s", tok);
    ic_expect_refusal(t, 404, "SESSION_NOT_FOUND");
    ws_destroy(&t);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s&token=%s&language=fr", sid, tok);
    ic_expect_refusal(t, 404, "SESSION_NOT_FOUND");
    ws_destroy(&t);
    /* transcript_retention_s (4 s here) after the end, it is gone: Redis
       expires it, so wait for that (generously) rather than for a guess */
    ck_assert_int_eq(ic_wait_int(s_h, 0, 20000, "EXISTS tolk:{%s}:hist:en", sid), 0);
    t = ic_open(s_h, 0, "/ws?action=getTranscript&sessionId=%s&token=%s", sid, tok);
    ic_expect_refusal(t, 404, "SESSION_NOT_FOUND");
    ws_destroy(&t);
    free(tok);
    free(other);
    s_box_free(&es);
    s_box_free(&sp);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("history");
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_resume_gets_exactly_the_missed_finals);
    tcase_add_test(tc, test_first_listener_of_a_language_gets_recent_finals);
    tcase_add_test(tc, test_spoken_translation_once_per_language);
    tcase_add_test(tc, test_transcript_for_the_speaker_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (s_problems)
        fprintf(stderr, "itest_history: %d sanitizer or crash reports\n", s_problems);
    return failed || s_problems ? 1 : 0;
}
