/*  readable.c -- sentence case, the vocabulary's case and a full stop; see
    readable.h. */
#include "readable.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Is the word at w (len bytes) the pronoun I, alone or contracted? */
static bool s_is_pronoun(const char *w, size_t len)
{
    return w[0] == 'i' && (len == 1 || w[1] == '\'');
}

/* Length of the longest entry that matches out at i on whole words,
   ignoring ASCII case (so the match has the entry's length), or 0; *which
   gets the entry. */
static size_t s_entry_at(const char *out, size_t i, size_t len, const char *const *entries, int n,
                         int *which)
{
    size_t best = 0;
    for (int e = 0; e < n; e++) {
        size_t elen = strlen(entries[e]);
        if (elen > best && i + elen <= len && (out[i + elen] == ' ' || out[i + elen] == 0) &&
            strncasecmp(out + i, entries[e], elen) == 0) {
            best = elen;
            *which = e;
        }
    }
    return best;
}

char *tolk_readable_vocab(const char *text, bool final, const char *const *entries, int n)
{
    if (!text)
        text = "";
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (!out)
        return NULL;
    memcpy(out, text, len + 1);
    for (size_t i = 0; i < len;) {
        int which = -1;
        size_t span = entries ? s_entry_at(out, i, len, entries, n, &which) : 0;
        if (span) {
            /* as the speaker wrote it, at the start of the sentence too */
            memcpy(out + i, entries[which], span);
            i += span + 1;
            continue;
        }
        size_t w = strcspn(out + i, " ");
        if (w && (i == 0 || s_is_pronoun(out + i, w)))
            out[i] = (char)toupper((unsigned char)out[i]);
        i += w + 1;
    }
    if (final && len && !strchr(".?!", out[len - 1])) {
        out[len] = '.';
        out[len + 1] = 0;
    }
    return out;
}

char *tolk_readable_words(const char *text)
{
    if (!text)
        text = "";
    char *out = malloc(strlen(text) + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
        } else {
            out[n++] = *p;
        }
    }
    if (n && out[n - 1] == ' ')
        n--;
    out[n] = 0;
    return out;
}

char *tolk_readable(const char *text, bool final)
{
    return tolk_readable_vocab(text, final, NULL, 0);
}
