/*  asr.h -- streaming speech recognition behind one small interface.

    The audio worker feeds a stream's PCM in whatever chunks arrive and gets
    results back through a callback: from inside feed() for a local engine
    (pocketsphinx), or later, from tolk_asr_stream_run on the worker's loop,
    for an engine that asks a server (vosk); the callback must take a
    result at any time. Either way:
    partials carry only the stable words (those agreed by consecutive
    hypotheses), and are emitted only when that stable text grows; finals
    are always emitted, once per utterance, when the engine's endpointer
    hears the speaker stop (or at finish). An engine is a table of
    functions (tolk_asr_engine_t); pocketsphinx is the default one, and
    another engine is added without touching the worker.
*/
#ifndef TOLK_ASR_H
#define TOLK_ASR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* One result. Strings are valid only during the callback. */
typedef struct {
    uint32_t segment; /* utterance number in this stream, from 0; partials and
                         the final of one utterance share it */
    bool is_final;    /* the utterance is over: text is the whole of it */
    const char *text; /* final: the utterance; partial: its stable words */
    int64_t start_ms; /* utterance start, in stream audio time */
    int64_t end_ms;   /* end of the audio the result covers */
} tolk_asr_result_t;

typedef void(tolk_asr_emit_fn)(void *arg, const tolk_asr_result_t *result);

typedef struct tolk_asr_stream_t tolk_asr_stream_t;

/* Open a stream on the named engine ("pocketsphinx", "vosk") with its
   model: a model directory for pocketsphinx, the server's ws:// URL for
   vosk. Expensive resources (decoders, models) are pooled inside the
   engine, so opening the second and later streams is cheap. Returns NULL
   on failure (unknown engine, model not found) after logging why. */
tolk_asr_stream_t *tolk_asr_stream_new(const char *engine, const char *model_dir,
                                       tolk_asr_emit_fn *emit, void *arg);

/* Feed samples of 16 kHz, 16-bit, mono PCM (host order). Emits results
   through the callback before returning. Returns 0, or -1 when the engine
   failed (the stream is then unusable: destroy it). */
int tolk_asr_stream_feed(tolk_asr_stream_t *self, const int16_t *pcm, size_t samples);

/* End of audio: emit the final of the utterance in progress, if any. The
   stream may be fed again afterwards (a new utterance starts). */
int tolk_asr_stream_finish(tolk_asr_stream_t *self);

/* Give the stream's resources back to the engine's pool. NULLs *self_p. */
void tolk_asr_stream_destroy(tolk_asr_stream_t **self_p);

/* An asynchronous engine's side of the worker's loop (all harmless no-ops
   for a local one): the stream's poll items (at most max; returns how
   many), how long the loop may sleep (-1: no limit), what to do after the
   poll (items: the turn's items; the stream finds its own), and whether a
   final may still come for audio already fed. */
int tolk_asr_stream_pollitems(tolk_asr_stream_t *self, zmq_pollitem_t *items, int max);
long tolk_asr_stream_timeout_ms(tolk_asr_stream_t *self);
void tolk_asr_stream_run(tolk_asr_stream_t *self, const zmq_pollitem_t *items, int n);
bool tolk_asr_stream_busy(tolk_asr_stream_t *self);

/* The session's vocabulary (common/vocabulary.h): n entries (UTF-8,
   trimmed, single-spaced, as the speaker wrote them; n = 0 clears it),
   copied. Every engine gets it through this one call and does what it
   can: pocketsphinx adds each entry to the stream's decoder, with a
   pronunciation (from its dictionary, else from the IPA function below)
   and a language-model boost, at the next utterance boundary (the
   utterance being decoded keeps the words it started with;
   asr_pocketsphinx.c's s_teach says how); an engine whose table has no vocabulary function ignores
   it (the loadtest engine; a streaming server engine such as vosk fills that function in if its
   server takes word lists). Whatever the engine, a bare engine's text gets the entries' case
   (readable.h). Returns 0, or -1 when out of memory (the stream keeps its old vocabulary). Cheap
   unless the engine rebuilds a search: pocketsphinx rebuilds its search
   once per change (about 0.9 s of CPU; docs/architecture.md). */
int tolk_asr_stream_set_vocabulary(tolk_asr_stream_t *self, const char *const *entries, int n);

/* How an engine learns a pronunciation its dictionary lacks: the IPA of
   text into ipa (size bytes), 0 or -1. The audio worker gives speech.c's
   espeak-ng (tolk_speech_ipa); with none set (or speech off), vocabulary
   words the dictionary lacks are left out of the decoder (their case is
   still restored when the recogniser hears them). Process-wide, like the
   engines' pools. */
typedef int(tolk_asr_ipa_fn)(void *arg, const char *text, char *ipa, size_t size);
void tolk_asr_set_ipa(tolk_asr_ipa_fn *fn, void *arg);

/* How many vocabulary words a pocketsphinx decoder may be given in its
   life (process-wide; 400 by default, 0 gives it none, so that a
   vocabulary changes only the case of what is heard). For benchmarks that
   compare the two; the audio worker never calls it. */
void tolk_asr_set_decoder_words(int max);

/* The load-test engine ("loadtest", never the default) emits one scripted
   final per period_ms of audio fed; the worker sets it from
   loadtest_caption_ms at start. */
void tolk_asr_loadtest_set_period(int period_ms);

/* Release every pooled resource of every engine (at process exit, so
   leak checkers see a clean heap). */
void tolk_asr_shutdown(void);

#endif
