/*  static_http.c -- the gateway serves tolk's browser pages from web_root.

    A speaker opens /speak, a listener /listen/<code> (the same page for any
    code: its script reads the code from the path), and both pages load
    their scripts and styles from /static/. Serving them from the gateway
    keeps the pages on the WebSocket's own origin, which the default Origin
    check and a strict Content-Security-Policy both rely on, and means
    nothing has to be deployed besides the gateway.

    Only GET and HEAD are served. A path is mapped to a file by a pure,
    conservative rule (static_map_path, in static_map.c) and the file must then resolve,
    symlinks followed, to a regular file inside web_root no larger than
    STATIC_FILE_MAX. libwebsockets streams the file itself
    (lws_serve_http_file), so a large asset never sits in the gateway's
    memory and a slow reader never blocks the loop.
*/
#include "static_http.h"
#include "static.h"
#include "log.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ headers */

/* The Host header if it is a plain host[:port], for the CSP's ws: source. */
static bool s_host(struct lws *wsi, char *host, size_t cap)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0 ||
        lws_hdr_copy(wsi, host, (int)cap, WSI_TOKEN_HOST) <= 0)
        return false;
    for (const char *s = host; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            return false;
    }
    return true;
}

/* Headers every answer from here carries. The pages use only their own
   scripts and styles and talk only to this gateway's /ws; 'self' covers ws:
   and wss: of the same host only in newer browsers, so the host is named
   too. Nothing may frame the pages, and no Referer leaves them (the speaker
   page's URL can carry a token). */
static int s_security_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    char host[256], csp[1024];
    if (s_host(wsi, host, sizeof host))
        snprintf(csp, sizeof csp,
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self' ws://%s wss://%s; manifest-src 'self'; base-uri 'none'; "
                 "form-action 'self'; frame-ancestors 'none'",
                 host, host);
    else
        snprintf(csp, sizeof csp,
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
                 "frame-ancestors 'none'");
    static const char *const fixed[][2] = {
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "DENY"},
        {"permissions-policy:", "microphone=(self), camera=(), geolocation=()"},
    };
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
                                    (const unsigned char *)csp, (int)strlen(csp), p, end))
        return -1;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)fixed[i][0],
                                        (const unsigned char *)fixed[i][1],
                                        (int)strlen(fixed[i][1]), p, end))
            return -1;
    return 0;
}

int http_body_set(gw_conn_t *c, const char *body)
{
    free(c->http_body);
    c->http_body = strdup(body);
    c->http_len = c->http_body ? strlen(c->http_body) : 0;
    c->http_off = 0;
    return c->http_body ? 0 : -1;
}

void http_body_free(gw_conn_t *c)
{
    free(c->http_body);
    c->http_body = NULL;
    c->http_len = c->http_off = 0;
}

/* A small JSON answer (404, 405); ws.c's HTTP_WRITEABLE handler writes
   c->http_body after these headers. A HEAD gets the headers alone. */
static int s_reply(struct lws *wsi, gw_conn_t *c, int status, const char *body, bool head)
{
    c->http_status = status;
    c->http_type = "application/json";
    if (http_body_set(c, head ? "" : body) != 0)
        return 1;
    unsigned char buf[LWS_PRE + 2048], *start = &buf[LWS_PRE], *p = start, *end = buf + sizeof buf;
    if (lws_add_http_common_headers(wsi, (unsigned int)status, c->http_type, strlen(c->http_body),
                                    &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        s_security_headers(wsi, &p, end) ||
        (status == 405 &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                     (const unsigned char *)"GET, HEAD", 9, &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* ------------------------------------------------------------ serving */

/* Resolve rel inside web_root, following symlinks, and refuse anything
   that lands outside it, is not a regular file, or is too large. */
static int s_resolve(gateway_t *gw, const char *rel, char *real)
{
    char root[PATH_MAX], full[PATH_MAX + STATIC_PATH_MAX + 2];
    if (!realpath(gw->cfg.web_root, root)) {
        if (!gw->web_root_warned)
            tolk_warn("static", NULL, "web_root %s cannot be read: no pages are served",
                      gw->cfg.web_root);
        gw->web_root_warned = true;
        return -1;
    }
    size_t n = strlen(root);
    snprintf(full, sizeof full, "%s/%s", root, rel);
    if (n < 2 || !realpath(full, real) || strncmp(real, root, n) != 0 || real[n] != '/')
        return -1;
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_FILE_MAX)
        return -1;
    return 0;
}

int static_http(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const char *path)
{
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool head = !get && lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    if (!get && !head)
        return s_reply(wsi, c, 405, "{\"error\":\"method not allowed\"}\n", false);
    char rel[STATIC_PATH_MAX + 1], real[PATH_MAX];
    const char *type;
    if (static_map_path(path, rel, sizeof rel, &type) != 0 || s_resolve(gw, rel, real) != 0)
        return s_reply(wsi, c, 404, "{\"error\":\"not found\"}\n", head);

    /* pages are small and change with every install: revalidate each time */
    unsigned char hdr[2048], *p = hdr, *end = hdr + sizeof hdr;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        s_security_headers(wsi, &p, end))
        return 1;
    int n = lws_serve_http_file(wsi, real, type, (const char *)hdr, (int)(p - hdr));
    /* <0: failed; >0: already answered (lws' own 404), finish the transaction */
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}
