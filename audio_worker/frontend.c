/*  frontend.c -- speexdsp's preprocessor on a stream's PCM; see frontend.h. */
#include "frontend.h"

#include <speex/speex_preprocess.h>

#include <stdlib.h>
#include <string.h>

/* The only rate the protocol carries. */
#define S_RATE 16000

/* Gentle suppression, no AGC: of the settings bench/asr --tune tried
   (-5 to -40 dB, AGC on and off), -5 dB alone lowered the WER on noisy
   audio without raising it on clean audio; speexdsp's own default of
   -15 dB costs clean speech words (docs/performance.md). */
const tolk_frontend_opts_t tolk_frontend_defaults = {.suppress_db = -5, .agc = false};

struct tolk_frontend_t {
    SpeexPreprocessState *st;           /* the preprocessor, one channel */
    int16_t frame[TOLK_FRONTEND_FRAME]; /* samples gathered towards the next frame */
    size_t pending;                     /* how many of frame are filled */
};

tolk_frontend_t *tolk_frontend_new(const tolk_frontend_opts_t *opts)
{
    if (!opts)
        opts = &tolk_frontend_defaults;
    tolk_frontend_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->st = speex_preprocess_state_init(TOLK_FRONTEND_FRAME, S_RATE);
    if (!self->st) {
        free(self);
        return NULL;
    }
    int on = 1, off = 0, agc = opts->agc ? 1 : 0, suppress = opts->suppress_db;
    speex_preprocess_ctl(self->st, SPEEX_PREPROCESS_SET_DENOISE, &on);
    speex_preprocess_ctl(self->st, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &suppress);
    speex_preprocess_ctl(self->st, SPEEX_PREPROCESS_SET_AGC, &agc);
    /* its VAD is off as created (setting it at all prints a warning) */
    speex_preprocess_ctl(self->st, SPEEX_PREPROCESS_SET_DEREVERB, &off);
    return self;
}

size_t tolk_frontend_process(tolk_frontend_t *self, const int16_t *in, size_t samples, int16_t *out)
{
    size_t made = 0;
    while (samples) {
        size_t take = TOLK_FRONTEND_FRAME - self->pending;
        if (take > samples)
            take = samples;
        memcpy(self->frame + self->pending, in, take * sizeof *in);
        self->pending += take;
        in += take;
        samples -= take;
        if (self->pending < TOLK_FRONTEND_FRAME)
            break;
        speex_preprocess_run(self->st, self->frame);
        memcpy(out + made, self->frame, sizeof self->frame);
        made += TOLK_FRONTEND_FRAME;
        self->pending = 0;
    }
    return made;
}

size_t tolk_frontend_flush(tolk_frontend_t *self, int16_t *out)
{
    size_t n = self->pending;
    if (!n)
        return 0;
    memset(self->frame + n, 0, (TOLK_FRONTEND_FRAME - n) * sizeof *self->frame);
    speex_preprocess_run(self->st, self->frame);
    memcpy(out, self->frame, n * sizeof *out);
    self->pending = 0;
    return n;
}

void tolk_frontend_destroy(tolk_frontend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    speex_preprocess_state_destroy((*self_p)->st);
    free(*self_p);
    *self_p = NULL;
}
