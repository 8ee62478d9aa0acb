/*  audio_check.h -- what the gateway decides about one audio chunk before
    an audio worker sees it: its size, its shape (16-bit PCM, so an even
    number of bytes), an optional WAV header (which must say 16 kHz,
    16-bit, mono, and is stripped), the base64 of the JSON sendAudio form,
    and the per-speaker chunk rate. Pure functions of their inputs (the
    clock is a parameter), so they are unit tested and fuzzed on their own.
*/
#ifndef TOLK_AUDIO_CHECK_H
#define TOLK_AUDIO_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIO_CHUNK_MIN 100         /* bytes: anything shorter is not 100 ms of speech */
#define AUDIO_CHUNK_MAX (32 * 1024) /* bytes: SPEC section 5 */
#define AUDIO_RATE_MAX  256         /* highest configurable chunks per second */

/* The verdict on one chunk. */
typedef struct {
    int status;          /* 0 when accepted, else 400 or 413 */
    const char *code;    /* SPEC error code of a refusal */
    const char *message; /* human-readable reason of a refusal */
    size_t pcm_offset;   /* where the PCM starts (after a WAV header) */
    size_t pcm_len;      /* bytes of PCM, even */
} audio_verdict_t;

/* Judge a chunk of len bytes (a binary frame, or decoded sendAudio).
   Returns 0 (pcm_offset/pcm_len set) or -1 (status/code/message set). */
int audio_check_chunk(const uint8_t *data, size_t len, audio_verdict_t *v);

/* Decode the "audioData" base64 of a sendAudio JSON text of len bytes
   into out (cap bytes, at least AUDIO_CHUNK_MAX + 1 so that an oversized
   chunk is detected, not truncated). Returns the decoded length, or -1
   with v's refusal set (400 INVALID_AUDIO_FORMAT, 413 PAYLOAD_TOO_LARGE). */
long audio_decode_send_audio(const char *text, size_t len, uint8_t *out, size_t cap,
                             audio_verdict_t *v);

/* What the rate limiter says about one chunk. */
typedef enum {
    AUDIO_RATE_ACCEPT = 0, /* within the rate */
    AUDIO_RATE_DROP = 1,   /* over the rate: drop and count it */
    AUDIO_RATE_WARN = 2,   /* dropped, and the violation has lasted warn_s: warn once */
    AUDIO_RATE_CLOSE = 3,  /* dropped, and it has lasted close_s: close with 4429 */
} audio_rate_result_t;

/* Per-speaker sliding one-second window of accepted chunk times, and the
   state of a continuing violation (drops with less than a second between
   them count as one violation). Zero it to start. */
typedef struct {
    uint64_t times[AUDIO_RATE_MAX]; /* ring of accepted chunk times, ns */
    int head, count;                /* ring position and fill */
    uint64_t violation_start_ns;    /* first drop of the current violation (0: none) */
    uint64_t last_drop_ns;          /* latest drop, to see a violation end */
    bool warned;                    /* the warning of this violation was sent */
    long dropped;                   /* chunks dropped over the connection's life */
} audio_rate_t;

/* Admit one chunk at now_ns under rate chunks per second (clamped to
   AUDIO_RATE_MAX); warn_s and close_s are the continuous violation that
   earns a warning and a close. */
audio_rate_result_t audio_rate_admit(audio_rate_t *r, uint64_t now_ns, int rate, int warn_s,
                                     int close_s);

#endif
