/*  main.c -- tolk-gateway: WebSocket and HTTP front of tolk.

    Sets up the lws context, the ROUTER inside the lws loop, the registry
    heartbeat and the status feed, then runs the loop. Signals only set a
    flag; the 100 ms cron turns SIGTERM into a drain: refuse new
    connections, ask every client to refresh, wait a bounded time, close.
*/
#include "cli.h"
#include "gateway.h"
#include "ids.h"
#include "jwt_check.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

gateway_t *g_gateway;
tolk_jwt_policy_t g_jwt_policy;
static unsigned char *s_jwt_key; /* secret or PEM, owned here */

static struct lws_protocols s_protocols[] = {
    {"tolk", ws_callback, sizeof(gw_conn_t), GW_RX_CHUNK, 0, NULL, 0},
    {"tolk-zmq", zmq_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void s_on_signal(int sig)
{
    (void)sig;
    if (g_gateway)
        g_gateway->stop_requested = 1;
}

static int s_load_jwt(const tolk_config_t *cfg)
{
    g_jwt_policy.alg = tolk_jwt_alg_from_name(cfg->jwt_alg);
    if (!g_jwt_policy.alg) {
        fprintf(stderr, "tolk-gateway: unknown jwt_alg %s\n", cfg->jwt_alg);
        return -1;
    }
    if (g_jwt_policy.alg == TOLK_JWT_HS256) {
        if (strlen(cfg->jwt_secret) < 16) {
            fprintf(stderr, "tolk-gateway: jwt_secret must be at least 16 bytes\n");
            return -1;
        }
        s_jwt_key = (unsigned char *)strdup(cfg->jwt_secret);
        g_jwt_policy.key_len = strlen(cfg->jwt_secret);
    } else {
        FILE *f = fopen(cfg->jwt_public_key_file, "r");
        if (!f) {
            fprintf(stderr, "tolk-gateway: cannot read jwt_public_key_file\n");
            return -1;
        }
        s_jwt_key = calloc(1, 16385);
        g_jwt_policy.key_len = s_jwt_key ? fread(s_jwt_key, 1, 16384, f) : 0;
        fclose(f);
    }
    g_jwt_policy.key = s_jwt_key;
    g_jwt_policy.issuer = cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL;
    g_jwt_policy.audience = cfg->jwt_audience[0] ? cfg->jwt_audience : NULL;
    g_jwt_policy.leeway_s = cfg->jwt_leeway_s;
    return 0;
}

/* Push the counters into the status feed. */
static void s_publish_status(gateway_t *gw)
{
    if (!gw->feed)
        return;
    tolk_statfeed_set(gw->feed, "connections", gw->connections);
    tolk_statfeed_set(gw->feed, "sessions", gw->sessions_local);
    tolk_statfeed_set(gw->feed, "messages_in", gw->messages_in);
    tolk_statfeed_set(gw->feed, "messages_out", gw->messages_out);
    tolk_statfeed_set(gw->feed, "errors", gw->errors);
    tolk_statfeed_set(gw->feed, "partials_replaced", gw->partials_replaced);
    tolk_statfeed_set(gw->feed, "catchups", gw->catchups);
    tolk_statfeed_set(gw->feed, "finals_deduplicated", gw->finals_deduplicated);
    tolk_statfeed_set(gw->feed, "speech_frames", gw->speech_frames);
    tolk_statfeed_set(gw->feed, "audio_chunks", gw->audio_chunks);
    tolk_statfeed_set(gw->feed, "audio_dropped_rate", gw->audio_dropped_rate);
    tolk_statfeed_set(gw->feed, "audio_dropped_paused", gw->audio_dropped_off);
    tolk_statfeed_set(gw->feed, "idle_closed", gw->idle_closed);
    tolk_statfeed_set(gw->feed, "slow_closed", gw->slow_closed);
    for (int k = 0; k < GW_WORKER_KINDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "workers_%s", gw_kind_names[k]);
        tolk_statfeed_set(gw->feed, name, bridge_live_count(gw, k));
    }
    tolk_statfeed_report(gw->feed, gw->redis);
}

/* The 100 ms cron: heartbeats, registry, status, drain. */
static void s_tick(lws_sorted_usec_list_t *sul)
{
    gateway_t *gw = g_gateway;
    (void)sul;
    uint64_t now = tolk_now_ns();
    bridge_drain(gw);
    ws_close_idle(gw);
    if (now - gw->last_beat_ns >= (uint64_t)gw->cfg.heartbeat_ms * 1000000ULL) {
        gw->last_beat_ns = now;
        bridge_beat(gw);
        s_publish_status(gw);
    }
    if (gw->stop_requested && !gw->draining) {
        gw->draining = true;
        gw->drain_deadline_ns = now + (uint64_t)gw->cfg.drain_timeout_ms * 1000000ULL;
        tolk_info("drain", NULL, "draining %lld connections", (long long)gw->connections);
        ws_drain_all(gw);
    }
    if (gw->draining) {
        /* every client gone: done; deadline passed: close the rest, then go */
        if (gw->connections == 0)
            gw->done = true;
        else if (now > gw->drain_deadline_ns) {
            ws_close_all(gw, LWS_CLOSE_STATUS_GOINGAWAY);
            if (now > gw->drain_deadline_ns + 2000000000ULL)
                gw->done = true;
        }
    }
    if (gw->done && gw->evlib) {
        /* libev runs its loop inside lws_service(): a destroy from inside
           the loop ends it, and main's second destroy frees the rest */
        lws_context_destroy(gw->lws);
        return;
    }
    lws_sul_schedule(gw->lws, 0, &gw->tick_sul, s_tick, 100 * LWS_US_PER_MS);
}

static void s_lws_log(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    tolk_log(level == LLL_ERR ? TOLK_LOG_ERROR : TOLK_LOG_WARN, "lws", NULL, NULL, "%s", msg);
}

int main(int argc, char **argv)
{
    static gateway_t gateway;
    gateway_t *gw = &gateway;
    int rc = tolk_cli_start(argc, argv, "tolk-gateway",
                            "The WebSocket/HTTP gateway of tolk: serves /ws, /healthz, /readyz\n"
                            "and the pages under web_root on TOLK_PORT, and hands messages to\n"
                            "the workers over ZeroMQ.",
                            &gw->cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("gateway", gw->cfg.log_level);
    if (s_load_jwt(&gw->cfg) != 0)
        return 1;
    zsys_init();
    zsys_handler_set(NULL); /* our own signal handling below */
    char prefix[32];
    snprintf(prefix, sizeof prefix, "gw%d", gw->cfg.port);
    tolk_make_id(gw->id, sizeof gw->id, prefix);
    gw->kind_required[0] = true; /* control: nothing works without it */
    gw->conns = zhashx_new();
    gw->sessions = zhashx_new();
    gw->redis = tolk_redis_new(gw->cfg.redis_host, gw->cfg.redis_port, gw->cfg.redis_timeout_ms);
    if (bridge_start(gw) != 0) {
        tolk_error("start", NULL, "cannot bind the worker backend");
        return 1;
    }
    gw->feed = tolk_statfeed_new(gw->cfg.status_endpoint, "gateway", gw->id);
    g_gateway = gw;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);

    lws_set_log_level(LLL_ERR | LLL_WARN, s_lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = gw->cfg.port;
    info.iface = gw->cfg.bind_address;
    info.protocols = s_protocols;
    /* no LWS_SERVER_OPTION_VALIDATE_UTF8: lws 4.1 answers bad UTF-8 in a
       close reason by dropping TCP without a close code, so ws.c checks
       text and close reasons itself and closes with 1007 (RFC 6455 8.1) */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;
    info.max_http_header_data = 16384;
    info.timeout_secs = 10;
    info.fd_limit_per_thread = 0;
    if (strcmp(gw->cfg.event_loop, "ev") != 0 && strcmp(gw->cfg.event_loop, "poll") != 0) {
        tolk_error("start", NULL, "event_loop is '%s': it must be ev or poll", gw->cfg.event_loop);
        return 1;
    }
    gw->evlib = strcmp(gw->cfg.event_loop, "ev") == 0;
    if (gw->evlib)
        info.options |= LWS_SERVER_OPTION_LIBEV;
    gw->lws = lws_create_context(&info);
    if (!gw->lws && gw->evlib) {
        /* the evlib plugin is a package of its own: poll() still works */
        tolk_warn("start", NULL, "libwebsockets' libev plugin did not load: using poll()");
        gw->evlib = false;
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
        gw->lws = lws_create_context(&info);
    }
    /* libev watches SIGINT itself and would end the loop at once: drain instead */
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    if (!gw->lws) {
        tolk_error("start", NULL, "cannot listen on %s:%d", gw->cfg.bind_address, gw->cfg.port);
        return 1;
    }
    gw->vhost = lws_get_vhost_by_name(gw->lws, "default");

    /* the ROUTER joins the lws loop through a duplicate of its ZMQ_FD */
    lws_sock_file_fd_type fd;
    fd.filefd = dup(zsock_fd(gw->router));
    gw->router_wsi =
        lws_adopt_descriptor_vhost(gw->vhost, LWS_ADOPT_RAW_FILE_DESC, fd, "tolk-zmq", NULL);
    if (!gw->router_wsi) {
        tolk_error("start", NULL, "cannot add the ZeroMQ socket to the event loop");
        return 1;
    }
    bridge_beat(gw);
    tolk_info("start", NULL, "gateway %s listening on %s:%d, backend %s", gw->id,
              gw->cfg.bind_address, gw->cfg.port, gw->endpoint);
    lws_sul_schedule(gw->lws, 0, &gw->tick_sul, s_tick, 100 * LWS_US_PER_MS);

    while (!gw->done) {
        int n = lws_service(gw->lws, 0); /* libev: returns when the loop has ended */
        if (n < 0 || (gw->evlib && n != 0))
            break;
    }

    tolk_info("stop", NULL, "gateway %s stopped", gw->id);
    redisReply *r = tolk_redis_command(gw->redis, "DEL tolk:gw:%s", gw->id);
    if (r)
        freeReplyObject(r);
    tolk_statfeed_retire(&gw->feed, gw->redis);
    lws_context_destroy(gw->lws);
    bridge_stop(gw);
    tolk_redis_destroy(&gw->redis);
    zhashx_destroy(&gw->conns);
    zhashx_destroy(&gw->sessions);
    free(s_jwt_key);
    return 0;
}
