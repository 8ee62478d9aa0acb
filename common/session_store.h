/*  session_store.h -- sessions and their members in Redis.

    Each operation is one Lua script over the session's own keys, which
    share the hash tag {session-id} (one Redis Cluster slot), so the 500
    cap, the language counts and the broadcast state change atomically:
        tolk:{sid}:session  hash   session fields, broadcast state, the vocabulary
                                   (vocabulary, vocabRev)
        tolk:{sid}:langs    hash   language -> listeners
        tolk:{sid}:gws      hash   gateway id -> members hosted there
        tolk:{sid}:members  hash   "gateway/conn" -> "S", "L:<lang>", or "H:<lang>"
                                   for a listener who hears spoken translation
        tolk:{sid}:speech   hash   language -> listeners hearing speech
    Kept after the end, for transcript_retention_s (the speaker's transcript):
        tolk:{sid}:hist:<lang> stream  the finals of one language, id <seq>-0
        tolk:{sid}:histlangs   set     languages with a history
        tolk:{sid}:transcript  hash    speakerSub, sourceLanguage, createdAt, endedAt
        tolk:{sid}:ended       string  why it ended: a returning listener is told so
    Cross-session indexes are written after the script, in the same call:
        tolk:gwconns:<gw>   hash   conn -> session id (cleanup of a dead gateway)
        tolk:sessions       zset   session id by last refresh (maximum duration)
        tolk:grace          zset   session id by grace deadline (speaker gone)
    The control worker, the sweeper and the audio worker use this module;
    no other module formats these keys.
*/
#ifndef TOLK_SESSION_STORE_H
#define TOLK_SESSION_STORE_H

#include "envelope.h"
#include "gwlink.h"
#include "redis_link.h"

#include <stdbool.h>
#include <stdint.h>

#define TOLK_STORE_MAX_GWS 64
/* Languages a snapshot carries at most (more than any translator reaches). */
#define TOLK_STORE_MAX_LANGS 128
/* Field/value strings one state change sets at most. */
#define TOLK_STORE_MAX_STATE_FIELDS 12

/* The broadcast state every member is told of: the speaker's controls. */
typedef struct {
    bool is_active, is_paused, is_muted;
    double volume;             /* 0.0 to 1.0 */
    int64_t last_state_change; /* ms of the last change */
} tolk_broadcast_state_t;

/* What a caller learns about a session while joining or refreshing. */
typedef struct {
    char source_language[TOLK_LANG_MAX + 1];
    char quality_tier[16];
    tolk_broadcast_state_t state;
    long listener_count;
    bool in_grace;       /* the speaker is away; listeners should know */
    char end_reason[32]; /* TOLK_STORE_ENDED: why it ended ("endSession", ...) */
} tolk_session_info_t;

/* One language and its listeners, in a snapshot. */
typedef struct {
    char code[TOLK_LANG_MAX + 1]; /* ISO 639-1 */
    long count;                   /* listeners, always > 0 */
} tolk_store_lang_t;

/* What the audio worker needs of a session, read in one step. */
typedef struct {
    char source[TOLK_LANG_MAX + 1]; /* the speaker's language; "" when the hash has none */
    int64_t created_at;             /* ms; valid only when created_known */
    bool created_known;             /* the hash holds a numeric createdAt */
    long long vocab_rev;            /* changes of the vocabulary so far (0: never set):
                                       read the vocabulary again when it moves */
    int nlangs;                     /* used entries of langs */
    tolk_store_lang_t langs[TOLK_STORE_MAX_LANGS];        /* languages with listeners */
    int ngws;                                             /* used entries of gws */
    char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];        /* gateways hosting members */
    int nspoken;                                          /* used entries of spoken */
    char spoken[TOLK_STORE_MAX_LANGS][TOLK_LANG_MAX + 1]; /* languages someone hears spoken */
} tolk_session_snapshot_t;

/* Results shared by the operations. */
typedef enum {
    TOLK_STORE_OK = 0,
    TOLK_STORE_NOT_FOUND = -404,
    TOLK_STORE_ENDED = -410, /* no such session now, but it ended within the retention */
    TOLK_STORE_FULL = -409,
    TOLK_STORE_FORBIDDEN = -403,
    TOLK_STORE_EXISTS = -1, /* id taken, or member already present */
    TOLK_STORE_DOWN = -503, /* Redis unreachable or the script failed */
} tolk_store_result_t;

/* What the departure of a speaker connection means. */
typedef enum {
    TOLK_SPEAKER_GONE_NOTHING = 0, /* no such session any more */
    TOLK_SPEAKER_GONE_STALE = 1,   /* an old connection of a refreshed speaker */
    TOLK_SPEAKER_GONE_END = 2,     /* clean close: end the session now */
    TOLK_SPEAKER_GONE_GRACE = 3,   /* abnormal drop: grace period started */
} tolk_speaker_gone_t;

/* Create a session with a fresh id written into sid (>= TOLK_ID_MAX+1),
   with its vocabulary (the stored form of common/vocabulary.h; NULL or ""
   for none). */
int tolk_store_create(tolk_redis_t *r, char *sid, const char *source, const char *tier,
                      const char *sub, const char *gw, uint64_t conn, const char *vocabulary,
                      int64_t now_ms);

/* The speaker replaces the vocabulary (its stored form; "" clears it) in
   one step, counting the change in vocabRev, which the audio worker's
   snapshot reads. Returns the new vocabRev (1 or more), NOT_FOUND when the
   session has ended (nothing written), or DOWN. */
long long tolk_store_set_vocabulary(tolk_redis_t *r, const char *sid, const char *vocabulary);

/* The session's vocabulary: *vocabulary gets its stored form, malloc'd
   ("" for none), for the caller to free. Returns its vocabRev (0 when it
   was never set), NOT_FOUND when the session has ended, or DOWN (then
   *vocabulary is NULL). */
long long tolk_store_vocabulary(tolk_redis_t *r, const char *sid, char **vocabulary);

/* Add a listener under the cap; fills info. TOLK_STORE_ENDED (with
   info->end_reason) when the session ended within the retention time,
   TOLK_STORE_NOT_FOUND when there is no trace of it. */
int tolk_store_join(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                    const char *lang, int max_listeners, bool speech, tolk_session_info_t *info);

/* Remove a listener (idempotent). Returns 1 if it was there, 0 if not, or DOWN. */
int tolk_store_leave(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn);

/* Move a listener to another language: its counts move in one step.
   Returns TOLK_STORE_OK, NOT_FOUND (no session or not a listener), or DOWN. */
int tolk_store_change_language(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                               const char *lang);

/* A listener turns spoken translation on or off. Returns TOLK_STORE_OK,
   NOT_FOUND (no session or not a listener), or DOWN. */
int tolk_store_set_speech(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn, bool on);

/* A speaker connection went away (clean: closed with 1000). */
int tolk_store_speaker_gone(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                            bool clean, int64_t now_ms, int grace_s);

/* A speaker comes back on a new connection; sub must match the creator's. */
int tolk_store_speaker_refresh(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn,
                               const char *sub, int64_t now_ms, tolk_session_info_t *info);

/* End a session: delete every key and index entry, except the caption
   history, which expires retention_s later (the transcript), and the
   reason it ended ("endSession", "maxDuration", ...), kept as long for a
   returning listener. Fills the gateways that hosted members so the caller
   can tell them. Returns the gateway count, TOLK_STORE_NOT_FOUND, or DOWN. */
int tolk_store_end(tolk_redis_t *r, const char *sid, const char *reason, int retention_s,
                   char gws[][TOLK_ID_MAX + 1], int max_gws);

/* End sid only if its speaker is still away and its grace deadline is
   past (a speaker who came back at the last moment wins). Same results as
   tolk_store_end, plus TOLK_STORE_EXISTS when the session is live again. */
int tolk_store_end_expired(tolk_redis_t *r, const char *sid, int64_t now_ms, int retention_s,
                           char gws[][TOLK_ID_MAX + 1], int max_gws);

/* Recount sid's listeners, languages and gateways from its members and
   fix whatever drifted (a crash between two writes, a manual edit).
   O(members): the sweeper runs it on a few sessions per pass. Returns 1
   when something was fixed, 0 when all was right, -1 when the session is
   gone, or DOWN. */
int tolk_store_reconcile(tolk_redis_t *r, const char *sid);

/* Gateways hosting members of sid. Returns the count or DOWN. */
int tolk_store_gateways(tolk_redis_t *r, const char *sid, char gws[][TOLK_ID_MAX + 1], int max_gws);

/* The speaker changes the broadcast state: set the field/value pairs
   (at most TOLK_STORE_MAX_STATE_FIELDS strings) and lastStateChange =
   now_ms in one step, and fill state with the result. Returns
   TOLK_STORE_OK (state filled), TOLK_STORE_NOT_FOUND when the session has
   ended (nothing written), or DOWN when Redis is away or the script failed
   (state untouched). */
int tolk_store_set_state(tolk_redis_t *r, const char *sid, int64_t now_ms, const char **fields,
                         int nfields, tolk_broadcast_state_t *state);

/* The session's source language, creation time, languages with listeners,
   gateways and languages someone hears spoken, in one round trip. Returns
   TOLK_STORE_OK (snap filled), TOLK_STORE_NOT_FOUND when the session has
   ended, or DOWN when Redis is away or answered something else (snap
   untouched: keep what you know). */
int tolk_store_snapshot(tolk_redis_t *r, const char *sid, tolk_session_snapshot_t *snap);

/* Count one more recognition run of sid (asrEpoch), never resurrecting an
   ended session. Returns the new epoch (1 or more), TOLK_STORE_NOT_FOUND
   when the session has ended, or DOWN. */
long long tolk_store_asr_epoch_next(tolk_redis_t *r, const char *sid);

/* The newest recognition run of sid. Returns the epoch, 0 when none was
   counted or the session has ended (or the field is unreadable), or DOWN
   when Redis is away. */
long long tolk_store_asr_epoch(tolk_redis_t *r, const char *sid);

/* Sessions whose speaker's grace deadline is at or before now_ms, at most
   max, earliest first, into sids (ids too long for it are left out).
   Returns the count or DOWN. */
int tolk_store_grace_due(tolk_redis_t *r, int64_t now_ms, char sids[][TOLK_ID_MAX + 1], int max);

/* Sessions created or refreshed at or before before_ms, at most max,
   oldest first, into sids (ids too long for it are left out). Returns the
   count or DOWN. */
int tolk_store_sessions_before(tolk_redis_t *r, int64_t before_ms, char sids[][TOLK_ID_MAX + 1],
                               int max);

/* A page of the live sessions: ranks start .. start + max - 1 of
   tolk:sessions. Fills sids with the well-formed ids and ranks with how
   many ranks the page held (fewer than max: the last page). Returns the
   number of ids or DOWN (ranks 0). */
int tolk_store_sessions_page(tolk_redis_t *r, int64_t start, char sids[][TOLK_ID_MAX + 1], int max,
                             int *ranks);

/* Drop sid from the grace index (tolk:grace): its entry was stale. */
void tolk_store_grace_forget(tolk_redis_t *r, const char *sid);

/* Drop sid from the session index (tolk:sessions): its entry was stale. */
void tolk_store_sessions_forget(tolk_redis_t *r, const char *sid);

/* Called for each connection a gateway held: its session and its id. */
typedef void(tolk_store_conn_fn)(void *arg, const char *sid, uint64_t conn);

/* Call fn for every connection the index says gw holds (tolk:gwconns:<gw>),
   in one read. Returns the number of connections visited, or DOWN (fn not
   called). */
int tolk_store_gateway_conns(tolk_redis_t *r, const char *gw, tolk_store_conn_fn *fn, void *arg);

/* Is gw/conn the speaker of sid? Returns 1 when it is, 0 when it is a
   listener, not a member, or the session has ended, or DOWN. */
int tolk_store_is_speaker(tolk_redis_t *r, const char *sid, const char *gw, uint64_t conn);

/* Forget gw's connection index (tolk:gwconns:<gw>) once it has been
   cleaned up after. */
void tolk_store_gateway_forget(tolk_redis_t *r, const char *gw);

/* Valid session id shape: adjective-noun-NNN, lower case. */
bool tolk_session_id_valid(const char *sid);

/* Valid ISO 639-1 shape: two lower-case letters. */
bool tolk_language_code_valid(const char *code);

/* Send one JSON message to the members of sid on every gateway listed. */
void tolk_store_publish(tolk_gwlink_t *link, char gws[][TOLK_ID_MAX + 1], int n, const char *sid,
                        tolk_audience_t audience, const char *json, int close_code, uint32_t flags);

/* Tell every listed gateway that sid ended: sessionEnded to every member,
   closed with 1000, unbound (so their closes do not come back as leaves). */
void tolk_store_publish_ended(tolk_gwlink_t *link, char gws[][TOLK_ID_MAX + 1], int n,
                              const char *sid, const char *reason);

#endif
