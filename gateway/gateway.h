/*  gateway.h -- the gateway's process state, shared by its modules.

    One lws context, one thread, one ROUTER: the gateway owns the sockets
    and nothing else. Connections live in the lws per-session data; the
    index finds them by id and by session for fan-out; the bridge talks to
    the workers.
*/
#ifndef TOLK_GATEWAY_H
#define TOLK_GATEWAY_H

#include "audio_check.h"
#include "config.h"
#include "envelope.h"
#include "redis_link.h"
#include "statfeed.h"

#include <czmq.h>
#include <libwebsockets.h>
#include <stdbool.h>

#define GW_OUTQ_MAX    512 /* messages queued per connection before it is closed */
#define GW_SLOW_KILL_S 2   /* seconds a closed slow listener has to take its close frame */
#define GW_OUTQ_MIN    4   /* ring slots a connection keeps once it has been sent anything */
#define GW_HTTP_BODY   2048
/* lws's receive buffer, allocated by lws for every WebSocket: a larger
   message arrives in several callbacks and is put together in gw_conn_t.rx,
   so this sizes the idle cost of a listener, not the largest message */
#define GW_RX_CHUNK 1024
/* kernel send buffer per WebSocket (the kernel doubles it): room for a
   catch-up burst of 256 finals, small enough that a stalled listener
   reaches GW_OUTQ_MAX within seconds at live caption rates */
#define GW_SNDBUF          (64 * 1024)
#define GW_WORKER_KINDS    3  /* control, status, audio */
#define GW_HOLD_MAX        16 /* live finals held while a catch-up is on its way */
#define GW_CATCHUP_WAIT_US (2 * LWS_US_PER_SEC) /* no history by then: release what is held */

typedef struct gw_session_s gw_session_t;

/* Where an incremental UTF-8 check stands between two chunks of a text
   message: continuation bytes still owed, and the range the next one must
   fall in (narrower after E0, ED, F0, F4: no overlongs, no surrogates,
   nothing past U+10FFFF). All zero at the start of a message. */
typedef struct {
    uint8_t need, lo, hi;
} gw_utf8_t;

/* A message serialised once and shared by every connection it goes to. */
typedef struct {
    int refs;            /* connections still holding it */
    size_t len;          /* bytes of JSON after the LWS_PRE headroom */
    bool binary;         /* sent as a binary frame */
    bool partial;        /* a partial caption: may be replaced by a newer one */
    unsigned char buf[]; /* LWS_PRE headroom then the message */
} gw_msg_t;

/* Live finals held during a catch-up (catchup.c), apart from gw_conn_t
   because only a joining listener needs them, and only for a moment. */
typedef struct {
    gw_msg_t *msg[GW_HOLD_MAX];
    uint64_t seq[GW_HOLD_MAX];
} gw_hold_t;

/* One WebSocket (or HTTP request: then only http_* is used). */
typedef struct gw_conn_s {
    struct lws *wsi;      /* lws handle, for writes and closes */
    uint64_t id;          /* unique within this gateway, never reused */
    char id_hash[17];     /* what logs show instead of the id */
    int64_t opened_ms;    /* wall clock at open, for the connection age */
    char client_hash[17]; /* hashed peer address: per-address limits without the address */
    /* session binding, set by a worker's BIND */
    bool bound;       /* part of a session */
    tolk_role_t role; /* speaker or listener */
    char session[TOLK_ID_MAX + 1];
    char lang[TOLK_LANG_MAX + 1];
    gw_session_t *sess;      /* index entry of the session */
    struct gw_conn_s *snext; /* next member of the session */
    struct gw_conn_s *sprev; /* previous member of the session */
    bool connecting;         /* CONNECT sent, waiting for the worker's answer */
    /* outbound */
    /* ring of messages to write: none until the first message, then
       GW_OUTQ_MIN slots, doubled up to GW_OUTQ_MAX while the listener is
       behind and shrunk back to none when a grown ring drains, so a
       listener that keeps up costs 32 bytes and no malloc per message */
    gw_msg_t **q;
    int qcap;        /* slots allocated */
    int qhead, qlen; /* ring position and fill */
    int close_code;  /* close after the queue drains (0: stay open) */
    bool closing;    /* close requested; ignore further input */
    /* inbound reassembly, bounded by TOLK_PAYLOAD_MAX */
    unsigned char *rx; /* message being reassembled */
    size_t rx_len, rx_cap;
    bool rx_binary;
    gw_utf8_t rx_utf8; /* the text message's UTF-8 so far (lws does not check it for us) */
    /* control message rate limit: token bucket */
    double tokens;      /* messages still allowed now */
    uint64_t tokens_ns; /* when tokens was last refilled */
    bool peer_clean;    /* the peer closed with 1000 */
    bool peer_closed;   /* the peer sent a close frame (it gets its echo or our refusal) */
    /* audio from a speaker; allocated on the first chunk, so listeners do not pay for it */
    audio_rate_t *arate;
    int64_t last_unavailable_ms; /* last 503 for audio: at most one a second, not one a chunk */
    /* idleness: connections in order of their last message, oldest first */
    int64_t last_in_ms;      /* wall clock of the last message from the peer */
    struct gw_conn_s *inext; /* younger neighbour in the idle list */
    struct gw_conn_s *iprev; /* older neighbour in the idle list */
    bool in_idle_list;
    bool counted; /* counted in the connections gauge */
    /* catch-up: between BIND and the history, live finals wait here so the
       listener gets every seq once and in order (catchup.c) */
    bool catchup_pending;
    uint64_t final_seq; /* the last final seq delivered in this language: later duplicates drop */
    int nheld;
    gw_hold_t *hold;                    /* allocated with the first held final, freed at release */
    lws_sorted_usec_list_t catchup_sul; /* gives up waiting for the history */
    bool hears;                         /* a listener who asked for spoken translation */
    /* HTTP */
    char *http_body; /* small dynamic responses, allocated per reply (WebSockets need none) */
    int http_status;
    const char *http_type;
} gw_conn_t;

/* All local members of one session, for fan-out without asking anyone. */
struct gw_session_s {
    char id[TOLK_ID_MAX + 1];
    gw_conn_t *members; /* doubly linked through snext/sprev */
    int count;
    bool audio_off; /* paused or muted: the speaker's audio is dropped here, not recognised */
};

/* A worker the gateway has heard from. */
typedef struct {
    char id[TOLK_ID_MAX + 1]; /* its DEALER identity */
    int kind;                 /* index into gw_kind_names */
    uint64_t last_seen_ns;    /* last message of any kind */
    bool alive;               /* heard from within heartbeat * misses */
} gw_worker_t;

#define GW_MAX_WORKERS 256

typedef struct {
    tolk_config_t cfg;        /* settings */
    char id[TOLK_ID_MAX + 1]; /* this gateway instance, unique across restarts */
    struct lws_context *lws;  /* the event loop */
    struct lws_vhost *vhost;
    zsock_t *router;                /* backend the workers connect to */
    char endpoint[TOLK_ID_MAX + 1]; /* its resolved address, registered in Redis */
    struct lws *router_wsi;         /* the ROUTER's ZMQ_FD inside the lws loop */
    tolk_redis_t *redis;            /* registry and readiness */
    bool redis_ok;                  /* the last registry refresh worked */
    tolk_statfeed_t *feed;          /* counters */
    zhashx_t *conns;                /* id (as string) -> gw_conn_t */
    zhashx_t *sessions;             /* session id -> gw_session_t */
    uint64_t next_conn_id;
    gw_conn_t *idle_oldest; /* idle list head: the connection silent the longest */
    gw_conn_t *idle_newest; /* idle list tail: the one heard from last */
    gw_worker_t workers[GW_MAX_WORKERS];
    int worker_count;
    bool kind_required[GW_WORKER_KINDS];  /* kinds that must be live for /readyz */
    lws_sorted_usec_list_t tick_sul;      /* the 100 ms cron */
    lws_sorted_usec_list_t drain_sul;     /* drain the ROUTER soon */
    uint64_t last_beat_ns;                /* last heartbeat/registry round */
    volatile sig_atomic_t stop_requested; /* SIGTERM/SIGINT seen */
    bool draining;                        /* refusing new connections */
    uint64_t drain_deadline_ns;
    bool done;  /* leave the loop */
    bool evlib; /* lws runs on libev (event_loop = ev): ending the loop takes a destroy */
    /* counters mirrored into the status feed */
    int64_t connections, messages_in, messages_out, errors, sessions_local;
    int64_t partials_replaced;   /* stale partial captions a slow listener never got */
    int64_t audio_chunks;        /* audio chunks forwarded to audio workers */
    int64_t audio_dropped_rate;  /* chunks over the per-speaker rate */
    int64_t audio_dropped_off;   /* chunks while paused or muted */
    int64_t idle_closed;         /* connections closed for idleness */
    int64_t slow_closed;         /* connections closed because their send queue was full */
    int64_t catchups;            /* catch-ups asked for */
    int64_t finals_deduplicated; /* live finals a catch-up had already delivered */
    int64_t speech_frames;       /* spoken-translation frames delivered */
} gateway_t;

extern const char *gw_kind_names[GW_WORKER_KINDS];

/* catchup.c: a listener's history first, then its live finals, each seq once */
void catchup_begin(gateway_t *gw, gw_conn_t *c, uint64_t after);
void catchup_final(gateway_t *gw, gw_conn_t *c, gw_msg_t *m, uint64_t seq);
void catchup_end(gateway_t *gw, gw_conn_t *c, uint64_t seq);
void catchup_reset(gw_conn_t *c);

/* bridge.c: the ROUTER and the workers */
int bridge_start(gateway_t *gw);
void bridge_stop(gateway_t *gw);
void bridge_drain(gateway_t *gw); /* read every waiting message */
void bridge_beat(gateway_t *gw);  /* heartbeats, liveness, registry */
/* Send env to a live worker of kind chosen by the rendezvous hash of key.
   Returns 0, or -1 when no worker of that kind is live. */
int bridge_route(gateway_t *gw, int kind, const char *key, tolk_envelope_t *env);
int bridge_kind_from_name(const char *name);
bool bridge_ready(gateway_t *gw);
int bridge_live_count(gateway_t *gw, int kind);

/* index.c: connections and sessions */
void index_add_conn(gateway_t *gw, gw_conn_t *c);
void index_remove_conn(gateway_t *gw, gw_conn_t *c);
gw_conn_t *index_conn(gateway_t *gw, uint64_t id);
void index_bind(gateway_t *gw, gw_conn_t *c, const char *session, tolk_role_t role,
                const char *lang);
void index_unbind(gateway_t *gw, gw_conn_t *c);
gw_session_t *index_session(gateway_t *gw, const char *id);

/* outq.c: messages out */
gw_msg_t *msg_new(const void *data, size_t len, bool binary);
void msg_release(gw_msg_t **msg_p);
/* Queue msg (taking a reference) on c and ask for a write. Returns 0, or -1
   when c's queue is full (c is then closed: it cannot keep up). */
int conn_send(gateway_t *gw, gw_conn_t *c, gw_msg_t *msg);
/* Queue a JSON text made here (copied). */
int conn_send_text(gateway_t *gw, gw_conn_t *c, const char *json);
/* Send an error in the SPEC's form; close with 4000+status when close. */
void conn_error(gateway_t *gw, gw_conn_t *c, int status, const char *code, const char *message,
                const char *action, int retry_after, bool close);
/* Close after everything queued is written. */
void conn_close_after(gateway_t *gw, gw_conn_t *c, int code);
/* Write the next queued message; returns -1 when the connection must close. */
int conn_write_next(gateway_t *gw, gw_conn_t *c);
void conn_clear_queue(gw_conn_t *c);

/* ws.c: the lws protocol */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
int zmq_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len);
void ws_drain_all(gateway_t *gw); /* drain: ask every client to refresh */
/* Close connections silent for idle_timeout_s with connectionTimeout;
   looks only at the oldest end of the idle list. */
void ws_close_idle(gateway_t *gw);
void ws_close_all(gateway_t *gw, int code);

/* static.c: GET/HEAD of the pages and files under web_root; 404/405 otherwise */
int static_http(gateway_t *gw, struct lws *wsi, gw_conn_t *c, const char *path);

/* The body of a small dynamic HTTP reply, kept until HTTP_WRITEABLE writes
   it (static.c); 0, or -1 when out of memory. */
int http_body_set(gw_conn_t *c, const char *body);
/* Give the body back: after the write, and when the HTTP connection closes. */
void http_body_free(gw_conn_t *c);

extern gateway_t *g_gateway; /* the one gateway of this process (lws callbacks find it here) */

#endif
