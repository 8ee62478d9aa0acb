/*  gateway.h -- the gateway's state, shared by its modules, and its
    constructor.

    One thread and one libev loop, which the gateway creates and owns:
    libwebsockets runs on it (as a foreign loop, through lws's evlib
    plugin), and so do the ROUTER the workers connect to (an ev_io on its
    ZMQ_FD), the SUB that follows every status feed (metrics.c, likewise)
    and the asynchronous Redis link, so nothing on the loop waits
    on the network. The gateway owns the sockets and nothing else.
    Connections live in lws's per-session data; lws callbacks reach the
    gateway through the context's user pointer (gateway_of), never a global.

    The modules, lowest first (each includes only those below it):
        outq     per-connection send queues of shared messages
        index    connections by id and session members, for fan-out
        bridge   the ROUTER: worker table, liveness, routing
        presence the gateway's registry entries and status feed in Redis
        metrics  every process's status feed, for /metrics
        catchup  a listener's history first, then its live finals
        deliver  what workers send back: SEND, BIND, PUBLISH
        ws       the lws protocol: HTTP endpoints and WebSocket frames
        static_http  the pages under web_root
        gateway  this constructor, the cron and the drain
*/
#ifndef TOLK_GATEWAY_H
#define TOLK_GATEWAY_H

#include "audio_check.h"
#include "client_addr.h"
#include "config.h"
#include "envelope.h"
#include "jwt_check.h"
#include "redis_async.h"
#include "statfeed.h"

#include <czmq.h>
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
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
#define GW_HOLD_MAX        16 /* live finals held while a catch-up is on its way */
#define GW_CATCHUP_WAIT_US (2 * LWS_US_PER_SEC) /* no history by then: release what is held */
#define GW_MAX_WORKERS     256                  /* workers one gateway tracks */
#define GW_TICK_S          0.1                  /* the cron's period */
/* How long a clean exit waits for Redis to take the unregistration. */
#define GW_UNREGISTER_WAIT_MS 1000

typedef struct gw_session_s gw_session_t;
typedef struct gateway_s gateway_t;
typedef struct gw_metrics_s gw_metrics_t; /* metrics.c's, opaque here */

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
    char *http_body; /* dynamic responses, allocated per reply (WebSockets need none) */
    size_t http_len; /* bytes of http_body to write (0: its strlen) */
    size_t http_off; /* bytes of it written so far: a large body goes out a chunk a writable */
    int http_status;
    const char *http_type;
} gw_conn_t;

/* All local members of one session, for fan-out without asking anyone. */
struct gw_session_s {
    char id[TOLK_ID_MAX + 1];
    gw_conn_t *members; /* doubly linked through snext/sprev */
    int count;
    bool audio_off; /* paused or muted: the speaker's audio is dropped here, not recognised */
    char
        audio_worker[TOLK_ID_MAX + 1]; /* the audio worker its stream is on (bridge_route_pinned) */
};

/* A worker the gateway has heard from. */
typedef struct {
    char id[TOLK_ID_MAX + 1]; /* its DEALER identity */
    tolk_worker_kind_t kind;  /* control, status or audio: what it is routed */
    uint64_t last_seen_ns;    /* last message of any kind */
    bool alive;               /* routed to: heard from within heartbeat * misses, not left */
    bool left;                /* said LEAVE: not alive until its next READY or HEARTBEAT */
} gw_worker_t;

/* What the bridge hands every worker message that is not about liveness
   (SEND, BIND, PUBLISH): deliver.c, set by the constructor, so the
   transport does not call up into the delivery. */
typedef void(gw_deliver_fn)(gateway_t *gw, const tolk_envelope_t *env);

struct gateway_s {
    tolk_config_t cfg;        /* settings */
    char id[TOLK_ID_MAX + 1]; /* this gateway instance, unique across restarts */
    struct ev_loop *loop;     /* the one event loop: lws, the ROUTER and Redis */
    struct lws_context *lws;  /* HTTP and WebSocket on that loop */
    tolk_jwt_policy_t jwt;    /* how speaker tokens are checked */
    unsigned char *jwt_key;   /* the HS256 secret or the PEM public key, owned */
    gw_proxies_t proxies;     /* trusted_proxies: whose forwarding headers count */
    /* bridge.c: the ROUTER and the workers */
    zsock_t *router;                        /* backend the workers connect to */
    char endpoint[TOLK_ID_MAX + 1];         /* its resolved address, registered in Redis */
    ev_io router_io;                        /* the ROUTER's ZMQ_FD in the loop */
    ev_timer drain_timer;                   /* read the ROUTER again on the next turn */
    gw_worker_t workers[GW_MAX_WORKERS];    /* every worker heard from lately */
    int worker_count;                       /* entries used in workers */
    bool kind_required[TOLK_WORKER_ROUTED]; /* kinds that must be live for /readyz */
    gw_deliver_fn *deliver;                 /* SEND, BIND and PUBLISH go here */
    /* presence.c: registry and status feed in Redis */
    tolk_redis_async_t *redis; /* asynchronous: the loop never waits on Redis */
    bool registry_ok;          /* Redis applied our last registration */
    tolk_statfeed_t *feed;     /* counters */
    gw_metrics_t *metrics;     /* metrics.c: every process's last report, for /metrics */
    /* index.c */
    zhashx_t *conns;        /* id (as string) -> gw_conn_t */
    zhashx_t *sessions;     /* session id -> gw_session_t */
    uint64_t next_conn_id;  /* the last id given out */
    gw_conn_t *idle_oldest; /* idle list head: the connection silent the longest */
    gw_conn_t *idle_newest; /* idle list tail: the one heard from last */
    /* gateway.c: the cron and the drain */
    ev_timer tick;                         /* the GW_TICK_S cron */
    uint64_t last_beat_ns;                 /* last heartbeat/registry round */
    volatile sig_atomic_t *stop_requested; /* main's signal flag: SIGTERM/SIGINT seen */
    bool draining;                         /* refusing new connections */
    uint64_t drain_deadline_ns;            /* when the rest are closed */
    bool done;                             /* leave the loop */
    /* scratch and one-time notes, here rather than in static storage */
    bool web_root_warned;             /* static_http.c said web_root is unreadable */
    uint8_t pcm[AUDIO_CHUNK_MAX + 4]; /* a decoded sendAudio (ws.c) */
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
    int64_t workers_left;        /* LEAVEs heard from workers */
    int64_t registry_skipped;    /* registration rounds skipped: the last had no answer yet */
    int64_t foreign_dropped;     /* envelopes addressed to another gateway (bridge.c) */
};

/* A gateway with settings cfg (copied): its loop, the speaker token key,
   the ROUTER, the Redis link, the status feed, and lws listening on
   cfg->port on that loop. stop_requested is the flag main's signal
   handler sets; the cron turns it into a drain. Returns NULL (after
   logging why) when anything fails, event_loop other than ev included. */
gateway_t *gateway_new(const tolk_config_t *cfg, volatile sig_atomic_t *stop_requested);

/* Close everything and free it; nulls the caller's pointer. Safe on NULL. */
void gateway_destroy(gateway_t **self_p);

/* Run the loop until the gateway has drained (after a stop request), then
   close the connections and unregister from Redis, waiting at most
   GW_UNREGISTER_WAIT_MS for Redis. Returns 0. */
int gateway_run(gateway_t *self);

/* Whether /readyz answers 200: Redis takes our registrations, we are not
   draining, and every required worker kind has a live worker. */
bool gateway_ready(gateway_t *self);

/* The gateway an lws connection belongs to (the context's user pointer). */
gateway_t *gateway_of(struct lws *wsi);

#endif
