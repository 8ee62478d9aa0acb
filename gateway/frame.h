/*  frame.h -- what the gateway decides about one text frame before any
    worker sees it: is it JSON, does it name a known action, is it within
    its size limit, and which worker kind it goes to. Pure, so it is unit
    tested and fuzzed on its own.
*/
#ifndef TOLK_FRAME_H
#define TOLK_FRAME_H

#include "envelope.h"

#include <stddef.h>

#define FRAME_CONTROL_MAX 4096 /* bytes of a control message (SPEC section 5) */
/* bytes of a setVocabulary message: 200 entries of 64 bytes, quoted */
#define FRAME_VOCABULARY_MAX 16384

/* Where a frame goes: a worker kind (the same values as
   tolk_worker_kind_t, so frame_route_kind is a plain check), or nowhere. */
typedef enum {
    FRAME_ROUTE_NONE = -1,                     /* refused: see status/code */
    FRAME_ROUTE_CONTROL = TOLK_WORKER_CONTROL, /* control_worker */
    FRAME_ROUTE_STATUS = TOLK_WORKER_STATUS,   /* status_worker */
    FRAME_ROUTE_AUDIO = TOLK_WORKER_AUDIO,     /* audio_worker */
    FRAME_ROUTE_HEARTBEAT = 10,                /* answered by the gateway itself */
} frame_route_t;

/* The verdict on one frame. */
typedef struct {
    frame_route_t route; /* where it goes, or NONE */
    int status;          /* HTTP-like status of the refusal (400, 413) */
    const char *code;    /* SPEC error code of the refusal */
    const char *message; /* human-readable reason */
    char action[48];     /* the action, when one could be read ("" otherwise) */
    int rate_limited;    /* counts against the per-connection control rate */
} frame_verdict_t;

/* The worker kind a route goes to; TOLK_WORKER_UNKNOWN for NONE and
   HEARTBEAT, which go to no worker. */
tolk_worker_kind_t frame_route_kind(frame_route_t route);

/* Judge a text frame of len bytes. Returns 0 (route set) or -1 (refusal). */
int frame_check_text(const char *text, size_t len, frame_verdict_t *v);

#endif
