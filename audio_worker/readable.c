/*  readable.c -- sentence case and a full stop; see readable.h. */
#include "readable.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Is the word at w (len bytes) the pronoun I, alone or contracted? */
static bool s_is_pronoun(const char *w, size_t len)
{
    return w[0] == 'i' && (len == 1 || w[1] == '\'');
}

char *tolk_readable(const char *text, bool final)
{
    if (!text)
        text = "";
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (!out)
        return NULL;
    memcpy(out, text, len + 1);
    for (size_t i = 0; i < len;) {
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
