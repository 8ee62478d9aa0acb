/*  prom_hist.c -- fixed-bucket cumulative histogram; see prom_hist.h. */
#include "prom_hist.h"

const double tolk_prom_hist_bounds[TOLK_PROM_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                              0.5,   1,    2.5,   5,    10};

void tolk_prom_hist_observe(tolk_prom_hist_t *self, double seconds)
{
    if (!self)
        return;
    if (!(seconds > 0)) /* negative, zero or NaN */
        seconds = 0;
    for (size_t i = 0; i < TOLK_PROM_HIST_BUCKETS; i++)
        if (seconds <= tolk_prom_hist_bounds[i])
            self->le[i]++;
    self->count++;
    self->sum += seconds;
}

void tolk_prom_hist_observe_ns(tolk_prom_hist_t *self, int64_t ns)
{
    tolk_prom_hist_observe(self, (double)ns / 1e9);
}
