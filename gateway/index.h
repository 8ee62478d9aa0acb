/*  index.h -- the gateway's own index of connections and session members.

    Workers address a connection by id, or a whole session; the gateway
    resolves both locally, so a worker never loops over listeners and a
    notification crosses ZeroMQ once per gateway, not once per listener.
*/
#ifndef TOLK_GW_INDEX_H
#define TOLK_GW_INDEX_H

#include "gateway.h"

/* Find c by its id from now on. */
void index_add_conn(gateway_t *gw, gw_conn_t *c);

/* Forget c (unbinding it first). */
void index_remove_conn(gateway_t *gw, gw_conn_t *c);

/* The connection with this id, or NULL when it is gone. */
gw_conn_t *index_conn(gateway_t *gw, uint64_t id);

/* Make c a member of session with role and lang (leaving another session
   first); the session's entry is made with its first member. */
void index_bind(gateway_t *gw, gw_conn_t *c, const char *session, tolk_role_t role,
                const char *lang);

/* Take c out of its session; the entry goes with its last member. */
void index_unbind(gateway_t *gw, gw_conn_t *c);

/* The local members of session id, or NULL when none is here. */
gw_session_t *index_session(gateway_t *gw, const char *id);

#endif
