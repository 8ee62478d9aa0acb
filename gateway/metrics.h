/*  metrics.h -- the gateway's /metrics: every tolk process's last status
    report, rendered in Prometheus's text exposition format (0.0.4).

    Why in the gateway: it already serves HTTP on a loop that never waits,
    and every process already publishes its counters on a status feed
    (statfeed.h), so any gateway can answer for the whole system without
    a new daemon. The gateway follows the feeds registered in Redis
    (feedsub.h on one SUB socket whose ZMQ_FD is an ev_io on its loop),
    reads the registry every GW_METRICS_REFRESH_S through its asynchronous
    Redis link (registry_store's tolk_registry_feeds_async), keeps each
    process's last report (at most GW_METRICS_MAX_PROCS processes, each a
    bounded statreport) and forgets a process not heard from for
    GW_METRICS_STALE_S.

    Rendering: one family per name, samples labelled process (the feed id)
    and kind. Counters are tolk_<name>_total, gauges tolk_<name> (which is
    which: statreport.c's table), histograms tolk_<name> with _bucket{le},
    _sum and _count; plus tolk_uptime_seconds per process.
*/
#ifndef TOLK_GW_METRICS_H
#define TOLK_GW_METRICS_H

#include "gateway.h"

#include <stddef.h>

#define GW_METRICS_MAX_PROCS 256 /* processes kept: a bigger registry is read in part */
#define GW_METRICS_REFRESH_S 2.0 /* registry read period */
#define GW_METRICS_STALE_S   5.0 /* a process silent this long leaves /metrics */

/* Start following the feeds on gw's loop (the first registry read goes out
   at once). Returns 0, or -1 when the socket or memory cannot be had. */
int metrics_start(gateway_t *gw);

/* Stop the watchers and free everything. Safe to call twice. */
void metrics_stop(gateway_t *gw);

/* The exposition text of every process heard from lately, malloc'd and
   NUL-terminated (*len its length), or NULL when out of memory. */
char *metrics_render(gateway_t *gw, size_t *len);

#endif
