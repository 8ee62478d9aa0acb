/*  speech.h -- spoken translation: text in a language -> 16-bit mono PCM.

    The audio worker speaks each final in the listener's language. This
    module turns one UTF-8 text into one buffer of PCM with espeak-ng
    (formant synthesis: small, fast, no model files beyond espeak-ng-data),
    synchronously, in the calling thread; it plays nothing itself.

    espeak-ng is one process-global engine, so there is at most one
    tolk_speech_t per process, and only once: tolk_speech_new returns NULL
    while one exists and also after it was destroyed (espeak-ng 1.51
    deadlocks when stopped a second time; see speech.c). Make it at
    start-up, destroy it at exit. Not thread-safe: every call must come
    from one thread at a time (the worker's own), and nothing else in the
    process may use espeak-ng.

    Text is always read as plain text: never as SSML, phoneme input or
    espeak embedded commands; control characters and invalid UTF-8 become
    spaces. Languages are ISO 639-1 codes ("es"), optionally with a region
    ("pt-br"), case-insensitive. espeak-ng 1.51 has no Galician voice:
    "gl" is spoken with the Spanish voice (see tolk_speech_has_voice).

    Nothing is logged: failures are return values, for the caller to log.
*/
#ifndef TOLK_SPEECH_H
#define TOLK_SPEECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOLK_SPEECH_TEXT_MAX    4096 /* bytes of text one synthesis may speak */
#define TOLK_SPEECH_MAX_SECONDS 60   /* longest audio one synthesis may produce */

typedef struct tolk_speech_t tolk_speech_t;

/* Start espeak-ng. data_path is the espeak-ng-data directory or the
   directory holding it (at most 128 bytes), or NULL for espeak-ng's
   default (the ESPEAK_DATA_PATH environment variable, ~/espeak-ng-data,
   else the built-in path). Returns NULL when there is no voice data
   there, when a tolk_speech_t exists or existed before in this process
   (a failed start does not count), or when out of memory. The process's
   LC_CTYPE, which espeak-ng's start-up sets to C.UTF-8, is put back as it
   was. Blocks for the start (a few ms). */
tolk_speech_t *tolk_speech_new(const char *data_path);

/* Stop espeak-ng and free everything. NULLs *self_p; NULL is ignored. */
void tolk_speech_destroy(tolk_speech_t **self_p);

/* Can we speak lang? True when espeak-ng has a voice for it (en es ca eo
   fr pt it ro and some hundred more), or for its stand-in ("gl" -> "es").
   Selects that voice as a side effect (cheap; synthesis does it anyway). */
bool tolk_speech_has_voice(tolk_speech_t *self, const char *lang);

/* Speak text (UTF-8, 1 to TOLK_SPEECH_TEXT_MAX bytes) in lang. On success
   *pcm is a malloc'd array of *samples host-order int16 samples, mono, at
   tolk_speech_rate(self) Hz, for the caller to free, and 0 is returned.
   Returns -1, with *pcm NULL and *samples 0, when there is no voice for
   lang, the text is empty, blank or too long, synthesis failed or made no
   sound, the audio would exceed TOLK_SPEECH_MAX_SECONDS, or out of memory.
   Blocks for the synthesis (typically a few ms per second of speech). */
int tolk_speech_synthesize(tolk_speech_t *self, const char *lang, const char *text, int16_t **pcm,
                           size_t *samples);

/* The pronunciation of text (UTF-8, 1 to 256 bytes) in General American,
   as espeak-ng's IPA (espeak_TextToPhonemes with espeakPHONEMES_IPA, the
   en-us voice; clauses joined by a space), for the recogniser's
   vocabulary (arpabet.h maps it to the model's phones). Returns 0 with out
   (size bytes) filled, or -1 (no voice, text empty, too long or with
   control characters, out too small). Selects the en-us voice as a side
   effect. Blocks for the lookup (well under a millisecond a word). */
int tolk_speech_ipa(tolk_speech_t *self, const char *text, char *out, size_t size);

/* Sample rate of what synthesize returns, in Hz (22050 with espeak-ng). */
int tolk_speech_rate(const tolk_speech_t *self);

/* Successful syntheses so far, for the status feed. */
uint64_t tolk_speech_count(const tolk_speech_t *self);

#endif
