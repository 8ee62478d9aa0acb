/*  worker.c -- the worker base: links, feed, timers, loop, orderly stop;
    see worker.h.
*/
#include "worker.h"
#include "cli.h"
#include "ids.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Where a worker stands in its life. */
typedef enum {
    S_SERVING,   /* routed to, beating */
    S_LEAVING,   /* LEAVE sent: waiting for every gateway's answer */
    S_FINISHING, /* nothing more comes: finishing what is held */
    S_DONE,      /* the loop returns */
} s_state_t;

/* One periodic call. */
typedef struct {
    int interval_ms;          /* period, from the end of one call to the next */
    int64_t due_ms;           /* monotonic ms of the next call */
    tolk_worker_timer_fn *fn; /* the handler */
    void *arg;                /* and its argument */
} s_timer_t;

struct tolk_worker_t {
    tolk_worker_kind_t kind;                  /* what the gateways see in READY */
    tolk_config_t cfg;                        /* settings */
    char id[TOLK_ID_MAX + 1];                 /* DEALER identity, feed id, unique per process */
    tolk_worker_handlers_t handlers;          /* the worker's part */
    void *arg;                                /* the worker's object, for its handlers */
    tolk_redis_t *redis;                      /* the state store */
    tolk_gwlink_t *link;                      /* DEALERs to every gateway */
    tolk_statfeed_t *feed;                    /* counters; NULL when it could not bind */
    s_timer_t timers[TOLK_WORKER_TIMERS_MAX]; /* the base's and the worker's */
    int ntimers;                              /* entries used in timers */
    tolk_worker_source_t sources[TOLK_WORKER_SOURCES_MAX]; /* extra poll items */
    int nsources;                                          /* entries used in sources */
    s_state_t state;                                       /* see s_state_t */
    int64_t leave_deadline_ms;                             /* give up waiting for LEAVE answers */
    int64_t stop_deadline_ms;                              /* give up finishing */
    int64_t stall_ms;        /* a turn gap this long: the gateways declared us dead */
    int signals_seen;        /* SIGTERM/SIGINT handled so far */
    int64_t stale_dropped;   /* messages dropped after a stall: routed around us */
    int64_t bad_envelopes;   /* envelopes that did not decode */
    int64_t foreign_dropped; /* envelopes from a process that is not the gateway we follow there */
};

/* ------------------------------------------------------------ signals */

/* The handler only counts and writes a byte, so the loop's poll wakes;
   the loop does the rest (nginx: signal handlers only set flags). */
static volatile sig_atomic_t s_signals = 0;
static int s_signal_pipe[2] = {-1, -1};

static void s_on_signal(int signo)
{
    (void)signo;
    s_signals++;
    int saved = errno;
    if (s_signal_pipe[1] >= 0 && write(s_signal_pipe[1], "s", 1) < 0) {
        /* the pipe is full: the loop has bytes to wake on already */
    }
    errno = saved;
}

/* Install the handlers of the two-step stop, replacing CZMQ's (which
   would end every loop at once on the first signal). */
static int s_signals_install(void)
{
    if (s_signal_pipe[0] < 0) {
        if (pipe(s_signal_pipe) != 0)
            return -1;
        for (int i = 0; i < 2; i++)
            fcntl(s_signal_pipe[i], F_SETFL, fcntl(s_signal_pipe[i], F_GETFL) | O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Empty the pipe; the count is in s_signals. */
static void s_signals_drain(void)
{
    char buf[64];
    while (s_signal_pipe[0] >= 0 && read(s_signal_pipe[0], buf, sizeof buf) > 0)
        ;
}

/* ------------------------------------------------------------ the base's timers */

/* Every heartbeat: beat first (no Redis), then follow the registry. */
static void s_beat(void *arg, int64_t now_ms)
{
    (void)now_ms;
    tolk_worker_t *self = arg;
    if (self->state != S_SERVING)
        return; /* leaving: a heartbeat would make the gateways route to us again */
    tolk_gwlink_beat(self->link);
    tolk_gwlink_follow(self->link, self->redis);
}

/* Every heartbeat: the worker's counters, the base's, publish, register. */
static void s_report(void *arg, int64_t now_ms)
{
    (void)now_ms;
    tolk_worker_t *self = arg;
    if (!self->feed)
        return;
    if (self->handlers.on_report)
        self->handlers.on_report(self->arg, self->feed);
    tolk_statfeed_set(self->feed, "stale_dropped", self->stale_dropped);
    tolk_statfeed_set(self->feed, "bad_envelopes", self->bad_envelopes);
    tolk_statfeed_set(self->feed, "foreign_dropped", self->foreign_dropped);
    tolk_statfeed_set(self->feed, "gateways", tolk_gwlink_count(self->link));
    tolk_statfeed_set(self->feed, "stopping", self->state != S_SERVING);
    tolk_statfeed_report(self->feed, self->redis);
}

/* ------------------------------------------------------------ life */

tolk_worker_t *tolk_worker_new(tolk_worker_kind_t kind, const tolk_config_t *cfg,
                               const tolk_worker_handlers_t *handlers, void *arg)
{
    const char *name = tolk_worker_kind_name(kind);
    tolk_worker_t *self = cfg && strcmp(name, "unknown") != 0 ? calloc(1, sizeof *self) : NULL;
    if (!self) {
        if (handlers && handlers->on_destroy)
            handlers->on_destroy(arg);
        return NULL;
    }
    self->kind = kind;
    self->cfg = *cfg;
    if (handlers)
        self->handlers = *handlers;
    self->arg = arg;
    self->stall_ms = (int64_t)cfg->heartbeat_ms * cfg->heartbeat_misses;
    tolk_make_id(self->id, sizeof self->id, name);
    self->redis = tolk_redis_new(cfg->redis_host, cfg->redis_port, cfg->redis_timeout_ms);
    self->link = tolk_gwlink_new(name, self->id);
    self->feed = tolk_statfeed_new(cfg->status_endpoint, name, self->id);
    if (!self->redis || !self->link) {
        tolk_worker_destroy(&self);
        return NULL;
    }
    if (!self->feed)
        tolk_warn("start", NULL, "no status feed on %s", cfg->status_endpoint);
    tolk_worker_timer(self, cfg->heartbeat_ms, true, s_beat, self);
    tolk_worker_timer(self, cfg->heartbeat_ms, true, s_report, self);
    return self;
}

void tolk_worker_lend(tolk_worker_t *self, tolk_worker_t **base, char *id, size_t id_cap,
                      tolk_redis_t **redis, tolk_gwlink_t **link)
{
    *base = self;
    snprintf(id, id_cap, "%s", self->id);
    *redis = self->redis;
    *link = self->link;
}

void tolk_worker_destroy(tolk_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_worker_t *self = *self_p;
    if (self->handlers.on_destroy)
        self->handlers.on_destroy(self->arg);
    tolk_gwlink_destroy(&self->link);
    tolk_statfeed_retire(&self->feed, self->redis);
    tolk_redis_destroy(&self->redis);
    free(self);
    *self_p = NULL;
}

int tolk_worker_timer(tolk_worker_t *self, int interval_ms, bool now, tolk_worker_timer_fn *fn,
                      void *arg)
{
    if (!self || !fn || interval_ms <= 0 || self->ntimers == TOLK_WORKER_TIMERS_MAX)
        return -1;
    s_timer_t *t = &self->timers[self->ntimers++];
    t->interval_ms = interval_ms;
    t->due_ms = now ? 0 : zclock_mono() + interval_ms;
    t->fn = fn;
    t->arg = arg;
    return 0;
}

int tolk_worker_source(tolk_worker_t *self, const tolk_worker_source_t *source)
{
    if (!self || !source || !source->pollitems || !source->run ||
        self->nsources == TOLK_WORKER_SOURCES_MAX)
        return -1;
    self->sources[self->nsources++] = *source;
    return 0;
}

void tolk_worker_stop(tolk_worker_t *self)
{
    if (!self || self->state != S_SERVING)
        return;
    int64_t now = zclock_mono();
    int told = tolk_gwlink_leave(self->link);
    self->state = S_LEAVING;
    self->leave_deadline_ms = now + self->stall_ms;
    self->stop_deadline_ms = now + self->cfg.stop_timeout_ms;
    tolk_info("stop", NULL, "stopping: told %d gateway(s) we are leaving", told);
}

bool tolk_worker_stopping(tolk_worker_t *self)
{
    return self && self->state != S_SERVING;
}

/* Act on signals counted since the last turn. */
static void s_check_signals(tolk_worker_t *self)
{
    s_signals_drain();
    int seen = s_signals;
    if (seen == self->signals_seen)
        return;
    self->signals_seen = seen;
    if (self->state == S_SERVING && seen == 1)
        tolk_worker_stop(self);
    else {
        tolk_warn("stop", NULL, "second signal: stopping now");
        self->state = S_DONE;
    }
}

/* Move the stop along: leaving -> finishing -> done. */
static void s_advance_stop(tolk_worker_t *self, int64_t now)
{
    if (self->state == S_LEAVING &&
        (tolk_gwlink_leaving(self->link) == 0 || now >= self->leave_deadline_ms)) {
        int silent = tolk_gwlink_leaving(self->link);
        if (silent)
            tolk_warn("stop", NULL, "%d gateway(s) did not answer our LEAVE", silent);
        self->state = S_FINISHING;
    }
    if (self->state == S_FINISHING) {
        bool done = !self->handlers.on_finish || self->handlers.on_finish(self->arg);
        if (done || now >= self->stop_deadline_ms) {
            if (!done)
                tolk_warn("stop", NULL, "gave up finishing after %d ms", self->cfg.stop_timeout_ms);
            self->state = S_DONE;
        }
    }
}

/* Run the timers that are due; returns the nearest due time after. */
static int64_t s_run_timers(tolk_worker_t *self)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < self->ntimers; i++) {
        s_timer_t *t = &self->timers[i];
        if (zclock_mono() >= t->due_ms) {
            t->fn(t->arg, zclock_mono());
            t->due_ms = zclock_mono() + t->interval_ms;
        }
        if (t->due_ms < next)
            next = t->due_ms;
    }
    return next;
}

/* One envelope from a gateway: the base's kinds here, the rest to the worker. */
static void s_dispatch(tolk_worker_t *self, const char *gw, zframe_t *frame)
{
    tolk_envelope_t env;
    int rc = tolk_envelope_decode(&env, zframe_data(frame), zframe_size(frame));
    if (rc != TOLK_ENV_OK) {
        self->bad_envelopes++;
        tolk_warn("receive", NULL, "bad envelope from gateway %s: %s", gw,
                  tolk_envelope_strerror(rc));
        return;
    }
    /* a dead gateway's port taken by another system's gateway: what it
       sends is not ours (the link goes when the registration expires) */
    if (strcmp(env.gateway, gw) != 0) {
        if (self->foreign_dropped++ == 0)
            tolk_warn("receive", NULL,
                      "an envelope from gateway '%s' on the link to gateway %s: "
                      "dropped (another system at that endpoint?)",
                      env.gateway, gw);
        return;
    }
    if (env.kind == TOLK_KIND_HEARTBEAT)
        return;
    if (env.kind == TOLK_KIND_LEAVE) {
        tolk_gwlink_left(self->link, gw);
        return;
    }
    if (self->handlers.on_message)
        self->handlers.on_message(self->arg, gw, &env);
}

/* Did the process stall in this turn (stopped, or starved of CPU) for
   longer than the gateways wait for a heartbeat? Inside the poll, which
   may rightly take up to wait ms from polling, or after it, from polled
   to now, in the sources' run. */
static bool s_stalled_since(tolk_worker_t *self, int64_t polling, int64_t wait, int64_t polled)
{
    return polled - polling - wait > self->stall_ms || zclock_mono() - polled > self->stall_ms;
}

int tolk_worker_run(tolk_worker_t *self)
{
    zmq_pollitem_t items[TOLK_GWLINK_EXTRA_MAX];
    int first[TOLK_WORKER_SOURCES_MAX], count[TOLK_WORKER_SOURCES_MAX];
    while (self->state != S_DONE) {
        s_check_signals(self);
        if (self->state == S_DONE)
            break;
        int stale = tolk_gwlink_drop_stale(self->link, self->stall_ms);
        if (stale > 0) {
            self->stale_dropped += stale;
            self->timers[0].due_ms = 0; /* beat at once: tell the gateways we are back */
        }
        int64_t next = s_run_timers(self);
        int64_t now = zclock_mono();
        s_advance_stop(self, now);
        if (self->state == S_DONE)
            break;
        int64_t wait = next - now;
        if (self->state != S_SERVING && wait > 20)
            wait = 20; /* the stop is polled: answers and finishing take ms */
        /* the signal pipe first, then every source's items */
        int n = 0;
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = s_signal_pipe[0], .events = ZMQ_POLLIN};
        for (int i = 0; i < self->nsources; i++) {
            tolk_worker_source_t *src = &self->sources[i];
            first[i] = n;
            count[i] = src->pollitems(src->arg, items + n, TOLK_GWLINK_EXTRA_MAX - n);
            n += count[i];
            long t = src->timeout_ms ? src->timeout_ms(src->arg) : -1;
            if (t >= 0 && t < wait)
                wait = t;
        }
        if (wait < 0)
            wait = 0;
        zframe_t *frame = NULL;
        const char *gw = NULL;
        int64_t polling = zclock_mono();
        int rc = tolk_gwlink_recv_with(self->link, (int)wait, items, n, &frame, &gw);
        int64_t polled = zclock_mono();
        for (int i = 0; i < self->nsources; i++)
            self->sources[i].run(self->sources[i].arg, items + first[i], count[i]);
        if (rc < 0 && errno != EINTR)
            tolk_warn("loop", NULL, "poll failed: %s", strerror(errno));
        if (rc == 1 && frame && s_stalled_since(self, polling, wait, polled)) {
            /* read in the turn a stall hit: as stale as those the next
               turn's drop finds, whose sender has routed around us */
            self->stale_dropped++;
        } else if (rc == 1 && frame)
            s_dispatch(self, gw, frame);
        zframe_destroy(&frame);
    }
    return 0;
}

/* ------------------------------------------------------------ accessors */

const char *tolk_worker_id(tolk_worker_t *self)
{
    return self->id;
}

tolk_redis_t *tolk_worker_redis(tolk_worker_t *self)
{
    return self->redis;
}

tolk_gwlink_t *tolk_worker_link(tolk_worker_t *self)
{
    return self->link;
}

const tolk_config_t *tolk_worker_config(tolk_worker_t *self)
{
    return &self->cfg;
}

/* ------------------------------------------------------------ replies */

int tolk_worker_send(tolk_worker_t *self, const char *gw, uint64_t conn, const char *json,
                     int close_code, uint32_t flags)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_SEND);
    tolk_envelope_set_str(env.worker, sizeof env.worker, self->id);
    env.conn = conn;
    env.payload = (const uint8_t *)json;
    env.payload_len = json ? strlen(json) : 0;
    env.close_code = (uint32_t)close_code;
    env.flags = flags;
    env.sent_ns = tolk_now_ns();
    return tolk_gwlink_send(self->link, gw, &env);
}

int tolk_worker_send_error(tolk_worker_t *self, const char *gw, uint64_t conn, int status,
                           const char *code, const char *message, const char *action,
                           int retry_after, bool close)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "type", "error", "code", code, "status", status,
                          "message", message);
    if (!o)
        return -1;
    if (action)
        json_object_set_new(o, "action", json_string(action));
    if (retry_after > 0)
        json_object_set_new(o, "retryAfter", json_integer(retry_after));
    json_object_set_new(o, "timestamp", json_integer(tolk_now_ms()));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int rc = text ? tolk_worker_send(self, gw, conn, text, close ? 4000 + status : 0, 0) : -1;
    free(text);
    return rc;
}

/* ------------------------------------------------------------ main */

int tolk_worker_main(int argc, char **argv, const tolk_worker_program_t *program)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, program->program, program->summary, &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init(program->log_name, cfg.log_level);
    zsys_handler_set(NULL); /* our handlers: the first SIGTERM stops in order */
    zsys_init();
    if (s_signals_install() != 0) {
        fprintf(stderr, "%s: cannot install signal handlers\n", program->program);
        return 1;
    }
    tolk_worker_t *base = program->create(&cfg);
    if (!base) {
        fprintf(stderr, "%s: cannot start\n", program->program);
        return 1;
    }
    tolk_info("start", NULL, "%s %s started", program->program, tolk_worker_id(base));
    tolk_worker_run(base);
    tolk_info("stop", NULL, "%s %s stopped", program->program, tolk_worker_id(base));
    tolk_worker_destroy(&base);
    return 0;
}
