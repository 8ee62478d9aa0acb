/*  envelope.h -- the msgpack envelope every ZeroMQ message between tolk
    processes travels in.

    Wire form: a msgpack map with one-letter keys (unknown keys are skipped,
    so newer senders can add fields):
        v  uint   version, TOLK_ENVELOPE_VERSION
        k  uint   kind, tolk_kind_t
        g  str    gateway id (<= TOLK_ID_MAX bytes)
        w  str    worker id  (<= TOLK_ID_MAX bytes)
        c  uint   connection id, unique within its gateway
        s  str    session id (<= TOLK_ID_MAX bytes)
        r  uint   role, tolk_role_t
        l  str    language code (<= TOLK_LANG_MAX bytes)
        t  uint   monotonic send time in ns, for latency tracing
        a  uint   audience of a PUBLISH, tolk_audience_t
        x  uint   close code to apply after delivery (0: keep open)
        f  uint   flags, TOLK_FLAG_*
        o  uint   connection age in ms at the time the gateway sent it
        q  uint   caption seq of a final (PUBLISH/SEND), or 1 + the seq a
                  catch-up starts after (BIND with TOLK_FLAG_CATCHUP)
        p  bin    payload: JSON text, or audio bytes (<= TOLK_PAYLOAD_MAX)

    The decoder is bounded: it never allocates, checks every declared length
    and count against the bytes left, caps nesting when skipping unknown
    values, and points payload into the caller's buffer (zero copy).
*/
#ifndef TOLK_ENVELOPE_H
#define TOLK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define TOLK_ENVELOPE_VERSION 1
#define TOLK_ID_MAX           64
#define TOLK_LANG_MAX         8
#define TOLK_PAYLOAD_MAX      (128 * 1024)
#define TOLK_ENVELOPE_MAX     (TOLK_PAYLOAD_MAX + 1024)
#define TOLK_SKIP_DEPTH_MAX   8

/* What a message means; gateway->worker kinds first, then worker->gateway. */
typedef enum {
    TOLK_KIND_NONE = 0,
    TOLK_KIND_CONNECT = 1,    /* gw->worker: a new WebSocket; payload = JSON of its query */
    TOLK_KIND_MESSAGE = 2,    /* gw->worker: a text frame; payload = the JSON text */
    TOLK_KIND_AUDIO = 3,      /* gw->worker: a binary frame; payload = the PCM bytes */
    TOLK_KIND_DISCONNECT = 4, /* gw->worker: socket gone; flags say clean or not */
    TOLK_KIND_CATCHUP = 5,    /* gw->worker: connection c is bound and holds its live finals:
                                 send its history (seq: 1 + lastSeq, or 0 for the last N) */
    TOLK_KIND_READY = 10,     /* worker->gw: I am here, of kind in payload ("control"...) */
    TOLK_KIND_HEARTBEAT = 11, /* both ways: still alive */
    TOLK_KIND_LEAVE = 12,     /* worker->gw: I am stopping, route nothing more to me;
                                 gw->worker, its answer: nothing more comes from this gateway */
    TOLK_KIND_SEND = 20,      /* worker->gw: deliver payload to connection c (then close x) */
    TOLK_KIND_BIND = 21,      /* worker->gw: connection c now belongs to s with role r, lang l */
    TOLK_KIND_PUBLISH = 22,   /* worker->gw: deliver payload to members of s (audience a) */
} tolk_kind_t;

/* The kinds of process that follow the gateways. The first three get
   routed work; the sweeper only publishes. On the wire (READY and
   HEARTBEAT payloads) a kind is its name. */
typedef enum {
    TOLK_WORKER_CONTROL = 0,
    TOLK_WORKER_STATUS = 1,
    TOLK_WORKER_AUDIO = 2,
    TOLK_WORKER_ROUTED = 3, /* kinds below this one get routed work */
    TOLK_WORKER_SWEEPER = 3,
    TOLK_WORKER_KINDS = 4,
    TOLK_WORKER_UNKNOWN = -1,
} tolk_worker_kind_t;

typedef enum {
    TOLK_ROLE_NONE = 0,
    TOLK_ROLE_SPEAKER = 1,
    TOLK_ROLE_LISTENER = 2,
} tolk_role_t;

typedef enum {
    TOLK_AUDIENCE_ALL = 0,       /* speaker and every listener */
    TOLK_AUDIENCE_LISTENERS = 1, /* every listener */
    TOLK_AUDIENCE_SPEAKER = 2,   /* the speaker only */
    TOLK_AUDIENCE_LANGUAGE = 3,  /* listeners whose language is l */
} tolk_audience_t;

#define TOLK_FLAG_CLEAN   0x1 /* DISCONNECT: the peer closed with 1000 (or the server did) */
#define TOLK_FLAG_UNBIND  0x2 /* SEND/PUBLISH: forget the session binding after delivery */
#define TOLK_FLAG_PARTIAL 0x4 /* PUBLISH: a partial caption, may replace an unsent one */
/* PUBLISH/BIND: the message carries the session's broadcast state, so the
   gateway learns it with the notification itself and drops a paused or
   muted speaker's audio at the edge, in the same order the speaker sees */
#define TOLK_FLAG_STATE     0x8
#define TOLK_FLAG_AUDIO_OFF 0x10 /* with STATE: paused or muted, audio is dropped */
/* BIND: the connection gets a catch-up: hold its live finals and ask the
   control worker for the history (seq = 1 + lastSeq, or 0 for the last N) */
#define TOLK_FLAG_CATCHUP 0x20
/* SEND: the catch-up is complete; seq is the last final it covered */
#define TOLK_FLAG_CATCHUP_END 0x40
/* PUBLISH: spoken translation, a binary frame for listeners who asked for it */
#define TOLK_FLAG_SPEECH 0x80
/* BIND/SEND: the listener wants spoken translation (SPEECH_SET says the bit is meant) */
#define TOLK_FLAG_SPEECH_ON  0x100
#define TOLK_FLAG_SPEECH_SET 0x200

/* A decoded (or to-be-encoded) envelope. Strings are NUL terminated copies;
   payload points into the decoded buffer and lives as long as it does. */
typedef struct {
    uint32_t version;
    uint32_t kind;
    char gateway[TOLK_ID_MAX + 1];
    char worker[TOLK_ID_MAX + 1];
    uint64_t conn;
    char session[TOLK_ID_MAX + 1];
    uint32_t role;
    char lang[TOLK_LANG_MAX + 1];
    uint64_t sent_ns;
    uint32_t audience;
    uint32_t close_code;
    uint32_t flags;
    uint64_t age_ms;
    uint64_t seq; /* a final's seq, so the gateway can hold, order and de-duplicate */
    const uint8_t *payload;
    size_t payload_len;
} tolk_envelope_t;

/* Decoder results: 0 is success, each failure has its own negative code. */
typedef enum {
    TOLK_ENV_OK = 0,
    TOLK_ENV_ETRUNCATED = -1, /* input ended inside a value */
    TOLK_ENV_ENOTMAP = -2,    /* top level is not a map */
    TOLK_ENV_ECOUNT = -3,     /* a declared count/length exceeds the bytes left or a cap */
    TOLK_ENV_ETYPE = -4,      /* a known key has a value of the wrong type */
    TOLK_ENV_ETOOLONG = -5,   /* a string or payload over its cap */
    TOLK_ENV_EDEPTH = -6,     /* nesting deeper than TOLK_SKIP_DEPTH_MAX */
    TOLK_ENV_EVERSION = -7,   /* missing or unsupported version */
    TOLK_ENV_ETRAILING = -8,  /* bytes left after the map */
    TOLK_ENV_EINVALID = -9,   /* reserved msgpack byte, NUL inside a string, missing kind */
} tolk_env_result_t;

/* Zero env and set the version. */
void tolk_envelope_init(tolk_envelope_t *env, tolk_kind_t kind);

/* Decode buf[0..len) into env. Returns TOLK_ENV_OK or a negative code. */
int tolk_envelope_decode(tolk_envelope_t *env, const uint8_t *buf, size_t len);

/* Encode env into a freshly malloc'd buffer; *out_len gets its size.
   Empty strings and zero numbers are omitted. Returns NULL on OOM or when a
   field is over its cap. */
uint8_t *tolk_envelope_encode(const tolk_envelope_t *env, size_t *out_len);

/* Name of a decoder result, for logs and tests. */
const char *tolk_envelope_strerror(int rc);

/* Copy src into a fixed string field, truncating never: returns -1 if too long. */
int tolk_envelope_set_str(char *field, size_t cap, const char *src);

/* The wire name of a worker kind ("control", ...); "unknown" when out of range. */
const char *tolk_worker_kind_name(tolk_worker_kind_t kind);

/* The kind named by the len bytes at name; TOLK_WORKER_UNKNOWN when none. */
tolk_worker_kind_t tolk_worker_kind_from_name(const char *name, size_t len);

/* CLOCK_MONOTONIC now, in ns. */
uint64_t tolk_now_ns(void);

/* CLOCK_REALTIME now, in ms: the timestamps of the protocol. */
int64_t tolk_now_ms(void);

#endif
