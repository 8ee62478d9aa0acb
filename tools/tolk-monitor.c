/*  tolk-monitor -- one live table of every tolk process's status feed.

    Finds the feeds in Redis (the set tolk:feeds, each id's endpoint under
    tolk:feed:<id> with a TTL), connects one SUB socket to all of them, and
    redraws a table every interval: a row per process and a totals row.
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
#include "log.h"
#include "registry_store.h"
#include "statfeed.h"

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
/* Largest status message accepted (a full 64-counter message is ~4 KB). */
#define S_MAX_MSG 65536
/* Longest endpoint accepted from the registry. */
#define S_ENDPOINT_MAX 255

/* One process as last heard on its feed. */
typedef struct {
    char kind[TOLK_STATFEED_KIND_MAX + 1]; /* gateway, control, ... */
    char id[TOLK_STATFEED_ID_MAX + 1];     /* unique process id, the row key */
    int64_t pid;                           /* a new pid means a restart: reset the rate */
    int64_t uptime_s;                      /* as the process reported it */
    json_t *counters;                      /* latest counters object, owned */
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
    zsock_t *sub;          /* one SUB connected to every feed */
    zhashx_t *endpoints;   /* endpoint -> "" for endpoints sub is connected to */
    zhashx_t *procs;       /* id -> s_proc_t, rows of the table */
    zhashx_t *ids;         /* id -> "" for the ids registered at the last discovery */
    size_t registered;     /* ids found in the registry at the last discovery */
    size_t ignored;        /* registry ids over S_MAX_FEEDS or with bad endpoints */
    uint64_t bad_messages; /* malformed messages dropped, shown in the header */
    uint64_t foreign;      /* reports from an id not in our registry, dropped: a feed of
                              another system on a port a registered one had */
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
        json_decref(proc->counters);
        free(proc);
        *item = NULL;
    }
}

/* A counter from a counters object, 0 when absent or not an integer. */
static int64_t s_counter(json_t *counters, const char *name)
{
    json_t *value = json_object_get(counters, name);
    return json_is_integer(value) ? (int64_t)json_integer_value(value) : 0;
}

/* True when s is a non-empty printable ASCII word of at most max bytes, the
   rule statfeed applies to kinds and ids, so a table cell stays one cell. */
static bool s_valid_word(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    for (size_t n = 0; s[n]; n++)
        if (n >= max || s[n] <= 0x20 || s[n] >= 0x7f)
            return false;
    return true;
}

/* True when an endpoint from the registry is one we are willing to
   connect to: tcp or ipc, bounded, no control characters. */
static bool s_valid_endpoint(const char *endpoint, size_t len)
{
    if (len == 0 || len > S_ENDPOINT_MAX || strlen(endpoint) != len)
        return false;
    if (strncmp(endpoint, "tcp://", 6) != 0 && strncmp(endpoint, "ipc://", 6) != 0)
        return false;
    return s_valid_word(endpoint, S_ENDPOINT_MAX);
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

/* Read the registry and make sub's connections match it: connect new
   endpoints, disconnect ones no longer registered (registry_store forgets
   ids whose key expired). Returns 0, or -1 with redis_error set
   (connections are then left as they were). */
static int s_discover(s_monitor_t *self)
{
    if (s_redis_connect(self) != 0)
        return -1;
    tolk_registry_entry_t *feeds = calloc(S_MAX_FEEDS, sizeof *feeds);
    zhashx_t *wanted = zhashx_new();
    int over = 0;
    int count = feeds && wanted ? tolk_registry_feeds(self->redis, feeds, S_MAX_FEEDS, &over) : -1;
    if (count < 0) {
        snprintf(self->redis_error, sizeof self->redis_error, "%s",
                 feeds && wanted ? "the feed registry could not be read" : "out of memory");
        free(feeds);
        zhashx_destroy(&wanted);
        return -1;
    }
    size_t registered = 0, ignored = (size_t)over;
    zhashx_purge(self->ids);
    for (int i = 0; i < count; i++) {
        if (s_valid_endpoint(feeds[i].endpoint, strlen(feeds[i].endpoint))) {
            zhashx_update(wanted, feeds[i].endpoint, (void *)"");
            zhashx_update(self->ids, feeds[i].id, (void *)"");
            registered++;
        } else
            ignored++;
    }
    free(feeds);

    /* Connect what is new, drop what is gone. */
    for (void *item = zhashx_first(wanted); item; item = zhashx_next(wanted)) {
        const char *endpoint = (const char *)zhashx_cursor(wanted);
        if (!zhashx_lookup(self->endpoints, endpoint) &&
            zsock_connect(self->sub, "%s", endpoint) == 0)
            zhashx_insert(self->endpoints, endpoint, (void *)"");
    }
    zlistx_t *connected = zhashx_keys(self->endpoints);
    if (connected) {
        for (char *endpoint = (char *)zlistx_first(connected); endpoint;
             endpoint = (char *)zlistx_next(connected))
            if (!zhashx_lookup(wanted, endpoint)) {
                zsock_disconnect(self->sub, "%s", endpoint);
                zhashx_delete(self->endpoints, endpoint);
            }
        zlistx_destroy(&connected);
    }
    zhashx_destroy(&wanted);
    self->registered = registered;
    self->ignored = ignored;
    self->redis_error[0] = 0;
    return 0;
}

/* Take one status message body: validate it and update its row. Malformed
   messages are counted and dropped. */
static void s_handle_status(s_monitor_t *self, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *kind = json_string_value(json_object_get(root, "kind"));
    const char *id = json_string_value(json_object_get(root, "id"));
    json_t *pid = json_object_get(root, "pid");
    json_t *ts = json_object_get(root, "timestamp");
    json_t *uptime = json_object_get(root, "uptime_s");
    json_t *counters = json_object_get(root, "counters");
    if (!root || !s_valid_word(kind, TOLK_STATFEED_KIND_MAX) ||
        !s_valid_word(id, TOLK_STATFEED_ID_MAX) || !json_is_integer(pid) || !json_is_integer(ts) ||
        !json_is_integer(uptime) || !json_is_object(counters)) {
        self->bad_messages++;
        json_decref(root);
        return;
    }
    if (!zhashx_lookup(self->ids, id)) {
        self->foreign++;
        json_decref(root);
        return;
    }
    s_proc_t *proc = (s_proc_t *)zhashx_lookup(self->procs, id);
    if (!proc) {
        if (zhashx_size(self->procs) >= S_MAX_FEEDS) {
            self->bad_messages++;
            json_decref(root);
            return;
        }
        proc = (s_proc_t *)zmalloc(sizeof(s_proc_t));
        if (!proc) {
            json_decref(root);
            return;
        }
        strcpy(proc->id, id);
        proc->rate = -1;
        zhashx_insert(self->procs, id, proc);
    }
    int64_t now_ts = json_integer_value(ts);
    int64_t total = s_counter(counters, "messages_in") + s_counter(counters, "messages_out");
    if (proc->samples > 0 && now_ts <= proc->last_ts && proc->pid == json_integer_value(pid)) {
        /* A duplicate or reordered message: nothing new to learn. */
        proc->seen_mono = zclock_mono();
        json_decref(root);
        return;
    }
    int64_t dt = now_ts - proc->last_ts;
    if (proc->samples > 0 && proc->pid == json_integer_value(pid) && total >= proc->last_total &&
        dt >= 100 && dt <= 60000) {
        proc->rate = (double)(total - proc->last_total) * 1000.0 / (double)dt;
        proc->samples++;
    } else {
        /* First sight, a restart (new pid, totals went back) or a clock
           jump: this message becomes the new baseline. */
        proc->rate = -1;
        proc->samples = 1;
    }
    snprintf(proc->kind, sizeof proc->kind, "%s", kind);
    proc->pid = json_integer_value(pid);
    proc->uptime_s = json_integer_value(uptime);
    json_decref(proc->counters);
    proc->counters = json_incref(counters);
    proc->last_ts = now_ts;
    proc->last_total = total;
    proc->seen_mono = zclock_mono();
    json_decref(root);
}

/* Read every message waiting on sub without blocking. */
static void s_drain_sub(s_monitor_t *self)
{
    void *handle = zsock_resolve(self->sub);
    while (true) {
        zmsg_t *msg = zmsg_new();
        if (!msg)
            return;
        zmq_msg_t part;
        /* Read the frames by hand with DONTWAIT: zmsg_recv would block. */
        bool more = true, got = false;
        while (more) {
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, handle, got ? 0 : ZMQ_DONTWAIT) == -1) {
                zmq_msg_close(&part);
                break;
            }
            got = true;
            more = zmq_msg_more(&part);
            zmsg_addmem(msg, zmq_msg_data(&part), zmq_msg_size(&part));
            zmq_msg_close(&part);
        }
        if (!got) {
            zmsg_destroy(&msg);
            return;
        }
        zframe_t *topic = zmsg_first(msg);
        zframe_t *body = zmsg_next(msg);
        if (zmsg_size(msg) == 2 && zframe_streq(topic, TOLK_STATFEED_TOPIC))
            s_handle_status(self, (const char *)zframe_data(body), zframe_size(body));
        else
            self->bad_messages++;
        zmsg_destroy(&msg);
    }
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
    if (self->bad_messages)
        printf("  bad messages %" PRIu64, self->bad_messages);
    if (self->foreign)
        printf("  foreign %" PRIu64, self->foreign);
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
        int64_t c = s_counter(p->counters, "connections");
        int64_t s = s_counter(p->counters, "sessions");
        int64_t e = s_counter(p->counters, "errors");
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
        json_t *counters = p->counters ? json_incref(p->counters) : json_object();
        json_t *row = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "kind", p->kind, "id", p->id,
                                "pid", (json_int_t)p->pid, "uptime_s", (json_int_t)p->uptime_s,
                                "counters", counters, "rates", rates);
        if (row)
            json_array_append_new(processes, row);
        conns += s_counter(p->counters, "connections");
        sessions += s_counter(p->counters, "sessions");
        errors += s_counter(p->counters, "errors");
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
    zpoller_t *poller = zpoller_new(self->sub, NULL);
    if (!poller)
        return 1;
    int64_t start = zclock_mono();
    int64_t next_discover = start + S_DISCOVER_MS;
    int64_t next_draw = once ? start + S_ONCE_MS : start + interval_ms;
    int rc = 0;
    while (!zsys_interrupted) {
        int64_t now = zclock_mono();
        int64_t wake = next_discover < next_draw ? next_discover : next_draw;
        if (wake > now && zpoller_wait(poller, (int)(wake - now)))
            s_drain_sub(self);
        if (zpoller_terminated(poller))
            break;
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
    zpoller_destroy(&poller);
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
    self->sub = zsock_new(ZMQ_SUB);
    self->endpoints = zhashx_new();
    self->procs = zhashx_new();
    self->ids = zhashx_new();
    if (!self->sub || !self->endpoints || !self->procs || !self->ids) {
        fprintf(stderr, "tolk-monitor: out of memory\n");
        goto done;
    }
    zhashx_set_destructor(self->procs, s_proc_destroy);
    zsock_set_maxmsgsize(self->sub, S_MAX_MSG);
    zsock_set_linger(self->sub, 0);
    zsock_set_subscribe(self->sub, TOLK_STATFEED_TOPIC);
    if (s_discover(self) != 0) {
        fprintf(stderr, "tolk-monitor: cannot read the feed registry in Redis at %s:%d: %s\n",
                self->cfg.redis_host, self->cfg.redis_port, self->redis_error);
        goto done;
    }
    rc = s_run(self, once, interval_ms);
done:
    zhashx_destroy(&self->procs);
    zhashx_destroy(&self->ids);
    zhashx_destroy(&self->endpoints);
    zsock_destroy(&self->sub);
    tolk_redis_destroy(&self->redis);
    return rc;
}
