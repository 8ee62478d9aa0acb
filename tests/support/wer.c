/*  wer.c -- word error rate and LibriVox reference transcripts (see
    wer.h).

    Why: the accuracy checks of speech recognition need the same word
    splitting and the same edit distance wherever they are made, or two
    suites could disagree about the same transcript. No limits on words or
    their length: everything is sized from the text.
*/
#include "wer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A text's normalised words: pointers into one buffer. */
typedef struct {
    char *buf;    /* the lower-cased words, NUL-separated */
    char **word;  /* where each word starts in buf */
    size_t count; /* how many words */
} s_words_t;

/* Memory for a test helper: running out is not a case a test can handle,
   so stop at once rather than report a wrong distance. */
static void *s_alloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "wer: out of memory\n");
        abort();
    }
    return p;
}

/* A character that belongs to a word: what a transcript's words are made
   of, with apostrophes kept ("don't" is one word). */
static int s_word_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '\'';
}

/* Split text into normalised words; every word takes at least one
   character and one separator, so half the length bounds the count. */
static s_words_t s_split(const char *text)
{
    size_t len = strlen(text);
    s_words_t w = {s_alloc(len + 1), s_alloc((len / 2 + 1) * sizeof(char *)), 0};
    char *out = w.buf;
    for (const char *p = text; *p;) {
        while (*p && !s_word_char(*p))
            p++;
        if (!*p)
            break;
        w.word[w.count++] = out;
        while (*p && s_word_char(*p))
            *out++ = (char)tolower((unsigned char)*p++);
        *out++ = 0;
    }
    return w;
}

/* Release what s_split made. */
static void s_words_free(s_words_t *w)
{
    free(w->buf);
    free(w->word);
}

/* The classic two-row dynamic programme over words: the distance is all a
   WER needs, not the alignment. */
size_t wer_errors(const char *ref, const char *hyp, size_t *ref_words)
{
    s_words_t r = s_split(ref), h = s_split(hyp);
    size_t *prev = s_alloc((h.count + 1) * sizeof *prev);
    size_t *cur = s_alloc((h.count + 1) * sizeof *cur);
    for (size_t j = 0; j <= h.count; j++)
        prev[j] = j;
    for (size_t i = 1; i <= r.count; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= h.count; j++) {
            size_t sub = prev[j - 1] + (strcmp(r.word[i - 1], h.word[j - 1]) != 0);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    size_t errors = prev[h.count];
    if (ref_words)
        *ref_words = r.count;
    free(prev);
    free(cur);
    s_words_free(&r);
    s_words_free(&h);
    return errors;
}

/* The testdata's transcription file has one line per recording, the words
   between <s> and </s> and the id in parentheses after them. */
char *wer_reference(const char *dir, const char *id)
{
    char path[1024], tag[512], line[4096];
    snprintf(path, sizeof path, "%s/transcription", dir);
    snprintf(tag, sizeof tag, "(%s)", id);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char *at = strstr(line, tag);
        if (!at)
            continue;
        *at = 0;
        found = s_alloc(strlen(line) + 1);
        found[0] = 0;
        for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w;
             w = strtok_r(NULL, " \t\r\n", &save)) {
            if (strcmp(w, "<s>") == 0 || strcmp(w, "</s>") == 0)
                continue;
            if (found[0])
                strcat(found, " ");
            strcat(found, w);
        }
    }
    fclose(f);
    return found;
}

uint8_t *wer_recording(const char *dir, const char *id, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.wav", dir, id);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *pcm = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size > 44 && fseek(f, 44, SEEK_SET) == 0) {
        *len = ((size_t)size - 44) & ~(size_t)1;
        pcm = malloc(*len);
        if (pcm && fread(pcm, 1, *len, f) != *len) {
            free(pcm);
            pcm = NULL;
        }
    }
    fclose(f);
    return pcm;
}
