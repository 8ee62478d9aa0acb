/*  asr_stable.h -- the inside of asr.c: the engine table every recogniser
    backend fills in, and the stability filter that turns an engine's raw,
    flickering hypotheses into partials worth sending.

    asr.h is what the worker sees; this header is for asr.c, the asr_*.c
    engine files and the unit tests. An engine knows nothing of segments or
    stability: it reports every hypothesis it takes and one final per
    utterance, and asr.c decides what the listeners see. Keeping that
    policy out of the engines means a second engine gets it for free and it
    is tested without a model.
*/
#ifndef TOLK_ASR_STABLE_H
#define TOLK_ASR_STABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* ---------------------------------------------------------------------
   Engine table
*/

/* An engine's report, called from inside its feed or finish (or, for an
   asynchronous engine, its run): a raw
   hypothesis of the utterance in progress (is_final false) or the
   utterance's final text (is_final true, text may be empty). Times are in
   stream audio milliseconds; text is valid only during the call. */
typedef void(tolk_asr_hyp_fn)(void *arg, bool is_final, const char *text, int64_t start_ms,
                              int64_t end_ms);

/* One recogniser backend. Streams are opaque to asr.c. */
typedef struct {
    /* name the worker's configuration uses to pick the engine */
    const char *name;
    /* reports bare words (lower case, no punctuation): asr.c turns them
       into sentences (readable.h) before anyone sees them */
    bool bare;
    /* start a stream on the model in model_dir, reporting through hyp; NULL
       (after logging why) when the model cannot be loaded */
    void *(*open)(const char *model_dir, tolk_asr_hyp_fn *hyp, void *arg);
    /* decode 16 kHz mono samples, reporting as utterances progress and end;
       0, or -1 when the engine failed */
    int (*feed)(void *stream, const int16_t *pcm, size_t samples);
    /* end of audio: report the final of the utterance in progress, if any,
       and be ready for more audio; 0 or -1 as feed */
    int (*finish)(void *stream);
    /* the session's vocabulary (asr.h, tolk_asr_stream_set_vocabulary),
       n entries valid only during the call; NULL when the engine has no use
       for one. 0, or -1 when the engine failed (as feed) */
    int (*vocabulary)(void *stream, const char *const *entries, int n);
    /* end the stream; expensive parts go back to the engine's pool */
    void (*close)(void *stream);
    /* An engine whose results come later (a recognition server answering
       over the network) also reports from run, on the worker's loop;
       these four are NULL for an engine that reports only inside feed and
       finish. pollitems: the stream's fds (zmq poll items, at most max);
       timeout_ms: how long the loop may sleep before run must be called
       (-1: no limit); run: do what poll saw (items are every item of the
       turn: a stream finds its own by fd; polled false when the stream got
       no item this turn and must try without waiting); busy: a final may
       still come for audio already fed, so a stopping worker waits. */
    int (*pollitems)(void *stream, zmq_pollitem_t *items, int max);
    long (*timeout_ms)(void *stream);
    void (*run)(void *stream, const zmq_pollitem_t *items, int n);
    bool (*busy)(void *stream);
    /* free everything pooled (process exit) */
    void (*shutdown)(void);
} tolk_asr_engine_t;

/* The IPA of text through the function tolk_asr_set_ipa gave, for an
   engine's vocabulary: 0, or -1 when there is none or it failed. */
int tolk_asr_ipa(const char *text, char *ipa, size_t size);

/* The pocketsphinx backend (asr_pocketsphinx.c). */
extern const tolk_asr_engine_t tolk_asr_engine_pocketsphinx;

/* The vosk-server client (asr_vosk.c): a streaming recogniser across a
   WebSocket, asynchronous. */
extern const tolk_asr_engine_t tolk_asr_engine_vosk;

/* The load-test recogniser (asr_loadtest.c): scripted finals, benchmarks only. */
extern const tolk_asr_engine_t tolk_asr_engine_loadtest;

/* ---------------------------------------------------------------------
   Stability filter
*/

/* How many consecutive hypotheses must agree on a word before it is shown;
   asr.c tells why three. */
#define TOLK_ASR_STABLE_DEPTH 3

typedef struct tolk_asr_stable_t tolk_asr_stable_t;

/* A filter for one stream; NULL when out of memory. */
tolk_asr_stable_t *tolk_asr_stable_new(void);

/* Free the filter. Idempotent; NULLs *self_p. */
void tolk_asr_stable_destroy(tolk_asr_stable_t **self_p);

/* Take the utterance's next hypothesis. Returns the stable text to emit as a
   partial (the words the last TOLK_ASR_STABLE_DEPTH hypotheses agree on,
   single-spaced) when it grew or changed without shrinking since the last
   one emitted; NULL when there is nothing new to show (or out of memory,
   which only costs a partial). The string is valid until the next call. */
const char *tolk_asr_stable_push(tolk_asr_stable_t *self, const char *hyp);

/* Text of the last partial emitted in this utterance ("" if none). */
const char *tolk_asr_stable_emitted(tolk_asr_stable_t *self);

/* The utterance ended: forget its hypotheses and its emitted partial. */
void tolk_asr_stable_reset(tolk_asr_stable_t *self);

/* Number of words in a whitespace-separated text. */
size_t tolk_asr_words(const char *text);

#endif
