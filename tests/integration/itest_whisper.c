/*  itest_whisper.c -- the two-pass recogniser (asr_engine = whisper):
    pocketsphinx's partials at once, each utterance's final from the
    transcription server when it answers in time, the local final when it
    does not.

    The server is tests/support/whisper_standin.py, a STAND-IN for a
    Whisper-class server (none can run here): it speaks the OpenAI
    transcription API and recognises the posted WAV with real pocketsphinx
    (one warm python3-pocketsphinx decoder, the utterance as one), so its
    text is the batch decoder's, in lower
    case, while a local final reads as a sentence ("He was ... ."). That is
    how a final shows where it came from. A whole system (Redis, a gateway,
    a control worker, the audio worker, APy) hears three LibriVox recordings
    in real time, each followed by quiet, three times:
    - the server answers: every English final is the server's text for that
      utterance, and the feed counts them answered;
    - the server takes 30 s (whisper_timeout_ms is 10 s): every final is the
      local one, at most whisper_timeout_ms + 200 ms after the server got
      the utterance, none comes twice, and partials of the next utterance
      arrive while a final is held;
    - the server answers 500: every final is the local one, at once;
    - a session's vocabulary is the request's prompt ("Dashwood, John
      Dashwood, ZeroMQ"), and a setVocabulary reaches the next utterance's.
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET     "whisper-test-secret-0123456789abcdef"
#define TIMEOUT_MS 10000 /* whisper_timeout_ms of the system */
#define SLACK_MS   200   /* what the issue allows past it */
#define NFILES     3
#define CHUNK      3200 /* 100 ms of 16 kHz 16-bit mono */
#define CHUNK_MS   100
#define PAUSE_MS   800 /* quiet after each file: the endpointer ends the utterance */
#define SETTLE_MS  (TIMEOUT_MS + 15000)

static const char *s_files[NFILES] = {"sense_and_sensibility_01_austen_64kb-0870",
                                      "sense_and_sensibility_01_austen_64kb-0880",
                                      "sense_and_sensibility_01_austen_64kb-0890"};

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;
static pid_t s_standin;
static int s_port;
static char s_env_url[200];

/* What one phase saw on the English listener. */
typedef struct {
    json_t *finals;   /* caption messages, "arrivedMs" added */
    json_t *partials; /* the same, for partials */
    json_t *requests; /* the stand-in's log entries of this phase */
} phase_t;

/* ---------------------------------------------------------- stand-in */

static size_t s_sink(char *data, size_t size, size_t n, void *userp)
{
    json_t **out = userp;
    json_decref(*out);
    *out = json_loadb(data, size * n, 0, NULL); /* small answers come in one piece here */
    return size * n;
}

/* POST body (JSON) to path of the stand-in, or GET when body is NULL;
   returns the answer's JSON. */
static json_t *s_standin_call(const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s_port, path);
    CURL *e = curl_easy_init();
    ck_assert_ptr_nonnull(e);
    json_t *out = NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    struct curl_slist *h = NULL;
    if (body) {
        h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    ck_assert_msg(rc == CURLE_OK, "the stand-in did not answer %s: %s", path,
                  curl_easy_strerror(rc));
    return out;
}

static void s_setup(void)
{
    s_port = harness_free_ports(1);
    ck_assert_int_gt(s_port, 0);
    char script[1024], port[16];
    snprintf(script, sizeof script, "%s/tests/support/whisper_standin.py",
             getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".");
    snprintf(port, sizeof port, "%d", s_port);
    s_standin = fork();
    ck_assert_int_ge(s_standin, 0);
    if (s_standin == 0) {
        /* Debian's python3, which has python3-pocketsphinx */
        execl("/usr/bin/python3", "python3", script, "--port", port, (char *)NULL);
        _exit(127);
    }
    json_t *log = NULL;
    for (int i = 0; i < 100 && !log; i++) { /* up to 10 s for Python to start */
        char body[64];
        if (http_get_ex("127.0.0.1", s_port, "/standin/log", body, sizeof body, 500) == 200)
            log = json_array();
        else
            usleep(100000);
    }
    ck_assert_msg(log != NULL, "the whisper stand-in did not start");
    json_decref(log);
    snprintf(s_env_url, sizeof s_env_url,
             "TOLK_WHISPER_URL=http://127.0.0.1:%d/v1/audio/transcriptions", s_port);
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_ASR_ENGINE=whisper", s_env_url,
                                         "TOLK_WHISPER_TIMEOUT_MS=10000", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
}

static void s_teardown(void)
{
    int problems = harness_stop(&s_h);
    kill(s_standin, SIGTERM);
    waitpid(s_standin, NULL, 0);
    ck_assert_int_eq(problems, 0);
}

/* ------------------------------------------------------------ audio */

/* The files, each followed by PAUSE_MS of its first 100 ms (room tone). */
static uint8_t *s_program(size_t *len)
{
    uint8_t *out = NULL;
    *len = 0;
    for (int f = 0; f < NFILES; f++) {
        size_t n;
        uint8_t *pcm = ic_librivox(s_files[f], &n);
        size_t pause = (size_t)PAUSE_MS * 32;
        out = realloc(out, *len + n + pause);
        ck_assert_ptr_nonnull(out);
        memcpy(out + *len, pcm, n);
        for (size_t off = 0; off < pause; off += CHUNK)
            memcpy(out + *len + n + off, pcm, pause - off < CHUNK ? pause - off : CHUNK);
        *len += n + pause;
        free(pcm);
    }
    return out;
}

/* Take every caption that has arrived on c into the phase. */
static void s_drain(ws_client_t *c, phase_t *p)
{
    char *m;
    while ((m = ws_recv_text(c, 0)) != NULL) {
        json_t *j = ic_json(m);
        if (strcmp(ic_get(j, "type"), "caption") == 0) {
            json_object_set_new(j, "arrivedMs", json_integer(ic_now_ms()));
            json_array_append(
                json_is_true(json_object_get(j, "isPartial")) ? p->partials : p->finals, j);
        }
        json_decref(j);
    }
}

/* Play the program to a new session with an English listener, the
   stand-in in mode (JSON), and collect what arrived and what the stand-in
   was asked. */
static void s_phase(const char *sub, const char *mode, phase_t *p)
{
    json_decref(s_standin_call("/standin/mode", mode));
    json_t *earlier = s_standin_call("/standin/log", NULL);
    size_t before = json_array_size(earlier);
    json_decref(earlier);
    p->finals = json_array();
    p->partials = json_array();
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, sub, sid, NULL);
    ws_client_t *en = ic_listener(s_h, 0, sid, "en", NULL);
    size_t len;
    uint8_t *pcm = s_program(&len);
    int64_t t0 = ic_now_ms();
    for (size_t off = 0, i = 0; off + CHUNK <= len; off += CHUNK, i++) {
        ck_assert_int_eq(ws_send_binary(spk, pcm + off, CHUNK), 0);
        while (ic_now_ms() - t0 < (int64_t)(i + 1) * CHUNK_MS) {
            s_drain(en, p);
            usleep(2000);
        }
    }
    free(pcm);
    /* every final in: as many as Redis numbered, and the stand-in has
       been asked for each */
    int64_t deadline = ic_now_ms() + SETTLE_MS;
    for (;;) {
        s_drain(en, p);
        long long seq = ic_redis_int(s_h, "HGET tolk:{%s}:session seq:en", sid);
        if ((seq > 0 && (long long)json_array_size(p->finals) == seq &&
             json_array_size(p->finals) >= 2) ||
            ic_now_ms() > deadline)
            break;
        usleep(50000);
    }
    json_t *log = s_standin_call("/standin/log", NULL);
    p->requests = json_array();
    for (size_t i = before; i < json_array_size(log); i++)
        json_array_append(p->requests, json_array_get(log, i));
    json_decref(log);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session seq:en", sid),
                     (long long)json_array_size(p->finals));
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&en);
}

static void s_phase_free(phase_t *p)
{
    json_decref(p->finals);
    json_decref(p->partials);
    json_decref(p->requests);
}

/* A local final: pocketsphinx's words made a sentence (readable.c). */
static bool s_local(const char *text)
{
    size_t n = strlen(text);
    return n > 1 && isupper((unsigned char)text[0]) && text[n - 1] == '.';
}

/* ------------------------------------------------------------- tests */

START_TEST(test_finals_come_from_the_server_in_time)
{
    long long answered = ic_feed_counter(s_h, "audio", "second_pass_answered", 3000);
    phase_t p;
    s_phase("whisper-in-time", "{}", &p);
    size_t i;
    json_t *c;
    json_array_foreach(p.finals, i, c)
    {
        const char *text = ic_get(c, "text");
        bool found = false;
        size_t k;
        json_t *r;
        json_array_foreach(p.requests, k, r) found |= strcmp(ic_get(r, "text"), text) == 0;
        printf("itest_whisper: in time: final %zu \"%s\" %s\n", i + 1, text,
               found ? "(the server's)" : "(NOT the server's)");
        ck_assert_msg(found, "final \"%s\" is not what the server answered", text);
    }
    size_t k;
    json_t *r;
    json_array_foreach(p.requests, k, r)
    {
        ck_assert_str_eq(ic_get(r, "language"), "en");
        ck_assert_str_eq(ic_get(r, "model"), "whisper-1");
        ck_assert_int_gt(ic_int(r, "samples"), 16000);
    }
    ck_assert_int_eq(json_array_size(p.requests), json_array_size(p.finals));
    ck_assert_int_ge(ic_wait_feed_counter(s_h, "audio", "second_pass_answered",
                                          answered + (long long)json_array_size(p.finals), 5000),
                     answered + (long long)json_array_size(p.finals));
    s_phase_free(&p);
}
END_TEST

START_TEST(test_a_late_server_costs_at_most_its_timeout)
{
    phase_t p;
    s_phase("whisper-late", "{\"delay_ms\": 30000}", &p);
    ck_assert_int_eq(json_array_size(p.requests), json_array_size(p.finals));
    int64_t worst = 0;
    int overtaken = 0;
    size_t i;
    json_t *c;
    json_array_foreach(p.finals, i, c)
    {
        ck_assert_msg(s_local(ic_get(c, "text")), "final \"%s\" is not the local one",
                      ic_get(c, "text"));
        int64_t held =
            ic_int(c, "arrivedMs") - ic_int(json_array_get(p.requests, i), "received_ms");
        if (held > worst)
            worst = held;
        /* partials of the next utterance while this final was held */
        size_t k;
        json_t *q;
        json_array_foreach(p.partials, k, q) overtaken +=
            ic_int(q, "seq") > ic_int(c, "seq") && ic_int(q, "arrivedMs") < ic_int(c, "arrivedMs");
    }
    printf("itest_whisper: late server: %zu local finals, the longest %lld ms after the server "
           "got its utterance (allowed %d); %d partials overtook a held final\n",
           json_array_size(p.finals), (long long)worst, TIMEOUT_MS + SLACK_MS, overtaken);
    ck_assert_int_le(worst, TIMEOUT_MS + SLACK_MS);
    ck_assert_int_ge(worst, TIMEOUT_MS - SLACK_MS);
    ck_assert_int_gt(overtaken, 0);
    s_phase_free(&p);
}
END_TEST

START_TEST(test_a_failing_server_costs_nothing)
{
    phase_t p;
    s_phase("whisper-failing", "{\"status\": 500}", &p);
    ck_assert_int_eq(json_array_size(p.requests), json_array_size(p.finals));
    int64_t worst = 0;
    size_t i;
    json_t *c;
    json_array_foreach(p.finals, i, c)
    {
        ck_assert(s_local(ic_get(c, "text")));
        int64_t held =
            ic_int(c, "arrivedMs") - ic_int(json_array_get(p.requests, i), "received_ms");
        if (held > worst)
            worst = held;
    }
    printf("itest_whisper: failing server: %zu local finals, the longest %lld ms after the "
           "server refused its utterance\n",
           json_array_size(p.finals), (long long)worst);
    ck_assert_int_le(worst, SLACK_MS * 5);
    s_phase_free(&p);
}
END_TEST

/* Play recording f of s_files, then quiet, to spk in real time. */
static void s_play_one(ws_client_t *spk, int f)
{
    size_t n;
    uint8_t *pcm = ic_librivox(s_files[f], &n);
    int64_t t0 = ic_now_ms();
    size_t total = n + (size_t)PAUSE_MS * 32;
    for (size_t off = 0, i = 0; off + CHUNK <= total; off += CHUNK, i++) {
        /* the recording's whole chunks, then its first 100 ms (room tone) */
        ck_assert_int_eq(ws_send_binary(spk, pcm + (off + CHUNK <= n ? off : 0), CHUNK), 0);
        while (ic_now_ms() - t0 < (int64_t)(i + 1) * CHUNK_MS)
            usleep(2000);
    }
    free(pcm);
}

/* The prompt of the stand-in's request number i of the log, waiting for
   it (up to SETTLE_MS); malloc'd. */
static char *s_prompt_of(size_t i)
{
    int64_t deadline = ic_now_ms() + SETTLE_MS;
    for (;;) {
        json_t *log = s_standin_call("/standin/log", NULL);
        if (json_array_size(log) > i || ic_now_ms() > deadline) {
            ck_assert_int_gt(json_array_size(log), i);
            char *out = strdup(ic_get(json_array_get(log, i), "prompt"));
            json_decref(log);
            return out;
        }
        json_decref(log);
        usleep(50000);
    }
}

START_TEST(test_the_vocabulary_is_the_prompt)
{
    json_decref(s_standin_call("/standin/mode", "{}"));
    json_t *earlier = s_standin_call("/standin/log", NULL);
    size_t before = json_array_size(earlier);
    json_decref(earlier);
    char *token = ic_mint(&s_jwt, "whisper-vocab");
    ws_client_t *spk = ic_open(s_h, 0,
                               "/ws?action=createSession&sourceLanguage=en&token=%s"
                               "&vocabulary=Dashwood%%2CJohn%%20Dashwood%%2C%%20ZeroMQ",
                               token);
    free(token);
    json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    json_decref(j);
    s_play_one(spk, 1);
    char *prompt = s_prompt_of(before);
    printf("itest_whisper: prompt with the vocabulary: \"%s\"\n", prompt);
    ck_assert_str_eq(prompt, "Dashwood, John Dashwood, ZeroMQ");
    free(prompt);
    /* a change reaches the next utterance's request */
    long long seen = ic_feed_counter(s_h, "audio", "vocabularies", 3000);
    ck_assert_int_eq(
        ws_send_text(spk, "{\"action\":\"setVocabulary\",\"vocabulary\":[\"Young Man\"]}"), 0);
    for (;;) {
        j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
        bool done = strcmp(ic_get(j, "type"), "vocabularyChanged") == 0;
        json_decref(j);
        if (done)
            break;
    }
    ck_assert_int_ge(ic_wait_feed_counter(s_h, "audio", "vocabularies", seen + 1, 5000), seen + 1);
    json_t *log = s_standin_call("/standin/log", NULL);
    size_t next = json_array_size(log);
    json_decref(log);
    s_play_one(spk, 1);
    prompt = s_prompt_of(next);
    printf("itest_whisper: prompt after setVocabulary: \"%s\"\n", prompt);
    ck_assert_str_eq(prompt, "Young Man");
    free(prompt);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("whisper");
    TCase *tc = tcase_create("two pass");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_finals_come_from_the_server_in_time);
    tcase_add_test(tc, test_a_late_server_costs_at_most_its_timeout);
    tcase_add_test(tc, test_a_failing_server_costs_nothing);
    tcase_add_test(tc, test_the_vocabulary_is_the_prompt);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
