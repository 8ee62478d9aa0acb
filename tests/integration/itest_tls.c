/*  itest_tls.c -- the gateway serving HTTPS and WSS itself (tls_cert_file,
    tls_key_file) on its one port, with a self-signed certificate for
    127.0.0.1 made here by openssl, as `make run LAN=1` makes one.

    - the pages and /readyz over https, the certificate verified against
      itself (so it really is the one configured);
    - a plain http:// request on the same port is redirected to https://;
    - a WebSocket over TLS (the tests' client, common/wsclient.c, on
      OpenSSL): sessionCreated, sessionJoined, a heartbeat; refused with
      "not trusted" without our certificate;
    - tolk-speak streaming a recording to tolk-listen, both over wss,
      finding TLS and the certificate in their config as on a LAN=1 run.
*/
#include "harness.h"
#include "itest_client.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET,
                                         "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", s_env_cert,
                                         s_env_key, "TOLK_ASR_ENGINE=loadtest", NULL}};
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

/* A WebSocket over TLS to the gateway at path, trusting ca (NULL: the
   system's CAs, which do not know our certificate). */
static ws_client_t *s_wss(const char *path, const char *ca)
{
    ws_connect_opts_t o = {.tls = true, .tls_ca_file = ca};
    return ws_connect_with("127.0.0.1", harness_gateway_port(s_h, 0), path, &o, IC_WAIT_MS);
}

START_TEST(test_websocket_over_tls)
{
    char *token = ic_mint(&s_jwt, "tls-speaker");
    char path[4096];
    snprintf(path, sizeof path, "/ws?action=createSession&sourceLanguage=en&token=%s", token);
    free(token);
    ws_client_t *spk = s_wss(path, s_cert);
    ck_assert_msg(spk != NULL, "wss: %s", ws_last_error());
    json_t *j = ic_json(ws_recv_text(spk, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    printf("itest_tls: over wss: sessionCreated %s, listenerUrl %s\n", ic_get(j, "sessionId"),
           ic_get(j, "listenerUrl"));
    fflush(stdout);
    ck_assert_msg(strncmp(ic_get(j, "listenerUrl"), "https://", 8) == 0, "listenerUrl %s",
                  ic_get(j, "listenerUrl"));
    snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=es",
             ic_get(j, "sessionId"));
    json_decref(j);
    ws_client_t *l = s_wss(path, s_cert);
    ck_assert_ptr_nonnull(l);
    j = ic_json(ws_recv_text(l, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
    /* a heartbeat both ways through TLS */
    ck_assert_int_eq(ws_send_text(l, "{\"action\":\"heartbeat\"}"), 0);
    j = ic_json(ws_recv_type(l, "heartbeatAck", IC_WAIT_MS));
    json_decref(j);
    ck_assert_int_eq(ws_close(l, 1000, "bye"), 0);
    ws_destroy(&l);
    /* a plain ws:// upgrade on the TLS port is refused, not served in clear */
    ck_assert_ptr_null(
        ws_connect("127.0.0.1", harness_gateway_port(s_h, 0), path, NULL, IC_WAIT_MS));
    printf("itest_tls: a plain ws:// upgrade on the TLS port: HTTP %d\n", ws_last_http_status());
    fflush(stdout);
    ck_assert_int_eq(ws_last_http_status(), 403);
    /* the system's CAs do not know a self-signed certificate: refused, saying why */
    ck_assert_ptr_null(s_wss(path, NULL));
    printf("itest_tls: without our certificate: %s\n", ws_last_error());
    fflush(stdout);
    ck_assert_ptr_nonnull(strstr(ws_last_error(), "not trusted"));
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* The gateway's TLS settings in a tool's environment, as `make run LAN=1`
   writes them into tolk.conf. */
static char s_tls_env[512];

START_TEST(test_speak_and_listen_over_wss)
{
    snprintf(s_tls_env, sizeof s_tls_env, "TOLK_TLS_CERT_FILE=%s TOLK_TLS_KEY_FILE=%s", s_cert,
             s_key);
    char *token = ic_mint(&s_jwt, "tls-cli");
    char args[4096];
    snprintf(args, sizeof args,
             "tolk-speak /usr/share/pocketsphinx/test/data/librivox/"
             "sense_and_sensibility_01_austen_64kb-0870.wav --json --speed 2 --linger 2 --token %s",
             token);
    free(token);
    FILE *spk = ic_tool(s_h, s_tls_env, args);
    char line[65536];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, spk));
    json_t *j = ic_json(strdup(line));
    ck_assert_str_eq(ic_get(j, "type"), "sessionCreated");
    snprintf(args, sizeof args, "tolk-listen --session %s --lang en --json 2>&1",
             ic_get(j, "sessionId"));
    json_decref(j);
    FILE *lst = ic_tool(s_h, s_tls_env, args);
    while (fgets(line, sizeof line, spk))
        ;
    ck_assert_int_eq(pclose(spk), 0);
    int captions = 0;
    char last[64] = "";
    while (fgets(line, sizeof line, lst)) {
        j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "tolk-listen said: %s", line);
        captions += strcmp(ic_get(j, "type"), "caption") == 0;
        snprintf(last, sizeof last, "%s", ic_get(j, "type"));
        json_decref(j);
    }
    ck_assert_int_eq(pclose(lst), 0);
    printf("itest_tls: tolk-speak to tolk-listen over wss: %d captions, then %s\n", captions, last);
    fflush(stdout);
    ck_assert_int_gt(captions, 0);
    ck_assert_str_eq(last, "sessionEnded");
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
    tcase_add_test(tc, test_speak_and_listen_over_wss);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
