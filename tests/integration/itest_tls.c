/*  itest_tls.c -- the gateway serving HTTPS and WSS itself (tls_cert_file,
    tls_key_file) on its one port, with a self-signed certificate for
    127.0.0.1 made here by openssl, as `make run LAN=1` makes one.

    - the pages and /readyz over https, the certificate verified against
      itself (so it really is the one configured);
    - a plain http:// request on the same port is redirected to https://;
    - a WebSocket over TLS: the upgrade, then createSession's
      sessionCreated and a listener's sessionJoined, read from the TLS
      stream by a minimal client written here on OpenSSL.
*/
#include "harness.h"
#include "itest_client.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SECRET "tls-test-secret-0123456789abcdef"

static const ic_jwt_t s_jwt = {.secret = SECRET};
static harness_t *s_h;
static char s_dir[] = "/tmp/tolk-itest-tls-XXXXXX";
static char s_cert[128], s_key[128], s_env_cert[200], s_env_key[200];

static void s_setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    snprintf(s_cert, sizeof s_cert, "%s/cert.pem", s_dir);
    snprintf(s_key, sizeof s_key, "%s/key.pem", s_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tolk-test "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
             s_key, s_cert);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(s_env_cert, sizeof s_env_cert, "TOLK_TLS_CERT_FILE=%s", s_cert);
    snprintf(s_env_key, sizeof s_env_key, "TOLK_TLS_KEY_FILE=%s", s_key);
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", s_env_cert, s_env_key,
                                         "TOLK_ASR_ENGINE=loadtest", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start over TLS");
}

static void s_teardown(void)
{
    int problems = harness_stop(&s_h);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(problems, 0);
}

/* ------------------------------------------------------------ HTTP */

typedef struct {
    char body[65536];
    size_t len;
    char location[512];
} answer_t;

static size_t s_body(char *data, size_t size, size_t n, void *userp)
{
    answer_t *a = userp;
    size_t add = size * n;
    if (a->len + add >= sizeof a->body)
        add = sizeof a->body - 1 - a->len;
    memcpy(a->body + a->len, data, add);
    a->len += add;
    a->body[a->len] = 0;
    return size * n;
}

static size_t s_header(char *data, size_t size, size_t n, void *userp)
{
    answer_t *a = userp;
    if (n * size > 10 && strncasecmp(data, "location:", 9) == 0)
        snprintf(a->location, sizeof a->location, "%.*s", (int)(n * size - 9), data + 9);
    return size * n;
}

/* GET url; verify the server's certificate against ours when https. */
static long s_get(const char *url, answer_t *a)
{
    memset(a, 0, sizeof *a);
    CURL *e = curl_easy_init();
    ck_assert_ptr_nonnull(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CAINFO, s_cert);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    ck_assert_msg(rc == CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
    return status;
}

START_TEST(test_pages_over_https)
{
    char url[256];
    answer_t a;
    int port = harness_gateway_port(s_h, 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
    ck_assert_int_eq(s_get(url, &a), 200);
    ck_assert_ptr_nonnull(strstr(a.body, "<html"));
    /* the whole page, as on disk */
    char page[1024];
    snprintf(page, sizeof page, "%s/web/index.html", getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".");
    FILE *f = fopen(page, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    ck_assert_int_eq((long)a.len, ftell(f));
    fclose(f);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/readyz", port);
    ck_assert_int_eq(s_get(url, &a), 200);
    ck_assert_ptr_nonnull(strstr(a.body, "\"ready\":true"));
    /* someone typing http:// is sent to https:// on the same port */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
    long st = s_get(url, &a);
    printf("itest_tls: http:// on the TLS port answers %ld, Location:%s", st, a.location);
    fflush(stdout);
    ck_assert(st == 301 || st == 302 || st == 307 || st == 308);
    ck_assert_msg(strstr(a.location, "https://") != NULL, "Location:%s", a.location);
}
END_TEST

/* ------------------------------------------------------------- WSS */

/* A TLS connection to the gateway, verified against our certificate. */
static SSL *s_tls_connect(SSL_CTX **ctx_p, int *fd_p)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, s_cert, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)harness_gateway_port(s_h, 0))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    ck_assert_msg(SSL_connect(ssl) == 1, "TLS handshake: %s",
                  ERR_error_string(ERR_get_error(), NULL));
    *ctx_p = ctx;
    *fd_p = fd;
    return ssl;
}

/* Upgrade to a WebSocket at path and return the first text message the
   server sends (malloc'd). */
static char *s_wss_first_message(const char *path)
{
    SSL_CTX *ctx;
    int fd;
    SSL *ssl = s_tls_connect(&ctx, &fd);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, harness_gateway_port(s_h, 0));
    ck_assert_int_eq(SSL_write(ssl, req, n), n);
    unsigned char buf[16384];
    size_t len = 0;
    const unsigned char *frame = NULL;
    char *text = NULL;
    while (!text) {
        int r = SSL_read(ssl, buf + len, (int)(sizeof buf - 1 - len));
        ck_assert_msg(r > 0, "the TLS stream ended before a message");
        len += (size_t)r;
        buf[len] = 0;
        if (!frame) {
            const char *end = strstr((char *)buf, "\r\n\r\n");
            if (!end)
                continue;
            ck_assert_msg(strncmp((char *)buf, "HTTP/1.1 101", 12) == 0, "no upgrade: %.60s",
                          buf);
            frame = (const unsigned char *)end + 4;
        }
        size_t have = len - (size_t)(frame - buf);
        if (have < 2)
            continue;
        ck_assert_int_eq(frame[0], 0x81); /* FIN, text: the server's first message */
        size_t plen = frame[1] & 0x7f, hdr = 2;
        if (plen == 126) {
            if (have < 4)
                continue;
            plen = (size_t)frame[2] << 8 | frame[3];
            hdr = 4;
        }
        if (have >= hdr + plen)
            text = strndup((const char *)frame + hdr, plen);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return text;
}

START_TEST(test_websocket_over_tls)
{
    char *token = ic_mint(&s_jwt, "tls-speaker");
    char path[4096];
    snprintf(path, sizeof path, "/ws?action=createSession&sourceLanguage=en&token=%s", token);
    free(token);
    /* the speaker's connection closes after its first message here, but
       the session is in its grace period, so a listener can still join */
    json_t *j = ic_json(s_wss_first_message(path));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    printf("itest_tls: over wss: sessionCreated %s, listenerUrl %s\n", ic_get(j, "sessionId"),
           ic_get(j, "listenerUrl"));
    fflush(stdout);
    ck_assert_msg(strncmp(ic_get(j, "listenerUrl"), "https://", 8) == 0, "listenerUrl %s",
                  ic_get(j, "listenerUrl"));
    snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=es",
             ic_get(j, "sessionId"));
    json_decref(j);
    j = ic_json(s_wss_first_message(path));
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("https");
    tcase_set_timeout(tc, 90);
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_pages_over_https);
    tcase_add_test(tc, test_websocket_over_tls);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
