/*  itest_vocabulary.c -- the session vocabulary over a whole system
    (Redis, a gateway, a control worker, an audio worker with real
    pocketsphinx on the LibriVox recordings).

    - Two sessions hear the five recordings in real time: one
      created with a vocabulary of the recordings' names and rare words,
      one without. The captions of the first carry "John" as the
      vocabulary spells it and never in lower case; "John Dashwood",
      which pocketsphinx does not hear without the vocabulary, is heard
      with it (its decoder is taught the entries, asr_pocketsphinx.c's
      s_teach); the word error rate of both is printed, and the one with
      the vocabulary has at least a quarter fewer errors (measured: 10
      against 19 of 71 words).
    - setVocabulary takes effect from the next utterance: the same
      recording before and after the change, the entry's case appears
      only after; the audio worker's feed counts the change.
    - Bad vocabularies, at createSession and in setVocabulary, get the
      exact error and change nothing in Redis; a listener may not set one.
*/
#include "harness.h"
#include "itest_client.h"
#include "wer.h"
#include "wsclient.h"

#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET    "vocabulary-test-secret-0123456789abcdef"
#define NFILES    5
#define CHUNK     3200 /* 100 ms of 16 kHz 16-bit mono */
#define CHUNK_MS  100
#define PAUSE_MS  800 /* quiet after each file: the endpointer ends the utterance */
#define SETTLE_MS 15000
/* the recordings' names and rare words */
#define VOCAB "Dashwood,John Dashwood,John,prudently,amiable,ill disposed,respectable"

static const char *s_files[NFILES] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930"};

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;

static void s_setup(void)
{
    harness_opts_t opts = {
        .gateways = 1,
        .control_workers = 1,
        .status_workers = HARNESS_NONE,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
}

static void s_teardown(void)
{
    ck_assert_int_eq(harness_stop(&s_h), 0);
}

/* ------------------------------------------------------------ helpers */

/* text %-encoded for a query value; malloc'd. */
static char *s_urlencode(const char *text)
{
    char *out = malloc(strlen(text) * 3 + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)sprintf(out + n, "%%%02X", *p);
    }
    out[n] = 0;
    return out;
}

/* Open a createSession with this vocabulary value (not yet read). */
static ws_client_t *s_create(const char *sub, const char *vocab)
{
    char *token = ic_mint(&s_jwt, sub);
    char *v = s_urlencode(vocab);
    ws_client_t *c = ic_open(
        s_h, 0, "/ws?action=createSession&sourceLanguage=en&token=%s&vocabulary=%s", token, v);
    free(v);
    free(token);
    return c;
}

/* A speaker of a new session with vocabulary vocab; its id into sid, its
   sessionCreated into *created. */
static ws_client_t *s_speaker(const char *sub, const char *vocab, char *sid, json_t **created)
{
    ws_client_t *c = s_create(sub, vocab);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    snprintf(sid, IC_SID_LEN, "%s", ic_get(j, "sessionId"));
    *created = j;
    return c;
}

/* One listener's captions. */
typedef struct {
    ws_client_t *c;
    json_t *finals, *partials;
} s_ear_t;

static void s_drain(s_ear_t *e)
{
    char *m;
    while ((m = ws_recv_text(e->c, 0)) != NULL) {
        json_t *j = ic_json(m);
        if (strcmp(ic_get(j, "type"), "caption") == 0)
            json_array_append(
                json_is_true(json_object_get(j, "isPartial")) ? e->partials : e->finals, j);
        json_decref(j);
    }
}

/* The recordings named (indices into s_files), each followed by PAUSE_MS
   of its first 100 ms (room tone). malloc'd, *len bytes. */
static uint8_t *s_program(const int *files, int n, size_t *len)
{
    uint8_t *out = NULL;
    *len = 0;
    for (int f = 0; f < n; f++) {
        size_t k;
        uint8_t *pcm = ic_librivox(s_files[files[f]], &k);
        size_t pause = (size_t)PAUSE_MS * 32;
        out = realloc(out, *len + k + pause);
        ck_assert_ptr_nonnull(out);
        memcpy(out + *len, pcm, k);
        for (size_t off = 0; off < pause; off += CHUNK)
            memcpy(out + *len + k + off, pcm, pause - off < CHUNK ? pause - off : CHUNK);
        *len += k + pause;
        free(pcm);
    }
    return out;
}

/* Play pcm in real time to every speaker at once, draining the ears. */
static void s_play(ws_client_t **spk, int nspk, s_ear_t *ears, int nears, const uint8_t *pcm,
                   size_t len)
{
    int64_t t0 = ic_now_ms();
    for (size_t off = 0, i = 0; off + CHUNK <= len; off += CHUNK, i++) {
        for (int s = 0; s < nspk; s++)
            ck_assert_int_eq(ws_send_binary(spk[s], pcm + off, CHUNK), 0);
        while (ic_now_ms() - t0 < (int64_t)(i + 1) * CHUNK_MS) {
            for (int e = 0; e < nears; e++)
                s_drain(&ears[e]);
            usleep(2000);
        }
    }
}

/* Wait until ear has every final of what was played: the stream ends an
   utterance at the latest STREAM_GAP_MS (1.5 s) after the audio stops,
   so from GAP_DONE_MS after the end on, Redis's count of finals is the
   last, and the ear must have that many (at least want). */
#define GAP_DONE_MS 4000
static void s_settle(s_ear_t *e, const char *sid, size_t want, int64_t ended_ms)
{
    int64_t deadline = ic_now_ms() + SETTLE_MS;
    for (;;) {
        s_drain(e);
        long long seq = ic_redis_int(s_h, "HGET tolk:{%s}:session seq:en", sid);
        if ((ic_now_ms() - ended_ms >= GAP_DONE_MS && seq > 0 &&
             (long long)json_array_size(e->finals) == seq && json_array_size(e->finals) >= want) ||
            ic_now_ms() > deadline)
            break;
        usleep(50000);
    }
    ck_assert_int_ge(json_array_size(e->finals), want);
}

/* The texts of a list of captions, joined by spaces; malloc'd. */
static char *s_text(json_t *captions)
{
    size_t cap = 1;
    size_t i;
    json_t *c;
    json_array_foreach(captions, i, c) cap += strlen(ic_get(c, "text")) + 1;
    char *out = calloc(1, cap);
    ck_assert_ptr_nonnull(out);
    json_array_foreach(captions, i, c)
    {
        if (i)
            strcat(out, " ");
        strcat(out, ic_get(c, "text"));
    }
    return out;
}

/* The reference transcripts of the recordings, joined; malloc'd. */
static char *s_reference(void)
{
    char *out = calloc(1, 4096);
    ck_assert_ptr_nonnull(out);
    for (int f = 0; f < NFILES; f++) {
        char *ref = wer_reference(WER_LIBRIVOX_DIR, s_files[f]);
        ck_assert_ptr_nonnull(ref);
        if (f)
            strcat(out, " ");
        strcat(out, ref);
        free(ref);
    }
    return out;
}

/* Is word (whole, case-sensitive) in text? */
static bool s_has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
        if ((p == text || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n]))
            return true;
    return false;
}

/* Send setVocabulary with this JSON value; the answer, parsed. */
static json_t *s_set(ws_client_t *spk, const char *value)
{
    char *msg = malloc(strlen(value) + 64);
    ck_assert_ptr_nonnull(msg);
    sprintf(msg, "{\"action\":\"setVocabulary\",\"vocabulary\":%s}", value);
    ck_assert_int_eq(ws_send_text(spk, msg), 0);
    free(msg);
    for (;;) { /* captions may come first */
        json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
        if (strcmp(ic_get(j, "type"), "caption") != 0)
            return j;
        json_decref(j);
    }
}

/* ------------------------------------------------------------- tests */

START_TEST(test_vocabulary_in_the_captions_and_the_wer)
{
    char sid_v[IC_SID_LEN], sid_p[IC_SID_LEN];
    json_t *created;
    ws_client_t *spk[2];
    spk[0] = s_speaker("vocab-on", VOCAB, sid_v, &created);
    json_t *kept = json_object_get(created, "vocabulary");
    ck_assert_int_eq(json_array_size(kept), 7);
    ck_assert_str_eq(json_string_value(json_array_get(kept, 1)), "John Dashwood");
    json_decref(created);
    spk[1] = ic_speaker(s_h, 0, &s_jwt, "vocab-off", sid_p, NULL);
    char *stored = ic_redis_str(s_h, "HGET tolk:{%s}:session vocabulary", sid_v);
    ck_assert_str_eq(
        stored, "Dashwood\nJohn Dashwood\nJohn\nprudently\namiable\nill disposed\nrespectable");
    free(stored);
    s_ear_t ears[2] = {{ic_listener(s_h, 0, sid_v, "en", NULL), json_array(), json_array()},
                       {ic_listener(s_h, 0, sid_p, "en", NULL), json_array(), json_array()}};
    int all[NFILES] = {0, 1, 2, 3, 4};
    size_t len;
    uint8_t *pcm = s_program(all, NFILES, &len);
    /* one after the other, so each has the worker to itself */
    for (int k = 0; k < 2; k++) {
        s_play(&spk[k], 1, &ears[k], 1, pcm, len);
        s_settle(&ears[k], k ? sid_p : sid_v, 3, ic_now_ms());
    }
    free(pcm);

    char *ref = s_reference(), *with = s_text(ears[0].finals), *without = s_text(ears[1].finals);
    size_t words = 0, e_with = wer_errors(ref, with, &words),
           e_without = wer_errors(ref, without, NULL);
    printf("itest_vocabulary: reference:          %s\n", ref);
    printf("itest_vocabulary: with vocabulary:    %s\n", with);
    printf("itest_vocabulary: without vocabulary: %s\n", without);
    printf("itest_vocabulary: WER with the vocabulary %.1f %% (%zu/%zu), without %.1f %% "
           "(%zu/%zu)\n",
           100.0 * (double)e_with / (double)words, e_with, words,
           100.0 * (double)e_without / (double)words, e_without, words);
    /* a name pocketsphinx hears is spelt as the speaker wrote it, never
       otherwise, in finals and partials; without the vocabulary it is not */
    ck_assert_msg(s_has_word(with, "John"), "no John in: %s", with);
    ck_assert_msg(!s_has_word(with, "john"), "john in lower case: %s", with);
    ck_assert_msg(s_has_word(without, "john"), "no john in: %s", without);
    size_t i;
    json_t *c;
    int partial_names = 0;
    json_array_foreach(ears[0].partials, i, c)
    {
        ck_assert_msg(!s_has_word(ic_get(c, "text"), "john"), "partial \"%s\"", ic_get(c, "text"));
        partial_names += s_has_word(ic_get(c, "text"), "John");
    }
    ck_assert_int_gt(partial_names, 0);
    ck_assert_msg(strstr(with, "John Dashwood") != NULL, "no John Dashwood in: %s", with);
    ck_assert_msg(strstr(without, "ashwood") == NULL, "dashwood heard without: %s", without);
    ck_assert_msg(e_with * 4 <= e_without * 3, "with the vocabulary %zu errors, without %zu",
                  e_with, e_without);
    free(ref);
    free(with);
    free(without);
    for (int k = 0; k < 2; k++) {
        ws_close(spk[k], 1000, "done");
        ws_destroy(&spk[k]);
        ws_destroy(&ears[k].c);
        json_decref(ears[k].finals);
        json_decref(ears[k].partials);
    }
}
END_TEST

START_TEST(test_set_vocabulary_takes_the_next_utterance)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "vocab-set", sid, NULL);
    s_ear_t ear = {ic_listener(s_h, 0, sid, "en", NULL), json_array(), json_array()};
    int one[1] = {1}; /* "he was not an ill disposed young man" */
    size_t len;
    uint8_t *pcm = s_program(one, 1, &len);
    long long before = ic_feed_counter(s_h, "audio", "vocabularies", 3000);

    s_play(&spk, 1, &ear, 1, pcm, len);
    s_settle(&ear, sid, 1, ic_now_ms());
    char *first = s_text(ear.finals);
    ck_assert_msg(!s_has_word(first, "Man"), "\"%s\"", first);

    json_t *a = s_set(spk, "[\"Young Man\", \"ill disposed\", \" young man \"]");
    ck_assert_str_eq(ic_get(a, "type"), "vocabularyChanged");
    ck_assert_str_eq(ic_get(a, "sessionId"), sid);
    json_t *kept = json_object_get(a, "vocabulary");
    ck_assert_int_eq(json_array_size(kept), 2);
    ck_assert_str_eq(json_string_value(json_array_get(kept, 0)), "Young Man");
    json_decref(a);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session vocabRev", sid), 1);
    /* the stream takes it with its next snapshot: feed it room tone till then */
    int64_t deadline = ic_now_ms() + 5000;
    while (ic_feed_counter(s_h, "audio", "vocabularies", 3000) < before + 1 &&
           ic_now_ms() < deadline) {
        ck_assert_int_eq(ws_send_binary(spk, pcm, CHUNK), 0);
        usleep(CHUNK_MS * 1000);
    }
    ck_assert_int_ge(ic_feed_counter(s_h, "audio", "vocabularies", 3000), before + 1);

    size_t had = json_array_size(ear.finals);
    s_play(&spk, 1, &ear, 1, pcm, len);
    s_settle(&ear, sid, had + 1, ic_now_ms());
    char *all = s_text(ear.finals);
    const char *second =
        ic_get(json_array_get(ear.finals, json_array_size(ear.finals) - 1), "text");
    printf("itest_vocabulary: before setVocabulary: %s\n", first);
    printf("itest_vocabulary: after:                %s\n", second);
    ck_assert_msg(s_has_word(second, "Man"), "\"%s\"", second);
    free(all);
    free(first);
    free(pcm);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&ear.c);
    json_decref(ear.finals);
    json_decref(ear.partials);
}
END_TEST

START_TEST(test_bad_vocabularies_change_nothing)
{
    /* at createSession: refused, and no session is made */
    long long sessions = ic_redis_int(s_h, "ZCARD tolk:sessions");
    char long65[70];
    memset(long65, 'x', 65), long65[65] = 0;
    char query[200];
    snprintf(query, sizeof query, "Dashwood,%s", long65);
    ws_client_t *c = s_create("vocab-bad", query);
    json_t *e = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ic_check_error(e, 400, "INVALID_PARAMETERS");
    ck_assert_str_eq(ic_get(e, "message"), "vocabulary entry 2 is longer than 64 bytes");
    ck_assert_str_eq(ic_get(e, "action"), "createSession");
    json_decref(e);
    ck_assert_int_eq(ws_wait_closed(c, IC_WAIT_MS), 4400);
    ws_destroy(&c);
    c = s_create("vocab-bad", "ok,tab\there");
    ic_expect_refusal(c, 400, "INVALID_PARAMETERS");
    ws_destroy(&c);
    ck_assert_int_eq(ic_redis_int(s_h, "ZCARD tolk:sessions"), sessions);

    /* setVocabulary: each refusal exact, the stored vocabulary untouched */
    char sid[IC_SID_LEN];
    json_t *created;
    ws_client_t *spk = s_speaker("vocab-bad", "ZeroMQ", sid, &created);
    json_decref(created);
    char many[4096] = "[";
    for (int i = 0; i <= 200; i++)
        sprintf(many + strlen(many), "%s\"w%d\"", i ? "," : "", i);
    strcat(many, "]");
    char toolong[100];
    snprintf(toolong, sizeof toolong, "[\"a\", \"%s\"]", long65);
    static const char *cases[][2] = {
        {"\"ZeroMQ\"", "vocabulary must be an array of strings"},
        {"[\"a\", 3]", "vocabulary entry 2 is not a string"},
        {"[\"line\\nbreak\"]", "vocabulary entry 1 has a control character"},
        {"[\"caf\\udc00\"]", NULL}, /* jansson refuses a lone surrogate: not JSON */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *r = s_set(spk, cases[i][0]);
        if (cases[i][1]) {
            ic_check_error(r, 400, "INVALID_PARAMETERS");
            ck_assert_str_eq(ic_get(r, "message"), cases[i][1]);
            ck_assert_str_eq(ic_get(r, "action"), "setVocabulary");
        } else
            ic_check_error(r, 400, "INVALID_MESSAGE");
        json_decref(r);
    }
    json_t *r = s_set(spk, toolong);
    ic_check_error(r, 400, "INVALID_PARAMETERS");
    ck_assert_str_eq(ic_get(r, "message"), "vocabulary entry 2 is longer than 64 bytes");
    json_decref(r);
    r = s_set(spk, many);
    ic_check_error(r, 400, "INVALID_PARAMETERS");
    ck_assert_str_eq(ic_get(r, "message"), "the vocabulary has more than 200 entries");
    json_decref(r);
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"setVocabulary\"}"), 0);
    ic_expect_error(spk, 400, "INVALID_PARAMETERS");
    char *stored = ic_redis_str(s_h, "HGET tolk:{%s}:session vocabulary", sid);
    ck_assert_str_eq(stored, "ZeroMQ");
    free(stored);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session vocabRev", sid), 1);

    /* a listener may not, and a message past 16384 bytes is too large */
    ws_client_t *l = ic_listener(s_h, 0, sid, "en", NULL);
    ck_assert_int_eq(ws_send_text(l, "{\"action\":\"setVocabulary\",\"vocabulary\":[]}"), 0);
    ic_expect_error(l, 403, "UNAUTHORIZED");
    char *huge = malloc(17000);
    ck_assert_ptr_nonnull(huge);
    strcpy(huge, "{\"action\":\"setVocabulary\",\"vocabulary\":[\"");
    size_t head = strlen(huge);
    memset(huge + head, 'y', 16400);
    strcpy(huge + head + 16400, "\"]}");
    ck_assert_int_eq(ws_send_text(spk, huge), 0);
    free(huge);
    ic_expect_error(spk, 413, "PAYLOAD_TOO_LARGE");
    stored = ic_redis_str(s_h, "HGET tolk:{%s}:session vocabulary", sid);
    ck_assert_str_eq(stored, "ZeroMQ");
    free(stored);

    /* an empty array clears it */
    r = s_set(spk, "[]");
    ck_assert_str_eq(ic_get(r, "type"), "vocabularyChanged");
    ck_assert_int_eq(json_array_size(json_object_get(r, "vocabulary")), 0);
    json_decref(r);
    stored = ic_redis_str(s_h, "HGET tolk:{%s}:session vocabulary", sid);
    ck_assert_str_eq(stored, "");
    free(stored);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session vocabRev", sid), 2);
    ws_destroy(&l);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vocabulary");
    TCase *tc = tcase_create("vocabulary");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_bad_vocabularies_change_nothing);
    tcase_add_test(tc, test_set_vocabulary_takes_the_next_utterance);
    tcase_add_test(tc, test_vocabulary_in_the_captions_and_the_wer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
