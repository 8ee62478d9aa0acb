/*  asr.c -- the engine-independent half of streaming recognition: engine
    lookup, the stream object the worker holds, segment numbering and the
    stability filter.

    An engine (asr_*.c) reports every raw hypothesis it takes and one final
    per utterance. Raw hypotheses flicker: the last word or two of a
    pocketsphinx partial changes as more audio arrives. Sending them as they
    come would make captions jump, so a partial carries only the words that
    TOLK_ASR_STABLE_DEPTH consecutive hypotheses agree on (their longest
    common word prefix), and only when that text grows or changes without
    shrinking. The engine takes its hypotheses 100 ms of audio apart (not
    per chunk), and TOLK_ASR_STABLE_DEPTH is 3: a word is shown once it has
    survived 200 ms more evidence. Measured on the five LibriVox test
    recordings (partials whose successor is not an extension of them, of
    all partials): depth 1 flickers 70%, depth 2 31%, depth 3 8% (about the
    seeds' "stability >= 0.85"), depth 4 2% at another 100 ms of delay.
    Partials are still not always prefixes of the final: pocketsphinx's
    final comes from a second search pass over the utterance. Finals are never
    filtered: each utterance's final is emitted once, and numbers the
    segment.
*/
#include "asr.h"
#include "asr_stable.h"
#include "readable.h"
#include "log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------
   Words
*/

/* Length of the longest common word prefix of two normalized texts (a
   word matches only whole: "he was" is not a prefix of "he wasn't"). */
static size_t s_common_words(const char *a, const char *b)
{
    size_t i = 0, boundary = 0;
    for (;; i++) {
        bool a_end = a[i] == 0 || a[i] == ' ';
        bool b_end = b[i] == 0 || b[i] == ' ';
        if (a_end && b_end)
            boundary = i;
        if (a[i] != b[i] || a[i] == 0)
            break;
    }
    return boundary;
}

size_t tolk_asr_words(const char *text)
{
    size_t words = 0;
    bool in_word = false;
    for (const char *p = text ? text : ""; *p; p++) {
        bool space = isspace((unsigned char)*p);
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}

/* ---------------------------------------------------------------------
   Stability filter
*/

struct tolk_asr_stable_t {
    char *hyps[TOLK_ASR_STABLE_DEPTH]; /* the last hypotheses, normalized, oldest
                                          first, so agreement is over consecutive ones */
    size_t count;                      /* how many of hyps are filled this utterance */
    char *emitted;                     /* last partial emitted, so only growth is sent */
    size_t emitted_words;              /* its word count, the "never shrink" bound */
};

tolk_asr_stable_t *tolk_asr_stable_new(void)
{
    tolk_asr_stable_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->emitted = calloc(1, 1);
    if (!self->emitted) {
        free(self);
        return NULL;
    }
    return self;
}

void tolk_asr_stable_reset(tolk_asr_stable_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        free(self->hyps[i]);
        self->hyps[i] = NULL;
    }
    self->count = 0;
    self->emitted[0] = 0;
    self->emitted_words = 0;
}

void tolk_asr_stable_destroy(tolk_asr_stable_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_asr_stable_t *self = *self_p;
    tolk_asr_stable_reset(self);
    free(self->emitted);
    free(self);
    *self_p = NULL;
}

const char *tolk_asr_stable_emitted(tolk_asr_stable_t *self)
{
    return self->emitted;
}

const char *tolk_asr_stable_push(tolk_asr_stable_t *self, const char *hyp)
{
    char *text = tolk_readable_words(hyp);
    if (!text)
        return NULL;
    if (self->count == TOLK_ASR_STABLE_DEPTH) {
        free(self->hyps[0]);
        memmove(self->hyps, self->hyps + 1, (TOLK_ASR_STABLE_DEPTH - 1) * sizeof self->hyps[0]);
        self->count--;
    }
    self->hyps[self->count++] = text;
    if (self->count < TOLK_ASR_STABLE_DEPTH)
        return NULL;

    /* every common word prefix with the newest is a prefix of the newest,
       so the prefix common to all is the shortest of the pairwise ones */
    size_t len = strlen(text);
    for (size_t i = 0; i + 1 < self->count; i++) {
        size_t common = s_common_words(text, self->hyps[i]);
        if (common < len)
            len = common;
    }
    if (len == 0)
        return NULL;
    char saved = text[len];
    text[len] = 0;
    size_t words = tolk_asr_words(text);
    const char *out = NULL;
    if (words >= self->emitted_words && strcmp(text, self->emitted) != 0) {
        char *copy = strdup(text);
        if (copy) {
            free(self->emitted);
            self->emitted = copy;
            self->emitted_words = words;
            out = self->emitted;
        }
    }
    text[len] = saved;
    return out;
}

/* ---------------------------------------------------------------------
   Streams
*/

/* Every engine the worker can name; a new backend is one more line. */
static const tolk_asr_engine_t *const s_engines[] = {
    &tolk_asr_engine_pocketsphinx,
    &tolk_asr_engine_vosk,
    &tolk_asr_engine_loadtest,
};

/* Where engines get pronunciations their dictionary lacks (asr.h). */
static tolk_asr_ipa_fn *s_ipa_fn;
static void *s_ipa_arg;

void tolk_asr_set_ipa(tolk_asr_ipa_fn *fn, void *arg)
{
    s_ipa_fn = fn;
    s_ipa_arg = arg;
}

int tolk_asr_ipa(const char *text, char *ipa, size_t size)
{
    return s_ipa_fn ? s_ipa_fn(s_ipa_arg, text, ipa, size) : -1;
}

struct tolk_asr_stream_t {
    const tolk_asr_engine_t *engine; /* the backend that owns handle */
    char **vocab;                    /* the session's vocabulary, for readable's case */
    int nvocab;                      /* its entries */
    void *handle;                    /* the engine's stream */
    tolk_asr_stable_t *stable;       /* decides which partials are shown */
    tolk_asr_emit_fn *emit;          /* the worker's callback */
    void *arg;                       /* and its argument */
    uint32_t segment;                /* number of the utterance in progress */
    bool failed;                     /* the engine failed: refuse more audio */
};

/* What listeners see of an engine's text: a sentence when the engine
   reports bare words, else the text as it is (malloc'd; NULL when out of
   memory). */
static char *s_readable(tolk_asr_stream_t *self, const char *text, bool final)
{
    return self->engine->bare
               ? tolk_readable_vocab(text, final, (const char *const *)self->vocab, self->nvocab)
               : strdup(text);
}

/* An engine's report: filter partials, number and pass on finals. */
static void s_on_hyp(void *arg, bool is_final, const char *text, int64_t start_ms, int64_t end_ms)
{
    tolk_asr_stream_t *self = arg;
    tolk_asr_result_t result = {
        .segment = self->segment, .is_final = is_final, .start_ms = start_ms, .end_ms = end_ms};
    if (end_ms < start_ms)
        result.end_ms = start_ms;
    if (!is_final) {
        const char *stable = tolk_asr_stable_push(self->stable, text);
        char *shown = stable ? s_readable(self, stable, false) : NULL;
        result.text = shown;
        if (result.text)
            self->emit(self->arg, &result);
        free(shown);
        return;
    }
    char *final = tolk_readable_words(text);
    /* an utterance whose final came out empty but whose partials were shown
       is closed with the words shown, so no caption is left hanging */
    char *shown =
        s_readable(self, final && *final ? final : tolk_asr_stable_emitted(self->stable), true);
    result.text = shown;
    if (result.text && *result.text) {
        self->emit(self->arg, &result);
        self->segment++;
    }
    free(shown);
    free(final);
    tolk_asr_stable_reset(self->stable);
}

tolk_asr_stream_t *tolk_asr_stream_new(const char *engine, const char *model_dir,
                                       tolk_asr_emit_fn *emit, void *arg)
{
    const tolk_asr_engine_t *found = NULL;
    for (size_t i = 0; engine && i < sizeof s_engines / sizeof s_engines[0]; i++)
        if (strcmp(s_engines[i]->name, engine) == 0)
            found = s_engines[i];
    if (!found) {
        tolk_error("asr.open", NULL, "unknown recognition engine '%s'", engine ? engine : "");
        return NULL;
    }
    if (!emit || !model_dir) {
        tolk_error("asr.open", NULL, "no callback or model directory for engine '%s'", engine);
        return NULL;
    }
    tolk_asr_stream_t *self = calloc(1, sizeof *self);
    if (!self)
        goto err;
    self->engine = found;
    self->emit = emit;
    self->arg = arg;
    self->stable = tolk_asr_stable_new();
    if (!self->stable)
        goto err;
    self->handle = found->open(model_dir, s_on_hyp, self);
    if (!self->handle)
        goto err; /* the engine said why */
    return self;
err:
    if (!self || !self->stable)
        tolk_error("asr.open", NULL, "out of memory");
    tolk_asr_stream_destroy(&self);
    return NULL;
}

/* The callback runs inside the engine's feed: it must not destroy the
   stream (the worker defers that to after feed returns). */
int tolk_asr_stream_feed(tolk_asr_stream_t *self, const int16_t *pcm, size_t samples)
{
    if (!self || self->failed || (!pcm && samples))
        return -1;
    if (samples == 0)
        return 0;
    if (self->engine->feed(self->handle, pcm, samples) != 0) {
        self->failed = true;
        return -1;
    }
    return 0;
}

int tolk_asr_stream_finish(tolk_asr_stream_t *self)
{
    if (!self || self->failed)
        return -1;
    if (self->engine->finish(self->handle) != 0) {
        self->failed = true;
        return -1;
    }
    return 0;
}

int tolk_asr_stream_pollitems(tolk_asr_stream_t *self, zmq_pollitem_t *items, int max)
{
    if (!self || self->failed || !self->engine->pollitems || max <= 0)
        return 0;
    return self->engine->pollitems(self->handle, items, max);
}

long tolk_asr_stream_timeout_ms(tolk_asr_stream_t *self)
{
    if (!self || self->failed || !self->engine->timeout_ms)
        return -1;
    return self->engine->timeout_ms(self->handle);
}

/* Results reported from here reach the callback as from feed. */
void tolk_asr_stream_run(tolk_asr_stream_t *self, const zmq_pollitem_t *items, int n)
{
    if (self && !self->failed && self->engine->run)
        self->engine->run(self->handle, items, n);
}

bool tolk_asr_stream_busy(tolk_asr_stream_t *self)
{
    return self && !self->failed && self->engine->busy && self->engine->busy(self->handle);
}

/* Free a copied vocabulary. */
static void s_vocab_free(char **vocab, int n)
{
    for (int i = 0; vocab && i < n; i++)
        free(vocab[i]);
    free(vocab);
}

int tolk_asr_stream_set_vocabulary(tolk_asr_stream_t *self, const char *const *entries, int n)
{
    if (!self || n < 0 || (n && !entries))
        return -1;
    char **copy = n ? calloc((size_t)n, sizeof *copy) : NULL;
    if (n && !copy)
        return -1;
    for (int i = 0; i < n; i++)
        if (!(copy[i] = strdup(entries[i]))) {
            s_vocab_free(copy, n);
            return -1;
        }
    s_vocab_free(self->vocab, self->nvocab);
    self->vocab = copy;
    self->nvocab = n;
    if (self->engine->vocabulary && !self->failed &&
        self->engine->vocabulary(self->handle, entries, n) != 0) {
        self->failed = true;
        return -1;
    }
    return 0;
}

void tolk_asr_stream_destroy(tolk_asr_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_asr_stream_t *self = *self_p;
    s_vocab_free(self->vocab, self->nvocab);
    if (self->handle)
        self->engine->close(self->handle);
    tolk_asr_stable_destroy(&self->stable);
    free(self);
    *self_p = NULL;
}

void tolk_asr_shutdown(void)
{
    for (size_t i = 0; i < sizeof s_engines / sizeof s_engines[0]; i++)
        s_engines[i]->shutdown();
}
