/*  whisper.h -- the second recognition pass: an utterance sent to an
    OpenAI-compatible transcription endpoint, on the worker's loop.

    With asr_engine = whisper, pocketsphinx still streams the partials
    (fast and stable) and finds where utterances end; each utterance's audio
    is then POSTed to whisper_url (whisper.cpp's server, a faster-whisper
    server, LocalAI, vLLM: POST multipart with file = a 16 kHz mono WAV,
    model, language, prompt, response_format = json; the answer's "text").
    Nothing waits for it: the request is a transfer on a curl_loop whose
    sockets and deadline the worker polls, and it is bounded by
    whisper_timeout_ms, after which the caller's local final goes out.

    Callback contract: once submit has returned 0, done is called exactly
    once: from tolk_whisper_run with the engine's text, or NULL (late,
    failed, answered badly, or empty), or from destroy with NULL. When
    submit returns -1 it is never called.
*/
#ifndef TOLK_WHISPER_H
#define TOLK_WHISPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Longest answer body read; a longer one counts as a bad answer. */
#define TOLK_WHISPER_BODY_MAX (64 * 1024)
/* Longest utterance sent: 30 s, Whisper's own window. A longer one keeps
   its local final. */
#define TOLK_WHISPER_MAX_SAMPLES (30 * 16000)

typedef struct tolk_whisper_t tolk_whisper_t;

/* The engine's text for one utterance, or NULL when the local final must
   stand. Valid only during the call. */
typedef void(tolk_whisper_done_fn)(void *arg, const char *text);

/* Counters for the status feed. */
typedef struct {
    long requests; /* utterances sent */
    long answered; /* answered in time with text */
    long late;     /* not answered within whisper_timeout_ms */
    long failed;   /* refused, unreachable, an error status, or a bad answer */
    long ms_sum;   /* time to the answers in time, summed (a mean for the feed) */
} tolk_whisper_stats_t;

/* A client of the endpoint url with model, an optional API key (sent as
   "Authorization: Bearer"), bounded by timeout_ms per request. NULL when
   an argument is missing or libcurl cannot start. */
tolk_whisper_t *tolk_whisper_new(const char *url, const char *model, const char *api_key,
                                 int timeout_ms);

/* Call back every pending request with NULL, then free it all. */
void tolk_whisper_destroy(tolk_whisper_t **self_p);

/* Send samples (16 kHz mono) of one utterance in language (ISO 639-1),
   with prompt (the session's vocabulary; NULL or "" for none). Returns 0
   (done will be called) or -1 (too long, empty, or out of memory). */
int tolk_whisper_submit(tolk_whisper_t *self, const int16_t *pcm, size_t samples,
                        const char *language, const char *prompt, tolk_whisper_done_fn *done,
                        void *arg);

/* The loop's side, as the translator's: poll items, how long the poll
   may wait (-1: no limit), and what to do with what poll saw. */
int tolk_whisper_pollitems(tolk_whisper_t *self, zmq_pollitem_t *items, int max);
long tolk_whisper_timeout_ms(tolk_whisper_t *self);
void tolk_whisper_run(tolk_whisper_t *self, const zmq_pollitem_t *items, int n);

/* Requests waiting for their answer. */
int tolk_whisper_pending(tolk_whisper_t *self);

void tolk_whisper_stats(tolk_whisper_t *self, tolk_whisper_stats_t *out);

/* The text of an answer body ({"text": ...}): trimmed, runs of white space
   made one space, malloc'd; NULL when the body is not such an answer, is
   longer than TOLK_WHISPER_BODY_MAX, or holds no words. A fuzz target. */
char *tolk_whisper_parse(const char *body, size_t len);

#endif
