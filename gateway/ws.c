/*  ws.c -- the gateway's lws protocol; see ws.h.

    Every callback finds its gateway through the lws context's user
    pointer. Frames are reassembled and checked here (size, UTF-8, close
    codes), then routed by kind through the bridge.
*/
#include "ws.h"
#include "bridge.h"
#include "catchup.h"
#include "frame.h"
#include "index.h"
#include "log.h"
#include "metrics.h"
#include "outq.h"
#include "presence.h"
#include "query.h"
#include "static_http.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- HTTP */

static int s_http_reply(struct lws *wsi, gw_conn_t *c, int status, const char *type,
                        const char *body)
{
    c->http_status = status;
    c->http_type = type;
    if (http_body_set(c, body) != 0)
        return 1;
    unsigned char buf[LWS_PRE + 512], *start = &buf[LWS_PRE], *p = start, *end = buf + sizeof buf;
    if (lws_add_http_common_headers(wsi, (unsigned int)status, type, strlen(c->http_body), &p,
                                    end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* GET /metrics: every process's last status report in Prometheus's text
   format (metrics.h), written a chunk at a time by s_http_write. */
static int s_metrics(gateway_t *gw, struct lws *wsi, gw_conn_t *c)
{
    size_t len = 0;
    char *text = metrics_render(gw, &len);
    if (!text)
        return s_http_reply(wsi, c, 500, "application/json", "{\"error\":\"out of memory\"}\n");
    http_body_free(c);
    c->http_body = text;
    c->http_len = len;
    c->http_status = 200;
    c->http_type = "text/plain; version=0.0.4";
    unsigned char buf[LWS_PRE + 512], *start = &buf[LWS_PRE], *p = start, *end = buf + sizeof buf;
    if (lws_add_http_common_headers(wsi, 200, c->http_type, len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int s_http(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const char *path)
{
    if (strcmp(path, "/healthz") == 0)
        return s_http_reply(wsi, c, 200, "application/json", "{\"status\":\"ok\"}\n");
    if (strcmp(path, "/readyz") == 0) {
        char body[512];
        bool ready = gateway_ready(gw);
        snprintf(body, sizeof body,
                 "{\"ready\":%s,\"redis\":%s,\"draining\":%s,\"workers\":{\"control\":%d,"
                 "\"status\":%d,\"audio\":%d}}\n",
                 ready ? "true" : "false", presence_ok(gw) ? "true" : "false",
                 gw->draining ? "true" : "false", bridge_live_count(gw, TOLK_WORKER_CONTROL),
                 bridge_live_count(gw, TOLK_WORKER_STATUS),
                 bridge_live_count(gw, TOLK_WORKER_AUDIO));
        return s_http_reply(wsi, c, ready ? 200 : 503, "application/json", body);
    }
    if (strcmp(path, "/metrics") == 0)
        return s_metrics(gw, wsi, c);
    return static_http(gw, wsi, c, path); /* static.c: pages under web_root, else 404 */
}

/* Write the body, at most GW_HTTP_BODY bytes a writable callback, so a
   large one (/metrics) neither needs a large stack buffer nor holds the
   loop: lws calls back when the socket takes more. */
static int s_http_write(struct lws *wsi, gw_conn_t *c)
{
    size_t left = c->http_body && c->http_len > c->http_off ? c->http_len - c->http_off : 0;
    size_t n = left > GW_HTTP_BODY ? GW_HTTP_BODY : left;
    bool last = n == left;
    unsigned char buf[LWS_PRE + GW_HTTP_BODY];
    if (n)
        memcpy(buf + LWS_PRE, c->http_body + c->http_off, n);
    c->http_off += n;
    if (last)
        http_body_free(c);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return 1;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* --------------------------------------------------- upgrade filtering */

/* Origin allowlist: empty list = same origin, or no Origin at all. */
static bool s_origin_allowed(gateway_t *gw, struct lws *wsi)
{
    char origin[256] = "", host[256] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
        return true;
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return false;
    if (gw->cfg.origins[0]) {
        const char *p = gw->cfg.origins;
        size_t n = strlen(origin);
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == n && strncmp(p, origin, n) == 0)
                return true;
            if (!e)
                break;
            p = e + 1;
        }
        return false;
    }
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0)
        return false;
    const char *o = strstr(origin, "://");
    return o && strcmp(o + 3, host) == 0;
}

/* Refuse an upgrade with an HTTP status instead of a bare hang-up, so a
   client (or the operator reading its error) learns why. lws 4.1 has no
   way to answer from the filter callback, but nothing has been written
   on the socket yet (the 101 comes after the filter), so one short
   non-blocking send() of the whole answer cannot interleave with lws's
   own output; lws then closes the connection. Returns 1 (refused). */
static int s_refuse_upgrade(struct lws *wsi, int status, const char *reason)
{
    char body[96], head[256];
    int blen = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", reason);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                        "content-length: %d\r\ncache-control: no-store\r\n"
                        "connection: close\r\n\r\n%s",
                        status, reason, blen, body);
    int fd = (int)lws_get_socket_fd(wsi);
    /* over TLS the bytes would have to go through lws's TLS session, which
       the filter cannot write to: the client sees the connection close */
    if (lws_is_ssl(wsi))
        fd = -1;
    if (fd >= 0 && hlen > 0 && hlen < (int)sizeof head)
        (void)send(fd, head, (size_t)hlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    return 1;
}

static int s_filter(gateway_t *gw, struct lws *wsi)
{
    /* lws redirects a plain http:// request on the TLS port, but lets a
       plain ws:// upgrade through: tokens, audio and captions in clear */
    if (gw->cfg.tls_cert_file[0] && !lws_is_ssl(wsi))
        return s_refuse_upgrade(wsi, 403, "Forbidden");
    char uri[64] = "";
    if (gw->draining)
        return s_refuse_upgrade(wsi, 503, "Service Unavailable");
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/ws") != 0)
        return s_refuse_upgrade(wsi, 404, "Not Found");
    if (!s_origin_allowed(gw, wsi)) {
        tolk_warn("upgrade", NULL, "refused an upgrade from a foreign origin");
        gw->errors++;
        return s_refuse_upgrade(wsi, 403, "Forbidden");
    }
    return 0;
}

/* ------------------------------------------------------------ connect */

static void s_route_error(gateway_t *gw, gw_conn_t *c, const char *action, bool close)
{
    conn_error(gw, c, 503, "SERVICE_UNAVAILABLE", "no worker is available, try again shortly",
               action, 0, close);
}

/* Read the connect URL, authenticate a speaker, and hand the rest to a
   control worker. */
static void s_connect(gateway_t *gw, struct lws *wsi, gw_conn_t *c)
{
    tolk_query_t q;
    tolk_query_init(&q);
    int rc = TOLK_QUERY_OK;
    char *pair = malloc(TOLK_QUERY_KEY_MAX + TOLK_QUERY_VALUE_MAX + 3);
    for (int i = 0; pair && rc == TOLK_QUERY_OK; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0)
            break;
        if (i >= TOLK_QUERY_MAX_PARAMS) {
            rc = TOLK_QUERY_ETOOMANY;
            break;
        }
        if (flen > TOLK_QUERY_KEY_MAX + TOLK_QUERY_VALUE_MAX + 1) {
            rc = TOLK_QUERY_ETOOLONG;
            /* a value over the cap: the token is the one that can be that long */
            snprintf(q.failed_key, sizeof q.failed_key, "token");
            break;
        }
        int n = lws_hdr_copy_fragment(wsi, pair, TOLK_QUERY_KEY_MAX + TOLK_QUERY_VALUE_MAX + 3,
                                      WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        rc = tolk_query_add(&q, pair, (size_t)n);
    }
    free(pair);
    const char *action = tolk_query_get(&q, "action");
    if (rc == TOLK_QUERY_ETOOLONG && strcmp(q.failed_key, "token") == 0) {
        conn_error(gw, c, 401, "UNAUTHENTICATED", "the token is too large", action, 0, true);
        goto done;
    }
    if (rc != TOLK_QUERY_OK) {
        conn_error(gw, c, 400, "INVALID_PARAMETERS", "the connect URL could not be read", NULL, 0,
                   true);
        goto done;
    }
    if (!action || (strcmp(action, "createSession") && strcmp(action, "joinSession") &&
                    strcmp(action, "refreshConnection") && strcmp(action, "getTranscript"))) {
        conn_error(gw, c, 400, "INVALID_PARAMETERS",
                   "action must be createSession, joinSession, refreshConnection or getTranscript",
                   NULL, 0, true);
        goto done;
    }
    const char *role = tolk_query_get(&q, "role");
    /* a transcript is the speaker's: it takes the speaker's token */
    bool speaker =
        strcmp(action, "createSession") == 0 || strcmp(action, "getTranscript") == 0 ||
        (strcmp(action, "refreshConnection") == 0 && role && strcmp(role, "speaker") == 0);
    tolk_jwt_claims_t claims = {.sub = ""};
    if (speaker) {
        const char *token = tolk_query_get(&q, "token");
        const char *reason = "missing token";
        if (!token || tolk_jwt_verify(&gw->jwt, token, time(NULL), &claims, &reason) != 0) {
            tolk_warn("authenticate", c->id_hash, "speaker token refused: %s", reason);
            conn_error(gw, c, 401, "UNAUTHENTICATED", "the speaker token is not valid", action, 0,
                       true);
            goto done;
        }
    }
    /* everything but the token goes to the worker */
    json_t *params = json_object();
    for (int i = 0; i < q.count; i++)
        if (strcmp(q.params[i].key, "token") != 0)
            json_object_set_new(params, q.params[i].key, json_string(q.params[i].value));
    if (speaker)
        json_object_set_new(params, "sub", json_string(claims.sub));
    json_object_set_new(params, "clientHash", json_string(c->client_hash));
    char *text = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (!text) {
        conn_error(gw, c, 500, "INTERNAL_ERROR", "out of memory", action, 0, true);
        goto done;
    }
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_CONNECT);
    env.conn = c->id;
    const char *sid = tolk_query_get(&q, "sessionId");
    if (sid)
        tolk_envelope_set_str(env.session, sizeof env.session, sid);
    env.role = speaker ? TOLK_ROLE_SPEAKER : TOLK_ROLE_LISTENER;
    env.payload = (const uint8_t *)text;
    env.payload_len = strlen(text);
    char key[TOLK_ID_MAX + 32];
    if (env.session[0])
        snprintf(key, sizeof key, "%s", env.session);
    else
        snprintf(key, sizeof key, "conn:%llu", (unsigned long long)c->id);
    c->connecting = true;
    if (bridge_route(gw, TOLK_WORKER_CONTROL, key, &env) != 0) {
        c->connecting = false;
        s_route_error(gw, c, action, true);
    }
    free(text);
done:
    tolk_query_reset(&q);
    (void)wsi;
}

/* --------------------------------------------------------- frames in */

static bool s_rate_ok(gateway_t *gw, gw_conn_t *c)
{
    uint64_t now = tolk_now_ns();
    double rate = gw->cfg.control_rate_per_s;
    c->tokens += (double)(now - c->tokens_ns) / 1e9 * rate;
    if (c->tokens > rate)
        c->tokens = rate;
    c->tokens_ns = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

static void s_heartbeat(gateway_t *gw, gw_conn_t *c)
{
    char json[256];
    int64_t now = tolk_now_ms();
    long age_s = (long)((now - c->opened_ms) / 1000);
    snprintf(json, sizeof json,
             "{\"type\":\"heartbeatAck\",\"connectionAge\":%ld,\"timestamp\":%lld}", age_s,
             (long long)now);
    conn_send_text(gw, c, json);
    if (age_s >= gw->cfg.refresh_warning_s) {
        snprintf(json, sizeof json,
                 "{\"type\":\"connectionWarning\",\"message\":\"the connection will be closed "
                 "soon, refresh it now\",\"connectionAge\":%ld,\"timestamp\":%lld}",
                 age_s, (long long)now);
        conn_send_text(gw, c, json);
    } else if (age_s >= gw->cfg.refresh_required_s) {
        snprintf(json, sizeof json,
                 "{\"type\":\"connectionRefreshRequired\",\"sessionId\":\"%s\",\"role\":\"%s\","
                 "\"connectionAge\":%ld,\"timestamp\":%lld}",
                 c->session, c->role == TOLK_ROLE_SPEAKER ? "speaker" : "listener", age_s,
                 (long long)now);
        conn_send_text(gw, c, json);
    }
}

static void s_forward(gateway_t *gw, gw_conn_t *c, tolk_kind_t kind, tolk_worker_kind_t route,
                      const char *action)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, kind);
    env.conn = c->id;
    tolk_envelope_set_str(env.session, sizeof env.session, c->session);
    env.role = c->role;
    tolk_envelope_set_str(env.lang, sizeof env.lang, c->lang);
    env.age_ms = (uint64_t)(tolk_now_ms() - c->opened_ms);
    env.payload = c->rx;
    env.payload_len = c->rx_len;
    if (bridge_route(gw, route, c->session, &env) != 0)
        s_route_error(gw, c, action, false);
}

static void s_send_audio(gateway_t *gw, gw_conn_t *c);

static void s_text(gateway_t *gw, gw_conn_t *c)
{
    frame_verdict_t v;
    /* an empty message has no buffer */
    if (frame_check_text(c->rx ? (const char *)c->rx : "", c->rx_len, &v) != 0) {
        conn_error(gw, c, v.status, v.code, v.message, v.action[0] ? v.action : NULL, 0, false);
        return;
    }
    if (v.rate_limited && !s_rate_ok(gw, c)) {
        conn_error(gw, c, 429, "RATE_LIMIT_EXCEEDED", "too many control messages", v.action, 1,
                   false);
        return;
    }
    if (v.route == FRAME_ROUTE_HEARTBEAT) {
        s_heartbeat(gw, c);
        return;
    }
    if (!c->bound) {
        conn_error(gw, c, 400, "INVALID_MESSAGE", "the connection is not part of a session yet",
                   v.action, 0, false);
        return;
    }
    if (v.route == FRAME_ROUTE_AUDIO) {
        s_send_audio(gw, c);
        return;
    }
    s_forward(gw, c, TOLK_KIND_MESSAGE, frame_route_kind(v.route), v.action);
}

/* One audio chunk from a binary frame (json false) or a decoded sendAudio
   (json true, which is acknowledged): check it, count it against the
   speaker's rate, drop it while paused or muted, else hand its PCM to the
   audio worker that owns the session's stream. */
static void s_audio(gateway_t *gw, gw_conn_t *c, const uint8_t *data, size_t len, bool json)
{
    if (!c->bound) {
        conn_error(gw, c, 400, "INVALID_MESSAGE", "the connection is not part of a session yet",
                   "sendAudio", 0, false);
        return;
    }
    if (c->role != TOLK_ROLE_SPEAKER) {
        conn_error(gw, c, 403, "UNAUTHORIZED", "only the speaker sends audio", "sendAudio", 0,
                   false);
        return;
    }
    audio_verdict_t v;
    if (audio_check_chunk(data, len, &v) != 0) {
        conn_error(gw, c, v.status, v.code, v.message, "sendAudio", 0, false);
        return;
    }
    if (!c->arate && !(c->arate = calloc(1, sizeof *c->arate)))
        return;
    switch (audio_rate_admit(c->arate, tolk_now_ns(), gw->cfg.audio_rate_per_s,
                             gw->cfg.audio_warn_after_s, gw->cfg.audio_close_after_s)) {
        case AUDIO_RATE_ACCEPT:
            break;
        case AUDIO_RATE_DROP:
            gw->audio_dropped_rate++;
            if (json)
                conn_error(gw, c, 429, "RATE_LIMIT_EXCEEDED", "too many audio chunks, dropped",
                           "sendAudio", 1, false);
            return;
        case AUDIO_RATE_WARN:
            gw->audio_dropped_rate++;
            tolk_warn("audio", c->id_hash, "speaker over the audio chunk rate, warned");
            conn_error(gw, c, 429, "RATE_LIMIT_EXCEEDED",
                       "audio is arriving faster than the chunk rate limit; excess chunks are "
                       "dropped and the connection will be closed if this goes on",
                       "sendAudio", 1, false);
            return;
        case AUDIO_RATE_CLOSE:
            gw->audio_dropped_rate++;
            tolk_warn("audio", c->id_hash, "speaker over the audio chunk rate too long, closing");
            conn_error(gw, c, 429, "RATE_LIMIT_EXCEEDED",
                       "audio stayed over the chunk rate limit; closing the connection",
                       "sendAudio", 1, true);
            return;
    }
    if (c->sess && c->sess->audio_off) {
        gw->audio_dropped_off++;
    } else {
        tolk_envelope_t env;
        tolk_envelope_init(&env, TOLK_KIND_AUDIO);
        env.conn = c->id;
        tolk_envelope_set_str(env.session, sizeof env.session, c->session);
        env.role = c->role;
        tolk_envelope_set_str(env.lang, sizeof env.lang, c->lang);
        env.sent_ns = tolk_now_ns();
        env.payload = data + v.pcm_offset;
        env.payload_len = v.pcm_len;
        if (bridge_route_pinned(gw, TOLK_WORKER_AUDIO, c->session, &env,
                                c->sess ? c->sess->audio_worker : NULL) != 0) {
            int64_t now = tolk_now_ms();
            if (json || now - c->last_unavailable_ms >= 1000) {
                c->last_unavailable_ms = now;
                s_route_error(gw, c, "sendAudio", false);
            }
            return;
        }
        gw->audio_chunks++;
    }
    if (json) {
        char ack[160];
        snprintf(ack, sizeof ack,
                 "{\"type\":\"audioReceived\",\"sessionId\":\"%s\",\"timestamp\":%lld}", c->session,
                 (long long)tolk_now_ms());
        conn_send_text(gw, c, ack);
    }
}

/* The JSON form of audio: base64 in "audioData". */
static void s_send_audio(gateway_t *gw, gw_conn_t *c)
{
    audio_verdict_t v;
    if (c->bound && c->role != TOLK_ROLE_SPEAKER) {
        conn_error(gw, c, 403, "UNAUTHORIZED", "only the speaker sends audio", "sendAudio", 0,
                   false);
        return;
    }
    long n = audio_decode_send_audio((const char *)c->rx, c->rx_len, gw->pcm, sizeof gw->pcm, &v);
    if (n < 0) {
        conn_error(gw, c, v.status, v.code, v.message, "sendAudio", 0, false);
        return;
    }
    s_audio(gw, c, gw->pcm, (size_t)n, true);
}

/* ------------------------------------------------------------- idleness */

static void s_idle_unlink(gateway_t *gw, gw_conn_t *c)
{
    if (!c->in_idle_list)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        gw->idle_oldest = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        gw->idle_newest = c->iprev;
    c->inext = c->iprev = NULL;
    c->in_idle_list = false;
}

/* The peer spoke: it becomes the newest end of the idle list, O(1). */
static void s_idle_touch(gateway_t *gw, gw_conn_t *c)
{
    c->last_in_ms = tolk_now_ms();
    s_idle_unlink(gw, c);
    c->iprev = gw->idle_newest;
    c->inext = NULL;
    if (gw->idle_newest)
        gw->idle_newest->inext = c;
    else
        gw->idle_oldest = c;
    gw->idle_newest = c;
    c->in_idle_list = true;
}

void ws_close_idle(gateway_t *gw)
{
    if (gw->cfg.idle_timeout_s <= 0)
        return;
    int64_t now = tolk_now_ms(), limit = (int64_t)gw->cfg.idle_timeout_s * 1000;
    while (gw->idle_oldest && now - gw->idle_oldest->last_in_ms >= limit) {
        gw_conn_t *c = gw->idle_oldest;
        s_idle_unlink(gw, c); /* out of the list: its close takes a while */
        char json[256];
        snprintf(json, sizeof json,
                 "{\"type\":\"connectionTimeout\",\"message\":\"no message for %d s, closing "
                 "the connection\",\"idleSeconds\":%d,\"timestamp\":%lld}",
                 gw->cfg.idle_timeout_s, (int)((now - c->last_in_ms) / 1000), (long long)now);
        conn_send_text(gw, c, json);
        conn_close_after(c, 4408);
        gw->idle_closed++;
        tolk_info("idle", c->id_hash, "closed an idle connection");
    }
}

/* Check n more bytes of UTF-8 from where u stands (RFC 3629). A text
   message is checked chunk by chunk as it arrives, so a bad byte ends the
   connection at once, and a sequence may be split across fragments;
   u->need is 0 where a message may end. */
static bool s_utf8(gw_utf8_t *u, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = p[i];
        if (u->need) {
            if (b < u->lo || b > u->hi)
                return false;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xBF;
            continue;
        }
        u->lo = 0x80;
        u->hi = 0xBF;
        if (b < 0x80)
            continue;
        if (b >= 0xC2 && b <= 0xDF)
            u->need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            u->need = 2;
            if (b == 0xE0)
                u->lo = 0xA0; /* overlong */
            else if (b == 0xED)
                u->hi = 0x9F; /* surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            u->need = 3;
            if (b == 0xF0)
                u->lo = 0x90; /* overlong */
            else if (b == 0xF4)
                u->hi = 0x8F; /* past U+10FFFF */
        } else
            return false; /* C0, C1, F5-FF, or a stray continuation byte */
    }
    return true;
}

/* Fail the connection with close code code (RFC 6455 7.4.1): input is
   ignored from now on and lws sends the close frame. Returns -1, what the
   lws callback returns to close. */
static int s_fail(gateway_t *gw, struct lws *wsi, gw_conn_t *c, int code, const char *why)
{
    tolk_warn("receive", c->id_hash, "%s, closing with %d", why, code);
    gw->errors++;
    c->closing = true;
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)why, strlen(why));
    return -1;
}

/* Reassemble fragments, refusing anything over 128 KB before buffering it:
   lws hands a frame over in pieces of at most GW_RX_CHUNK bytes together
   with what is left of the frame, so the first piece of a frame that
   announces too much, or the piece that takes a fragmented message past
   the limit, closes the connection. */
static int s_receive(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const void *in, size_t len)
{
    if (c->closing || c->close_code)
        return 0;
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_binary = lws_frame_is_binary(wsi);
        memset(&c->rx_utf8, 0, sizeof c->rx_utf8);
    }
    size_t remaining = lws_remaining_packet_payload(wsi);
    bool last = !remaining && lws_is_final_fragment(wsi);
    if (!c->rx_binary && (!s_utf8(&c->rx_utf8, in, len) || (last && c->rx_utf8.need)))
        return s_fail(gw, wsi, c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text is not UTF-8");
    if (c->rx_len + len + remaining > TOLK_PAYLOAD_MAX)
        return s_fail(gw, wsi, c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message over 128 KB");
    if (c->rx_len + len > c->rx_cap) {
        size_t want = c->rx_len + len + remaining;
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < want)
            cap *= 2;
        if (cap > TOLK_PAYLOAD_MAX)
            cap = TOLK_PAYLOAD_MAX;
        unsigned char *rx = realloc(c->rx, cap);
        if (!rx)
            return s_fail(gw, wsi, c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        c->rx = rx;
        c->rx_cap = cap;
    }
    if (len) /* an empty fragment may come before any buffer exists */
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!last)
        return 0;
    gw->messages_in++;
    s_idle_touch(gw, c);
    if (c->rx_binary)
        s_audio(gw, c, c->rx, c->rx_len, false);
    else
        s_text(gw, c);
    /* a speaker's buffer is kept (audio keeps coming); anyone else's, and
       any large one, is given back, so an idle listener holds none */
    if (c->rx_cap > 16384 || !c->arate) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    c->rx_len = 0;
    return 0;
}

/* A close code a peer may send (RFC 6455 7.4, and the IANA registry for
   1012-1014): not 1004-1006 or 1015 (reserved, or never on the wire),
   nothing unassigned below 3000, nothing from 5000. */
static bool s_close_code_ok(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* The peer's close frame. lws echoes it as it is, even a 1-byte body, a
   code such as 5000, or a reason that is not UTF-8 (it only rewrites the
   codes below 3000 it knows are wrong): those are refused here with 1002
   or 1007 instead. Returns -1 to close with our code, else 0. */
static int s_peer_close(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const unsigned char *b,
                        size_t len)
{
    c->peer_closed = true;
    if (len == 0)
        return 0; /* no code at all is allowed; the echo has none either */
    int code = len >= 2 ? (b[0] << 8) | b[1] : 0;
    if (len == 1 || !s_close_code_ok(code))
        return s_fail(gw, wsi, c, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close frame");
    gw_utf8_t u = {0};
    if (!s_utf8(&u, b + 2, len - 2) || u.need)
        return s_fail(gw, wsi, c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "close reason is not UTF-8");
    c->peer_clean = code == 1000;
    return 0;
}

/* Fail the connection at once (RFC 6455 7.1.7: send the Close frame,
   then process no more data): write the close frame lws holds for it and
   shut our side of TCP, instead of leaving the frame to lws. lws 4.1
   queues it for the next writable moment (LRS_WAITING_TO_SEND_CLOSE) and
   goes on reading the peer's input meanwhile: with libev its read watcher
   runs before its write watcher, and its poll() loop serves the same slot
   again with the same POLLIN. A second framing error in that input, which
   is certain when the first was found by lws (its parser stays on the
   byte that failed, so whatever follows is garbage to it), takes lws's
   "tried the polite way" path in close.c: shutdown and close, the close
   frame never written, and the peer sees 1006 (itest_abuse's "pong
   fragmented (FIN=0)" when the gateway read the pong and its continuation
   apart). Only when lws holds no partial frame and the socket has room
   (lws_send_pipe_choked), so the frame cannot interleave or be cut;
   otherwise lws sends it as before. lws's own copy then fails on the shut
   socket (EPIPE) and lws closes the connection. */
static void s_fail_now(struct lws *wsi)
{
    int len = lws_get_close_length(wsi);
    int fd = (int)lws_get_socket_fd(wsi);
    unsigned char frame[2 + 125];
    if (fd < 0 || len < 2 || len > 125 || lws_send_pipe_choked(wsi))
        return;
    frame[0] = 0x88;               /* FIN, opcode close */
    frame[1] = (unsigned char)len; /* a server's frames are not masked */
    memcpy(frame + 2, lws_get_close_payload(wsi), (size_t)len);
    if (send(fd, frame, (size_t)len + 2, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
        (void)shutdown(fd, SHUT_WR);
}

/* lws is closing a WebSocket; this callback comes before lws decides
   whether to send a close frame. A connection failed for a protocol
   violation, found by us (s_fail, closing set) or by lws (a close reason
   lws set), gets its close frame now (s_fail_now). When lws fails a
   connection for a framing error and sets no reason (a control frame
   over 125 bytes, for one) it would just drop TCP, which the peer sees as
   1006: such a connection gets 1002. Not after the peer's own legal close
   (lws echoes it), not for our orderly closes (close_code: the peer did
   nothing wrong), and not when the peer has gone (EOF or an error on the
   socket: nobody to tell). */
static void s_dropping(struct lws *wsi, gw_conn_t *c)
{
    if (!c || !c->counted || c->close_code)
        return;
    if (!c->closing) {
        if (c->peer_closed)
            return;
        if (lws_get_close_length(wsi) == 0) {
            char b;
            int fd = (int)lws_get_socket_fd(wsi);
            ssize_t n = fd >= 0 ? recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) : 0;
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                return;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)"protocol error",
                             14);
        }
        c->closing = true; /* what the peer sends from now on is ignored */
    }
    s_fail_now(wsi);
}

/* --------------------------------------------------------- lifecycle */

/* A request header's value, malloc'd; NULL when absent. *present says
   whether the client sent it at all, so that one too long to read (over
   the 16 KB lws keeps of headers) is never taken for an absent one.
   custom: lws has no token for it, so it is looked up by its "name:";
   lws gives the first such line. */
static char *s_header_value(struct lws *wsi, int token, const char *custom, bool *present)
{
    int len = custom ? lws_hdr_custom_length(wsi, custom, (int)strlen(custom))
                     : lws_hdr_total_length(wsi, (enum lws_token_indexes)token);
    *present = len > 0;
    if (len <= 0 || len > 16384)
        return NULL;
    char *v = malloc((size_t)len + 1);
    int got = !v       ? -1
              : custom ? lws_hdr_custom_copy(wsi, v, len + 1, custom, (int)strlen(custom))
                       : lws_hdr_copy(wsi, v, len + 1, (enum lws_token_indexes)token);
    if (got < 0) {
        free(v);
        return NULL;
    }
    return v;
}

/* Where the connection comes from: the TCP peer, or, from a trusted proxy,
   the client its forwarding headers name (client_addr.h). */
static void s_client_addr(gateway_t *gw, struct lws *wsi, char out[GW_ADDR_MAX])
{
    char peer[128] = "";
    lws_get_peer_simple(wsi, peer, sizeof peer);
    if (!gw_proxies_trusts(&gw->proxies, peer)) {
        gw_client_addr(&gw->proxies, peer, NULL, NULL, out);
        return;
    }
    bool has_xff, has_fwd = false;
    char *xff = s_header_value(wsi, WSI_TOKEN_X_FORWARDED_FOR, NULL, &has_xff);
    char *fwd = has_xff ? NULL : s_header_value(wsi, 0, "forwarded:", &has_fwd);
    if ((has_xff && !xff) || (has_fwd && !fwd)) {
        /* there, but unreadable: what we know is the proxy, and a client
           must not get its own Forwarded read instead */
        gw_client_addr(&gw->proxies, peer, NULL, NULL, out);
        return;
    }
    gw_client_addr(&gw->proxies, peer, xff, fwd, out);
    free(xff);
    free(fwd);
}

static void s_established(gateway_t *gw, struct lws *wsi, gw_conn_t *c)
{
    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    c->id = ++gw->next_conn_id;
    tolk_log_hash_u64(c->id ^ (uint64_t)(uintptr_t)gw, c->id_hash);
    c->opened_ms = tolk_now_ms();
    c->tokens = gw->cfg.control_rate_per_s;
    c->tokens_ns = tolk_now_ns();
    char client[GW_ADDR_MAX];
    s_client_addr(gw, wsi, client);
    tolk_log_hash(client, strlen(client), c->client_hash);
    /* a fixed kernel send buffer (no autotuning up to tcp_wmem's 4 MB): a
       listener that stops reading fills it in seconds, then its send queue,
       and is closed with 1013 instead of parking megabytes in the kernel */
    int sndbuf = GW_SNDBUF;
    int fd = (int)lws_get_socket_fd(wsi);
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    c->counted = true;
    gw->connections++;
    index_add_conn(gw, c);
    s_idle_touch(gw, c);
    s_connect(gw, wsi, c);
}

static void s_closed(gateway_t *gw, gw_conn_t *c)
{
    if (!c->counted)
        return;
    if (c->bound) {
        tolk_envelope_t env;
        tolk_envelope_init(&env, TOLK_KIND_DISCONNECT);
        env.conn = c->id;
        tolk_envelope_set_str(env.session, sizeof env.session, c->session);
        env.role = c->role;
        tolk_envelope_set_str(env.lang, sizeof env.lang, c->lang);
        env.flags = c->peer_clean ? TOLK_FLAG_CLEAN : 0;
        env.age_ms = (uint64_t)(tolk_now_ms() - c->opened_ms);
        if (bridge_route(gw, TOLK_WORKER_CONTROL, c->session, &env) != 0)
            tolk_warn("disconnect", c->id_hash, "no control worker: the sweeper will clean up");
    }
    index_remove_conn(gw, c);
    s_idle_unlink(gw, c);
    free(c->arate);
    c->arate = NULL;
    catchup_reset(c);
    conn_clear_queue(c);
    free(c->rx);
    c->rx = NULL;
    c->wsi = NULL;
    c->counted = false;
    gw->connections--;
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    gateway_t *gw = gateway_of(wsi);
    gw_conn_t *c = user;
    switch (reason) {
        case LWS_CALLBACK_HTTP:
            return s_http(gw, wsi, c, (const char *)in);
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return s_http_write(wsi, c);
        case LWS_CALLBACK_CLOSED_HTTP:
        case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        case LWS_CALLBACK_WSI_DESTROY:
            /* a reply whose write never came (the peer left, a HEAD, a
               failed header write): whichever of these lws sends last */
            if (c)
                http_body_free(c);
            break;
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            return s_filter(gw, wsi);
        case LWS_CALLBACK_ESTABLISHED:
            s_established(gw, wsi, c);
            return 0;
        case LWS_CALLBACK_RECEIVE:
            return s_receive(gw, wsi, c, in, len);
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return conn_write_next(gw, c) < 0 ? -1 : 0;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            return s_peer_close(gw, wsi, c, in, len);
        case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
            s_dropping(wsi, c);
            break;
        case LWS_CALLBACK_CLOSED:
            s_closed(gw, c);
            return 0;
        default:
            break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ------------------------------------------------------------ drain */

void ws_drain_all(gateway_t *gw)
{
    char json[256];
    for (gw_conn_t *c = zhashx_first(gw->conns); c; c = zhashx_next(gw->conns)) {
        if (!c->bound)
            continue; /* not in a session yet: nothing to refresh, it is closed at the deadline */
        snprintf(json, sizeof json,
                 "{\"type\":\"connectionRefreshRequired\",\"sessionId\":\"%s\",\"role\":\"%s\","
                 "\"reason\":\"serverShutdown\",\"timestamp\":%lld}",
                 c->session, c->role == TOLK_ROLE_SPEAKER ? "speaker" : "listener",
                 (long long)tolk_now_ms());
        conn_send_text(gw, c, json);
    }
}

void ws_close_all(gateway_t *gw, int code)
{
    for (gw_conn_t *c = zhashx_first(gw->conns); c; c = zhashx_next(gw->conns))
        conn_close_after(c, code);
}
