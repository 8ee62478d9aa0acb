/*  fuzz_statreport.c -- libFuzzer target for the status report parser.

    A status report is outside data: the gateway's /metrics and
    tolk-monitor read whatever arrives on a registered feed's port, so
    tolk_statreport_parse must never crash, read past the input (which has
    no NUL) or leak, whatever the bytes. Beyond not crashing, an accepted
    report must honour statreport.h's rules: kind and id printable words
    within their bounds, at most TOLK_STATREPORT_MAX_COUNTERS counters and
    TOLK_STATFEED_MAX_HISTS histograms with valid names, every histogram's
    cumulative buckets non-decreasing and not above its count, a finite
    sum >= 0. Each accepted report is also rendered by the gateway's
    helpers' rule (tolk_statreport_is_gauge) and looked up again by name.

    clang -g -fsanitize=fuzzer,address,undefined -Icommon $(pkg-config --cflags jansson libczmq) \
        tests/fuzz/fuzz_statreport.c common/statreport.c common/prom_hist.c \
        $(pkg-config --libs jansson) -lm -o /tmp/fuzz_statreport
    /tmp/fuzz_statreport -malloc_limit_mb=64 -rss_limit_mb=512 tests/fuzz/corpus/statreport
*/
#include "statreport.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* True for the bytes statfeed allows in a name; kept apart from
   statreport.c's own check so a loosened check there shows up here. */
static bool s_name_ok(const char *name)
{
    size_t n = strnlen(name, TOLK_STATFEED_NAME_MAX + 1);
    if (n == 0 || n > TOLK_STATFEED_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* True when s is a printable word of 1..max bytes. */
static bool s_word_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tolk_statreport_t *r = malloc(sizeof *r);
    if (!r)
        return 0;
    if (tolk_statreport_parse(r, data, size) == 0) {
        if (size > TOLK_STATREPORT_MAX_BYTES || !s_word_ok(r->kind, TOLK_STATFEED_KIND_MAX) ||
            !s_word_ok(r->id, TOLK_STATFEED_ID_MAX) ||
            r->ncounters > TOLK_STATREPORT_MAX_COUNTERS || r->nhists > TOLK_STATFEED_MAX_HISTS)
            abort();
        for (size_t i = 0; i < r->ncounters; i++) {
            if (!s_name_ok(r->counters[i].name))
                abort();
            (void)tolk_statreport_is_gauge(r->counters[i].name);
            /* names are unique, so the first one found is this one */
            if (tolk_statreport_counter(r, r->counters[i].name) != r->counters[i].value)
                abort();
        }
        for (size_t i = 0; i < r->nhists; i++) {
            const tolk_prom_hist_t *h = &r->hists[i].hist;
            if (!s_name_ok(r->hists[i].name) || !isfinite(h->sum) || h->sum < 0)
                abort();
            for (size_t b = 0; b < TOLK_PROM_HIST_BUCKETS; b++)
                if (h->le[b] > h->count || (b > 0 && h->le[b] < h->le[b - 1]))
                    abort();
        }
    }
    free(r);
    return 0;
}
