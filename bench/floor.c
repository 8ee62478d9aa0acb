/*  floor.c -- the floor: the least a server can do to broadcast messages to
    many plain TCP sockets, to compare tolk's fan-out against.

    Why: a benchmark figure for tolk (deliveries a second, latency to the
    last listener) means little alone. This program does only the essential
    work of a caption broadcast -- read a message, write the same bytes to
    every connected socket -- with no WebSocket framing, no JSON, no Redis
    and no workers, in one thread on epoll. What tolk costs above this
    floor is the price of everything else it does.

    Protocol: frames of [u32 big-endian length][payload], length at most
    64 KB (a client that sends more is closed). Every complete frame read
    from any client is written to every connected client, the sender
    included. Each client has an output buffer bounded at 1 MB; a client
    whose unsent bytes would pass it is closed, the same policy tolk
    applies to a listener that does not read (its send queue, close 1013).

    On SIGTERM or SIGINT it prints one line,
        floor deliveries N cpu_user_s X cpu_sys_s Y
    (frames times the clients they were written or queued to, and its own
    CPU time) and exits 0.

    usage: floor --port P [--bind 127.0.0.1]
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_MAX_FRAME  (64 * 1024)   /* largest payload accepted */
#define S_OUT_BOUND  (1024 * 1024) /* unsent bytes a client may have before it is closed */
#define S_READ_BUF   (256 * 1024)  /* one read() of one client, shared by all */
#define S_EVENTS     512           /* epoll events taken per wait */
#define S_HEADER_LEN 4             /* the length prefix */

/* One connected client. Buffers are allocated only when needed: most
   clients never send, and most writes complete at once. */
typedef struct {
    int fd;         /* socket; -1 once closed */
    int slot;       /* index in s_live, so a close is O(1) */
    bool dead;      /* closed during this batch of events; freed after it */
    bool want_out;  /* EPOLLOUT is registered: output is pending */
    char *in;       /* a partial frame left over from the last read */
    size_t in_len;  /* its length */
    size_t in_cap;  /* its capacity */
    char *out;      /* bytes accepted for this client but not yet written */
    size_t out_off; /* first unwritten byte in out */
    size_t out_len; /* end of the unwritten bytes in out */
    size_t out_cap; /* capacity of out */
} s_client_t;

static s_client_t **s_live;          /* connected clients, dense, for the broadcast loop */
static size_t s_nlive;               /* how many */
static size_t s_live_cap;            /* capacity of s_live */
static s_client_t **s_dead;          /* clients closed during a batch, freed after it */
static size_t s_ndead;               /* how many */
static size_t s_dead_cap;            /* capacity of s_dead */
static int s_epoll = -1;             /* the one epoll instance */
static uint64_t s_deliveries;        /* frames times clients they went to */
static volatile sig_atomic_t s_stop; /* set by SIGTERM/SIGINT */
static char s_rbuf[S_READ_BUF];      /* shared read buffer */

/* The signal handler: only a flag, the loop does the rest. */
static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* Raise the open-file limit to its hard limit: one fd per client. */
static void s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Register or change what epoll reports for c: input always, output only
   while bytes are pending (level-triggered, so no event is lost). */
static void s_watch(s_client_t *c, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(s_epoll, op, c->fd, &ev);
}

/* Close c now (socket, epoll, live list); its memory is freed after the
   current batch because a pointer to it may still be in the event array. */
static void s_close(s_client_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    close(c->fd); /* also removes it from epoll */
    c->fd = -1;
    s_client_t *last = s_live[--s_nlive];
    s_live[c->slot] = last;
    last->slot = c->slot;
    if (s_ndead == s_dead_cap) {
        s_dead_cap = s_dead_cap ? s_dead_cap * 2 : 64;
        s_dead = realloc(s_dead, s_dead_cap * sizeof *s_dead);
        if (!s_dead) {
            perror("floor: realloc");
            exit(1);
        }
    }
    s_dead[s_ndead++] = c;
}

/* Free the clients closed during the batch that just ended. */
static void s_reap(void)
{
    for (size_t i = 0; i < s_ndead; i++) {
        free(s_dead[i]->in);
        free(s_dead[i]->out);
        free(s_dead[i]);
    }
    s_ndead = 0;
}

/* Keep bytes that could not be written yet; false when c would pass the
   bound (the caller closes it). */
static bool s_queue(s_client_t *c, const char *data, size_t len)
{
    size_t pending = c->out_len - c->out_off;
    if (pending + len > S_OUT_BOUND)
        return false;
    if (c->out_off > 0 && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, pending); /* slide down before growing */
        c->out_off = 0;
        c->out_len = pending;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            return false;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (!c->want_out) {
        c->want_out = true;
        s_watch(c, EPOLL_CTL_MOD);
    }
    return true;
}

/* Write data to c: at once when nothing is pending, else behind what is. */
static void s_send(s_client_t *c, const char *data, size_t len)
{
    if (c->out_len == c->out_off) {
        ssize_t n = write(c->fd, data, len);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                s_close(c);
                return;
            }
            n = 0;
        }
        data += n;
        len -= (size_t)n;
        if (len == 0)
            return;
    }
    if (!s_queue(c, data, len))
        s_close(c);
}

/* Write len bytes of whole frames to every connected client. */
static void s_broadcast(const char *data, size_t len, uint64_t frames)
{
    /* s_close swaps the last client into the closed one's slot: walk from
       the end so a close never skips or repeats anyone */
    for (size_t i = s_nlive; i-- > 0;) {
        s_client_t *c = s_live[i];
        s_send(c, data, len);
        if (!c->dead)
            s_deliveries += frames;
    }
}

/* Length of the whole frames at the start of buf[0..len), and how many;
   -1 when a frame announces more than S_MAX_FRAME. */
static ssize_t s_whole_frames(const char *buf, size_t len, uint64_t *frames)
{
    size_t off = 0;
    *frames = 0;
    while (len - off >= S_HEADER_LEN) {
        const unsigned char *h = (const unsigned char *)buf + off;
        uint32_t flen = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (flen > S_MAX_FRAME)
            return -1;
        if (len - off - S_HEADER_LEN < flen)
            break;
        off += S_HEADER_LEN + flen;
        (*frames)++;
    }
    return (ssize_t)off;
}

/* Keep the tail of a read that is not a whole frame yet. */
static bool s_keep_partial(s_client_t *c, const char *data, size_t len)
{
    if (len > c->in_cap) {
        char *p = realloc(c->in, len);
        if (!p)
            return false;
        c->in = p;
        c->in_cap = len;
    }
    memmove(c->in, data, len);
    c->in_len = len;
    return true;
}

/* Input on c: read once, broadcast every whole frame, keep the rest. */
static void s_readable(s_client_t *c)
{
    size_t have = 0;
    if (c->in_len > 0) { /* a partial frame from before goes first */
        memcpy(s_rbuf, c->in, c->in_len);
        have = c->in_len;
        c->in_len = 0;
    }
    ssize_t n = read(c->fd, s_rbuf + have, sizeof s_rbuf - have);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s_close(c);
        return;
    }
    if (n > 0)
        have += (size_t)n;
    uint64_t frames;
    ssize_t whole = s_whole_frames(s_rbuf, have, &frames);
    if (whole < 0) {
        s_close(c);
        return;
    }
    if (frames > 0)
        s_broadcast(s_rbuf, (size_t)whole, frames);
    if (!c->dead && (size_t)whole < have &&
        !s_keep_partial(c, s_rbuf + whole, have - (size_t)whole))
        s_close(c);
}

/* Output possible on c: write what is pending; stop watching once empty. */
static void s_writable(s_client_t *c)
{
    size_t pending = c->out_len - c->out_off;
    ssize_t n = write(c->fd, c->out + c->out_off, pending);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            s_close(c);
        return;
    }
    c->out_off += (size_t)n;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        c->want_out = false;
        s_watch(c, EPOLL_CTL_MOD);
    }
}

/* Accept every waiting connection. */
static void s_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "floor: out of file descriptors at %zu clients\n", s_nlive);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* latency, as tolk */
        s_client_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        if (s_nlive == s_live_cap) {
            s_live_cap = s_live_cap ? s_live_cap * 2 : 1024;
            s_client_t **p = realloc(s_live, s_live_cap * sizeof *p);
            if (!p) {
                perror("floor: realloc");
                exit(1);
            }
            s_live = p;
        }
        c->fd = fd;
        c->slot = (int)s_nlive;
        s_live[s_nlive++] = c;
        s_watch(c, EPOLL_CTL_ADD);
    }
}

/* A listening socket on addr:port, non-blocking. */
static int s_listen(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "floor: bad address %s\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "floor: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Print the one result line. */
static void s_report(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("floor deliveries %llu cpu_user_s %.3f cpu_sys_s %.3f\n",
           (unsigned long long)s_deliveries, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    fflush(stdout);
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: floor --port P [--bind ADDR]\n"
            "A plain TCP broadcast server: every [u32 BE length][payload] frame read from any\n"
            "client is written to every client. SIGTERM/SIGINT prints the deliveries and CPU.\n\n"
            "  --port P      port to listen on\n"
            "  --bind ADDR   IPv4 address to listen on [127.0.0.1]\n");
}

int main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1";
    int port = 0;
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"bind", required_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
            case 'p':
                port = atoi(optarg);
                break;
            case 'b':
                bind_addr = optarg;
                break;
            case 'h':
                s_usage(stdout);
                return 0;
            default:
                s_usage(stderr);
                return 2;
        }
    }
    if (port <= 0 || port > 65535 || optind < argc) {
        s_usage(stderr);
        return 2;
    }
    s_raise_nofile();
    struct sigaction sa = {.sa_handler = s_on_signal}; /* no SA_RESTART: epoll_wait returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = s_listen(bind_addr, port);
    if (lfd < 0)
        return 1;
    s_epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    epoll_ctl(s_epoll, EPOLL_CTL_ADD, lfd, &lev);

    struct epoll_event evs[S_EVENTS];
    while (!s_stop) {
        int n = epoll_wait(s_epoll, evs, S_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("floor: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            s_client_t *c = evs[i].data.ptr;
            if (!c) {
                s_accept(lfd);
                continue;
            }
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                s_readable(c);
            if (!c->dead && (evs[i].events & EPOLLOUT) && c->want_out)
                s_writable(c);
        }
        s_reap();
    }
    s_report();
    for (size_t i = 0; i < s_nlive; i++) {
        close(s_live[i]->fd);
        free(s_live[i]->in);
        free(s_live[i]->out);
        free(s_live[i]);
    }
    free(s_live);
    free(s_dead);
    close(lfd);
    close(s_epoll);
    return 0;
}
