/*  itest_client.h -- a test client's side of a tolk system: the Check
    assertions every integration suite makes about messages, connections
    and Redis, written once.

    Why: itest_session, itest_control, itest_status and itest_audio each
    carried their own copies of "parse this message", "connect to gateway
    i", "create a session as a speaker", "join as a listener", "expect this
    error" and "read this Redis integer". Here they take what the copies
    differed in as arguments: the harness a suite talks to (some suites
    start one per test), and the secret, issuer and audience it signs its
    tokens with. Every helper asserts with Check, so it belongs in a test
    process (a forked Check test), and a failure names the helper's line:
    the test's name says which call it was.
*/
#ifndef TOLK_ITEST_CLIENT_H
#define TOLK_ITEST_CLIENT_H

#include "harness.h"
#include "wsclient.h"

#include <jansson.h>

/* How long a helper waits for a connection or a message. */
#define IC_WAIT_MS 5000
/* Room for a session id: what ic_speaker copies into its sid argument. */
#define IC_SID_LEN 80

/* How a suite signs speaker tokens: the system's TOLK_JWT_SECRET (HS256),
   and the iss and aud claims it demands (NULL: no such claim). */
typedef struct {
    const char *secret;
    const char *issuer;
    const char *audience;
} ic_jwt_t;

/* A message parsed; asserts there was one (text not NULL) and that it is
   JSON. Takes text (frees it); the caller json_decrefs the result. */
json_t *ic_json(char *text);

/* Run one of h's tools (args: "tolk-listen --session ..." with its
   arguments, as a shell word list) with h's config and env ("K=V ...",
   NULL: nothing more) in its environment, as an operator would; its
   standard output is the pipe returned (pclose it). Asserts it started. */
FILE *ic_tool(harness_t *h, const char *env, const char *args);

/* What `tolk-monitor --once --json` prints for system h, parsed; asserts
   it ran and printed JSON. The caller json_decrefs the result. */
json_t *ic_monitor_snapshot(harness_t *h);

/* A string field of j, "" when missing or not a string. */
const char *ic_get(json_t *j, const char *key);

/* An integer field of j; asserts it is an integer. */
long long ic_int(json_t *j, const char *key);

/* Asserts j has exactly these keys (a NULL-terminated list). */
void ic_assert_keys(json_t *j, ...) __attribute__((sentinel));

/* A WebSocket to gateway gw of h at the path printf makes of fmt;
   asserts the upgrade succeeded. */
ws_client_t *ic_open(harness_t *h, int gw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A speaker token for sub, valid for an hour; asserts minting worked.
   malloc'd. */
char *ic_mint(const ic_jwt_t *jwt, const char *sub);

/* A speaker on gateway gw creates a session (English, standard tier) with
   a token for sub; asserts sessionCreated and copies the session id into
   sid (IC_SID_LEN bytes). *created, unless NULL, gets that message for
   further checks (the caller json_decrefs it). */
ws_client_t *ic_speaker(harness_t *h, int gw, const ic_jwt_t *jwt, const char *sub, char *sid,
                        json_t **created);

/* A listener joins session sid on gateway gw in lang; asserts
   sessionJoined. *joined, unless NULL, gets that message (the caller
   json_decrefs it). */
ws_client_t *ic_listener(harness_t *h, int gw, const char *sid, const char *lang, json_t **joined);

/* Asserts j is an error with this status and code. */
void ic_check_error(json_t *j, int status, const char *code);

/* Asserts the next message on c is an error with this status and code. */
void ic_expect_error(ws_client_t *c, int status, const char *code);

/* Asserts an error with this status and code comes on c, skipping any
   other messages before it (captions, status pushes). */
void ic_await_error(ws_client_t *c, int status, const char *code);

/* Asserts a refused connect: an error with this status and code, then the
   close code 4000 + status. */
void ic_expect_refusal(ws_client_t *c, int status, const char *code);

/* A Redis command's answer (hiredis format) as an integer: an integer
   reply as it is, a non-empty string reply through atoll, anything else
   (nil, "") -1. Asserts Redis answered. */
long long ic_redis_int(harness_t *h, const char *fmt, ...);

/* A Redis command's answer as a string: a string reply, an integer in
   decimal, "" for anything else. Asserts Redis answered. malloc'd. */
char *ic_redis_str(harness_t *h, const char *fmt, ...);

/* A hash as a JSON object of strings, for whole-state comparisons: the
   answer of an HGETALL command (hiredis format). Asserts it is an array. */
json_t *ic_hgetall(harness_t *h, const char *fmt, ...);

/* Polls a Redis integer (as ic_redis_int) every 50 ms until it is want or
   timeout_ms has passed, and returns the last value read: state is written
   asynchronously, so a test waits for it instead of sleeping. */
long long ic_wait_int(harness_t *h, long long want, int timeout_ms, const char *fmt, ...);

/* Polls ready(arg) every 50 ms until it returns true or timeout_ms has
   passed, and returns its last answer: for a state that no single Redis
   integer shows (several keys at once, what a client has received). The
   caller then asserts the state itself, so a timeout fails saying what
   was there. */
bool ic_wait_for(bool (*ready)(void *arg), void *arg, int timeout_ms);

/* Reads ic_feed_counter until the sum is at least want or timeout_ms has
   passed, and returns the last sum. Feeds report once a second, so a test
   waits for the count it needs instead of sleeping past a report. */
long long ic_wait_feed_counter(harness_t *h, const char *kind, const char *name, long long want,
                               int timeout_ms);

/* Monotonic milliseconds: pacing and timeouts in tests. */
int64_t ic_now_ms(void);

/* The PCM of LibriVox recording name (pocketsphinx-testdata); asserts it
   could be read. malloc'd. */
uint8_t *ic_librivox(const char *name, size_t *len);

/* The sum of counter name over every live process of kind ("audio",
   "gateway"...), read from their status feeds (the next report of each,
   waiting up to timeout_ms). Asserts at least one process reported. */
long long ic_feed_counter(harness_t *h, const char *kind, const char *name, int timeout_ms);
#endif
