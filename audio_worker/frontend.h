/*  frontend.h -- a stream's audio cleaned before the recogniser hears it.

    Halls are noisy, and pocketsphinx loses words fast as noise rises
    (bench/asr measures by how much). The front end is speexdsp's
    preprocessor: spectral noise suppression and, optionally, automatic
    gain control; its VAD and dereverberation stay off (pocketsphinx has
    its own endpointer, and dereverberation smears speech on these
    recordings). One front end per stream, created and destroyed with it:
    its noise estimate is that speaker's room. It works on fixed 20 ms
    frames whatever size the chunks come in, so it holds back up to one
    frame's remainder; tolk_frontend_flush gives that back when an
    utterance ends.
*/
#ifndef TOLK_FRONTEND_H
#define TOLK_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Samples per frame the preprocessor works on: 20 ms at 16 kHz. An output
   buffer must hold the input's samples plus this many. */
#define TOLK_FRONTEND_FRAME 320

typedef struct tolk_frontend_t tolk_frontend_t;

/* The preprocessor's settings: what bench/asr tunes. */
typedef struct {
    int suppress_db; /* the most noise is attenuated, in dB (negative, e.g. -15) */
    bool agc;        /* automatic gain control towards a fixed speech level */
} tolk_frontend_opts_t;

/* The settings tolk uses (chosen with bench/asr, docs/performance.md). */
extern const tolk_frontend_opts_t tolk_frontend_defaults;

/* A front end with opts (NULL: tolk_frontend_defaults). NULL when out of
   memory. */
tolk_frontend_t *tolk_frontend_new(const tolk_frontend_opts_t *opts);

/* Clean samples of 16 kHz, 16-bit mono PCM: writes the cleaned audio of
   every whole frame now available to out (room for samples +
   TOLK_FRONTEND_FRAME) and returns how many samples that is; a remainder
   under one frame waits for the next call or a flush. Sample k of the
   output is sample k of the input, cleaned: only its delivery may wait. */
size_t tolk_frontend_process(tolk_frontend_t *self, const int16_t *in, size_t samples,
                             int16_t *out);

/* The held remainder, cleaned (padded to a frame inside, the padding
   dropped), to out (room for TOLK_FRONTEND_FRAME); returns its length,
   0 when nothing was held. For the end of an utterance. */
size_t tolk_frontend_flush(tolk_frontend_t *self, int16_t *out);

/* Free it; NULLs *self_p, idempotent. */
void tolk_frontend_destroy(tolk_frontend_t **self_p);

#endif
