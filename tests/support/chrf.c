/*  chrf.c -- chrF as Popović (2015) defines it; see chrf.h. Texts are
    captions (a few hundred characters), so n-grams are matched by a
    direct quadratic count rather than a hash table. */
#include "chrf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A text's characters with spaces taken out, as code points. */
typedef struct {
    uint32_t *c;
    size_t n;
} s_chars_t;

/* Decode UTF-8 (a malformed byte counts as one character of its own),
   dropping whitespace. Aborts when out of memory: a benchmark helper
   cannot report a wrong score instead. */
static s_chars_t s_decode(const char *text)
{
    size_t len = strlen(text);
    s_chars_t s = {malloc((len + 1) * sizeof(uint32_t)), 0};
    if (!s.c) {
        fprintf(stderr, "chrf: out of memory\n");
        abort();
    }
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        uint32_t cp = *p;
        int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0, k = 1;
        if (more)
            cp &= 0x3fu >> more;
        for (; k <= more && (p[k] & 0xc0) == 0x80; k++)
            cp = cp << 6 | (p[k] & 0x3fu);
        if (k <= more) /* malformed or truncated: the lead byte alone */
            cp = *p, k = 1;
        p += k;
        if (cp != ' ' && cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f' && cp != '\v')
            s.c[s.n++] = cp;
    }
    return s;
}

/* Occurrences of the n-gram at g in t. */
static size_t s_count(const s_chars_t *t, const uint32_t *g, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i + n <= t->n; i++)
        c += memcmp(t->c + i, g, n * sizeof *g) == 0;
    return c;
}

void chrf_add(chrf_stats_t *stats, const char *hyp, const char *ref)
{
    s_chars_t h = s_decode(hyp ? hyp : ""), r = s_decode(ref ? ref : "");
    for (size_t n = 1; n <= CHRF_ORDER; n++) {
        size_t nh = h.n >= n ? h.n - n + 1 : 0, nr = r.n >= n ? r.n - n + 1 : 0;
        stats->hyp[n - 1] += (double)nh;
        stats->ref[n - 1] += (double)nr;
        /* each distinct hypothesis n-gram once, at its first occurrence */
        for (size_t i = 0; i < nh; i++) {
            const uint32_t *g = h.c + i;
            bool first = true;
            for (size_t j = 0; j < i && first; j++)
                first = memcmp(h.c + j, g, n * sizeof *g) != 0;
            if (!first)
                continue;
            size_t in_h = s_count(&h, g, n), in_r = s_count(&r, g, n);
            stats->match[n - 1] += (double)(in_h < in_r ? in_h : in_r);
        }
    }
    free(h.c);
    free(r.c);
}

double chrf_score(const chrf_stats_t *stats)
{
    double p = 0, r = 0;
    int orders = 0;
    for (int n = 0; n < CHRF_ORDER; n++) {
        if (stats->hyp[n] <= 0 || stats->ref[n] <= 0)
            continue;
        p += stats->match[n] / stats->hyp[n];
        r += stats->match[n] / stats->ref[n];
        orders++;
    }
    if (!orders)
        return 0;
    p /= orders;
    r /= orders;
    double b2 = CHRF_BETA * CHRF_BETA;
    return p + r > 0 ? 100 * (1 + b2) * p * r / (b2 * p + r) : 0;
}

double chrf(const char *hyp, const char *ref)
{
    chrf_stats_t s = {0};
    chrf_add(&s, hyp, ref);
    return chrf_score(&s);
}
