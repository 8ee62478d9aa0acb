/*  prom_hist.h -- a latency histogram with Prometheus's fixed buckets, for
    the status feed and /metrics.

    Why not latency_hist.h: that one keeps ~1900 log buckets for honest
    percentiles inside one process; a histogram that travels once a second
    in every status report and is rendered as `le` buckets wants a few
    fixed bounds that every process and every gateway agree on. Counts are
    running totals (never reset), so a scraper's rate() and
    histogram_quantile() work across lost reports. A plain value: embed it
    and zero it.
*/
#ifndef TOLK_PROM_HIST_H
#define TOLK_PROM_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds in seconds, the +Inf bucket being count itself. */
#define TOLK_PROM_HIST_BUCKETS 11
extern const double tolk_prom_hist_bounds[TOLK_PROM_HIST_BUCKETS];

typedef struct {
    uint64_t le[TOLK_PROM_HIST_BUCKETS]; /* cumulative: samples <= bounds[i] */
    uint64_t count;                      /* every sample: the +Inf bucket */
    double sum;                          /* seconds, for the mean */
} tolk_prom_hist_t;

/* Count one sample of seconds (a negative one counts as 0: a clock that
   stepped must not make the buckets lie about order). */
void tolk_prom_hist_observe(tolk_prom_hist_t *self, double seconds);

/* The same from a duration in nanoseconds. */
void tolk_prom_hist_observe_ns(tolk_prom_hist_t *self, int64_t ns);

#endif
