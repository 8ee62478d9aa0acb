/*  tolk-monitor -- one live table of every tolk process's status feed.

    Finds the feeds in Redis (the set tolk:feeds, each id's endpoint under
    tolk:feed:<id> with a TTL), connects one SUB socket to all of them, and
    redraws a table every interval: a row per process and a totals row.
    Following the feeds and checking their reports is feedsub.h's and
    statreport.h's, shared with the gateway's /metrics.
    Rates are computed here from two successive running totals, so the
    publishers stay trivial and a lost message costs nothing.

    usage: tolk-monitor [--config FILE] [--once] [--json] [--interval MS]
                        [--help] [--version]

    --once collects for about 2.2 s (two publications of every feed, enough
    for a rate), prints one snapshot and exits; --json prints JSON instead
    of the table (one object per refresh in live mode). Exit status: 0 on
    success, 1 when the config cannot be loaded or Redis cannot be reached at
    start, 2 on a usage error. Once running, a Redis outage only shows in the
    header while the monitor keeps the feeds it has and retries.
*/
#include "config.h"
#include "feedsub.h"
#include "log.h"
#include "registry_store.h"
#include "statfeed.h"
#include "statreport.h"

#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the registry is read again and endpoints (re)connected. */
#define S_DISCOVER_MS 2000
/* How long --once listens before printing. */
#define S_ONCE_MS 2200
/* A process not heard from for this long leaves the table. */
#define S_STALE_MS 5000
/* Most feeds followed, and most rows kept, so a polluted registry or a
   chatty impostor cannot grow the monitor without bound. */
#define S_MAX_FEEDS 1024

/* One process as last heard on its feed. */
typedef struct {
    char kind[TOLK_STATFEED_KIND_MAX + 1]; /* gateway, control, ... */
    char id[TOLK_STATFEED_ID_MAX + 1];     /* unique process id, the row key */
    int64_t pid;                           /* a new pid means a restart: reset the rate */
    int64_t uptime_s;                      /* as the process reported it */
    tolk_statreport_t last;                /* the latest report, counters and all */
    int64_t last_ts;                       /* publisher's timestamp of that message, ms */
    int64_t last_total;                    /* messages_in + messages_out in it */
    double rate;                           /* messages/s between the last two; < 0 unknown */
    int samples;                           /* messages seen since the last reset */
    int64_t seen_mono;                     /* our clock when it was last heard */
} s_proc_t;

/* Everything the monitor holds between refreshes. */
typedef struct {
    tolk_config_t cfg;     /* redis_host, redis_port, redis_timeout_ms */
    tolk_redis_t *redis;   /* registry link; reconnects by itself */
    char redis_error[160]; /* last Redis trouble, shown in the header; "" when fine */
    tolk_feedsub_t *feeds; /* one SUB following every registered feed */
    zhashx_t *procs;       /* id -> s_proc_t, rows of the table */
    size_t registered;     /* ids followed since the last discovery */
    size_t ignored;        /* registry ids over S_MAX_FEEDS or with bad endpoints */
    uint64_t bad_messages; /* rows refused for lack of room, shown in the header with
                              feedsub's malformed and foreign (another system's) counts */
    bool json;             /* print JSON instead of the table */
} s_monitor_t;

/* Usage text for --help and usage errors. */
static void s_usage(FILE *out)
{
    fprintf(out, "usage: tolk-monitor [--config FILE] [--once] [--json] [--interval MS]\n"
                 "                    [--help] [--version]\n"
                 "\n"
                 "Shows every tolk process's status feed, found through Redis, as one\n"
                 "table refreshed every interval.\n"
                 "\n"
                 "  --config FILE   tolk config file (default $TOLK_CONFIG, else built-ins);\n"
                 "                  uses redis_host, redis_port, redis_timeout_ms\n"
                 "  --once          collect for about 2.2 s, print one snapshot, exit\n"
                 "  --json          print JSON instead of the table\n"
                 "  --interval MS   refresh interval in live mode (100..60000, default 1000)\n"
                 "  --help          this text\n"
                 "  --version       print the version\n"
                 "\n"
                 "Exit status: 0 ok, 1 config or Redis unreachable, 2 usage error.\n");
}

/* Free one row; the zhashx destructor. */
static void s_proc_destroy(void **item)
{
    s_proc_t *proc = (s_proc_t *)*item;
    if (proc) {
        free(proc);
        *item = NULL;
    }
}

/* A counter of a row's latest report, 0 when absent. */
static int64_t s_counter(const s_proc_t *proc, const char *name)
{
    return tolk_statreport_counter(&proc->last, name);
}

/* Make sure there is a Redis link and it can connect. Returns 0 when
   connected, -1 with redis_error set. The link reconnects by itself with
   backoff, and every command is bounded by redis_timeout_ms, so a stalled
   Redis never freezes the display. */
static int s_redis_connect(s_monitor_t *self)
{
    if (!self->redis)
        self->redis =
            tolk_redis_new(self->cfg.redis_host, self->cfg.redis_port, self->cfg.redis_timeout_ms);
    if (!self->redis || !tolk_redis_context(self->redis)) {
        snprintf(self->redis_error, sizeof self->redis_error, "%s",
                 self->redis ? "cannot connect" : "out of memory");
        return -1;
    }
    return 0;
}

/* Read the registry and make the subscriber follow it (registry_store
   forgets ids whose key expired). Returns 0, or -1 with redis_error set
   (the feeds followed are then left as they were). */
static int s_discover(s_monitor_t *self)
{
    if (s_redis_connect(self) != 0)
        return -1;
    tolk_registry_entry_t *feeds = calloc(S_MAX_FEEDS, sizeof *feeds);
    int over = 0;
    int count = feeds ? tolk_registry_feeds(self->redis, feeds, S_MAX_FEEDS, &over) : -1;
    if (count < 0) {
        snprintf(self->redis_error, sizeof self->redis_error, "%s",
                 feeds ? "the feed registry could not be read" : "out of memory");
        free(feeds);
        return -1;
    }
    self->registered = tolk_feedsub_follow(self->feeds, feeds, (size_t)count);
    self->ignored = tolk_feedsub_ignored(self->feeds) + (size_t)over;
    free(feeds);
    self->redis_error[0] = 0;
    return 0;
}

/* Take one checked report of a followed feed and update its row. */
static void s_handle_status(void *arg, const tolk_statreport_t *report)
{
    s_monitor_t *self = (s_monitor_t *)arg;
    s_proc_t *proc = (s_proc_t *)zhashx_lookup(self->procs, report->id);
    if (!proc) {
        if (zhashx_size(self->procs) >= S_MAX_FEEDS) {
            self->bad_messages++;
            return;
        }
        proc = (s_proc_t *)zmalloc(sizeof(s_proc_t));
        if (!proc)
            return;
        strcpy(proc->id, report->id);
        proc->rate = -1;
        zhashx_insert(self->procs, report->id, proc);
    }
    int64_t now_ts = report->timestamp;
    int64_t total = tolk_statreport_counter(report, "messages_in") +
                    tolk_statreport_counter(report, "messages_out");
    if (proc->samples > 0 && now_ts <= proc->last_ts && proc->pid == report->pid) {
        /* A duplicate or reordered message: nothing new to learn. */
        proc->seen_mono = zclock_mono();
        return;
    }
    int64_t dt = now_ts - proc->last_ts;
    if (proc->samples > 0 && proc->pid == report->pid && total >= proc->last_total && dt >= 100 &&
        dt <= 60000) {
        proc->rate = (double)(total - proc->last_total) * 1000.0 / (double)dt;
        proc->samples++;
    } else {
        /* First sight, a restart (new pid, totals went back) or a clock
           jump: this message becomes the new baseline. */
        proc->rate = -1;
        proc->samples = 1;
    }
    snprintf(proc->kind, sizeof proc->kind, "%s", report->kind);
    proc->pid = report->pid;
    proc->uptime_s = report->uptime_s;
    proc->last = *report;
    proc->last_ts = now_ts;
    proc->last_total = total;
    proc->seen_mono = zclock_mono();
}

/* Read every message waiting without blocking. */
static void s_drain_sub(s_monitor_t *self)
{
    while (tolk_feedsub_drain(self->feeds, 1000, s_handle_status, self) == 1000)
        ;
}

/* Drop rows not heard from for S_STALE_MS. */
static void s_expire(s_monitor_t *self)
{
    int64_t now = zclock_mono();
    zlistx_t *ids = zhashx_keys(self->procs);
    if (!ids)
        return;
    for (char *id = (char *)zlistx_first(ids); id; id = (char *)zlistx_next(ids)) {
        s_proc_t *proc = (s_proc_t *)zhashx_lookup(self->procs, id);
        if (proc && now - proc->seen_mono > S_STALE_MS)
            zhashx_delete(self->procs, id);
    }
    zlistx_destroy(&ids);
}

/* Sort rank of a kind: the order of the pipeline, unknown kinds last. */
static int s_kind_rank(const char *kind)
{
    static const char *order[] = {"gateway", "control", "status", "audio", "sweeper"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (strcmp(kind, order[i]) == 0)
            return (int)i;
    return 99;
}

/* qsort comparator: by kind rank, then kind, then id. */
static int s_proc_cmp(const void *a, const void *b)
{
    const s_proc_t *pa = *(const s_proc_t *const *)a;
    const s_proc_t *pb = *(const s_proc_t *const *)b;
    int ra = s_kind_rank(pa->kind), rb = s_kind_rank(pb->kind);
    if (ra != rb)
        return ra - rb;
    int c = strcmp(pa->kind, pb->kind);
    return c ? c : strcmp(pa->id, pb->id);
}

/* The rows in display order, in a malloc'd array of *count entries. */
static s_proc_t **s_sorted(s_monitor_t *self, size_t *count)
{
    *count = zhashx_size(self->procs);
    s_proc_t **rows = (s_proc_t **)calloc(*count ? *count : 1, sizeof(s_proc_t *));
    if (!rows) {
        *count = 0;
        return NULL;
    }
    size_t n = 0;
    for (s_proc_t *proc = (s_proc_t *)zhashx_first(self->procs); proc && n < *count;
         proc = (s_proc_t *)zhashx_next(self->procs))
        rows[n++] = proc;
    *count = n;
    qsort(rows, n, sizeof(s_proc_t *), s_proc_cmp);
    return rows;
}

/* Format an uptime as H:MM:SS, with a day count when it has one. */
static void s_fmt_uptime(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 ":%02" PRId64 ":%02" PRId64, s / 86400,
                 s % 86400 / 3600, s % 3600 / 60, s % 60);
    else
        snprintf(buf, len, "%" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600, s % 3600 / 60, s % 60);
}

/* Print the table; clear first in live mode so it redraws in place. */
static void s_print_table(s_monitor_t *self, bool clear)
{
    size_t count;
    s_proc_t **rows = s_sorted(self, &count);
    if (clear)
        fputs("\033[H\033[2J", stdout);
    time_t now = time(NULL);
    struct tm tm;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    printf("tolk-monitor %s  %s  redis %s:%d %s%s  feeds %zu  reporting %zu", TOLK_VERSION, when,
           self->cfg.redis_host, self->cfg.redis_port, self->redis_error[0] ? "ERROR: " : "ok",
           self->redis_error, self->registered, count);
    if (self->ignored)
        printf("  ignored %zu", self->ignored);
    uint64_t bad = self->bad_messages + tolk_feedsub_bad(self->feeds);
    uint64_t foreign = tolk_feedsub_foreign(self->feeds);
    if (bad)
        printf("  bad messages %" PRIu64, bad);
    if (foreign)
        printf("  foreign %" PRIu64, foreign);
    printf("\n\n%-8s %-28s %8s %11s %7s %7s %10s %8s\n", "KIND", "ID", "PID", "UPTIME", "CONN",
           "SESS", "MSG/S", "ERRORS");
    int64_t conns = 0, sessions = 0, errors = 0;
    double rate = 0;
    for (size_t i = 0; i < count; i++) {
        s_proc_t *p = rows[i];
        char uptime[32], rate_text[32];
        s_fmt_uptime(p->uptime_s, uptime, sizeof uptime);
        if (p->rate >= 0)
            snprintf(rate_text, sizeof rate_text, "%.1f", p->rate);
        else
            snprintf(rate_text, sizeof rate_text, "-");
        int64_t c = s_counter(p, "connections");
        int64_t s = s_counter(p, "sessions");
        int64_t e = s_counter(p, "errors");
        printf("%-8.8s %-28.28s %8" PRId64 " %11s %7" PRId64 " %7" PRId64 " %10s %8" PRId64 "\n",
               p->kind, p->id, p->pid, uptime, c, s, rate_text, e);
        conns += c;
        sessions += s;
        errors += e;
        if (p->rate > 0)
            rate += p->rate;
    }
    char procs_text[40];
    snprintf(procs_text, sizeof procs_text, "%zu process%s", count, count == 1 ? "" : "es");
    printf("%-8s %-28s %8s %11s %7" PRId64 " %7" PRId64 " %10.1f %8" PRId64 "\n", "TOTAL",
           procs_text, "", "", conns, sessions, rate, errors);
    fflush(stdout);
    free(rows);
}

/* Build the JSON snapshot: {timestamp, processes[], totals{}}; NULL when out
   of memory. */
static json_t *s_snapshot(s_monitor_t *self)
{
    size_t count;
    s_proc_t **rows = s_sorted(self, &count);
    json_t *processes = json_array();
    int64_t conns = 0, sessions = 0, errors = 0;
    double rate = 0;
    for (size_t i = 0; processes && i < count; i++) {
        s_proc_t *p = rows[i];
        json_t *rates =
            json_pack("{s:o}", "messages_per_s", p->rate >= 0 ? json_real(p->rate) : json_null());
        json_t *counters = json_object();
        for (size_t c = 0; counters && c < p->last.ncounters; c++)
            json_object_set_new(counters, p->last.counters[c].name,
                                json_integer((json_int_t)p->last.counters[c].value));
        json_t *row = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "kind", p->kind, "id", p->id,
                                "pid", (json_int_t)p->pid, "uptime_s", (json_int_t)p->uptime_s,
                                "counters", counters, "rates", rates);
        if (row)
            json_array_append_new(processes, row);
        conns += s_counter(p, "connections");
        sessions += s_counter(p, "sessions");
        errors += s_counter(p, "errors");
        if (p->rate > 0)
            rate += p->rate;
    }
    free(rows);
    return json_pack("{s:I, s:o, s:{s:I, s:I, s:I, s:f, s:I}}", "timestamp",
                     (json_int_t)zclock_time(), "processes", processes, "totals", "processes",
                     (json_int_t)count, "connections", (json_int_t)conns, "sessions",
                     (json_int_t)sessions, "messages_per_s", rate, "errors", (json_int_t)errors);
}

/* Print one JSON snapshot on one line. Returns 0, or -1 when out of memory. */
static int s_print_json(s_monitor_t *self)
{
    json_t *snapshot = s_snapshot(self);
    if (!snapshot)
        return -1;
    int rc = json_dumpf(snapshot, stdout, JSON_COMPACT);
    json_decref(snapshot);
    fputc('\n', stdout);
    fflush(stdout);
    return rc;
}

/* True when every registered feed has been heard twice, so --once can stop
   early with a rate for everyone. */
static bool s_all_rated(s_monitor_t *self)
{
    if (self->registered == 0 || zhashx_size(self->procs) < self->registered)
        return false;
    for (s_proc_t *p = (s_proc_t *)zhashx_first(self->procs); p;
         p = (s_proc_t *)zhashx_next(self->procs))
        if (p->samples < 2)
            return false;
    return true;
}

/* Parse a positive millisecond count in [min, max]; -1 when invalid. */
static int s_parse_ms(const char *text, int min, int max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > max)
        return -1;
    return (int)v;
}

/* Listen and redraw until interrupted (live) or for S_ONCE_MS (--once).
   Returns the exit status. */
static int s_run(s_monitor_t *self, bool once, int interval_ms)
{
    zmq_pollitem_t item = {tolk_feedsub_socket(self->feeds), 0, ZMQ_POLLIN, 0};
    int64_t start = zclock_mono();
    int64_t next_discover = start + S_DISCOVER_MS;
    int64_t next_draw = once ? start + S_ONCE_MS : start + interval_ms;
    int rc = 0;
    while (!zsys_interrupted) {
        int64_t now = zclock_mono();
        int64_t wake = next_discover < next_draw ? next_discover : next_draw;
        if (wake > now && zmq_poll(&item, 1, (long)(wake - now)) > 0)
            s_drain_sub(self);
        now = zclock_mono();
        if (once && s_all_rated(self))
            next_draw = now;
        if (now >= next_discover) {
            s_discover(self);
            next_discover = now + S_DISCOVER_MS;
        }
        if (now >= next_draw) {
            s_expire(self);
            if (self->json)
                rc = s_print_json(self) == 0 ? 0 : 1;
            else
                s_print_table(self, !once);
            if (once)
                break;
            next_draw += interval_ms;
            if (next_draw <= now)
                next_draw = now + interval_ms;
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"once", no_argument, NULL, 'o'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"interval", required_argument, NULL, 'i'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    bool once = false, json = false;
    int interval_ms = 1000, opt;
    while ((opt = getopt_long(argc, argv, "c:oji:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'c':
                config_path = optarg;
                break;
            case 'o':
                once = true;
                break;
            case 'j':
                json = true;
                break;
            case 'i':
                interval_ms = s_parse_ms(optarg, 100, 60000);
                if (interval_ms < 0) {
                    fprintf(stderr, "tolk-monitor: --interval wants 100..60000 ms, not %s\n",
                            optarg);
                    return 2;
                }
                break;
            case 'h':
                s_usage(stdout);
                return 0;
            case 'V':
                printf("tolk-monitor " TOLK_VERSION "\n");
                return 0;
            default:
                s_usage(stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tolk-monitor: unexpected argument %s\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }

    s_monitor_t monitor;
    memset(&monitor, 0, sizeof monitor);
    s_monitor_t *self = &monitor;
    self->json = json;
    char err[256];
    if (tolk_config_load(&self->cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-monitor: %s\n", err);
        return 1;
    }
    /* Redis trouble shows in the header; the link's own warnings would
       only scroll the table */
    tolk_log_init("tolk-monitor", "error");
    if (s_redis_connect(self) != 0) {
        fprintf(stderr, "tolk-monitor: cannot reach Redis at %s:%d: %s\n", self->cfg.redis_host,
                self->cfg.redis_port, self->redis_error);
        return 1;
    }

    int rc = 1;
    self->feeds = tolk_feedsub_new(S_MAX_FEEDS);
    self->procs = zhashx_new();
    if (!self->feeds || !self->procs) {
        fprintf(stderr, "tolk-monitor: out of memory\n");
        goto done;
    }
    zhashx_set_destructor(self->procs, s_proc_destroy);
    if (s_discover(self) != 0) {
        fprintf(stderr, "tolk-monitor: cannot read the feed registry in Redis at %s:%d: %s\n",
                self->cfg.redis_host, self->cfg.redis_port, self->redis_error);
        goto done;
    }
    rc = s_run(self, once, interval_ms);
done:
    zhashx_destroy(&self->procs);
    tolk_feedsub_destroy(&self->feeds);
    tolk_redis_destroy(&self->redis);
    return rc;
}
