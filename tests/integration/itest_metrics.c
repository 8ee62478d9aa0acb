/*  itest_metrics.c -- GET /metrics on every gateway, parsed by the
    Prometheus project's own text parser (prometheus_client, run by
    tests/support/metrics_parse.py), against a real system: two gateways,
    a control worker, a status worker, an audio worker (pocketsphinx) and
    the sweeper under supervisord.

    Checks what an operator's Prometheus would see: the exposition content
    type; every live process of the system (every feed registered in
    Redis) with its kind; counters typed counter and sampled as _total,
    gauges as gauges, the three histograms with cumulative le buckets
    ending in +Inf equal to _count; and that the numbers move when a
    speaker streams real speech and a listener joins: joins, finals and
    each histogram's _count rise between two scrapes; and that a killed
    process leaves /metrics while its restarted successor appears.
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "metrics-test-secret-0123456789abcdef"
#define CHUNK  3200 /* 100 ms of 16 kHz 16-bit PCM */

static harness_t *s_h;
static int s_problems;
/* The TLS case: the certificate the gateway serves, "" for plain HTTP. */
static char s_tls_dir[] = "/tmp/tolk-itest-metrics-XXXXXX";
static char s_cert[128], s_key[128], s_env_cert[200], s_env_key[200];
static const ic_jwt_t s_jwt = {.secret = SECRET};

static void s_setup(void)
{
    harness_opts_t opts = {
        .gateways = 2,
        .control_workers = 1,
        .audio_workers = 1,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", NULL}};
    s_h = harness_start(&opts);
    if (!s_h) {
        fprintf(stderr, "itest_metrics: the system did not start\n");
        exit(1);
    }
}

static void s_teardown(void)
{
    s_problems += harness_stop(&s_h);
}

/* One gateway serving HTTPS with a self-signed certificate made here, as
   itest_tls does; recognition by the load-test engine (no audio needed). */
static void s_setup_tls(void)
{
    if (!mkdtemp(s_tls_dir))
        exit(1);
    snprintf(s_cert, sizeof s_cert, "%s/cert.pem", s_tls_dir);
    snprintf(s_key, sizeof s_key, "%s/key.pem", s_tls_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tolk-test "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
             s_key, s_cert);
    if (system(cmd) != 0)
        exit(1);
    snprintf(s_env_cert, sizeof s_env_cert, "TOLK_TLS_CERT_FILE=%s", s_cert);
    snprintf(s_env_key, sizeof s_env_key, "TOLK_TLS_KEY_FILE=%s", s_key);
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .audio_workers = 1,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET,
                                         "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", s_env_cert,
                                         s_env_key, "TOLK_ASR_ENGINE=loadtest", NULL}};
    s_h = harness_start(&opts);
    if (!s_h) {
        fprintf(stderr, "itest_metrics: the system did not start over TLS\n");
        exit(1);
    }
}

static void s_teardown_tls(void)
{
    s_problems += harness_stop(&s_h);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_tls_dir);
    if (system(cmd) != 0)
        s_problems++;
    s_cert[0] = 0;
}

/* ------------------------------------------------------------ helpers */

/* Gateway gw's /metrics as metrics_parse.py understood it; asserts the
   fetch and the parse worked. Debian's interpreter by its path: the
   package installs the parser for it, and a python3 earlier in PATH (a
   pyenv shim) would not have it. */
static json_t *s_scrape(int gw)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/support/metrics_parse.py http%s://127.0.0.1:%d/metrics %s",
             getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".", s_cert[0] ? "s" : "",
             harness_gateway_port(s_h, gw), s_cert);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[len] = 0;
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "metrics_parse.py failed (%d) on gateway %d", rc, gw);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "metrics_parse.py printed no JSON: %.200s", out);
    free(out);
    return j;
}

/* The family name of the parsed scrape j, or NULL. */
static json_t *s_family(json_t *j, const char *name)
{
    return json_object_get(json_object_get(j, "families"), name);
}

/* Sum of family's samples named sample whose kind label is kind (NULL:
   any); -1 when there is no such sample at all. */
static double s_sum(json_t *j, const char *family, const char *sample, const char *kind)
{
    json_t *f = s_family(j, family);
    double sum = 0;
    bool found = false;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(f, "samples"), i, s)
    {
        json_t *labels = json_object_get(s, "labels");
        if (strcmp(ic_get(s, "name"), sample) != 0 ||
            (kind && strcmp(ic_get(labels, "kind"), kind) != 0))
            continue;
        found = true;
        sum += json_number_value(json_object_get(s, "value"));
    }
    return found ? sum : -1;
}

/* The kind a feed id belongs to: gw<port>-... is a gateway's, <kind>-...
   the others' (gateway/main.c, common/worker.c, sweeper). */
static void s_kind_of(const char *id, char *kind, size_t cap)
{
    if (strncmp(id, "gw", 2) == 0 && id[2] >= '0' && id[2] <= '9') {
        snprintf(kind, cap, "gateway");
        return;
    }
    const char *dash = strchr(id, '-');
    snprintf(kind, cap, "%.*s", dash ? (int)(dash - id) : (int)strlen(id), id);
}

/* What s_all_listed polls: one gateway's scrape and the registry. */
typedef struct {
    int gw;
    json_t *last; /* the last scrape, owned */
    char missing[256];
} s_listed_t;

/* Whether every live feed in Redis is in gateway gw's /metrics as
   tolk_uptime_seconds{process=<id>, kind=<its kind>}. */
static bool s_all_listed(void *arg)
{
    s_listed_t *l = arg;
    json_decref(l->last);
    l->last = s_scrape(l->gw);
    l->missing[0] = 0;
    redisReply *ids = redisCommand(harness_redis(s_h), "SMEMBERS tolk:feeds");
    ck_assert_ptr_nonnull(ids);
    int live = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        if (ic_redis_int(s_h, "EXISTS tolk:feed:%s", id) != 1)
            continue;
        live++;
        char kind[32];
        s_kind_of(id, kind, sizeof kind);
        bool found = false;
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(s_family(l->last, "tolk_uptime_seconds"), "samples"), k,
                           s)
        {
            json_t *labels = json_object_get(s, "labels");
            if (strcmp(ic_get(labels, "process"), id) == 0) {
                ck_assert_str_eq(ic_get(labels, "kind"), kind);
                found = true;
            }
        }
        if (!found)
            snprintf(l->missing, sizeof l->missing, "%s", id);
    }
    freeReplyObject(ids);
    /* gateways, control, status, audio, sweeper at least */
    return live >= 4 + harness_gateways(s_h) && !l->missing[0];
}

/* ------------------------------------------------------------- tests */

START_TEST(test_every_process_with_its_kind_and_types)
{
    for (int gw = 0; gw < harness_gateways(s_h); gw++) {
        s_listed_t l = {.gw = gw};
        ck_assert_msg(ic_wait_for(s_all_listed, &l, 15000),
                      "gateway %d's /metrics lacks process %s", gw, l.missing);
        json_t *j = l.last;
        ck_assert_str_eq(ic_get(j, "content_type"), "text/plain; version=0.0.4");
        /* every kind of the system is there */
        const char *kinds[] = {"gateway", "control", "status", "audio", "sweeper"};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            ck_assert_msg(s_sum(j, "tolk_uptime_seconds", "tolk_uptime_seconds", kinds[k]) >= 0,
                          "no %s process in /metrics", kinds[k]);
        /* every family is documented and typed */
        const char *name;
        json_t *f;
        json_object_foreach(json_object_get(j, "families"), name, f)
        {
            const char *type = ic_get(f, "type");
            ck_assert_msg(ic_get(f, "help")[0], "%s has no HELP", name);
            ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                              strcmp(type, "histogram") == 0,
                          "%s is typed %s", name, type);
            ck_assert_msg(strncmp(name, "tolk_", 5) == 0, "%s lacks the tolk_ prefix", name);
        }
        /* counters end in _total, gauges do not */
        json_t *types = json_object_get(j, "type_lines");
        ck_assert_str_eq(ic_get(types, "tolk_messages_in_total"), "counter");
        ck_assert_str_eq(ic_get(types, "tolk_errors_total"), "counter");
        ck_assert_str_eq(ic_get(types, "tolk_connections"), "gauge");
        ck_assert_str_eq(ic_get(types, "tolk_sessions"), "gauge");
        ck_assert_str_eq(ic_get(types, "tolk_workers_control"), "gauge");
        ck_assert_str_eq(ic_get(types, "tolk_uptime_seconds"), "gauge");
        ck_assert_str_eq(ic_get(s_family(j, "tolk_messages_in"), "type"), "counter");
        ck_assert_msg(s_sum(j, "tolk_messages_in", "tolk_messages_in_total", "gateway") >= 0,
                      "no tolk_messages_in_total sample of a gateway");
        /* the histograms: cumulative buckets, +Inf equal to _count */
        const char *hists[] = {"tolk_control_latency_seconds", "tolk_chunk_processing_seconds",
                               "tolk_caption_latency_seconds"};
        for (size_t h = 0; h < 3; h++) {
            json_t *hf = s_family(j, hists[h]);
            ck_assert_msg(hf != NULL, "no %s", hists[h]);
            ck_assert_str_eq(ic_get(hf, "type"), "histogram");
            ck_assert_str_eq(ic_get(types, hists[h]), "histogram");
            double prev = 0, inf = -1, count = -1;
            int buckets = 0;
            size_t i;
            json_t *s;
            json_array_foreach(json_object_get(hf, "samples"), i, s)
            {
                const char *sn = ic_get(s, "name");
                json_t *v = json_object_get(s, "value");
                if (strstr(sn, "_bucket")) {
                    const char *le = ic_get(json_object_get(s, "labels"), "le");
                    if (strcmp(le, "+Inf") == 0)
                        inf = json_number_value(v);
                    else {
                        ck_assert_msg(json_number_value(v) >= prev, "%s buckets not cumulative",
                                      hists[h]);
                        prev = json_number_value(v);
                    }
                    buckets++;
                } else if (strstr(sn, "_count"))
                    count = json_number_value(v);
            }
            ck_assert_int_eq(buckets, 12); /* one process each: 11 bounds and +Inf */
            ck_assert_msg(inf == count && inf >= prev, "%s: +Inf %g, _count %g", hists[h], inf,
                          count);
        }
        json_decref(j);
    }
}
END_TEST

/* What s_moved polls: the first scrape's figures and the latest. */
typedef struct {
    json_t *before, *now;
    char still[128]; /* the first figure that has not moved yet */
} s_moved_t;

/* The figures a speaker and a listener move. */
static const struct {
    const char *family, *sample, *kind;
} s_moving[] = {
    {"tolk_joins", "tolk_joins_total", "control"},
    {"tolk_finals_out", "tolk_finals_out_total", "audio"},
    {"tolk_audio_chunks", "tolk_audio_chunks_total", "gateway"},
    {"tolk_control_latency_seconds", "tolk_control_latency_seconds_count", "control"},
    {"tolk_chunk_processing_seconds", "tolk_chunk_processing_seconds_count", "audio"},
    {"tolk_caption_latency_seconds", "tolk_caption_latency_seconds_count", "audio"},
};

static bool s_moved(void *arg)
{
    s_moved_t *m = arg;
    json_decref(m->now);
    m->now = s_scrape(1);
    for (size_t i = 0; i < sizeof s_moving / sizeof s_moving[0]; i++) {
        double a = s_sum(m->before, s_moving[i].family, s_moving[i].sample, s_moving[i].kind);
        double b = s_sum(m->now, s_moving[i].family, s_moving[i].sample, s_moving[i].kind);
        if (!(b > a && b > 0)) {
            snprintf(m->still, sizeof m->still, "%s{kind=%s}: %g then %g", s_moving[i].sample,
                     s_moving[i].kind, a, b);
            return false;
        }
    }
    return true;
}

START_TEST(test_counters_move)
{
    s_listed_t l = {.gw = 1};
    ck_assert_msg(ic_wait_for(s_all_listed, &l, 15000), "lacks %s", l.missing);
    s_moved_t m = {.before = l.last};

    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "metrics-speaker", sid, NULL);
    ws_client_t *lis = ic_listener(s_h, 1, sid, "en", NULL);
    size_t len;
    uint8_t *pcm = ic_librivox("sense_and_sensibility_01_austen_64kb-0880", &len);
    /* the recording at 4x its speed, then silence so its utterance ends */
    int64_t start = ic_now_ms();
    for (size_t off = 0, i = 0; off < len; off += CHUNK, i++) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        ck_assert_int_eq(ws_send_binary(spk, pcm + off, n), 0);
        while (ic_now_ms() < start + (int64_t)(i + 1) * 25)
            usleep(2000);
    }
    free(pcm);
    /* a final reaches the listener */
    bool final = false;
    int64_t end = ic_now_ms() + 20000;
    while (!final && ic_now_ms() < end) {
        char *text = ws_recv_text(lis, 200);
        json_t *j = text ? json_loads(text, 0, NULL) : NULL;
        final = j && strcmp(ic_get(j, "type"), "caption") == 0 &&
                json_is_false(json_object_get(j, "isPartial"));
        json_decref(j);
        free(text);
    }
    ck_assert_msg(final, "no final reached the listener");
    ck_assert_msg(ic_wait_for(s_moved, &m, 10000), "did not move: %s", m.still);
    json_decref(m.before);
    json_decref(m.now);
    ws_destroy(&lis);
    ws_destroy(&spk);
}
END_TEST

/* The process id of the first sample of kind in a scrape's uptimes, into
   id (cap bytes); "" when there is none. */
static void s_process_of(json_t *j, const char *kind, char *id, size_t cap)
{
    id[0] = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(s_family(j, "tolk_uptime_seconds"), "samples"), i, s)
    {
        json_t *labels = json_object_get(s, "labels");
        if (strcmp(ic_get(labels, "kind"), kind) == 0) {
            snprintf(id, cap, "%s", ic_get(labels, "process"));
            return;
        }
    }
}

/* What s_replaced polls: the status worker that was killed. */
typedef struct {
    char old[128], now[128];
} s_replaced_t;

/* Whether gateway 0's /metrics has a status worker, and not the old one. */
static bool s_replaced(void *arg)
{
    s_replaced_t *r = arg;
    json_t *j = s_scrape(0);
    s_process_of(j, "status", r->now, sizeof r->now);
    bool old_gone = true;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(s_family(j, "tolk_uptime_seconds"), "samples"), i,
                       s) if (strcmp(ic_get(json_object_get(s, "labels"), "process"), r->old) == 0)
        old_gone = false;
    json_decref(j);
    return old_gone && r->now[0];
}

START_TEST(test_killed_process_leaves)
{
    s_listed_t l = {.gw = 0};
    ck_assert_msg(ic_wait_for(s_all_listed, &l, 15000), "lacks %s", l.missing);
    s_replaced_t r;
    s_process_of(l.last, "status", r.old, sizeof r.old);
    json_decref(l.last);
    ck_assert_msg(r.old[0], "no status worker in /metrics");
    /* no clean exit, no unregistration: its reports just stop, and
       supervisord starts a new one under a new feed id */
    pid_t victim = harness_pid(s_h, "status-worker:status-worker-0");
    ck_assert_int_gt(victim, 0);
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    ck_assert_msg(ic_wait_for(s_replaced, &r, 20000), "old %s, now %s", r.old, r.now);
    ck_assert_str_ne(r.now, r.old);
}
END_TEST

START_TEST(test_over_tls)
{
    /* the same scrape over the gateway's own TLS, the certificate verified:
       a body of many TLS records, written a chunk per writable */
    s_listed_t l = {.gw = 0};
    ck_assert_msg(ic_wait_for(s_all_listed, &l, 15000), "lacks %s", l.missing);
    ck_assert_str_eq(ic_get(l.last, "content_type"), "text/plain; version=0.0.4");
    ck_assert_str_eq(ic_get(json_object_get(l.last, "type_lines"), "tolk_messages_in_total"),
                     "counter");
    ck_assert_msg(s_family(l.last, "tolk_control_latency_seconds") != NULL, "no histogram");
    json_decref(l.last);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("scrape");
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_process_with_its_kind_and_types);
    tcase_add_test(tc, test_counters_move);
    tcase_add_test(tc, test_killed_process_leaves);
    suite_add_tcase(s, tc);
    tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, s_setup_tls, s_teardown_tls);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_over_tls);
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
        fprintf(stderr, "itest_metrics: %d sanitizer or crash reports\n", s_problems);
    return failed || s_problems ? EXIT_FAILURE : EXIT_SUCCESS;
}
