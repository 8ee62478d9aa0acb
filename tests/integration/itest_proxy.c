/*  itest_proxy.c -- tolk behind a real nginx, configured by the file we
    ship (deploy/nginx.conf, its ports substituted), in front of two
    gateways whose trusted_proxies is 127.0.0.1.

    Clients connect to nginx from 127.0.0.2 and 127.0.0.3, as two phones
    would from two addresses; nginx appends each one's address to
    X-Forwarded-For, and the gateways take the client from there. Checked:
    - captions flow through the proxy's WebSocket upgrade to listeners on
      both gateways, and a listener who drops resumes by lastSeq through it
      with nothing lost and nothing twice;
    - the failed-join budget is per forwarded client: 127.0.0.2 spends its
      budget and is refused, 127.0.0.3 joins; 127.0.0.2 writing
      "X-Forwarded-For: 127.0.0.3" itself is still 127.0.0.2;
    - the header from a peer that is not a trusted proxy is ignored: a
      client at 127.0.0.4 talking to a gateway directly cannot claim to be
      127.0.0.2.
*/
#include "harness.h"
#include "itest_client.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET   "proxy-test-secret-0123456789abcdef"
#define BUDGET   10 /* failed joins per hour per client in this system */
#define CHUNK    3200
#define CHUNK_MS 100

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;
static pid_t s_nginx;
static int s_port; /* nginx's */

/* ------------------------------------------------------------- nginx */

/* Write DIR/nginx.conf: a main config around deploy/nginx.conf with our
   ports in it. Returns 0 or -1. */
static int s_nginx_config(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/deploy/nginx.conf",
             getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".");
    FILE *in = fopen(path, "r");
    if (!in)
        return -1;
    char site[1024];
    snprintf(site, sizeof site, "%s/tolk-site.conf", dir);
    FILE *out = fopen(site, "w");
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        char *p;
        if ((p = strstr(line, "127.0.0.1:8080")))
            fprintf(out, "%.*s127.0.0.1:%d%s", (int)(p - line), line, harness_gateway_port(s_h, 0),
                    p + 14);
        else if ((p = strstr(line, "127.0.0.1:8081")))
            fprintf(out, "%.*s127.0.0.1:%d%s", (int)(p - line), line, harness_gateway_port(s_h, 1),
                    p + 14);
        else if ((p = strstr(line, "listen 80;")))
            fprintf(out, "%.*slisten 127.0.0.1:%d;\n", (int)(p - line), line, s_port);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    out = fopen(path, "w");
    fprintf(out,
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/logs/nginx-error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  access_log %s/logs/nginx-access.log;\n"
            "  client_body_temp_path %s/nginx-tmp/body;\n"
            "  proxy_temp_path %s/nginx-tmp/proxy;\n"
            "  fastcgi_temp_path %s/nginx-tmp/fastcgi;\n"
            "  uwsgi_temp_path %s/nginx-tmp/uwsgi;\n"
            "  scgi_temp_path %s/nginx-tmp/scgi;\n"
            "  include %s;\n"
            "}\n",
            dir, dir, dir, dir, dir, dir, dir, dir, site);
    fclose(out);
    return 0;
}

static void s_setup(void)
{
    harness_opts_t opts = {
        .gateways = 2,
        .control_workers = 1,
        .status_workers = HARNESS_NONE,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET,
                      "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", "TOLK_TRUSTED_PROXIES=127.0.0.1",
                      "TOLK_FAILED_JOINS_PER_HOUR=10", "TOLK_ASR_ENGINE=loadtest",
                      "TOLK_LOADTEST_CAPTION_MS=300", "TOLK_SPEECH_ENABLED=0", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
    s_port = harness_free_ports(1);
    ck_assert_int_gt(s_port, 0);
    const char *dir = harness_dir(s_h);
    char tmp[1024], conf[1024];
    snprintf(tmp, sizeof tmp, "mkdir -p %s/nginx-tmp", dir);
    ck_assert_int_eq(system(tmp), 0);
    ck_assert_int_eq(s_nginx_config(dir), 0);
    snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
    snprintf(tmp, sizeof tmp, "%s/logs/nginx-error.log", dir);
    s_nginx = fork();
    ck_assert_int_ge(s_nginx, 0);
    if (s_nginx == 0) {
        /* nginx goes with the test process, even one a failed assertion
           ended before its teardown, and never holds the test's output */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int log = open(tmp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
            close(log);
        }
        execlp("nginx", "nginx", "-p", dir, "-e", tmp, "-c", conf, (char *)NULL);
        execl("/usr/sbin/nginx", "nginx", "-p", dir, "-e", tmp, "-c", conf, (char *)NULL);
        _exit(127);
    }
    char body[256];
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) { /* up to 10 s */
        status = http_get_ex("127.0.0.1", s_port, "/healthz", body, sizeof body, 500);
        if (status != 200)
            usleep(100000);
    }
    ck_assert_msg(status == 200, "nginx did not pass /healthz on (%d)", status);
}

static void s_teardown(void)
{
    if (s_nginx > 0) {
        kill(-s_nginx, SIGTERM);
        waitpid(s_nginx, NULL, 0);
    }
    ck_assert_int_eq(harness_stop(&s_h), 0);
}

/* --------------------------------------------------------- clients */

/* A WebSocket to nginx (gw < 0) or to gateway gw directly, from source,
   with extra headers (NULL: none). */
static ws_client_t *s_open(int gw, const char *source, const char *headers, const char *fmt,
                           const char *a, const char *b)
{
    char path[1024];
    snprintf(path, sizeof path, fmt, a, b);
    ws_connect_opts_t o = {.source = source, .headers = headers};
    ws_client_t *c = ws_connect_with("127.0.0.1", gw < 0 ? s_port : harness_gateway_port(s_h, gw),
                                     path, &o, IC_WAIT_MS);
    ck_assert_msg(c != NULL, "no WebSocket from %s: %s", source, ws_last_error());
    return c;
}

/* The first answer to a join of sid from source (through nginx when
   gw < 0); the connection is closed after it. */
static json_t *s_join_answer(int gw, const char *source, const char *headers, const char *sid)
{
    ws_client_t *c = s_open(gw, source, headers,
                            "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid, "en");
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ws_close(c, 1000, "bye");
    ws_destroy(&c);
    return j;
}

/* Every caption seq received on c until timeout_ms of quiet; appended to seqs. */
static void s_collect(ws_client_t *c, json_t *seqs, int quiet_ms)
{
    char *m;
    while ((m = ws_recv_text(c, quiet_ms)) != NULL) {
        json_t *j = ic_json(m);
        if (strcmp(ic_get(j, "type"), "caption") == 0 &&
            !json_is_true(json_object_get(j, "isPartial")))
            json_array_append_new(seqs, json_integer(ic_int(j, "seq")));
        json_decref(j);
    }
}

/* Send n chunks of quiet in real time (the load-test recogniser makes a
   final of every 300 ms), reading c meanwhile. */
static void s_speak(ws_client_t *spk, int n, ws_client_t *c, json_t *seqs)
{
    static uint8_t quiet[CHUNK];
    int64_t t0 = ic_now_ms();
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(ws_send_binary(spk, quiet, CHUNK), 0);
        while (ic_now_ms() - t0 < (int64_t)(i + 1) * CHUNK_MS)
            if (c)
                s_collect(c, seqs, 5);
    }
}

/* ----------------------------------------------------------- tests */

START_TEST(test_captions_and_resume_through_nginx)
{
    char sid[IC_SID_LEN];
    /* the speaker too comes through nginx */
    char *token = ic_mint(&s_jwt, "proxy-speaker");
    ws_client_t *spk = s_open(-1, "127.0.0.1", NULL,
                              "/ws?action=createSession&sourceLanguage=en&token=%s%s", token, "");
    free(token);
    json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    snprintf(sid, sizeof sid, "%s", ic_get(j, "sessionId"));
    json_decref(j);
    ws_client_t *stay = s_open(-1, "127.0.0.2", NULL,
                               "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid, "en");
    ws_client_t *drop = s_open(-1, "127.0.0.3", NULL,
                               "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid, "en");
    ck_assert_str_eq(ic_get(j = ic_json(ws_recv_type(stay, "sessionJoined", IC_WAIT_MS)), "type"),
                     "sessionJoined");
    json_decref(j);
    ck_assert_str_eq(ic_get(j = ic_json(ws_recv_type(drop, "sessionJoined", IC_WAIT_MS)), "type"),
                     "sessionJoined");
    json_decref(j);
    /* nginx spread the three connections over both gateways */
    ck_assert_int_eq(ic_redis_int(s_h, "HLEN tolk:{%s}:gws", sid), 2);
    json_t *all = json_array(), *resumed = json_array(), *scratch = json_array();
    s_speak(spk, 15, drop, resumed);
    ck_assert_int_gt((int)json_array_size(resumed), 0);
    long long last = json_integer_value(json_array_get(resumed, json_array_size(resumed) - 1));
    ws_destroy(&drop); /* the phone's Wi-Fi drops: no close frame */
    s_speak(spk, 15, NULL, scratch);
    char q[512];
    snprintf(q, sizeof q, "%s&targetLanguage=en&lastSeq=%lld", sid, last);
    drop = s_open(-1, "127.0.0.3", NULL,
                  "/ws?action=refreshConnection&role=listener&sessionId=%s%s", q, "");
    ck_assert_str_eq(
        ic_get(j = ic_json(ws_recv_type(drop, "connectionRefreshComplete", IC_WAIT_MS)), "type"),
        "connectionRefreshComplete");
    json_decref(j);
    s_speak(spk, 15, drop, resumed);
    long long seq = ic_redis_int(s_h, "HGET tolk:{%s}:session seq:en", sid);
    s_collect(drop, resumed, 1500);
    s_collect(stay, all, 500);
    printf(
        "itest_proxy: %lld finals; the listener who stayed got %zu, the one who dropped at #%lld "
        "and resumed got %zu\n",
        seq, json_array_size(all), last, json_array_size(resumed));
    fflush(stdout);
    ck_assert_int_ge(seq, 12); /* 4.5 s of audio, a final per 300 ms */
    ck_assert_int_eq((long long)json_array_size(all), seq);
    ck_assert_int_eq((long long)json_array_size(resumed), seq);
    for (size_t i = 0; i < json_array_size(all); i++) {
        ck_assert_int_eq(json_integer_value(json_array_get(all, i)), (long long)i + 1);
        ck_assert_int_eq(json_integer_value(json_array_get(resumed, i)), (long long)i + 1);
    }
    json_decref(all);
    json_decref(resumed);
    json_decref(scratch);
    ws_close(stay, 1000, "bye");
    ws_destroy(&stay);
    ws_close(drop, 1000, "bye");
    ws_destroy(&drop);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_failed_joins_are_counted_per_forwarded_client)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "proxy-budget", sid, NULL);
    json_t *j;
    for (int i = 0; i < BUDGET; i++) {
        char bad[64];
        snprintf(bad, sizeof bad, "mistyped-code-%03d-%03d", 100 + i, i);
        j = s_join_answer(-1, "127.0.0.2", NULL, bad);
        ic_check_error(j, 404, "SESSION_NOT_FOUND");
        json_decref(j);
    }
    /* 127.0.0.2 has spent its budget: even its right code waits */
    j = s_join_answer(-1, "127.0.0.2", NULL, sid);
    ic_check_error(j, 429, "RATE_LIMIT_EXCEEDED");
    json_decref(j);
    /* writing another address into the header does not help it: nginx
       appends the real one, and that is the one taken */
    j = s_join_answer(-1, "127.0.0.2", "X-Forwarded-For: 127.0.0.3\r\n", sid);
    ic_check_error(j, 429, "RATE_LIMIT_EXCEEDED");
    json_decref(j);
    /* the phone next to it, at 127.0.0.3, is unaffected */
    j = s_join_answer(-1, "127.0.0.3", NULL, sid);
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
    /* a client that is not a trusted proxy claiming to be 127.0.0.2, at a
       gateway directly: the header is ignored, it is 127.0.0.4 and joins */
    j = s_join_answer(0, "127.0.0.4", "X-Forwarded-For: 127.0.0.2\r\n", sid);
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
    j = s_join_answer(1, "127.0.0.4", "Forwarded: for=127.0.0.2\r\n", sid);
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
    /* failures were counted for 127.0.0.2 alone: not for nginx's address,
       not for the addresses the headers claimed */
    redisReply *keys = redisCommand(harness_redis(s_h), "KEYS tolk:rl:joinfail:*");
    ck_assert_int_eq((int)keys->elements, 1);
    ck_assert_int_eq(ic_redis_int(s_h, "ZCARD %s", keys->element[0]->str), BUDGET);
    freeReplyObject(keys);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("nginx");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_captions_and_resume_through_nginx);
    tcase_add_test(tc, test_failed_joins_are_counted_per_forwarded_client);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
