/*  caption_store.h -- the finals of each session and language, kept in
    Redis for late joiners, returning listeners and the transcript.

    One capped stream per session and language, tolk:{sid}:hist:<lang>,
    whose entry ids are the captions' seq ("<seq>-0"): a resume is one
    XRANGE from lastSeq + 1, a late join one XREVRANGE. A final gets its seq
    and enters the history in the same script that returns the gateways to
    send it to, so a listener who joined before the script runs is sent it
    live and one who joined after finds it in the history.
*/
#ifndef TOLK_CAPTION_STORE_H
#define TOLK_CAPTION_STORE_H

#include "envelope.h"
#include "redis_link.h"
#include "session_store.h"

#include <stdbool.h>

#define TOLK_CAPTIONS_READ_MAX 2000 /* most finals one read returns */

/* One final as stored: its seq and the caption JSON sent to listeners. */
typedef struct {
    long seq;
    char *json;       /* the caption message, malloc'd */
    char segment[32]; /* the utterance ("<run>-<n>"): matches across languages */
} tolk_caption_rec_t;

/* What tolk_captions_append reports. */
typedef struct {
    long seq;       /* the final's seq, 0 when the session ended */
    bool duplicate; /* its segment was stored already, under seq: nothing was stored now */
    char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1]; /* gateways hosting members right now */
    int ngws;
} tolk_caption_sent_t;

/* Count a final and store it. json_head and json_tail are the caption
   message around its seq number (head ends with "seq":). keep_ms is how
   long the history may outlive its last final. A segment that is among
   the newest finals of lang already is not stored again: out->duplicate,
   with the seq it has. Returns 0 (out filled; seq 0 when the session has
   ended) or -1 when Redis failed. */
int tolk_captions_append(tolk_redis_t *r, const char *sid, const char *lang, const char *segment,
                         const char *json_head, const char *json_tail, int history_max,
                         int64_t keep_ms, tolk_caption_sent_t *out);

/* The seq of the last final of sid in lang (what the append script counted
   in seq:<lang>). Returns it, 0 when none was counted or the session has
   ended (or the field is unreadable), or -1 when Redis is away. */
long tolk_captions_last_seq(tolk_redis_t *r, const char *sid, const char *lang);

/* Read finals of sid in lang: the newest max of those after after_seq
   (after_seq >= 0), or of all (after_seq < 0). Oldest first. Returns the count (0 when
   there are none) or -1 when Redis failed; free with tolk_captions_free. */
int tolk_captions_read(tolk_redis_t *r, const char *sid, const char *lang, long after_seq, int max,
                       tolk_caption_rec_t **recs);

void tolk_captions_free(tolk_caption_rec_t **recs_p, int n);

/* Whose transcript this is: the session's speaker sub and source language,
   from the live session or, after its end, from what it left. Returns 0,
   TOLK_STORE_NOT_FOUND, or TOLK_STORE_DOWN. */
int tolk_captions_owner(tolk_redis_t *r, const char *sid, char *sub, size_t sub_cap, char *source,
                        size_t source_cap);

/* Languages with a history, comma separated, sorted. Returns the count or -1. */
int tolk_captions_languages(tolk_redis_t *r, const char *sid, char *out, size_t cap);

#endif
