/*  static_http.h -- the gateway serves tolk's browser pages from web_root,
    and keeps the body of a small dynamic HTTP reply until lws lets it be
    written.

    Serving the pages from the gateway keeps them on the WebSocket's own
    origin, which the default Origin check and a strict
    Content-Security-Policy both rely on. Which file a path names is
    static_map_path's pure rule (static.h); here it is resolved and served.
*/
#ifndef TOLK_GW_STATIC_HTTP_H
#define TOLK_GW_STATIC_HTTP_H

#include "gateway.h"

/* Answer a GET or HEAD of path with the file under web_root it names, or
   404/405. Returns what an lws HTTP callback returns (0 to go on, non-zero
   to close). */
int static_http(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const char *path);

/* The body of a small dynamic HTTP reply, kept until HTTP_WRITEABLE writes
   it; 0, or -1 when out of memory. */
int http_body_set(gw_conn_t *c, const char *body);

/* Give the body back: after the write, and when the HTTP connection closes. */
void http_body_free(gw_conn_t *c);

#endif
