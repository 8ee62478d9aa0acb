/*  asr_vosk.h -- what the rest of tolk sees of the vosk engine
    (asr_engine = vosk) besides its entry in asr.c's table: its counters
    for the status feed, and the parser of the server's answers (a fuzz
    target).

    vosk-server's WebSocket protocol (websocket/asr_server.py): the client
    sends a text {"config" : {"sample_rate" : 16000, ...}}, then binary
    PCM (16-bit mono at that rate); the server answers every binary
    message with one text message, {"partial" : "..."} while an utterance
    goes on or {"text" : "...", "result" : [{"word", "start", "end",
    "conf"}...]} at its endpoint; the client's text {"eof" : 1} (the
    server compares that exact string) asks for the last final, after
    which the server closes. With max_alternatives set, a final is
    {"alternatives" : [{"text", ...}...]}: the first is taken.
*/
#ifndef TOLK_ASR_VOSK_H
#define TOLK_ASR_VOSK_H

#include <stddef.h>
#include <stdint.h>

/* Longest answer taken; a longer one fails the connection (a final of a
   30 s utterance with word times is about 6 KB). */
#define TOLK_VOSK_ANSWER_MAX (64 * 1024)

/* Counters of every vosk stream of the process, for the status feed. */
typedef struct {
    int64_t connects;     /* connections opened (upgraded) */
    int64_t failures;     /* connections refused, timed out, dropped or failed */
    int64_t lost;         /* utterances cut by a failure (their stable words kept) */
    int64_t finals;       /* finals the servers answered */
    int64_t servers_down; /* servers not answering now (logged once per outage) */
} tolk_vosk_stats_t;

void tolk_vosk_stats(tolk_vosk_stats_t *out);

/* One answer of the server. */
typedef enum {
    TOLK_VOSK_NONE,    /* not an answer we know (ignored) */
    TOLK_VOSK_PARTIAL, /* the utterance so far */
    TOLK_VOSK_FINAL    /* the utterance ended here */
} tolk_vosk_kind_t;

typedef struct {
    tolk_vosk_kind_t kind;
    char *text;     /* malloc'd, single-spaced, trimmed, no control characters ("" possible) */
    double start_s; /* the first word's start, in seconds of the connection's audio; -1: none */
    double end_s;   /* the last word's end; -1: none */
} tolk_vosk_answer_t;

/* Parse a server message msg[0..len) (bounded by TOLK_VOSK_ANSWER_MAX)
   into out. Returns out->kind; out->text is NULL for NONE and must be
   freed otherwise. */
tolk_vosk_kind_t tolk_vosk_parse(const char *msg, size_t len, tolk_vosk_answer_t *out);

#endif
