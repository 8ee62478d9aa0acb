/*  itest_vosk.c -- the streaming recogniser at a vosk-server (asr_engine =
    vosk): partials and finals from the server, translated, through
    restarts and outages of the server.

    The server is tests/support/vosk_standin.py, a STAND-IN for vosk-server
    (no Vosk model can be fetched here): it speaks vosk-server's WebSocket
    protocol and recognises the audio with real pocketsphinx, in US English
    whatever language it is asked for. A whole system (Redis, a gateway, a
    control worker, the audio worker, APy) with source_languages = en,es,
    vosk_url at the stand-in and vosk_url_for sending es to the stand-in's
    path /es, hears LibriVox recordings in real time:
    - the English listener gets partials and finals whose words are within
      S_WER_MAX of the reference transcripts; the Spanish listener gets the
      same finals translated; seq is gap-free;
    - the stand-in is killed and started again in the middle of an
      utterance: that utterance at most is lost, the later ones arrive,
      seq stays gap-free;
    - a session created in es (listed in source_languages) is recognised
      at the es server (the stand-in still hears English: it has no
      Spanish model) and offers APy's targets for es;
    - a server that answers slower than the speaker talks is waited for:
      the captions come late, none is lost;
    - while the server refuses every connection, nothing is captioned, the
      feed counts it down, the worker logs it once, and the session goes
      on: once the server is back, captions come again.
*/
#include "harness.h"
#include "itest_client.h"
#include "wer.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET    "vosk-test-secret-0123456789abcdef"
#define CHUNK     3200 /* 100 ms of 16 kHz 16-bit mono */
#define CHUNK_MS  100
#define PAUSE_MS  1000  /* quiet after each file: the server's endpointer ends the utterance */
#define SETTLE_MS 30000 /* a deadline, not a wait: room for a machine whose CPU is contended */
/* The words of the English finals against the references: measured 0.386
   over the three files (pocketsphinx's streaming decoder in the
   stand-in); the bound leaves room for the endpointer cutting elsewhere. */
#define S_WER_MAX 0.45
/* One file alone (the last, 0890): measured 0.429, alone or after a restart. */
#define S_WER_FILE_MAX 0.55
#define LIBRIVOX       "/usr/share/pocketsphinx/test/data/librivox"

static const char *s_files[] = {"sense_and_sensibility_01_austen_64kb-0870",
                                "sense_and_sensibility_01_austen_64kb-0880",
                                "sense_and_sensibility_01_austen_64kb-0890"};
#define NFILES ((int)(sizeof s_files / sizeof s_files[0]))

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;
static pid_t s_standin;
static int s_port, s_cport;
static char s_env_url[128], s_env_url_for[128];
/* The stand-in's pid, in a file: a test that restarts it runs in a forked
   child, and the fixture's teardown must stop the one running then. */
static char s_pidfile[128];

/* ---------------------------------------------------------- stand-in */

static pid_t s_standin_pid(void);
/* The fixture's process: only it may wait for the first stand-in. */
static pid_t s_parent;

/* GET path of the stand-in's control port, as JSON. */
static json_t *s_control(const char *path)
{
    char body[1 << 16];
    int status = http_get_ex("127.0.0.1", s_cport, path, body, sizeof body, 5000);
    ck_assert_msg(status == 200, "the stand-in did not answer %s (%d)", path, status);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* Start the stand-in and wait until its control port answers. */
static void s_standin_start(void)
{
    char script[1024], port[16], cport[16];
    snprintf(script, sizeof script, "%s/tests/support/vosk_standin.py",
             getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".");
    snprintf(port, sizeof port, "%d", s_port);
    snprintf(cport, sizeof cport, "%d", s_cport);
    s_standin = fork();
    ck_assert_int_ge(s_standin, 0);
    if (s_standin == 0) {
        setsid(); /* its own group: Check ends a test's group, and a restarted one outlives it */
        /* Debian's python3, which has python3-pocketsphinx and python3-websockets */
        execl("/usr/bin/python3", "python3", script, "--port", port, "--control-port", cport,
              (char *)NULL);
        _exit(127);
    }
    FILE *f = fopen(s_pidfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%d\n", (int)s_standin);
    fclose(f);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) { /* up to 10 s for Python to start */
        char body[64];
        up = http_get_ex("127.0.0.1", s_cport, "/standin/log", body, sizeof body, 500) == 200;
        if (!up)
            usleep(100000);
    }
    ck_assert_msg(up, "the vosk stand-in did not start");
    /* its WebSocket port is bound before the control port answers? not
       necessarily: wait for the upgrade to be possible */
    for (int i = 0; i < 100; i++) {
        ws_client_t *c = ws_connect("127.0.0.1", s_port, "/probe", NULL, 500);
        if (c) { /* the protocol's shortest exchange: eof, the empty final, close */
            ws_send_text(c, "{\"eof\" : 1}");
            free(ws_recv_text(c, 5000));
            ws_wait_closed(c, 5000);
            ws_destroy(&c);
            return;
        }
        usleep(100000);
    }
    ck_abort_msg("the vosk stand-in does not accept WebSockets");
}

/* Kill the stand-in running now and wait until its ports are free (a
   restarted one is not our child, so there is no waitpid for it). */
static void s_standin_kill(void)
{
    pid_t pid = s_standin_pid();
    ck_assert_int_gt(pid, 0);
    kill(pid, SIGKILL);
    if (pid == s_standin && getpid() == s_parent)
        waitpid(pid, NULL, 0);
    for (int i = 0; i < 500; i++) {
        char body[16];
        if (http_get_ex("127.0.0.1", s_cport, "/standin/log", body, sizeof body, 100) < 0)
            return;
        usleep(10000);
    }
    ck_abort_msg("the killed stand-in still answers");
}

/* The stand-in running now (the last one started). */
static pid_t s_standin_pid(void)
{
    FILE *f = fopen(s_pidfile, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    return (pid_t)pid;
}

static void s_setup(void)
{
    s_parent = getpid();
    snprintf(s_pidfile, sizeof s_pidfile, "/tmp/itest_vosk-%d.pid", (int)getpid());
    s_port = harness_free_ports(2);
    ck_assert_int_gt(s_port, 0);
    s_cport = s_port + 1;
    s_standin_start();
    snprintf(s_env_url, sizeof s_env_url, "TOLK_VOSK_URL=ws://127.0.0.1:%d", s_port);
    snprintf(s_env_url_for, sizeof s_env_url_for, "TOLK_VOSK_URL_FOR=es:ws://127.0.0.1:%d/es",
             s_port);
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_ASR_ENGINE=vosk", s_env_url,
                                         s_env_url_for, "TOLK_SOURCE_LANGUAGES=en,es", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
}

static void s_teardown(void)
{
    int problems = harness_stop(&s_h);
    pid_t pid = s_standin_pid();
    if (pid > 0)
        kill(pid, SIGTERM);
    if (pid == s_standin)
        waitpid(s_standin, NULL, 0); /* one a test restarted is not our child: init reaps it */
    unlink(s_pidfile);
    ck_assert_int_eq(problems, 0);
}

/* ------------------------------------------------------------ audio */

/* The files from first to last, each followed by PAUSE_MS of its first
   100 ms (room tone); *ends gets the byte offset where each file ends. */
static uint8_t *s_program(int first, int last, size_t *len, size_t *ends)
{
    uint8_t *out = NULL;
    *len = 0;
    for (int f = first; f <= last; f++) {
        size_t n;
        uint8_t *pcm = ic_librivox(s_files[f], &n);
        size_t pause = (size_t)PAUSE_MS * 32;
        out = realloc(out, *len + n + pause);
        ck_assert_ptr_nonnull(out);
        memcpy(out + *len, pcm, n);
        for (size_t off = 0; off < pause; off += CHUNK)
            memcpy(out + *len + n + off, pcm, pause - off < CHUNK ? pause - off : CHUNK);
        *len += n + pause;
        if (ends)
            ends[f - first] = *len;
        free(pcm);
    }
    return out;
}

/* What one listener saw. */
typedef struct {
    ws_client_t *ws;
    const char *lang;
    json_t *finals;   /* caption messages, "arrivedMs" added */
    json_t *partials; /* the same, for partials */
} listener_t;

static void s_listen(listener_t *l, const char *sid, const char *lang)
{
    l->ws = ic_listener(s_h, 0, sid, lang, NULL);
    l->lang = lang;
    l->finals = json_array();
    l->partials = json_array();
}

static void s_unlisten(listener_t *l)
{
    ws_destroy(&l->ws);
    json_decref(l->finals);
    json_decref(l->partials);
}

/* Take every caption that has arrived. */
static void s_drain(listener_t *l)
{
    char *m;
    while ((m = ws_recv_text(l->ws, 0)) != NULL) {
        json_t *j = ic_json(m);
        if (strcmp(ic_get(j, "type"), "caption") == 0) {
            json_object_set_new(j, "arrivedMs", json_integer(ic_now_ms()));
            json_array_append(
                json_is_true(json_object_get(j, "isPartial")) ? l->partials : l->finals, j);
        }
        json_decref(j);
    }
}

/* Called with each chunk's index while the program plays. */
typedef void(s_chunk_fn)(size_t i, listener_t *ls, int n);

/* Play pcm in real time to spk while the listeners collect; hook (may
   be NULL) runs after every chunk. */
static void s_play(ws_client_t *spk, const uint8_t *pcm, size_t len, listener_t *ls, int n,
                   s_chunk_fn *hook)
{
    int64_t t0 = ic_now_ms();
    for (size_t off = 0, i = 0; off + CHUNK <= len; off += CHUNK, i++) {
        ck_assert_int_eq(ws_send_binary(spk, pcm + off, CHUNK), 0);
        if (hook)
            hook(i, ls, n);
        while (ic_now_ms() - t0 < (int64_t)(i + 1) * CHUNK_MS) {
            for (int k = 0; k < n; k++)
                s_drain(&ls[k]);
            usleep(2000);
        }
    }
}

/* Wait until each listener has as many finals as Redis numbered in its
   language (and at least min), then assert it and that their seqs are
   1, 2, 3, ... in order. */
static void s_settle(const char *sid, listener_t *ls, int n, size_t min)
{
    for (int k = 0; k < n; k++) {
        int64_t deadline = ic_now_ms() + SETTLE_MS;
        listener_t *l = &ls[k];
        long long seq;
        for (;;) {
            for (int j = 0; j < n; j++)
                s_drain(&ls[j]);
            seq = ic_redis_int(s_h, "HGET tolk:{%s}:session seq:%s", sid, l->lang);
            if ((seq > 0 && (long long)json_array_size(l->finals) == seq &&
                 json_array_size(l->finals) >= min) ||
                ic_now_ms() > deadline)
                break;
            usleep(50000);
        }
        ck_assert_int_eq(seq, (long long)json_array_size(l->finals));
        size_t i;
        json_t *c;
        json_array_foreach(l->finals, i, c) ck_assert_int_eq(ic_int(c, "seq"), (long long)i + 1);
    }
}

/* The finals' texts joined by spaces. malloc'd. */
static char *s_joined(json_t *finals, int64_t after_ms)
{
    size_t cap = 1;
    size_t i;
    json_t *c;
    json_array_foreach(finals, i, c) cap += strlen(ic_get(c, "text")) + 1;
    char *out = calloc(1, cap);
    ck_assert_ptr_nonnull(out);
    json_array_foreach(finals, i, c) if (ic_int(c, "arrivedMs") > after_ms)
    {
        if (out[0])
            strcat(out, " ");
        strcat(out, ic_get(c, "text"));
    }
    return out;
}

/* The reference transcripts of files first..last, joined. malloc'd. */
static char *s_reference(int first, int last)
{
    char *out = strdup("");
    for (int f = first; f <= last; f++) {
        char *r = wer_reference(LIBRIVOX, s_files[f]);
        ck_assert_ptr_nonnull(r);
        char *next = NULL;
        ck_assert_int_ge(asprintf(&next, "%s%s%s", out, out[0] ? " " : "", r), 0);
        free(out);
        free(r);
        out = next;
    }
    return out;
}

static double s_wer(const char *ref, const char *hyp)
{
    size_t words = 0;
    size_t errors = wer_errors(ref, hyp, &words);
    ck_assert_int_gt(words, 0);
    return (double)errors / (double)words;
}

/* A speaker creating a session in source; the session id into sid. */
static ws_client_t *s_speaker(const char *sub, const char *source, char *sid)
{
    char *token = ic_mint(&s_jwt, sub);
    ws_client_t *c =
        ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=%s&qualityTier=standard&token=%s",
                source, token);
    free(token);
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_msg(strcmp(ic_get(j, "type"), "sessionCreated") == 0, "createSession %s: %s", source,
                  ic_get(j, "message"));
    snprintf(sid, IC_SID_LEN, "%s", ic_get(j, "sessionId"));
    json_decref(j);
    return c;
}

/* The stand-in's connections opened since entry from. */
static json_t *s_connections(size_t from)
{
    json_t *log = s_control("/standin/log");
    json_t *out = json_array();
    for (size_t i = from; i < json_array_size(log); i++) {
        json_t *e = json_array_get(log, i);
        if (strcmp(ic_get(e, "path"), "/probe") != 0)
            json_array_append(out, e);
    }
    json_decref(log);
    return out;
}

static size_t s_log_size(void)
{
    json_t *log = s_control("/standin/log");
    size_t n = json_array_size(log);
    json_decref(log);
    return n;
}

/* Wait until the last connection the stand-in had since entry from got
   its eof and closed: the speaker stopped (a gap of STREAM_GAP_MS ends
   the stream's audio), the last final is out. The listeners keep
   collecting meanwhile. */
static void s_wait_eof(size_t from, listener_t *ls, int n)
{
    int64_t deadline = ic_now_ms() + SETTLE_MS;
    for (;;) {
        for (int k = 0; k < n; k++)
            s_drain(&ls[k]);
        json_t *conns = s_connections(from);
        json_t *last = json_array_get(conns, json_array_size(conns) - 1);
        bool done = json_is_true(json_object_get(last, "eof")) &&
                    json_is_integer(json_object_get(last, "closed_ms"));
        json_decref(conns);
        if (done)
            return;
        ck_assert_msg(ic_now_ms() < deadline, "the stream's audio never ended with eof");
        usleep(50000);
    }
}

/* Lines of the audio worker's log holding needle. */
static int s_log_lines(const char *needle)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat %s/logs/*audio*.log 2>/dev/null | grep -c '%s'",
             harness_dir(s_h), needle);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    if (fscanf(p, "%d", &n) != 1)
        n = 0;
    pclose(p);
    return n;
}

/* ------------------------------------------------------------- tests */

START_TEST(test_partials_finals_and_translations)
{
    size_t from = s_log_size();
    char sid[IC_SID_LEN];
    ws_client_t *spk = s_speaker("vosk-plain", "en", sid);
    listener_t ls[2];
    s_listen(&ls[0], sid, "en");
    s_listen(&ls[1], sid, "es");
    size_t len;
    uint8_t *pcm = s_program(0, NFILES - 1, &len, NULL);
    s_play(spk, pcm, len, ls, 2, NULL);
    free(pcm);
    s_wait_eof(from, ls, 2);
    s_settle(sid, ls, 2, NFILES);

    char *ref = s_reference(0, NFILES - 1), *hyp = s_joined(ls[0].finals, 0);
    double wer = s_wer(ref, hyp);
    printf("itest_vosk: %zu English finals, %zu partials, WER %.3f (bound %.2f)\n",
           json_array_size(ls[0].finals), json_array_size(ls[0].partials), wer, S_WER_MAX);
    printf("itest_vosk: heard \"%s\"\n", hyp);
    ck_assert_double_le(wer, S_WER_MAX);
    ck_assert_int_gt(json_array_size(ls[0].partials), json_array_size(ls[0].finals));
    /* a partial is shown only once its words are stable, and comes before
       its utterance's final */
    size_t i;
    json_t *c;
    json_array_foreach(ls[0].partials, i, c)
    {
        ck_assert_str_eq(ic_get(c, "stableText"), ic_get(c, "text"));
        size_t k;
        json_t *f;
        json_array_foreach(ls[0].finals, k,
                           f) if (strcmp(ic_get(f, "segmentId"), ic_get(c, "segmentId")) == 0)
            ck_assert_int_le(ic_int(c, "arrivedMs"), ic_int(f, "arrivedMs"));
    }
    /* the Spanish listener: every English final, translated */
    ck_assert_int_eq(json_array_size(ls[1].finals), json_array_size(ls[0].finals));
    int translated = 0;
    json_array_foreach(ls[1].finals, i, c)
    {
        json_t *en = json_array_get(ls[0].finals, i);
        ck_assert_str_eq(ic_get(c, "segmentId"), ic_get(en, "segmentId"));
        ck_assert_str_eq(ic_get(c, "sourceText"), ic_get(en, "text"));
        ck_assert(!json_is_true(json_object_get(c, "untranslated")));
        translated += strcmp(ic_get(c, "text"), ic_get(en, "text")) != 0;
        if (i == 0)
            printf("itest_vosk: es \"%s\" for \"%s\"\n", ic_get(c, "text"), ic_get(en, "text"));
    }
    ck_assert_int_eq(translated, (int)json_array_size(ls[1].finals));
    /* the protocol as vosk-server wants it */
    json_t *conns = s_connections(from);
    ck_assert_int_ge(json_array_size(conns), 1);
    json_array_foreach(conns, i, c)
    {
        char *dump = json_dumps(c, JSON_COMPACT);
        printf("itest_vosk: connection %s\n", dump);
        free(dump);
        ck_assert_str_eq(ic_get(c, "path"), "/");
        ck_assert_int_eq(ic_int(json_object_get(c, "config"), "sample_rate"), 16000);
    }
    ck_assert(
        json_is_true(json_object_get(json_array_get(conns, json_array_size(conns) - 1), "eof")));
    json_decref(conns);
    free(ref);
    free(hyp);
    s_unlisten(&ls[0]);
    s_unlisten(&ls[1]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* When the kill happened (ms), and the chunk after which it did. */
static int64_t s_killed_ms;

/* Kill the stand-in when the second file's first partial has arrived,
   and start it again at once. */
static void s_kill_mid_utterance(size_t i, listener_t *ls, int n)
{
    (void)i;
    (void)n;
    if (s_killed_ms)
        return;
    bool second =
        json_array_size(ls[0].finals) >= 1 && json_array_size(ls[0].partials) > 0 &&
        ic_int(json_array_get(ls[0].partials, json_array_size(ls[0].partials) - 1), "seq") == 2;
    if (!second)
        return;
    s_killed_ms = ic_now_ms();
    s_standin_kill();
    s_standin_start();
    printf("itest_vosk: the stand-in was killed mid-utterance and up again in %lld ms\n",
           (long long)(ic_now_ms() - s_killed_ms));
}

START_TEST(test_a_server_restart_costs_that_utterance_at_most)
{
    long long failures = ic_feed_counter(s_h, "audio", "vosk_failures", 3000);
    long long cut = ic_feed_counter(s_h, "audio", "vosk_utterances_cut", 3000);
    char sid[IC_SID_LEN];
    ws_client_t *spk = s_speaker("vosk-restart", "en", sid);
    listener_t ls[1];
    s_listen(&ls[0], sid, "en");
    size_t len;
    uint8_t *pcm = s_program(0, NFILES - 1, &len, NULL);
    s_killed_ms = 0;
    s_play(spk, pcm, len, ls, 1, s_kill_mid_utterance);
    free(pcm);
    ck_assert_msg(s_killed_ms > 0, "no partial of the second utterance came to cut");
    s_wait_eof(0, ls, 1); /* the new stand-in's log */
    s_settle(sid, ls, 1, 2);
    /* the first file's final came before the kill; the last file's words
       came after it, from the new server */
    ck_assert_int_lt(ic_int(json_array_get(ls[0].finals, 0), "arrivedMs"), s_killed_ms);
    char *ref = s_reference(NFILES - 1, NFILES - 1);
    char *after = s_joined(ls[0].finals, s_killed_ms);
    /* the last file is the last final, recognised by the new server */
    const char *last =
        ic_get(json_array_get(ls[0].finals, json_array_size(ls[0].finals) - 1), "text");
    double wer = s_wer(ref, last);
    printf("itest_vosk: restart: %zu finals, after the restart \"%s\"; the last file's final "
           "has WER %.3f\n",
           json_array_size(ls[0].finals), after, wer);
    ck_assert_double_le(wer, S_WER_FILE_MAX);
    size_t i;
    json_t *c;
    int after_kill = 0;
    json_array_foreach(ls[0].finals, i, c) after_kill += ic_int(c, "arrivedMs") > s_killed_ms;
    ck_assert_int_ge(after_kill, 2); /* the cut one's stable words, then the next */
    /* one utterance was cut: the one the server was in */
    ck_assert_int_ge(ic_wait_feed_counter(s_h, "audio", "vosk_failures", failures + 1, 5000),
                     failures + 1);
    ck_assert_int_eq(ic_wait_feed_counter(s_h, "audio", "vosk_utterances_cut", cut + 1, 5000),
                     cut + 1);
    free(ref);
    free(after);
    s_unlisten(&ls[0]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_a_second_source_language)
{
    /* APy's targets for es, as the audio worker published them */
    char *targets = NULL;
    for (int i = 0; i < 100; i++) {
        free(targets);
        targets = ic_redis_str(s_h, "GET tolk:targets:es");
        if (targets[0])
            break;
        usleep(100000);
    }
    printf("itest_vosk: es reaches %s\n", targets);
    ck_assert_msg(strstr(targets, "en") != NULL, "es does not reach en: '%s'", targets);
    /* a language not in source_languages is still refused */
    char *token = ic_mint(&s_jwt, "vosk-fr");
    ws_client_t *fr = ic_open(s_h, 0, "/ws?action=createSession&sourceLanguage=fr&token=%s", token);
    free(token);
    ic_expect_refusal(fr, 400, "UNSUPPORTED_LANGUAGE");
    ws_destroy(&fr);

    size_t from = s_log_size();
    char sid[IC_SID_LEN];
    ws_client_t *spk = s_speaker("vosk-es", "es", sid);
    listener_t ls[2];
    s_listen(&ls[0], sid, "es"); /* the source: what the server heard */
    s_listen(&ls[1], sid, "en"); /* one of es's targets */
    size_t len;
    uint8_t *pcm = s_program(0, 0, &len, NULL);
    s_play(spk, pcm, len, ls, 2, NULL);
    free(pcm);
    s_wait_eof(from, ls, 2);
    s_settle(sid, ls, 2, 1);
    size_t i;
    json_t *c;
    json_array_foreach(ls[1].finals, i, c)
    {
        json_t *es = json_array_get(ls[0].finals, i);
        ck_assert_str_eq(ic_get(c, "sourceText"), ic_get(es, "text"));
        ck_assert(!json_is_true(json_object_get(c, "untranslated")));
        printf("itest_vosk: es session: \"%s\" -> en \"%s\"\n", ic_get(es, "text"),
               ic_get(c, "text"));
    }
    /* recognised at the server vosk_url_for names for es */
    json_t *conns = s_connections(from);
    ck_assert_int_ge(json_array_size(conns), 1);
    json_array_foreach(conns, i, c) ck_assert_str_eq(ic_get(c, "path"), "/es");
    json_decref(conns);
    free(targets);
    s_unlisten(&ls[0]);
    s_unlisten(&ls[1]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_a_slow_server_is_waited_for)
{
    /* answers 150 ms apart for 100 ms messages: the server falls behind
       the speaker by half the audio, and catches up in the quiet after */
    json_decref(s_control("/standin/mode?delay_ms=150"));
    long long failures = ic_feed_counter(s_h, "audio", "vosk_failures", 3000);
    size_t from = s_log_size();
    char sid[IC_SID_LEN];
    ws_client_t *spk = s_speaker("vosk-slow", "en", sid);
    listener_t ls[1];
    s_listen(&ls[0], sid, "en");
    size_t len;
    uint8_t *pcm = s_program(0, 0, &len, NULL);
    int64_t t0 = ic_now_ms();
    s_play(spk, pcm, len, ls, 1, NULL);
    free(pcm);
    s_wait_eof(from, ls, 1);
    s_settle(sid, ls, 1, 1);
    json_decref(s_control("/standin/mode"));
    char *ref = s_reference(0, 0), *hyp = s_joined(ls[0].finals, 0);
    double wer = s_wer(ref, hyp);
    printf("itest_vosk: slow server: \"%s\" (WER %.3f), the final %lld ms after the audio "
           "began\n",
           hyp, wer, (long long)(ic_int(json_array_get(ls[0].finals, 0), "arrivedMs") - t0));
    ck_assert_double_le(wer, S_WER_FILE_MAX);
    ck_assert_int_gt(json_array_size(ls[0].partials), 0);
    ck_assert_int_eq(ic_feed_counter(s_h, "audio", "vosk_failures", 3000), failures);
    free(ref);
    free(hyp);
    s_unlisten(&ls[0]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_a_server_that_refuses_is_waited_out)
{
    json_decref(s_control("/standin/mode?refuse=1"));
    int warned = s_log_lines("is not answering");
    char sid[IC_SID_LEN];
    ws_client_t *spk = s_speaker("vosk-down", "en", sid);
    listener_t ls[1];
    s_listen(&ls[0], sid, "en");
    size_t len;
    uint8_t *pcm = s_program(0, 0, &len, NULL);
    s_play(spk, pcm, len, ls, 1, NULL);
    ck_assert_int_eq(ic_wait_feed_counter(s_h, "audio", "vosk_servers_down", 1, 5000), 1);
    /* the loop goes on: a listener joins at once */
    int64_t t0 = ic_now_ms();
    ws_client_t *late = ic_listener(s_h, 0, sid, "en", NULL);
    printf("itest_vosk: server down: a listener joined in %lld ms; %zu captions\n",
           (long long)(ic_now_ms() - t0),
           json_array_size(ls[0].finals) + json_array_size(ls[0].partials));
    ws_destroy(&late);
    ck_assert_int_eq(json_array_size(ls[0].finals), 0);
    ck_assert_int_eq(json_array_size(ls[0].partials), 0);
    ck_assert_int_eq(s_log_lines("is not answering"), warned + 1);
    /* back: the next file is captioned */
    json_decref(s_control("/standin/mode"));
    size_t from = s_log_size();
    s_play(spk, pcm, len, ls, 1, NULL);
    free(pcm);
    s_wait_eof(from, ls, 1);
    s_settle(sid, ls, 1, 1);
    ck_assert_int_eq(ic_wait_feed_counter(s_h, "audio", "vosk_servers_down", 0, 5000), 0);
    ck_assert_int_eq(s_log_lines("answers again"), s_log_lines("is not answering"));
    s_unlisten(&ls[0]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* a forked test's lines survive its failure */
    Suite *s = suite_create("vosk");
    TCase *tc = tcase_create("vosk");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_partials_finals_and_translations);
    tcase_add_test(tc, test_a_server_restart_costs_that_utterance_at_most);
    tcase_add_test(tc, test_a_second_source_language);
    tcase_add_test(tc, test_a_slow_server_is_waited_for);
    tcase_add_test(tc, test_a_server_that_refuses_is_waited_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
