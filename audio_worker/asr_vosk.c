/*  asr_vosk.c -- the vosk engine: a stream's audio recognised by a
    vosk-server across a WebSocket (protocol in asr_vosk.h), on the
    worker's loop.

    Each stream has its own connection (the server's recogniser lives as
    long as it). Audio goes in 100 ms binary messages; every one is
    answered, in order, so counting answers tells how much audio each
    covers (the clock of partials). Answers go to asr.c's report function
    as a local engine's do: partials through the stability filter, one
    final per utterance. At the end of a stream's audio (finish) the
    client sends {"eof" : 1}; the server's last final follows and it
    closes; audio that comes after opens a new connection.

    Nothing waits. While a connection is being made or is down, audio is
    kept (the last S_BACKLOG_SAMPLES) and sent once a connection is up, so
    a server that restarts loses the utterance it was in at most. A
    connection that fails mid-utterance ends that utterance at once with
    what asr.c had shown of it (its stable words, or nothing); a new one
    is tried with a backoff (S_BACKOFF_MIN_MS doubling to
    S_BACKOFF_MAX_MS) while audio comes. Bounds: a connect and upgrade
    take S_CONNECT_MS at most; a server that owes answers (for audio or
    for eof) and sends none for S_STALL_MS is dropped as stalled, one that
    answers but falls S_INFLIGHT_MAX messages behind as too slow (a slow
    server that keeps answering is waited for); answers are
    TOLK_VOSK_ANSWER_MAX bytes.
    An outage is logged once per server, not per stream or attempt.

    Names in vosk_url are resolved once, when the first stream on the URL
    opens: the worker opens one at start for every URL it is configured
    with, so the blocking lookup happens before the loop runs.
    "phrase_list" is not sent: vosk-server makes it a grammar that limits
    recognition to those phrases, not a boost of them.
*/
#include "asr_stable.h"
#include "asr_vosk.h"
#include "readable.h"
#include "log.h"
#include "wsconn.h"

#include <ctype.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_RATE            16000
#define S_BLOCK           (S_RATE / 10) /* samples per message: 100 ms */
#define S_BACKLOG_SAMPLES (5 * S_RATE)  /* audio kept while no connection is up */
/* 30 s of audio unanswered: too slow. A server that falls behind for a
   while (a CPU spike, a pause) catches up; dropping it sooner would cost
   an utterance and a reconnect without making it faster. 960 KB queued
   at most. */
#define S_INFLIGHT_MAX   300
#define S_QUEUE_MAX      (S_INFLIGHT_MAX * S_BLOCK * 2 + 4096)
#define S_CONNECT_MS     3000
#define S_STALL_MS       5000 /* owing answers and sending none this long: stalled */
#define S_BACKOFF_MIN_MS 200
#define S_BACKOFF_MAX_MS 5000
#define S_NO_ITEM_MS     10 /* a stream that got no poll item is tried this often */
#define S_CONFIG         "{\"config\" : {\"sample_rate\" : 16000, \"words\" : 1}}"
#define S_EOF            "{\"eof\" : 1}"

/* One server: its URL resolved, and whether it is answering. */
typedef struct s_server_s {
    struct s_server_s *next;
    char *url;      /* as configured: the key */
    char host[300]; /* the Host header, host:port */
    char path[256]; /* what the upgrade asks for */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool down; /* failing now: logged once until it answers again */
} s_server_t;

/* Every server a stream has opened on (a handful: one per language). */
static s_server_t *s_servers;
/* The counters of asr_vosk.h. */
static tolk_vosk_stats_t s_stats;

/* One stream. */
typedef struct {
    s_server_t *server;
    tolk_asr_hyp_fn *hyp; /* asr.c's report */
    void *arg;
    tolk_wsconn_t *conn;          /* NULL while none is up or being made */
    bool opened;                  /* conn got past the upgrade */
    bool answered;                /* conn answered once: a working server (backoff reset) */
    bool eof_sent;                /* {"eof"} went on conn: its last final is awaited */
    bool eof_wanted;              /* the backlog ends with a finish: send eof after it */
    bool polled;                  /* conn got a poll item this turn */
    bool in_utt;                  /* words of the utterance in progress were heard */
    int64_t samples;              /* samples fed: the stream's clock */
    int64_t base;                 /* stream sample at conn's first audio */
    int64_t sent;                 /* samples sent on conn */
    int64_t acked;                /* of those, answered */
    int64_t utt_start;            /* stream sample where the utterance in progress began */
    int inflight[S_INFLIGHT_MAX]; /* sizes of the unanswered messages, oldest at head */
    int if_head, if_count;
    int64_t progress_ms; /* the server's last progress: an answer, or the first message
                            it owed one for (the stall clock) */
    int64_t retry_ms;    /* no connection before this (backoff) */
    int backoff_ms;      /* the next backoff */
    int16_t block[S_BLOCK];
    size_t nblock;    /* samples in block */
    int16_t *backlog; /* audio for the next connection, S_BACKLOG_SAMPLES at most */
    size_t nbacklog;
} s_stream_t;

/* Monotonic ms. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_ms(int64_t samples)
{
    return samples * 1000 / S_RATE;
}

/* ------------------------------------------------------------ answers */

tolk_vosk_kind_t tolk_vosk_parse(const char *msg, size_t len, tolk_vosk_answer_t *out)
{
    *out = (tolk_vosk_answer_t){.kind = TOLK_VOSK_NONE, .start_s = -1, .end_s = -1};
    if (!msg || len > TOLK_VOSK_ANSWER_MAX)
        return TOLK_VOSK_NONE;
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return TOLK_VOSK_NONE;
    }
    json_t *partial = json_object_get(root, "partial");
    json_t *text = json_object_get(root, "text");
    json_t *alts = json_object_get(root, "alternatives");
    if (!text && json_is_array(alts))
        text = json_object_get(json_array_get(alts, 0), "text");
    tolk_vosk_kind_t kind = TOLK_VOSK_NONE;
    const char *words = NULL;
    if (json_is_string(text)) {
        kind = TOLK_VOSK_FINAL;
        words = json_string_value(text);
    } else if (json_is_string(partial)) {
        kind = TOLK_VOSK_PARTIAL;
        words = json_string_value(partial);
    }
    if (kind != TOLK_VOSK_NONE && (out->text = tolk_readable_words(words)) != NULL) {
        out->kind = kind;
        json_t *result = json_object_get(root, "result");
        size_t n = json_is_array(result) ? json_array_size(result) : 0;
        json_t *first = n ? json_object_get(json_array_get(result, 0), "start") : NULL;
        json_t *last = n ? json_object_get(json_array_get(result, n - 1), "end") : NULL;
        if (kind == TOLK_VOSK_FINAL && json_is_number(first) && json_is_number(last)) {
            double a = json_number_value(first), b = json_number_value(last);
            /* times inside a day of audio, in order: anything else is ignored */
            if (a >= 0 && b >= a && b < 86400) {
                out->start_s = a;
                out->end_s = b;
            }
        }
    }
    json_decref(root);
    return out->kind;
}

void tolk_vosk_stats(tolk_vosk_stats_t *out)
{
    *out = s_stats;
    out->servers_down = 0;
    for (s_server_t *s = s_servers; s; s = s->next)
        out->servers_down += s->down;
}

/* ------------------------------------------------------------ servers */

/* The server of url, resolved on first use; NULL (after logging why)
   when the URL is not ws://host[:port][/path] or the name does not
   resolve. */
static s_server_t *s_server(const char *url)
{
    for (s_server_t *s = s_servers; s; s = s->next)
        if (strcmp(s->url, url) == 0)
            return s;
    const char *p = strncmp(url, "ws://", 5) == 0 ? url + 5 : NULL;
    char host[256] = "", port[8] = "80";
    const char *path = "/";
    if (p) {
        size_t hl = strcspn(p, ":/");
        const char *rest = p + hl;
        if (hl == 0 || hl >= sizeof host)
            p = NULL;
        else {
            memcpy(host, p, hl);
            host[hl] = 0;
            if (*rest == ':') {
                size_t pl = strspn(rest + 1, "0123456789");
                if (pl == 0 || pl >= sizeof port || (rest[1 + pl] && rest[1 + pl] != '/'))
                    p = NULL;
                else {
                    memcpy(port, rest + 1, pl);
                    port[pl] = 0;
                    rest += 1 + pl;
                }
            }
            if (*rest == '/')
                path = rest;
        }
    }
    if (!p || strlen(path) >= 256 || strpbrk(path, " \r\n")) {
        tolk_error("asr.open", NULL, "vosk URL '%s' is not ws://host[:port][/path]", url);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        tolk_error("asr.open", NULL, "vosk-server host '%s' does not resolve: %s", host,
                   gai_strerror(rc));
        return NULL;
    }
    s_server_t *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        freeaddrinfo(res);
        tolk_error("asr.open", NULL, "out of memory");
        return NULL;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(s->host, sizeof s->host, "%s:%s", host, port);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->next = s_servers;
    s_servers = s;
    return s;
}

/* A connection to the server failed or dropped: log once per outage. */
static void s_server_failed(s_server_t *s, const char *why)
{
    s_stats.failures++;
    if (!s->down)
        tolk_warn("asr.vosk", NULL,
                  "vosk-server at %s is not answering (%s): its captions stop until it is back; "
                  "trying again",
                  s->url, why);
    s->down = true;
}

static void s_server_answers(s_server_t *s)
{
    if (s->down)
        tolk_info("asr.vosk", NULL, "vosk-server at %s answers again", s->url);
    s->down = false;
}

/* ------------------------------------------------------------ streams */

static void s_connect(s_stream_t *self);

/* Keep samples for the next connection, dropping the oldest past
   S_BACKLOG_SAMPLES. */
static void s_backlog_add(s_stream_t *self, const int16_t *pcm, size_t n)
{
    if (n >= S_BACKLOG_SAMPLES) {
        pcm += n - S_BACKLOG_SAMPLES;
        n = S_BACKLOG_SAMPLES;
    }
    if (self->nbacklog + n > S_BACKLOG_SAMPLES) {
        size_t drop = self->nbacklog + n - S_BACKLOG_SAMPLES;
        memmove(self->backlog, self->backlog + drop, (self->nbacklog - drop) * sizeof *pcm);
        self->nbacklog -= drop;
        self->eof_wanted = false; /* what it ended is gone with it */
    }
    memcpy(self->backlog + self->nbacklog, pcm, n * sizeof *pcm);
    self->nbacklog += n;
}

/* The utterance in progress is over without a server's final (its
   connection failed): asr.c closes it with the words it showed. */
static void s_cut(s_stream_t *self)
{
    if (!self->in_utt)
        return;
    s_stats.lost++;
    int64_t end = self->base + self->acked;
    if (end < self->utt_start)
        end = self->utt_start;
    self->hyp(self->arg, true, "", s_ms(self->utt_start), s_ms(end));
    self->utt_start = end;
    self->in_utt = false;
}

/* Drop the connection. failed: it broke (the utterance is cut, the
   server counted down, a backoff starts); else it ended as it should
   after eof. */
static void s_drop(s_stream_t *self, bool failed, const char *why)
{
    if (failed) {
        s_cut(self);
        /* the speaker had stopped: nothing will recognise what waits in
           time to matter, and a stopping worker must not wait for it */
        if (self->eof_wanted) {
            self->eof_wanted = false;
            self->nbacklog = 0;
        }
        s_server_failed(self->server, why);
        self->retry_ms = s_now_ms() + self->backoff_ms;
        self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : S_BACKOFF_MIN_MS;
        if (self->backoff_ms > S_BACKOFF_MAX_MS)
            self->backoff_ms = S_BACKOFF_MAX_MS;
    }
    tolk_wsconn_destroy(&self->conn);
    self->opened = self->answered = self->eof_sent = false;
    self->if_count = self->if_head = 0;
    self->utt_start = self->base + self->sent; /* what the next connection starts with */
    if (self->utt_start > self->samples)
        self->utt_start = self->samples;
}

/* Send n samples on the connection as one message. Returns 0, or -1
   when the server is too far behind (or the queue is full): the
   connection is dropped then, and the caller keeps the samples. */
static int s_send(s_stream_t *self, const int16_t *pcm, size_t n)
{
    if (self->if_count == S_INFLIGHT_MAX ||
        tolk_wsconn_send(self->conn, false, pcm, n * sizeof *pcm) != 0) {
        char why[160];
        snprintf(why, sizeof why, "%s",
                 tolk_wsconn_state(self->conn) == TOLK_WSCONN_CLOSED
                     ? tolk_wsconn_error(self->conn)
                     : "too slow: 30 s of audio unanswered");
        s_drop(self, true, why);
        return -1;
    }
    if (self->if_count == 0)
        self->progress_ms = s_now_ms();
    self->inflight[(self->if_head + self->if_count++) % S_INFLIGHT_MAX] = (int)n;
    self->sent += (int64_t)n;
    return 0;
}

/* Audio that is ready to go: to the connection, else to the backlog
   (and a connection is made when the backoff allows). */
static void s_audio(s_stream_t *self, const int16_t *pcm, size_t n)
{
    if (self->conn && !self->eof_sent) {
        if (s_send(self, pcm, n) != 0)
            s_backlog_add(self, pcm, n);
        return;
    }
    s_backlog_add(self, pcm, n);
    if (!self->conn && s_now_ms() >= self->retry_ms)
        s_connect(self);
}

/* Send eof on a live connection: the last final will follow. */
static void s_send_eof(s_stream_t *self)
{
    if (tolk_wsconn_send(self->conn, true, S_EOF, strlen(S_EOF)) != 0) {
        s_drop(self, true, "too slow: eof refused");
        return;
    }
    if (self->if_count == 0)
        self->progress_ms = s_now_ms();
    self->eof_sent = true;
}

/* One answer of the server: it covers the oldest unanswered message. */
static void s_on_answer(void *arg, bool text, const char *data, size_t len)
{
    s_stream_t *self = arg;
    if (!text)
        return; /* vosk-server sends none; nothing to do with one */
    tolk_vosk_answer_t a;
    tolk_vosk_parse(data, len, &a);
    if (a.kind == TOLK_VOSK_NONE)
        return;
    self->progress_ms = s_now_ms();
    if (!self->answered) {
        self->answered = true;
        self->backoff_ms = 0; /* a working server: the next drop retries at once */
        s_server_answers(self->server);
    }
    if (self->if_count > 0) {
        self->acked += self->inflight[self->if_head];
        self->if_head = (self->if_head + 1) % S_INFLIGHT_MAX;
        self->if_count--;
    }
    int64_t end = self->base + self->acked;
    if (a.kind == TOLK_VOSK_PARTIAL) {
        if (a.text[0]) {
            self->in_utt = true;
            self->hyp(self->arg, false, a.text, s_ms(self->utt_start), s_ms(end));
        }
        free(a.text);
        return;
    }
    int64_t start = self->utt_start;
    if (a.start_s >= 0) {
        start = self->base + (int64_t)(a.start_s * S_RATE);
        int64_t wend = self->base + (int64_t)(a.end_s * S_RATE);
        if (start < self->utt_start)
            start = self->utt_start;
        if (wend >= start && wend <= end)
            end = wend;
    }
    if (end < start)
        end = start;
    if (a.text[0] || self->in_utt) {
        s_stats.finals++;
        self->hyp(self->arg, true, a.text, s_ms(start), s_ms(end));
    }
    self->utt_start = self->base + self->acked;
    self->in_utt = false;
    free(a.text);
}

/* Open a connection, configure it, and send the backlog (and the eof
   that ended it, if one did). */
static void s_connect(s_stream_t *self)
{
    self->conn = tolk_wsconn_new((struct sockaddr *)&self->server->addr, self->server->addrlen,
                                 self->server->host, self->server->path, TOLK_VOSK_ANSWER_MAX,
                                 S_QUEUE_MAX, s_on_answer, self);
    if (!self->conn || tolk_wsconn_send(self->conn, true, S_CONFIG, strlen(S_CONFIG)) != 0) {
        s_drop(self, true, "no socket");
        return;
    }
    self->base = self->samples - (int64_t)self->nblock - (int64_t)self->nbacklog;
    self->sent = self->acked = 0;
    self->utt_start = self->base;
    self->in_utt = false;
    size_t n = self->nbacklog, off = 0;
    for (; off < n; off += S_BLOCK)
        if (s_send(self, self->backlog + off, n - off < S_BLOCK ? n - off : S_BLOCK) != 0)
            break;
    /* what did not go waits for the next connection */
    memmove(self->backlog, self->backlog + off, (n - off) * sizeof *self->backlog);
    self->nbacklog = n - off;
    if (self->conn && self->eof_wanted) {
        self->eof_wanted = false;
        s_send_eof(self);
    }
}

/* Engine table: open on the server at url (the engine's "model"). */
static void *s_open(const char *url, tolk_asr_hyp_fn *hyp, void *arg)
{
    s_server_t *server = s_server(url);
    if (!server)
        return NULL;
    s_stream_t *self = calloc(1, sizeof *self);
    if (self)
        self->backlog = malloc(S_BACKLOG_SAMPLES * sizeof *self->backlog);
    if (!self || !self->backlog) {
        if (self)
            free(self);
        tolk_error("asr.open", NULL, "out of memory");
        return NULL;
    }
    self->server = server;
    self->hyp = hyp;
    self->arg = arg;
    return self;
}

/* Engine table: feed, in whole 100 ms messages; a remainder waits. */
static int s_feed(void *handle, const int16_t *pcm, size_t samples)
{
    s_stream_t *self = handle;
    self->samples += (int64_t)samples;
    while (samples > 0) {
        size_t take = S_BLOCK - self->nblock;
        if (take > samples)
            take = samples;
        memcpy(self->block + self->nblock, pcm, take * sizeof *pcm);
        self->nblock += take;
        pcm += take;
        samples -= take;
        if (self->nblock == S_BLOCK) {
            self->nblock = 0;
            s_audio(self, self->block, S_BLOCK);
        }
    }
    return 0;
}

/* Engine table: finish. The remainder goes, then eof: the server's last
   final comes later, from run. With no connection up the audio waits in
   the backlog with its eof, unless the server is down: then it is
   dropped (the speaker has stopped; nothing will recognise it in time). */
static int s_finish(void *handle)
{
    s_stream_t *self = handle;
    if (self->nblock) {
        size_t n = self->nblock;
        self->nblock = 0;
        s_audio(self, self->block, n);
    }
    if (self->conn && !self->eof_sent)
        s_send_eof(self);
    else if (self->conn || self->nbacklog) {
        if (self->server->down && !self->conn) {
            self->nbacklog = 0;
            s_cut(self);
        } else
            self->eof_wanted = true;
    }
    return 0;
}

/* Engine table: close. */
static void s_close(void *handle)
{
    s_stream_t *self = handle;
    tolk_wsconn_destroy(&self->conn);
    free(self->backlog);
    free(self);
}

/* Engine table: shutdown, forgetting the servers. */
static void s_shutdown(void)
{
    while (s_servers) {
        s_server_t *s = s_servers;
        s_servers = s->next;
        free(s->url);
        free(s);
    }
}

static int s_pollitems(void *handle, zmq_pollitem_t *items, int max)
{
    s_stream_t *self = handle;
    self->polled = max > 0 && tolk_wsconn_pollitem(self->conn, items) == 1;
    return self->polled ? 1 : 0;
}

static long s_timeout_ms(void *handle)
{
    s_stream_t *self = handle;
    int64_t now = s_now_ms(), due;
    if (self->conn && !self->polled)
        return S_NO_ITEM_MS;
    if (self->conn && !self->opened)
        due = S_CONNECT_MS - tolk_wsconn_age_ms(self->conn);
    else if (self->conn && (self->eof_sent || self->if_count))
        due = self->progress_ms + S_STALL_MS - now;
    else if (!self->conn && self->nbacklog)
        due = self->retry_ms - now;
    else
        return -1;
    return due < 0 ? 0 : (long)due;
}

static void s_run(void *handle, const zmq_pollitem_t *items, int n)
{
    s_stream_t *self = handle;
    if (self->conn) {
        short revents = 0;
        bool mine = false;
        for (int i = 0; i < n && !mine; i++)
            if (items[i].socket == NULL && items[i].fd == tolk_wsconn_fd(self->conn)) {
                revents = items[i].revents;
                mine = true;
            }
        if (!self->polled || revents)
            tolk_wsconn_run(self->conn, revents);
        tolk_wsconn_state_t st = tolk_wsconn_state(self->conn);
        if (st == TOLK_WSCONN_OPEN && !self->opened) {
            self->opened = true;
            self->progress_ms = s_now_ms(); /* what it owes is owed from now */
            s_stats.connects++;
        }
        if (st == TOLK_WSCONN_CLOSED) {
            /* after eof with every answer in, the server closing is the plan */
            bool done = self->eof_sent && self->if_count == 0 && !self->in_utt;
            char why[160];
            snprintf(why, sizeof why, "%s", tolk_wsconn_error(self->conn));
            s_drop(self, !done, why);
        } else if (!self->opened && tolk_wsconn_age_ms(self->conn) >= S_CONNECT_MS)
            s_drop(self, true, "no answer to the upgrade in time");
        else if ((self->eof_sent || self->if_count) && s_now_ms() - self->progress_ms >= S_STALL_MS)
            s_drop(self, true, "stalled: no answer in 5 s");
    }
    if (!self->conn && self->nbacklog && s_now_ms() >= self->retry_ms)
        s_connect(self);
}

static bool s_busy(void *handle)
{
    s_stream_t *self = handle;
    return (self->conn && (self->eof_sent || self->if_count)) || self->eof_wanted;
}

const tolk_asr_engine_t tolk_asr_engine_vosk = {
    .name = "vosk",
    .bare = true,
    .open = s_open,
    .feed = s_feed,
    .finish = s_finish,
    .close = s_close,
    .shutdown = s_shutdown,
    .pollitems = s_pollitems,
    .timeout_ms = s_timeout_ms,
    .run = s_run,
    .busy = s_busy,
};
