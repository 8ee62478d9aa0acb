/*  catchup.c -- history first, then live finals; see catchup.h.

    The held finals sit in a small array sorted at release (there are at
    most GW_HOLD_MAX); a timer per connection gives up on a history that
    does not come.
*/
#include "catchup.h"
#include "bridge.h"
#include "outq.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Deliver one final and remember its seq. */
static void s_deliver(gateway_t *gw, gw_conn_t *c, gw_msg_t *m, uint64_t seq)
{
    conn_send(gw, c, m);
    catchup_delivered(c, seq);
}

/* Send what was held, in seq order, skipping what the history covered. */
static void s_release(gateway_t *gw, gw_conn_t *c)
{
    lws_sul_cancel(&c->catchup_sul);
    c->catchup_pending = false;
    gw_hold_t *h = c->hold;
    /* a handful at most: insertion sort by seq */
    for (int i = 1; i < c->nheld; i++)
        for (int j = i; j > 0 && h->seq[j - 1] > h->seq[j]; j--) {
            gw_msg_t *m = h->msg[j];
            uint64_t s = h->seq[j];
            h->msg[j] = h->msg[j - 1];
            h->seq[j] = h->seq[j - 1];
            h->msg[j - 1] = m;
            h->seq[j - 1] = s;
        }
    for (int i = 0; i < c->nheld; i++) {
        if (h->seq[i] > c->final_seq)
            s_deliver(gw, c, h->msg[i], h->seq[i]);
        else
            gw->finals_deduplicated++;
        msg_release(&h->msg[i]);
    }
    c->nheld = 0;
    free(c->hold);
    c->hold = NULL;
}

/* The history did not come in time (no control worker, Redis away): what
   is held goes out rather than wait for ever. */
static void s_timeout(lws_sorted_usec_list_t *sul)
{
    gw_conn_t *c = lws_container_of(sul, gw_conn_t, catchup_sul);
    tolk_warn("catchup", c->id_hash, "no history in time, releasing the live captions");
    s_release(gateway_of(c->wsi), c);
}

void catchup_begin(gateway_t *gw, gw_conn_t *c, uint64_t after)
{
    catchup_reset(c);
    c->final_seq = after ? after - 1 : 0;
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_CATCHUP);
    env.conn = c->id;
    tolk_envelope_set_str(env.session, sizeof env.session, c->session);
    tolk_envelope_set_str(env.lang, sizeof env.lang, c->lang);
    env.role = c->role;
    env.seq = after;
    if (bridge_route(gw, TOLK_WORKER_CONTROL, c->session, &env) != 0)
        return; /* no control worker: live captions flow unheld */
    c->catchup_pending = true;
    lws_sul_schedule(gw->lws, 0, &c->catchup_sul, s_timeout, GW_CATCHUP_WAIT_US);
    gw->catchups++;
}

void catchup_final(gateway_t *gw, gw_conn_t *c, gw_msg_t *m, uint64_t seq)
{
    if (!c->catchup_pending) {
        if (seq && seq <= c->final_seq) {
            gw->finals_deduplicated++;
            return;
        }
        s_deliver(gw, c, m, seq);
        return;
    }
    if (c->nheld == GW_HOLD_MAX) {
        /* a burst longer than any history read: stop waiting */
        s_release(gw, c);
        catchup_final(gw, c, m, seq);
        return;
    }
    if (!c->hold && !(c->hold = malloc(sizeof *c->hold))) {
        /* out of memory: this final goes out now, unheld, rather than be lost */
        s_release(gw, c);
        catchup_final(gw, c, m, seq);
        return;
    }
    m->refs++;
    c->hold->msg[c->nheld] = m;
    c->hold->seq[c->nheld] = seq;
    c->nheld++;
}

void catchup_delivered(gw_conn_t *c, uint64_t seq)
{
    if (seq > c->final_seq)
        c->final_seq = seq;
}

void catchup_end(gateway_t *gw, gw_conn_t *c, uint64_t seq)
{
    catchup_delivered(c, seq);
    if (c->catchup_pending)
        s_release(gw, c);
}

void catchup_reset(gw_conn_t *c)
{
    lws_sul_cancel(&c->catchup_sul);
    for (int i = 0; i < c->nheld; i++)
        msg_release(&c->hold->msg[i]);
    c->nheld = 0;
    free(c->hold);
    c->hold = NULL;
    c->catchup_pending = false;
    c->final_seq = 0;
}
