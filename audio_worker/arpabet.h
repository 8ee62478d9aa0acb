/*  arpabet.h -- espeak-ng's IPA for a word, as the phones of pocketsphinx's
    US-English model.

    A vocabulary word the dictionary lacks ("ZeroMQ", "Willoughby" with an
    unusual spelling) needs a pronunciation in the model's phone set: the
    39 CMU/ARPAbet phones of cmudict (AA AE AH AO AW AY B CH D DH EH ER EY
    F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH).
    espeak-ng gives a General American IPA transcription
    (espeak_TextToPhonemes); this module maps it, longest match first, the
    way cmudict transcribes the same sounds: the flap [ɾ] and the glottal
    stop [ʔ] of "water", "button" are T, r-coloured vowels are ER or a vowel
    and R ([ɚ] ER, [oːɹ] AO R, [iəɹ] IH R), reduced vowels ([ə ɐ ᵻ]) AH or
    IH, a syllabic consonant [n̩] AH N. Stress, length marks and word breaks
    are dropped (the model has no stress). Pure: unit tested on its own.
*/
#ifndef TOLK_ARPABET_H
#define TOLK_ARPABET_H

#include <stddef.h>

/* Map ipa (UTF-8) to space-separated phones in out (size bytes). Returns
   the number of phones, or -1 when there are none, out is too small, or
   ipa holds a sound the table does not know (better no word than a
   wrong one). */
int tolk_arpabet_from_ipa(const char *ipa, char *out, size_t size);

#endif
