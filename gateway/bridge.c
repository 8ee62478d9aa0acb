/*  bridge.c -- the ROUTER, the workers' liveness and routing; see bridge.h.

    ROUTER_MANDATORY makes a send to a vanished worker fail loudly: the
    worker is marked dead and the next one tried. The ROUTER's ZMQ_FD is
    edge-triggered: the bridge reads while ZMQ_EVENTS shows POLLIN, and
    after every send it checks ZMQ_EVENTS again (a send can take the edge
    of a message that arrived meanwhile) and comes back on the next turn.
*/
#include "bridge.h"
#include "log.h"

#include <errno.h>
#include <string.h>

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
    tolk_warn("worker", NULL, "%s worker %s is dead (%s)", tolk_worker_kind_name(w->kind), w->id,
              why);
}

/* Come back to the ROUTER on the next loop turn. */
static void s_drain_soon(gateway_t *gw)
{
    ev_timer_set(&gw->drain_timer, 0., 0.);
    ev_timer_start(gw->loop, &gw->drain_timer);
}

static void s_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    bridge_drain(w->data);
}

static void s_readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    bridge_drain(w->data);
}

/* A send may have consumed the edge of a message that is waiting. */
static void s_after_send(gateway_t *gw)
{
    if (zsock_events(gw->router) & ZMQ_POLLIN)
        s_drain_soon(gw);
}

static int s_send_to(gateway_t *gw, const char *worker_id, const uint8_t *buf, size_t len)
{
    void *sock = zsock_resolve(gw->router);
    if (zmq_send(sock, worker_id, strlen(worker_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    int rc = zmq_send(sock, buf, len, ZMQ_DONTWAIT);
    return rc < 0 ? -1 : 0;
}

/* Send an envelope of kind with no more than our id in it (HEARTBEAT,
   LEAVE) to one worker. */
static int s_send_kind(gateway_t *gw, const char *worker_id, tolk_kind_t kind)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, kind);
    tolk_envelope_set_str(env.gateway, sizeof env.gateway, gw->id);
    size_t len;
    uint8_t *buf = tolk_envelope_encode(&env, &len);
    int rc = buf ? s_send_to(gw, worker_id, buf, len) : -1;
    free(buf);
    return rc;
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
    ev_io_init(&gw->router_io, s_readable_cb, zsock_fd(gw->router), EV_READ);
    gw->router_io.data = gw;
    ev_io_start(gw->loop, &gw->router_io);
    ev_init(&gw->drain_timer, s_drain_cb);
    gw->drain_timer.data = gw;
    return 0;
}

void bridge_stop(gateway_t *gw)
{
    if (!gw->router)
        return;
    ev_io_stop(gw->loop, &gw->router_io);
    ev_timer_stop(gw->loop, &gw->drain_timer);
    zsock_destroy(&gw->router);
}

/* The live worker of kind with this id, or NULL. */
static gw_worker_t *s_live(gateway_t *gw, tolk_worker_kind_t kind, const char *id)
{
    for (int i = 0; id && id[0] && i < gw->worker_count; i++) {
        gw_worker_t *w = &gw->workers[i];
        if (w->alive && w->kind == kind && strcmp(w->id, id) == 0)
            return w;
    }
    return NULL;
}

int bridge_route_pinned(gateway_t *gw, tolk_worker_kind_t kind, const char *key,
                        tolk_envelope_t *env, char pin[TOLK_ID_MAX + 1])
{
    tolk_envelope_set_str(env->gateway, sizeof env->gateway, gw->id);
    env->sent_ns = tolk_now_ns();
    size_t len;
    uint8_t *buf = tolk_envelope_encode(env, &len);
    if (!buf)
        return -1;
    int rc = -1;
    /* the pinned worker while it is live, else the best live one by the
       hash; on a failed send mark it dead and try the next */
    for (int attempt = 0; attempt < GW_MAX_WORKERS; attempt++) {
        gw_worker_t *best = pin ? s_live(gw, kind, pin) : NULL;
        uint64_t best_score = 0;
        for (int i = 0; !(pin && best) && i < gw->worker_count; i++) {
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
            if (pin)
                snprintf(pin, TOLK_ID_MAX + 1, "%s", best->id);
            rc = 0;
            break;
        }
        s_mark_dead(gw, best, errno == EHOSTUNREACH ? "unreachable" : "send failed");
    }
    free(buf);
    s_after_send(gw);
    return rc;
}

int bridge_route(gateway_t *gw, tolk_worker_kind_t kind, const char *key, tolk_envelope_t *env)
{
    return bridge_route_pinned(gw, kind, key, env, NULL);
}

int bridge_live_count(gateway_t *gw, tolk_worker_kind_t kind)
{
    int n = 0;
    for (int i = 0; i < gw->worker_count; i++)
        n += gw->workers[i].alive && gw->workers[i].kind == kind;
    return n;
}

bool bridge_ready(gateway_t *gw)
{
    for (int k = 0; k < TOLK_WORKER_ROUTED; k++)
        if (gw->kind_required[k] && bridge_live_count(gw, (tolk_worker_kind_t)k) == 0)
            return false;
    return true;
}

/* READY or HEARTBEAT: the worker is live (again), with the kind its
   payload names. Kinds that get no routed work (the sweeper) are not
   tracked. */
static void s_alive(gateway_t *gw, gw_worker_t *w, const char *worker_id,
                    const tolk_envelope_t *env)
{
    tolk_worker_kind_t k = tolk_worker_kind_from_name((const char *)env->payload, env->payload_len);
    if (k < 0 || k >= TOLK_WORKER_ROUTED)
        return;
    if (!w && gw->worker_count < GW_MAX_WORKERS) {
        w = &gw->workers[gw->worker_count++];
        memset(w, 0, sizeof *w);
        snprintf(w->id, sizeof w->id, "%s", worker_id);
    }
    if (!w)
        return;
    w->kind = k;
    if (!w->alive)
        tolk_info("worker", NULL, "%s worker %s is live", tolk_worker_kind_name(k), worker_id);
    w->alive = true;
    w->left = false;
    w->last_seen_ns = tolk_now_ns();
}

/* LEAVE: route nothing more to this worker, and answer LEAVE on the same
   pipe. One DEALER-ROUTER pipe keeps its order, so when the worker reads
   the answer it knows nothing else will come from this gateway. A LEAVE
   said twice is answered twice and logged once. */
static void s_leave(gateway_t *gw, gw_worker_t *w, const char *worker_id)
{
    if (w && !w->left) {
        w->alive = false;
        w->left = true;
        gw->workers_left++;
        tolk_info("worker", NULL, "%s worker %s left", tolk_worker_kind_name(w->kind), worker_id);
    }
    if (s_send_kind(gw, worker_id, TOLK_KIND_LEAVE) != 0)
        tolk_warn("worker", NULL, "cannot answer the LEAVE of worker %s", worker_id);
    s_after_send(gw);
}

static void s_dispatch(gateway_t *gw, const char *worker_id, const tolk_envelope_t *env)
{
    gw_worker_t *w = s_worker(gw, worker_id);
    switch (env->kind) {
        case TOLK_KIND_READY:
        case TOLK_KIND_HEARTBEAT:
            s_alive(gw, w, worker_id, env);
            return;
        case TOLK_KIND_LEAVE:
            s_leave(gw, w, worker_id);
            return;
        default:
            /* a sign of life, but no revival (of a dead or a left worker):
               only READY and HEARTBEAT do that */
            if (w)
                w->last_seen_ns = tolk_now_ns();
            gw->deliver(gw, env);
    }
}

void bridge_drain(gateway_t *gw)
{
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
            if (rc == TOLK_ENV_OK && strcmp(env.gateway, gw->id) != 0) {
                /* a worker of another system, following the gateway that
                   had our port before: neither alive nor routed to here */
                if (gw->foreign_dropped++ == 0)
                    tolk_warn("bridge", NULL,
                              "worker %s addressed gateway '%s', not us: dropped (another "
                              "system's worker at our port?)",
                              id, env.gateway);
            } else if (rc == TOLK_ENV_OK)
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
    /* budget spent: come back after the loop has served the other sockets */
    s_drain_soon(gw);
}

void bridge_beat(gateway_t *gw)
{
    uint64_t now = tolk_now_ns();
    uint64_t limit =
        (uint64_t)gw->cfg.heartbeat_ms * (uint64_t)gw->cfg.heartbeat_misses * 1000000ULL;
    for (int i = 0; i < gw->worker_count;) {
        gw_worker_t *w = &gw->workers[i];
        if (w->alive && now - w->last_seen_ns > limit)
            s_mark_dead(gw, w, "missed heartbeats");
        if (w->alive && s_send_kind(gw, w->id, TOLK_KIND_HEARTBEAT) != 0)
            s_mark_dead(gw, w, "unreachable");
        /* forget workers dead (or left) for a long time so the table stays small */
        if (!w->alive && now - w->last_seen_ns > 10 * limit) {
            gw->workers[i] = gw->workers[--gw->worker_count];
            continue;
        }
        i++;
    }
    s_after_send(gw);
}
