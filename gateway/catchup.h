/*  catchup.h -- a listener's missed captions, then its live ones, each seq
    exactly once and in order.

    A joining or returning listener gets its language's history from a
    control worker. Two producers race here: the audio worker publishes live
    finals, the control worker reads the history. So the gateway asks for
    the history only after it has bound the connection (every final that
    reached this gateway before the bind is already in the history it will
    read), holds the live finals that arrive meanwhile, and when the history
    is through releases those it did not cover. After that a final whose seq
    the connection already has is a duplicate and is dropped.
*/
#ifndef TOLK_GW_CATCHUP_H
#define TOLK_GW_CATCHUP_H

#include "gateway.h"

/* c was just bound with a catch-up: ask the session's control worker for
   the history after after - 1 (0: the last few) and hold c's live finals
   until it is through (or GW_CATCHUP_WAIT_US passed). */
void catchup_begin(gateway_t *gw, gw_conn_t *c, uint64_t after);

/* A live final m with seq for c: delivered, held, or dropped as a duplicate. */
void catchup_final(gateway_t *gw, gw_conn_t *c, gw_msg_t *m, uint64_t seq);

/* A caption of the history with seq went to c (as a SEND): remember it. */
void catchup_delivered(gw_conn_t *c, uint64_t seq);

/* The history is through up to seq: release what is held above it. */
void catchup_end(gateway_t *gw, gw_conn_t *c, uint64_t seq);

/* Forget any catch-up state of c (a new binding, or c closing). */
void catchup_reset(gw_conn_t *c);

#endif
