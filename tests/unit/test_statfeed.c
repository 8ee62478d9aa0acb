/*  test_statfeed.c -- the status feed end to end in one process, and its
    readers' shared parts (statreport's parser, feedsub's subscriber).

    A SUB socket connects to the feed's resolved endpoint and reads back what
    tolk_statfeed_publish sends, so the tests check the wire format the
    monitor depends on, not internals. Redis registration runs against a
    private redis-server this suite starts on a free high port (in the
    parent, through an unchecked fixture, so it is stopped even when a test
    fails).
*/
#include "feedsub.h"
#include "statfeed.h"
#include "statreport.h"

#include <check.h>
#include <czmq.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENDPOINT "tcp://127.0.0.1:*"

/* Port of the private redis-server, 0 when it could not be started. */
static int s_redis_port;
/* Its process id, so teardown stops exactly that process. */
static pid_t s_redis_pid;

/* A SUB socket connected to the feed and subscribed to its topic. */
static zsock_t *s_subscriber(tolk_statfeed_t *feed)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    ck_assert_ptr_nonnull(sub);
    zsock_set_subscribe(sub, TOLK_STATFEED_TOPIC);
    zsock_set_rcvtimeo(sub, 100);
    ck_assert_int_eq(zsock_connect(sub, "%s", tolk_statfeed_endpoint(feed)), 0);
    return sub;
}

/* Receive one message as parsed JSON within timeout_ms, checking the topic
   frame; NULL on timeout. */
static json_t *s_recv(zsock_t *sub, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (zclock_mono() < until) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            continue;
        ck_assert_int_eq(zmsg_size(msg), 2);
        char *topic = zmsg_popstr(msg);
        char *body = zmsg_popstr(msg);
        ck_assert_str_eq(topic, TOLK_STATFEED_TOPIC);
        json_error_t error;
        json_t *root = json_loads(body, 0, &error);
        ck_assert_msg(root != NULL, "bad JSON %s: %s", body, error.text);
        zstr_free(&topic);
        zstr_free(&body);
        zmsg_destroy(&msg);
        return root;
    }
    return NULL;
}

/* Publish until the subscriber has joined (PUB drops while a SUB is still
   connecting), then return the first message it sees. */
static json_t *s_publish_and_recv(tolk_statfeed_t *feed, zsock_t *sub)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        ck_assert_int_eq(tolk_statfeed_publish(feed), 0);
        json_t *root = s_recv(sub, 100);
        if (root)
            return root;
    }
    ck_abort_msg("no status message arrived");
    return NULL;
}

/* Drain anything already queued so the next message reflects new values. */
static void s_drain(zsock_t *sub)
{
    zsock_set_rcvtimeo(sub, 50);
    zmsg_t *msg;
    while ((msg = zmsg_recv(sub)))
        zmsg_destroy(&msg);
    zsock_set_rcvtimeo(sub, 100);
}

/* One integer counter from a message's counters object; -1 when absent. */
static int64_t s_counter(json_t *root, const char *name)
{
    json_t *value = json_object_get(json_object_get(root, "counters"), name);
    if (!value)
        return -1;
    ck_assert(json_is_integer(value));
    return json_integer_value(value);
}

START_TEST(test_new_destroy)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "gateway", "gw-test-1");
    ck_assert_ptr_nonnull(feed);
    const char *endpoint = tolk_statfeed_endpoint(feed);
    ck_assert_ptr_nonnull(endpoint);
    ck_assert_msg(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0, "endpoint %s", endpoint);
    ck_assert_ptr_null(strchr(endpoint, '*'));
    ck_assert_int_gt(atoi(endpoint + 16), 0);
    tolk_statfeed_destroy(&feed);
    ck_assert_ptr_null(feed);
    tolk_statfeed_destroy(&feed);
    tolk_statfeed_destroy(NULL);
}
END_TEST

START_TEST(test_new_rejects_bad_arguments)
{
    ck_assert_ptr_null(tolk_statfeed_new(NULL, "gateway", "a"));
    ck_assert_ptr_null(tolk_statfeed_new(ENDPOINT, NULL, "a"));
    ck_assert_ptr_null(tolk_statfeed_new(ENDPOINT, "gateway", NULL));
    ck_assert_ptr_null(tolk_statfeed_new(ENDPOINT, "gateway", ""));
    ck_assert_ptr_null(tolk_statfeed_new(ENDPOINT, "gateway", "has space"));
    char long_id[TOLK_STATFEED_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    ck_assert_ptr_null(tolk_statfeed_new(ENDPOINT, "gateway", long_id));
    ck_assert_ptr_null(tolk_statfeed_new("nonsense://nowhere", "gateway", "a"));
    /* Calls on a NULL feed are harmless. */
    tolk_statfeed_set(NULL, "connections", 1);
    tolk_statfeed_add(NULL, "errors", 1);
    ck_assert_int_eq(tolk_statfeed_publish(NULL), -1);
    ck_assert_ptr_null(tolk_statfeed_endpoint(NULL));
}
END_TEST

START_TEST(test_publish_message_format)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "control", "cw-test-7");
    ck_assert_ptr_nonnull(feed);
    zsock_t *sub = s_subscriber(feed);
    int64_t before = zclock_time();
    json_t *root = s_publish_and_recv(feed, sub);
    int64_t after = zclock_time();

    ck_assert_str_eq(json_string_value(json_object_get(root, "kind")), "control");
    ck_assert_str_eq(json_string_value(json_object_get(root, "id")), "cw-test-7");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "pid")), getpid());
    int64_t ts = json_integer_value(json_object_get(root, "timestamp"));
    ck_assert_int_ge(ts, before);
    ck_assert_int_le(ts, after);
    ck_assert(json_is_integer(json_object_get(root, "uptime_s")));
    ck_assert_int_ge(json_integer_value(json_object_get(root, "uptime_s")), 0);
    ck_assert(json_is_object(json_object_get(root, "counters")));
    ck_assert_int_eq(json_object_size(json_object_get(root, "counters")), 0);
    json_decref(root);

    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_counters_and_gauges)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "gateway", "gw-test-2");
    ck_assert_ptr_nonnull(feed);
    zsock_t *sub = s_subscriber(feed);

    tolk_statfeed_set(feed, "connections", 5);
    tolk_statfeed_set(feed, "connections", 7);
    tolk_statfeed_add(feed, "messages_in", 3);
    tolk_statfeed_add(feed, "messages_in", 4);
    tolk_statfeed_add(feed, "errors", 1);
    tolk_statfeed_set(feed, "sessions", 0);
    json_t *root = s_publish_and_recv(feed, sub);
    ck_assert_int_eq(s_counter(root, "connections"), 7);
    ck_assert_int_eq(s_counter(root, "messages_in"), 7);
    ck_assert_int_eq(s_counter(root, "errors"), 1);
    ck_assert_int_eq(s_counter(root, "sessions"), 0);
    ck_assert_int_eq(s_counter(root, "dropped_counters"), -1);
    json_decref(root);

    /* Totals persist across publications; gauges go down as well as up. */
    s_drain(sub);
    tolk_statfeed_add(feed, "messages_in", 10);
    tolk_statfeed_add(feed, "messages_out", 2);
    tolk_statfeed_set(feed, "connections", 3);
    tolk_statfeed_add(feed, "errors", -1);
    tolk_statfeed_add(feed, "big", INT64_C(1) << 40);
    ck_assert_int_eq(tolk_statfeed_publish(feed), 0);
    root = s_recv(sub, 2000);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(s_counter(root, "messages_in"), 17);
    ck_assert_int_eq(s_counter(root, "messages_out"), 2);
    ck_assert_int_eq(s_counter(root, "connections"), 3);
    ck_assert_int_eq(s_counter(root, "errors"), 0);
    ck_assert_int_eq(s_counter(root, "big"), INT64_C(1) << 40);
    json_decref(root);

    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_counter_cap)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "audio", "aw-test-3");
    ck_assert_ptr_nonnull(feed);
    zsock_t *sub = s_subscriber(feed);

    char name[64];
    for (int i = 0; i < TOLK_STATFEED_MAX_COUNTERS + 6; i++) {
        snprintf(name, sizeof name, "c%02d", i);
        tolk_statfeed_add(feed, name, i);
    }
    /* Names already in the table still update once it is full. */
    tolk_statfeed_add(feed, "c00", 100);
    /* Longest allowed name is refused only because the table is full... */
    char longest[TOLK_STATFEED_NAME_MAX + 1];
    memset(longest, 'n', TOLK_STATFEED_NAME_MAX);
    longest[TOLK_STATFEED_NAME_MAX] = 0;
    tolk_statfeed_set(feed, longest, 1);

    json_t *root = s_publish_and_recv(feed, sub);
    json_t *counters = json_object_get(root, "counters");
    /* 64 names plus the feed's own dropped_counters. */
    ck_assert_int_eq(json_object_size(counters), TOLK_STATFEED_MAX_COUNTERS + 1);
    ck_assert_int_eq(s_counter(root, "c00"), 100);
    ck_assert_int_eq(s_counter(root, "c63"), 63);
    ck_assert_int_eq(s_counter(root, "c64"), -1);
    ck_assert_int_eq(s_counter(root, "c69"), -1);
    ck_assert_int_eq(s_counter(root, "dropped_counters"), 7);
    json_decref(root);

    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_name_rules)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "sweeper", "sw-test-4");
    ck_assert_ptr_nonnull(feed);
    zsock_t *sub = s_subscriber(feed);

    char longest[TOLK_STATFEED_NAME_MAX + 1];
    memset(longest, 'n', TOLK_STATFEED_NAME_MAX);
    longest[TOLK_STATFEED_NAME_MAX] = 0;
    char too_long[TOLK_STATFEED_NAME_MAX + 2];
    memset(too_long, 'm', TOLK_STATFEED_NAME_MAX + 1);
    too_long[TOLK_STATFEED_NAME_MAX + 1] = 0;

    tolk_statfeed_set(feed, longest, 11);
    tolk_statfeed_set(feed, too_long, 12);
    tolk_statfeed_add(feed, "", 1);
    tolk_statfeed_add(feed, NULL, 1);
    tolk_statfeed_add(feed, "has space", 1);
    tolk_statfeed_add(feed, "quote\"", 1);
    tolk_statfeed_add(feed, "idle_closed", 2);

    json_t *root = s_publish_and_recv(feed, sub);
    ck_assert_int_eq(s_counter(root, longest), 11);
    ck_assert_int_eq(s_counter(root, too_long), -1);
    ck_assert_int_eq(s_counter(root, "idle_closed"), 2);
    ck_assert_int_eq(s_counter(root, "dropped_counters"), 5);
    ck_assert_int_eq(json_object_size(json_object_get(root, "counters")), 3);
    json_decref(root);

    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_publish_never_blocks)
{
    /* No subscriber, then a subscriber that never reads: both must drop
       rather than stall the process. */
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "status", "st-test-5");
    ck_assert_ptr_nonnull(feed);
    tolk_statfeed_add(feed, "messages_out", 1);
    int64_t start = zclock_mono();
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(tolk_statfeed_publish(feed), 0);
    zsock_t *sub = s_subscriber(feed);
    zclock_sleep(100);
    for (int i = 0; i < 5000; i++)
        tolk_statfeed_publish(feed);
    ck_assert_int_lt(zclock_mono() - start, 5000);
    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_histograms_round_trip)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "audio", "audio-hist");
    ck_assert_ptr_nonnull(feed);
    zsock_t *sub = s_subscriber(feed);
    tolk_prom_hist_t h = {0};
    tolk_prom_hist_observe(&h, 0.003); /* first bucket */
    tolk_prom_hist_observe(&h, 0.07);  /* 0.1 */
    tolk_prom_hist_observe(&h, 30);    /* +Inf only */
    tolk_prom_hist_observe(&h, -1);    /* a stepped clock counts as 0 */
    tolk_statfeed_set_hist(feed, "chunk_processing_seconds", &h);
    tolk_statfeed_add(feed, "chunks_in", 4);
    for (int i = 0; i < 4; i++) { /* 4 fit, the fifth is refused */
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        tolk_statfeed_set_hist(feed, name, &h);
    }
    json_t *root = s_publish_and_recv(feed, sub);
    char *text = json_dumps(root, JSON_COMPACT);
    tolk_statreport_t r;
    ck_assert_int_eq(tolk_statreport_parse(&r, text, strlen(text)), 0);
    ck_assert_str_eq(r.kind, "audio");
    ck_assert_str_eq(r.id, "audio-hist");
    ck_assert_uint_eq(r.nhists, 4);
    ck_assert_str_eq(r.hists[0].name, "chunk_processing_seconds");
    const uint64_t want[TOLK_PROM_HIST_BUCKETS] = {2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3};
    for (int b = 0; b < TOLK_PROM_HIST_BUCKETS; b++)
        ck_assert_uint_eq(r.hists[0].hist.le[b], want[b]);
    ck_assert_uint_eq(r.hists[0].hist.count, 4);
    ck_assert(r.hists[0].hist.sum > 30.07 && r.hists[0].hist.sum < 30.08);
    ck_assert_int_eq(tolk_statreport_counter(&r, "chunks_in"), 4);
    ck_assert_int_eq(tolk_statreport_counter(&r, "dropped_counters"), 1);
    /* anything off the rules rejects the whole report */
    const char *bad[] = {
        "{\"kind\":\"a\",\"id\":\"b\",\"pid\":1,\"timestamp\":1,\"uptime_s\":1,"
        "\"counters\":{\"x y\":1}}",
        "{\"kind\":\"a\",\"id\":\"b\",\"pid\":1,\"timestamp\":1,\"uptime_s\":1,"
        "\"counters\":{\"x\":1.5}}",
        "{\"kind\":\"a\",\"id\":\"b\",\"pid\":1,\"timestamp\":1,\"uptime_s\":1,"
        "\"counters\":{},\"histograms\":{\"h\":{\"le\":[2,1,1,1,1,1,1,1,1,1,1],"
        "\"count\":2,\"sum\":1}}}",
        "{\"kind\":\"a\",\"id\":\"b\",\"pid\":1,\"timestamp\":1,\"uptime_s\":1,"
        "\"counters\":{},\"histograms\":{\"h\":{\"le\":[1,1,1,1,1,1,1,1,1,1,3],"
        "\"count\":2,\"sum\":1}}}",
        "{\"kind\":\"a\",\"id\":\"b\",\"pid\":1,\"timestamp\":1,\"counters\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(tolk_statreport_parse(&r, bad[i], strlen(bad[i])) == -1, "accepted %s",
                      bad[i]);
    free(text);
    json_decref(root);
    zsock_destroy(&sub);
    tolk_statfeed_destroy(&feed);
}
END_TEST

START_TEST(test_gauge_table)
{
    const char *gauges[] = {"connections",          "sessions",
                            "workers_control",      "redis_up",
                            "chunk_latency_us_p95", "translation_ms_mean"};
    const char *counters[] = {"messages_in",  "errors",     "joins",
                              "workers_left", "finals_out", "sessions_created"};
    for (size_t i = 0; i < 6; i++) {
        ck_assert_msg(tolk_statreport_is_gauge(gauges[i]), "%s", gauges[i]);
        ck_assert_msg(!tolk_statreport_is_gauge(counters[i]), "%s", counters[i]);
    }
}
END_TEST

/* What feedsub hands over, for test_feedsub_follows. */
typedef struct {
    int reports;
    int64_t joins;
} s_seen_t;

static void s_on_report(void *arg, const tolk_statreport_t *report)
{
    s_seen_t *seen = arg;
    seen->reports++;
    seen->joins = tolk_statreport_counter(report, "joins");
}

START_TEST(test_feedsub_follows)
{
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "control", "control-sub");
    tolk_statfeed_t *other = tolk_statfeed_new(ENDPOINT, "control", "control-other");
    ck_assert_ptr_nonnull(feed);
    ck_assert_ptr_nonnull(other);
    tolk_statfeed_set(feed, "joins", 7);
    tolk_feedsub_t *fs = tolk_feedsub_new(2);
    ck_assert_ptr_nonnull(fs);
    /* the second entry is followed under the wrong id: its reports are
       another system's; the third has a bad endpoint; the fourth is over the cap */
    tolk_registry_entry_t entries[4];
    memset(entries, 0, sizeof entries);
    snprintf(entries[0].id, sizeof entries[0].id, "control-sub");
    snprintf(entries[0].endpoint, sizeof entries[0].endpoint, "%s", tolk_statfeed_endpoint(feed));
    snprintf(entries[1].id, sizeof entries[1].id, "control-renamed");
    snprintf(entries[1].endpoint, sizeof entries[1].endpoint, "%s", tolk_statfeed_endpoint(other));
    snprintf(entries[2].id, sizeof entries[2].id, "x");
    snprintf(entries[2].endpoint, sizeof entries[2].endpoint, "http://x");
    snprintf(entries[3].id, sizeof entries[3].id, "y");
    snprintf(entries[3].endpoint, sizeof entries[3].endpoint, "tcp://127.0.0.1:1");
    ck_assert_uint_eq(tolk_feedsub_follow(fs, entries, 4), 2);
    ck_assert_uint_eq(tolk_feedsub_ignored(fs), 2);
    ck_assert(tolk_feedsub_follows(fs, "control-sub"));
    ck_assert(!tolk_feedsub_follows(fs, "control-other"));
    s_seen_t seen = {0};
    int64_t until = zclock_mono() + 5000;
    while ((seen.reports == 0 || tolk_feedsub_foreign(fs) == 0) && zclock_mono() < until) {
        tolk_statfeed_publish(feed);
        tolk_statfeed_publish(other);
        zclock_sleep(20);
        tolk_feedsub_drain(fs, 100, s_on_report, &seen);
    }
    ck_assert_int_gt(seen.reports, 0);
    ck_assert_int_eq(seen.joins, 7);
    ck_assert_uint_gt(tolk_feedsub_foreign(fs), 0);
    ck_assert_uint_eq(tolk_feedsub_bad(fs), 0);
    tolk_feedsub_destroy(&fs);
    tolk_feedsub_destroy(&fs);
    ck_assert_ptr_null(fs);
    tolk_statfeed_destroy(&feed);
    tolk_statfeed_destroy(&other);
}
END_TEST

/* A free TCP port on 127.0.0.1 picked by the kernel. */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* Start a throwaway redis-server and wait until it answers PING. Runs in the
   Check parent before any test forks. */
static void s_redis_start(void)
{
    int port = s_free_port();
    if (port == 0)
        return;
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        /* Die with the test runner whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        char port_arg[16];
        snprintf(port_arg, sizeof port_arg, "%d", port);
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", port_arg, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    s_redis_pid = pid;
    for (int i = 0; i < 100; i++) {
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisReply *reply = redisCommand(c, "PING");
            bool ok = reply && reply->type == REDIS_REPLY_STATUS;
            freeReplyObject(reply);
            redisFree(c);
            if (ok) {
                s_redis_port = port;
                return;
            }
        } else if (c)
            redisFree(c);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s_redis_pid = 0;
            return;
        }
        usleep(50000);
    }
}

/* Stop the private redis-server started by s_redis_start. */
static void s_redis_stop(void)
{
    if (s_redis_pid > 0) {
        kill(s_redis_pid, SIGTERM);
        waitpid(s_redis_pid, NULL, 0);
        s_redis_pid = 0;
    }
}

/* A connection to the private redis-server (the test fails without one). */
static redisContext *s_redis_connect(void)
{
    ck_assert_msg(s_redis_port > 0, "private redis-server did not start");
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s_redis_port, tv);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->err, 0);
    return c;
}

START_TEST(test_register_unregister)
{
    redisContext *redis = s_redis_connect();
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "gateway", "gw-reg-1");
    ck_assert_ptr_nonnull(feed);

    ck_assert_int_eq(tolk_statfeed_register(feed, redis, 5), 0);
    ck_assert_int_eq(tolk_statfeed_register(feed, redis, 5), 0);
    redisReply *reply = redisCommand(redis, "GET tolk:feed:gw-reg-1");
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(reply->str, tolk_statfeed_endpoint(feed));
    freeReplyObject(reply);
    reply = redisCommand(redis, "TTL tolk:feed:gw-reg-1");
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    ck_assert_int_gt(reply->integer, 0);
    ck_assert_int_le(reply->integer, 5);
    freeReplyObject(reply);
    reply = redisCommand(redis, "SMEMBERS tolk:feeds");
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(reply->elements, 1);
    ck_assert_str_eq(reply->element[0]->str, "gw-reg-1");
    freeReplyObject(reply);

    /* Arguments are refused without touching Redis. */
    ck_assert_int_eq(tolk_statfeed_register(feed, redis, 0), -1);
    ck_assert_int_eq(tolk_statfeed_register(feed, NULL, 5), -1);

    tolk_statfeed_unregister(feed, redis);
    reply = redisCommand(redis, "EXISTS tolk:feed:gw-reg-1");
    ck_assert_int_eq(reply->integer, 0);
    freeReplyObject(reply);
    reply = redisCommand(redis, "SISMEMBER tolk:feeds gw-reg-1");
    ck_assert_int_eq(reply->integer, 0);
    freeReplyObject(reply);

    /* The context is still in step after the pipelines. */
    reply = redisCommand(redis, "PING");
    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);

    tolk_statfeed_destroy(&feed);
    redisFree(redis);
}
END_TEST

START_TEST(test_register_broken_connection)
{
    redisContext *redis = s_redis_connect();
    tolk_statfeed_t *feed = tolk_statfeed_new(ENDPOINT, "control", "cw-reg-2");
    ck_assert_ptr_nonnull(feed);
    /* The server closes our connection: register reports it in redis->err. */
    redisReply *reply = redisCommand(redis, "CLIENT KILL TYPE normal SKIPME no");
    freeReplyObject(reply);
    ck_assert_int_eq(tolk_statfeed_register(feed, redis, 5), -1);
    ck_assert_int_ne(redis->err, 0);
    ck_assert_int_eq(tolk_statfeed_register(feed, redis, 5), -1);
    tolk_statfeed_unregister(feed, redis);
    tolk_statfeed_destroy(&feed);
    redisFree(redis);
}
END_TEST

/* The whole suite: wire format, bounds, and Redis registration. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("statfeed");
    TCase *tc = tcase_create("feed");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_new_destroy);
    tcase_add_test(tc, test_new_rejects_bad_arguments);
    tcase_add_test(tc, test_publish_message_format);
    tcase_add_test(tc, test_counters_and_gauges);
    tcase_add_test(tc, test_counter_cap);
    tcase_add_test(tc, test_name_rules);
    tcase_add_test(tc, test_publish_never_blocks);
    tcase_add_test(tc, test_histograms_round_trip);
    tcase_add_test(tc, test_gauge_table);
    tcase_add_test(tc, test_feedsub_follows);
    suite_add_tcase(s, tc);

    TCase *tr = tcase_create("redis");
    tcase_set_timeout(tr, 20);
    tcase_add_unchecked_fixture(tr, s_redis_start, s_redis_stop);
    tcase_add_test(tr, test_register_unregister);
    tcase_add_test(tr, test_register_broken_connection);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
