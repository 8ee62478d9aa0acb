/*  latency_hist.c -- log-bucketed latency histogram (see latency_hist.h).

    Bucket layout: values below TOLK_HIST_SUB are their own bucket (row 0).
    A larger value with its highest set bit at position b (b >=
    TOLK_HIST_SUB_BITS) goes to row b - TOLK_HIST_SUB_BITS + 1, and within
    the row to the sub-bucket given by the TOLK_HIST_SUB_BITS bits below
    that top bit. So each row covers one power of two in TOLK_HIST_SUB equal
    steps, and a bucket's width is at most 1/TOLK_HIST_SUB of its values.
*/
#include "latency_hist.h"

#include <string.h>

void tolk_hist_reset(tolk_hist_t *self)
{
    memset(self, 0, sizeof *self);
}

unsigned tolk_hist_bucket(uint64_t value)
{
    if (value < TOLK_HIST_SUB)
        return (unsigned)value;
    unsigned top = 63u - (unsigned)__builtin_clzll(value);
    unsigned row = top - TOLK_HIST_SUB_BITS + 1;
    unsigned sub = (unsigned)(value >> (top - TOLK_HIST_SUB_BITS)) & (TOLK_HIST_SUB - 1);
    return row * TOLK_HIST_SUB + sub;
}

uint64_t tolk_hist_bucket_top(unsigned bucket)
{
    if (bucket < TOLK_HIST_SUB)
        return bucket;
    unsigned row = bucket / TOLK_HIST_SUB;
    unsigned sub = bucket % TOLK_HIST_SUB;
    unsigned shift = row - 1; /* the width of one step in this row is 2^shift */
    uint64_t base = (uint64_t)(TOLK_HIST_SUB + sub) << shift;
    return base + ((uint64_t)1 << shift) - 1;
}

void tolk_hist_record(tolk_hist_t *self, uint64_t value)
{
    self->counts[tolk_hist_bucket(value)]++;
    if (self->n == 0 || value < self->min)
        self->min = value;
    if (value > self->max)
        self->max = value;
    self->n++;
    self->sum += (double)value;
}

void tolk_hist_merge(tolk_hist_t *self, const tolk_hist_t *from)
{
    if (from->n == 0)
        return;
    for (unsigned i = 0; i < TOLK_HIST_BUCKETS; i++)
        self->counts[i] += from->counts[i];
    if (self->n == 0 || from->min < self->min)
        self->min = from->min;
    if (from->max > self->max)
        self->max = from->max;
    self->n += from->n;
    self->sum += from->sum;
}

uint64_t tolk_hist_percentile(const tolk_hist_t *self, double pct)
{
    if (self->n == 0)
        return 0;
    if (pct >= 100.0)
        return self->max;
    if (pct < 0)
        pct = 0;
    /* the rank of the sample asked for, 1-based: p50 of 2 samples is the first */
    uint64_t rank = (uint64_t)((pct / 100.0) * (double)self->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < TOLK_HIST_BUCKETS; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            uint64_t top = tolk_hist_bucket_top(i);
            return top > self->max ? self->max : top < self->min ? self->min : top;
        }
    }
    return self->max;
}

double tolk_hist_mean(const tolk_hist_t *self)
{
    return self->n ? self->sum / (double)self->n : 0.0;
}
