/*  status_store.h -- the Redis side of session status: what a speaker's
    sessionStatus is made of, and whether a status push is due.

    Everything is read from the session's own keys, never from a scan, so a
    status costs the same with 5 or 500 listeners:
        tolk:{sid}:session     hash  session fields, broadcast state, and the
                                     push bookkeeping stLastPushMs,
                                     stLastCount, stLangs (gone with the session)
        tolk:{sid}:langs       hash  language -> listeners
        tolk:{sid}:statusrate  zset  one member per getSessionStatus in the
                                     last second (PEXPIRE 1 s)
    All three share the hash tag {sid}, so each operation is one Lua script
    in one Redis Cluster slot, run in one round trip:
      - tolk_status_query: the rate check plus the read, for a request;
      - tolk_status_due: decides whether a push is due and records it in the
        same script, so two status workers never push the same event. Many
        sessions are checked in one pipelined round trip.
*/
#ifndef TOLK_STATUS_STORE_H
#define TOLK_STATUS_STORE_H

#include "envelope.h"
#include "redis_link.h"

#include <stdbool.h>
#include <stdint.h>

/* Languages one status carries at most (more than any translator reaches). */
#define TOLK_STATUS_MAX_LANGS 128

/* No push within this long of the speaker's (re)connection: its gateway
   may not have its BIND yet, and a PUBLISH for a speaker it does not know
   is dropped. A speaker back from its grace period hears what it missed
   this much later. */
#define TOLK_STATUS_SETTLE_MS 1000

/* Sessions checked per pipelined round trip. */
#define TOLK_STATUS_BATCH 256

/* Why a sessionStatus was sent; the wire names are tolk_status_reason_name. */
typedef enum {
    TOLK_STATUS_REQUESTED = 0,    /* the speaker asked: getSessionStatus */
    TOLK_STATUS_PERIODIC = 1,     /* status_period_s since the last push */
    TOLK_STATUS_COUNT_CHANGE = 2, /* listeners moved more than status_change_pct */
    TOLK_STATUS_NEW_LANGUAGE = 3, /* a language no listener had before */
} tolk_status_reason_t;

/* One language's share of the audience. */
typedef struct {
    char code[TOLK_LANG_MAX + 1]; /* ISO 639-1 */
    long count;                   /* listeners, always > 0 */
} tolk_status_lang_t;

/* What a sessionStatus is built from, read in one step. */
typedef struct {
    tolk_status_reason_t reason;         /* why it is sent */
    int64_t now_ms;                      /* the time the script decided with: the timestamp */
    int64_t created_at;                  /* ms, for sessionDuration */
    bool is_active, is_paused, is_muted; /* broadcast state */
    double volume;                       /* broadcast state, 0.0 to 1.0 */
    int64_t last_state_change;           /* broadcast state, ms */
    long listener_count;                 /* the session's counter */
    char speaker_gw[TOLK_ID_MAX + 1];    /* the gateway holding the speaker */
    int nlangs;                          /* used entries of langs */
    tolk_status_lang_t langs[TOLK_STATUS_MAX_LANGS]; /* languages with listeners */
} tolk_status_t;

/* Called for each session whose push is due (and already recorded). */
typedef void(tolk_status_due_fn)(void *arg, const char *sid, const tolk_status_t *status);

/* A speaker asks for the status of sid: count the query in the session's
   sliding one-second window (at most rate_per_s; <= 0 means no limit), and
   read the status. Returns TOLK_STORE_OK with *status filled,
   TOLK_STORE_NOT_FOUND, TOLK_STORE_DOWN, or > 0: rate limited, retry after
   that many seconds (nothing was read or counted). */
int tolk_status_query(tolk_redis_t *r, const char *sid, int rate_per_s, int64_t now_ms,
                      tolk_status_t *status);

/* For each of sids[0..n) that is live (speaker present and connected at
   least TOLK_STATUS_SETTLE_MS ago), decide whether a
   push is due at now_ms, and if so record it and call fn. Reasons by
   priority: a language never seen in this session, then a listener count
   that moved more than change_pct percent from the last pushed count (any
   change from 0), then period_ms since the last push (or since creation).
   Sessions go to Redis in pipelined batches of TOLK_STATUS_BATCH. Returns
   how many were due, or TOLK_STORE_DOWN when Redis failed (the ones
   already reported stay reported). */
int tolk_status_due(tolk_redis_t *r, char sids[][TOLK_ID_MAX + 1], int n, int64_t now_ms,
                    int64_t period_ms, int change_pct, tolk_status_due_fn *fn, void *arg);

/* Live session ids from the index tolk:sessions, ranks [start, start+max).
   *ranks gets how many ranks were read (ids of a bad shape are skipped, so
   a caller pages on with start + *ranks and stops when *ranks < max).
   Returns how many ids were written, or TOLK_STORE_DOWN. */
int tolk_status_sessions(tolk_redis_t *r, long start, char sids[][TOLK_ID_MAX + 1], int max,
                         int *ranks);

/* The updateReason of the wire protocol. */
const char *tolk_status_reason_name(tolk_status_reason_t reason);

#endif
