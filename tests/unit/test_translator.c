/*  test_translator.c -- the APy translator client (audio_worker/translator.c)
    against a real apertium-apy and against small fake servers.

    The suite starts its own apertium-apy on a free loopback port (in the
    parent, through an unchecked fixture, so it is stopped even when a test
    fails) and checks what the audio worker relies on: discovery of direct
    and pivot targets, translations equal to what APy itself answers, two
    hops through the pivot, many requests at once, and the cleanup of
    Apertium's marks. Failures are provoked with a fake APy forked per test:
    it answers /listPairs (so routes exist) and then, depending on its mode,
    is killed (connection refused), never answers, answers 400, 503 or too
    much. Every test drives the translator through the same small zmq_poll
    loop the worker uses, and checks that no call into it blocks.
*/
#include "../../audio_worker/translator.h" /* the Makefile has no -Iaudio_worker */

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_ITEMS   64 /* poll items the test loop offers the translator */
#define S_RUN_MAX_MS  80 /* a run call taking longer blocked (back-off is 100 ms) */
#define S_APY_READY_S 20 /* how long the fixture waits for APy to answer */
#define S_CONCURRENT  50 /* requests in flight at once in test_concurrent */

/* How the suite starts APy: apertium-apy's own main, with tornado's bind
   pinned to 127.0.0.1 (apertium-apy has no address option and would listen
   on every interface), exactly as tools/tolk-stack runs it. */
static const char *s_apy_python =
    "import sys, tornado.tcpserver as t; b = t.TCPServer.bind; "
    "t.TCPServer.bind = lambda s, port, address=None, *a, **k: b(s, port, '127.0.0.1', *a, **k); "
    "sys.argv[0] = 'apertium-apy'; from apertium_apy.apy import main; main()";

/* Port of the suite's APy, 0 when it could not be started. */
static int s_apy_port;
/* Its process id, also its process group: teardown stops exactly those. */
static pid_t s_apy_pid;

/* Monotonic clock in ms. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms milliseconds. */
static void s_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A listening TCP socket on a random free loopback port in 20000-29999
   (below the ephemeral range, so outgoing connections cannot hold it), or
   -1; *port receives the port. backlog 64. */
static int s_listen(int *port)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint32_t)getpid() * 2654435761u + (uint32_t)attempt;
        int p = 20000 + (int)(r % 10000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)p),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 64) == 0) {
            *port = p;
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* A free loopback port for a server to bind (checked, then released). */
static int s_free_port(void)
{
    int port = 0;
    int fd = s_listen(&port);
    if (fd < 0)
        return 0;
    close(fd);
    return port;
}

/* ---------------------------------------------------------------------
   Blocking HTTP for the test's own look at APy
*/

/* A growing response body. */
typedef struct {
    char *data; /* NUL-terminated */
    size_t len; /* bytes in data */
} s_body_t;

/* libcurl write callback into an s_body_t. */
static size_t s_body_write(char *data, size_t size, size_t nmemb, void *userp)
{
    s_body_t *body = userp;
    size_t n = size * nmemb;
    char *grown = realloc(body->data, body->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + body->len, data, n);
    body->data = grown;
    body->len += n;
    body->data[body->len] = 0;
    return n;
}

/* GET url with a short timeout; the body when the status is 200, else NULL. */
static char *s_http_get(const char *url)
{
    CURL *easy = curl_easy_init();
    if (!easy)
        return NULL;
    s_body_t body = {0};
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, s_body_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    CURLcode res = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    if (res != CURLE_OK || status != 200) {
        free(body.data);
        return NULL;
    }
    return body.data;
}

/* What APy itself answers for text from -> to (639-3), with the options the
   translator uses, by a direct blocking GET: the reference the translator's
   results are compared with. malloc'd. */
static char *s_apy_direct(const char *from, const char *to, const char *text)
{
    ck_assert_msg(s_apy_port > 0, "the suite's apertium-apy did not start");
    char *q = curl_easy_escape(NULL, text, 0);
    ck_assert_ptr_nonnull(q);
    char url[4096];
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/translate?langpair=%s%%7C%s&markUnknown=no&format=txt&q=%s",
             s_apy_port, from, to, q);
    curl_free(q);
    char *body = s_http_get(url);
    ck_assert_msg(body != NULL, "APy did not translate %s|%s", from, to);
    json_error_t err;
    json_t *root = json_loads(body, 0, &err);
    free(body);
    ck_assert_ptr_nonnull(root);
    const char *tr =
        json_string_value(json_object_get(json_object_get(root, "responseData"), "translatedText"));
    ck_assert_ptr_nonnull(tr);
    char *copy = strdup(tr);
    json_decref(root);
    return copy;
}

/* ---------------------------------------------------------------------
   The suite's apertium-apy (unchecked fixture: runs in the parent)
*/

/* Start apertium-apy on a free port in its own process group and wait
   until /listPairs answers. Leaves s_apy_port 0 on failure. */
static void s_apy_start(void)
{
    int port = s_free_port();
    if (port == 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test runner */
        char port_arg[16];
        snprintf(port_arg, sizeof port_arg, "%d", port);
        setenv("LC_ALL", "C.UTF-8", 1); /* APy refuses to start without UTF-8 */
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl("/usr/bin/python3", "python3", "-c", s_apy_python, "-p", port_arg, "-l",
              "/usr/share/apertium-apy/langNames.db", "/usr/share/apertium/modes", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    s_apy_pid = pid;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/listPairs", port);
    int64_t start = s_now_ms();
    while (s_now_ms() - start < S_APY_READY_S * 1000) {
        char *body = s_http_get(url);
        if (body) {
            free(body);
            s_apy_port = port;
            fprintf(stderr, "test_translator: apertium-apy answered after %lld ms\n",
                    (long long)(s_now_ms() - start));
            return;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s_apy_pid = 0;
            return;
        }
        s_sleep_ms(50);
    }
}

/* Stop APy and its translation pipelines (its process group), and reap
   them all: main() makes this process their subreaper. */
static void s_apy_stop(void)
{
    if (s_apy_pid <= 0)
        return;
    kill(-s_apy_pid, SIGKILL);
    while (waitpid(-s_apy_pid, NULL, 0) > 0 || errno == EINTR)
        ;
    s_apy_pid = 0;
    s_apy_port = 0;
}

static int s_discover(tolk_translator_t *tr, const char *source, const char *pivot, char *out,
                      size_t cap);

/* A translator on the suite's APy, discovered from en through es. */
static tolk_translator_t *s_apy_translator(void)
{
    ck_assert_msg(s_apy_port > 0, "the suite's apertium-apy did not start");
    char url[64], list[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s_apy_port);
    tolk_translator_t *tr = tolk_translator_new(url, 5000);
    ck_assert_ptr_nonnull(tr);
    ck_assert_int_gt(s_discover(tr, "en", "es", list, sizeof list), 0);
    return tr;
}

/* ---------------------------------------------------------------------
   A fake APy, forked per test
*/

/* What the fake does with anything but GET /listPairs. */
typedef enum {
    S_FAKE_HANG, /* keep the connection open, never answer */
    S_FAKE_400,  /* 400 with APy's error JSON */
    S_FAKE_503,  /* 503 with APy's error JSON */
    S_FAKE_BIG,  /* 200 with a 100 KB body */
} s_fake_mode_t;

/* The fake's /listPairs: en->es, es->fr, and a variant pair to ignore. */
static const char *s_fake_pairs =
    "{\"responseData\": [{\"sourceLanguage\": \"eng\", \"targetLanguage\": \"spa\"}, "
    "{\"sourceLanguage\": \"spa\", \"targetLanguage\": \"fra\"}, "
    "{\"sourceLanguage\": \"eng\", \"targetLanguage\": \"cat_valencia\"}, "
    "{\"sourceLanguage\": \"xyz\", \"targetLanguage\": \"eng\"}], "
    "\"responseDetails\": null, \"responseStatus\": 200}";

/* Write all of buf (the fake ignores a peer that went away). */
static void s_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* Send one HTTP/1.1 response and close. */
static void s_respond(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, strlen(body));
    s_write_all(fd, head, (size_t)n);
    s_write_all(fd, body, strlen(body));
    close(fd);
}

/* The fake's loop (in the child): one connection at a time; reads the
   whole request, body included, so closing does not reset the answer. */
static void s_fake_serve(int lfd, s_fake_mode_t mode)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[16384];
        size_t len = 0;
        char *end = NULL;
        while (!end && len < sizeof req - 1) {
            ssize_t n = read(fd, req + len, sizeof req - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            req[len] = 0;
            end = strstr(req, "\r\n\r\n");
        }
        if (!end) {
            close(fd);
            continue;
        }
        const char *cl = strcasestr(req, "Content-Length:");
        size_t want = (size_t)(end + 4 - req) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        while (len < want && len < sizeof req - 1) {
            ssize_t n = read(fd, req + len, sizeof req - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        if (strncmp(req, "GET /listPairs", 14) == 0) {
            s_respond(fd, 200, s_fake_pairs);
            continue;
        }
        switch (mode) {
            case S_FAKE_HANG:
                break; /* the fd stays open until the fake is killed */
            case S_FAKE_400:
                s_respond(fd, 400, "{\"status\": \"error\", \"code\": 400}");
                break;
            case S_FAKE_503:
                s_respond(fd, 503, "{\"status\": \"error\", \"code\": 503}");
                break;
            case S_FAKE_BIG: {
                char *big = malloc(100001);
                if (!big)
                    _exit(1);
                memset(big, 'x', 100000);
                big[100000] = 0;
                s_respond(fd, 200, big);
                free(big);
                break;
            }
        }
    }
}

/* A running fake APy. */
typedef struct {
    pid_t pid;    /* the forked server; 0 once stopped */
    int port;     /* where it listens */
    char url[64]; /* its base URL */
} s_fake_t;

/* Fork a fake APy in the given mode. */
static s_fake_t s_fake_start(s_fake_mode_t mode)
{
    s_fake_t fake = {0};
    int lfd = s_listen(&fake.port);
    ck_assert_int_ge(lfd, 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_IGN);
        s_fake_serve(lfd, mode);
        _exit(0);
    }
    close(lfd);
    fake.pid = pid;
    snprintf(fake.url, sizeof fake.url, "http://127.0.0.1:%d", fake.port);
    return fake;
}

/* Kill the fake: its port is closed from then on. */
static void s_fake_stop(s_fake_t *fake)
{
    if (fake->pid > 0) {
        kill(fake->pid, SIGKILL);
        waitpid(fake->pid, NULL, 0);
        fake->pid = 0;
    }
}

/* A translator on a fake, with routes from the fake's /listPairs. */
static tolk_translator_t *s_fake_translator(s_fake_t *fake, int timeout_ms)
{
    tolk_translator_t *tr = tolk_translator_new(fake->url, timeout_ms);
    ck_assert_ptr_nonnull(tr);
    char list[64];
    ck_assert_int_eq(s_discover(tr, "en", "es", list, sizeof list), 2);
    ck_assert_str_eq(list, "en,es,fr");
    return tr;
}

/* ---------------------------------------------------------------------
   Callbacks and the poll loop
*/

/* What one request's callback saw. */
typedef struct {
    int calls;             /* times the callback ran: must end at 1 */
    char *text;            /* copy of the translation; NULL when it failed */
    char target[8];        /* target it was called with */
    int64_t at_ms;         /* when it ran */
    int resubmit;          /* destroy test: what a submit from inside returned */
    tolk_translator_t *tr; /* destroy test: the translator to submit to */
} s_result_t;

/* The callback: records what it was given. */
static void s_done(void *arg, const char *target, const char *text)
{
    s_result_t *r = arg;
    r->calls++;
    r->at_ms = s_now_ms();
    snprintf(r->target, sizeof r->target, "%s", target ? target : "?");
    free(r->text);
    r->text = text ? strdup(text) : NULL;
    if (r->tr)
        r->resubmit = tolk_translator_submit(r->tr, "en", "es", "again", s_done, r);
}

/* Drive the translator as the worker does until nothing is pending or
   limit_ms passed; returns the longest single run call in ms. */
static int64_t s_loop(tolk_translator_t *tr, int limit_ms)
{
    int64_t deadline = s_now_ms() + limit_ms, worst = 0;
    while (tolk_translator_pending(tr) > 0 && s_now_ms() < deadline) {
        zmq_pollitem_t items[S_MAX_ITEMS];
        int n = tolk_translator_pollitems(tr, items, S_MAX_ITEMS);
        long wait = tolk_translator_timeout_ms(tr);
        ck_assert_int_ge(wait, 0); /* something is pending: a timeout is due */
        if (wait > 100)
            wait = 100;
        if (n > 0)
            zmq_poll(items, n, wait);
        else
            s_sleep_ms(wait);
        int64_t t0 = s_now_ms();
        tolk_translator_run(tr, items, n);
        int64_t took = s_now_ms() - t0;
        if (took > worst)
            worst = took;
    }
    return worst;
}

/* A discovery's callback: 1 when it worked, -1 when not. */
static void s_discovered(void *arg, bool ok)
{
    *(int *)arg = ok ? 1 : -1;
}

/* Discover APy's pairs as the worker does (without blocking, driven by
   the loop), then list source's targets: their count, or -1 when the
   discovery failed or out is too small. */
static int s_discover(tolk_translator_t *tr, const char *source, const char *pivot, char *out,
                      size_t cap)
{
    int outcome = 0;
    out[0] = 0;
    ck_assert_int_eq(tolk_translator_discover(tr, pivot, s_discovered, &outcome), 0);
    ck_assert_int_eq(tolk_translator_discover(tr, pivot, s_discovered, &outcome), -1);
    int64_t worst = s_loop(tr, 20000);
    ck_assert_int_lt(worst, S_RUN_MAX_MS); /* the loop never waited on APy */
    ck_assert_int_ne(outcome, 0);
    return outcome < 0 ? -1 : tolk_translator_targets(tr, source, out, cap);
}

/* Submit one request and drive it to its end; fills r. */
static void s_translate(tolk_translator_t *tr, const char *from, const char *to, const char *text,
                        s_result_t *r)
{
    ck_assert_int_eq(tolk_translator_submit(tr, from, to, text, s_done, r), 0);
    int64_t worst = s_loop(tr, 10000);
    ck_assert_int_eq(tolk_translator_pending(tr), 0);
    ck_assert_int_eq(r->calls, 1);
    ck_assert_int_lt(worst, S_RUN_MAX_MS);
}

/* True when list (comma separated) holds code. */
static bool s_has(const char *list, const char *code)
{
    char padded[512], needle[8];
    snprintf(padded, sizeof padded, ",%s,", list);
    snprintf(needle, sizeof needle, ",%s,", code);
    return strstr(padded, needle) != NULL;
}

/* Position of code in list (comma separated), -1 when absent. */
static int s_index(const char *list, const char *code)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list);
    int i = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++)
        if (strcmp(tok, code) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------------
   Without any server
*/

START_TEST(test_new_destroy)
{
    ck_assert_ptr_null(tolk_translator_new(NULL, 1000));
    ck_assert_ptr_null(tolk_translator_new("", 1000));
    ck_assert_ptr_null(tolk_translator_new("http://127.0.0.1:1", 0));
    tolk_translator_t *tr = tolk_translator_new("http://127.0.0.1:1/", 1000);
    ck_assert_ptr_nonnull(tr);
    ck_assert_int_eq(tolk_translator_pending(tr), 0);
    ck_assert_int_eq(tolk_translator_timeout_ms(tr), -1);
    zmq_pollitem_t items[4];
    ck_assert_int_eq(tolk_translator_pollitems(tr, items, 4), 0);
    tolk_translator_run(tr, NULL, 0);
    /* no routes before discover: unknown pair, NULL at once */
    ck_assert(!tolk_translator_supports(tr, "en", "es"));
    s_result_t r = {0};
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "Hello", s_done, &r), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_ptr_null(r.text);
    ck_assert_str_eq(r.target, "es");
    ck_assert_int_eq(tolk_translator_pending(tr), 0);
    /* the same language needs no translation */
    ck_assert(tolk_translator_supports(tr, "en", "en"));
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "en", "Hello", s_done, &r), 0);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_str_eq(r.text, "Hello");
    free(r.text);
    /* arguments the call cannot take */
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", NULL, s_done, &r), -1);
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "x", NULL, &r), -1);
    char *huge = malloc(20001);
    memset(huge, 'a', 20000);
    huge[20000] = 0;
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "en", huge, s_done, &r), -1);
    free(huge);
    ck_assert_int_eq(r.calls, 2);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.requests, 2);
    ck_assert_int_eq(st.failures, 1);
    ck_assert_int_eq(st.completed, 1);
    tolk_translator_destroy(&tr);
    ck_assert_ptr_null(tr);
    tolk_translator_destroy(&tr);
    tolk_translator_destroy(NULL);
}
END_TEST

START_TEST(test_discover_unreachable)
{
    int port = s_free_port();
    ck_assert_int_gt(port, 0);
    char url[64], list[64] = "junk";
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tolk_translator_t *tr = tolk_translator_new(url, 500);
    ck_assert_ptr_nonnull(tr);
    int64_t t0 = s_now_ms();
    ck_assert_int_eq(s_discover(tr, "en", "es", list, sizeof list), -1);
    ck_assert_str_eq(list, "");
    ck_assert_int_ge(s_now_ms() - t0, 290); /* retried with back-off, on the loop */
    tolk_translator_destroy(&tr);
}
END_TEST

/* A frozen APy (SIGSTOPped: the kernel still accepts connections, nobody
   answers): discovery fails after its timeouts and retries, and the loop
   never waits for it, so an audio worker goes on recognising. */
START_TEST(test_discover_frozen)
{
    int port = 0;
    int lfd = s_listen(&port); /* listening, never accepting: connects succeed, no answer */
    ck_assert_int_ge(lfd, 0);
    char url[64], list[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tolk_translator_t *tr = tolk_translator_new(url, 300);
    ck_assert_ptr_nonnull(tr);
    int64_t t0 = s_now_ms();
    ck_assert_int_eq(s_discover(tr, "en", "es", list, sizeof list), -1); /* no run call > 80 ms */
    ck_assert_int_ge(s_now_ms() - t0, 3 * 300);                          /* three timed-out tries */
    tolk_translator_destroy(&tr);
    close(lfd);
}
END_TEST

/* ---------------------------------------------------------------------
   Against the fake
*/

START_TEST(test_fake_discover)
{
    s_fake_t fake = s_fake_start(S_FAKE_400);
    tolk_translator_t *tr = s_fake_translator(&fake, 1000);
    char list[64];
    /* without a pivot only the direct pair */
    ck_assert_int_eq(s_discover(tr, "en", NULL, list, sizeof list), 1);
    ck_assert_str_eq(list, "en,es");
    ck_assert(!tolk_translator_supports(tr, "en", "fr"));
    ck_assert_int_eq(s_discover(tr, "en", "", list, sizeof list), 1);
    /* through the pivot; the variant pair is ignored */
    ck_assert_int_eq(s_discover(tr, "en", "es", list, sizeof list), 2);
    ck_assert(tolk_translator_supports(tr, "en", "fr"));
    ck_assert(!tolk_translator_supports(tr, "en", "ca"));
    ck_assert(!tolk_translator_supports(tr, "fr", "en"));
    /* too small a buffer */
    char tiny[4];
    ck_assert_int_eq(s_discover(tr, "en", "es", tiny, sizeof tiny), -1);
    /* an unknown source has no targets */
    ck_assert_int_eq(s_discover(tr, "xx", "es", list, sizeof list), 0);
    ck_assert_str_eq(list, "xx");
    tolk_translator_destroy(&tr);
    s_fake_stop(&fake);
}
END_TEST

START_TEST(test_apy_down)
{
    s_fake_t fake = s_fake_start(S_FAKE_HANG);
    tolk_translator_t *tr = s_fake_translator(&fake, 2000);
    s_fake_stop(&fake); /* connection refused from now on */
    s_result_t r = {0};
    int64_t t0 = s_now_ms();
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "Hello", s_done, &r), 0);
    ck_assert_int_eq(tolk_translator_pending(tr), 1);
    int64_t worst = s_loop(tr, 10000);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_ptr_null(r.text);
    ck_assert_str_eq(r.target, "es");
    /* three attempts, 100 + 200 ms of back-off between them */
    ck_assert_int_ge(r.at_ms - t0, 295);
    ck_assert_int_lt(r.at_ms - t0, 2000);
    ck_assert_int_lt(worst, S_RUN_MAX_MS);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.requests, 1);
    ck_assert_int_eq(st.retries, 2);
    ck_assert_int_eq(st.failures, 1);
    ck_assert_int_eq(st.completed, 0);
    fprintf(stderr, "test_translator: APy down: NULL after %lld ms, longest run call %lld ms\n",
            (long long)(r.at_ms - t0), (long long)worst);
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_timeout)
{
    s_fake_t fake = s_fake_start(S_FAKE_HANG);
    tolk_translator_t *tr = s_fake_translator(&fake, 200);
    s_result_t r = {0};
    int64_t t0 = s_now_ms();
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "Hello", s_done, &r), 0);
    int64_t worst = s_loop(tr, 10000);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_ptr_null(r.text);
    /* three 200 ms timeouts and 300 ms of back-off */
    ck_assert_int_ge(r.at_ms - t0, 880);
    ck_assert_int_lt(r.at_ms - t0, 3000);
    ck_assert_int_lt(worst, S_RUN_MAX_MS);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.retries, 2);
    ck_assert_int_eq(st.failures, 1);
    tolk_translator_destroy(&tr);
    s_fake_stop(&fake);
}
END_TEST

START_TEST(test_4xx_not_retried)
{
    s_fake_t fake = s_fake_start(S_FAKE_400);
    tolk_translator_t *tr = s_fake_translator(&fake, 2000);
    s_result_t r = {0};
    s_translate(tr, "en", "es", "Hello", &r);
    ck_assert_ptr_null(r.text);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.retries, 0);
    ck_assert_int_eq(st.failures, 1);
    tolk_translator_destroy(&tr);
    s_fake_stop(&fake);
}
END_TEST

START_TEST(test_5xx_retried)
{
    s_fake_t fake = s_fake_start(S_FAKE_503);
    tolk_translator_t *tr = s_fake_translator(&fake, 2000);
    s_result_t r = {0};
    int64_t t0 = s_now_ms();
    /* through the pivot: the first hop already fails, the second never runs */
    s_translate(tr, "en", "fr", "Hello", &r);
    ck_assert_ptr_null(r.text);
    ck_assert_str_eq(r.target, "fr");
    ck_assert_int_ge(r.at_ms - t0, 295);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.retries, 2);
    ck_assert_int_eq(st.failures, 1);
    tolk_translator_destroy(&tr);
    s_fake_stop(&fake);
}
END_TEST

START_TEST(test_body_capped)
{
    s_fake_t fake = s_fake_start(S_FAKE_BIG);
    tolk_translator_t *tr = s_fake_translator(&fake, 2000);
    s_result_t r = {0};
    s_translate(tr, "en", "es", "Hello", &r);
    ck_assert_ptr_null(r.text);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.retries, 0); /* too big is not transient */
    tolk_translator_destroy(&tr);
    s_fake_stop(&fake);
}
END_TEST

START_TEST(test_destroy_pending)
{
    s_fake_t fake = s_fake_start(S_FAKE_HANG);
    tolk_translator_t *tr = s_fake_translator(&fake, 5000);
    enum { N = 6 };
    s_result_t r[N];
    memset(r, 0, sizeof r);
    /* half in flight (started by a run call), half still waiting */
    for (int i = 0; i < N / 2; i++)
        ck_assert_int_eq(
            tolk_translator_submit(tr, "en", i % 2 ? "fr" : "es", "Hello", s_done, &r[i]), 0);
    for (int i = 0; i < 5; i++) {
        zmq_pollitem_t items[S_MAX_ITEMS];
        int n = tolk_translator_pollitems(tr, items, S_MAX_ITEMS);
        zmq_poll(items, n, 10);
        tolk_translator_run(tr, items, n);
    }
    for (int i = N / 2; i < N; i++)
        ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "Hello", s_done, &r[i]), 0);
    ck_assert_int_eq(tolk_translator_pending(tr), N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].calls, 0);
        r[i].tr = tr; /* the callback tries to submit during destroy */
    }
    tolk_translator_destroy(&tr);
    ck_assert_ptr_null(tr);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_ptr_null(r[i].text);
        ck_assert_int_eq(r[i].resubmit, -1);
    }
    ck_assert_str_eq(r[1].target, "fr");
    s_fake_stop(&fake);
}
END_TEST

/* ---------------------------------------------------------------------
   Against the suite's apertium-apy
*/

START_TEST(test_discover)
{
    tolk_translator_t *tr = s_apy_translator();
    char list[256];
    int n = s_discover(tr, "en", "es", list, sizeof list);
    fprintf(stderr, "test_translator: targets from en through es: %s\n", list);
    ck_assert_int_eq(strncmp(list, "en,", 3), 0);
    /* direct pairs of Debian's Apertium, then what Spanish reaches */
    const char *direct[] = {"es", "ca", "gl", "eo"};
    const char *pivoted[] = {"fr", "pt", "it"};
    int last_direct = 0;
    for (size_t i = 0; i < sizeof direct / sizeof *direct; i++) {
        ck_assert_msg(s_has(list, direct[i]), "%s missing from %s", direct[i], list);
        if (s_index(list, direct[i]) > last_direct)
            last_direct = s_index(list, direct[i]);
    }
    for (size_t i = 0; i < sizeof pivoted / sizeof *pivoted; i++) {
        ck_assert_msg(s_has(list, pivoted[i]), "%s missing from %s", pivoted[i], list);
        ck_assert_int_gt(s_index(list, pivoted[i]), last_direct);
        ck_assert(tolk_translator_supports(tr, "en", pivoted[i]));
    }
    int commas = 0;
    for (const char *p = list; *p; p++)
        commas += *p == ',';
    ck_assert_int_eq(n, commas);
    ck_assert(!s_has(list, "de"));
    ck_assert(!tolk_translator_supports(tr, "en", "de"));
    /* without the pivot, only the direct ones */
    ck_assert_int_eq(s_discover(tr, "en", NULL, list, sizeof list), 4);
    ck_assert(!s_has(list, "fr"));
    /* an unknown source: no targets */
    ck_assert_int_eq(s_discover(tr, "xx", "es", list, sizeof list), 0);
    ck_assert_str_eq(list, "xx");
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_translate_direct)
{
    tolk_translator_t *tr = s_apy_translator();
    const char *text = "Hello, how are you?";
    char *want = s_apy_direct("eng", "spa", text);
    s_result_t r = {0};
    s_translate(tr, "en", "es", text, &r);
    ck_assert_ptr_nonnull(r.text);
    ck_assert_str_eq(r.text, want);
    ck_assert_str_eq(r.target, "es");
    /* again, on the kept-alive connection, with the pipeline warm */
    s_result_t again = {0};
    int64_t t0 = s_now_ms();
    s_translate(tr, "en", "es", text, &again);
    ck_assert_str_eq(again.text, want);
    fprintf(stderr, "test_translator: en->es \"%s\" -> \"%s\" in %lld ms (warm)\n", text, want,
            (long long)(again.at_ms - t0));
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.completed, 2);
    ck_assert_int_eq(st.failures, 0);
    ck_assert_int_eq(st.retries, 0);
    free(want);
    free(r.text);
    free(again.text);
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_translate_pivot)
{
    tolk_translator_t *tr = s_apy_translator();
    const char *text = "Hello, how are you?";
    char *spanish = s_apy_direct("eng", "spa", text);
    char *want = s_apy_direct("spa", "fra", spanish);
    s_result_t r = {0};
    int64_t t0 = s_now_ms();
    s_translate(tr, "en", "fr", text, &r);
    ck_assert_ptr_nonnull(r.text);
    ck_assert_str_eq(r.text, want);
    ck_assert_str_eq(r.target, "fr");
    fprintf(stderr, "test_translator: en->es->fr \"%s\" -> \"%s\" in %lld ms\n", text, want,
            (long long)(r.at_ms - t0));
    free(spanish);
    free(want);
    free(r.text);
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_marks_and_spacing)
{
    tolk_translator_t *tr = s_apy_translator();
    /* APy leaves a leading space and double spaces here ("Dijo" has no
       pronoun), and marks the unknown word with '*' unless asked not to */
    const char *text = "He said hello to me. I am here with the blorfy!";
    char *raw = s_apy_direct("eng", "spa", text);
    s_result_t r = {0};
    s_translate(tr, "en", "es", text, &r);
    ck_assert_ptr_nonnull(r.text);
    fprintf(stderr, "test_translator: APy \"%s\" -> caption \"%s\"\n", raw, r.text);
    ck_assert_ptr_null(strchr(r.text, '*'));
    ck_assert_ptr_null(strstr(r.text, "  "));
    ck_assert(r.text[0] != ' ');
    ck_assert_ptr_nonnull(strstr(r.text, "blorfy"));
    /* the same words as APy's, only the spacing differs */
    char squeezed[512];
    size_t o = 0;
    for (const char *p = raw; *p && o < sizeof squeezed - 1; p++)
        if (*p != ' ' || (o > 0 && squeezed[o - 1] != ' '))
            squeezed[o++] = *p;
    squeezed[o] = 0;
    ck_assert_str_eq(r.text, squeezed);
    /* empty text needs no request */
    s_result_t empty = {0};
    ck_assert_int_eq(tolk_translator_submit(tr, "en", "es", "  ", s_done, &empty), 0);
    ck_assert_int_eq(empty.calls, 1);
    ck_assert_str_eq(empty.text, "  ");
    free(empty.text);
    free(raw);
    free(r.text);
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_concurrent)
{
    tolk_translator_t *tr = s_apy_translator();
    const char *targets[] = {"es", "ca", "gl", "eo", "fr", "pt", "it"};
    s_result_t r[S_CONCURRENT];
    memset(r, 0, sizeof r);
    char texts[S_CONCURRENT][64];
    /* warm every pipeline first (APy starts one per pair on first use,
       0.1-0.5 s each) so the figures below are the steady state */
    for (int i = 0; i < 7; i++) {
        s_result_t warm = {0};
        s_translate(tr, "en", targets[i], "Good morning.", &warm);
        ck_assert_ptr_nonnull(warm.text);
        free(warm.text);
    }
    tolk_translator_stats_t st0;
    tolk_translator_stats(tr, &st0);
    int64_t t0 = s_now_ms();
    for (int i = 0; i < S_CONCURRENT; i++) {
        snprintf(texts[i], sizeof texts[i], "The house number %d is red.", i + 1);
        ck_assert_int_eq(tolk_translator_submit(tr, "en", targets[i % 7], texts[i], s_done, &r[i]),
                         0);
    }
    ck_assert_int_eq(tolk_translator_pending(tr), S_CONCURRENT);
    int64_t worst = s_loop(tr, 20000);
    int64_t took = s_now_ms() - t0;
    ck_assert_int_eq(tolk_translator_pending(tr), 0);
    for (int i = 0; i < S_CONCURRENT; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_msg(r[i].text != NULL, "request %d to %s failed", i, targets[i % 7]);
        ck_assert_str_eq(r[i].target, targets[i % 7]);
        char number[16];
        snprintf(number, sizeof number, "%d", i + 1);
        ck_assert_msg(strstr(r[i].text, number), "%s: %s", texts[i], r[i].text);
        free(r[i].text);
    }
    ck_assert_int_lt(worst, S_RUN_MAX_MS);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.completed - st0.completed, S_CONCURRENT);
    ck_assert_int_eq(st.failures, 0);
    fprintf(
        stderr,
        "test_translator: %d at once (7 targets, 3 through es) in %lld ms, mean latency %ld ms, "
        "%ld retries, longest run call %lld ms\n",
        S_CONCURRENT, (long long)took, (st.latency_ms_sum - st0.latency_ms_sum) / S_CONCURRENT,
        st.retries, (long long)worst);
    tolk_translator_destroy(&tr);
}
END_TEST

/* APy frozen (SIGSTOP) under a stream of captions: after three failures
   in a row the translator takes APy for down and fails the others at once
   (untranslated, no 6 s wait each) while one probe at a time tries; after
   SIGCONT the probe succeeds and translation is back by itself. */
START_TEST(test_frozen_breaker)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s_apy_port);
    tolk_translator_t *tr = tolk_translator_new(url, 300);
    ck_assert_ptr_nonnull(tr);
    char list[256];
    ck_assert_int_gt(s_discover(tr, "en", "es", list, sizeof list), 0);
    kill(-s_apy_pid, SIGSTOP);
    s_result_t failed[3] = {{0}}, probe = {0}, shed = {0}, back = {0};
    for (int i = 0; i < 3; i++)
        tolk_translator_submit(tr, "en", "es", "The first words.", s_done, &failed[i]);
    int64_t worst = s_loop(tr, 10000);
    bool down = tolk_translator_down(tr);
    tolk_translator_submit(tr, "en", "es", "A probe.", s_done, &probe);
    int64_t t0 = s_now_ms();
    tolk_translator_submit(tr, "en", "es", "Shed at once.", s_done, &shed);
    int64_t shed_ms = shed.calls ? shed.at_ms - t0 : -1;
    kill(-s_apy_pid, SIGCONT); /* before any assertion: the suite's APy must live on */
    int64_t worst2 = s_loop(tr, 10000);
    bool down_after = tolk_translator_down(tr);
    tolk_translator_submit(tr, "en", "es", "The words are back.", s_done, &back);
    s_loop(tr, 10000);
    for (int i = 0; i < 3; i++)
        ck_assert(failed[i].calls == 1 && failed[i].text == NULL);
    ck_assert(down);
    ck_assert_int_eq(shed.calls, 1);
    ck_assert_ptr_null(shed.text);
    ck_assert(shed_ms >= 0 && shed_ms < 50);
    ck_assert_int_eq(probe.calls, 1);
    ck_assert_ptr_nonnull(probe.text); /* its retry after SIGCONT got through */
    ck_assert(!down_after);
    ck_assert_int_eq(back.calls, 1);
    ck_assert_ptr_nonnull(back.text);
    ck_assert_int_lt(worst, S_RUN_MAX_MS);
    ck_assert_int_lt(worst2, S_RUN_MAX_MS);
    tolk_translator_stats_t st;
    tolk_translator_stats(tr, &st);
    ck_assert_int_eq(st.shed, 1);
    fprintf(stderr,
            "test_translator: frozen APy: down after 3 failures, shed in %lld ms, "
            "probe \"%s\", then \"%s\"\n",
            (long long)shed_ms, probe.text, back.text);
    free(probe.text);
    free(back.text);
    tolk_translator_destroy(&tr);
}
END_TEST

START_TEST(test_sequential_latency)
{
    tolk_translator_t *tr = s_apy_translator();
    /* warm the pipeline, then time captions one after another */
    s_result_t warm = {0};
    s_translate(tr, "en", "es", "Good morning.", &warm);
    free(warm.text);
    tolk_translator_stats_t before, after;
    tolk_translator_stats(tr, &before);
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        s_result_t r = {0};
        char text[64];
        snprintf(text, sizeof text, "We are going to the meeting number %d today.", i);
        s_translate(tr, "en", "es", text, &r);
        ck_assert_ptr_nonnull(r.text);
        free(r.text);
    }
    tolk_translator_stats(tr, &after);
    long mean = (after.latency_ms_sum - before.latency_ms_sum) / N;
    fprintf(stderr, "test_translator: en->es one at a time: mean %ld ms\n", mean);
    ck_assert_int_lt(mean, 500);
    tolk_translator_destroy(&tr);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("translator");

    TCase *tc = tcase_create("offline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_destroy);
    tcase_add_test(tc, test_discover_unreachable);
    tcase_add_test(tc, test_discover_frozen);
    suite_add_tcase(s, tc);

    tc = tcase_create("fake");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fake_discover);
    tcase_add_test(tc, test_apy_down);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_4xx_not_retried);
    tcase_add_test(tc, test_5xx_retried);
    tcase_add_test(tc, test_body_capped);
    tcase_add_test(tc, test_destroy_pending);
    suite_add_tcase(s, tc);

    tc = tcase_create("apy");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, s_apy_start, s_apy_stop);
    tcase_add_test(tc, test_discover);
    tcase_add_test(tc, test_translate_direct);
    tcase_add_test(tc, test_translate_pivot);
    tcase_add_test(tc, test_marks_and_spacing);
    tcase_add_test(tc, test_concurrent);
    tcase_add_test(tc, test_sequential_latency);
    tcase_add_test(tc, test_frozen_breaker);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* APy's pipelines are its children; when it is killed they come to us
       to be reaped instead of lingering as zombies */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
