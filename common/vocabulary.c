/*  vocabulary.c -- parsing and checking a session's vocabulary; see
    vocabulary.h. */
#include "vocabulary.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tolk_vocab_clear(tolk_vocab_t *v)
{
    v->n = 0;
}

/* Length of the UTF-8 sequence at s (avail bytes), or 0 when it is not a
   shortest-form encoding of a scalar value; *cp gets the value. */
static size_t s_utf8(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (avail < n)
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

/* A control character: C0, DEL or C1. */
static bool s_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

bool tolk_vocab_add(tolk_vocab_t *v, const char *text, size_t len, int number, char *err)
{
    const unsigned char *s = (const unsigned char *)text;
    char out[TOLK_VOCAB_ENTRY_MAX + 1];
    size_t n = 0;
    bool space = false; /* a space is owed before the next character */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = s_utf8(s + i, len - i, &cp);
        if (k == 0) {
            snprintf(err, TOLK_VOCAB_ERR_MAX, "vocabulary entry %d is not valid UTF-8", number);
            return false;
        }
        if (s_control(cp)) {
            snprintf(err, TOLK_VOCAB_ERR_MAX, "vocabulary entry %d has a control character",
                     number);
            return false;
        }
        if (cp == ' ') {
            space = n > 0;
            i++;
            continue;
        }
        if (n + (space ? 1 : 0) + k > TOLK_VOCAB_ENTRY_MAX) {
            snprintf(err, TOLK_VOCAB_ERR_MAX, "vocabulary entry %d is longer than %d bytes", number,
                     TOLK_VOCAB_ENTRY_MAX);
            return false;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        memcpy(out + n, s + i, k);
        n += k;
        i += k;
    }
    out[n] = 0;
    if (n == 0 || tolk_vocab_find(v, out, n) >= 0)
        return true; /* empty, or a case of an entry already there */
    if (v->n == TOLK_VOCAB_MAX) {
        snprintf(err, TOLK_VOCAB_ERR_MAX, "the vocabulary has more than %d entries",
                 TOLK_VOCAB_MAX);
        return false;
    }
    memcpy(v->entries[v->n++], out, n + 1);
    return true;
}

bool tolk_vocab_parse_list(tolk_vocab_t *v, const char *text, size_t len, char sep, char *err)
{
    tolk_vocab_clear(v);
    int number = 1;
    for (size_t start = 0; text && start <= len; number++) {
        const char *end = memchr(text + start, sep, len - start);
        size_t stop = end ? (size_t)(end - text) : len;
        if (!tolk_vocab_add(v, text + start, stop - start, number, err)) {
            tolk_vocab_clear(v);
            return false;
        }
        start = stop + 1;
    }
    return true;
}

bool tolk_vocab_parse_json(tolk_vocab_t *v, const json_t *value, char *err)
{
    tolk_vocab_clear(v);
    if (!json_is_array(value)) {
        snprintf(err, TOLK_VOCAB_ERR_MAX, "vocabulary must be an array of strings");
        return false;
    }
    if (json_array_size(value) > TOLK_VOCAB_MAX * 4) {
        snprintf(err, TOLK_VOCAB_ERR_MAX, "the vocabulary has more than %d entries",
                 TOLK_VOCAB_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(value); i++) {
        const json_t *e = json_array_get(value, i);
        if (!json_is_string(e)) {
            snprintf(err, TOLK_VOCAB_ERR_MAX, "vocabulary entry %zu is not a string", i + 1);
            tolk_vocab_clear(v);
            return false;
        }
        /* jansson checked the UTF-8 when parsing, but a string may hold NUL */
        if (!tolk_vocab_add(v, json_string_value(e), json_string_length(e), (int)i + 1, err)) {
            tolk_vocab_clear(v);
            return false;
        }
    }
    return true;
}

char *tolk_vocab_join(const tolk_vocab_t *v, const char *sep)
{
    size_t total = 1, seplen = strlen(sep);
    for (int i = 0; i < v->n; i++)
        total += strlen(v->entries[i]) + seplen;
    char *out = malloc(total);
    if (!out)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < v->n; i++) {
        if (i) {
            memcpy(out + n, sep, seplen);
            n += seplen;
        }
        size_t len = strlen(v->entries[i]);
        memcpy(out + n, v->entries[i], len);
        n += len;
    }
    out[n] = 0;
    return out;
}

int tolk_vocab_find(const tolk_vocab_t *v, const char *text, size_t len)
{
    for (int i = 0; i < v->n; i++)
        if (strlen(v->entries[i]) == len && strncasecmp(v->entries[i], text, len) == 0)
            return i;
    return -1;
}
