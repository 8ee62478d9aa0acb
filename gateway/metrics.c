/*  metrics.c -- the gateway's view of every status feed, and /metrics; see
    metrics.h.
*/
#include "metrics.h"
#include "feedsub.h"
#include "log.h"
#include "registry_store.h"
#include "statreport.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports read per loop turn before the rest wait for the next turn, so a
   burst of feeds never holds the loop. */
#define S_DRAIN_BUDGET 256
/* Longest metric name: the prefix, a feed name, a suffix. */
#define S_METRIC_MAX (TOLK_STATFEED_NAME_MAX + 32)

/* One process as last heard. */
typedef struct {
    tolk_statreport_t report; /* its last report */
    ev_tstamp seen;           /* loop time it came */
} s_proc_t;

/* What an outstanding registry read comes back to: the read can outlive
   the module (the link answers NULL when it drops), so the callback checks
   alive and frees this when the module is gone. */
typedef struct {
    bool alive;    /* the module still runs */
    gateway_t *gw; /* whose module */
} s_read_ctx_t;

/* The module's state, hung on the gateway. */
struct gw_metrics_s {
    tolk_feedsub_t *feeds; /* the SUB following every registered feed */
    ev_io io;              /* its ZMQ_FD */
    ev_timer drain_timer;  /* read again on the next turn: the budget ran out */
    ev_timer refresh;      /* registry read every GW_METRICS_REFRESH_S */
    bool reading;          /* a registry read is out */
    zhashx_t *procs;       /* feed id -> s_proc_t */
    s_read_ctx_t *ctx;     /* the registry read's argument */
};

/* The table's destructor of a kept process. */
static void s_proc_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* A checked report of a followed feed: keep it as that process's last. */
static void s_on_report(void *arg, const tolk_statreport_t *report)
{
    gateway_t *gw = arg;
    gw_metrics_t *m = gw->metrics;
    s_proc_t *p = zhashx_lookup(m->procs, report->id);
    if (!p) {
        if (zhashx_size(m->procs) >= GW_METRICS_MAX_PROCS)
            return;
        p = calloc(1, sizeof *p);
        if (!p)
            return;
        zhashx_insert(m->procs, report->id, p);
    }
    p->report = *report;
    p->seen = ev_now(gw->loop);
}

/* Read what is waiting, a budget at a time; the ZMQ_FD is edge-triggered,
   so a full budget means come back on the next turn, not wait for an edge. */
static void s_drain(gateway_t *gw)
{
    gw_metrics_t *m = gw->metrics;
    if (tolk_feedsub_drain(m->feeds, S_DRAIN_BUDGET, s_on_report, gw) == S_DRAIN_BUDGET) {
        ev_timer_set(&m->drain_timer, 0., 0.);
        ev_timer_start(gw->loop, &m->drain_timer);
    }
}

/* The SUB's ZMQ_FD signalled: something may be waiting. */
static void s_readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    s_drain(w->data);
}

/* The next turn after a drain that used its whole budget. */
static void s_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    s_drain(w->data);
}

/* Forget processes not heard from for GW_METRICS_STALE_S. */
static void s_expire(gateway_t *gw)
{
    gw_metrics_t *m = gw->metrics;
    ev_tstamp now = ev_now(gw->loop);
    zlistx_t *ids = zhashx_keys(m->procs);
    for (char *id = ids ? zlistx_first(ids) : NULL; id; id = zlistx_next(ids)) {
        s_proc_t *p = zhashx_lookup(m->procs, id);
        if (p && now - p->seen > GW_METRICS_STALE_S)
            zhashx_delete(m->procs, id);
    }
    zlistx_destroy(&ids);
}

/* The registry's answer: follow exactly those feeds. */
static void s_feeds_read(void *arg, const tolk_registry_entry_t *feeds, int n)
{
    s_read_ctx_t *ctx = arg;
    if (!ctx->alive) { /* the module stopped while the read was out */
        free(ctx);
        return;
    }
    gateway_t *gw = ctx->gw;
    gw_metrics_t *m = gw->metrics;
    m->reading = false;
    if (n >= 0) {
        tolk_feedsub_follow(m->feeds, feeds, (size_t)n);
        /* a process no longer registered goes at once */
        zlistx_t *ids = zhashx_keys(m->procs);
        for (char *id = ids ? zlistx_first(ids) : NULL; id; id = zlistx_next(ids))
            if (!tolk_feedsub_follows(m->feeds, id))
                zhashx_delete(m->procs, id);
        zlistx_destroy(&ids);
    }
    /* the read may have been the edge's consumer: look again */
    s_drain(gw);
}

/* Every GW_METRICS_REFRESH_S: forget the silent, read the registry again. */
static void s_refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gateway_t *gw = w->data;
    gw_metrics_t *m = gw->metrics;
    s_expire(gw);
    /* one read at a time, and none while registrations wait for Redis */
    if (m->reading || tolk_redis_async_pending(gw->redis) > 0)
        return;
    if (tolk_registry_feeds_async(gw->redis, GW_METRICS_MAX_PROCS, s_feeds_read, m->ctx) == 0)
        m->reading = true;
}

int metrics_start(gateway_t *gw)
{
    gw_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    gw->metrics = m;
    m->feeds = tolk_feedsub_new(GW_METRICS_MAX_PROCS);
    m->procs = zhashx_new();
    m->ctx = calloc(1, sizeof *m->ctx);
    if (!m->feeds || !m->procs || !m->ctx) {
        metrics_stop(gw);
        return -1;
    }
    m->ctx->alive = true;
    m->ctx->gw = gw;
    zhashx_set_destructor(m->procs, s_proc_free);
    ev_io_init(&m->io, s_readable_cb, tolk_feedsub_fd(m->feeds), EV_READ);
    m->io.data = gw;
    ev_io_start(gw->loop, &m->io);
    ev_init(&m->drain_timer, s_drain_cb);
    m->drain_timer.data = gw;
    ev_timer_init(&m->refresh, s_refresh_cb, 0., GW_METRICS_REFRESH_S);
    m->refresh.data = gw;
    ev_timer_start(gw->loop, &m->refresh);
    return 0;
}

void metrics_stop(gateway_t *gw)
{
    gw_metrics_t *m = gw->metrics;
    if (!m)
        return;
    if (gw->loop) {
        ev_io_stop(gw->loop, &m->io);
        ev_timer_stop(gw->loop, &m->drain_timer);
        ev_timer_stop(gw->loop, &m->refresh);
    }
    if (m->ctx && m->reading)
        m->ctx->alive = false; /* the read's callback frees it */
    else
        free(m->ctx);
    tolk_feedsub_destroy(&m->feeds);
    zhashx_destroy(&m->procs);
    free(m);
    gw->metrics = NULL;
}

/* ------------------------------------------------------------ rendering */

/* A feed name as a metric name: tolk_ + name with '.' and '-' as '_'
   (statreport allows [A-Za-z0-9_.-]; Prometheus [a-zA-Z0-9_:]). */
static void s_metric_name(char *out, size_t cap, const char *name, const char *suffix)
{
    int n = snprintf(out, cap, "tolk_%s%s", name, suffix);
    for (int i = 0; i < n && (size_t)i < cap; i++)
        if (out[i] == '.' || out[i] == '-')
            out[i] = '_';
}

/* The family a counter of this name belongs to: counters end in _total. */
static void s_counter_family(char *out, size_t cap, const char *name)
{
    size_t n = strlen(name);
    bool gauge = tolk_statreport_is_gauge(name);
    bool has_total = n > 6 && strcmp(name + n - 6, "_total") == 0;
    s_metric_name(out, cap, name, gauge || has_total ? "" : "_total");
}

/* The process and kind labels (ids and kinds are printable words without
   spaces; a quote or a backslash is escaped as the format requires). */
static void s_labels(FILE *out, const tolk_statreport_t *r)
{
    fputs("process=\"", out);
    for (const char *c = r->id; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
    fputs("\",kind=\"", out);
    for (const char *c = r->kind; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

/* HELP text of the histograms, which say what they measure. */
static const char *s_hist_help(const char *name)
{
    if (strcmp(name, "caption_latency_seconds") == 0)
        return "Audio worker: from the recogniser's final to its publication, translation "
               "included (per caption and language).";
    if (strcmp(name, "control_latency_seconds") == 0)
        return "Control worker: from the gateway's CONNECT or action envelope to the reply sent.";
    if (strcmp(name, "chunk_processing_seconds") == 0)
        return "Audio worker: time spent on one audio chunk (recognition and what it publishes).";
    return "A latency histogram from the status feed.";
}

/* The kept reports sorted by kind then id, so the output is stable. */
static int s_proc_cmp(const void *a, const void *b)
{
    const tolk_statreport_t *ra = &(*(s_proc_t *const *)a)->report;
    const tolk_statreport_t *rb = &(*(s_proc_t *const *)b)->report;
    int c = strcmp(ra->kind, rb->kind);
    return c ? c : strcmp(ra->id, rb->id);
}

/* One sample to write: its family, and which process's which counter or
   histogram it is. Sorting these by family groups each family's samples,
   as the format requires, in O(n log n) over every sample. */
typedef struct {
    char family[S_METRIC_MAX]; /* the metric family's name */
    size_t proc;               /* index into the sorted processes */
    size_t idx;                /* counter or histogram index in its report */
} s_row_t;

/* qsort comparator: by family, then process order. */
static int s_row_cmp(const void *a, const void *b)
{
    const s_row_t *ra = a, *rb = b;
    int c = strcmp(ra->family, rb->family);
    return c ? c : (ra->proc > rb->proc) - (ra->proc < rb->proc);
}

/* Every counter (hist false) or histogram (hist true) of the processes as
   rows sorted by family; *n gets their number. NULL when out of memory. */
static s_row_t *s_rows(s_proc_t **procs, size_t nprocs, bool hist, size_t *n)
{
    size_t total = 0;
    for (size_t p = 0; p < nprocs; p++)
        total += hist ? procs[p]->report.nhists : procs[p]->report.ncounters;
    s_row_t *rows = calloc(total + 1, sizeof *rows);
    if (!rows)
        return NULL;
    size_t k = 0;
    for (size_t p = 0; p < nprocs; p++) {
        const tolk_statreport_t *r = &procs[p]->report;
        size_t count = hist ? r->nhists : r->ncounters;
        for (size_t i = 0; i < count; i++, k++) {
            if (hist)
                s_metric_name(rows[k].family, sizeof rows[k].family, r->hists[i].name, "");
            else
                s_counter_family(rows[k].family, sizeof rows[k].family, r->counters[i].name);
            rows[k].proc = p;
            rows[k].idx = i;
        }
    }
    qsort(rows, k, sizeof *rows, s_row_cmp);
    *n = k;
    return rows;
}

/* Write one histogram's samples. */
static void s_write_hist(FILE *out, const char *family, const tolk_statreport_t *r,
                         const tolk_prom_hist_t *h)
{
    for (size_t b = 0; b <= TOLK_PROM_HIST_BUCKETS; b++) {
        fprintf(out, "%s_bucket{", family);
        s_labels(out, r);
        if (b < TOLK_PROM_HIST_BUCKETS)
            fprintf(out, ",le=\"%g\"} %" PRIu64 "\n", tolk_prom_hist_bounds[b], h->le[b]);
        else
            fprintf(out, ",le=\"+Inf\"} %" PRIu64 "\n", h->count);
    }
    fprintf(out, "%s_sum{", family);
    s_labels(out, r);
    fprintf(out, "} %.9g\n%s_count{", h->sum, family);
    s_labels(out, r);
    fprintf(out, "} %" PRIu64 "\n", h->count);
}

/* Write the uptimes, every counter and gauge family, then every histogram
   family, each with its HELP and TYPE once. */
static void s_write(FILE *out, s_proc_t **procs, size_t nprocs)
{
    fputs("# HELP tolk_uptime_seconds Seconds since the process started.\n"
          "# TYPE tolk_uptime_seconds gauge\n",
          out);
    for (size_t p = 0; p < nprocs; p++) {
        fputs("tolk_uptime_seconds{", out);
        s_labels(out, &procs[p]->report);
        fprintf(out, "} %" PRId64 "\n", procs[p]->report.uptime_s);
    }
    for (int hist = 0; hist <= 1; hist++) {
        size_t n = 0;
        s_row_t *rows = s_rows(procs, nprocs, hist, &n);
        for (size_t k = 0; rows && k < n; k++) {
            const tolk_statreport_t *r = &procs[rows[k].proc]->report;
            bool first = k == 0 || strcmp(rows[k].family, rows[k - 1].family) != 0;
            const char *family = rows[k].family;
            if (hist) {
                const tolk_statreport_hist_t *h = &r->hists[rows[k].idx];
                if (first)
                    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", family,
                            s_hist_help(h->name), family);
                s_write_hist(out, family, r, &h->hist);
                continue;
            }
            const tolk_statreport_counter_t *c = &r->counters[rows[k].idx];
            bool gauge = tolk_statreport_is_gauge(c->name);
            if (first)
                fprintf(out, "# HELP %s %s %s from the status feed.\n# TYPE %s %s\n", family,
                        c->name, gauge ? "(a level)" : "(a running total)", family,
                        gauge ? "gauge" : "counter");
            fprintf(out, "%s{", family);
            s_labels(out, r);
            fprintf(out, "} %" PRId64 "\n", c->value);
        }
        free(rows);
    }
}

char *metrics_render(gateway_t *gw, size_t *len)
{
    gw_metrics_t *m = gw->metrics;
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    if (!out)
        return NULL;
    if (m) {
        s_expire(gw);
        size_t nprocs = zhashx_size(m->procs), k = 0;
        s_proc_t **procs = calloc(nprocs + 1, sizeof *procs);
        for (s_proc_t *p = zhashx_first(m->procs); procs && p && k < nprocs;
             p = zhashx_next(m->procs))
            procs[k++] = p;
        if (procs) {
            qsort(procs, k, sizeof *procs, s_proc_cmp);
            s_write(out, procs, k);
        }
        free(procs);
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    if (len)
        *len = n;
    return text;
}
