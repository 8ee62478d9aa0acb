/*  arpabet.c -- IPA to the en-us model's phones; see arpabet.h. */
#include "arpabet.h"

#include <stdbool.h>
#include <string.h>

/* One IPA sequence and its phones ("" for a mark that makes no sound).
   Searched longest first, so "tʃ" wins over "t" and "oːɹ" over "oː". */
typedef struct {
    const char *ipa;
    const char *phones;
} s_map_t;

static const s_map_t s_map[] = {
    /* r-coloured vowels, before their parts */
    {"iəɹ", "IH R"},
    {"ɪɹ", "IH R"},
    {"ɛɹ", "EH R"},
    {"eɹ", "EH R"},
    {"ʊɹ", "UH R"},
    {"oːɹ", "AO R"},
    {"ɔːɹ", "AO R"},
    {"ɔɹ", "AO R"},
    {"oɹ", "AO R"},
    {"ɑːɹ", "AA R"},
    {"ɑɹ", "AA R"},
    {"ɜːɹ", "ER"},
    {"ɜː", "ER"},
    {"ɜ", "ER"},
    {"ɚ", "ER"},
    {"ɝ", "ER"},
    /* diphthongs */
    {"aɪ", "AY"},
    {"aʊ", "AW"},
    {"eɪ", "EY"},
    {"oʊ", "OW"},
    {"əʊ", "OW"},
    {"ɔɪ", "OY"},
    {"iə", "IY AH"},
    /* vowels */
    {"ɑː", "AA"},
    {"ɑ", "AA"},
    {"ɒ", "AA"},
    {"æ", "AE"},
    {"a", "AE"},
    {"ʌ", "AH"},
    {"ə", "AH"},
    {"ɐ", "AH"},
    {"ᵻ", "IH"},
    {"ɪ", "IH"},
    {"iː", "IY"},
    {"i", "IY"},
    {"ɛ", "EH"},
    {"e", "EH"},
    {"ɔː", "AO"},
    {"ɔ", "AO"},
    {"oː", "AO"},
    {"o", "OW"},
    {"uː", "UW"},
    {"u", "UW"},
    {"ʊ", "UH"},
    /* syllabic consonants */
    {"n\xcc\xa9", "AH N"},
    {"l\xcc\xa9", "AH L"},
    {"m\xcc\xa9", "AH M"},
    /* consonants */
    {"tʃ", "CH"},
    {"dʒ", "JH"},
    {"θ", "TH"},
    {"ð", "DH"},
    {"ʃ", "SH"},
    {"ʒ", "ZH"},
    {"ŋ", "NG"},
    {"ɹ", "R"},
    {"r", "R"},
    {"ɾ", "T"},
    {"ʔ", "T"},
    {"ɡ", "G"},
    {"g", "G"},
    {"j", "Y"},
    {"h", "HH"},
    {"w", "W"},
    {"l", "L"},
    {"ɫ", "L"},
    {"m", "M"},
    {"n", "N"},
    {"p", "P"},
    {"b", "B"},
    {"t", "T"},
    {"d", "D"},
    {"k", "K"},
    {"x", "K"},
    {"f", "F"},
    {"v", "V"},
    {"s", "S"},
    {"z", "Z"},
    /* marks: stress, length, syllable and word breaks, ties */
    {"ˈ", ""},
    {"ˌ", ""},
    {"ː", ""},
    {"ˑ", ""},
    {"\xcc\xa9", ""},     /* a syllabic mark the table did not join */
    {"\xcd\xa1", ""},     /* tie bar */
    {"\xe2\x80\xbf", ""}, /* undertie */
    {" ", ""},
    {"-", ""},
    {"_", ""},
    {".", ""},
};

int tolk_arpabet_from_ipa(const char *ipa, char *out, size_t size)
{
    if (!ipa || !out || size == 0)
        return -1;
    size_t n = 0;
    int phones = 0;
    out[0] = 0;
    for (const char *p = ipa; *p;) {
        const s_map_t *best = NULL;
        size_t best_len = 0;
        for (size_t i = 0; i < sizeof s_map / sizeof s_map[0]; i++) {
            size_t len = strlen(s_map[i].ipa);
            if (len > best_len && strncmp(p, s_map[i].ipa, len) == 0) {
                best = &s_map[i];
                best_len = len;
            }
        }
        if (!best)
            return -1;
        p += best_len;
        size_t plen = strlen(best->phones);
        if (plen == 0)
            continue;
        if (n + (n ? 1 : 0) + plen + 1 > size)
            return -1;
        if (n)
            out[n++] = ' ';
        memcpy(out + n, best->phones, plen + 1);
        n += plen;
        for (const char *c = best->phones; *c; c++)
            phones += *c == ' ';
        phones++;
    }
    return phones > 0 ? phones : -1;
}
