/*  itest_neighbours.c -- two tolk systems on one machine stay apart.

    A gateway's worker endpoint is an ephemeral loopback port. When a
    gateway dies, the workers that followed it keep dialling its endpoint
    until its registration expires, and meanwhile another process may be
    given that port: on a machine that runs two systems (two test suites,
    a staging beside production), the other system's gateway. Before
    envelopes named the gateway they were meant for, that gateway counted
    the stranger's workers as its own and routed half of its controls to a
    worker that looked them up in the wrong Redis ("no live session has
    this id" for a session created a moment before).

    The test runs systems A and B, and makes A's control worker follow
    B's gateway by registering B's endpoint in A's Redis under an id of
    A's. Then B's gateway drops what A's worker sends (counted in its
    feed's foreign_dropped), keeps exactly its own control worker, and
    every session created on B can be joined on B; A works as before.
    The same holds for status feeds: with B's gateway feed registered in
    A's Redis under an id of A's, A's tolk-monitor lists A's processes
    only.
*/
#include "../support/harness.h"
#include "../support/itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET     "neighbour-test-secret-0123456789abcd"
#define FOREIGN_ID "gw-foreign-1" /* the id under which A follows B's gateway */
#define SESSIONS   6              /* sessions created and joined on B */

static harness_t *s_a, *s_b;
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* Each system: one gateway, one control worker, nothing else. */
static harness_t *s_system(void)
{
    harness_opts_t opts = {
        .gateways = 1,
        .control_workers = 1,
        .status_workers = HARNESS_NONE,
        .audio_workers = HARNESS_NONE,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", NULL}};
    harness_t *h = harness_start(&opts);
    ck_assert_msg(h != NULL, "a system did not start");
    return h;
}

static void s_setup(void)
{
    s_a = s_system();
    s_b = s_system();
}

static void s_teardown(void)
{
    ck_assert_int_eq(harness_stop(&s_a), 0);
    ck_assert_int_eq(harness_stop(&s_b), 0);
}

/* The worker endpoint of h's only gateway, from its registry (malloc'd). */
static char *s_gateway_endpoint(harness_t *h)
{
    redisReply *ids = redisCommand(harness_redis(h), "SMEMBERS tolk:gateways");
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq((int)ids->elements, 1);
    char *endpoint = ic_redis_str(h, "GET tolk:gw:%s", ids->element[0]->str);
    freeReplyObject(ids);
    ck_assert_ptr_nonnull(endpoint);
    return endpoint;
}

/* A session created on h and joined there, both answered as they should. */
static void s_create_and_join(harness_t *h, const char *sub)
{
    char sid[80];
    json_t *j;
    ws_client_t *spk = ic_speaker(h, 0, &s_jwt, sub, sid, &j);
    json_decref(j);
    ws_client_t *l = ic_listener(h, 0, sid, "es", &j);
    ck_assert_str_eq(ic_get(j, "sessionId"), sid);
    json_decref(j);
    ws_close(l, 1000, "done");
    ws_destroy(&l);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}

START_TEST(test_a_worker_at_another_systems_gateway_is_refused)
{
    char *endpoint = s_gateway_endpoint(s_b);
    redisReply *r =
        redisCommand(harness_redis(s_a), "SET tolk:gw:%s %s PX 60000", FOREIGN_ID, endpoint);
    freeReplyObject(r);
    r = redisCommand(harness_redis(s_a), "SADD tolk:gateways %s", FOREIGN_ID);
    freeReplyObject(r);
    free(endpoint);
    /* A's worker dials B's gateway and says hello, then every heartbeat */
    ck_assert_int_ge(ic_wait_feed_counter(s_b, "gateway", "foreign_dropped", 2, 15000), 2);
    ck_assert_int_eq(ic_feed_counter(s_b, "gateway", "workers_control", 3000), 1);
    for (int i = 0; i < SESSIONS; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "neighbour-b-%d", i);
        s_create_and_join(s_b, sub);
    }
    s_create_and_join(s_a, "neighbour-a");
    /* B's own worker was never taken for a stranger by A's gateway */
    ck_assert_int_eq(ic_feed_counter(s_a, "gateway", "foreign_dropped", 3000), 0);
    ck_assert_int_eq(ic_feed_counter(s_a, "gateway", "workers_control", 3000), 1);
    r = redisCommand(harness_redis(s_a), "DEL tolk:gw:%s", FOREIGN_ID);
    freeReplyObject(r);
}
END_TEST

/* The ids of the processes in h's monitor snapshot, with "kind:id" rows
   joined by spaces into out. */
static int s_monitor_rows(harness_t *h, char *out, size_t cap)
{
    json_t *j = ic_monitor_snapshot(h);
    json_t *procs = json_object_get(j, "processes"), *row;
    size_t i, used = 0;
    out[0] = 0;
    json_array_foreach(procs, i, row) used += (size_t)snprintf(
        out + used, used < cap ? cap - used : 0, " %s:%s", ic_get(row, "kind"), ic_get(row, "id"));
    int rows = (int)json_array_size(procs);
    json_decref(j);
    return rows;
}

START_TEST(test_a_monitor_lists_only_its_own_system)
{
    /* B's gateway feed, registered in A under an id of A's */
    redisReply *ids = redisCommand(harness_redis(s_b), "SMEMBERS tolk:feeds");
    char *endpoint = NULL;
    for (size_t i = 0; !endpoint && i < ids->elements; i++)
        if (strncmp(ids->element[i]->str, "gw", 2) == 0)
            endpoint = ic_redis_str(s_b, "GET tolk:feed:%s", ids->element[i]->str);
    freeReplyObject(ids);
    ck_assert_msg(endpoint && endpoint[0], "B's gateway feed is not registered");
    redisReply *r =
        redisCommand(harness_redis(s_a), "SET tolk:feed:foreign-feed-1 %s EX 60", endpoint);
    freeReplyObject(r);
    r = redisCommand(harness_redis(s_a), "SADD tolk:feeds foreign-feed-1");
    freeReplyObject(r);
    free(endpoint);
    char rows[4096];
    int n = s_monitor_rows(s_a, rows, sizeof rows);
    printf("itest_neighbours: A's monitor lists%s\n", rows);
    /* A's gateway, control worker and sweeper; nothing of B's */
    ck_assert_int_ge(n, 3);
    redisReply *a_ids = redisCommand(harness_redis(s_a), "SMEMBERS tolk:feeds");
    char *row = rows;
    for (int k = 0; k < n; k++) {
        row = strchr(row, ':') + 1;
        size_t len = strcspn(row, " ");
        bool ours = false;
        for (size_t i = 0; i < a_ids->elements; i++)
            ours |= strlen(a_ids->element[i]->str) == len &&
                    strncmp(a_ids->element[i]->str, row, len) == 0;
        ck_assert_msg(ours, "A's monitor lists a process A did not register: %.*s", (int)len, row);
    }
    freeReplyObject(a_ids);
    r = redisCommand(harness_redis(s_a), "SREM tolk:feeds foreign-feed-1");
    freeReplyObject(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("neighbours");
    TCase *tc = tcase_create("two systems");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_a_worker_at_another_systems_gateway_is_refused);
    tcase_add_test(tc, test_a_monitor_lists_only_its_own_system);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
