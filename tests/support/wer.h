/*  wer.h -- word error rate of a recogniser's transcript against a
    reference, and the reference transcripts of the LibriVox recordings
    that pocketsphinx-testdata ships.

    Why: tolk promises recognition as accurate as pocketsphinx's own batch
    decoder, and that is checked as a word error rate in more than one
    suite; the distance and the transcript reader are written once here.
    Plain C with no Check assertions, so any test binary can link it.

    Words are compared normalised: lower case, and only letters, digits and
    apostrophes count (anything else separates words), so punctuation or
    capitals in a hypothesis are not errors.
*/
#ifndef TOLK_WER_H
#define TOLK_WER_H

#include <stddef.h>
#include <stdint.h>

/* Where pocketsphinx-testdata puts the LibriVox recordings and their
   "transcription" file. */
#define WER_LIBRIVOX_DIR "/usr/share/pocketsphinx/test/data/librivox"

/* Word errors of hyp against ref: the word-level Levenshtein distance
   (substitutions + deletions + insertions). *ref_words, unless NULL, gets
   the number of words in ref, the WER's denominator. */
size_t wer_errors(const char *ref, const char *hyp, size_t *ref_words);

/* The reference transcript of recording id, from the line
   "<s> words </s> (id)" of DIR/transcription: its words joined by single
   spaces, malloc'd. NULL when the file cannot be read or has no such
   line. */
char *wer_reference(const char *dir, const char *id);

/* The PCM of recording id (DIR/id.wav without its 44-byte header: 16 kHz,
   16-bit, mono), malloc'd, an even number of bytes in *len. NULL when the
   file cannot be read. */
uint8_t *wer_recording(const char *dir, const char *id, size_t *len);

#endif
