/*  itest_web.c -- the gateway serves the browser pages, and nothing else.

    Against a real system (one gateway from the repository root, so web_root
    "web" is this checkout's web/): the three pages come back as HTML with
    the security headers, assets with their types and exact bytes, HEAD
    answers without a body, other methods get 405, and every path trick
    (.., %2e%2e, backslashes, NUL, hidden files) gets 404/400 and never a
    file from outside web/. /healthz, /readyz and /ws must be unaffected.

    Requests are written by hand on raw sockets: the paths must reach the
    server exactly as written (no client normalising "..") and the tests
    need the response headers.
*/
#include "harness.h"
#include "wsclient.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static harness_t *s_h;

/* ------------------------------------------------------------ raw HTTP */

typedef struct {
    int status;      /* -1: no complete status line (the server hung up) */
    char head[8192]; /* status line and headers, NUL terminated */
    char *body;      /* malloc'd, NUL terminated */
    size_t body_len;
} resp_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Value of header name in r->head (case-insensitive), copied into out; false if absent. */
static bool s_header(const resp_t *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            l += n + 1;
            while (*l == ' ')
                l++;
            const char *end = strstr(l, "\r\n");
            size_t len = end ? (size_t)(end - l) : strlen(l);
            snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), l);
            return true;
        }
    }
    return false;
}

enum { READ_ONE, READ_HEAD, READ_ALL };

/* Send request exactly as given; read the answer until its Content-Length
   is complete (READ_ONE), its headers are (READ_HEAD, as for HEAD), or the
   server closes (READ_ALL: pipelined requests), or 3 s pass. */
static void s_raw(const char *request, size_t len, int mode, resp_t *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    r->body = calloc(1, 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)harness_gateway_port(s_h, 0))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap + 1);
    int64_t deadline = s_now_ms() + 3000;
    for (;;) {
        char *sep = got ? memmem(buf, got, "\r\n\r\n", 4) : NULL;
        if (sep && mode != READ_ALL) {
            size_t hlen = (size_t)(sep - buf) + 4;
            buf[got] = 0;
            snprintf(r->head, sizeof r->head, "%.*s", (int)(hlen - 2), buf);
            char cl[32];
            size_t want = s_header(r, "content-length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
            if (mode == READ_HEAD || got - hlen >= want)
                break;
        }
        int left = (int)(deadline - s_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    char *sep = memmem(buf, got, "\r\n\r\n", 4);
    if (sep && sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1) {
        size_t hlen = (size_t)(sep - buf) + 4;
        snprintf(r->head, sizeof r->head, "%.*s", (int)(hlen - 2), buf);
        free(r->body);
        r->body_len = got - hlen;
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, buf + hlen, r->body_len);
        r->body[r->body_len] = 0;
    }
    free(buf);
}

static void s_request(const char *method, const char *path, resp_t *r)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method,
                     path, harness_gateway_port(s_h, 0));
    s_raw(req, (size_t)n, strcmp(method, "HEAD") == 0 ? READ_HEAD : READ_ONE, r);
}

static void s_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* The file's bytes from this checkout (the gateway runs from its root). */
static char *s_file(const char *rel, size_t *len)
{
    char top[4096], path[4200];
    snprintf(top, sizeof top, "%s", harness_dir(s_h));
    char *cut = strstr(top, "/tests/tmp/");
    ck_assert_ptr_nonnull(cut);
    *cut = 0;
    snprintf(path, sizeof path, "%s/%s", top, rel);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *data = malloc(4 << 20);
    *len = fread(data, 1, 4 << 20, f);
    fclose(f);
    return data;
}

static void s_expect_header(const resp_t *r, const char *name, const char *contains)
{
    char v[2048];
    ck_assert_msg(s_header(r, name, v, sizeof v), "no %s header in:\n%s", name, r->head);
    ck_assert_msg(strstr(v, contains), "%s is \"%s\", expected it to contain \"%s\"", name, v,
                  contains);
}

static void s_expect_security_headers(const resp_t *r)
{
    s_expect_header(r, "content-security-policy", "script-src 'self'");
    s_expect_header(r, "content-security-policy", "default-src 'none'");
    s_expect_header(r, "content-security-policy", "connect-src 'self' ws://127.0.0.1:");
    s_expect_header(r, "x-content-type-options", "nosniff");
    s_expect_header(r, "referrer-policy", "no-referrer");
}

/* ------------------------------------------------------------ tests */

START_TEST(test_pages_are_html_with_security_headers)
{
    static const char *const pages[][3] = {
        {"/", "index.html", "/static/index.js"},
        {"/speak", "speak.html", "/static/speak.js"},
        {"/speak?token=a.b.c", "speak.html", "/static/speak.js"},
        {"/listen/golden-eagle-427", "listen.html", "/static/listen.js"},
        {"/listen/any-other-001?lang=fr", "listen.html", "/static/listen.js"},
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        resp_t r;
        s_request("GET", pages[i][0], &r);
        ck_assert_msg(r.status == 200, "GET %s: %d", pages[i][0], r.status);
        s_expect_header(&r, "content-type", "text/html");
        s_expect_header(&r, "cache-control", "no-cache");
        s_expect_security_headers(&r);
        size_t len;
        char path[64];
        snprintf(path, sizeof path, "web/%s", pages[i][1]);
        char *file = s_file(path, &len);
        ck_assert_uint_eq(r.body_len, len);
        ck_assert_msg(memcmp(r.body, file, len) == 0, "GET %s: not %s", pages[i][0], path);
        ck_assert_ptr_nonnull(strstr(r.body, pages[i][2]));
        free(file);
        s_free(&r);
    }
}
END_TEST

START_TEST(test_assets_have_their_types)
{
    static const char *const assets[][2] = {
        {"tolk.js", "text/javascript"},
        {"listen.js", "text/javascript"},
        {"pcm-worklet.js", "text/javascript"},
        {"qr.js", "text/javascript"},
        {"tolk.css", "text/css"},
        {"favicon.svg", "image/svg+xml"},
    };
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        char url[128], path[128];
        snprintf(url, sizeof url, "/static/%s", assets[i][0]);
        snprintf(path, sizeof path, "web/static/%s", assets[i][0]);
        resp_t r;
        s_request("GET", url, &r);
        ck_assert_msg(r.status == 200, "GET %s: %d", url, r.status);
        s_expect_header(&r, "content-type", assets[i][1]);
        s_expect_header(&r, "x-content-type-options", "nosniff");
        size_t len;
        char *file = s_file(path, &len);
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", len);
        s_expect_header(&r, "content-length", cl);
        ck_assert_uint_eq(r.body_len, len);
        ck_assert(memcmp(r.body, file, len) == 0);
        free(file);
        s_free(&r);
    }
    /* HEAD: the same headers, no body */
    resp_t r;
    s_request("HEAD", "/static/tolk.js", &r);
    ck_assert_int_eq(r.status, 200);
    s_expect_header(&r, "content-type", "text/javascript");
    ck_assert_uint_eq(r.body_len, 0);
    s_free(&r);
}
END_TEST

/* Paths that try to leave web/ or reach what it should not serve. Makefile
   and /etc/passwd must never come back, whatever the status. (lws itself
   resolves a literal "/static/../index.html" to "/index.html" before the
   gateway sees it; that stays inside web/ and is served like "/".) */
START_TEST(test_traversal_never_serves_a_file)
{
    static const char *const paths[] = {
        "/../etc/passwd",
        "/static/../../Makefile",
        "/static/../../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/Makefile",
        "/static/%2E%2E/%2E%2E/Makefile",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fMakefile",
        "/static/.%2e/.%2e/Makefile",
        "/static/%252e%252e/%252e%252e/Makefile",
        "/static/..\\..\\Makefile",
        "/static/%5c..%5c..%5cMakefile",
        "/listen/../../Makefile",
        "/listen/..%2f..%2fMakefile",
        "/static/tolk.js%00.png",
        "/static/.hidden.js",
        "//etc/passwd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        resp_t r;
        s_request("GET", paths[i], &r);
        ck_assert_msg(r.status == 404 || r.status == 400 || r.status == -1, "GET %s: %d", paths[i],
                      r.status);
        ck_assert_msg(!strstr(r.body, "root:") && !strstr(r.body, "VERSION") &&
                          !strstr(r.body, "<!doctype"),
                      "GET %s served a file:\n%.200s", paths[i], r.body);
        s_free(&r);
    }
    /* a NUL byte written raw into the request line */
    static const char nul[] = "GET /static/tolk.js\0.png HTTP/1.1\r\nHost: x\r\n\r\n";
    resp_t r;
    s_raw(nul, sizeof nul - 1, READ_ONE, &r);
    ck_assert_msg(r.status != 200, "a NUL in the path was served");
    s_free(&r);
}
END_TEST

START_TEST(test_missing_is_404)
{
    static const char *const paths[] = {
        "/static/nope.js",  "/nope", "/static/",         "/static",   "/speak/extra",
        "/listen/bad_code", "/ws",   "/static/tolk.exe", "/index.htm"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        resp_t r;
        s_request("GET", paths[i], &r);
        ck_assert_msg(r.status == 404, "GET %s: %d", paths[i], r.status);
        s_expect_header(&r, "content-type", "application/json");
        ck_assert_str_eq(r.body, "{\"error\":\"not found\"}\n");
        s_free(&r);
    }
}
END_TEST

START_TEST(test_other_methods_are_405)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        resp_t r;
        s_request(methods[i], "/static/tolk.js", &r);
        ck_assert_msg(r.status == 405, "%s: %d", methods[i], r.status);
        s_expect_header(&r, "allow", "GET");
        ck_assert_ptr_null(strstr(r.body, "import"));
        s_free(&r);
    }
    /* a POST with a body, then a GET on the same connection: both answered */
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
                     "GET /static/favicon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                     "close\r\n\r\n");
    resp_t r;
    s_raw(req, (size_t)n, READ_ALL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_msg(strstr(r.body, "HTTP/1.1 200") && strstr(r.body, "<svg"),
                  "the GET after a refused POST was not answered:\n%.300s", r.body);
    s_free(&r);
}
END_TEST

START_TEST(test_health_and_ws_unaffected)
{
    char body[512];
    int port = harness_gateway_port(s_h, 0);
    ck_assert_int_eq(http_get("127.0.0.1", port, "/healthz", body, sizeof body), 200);
    ck_assert_str_eq(body, "{\"status\":\"ok\"}\n");
    ck_assert_int_eq(http_get("127.0.0.1", port, "/readyz", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ready\":true"));
    ck_assert_int_eq(http_get("127.0.0.1", port, "/", body, sizeof body), 200);
    /* the page's origin may open /ws (the default same-origin rule) */
    char origin[64];
    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", port);
    ws_client_t *ws =
        ws_connect("127.0.0.1", port,
                   "/ws?action=joinSession&sessionId=no-such-000&targetLanguage=es", origin, 3000);
    ck_assert_msg(ws != NULL, "upgrade failed: %s", ws_last_error());
    char *err = ws_recv_type(ws, "error", 5000);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "SESSION_NOT_FOUND"));
    free(err);
    ck_assert_int_eq(ws_wait_closed(ws, 5000), 4404);
    ws_destroy(&ws);
}
END_TEST

int main(void)
{
    harness_opts_t opts = {.status_workers = HARNESS_NONE, .audio_workers = HARNESS_NONE};
    s_h = harness_start(&opts);
    if (!s_h)
        return 1;
    Suite *s = suite_create("web");
    TCase *tc = tcase_create("static");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pages_are_html_with_security_headers);
    tcase_add_test(tc, test_assets_have_their_types);
    tcase_add_test(tc, test_traversal_never_serves_a_file);
    tcase_add_test(tc, test_missing_is_404);
    tcase_add_test(tc, test_other_methods_are_405);
    tcase_add_test(tc, test_health_and_ws_unaffected);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int problems = harness_stop(&s_h);
    return failed == 0 && problems == 0 ? 0 : 1;
}
