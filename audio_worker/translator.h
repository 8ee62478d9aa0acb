/*  translator.h -- Apertium through APy, asynchronously, with libcurl multi.

    The audio worker must never block on translation: requests go out on a
    libcurl multi handle whose sockets and timer the worker's own poll loop
    waits on (tolk_translator_pollitems / _timeout_ms / _run). Connections
    are kept alive and reused. Each request is retried on transient failure
    (3 attempts, 100 ms base, doubled, at most 2 s) and has a per-request
    timeout (and while APy is down, see tolk_translator_down, requests
    fail at once but for one probe at a time); its callback is called exactly once, with the
   translation or with NULL when every attempt failed (the caller then sends the source text marked
   untranslated).

    Languages on the wire are ISO 639-1 ("en", "es"); APy speaks ISO 639-3
    ("eng", "spa") and this module maps between them. A target reachable
    only through the pivot language is translated in two hops.
*/
#ifndef TOLK_TRANSLATOR_H
#define TOLK_TRANSLATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define TOLK_TRANSLATOR_MAX_TARGETS 32

typedef struct tolk_translator_t tolk_translator_t;

/* Called once per request. text is NULL when translation failed; it is
   valid only during the call. */
typedef void(tolk_translate_done_fn)(void *arg, const char *target, const char *text);

/* apy_url like "http://127.0.0.1:2737"; timeout_ms per HTTP request. */
tolk_translator_t *tolk_translator_new(const char *apy_url, int timeout_ms);
/* Calls back every request still pending, once each, with NULL (a submit
   from inside such a callback returns -1), then frees everything. Not to
   be called from inside a callback. */
void tolk_translator_destroy(tolk_translator_t **self_p);

/* Called once per discovery: ok when APy's pairs were read. */
typedef void(tolk_discover_done_fn)(void *arg, bool ok);

/* Ask APy which pairs it has (GET /listPairs) without blocking, retried
   like a translation; done(arg, ok) is called once, from
   tolk_translator_run (or from _destroy with false). pivot (ISO 639-1, may
   be NULL or "") is the language a two-hop route goes through. On success
   the routes are what tolk_translator_submit and _targets use from then
   on; on failure the previous ones stay. Returns 0, or -1 when a discovery
   is already pending (or out of memory). */
int tolk_translator_discover(tolk_translator_t *self, const char *pivot,
                             tolk_discover_done_fn *done, void *arg);

/* Every target reachable from source (ISO 639-1) directly or through the
   pivot, by the last discovery: a comma separated list of ISO 639-1 codes
   in out, source itself first. Returns the number of targets besides the
   source, or -1 when out_cap is too small. */
int tolk_translator_targets(tolk_translator_t *self, const char *source, char *out, size_t out_cap);

/* Is target reachable from source (after discover)? */
bool tolk_translator_supports(tolk_translator_t *self, const char *source, const char *target);

/* Start translating text (UTF-8) from source to target. Never blocks.
   done(arg, target, translation-or-NULL) is called later from
   tolk_translator_run (or at once, with NULL, when the pair is unknown).
   Returns 0, or -1 when the request could not even be queued (text over
   8 KB, too many pending, out of memory, bad arguments). After 0 the
   callback runs exactly once (from _run, at once, or from _destroy); after
   -1 never. The same source and target, or blank text, call back at once
   with the text itself. */
int tolk_translator_submit(tolk_translator_t *self, const char *source, const char *target,
                           const char *text, tolk_translate_done_fn *done, void *arg);

/* Event loop integration: the fds libcurl wants watched, as zmq poll
   items (socket = NULL, fd set), at most max. Returns how many. */
int tolk_translator_pollitems(tolk_translator_t *self, zmq_pollitem_t *items, int max);

/* How long the loop may sleep before tolk_translator_run must be called
   (libcurl's timer, retry back-offs); -1 when nothing is pending. */
long tolk_translator_timeout_ms(tolk_translator_t *self);

/* Act on what poll found (items as filled by _pollitems, revents set by
   zmq_poll) and on expired timers; completes requests through their
   callbacks. Safe to call with n == 0. */
void tolk_translator_run(tolk_translator_t *self, const zmq_pollitem_t *items, int n);

/* True while APy is taken for down: after 3 translations in a row
   failed, each submit fails at once (its callback gets NULL) except one
   at a time, the probe, which goes to APy; the first probe that succeeds
   ends it. A frozen APy then costs each caption nothing instead of three
   timeouts. */
bool tolk_translator_down(tolk_translator_t *self);

/* Requests in flight or waiting for a retry. */
int tolk_translator_pending(tolk_translator_t *self);

/* The translation in a /translate answer (len bytes, not NUL terminated),
   cleaned of Apertium's unknown-word marks, or NULL when the answer is not
   {"responseData":{"translatedText":"..."},"responseStatus":200}. input
   is the text that was sent (a mark that was in it is kept). malloc'd.
   Public so that tests/fuzz/fuzz_apy.c can feed it any bytes. */
char *tolk_translator_parse_answer(const char *body, size_t len, const char *input);

/* How many usable language pairs a /listPairs answer names, or -1 when it
   is not what APy sends. Public for tests/fuzz/fuzz_apy.c. */
int tolk_translator_parse_pairs(const char *body, size_t len);

/* Counters for the status feed. */
typedef struct {
    long requests, retries, failures, completed;
    long latency_ms_sum; /* over completed requests, for a mean */
    long shed;           /* failed at once because APy is down (see tolk_translator_down) */
} tolk_translator_stats_t;
void tolk_translator_stats(tolk_translator_t *self, tolk_translator_stats_t *out);

#endif
