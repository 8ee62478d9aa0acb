/*  latency_hist.h -- a log-bucketed histogram of latencies, for percentiles
    that stay honest from microseconds to seconds in constant memory.

    Why: a mean hides the tail a listener notices, and keeping every sample
    of a 100,000-deliveries-a-second run costs memory and time. Values are
    counted in buckets that are linear below TOLK_HIST_SUB and then split
    each power of two into TOLK_HIST_SUB equal parts, so any percentile is
    within 1/TOLK_HIST_SUB (about 3 %) of the true value (the HdrHistogram
    idea, without its dependency). The struct is a plain value: embed it,
    zero it, add histograms of several threads or processes with merge.
*/
#ifndef TOLK_LATENCY_HIST_H
#define TOLK_LATENCY_HIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TOLK_HIST_SUB_BITS 5
#define TOLK_HIST_SUB      (1u << TOLK_HIST_SUB_BITS) /* buckets per power of two */
/* values up to 2^63: one row of TOLK_HIST_SUB per power of two above the linear part */
#define TOLK_HIST_BUCKETS ((64 - TOLK_HIST_SUB_BITS + 1) * TOLK_HIST_SUB)

typedef struct {
    uint64_t counts[TOLK_HIST_BUCKETS]; /* samples per bucket */
    uint64_t n;                         /* samples recorded, so percentiles need no pass */
    uint64_t min, max;                  /* exact extremes: max is the one figure never rounded */
    double sum;                         /* for the mean, which throughput needs */
} tolk_hist_t;

/* Forget every sample. A zeroed struct is also an empty histogram. */
void tolk_hist_reset(tolk_hist_t *self);

/* Count one value (any unit; tolk records nanoseconds or microseconds). */
void tolk_hist_record(tolk_hist_t *self, uint64_t value);

/* Add every sample of from into self. */
void tolk_hist_merge(tolk_hist_t *self, const tolk_hist_t *from);

/* The value at or below which pct percent of the samples fall (pct in
   0..100), as the upper edge of its bucket but never above max; 0 when
   empty. */
uint64_t tolk_hist_percentile(const tolk_hist_t *self, double pct);

/* Mean of the samples; 0 when empty. */
double tolk_hist_mean(const tolk_hist_t *self);

/* Bucket index of a value, and the largest value that bucket holds; for
   the unit tests and for writers of the raw buckets. */
unsigned tolk_hist_bucket(uint64_t value);
uint64_t tolk_hist_bucket_top(unsigned bucket);

#endif
