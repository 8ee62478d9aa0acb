/*  itest_control.c -- the control plane end to end: every broadcast and
    listener control, every refusal, and controls racing joins and leaves,
    over real WebSockets against a real redis-server, two gateways, two
    control workers and the sweeper under supervisord.

    What itest_session.c covers is not repeated here (a pause reaching both
    gateways, the connection-level rate limit, setVolume 1.5). This suite
    asserts the exact messages -- every field, and the very bytes being the
    same for the speaker and for listeners on both gateways -- and the
    session's whole Redis state after each action and each refusal.
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "control-test-secret-0123456789abcdef"

static harness_t *s_h; /* the system the current test talks to */

/* ------------------------------------------------------------ helpers */

/* Two gateways, two control workers, no status or audio workers (their
   messages would only interleave). rate_env sets the control rate. */
static harness_t *s_start(const char *rate_env)
{
    harness_opts_t opts = {.gateways = 2,
                           .control_workers = 2,
                           .status_workers = HARNESS_NONE,
                           .audio_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, rate_env, NULL}};
    return harness_start(&opts);
}

/* Tokens as this system demands them: its secret, no issuer or audience. */
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* Join without Check assertions (usable from a second thread): NULL on
   any failure. */
static ws_client_t *s_try_listener(int gw, const char *sid, const char *lang)
{
    char path[256];
    snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid, lang);
    ws_client_t *c = ws_connect("127.0.0.1", harness_gateway_port(s_h, gw), path, NULL, IC_WAIT_MS);
    if (!c)
        return NULL;
    char *m = ws_recv_text(c, IC_WAIT_MS);
    json_t *j = m ? json_loads(m, 0, NULL) : NULL;
    bool ok = j && strcmp(ic_get(j, "type"), "sessionJoined") == 0;
    json_decref(j);
    free(m);
    if (!ok)
        ws_destroy(&c);
    return c;
}

/* The whole Redis state of a session: its four hashes. */
static json_t *s_state(const char *sid)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "session",
                     ic_hgetall(s_h, "HGETALL tolk:{%s}:session", sid), "langs",
                     ic_hgetall(s_h, "HGETALL tolk:{%s}:langs", sid), "gws",
                     ic_hgetall(s_h, "HGETALL tolk:{%s}:gws", sid), "members",
                     ic_hgetall(s_h, "HGETALL tolk:{%s}:members", sid));
}

/* Two states are equal; when not, both are printed to compare by eye. */
static void s_assert_same(json_t *a, json_t *b)
{
    if (!json_equal(a, b)) {
        char *x = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        char *y = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        ck_abort_msg("state changed:\n%s\n%s", x, y);
    }
}

/* A field of tolk:{sid}:session as an integer, -1 when missing. */
static long long s_field_int(const char *sid, const char *field)
{
    return ic_redis_int(s_h, "HGET tolk:{%s}:session %s", sid, field);
}

/* A field of tolk:{sid}:session as a number, -1 when missing. */
static double s_field_double(const char *sid, const char *field)
{
    char *s = ic_redis_str(s_h, "HGET tolk:{%s}:session %s", sid, field);
    double v = *s ? atof(s) : -1;
    free(s);
    return v;
}

/* Poll until the session's listenerCount is want (up to 10 s). */
static void s_wait_count(const char *sid, long long want)
{
    ck_assert_int_eq(ic_wait_int(s_h, want, 10000, "HGET tolk:{%s}:session listenerCount", sid),
                     want);
}

/* The broadcast state a test expects. */
typedef struct {
    bool paused; /* isPaused */
    bool muted;  /* isMuted */
    double vol;  /* volume */
} bstate_t;

/* bs is exactly {isActive, isPaused, isMuted, volume, lastStateChange} with
   the expected values, and it is what Redis holds. */
static void s_check_bstate(json_t *bs, const bstate_t *want, const char *sid)
{
    ic_assert_keys(bs, "isActive", "isPaused", "isMuted", "volume", "lastStateChange", NULL);
    ck_assert(json_is_true(json_object_get(bs, "isActive")));
    ck_assert_int_eq(json_is_true(json_object_get(bs, "isPaused")), want->paused);
    ck_assert_int_eq(json_is_true(json_object_get(bs, "isMuted")), want->muted);
    ck_assert(json_is_number(json_object_get(bs, "volume")));
    ck_assert_double_eq_tol(json_number_value(json_object_get(bs, "volume")), want->vol, 1e-9);
    if (sid) {
        ck_assert_int_eq(s_field_int(sid, "isActive"), 1);
        ck_assert_int_eq(s_field_int(sid, "isPaused"), want->paused);
        ck_assert_int_eq(s_field_int(sid, "isMuted"), want->muted);
        ck_assert_double_eq_tol(s_field_double(sid, "volume"), want->vol, 1e-9);
        ck_assert_int_eq(ic_int(bs, "lastStateChange"), s_field_int(sid, "lastStateChange"));
    }
}

/* An error for action with this status and code, with exactly the error
   fields (retryAfter on 429). */
static void s_check_error(json_t *j, int status, const char *code, const char *action)
{
    ck_assert_str_eq(ic_get(j, "type"), "error");
    ck_assert_msg(strcmp(ic_get(j, "code"), code) == 0, "%s: got %s, want %s", action,
                  ic_get(j, "code"), code);
    ck_assert_int_eq(ic_int(j, "status"), status);
    ck_assert_str_eq(ic_get(j, "action"), action);
    if (status == 429) {
        ic_assert_keys(j, "type", "code", "status", "message", "action", "retryAfter", "timestamp",
                       NULL);
        ck_assert_int_eq(ic_int(j, "retryAfter"), 1);
    } else {
        ic_assert_keys(j, "type", "code", "status", "message", "action", "timestamp", NULL);
    }
}

/* ---------------------------------------------------- actions, exact */

START_TEST(test_broadcast_actions)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "control-actions", sid, NULL);
    ws_client_t *a = ic_listener(s_h, 0, sid, "es", NULL),
                *b = ic_listener(s_h, 1, sid, "ca", NULL);
    ws_client_t *all[] = {spk, a, b};
    static const struct {
        const char *msg;  /* what the speaker sends */
        const char *type; /* what everyone gets */
        bstate_t after;   /* the state after it */
    } steps[] = {
        {"{\"action\":\"pauseBroadcast\"}", "broadcastPaused", {true, false, 1.0}},
        {"{\"action\":\"muteBroadcast\"}", "broadcastMuted", {true, true, 1.0}},
        {"{\"action\":\"setVolume\",\"volumeLevel\":0.25}", "volumeChanged", {true, true, 0.25}},
        {"{\"action\":\"resumeBroadcast\"}", "broadcastResumed", {false, true, 0.25}},
        {"{\"action\":\"unmuteBroadcast\"}", "broadcastUnmuted", {false, false, 0.25}},
        {"{\"action\":\"speakerStateChange\",\"state\":{\"isPaused\":true,\"isMuted\":true,"
         "\"volume\":0.1}}",
         "speakerStateChanged",
         {true, true, 0.1}},
        {"{\"action\":\"speakerStateChange\",\"state\":{\"isMuted\":false}}",
         "speakerStateChanged",
         {true, false, 0.1}},
        {"{\"action\":\"resumeBroadcast\"}", "broadcastResumed", {false, false, 0.1}},
        {"{\"action\":\"setVolume\",\"volumeLevel\":1}", "volumeChanged", {false, false, 1.0}},
    };
    long long last_change = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        usleep(120000); /* pacing: under the 10 per second control rate */
        ck_assert_int_eq(ws_send_text(spk, steps[i].msg), 0);
        /* the speaker's answer is the notification; the same bytes reach
           both listeners, one on each gateway */
        char *texts[3];
        for (int k = 0; k < 3; k++) {
            texts[k] = ws_recv_text(all[k], IC_WAIT_MS);
            ck_assert_msg(texts[k] != NULL, "%s: client %d got nothing", steps[i].type, k);
        }
        ck_assert_str_eq(texts[1], texts[0]);
        ck_assert_str_eq(texts[2], texts[0]);
        free(texts[1]);
        free(texts[2]);
        json_t *j = ic_json(texts[0]);
        ck_assert_str_eq(ic_get(j, "type"), steps[i].type);
        ck_assert_str_eq(ic_get(j, "sessionId"), sid);
        json_t *bs = json_object_get(j, "broadcastState");
        s_check_bstate(bs, &steps[i].after, sid);
        if (strcmp(steps[i].type, "volumeChanged") == 0) {
            ic_assert_keys(j, "type", "sessionId", "broadcastState", "volumeLevel", "timestamp",
                           NULL);
            ck_assert_double_eq_tol(json_number_value(json_object_get(j, "volumeLevel")),
                                    steps[i].after.vol, 1e-9);
        } else if (strcmp(steps[i].type, "speakerStateChanged") == 0) {
            ic_assert_keys(j, "type", "sessionId", "broadcastState", "state", "timestamp", NULL);
            ck_assert(json_equal(json_object_get(j, "state"), bs));
        } else {
            ic_assert_keys(j, "type", "sessionId", "broadcastState", "timestamp", NULL);
        }
        long long change = ic_int(bs, "lastStateChange");
        ck_assert_int_ge(change, last_change);
        ck_assert_int_ge(ic_int(j, "timestamp"), change);
        last_change = change;
        json_decref(j);
    }
    ws_close(spk, 1000, "done");
    for (int k = 1; k < 3; k++) {
        json_t *j = ic_json(ws_recv_text(all[k], IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "type"), "sessionEnded");
        json_decref(j);
    }
    for (int k = 0; k < 3; k++)
        ws_destroy(&all[k]);
}
END_TEST

START_TEST(test_listener_actions)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 1, &s_jwt, "control-listener", sid, NULL);
    ws_client_t *a = ic_listener(s_h, 0, sid, "es", NULL),
                *b = ic_listener(s_h, 1, sid, "ca", NULL);
    static const char *const acks[][2] = {{"pausePlayback", "playbackPaused"},
                                          {"resumePlayback", "playbackResumed"}};
    json_t *before = s_state(sid);
    for (int i = 0; i < 2; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "{\"action\":\"%s\"}", acks[i][0]);
        ck_assert_int_eq(ws_send_text(a, msg), 0);
        json_t *j = ic_json(ws_recv_text(a, IC_WAIT_MS));
        ic_assert_keys(j, "type", "sessionId", "timestamp", NULL);
        ck_assert_str_eq(ic_get(j, "type"), acks[i][1]);
        ck_assert_str_eq(ic_get(j, "sessionId"), sid);
        json_decref(j);
    }
    /* playback is the listener's own business: nothing changed */
    json_t *after = s_state(sid);
    s_assert_same(before, after);
    json_decref(before);
    json_decref(after);
    /* changeLanguage twice: the gateway learns the new language too, so the
       second previousLanguage is the first target */
    static const char *const moves[][2] = {{"es", "fr"}, {"fr", "gl"}};
    for (int i = 0; i < 2; i++) {
        char msg[96];
        snprintf(msg, sizeof msg, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"%s\"}",
                 moves[i][1]);
        ck_assert_int_eq(ws_send_text(a, msg), 0);
        json_t *j = ic_json(ws_recv_text(a, IC_WAIT_MS));
        ic_assert_keys(j, "type", "sessionId", "targetLanguage", "previousLanguage", "timestamp",
                       NULL);
        ck_assert_str_eq(ic_get(j, "type"), "languageChanged");
        ck_assert_str_eq(ic_get(j, "sessionId"), sid);
        ck_assert_str_eq(ic_get(j, "targetLanguage"), moves[i][1]);
        ck_assert_str_eq(ic_get(j, "previousLanguage"), moves[i][0]);
        json_decref(j);
    }
    json_t *langs = ic_hgetall(s_h, "HGETALL tolk:{%s}:langs", sid);
    json_t *want = json_pack("{s:s, s:s}", "ca", "1", "gl", "1");
    s_assert_same(want, langs);
    json_decref(langs);
    json_decref(want);
    ck_assert_int_eq(s_field_int(sid, "listenerCount"), 2);
    json_t *members = ic_hgetall(s_h, "HGETALL tolk:{%s}:members", sid);
    int gl = 0, ca = 0, speakers = 0;
    const char *k;
    json_t *v;
    json_object_foreach(members, k, v)
    {
        gl += strcmp(json_string_value(v), "L:gl") == 0;
        ca += strcmp(json_string_value(v), "L:ca") == 0;
        speakers += strcmp(json_string_value(v), "S") == 0;
    }
    ck_assert_int_eq(json_object_size(members), 3);
    ck_assert_int_eq(gl + ca + speakers, 3);
    ck_assert_int_eq(gl, 1);
    ck_assert_int_eq(speakers, 1);
    json_decref(members);
    /* nobody else heard of any of it: the next thing the speaker and the
       other listener get is the next broadcast */
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"muteBroadcast\"}"), 0);
    ws_client_t *others[] = {spk, b, a};
    for (int i = 0; i < 3; i++) {
        json_t *j = ic_json(ws_recv_text(others[i], IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "type"), "broadcastMuted");
        json_decref(j);
    }
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&a);
    ws_destroy(&b);
}
END_TEST

/* ----------------------------------------------------------- refusals */

START_TEST(test_refusals_leave_state_unchanged)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "control-refusals", sid, NULL);
    ws_client_t *l = ic_listener(s_h, 1, sid, "es", NULL),
                *other = ic_listener(s_h, 0, sid, "ca", NULL);
    /* one non-default state, so a refusal that resets anything shows */
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"setVolume\",\"volumeLevel\":0.5}"), 0);
    json_decref(ic_json(ws_recv_text(spk, IC_WAIT_MS)));
    json_decref(ic_json(ws_recv_text(l, IC_WAIT_MS)));
    json_decref(ic_json(ws_recv_text(other, IC_WAIT_MS)));
    json_t *before = s_state(sid);
    static const struct {
        bool from_speaker;  /* who sends it */
        const char *msg;    /* what is sent */
        int status;         /* the error's status */
        const char *code;   /* and code */
        const char *action; /* the action it names */
    } cases[] = {
        /* wrong role */
        {false, "{\"action\":\"pauseBroadcast\"}", 403, "UNAUTHORIZED", "pauseBroadcast"},
        {false, "{\"action\":\"resumeBroadcast\"}", 403, "UNAUTHORIZED", "resumeBroadcast"},
        {false, "{\"action\":\"muteBroadcast\"}", 403, "UNAUTHORIZED", "muteBroadcast"},
        {false, "{\"action\":\"unmuteBroadcast\"}", 403, "UNAUTHORIZED", "unmuteBroadcast"},
        {false, "{\"action\":\"setVolume\",\"volumeLevel\":0.2}", 403, "UNAUTHORIZED", "setVolume"},
        {false, "{\"action\":\"speakerStateChange\",\"state\":{\"isMuted\":true}}", 403,
         "UNAUTHORIZED", "speakerStateChange"},
        {false, "{\"action\":\"endSession\"}", 403, "UNAUTHORIZED", "endSession"},
        {true, "{\"action\":\"pausePlayback\"}", 403, "UNAUTHORIZED", "pausePlayback"},
        {true, "{\"action\":\"resumePlayback\"}", 403, "UNAUTHORIZED", "resumePlayback"},
        {true, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"fr\"}", 403, "UNAUTHORIZED",
         "changeLanguage"},
        /* bad volume */
        {true, "{\"action\":\"setVolume\",\"volumeLevel\":1.5}", 400, "INVALID_PARAMETERS",
         "setVolume"},
        {true, "{\"action\":\"setVolume\",\"volumeLevel\":-0.1}", 400, "INVALID_PARAMETERS",
         "setVolume"},
        {true, "{\"action\":\"setVolume\",\"volumeLevel\":\"0.2\"}", 400, "INVALID_PARAMETERS",
         "setVolume"},
        {true, "{\"action\":\"setVolume\",\"volumeLevel\":true}", 400, "INVALID_PARAMETERS",
         "setVolume"},
        {true, "{\"action\":\"setVolume\",\"volumeLevel\":null}", 400, "INVALID_PARAMETERS",
         "setVolume"},
        {true, "{\"action\":\"setVolume\"}", 400, "INVALID_PARAMETERS", "setVolume"},
        /* bad speakerStateChange: a valid field next to a bad one is not applied */
        {true, "{\"action\":\"speakerStateChange\",\"state\":{\"isPaused\":true,\"loud\":1}}", 400,
         "INVALID_PARAMETERS", "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\",\"state\":{\"isMuted\":true,\"volume\":2}}", 400,
         "INVALID_PARAMETERS", "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\",\"state\":{\"isMuted\":\"yes\"}}", 400,
         "INVALID_PARAMETERS", "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\",\"state\":{\"isActive\":false}}", 400,
         "INVALID_PARAMETERS", "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\",\"state\":{}}", 400, "INVALID_PARAMETERS",
         "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\",\"state\":\"paused\"}", 400,
         "INVALID_PARAMETERS", "speakerStateChange"},
        {true, "{\"action\":\"speakerStateChange\"}", 400, "INVALID_PARAMETERS",
         "speakerStateChange"},
        /* unsupported language */
        {false, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"zz\"}", 400,
         "UNSUPPORTED_LANGUAGE", "changeLanguage"},
        {false, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"english\"}", 400,
         "UNSUPPORTED_LANGUAGE", "changeLanguage"},
        {false, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"ES\"}", 400,
         "UNSUPPORTED_LANGUAGE", "changeLanguage"},
        {false, "{\"action\":\"changeLanguage\",\"targetLanguage\":7}", 400, "UNSUPPORTED_LANGUAGE",
         "changeLanguage"},
        {false, "{\"action\":\"changeLanguage\"}", 400, "UNSUPPORTED_LANGUAGE", "changeLanguage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        usleep(120000); /* pacing: under the 10 per second control rate */
        ws_client_t *c = cases[i].from_speaker ? spk : l;
        ck_assert_int_eq(ws_send_text(c, cases[i].msg), 0);
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        s_check_error(j, cases[i].status, cases[i].code, cases[i].action);
        json_decref(j);
    }
    json_t *after = s_state(sid);
    s_assert_same(before, after);
    json_decref(after);
    /* over the control rate: a state change and a language change refused
       with 429 change nothing either */
    sleep(1); /* the rate limit's window: the bucket refills to ten */
    static const struct {
        bool from_speaker; /* who bursts */
        const char *msg;   /* the last message of the burst */
        const char *action;
    } bursts[] = {
        {true, "{\"action\":\"pauseBroadcast\"}", "pauseBroadcast"},
        {false, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"fr\"}", "changeLanguage"}};
    for (int i = 0; i < 2; i++) {
        ws_client_t *c = bursts[i].from_speaker ? spk : l;
        for (int k = 0; k < 14; k++)
            ck_assert_int_eq(ws_send_text(c, "{\"action\":\"heartbeat\"}"), 0);
        ck_assert_int_eq(ws_send_text(c, bursts[i].msg), 0);
        /* the gateway answers all of these itself, in order */
        for (int k = 0; k < 14; k++) {
            json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
            ck_assert(strcmp(ic_get(j, "type"), "heartbeatAck") == 0 ||
                      strcmp(ic_get(j, "code"), "RATE_LIMIT_EXCEEDED") == 0);
            json_decref(j);
        }
        json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
        s_check_error(j, 429, "RATE_LIMIT_EXCEEDED", bursts[i].action);
        json_decref(j);
    }
    after = s_state(sid);
    s_assert_same(before, after);
    json_decref(after);
    json_decref(before);
    /* no listener heard of any refusal: the next message is the next change
       (after the rate limit's window, so the speaker's bucket has refilled) */
    sleep(1);
    ck_assert_int_eq(ws_send_text(spk, "{\"action\":\"unmuteBroadcast\"}"), 0);
    ws_client_t *all[] = {spk, l, other};
    for (int i = 0; i < 3; i++) {
        json_t *j = ic_json(ws_recv_text(all[i], IC_WAIT_MS));
        ck_assert_str_eq(ic_get(j, "type"), "broadcastUnmuted");
        json_decref(j);
    }
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ws_destroy(&l);
    ws_destroy(&other);
}
END_TEST

/* ------------------------------------ controls racing joins and leaves */

#define CONTROLS      100
#define CHURN         50
#define STABLE        10
#define LAST_CONTROLS 10 /* sent after every join and leave has finished */

/* One listener of the churn thread. */
typedef struct {
    ws_client_t *c; /* NULL once it left */
    int gw;         /* the gateway it joined */
    char lang[3];   /* its language now */
    bool moved;     /* it sent changeLanguage */
} churn_t;

/* What the churn thread shares with the test. */
typedef struct {
    const char *sid;   /* the session */
    churn_t ls[CHURN]; /* its listeners */
    int failures;      /* joins that did not work */
    int sent;          /* controls the speaker has sent so far (atomic) */
} churn_ctx_t;

/* 50 joins, spread over the first 90 controls (join i waits until the
   speaker has sent i * 90 / 50 of them); after every second join the
   listener before it leaves (half with a clean close, half dropped);
   every fifth moves to Italian. */
static void *s_churn(void *arg)
{
    churn_ctx_t *ctx = arg;
    static const char *const langs[] = {"es", "ca", "fr", "gl"};
    for (int i = 0; i < CHURN; i++) {
        churn_t *m = &ctx->ls[i];
        m->gw = i % 2;
        strcpy(m->lang, langs[i % 4]);
        while (__atomic_load_n(&ctx->sent, __ATOMIC_ACQUIRE) <
               i * (CONTROLS - LAST_CONTROLS) / CHURN)
            usleep(500); /* poll interval: waiting for the speaker's count */
        m->c = s_try_listener(m->gw, ctx->sid, m->lang);
        if (!m->c) {
            ctx->failures++;
            continue;
        }
        if (i % 5 == 4) {
            ws_send_text(m->c, "{\"action\":\"changeLanguage\",\"targetLanguage\":\"it\"}");
            strcpy(m->lang, "it");
            m->moved = true;
        }
        if (i % 2 == 1 && ctx->ls[i - 1].c) {
            if (i % 4 == 1)
                ws_close(ctx->ls[i - 1].c, 1000, "bye");
            ws_destroy(&ctx->ls[i - 1].c);
        }
    }
    return NULL;
}

/* Control k of the sequence, and its effect on the expected state. */
static const char *s_control(int k, bstate_t *st, char *buf, size_t cap)
{
    double vol; /* two decimals: stored exactly as sent ("%.4g") */
    switch (k % 7) {
        case 0:
            st->paused = true;
            snprintf(buf, cap, "{\"action\":\"pauseBroadcast\"}");
            return "broadcastPaused";
        case 1:
            st->muted = true;
            snprintf(buf, cap, "{\"action\":\"muteBroadcast\"}");
            return "broadcastMuted";
        case 2:
            vol = (double)(k % 50) / 50.0;
            st->vol = vol;
            snprintf(buf, cap, "{\"action\":\"setVolume\",\"volumeLevel\":%.2f}", vol);
            return "volumeChanged";
        case 3:
            st->paused = false;
            snprintf(buf, cap, "{\"action\":\"resumeBroadcast\"}");
            return "broadcastResumed";
        case 4:
            st->muted = k % 2 == 0;
            vol = (double)(k % 25) / 25.0;
            st->vol = vol;
            snprintf(
                buf, cap,
                "{\"action\":\"speakerStateChange\",\"state\":{\"isMuted\":%s,\"volume\":%.2f}}",
                st->muted ? "true" : "false", vol);
            return "speakerStateChanged";
        case 5:
            st->muted = false;
            snprintf(buf, cap, "{\"action\":\"unmuteBroadcast\"}");
            return "broadcastUnmuted";
        default:
            st->paused = k % 3 == 0;
            snprintf(buf, cap, "{\"action\":\"speakerStateChange\",\"state\":{\"isPaused\":%s}}",
                     st->paused ? "true" : "false");
            return "speakerStateChanged";
    }
}

/* Read c until the message equal to last, keeping the broadcast ones in
   got. Returns how many were kept; fails when last never comes. */
static int s_drain(ws_client_t *c, const char *last, char **got, int cap, int *replies)
{
    int n = 0;
    for (;;) {
        char *m = ws_recv_text(c, IC_WAIT_MS);
        ck_assert_msg(m != NULL, "the last notification never came (after %d)", n);
        if (strstr(m, "\"type\":\"languageChanged\"")) {
            (*replies)++;
            free(m);
            continue;
        }
        ck_assert_int_lt(n, cap);
        got[n++] = m;
        if (strcmp(m, last) == 0)
            return n;
    }
}

START_TEST(test_controls_race_joins_and_leaves)
{
    harness_t *h = s_start("TOLK_CONTROL_RATE_PER_S=1000");
    ck_assert_ptr_nonnull(h);
    s_h = h;
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "control-race", sid, NULL);
    static const char *const langs[] = {"es", "ca", "fr", "gl", "pt"};
    ws_client_t *stable[STABLE];
    for (int i = 0; i < STABLE; i++)
        stable[i] = ic_listener(s_h, i % 2, sid, langs[i % 5], NULL);
    static churn_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.sid = sid;
    pthread_t churner;
    ck_assert_int_eq(pthread_create(&churner, NULL, s_churn, &ctx), 0);
    bstate_t want = {false, false, 1.0};
    const char *types[CONTROLS];
    for (int k = 0; k < CONTROLS; k++) {
        if (k == CONTROLS - LAST_CONTROLS)
            ck_assert_int_eq(pthread_join(churner, NULL), 0);
        char msg[160];
        types[k] = s_control(k, &want, msg, sizeof msg);
        ck_assert_int_eq(ws_send_text(spk, msg), 0);
        __atomic_store_n(&ctx.sent, k + 1, __ATOMIC_RELEASE);
        usleep(2000); /* pacing: the joins and leaves run between the controls */
    }
    ck_assert_int_eq(ctx.failures, 0);
    /* the speaker got every notification, in the order sent */
    static char *seq[CONTROLS];
    for (int k = 0; k < CONTROLS; k++) {
        seq[k] = ws_recv_text(spk, IC_WAIT_MS);
        ck_assert_msg(seq[k] != NULL, "notification %d missing", k);
        json_t *j = json_loads(seq[k], 0, NULL);
        ck_assert_str_eq(ic_get(j, "type"), types[k]);
        if (k == CONTROLS - 1)
            s_check_bstate(json_object_get(j, "broadcastState"), &want, sid);
        json_decref(j);
    }
    /* every listener still connected got every notification sent after it
       joined, in order: a suffix of the speaker's sequence, with no gap */
    static char *got[CONTROLS + 1];
    int connected = 0;
    for (int i = 0; i < STABLE + CHURN; i++) {
        ws_client_t *c = i < STABLE ? stable[i] : ctx.ls[i - STABLE].c;
        if (!c)
            continue;
        connected++;
        int replies = 0;
        int n = s_drain(c, seq[CONTROLS - 1], got, CONTROLS + 1, &replies);
        ck_assert_int_ge(n, i < STABLE ? CONTROLS : LAST_CONTROLS);
        ck_assert_int_le(n, CONTROLS);
        for (int k = 0; k < n; k++) {
            ck_assert_msg(strcmp(got[k], seq[CONTROLS - n + k]) == 0,
                          "listener %d: message %d of %d differs", i, k, n);
            free(got[k]);
        }
        ck_assert_int_eq(replies, i >= STABLE && ctx.ls[i - STABLE].moved ? 1 : 0);
    }
    ck_assert_int_eq(connected, STABLE + CHURN / 2);
    /* Redis holds exactly the listeners still connected */
    s_wait_count(sid, connected);
    json_t *expect = json_object();
    for (int i = 0; i < STABLE + CHURN; i++) {
        const char *lang = i < STABLE ? langs[i % 5] : ctx.ls[i - STABLE].lang;
        if (i >= STABLE && !ctx.ls[i - STABLE].c)
            continue;
        json_t *v = json_object_get(expect, lang);
        char n[16];
        snprintf(n, sizeof n, "%d", v ? atoi(json_string_value(v)) + 1 : 1);
        json_object_set_new(expect, lang, json_string(n));
    }
    json_t *langs_now = ic_hgetall(s_h, "HGETALL tolk:{%s}:langs", sid);
    s_assert_same(expect, langs_now);
    json_decref(langs_now);
    /* members: the speaker and each listener with its language; gws: the
       members on each gateway */
    json_t *members = ic_hgetall(s_h, "HGETALL tolk:{%s}:members", sid);
    ck_assert_int_eq(json_object_size(members), connected + 1);
    json_t *per_gw = json_object(), *per_lang = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(members, key, val)
    {
        char gw[80];
        snprintf(gw, sizeof gw, "%.*s", (int)(strrchr(key, '/') - key), key);
        json_object_set_new(per_gw, gw,
                            json_integer(json_integer_value(json_object_get(per_gw, gw)) + 1));
        const char *role = json_string_value(val);
        if (strncmp(role, "L:", 2) == 0) {
            json_t *v = json_object_get(per_lang, role + 2);
            char n[16];
            snprintf(n, sizeof n, "%d", v ? atoi(json_string_value(v)) + 1 : 1);
            json_object_set_new(per_lang, role + 2, json_string(n));
        }
    }
    s_assert_same(expect, per_lang);
    json_t *gws = ic_hgetall(s_h, "HGETALL tolk:{%s}:gws", sid);
    ck_assert_int_eq(json_object_size(gws), 2);
    json_object_foreach(per_gw, key, val)
    {
        ck_assert_int_eq(atoi(ic_get(gws, key)), json_integer_value(val));
    }
    json_decref(gws);
    json_decref(per_gw);
    json_decref(per_lang);
    json_decref(members);
    json_decref(expect);
    /* the final state is the last command's effect */
    ck_assert_int_eq(s_field_int(sid, "isPaused"), want.paused);
    ck_assert_int_eq(s_field_int(sid, "isMuted"), want.muted);
    ck_assert_double_eq_tol(s_field_double(sid, "volume"), want.vol, 1e-9);
    for (int k = 0; k < CONTROLS; k++)
        free(seq[k]);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    for (int i = 0; i < STABLE; i++)
        ws_destroy(&stable[i]);
    for (int i = 0; i < CHURN; i++)
        ws_destroy(&ctx.ls[i].c);
    ck_assert_int_eq(harness_stop(&h), 0);
    s_h = NULL;
}
END_TEST

/* ------------------------------------------------------------ upkeep */

/* A connection silent for idle_timeout_s (2 s here) gets connectionTimeout
   and close 4408, and leaves the session as any drop would; a connection
   that keeps talking stays. */
START_TEST(test_idle_connection_closed)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "idle-speaker", sid, NULL);
    ws_client_t *quiet = ic_listener(s_h, 1, sid, "es", NULL);
    ws_client_t *chatty = ic_listener(s_h, 0, sid, "ca", NULL);
    s_wait_count(sid, 2);
    json_t *timeout = NULL;
    for (int i = 0; i < 40 && !timeout; i++) {
        ws_send_text(spk, "{\"action\":\"heartbeat\"}");
        ws_send_text(chatty, "{\"action\":\"heartbeat\"}");
        char *m = ws_recv_text(quiet, 200);
        if (m && strstr(m, "connectionTimeout"))
            timeout = ic_json(m);
        else
            free(m);
    }
    ck_assert_msg(timeout != NULL, "no connectionTimeout for a silent listener");
    ck_assert_int_ge(ic_int(timeout, "idleSeconds"), 2);
    json_decref(timeout);
    ck_assert_int_eq(ws_wait_closed(quiet, IC_WAIT_MS), 4408);
    ws_destroy(&quiet);
    /* its state is gone as after a drop; the talkers are untouched */
    s_wait_count(sid, 1);
    json_t *langs = ic_hgetall(s_h, "HGETALL tolk:{%s}:langs", sid);
    ck_assert_int_eq((int)json_object_size(langs), 1);
    ck_assert_str_eq(ic_get(langs, "ca"), "1");
    json_decref(langs);
    ck_assert(ws_is_open(spk) && ws_is_open(chatty));
    ws_close(spk, 1000, NULL);
    ws_destroy(&spk);
    ws_destroy(&chatty);
}
END_TEST

/* Counts that drifted from the members hash are recounted by the sweeper. */
START_TEST(test_drifted_counts_reconciled)
{
    char sid[80];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "drift-speaker", sid, NULL);
    ws_client_t *ls[3] = {ic_listener(s_h, 0, sid, "es", NULL),
                          ic_listener(s_h, 1, sid, "es", NULL),
                          ic_listener(s_h, 1, sid, "fr", NULL)};
    s_wait_count(sid, 3);
    json_t *before = s_state(sid);
    redisContext *r = harness_redis(s_h);
    freeReplyObject(redisCommand(r, "HSET tolk:{%s}:session listenerCount 7", sid));
    freeReplyObject(redisCommand(r, "HSET tolk:{%s}:langs es 9 xx 2", sid));
    freeReplyObject(redisCommand(r, "HDEL tolk:{%s}:langs fr", sid));
    freeReplyObject(redisCommand(r, "HSET tolk:{%s}:gws nowhere 4", sid));
    s_wait_count(sid, 3);
    /* the sweeper recounts every sweep_interval_ms (1 s): wait for it */
    json_t *after = NULL;
    int64_t deadline = ic_now_ms() + 20000, talked = 0;
    for (;;) {
        /* everyone keeps talking: this system closes connections idle for 2 s */
        if (ic_now_ms() - talked >= 500) {
            talked = ic_now_ms();
            for (int k = 0; k < 4; k++)
                ws_send_text(k < 3 ? ls[k] : spk, "{\"action\":\"heartbeat\"}");
        }
        json_decref(after);
        after = s_state(sid);
        if (json_equal(before, after) || ic_now_ms() >= deadline)
            break;
        usleep(50000); /* poll interval */
    }
    s_assert_same(before, after);
    json_decref(before);
    json_decref(after);
    for (int i = 0; i < 3; i++)
        ws_destroy(&ls[i]);
    ws_close(spk, 1000, NULL);
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    /* the race brings its own system (a higher control rate): first, alone */
    Suite *s = suite_create("control");
    TCase *race = tcase_create("race");
    tcase_set_timeout(race, 90);
    tcase_add_test(race, test_controls_race_joins_and_leaves);
    suite_add_tcase(s, race);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    s_h = s_start("TOLK_CONTROL_RATE_PER_S=10");
    if (!s_h) {
        fprintf(stderr, "itest_control: the system did not start\n");
        return 1;
    }
    s = suite_create("control");
    TCase *tc = tcase_create("actions");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_broadcast_actions);
    tcase_add_test(tc, test_listener_actions);
    tcase_add_test(tc, test_refusals_leave_state_unchanged);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed += srunner_ntests_failed(sr);
    srunner_free(sr);
    int problems = harness_stop(&s_h); /* sanitizer reports in the servers' logs */

    /* idleness and recounts: a system with a short idle timeout */
    s_h = s_start("TOLK_IDLE_TIMEOUT_S=2");
    if (!s_h) {
        fprintf(stderr, "itest_control: the upkeep system did not start\n");
        return 1;
    }
    s = suite_create("control");
    tc = tcase_create("upkeep");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idle_connection_closed);
    tcase_add_test(tc, test_drifted_counts_reconciled);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed += srunner_ntests_failed(sr);
    srunner_free(sr);
    problems += harness_stop(&s_h);
    if (problems)
        fprintf(stderr, "itest_control: %d sanitizer or crash reports in the logs\n", problems);
    return failed == 0 && problems == 0 ? 0 : 1;
}
