/*  bridge.c -- the gateway's ROUTER: workers in, deliveries out.

    Workers connect DEALERs, say READY with their kind and beat every
    heartbeat (the zguide's Paranoid Pirate). A message goes to the live
    worker of its kind that wins the rendezvous hash of its session id, so
    one session's messages reach one worker in order, and when that worker
    dies only its sessions move. ROUTER_MANDATORY makes a send to a vanished
    worker fail loudly: the worker is marked dead and the next one tried.
*/
#include "gateway.h"
#include "log.h"

#include <errno.h>
#include <string.h>

const char *gw_kind_names[GW_WORKER_KINDS] = {"control", "status", "audio"};

int bridge_kind_from_name(const char *name)
{
    for (int i = 0; i < GW_WORKER_KINDS; i++)
        if (strcmp(name, gw_kind_names[i]) == 0)
            return i;
    return -1;
}

int bridge_start(gateway_t *gw)
{
    gw->router = zsock_new(ZMQ_ROUTER);
    if (!gw->router)
        return -1;
    zsock_set_router_mandatory(gw->router, 1);
    /* a worker that reconnects under its identity takes over its old pipe */
    zsock_set_router_handover(gw->router, 1);
    zsock_set_linger(gw->router, 1000);
    zsock_set_sndhwm(gw->router, 100000);
    zsock_set_rcvhwm(gw->router, 100000);
    zsock_set_sndtimeo(gw->router, 0);
    if (zsock_bind(gw->router, "tcp://%s:*", gw->cfg.backend_host) < 0) {
        zsock_destroy(&gw->router);
        return -1;
    }
    char *endpoint = zsock_last_endpoint(gw->router); /* ours to free */
    snprintf(gw->endpoint, sizeof gw->endpoint, "%s", endpoint ? endpoint : "");
    free(endpoint);
    return 0;
}

void bridge_stop(gateway_t *gw)
{
    zsock_destroy(&gw->router);
}

/* FNV-1a over two strings: the rendezvous score of (key, worker). */
static uint64_t s_score(const char *key, const char *worker)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = worker; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    /* final avalanche so nearby names spread */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static gw_worker_t *s_worker(gateway_t *gw, const char *id)
{
    for (int i = 0; i < gw->worker_count; i++)
        if (strcmp(gw->workers[i].id, id) == 0)
            return &gw->workers[i];
    return NULL;
}

static void s_mark_dead(gateway_t *gw, gw_worker_t *w, const char *why)
{
    gw->errors++;
    if (!w->alive)
        return;
    w->alive = false;
    tolk_warn("worker", NULL, "%s worker %s is dead (%s)", gw_kind_names[w->kind], w->id, why);
}

/* ROUTER sends may leave messages to read without a new edge on ZMQ_FD:
   look again soon, from the loop. */
static void s_drain_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    bridge_drain(g_gateway);
}

static void s_after_send(gateway_t *gw)
{
    if (zsock_events(gw->router) & ZMQ_POLLIN)
        lws_sul_schedule(gw->lws, 0, &gw->drain_sul, s_drain_cb, 1);
}

static int s_send_to(gateway_t *gw, const char *worker_id, const uint8_t *buf, size_t len)
{
    void *sock = zsock_resolve(gw->router);
    if (zmq_send(sock, worker_id, strlen(worker_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    int rc = zmq_send(sock, buf, len, ZMQ_DONTWAIT);
    return rc < 0 ? -1 : 0;
}

int bridge_route(gateway_t *gw, int kind, const char *key, tolk_envelope_t *env)
{
    tolk_envelope_set_str(env->gateway, sizeof env->gateway, gw->id);
    env->sent_ns = tolk_now_ns();
    size_t len;
    uint8_t *buf = tolk_envelope_encode(env, &len);
    if (!buf)
        return -1;
    int rc = -1;
    /* try the best live worker; on a failed send mark it dead and try the next */
    for (int attempt = 0; attempt < GW_MAX_WORKERS; attempt++) {
        gw_worker_t *best = NULL;
        uint64_t best_score = 0;
        for (int i = 0; i < gw->worker_count; i++) {
            gw_worker_t *w = &gw->workers[i];
            if (!w->alive || w->kind != kind)
                continue;
            uint64_t sc = s_score(key, w->id);
            if (!best || sc > best_score) {
                best = w;
                best_score = sc;
            }
        }
        if (!best)
            break;
        if (s_send_to(gw, best->id, buf, len) == 0) {
            rc = 0;
            break;
        }
        s_mark_dead(gw, best, errno == EHOSTUNREACH ? "unreachable" : "send failed");
    }
    free(buf);
    s_after_send(gw);
    return rc;
}

int bridge_live_count(gateway_t *gw, int kind)
{
    int n = 0;
    for (int i = 0; i < gw->worker_count; i++)
        n += gw->workers[i].alive && gw->workers[i].kind == kind;
    return n;
}

bool bridge_ready(gateway_t *gw)
{
    if (!gw->redis_ok || gw->draining)
        return false;
    for (int k = 0; k < GW_WORKER_KINDS; k++)
        if (gw->kind_required[k] && bridge_live_count(gw, k) == 0)
            return false;
    return true;
}

/* Deliver a PUBLISH to the local members of its session. */
static void s_publish(gateway_t *gw, const tolk_envelope_t *env)
{
    gw_session_t *s = index_session(gw, env->session);
    if (!s)
        return;
    if (env->flags & TOLK_FLAG_STATE)
        s->audio_off = (env->flags & TOLK_FLAG_AUDIO_OFF) != 0;
    bool speech = (env->flags & TOLK_FLAG_SPEECH) != 0;
    gw_msg_t *m = msg_new(env->payload, env->payload_len, speech);
    if (!m)
        return;
    m->partial = (env->flags & TOLK_FLAG_PARTIAL) != 0;
    /* a final in a listener's language: catch-up order and de-duplication */
    bool final = env->audience == TOLK_AUDIENCE_LANGUAGE && env->seq && !m->partial && !speech;
    gw_conn_t *c = s->members;
    while (c) {
        gw_conn_t *next = c->snext; /* c may leave the session below */
        bool to = env->audience == TOLK_AUDIENCE_ALL ||
                  (env->audience == TOLK_AUDIENCE_LISTENERS && c->role == TOLK_ROLE_LISTENER) ||
                  (env->audience == TOLK_AUDIENCE_SPEAKER && c->role == TOLK_ROLE_SPEAKER) ||
                  (env->audience == TOLK_AUDIENCE_LANGUAGE && c->role == TOLK_ROLE_LISTENER &&
                   strcmp(c->lang, env->lang) == 0 && (!speech || c->hears));
        if (to && m->partial && c->catchup_pending)
            to = false; /* a newer partial follows the history */
        if (to) {
            if (final)
                catchup_final(gw, c, m, env->seq);
            else if (env->payload_len) {
                conn_send(gw, c, m);
                gw->speech_frames += speech;
            }
            if (env->close_code)
                conn_close_after(gw, c, (int)env->close_code);
            if (env->flags & TOLK_FLAG_UNBIND)
                index_unbind(gw, c);
        }
        c = next;
    }
    msg_release(&m);
}

/* A worker spoke about a connection that is gone: tell it, so state that
   was written for it (a session it just created) is cleaned up. */
static void s_gone(gateway_t *gw, const tolk_envelope_t *in)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_DISCONNECT);
    env.conn = in->conn;
    tolk_envelope_set_str(env.session, sizeof env.session, in->session);
    env.role = in->role;
    tolk_envelope_set_str(env.lang, sizeof env.lang, in->lang);
    bridge_route(gw, 0, in->session[0] ? in->session : "none", &env);
}

static void s_dispatch(gateway_t *gw, const char *worker_id, const tolk_envelope_t *env)
{
    gw_worker_t *w = s_worker(gw, worker_id);
    if (env->kind == TOLK_KIND_READY || env->kind == TOLK_KIND_HEARTBEAT) {
        char kind[16];
        size_t n = env->payload_len < sizeof kind - 1 ? env->payload_len : sizeof kind - 1;
        memcpy(kind, env->payload, n);
        kind[n] = 0;
        int k = bridge_kind_from_name(kind);
        if (k < 0)
            return; /* the sweeper beats too, but takes no routed work */
        if (!w && gw->worker_count < GW_MAX_WORKERS) {
            w = &gw->workers[gw->worker_count++];
            snprintf(w->id, sizeof w->id, "%s", worker_id);
        }
        if (!w)
            return;
        w->kind = k;
        if (!w->alive)
            tolk_info("worker", NULL, "%s worker %s is live", kind, worker_id);
        w->alive = true;
        w->last_seen_ns = tolk_now_ns();
        return;
    }
    if (w)
        w->last_seen_ns = tolk_now_ns();
    gw_conn_t *c = env->conn ? index_conn(gw, env->conn) : NULL;
    switch (env->kind) {
        case TOLK_KIND_BIND:
            if (!c) {
                s_gone(gw, env);
                break;
            }
            c->connecting = false;
            index_bind(gw, c, env->session, (tolk_role_t)env->role, env->lang);
            if (c->sess && (env->flags & TOLK_FLAG_STATE))
                c->sess->audio_off = (env->flags & TOLK_FLAG_AUDIO_OFF) != 0;
            if (env->flags & TOLK_FLAG_SPEECH_SET)
                c->hears = (env->flags & TOLK_FLAG_SPEECH_ON) != 0;
            if (c->bound && (env->flags & TOLK_FLAG_CATCHUP))
                catchup_begin(gw, c, env->seq);
            else
                catchup_reset(c);
            break;
        case TOLK_KIND_SEND:
            if (!c)
                break;
            c->connecting = false;
            if (env->flags & TOLK_FLAG_SPEECH_SET)
                c->hears = (env->flags & TOLK_FLAG_SPEECH_ON) != 0;
            if (env->payload_len) {
                gw_msg_t *m = msg_new(env->payload, env->payload_len, false);
                if (m) {
                    conn_send(gw, c, m);
                    msg_release(&m);
                }
                if (env->seq > c->final_seq) /* a caption of the catch-up */
                    c->final_seq = env->seq;
            }
            if (env->flags & TOLK_FLAG_CATCHUP_END)
                catchup_end(gw, c, env->seq);
            if (env->flags & TOLK_FLAG_UNBIND)
                index_unbind(gw, c);
            if (env->close_code)
                conn_close_after(gw, c, (int)env->close_code);
            break;
        case TOLK_KIND_PUBLISH:
            s_publish(gw, env);
            break;
        default:
            break;
    }
}

void bridge_drain(gateway_t *gw)
{
    void *sock = zsock_resolve(gw->router);
    for (int budget = 0; budget < 10000; budget++) {
        if (!(zsock_events(gw->router) & ZMQ_POLLIN))
            return;
        zmsg_t *msg = zmsg_recv_nowait(gw->router);
        if (!msg)
            return;
        zframe_t *who = zmsg_pop(msg);
        zframe_t *body = zmsg_pop(msg);
        if (who && body) {
            char id[TOLK_ID_MAX + 1];
            size_t n = zframe_size(who) < TOLK_ID_MAX ? zframe_size(who) : TOLK_ID_MAX;
            memcpy(id, zframe_data(who), n);
            id[n] = 0;
            tolk_envelope_t env;
            int rc = tolk_envelope_decode(&env, zframe_data(body), zframe_size(body));
            if (rc == TOLK_ENV_OK)
                s_dispatch(gw, id, &env);
            else {
                gw->errors++;
                tolk_warn("bridge", NULL, "bad envelope from a worker: %s",
                          tolk_envelope_strerror(rc));
            }
        }
        zframe_destroy(&who);
        zframe_destroy(&body);
        zmsg_destroy(&msg);
    }
    (void)sock;
    /* budget spent: come back after the loop has served the sockets */
    lws_sul_schedule(gw->lws, 0, &gw->drain_sul, s_drain_cb, 1);
}

void bridge_beat(gateway_t *gw)
{
    uint64_t now = tolk_now_ns();
    uint64_t limit =
        (uint64_t)gw->cfg.heartbeat_ms * (uint64_t)gw->cfg.heartbeat_misses * 1000000ULL;
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_HEARTBEAT);
    tolk_envelope_set_str(env.gateway, sizeof env.gateway, gw->id);
    size_t len;
    uint8_t *buf = tolk_envelope_encode(&env, &len);
    for (int i = 0; i < gw->worker_count;) {
        gw_worker_t *w = &gw->workers[i];
        if (w->alive && now - w->last_seen_ns > limit)
            s_mark_dead(gw, w, "missed heartbeats");
        if (w->alive && buf && s_send_to(gw, w->id, buf, len) != 0)
            s_mark_dead(gw, w, "unreachable");
        /* forget workers dead for a long time so the table stays small */
        if (!w->alive && now - w->last_seen_ns > 10 * limit) {
            gw->workers[i] = gw->workers[--gw->worker_count];
            continue;
        }
        i++;
    }
    free(buf);
    s_after_send(gw);

    /* registry: we are alive at this endpoint */
    int ttl_ms = gw->cfg.heartbeat_ms * gw->cfg.heartbeat_misses;
    redisReply *r =
        tolk_redis_command(gw->redis, "SET tolk:gw:%s %s PX %d", gw->id, gw->endpoint, ttl_ms);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    if (ok) {
        r = tolk_redis_command(gw->redis, "SADD tolk:gateways %s", gw->id);
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
    }
    gw->redis_ok = ok;
}
