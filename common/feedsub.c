/*  feedsub.c -- follow the registered status feeds on one SUB socket; see
    feedsub.h. */
#include "feedsub.h"

#include <czmq.h>
#include <string.h>

/* Reports kept while nobody reads: a few seconds of a few hundred feeds. */
#define S_RCVHWM 1000

/* The subscriber and what it follows. */
struct _tolk_feedsub_t {
    zsock_t *sub;             /* connected to every followed endpoint */
    size_t cap;               /* most feeds followed */
    zhashx_t *endpoints;      /* endpoint -> "" for the endpoints sub is connected to */
    zhashx_t *ids;            /* id -> "" for the ids followed */
    size_t ignored;           /* entries skipped at the last follow */
    uint64_t bad;             /* malformed messages dropped */
    uint64_t foreign;         /* reports of ids not followed, dropped */
    tolk_statreport_t report; /* scratch: too big for a loop's stack frame to want */
};

tolk_feedsub_t *tolk_feedsub_new(size_t cap)
{
    if (cap == 0 || cap > 4096)
        return NULL;
    tolk_feedsub_t *self = (tolk_feedsub_t *)zmalloc(sizeof *self);
    if (!self)
        return NULL;
    self->cap = cap;
    self->sub = zsock_new(ZMQ_SUB);
    self->endpoints = zhashx_new();
    self->ids = zhashx_new();
    if (!self->sub || !self->endpoints || !self->ids) {
        tolk_feedsub_destroy(&self);
        return NULL;
    }
    zsock_set_rcvhwm(self->sub, S_RCVHWM);
    zsock_set_maxmsgsize(self->sub, TOLK_STATREPORT_MAX_BYTES);
    zsock_set_linger(self->sub, 0);
    zsock_set_subscribe(self->sub, TOLK_STATFEED_TOPIC);
    return self;
}

void tolk_feedsub_destroy(tolk_feedsub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_feedsub_t *self = *self_p;
    zsock_destroy(&self->sub);
    zhashx_destroy(&self->endpoints);
    zhashx_destroy(&self->ids);
    free(self);
    *self_p = NULL;
}

size_t tolk_feedsub_follow(tolk_feedsub_t *self, const tolk_registry_entry_t *entries, size_t n)
{
    if (!self)
        return 0;
    zhashx_t *wanted = zhashx_new();
    if (!wanted)
        return zhashx_size(self->ids);
    zhashx_purge(self->ids);
    self->ignored = 0;
    for (size_t i = 0; entries && i < n; i++) {
        if (zhashx_size(self->ids) >= self->cap ||
            !tolk_statreport_valid_endpoint(entries[i].endpoint) ||
            !tolk_statreport_valid_word(entries[i].id, TOLK_STATFEED_ID_MAX)) {
            self->ignored++;
            continue;
        }
        zhashx_update(wanted, entries[i].endpoint, (void *)"");
        zhashx_update(self->ids, entries[i].id, (void *)"");
    }
    /* connect what is new, drop what is gone */
    for (void *item = zhashx_first(wanted); item; item = zhashx_next(wanted)) {
        const char *endpoint = (const char *)zhashx_cursor(wanted);
        if (!zhashx_lookup(self->endpoints, endpoint) &&
            zsock_connect(self->sub, "%s", endpoint) == 0)
            zhashx_insert(self->endpoints, endpoint, (void *)"");
    }
    zlistx_t *connected = zhashx_keys(self->endpoints);
    for (char *endpoint = connected ? (char *)zlistx_first(connected) : NULL; endpoint;
         endpoint = (char *)zlistx_next(connected))
        if (!zhashx_lookup(wanted, endpoint)) {
            zsock_disconnect(self->sub, "%s", endpoint);
            zhashx_delete(self->endpoints, endpoint);
        }
    zlistx_destroy(&connected);
    zhashx_destroy(&wanted);
    return zhashx_size(self->ids);
}

size_t tolk_feedsub_ignored(tolk_feedsub_t *self)
{
    return self ? self->ignored : 0;
}

bool tolk_feedsub_follows(tolk_feedsub_t *self, const char *id)
{
    return self && id && zhashx_lookup(self->ids, id) != NULL;
}

int tolk_feedsub_fd(tolk_feedsub_t *self)
{
    return self ? zsock_fd(self->sub) : -1;
}

void *tolk_feedsub_socket(tolk_feedsub_t *self)
{
    return self ? zsock_resolve(self->sub) : NULL;
}

/* Receive one whole message without blocking into topic and body (the
   first two frames; further frames make it malformed). Returns 1 for a
   message, 0 when none is waiting, -1 for a malformed one (consumed). */
static int s_recv(tolk_feedsub_t *self, zmq_msg_t *topic, zmq_msg_t *body)
{
    void *handle = zsock_resolve(self->sub);
    if (zmq_msg_recv(topic, handle, ZMQ_DONTWAIT) == -1)
        return 0;
    int frames = 1;
    bool more = zmq_msg_more(topic);
    while (more) {
        /* the rest of a message is already here: ZeroMQ delivers it whole */
        zmq_msg_t *into = body, extra;
        if (frames >= 2) {
            zmq_msg_init(&extra);
            into = &extra;
        }
        if (zmq_msg_recv(into, handle, ZMQ_DONTWAIT) == -1)
            return -1;
        frames++;
        more = zmq_msg_more(into);
        if (into == &extra)
            zmq_msg_close(&extra);
    }
    return frames == 2 ? 1 : -1;
}

int tolk_feedsub_drain(tolk_feedsub_t *self, int budget, tolk_feedsub_fn *fn, void *arg)
{
    if (!self)
        return 0;
    int read = 0;
    while (read < budget) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        int rc = s_recv(self, &topic, &body);
        if (rc != 0)
            read++;
        if (rc == 1 && zmq_msg_size(&topic) == strlen(TOLK_STATFEED_TOPIC) &&
            memcmp(zmq_msg_data(&topic), TOLK_STATFEED_TOPIC, zmq_msg_size(&topic)) == 0 &&
            tolk_statreport_parse(&self->report, zmq_msg_data(&body), zmq_msg_size(&body)) == 0) {
            if (!zhashx_lookup(self->ids, self->report.id))
                self->foreign++;
            else if (fn)
                fn(arg, &self->report);
        } else if (rc != 0)
            self->bad++;
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
        if (rc == 0)
            break;
    }
    return read;
}

uint64_t tolk_feedsub_bad(tolk_feedsub_t *self)
{
    return self ? self->bad : 0;
}

uint64_t tolk_feedsub_foreign(tolk_feedsub_t *self)
{
    return self ? self->foreign : 0;
}
