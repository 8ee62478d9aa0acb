/*  itest_redis_stall.c -- Redis stalls for 5 s in the middle of a live
    session, and the gateway, whose loop never waits on Redis, does not.

    A speaker streams LibriVox speech in real time to a session with an
    English and a Spanish listener. Right after the speaker asks for a new
    volume, the test sends CLIENT PAUSE 5000 to the system's Redis: every
    client of Redis (the gateway, the workers, this test) is held for 5 s,
    as a Redis stuck on a slow disk or a long script would hold them. During
    the pause:
    - every client's heartbeat, sent every 200 ms, is answered within 100 ms;
    - /healthz answers at once, and /readyz says Redis is down;
    - the captions the audio worker sends still reach the English listener;
    - the gateway's status feed never shows its control or audio workers
      gone, and its log never declares one dead.
    Right after it, the listener count in Redis is right, a new volume and
    a pause of the broadcast reach every member and Redis, a new join
    works, and /readyz is 200 again. (A control that reaches a control
    worker while Redis is held fails there after redis_timeout_ms: the
    workers still call Redis synchronously, so none is sent during the
    pause.)
*/
#include "../support/harness.h"
#include "../support/itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <czmq.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET   "stall-test-secret-0123456789abcdef"
#define PAUSE_MS 5000 /* how long Redis is held */
#define BEAT_MS  200  /* a client heartbeat this often */
#define ACK_MAX  100  /* ms a heartbeat may wait for its answer */
#define CHUNK    3200 /* bytes of PCM: 100 ms at 16 kHz */
#define CHUNK_MS 100
#define NCLIENTS 3 /* the speaker and two listeners */
#define NFILES   5

static const char *s_files[NFILES] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930"};

static harness_t *s_h;
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* One WebSocket of the session, and what the test saw on it. */
typedef struct {
    const char *name;      /* for messages: speaker, en, es */
    ws_client_t *ws;       /* the connection */
    int64_t next_beat_ms;  /* when the next heartbeat goes */
    int64_t beat_sent_ms;  /* when the unanswered heartbeat went; 0: none */
    int beats, acks, late; /* heartbeats sent, answered, answered (or not) after ACK_MAX */
    int64_t worst_ms;      /* longest wait for an answer */
    json_t *captions;      /* caption messages, each with "rxMs" (test clock) added */
    json_t *others;        /* every other message but heartbeatAck */
} s_client_t;

/* The speaker's audio: every recording end to end, sent in real time. */
typedef struct {
    uint8_t *pcm; /* the recordings, one after the other */
    size_t len;   /* bytes */
    size_t pos;   /* next byte to send */
    int64_t next_ms;
} s_audio_t;

/* What the gateway's status feed said over a window. */
typedef struct {
    zsock_t *sub;                                /* subscribed before the pause */
    int reports;                                 /* reports read in the window */
    long long min_control, min_audio, min_redis; /* lowest workers_control, _audio, redis_up */
} s_feed_t;

/* The system: one gateway, two control workers, one audio worker, APy. */
static void s_setup(void)
{
    harness_opts_t opts = {
        .gateways = 1,
        .control_workers = 2,
        .status_workers = HARNESS_NONE,
        .audio_workers = 1,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
}

static void s_teardown(void)
{
    ck_assert_int_eq(harness_stop(&s_h), 0);
}

/* ------------------------------------------------------------ helpers */

static void s_audio_load(s_audio_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < NFILES; i++) {
        size_t n;
        uint8_t *pcm = ic_librivox(s_files[i], &n);
        a->pcm = realloc(a->pcm, a->len + n);
        ck_assert_ptr_nonnull(a->pcm);
        memcpy(a->pcm + a->len, pcm, n);
        a->len += n;
        free(pcm);
    }
    a->len -= a->len % CHUNK;
}

/* Send the chunks that are due (looping over the recordings). */
static void s_audio_send(s_audio_t *a, s_client_t *speaker, int64_t now)
{
    if (!a->next_ms)
        a->next_ms = now;
    while (now >= a->next_ms) {
        ck_assert_int_eq(ws_send_binary(speaker->ws, a->pcm + a->pos, CHUNK), 0);
        a->pos = (a->pos + CHUNK) % a->len;
        a->next_ms += CHUNK_MS;
    }
}

/* Take every message that has arrived on c. */
static void s_drain(s_client_t *c, int64_t now)
{
    char *m;
    while ((m = ws_recv_text(c->ws, 0)) != NULL) {
        json_t *j = json_loads(m, 0, NULL);
        free(m);
        ck_assert_ptr_nonnull(j);
        const char *type = ic_get(j, "type");
        if (strcmp(type, "heartbeatAck") == 0) {
            if (c->beat_sent_ms) {
                int64_t wait = now - c->beat_sent_ms;
                c->acks++;
                c->late += wait > ACK_MAX;
                if (wait > c->worst_ms)
                    c->worst_ms = wait;
                c->beat_sent_ms = 0;
            }
            json_decref(j);
        } else if (strcmp(type, "caption") == 0) {
            json_object_set_new(j, "rxMs", json_integer(now));
            json_array_append_new(c->captions, j);
        } else
            json_array_append_new(c->others, j);
    }
}

/* Send c's heartbeat when it is due; a heartbeat still unanswered by then
   counts as late. */
static void s_beat(s_client_t *c, int64_t now)
{
    if (c->beat_sent_ms && now - c->beat_sent_ms > ACK_MAX) {
        c->late++;
        c->worst_ms = now - c->beat_sent_ms > c->worst_ms ? now - c->beat_sent_ms : c->worst_ms;
        c->beat_sent_ms = 0; /* counted: its answer, if it comes, is ignored */
    }
    if (now < c->next_beat_ms)
        return;
    if (!c->beat_sent_ms) {
        ck_assert_int_eq(ws_send_text(c->ws, "{\"action\":\"heartbeat\"}"), 0);
        c->beat_sent_ms = now;
        c->beats++;
    }
    c->next_beat_ms = now + BEAT_MS;
}

/* The gateway feed's reports that have arrived: fold them into f. */
static void s_feed_read(s_feed_t *f)
{
    zmsg_t *msg;
    while ((msg = zmsg_recv_nowait(f->sub)) != NULL) {
        zframe_t *topic = zmsg_pop(msg), *body = zmsg_pop(msg);
        json_t *j =
            body ? json_loadb((const char *)zframe_data(body), zframe_size(body), 0, NULL) : NULL;
        json_t *counters = json_object_get(j, "counters");
        if (counters) {
            long long ctl = json_integer_value(json_object_get(counters, "workers_control"));
            long long aud = json_integer_value(json_object_get(counters, "workers_audio"));
            long long up = json_integer_value(json_object_get(counters, "redis_up"));
            if (f->reports == 0 || ctl < f->min_control)
                f->min_control = ctl;
            if (f->reports == 0 || aud < f->min_audio)
                f->min_audio = aud;
            if (f->reports == 0 || up < f->min_redis)
                f->min_redis = up;
            f->reports++;
        }
        json_decref(j);
        zframe_destroy(&topic);
        zframe_destroy(&body);
        zmsg_destroy(&msg);
    }
}

/* Run the session until the test clock reaches until: audio in real time,
   heartbeats when beating, every message taken as it arrives. */
static void s_run(s_client_t *cl, s_audio_t *audio, s_feed_t *feed, bool beating, int64_t until)
{
    for (int64_t now = ic_now_ms(); now < until; now = ic_now_ms()) {
        s_audio_send(audio, &cl[0], now);
        for (int i = 0; i < NCLIENTS; i++) {
            s_drain(&cl[i], now);
            if (beating)
                s_beat(&cl[i], now);
        }
        if (feed)
            s_feed_read(feed);
        struct pollfd p[NCLIENTS];
        for (int i = 0; i < NCLIENTS; i++)
            p[i] = (struct pollfd){.fd = ws_fd(cl[i].ws), .events = POLLIN};
        (void)poll(p, NCLIENTS, 5);
    }
}

/* Captions of c that arrived in [from, to) on the test clock. */
static int s_captions_between(const s_client_t *c, int64_t from, int64_t to)
{
    int n = 0;
    size_t i;
    json_t *cap;
    json_array_foreach(c->captions, i, cap)
    {
        int64_t rx = json_integer_value(json_object_get(cap, "rxMs"));
        n += rx >= from && rx < to;
    }
    return n;
}

static int s_finals(const s_client_t *c)
{
    int n = 0;
    size_t i;
    json_t *cap;
    json_array_foreach(c->captions, i, cap) n += json_is_false(json_object_get(cap, "isPartial"));
    return n;
}

/* Whether c got a message of type (one that is not a caption). */
static json_t *s_other(const s_client_t *c, const char *type)
{
    size_t i;
    json_t *m;
    json_array_foreach(c->others, i, m) if (strcmp(ic_get(m, "type"), type) == 0) return m;
    return NULL;
}

/* The gateway's status feed, found in Redis (before the pause). */
static zsock_t *s_gateway_feed(void)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "gw%d-", harness_gateway_port(s_h, 0));
    redisReply *ids = redisCommand(harness_redis(s_h), "SMEMBERS tolk:feeds");
    ck_assert_ptr_nonnull(ids);
    zsock_t *sub = NULL;
    for (size_t i = 0; !sub && i < ids->elements; i++) {
        if (strncmp(ids->element[i]->str, prefix, strlen(prefix)) != 0)
            continue;
        char *ep = ic_redis_str(s_h, "GET tolk:feed:%s", ids->element[i]->str);
        if (ep[0])
            sub = zsock_new_sub(ep, "tolk.status");
        free(ep);
    }
    freeReplyObject(ids);
    ck_assert_msg(sub != NULL, "the gateway's status feed is not registered");
    return sub;
}

/* GET path of the gateway; *ms gets how long the answer took. */
static int s_http(const char *path, char *body, size_t cap, int64_t *ms)
{
    int64_t t0 = ic_now_ms();
    int status = http_get_ex("127.0.0.1", harness_gateway_port(s_h, 0), path, body, cap, 2000);
    *ms = ic_now_ms() - t0;
    return status;
}

/* How many lines of the gateway's log contain what. */
static int s_log_count(const char *what)
{
    char path[1400], line[4096];
    snprintf(path, sizeof path, "%s/logs/gateway-0.log", harness_dir(s_h));
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

/* --------------------------------------------------------------- test */

START_TEST(test_redis_paused_5s)
{
    char sid[IC_SID_LEN];
    s_client_t cl[NCLIENTS] = {{.name = "speaker"}, {.name = "en"}, {.name = "es"}};
    cl[0].ws = ic_speaker(s_h, 0, &s_jwt, "stall-speaker", sid, NULL);
    cl[1].ws = ic_listener(s_h, 0, sid, "en", NULL);
    cl[2].ws = ic_listener(s_h, 0, sid, "es", NULL);
    for (int i = 0; i < NCLIENTS; i++) {
        cl[i].captions = json_array();
        cl[i].others = json_array();
    }
    ck_assert_int_eq(ic_wait_int(s_h, 2, 5000, "HGET tolk:{%s}:session listenerCount", sid), 2);
    s_feed_t feed = {.sub = s_gateway_feed()};
    s_audio_t audio;
    s_audio_load(&audio);

    /* speech until the English listener has its first final: the stream
       is open and numbering, so what follows is the steady state */
    int64_t deadline = ic_now_ms() + 20000;
    while (s_finals(&cl[1]) == 0 && ic_now_ms() < deadline)
        s_run(cl, &audio, NULL, false, ic_now_ms() + 200);
    ck_assert_msg(s_finals(&cl[1]) > 0, "no English final within 20 s of speech");

    /* heartbeats from now on; a second of them before the pause */
    s_run(cl, &audio, NULL, true, ic_now_ms() + 1000);
    /* then pause right after an English final: the next utterance begins,
       and its partials need no Redis (a final does: it waits at the head of
       its lane until Redis answers, and the captions after it wait behind
       it, so a pause begun late in an utterance would leave the listener
       nothing to get however well the gateway does) */
    int finals = s_finals(&cl[1]);
    deadline = ic_now_ms() + 30000;
    while (s_finals(&cl[1]) == finals && ic_now_ms() < deadline)
        s_run(cl, &audio, NULL, true, ic_now_ms() + 20);
    ck_assert_msg(s_finals(&cl[1]) > finals, "no second English final within 30 s");

    /* Redis held */
    struct timeval tv = {2, 0};
    redisContext *pauser = redisConnectWithTimeout("127.0.0.1", harness_redis_port(s_h), tv);
    ck_assert_msg(pauser && !pauser->err, "no connection to pause Redis with");
    redisReply *ok = redisCommand(pauser, "CLIENT PAUSE %d", PAUSE_MS);
    ck_assert_msg(ok && ok->type == REDIS_REPLY_STATUS, "CLIENT PAUSE refused");
    freeReplyObject(ok);
    int64_t paused = ic_now_ms();
    int64_t resumed = paused + PAUSE_MS; /* at the latest: the pause began before its answer */
    s_feed_read(&feed);
    feed.reports = 0; /* from here on: what the feed said during the pause */

    /* during the pause: the session runs, /healthz and /readyz answer */
    char body[1024];
    int64_t ms;
    s_run(cl, &audio, &feed, true, paused + 1000);
    ck_assert_int_eq(s_http("/healthz", body, sizeof body, &ms), 200);
    ck_assert_msg(ms < ACK_MAX, "/healthz took %lld ms while Redis was paused", (long long)ms);
    s_run(cl, &audio, &feed, true, paused + 3000);
    int ready = s_http("/readyz", body, sizeof body, &ms);
    ck_assert_msg(ms < ACK_MAX, "/readyz took %lld ms while Redis was paused", (long long)ms);
    ck_assert_msg(ready == 503 && strstr(body, "\"redis\":false"),
                  "/readyz while Redis was paused: %d %s", ready, body);
    s_run(cl, &audio, &feed, true, paused + 4000);
    ck_assert_int_eq(s_http("/healthz", body, sizeof body, &ms), 200);
    ck_assert_msg(ms < ACK_MAX, "/healthz took %lld ms while Redis was paused", (long long)ms);
    s_run(cl, &audio, &feed, true, resumed - 100);
    s_feed_read(&feed);
    ck_assert_msg(feed.reports >= 3, "the gateway's feed sent %d reports in the pause",
                  feed.reports);
    ck_assert_msg(feed.min_redis == 0, "the gateway's feed never said Redis was down");
    ck_assert_msg(feed.min_control >= 1 && feed.min_audio >= 1,
                  "the gateway lost its workers during the pause: control %lld, audio %lld",
                  feed.min_control, feed.min_audio);
    int during = s_captions_between(&cl[1], paused + 500, resumed - 100);

    /* a second of heartbeats after it */
    s_run(cl, &audio, &feed, true, resumed + 1000);
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_msg(cl[i].beats >= 30, "%s sent %d heartbeats", cl[i].name, cl[i].beats);
        ck_assert_msg(cl[i].late == 0 && cl[i].acks >= cl[i].beats - 1,
                      "%s: %d of %d heartbeats answered after %d ms (worst %lld ms), %d answered",
                      cl[i].name, cl[i].late, cl[i].beats, ACK_MAX, (long long)cl[i].worst_ms,
                      cl[i].acks);
    }
    ck_assert_msg(during > 0, "no caption reached the English listener while Redis was paused");
    ck_assert_msg(feed.min_control >= 1 && feed.min_audio >= 1,
                  "the gateway lost its workers after the pause: control %lld, audio %lld",
                  feed.min_control, feed.min_audio);
    ck_assert_int_eq(s_log_count("is dead"), 0);
    redisFree(pauser);

    /* right after: a broadcast control reaches every member and Redis */
    ck_assert_int_eq(ws_send_text(cl[0].ws, "{\"action\":\"setVolume\",\"volumeLevel\":0.5}"), 0);
    deadline = ic_now_ms() + 5000;
    while (ic_now_ms() < deadline &&
           !(s_other(&cl[0], "volumeChanged") && s_other(&cl[1], "volumeChanged") &&
             s_other(&cl[2], "volumeChanged")))
        s_run(cl, &audio, NULL, false, ic_now_ms() + 100);
    for (int i = 0; i < NCLIENTS; i++) {
        json_t *v = s_other(&cl[i], "volumeChanged");
        char *dump = json_dumps(cl[i].others, JSON_COMPACT);
        ck_assert_msg(v != NULL, "%s never got volumeChanged: %s", cl[i].name, dump);
        free(dump);
        ck_assert(json_real_value(json_object_get(v, "volumeLevel")) == 0.5);
    }
    char *vol = ic_redis_str(s_h, "HGET tolk:{%s}:session volume", sid);
    ck_assert_msg(atof(vol) == 0.5, "volume in Redis: %s", vol);
    free(vol);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session listenerCount", sid), 2);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs en", sid), 1);
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:langs es", sid), 1);

    /* the gateway is ready again, and the session takes controls and joins */
    deadline = ic_now_ms() + 5000;
    while (s_http("/readyz", body, sizeof body, &ms) != 200 && ic_now_ms() < deadline)
        s_run(cl, &audio, NULL, false, ic_now_ms() + 100);
    ck_assert_msg(strstr(body, "\"ready\":true"), "/readyz after the pause: %s", body);
    ck_assert_int_eq(ws_send_text(cl[0].ws, "{\"action\":\"pauseBroadcast\"}"), 0);
    deadline = ic_now_ms() + 5000;
    while (ic_now_ms() < deadline &&
           !(s_other(&cl[1], "broadcastPaused") && s_other(&cl[2], "broadcastPaused")))
        s_run(cl, &audio, NULL, false, ic_now_ms() + 100);
    ck_assert_msg(s_other(&cl[1], "broadcastPaused") && s_other(&cl[2], "broadcastPaused"),
                  "a pause after the stall did not reach the listeners");
    ck_assert_int_eq(ic_redis_int(s_h, "HGET tolk:{%s}:session isPaused", sid), 1);
    ws_client_t *late = ic_listener(s_h, 0, sid, "es", NULL);
    ck_assert_int_eq(ic_wait_int(s_h, 3, 5000, "HGET tolk:{%s}:session listenerCount", sid), 3);

    /* the English listener's finals came in order, each once */
    long long last = 0;
    size_t i;
    json_t *cap;
    json_array_foreach(cl[1].captions, i, cap)
    {
        if (!json_is_false(json_object_get(cap, "isPartial")))
            continue;
        long long seq = json_integer_value(json_object_get(cap, "seq"));
        ck_assert_msg(seq > last, "final seq %lld after %lld", seq, last);
        last = seq;
    }
    fprintf(stderr,
            "itest_redis_stall: heartbeats answered within %lld/%lld/%lld ms (worst, per "
            "client); %d English captions during the pause, %d finals in all; %d feed reports\n",
            (long long)cl[0].worst_ms, (long long)cl[1].worst_ms, (long long)cl[2].worst_ms, during,
            s_finals(&cl[1]), feed.reports);

    ws_destroy(&late);
    for (int k = 0; k < NCLIENTS; k++) {
        ws_destroy(&cl[k].ws);
        json_decref(cl[k].captions);
        json_decref(cl[k].others);
    }
    zsock_destroy(&feed.sub);
    free(audio.pcm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_stall");
    TCase *tc = tcase_create("pause");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_redis_paused_5s);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
