/*  feedsub.h -- one SUB socket following every registered status feed, read
    without ever blocking.

    Why: tolk-monitor and the gateway's /metrics both follow the feeds
    listed in the registry (registry_store.h's tolk:feeds), and both must
    connect new endpoints, drop vanished ones, refuse reports from ids the
    registry does not list (a process of another system on a port that a
    registered one had) and parse what arrives as outside data
    (statreport.h). The caller reads the registry its own way (the monitor
    synchronously, the gateway on its asynchronous link) and hands the
    entries to tolk_feedsub_follow; it watches tolk_feedsub_fd (ZeroMQ's
    ZMQ_FD: edge-triggered, so drain until tolk_feedsub_drain returns less
    than its budget) or polls.

    Bounds: at most the cap given to _new feeds are followed (extra
    registry entries are ignored and counted); a message above
    TOLK_STATREPORT_MAX_BYTES is refused by ZeroMQ itself (ZMQ_MAXMSGSIZE
    drops the sender's connection, which reconnects); the receive
    high-water mark keeps a few seconds of reports.
*/
#ifndef TOLK_FEEDSUB_H
#define TOLK_FEEDSUB_H

#include "registry_store.h"
#include "statreport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _tolk_feedsub_t tolk_feedsub_t;

/* What a valid report of a followed id is handed to; report is borrowed
   for the call. */
typedef void(tolk_feedsub_fn)(void *arg, const tolk_statreport_t *report);

/* A SUB socket subscribed to status reports, following nothing yet, at
   most cap feeds (1..4096). NULL on failure. */
tolk_feedsub_t *tolk_feedsub_new(size_t cap);

/* Close the socket and free it; nulls the pointer; safe on NULL. */
void tolk_feedsub_destroy(tolk_feedsub_t **self_p);

/* Follow exactly these registry entries: connect to new endpoints,
   disconnect from ones no longer listed, accept reports only from these
   ids. Entries with a bad endpoint, or past the cap, are skipped. Returns
   how many are followed. */
size_t tolk_feedsub_follow(tolk_feedsub_t *self, const tolk_registry_entry_t *entries, size_t n);

/* Registry entries skipped at the last follow (bad endpoint or past the cap). */
size_t tolk_feedsub_ignored(tolk_feedsub_t *self);

/* Whether id was in the last follow's entries. */
bool tolk_feedsub_follows(tolk_feedsub_t *self, const char *id);

/* The socket's ZMQ_FD, for an event loop's read watcher. */
int tolk_feedsub_fd(tolk_feedsub_t *self);

/* The ZeroMQ socket itself, for zmq_poll (level-triggered) in a process
   without an event loop. */
void *tolk_feedsub_socket(tolk_feedsub_t *self);

/* Read at most budget messages that are waiting, never blocking; each
   valid report of a followed id goes to fn(arg, report). Returns how many
   messages were read: budget means more may be waiting. */
int tolk_feedsub_drain(tolk_feedsub_t *self, int budget, tolk_feedsub_fn *fn, void *arg);

/* Messages dropped since creation: malformed (bad) and from an id not
   followed (foreign). */
uint64_t tolk_feedsub_bad(tolk_feedsub_t *self);
uint64_t tolk_feedsub_foreign(tolk_feedsub_t *self);

#endif
