/*  translator.c -- Apertium through APy, asynchronously, with libcurl multi.

    Why it looks like this: the audio worker is one poll loop that must never
    wait on the network, so every translation is a transfer on one libcurl
    multi handle on that loop (common/curl_loop.c: the sockets libcurl wants
    watched become poll items, its timer a deadline). Connections to APy
    stay open in the multi's connection cache and are reused by the next
    transfer.

    A request lives in a list until its callback has been called, in one of
    two states: waiting (for its first attempt, the next hop, or a retry
    back-off; due_ms says when) or running (an easy handle is on the multi).
    All libcurl calls happen in tolk_translator_run, never in submit, so a
    callback may submit again without re-entering libcurl.

    Requests are POSTed (form-encoded) to /translate rather than sent as a
    GET query: the text then stays out of APy's access log (which logs every
    URL in full) and out of URL length limits. markUnknown=no drops
    Apertium's '*' marks on unknown words, format=txt keeps '<' and '&' in
    speech as text rather than markup. APy leaves '#' and '@' marks and odd
    spacing (" Dijo ... .  Soy"), which s_clean tidies for captions.

    Callback contract: once submit has returned 0, the callback is called
    exactly once: from tolk_translator_run, at once from submit (unknown
    pair: NULL; same language or empty text: the text itself), or from
    tolk_translator_destroy (NULL) for requests still pending. When submit
    returns -1 it is never called.
*/
#include "translator.h"
#include "curl_loop.h"
#include "log.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_TEXT        8192             /* bytes one submit may translate */
#define S_MAX_HOP_TEXT    (4 * S_MAX_TEXT) /* bytes the second hop may send on */
#define S_MAX_BODY        65536            /* bytes of a /translate answer kept */
#define S_MAX_LIST_BODY   262144           /* bytes of a /listPairs answer kept */
#define S_MAX_PENDING     4096             /* requests in flight or waiting */
#define S_MAX_PAIRS       512              /* pairs remembered from /listPairs */
#define S_ATTEMPTS        3                /* attempts per hop, the first included */
#define S_BACKOFF_BASE_MS 100              /* wait after the first failed attempt */
#define S_BACKOFF_MAX_MS  2000             /* longest wait between attempts */
#define S_MAX_CONNS       8                /* connections to APy at once */
#define S_POOL_MAX        8                /* idle easy handles kept for reuse */
#define S_IDLE_POLL_MS    1000             /* poll timeout when busy but libcurl set no timer */
#define S_RUN_ROUNDS      4                /* start/timeout rounds in one run call */
#define S_CODE_MAX        16               /* bytes of a language code as APy names it */
#define S_WARN_EVERY_MS   1000             /* at most one failure warning per this */
#define S_TRIP_FAILURES   3                /* translations failed in a row that mark APy down */

/* ISO 639-1 (wire) and ISO 639-3 (APy) names of the languages Apertium
   offers that have a 639-1 code; the order is the order discover lists
   targets in. A language without a 639-1 code (Asturian, ...) cannot be on
   the wire, so it is left out. */
static const struct {
    const char *iso1; /* wire code */
    const char *iso3; /* APy's code */
} s_langs[] = {
    {"en", "eng"}, {"es", "spa"}, {"ca", "cat"}, {"gl", "glg"}, {"eo", "epo"}, {"fr", "fra"},
    {"pt", "por"}, {"it", "ita"}, {"ro", "ron"}, {"oc", "oci"}, {"eu", "eus"}, {"an", "arg"},
    {"nb", "nob"}, {"nn", "nno"}, {"da", "dan"}, {"sv", "swe"}, {"is", "isl"}, {"af", "afr"},
    {"nl", "nld"}, {"de", "deu"}, {"br", "bre"}, {"cy", "cym"}, {"ga", "gle"}, {"mt", "mlt"},
    {"ar", "ara"}, {"hi", "hin"}, {"ur", "urd"}, {"kk", "kaz"}, {"tt", "tat"}, {"ky", "kir"},
    {"tr", "tur"}, {"ru", "rus"}, {"uk", "ukr"}, {"be", "bel"}, {"pl", "pol"}, {"cs", "ces"},
    {"sk", "slk"}, {"sl", "slv"}, {"hr", "hrv"}, {"sr", "srp"}, {"bs", "bos"}, {"mk", "mkd"},
    {"bg", "bul"}, {"el", "ell"}, {"fi", "fin"}, {"se", "sme"}, {"et", "est"}, {"id", "ind"},
    {"ms", "msa"}, {"sc", "srd"}, {"co", "cos"},
};
#define S_NLANGS (sizeof s_langs / sizeof s_langs[0])

/* One language pair APy offers, between languages with wire codes. */
typedef struct {
    char from[4];              /* source, ISO 639-1 */
    char to[4];                /* target, ISO 639-1 */
    char apy_from[S_CODE_MAX]; /* source as APy listed it, sent back in langpair */
    char apy_to[S_CODE_MAX];   /* target as APy listed it */
} s_pair_t;

/* A response body being received, bounded so APy cannot fill our memory. */
typedef struct {
    char *data; /* NUL-terminated bytes received so far (malloc'd) */
    size_t len; /* bytes in data */
    size_t max; /* most bytes accepted; more fails the transfer */
    bool over;  /* the body went past max: a permanent failure */
} s_buf_t;

typedef struct s_req_t s_req_t;

/* One submitted translation, pending until its callback has run. */
struct s_req_t {
    s_req_t *prev, *next;                 /* the translator's list of pending requests */
    char target[4];                       /* wire code handed back to done */
    char langpair[2][2 * S_CODE_MAX + 4]; /* "eng%7Cspa" for each hop, form-encoded */
    int nhops;                            /* 1 direct, 2 through the pivot */
    int hop;                              /* hop being worked on (0-based) */
    char *text;                           /* input of the current hop (malloc'd) */
    int attempt;                          /* attempts started at the current hop */
    int64_t due_ms;                       /* waiting: when the next attempt may start */
    CURL *easy;                           /* running: the transfer; NULL while waiting */
    char *post;                           /* running: the form body libcurl is sending */
    s_buf_t body;                         /* running: the answer so far */
    int64_t submitted_ms;                 /* for the latency figures */
    char why[64];                         /* what went wrong last, for the failure warning */
    tolk_translate_done_fn *done;         /* the caller's callback */
    tolk_discover_done_fn *discovered;    /* instead of done: a GET /listPairs (no hops) */
    bool probe;                           /* sent while APy was down, to see if it is back */
    bool apy_failed; /* its last attempt failed in a way that says APy is unwell (timeout,
                        refused, 5xx), not that this request was bad (4xx, too big) */
    void *arg;       /* and its argument */
};

/* The translator: one libcurl multi, the requests on it, the routes. */
struct tolk_translator_t {
    char *base_url;             /* APy's base URL without a trailing slash */
    char *translate_url;        /* base_url + "/translate", built once */
    int timeout_ms;             /* CURLOPT_TIMEOUT_MS of every attempt */
    tolk_curl_loop_t *loop;     /* the multi of every transfer, on the worker's poll loop */
    CURLM *multi;               /* loop's multi handle; owns the connection cache */
    struct curl_slist *headers; /* "Expect:" so a long POST does not wait for 100 */
    CURL *pool[S_POOL_MAX];     /* idle easy handles, reused to skip set-up */
    int npool;                  /* entries used in pool */
    s_req_t *head, *tail;       /* pending requests, oldest first */
    int npending;               /* requests in the list */
    s_pair_t *pairs;            /* what the last discover found */
    int npairs;                 /* entries in pairs */
    char pivot[4];              /* pivot language for two hops; "" for none */
    char *pairs_url;            /* base_url + "/listPairs", built once */
    bool discovering;           /* a GET /listPairs is pending */
    bool closing;               /* destroy is calling back: refuse new submits */
    /* APy down (a circuit breaker): after S_TRIP_FAILURES translations in a
       row failed, a frozen APy would hold every caption for its timeouts
       and retries; instead one request at a time goes through as a probe
       and the others fail at once (their captions go out untranslated),
       until a probe succeeds */
    int fail_streak;               /* translations failed in a row */
    bool down;                     /* the breaker is open */
    bool probing;                  /* a probe is pending */
    int64_t warned_ms;             /* last failure warning: an outage logs once a second */
    long unwarned;                 /* failures since then not logged */
    tolk_translator_stats_t stats; /* counters for the status feed */
};

/* Monotonic clock in ms, for back-offs, timers and latency: curl_loop's,
   whose deadlines the timeout is computed against. */
static int64_t s_now_ms(void)
{
    return tolk_curl_loop_now_ms();
}

/* The ISO 639-3 code of a wire code, or NULL when we have none. */
static const char *s_iso3_of(const char *iso1)
{
    for (size_t i = 0; i < S_NLANGS; i++)
        if (strcmp(s_langs[i].iso1, iso1) == 0)
            return s_langs[i].iso3;
    return NULL;
}

/* The wire code of a code as APy lists it (639-3, or 639-1 from an older
   APy), or NULL when the language has no wire code. */
static const char *s_iso1_of(const char *apy)
{
    for (size_t i = 0; i < S_NLANGS; i++)
        if (strcmp(s_langs[i].iso3, apy) == 0 || strcmp(s_langs[i].iso1, apy) == 0)
            return s_langs[i].iso1;
    return NULL;
}

/* True for a code APy could list for a plain language: 2 or 3 lowercase
   letters. Variants ("cat_valencia", "por_BR") are not plain. */
static bool s_plain_code(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return false;
    return true;
}

/* libcurl write callback: append to a bounded s_buf_t; going past its
   bound fails the transfer (CURLE_WRITE_ERROR) and marks it over. */
static size_t s_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    s_buf_t *buf = userp;
    size_t n = size * nmemb;
    if (n > buf->max - buf->len) {
        buf->over = true;
        return 0;
    }
    char *grown = realloc(buf->data, buf->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + buf->len, data, n);
    buf->data = grown;
    buf->len += n;
    buf->data[buf->len] = 0;
    return n;
}

/* Forget a body (keeping its bound). */
static void s_buf_reset(s_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->over = false;
}

/* Wait before attempt number attempt + 1 after attempt (1-based) failed:
   100 ms, 200 ms, 400 ms ... at most 2 s. */
static long s_backoff_ms(int attempt)
{
    long ms = S_BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && ms < S_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < S_BACKOFF_MAX_MS ? ms : S_BACKOFF_MAX_MS;
}

/* Is a failed attempt worth another: connection refused or reset, timeout,
   no answer, HTTP 5xx or 429. Our own refusals (body too big, malformed
   URL, out of memory) and other 4xx would fail the same way again. */
static bool s_transient(CURLcode res, long status, bool over)
{
    if (res == CURLE_OK)
        return status >= 500 || status == 429;
    if (over)
        return false;
    switch (res) {
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_OUT_OF_MEMORY:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_WRITE_ERROR:
            return false;
        default:
            return true;
    }
}

/* Is a byte one after which an Apertium mark would start a word? */
static bool s_word_break(const unsigned char *s, size_t i)
{
    unsigned char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == '[' || c == '"' ||
        c == '\'' || c == '-' || c == '/')
        return true;
    /* the second byte of U+00A1 and U+00BF, Spanish opening marks */
    return i > 0 && s[i - 1] == 0xC2 && (c == 0xA1 || c == 0xBF);
}

/* A caption-ready copy of APy's translatedText: drops the '*', '#' and '@'
   marks Apertium puts before unknown or ungenerated words (a mark is kept
   when the same character was in the input, so "@name" survives), collapses
   whitespace runs to one space and trims both ends. NULL when out of
   memory. */
static char *s_clean(const char *raw, const char *input)
{
    size_t n = strlen(raw);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    const unsigned char *s = (const unsigned char *)raw;
    bool keep_star = strchr(input, '*') != NULL;
    bool keep_hash = strchr(input, '#') != NULL;
    bool keep_at = strchr(input, '@') != NULL;
    size_t o = 0;
    bool space = false, word_start = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = o > 0;
            word_start = true;
            continue;
        }
        bool mark = (c == '*' && !keep_star) || (c == '#' && !keep_hash) || (c == '@' && !keep_at);
        if (mark && word_start && i + 1 < n && !s_word_break(s, i + 1)) {
            word_start = false;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        out[o++] = (char)c;
        word_start = s_word_break(s, i);
    }
    out[o] = 0;
    return out;
}

/* See translator.h: APy's answer is outside data to the audio worker. */
char *tolk_translator_parse_answer(const char *body, size_t len, const char *input)
{
    if (!body)
        return NULL;
    json_error_t err;
    json_t *root = json_loadb(body, len, 0, &err);
    if (!root)
        return NULL;
    char *text = NULL;
    json_t *status = json_object_get(root, "responseStatus");
    json_t *data = json_object_get(root, "responseData");
    json_t *tr = json_is_object(data) ? json_object_get(data, "translatedText") : NULL;
    if ((!status || (json_is_integer(status) && json_integer_value(status) == 200)) &&
        json_is_string(tr))
        text = s_clean(json_string_value(tr), input);
    json_decref(root);
    return text;
}

/* ---------------------------------------------------------------------
   libcurl's view of the loop
*/

static int s_parse_pairs(const char *body, size_t len, s_pair_t **out);

/* ---------------------------------------------------------------------
   Requests
*/

/* Put a new request at the end of the pending list, due now. */
static void s_enqueue(tolk_translator_t *self, s_req_t *req, void *arg)
{
    req->arg = arg;
    req->submitted_ms = req->due_ms = s_now_ms();
    req->prev = self->tail;
    if (self->tail)
        self->tail->next = req;
    else
        self->head = req;
    self->tail = req;
    self->npending++;
}

/* Unlink a request from the pending list. */
static void s_unlink(tolk_translator_t *self, s_req_t *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        self->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        self->tail = req->prev;
    req->prev = req->next = NULL;
    self->npending--;
}

/* Take a running request's easy handle off the multi and keep it for the
   next transfer (or free it when the pool is full). */
static void s_release_easy(tolk_translator_t *self, s_req_t *req)
{
    if (!req->easy)
        return;
    curl_multi_remove_handle(self->multi, req->easy);
    if (self->npool < S_POOL_MAX)
        self->pool[self->npool++] = req->easy;
    else
        curl_easy_cleanup(req->easy);
    req->easy = NULL;
    free(req->post);
    req->post = NULL;
    s_buf_reset(&req->body);
}

/* Free a request that is off the list and off the multi. */
static void s_req_free(s_req_t *req)
{
    free(req->text);
    free(req->post);
    s_buf_reset(&req->body);
    free(req);
}

/* Finish a request: off the list, counted, its callback called once with
   text (NULL: failed), freed. */
/* Call a request's one callback: a translation's with text (NULL: failed),
   a discovery's with whether it worked. */
static void s_callback(tolk_translator_t *self, s_req_t *req, const char *text)
{
    if (req->discovered) {
        self->discovering = false;
        req->discovered(req->arg, text != NULL);
    } else
        req->done(req->arg, req->target, text);
}

static void s_finish(tolk_translator_t *self, s_req_t *req, const char *text)
{
    s_release_easy(self, req);
    s_unlink(self, req);
    if (req->probe)
        self->probing = false;
    if (!req->discovered) {
        if (text)
            self->fail_streak = 0;
        else if (req->apy_failed)
            self->fail_streak++;
        if (text && self->down) {
            self->down = false;
            tolk_info("translate", NULL, "APy answers again: translating");
        } else if (!text && !self->down && self->fail_streak >= S_TRIP_FAILURES) {
            self->down = true;
            tolk_warn("translate", NULL,
                      "%d translations failed in a row: APy is down; captions go out "
                      "untranslated, one request at a time checks whether it is back",
                      self->fail_streak);
        }
    }
    if (req->discovered) {
        if (!text)
            tolk_warn("discover", NULL, "GET /listPairs failed after %d attempt(s): %s",
                      req->attempt, req->why[0] ? req->why : "?");
    } else if (text) {
        self->stats.completed++;
        self->stats.latency_ms_sum += (long)(s_now_ms() - req->submitted_ms);
    } else {
        self->stats.failures++;
        int64_t now = s_now_ms();
        if (now - self->warned_ms >= S_WARN_EVERY_MS) {
            tolk_warn("translate", NULL,
                      "translation to %s failed after %d attempt(s) at hop %d/%d: %s"
                      " (%ld more failures since the last warning)",
                      req->target, req->attempt, req->hop + 1, req->nhops,
                      req->why[0] ? req->why : "?", self->unwarned);
            self->warned_ms = now;
            self->unwarned = 0;
        } else
            self->unwarned++;
    }
    s_callback(self, req, text);
    s_req_free(req);
}

/* Start the next attempt of a waiting request: an easy handle POSTing the
   current hop to APy, added to the multi. Returns 0, or -1 after finishing
   the request as failed when not even that was possible. */
static int s_start(tolk_translator_t *self, s_req_t *req)
{
    req->attempt++;
    CURL *easy = self->npool > 0 ? self->pool[--self->npool] : curl_easy_init();
    if (!easy)
        goto fail;
    curl_easy_reset(easy);
    req->easy = easy;
    CURLcode rc = CURLE_OK;
    if (req->discovered) {
        req->body.max = S_MAX_LIST_BODY;
        rc |= curl_easy_setopt(easy, CURLOPT_URL, self->pairs_url);
        rc |= curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        char *q = curl_easy_escape(easy, req->text, (int)strlen(req->text));
        if (!q)
            goto fail;
        int n = asprintf(&req->post, "langpair=%s&markUnknown=no&format=txt&q=%s",
                         req->langpair[req->hop], q);
        curl_free(q);
        if (n < 0) {
            req->post = NULL;
            goto fail;
        }
        req->body.max = S_MAX_BODY;
        rc |= curl_easy_setopt(easy, CURLOPT_URL, self->translate_url);
        rc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->post);
        rc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)n);
    }
    rc |= curl_easy_setopt(easy, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)self->timeout_ms);
    rc |= curl_easy_setopt(easy, CURLOPT_HTTPHEADER, self->headers);
    rc |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, s_write_cb);
    rc |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, &req->body);
    rc |= curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
    if (rc != CURLE_OK)
        goto fail;
    if (curl_multi_add_handle(self->multi, easy) != CURLM_OK)
        goto fail;
    return 0;

fail:
    if (req->easy) {
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    s_finish(self, req, NULL);
    return -1;
}

/* An attempt ended: move to the next hop, finish, or schedule a retry. */
static void s_attempt_done(tolk_translator_t *self, s_req_t *req, CURLcode res, long status)
{
    bool over = req->body.over;
    if (over)
        snprintf(req->why, sizeof req->why, "answer over %d bytes", S_MAX_BODY);
    else if (res != CURLE_OK)
        snprintf(req->why, sizeof req->why, "%s", curl_easy_strerror(res));
    else if (status != 200)
        snprintf(req->why, sizeof req->why, "HTTP %ld", status);
    else
        snprintf(req->why, sizeof req->why, "unexpected answer");
    if (res == CURLE_OK && status == 200 && req->discovered) {
        s_pair_t *pairs = NULL;
        int n = req->body.data ? s_parse_pairs(req->body.data, req->body.len, &pairs) : -1;
        s_release_easy(self, req);
        if (n < 0) {
            snprintf(req->why, sizeof req->why, "the answer is not a pair list");
            s_finish(self, req, NULL);
            return;
        }
        free(self->pairs);
        self->pairs = pairs;
        self->npairs = n;
        s_finish(self, req, "");
        return;
    }
    if (res == CURLE_OK && status == 200) {
        char *text = tolk_translator_parse_answer(req->body.data, req->body.len, req->text);
        s_release_easy(self, req);
        if (!text || (req->hop + 1 < req->nhops && strlen(text) > S_MAX_HOP_TEXT)) {
            free(text);
            s_finish(self, req, NULL);
            return;
        }
        if (req->hop + 1 < req->nhops) {
            free(req->text);
            req->text = text;
            req->hop++;
            req->attempt = 0;
            req->due_ms = s_now_ms();
            return;
        }
        s_finish(self, req, text);
        free(text);
        return;
    }
    s_release_easy(self, req);
    req->apy_failed = s_transient(res, status, over);
    if (req->attempt < S_ATTEMPTS && req->apy_failed) {
        self->stats.retries++;
        req->due_ms = s_now_ms() + s_backoff_ms(req->attempt);
        return;
    }
    s_finish(self, req, NULL);
}

/* curl_loop's report of a transfer that has ended. */
static void s_transfer_done(void *arg, CURL *easy, CURLcode res)
{
    tolk_translator_t *self = arg;
    s_req_t *req = NULL;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (req)
        s_attempt_done(self, req, res, status);
}

/* Start every waiting request that is due. Returns how many started. */
static int s_start_due(tolk_translator_t *self)
{
    int64_t now = s_now_ms();
    int started = 0;
    s_req_t *req = self->head;
    while (req) {
        s_req_t *next = req->next; /* s_start may finish (and free) req */
        if (!req->easy && req->due_ms <= now) {
            s_start(self, req);
            started++;
        }
        req = next;
    }
    return started;
}

/* ---------------------------------------------------------------------
   Public API
*/

tolk_translator_t *tolk_translator_new(const char *apy_url, int timeout_ms)
{
    if (!apy_url || !*apy_url || timeout_ms <= 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    tolk_translator_t *self = calloc(1, sizeof *self);
    if (!self) {
        curl_global_cleanup();
        return NULL;
    }
    self->warned_ms = INT64_MIN / 2;
    self->timeout_ms = timeout_ms;
    self->base_url = strdup(apy_url);
    if (!self->base_url)
        goto fail;
    size_t n = strlen(self->base_url);
    while (n > 0 && self->base_url[n - 1] == '/')
        self->base_url[--n] = 0;
    if (asprintf(&self->translate_url, "%s/translate", self->base_url) < 0) {
        self->translate_url = NULL;
        goto fail;
    }
    if (asprintf(&self->pairs_url, "%s/listPairs", self->base_url) < 0) {
        self->pairs_url = NULL;
        goto fail;
    }
    self->headers = curl_slist_append(NULL, "Expect:");
    self->loop = tolk_curl_loop_new(s_transfer_done, self);
    self->multi = tolk_curl_loop_multi(self->loop);
    if (!self->headers || !self->multi)
        goto fail;
    CURLMcode rc = curl_multi_setopt(self->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)S_MAX_CONNS);
    rc |= curl_multi_setopt(self->multi, CURLMOPT_MAXCONNECTS, (long)S_MAX_CONNS);
    if (rc != CURLM_OK)
        goto fail;
    return self;

fail:
    tolk_translator_destroy(&self);
    return NULL;
}

void tolk_translator_destroy(tolk_translator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_translator_t *self = *self_p;
    *self_p = NULL;
    /* Every pending request gets its one callback, with NULL. */
    self->closing = true;
    while (self->head) {
        s_req_t *req = self->head;
        s_release_easy(self, req);
        s_unlink(self, req);
        s_callback(self, req, NULL);
        s_req_free(req);
    }
    for (int i = 0; i < self->npool; i++)
        curl_easy_cleanup(self->pool[i]);
    tolk_curl_loop_destroy(&self->loop);
    curl_slist_free_all(self->headers);
    free(self->pairs);
    free(self->translate_url);
    free(self->pairs_url);
    free(self->base_url);
    free(self);
    curl_global_cleanup();
}

/* Parse a /listPairs answer into a new pair table (plain languages with
   wire codes only, no duplicates). Returns the count, or -1 when the answer
   is not what APy sends. */
static int s_parse_pairs(const char *body, size_t len, s_pair_t **out)
{
    json_error_t err;
    json_t *root = json_loadb(body, len, 0, &err);
    json_t *list = root ? json_object_get(root, "responseData") : NULL;
    if (!json_is_array(list)) {
        json_decref(root);
        return -1;
    }
    s_pair_t *pairs = calloc(S_MAX_PAIRS, sizeof *pairs);
    if (!pairs) {
        json_decref(root);
        return -1;
    }
    int n = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *from = json_string_value(json_object_get(item, "sourceLanguage"));
        const char *to = json_string_value(json_object_get(item, "targetLanguage"));
        if (!from || !to || !s_plain_code(from) || !s_plain_code(to))
            continue;
        const char *from1 = s_iso1_of(from), *to1 = s_iso1_of(to);
        if (!from1 || !to1 || strcmp(from1, to1) == 0)
            continue;
        bool dup = false;
        for (int k = 0; k < n && !dup; k++)
            dup = strcmp(pairs[k].from, from1) == 0 && strcmp(pairs[k].to, to1) == 0;
        if (dup || n == S_MAX_PAIRS)
            continue;
        snprintf(pairs[n].from, sizeof pairs[n].from, "%s", from1);
        snprintf(pairs[n].to, sizeof pairs[n].to, "%s", to1);
        snprintf(pairs[n].apy_from, sizeof pairs[n].apy_from, "%s", from);
        snprintf(pairs[n].apy_to, sizeof pairs[n].apy_to, "%s", to);
        n++;
    }
    json_decref(root);
    *out = pairs;
    return n;
}

int tolk_translator_parse_pairs(const char *body, size_t len)
{
    s_pair_t *pairs = NULL;
    int n = s_parse_pairs(body, len, &pairs);
    free(pairs);
    return n;
}

/* The pair from -> to (wire codes), or NULL when APy has none. */
static const s_pair_t *s_pair(tolk_translator_t *self, const char *from, const char *to)
{
    for (int i = 0; i < self->npairs; i++)
        if (strcmp(self->pairs[i].from, from) == 0 && strcmp(self->pairs[i].to, to) == 0)
            return &self->pairs[i];
    return NULL;
}

/* Route source -> target: fills up to two hops (may be NULL) and returns
   how many (1 direct, 2 through the pivot), or 0 when unreachable. */
static int s_route(tolk_translator_t *self, const char *source, const char *target,
                   const s_pair_t *hops[2])
{
    const s_pair_t *direct = s_pair(self, source, target);
    if (direct) {
        if (hops)
            hops[0] = direct;
        return 1;
    }
    if (!self->pivot[0] || strcmp(self->pivot, source) == 0 || strcmp(self->pivot, target) == 0)
        return 0;
    const s_pair_t *a = s_pair(self, source, self->pivot);
    const s_pair_t *b = a ? s_pair(self, self->pivot, target) : NULL;
    if (!b)
        return 0;
    if (hops) {
        hops[0] = a;
        hops[1] = b;
    }
    return 2;
}

int tolk_translator_discover(tolk_translator_t *self, const char *pivot,
                             tolk_discover_done_fn *done, void *arg)
{
    if (!self || !done || self->closing || self->discovering || self->npending >= S_MAX_PENDING)
        return -1;
    s_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return -1;
    self->pivot[0] = 0;
    if (pivot && strlen(pivot) < sizeof self->pivot && s_iso3_of(pivot))
        snprintf(self->pivot, sizeof self->pivot, "%s", pivot);
    req->discovered = done;
    s_enqueue(self, req, arg);
    self->discovering = true;
    return 0;
}

int tolk_translator_targets(tolk_translator_t *self, const char *source, char *out, size_t out_cap)
{
    if (!self || !source || !out || out_cap == 0)
        return -1;
    out[0] = 0;
    /* source, then direct targets, then those through the pivot, each in
       s_langs order so the list is stable */
    char list[4 * (S_NLANGS + 1)] = "";
    int count = 0;
    if (s_plain_code(source) && strlen(source) == 2)
        strcat(list, source);
    for (int pass = 1; pass <= 2 && list[0]; pass++)
        for (size_t i = 0; i < S_NLANGS; i++) {
            const char *t = s_langs[i].iso1;
            if (strcmp(t, source) != 0 && s_route(self, source, t, NULL) == pass) {
                strcat(list, ",");
                strcat(list, t);
                count++;
            }
        }
    if (strlen(list) >= out_cap)
        return -1;
    memcpy(out, list, strlen(list) + 1);
    return count;
}

bool tolk_translator_supports(tolk_translator_t *self, const char *source, const char *target)
{
    if (!self || !source || !target)
        return false;
    if (strcmp(source, target) == 0)
        return s_iso3_of(source) != NULL;
    return s_route(self, source, target, NULL) > 0;
}

int tolk_translator_submit(tolk_translator_t *self, const char *source, const char *target,
                           const char *text, tolk_translate_done_fn *done, void *arg)
{
    if (!self || !source || !target || !text || !done || self->closing)
        return -1;
    if (strnlen(text, S_MAX_TEXT + 1) > S_MAX_TEXT || self->npending >= S_MAX_PENDING)
        return -1;
    self->stats.requests++;
    const s_pair_t *hops[2] = {NULL, NULL};
    int nhops = strlen(target) < 4 ? s_route(self, source, target, hops) : 0;
    /* nothing to translate: the text is its own translation */
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if ((strcmp(source, target) == 0 && s_iso3_of(source)) || (nhops > 0 && !*p)) {
        self->stats.completed++;
        done(arg, target, text);
        return 0;
    }
    if (nhops == 0) {
        self->stats.failures++;
        done(arg, target, NULL);
        return 0;
    }
    if (self->down && self->probing) {
        self->stats.shed++; /* APy is down and a probe is out: untranslated at once */
        done(arg, target, NULL);
        return 0;
    }
    s_req_t *req = calloc(1, sizeof *req);
    if (!req || !(req->text = strdup(text))) {
        free(req);
        self->stats.requests--;
        return -1;
    }
    snprintf(req->target, sizeof req->target, "%s", target);
    for (int h = 0; h < nhops; h++)
        snprintf(req->langpair[h], sizeof req->langpair[h], "%s%%7C%s", hops[h]->apy_from,
                 hops[h]->apy_to);
    req->nhops = nhops;
    req->probe = self->down;
    self->probing |= self->down;
    req->done = done;
    s_enqueue(self, req, arg);
    return 0;
}

int tolk_translator_pollitems(tolk_translator_t *self, zmq_pollitem_t *items, int max)
{
    return self ? tolk_curl_loop_pollitems(self->loop, items, max) : 0;
}

bool tolk_translator_down(tolk_translator_t *self)
{
    return self && self->down;
}

long tolk_translator_timeout_ms(tolk_translator_t *self)
{
    if (!self || self->npending == 0)
        return -1; /* an idle multi needs no timer: cached connections wait */
    int64_t now = s_now_ms();
    int64_t due = tolk_curl_loop_due_ms(self->loop);
    for (s_req_t *req = self->head; req; req = req->next)
        if (!req->easy && (due < 0 || req->due_ms < due))
            due = req->due_ms;
    if (due < 0)
        return S_IDLE_POLL_MS;
    return due <= now ? 0 : (long)(due - now);
}

void tolk_translator_run(tolk_translator_t *self, const zmq_pollitem_t *items, int n)
{
    if (!self)
        return;
    tolk_curl_loop_sockets(self->loop, items, n);
    /* Start what is due, then let libcurl act on its timer (a new transfer
       asks for it at once); a few rounds so a retry or next hop started by
       a completion does not wait for another poll. */
    for (int round = 0; round < S_RUN_ROUNDS; round++) {
        int started = s_start_due(self);
        bool timer = tolk_curl_loop_timer(self->loop);
        if (!started && !timer)
            break;
    }
}

int tolk_translator_pending(tolk_translator_t *self)
{
    return self ? self->npending : 0;
}

void tolk_translator_stats(tolk_translator_t *self, tolk_translator_stats_t *out)
{
    if (!out)
        return;
    if (!self)
        memset(out, 0, sizeof *out);
    else
        *out = self->stats;
}
