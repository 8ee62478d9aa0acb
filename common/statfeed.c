/*  statfeed.c -- a process's counters on a ZeroMQ PUB status feed.

    A fixed array of named 64-bit counters (no allocation after _new, so a
    misbehaving caller cannot grow it), a PUB socket that never blocks, and
    the Redis registration tolk-monitor discovers feeds by (its keys are
    registry_store's); the name and word rules are statreport's, which
    the readers check again. See statfeed.h for the message format and the
    counter names.
*/
#include "statfeed.h"
#include "statreport.h"

#include <czmq.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

/* Send high-water mark: a few seconds of status at one message a second.
   A subscriber further behind than that loses the oldest, which is harmless
   because every message carries totals. */
#define S_SNDHWM 16

/* One named value; gauges and counters are stored the same way, only the
   verb that changes them differs. */
typedef struct {
    char name[TOLK_STATFEED_NAME_MAX + 1]; /* key in the JSON counters object */
    int64_t value;                         /* current gauge or running total */
} s_counter_t;

/* One named histogram, a copy of the process's own at the last set. */
typedef struct {
    char name[TOLK_STATFEED_NAME_MAX + 1]; /* key in the JSON histograms object */
    tolk_prom_hist_t hist;                 /* running totals */
} s_hist_t;

/* The feed: socket, identity and the bounded counter table. */
struct _tolk_statfeed_t {
    zsock_t *pub;                                     /* bound PUB, never blocks */
    char *endpoint;                                   /* resolved endpoint, ours */
    char kind[TOLK_STATFEED_KIND_MAX + 1];            /* process kind for the row */
    char id[TOLK_STATFEED_ID_MAX + 1];                /* unique id, Redis key part */
    int64_t pid;                                      /* getpid() at creation */
    int64_t started_mono;                             /* zclock_mono() at creation */
    s_counter_t counters[TOLK_STATFEED_MAX_COUNTERS]; /* first count used */
    size_t count;                                     /* names in use */
    int64_t dropped;                                  /* updates refused by bounds */
    s_hist_t hists[TOLK_STATFEED_MAX_HISTS];          /* first hist_count used */
    size_t hist_count;                                /* histogram names in use */
};

/* Find name's slot, creating it at 0 while there is room. NULL (and one more
   dropped update) for an invalid name or a full table. */
static s_counter_t *s_slot(tolk_statfeed_t *self, const char *name)
{
    if (!tolk_statreport_valid_name(name)) {
        self->dropped++;
        return NULL;
    }
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->counters[i].name, name) == 0)
            return &self->counters[i];
    if (self->count >= TOLK_STATFEED_MAX_COUNTERS) {
        self->dropped++;
        return NULL;
    }
    s_counter_t *slot = &self->counters[self->count++];
    strcpy(slot->name, name);
    slot->value = 0;
    return slot;
}

tolk_statfeed_t *tolk_statfeed_new(const char *endpoint, const char *kind, const char *id)
{
    if (!endpoint || !*endpoint || !tolk_statreport_valid_word(kind, TOLK_STATFEED_KIND_MAX) ||
        !tolk_statreport_valid_word(id, TOLK_STATFEED_ID_MAX))
        return NULL;
    tolk_statfeed_t *self = (tolk_statfeed_t *)zmalloc(sizeof(tolk_statfeed_t));
    if (!self)
        return NULL;
    strcpy(self->kind, kind);
    strcpy(self->id, id);
    self->pid = (int64_t)getpid();
    self->started_mono = zclock_mono();

    self->pub = zsock_new(ZMQ_PUB);
    if (!self->pub)
        goto err;
    /* Options before the bind, so every subscriber's pipe gets them. */
    zsock_set_sndhwm(self->pub, S_SNDHWM);
    zsock_set_linger(self->pub, 0);
    if (zsock_bind(self->pub, "%s", endpoint) == -1)
        goto err;
    self->endpoint = zsock_last_endpoint(self->pub);
    if (!self->endpoint || !*self->endpoint)
        goto err;
    return self;
err:
    tolk_statfeed_destroy(&self);
    return NULL;
}

void tolk_statfeed_destroy(tolk_statfeed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_statfeed_t *self = *self_p;
    zsock_destroy(&self->pub);
    zstr_free(&self->endpoint);
    free(self);
    *self_p = NULL;
}

const char *tolk_statfeed_endpoint(tolk_statfeed_t *self)
{
    return self ? self->endpoint : NULL;
}

void tolk_statfeed_set(tolk_statfeed_t *self, const char *name, int64_t value)
{
    if (!self)
        return;
    s_counter_t *slot = s_slot(self, name);
    if (slot)
        slot->value = value;
}

void tolk_statfeed_add(tolk_statfeed_t *self, const char *name, int64_t delta)
{
    if (!self)
        return;
    s_counter_t *slot = s_slot(self, name);
    if (slot)
        slot->value += delta;
}

void tolk_statfeed_set_hist(tolk_statfeed_t *self, const char *name, const tolk_prom_hist_t *hist)
{
    if (!self || !hist)
        return;
    if (!tolk_statreport_valid_name(name)) {
        self->dropped++;
        return;
    }
    size_t i = 0;
    while (i < self->hist_count && strcmp(self->hists[i].name, name) != 0)
        i++;
    if (i == self->hist_count) {
        if (self->hist_count >= TOLK_STATFEED_MAX_HISTS) {
            self->dropped++;
            return;
        }
        strcpy(self->hists[self->hist_count++].name, name);
    }
    self->hists[i].hist = *hist;
}

/* The histograms object, or NULL when out of memory. */
static json_t *s_render_hists(tolk_statfeed_t *self)
{
    json_t *all = json_object();
    for (size_t i = 0; all && i < self->hist_count; i++) {
        const tolk_prom_hist_t *h = &self->hists[i].hist;
        json_t *le = json_array();
        for (size_t b = 0; le && b < TOLK_PROM_HIST_BUCKETS; b++)
            if (json_array_append_new(le, json_integer((json_int_t)h->le[b])) != 0) {
                json_decref(le);
                le = NULL;
            }
        json_t *one = le ? json_pack("{s:o, s:I, s:f}", "le", le, "count", (json_int_t)h->count,
                                     "sum", h->sum)
                         : NULL;
        if (!one || json_object_set_new(all, self->hists[i].name, one) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

/* Render the status message body; a malloc'd string or NULL when out of
   memory. */
static char *s_render(tolk_statfeed_t *self)
{
    char *text = NULL;
    json_t *counters = json_object();
    json_t *root = NULL;
    if (!counters)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (json_object_set_new(counters, self->counters[i].name,
                                json_integer(self->counters[i].value)) != 0)
            goto done;
    if (self->dropped > 0 &&
        json_object_set_new(counters, "dropped_counters", json_integer(self->dropped)) != 0)
        goto done;
    root =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:O}", "kind", self->kind, "id", self->id, "pid",
                  (json_int_t)self->pid, "timestamp", (json_int_t)zclock_time(), "uptime_s",
                  (json_int_t)((zclock_mono() - self->started_mono) / 1000), "counters", counters);
    if (root && self->hist_count > 0) {
        json_t *hists = s_render_hists(self);
        if (!hists || json_object_set_new(root, "histograms", hists) != 0)
            goto done;
    }
    if (root)
        text = json_dumps(root, JSON_COMPACT);
done:
    json_decref(root);
    json_decref(counters);
    return text;
}

int tolk_statfeed_publish(tolk_statfeed_t *self)
{
    if (!self || !self->pub)
        return -1;
    char *text = s_render(self);
    if (!text)
        return -1;
    void *handle = zsock_resolve(self->pub);
    int rc = -1;
    /* PUB never blocks by design; DONTWAIT makes that explicit and turns a
       full pipe into an error we can report instead of a stall. */
    if (zmq_send(handle, TOLK_STATFEED_TOPIC, strlen(TOLK_STATFEED_TOPIC),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1 &&
        zmq_send(handle, text, strlen(text), ZMQ_DONTWAIT) != -1)
        rc = 0;
    free(text);
    return rc;
}

int tolk_statfeed_register(tolk_statfeed_t *self, redisContext *redis, int ttl_s)
{
    if (!self)
        return -1;
    return tolk_registry_feed_register(redis, self->id, self->endpoint, ttl_s);
}

void tolk_statfeed_unregister(tolk_statfeed_t *self, redisContext *redis)
{
    if (self)
        tolk_registry_feed_unregister(redis, self->id);
}

int tolk_statfeed_register_async(tolk_statfeed_t *self, tolk_redis_async_t *ra, int ttl_s,
                                 tolk_registry_done_fn *done, void *arg)
{
    if (!self || ttl_s <= 0)
        return -1;
    return tolk_registry_feed_register_async(ra, self->id, self->endpoint, ttl_s, done, arg);
}

int tolk_statfeed_unregister_async(tolk_statfeed_t *self, tolk_redis_async_t *ra,
                                   tolk_registry_done_fn *done, void *arg)
{
    if (!self)
        return -1;
    return tolk_registry_feed_unregister_async(ra, self->id, done, arg);
}

void tolk_statfeed_report(tolk_statfeed_t *self, tolk_redis_t *redis)
{
    if (!self)
        return;
    tolk_statfeed_publish(self);
    redisContext *rc = redis ? tolk_redis_context(redis) : NULL;
    if (rc)
        tolk_statfeed_register(self, rc, 5);
}

void tolk_statfeed_retire(tolk_statfeed_t **self_p, tolk_redis_t *redis)
{
    if (!self_p || !*self_p)
        return;
    redisContext *rc = redis ? tolk_redis_context(redis) : NULL;
    if (rc)
        tolk_statfeed_unregister(*self_p, rc);
    tolk_statfeed_destroy(self_p);
}
