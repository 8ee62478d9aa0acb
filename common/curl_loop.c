/*  curl_loop.c -- a libcurl multi handle on a poll loop; see curl_loop.h. */
#include "curl_loop.h"

#include <stdlib.h>
#include <time.h>

/* A socket libcurl asked us to watch. */
typedef struct {
    curl_socket_t fd; /* the socket */
    int what;         /* CURL_POLL_IN, _OUT or _INOUT */
} s_sock_t;

struct tolk_curl_loop_t {
    CURLM *multi;            /* every transfer; owns the connection cache */
    tolk_curl_done_fn *done; /* the owner's handler of finished transfers */
    void *arg;               /* and its argument */
    s_sock_t *socks;         /* sockets libcurl wants watched */
    int nsocks;              /* entries used in socks */
    int socks_cap;           /* entries allocated in socks */
    int64_t due_ms;          /* libcurl's timer as a deadline; -1 when unset */
};

int64_t tolk_curl_loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CURLMOPT_SOCKETFUNCTION: keep the table of sockets to watch. */
static int s_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    tolk_curl_loop_t *self = userp;
    int i = 0;
    while (i < self->nsocks && self->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < self->nsocks)
            self->socks[i] = self->socks[--self->nsocks];
        return 0;
    }
    if (i == self->nsocks) {
        if (self->nsocks == self->socks_cap) {
            int cap = self->socks_cap ? self->socks_cap * 2 : 16;
            s_sock_t *grown = realloc(self->socks, (size_t)cap * sizeof *grown);
            if (!grown)
                return -1;
            self->socks = grown;
            self->socks_cap = cap;
        }
        self->socks[self->nsocks++].fd = fd;
    }
    self->socks[i].what = what;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl wants to be woken. */
static int s_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    tolk_curl_loop_t *self = userp;
    self->due_ms = timeout_ms < 0 ? -1 : tolk_curl_loop_now_ms() + timeout_ms;
    return 0;
}

tolk_curl_loop_t *tolk_curl_loop_new(tolk_curl_done_fn *done, void *arg)
{
    tolk_curl_loop_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->done = done;
    self->arg = arg;
    self->due_ms = -1;
    self->multi = curl_multi_init();
    if (!self->multi) {
        free(self);
        return NULL;
    }
    CURLMcode rc = curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    rc |= curl_multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    rc |= curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    rc |= curl_multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    if (rc != CURLM_OK) {
        tolk_curl_loop_destroy(&self);
        return NULL;
    }
    return self;
}

void tolk_curl_loop_destroy(tolk_curl_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_curl_loop_t *self = *self_p;
    if (self->multi)
        curl_multi_cleanup(self->multi);
    free(self->socks);
    free(self);
    *self_p = NULL;
}

CURLM *tolk_curl_loop_multi(tolk_curl_loop_t *self)
{
    return self ? self->multi : NULL;
}

int tolk_curl_loop_pollitems(tolk_curl_loop_t *self, zmq_pollitem_t *items, int max)
{
    if (!self || !items)
        return 0;
    int n = 0;
    for (int i = 0; i < self->nsocks && n < max; i++) {
        short events = 0;
        if (self->socks[i].what & CURL_POLL_IN)
            events |= ZMQ_POLLIN;
        if (self->socks[i].what & CURL_POLL_OUT)
            events |= ZMQ_POLLOUT;
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = self->socks[i].fd, .events = events};
    }
    return n;
}

int64_t tolk_curl_loop_due_ms(tolk_curl_loop_t *self)
{
    return self ? self->due_ms : -1;
}

/* Pass every finished transfer to the owner. */
static void s_drain(tolk_curl_loop_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(self->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE && self->done)
            self->done(self->arg, msg->easy_handle, msg->data.result);
}

void tolk_curl_loop_sockets(tolk_curl_loop_t *self, const zmq_pollitem_t *items, int n)
{
    if (!self)
        return;
    int running;
    for (int i = 0; items && i < n; i++) {
        if (items[i].socket || !items[i].revents)
            continue;
        int ev = 0;
        if (items[i].revents & ZMQ_POLLIN)
            ev |= CURL_CSELECT_IN;
        if (items[i].revents & ZMQ_POLLOUT)
            ev |= CURL_CSELECT_OUT;
        if (items[i].revents & ZMQ_POLLERR)
            ev |= CURL_CSELECT_ERR;
        curl_multi_socket_action(self->multi, items[i].fd, ev, &running);
    }
    s_drain(self);
}

bool tolk_curl_loop_timer(tolk_curl_loop_t *self)
{
    if (!self || self->due_ms < 0 || self->due_ms > tolk_curl_loop_now_ms())
        return false;
    int running;
    self->due_ms = -1;
    curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_drain(self);
    return true;
}
