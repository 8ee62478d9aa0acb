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

    The session's vocabulary. Each entry becomes one word of the stream's
    decoder, its "token": the entry with its spaces made '_' ("Dashwood",
    "John_Dashwood", "ZeroMQ"), with '_' appended while the dictionary
    already has that spelling (a lower-case entry such as "prudently").
    Its pronunciation is the dictionary's for each of its words (cmudict
    is lower case: "dashwood" D AE SH W UH D), else espeak-ng's IPA mapped
    to the model's phones (asr.h's IPA function, arpabet.h); an entry with
    a word neither knows is left out. s_teach puts the token in the
    dictionary, and in a small language model of the tokens interpolated
    with the model's own (s_teach says how much that boosts them). A rare
    name the model knows only as a unigram ("dashwood", 10^-7.0) becomes
    far likelier as the token, and a word the model lacks ("norland" is
    in cmudict but not in the model) can be heard at all. A
    multi-word entry is boosted as a phrase (its token, one unigram for the
    whole of it, rather than the product of its words' probabilities);
    besides, each of its words that the dictionary lacks is added on its
    own (same unigram), so it can be heard outside the phrase. Tokens are
    shown as their entries ("John_Dashwood" -> "John Dashwood").
    A decoder takes at most s_words_max words in its life. Words are added
    between utterances only (the search is rebuilt, which must not happen
    while one is decoded): at once when the
    utterance in progress has heard no speech yet, else when it ends. They
    cannot be taken out again: an entry the speaker removes keeps its word
    in this decoder (shown in plain lower case from then on), and a decoder
    that was given words is freed when its stream closes instead of going
    back to the pool, so the next session starts from the plain model.
*/
#include "arpabet.h"
#include "asr_stable.h"
#include "log.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#include <ctype.h>
#include <math.h>
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
    bool tainted;             /* words were added: never pooled again */
    ngram_model_t *base_lm;   /* the model's own language model, held once a vocabulary
                                 search replaced the default one; NULL before */
    int vocab_searches;       /* vocabulary searches made, for their names */
    struct s_decoder_t *next; /* the rest of the pool */
} s_decoder_t;

/* The pool of idle decoders, most recently parked first. */
static s_decoder_t *s_pool;
/* Its length, held under S_POOL_MAX. */
static size_t s_pool_size;

/* Tokens one token may grow by to differ from a dictionary word. */
#define S_TOKEN_SUFFIX_MAX 3
/* Words one decoder may be given in its life (200 entries and the words
   of their phrases). They are taught by s_teach, not by ps_add_word:
   Debian's sphinxbase (0.8+5prealpha+1-16) scores words ps_add_word adds
   to its trie language model from memory outside the model (valgrind:
   invalid reads in lm_trie_score, bitarr_read_int25; in the audio worker
   a SIGSEGV in ngram_fwdtree_search with two streams decoding), so no
   word is ever added to that model. tolk_asr_set_decoder_words lowers it
   (0: the vocabulary changes only what captions show, readable.h). */
#define S_WORDS_MAX 400
/* The vocabulary model's share of each word's probability (s_teach). */
#define S_VOCAB_WEIGHT 0.03f
/* pocketsphinx's name for the search ps_init makes. */
#define S_DEFAULT_SEARCH "_default"
/* The limit in force: S_WORDS_MAX unless tolk_asr_set_decoder_words. */
static int s_words_max = S_WORDS_MAX;

void tolk_asr_set_decoder_words(int max)
{
    s_words_max = max > 0 ? max : 0;
}
/* Bytes of one word's or one entry's pronunciation. */
#define S_PRON_MAX 1024

/* A word this stream added to its decoder. */
typedef struct {
    char *token; /* as the decoder reports it */
    char *text;  /* the entry it stands for, as the speaker wrote it; NULL
                    once the vocabulary no longer has it */
    char *pron;  /* its phones, for the dictionary written at each change */
} s_word_t;

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
    s_word_t *words;        /* tokens added to the decoder, for the hypotheses */
    int nwords;             /* used entries of words */
    char **next_vocab;      /* a vocabulary to apply at the next utterance boundary */
    int next_n;             /* its entries */
    bool has_next;          /* next_vocab is waiting (it may be empty: a clear) */
    char *shown;            /* the last hypothesis with tokens shown as entries */
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
    if (self->base_lm)
        ngram_model_free(self->base_lm);
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

/* ------------------------------------------------------ vocabulary */

/* A malloc'd copy of word in ASCII lower case (cmudict's spelling). */
static char *s_lower(const char *word, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)word[i]);
    out[len] = 0;
    return out;
}

/* Does the decoder's dictionary have this spelling? */
static bool s_in_dict(ps_decoder_t *ps, const char *word)
{
    char *pron = ps_lookup_word(ps, word);
    free(pron);
    return pron != NULL;
}

/* Append the pronunciation of one word (len bytes) to pron: the
   dictionary's (lower case, then as written), else espeak-ng's mapped to
   the model's phones. Returns true when the word was found. *known tells
   whether the dictionary had it. */
static bool s_pron_word(ps_decoder_t *ps, const char *word, size_t len, char *pron, bool *known)
{
    char *lower = s_lower(word, len);
    char *asis = lower ? strndup(word, len) : NULL;
    char *found = asis ? ps_lookup_word(ps, lower) : NULL;
    if (asis && !found)
        found = ps_lookup_word(ps, asis);
    *known = found != NULL;
    char phones[S_PRON_MAX];
    const char *add = found;
    if (!add && asis) {
        char ipa[S_PRON_MAX];
        if (tolk_asr_ipa(asis, ipa, sizeof ipa) == 0 &&
            tolk_arpabet_from_ipa(ipa, phones, sizeof phones) > 0)
            add = phones;
    }
    size_t used = strlen(pron);
    bool ok = add && used + 1 + strlen(add) + 1 <= S_PRON_MAX;
    if (ok)
        snprintf(pron + used, S_PRON_MAX - used, "%s%s", used ? " " : "", add);
    free(found);
    free(asis);
    free(lower);
    return ok;
}

/* The stream's word for token, or NULL. */
static s_word_t *s_word(s_stream_t *self, const char *token, size_t len)
{
    for (int i = 0; i < self->nwords; i++)
        if (strlen(self->words[i].token) == len && strncmp(self->words[i].token, token, len) == 0)
            return &self->words[i];
    return NULL;
}

/* A word to add: its token, its pronunciation, what it shows. */
typedef struct {
    char *token;
    char *pron;
    const char *text;
} s_add_t;

/* Queue token (unless the decoder or the queue has it) for adding; takes
   token. */
static void s_queue(s_stream_t *self, s_add_t *adds, int *nadds, int max, char *token,
                    const char *pron, const char *text)
{
    for (int i = 0; i < *nadds; i++)
        if (strcmp(adds[i].token, token) == 0) {
            free(token);
            return;
        }
    if (*nadds == max || s_word(self, token, strlen(token)) ||
        !(adds[*nadds].pron = strdup(pron))) {
        free(token);
        return;
    }
    adds[*nadds].token = token;
    adds[*nadds].text = text;
    (*nadds)++;
}

/* A temporary file made from a template, for pocketsphinx to read by
   path; its name in path (unlinked by the caller). NULL on failure. */
static FILE *s_tmpfile(char path[64], const char *what)
{
    snprintf(path, 64, "/tmp/tolk-%s-XXXXXX", what);
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !f) {
        close(fd);
        unlink(path);
    }
    return f;
}

/* Teach the decoder every word this stream has added, without
   ps_add_word, whose ngram_model_add_word corrupts Debian's trie language
   model (S_WORDS_MAX's comment): a dictionary file of the model's own
   with the tokens appended, and a search whose language model is a set of
   the model's own and a small ARPA model of the tokens (each a unigram,
   log10 P = -log10(count + 1)), interpolated with weights 1 - S_VOCAB_WEIGHT
   and S_VOCAB_WEIGHT. Each token is then as likely as S_VOCAB_WEIGHT /
   (count + 1) at any point: for a name the model knows only as a rare
   unigram ("dashwood", 10^-7.0) about 10^-2.5 with one entry. Sphinxbase
   builds both models' tables itself, so nothing is written past them
   (valgrind is clean). The new search replaces the default one (or the
   last vocabulary's), which is unset, so a decoder holds one lexicon tree;
   it costs about 0.9 s of CPU (the dictionary is read again) and 60 MB
   more than a plain decoder. No utterance may be open. Returns 0 or -1. */
static int s_teach(s_stream_t *self)
{
    ps_decoder_t *ps = self->ps;
    cmd_ln_t *config = ps_get_config(ps);
    const char *dict = cmd_ln_str_r(config, "-dict");
    char dict_path[64] = "", arpa_path[64] = "";
    FILE *d = s_tmpfile(dict_path, "dict"), *a = d ? s_tmpfile(arpa_path, "lm") : NULL;
    FILE *in = a && dict ? fopen(dict, "r") : NULL;
    int rc = -1;
    if (in) {
        char line[4096];
        while (fgets(line, sizeof line, in))
            fputs(line, d);
        fclose(in);
        double logp = -log10((double)self->nwords + 1);
        fprintf(a, "\\data\\\nngram 1=%d\n\n\\1-grams:\n%.4f </s>\n-99 <s>\n", self->nwords + 2,
                logp);
        for (int i = 0; i < self->nwords; i++) {
            fprintf(d, "%s %s\n", self->words[i].token, self->words[i].pron);
            fprintf(a, "%.4f %s\n", logp, self->words[i].token);
        }
        fputs("\n\\end\\\n", a);
        rc = ferror(d) || ferror(a) ? -1 : 0;
    }
    if (d)
        fclose(d);
    if (a)
        fclose(a);
    s_decoder_t *dec = self->decoder;
    char name[32], old[32];
    if (dec->vocab_searches)
        snprintf(old, sizeof old, "vocab-%d", dec->vocab_searches);
    else
        snprintf(old, sizeof old, "%s", S_DEFAULT_SEARCH);
    snprintf(name, sizeof name, "vocab-%d", dec->vocab_searches + 1);
    if (rc == 0 && !dec->base_lm) {
        ngram_model_t *base = ps_get_lm(ps, S_DEFAULT_SEARCH);
        dec->base_lm = base ? ngram_model_retain(base) : NULL;
    }
    ngram_model_t *voc = rc == 0 && dec->base_lm
                             ? ngram_model_read(config, arpa_path, NGRAM_ARPA, ps_get_logmath(ps))
                             : NULL;
    ngram_model_t *set = NULL;
    if (voc) {
        ngram_model_t *models[2] = {dec->base_lm, voc};
        char *names[2] = {"model", "vocabulary"};
        float32 weights[2] = {1.0f - S_VOCAB_WEIGHT, S_VOCAB_WEIGHT};
        set = ngram_model_set_init(config, models, names, weights, 2); /* holds both */
        ngram_model_free(voc);
    }
    rc = set && ps_set_lm(ps, name, set) == 0 && ps_set_search(ps, name) == 0 ? 0 : -1;
    if (set)
        ngram_model_free(set); /* the search holds it */
    if (rc == 0) {
        dec->tainted = true;
        dec->vocab_searches++;
        ps_unset_search(ps, old);
        rc = ps_load_dict(ps, dict_path, NULL, NULL) < 0 ? -1 : 0;
    }
    if (d)
        unlink(dict_path);
    if (a)
        unlink(arpa_path);
    return rc;
}

/* Apply a vocabulary to the decoder, which has no utterance open. */
static int s_apply(s_stream_t *self, char **entries, int n)
{
    for (int i = 0; i < self->nwords; i++) {
        free(self->words[i].text);
        self->words[i].text = NULL;
    }
    int max = s_words_max - self->nwords;
    if (max <= 0)
        return 0; /* the decoder has all the words it can take */
    s_add_t *adds = calloc((size_t)max, sizeof *adds);
    if (!adds)
        return 0; /* out of memory: no new words, the old ones retired */
    int nadds = 0;
    for (int e = 0; e < n; e++) {
        const char *entry = entries[e];
        char *token = malloc(strlen(entry) + S_TOKEN_SUFFIX_MAX + 1);
        if (!token)
            continue;
        strcpy(token, entry);
        for (char *c = token; *c; c++)
            if (*c == ' ')
                *c = '_';
        s_word_t *have = s_word(self, token, strlen(token));
        if (have) { /* added by an earlier vocabulary: shown again */
            have->text = strdup(entry);
            free(token);
            continue;
        }
        char pron[S_PRON_MAX] = "";
        bool all = true;
        int words = 0;
        for (const char *w = entry; *w && all; words++) {
            size_t len = strcspn(w, " ");
            bool known;
            all = s_pron_word(self->ps, w, len, pron, &known);
            w += len + (w[len] == ' ');
        }
        if (!all) {
            tolk_info("asr.vocabulary", NULL, "no pronunciation for vocabulary entry '%s'", entry);
            free(token);
            continue;
        }
        for (int k = 0; k < S_TOKEN_SUFFIX_MAX && s_in_dict(self->ps, token); k++)
            strcat(token, "_");
        if (s_in_dict(self->ps, token)) {
            free(token);
            continue;
        }
        s_queue(self, adds, &nadds, max, token, pron, entry);
        /* each word of a phrase that the dictionary lacks, on its own */
        for (const char *w = entry; words > 1 && *w;) {
            size_t len = strcspn(w, " ");
            char one[S_PRON_MAX] = "";
            bool known = true;
            char *word = strndup(w, len);
            if (word && s_pron_word(self->ps, w, len, one, &known) && !known &&
                !s_in_dict(self->ps, word))
                s_queue(self, adds, &nadds, max, word, one, NULL);
            else
                free(word);
            w += len + (w[len] == ' ');
        }
    }
    s_word_t *grown =
        nadds ? realloc(self->words, (size_t)(self->nwords + nadds) * sizeof *grown) : NULL;
    int rc = 0;
    if (nadds && !grown) {
        tolk_error("asr.vocabulary", NULL, "out of memory");
        for (int i = 0; i < nadds; i++) {
            free(adds[i].token);
            free(adds[i].pron);
        }
        nadds = 0;
    } else if (nadds)
        self->words = grown;
    for (int i = 0; i < nadds; i++) {
        s_word_t *w = &self->words[self->nwords++];
        w->token = adds[i].token;
        w->text = adds[i].text ? strdup(adds[i].text) : strdup(adds[i].token);
        w->pron = adds[i].pron;
    }
    free(adds);
    if (nadds && (rc = s_teach(self)) != 0)
        tolk_error("asr.vocabulary", NULL, "pocketsphinx could not take the vocabulary");
    return rc;
}

/* Apply the waiting vocabulary, if any (no utterance open). */
static int s_apply_next(s_stream_t *self)
{
    if (!self->has_next)
        return 0;
    int rc = s_apply(self, self->next_vocab, self->next_n);
    for (int i = 0; i < self->next_n; i++)
        free(self->next_vocab[i]);
    free(self->next_vocab);
    self->next_vocab = NULL;
    self->next_n = 0;
    self->has_next = false;
    return rc;
}

/* A hypothesis as listeners see it: every token this stream added shown
   as its entry (a retired one as plain words). Valid until the next call;
   the hypothesis itself when nothing was added or out of memory. */
static const char *s_shown(s_stream_t *self, const char *hyp)
{
    if (!hyp || self->nwords == 0)
        return hyp ? hyp : "";
    size_t cap = 1;
    for (const char *t = hyp; *t;) {
        size_t len = strcspn(t, " ");
        s_word_t *w = s_word(self, t, len);
        cap += (w ? strlen(w->text ? w->text : w->token) : len) + 1;
        t += len + (t[len] == ' ');
    }
    char *out = realloc(self->shown, cap);
    if (!out)
        return hyp;
    self->shown = out;
    size_t n = 0;
    for (const char *t = hyp; *t;) {
        size_t len = strcspn(t, " ");
        s_word_t *w = s_word(self, t, len);
        if (n)
            out[n++] = ' ';
        if (w && w->text) {
            size_t k = strlen(w->text);
            memcpy(out + n, w->text, k);
            n += k;
        } else if (w) { /* retired: its words, lower case, without the suffix */
            size_t k = strlen(w->token);
            while (k && w->token[k - 1] == '_')
                k--;
            for (size_t i = 0; i < k; i++)
                out[n + i] = w->token[i] == '_' ? ' ' : (char)tolower((unsigned char)w->token[i]);
            n += k;
        } else {
            memcpy(out + n, t, len);
            n += len;
        }
        t += len + (t[len] == ' ');
    }
    out[n] = 0;
    return out;
}

/* Close the utterance in progress and report its final, ending at end
   (samples); then open the next utterance. -1 when the decoder failed. */
static int s_end_utterance(s_stream_t *self, int64_t end)
{
    if (ps_end_utt(self->ps) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to end an utterance");
        return -1;
    }
    const char *text = s_shown(self, ps_get_hyp(self->ps, NULL));
    if (end < self->utt_start)
        end = self->utt_start;
    self->hyp(self->arg, true, text, s_ms(self->utt_start), s_ms(end));
    self->prev_end = end;
    self->in_speech = false;
    if (s_apply_next(self) != 0)
        return -1;
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
        const char *text = s_shown(self, ps_get_hyp(self->ps, NULL));
        self->hyp(self->arg, false, text, s_ms(self->utt_start), s_ms(self->samples));
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
    if (ps_end_utt(self->ps) < 0 || s_apply_next(self) != 0 || ps_start_utt(self->ps) < 0) {
        tolk_error("asr.decode", NULL, "pocketsphinx failed to restart an utterance");
        return -1;
    }
    return 0;
}

/* Engine table: vocabulary. Kept for the next utterance boundary, which
   is now when the utterance in progress has heard no speech. */
static int s_vocabulary(void *handle, const char *const *entries, int n)
{
    s_stream_t *self = handle;
    char **copy = n > 0 ? calloc((size_t)n, sizeof *copy) : NULL;
    if (n > 0 && !copy)
        return 0; /* out of memory: the old vocabulary stays */
    for (int i = 0; i < n; i++)
        if (!(copy[i] = strdup(entries[i]))) {
            while (i--)
                free(copy[i]);
            free(copy);
            return 0;
        }
    for (int i = 0; i < self->next_n; i++)
        free(self->next_vocab[i]);
    free(self->next_vocab);
    self->next_vocab = copy;
    self->next_n = n;
    self->has_next = true;
    if (self->in_speech)
        return 0;
    if (ps_end_utt(self->ps) < 0 || s_apply_next(self) != 0 || ps_start_utt(self->ps) < 0) {
        tolk_error("asr.vocabulary", NULL, "pocketsphinx failed to take the vocabulary");
        return -1;
    }
    return 0;
}

/* Engine table: close, parking the decoder for the next stream. A decoder
   that will not end its utterance cleanly, or that was given words, is
   freed instead. */
static void s_close(void *handle)
{
    s_stream_t *self = handle;
    if (ps_end_utt(self->ps) < 0 || self->decoder->tainted)
        s_decoder_destroy(&self->decoder);
    else
        s_decoder_park(self->decoder);
    for (int i = 0; i < self->nwords; i++) {
        free(self->words[i].token);
        free(self->words[i].text);
        free(self->words[i].pron);
    }
    free(self->words);
    for (int i = 0; i < self->next_n; i++)
        free(self->next_vocab[i]);
    free(self->next_vocab);
    free(self->shown);
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
    .vocabulary = s_vocabulary,
    .close = s_close,
    .shutdown = s_shutdown,
};
