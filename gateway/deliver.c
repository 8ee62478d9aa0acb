/*  deliver.c -- BIND, SEND and PUBLISH from the workers; see deliver.h.

    A final in a listener's language goes through catchup.c (it may be held
    while the listener's history is on its way, or dropped as a duplicate);
    everything else is queued as it comes. A session's broadcast state rides
    on BIND and PUBLISH (the STATE flag), so the speaker's audio is dropped
    here while paused or muted, in the order the speaker sees.
*/
#include "deliver.h"
#include "bridge.h"
#include "catchup.h"
#include "index.h"
#include "outq.h"

#include <string.h>

/* Whether member c is in the audience of a PUBLISH. */
static bool s_in_audience(const gw_conn_t *c, const tolk_envelope_t *env, bool speech)
{
    switch (env->audience) {
        case TOLK_AUDIENCE_ALL:
            return true;
        case TOLK_AUDIENCE_LISTENERS:
            return c->role == TOLK_ROLE_LISTENER;
        case TOLK_AUDIENCE_SPEAKER:
            return c->role == TOLK_ROLE_SPEAKER;
        case TOLK_AUDIENCE_LANGUAGE:
            return c->role == TOLK_ROLE_LISTENER && strcmp(c->lang, env->lang) == 0 &&
                   (!speech || c->hears);
        default:
            return false;
    }
}

/* Deliver a PUBLISH to the local members of its session. */
static void s_publish(gateway_t *gw, const tolk_envelope_t *env)
{
    gw_session_t *s = index_session(gw, env->session);
    if (!s)
        return;
    if (env->flags & TOLK_FLAG_STATE)
        s->audio_off = (env->flags & TOLK_FLAG_AUDIO_OFF) != 0;
    bool speech = (env->flags & TOLK_FLAG_SPEECH) != 0;
    gw_msg_t *m = msg_new(env->payload, env->payload_len, speech);
    if (!m)
        return;
    m->partial = (env->flags & TOLK_FLAG_PARTIAL) != 0;
    /* a final in a listener's language: catch-up order and de-duplication */
    bool final = env->audience == TOLK_AUDIENCE_LANGUAGE && env->seq && !m->partial && !speech;
    gw_conn_t *c = s->members;
    while (c) {
        gw_conn_t *next = c->snext; /* c may leave the session below */
        bool to = s_in_audience(c, env, speech);
        if (to && m->partial && c->catchup_pending)
            to = false; /* a newer partial follows the history */
        if (to) {
            if (final)
                catchup_final(gw, c, m, env->seq);
            else if (env->payload_len) {
                conn_send(gw, c, m);
                gw->speech_frames += speech;
            }
            if (env->close_code)
                conn_close_after(c, (int)env->close_code);
            if (env->flags & TOLK_FLAG_UNBIND)
                index_unbind(gw, c);
        }
        c = next;
    }
    msg_release(&m);
}

/* A worker spoke about a connection that is gone: tell it, so state that
   was written for it (a session it just created) is cleaned up. */
static void s_gone(gateway_t *gw, const tolk_envelope_t *in)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_DISCONNECT);
    env.conn = in->conn;
    tolk_envelope_set_str(env.session, sizeof env.session, in->session);
    env.role = in->role;
    tolk_envelope_set_str(env.lang, sizeof env.lang, in->lang);
    bridge_route(gw, TOLK_WORKER_CONTROL, in->session[0] ? in->session : "none", &env);
}

/* The listener's spoken-translation bit, when the envelope sets it. */
static void s_speech_bit(gw_conn_t *c, const tolk_envelope_t *env)
{
    if (env->flags & TOLK_FLAG_SPEECH_SET)
        c->hears = (env->flags & TOLK_FLAG_SPEECH_ON) != 0;
}

static void s_bind(gateway_t *gw, gw_conn_t *c, const tolk_envelope_t *env)
{
    if (!c) {
        s_gone(gw, env);
        return;
    }
    c->connecting = false;
    index_bind(gw, c, env->session, (tolk_role_t)env->role, env->lang);
    if (c->sess && (env->flags & TOLK_FLAG_STATE))
        c->sess->audio_off = (env->flags & TOLK_FLAG_AUDIO_OFF) != 0;
    s_speech_bit(c, env);
    if (c->bound && (env->flags & TOLK_FLAG_CATCHUP))
        catchup_begin(gw, c, env->seq);
    else
        catchup_reset(c);
}

static void s_send(gateway_t *gw, gw_conn_t *c, const tolk_envelope_t *env)
{
    if (!c)
        return;
    c->connecting = false;
    s_speech_bit(c, env);
    if (env->payload_len) {
        gw_msg_t *m = msg_new(env->payload, env->payload_len, false);
        if (m) {
            conn_send(gw, c, m);
            msg_release(&m);
        }
        catchup_delivered(c, env->seq); /* a caption of the catch-up, or seq 0 */
    }
    if (env->flags & TOLK_FLAG_CATCHUP_END)
        catchup_end(gw, c, env->seq);
    if (env->flags & TOLK_FLAG_UNBIND)
        index_unbind(gw, c);
    if (env->close_code)
        conn_close_after(c, (int)env->close_code);
}

void deliver_envelope(gateway_t *gw, const tolk_envelope_t *env)
{
    gw_conn_t *c = env->conn ? index_conn(gw, env->conn) : NULL;
    switch (env->kind) {
        case TOLK_KIND_BIND:
            s_bind(gw, c, env);
            break;
        case TOLK_KIND_SEND:
            s_send(gw, c, env);
            break;
        case TOLK_KIND_PUBLISH:
            s_publish(gw, env);
            break;
        default:
            break;
    }
}
