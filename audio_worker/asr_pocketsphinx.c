/*  asr_pocketsphinx.c -- the pocketsphinx engine behind asr.c's table.

    The classic continuous loop of pocketsphinx_continuous, made
    incremental: audio is decoded in 20 ms blocks whatever size the chunks
    arrive in, and after each block the decoder's endpointer
    (ps_get_in_speech) is read. Speech starting opens an utterance; speech
    stopping ends it (ps_end_utt, final = ps_get_hyp) and a new one starts at
    once. While speech goes on a hypothesis is taken every 100 ms of audio
    for asr.c's stability filter. Working in fixed blocks rather than in the
    chunks the client chose makes results independent of chunk size.

    A decoder costs up to a second and about 95 MB to load, so closed
    streams park their decoder in a process-wide pool keyed by model
    directory and the next stream on that model takes it, made as fresh as
    after loading (see s_decoder_t). pocketsphinx's own logging is switched
    off: the worker logs failures itself, in its JSON lines. The worker is
    single-threaded, so the pool has no lock.
*/
#include "asr_stable.h"
#include "log.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Samples per millisecond at the only rate the protocol carries. */
#define S_RATE_KHZ 16
/* Samples decoded between two looks at the endpointer. */
#define S_BLOCK (20 * S_RATE_KHZ)
/* Audio between two hypotheses taken for partials. */
#define S_HYP_INTERVAL (100 * S_RATE_KHZ)
/* Idle decoders kept per process; more are freed. A decoder with the
   en-us model holds about 95 MB (acoustic model and dictionary ~29, the
   language model ~33, the search's lexicon tree ~32), so the pool covers
   session churn, not a burst. */
#define S_POOL_MAX 4

/* A loaded decoder and what it takes to make it fresh again. A decoder
   carries two things from one utterance to the next: the noise level its
   endpointer has learned (ps_start_stream resets it) and the cepstral mean
   its live CMN has learned, which no call resets. A reused decoder that
   kept the last speaker's mean decodes differently from a fresh one (on the
   test recordings, different words), so the mean is snapshot after loading
   and put back for every new stream, through the public cmn_t. */
typedef struct s_decoder_t {
    ps_decoder_t *ps;         /* loaded, no utterance open while pooled */
    char *model_dir;          /* the model it was loaded from: the pool key */
    mfcc_t *cmn_fresh;        /* cmn_mean then sum as loaded, 2 * veclen values */
    int32 cmn_nframe;         /* and the frame count as loaded */
    struct s_decoder_t *next; /* the rest of the pool */
} s_decoder_t;

/* The pool of idle decoders, most recently parked first. */
static s_decoder_t *s_pool;
/* Its length, held under S_POOL_MAX. */
static size_t s_pool_size;

/* One stream's state. */
typedef struct {
    s_decoder_t *decoder;   /* the decoder, with an utterance open */
    ps_decoder_t *ps;       /* decoder->ps, used on every block */
    tolk_asr_hyp_fn *hyp;   /* asr.c's report function */
    void *arg;              /* and its argument */
    int64_t samples;        /* samples decoded so far: the stream's clock */
    bool in_speech;         /* the endpointer heard speech this utterance */
    int64_t utt_start;      /* estimated speech onset, in samples */
    int64_t last_hyp;       /* when the last partial hypothesis was taken */
    int64_t prev_end;       /* end of the previous utterance, so starts never precede it */
    int64_t onset_lag;      /* samples the endpointer needs to hear speech start */
    int64_t offset_lag;     /* samples of silence it waits before calling an end */
    size_t pending;         /* samples held in block, not yet decoded */
    int16_t block[S_BLOCK]; /* a partial block carried to the next feed */
} s_stream_t;

/* Milliseconds of stream audio at a sample count. */
static int64_t s_ms(int64_t samples)
{
    return samples / S_RATE_KHZ;
}

/* The decoder's live CMN state, or NULL when it normalizes otherwise. */
static cmn_t *s_cmn(ps_decoder_t *ps)
{
    feat_t *feat = ps_get_feat(ps);
    return feat ? feat->cmn_struct : NULL;
}

/* Free a decoder (ps_free drops the configuration it holds too). */
static void s_decoder_destroy(s_decoder_t **self_p)
{
    s_decoder_t *self = *self_p;
    if (!self)
        return;
    if (self->ps)
        ps_free(self->ps);
    free(self->model_dir);
    free(self->cmn_fresh);
    free(self);
    *self_p = NULL;
}

/* True when dir/name is readable, checked before pocketsphinx sees it
   because some of its loaders exit the process on a missing file instead
   of returning an error. Leaves the path in path. */
static bool s_readable(const char *dir, const char *name, char *path, size_t size)
{
    int n = snprintf(path, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size || access(path, R_OK) != 0) {
        tolk_error("asr.open", NULL, "pocketsphinx model file missing: %s", path);
        return false;
    }
    return true;
}

/* Load a decoder for the US-English layout of model_dir (en-us acoustic
   model, en-us.lm.bin, cmudict-en-us.dict); NULL after logging why. */
static s_decoder_t *s_decoder_new(const char *model_dir)
{
    char hmm[PATH_MAX], lm[PATH_MAX], dict[PATH_MAX];
    if (!s_readable(model_dir, "en-us", hmm, sizeof hmm) ||
        !s_readable(model_dir, "en-us.lm.bin", lm, sizeof lm) ||
        !s_readable(model_dir, "cmudict-en-us.dict", dict, sizeof dict))
        return NULL;
    s_decoder_t *self = calloc(1, sizeof *self);
    if (!self || !(self->model_dir = strdup(model_dir))) {
        tolk_error("asr.open", NULL, "out of memory");
        goto err;
    }
    err_set_logfp(NULL); /* silence pocketsphinx before it says anything */
    cmd_ln_t *config =
        cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict, NULL);
    if (!config) {
        tolk_error("asr.open", NULL, "pocketsphinx refused its configuration");
        goto err;
    }
    self->ps = ps_init(config);
    cmd_ln_free_r(config); /* the decoder holds its own reference */
    if (!self->ps) {
        tolk_error("asr.open", NULL, "pocketsphinx could not load the model in %s", model_dir);
        goto err;
    }
    cmn_t *cmn = s_cmn(self->ps);
    if (cmn) {
        size_t n = (size_t)cmn->veclen;
        self->cmn_fresh = malloc(2 * n * sizeof *self->cmn_fresh);
        if (!self->cmn_fresh) {
            tolk_error("asr.open", NULL, "out of memory");
            goto err;
        }
        memcpy(self->cmn_fresh, cmn->cmn_mean, n * sizeof *self->cmn_fresh);
        memcpy(self->cmn_fresh + n, cmn->sum, n * sizeof *self->cmn_fresh);
        self->cmn_nframe = cmn->nframe;
    }
    return self;
err:
    if (self)
        s_decoder_destroy(&self);
    return NULL;
}

/* Make a decoder as it was when loaded, for a new speaker. */
static int s_decoder_refresh(s_decoder_t *self)
{
    if (ps_start_stream(self->ps) < 0)
        return -1;
    cmn_t *cmn = s_cmn(self->ps);
    if (cmn && self->cmn_fresh) {
        size_t n = (size_t)cmn->veclen;
        memcpy(cmn->cmn_mean, self->cmn_fresh, n * sizeof *self->cmn_fresh);
        memcpy(cmn->sum, self->cmn_fresh + n, n * sizeof *self->cmn_fresh);
        cmn->nframe = self->cmn_nframe;
    }
    return 0;
}

/* A decoder for model_dir: a pooled one when there is one, else a new one. */
static s_decoder_t *s_decoder_take(const char *model_dir)
{
    for (s_decoder_t **link = &s_pool; *link; link = &(*link)->next) {
        s_decoder_t *self = *link;
        if (strcmp(self->model_dir, model_dir) == 0) {
            *link = self->next;
            self->next = NULL;
            s_pool_size--;
            return self;
        }
    }
    return s_decoder_new(model_dir);
}

/* Park a decoder with no utterance open; freed when the pool is full. */
static void s_decoder_park(s_decoder_t *self)
{
    if (s_pool_size >= S_POOL_MAX) {
        s_decoder_destroy(&self);
        return;
    }
    self->next = s_pool;
    s_pool = self;
    s_pool_size++;
}

/* Read the endpointer's lags from the decoder's configuration, in samples,
   to place utterance times at the speech rather than at its detection. */
static void s_read_lags(s_stream_t *self)
{
    cmd_ln_t *config = ps_get_config(self->ps);
    int64_t frame = S_RATE_KHZ * 1000 / cmd_ln_int32_r(config, "-frate");
    self->onset_lag = frame * cmd_ln_int32_r(config, "-vad_startspeech");
    self->offset_lag = frame * cmd_ln_int32_r(config, "-vad_postspeech");
}

/* Close the utterance in progress and report its final, ending at end
   (samples); then open the next utterance. -1 when the decoder failed. */
static int s_end_utterance(s_stream_t *self, int64_t end)
{
    if (ps_end_utt(self->ps) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to end an utterance");
        return -1;
    }
    const char *text = ps_get_hyp(self->ps, NULL);
    if (end < self->utt_start)
        end = self->utt_start;
    self->hyp(self->arg, true, text ? text : "", s_ms(self->utt_start), s_ms(end));
    self->prev_end = end;
    self->in_speech = false;
    if (ps_start_utt(self->ps) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to start an utterance");
        return -1;
    }
    return 0;
}

/* Decode one block and act on what the endpointer says after it. */
static int s_decode(s_stream_t *self, const int16_t *pcm, size_t samples)
{
    if (ps_process_raw(self->ps, pcm, samples, FALSE, FALSE) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to decode audio");
        return -1;
    }
    int64_t before = self->samples;
    self->samples += (int64_t)samples;
    bool speech = ps_get_in_speech(self->ps) != 0;
    if (speech && !self->in_speech) {
        self->in_speech = true;
        self->utt_start = before - self->onset_lag;
        if (self->utt_start < self->prev_end)
            self->utt_start = self->prev_end;
        self->last_hyp = self->samples;
    } else if (!speech && self->in_speech) {
        return s_end_utterance(self, self->samples - self->offset_lag);
    } else if (speech && self->samples - self->last_hyp >= S_HYP_INTERVAL) {
        self->last_hyp = self->samples;
        const char *text = ps_get_hyp(self->ps, NULL);
        self->hyp(self->arg, false, text ? text : "", s_ms(self->utt_start), s_ms(self->samples));
    }
    return 0;
}

/* Engine table: open. */
static void *s_open(const char *model_dir, tolk_asr_hyp_fn *hyp, void *arg)
{
    s_stream_t *self = calloc(1, sizeof *self);
    if (!self) {
        tolk_error("asr.open", NULL, "out of memory");
        return NULL;
    }
    self->hyp = hyp;
    self->arg = arg;
    self->decoder = s_decoder_take(model_dir);
    if (!self->decoder) {
        free(self);
        return NULL;
    }
    self->ps = self->decoder->ps;
    if (s_decoder_refresh(self->decoder) != 0 || ps_start_utt(self->ps) < 0) {
        tolk_error("asr.open", NULL, "pocketsphinx failed to start a stream");
        s_decoder_destroy(&self->decoder);
        free(self);
        return NULL;
    }
    s_read_lags(self);
    return self;
}

/* Engine table: feed, in whole blocks; a remainder waits for more audio. */
static int s_feed(void *handle, const int16_t *pcm, size_t samples)
{
    s_stream_t *self = handle;
    if (self->pending) {
        size_t take = S_BLOCK - self->pending;
        if (take > samples)
            take = samples;
        memcpy(self->block + self->pending, pcm, take * sizeof *pcm);
        self->pending += take;
        pcm += take;
        samples -= take;
        if (self->pending < S_BLOCK)
            return 0;
        self->pending = 0;
        if (s_decode(self, self->block, S_BLOCK) != 0)
            return -1;
    }
    for (; samples >= S_BLOCK; pcm += S_BLOCK, samples -= S_BLOCK)
        if (s_decode(self, pcm, S_BLOCK) != 0)
            return -1;
    memcpy(self->block, pcm, samples * sizeof *pcm);
    self->pending = samples;
    return 0;
}

/* Engine table: finish. The held remainder is decoded; an utterance in
   which speech was heard ends here with its final (as
   pocketsphinx_continuous does at end of file); one that heard none is
   restarted quietly, its noise never reported. */
static int s_finish(void *handle)
{
    s_stream_t *self = handle;
    if (self->pending) {
        size_t n = self->pending;
        self->pending = 0;
        if (s_decode(self, self->block, n) != 0)
            return -1;
    }
    if (self->in_speech)
        return s_end_utterance(self, self->samples);
    if (ps_end_utt(self->ps) < 0 || ps_start_utt(self->ps) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to restart an utterance");
        return -1;
    }
    return 0;
}

/* Engine table: close, parking the decoder for the next stream. A decoder
   that will not end its utterance cleanly is freed instead. */
static void s_close(void *handle)
{
    s_stream_t *self = handle;
    if (ps_end_utt(self->ps) < 0)
        s_decoder_destroy(&self->decoder);
    else
        s_decoder_park(self->decoder);
    free(self);
}

/* Engine table: shutdown, freeing every parked decoder. */
static void s_shutdown(void)
{
    while (s_pool) {
        s_decoder_t *self = s_pool;
        s_pool = self->next;
        s_decoder_destroy(&self);
    }
    s_pool_size = 0;
}

const tolk_asr_engine_t tolk_asr_engine_pocketsphinx = {
    .name = "pocketsphinx",
    .bare = true,
    .open = s_open,
    .feed = s_feed,
    .finish = s_finish,
    .close = s_close,
    .shutdown = s_shutdown,
};
