/*  outq.c -- per-connection bounded send queues of shared messages; see
    outq.h.
*/
#include "outq.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

gw_msg_t *msg_new(const void *data, size_t len, bool binary)
{
    gw_msg_t *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    m->binary = binary;
    m->partial = false;
    memcpy(m->buf + LWS_PRE, data, len);
    return m;
}

void msg_release(gw_msg_t **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    if (--(*msg_p)->refs == 0)
        free(*msg_p);
    *msg_p = NULL;
}

/* Make room for one more message: double the ring (from GW_OUTQ_MIN), keeping
   the order; -1 when out of memory. The ring only grows while a listener is
   behind, so a connection that keeps up holds a few slots at most. */
static int s_grow(gw_conn_t *c)
{
    int cap = c->qcap ? c->qcap * 2 : GW_OUTQ_MIN;
    if (cap > GW_OUTQ_MAX)
        cap = GW_OUTQ_MAX;
    gw_msg_t **q = malloc((size_t)cap * sizeof *q);
    if (!q)
        return -1;
    for (int i = 0; i < c->qlen; i++)
        q[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = q;
    c->qcap = cap;
    c->qhead = 0;
    return 0;
}

int conn_send(gateway_t *gw, gw_conn_t *c, gw_msg_t *msg)
{
    /* a connection being closed takes nothing more: what comes after the
       decision would only hold the close up (or refill a slow one's queue) */
    if (!c->wsi || c->closing || c->close_code)
        return 0;
    if (c->qlen == GW_OUTQ_MAX) {
        tolk_warn("send", c->id_hash, "send queue full, closing the slow connection");
        gw->errors++;
        gw->slow_closed++;
        conn_clear_queue(c);
        conn_close_after(c, 1013 /* try again later */);
        /* a reader that stopped never makes the socket writable, so the
           close frame may never go: lws drops the connection if it has not
           gone in GW_SLOW_KILL_S */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, GW_SLOW_KILL_S);
        return -1;
    }
    if (msg->partial && c->qlen) {
        /* a newer partial replaces an unsent one at the tail: the listener
           gets the latest text, never a backlog of stale ones; anything
           else (a final, a notification) behind it keeps the order */
        gw_msg_t **tail = &c->q[(c->qhead + c->qlen - 1) % c->qcap];
        if ((*tail)->partial) {
            msg_release(tail);
            msg->refs++;
            *tail = msg;
            gw->partials_replaced++;
            return 0;
        }
    }
    if (c->qlen == c->qcap && s_grow(c) != 0) {
        tolk_error("send", c->id_hash, "out of memory for the send queue, closing");
        gw->errors++;
        conn_clear_queue(c);
        conn_close_after(c, 1011 /* internal error */);
        return -1;
    }
    msg->refs++;
    c->q[(c->qhead + c->qlen) % c->qcap] = msg;
    c->qlen++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int conn_send_text(gateway_t *gw, gw_conn_t *c, const char *json)
{
    gw_msg_t *m = msg_new(json, strlen(json), false);
    if (!m)
        return -1;
    int rc = conn_send(gw, c, m);
    msg_release(&m);
    return rc;
}

/* Escape s into a JSON string body (s is ours: short and ASCII). */
static void s_json_escape(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 2 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[j++] = '\\';
        out[j++] = (unsigned char)*s < 0x20 ? ' ' : *s;
    }
    out[j] = 0;
}

void conn_error(gateway_t *gw, gw_conn_t *c, int status, const char *code, const char *message,
                const char *action, int retry_after, bool close)
{
    char msg[256], act[80], json[600], extra[120] = "";
    s_json_escape(msg, sizeof msg, message);
    if (action) {
        s_json_escape(act, sizeof act, action);
        snprintf(extra, sizeof extra, ",\"action\":\"%s\"", act);
    }
    if (retry_after > 0) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, ",\"retryAfter\":%d", retry_after);
    }
    snprintf(json, sizeof json,
             "{\"type\":\"error\",\"code\":\"%s\",\"status\":%d,\"message\":\"%s\"%s,"
             "\"timestamp\":%lld}",
             code, status, msg, extra, (long long)tolk_now_ms());
    gw->errors++;
    conn_send_text(gw, c, json);
    if (close)
        conn_close_after(c, 4000 + status);
}

void conn_close_after(gw_conn_t *c, int code)
{
    if (!c->wsi || c->close_code)
        return;
    c->close_code = code;
    lws_callback_on_writable(c->wsi);
}

void conn_clear_queue(gw_conn_t *c)
{
    while (c->qlen) {
        msg_release(&c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    c->q = NULL;
    c->qcap = 0;
    c->qhead = 0;
}

int conn_write_next(gateway_t *gw, gw_conn_t *c)
{
    if (c->qlen) {
        gw_msg_t *m = c->q[c->qhead];
        c->q[c->qhead] = NULL;
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        if (c->qlen == 0 && c->qcap > GW_OUTQ_MIN)
            conn_clear_queue(c); /* a ring grown for a backlog is given back once drained */
        int n = lws_write(c->wsi, m->buf + LWS_PRE, m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        msg_release(&m);
        if (n < 0)
            return -1;
        gw->messages_out++;
        if (c->qlen || c->close_code)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->close_code) {
        c->closing = true;
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, NULL, 0);
        return -1;
    }
    return 0;
}
