/*  stream.h -- one session's live recognition and caption output.

    A stream feeds the session's PCM to its recogniser and turns every
    result into captions: one "lane" per language with listeners, each a
    FIFO that releases captions in the order the recogniser produced them
    even though translations finish in any order. A partial that a newer
    result of the same utterance overtakes is dropped before it is sent;
    finals are never dropped. seq is per session and language and counts
    finals (kept in the session's Redis hash, so a stream that moves to
    another worker goes on from the same number); a partial carries the
    seq its final will have.
*/
#ifndef TOLK_STREAM_H
#define TOLK_STREAM_H

#include "audio_worker.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct stream_s stream_t;

/* Open the stream of session sid: reads the session (NULL when it does
   not exist) and opens a recogniser. */
stream_t *stream_new(audio_worker_t *worker, const char *sid);

/* Give everything back; captions still being translated are completed
   and dropped by their callbacks. NULLs *self_p. */
void stream_destroy(stream_t **self_p);

/* Recognise len bytes of 16 kHz 16-bit little-endian mono PCM. Returns 0,
   -1 when the stream is unusable (recogniser failure, session gone):
   destroy it, or STREAM_SUPERSEDED when, after a gap, another worker has
   opened a newer stream for the session: destroy it and feed the chunk
   to a new one. */
#define STREAM_SUPERSEDED (-2)
int stream_feed(stream_t *self, const uint8_t *pcm, size_t len);

/* Housekeeping at now_ms: a gap in the audio (paused, muted, gone) ends
   the utterance in progress with a final; the session's languages and
   gateways are refreshed. Returns false when the stream should be
   destroyed (silent too long, or the session ended). */
bool stream_tick(stream_t *self, int64_t now_ms);

/* The orderly stop: no more audio comes to this worker, so the utterance
   in progress ends now and its final goes out like any other (no check
   for a newer stream: the audio ended here a moment ago, so this final
   comes before anything the next worker recognises). */
void stream_end(stream_t *self);

/* Nothing waits in any lane (every caption is sent or given up) and the
   recogniser owes no final. */
bool stream_drained(stream_t *self);

/* The recogniser's side of the worker's loop, for an engine that answers
   later (asr.h): its poll items, how long the loop may sleep, and what to
   do after the poll; its results become captions as feed's do. */
int stream_pollitems(stream_t *self, zmq_pollitem_t *items, int max);
long stream_timeout_ms(stream_t *self);
void stream_run(stream_t *self, const zmq_pollitem_t *items, int n);

#endif
