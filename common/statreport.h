/*  statreport.h -- one status report (statfeed.h's message body) parsed
    into a bounded plain struct, and what its names mean to a scraper.

    Why here: tolk-monitor and the gateway's /metrics both read the status
    feeds of every process, and a report is outside data (any process, or
    anything else on a registered port, can send one), so it is checked
    once, in one place, and fuzzed (tests/fuzz/fuzz_statreport.c). What is
    accepted: a JSON object of at most TOLK_STATREPORT_MAX_BYTES with kind
    and id (printable words within statfeed's bounds), integer pid,
    timestamp and uptime_s, a counters object of at most
    TOLK_STATREPORT_MAX_COUNTERS integer values under statfeed's name rules,
    and optionally a histograms object of at most TOLK_STATFEED_MAX_HISTS
    entries, each with exactly TOLK_PROM_HIST_BUCKETS non-decreasing
    cumulative counts not above its count and a finite sum >= 0. Anything
    else rejects the whole report: a half-believed report would be worse
    than none.
*/
#ifndef TOLK_STATREPORT_H
#define TOLK_STATREPORT_H

#include "prom_hist.h"
#include "statfeed.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest report accepted (a full 64-counter report is ~4 KB). */
#define TOLK_STATREPORT_MAX_BYTES 65536
/* Most counters in one report: statfeed's table plus its dropped_counters. */
#define TOLK_STATREPORT_MAX_COUNTERS (TOLK_STATFEED_MAX_COUNTERS + 1)
/* Longest endpoint a registry may point a reader at. */
#define TOLK_STATREPORT_ENDPOINT_MAX 255

/* One counter or gauge as reported. */
typedef struct {
    char name[TOLK_STATFEED_NAME_MAX + 1];
    int64_t value;
} tolk_statreport_counter_t;

/* One histogram as reported. */
typedef struct {
    char name[TOLK_STATFEED_NAME_MAX + 1];
    tolk_prom_hist_t hist;
} tolk_statreport_hist_t;

/* A parsed report: fixed size, no pointers, safe to copy. */
typedef struct {
    char kind[TOLK_STATFEED_KIND_MAX + 1]; /* gateway, control, status, audio, sweeper */
    char id[TOLK_STATFEED_ID_MAX + 1];     /* the process's unique feed id */
    int64_t pid;                           /* a new pid means a restart */
    int64_t timestamp;                     /* publisher's wall clock, ms */
    int64_t uptime_s;                      /* as the process reported it */
    tolk_statreport_counter_t counters[TOLK_STATREPORT_MAX_COUNTERS];
    size_t ncounters;
    tolk_statreport_hist_t hists[TOLK_STATFEED_MAX_HISTS];
    size_t nhists;
} tolk_statreport_t;

/* Parse body (len bytes, not NUL-terminated) into out. Returns 0, or -1
   when the report is rejected (out is then unspecified). */
int tolk_statreport_parse(tolk_statreport_t *out, const void *body, size_t len);

/* The value of counter name in r, 0 when absent. */
int64_t tolk_statreport_counter(const tolk_statreport_t *r, const char *name);

/* Whether a feed name is a gauge (a level that goes up and down, such as
   connections or sessions) rather than a counter (a running total, which
   /metrics renders with _total). The one table of that distinction. */
bool tolk_statreport_is_gauge(const char *name);

/* True when s is a non-empty printable ASCII word (no spaces) of at most
   max bytes: statfeed's rule for kinds and ids. */
bool tolk_statreport_valid_word(const char *s, size_t max);

/* True when name fits statfeed's counter name rule: 1 to
   TOLK_STATFEED_NAME_MAX bytes of [A-Za-z0-9_.-]. */
bool tolk_statreport_valid_name(const char *name);

/* True when an endpoint read from the registry is one a reader may
   connect to: tcp:// or ipc://, a printable word within
   TOLK_STATREPORT_ENDPOINT_MAX bytes. */
bool tolk_statreport_valid_endpoint(const char *endpoint);

#endif
