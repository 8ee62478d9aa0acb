/*  gateway.c -- the gateway's constructor, its loop, the cron and the
    drain.

    The gateway creates one libev loop and gives it to libwebsockets (a
    foreign loop, lws's evlib plugin), to the ROUTER's watcher and to the
    asynchronous Redis link, so nothing on it waits on the network. A
    GW_TICK_S cron drains the ROUTER, closes idle connections, beats to the
    workers and renews the registry every heartbeat, and turns a stop
    request (SIGTERM) into a drain: refuse new connections, ask every
    client to refresh, wait a bounded time, close.
*/
#include "gateway.h"
#include "bridge.h"
#include "deliver.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The protocols lws serves: WebSockets and HTTP through one callback. */
static const struct lws_protocols s_protocols[] = {
    {"tolk", ws_callback, sizeof(gw_conn_t), GW_RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Load the speaker token policy: pinned algorithm, key, claims. */
static int s_load_jwt(gateway_t *self)
{
    const tolk_config_t *cfg = &self->cfg;
    self->jwt.alg = tolk_jwt_alg_from_name(cfg->jwt_alg);
    if (!self->jwt.alg) {
        tolk_error("start", NULL, "unknown jwt_alg %s", cfg->jwt_alg);
        return -1;
    }
    if (self->jwt.alg == TOLK_JWT_HS256) {
        if (strlen(cfg->jwt_secret) < 16) {
            tolk_error("start", NULL, "jwt_secret must be at least 16 bytes");
            return -1;
        }
        self->jwt_key = (unsigned char *)strdup(cfg->jwt_secret);
        self->jwt.key_len = self->jwt_key ? strlen(cfg->jwt_secret) : 0;
    } else {
        FILE *f = fopen(cfg->jwt_public_key_file, "r");
        if (!f) {
            tolk_error("start", NULL, "cannot read jwt_public_key_file");
            return -1;
        }
        self->jwt_key = calloc(1, 16385);
        self->jwt.key_len = self->jwt_key ? fread(self->jwt_key, 1, 16384, f) : 0;
        fclose(f);
    }
    if (!self->jwt_key)
        return -1;
    self->jwt.key = self->jwt_key;
    self->jwt.issuer = cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL;
    self->jwt.audience = cfg->jwt_audience[0] ? cfg->jwt_audience : NULL;
    self->jwt.leeway_s = cfg->jwt_leeway_s;
    return 0;
}

/* Start draining: refuse new connections, ask every client to refresh. */
static void s_drain_start(gateway_t *self, uint64_t now)
{
    self->draining = true;
    self->drain_deadline_ns = now + (uint64_t)self->cfg.drain_timeout_ms * 1000000ULL;
    tolk_info("drain", NULL, "draining %lld connections", (long long)self->connections);
    ws_drain_all(self);
}

/* The GW_TICK_S cron. */
static void s_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    gateway_t *self = w->data;
    uint64_t now = tolk_now_ns();
    bridge_drain(self);
    ws_close_idle(self);
    if (now - self->last_beat_ns >= (uint64_t)self->cfg.heartbeat_ms * 1000000ULL) {
        self->last_beat_ns = now;
        bridge_beat(self);
        presence_beat(self);
    } else
        presence_retry(self);
    if (*self->stop_requested && !self->draining)
        s_drain_start(self, now);
    if (self->draining) {
        /* every client gone: done; deadline passed: close the rest, then go */
        if (self->connections == 0)
            self->done = true;
        else if (now > self->drain_deadline_ns) {
            ws_close_all(self, LWS_CLOSE_STATUS_GOINGAWAY);
            if (now > self->drain_deadline_ns + 2000000000ULL)
                self->done = true;
        }
    }
    if (self->done)
        ev_break(loop, EVBREAK_ALL);
}

/* lws on our loop, listening on cfg.port. */
static int s_listen(gateway_t *self)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {self->loop}; /* read during lws_create_context only */
    info.port = self->cfg.port;
    info.iface = self->cfg.bind_address;
    info.protocols = s_protocols;
    info.user = self; /* what gateway_of finds */
    info.foreign_loops = loops;
    /* no LWS_SERVER_OPTION_VALIDATE_UTF8: lws 4.1 answers bad UTF-8 in a
       close reason by dropping TCP without a close code, so ws.c checks
       text and close reasons itself and closes with 1007 (RFC 6455 8.1) */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE |
                   LWS_SERVER_OPTION_LIBEV;
    if (self->cfg.tls_cert_file[0]) {
        /* HTTPS and WSS on the same port; a plain http:// request there is
           answered with a redirect to https:// instead of a TLS error */
        for (int i = 0; i < 2; i++) {
            const char *f = i ? self->cfg.tls_key_file : self->cfg.tls_cert_file;
            if (access(f, R_OK) != 0) {
                tolk_error("start", NULL, "%s %s: %s", i ? "tls_key_file" : "tls_cert_file", f,
                           strerror(errno));
                return -1;
            }
        }
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                        LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT |
                        LWS_SERVER_OPTION_REDIRECT_HTTP_TO_HTTPS;
        info.ssl_cert_filepath = self->cfg.tls_cert_file;
        info.ssl_private_key_filepath = self->cfg.tls_key_file;
        /* HTTP/1.1 only: lws 4.1's file serving over h2 never ends the
           stream (a page took the client's whole timeout), and WebSockets
           are RFC 6455 upgrades of HTTP/1.1 */
        info.alpn = "http/1.1";
    }
    info.max_http_header_data = 16384;
    info.timeout_secs = 10;
    info.fd_limit_per_thread = 0;
    self->lws = lws_create_context(&info);
    if (!self->lws) {
        tolk_error("start", NULL,
                   "cannot listen on %s:%d on libev (is libwebsockets' libev plugin, "
                   "libwebsockets-evlib-ev, installed?)",
                   self->cfg.bind_address, self->cfg.port);
        return -1;
    }
    return 0;
}

gateway_t *gateway_new(const tolk_config_t *cfg, volatile sig_atomic_t *stop_requested)
{
    if (strcmp(cfg->event_loop, "ev") != 0) {
        tolk_error("start", NULL,
                   "event_loop is '%s': the gateway runs on libev only (event_loop = ev), the "
                   "loop its asynchronous Redis link shares with libwebsockets",
                   cfg->event_loop);
        return NULL;
    }
    gateway_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->stop_requested = stop_requested;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "gw%d", cfg->port);
    tolk_make_id(self->id, sizeof self->id, prefix);
    self->kind_required[TOLK_WORKER_CONTROL] = true; /* nothing works without it */
    self->deliver = deliver_envelope;
    self->conns = zhashx_new();
    self->sessions = zhashx_new();
    self->loop = ev_loop_new(EVFLAG_AUTO);
    if (!self->conns || !self->sessions || !self->loop || s_load_jwt(self) != 0)
        goto err;
    char why[256];
    if (gw_proxies_parse(&self->proxies, cfg->trusted_proxies, why, sizeof why) != 0) {
        tolk_error("start", NULL, "%s", why);
        goto err;
    }
    if (bridge_start(self) != 0) {
        tolk_error("start", NULL, "cannot bind the worker backend");
        goto err;
    }
    if (presence_start(self) != 0 || s_listen(self) != 0)
        goto err;
    if (metrics_start(self) != 0) {
        tolk_error("start", NULL, "cannot follow the status feeds for /metrics");
        goto err;
    }
    ev_timer_init(&self->tick, s_tick, GW_TICK_S, GW_TICK_S);
    self->tick.data = self;
    ev_timer_start(self->loop, &self->tick);
    tolk_info("start", NULL, "gateway %s listening on %s:%d, backend %s", self->id,
              cfg->bind_address, cfg->port, self->endpoint);
    return self;
err:
    gateway_destroy(&self);
    return NULL;
}

void gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *self = *self_p;
    /* lws first: its connections' close callbacks still use the bridge
       (DISCONNECTs) and the index */
    if (self->lws)
        lws_context_destroy(self->lws);
    self->lws = NULL;
    if (self->loop)
        ev_timer_stop(self->loop, &self->tick);
    bridge_stop(self);
    metrics_stop(self);
    presence_stop(self);
    zhashx_destroy(&self->conns);
    zhashx_destroy(&self->sessions);
    if (self->loop)
        ev_loop_destroy(self->loop);
    free(self->jwt_key);
    free(self);
    *self_p = NULL;
}

int gateway_run(gateway_t *self)
{
    ev_run(self->loop, 0); /* until the cron breaks it, drained */
    tolk_info("stop", NULL, "gateway %s stopped", self->id);
    ev_timer_stop(self->loop, &self->tick);
    /* close what is left (DISCONNECTs go out on the ROUTER), stop reading
       the workers, then unregister: only the Redis link is left on the
       loop while presence_leave runs it */
    lws_context_destroy(self->lws);
    self->lws = NULL;
    bridge_stop(self);
    metrics_stop(self);
    presence_leave(self);
    return 0;
}

bool gateway_ready(gateway_t *self)
{
    return presence_ok(self) && !self->draining && bridge_ready(self);
}

gateway_t *gateway_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}
