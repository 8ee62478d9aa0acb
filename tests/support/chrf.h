/*  chrf.h -- chrF, the character n-gram F-score of a translation against
    a reference (Maja Popović, "chrF: character n-gram F-score for
    automatic MT evaluation", WMT 2015).

    Why: bench/asr scores the Spanish captions (recognised English,
    translated by Apertium) against Apertium's Spanish of the reference
    transcripts. Word-based scores punish every inflection a wrong
    English word causes; character n-grams give partial credit for a
    nearly right word, which is what a reader of a caption gets too.

    The definition, as published: character n-grams for n = 1..6, spaces
    ignored; for each n, precision P_n (matched hypothesis n-grams over all
    hypothesis n-grams) and recall R_n (matched over reference n-grams), a
    match being the smaller of an n-gram's counts in the two texts;
    chrP and chrR are the arithmetic means of P_n and R_n over n, and
    chrF_beta = (1 + beta^2) chrP chrR / (beta^2 chrP + chrR), beta = 2
    (recall weighs twice as much). Characters are Unicode code points
    (UTF-8 decoded), case-sensitive. Over several segments the counts are
    summed before P_n and R_n (document level). An order that has no
    n-gram in the hypothesis or the reference (texts under six characters)
    is left out of the means: the paper leaves that case open. Note that
    sacreBLEU averages F over n instead of P and R, so its figures differ
    slightly.
*/
#ifndef TOLK_CHRF_H
#define TOLK_CHRF_H

#define CHRF_ORDER 6   /* the longest n-gram, as published */
#define CHRF_BETA  2.0 /* recall's weight, as published */

/* Summed n-gram counts of the segments added so far, per order - 1. */
typedef struct {
    double hyp[CHRF_ORDER];   /* n-grams in the hypotheses */
    double ref[CHRF_ORDER];   /* n-grams in the references */
    double match[CHRF_ORDER]; /* of those, matched */
} chrf_stats_t;

/* Add one segment's counts (hyp against ref, both UTF-8) to stats;
   stats starts zeroed. */
void chrf_add(chrf_stats_t *stats, const char *hyp, const char *ref);

/* chrF of what stats holds, 0 to 100; 0 when nothing was added. */
double chrf_score(const chrf_stats_t *stats);

/* chrF of one segment. */
double chrf(const char *hyp, const char *ref);

#endif
