/*  speech.c -- spoken translation: text in a language -> 16-bit mono PCM.

    Why it looks like this: espeak-ng is a library of process-global state
    (one current voice, one output buffer, one callback), so this module is
    a thin, single-instance wrapper that owns that state while it lives. It
    uses the espeak_ng_* calls rather than espeak_Initialize because the
    latter reports missing data by exit(1) (or, given
    espeakINITIALIZE_DONT_EXIT, by returning 0, with the error printed on
    stderr); espeak_ng_Initialize returns a status instead.

    Once per process: espeak-ng 1.51 (Debian's, built with its async
    fifo) starts an idle thread in espeak_ng_Initialize even for
    synchronous output, and cancels it in espeak_ng_Terminate. A second
    Initialize after a Terminate leaves that machinery in a state where the
    second Terminate deadlocks in fifo_stop (29 runs in 30 once something
    was synthesised in between). So a process may start espeak-ng once:
    after tolk_speech_destroy, tolk_speech_new returns NULL. A start that
    failed (no data) created no thread and may be retried.

    A data path that does not exist would make espeak-ng quietly fall back
    to its default data (ESPEAK_DATA_PATH, ~/espeak-ng-data, built-in), so
    tolk_speech_new checks for phontab itself before starting it.

    espeak-ng 1.51's espeak_ng_InitializeOutput also makes a libpcaudio
    device object, even for synchronous output: libpulse tries to reach a
    PulseAudio server (creating ~/.config/pulse and /tmp/pulse-* on the
    way), then ALSA is set up; nothing is ever played through it. espeak-ng
    never frees that object (about 7 KB, still reachable at exit, so leak
    checkers do not count it).

    Output mode is ENOUTPUT_MODE_SYNCHRONOUS: each
    espeak_ng_Synthesize runs to completion in the caller's thread and hands
    the samples, a buffer at a time, to s_on_audio, which appends them to
    the s_pcm_t passed as user_data, up to TOLK_SPEECH_MAX_SECONDS; going
    over stops espeak-ng (the callback returns 1) and the synthesis fails.

    Safety of the text: synthesis never passes espeakSSML or espeakPHONEMES,
    so '<', '&' and "[[" are read as text; control characters (espeak-ng
    takes \x01 as the start of an embedded command such as a rate change),
    C1 controls and invalid UTF-8 become spaces before espeak-ng sees them.

    Voices: a language is selected with espeak_SetVoiceByProperties (the
    best voice for it, as espeak-ng ranks them), then checked: the voice
    chosen must list the same primary language and must not be an MBROLA
    voice (which would need MBROLA installed and another sample rate). The
    last language selected is remembered so that consecutive syntheses in
    one language do not reload the voice. s_fallbacks lists stand-ins for
    languages espeak-ng lacks; each is used only when no real voice exists.

    espeak_ng_Initialize sets LC_CTYPE to C.UTF-8 for the whole process;
    tolk_speech_new puts the caller's LC_CTYPE back afterwards. espeak-ng
    1.51 speaks identically either way (same samples, checked with accented
    capitals, Esperanto, Romanian, Cyrillic and Greek text): it classifies
    characters with its own Unicode tables, not with the C library's.
*/
#include "speech.h"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include <locale.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_LANG_MAX 16 /* bytes of a language code, NUL included */
/* bytes of a data path (espeak-ng keeps it, plus "/espeak-ng-data", in a
   160-byte buffer) */
#define S_PATH_MAX      128
#define S_FIRST_SAMPLES 16384 /* first capacity of a PCM buffer (0.74 s at 22050 Hz) */
#define S_LANGS_SCAN    1024  /* most bytes of a voice's language list looked at */

/* Stand-ins for languages espeak-ng has no voice for. */
static const struct {
    const char *lang;  /* ISO 639-1 code asked for */
    const char *voice; /* language whose voice speaks it instead */
} s_fallbacks[] = {
    /* Galician: Spanish spelling rules (ñ, ll, ch; no European Portuguese
       vowel reduction) make es far more intelligible than pt */
    {"gl", "es"},
};

/* espeak-ng's life in this process: it may be started once (see the top). */
enum { S_FRESH, S_LIVE, S_SPENT };
static atomic_int s_state; /* S_FRESH, S_LIVE or S_SPENT */

struct tolk_speech_t {
    int rate;                 /* Hz of espeak-ng's output */
    uint64_t count;           /* successful syntheses */
    char current[S_LANG_MAX]; /* language of the voice selected, "" when unknown */
};

/* Samples collected from one synthesis. */
typedef struct {
    int16_t *data;   /* malloc'd, capacity samples */
    size_t len;      /* samples in data */
    size_t capacity; /* samples data has room for */
    size_t cap;      /* most samples allowed (TOLK_SPEECH_MAX_SECONDS) */
    bool failed;     /* over cap or out of memory: synthesis was stopped */
} s_pcm_t;

/* espeak-ng's synth callback: append wav[0..n) to the s_pcm_t in the
   events' user_data. Returns 1 to stop synthesis (over cap, no memory). */
static int s_on_audio(short *wav, int n, espeak_EVENT *events)
{
    s_pcm_t *out = events ? events[0].user_data : NULL;
    if (!out)
        return 0; /* not one of ours: nothing to collect into */
    if (out->failed)
        return 1;
    if (!wav || n <= 0)
        return 0; /* events only, or the end of the data */
    size_t add = (size_t)n;
    if (add > out->cap - out->len) {
        out->failed = true;
        return 1;
    }
    if (out->len + add > out->capacity) {
        size_t capacity = out->capacity ? out->capacity : S_FIRST_SAMPLES;
        while (capacity < out->len + add)
            capacity *= 2;
        if (capacity > out->cap)
            capacity = out->cap;
        int16_t *grown = realloc(out->data, capacity * sizeof *grown);
        if (!grown) {
            out->failed = true;
            return 1;
        }
        out->data = grown;
        out->capacity = capacity;
    }
    memcpy(out->data + out->len, wav, add * sizeof *wav);
    out->len += add;
    return 0;
}

/* Copy lang into out as espeak-ng spells it: lower case, '_' as '-'.
   Returns 0, or -1 when it is no language tag: 2 or 3 letters, then
   optional "-" subtags of 1 to 8 letters or digits. */
static int s_normalize_lang(const char *lang, char out[S_LANG_MAX])
{
    size_t i = 0, sub = 0; /* sub: length of the subtag being read */
    bool primary = true;
    for (; lang[i]; i++) {
        if (i + 1 >= S_LANG_MAX)
            return -1;
        char c = lang[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '_')
            c = '-';
        if (c == '-') {
            if (primary ? (sub < 2 || sub > 3) : sub < 1)
                return -1;
            primary = false;
            sub = 0;
        } else if ((c >= 'a' && c <= 'z') || (!primary && c >= '0' && c <= '9')) {
            if (++sub > 8)
                return -1;
        } else
            return -1;
        out[i] = c;
    }
    out[i] = 0;
    if (primary ? (sub < 2 || sub > 3) : sub < 1)
        return -1;
    return 0;
}

/* Length of lang's primary subtag (up to '-' or the end). */
static size_t s_primary_len(const char *lang)
{
    return strcspn(lang, "-");
}

/* Does espeak-ng's current voice speak lang's primary language, with
   espeak-ng's own synthesiser? Its languages field is a list of
   (priority byte, NUL-terminated name), ended by a 0 priority. */
static bool s_current_speaks(const char *lang)
{
    espeak_VOICE *voice = espeak_GetCurrentVoice();
    if (!voice || !voice->languages)
        return false;
    if (voice->identifier && strncmp(voice->identifier, "mb/", 3) == 0)
        return false;
    size_t want = s_primary_len(lang);
    const char *p = voice->languages;
    const char *end = p + S_LANGS_SCAN;
    while (p < end && *p) {
        const char *name = p + 1; /* past the priority byte */
        size_t len = strnlen(name, (size_t)(end - name));
        if (s_primary_len(name) == want && strncmp(name, lang, want) == 0)
            return true;
        p = name + len + 1;
    }
    return false;
}

/* Select the best voice for the (normalized) language code. 0 or -1. */
static int s_try_voice(const char *code)
{
    espeak_VOICE spec;
    memset(&spec, 0, sizeof spec);
    spec.languages = code;
    if (espeak_SetVoiceByProperties(&spec) != EE_OK)
        return -1;
    return s_current_speaks(code) ? 0 : -1;
}

/* Make lang (as the caller wrote it) the current voice, or its stand-in.
   Returns 0, or -1 when espeak-ng cannot speak it. */
static int s_select(tolk_speech_t *self, const char *lang)
{
    char code[S_LANG_MAX];
    if (!lang || s_normalize_lang(lang, code) != 0)
        return -1;
    if (strcmp(code, self->current) == 0)
        return 0;
    self->current[0] = 0; /* a failed selection may leave any voice behind */
    int rc = s_try_voice(code);
    for (size_t i = 0; rc != 0 && i < sizeof s_fallbacks / sizeof s_fallbacks[0]; i++) {
        size_t n = s_primary_len(code);
        if (strlen(s_fallbacks[i].lang) == n && strncmp(s_fallbacks[i].lang, code, n) == 0)
            rc = s_try_voice(s_fallbacks[i].voice);
    }
    if (rc == 0)
        memcpy(self->current, code, sizeof code);
    return rc;
}

/* Length of the UTF-8 sequence at s (at most avail bytes), or 0 when it is
   not a valid, shortest-form encoding of a scalar value. *cp gets it. */
static size_t s_utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* Copy text (len bytes) into out (room for len + 1) as plain text for
   espeak-ng: C0 and C1 controls, DEL and invalid UTF-8 become one space
   each. Returns true when something other than ASCII spaces remains. */
static bool s_sanitize(const char *text, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    bool content = false;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = s_utf8_seq(s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            out[o++] = ' ';
            i += n ? n : 1;
            continue;
        }
        if (cp != ' ')
            content = true;
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = 0;
    return content;
}

/* Is dir/name (or dir/espeak-ng-data/name) a readable file? */
static bool s_has_data(const char *dir, const char *name)
{
    char path[S_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, R_OK) == 0)
        return true;
    snprintf(path, sizeof path, "%s/espeak-ng-data/%s", dir, name);
    return access(path, R_OK) == 0;
}

tolk_speech_t *tolk_speech_new(const char *data_path)
{
    /* espeak-ng would fall back to its default data, silently, for a path
       that does not exist: check it here */
    if (data_path && (strlen(data_path) == 0 || strlen(data_path) > S_PATH_MAX ||
                      !s_has_data(data_path, "phontab")))
        return NULL;
    int fresh = S_FRESH;
    if (!atomic_compare_exchange_strong(&s_state, &fresh, S_LIVE))
        return NULL; /* one per process, and only once */
    tolk_speech_t *self = calloc(1, sizeof *self);
    const char *ctype = setlocale(LC_CTYPE, NULL);
    char *saved_ctype = ctype ? malloc(strlen(ctype) + 1) : NULL;
    if (!self || (ctype && !saved_ctype)) {
        free(self);
        free(saved_ctype);
        atomic_store(&s_state, S_FRESH);
        return NULL;
    }
    if (saved_ctype)
        strcpy(saved_ctype, ctype);

    espeak_ng_InitializePath(data_path);
    espeak_ng_ERROR_CONTEXT context = NULL;
    espeak_ng_STATUS status = espeak_ng_Initialize(&context);
    espeak_ng_ClearErrorContext(&context);
    if (saved_ctype) {
        setlocale(LC_CTYPE, saved_ctype);
        free(saved_ctype);
    }
    bool started = status == ENS_OK; /* and espeak-ng's thread with it */
    if (started)
        status = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL);
    self->rate = espeak_ng_GetSampleRate();
    if (status != ENS_OK || self->rate <= 0) {
        /* frees what was loaded; a start that failed for want of data made
           no thread, so espeak-ng may be started again after it */
        espeak_ng_Terminate();
        free(self);
        atomic_store(&s_state, started ? S_SPENT : S_FRESH);
        return NULL;
    }
    espeak_SetSynthCallback(s_on_audio);
    return self;
}

void tolk_speech_destroy(tolk_speech_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    espeak_SetSynthCallback(NULL);
    espeak_ng_Terminate();
    free(*self_p);
    *self_p = NULL;
    atomic_store(&s_state, S_SPENT);
}

bool tolk_speech_has_voice(tolk_speech_t *self, const char *lang)
{
    return self && s_select(self, lang) == 0;
}

int tolk_speech_synthesize(tolk_speech_t *self, const char *lang, const char *text, int16_t **pcm,
                           size_t *samples)
{
    if (pcm)
        *pcm = NULL;
    if (samples)
        *samples = 0;
    if (!self || !lang || !text || !pcm || !samples)
        return -1;
    size_t len = strnlen(text, TOLK_SPEECH_TEXT_MAX + 1);
    if (len == 0 || len > TOLK_SPEECH_TEXT_MAX)
        return -1;
    char clean[TOLK_SPEECH_TEXT_MAX + 1];
    if (!s_sanitize(text, len, clean))
        return -1;
    if (s_select(self, lang) != 0)
        return -1;

    s_pcm_t out = {.cap = (size_t)self->rate * TOLK_SPEECH_MAX_SECONDS};
    espeak_ng_STATUS status = espeak_ng_Synthesize(clean, strlen(clean) + 1, 0, POS_CHARACTER, 0,
                                                   espeakCHARS_UTF8, NULL, &out);
    if (status != ENS_OK || out.failed || out.len == 0) {
        free(out.data);
        return -1;
    }
    *pcm = out.data;
    *samples = out.len;
    self->count++;
    return 0;
}

int tolk_speech_ipa(tolk_speech_t *self, const char *text, char *out, size_t size)
{
    if (!self || !text || !out || size == 0)
        return -1;
    out[0] = 0;
    size_t len = strnlen(text, 257);
    char clean[257];
    if (len == 0 || len > 256 || !s_sanitize(text, len, clean) || s_select(self, "en-us") != 0)
        return -1;
    size_t n = 0;
    const void *p = clean;
    while (p) {
        const char *ph = espeak_TextToPhonemes(&p, espeakCHARS_UTF8, espeakPHONEMES_IPA);
        size_t k = ph ? strlen(ph) : 0;
        if (k == 0)
            continue;
        if (n + (n ? 1 : 0) + k + 1 > size)
            return -1;
        if (n)
            out[n++] = ' ';
        memcpy(out + n, ph, k + 1);
        n += k;
    }
    return n ? 0 : -1;
}

int tolk_speech_rate(const tolk_speech_t *self)
{
    return self ? self->rate : 0;
}

uint64_t tolk_speech_count(const tolk_speech_t *self)
{
    return self ? self->count : 0;
}
