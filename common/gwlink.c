/*  gwlink.c -- DEALER links from a worker to every gateway; see gwlink.h. */
#include "gwlink.h"
#include "log.h"
#include "registry_store.h"

#include <string.h>

/* One followed gateway. */
typedef struct {
    char id[TOLK_ID_MAX + 1];       /* gateway id, as registered */
    char endpoint[TOLK_ID_MAX + 1]; /* its ROUTER endpoint */
    zsock_t *dealer;                /* our link to it */
    bool seen;                      /* still registered at the last tick */
    bool left;                      /* answered our LEAVE: nothing more comes from it */
} gw_t;

struct tolk_gwlink_t {
    char kind[16];                                                 /* what we announce in READY */
    char id[TOLK_ID_MAX + 1];                                      /* our DEALER identity */
    gw_t gws[TOLK_GWLINK_MAX];                                     /* followed gateways */
    int count;                                                     /* used entries of gws */
    zmq_pollitem_t items[TOLK_GWLINK_MAX + TOLK_GWLINK_EXTRA_MAX]; /* gws, then a caller's extras */
    int next_read;        /* where the next scan starts, so no gateway starves */
    int64_t last_turn_ms; /* monotonic time of the last tolk_gwlink_drop_stale call (0: none) */
};

tolk_gwlink_t *tolk_gwlink_new(const char *kind, const char *worker_id)
{
    tolk_gwlink_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->kind, sizeof self->kind, "%s", kind);
    snprintf(self->id, sizeof self->id, "%s", worker_id);
    return self;
}

void tolk_gwlink_destroy(tolk_gwlink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_gwlink_t *self = *self_p;
    for (int i = 0; i < self->count; i++)
        zsock_destroy(&self->gws[i].dealer);
    free(self);
    *self_p = NULL;
}

static int s_send_kind(tolk_gwlink_t *self, gw_t *gw, tolk_kind_t kind)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, kind);
    tolk_envelope_set_str(env.worker, sizeof env.worker, self->id);
    env.payload = (const uint8_t *)self->kind;
    env.payload_len = strlen(self->kind);
    return tolk_gwlink_send(self, gw->id, &env);
}

static gw_t *s_find(tolk_gwlink_t *self, const char *id)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp(self->gws[i].id, id) == 0)
            return &self->gws[i];
    return NULL;
}

/* Drop the link to whatever gateway was at endpoint before. */
static void s_unfollow_endpoint(tolk_gwlink_t *self, const char *endpoint)
{
    for (int i = 0; i < self->count; i++) {
        if (strcmp(self->gws[i].endpoint, endpoint) == 0) {
            tolk_info("gwlink", NULL, "gateway %s was replaced at %s", self->gws[i].id, endpoint);
            zsock_destroy(&self->gws[i].dealer);
            self->gws[i] = self->gws[--self->count];
            return;
        }
    }
}

/* Open a DEALER to a newly registered gateway. */
static void s_follow(tolk_gwlink_t *self, const char *id, const char *endpoint)
{
    if (self->count == TOLK_GWLINK_MAX || strlen(id) > TOLK_ID_MAX ||
        strlen(endpoint) > TOLK_ID_MAX)
        return;
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    if (!dealer)
        return;
    zsock_set_identity(dealer, self->id);
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 100000);
    zsock_set_rcvhwm(dealer, 100000);
    zsock_set_sndtimeo(dealer, 0);
    if (zsock_connect(dealer, "%s", endpoint) != 0) {
        zsock_destroy(&dealer);
        return;
    }
    gw_t *gw = &self->gws[self->count++];
    memset(gw, 0, sizeof *gw);
    snprintf(gw->id, sizeof gw->id, "%s", id);
    snprintf(gw->endpoint, sizeof gw->endpoint, "%s", endpoint);
    gw->dealer = dealer;
    gw->seen = true;
    tolk_info("gwlink", NULL, "following gateway %s at %s", id, endpoint);
    s_send_kind(self, gw, TOLK_KIND_READY);
}

int tolk_gwlink_follow(tolk_gwlink_t *self, tolk_redis_t *redis)
{
    tolk_registry_entry_t *live = malloc(TOLK_GWLINK_MAX * sizeof *live);
    int n = live ? tolk_registry_gateways(redis, live, TOLK_GWLINK_MAX) : -1;
    if (n < 0) {
        free(live);
        return -1;
    }
    for (int i = 0; i < self->count; i++)
        self->gws[i].seen = false;
    for (int i = 0; i < n; i++) {
        const char *id = live[i].id, *endpoint = live[i].endpoint;
        gw_t *gw = s_find(self, id);
        if (gw && strcmp(gw->endpoint, endpoint) == 0)
            gw->seen = true;
        else if (!gw) {
            /* a restarted gateway may reuse a dead one's port: one link per endpoint,
               or the ROUTER would see our identity twice and ignore the newcomer */
            s_unfollow_endpoint(self, endpoint);
            s_follow(self, id, endpoint);
        }
    }
    free(live);
    /* drop gateways whose registration expired */
    for (int i = 0; i < self->count;) {
        if (!self->gws[i].seen) {
            tolk_info("gwlink", NULL, "gateway %s is gone", self->gws[i].id);
            zsock_destroy(&self->gws[i].dealer);
            self->gws[i] = self->gws[--self->count];
        } else
            i++;
    }
    return self->count;
}

void tolk_gwlink_beat(tolk_gwlink_t *self)
{
    for (int i = 0; i < self->count; i++)
        s_send_kind(self, &self->gws[i], TOLK_KIND_HEARTBEAT);
}

int tolk_gwlink_leave(tolk_gwlink_t *self)
{
    int told = 0;
    for (int i = 0; i < self->count; i++) {
        self->gws[i].left = false;
        if (s_send_kind(self, &self->gws[i], TOLK_KIND_LEAVE) == 0)
            told++;
        else
            self->gws[i].left = true; /* cannot tell it: its heartbeat timeout will */
    }
    return told;
}

void tolk_gwlink_left(tolk_gwlink_t *self, const char *gateway_id)
{
    gw_t *gw = s_find(self, gateway_id);
    if (gw)
        gw->left = true;
}

int tolk_gwlink_leaving(tolk_gwlink_t *self)
{
    int n = 0;
    for (int i = 0; i < self->count; i++)
        n += !self->gws[i].left;
    return n;
}

int tolk_gwlink_recv_with(tolk_gwlink_t *self, int timeout_ms, zmq_pollitem_t *extra, int n_extra,
                          zframe_t **frame, const char **gateway_id)
{
    *frame = NULL;
    if (n_extra > TOLK_GWLINK_EXTRA_MAX)
        n_extra = TOLK_GWLINK_EXTRA_MAX;
    if (self->count == 0 && n_extra == 0) {
        zclock_sleep(timeout_ms);
        return 0;
    }
    for (int i = 0; i < self->count; i++) {
        self->items[i].socket = zsock_resolve(self->gws[i].dealer);
        self->items[i].fd = 0;
        self->items[i].events = ZMQ_POLLIN;
        self->items[i].revents = 0;
    }
    for (int i = 0; i < n_extra; i++) {
        self->items[self->count + i] = extra[i];
        self->items[self->count + i].revents = 0;
    }
    int rc = zmq_poll(self->items, self->count + n_extra, timeout_ms);
    if (rc < 0)
        return -1;
    for (int i = 0; i < n_extra; i++)
        extra[i].revents = self->items[self->count + i].revents;
    for (int k = 0; k < self->count; k++) {
        int i = (self->next_read + k) % self->count;
        if (self->items[i].revents & ZMQ_POLLIN) {
            self->next_read = (i + 1) % self->count;
            zmsg_t *msg = zmsg_recv_nowait(self->gws[i].dealer);
            if (!msg)
                continue;
            *frame = zmsg_pop(msg);
            zmsg_destroy(&msg);
            *gateway_id = self->gws[i].id;
            return *frame ? 1 : 0;
        }
    }
    return 0;
}

int tolk_gwlink_send(tolk_gwlink_t *self, const char *gateway_id, const tolk_envelope_t *env)
{
    gw_t *gw = s_find(self, gateway_id);
    if (!gw)
        return -1;
    /* addressed to the gateway we mean: a process of another system that
       took over a dead gateway's port drops it rather than acting on it */
    tolk_envelope_t addressed = *env;
    tolk_envelope_set_str(addressed.gateway, sizeof addressed.gateway, gw->id);
    size_t len;
    uint8_t *buf = tolk_envelope_encode(&addressed, &len);
    if (!buf)
        return -1;
    int rc = zmq_send(zsock_resolve(gw->dealer), buf, len, ZMQ_DONTWAIT);
    free(buf);
    return rc < 0 ? -1 : 0;
}

int tolk_gwlink_drop_stale(tolk_gwlink_t *self, int64_t stall_ms)
{
    int64_t now = zclock_mono();
    int64_t gap = self->last_turn_ms ? now - self->last_turn_ms : 0;
    self->last_turn_ms = now;
    if (gap <= stall_ms)
        return 0;
    /* the I/O thread was stopped too: messages still in the kernel's buffers
       reach the queues over the next moments, so drain until quiet */
    int dropped = 0;
    int64_t quiet_since = now, give_up = now + TOLK_GWLINK_DRAIN_MAX_MS;
    for (;;) {
        bool got = false;
        for (int i = 0; i < self->count; i++) {
            zmsg_t *msg;
            while ((msg = zmsg_recv_nowait(self->gws[i].dealer)) != NULL) {
                zmsg_destroy(&msg);
                dropped++;
                got = true;
            }
        }
        now = zclock_mono();
        if (got)
            quiet_since = now;
        if (now - quiet_since >= TOLK_GWLINK_QUIET_MS || now >= give_up)
            break;
        zclock_sleep(10);
    }
    self->last_turn_ms = zclock_mono();
    tolk_warn("gwlink", NULL,
              "stalled for %lld ms (the gateways declared us dead): dropped %d stale messages",
              (long long)gap, dropped);
    return dropped;
}

int tolk_gwlink_count(tolk_gwlink_t *self)
{
    return self->count;
}

const char *tolk_gwlink_id(tolk_gwlink_t *self)
{
    return self->id;
}
