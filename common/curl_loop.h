/*  curl_loop.h -- one libcurl multi handle driven from a poll loop.

    Why: a worker is one poll loop that must never wait on the network, and
    more than one of its parts talks HTTP (the translator to APy, the second
    recognition pass to a Whisper-class server). Each owns a curl_loop: a
    multi handle driven the "multi_socket" way. libcurl says which sockets
    it wants watched (kept in a small table that tolk_curl_loop_pollitems
    hands out as zmq_pollitem_t) and when it wants to be woken (a
    deadline); tolk_curl_loop_sockets and tolk_curl_loop_timer feed back
    what poll saw, and every finished transfer goes to the owner's done
    callback, which may add new transfers (they start on the next call).
*/
#ifndef TOLK_CURL_LOOP_H
#define TOLK_CURL_LOOP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

typedef struct tolk_curl_loop_t tolk_curl_loop_t;

/* A transfer on the multi has ended with res (the easy handle is still on
   the multi: the owner removes or reuses it). */
typedef void(tolk_curl_done_fn)(void *arg, CURL *easy, CURLcode res);

/* A multi handle whose finished transfers go to done(arg, ...). NULL when
   libcurl cannot make one. */
tolk_curl_loop_t *tolk_curl_loop_new(tolk_curl_done_fn *done, void *arg);

/* Remove what is still on the multi (without calling done) and free it
   all. NULLs *self_p. */
void tolk_curl_loop_destroy(tolk_curl_loop_t **self_p);

/* The multi handle: for curl_multi_add_handle, _remove_handle, _setopt. */
CURLM *tolk_curl_loop_multi(tolk_curl_loop_t *self);

/* Fill items with the sockets libcurl wants watched (at most max);
   returns how many. */
int tolk_curl_loop_pollitems(tolk_curl_loop_t *self, zmq_pollitem_t *items, int max);

/* When libcurl wants to be woken, as a tolk_now-style monotonic ms
   deadline; -1 when it does not. */
int64_t tolk_curl_loop_due_ms(tolk_curl_loop_t *self);

/* Hand libcurl what poll saw on items (those that are not ours are
   skipped), then pass on every finished transfer. */
void tolk_curl_loop_sockets(tolk_curl_loop_t *self, const zmq_pollitem_t *items, int n);

/* When libcurl's deadline has passed, let it act on its timer and pass on
   every finished transfer. Returns whether it was due. */
bool tolk_curl_loop_timer(tolk_curl_loop_t *self);

/* Monotonic milliseconds, the clock of tolk_curl_loop_due_ms. */
int64_t tolk_curl_loop_now_ms(void);

#endif
