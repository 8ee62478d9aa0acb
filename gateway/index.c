/*  index.c -- connections by id and session members; see index.h.

    Connections are found by their id as a decimal string in a zhashx;
    a session's members are a doubly linked list through the connections,
    so binding and unbinding are O(1).
*/
#include "index.h"

#include <stdio.h>
#include <string.h>

static void s_key(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%llu", (unsigned long long)id);
}

void index_add_conn(gateway_t *gw, gw_conn_t *c)
{
    char key[24];
    s_key(c->id, key, sizeof key);
    zhashx_insert(gw->conns, key, c);
}

void index_remove_conn(gateway_t *gw, gw_conn_t *c)
{
    char key[24];
    s_key(c->id, key, sizeof key);
    index_unbind(gw, c);
    zhashx_delete(gw->conns, key);
}

gw_conn_t *index_conn(gateway_t *gw, uint64_t id)
{
    char key[24];
    s_key(id, key, sizeof key);
    return zhashx_lookup(gw->conns, key);
}

gw_session_t *index_session(gateway_t *gw, const char *id)
{
    return zhashx_lookup(gw->sessions, id);
}

void index_bind(gateway_t *gw, gw_conn_t *c, const char *session, tolk_role_t role,
                const char *lang)
{
    if (c->bound && strcmp(c->session, session) != 0)
        index_unbind(gw, c);
    c->role = role;
    snprintf(c->lang, sizeof c->lang, "%s", lang);
    if (c->bound)
        return;
    gw_session_t *s = zhashx_lookup(gw->sessions, session);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return;
        snprintf(s->id, sizeof s->id, "%s", session);
        zhashx_insert(gw->sessions, session, s);
        gw->sessions_local++;
    }
    snprintf(c->session, sizeof c->session, "%s", session);
    c->sess = s;
    c->sprev = NULL;
    c->snext = s->members;
    if (s->members)
        s->members->sprev = c;
    s->members = c;
    s->count++;
    c->bound = true;
}

void index_unbind(gateway_t *gw, gw_conn_t *c)
{
    if (!c->bound)
        return;
    gw_session_t *s = c->sess;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        s->members = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->snext = c->sprev = NULL;
    c->sess = NULL;
    c->bound = false;
    if (--s->count == 0) {
        zhashx_delete(gw->sessions, s->id);
        free(s);
        gw->sessions_local--;
    }
}
