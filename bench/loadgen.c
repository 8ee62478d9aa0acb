/*  loadgen.c -- the load generator: many WebSocket (or plain TCP)
    connections to tolk or to a peer server, latency measured open loop.

    Why: what a captioning server must prove is that a caption reaches every
    listener of a talk quickly, also when tens of thousands listen, and that
    a speaker's control (volume, pause) reaches them as fast. A closed-loop
    client (send, wait for the answer, send again) slows down with the
    server and hides exactly the queueing a loaded server causes, so every
    send here is due at a fixed time (start + k * period), is sent then or
    at once if late, and its latency is always counted from the time it was
    due. Percentiles come from log-bucketed histograms (latency_hist.h), so
    the tail is kept at 100,000 deliveries a second.

    Three modes talk to three servers, so that the same figures compare them:
    - tolk: the real system. Speakers create sessions (an HS256 token minted
      here), listeners join them; speakers send binary audio and, with
      --control-rate, setVolume messages whose volumeLevel encodes k
      (V = (k % 1000) / 1000), so a listener's volumeChanged maps back to the
      time that message was due. Captions come from the audio worker's
      load-test recogniser (asr_engine = loadtest), which ends every final
      with its emit time (CLOCK_MONOTONIC ns): caption latency is receipt
      minus that stamp, on the same machine and clock.
    - mirror: Debian's libwebsockets-test-server, whose lws-mirror-protocol
      writes every message it gets to every connection of its mirror
      instance, the sender included: the peer WebSocket server.
    - tcp: bench/floor, a minimal epoll broadcast over plain TCP with
      [u32 big-endian length][payload] frames: the floor under everything.
    In mirror and tcp modes a session's sender sends messages of
    --message-bytes at --caption-rate, each starting with its due time in ns
    as decimal digits, then '.', its session number, '.', padded with 'x'.

    Each listener's receipts go into the per-delivery histograms; the "last
    listener" figures take, per caption (or control message) of a session,
    the latency of the last of that session's live listeners to get it.
    What the speaker (sender) itself receives is only counted
    (speaker_deliveries), so every latency figure is a listener's.
    --slow makes some listeners stop reading once joined (they are left out
    of every latency figure) and counts at the end how many the server
    closed, and with which close code.

    For fault-injection tests (tests/faults/run.py), which kill tolk's
    processes while this load runs:
    - --check-seq checks every final each listener gets (catch-up ones
      included) against tolk's promise that seq counts a session's finals
      per language with no gap: duplicates, out-of-order arrivals, gaps
      (and the seqs they skip), finals of one recognition run that never
      got a seq (their segmentId numbers jump further than their seqs: a
      loss the listener cannot see), a segmentId delivered twice under two
      seqs, and for source-language finals, one from an older recognition
      run or ending earlier in the talk than one already shown, and a
      stretch of the talk between two of them (startMs after the last
      endMs by more than --talk-slack-ms) that no final covers: speech
      never captioned, such as the utterance a worker had open when it
      stopped, which no seq can show. It also keeps each listener's
      longest silence between finals. SIGUSR1 sets
      a mark (a fault was injected now): until the next mark, it measures
      per live listener how long the captions stopped and when they came
      back, and which anomalies came in that window. SIGUSR2 ends the
      measurement early, when the driver is done (--duration is then only
      an upper bound). The first anomalies of each window are described
      on stderr (session, listener, seqs, segmentIds, endMs). Figures
      per --url (connections dropped per close code, gaps, silence) tell
      the listeners of a killed gateway from the survivors.
    - With --control-rate, every setVolume a speaker sends must come back
      to it as volumeChanged, exactly once (control_sent = _answered +
      _unanswered + _cut): unanswered is no answer by the end of the
      drain, cut is sent on a connection that closed before its answer
      came (no answer can come then), repeated a second answer; with
      --check-seq per mark window too (mark<i>_control_*, each control
      in the window it was sent in), so a control worker that stops
      while it holds controls shows as lost controls in that window.
    - --speaker-refresh: a speaker whose connection drops comes back with
      refreshConnection on the next --url, as tolk's clients do, and
      streams on; the audio due while it was away is skipped (a live
      microphone does not catch up).
    - --status FILE is rewritten twice a second with the phase and each
      session's id and live listeners per --url, so a driver knows when
      the load stands and what Redis should count; --timeline FILE gets,
      per 100 ms of the run, the finals each session's listeners received.

    Details that matter for the figures:
    - lws 4.1 waits with poll(), which costs O(connections) at every wakeup
      (about 0.3 ms per call at 500 sockets here); at 20,000 connections
      that is most of a core. The default is therefore libev through lws's
      evlib plugin (--evlib ev; uv and poll can be chosen); a missing plugin
      falls back to poll().
    - --src binds each socket to a source address (lws_client_connect_info's
      iface, which lws 4.1 binds with port 0: ~28,000 ephemeral ports per
      address; tcp mode uses IP_BIND_ADDRESS_NO_PORT).
    - Speaker tokens have sub "bench-<run start, Unix s>-<session>", so that
      repeated runs stay under tolk's session_create_per_hour (10 per sub).
    - Sessions' sends are spread over one period (session i starts i/S of a
      period late), not all at the same instant.

    --procs N forks N processes before any lws context exists; each owns
    whole sessions (speaker and listeners in one process), they start the
    measurement together (the parent sends a start time once all are
    connected), and send back their counters and raw histograms over a pipe
    for the parent to merge and print. Each process is one lws context and
    one thread (or one epoll loop in tcp mode).

    Output: one figure per line, "name value" (and "name,value" rows with
    --csv FILE). Exit 0 when the run happened, however slow; 2 for bad
    options, 1 when nothing could connect.
*/
#include "jwt_check.h"
#include "latency_hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_SLOW_RCVBUF      (64 * 1024) /* a slow listener's receive buffer (the kernel doubles it) */
#define S_NS               1000000000LL
#define S_MS               1000000LL
#define S_MAX_LIST         64           /* entries of --url, --src, --lang */
#define S_CTL_RING         1000         /* control k's told apart by volumeLevel */
#define S_CAP_SLOTS        1024         /* open captions per session (hash, power of 2) */
#define S_CAP_PROBE        16           /* slots probed per caption */
#define S_TALLY            24           /* distinct keys a tally keeps */
#define S_TALLY_KEY        40           /* bytes of a tally key */
#define S_HEARTBEAT_NS     (60 * S_NS)  /* tolk closes after 120 s of client silence */
#define S_CLOSE_WAIT_NS    (1 * S_NS)   /* speakers' clean close at the end */
#define S_CONNECT_GRACE_NS (30 * S_NS)  /* beyond the ramp, for the last handshakes */
#define S_TICK_NS          (5 * S_MS)   /* longest sleep between checks */
#define S_START_DELAY_NS   (200 * S_MS) /* from "all connected" to the common start */
#define S_STAMP_DIGITS     12           /* a caption stamp: the last run this long */
#define S_PROTO            "tolk-bench" /* our local protocol handler */
#define S_MIRROR_PROTO     "lws-mirror-protocol"
#define S_RX_BUF           4096         /* lws rx buffer per connection */
#define S_MAX_FRAME        (64 * 1024)  /* tcp mode: the floor's limit */
#define S_TCP_RBUF         (256 * 1024) /* tcp mode: one read, shared */
#define S_SID_LEN          80           /* a session id, with room */
#define S_EVENTS           512          /* epoll events per wait */
#define S_MARKS            64           /* --check-seq: marks (faults) kept */
#define S_URL_FIGS         16           /* --url entries with figures of their own */
#define S_SEEN_BITS        4096 /* --check-seq: seqs a listener remembers below its highest */
#define S_RECENT           64   /* --check-seq: segmentIds a listener remembers */
#define S_STATUS_NS        (500 * S_MS) /* --status: how often the file is rewritten */
#define S_BUCKET_NS        (100 * S_MS) /* --timeline: one row per this much */
#define S_REFRESH_RETRY_NS (500 * S_MS) /* --speaker-refresh: between failed attempts */
#define S_REFRESH_TRIES    60           /* --speaker-refresh: attempts per drop */

typedef enum { S_MODE_TOLK, S_MODE_MIRROR, S_MODE_TCP } s_mode_t;

/* One server of --url. */
typedef struct {
    char host[64];    /* address to connect to */
    int port;         /* its port */
    char hosthdr[80]; /* "host:port" for the Host header */
} s_url_t;

/* What the command line asks for. */
typedef struct {
    s_mode_t mode;           /* which server and protocol */
    s_url_t url[S_MAX_LIST]; /* servers, used round-robin */
    int nurl;                /* how many */
    char *src[S_MAX_LIST];   /* source addresses to bind, round-robin; none: the kernel's */
    int nsrc;                /* how many */
    char *lang[S_MAX_LIST];  /* listeners' targetLanguage, round-robin */
    int nlang;               /* how many */
    int procs;               /* processes */
    int sessions;            /* speakers / senders */
    int listeners;           /* listeners per session */
    double ramp;             /* new connections a second, all processes together */
    double duration;         /* seconds of measurement */
    double caption_rate;     /* mirror/tcp: messages a second per sender */
    double control_rate;     /* tolk: setVolume a second per speaker */
    double audio_rate;       /* tolk: audio chunks a second per speaker */
    int chunk_bytes;         /* bytes of one audio chunk */
    int message_bytes;       /* mirror/tcp message size */
    double slow_pct;         /* percent of listeners that stop reading */
    const char *jwt_secret;  /* tolk: HS256 secret for speaker tokens */
    const char *csv;         /* also write CSV here, or NULL */
    bool quiet;              /* no progress on stderr */
    uint64_t evlib;          /* lws event loop option: 0 for poll(), or LIBEV / LIBUV */
    bool check_seq;          /* check every final's seq; marks on SIGUSR1 */
    bool speaker_refresh;    /* a dropped speaker comes back with refreshConnection */
    double outage_ms;        /* a silence after a mark longer than this is an outage */
    double drain_s;          /* after the sends: receipts still count (slow listeners read) */
    double talk_slack_ms;    /* --check-seq: a stretch of talk no final covers, longer than
                                this, is speech lost (the clocks of two workers differ a little) */
    const char *status;      /* rewrite this file with the run's state, or NULL */
    const char *timeline;    /* write finals per session per 100 ms here, or NULL */
} s_opts_t;

/* Counts per key (an error code, a close code, a connect failure), fixed
   size so that a result is plain data that crosses a pipe as it is. */
typedef struct {
    struct {
        char key[S_TALLY_KEY]; /* what was counted */
        uint64_t n;            /* how often */
    } item[S_TALLY];
    uint64_t other; /* keys that found no free item */
} s_tally_t;

/* --check-seq: what was wrong with the finals a set of listeners got (the
   whole run, one --url, or one mark's window), so a fault's damage is
   counted where and when it happened. */
typedef struct {
    int64_t finals;             /* finals checked */
    int64_t duplicates;         /* a (language, seq) the listener already had */
    int64_t out_of_order;       /* a seq below its highest that it did not have yet */
    int64_t gaps;               /* jumps in seq: a loss the listener can see */
    int64_t missed;             /* seqs jumped over, less those that came late (signed) */
    int64_t unnumbered;         /* finals of one recognition run that never got a seq */
    int64_t content_duplicates; /* a segmentId it already had, under another seq */
    int64_t run_regressions;    /* source language: a final of an older recognition run */
    int64_t time_regressions;   /* source language: a final ending before one it had */
    int64_t talk_gaps;          /* source language: talk no final covers, over --talk-slack-ms */
    int64_t talk_gap_ms;        /* and how much of the talk that was, in all */
    int64_t talk_gap_max_ms;    /* the longest stretch between two, under the slack too (a max) */
} s_seqstat_t;

/* The speakers' side of their setVolume: every one sent must come back to
   its speaker as volumeChanged, once, also when the control worker that got
   it is stopping (a rolling restart). Kept for the whole run, before the
   first mark, and per mark window, each control in the window it was sent
   in; at the end sent == answered + unanswered + cut. */
typedef struct {
    int64_t sent;       /* setVolume written */
    int64_t answered;   /* of those, whose volumeChanged reached the speaker */
    int64_t unanswered; /* of those, without an answer by the end of the drain */
    int64_t cut;        /* of those, sent on a speaker connection that closed before the answer */
    int64_t repeated;   /* a volumeChanged for a setVolume already answered */
    int64_t errors;     /* error answers to setVolume (counted where they came) */
} s_ctlstat_t;

/* --check-seq: one mark (a fault) and what its window showed, from the
   mark until the next mark or the end of the measurement. */
typedef struct {
    int64_t at_ns;          /* when the mark came (CLOCK_MONOTONIC) */
    int64_t end_ns;         /* when its window closed */
    uint64_t listeners;     /* live listeners when the window closed: the survivors */
    uint64_t never_resumed; /* of those, without a final in the window */
    uint64_t interrupted;   /* of those, with a silence over --outage-ms */
    int64_t resume_max_ns;  /* worst of the survivors: mark to captions flowing again */
    int64_t silence_max_ns; /* longest silence after the mark */
    s_seqstat_t seq;        /* anomalies that arrived in the window */
    s_ctlstat_t ctl;        /* setVolume sent in the window, and what became of them */
} s_mark_t;

/* Everything a process measured: summed, min'd or max'd across processes
   by the parent. Plain data: written to the parent's pipe as bytes. */
typedef struct {
    uint64_t planned;            /* connections this process should open */
    uint64_t established;        /* of those, ready (sessionCreated/Joined, upgrade, connect) */
    uint64_t failures;           /* never became ready */
    int64_t first_attempt_ns;    /* first connect attempt, 0 if none */
    int64_t last_ready_ns;       /* last connection that became ready */
    uint64_t deliveries;         /* captions/messages received by live non-slow listeners */
    uint64_t partials;           /* tolk partial captions (counted only) */
    uint64_t speaker_deliveries; /* captions/messages the speakers or senders got */
    uint64_t control_deliveries; /* volumeChanged received by live non-slow listeners */
    uint64_t speaker_control_deliveries; /* volumeChanged received by the speakers */
    uint64_t audio_sent;                 /* binary audio chunks written */
    uint64_t messages_sent;              /* mirror/tcp messages written */
    uint64_t sends_unsent;               /* sends due before the end that never left (backlog) */
    int64_t late_max_ns;                 /* worst lateness of any open-loop send */
    int64_t audio_late_max_ns;           /* worst lateness of an audio chunk */
    int64_t measure_start_ns;         /* CLOCK_MONOTONIC start of the measurement (the same in every
                                         process), so a driver can take CPU times over exactly it */
    int64_t measure_end_ns;           /* and its end (earlier than --duration after SIGUSR2) */
    uint64_t errors;                  /* tolk error messages received */
    uint64_t caption_last_n;          /* captions with a last-listener figure */
    uint64_t caption_last_incomplete; /* of those, not every listener got it */
    uint64_t control_last_n;          /* control messages with a last-listener figure */
    uint64_t control_last_incomplete; /* of those, not every listener got it */
    uint64_t slow;                    /* slow listeners that joined */
    uint64_t slow_closed;             /* of those, closed by the server by the end */
    uint64_t dropped;                 /* other connections closed during the run */
    s_tally_t error_codes;            /* error messages by code */
    s_tally_t connect_errors;         /* failures by reason */
    s_tally_t slow_codes;             /* slow listeners' close codes */
    s_tally_t drop_codes;             /* dropped connections' close codes */
    tolk_hist_t caption;              /* ns, per delivery */
    tolk_hist_t caption_last;         /* ns, per caption: its last listener */
    tolk_hist_t control;              /* ns, per delivery */
    tolk_hist_t control_last;         /* ns, per control message: its last listener */
    /* --check-seq and --speaker-refresh (all per non-slow listener) */
    s_seqstat_t seq;                        /* the whole run */
    s_seqstat_t premark_seq;                /* before the first mark */
    s_ctlstat_t ctl;                        /* setVolume and their answers, the whole run */
    s_ctlstat_t premark_ctl;                /* those sent before the first mark */
    s_mark_t marks[S_MARKS];                /* one per mark, in order */
    uint32_t nmarks;                        /* marks that came */
    int64_t silence_max_ns;                 /* longest silence of any listener while measuring */
    int64_t silence_end_ns;                 /* when it ended */
    int silence_url;                        /* on which --url */
    uint64_t url_listeners[S_URL_FIGS];     /* listeners that joined through each --url */
    uint64_t url_open_end[S_URL_FIGS];      /* of those, still open at the end */
    uint64_t url_dropped[S_URL_FIGS];       /* of those, closed during the run */
    s_tally_t url_drop_codes[S_URL_FIGS];   /* and how */
    s_seqstat_t url_seq[S_URL_FIGS];        /* anomalies per --url */
    int64_t url_silence_max_ns[S_URL_FIGS]; /* longest silence per --url */
    uint64_t talk_listeners;                /* listeners of the source language, live at the end */
    int64_t talk_sent_ms;                   /* the audio their speakers sent, summed over them */
    int64_t talk_uncaptioned_ms;            /* of that, what no final of theirs covers */
    int64_t talk_uncaptioned_max_ms;        /* the most one of them missed */
    int64_t talk_excess_ms;                 /* finals covering more audio than was sent */
    uint64_t speaker_refreshes;             /* speakers back with refreshConnection */
    uint64_t speaker_refresh_attempts;      /* attempts, the failed ones included */
    int64_t speaker_away_max_ns;            /* longest drop to refreshed */
} s_result_t;

typedef enum {
    S_IDLE,       /* not opened yet */
    S_CONNECTING, /* TCP/handshake under way */
    S_OPEN,       /* WebSocket up, waiting for sessionCreated/Joined */
    S_READY,      /* part of its session */
    S_GONE        /* closed or failed */
} s_state_t;

struct s_session;

/* One connection: a speaker (sender) or a listener. */
typedef struct {
    struct s_session *session;     /* the session it belongs to */
    bool speaker;                  /* the session's speaker / sender */
    bool slow;                     /* a listener that stops reading once joined */
    bool resolved;                 /* counted once as established or failed */
    bool member;                   /* counts toward its session's last-listener sets */
    bool want_hb;                  /* a heartbeat is due */
    bool want_close;               /* close cleanly at the next writable */
    bool paused;                   /* reading is off (slow listener) */
    s_state_t state;               /* where it is */
    int lang;                      /* index into --lang */
    int url;                       /* index into --url */
    int src;                       /* index into --src, -1 for none */
    int close_code;                /* the server's close code, 0 if none came */
    char why[S_TALLY_KEY];         /* why it is gone (a close code or an error), for the tallies */
    char refusal[S_TALLY_KEY];     /* error code received before it was ready */
    int64_t hb_due;                /* next heartbeat */
    struct lws *wsi;               /* lws connection, NULL when none */
    int fd;                        /* tcp mode socket, -1 when none */
    char *rx;                      /* a message (ws) or frame (tcp) in pieces so far */
    size_t rx_len, rx_cap;         /* its length and capacity */
    char *tx;                      /* tcp: bytes not written yet */
    size_t tx_off, tx_len, tx_cap; /* first unwritten, end, capacity */
    /* --speaker-refresh */
    bool refreshing;    /* the speaker is coming back with refreshConnection */
    int64_t away_since; /* when its connection dropped */
    int64_t refresh_at; /* when the next attempt opens (0: none planned) */
    int refresh_tries;  /* attempts for this drop */
    /* --check-seq: what this listener has had */
    bool have_seq;              /* a final came: last_seq is set */
    int64_t last_seq;           /* highest seq so far */
    unsigned char *seen;        /* S_SEEN_BITS bits: seq % S_SEEN_BITS had, below last_seq */
    bool have_run;              /* run and segment are set */
    uint32_t run, segment;      /* newest recognition run and its last segment */
    int64_t last_end_ms;        /* source language: latest endMs so far */
    bool have_end;              /* last_end_ms is set */
    int64_t talk_ms;            /* source language: audio its finals cover (endMs - startMs) */
    uint64_t recent[S_RECENT];  /* segmentIds (run << 32 | segment) of the last finals */
    int recent_pos;             /* next slot of recent */
    int64_t last_final_ns;      /* receipt of its last final (0: none) */
    int64_t win_first_ns;       /* first final since the current mark (0: none) */
    int64_t win_silence_ns;     /* longest silence since the current mark */
    int64_t win_silence_end_ns; /* when that silence ended */
} s_conn_t;

/* Open-loop sends of one kind: the k-th is due at start + k * period. */
typedef struct {
    int64_t start;  /* due time of k = 0 */
    int64_t period; /* ns between sends; 0: none */
    uint64_t total; /* sends due before the end of the run */
    uint64_t due;   /* sends due by now */
    uint64_t sent;  /* sends written */
} s_stream_t;

/* What became of a setVolume on the speaker's side. */
typedef enum {
    S_ANS_NONE,     /* no control in this slot */
    S_ANS_PENDING,  /* sent, its volumeChanged not back yet */
    S_ANS_ANSWERED, /* its volumeChanged reached the speaker */
    S_ANS_CUT,      /* the speaker's connection closed before the answer */
    S_ANS_LOST      /* no answer by the end of the drain, or S_CTL_RING sends later */
} s_answer_t;

/* A control message on its way: its due time and who got it. */
typedef struct {
    int64_t intended;  /* due time of the k in this slot, 0 if none sent */
    uint64_t max;      /* latest latency so far */
    uint32_t count;    /* listeners that got it */
    bool open;         /* still waiting for listeners */
    s_answer_t answer; /* the speaker's side */
    uint32_t window;   /* the mark window it was sent in (0: before the first mark) */
} s_ctl_slot_t;

/* A caption (or message) on its way, keyed by its stamp. */
typedef struct {
    int64_t stamp;  /* emit / due time: the caption's identity */
    uint64_t max;   /* latest latency so far */
    uint32_t count; /* listeners that got it */
    bool open;      /* in use */
} s_cap_slot_t;

/* One session: its speaker, its listeners and what is in flight. */
typedef struct s_session {
    int id;                 /* global session number */
    char sid[S_SID_LEN];    /* tolk's session id, once created */
    s_conn_t *speaker;      /* conns[0] */
    s_conn_t *conns;        /* speaker, then the listeners */
    int nconns;             /* 1 + listeners */
    int members;            /* live non-slow listeners: what a last-listener figure waits for */
    s_stream_t audio;       /* tolk audio chunks */
    s_stream_t ctl;         /* tolk setVolume */
    s_stream_t msg;         /* mirror/tcp messages */
    s_ctl_slot_t *ctl_ring; /* control messages by k % S_CTL_RING */
    s_cap_slot_t *caps;     /* captions in flight */
    uint32_t *timeline;     /* --timeline: finals its listeners got per 100 ms */
} s_session_t;

typedef enum {
    S_PH_CONNECT, /* opening connections at the ramp rate */
    S_PH_WAIT,    /* all resolved, waiting for the common start */
    S_PH_MEASURE, /* sending and measuring */
    S_PH_DRAIN,   /* sends stopped, slow listeners read again, late receipts count */
    S_PH_CLOSING, /* speakers close cleanly */
    S_PH_DONE     /* the loop ends */
} s_phase_t;

/* This process's whole state (single-threaded: one of it). */
static struct {
    const s_opts_t *o;          /* options */
    uint64_t evlib;             /* the lws event loop in use (o->evlib, or 0 after a fallback) */
    int child, procs;           /* which process of how many */
    int from_parent;            /* start time arrives here (-1: no parent) */
    s_session_t *sessions;      /* sessions owned here */
    int nsessions;              /* how many */
    s_conn_t **queue;           /* connections waiting for their turn on the ramp */
    size_t qhead, qtail;        /* its ends */
    size_t nconns;              /* connections planned here */
    size_t unresolved;          /* not yet established or failed */
    uint64_t opened;            /* connections opened, for round-robin */
    int64_t ramp_period;        /* ns between connects in this process */
    int64_t ramp_next;          /* when the next may open */
    int64_t connect_deadline;   /* after this, what is not ready has failed */
    s_phase_t phase;            /* where the run is */
    int64_t start;              /* common start (0: not known yet) */
    int64_t t0, t1;             /* measurement window: sends due in it count */
    int64_t phase_end;          /* end of the drain or closing phase */
    int64_t hb_next;            /* next heartbeat scan */
    s_result_t r;               /* what is measured */
    struct lws_context *ctx;    /* lws (tolk, mirror) */
    lws_sorted_usec_list_t sul; /* the tick timer */
    int ep;                     /* tcp: epoll */
    int tfd;                    /* tcp: tick timer */
    unsigned char *tx;          /* one outgoing message, LWS_PRE bytes ahead */
    size_t tx_cap;              /* its capacity after LWS_PRE */
    unsigned char *audio;       /* the audio chunk every send copies */
    size_t audio_len;           /* its length */
    char *rbuf;                 /* tcp: shared read buffer */
    bool stop;                  /* leave the service loop */
    time_t run_id;              /* makes this run's token subjects unique */
    uint32_t marks_seen;        /* --check-seq: marks taken into account so far */
    bool win_open;              /* --check-seq: the last mark's window is still open */
    int64_t status_next;        /* --status: next rewrite */
    size_t timeline_n;          /* --timeline: buckets per session */
} W;

/* Marks (SIGUSR1) as the signal handler leaves them: their times, then
   their count, which the event loop compares with W.marks_seen. */
static volatile int64_t s_mark_at[S_MARKS];
static volatile sig_atomic_t s_mark_n;
/* SIGUSR2 (with --check-seq): end the measurement now, not at --duration. */
static volatile sig_atomic_t s_end_asked;
/* The parent of --procs forwards marks to these (0 in a worker process). */
static pid_t s_mark_children[S_MAX_LIST * 4];
static volatile sig_atomic_t s_mark_nchildren;

/* --- small things --------------------------------------------------------------- */

/* CLOCK_MONOTONIC in ns: the clock the load-test recogniser stamps with. */
static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S_NS + ts.tv_nsec;
}

/* Progress and warnings on stderr, unless --quiet. */
static void s_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_say(const char *fmt, ...)
{
    if (W.o && W.o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen[%d]: ", W.child);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Count n under key (spaces become '_', so output stays one token). */
static void s_tally_add(s_tally_t *t, const char *key, uint64_t n)
{
    char k[S_TALLY_KEY];
    snprintf(k, sizeof k, "%s", key && *key ? key : "?");
    for (char *p = k; *p; p++)
        if (*p == ' ' || *p == ',' || *p == ';' || *p == ':' || (unsigned char)*p < 32)
            *p = '_';
    for (int i = 0; i < S_TALLY; i++) {
        if (t->item[i].n == 0 && t->item[i].key[0] == 0) {
            memcpy(t->item[i].key, k, sizeof k);
            t->item[i].n = n;
            return;
        }
        if (strcmp(t->item[i].key, k) == 0) {
            t->item[i].n += n;
            return;
        }
    }
    t->other += n;
}

/* Add every count of from into t. */
static void s_tally_merge(s_tally_t *t, const s_tally_t *from)
{
    for (int i = 0; i < S_TALLY && from->item[i].key[0]; i++)
        s_tally_add(t, from->item[i].key, from->item[i].n);
    t->other += from->other;
}

/* The count of key in t (0 if absent). */
static uint64_t s_tally_get(const s_tally_t *t, const char *key)
{
    for (int i = 0; i < S_TALLY && t->item[i].key[0]; i++)
        if (strcmp(t->item[i].key, key) == 0)
            return t->item[i].n;
    return 0;
}

/* "key:n;key:n" (or "none") into buf, for one output value. */
static const char *s_tally_str(const s_tally_t *t, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < S_TALLY && t->item[i].key[0] && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s:%llu", off ? ";" : "", t->item[i].key,
                                (unsigned long long)t->item[i].n);
    if (t->other && off < cap)
        snprintf(buf + off, cap - off, "%sother:%llu", off ? ";" : "",
                 (unsigned long long)t->other);
    return buf[0] ? buf : "none";
}

/* Split a comma list into up to max malloc'd strings; returns the count. */
static int s_split(const char *arg, char **out, int max)
{
    int n = 0;
    const char *p = arg;
    while (*p && n < max) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0)
            out[n++] = strndup(p, len);
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

/* --- last-listener bookkeeping ------------------------------------------------- */

/* A caption or control message whose listeners are all in (complete) or
   whose wait is over (the end of the run, or its slot is needed): its
   last listener's latency, if anyone got it, joins the histogram. */
static void s_last_done(tolk_hist_t *h, uint64_t *n, uint64_t *incomplete, uint32_t count,
                        uint64_t max, bool complete)
{
    if (count > 0) {
        tolk_hist_record(h, max);
        (*n)++;
    }
    if (!complete)
        (*incomplete)++;
}

/* Close an open control slot. */
static void s_ctl_finish(s_ctl_slot_t *e, bool complete)
{
    if (!e->open)
        return;
    e->open = false;
    s_last_done(&W.r.control_last, &W.r.control_last_n, &W.r.control_last_incomplete, e->count,
                e->max, complete);
}

/* Add d into t. */
static void s_ctlstat_add(s_ctlstat_t *t, const s_ctlstat_t *d)
{
    t->sent += d->sent;
    t->answered += d->answered;
    t->unanswered += d->unanswered;
    t->cut += d->cut;
    t->repeated += d->repeated;
    t->errors += d->errors;
}

/* What happened to a control sent in window (0: before the first mark, k:
   in mark k-1's) goes to the run and to that window. */
static void s_ctl_count(uint32_t window, const s_ctlstat_t *d)
{
    s_ctlstat_add(&W.r.ctl, d);
    s_ctlstat_add(window && window <= S_MARKS ? &W.r.marks[window - 1].ctl : &W.r.premark_ctl, d);
}

/* A pending control of the slot is settled as lost or cut. */
static void s_ctl_settle(s_ctl_slot_t *e, s_answer_t to)
{
    if (e->answer != S_ANS_PENDING)
        return;
    e->answer = to;
    s_ctl_count(e->window, &(s_ctlstat_t){.unanswered = to == S_ANS_LOST, .cut = to == S_ANS_CUT});
}

/* The speaker got the answer to the slot's control. */
static void s_ctl_answered(s_ctl_slot_t *e)
{
    if (e->answer == S_ANS_ANSWERED) {
        s_ctl_count(e->window, &(s_ctlstat_t){.repeated = 1});
        return;
    }
    /* one settled as cut or lost that comes after all is answered after all */
    s_ctlstat_t d = {.answered = 1,
                     .cut = e->answer == S_ANS_CUT ? -1 : 0,
                     .unanswered = e->answer == S_ANS_LOST ? -1 : 0};
    e->answer = S_ANS_ANSWERED;
    s_ctl_count(e->window, &d);
}

/* Close an open caption slot. */
static void s_cap_finish(s_cap_slot_t *e, bool complete)
{
    if (!e->open)
        return;
    e->open = false;
    s_last_done(&W.r.caption_last, &W.r.caption_last_n, &W.r.caption_last_incomplete, e->count,
                e->max, complete);
}

/* A listener of s got caption stamp after lat ns: count it toward the
   caption's last listener. The table is a small open hash per session; a
   caption that has to give its slot up is counted as incomplete. */
static void s_cap_seen(s_session_t *s, int64_t stamp, uint64_t lat)
{
    if (s->members <= 0)
        return;
    unsigned base = (unsigned)(((uint64_t)stamp * 0x9E3779B97F4A7C15ull) >> 40);
    s_cap_slot_t *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < S_CAP_PROBE; i++) {
        s_cap_slot_t *e = &s->caps[(base + i) & (S_CAP_SLOTS - 1)];
        if (e->open && e->stamp == stamp) {
            e->count++;
            if (lat > e->max)
                e->max = lat;
            if ((int)e->count >= s->members)
                s_cap_finish(e, true);
            return;
        }
        if (!e->open) {
            if (!free_slot)
                free_slot = e;
        } else if (!oldest || e->stamp < oldest->stamp)
            oldest = e;
    }
    if (!free_slot) {
        s_cap_finish(oldest, false);
        free_slot = oldest;
    }
    *free_slot = (s_cap_slot_t){.stamp = stamp, .max = lat, .count = 1, .open = true};
    if (s->members <= 1)
        s_cap_finish(free_slot, true);
}

/* s lost a member: what the others all have now is complete. */
static void s_session_recheck(s_session_t *s)
{
    for (int i = 0; i < S_CTL_RING; i++)
        if (s->ctl_ring[i].open && (int)s->ctl_ring[i].count >= s->members)
            s_ctl_finish(&s->ctl_ring[i], true);
    for (int i = 0; i < S_CAP_SLOTS; i++)
        if (s->caps[i].open && (int)s->caps[i].count >= s->members)
            s_cap_finish(&s->caps[i], true);
}

/* --- receipts -------------------------------------------------------------------- */

/* True while receipts count: from the start until the drain is over. */
static bool s_measuring(void)
{
    return W.phase == S_PH_MEASURE || W.phase == S_PH_DRAIN;
}

/* c got a caption (or mirror/tcp message) stamped stamp at now; from_session
   is the sender's session (-1: c's own, as in tolk; -2: unknown). Only the
   sender's own session has a last-listener set for it. Only what was emitted
   or due inside the measurement window counts. */
static void s_on_caption(s_conn_t *c, int64_t stamp, int64_t now, int from_session)
{
    if (!s_measuring() || stamp < W.t0 || stamp >= W.t1)
        return;
    if (c->speaker) {
        W.r.speaker_deliveries++;
        return;
    }
    if (!c->member)
        return;
    uint64_t lat = now > stamp ? (uint64_t)(now - stamp) : 0;
    tolk_hist_record(&W.r.caption, lat);
    W.r.deliveries++;
    if (from_session == -1 || from_session == c->session->id)
        s_cap_seen(c->session, stamp, lat);
}

/* c got volumeChanged with volumeLevel v at now: v names k % 1000, whose
   due time the session's ring holds. */
static void s_on_control(s_conn_t *c, double v, int64_t now)
{
    if (!s_measuring())
        return;
    long slot = lround(v * S_CTL_RING);
    if (slot < 0 || slot >= S_CTL_RING)
        return;
    s_ctl_slot_t *e = &c->session->ctl_ring[slot];
    if (e->intended == 0)
        return; /* not one of ours */
    if (c->speaker) {
        W.r.speaker_control_deliveries++;
        s_ctl_answered(e);
        return;
    }
    if (!c->member)
        return;
    uint64_t lat = now > e->intended ? (uint64_t)(now - e->intended) : 0;
    tolk_hist_record(&W.r.control, lat);
    W.r.control_deliveries++;
    if (e->open) {
        e->count++;
        if (lat > e->max)
            e->max = lat;
        if ((int)e->count >= c->session->members)
            s_ctl_finish(e, true);
    }
}

/* A mirror/tcp payload: "<due ns>.<session>.xxx...". */
static void s_on_stamped(s_conn_t *c, const char *p, size_t len, int64_t now)
{
    size_t i = 0;
    int64_t stamp = 0;
    while (i < len && i < 19 && p[i] >= '0' && p[i] <= '9')
        stamp = stamp * 10 + (p[i++] - '0');
    if (i == 0)
        return;
    int from = -1;
    if (i < len && p[i] == '.') {
        i++;
        from = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9' && from < 100000000)
            from = from * 10 + (p[i++] - '0');
    }
    s_on_caption(c, stamp, now, from < 0 ? -2 : from);
}

/* --- a cheap scan of tolk's compact JSON ------------------------------------------ */

/* Where the value of "key" starts in text[0..len) (past the colon and any
   blanks), or NULL. Good enough for the server's flat messages: a quoted
   key cannot occur unescaped inside a string value. */
static const char *s_json_value(const char *text, size_t len, const char *key)
{
    char pat[48];
    int plen = snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *end = text + len, *p = text;
    while (p < end && (p = memmem(p, (size_t)(end - p), pat, (size_t)plen)) != NULL) {
        const char *q = p + plen;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                q++;
            return q < end ? q : NULL;
        }
        p += plen;
    }
    return NULL;
}

/* A string value of key: its raw bytes (escapes left as they are). */
static bool s_json_string(const char *text, size_t len, const char *key, const char **s,
                          size_t *slen)
{
    const char *end = text + len;
    const char *v = s_json_value(text, len, key);
    if (!v || *v != '"')
        return false;
    const char *q = ++v;
    while (q < end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= end)
        return false;
    *s = v;
    *slen = (size_t)(q - v);
    return true;
}

/* True when key's string value equals want. */
static bool s_json_is(const char *s, size_t slen, const char *want)
{
    return slen == strlen(want) && memcmp(s, want, slen) == 0;
}

/* The last run of S_STAMP_DIGITS or more decimal digits in s[0..n): the
   load-test recogniser's emit time. -1 if none. */
static int64_t s_last_stamp(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0) {
        if (s[i - 1] < '0' || s[i - 1] > '9') {
            i--;
            continue;
        }
        size_t e = i;
        while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
            i--;
        if (e - i >= S_STAMP_DIGITS && e - i <= 18) {
            int64_t v = 0;
            for (size_t k = i; k < e; k++)
                v = v * 10 + (s[k] - '0');
            return v;
        }
    }
    return -1;
}

/* An integer value of key, into *v. */
static bool s_json_int(const char *text, size_t len, const char *key, int64_t *v)
{
    const char *p = s_json_value(text, len, key);
    if (!p || (*p != '-' && (*p < '0' || *p > '9')))
        return false;
    *v = strtoll(p, NULL, 10);
    return true;
}

/* --- --check-seq: every final, and the marks ------------------------------------- */

/* Add the counts of from into t (talk_gap_max_ms: the larger). */
static void s_seqstat_add(s_seqstat_t *t, const s_seqstat_t *from)
{
    t->finals += from->finals;
    t->duplicates += from->duplicates;
    t->out_of_order += from->out_of_order;
    t->gaps += from->gaps;
    t->missed += from->missed;
    t->unnumbered += from->unnumbered;
    t->content_duplicates += from->content_duplicates;
    t->run_regressions += from->run_regressions;
    t->time_regressions += from->time_regressions;
    t->talk_gaps += from->talk_gaps;
    t->talk_gap_ms += from->talk_gap_ms;
    if (from->talk_gap_max_ms > t->talk_gap_max_ms)
        t->talk_gap_max_ms = from->talk_gap_max_ms;
}

/* What c's final showed goes to the run, c's --url and the current mark's
   window (before the first mark: the premark counts). */
static void s_seq_commit(const s_conn_t *c, const s_seqstat_t *d)
{
    s_seqstat_add(&W.r.seq, d);
    if (c->url >= 0 && c->url < S_URL_FIGS)
        s_seqstat_add(&W.r.url_seq[c->url], d);
    s_seqstat_add(W.marks_seen ? &W.r.marks[W.marks_seen - 1].seq : &W.r.premark_seq, d);
}

/* Bit seq % S_SEEN_BITS of c's memory: get (set false) or set (set true). */
static bool s_seen_bit(s_conn_t *c, int64_t seq, bool set)
{
    size_t b = (size_t)(seq % S_SEEN_BITS);
    if (set)
        c->seen[b / 8] |= (unsigned char)(1u << (b % 8));
    return (c->seen[b / 8] >> (b % 8)) & 1;
}

/* The seq and segment checks of one final m that c got. The gateway
   already drops a final whose seq a connection had, so what is counted
   here is what reached the listener: each anomaly is a broken promise. */
static void s_seq_final(s_conn_t *c, const char *m, size_t len)
{
    int64_t seq;
    if (!s_json_int(m, len, "seq", &seq) || seq <= 0)
        return;
    if (!c->seen && !(c->seen = calloc(S_SEEN_BITS / 8, 1)))
        return;
    s_seqstat_t d = {.finals = 1};
    bool source = s_json_value(m, len, "sourceText") == NULL; /* the transcript itself */
    int64_t prev_seq = c->have_seq ? c->last_seq : 0, prev_end = c->last_end_ms;
    uint32_t prev_run = c->run, prev_seg = c->segment;
    const char *sg;
    size_t sglen;
    bool has_seg = false;
    uint32_t run = 0, seg = 0;
    if (s_json_string(m, len, "segmentId", &sg, &sglen)) { /* "<run>-<segment>" */
        char buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)(sglen < 31 ? sglen : 31), sg);
        char *dash;
        unsigned long r = strtoul(buf, &dash, 10);
        if (*dash == '-') {
            run = (uint32_t)r;
            seg = (uint32_t)strtoul(dash + 1, NULL, 10);
            has_seg = true;
        }
    }
    bool fresh = false;
    if (!c->have_seq) {
        c->have_seq = true;
        c->last_seq = seq;
        s_seen_bit(c, seq, true);
        fresh = true;
    } else if (seq > c->last_seq) {
        int64_t jump = seq - c->last_seq;
        if (jump >= S_SEEN_BITS)
            memset(c->seen, 0, S_SEEN_BITS / 8);
        else
            for (int64_t q = c->last_seq + 1; q < seq; q++) {
                size_t b = (size_t)(q % S_SEEN_BITS);
                c->seen[b / 8] &= (unsigned char)~(1u << (b % 8));
            }
        s_seen_bit(c, seq, true);
        if (jump > 1) {
            d.gaps = 1;
            d.missed = jump - 1;
        }
        /* one run numbers its finals 1, 2, 3 ...: more segments than seqs
           between two finals is a final that was never numbered */
        if (has_seg && c->have_run && run == c->run && seg > c->segment &&
            (int64_t)(seg - c->segment) > jump)
            d.unnumbered = (int64_t)(seg - c->segment) - jump;
        c->last_seq = seq;
        fresh = true;
    } else if (c->last_seq - seq >= S_SEEN_BITS || s_seen_bit(c, seq, false))
        d.duplicates = 1;
    else {
        d.out_of_order = 1; /* it fills a gap counted before */
        d.missed = -1;
        s_seen_bit(c, seq, true);
    }
    if (fresh && has_seg) {
        uint64_t key = (uint64_t)run << 32 | seg;
        for (int i = 0; i < S_RECENT; i++)
            if (c->recent[i] == key && key) {
                d.content_duplicates = 1;
                break;
            }
        c->recent[c->recent_pos] = key;
        c->recent_pos = (c->recent_pos + 1) % S_RECENT;
        if (!c->have_run || run > c->run) {
            c->have_run = true;
            c->run = run;
            c->segment = seg;
        } else if (run == c->run) {
            if (seg > c->segment)
                c->segment = seg;
        } else if (source) /* only other languages get older runs' finals (backfill) */
            d.run_regressions = 1;
    }
    /* the source language's finals tile the talk ([startMs, endMs), one
       after the other, also across workers): a stretch between two is
       speech that was never captioned, such as the utterance a worker had
       open when it stopped */
    int64_t end_ms, start_ms;
    if (fresh && source && s_json_int(m, len, "endMs", &end_ms)) {
        bool has_start = s_json_int(m, len, "startMs", &start_ms);
        if (has_start && !d.content_duplicates && end_ms > start_ms)
            c->talk_ms += end_ms - start_ms; /* audio time: no clock of a worker in it */
        if (c->have_end && has_start && start_ms > c->last_end_ms) {
            d.talk_gap_max_ms = start_ms - c->last_end_ms;
            if (d.talk_gap_max_ms > (int64_t)W.o->talk_slack_ms) {
                d.talk_gaps = 1;
                d.talk_gap_ms = d.talk_gap_max_ms;
            }
        }
        if (c->have_end && end_ms < c->last_end_ms)
            d.time_regressions = 1;
        else
            c->last_end_ms = end_ms;
        c->have_end = true;
    } else
        end_ms = -1;
    static int logged[S_MARKS + 1]; /* the first few per mark, with what a bug report needs */
    if ((d.duplicates || d.out_of_order || d.gaps || d.unnumbered || d.content_duplicates ||
         d.run_regressions || d.time_regressions || d.talk_gaps) &&
        logged[W.marks_seen] < 6) {
        logged[W.marks_seen]++;
        const char *lang = W.o->lang[c->lang];
        s_say("%s %s listener %d (url %d, %.1f s): seq %lld after %lld, segment %u-%u after "
              "%u-%u, endMs %lld after %lld:%s%s%s%s%s%s%s%s",
              c->session->sid, lang, (int)(c - c->session->conns), c->url,
              W.t0 ? (s_now() - W.t0) / 1e9 : 0.0, (long long)seq, (long long)prev_seq, run, seg,
              prev_run, prev_seg, (long long)end_ms, (long long)prev_end,
              d.duplicates ? " duplicate" : "", d.out_of_order ? " out-of-order" : "",
              d.gaps ? " gap" : "", d.unnumbered ? " unnumbered" : "",
              d.content_duplicates ? " same-segment" : "", d.run_regressions ? " older-run" : "",
              d.time_regressions ? " back-in-time" : "", d.talk_gaps ? " talk-not-captioned" : "");
    }
    s_seq_commit(c, &d);
}

/* c's silence that ends at now (a final came, or the end): the longest per
   listener, per --url and of the run, while measuring. */
static void s_silence(s_conn_t *c, int64_t now)
{
    int64_t from = c->last_final_ns > W.t0 ? c->last_final_ns : W.t0;
    int64_t gap = now - from;
    if (gap <= 0)
        return;
    if (gap > W.r.silence_max_ns) {
        W.r.silence_max_ns = gap;
        W.r.silence_end_ns = now;
        W.r.silence_url = c->url;
    }
    if (c->url >= 0 && c->url < S_URL_FIGS && gap > W.r.url_silence_max_ns[c->url])
        W.r.url_silence_max_ns[c->url] = gap;
}

/* A mark's window opens: every listener starts it afresh. */
static void s_mark_open(void)
{
    W.win_open = true;
    for (int i = 0; i < W.nsessions; i++)
        for (int k = 1; k < W.sessions[i].nconns; k++) {
            s_conn_t *c = &W.sessions[i].conns[k];
            c->win_first_ns = c->win_silence_ns = c->win_silence_end_ns = 0;
        }
}

/* The current mark's window closes at end: for every listener still live
   (the survivors of the fault), how long its captions stopped after the
   mark and when they came back. A listener whose longest silence is under
   --outage-ms was not interrupted: it resumed with its first final. */
static void s_mark_close(int64_t end)
{
    if (!W.win_open || !W.marks_seen)
        return;
    W.win_open = false;
    s_mark_t *mk = &W.r.marks[W.marks_seen - 1];
    mk->end_ns = end;
    int64_t outage = (int64_t)(W.o->outage_ms * S_MS);
    for (int i = 0; i < W.nsessions; i++)
        for (int k = 1; k < W.sessions[i].nconns; k++) {
            s_conn_t *c = &W.sessions[i].conns[k];
            if (!c->member)
                continue;
            int64_t from = c->last_final_ns > mk->at_ns ? c->last_final_ns : mk->at_ns;
            int64_t sil = c->win_silence_ns, sil_end = c->win_silence_end_ns;
            if (end - from > sil) { /* silent until the window closed */
                sil = end - from;
                sil_end = end;
            }
            int64_t resume;
            if (!c->win_first_ns) {
                mk->never_resumed++;
                resume = end - mk->at_ns;
            } else if (sil > outage) {
                mk->interrupted++;
                resume = sil_end - mk->at_ns;
            } else
                resume = c->win_first_ns - mk->at_ns;
            mk->listeners++;
            if (resume > mk->resume_max_ns)
                mk->resume_max_ns = resume;
            if (sil > mk->silence_max_ns)
                mk->silence_max_ns = sil;
        }
}

/* Take in the marks SIGUSR1 left: each closes the window before it and
   opens its own. Marks wait until the measurement runs (no captions flow
   before); one after its end has an empty window. */
static void s_marks_poll(void)
{
    if (!W.o->check_seq || W.phase < S_PH_MEASURE)
        return;
    while (W.marks_seen < (uint32_t)s_mark_n) {
        uint32_t k = W.marks_seen;
        int64_t at = s_mark_at[k];
        s_mark_close(at);
        W.r.marks[k].at_ns = at;
        W.r.marks[k].end_ns = at;
        W.marks_seen = W.r.nmarks = k + 1;
        s_say("mark %u at %.3f s", k, (at - W.t0) / 1e9);
        if (W.phase == S_PH_MEASURE && at < W.t1)
            s_mark_open();
    }
}

/* SIGUSR1: a mark, now. Async-signal-safe: a clock read and two stores
   (and, in the parent of --procs, the same signal to every worker). */
static void s_on_mark(int sig)
{
    (void)sig;
    int saved = errno;
    int n = s_mark_n;
    if (n < S_MARKS) {
        s_mark_at[n] = s_now();
        s_mark_n = n + 1;
    }
    for (int i = 0; i < s_mark_nchildren; i++)
        kill(s_mark_children[i], SIGUSR1);
    errno = saved;
}

/* SIGUSR2: the driver is done injecting faults; the measurement ends at
   the next tick (and, in the parent of --procs, in every worker). */
static void s_on_end(int sig)
{
    (void)sig;
    int saved = errno;
    s_end_asked = 1;
    for (int i = 0; i < s_mark_nchildren; i++)
        kill(s_mark_children[i], SIGUSR2);
    errno = saved;
}

/* A listener c got final m at now (catch-up ones too): the timeline, and
   with --check-seq the seq checks and the silences. */
static void s_final_seen(s_conn_t *c, const char *m, size_t len, int64_t now)
{
    if (c->slow || c->state != S_READY)
        return;
    s_session_t *s = c->session;
    if (s->timeline && s_measuring() && now >= W.t0) {
        size_t b = (size_t)((now - W.t0) / S_BUCKET_NS);
        if (b < W.timeline_n)
            s->timeline[b]++;
    }
    if (!W.o->check_seq)
        return;
    s_marks_poll();
    s_seq_final(c, m, len);
    if (W.phase == S_PH_MEASURE && now < W.t1 && c->member) {
        s_silence(c, now);
        if (W.win_open) {
            int64_t at = W.r.marks[W.marks_seen - 1].at_ns;
            int64_t from = c->last_final_ns > at ? c->last_final_ns : at;
            if (now > from && now - from > c->win_silence_ns) {
                c->win_silence_ns = now - from;
                c->win_silence_end_ns = now;
            }
            if (!c->win_first_ns && now >= at)
                c->win_first_ns = now;
        }
    }
    c->last_final_ns = now;
}

static void s_conn_ready(s_conn_t *c, int64_t now);
static void s_speaker_back(s_conn_t *c, int64_t now);
static bool s_stream_due(s_stream_t *st, int64_t now, int64_t *next);

/* One whole text message from tolk on c. */
static void s_tolk_message(s_conn_t *c, const char *m, size_t len, int64_t now)
{
    const char *type;
    size_t tlen;
    if (!s_json_string(m, len, "type", &type, &tlen))
        return;
    if (s_json_is(type, tlen, "caption")) {
        const char *v = s_json_value(m, len, "isPartial");
        if (v && *v == 't') {
            if (s_measuring() && c->member)
                W.r.partials++;
            return;
        }
        if (!c->speaker)
            s_final_seen(c, m, len, now);
        v = s_json_value(m, len, "catchUp");
        if (v && *v == 't')
            return; /* history from before the join */
        const char *s;
        size_t slen;
        if (s_json_string(m, len, "sourceText", &s, &slen) ||
            s_json_string(m, len, "text", &s, &slen)) {
            int64_t stamp = s_last_stamp(s, slen);
            if (stamp > 0)
                s_on_caption(c, stamp, now, -1);
        }
    } else if (s_json_is(type, tlen, "volumeChanged")) {
        const char *v = s_json_value(m, len, "volumeLevel");
        if (v)
            s_on_control(c, strtod(v, NULL), now);
    } else if (s_json_is(type, tlen, "sessionCreated") && c->speaker) {
        const char *s;
        size_t slen;
        if (c->state == S_OPEN && s_json_string(m, len, "sessionId", &s, &slen) &&
            slen < S_SID_LEN) {
            memcpy(c->session->sid, s, slen);
            c->session->sid[slen] = 0;
            s_conn_ready(c, now);
        }
    } else if (s_json_is(type, tlen, "sessionJoined") && !c->speaker) {
        if (c->state == S_OPEN)
            s_conn_ready(c, now);
    } else if (s_json_is(type, tlen, "connectionRefreshComplete") && c->speaker) {
        if (c->state == S_OPEN && c->refreshing)
            s_speaker_back(c, now);
    } else if (s_json_is(type, tlen, "error")) {
        const char *s;
        size_t slen;
        char code[S_TALLY_KEY] = "?";
        if (s_json_string(m, len, "code", &s, &slen))
            snprintf(code, sizeof code, "%.*s", (int)slen, s);
        W.r.errors++;
        s_tally_add(&W.r.error_codes, code, 1);
        if (c->speaker && s_measuring() && s_json_string(m, len, "action", &s, &slen) &&
            slen == 9 && memcmp(s, "setVolume", 9) == 0)
            s_ctl_count(W.marks_seen, &(s_ctlstat_t){.errors = 1});
        if (c->state != S_READY)
            snprintf(c->refusal, sizeof c->refusal, "refused_%s", code);
    }
}

/* --- connection life ---------------------------------------------------------- */

/* Queue c for the ramp. */
static void s_enqueue(s_conn_t *c, int64_t now)
{
    if (W.qhead == W.qtail && W.ramp_next < now)
        W.ramp_next = now; /* no credit is saved up while nothing waits */
    W.queue[W.qtail++] = c;
}

/* c never became ready: count it once. */
static void s_fail(s_conn_t *c, const char *why)
{
    if (c->resolved)
        return;
    c->resolved = true;
    W.unresolved--;
    W.r.failures++;
    s_tally_add(&W.r.connect_errors, why, 1);
    if (c->speaker && W.o->mode == S_MODE_TOLK) /* its listeners have no session to join */
        for (int i = 1; i < c->session->nconns; i++)
            if (c->session->conns[i].state == S_IDLE)
                s_fail(&c->session->conns[i], "no_session");
}

static void s_io_pause(s_conn_t *c, bool pause);

/* c is part of its session now. */
static void s_conn_ready(s_conn_t *c, int64_t now)
{
    if (c->resolved)
        return; /* too late: counted as failed at the deadline, and stays out of the run */
    c->state = S_READY;
    c->hb_due = now + S_HEARTBEAT_NS;
    c->resolved = true;
    W.unresolved--;
    W.r.established++;
    W.r.last_ready_ns = now;
    if (c->speaker) {
        if (W.o->mode == S_MODE_TOLK)
            for (int i = 1; i < c->session->nconns; i++)
                s_enqueue(&c->session->conns[i], now);
    } else if (c->slow) {
        W.r.slow++;
        s_io_pause(c, true);
    } else {
        c->member = true;
        c->session->members++;
        if (c->url >= 0 && c->url < S_URL_FIGS)
            W.r.url_listeners[c->url]++;
    }
}

/* Skip what st had due until now: audio that a live microphone produced
   while its connection was away is not sent late. */
static void s_stream_skip(s_stream_t *st, int64_t now)
{
    int64_t next = INT64_MAX;
    s_stream_due(st, now, &next);
    if (st->sent < st->due)
        st->sent = st->due;
}

/* --speaker-refresh: the speaker c is back (connectionRefreshComplete). */
static void s_speaker_back(s_conn_t *c, int64_t now)
{
    c->state = S_READY;
    c->refreshing = false;
    c->refresh_at = 0;
    c->hb_due = now + S_HEARTBEAT_NS;
    W.r.speaker_refreshes++;
    if (now - c->away_since > W.r.speaker_away_max_ns)
        W.r.speaker_away_max_ns = now - c->away_since;
    s_stream_skip(&c->session->audio, now);
    s_stream_skip(&c->session->ctl, now);
    s_say("speaker of session %d is back on %s after %.0f ms (%d attempts)", c->session->id,
          W.o->url[c->url].hosthdr, (now - c->away_since) / 1e6, c->refresh_tries);
}

/* --speaker-refresh: the speaker c dropped, or an attempt failed: plan the
   next attempt (at once after a drop, then every S_REFRESH_RETRY_NS). */
static void s_refresh_plan(s_conn_t *c, int64_t now)
{
    if (!c->refreshing) {
        c->refreshing = true;
        c->away_since = now;
        c->refresh_tries = 0;
        c->refresh_at = now;
    } else
        c->refresh_at = now + S_REFRESH_RETRY_NS;
    if (c->refresh_tries >= S_REFRESH_TRIES) {
        c->refresh_at = 0;
        s_say("speaker of session %d: no refresh after %d attempts, giving up", c->session->id,
              c->refresh_tries);
    }
}

/* c is closed (or its connect failed); why says how, for the tallies. */
static void s_conn_gone(s_conn_t *c, const char *why)
{
    if (c->state == S_GONE)
        return;
    bool was_ready = c->state == S_READY;
    c->state = S_GONE;
    c->wsi = NULL;
    snprintf(c->why, sizeof c->why, "%s", why);
    if (!c->resolved) {
        s_fail(c, c->refusal[0] ? c->refusal : why);
        return;
    }
    if (c->speaker && W.o->speaker_refresh && W.o->mode == S_MODE_TOLK && c->session->sid[0] &&
        (W.phase == S_PH_WAIT || W.phase == S_PH_MEASURE)) {
        if (c->refreshing && !was_ready)
            s_say("speaker of session %d: refresh attempt %d failed (%s)", c->session->id,
                  c->refresh_tries, c->refusal[0] ? c->refusal : why);
        s_refresh_plan(c, s_now());
    }
    if (!was_ready)
        return;
    if (c->speaker) /* no answer can come on this connection any more */
        for (int k = 0; k < S_CTL_RING; k++)
            s_ctl_settle(&c->session->ctl_ring[k], S_ANS_CUT);
    if (c->slow && !W.r.slow_closed && W.phase < S_PH_CLOSING) {
        static const char *phases[] = {"connect", "wait", "measure", "drain", "closing", "done"};
        static bool said;
        if (!said) /* once: when and how the server drops a listener that does not read */
            s_say("a slow listener was closed (%s) during the %s phase, %.1f s after the start",
                  why, phases[W.phase], W.t0 ? (s_now() - W.t0) / 1e9 : 0.0);
        said = true;
    }
    if (c->member) {
        c->member = false;
        c->session->members--;
        s_session_recheck(c->session);
    }
    if (!c->slow && W.phase < S_PH_CLOSING) {
        W.r.dropped++;
        s_tally_add(&W.r.drop_codes, why, 1);
        if (!c->speaker && c->url >= 0 && c->url < S_URL_FIGS) {
            W.r.url_dropped[c->url]++;
            s_tally_add(&W.r.url_drop_codes[c->url], why, 1);
        }
    }
}

/* --- what a speaker sends -------------------------------------------------------- */

/* Update st->due for now; lower *next to the next due time; true when a
   send is pending. */
static bool s_stream_due(s_stream_t *st, int64_t now, int64_t *next)
{
    if (st->period <= 0)
        return false;
    if (now >= st->start) {
        uint64_t k = (uint64_t)((now - st->start) / st->period) + 1;
        st->due = k < st->total ? k : st->total;
    }
    if (st->due < st->total) {
        int64_t t = st->start + (int64_t)st->due * st->period;
        if (t < *next)
            *next = t;
    }
    return st->sent < st->due;
}

/* Set a stream's schedule for the window: offset spreads the sessions'
   sends over one period instead of all at the same instant. */
static void s_stream_init(s_stream_t *st, double rate, int sid, int nsessions)
{
    memset(st, 0, sizeof *st);
    if (rate <= 0)
        return;
    st->period = (int64_t)llround(1e9 / rate);
    if (st->period < 1)
        st->period = 1;
    int64_t offset = (int64_t)((double)st->period * sid / nsessions);
    st->start = W.t0 + offset;
    int64_t span = W.t1 - st->start;
    st->total = span > 0 ? (uint64_t)((span + st->period - 1) / st->period) : 0;
}

/* The pending send of s due first: its stream, or NULL. */
static s_stream_t *s_next_send(s_session_t *s)
{
    s_stream_t *best = NULL;
    s_stream_t *cand[3] = {&s->ctl, &s->audio, &s->msg};
    for (int i = 0; i < 3; i++) {
        s_stream_t *st = cand[i];
        if (st->period > 0 && st->sent < st->due &&
            (!best || st->start + (int64_t)st->sent * st->period <
                          best->start + (int64_t)best->sent * best->period))
            best = st;
    }
    return best;
}

/* Build the next message of stream st of s into W.tx (after LWS_PRE);
   returns its length, sets *binary. Counts the send and its lateness. */
static size_t s_build_send(s_session_t *s, s_stream_t *st, int64_t now, bool *binary)
{
    uint64_t k = st->sent++;
    int64_t intended = st->start + (int64_t)k * st->period;
    int64_t late = now - intended;
    if (late > W.r.late_max_ns)
        W.r.late_max_ns = late;
    char *out = (char *)W.tx + LWS_PRE;
    *binary = false;
    if (st == &s->audio) {
        if (late > W.r.audio_late_max_ns)
            W.r.audio_late_max_ns = late;
        memcpy(out, W.audio, W.audio_len); /* lws masks in place: copy each time */
        *binary = true;
        W.r.audio_sent++;
        return W.audio_len;
    }
    if (st == &s->ctl) {
        s_ctl_slot_t *e = &s->ctl_ring[k % S_CTL_RING];
        s_ctl_finish(e, false);      /* a previous lap still open: it never completed */
        s_ctl_settle(e, S_ANS_LOST); /* and never answered, S_CTL_RING sends on */
        *e = (s_ctl_slot_t){.intended = intended,
                            .open = s->members > 0,
                            .answer = S_ANS_PENDING,
                            .window = W.marks_seen};
        s_ctl_count(W.marks_seen, &(s_ctlstat_t){.sent = 1});
        return (size_t)snprintf(out, W.tx_cap, "{\"action\":\"setVolume\",\"volumeLevel\":%.3f}",
                                (double)(k % S_CTL_RING) / S_CTL_RING);
    }
    /* a mirror/tcp message: due time, session, padding */
    size_t n = (size_t)snprintf(out, W.tx_cap, "%lld.%d.", (long long)intended, s->id);
    size_t want = (size_t)W.o->message_bytes;
    if (want > n) {
        memset(out + n, 'x', want - n);
        n = want;
    }
    W.r.messages_sent++;
    return n;
}

/* --- lws: tolk and mirror modes ------------------------------------------------- */

/* Client connections never ping and never hang up for want of a pong:
   tolk answers in its own time and lws's validity timer must not close
   a listener that only reads. */
static const lws_retry_bo_t s_no_validity = {.secs_since_valid_ping = 0,
                                             .secs_since_valid_hangup = 0};

/* Ask lws for a writable callback on c. */
static void s_ws_want_write(s_conn_t *c)
{
    if (c->wsi && (c->state == S_OPEN || c->state == S_READY))
        lws_callback_on_writable(c->wsi);
}

/* c may write: a clean close, a heartbeat, or the speaker's next send. */
static int s_ws_writable(s_conn_t *c, struct lws *wsi)
{
    if (c->want_close) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    size_t len = 0;
    bool binary = false;
    char *out = (char *)W.tx + LWS_PRE;
    if (c->want_hb) {
        c->want_hb = false;
        len = (size_t)snprintf(out, W.tx_cap, "{\"action\":\"heartbeat\"}");
    } else if (c->speaker && c->state == S_READY && W.phase == S_PH_MEASURE) {
        s_stream_t *st = s_next_send(c->session);
        if (st)
            len = s_build_send(c->session, st, s_now(), &binary);
    }
    if (len == 0)
        return 0;
    if (lws_write(wsi, W.tx + LWS_PRE, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
        return -1;
    if (c->want_hb || (c->speaker && W.phase == S_PH_MEASURE && s_next_send(c->session)))
        lws_callback_on_writable(wsi);
    return 0;
}

/* A piece of a message arrived on c: act on whole messages only. */
static void s_ws_receive(s_conn_t *c, struct lws *wsi, const char *in, size_t len)
{
    bool final = lws_is_final_fragment(wsi);
    bool binary = lws_frame_is_binary(wsi);
    if (final && c->rx_len == 0) {
        if (!binary) {
            int64_t now = s_now();
            if (W.o->mode == S_MODE_TOLK)
                s_tolk_message(c, in, len, now);
            else
                s_on_stamped(c, in, len, now);
        }
        return;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 8192;
        while (cap < c->rx_len + len)
            cap *= 2;
        char *p = realloc(c->rx, cap);
        if (!p)
            return;
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (final) {
        if (!binary) {
            int64_t now = s_now();
            if (W.o->mode == S_MODE_TOLK)
                s_tolk_message(c, c->rx, c->rx_len, now);
            else
                s_on_stamped(c, c->rx, c->rx_len, now);
        }
        c->rx_len = 0;
    }
}

/* The one protocol handler of every client connection. */
static int s_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    (void)user;
    s_marks_poll(); /* a mark that came before this event belongs before it */
    s_conn_t *c = lws_get_opaque_user_data(wsi);
    if (!c)
        return 0;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
            char why[S_TALLY_KEY];
            snprintf(why, sizeof why, "%.*s", in ? (int)len : 0, in ? (const char *)in : "");
            if (!in || len == 0 || !why[0])
                snprintf(why, sizeof why, "connection_error");
            lws_set_opaque_user_data(wsi, NULL); /* c may open a new wsi (--speaker-refresh) */
            s_conn_gone(c, why);
            break;
        }
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            c->wsi = wsi;
            c->state = S_OPEN;
            if (W.o->mode == S_MODE_MIRROR)
                s_conn_ready(c, s_now());
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            s_ws_receive(c, wsi, in, len);
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            return s_ws_writable(c, wsi);
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if (in && len >= 2)
                c->close_code =
                    ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1];
            else
                c->close_code = 1005;
            break;
        case LWS_CALLBACK_CLIENT_CLOSED: {
            char why[16];
            snprintf(why, sizeof why, "%d", c->close_code ? c->close_code : 1006);
            lws_set_opaque_user_data(wsi, NULL); /* c may open a new wsi (--speaker-refresh) */
            s_conn_gone(c, why);
            break;
        }
        case LWS_CALLBACK_WSI_DESTROY:
            c->wsi = NULL;
            if (c->state != S_GONE)
                s_conn_gone(c, "destroyed");
            break;
        default:
            break;
    }
    return 0;
}

/* Our protocol: every connection is bound to it, whatever it asks the server for. */
static const struct lws_protocols s_protocols[] = {
    {S_PROTO, s_ws_callback, 0, S_RX_BUF, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Open c's WebSocket: the URL says what it is for. */
static void s_ws_open(s_conn_t *c)
{
    const s_opts_t *o = W.o;
    const s_url_t *u = &o->url[c->url];
    char path[1200];
    char *token = NULL;
    if (o->mode == S_MODE_MIRROR)
        snprintf(path, sizeof path, "/");
    else if (c->speaker) {
        char sub[64];
        snprintf(sub, sizeof sub, "bench-%lld-%d", (long long)W.run_id, c->session->id);
        token = tolk_jwt_mint(TOLK_JWT_HS256, (const unsigned char *)o->jwt_secret,
                              strlen(o->jwt_secret), sub, NULL, NULL, 3600, time(NULL));
        if (!token) {
            s_conn_gone(c, "jwt_mint_failed");
            return;
        }
        if (c->refreshing)
            snprintf(path, sizeof path,
                     "/ws?action=refreshConnection&sessionId=%s&role=speaker&token=%s",
                     c->session->sid, token);
        else
            snprintf(path, sizeof path, "/ws?action=createSession&sourceLanguage=en&token=%s",
                     token);
    } else
        snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s",
                 c->session->sid, o->lang[c->lang]);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = W.ctx;
    ci.address = u->host;
    ci.port = u->port;
    ci.path = path;
    ci.host = u->hosthdr;
    ci.origin = NULL; /* tolk refuses a foreign Origin; none is fine */
    ci.protocol = o->mode == S_MODE_MIRROR ? S_MIRROR_PROTO : NULL;
    ci.local_protocol_name = S_PROTO;
    ci.iface = c->src >= 0 ? o->src[c->src] : NULL; /* binds the source address */
    ci.opaque_user_data = c;
    ci.retry_and_idle_policy = &s_no_validity;
    c->state = S_CONNECTING;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    free(token);
    if (c->state == S_GONE)
        return; /* failed inside the call; the callback counted it */
    if (!wsi) {
        s_conn_gone(c, "connect_failed");
        return;
    }
    c->wsi = wsi;
}

/* --- tcp mode ----------------------------------------------------------------- */

/* What epoll should report for c. */
static void s_tcp_watch(s_conn_t *c, int op)
{
    uint32_t ev = 0;
    if (c->state == S_CONNECTING)
        ev = EPOLLOUT;
    else {
        if (!c->paused)
            ev |= EPOLLIN | EPOLLRDHUP;
        if (c->tx_len > c->tx_off)
            ev |= EPOLLOUT;
    }
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(W.ep, op, c->fd, &e);
}

/* Close c's socket; why goes to the tallies. */
static void s_tcp_close(s_conn_t *c, const char *why)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    s_conn_gone(c, why);
}

/* Write what c has pending; EPOLLOUT while some is left. */
static void s_tcp_flush(s_conn_t *c)
{
    bool had = c->tx_len > c->tx_off;
    while (c->tx_len > c->tx_off) {
        ssize_t n = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                s_tcp_close(c, errno == ECONNRESET || errno == EPIPE ? "reset" : "write_error");
            break;
        }
        c->tx_off += (size_t)n;
    }
    if (c->fd < 0)
        return;
    if (c->tx_off == c->tx_len) {
        c->tx_off = c->tx_len = 0;
        if (had)
            s_tcp_watch(c, EPOLL_CTL_MOD);
    } else
        s_tcp_watch(c, EPOLL_CTL_MOD);
}

/* The speaker c sends everything due: frames appended, then written. */
static void s_tcp_pump(s_conn_t *c)
{
    s_stream_t *st;
    while (c->state == S_READY && W.phase == S_PH_MEASURE && (st = s_next_send(c->session))) {
        bool binary;
        size_t n = s_build_send(c->session, st, s_now(), &binary);
        if (c->tx_len + 4 + n > c->tx_cap) {
            if (c->tx_off > 0) {
                memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
                c->tx_len -= c->tx_off;
                c->tx_off = 0;
            }
            size_t cap = c->tx_cap ? c->tx_cap : 16384;
            while (cap < c->tx_len + 4 + n)
                cap *= 2;
            char *p = realloc(c->tx, cap);
            if (!p)
                return;
            c->tx = p;
            c->tx_cap = cap;
        }
        unsigned char *h = (unsigned char *)c->tx + c->tx_len;
        h[0] = (unsigned char)(n >> 24);
        h[1] = (unsigned char)(n >> 16);
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        memcpy(c->tx + c->tx_len + 4, W.tx + LWS_PRE, n);
        c->tx_len += 4 + n;
    }
    if (c->tx_len > c->tx_off)
        s_tcp_flush(c);
}

/* Input on c: read, hand every whole frame over, keep the rest. */
static void s_tcp_read(s_conn_t *c)
{
    size_t have = 0;
    if (c->rx_len > 0) {
        memcpy(W.rbuf, c->rx, c->rx_len);
        have = c->rx_len;
        c->rx_len = 0;
    }
    ssize_t n = read(c->fd, W.rbuf + have, S_TCP_RBUF - have);
    if (n == 0) {
        s_tcp_close(c, "eof");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            s_tcp_close(c, errno == ECONNRESET ? "reset" : "read_error");
        else if (have > 0) {
            memcpy(c->rx, W.rbuf, have); /* put the partial frame back */
            c->rx_len = have;
        }
        return;
    }
    have += (size_t)n;
    int64_t now = s_now();
    size_t off = 0;
    while (have - off >= 4) {
        const unsigned char *h = (const unsigned char *)W.rbuf + off;
        uint32_t flen = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (flen > S_MAX_FRAME) {
            s_tcp_close(c, "bad_frame");
            return;
        }
        if (have - off - 4 < flen)
            break;
        s_on_stamped(c, W.rbuf + off + 4, flen, now);
        off += 4 + flen;
    }
    if (off < have) {
        size_t rest = have - off;
        if (rest > c->rx_cap) {
            char *p = realloc(c->rx, rest);
            if (!p) {
                s_tcp_close(c, "oom");
                return;
            }
            c->rx = p;
            c->rx_cap = rest;
        }
        memmove(c->rx, W.rbuf + off, rest);
        c->rx_len = rest;
    }
}

/* Connect c to the floor, from its source address. */
static void s_tcp_open(s_conn_t *c)
{
    const s_opts_t *o = W.o;
    const s_url_t *u = &o->url[c->url];
    c->state = S_CONNECTING;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s_conn_gone(c, errno == EMFILE ? "emfile" : "socket_error");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->src >= 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, o->src[c->src], &sa.sin_addr);
        /* the port is chosen at connect, per destination: more than 28k per address */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            s_conn_gone(c, "bind_failed");
            return;
        }
    }
    struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons((uint16_t)u->port)};
    if (inet_pton(AF_INET, u->host, &da.sin_addr) != 1) {
        close(fd);
        s_conn_gone(c, "bad_address");
        return;
    }
    c->fd = fd;
    if (connect(fd, (struct sockaddr *)&da, sizeof da) != 0 && errno != EINPROGRESS) {
        s_tcp_close(c, errno == ECONNREFUSED ? "refused" : "connect_error");
        return;
    }
    s_tcp_watch(c, EPOLL_CTL_ADD);
}

/* epoll says something about c. */
static void s_tcp_event(s_conn_t *c, uint32_t ev)
{
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err) {
            s_tcp_close(c, err == ECONNREFUSED ? "refused" : "connect_error");
            return;
        }
        s_conn_ready(c, s_now()); /* a slow one pauses itself here */
        if (c->fd >= 0)
            s_tcp_watch(c, EPOLL_CTL_MOD);
        return;
    }
    if (c->fd >= 0 && !c->paused && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        s_tcp_read(c);
    if (c->fd >= 0 && (ev & EPOLLOUT))
        s_tcp_flush(c);
}

/* --- mode dispatch --------------------------------------------------------------- */

/* Stop or restart reading c (a slow listener). A stopped reader's kernel
   receive buffer is pinned at S_SLOW_RCVBUF: Linux would otherwise grow a
   buffer nobody reads up to tcp_rmem's maximum (32 MB here), and the
   server would see a listener that keeps up for minutes. A frozen browser
   tab on a phone has no such buffer to hide behind. */
static void s_io_pause(s_conn_t *c, bool pause)
{
    c->paused = pause;
    int fd = W.o->mode == S_MODE_TCP ? c->fd : c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;
    if (pause && fd >= 0) {
        int rcvbuf = S_SLOW_RCVBUF;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (W.o->mode == S_MODE_TCP) {
        if (c->fd >= 0 && c->state != S_CONNECTING)
            s_tcp_watch(c, EPOLL_CTL_MOD);
    } else if (c->wsi)
        lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

/* Open c the mode's way, as the next connection of the round-robin. */
static void s_open(s_conn_t *c)
{
    const s_opts_t *o = W.o;
    uint64_t ord = W.opened++ * (uint64_t)W.procs + (uint64_t)W.child;
    c->url = (int)(ord % (uint64_t)o->nurl);
    c->src = o->nsrc ? (int)((ord / (uint64_t)o->nurl) % (uint64_t)o->nsrc) : -1;
    if (o->mode == S_MODE_TCP)
        s_tcp_open(c);
    else
        s_ws_open(c);
}

/* The speaker of s has something due. */
static void s_want_send(s_conn_t *c)
{
    if (W.o->mode == S_MODE_TCP)
        s_tcp_pump(c);
    else
        s_ws_want_write(c);
}

/* --- the run's phases ------------------------------------------------------------- */

/* Open what the ramp allows by now. */
static void s_ramp(int64_t now, int64_t *next)
{
    while (W.qhead < W.qtail && W.ramp_next <= now) {
        s_conn_t *c = W.queue[W.qhead++];
        if (c->resolved || c->state != S_IDLE)
            continue;
        if (!W.r.first_attempt_ns)
            W.r.first_attempt_ns = now;
        W.ramp_next += W.ramp_period;
        s_open(c);
    }
    if (W.qhead < W.qtail && W.ramp_next < *next)
        *next = W.ramp_next;
}

/* The start time from the parent, when it has come. */
static void s_poll_start(int64_t now)
{
    if (W.start)
        return;
    if (W.from_parent < 0) {
        W.start = now + S_START_DELAY_NS;
        return;
    }
    int64_t t;
    ssize_t n = read(W.from_parent, &t, sizeof t);
    if (n == (ssize_t)sizeof t)
        W.start = t;
    else if (n == 0) /* the parent is gone: run anyway */
        W.start = now;
}

/* Every connection is established or has failed (what is still unresolved
   at the deadline has failed): tell the parent. */
static void s_connect_done(int to_parent)
{
    for (int s = 0; s < W.nsessions; s++)
        for (int i = 0; i < W.sessions[s].nconns; i++) {
            s_conn_t *c = &W.sessions[s].conns[i];
            if (!c->resolved)
                s_fail(c, c->state == S_IDLE ? "not_started" : "timeout");
        }
    W.qhead = W.qtail;
    W.phase = S_PH_WAIT;
    double secs = W.r.first_attempt_ns ? (W.r.last_ready_ns - W.r.first_attempt_ns) / 1e9 : 0;
    s_say("connected %llu of %llu (%llu failed) in %.1f s", (unsigned long long)W.r.established,
          (unsigned long long)W.r.planned, (unsigned long long)W.r.failures, secs);
    if (to_parent >= 0) {
        char ready = 'R';
        if (write(to_parent, &ready, 1) != 1)
            s_say("cannot tell the parent: %s", strerror(errno));
    }
}

/* The measurement starts: every speaker's schedule is set. */
static void s_measure_start(void)
{
    W.t0 = W.start;
    W.t1 = W.start + (int64_t)(W.o->duration * 1e9);
    W.r.measure_start_ns = W.t0;
    int S = W.o->sessions;
    for (int i = 0; i < W.nsessions; i++) {
        s_session_t *s = &W.sessions[i];
        if (W.o->mode == S_MODE_TOLK) {
            s_stream_init(&s->audio, W.o->audio_rate, s->id, S);
            s_stream_init(&s->ctl, W.o->control_rate, s->id, S);
        } else
            s_stream_init(&s->msg, W.o->caption_rate, s->id, S);
    }
    if (W.o->timeline) {
        W.timeline_n = (size_t)((W.o->duration + 1) * 1e9 / S_BUCKET_NS) +
                       (size_t)((W.o->drain_s * S_NS + S_CLOSE_WAIT_NS) / S_BUCKET_NS);
        for (int i = 0; i < W.nsessions; i++)
            W.sessions[i].timeline = calloc(W.timeline_n, sizeof(uint32_t));
    }
    W.phase = W.r.established > 0 ? S_PH_MEASURE : S_PH_DONE; /* nothing to measure */
}

/* Sends stop; slow listeners read again; late receipts still count. */
static void s_drain_start(int64_t now)
{
    if (W.o->check_seq) {
        s_marks_poll();
        s_mark_close(W.t1);
        for (int i = 0; i < W.nsessions; i++) /* a silence still on at the end counts too */
            for (int k = 1; k < W.sessions[i].nconns; k++)
                if (W.sessions[i].conns[k].member)
                    s_silence(&W.sessions[i].conns[k], W.t1);
    }
    for (int i = 0; i < W.nsessions; i++) {
        s_session_t *s = &W.sessions[i];
        int64_t never = INT64_MAX;
        s_stream_t *st[3] = {&s->audio, &s->ctl, &s->msg};
        for (int k = 0; k < 3; k++) {
            if (s->speaker->state == S_READY)
                s_stream_due(st[k], W.t1 - 1, &never);
            if (st[k]->due > st[k]->sent)
                W.r.sends_unsent += st[k]->due - st[k]->sent;
        }
        for (int k = 1; k < s->nconns; k++)
            if (s->conns[k].slow && s->conns[k].state == S_READY)
                s_io_pause(&s->conns[k], false);
    }
    W.phase = S_PH_DRAIN;
    W.phase_end = now + (int64_t)(W.o->drain_s * S_NS);
    W.r.measure_end_ns = W.t1;
}

/* --check-seq, at the end: a source-language listener c, connected since
   the start, should have every ms of audio its speaker sent in its finals
   (a 16 kHz 16-bit chunk of B bytes is B / 32 ms; the last utterance is
   ended by the worker after a gap in the audio, within --drain-s if that
   is long enough). */
static void s_talk_total(const s_conn_t *c)
{
    int64_t sent = (int64_t)c->session->audio.sent * W.o->chunk_bytes / 32;
    int64_t missing = sent - c->talk_ms;
    W.r.talk_listeners++;
    W.r.talk_sent_ms += sent;
    if (missing > 0) {
        W.r.talk_uncaptioned_ms += missing;
        if (missing > W.r.talk_uncaptioned_max_ms)
            W.r.talk_uncaptioned_max_ms = missing;
    } else
        W.r.talk_excess_ms -= missing;
}

/* The run is over: count the slow listeners, close what is open, and
   ask the speakers to close cleanly (tolk ends their sessions). */
static void s_closing_start(int64_t now)
{
    for (int i = 0; i < W.nsessions; i++) {
        s_session_t *s = &W.sessions[i];
        for (int k = 1; k < s->nconns; k++) {
            s_conn_t *c = &s->conns[k];
            if (c->member && c->url >= 0 && c->url < S_URL_FIGS)
                W.r.url_open_end[c->url]++;
            if (c->member && W.o->check_seq && strcmp(W.o->lang[c->lang], "en") == 0)
                s_talk_total(c); /* a listener of the speakers' language (sourceLanguage=en) */
            if (!c->slow || !c->resolved || c->state == S_IDLE)
                continue;
            if (c->state == S_GONE && c->why[0] && !c->refusal[0]) {
                W.r.slow_closed++;
                s_tally_add(&W.r.slow_codes, c->why, 1);
            }
        }
        for (int k = 0; k < S_CTL_RING; k++) {
            s_ctl_finish(&s->ctl_ring[k], false);
            s_ctl_settle(&s->ctl_ring[k], S_ANS_LOST); /* the drain is over: unanswered */
        }
        for (int k = 0; k < S_CAP_SLOTS; k++)
            s_cap_finish(&s->caps[k], false);
    }
    W.phase = S_PH_CLOSING;
    W.phase_end = now;
    if (W.o->mode == S_MODE_TOLK) {
        for (int i = 0; i < W.nsessions; i++) {
            s_conn_t *c = W.sessions[i].speaker;
            if (c->state == S_READY || c->state == S_OPEN) {
                c->want_close = true;
                s_ws_want_write(c);
                W.phase_end = now + S_CLOSE_WAIT_NS;
            }
        }
    }
}

/* Heartbeats for every connection whose minute is up (tolk only). */
static void s_heartbeats(int64_t now)
{
    if (W.o->mode != S_MODE_TOLK || now < W.hb_next)
        return;
    W.hb_next = now + S_NS;
    for (int i = 0; i < W.nsessions; i++)
        for (int k = 0; k < W.sessions[i].nconns; k++) {
            s_conn_t *c = &W.sessions[i].conns[k];
            if (c->state == S_READY && now >= c->hb_due) {
                c->hb_due += S_HEARTBEAT_NS;
                c->want_hb = true;
                s_ws_want_write(c);
            }
        }
}

/* --speaker-refresh: open the attempts that are due. */
static void s_refresh_due(int64_t now, int64_t *next)
{
    if (!W.o->speaker_refresh || (W.phase != S_PH_WAIT && W.phase != S_PH_MEASURE))
        return;
    for (int i = 0; i < W.nsessions; i++) {
        s_conn_t *c = W.sessions[i].speaker;
        if (!c->refreshing || !c->refresh_at || c->state != S_GONE)
            continue;
        if (now < c->refresh_at) {
            if (c->refresh_at < *next)
                *next = c->refresh_at;
            continue;
        }
        c->refresh_at = 0;
        c->refresh_tries++;
        W.r.speaker_refresh_attempts++;
        c->close_code = 0;
        c->refusal[0] = 0;
        c->rx_len = 0;
        c->want_hb = c->want_close = false;
        c->url = (c->url + 1) % W.o->nurl; /* its gateway may be the one that died */
        s_ws_open(c);
    }
}

/* --status: the run's state for a driver, rewritten whole (a rename, so a
   reader never sees half a file). */
static void s_status_write(int64_t now)
{
    static const char *phases[] = {"connect", "wait", "measure", "drain", "closing", "done"};
    if (!W.o->status || now < W.status_next)
        return;
    W.status_next = now + S_STATUS_NS;
    char path[4096], tmp[4200];
    if (W.procs > 1)
        snprintf(path, sizeof path, "%s.%d", W.o->status, W.child);
    else
        snprintf(path, sizeof path, "%s", W.o->status);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "phase %s\n", phases[W.phase]);
    fprintf(f, "elapsed_ms %lld\n", W.t0 && now >= W.t0 ? (long long)((now - W.t0) / S_MS) : -1LL);
    fprintf(f, "marks %u\n", W.marks_seen);
    for (int i = 0; i < W.nsessions; i++) {
        s_session_t *s = &W.sessions[i];
        int per_url[S_URL_FIGS] = {0}, live = 0, slow = 0;
        for (int k = 1; k < s->nconns; k++) {
            s_conn_t *c = &s->conns[k];
            if (c->state != S_READY)
                continue;
            if (c->slow)
                slow++;
            else
                live++;
            if (c->url >= 0 && c->url < S_URL_FIGS)
                per_url[c->url]++;
        }
        fprintf(f, "session %d %s speaker %d listeners %d slow %d urls", s->id,
                s->sid[0] ? s->sid : "-", s->speaker->state == S_READY, live, slow);
        for (int u = 0; u < W.o->nurl && u < S_URL_FIGS; u++)
            fprintf(f, " %d", per_url[u]);
        fputc('\n', f);
    }
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* Everything time-driven; returns when it wants to run next. */
static int64_t s_tick(int64_t now, int to_parent)
{
    int64_t next = now + S_TICK_NS;
    s_marks_poll();
    s_refresh_due(now, &next);
    s_status_write(now);
    if (W.phase == S_PH_CONNECT) {
        s_ramp(now, &next);
        if (W.unresolved == 0 || now >= W.connect_deadline)
            s_connect_done(to_parent);
    }
    if (W.phase == S_PH_WAIT) {
        s_poll_start(now);
        if (W.start && now >= W.start)
            s_measure_start();
        else if (W.start && W.start < next)
            next = W.start;
    }
    if (W.phase == S_PH_MEASURE) {
        if (s_end_asked && now < W.t1)
            W.t1 = now; /* SIGUSR2: sends due from now on are not due */
        if (now >= W.t1)
            s_drain_start(now);
        else {
            for (int i = 0; i < W.nsessions; i++) {
                s_session_t *s = &W.sessions[i];
                if (s->speaker->state != S_READY)
                    continue;
                bool want = false;
                want |= s_stream_due(&s->audio, now, &next);
                want |= s_stream_due(&s->ctl, now, &next);
                want |= s_stream_due(&s->msg, now, &next);
                if (want)
                    s_want_send(s->speaker);
            }
            if (W.t1 < next)
                next = W.t1;
        }
    }
    if (W.phase == S_PH_DRAIN && now >= W.phase_end)
        s_closing_start(now);
    if (W.phase == S_PH_CLOSING) {
        bool open = false;
        for (int i = 0; i < W.nsessions && !open; i++)
            open = W.sessions[i].speaker->want_close && W.sessions[i].speaker->state != S_GONE;
        if (!open || now >= W.phase_end)
            W.phase = S_PH_DONE;
    }
    s_heartbeats(now);
    return next;
}

/* --- the two event loops --------------------------------------------------------- */

static int s_to_parent = -1; /* where "connected" goes (-1: no parent) */

/* lws timer: run the tick, schedule the next one. */
static void s_ws_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    int64_t now = s_now();
    int64_t next = s_tick(now, s_to_parent);
    if (W.phase == S_PH_DONE) {
        W.stop = true;
        if (W.evlib) {
            /* an event library runs its loop inside lws_service(): a destroy
               from inside the loop ends it (lws's own examples do this) */
            lws_context_destroy(W.ctx);
            return;
        }
    }
    int64_t us = W.stop ? 1 : (next - now) / 1000; /* poll(): a short wait, then the loop ends */
    lws_sul_schedule(W.ctx, 0, &W.sul, s_ws_tick, us < 1 ? 1 : us);
}

/* tolk and mirror modes: one lws context, one thread. */
static int s_ws_run(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    /* no SSL init: plain ws:// only; the event library if one was asked for */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | W.evlib;
    info.fd_limit_per_thread = (unsigned int)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur);
    info.max_http_header_pool = 1024; /* handshakes in flight at once */
    info.timeout_secs = 30;
    info.connect_timeout_secs = 30;
    info.retry_and_idle_policy = &s_no_validity;
    info.gid = -1;
    info.uid = -1;
    W.ctx = lws_create_context(&info);
    if (!W.ctx && W.evlib) { /* the evlib plugin is a separate package: fall back */
        s_say("the lws event library plugin did not load; using poll()");
        W.evlib = 0;
        info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
        W.ctx = lws_create_context(&info);
    }
    if (!W.ctx) {
        fprintf(stderr, "loadgen: lws_create_context failed\n");
        return -1;
    }
    lws_sul_schedule(W.ctx, 0, &W.sul, s_ws_tick, 1);
    while (!W.stop)
        if (lws_service(W.ctx, 0) != 0 && W.evlib)
            break; /* the event loop ended */
    if (!W.evlib)
        lws_sul_cancel(&W.sul);
    lws_context_destroy(W.ctx); /* evlib: the second, final call */
    W.ctx = NULL;
    return 0;
}

/* tcp mode: epoll, a timerfd for the tick. */
static int s_tcp_run(void)
{
    W.ep = epoll_create1(EPOLL_CLOEXEC);
    W.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    W.rbuf = malloc(S_TCP_RBUF);
    if (W.ep < 0 || W.tfd < 0 || !W.rbuf) {
        fprintf(stderr, "loadgen: epoll/timerfd: %s\n", strerror(errno));
        return -1;
    }
    struct epoll_event te = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the timer */
    epoll_ctl(W.ep, EPOLL_CTL_ADD, W.tfd, &te);
    struct epoll_event evs[S_EVENTS];
    for (;;) {
        int64_t now = s_now();
        int64_t next = s_tick(now, s_to_parent);
        if (W.phase == S_PH_DONE)
            break;
        if (next <= now)
            next = now + 1;
        struct itimerspec its = {.it_value = {.tv_sec = next / S_NS, .tv_nsec = next % S_NS}};
        timerfd_settime(W.tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(W.ep, evs, S_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                uint64_t x;
                if (read(W.tfd, &x, sizeof x) < 0) { /* nothing: it fired */
                }
                continue;
            }
            s_tcp_event(evs[i].data.ptr, evs[i].events);
        }
    }
    for (int i = 0; i < W.nsessions; i++)
        for (int k = 0; k < W.sessions[i].nconns; k++)
            if (W.sessions[i].conns[k].fd >= 0) {
                close(W.sessions[i].conns[k].fd);
                W.sessions[i].conns[k].fd = -1;
            }
    close(W.tfd);
    close(W.ep);
    free(W.rbuf);
    W.rbuf = NULL;
    return 0;
}

/* --- one worker process ----------------------------------------------------------- */

/* True for listener j of L when it is one of the PCT percent slow ones,
   spread evenly over the session. */
static bool s_is_slow(int j, double pct)
{
    if (pct <= 0)
        return false;
    return floor((j + 1) * pct / 100.0) > floor(j * pct / 100.0);
}

/* --timeline: one row per 100 ms from the start, one column per session
   of this process (its global number in the header): finals received by
   its listeners. */
static void s_timeline_write(void)
{
    if (!W.o->timeline || !W.timeline_n)
        return;
    char path[4096];
    if (W.procs > 1)
        snprintf(path, sizeof path, "%s.%d", W.o->timeline, W.child);
    else
        snprintf(path, sizeof path, "%s", W.o->timeline);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "loadgen: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "# t_ms");
    for (int i = 0; i < W.nsessions; i++)
        fprintf(f, " session_%d", W.sessions[i].id);
    fputc('\n', f);
    for (size_t b = 0; b < W.timeline_n; b++) {
        fprintf(f, "%lld", (long long)(b * (S_BUCKET_NS / S_MS)));
        for (int i = 0; i < W.nsessions; i++)
            fprintf(f, " %u", W.sessions[i].timeline ? W.sessions[i].timeline[b] : 0);
        fputc('\n', f);
    }
    fclose(f);
}

/* Sessions child, child+procs, ...: set them up, run, fill *out. */
static int s_worker(const s_opts_t *o, int child, int procs, int to_parent, int from_parent,
                    s_result_t *out)
{
    memset(&W, 0, sizeof W);
    W.o = o;
    W.evlib = o->evlib;
    W.child = child;
    W.procs = procs;
    W.from_parent = from_parent;
    W.ep = W.tfd = -1;
    s_to_parent = to_parent;
    W.run_id = time(NULL);
    if (from_parent >= 0)
        fcntl(from_parent, F_SETFL, O_NONBLOCK);
    for (int s = child; s < o->sessions; s += procs)
        W.nsessions++;
    W.sessions = calloc((size_t)W.nsessions + 1, sizeof *W.sessions);
    size_t per = 1 + (size_t)o->listeners;
    W.queue = calloc((size_t)W.nsessions * per + 1, sizeof *W.queue);
    W.tx_cap =
        (size_t)(o->chunk_bytes > o->message_bytes ? o->chunk_bytes : o->message_bytes) + 256;
    W.tx = malloc(LWS_PRE + W.tx_cap);
    W.audio_len = (size_t)o->chunk_bytes & ~(size_t)1;
    W.audio = malloc(W.audio_len + 2);
    if (!W.sessions || !W.queue || !W.tx || !W.audio) {
        fprintf(stderr, "loadgen: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i + 1 < W.audio_len; i += 2) { /* a quiet 440 Hz sine at 16 kHz */
        int16_t v = (int16_t)(1000.0 * sin(2 * M_PI * 440.0 * (double)(i / 2) / 16000.0));
        W.audio[i] = (unsigned char)(v & 0xff);
        W.audio[i + 1] = (unsigned char)((uint16_t)v >> 8);
    }
    int64_t now = s_now();
    int gl = 0; /* listener number in this process, for --lang round-robin */
    for (int i = 0; i < W.nsessions; i++) {
        s_session_t *s = &W.sessions[i];
        s->id = child + i * procs;
        s->nconns = (int)per;
        s->conns = calloc(per, sizeof *s->conns);
        s->ctl_ring = calloc(S_CTL_RING, sizeof *s->ctl_ring);
        s->caps = calloc(S_CAP_SLOTS, sizeof *s->caps);
        if (!s->conns || !s->ctl_ring || !s->caps) {
            fprintf(stderr, "loadgen: out of memory\n");
            return -1;
        }
        s->speaker = &s->conns[0];
        for (int k = 0; k < s->nconns; k++) {
            s_conn_t *c = &s->conns[k];
            c->session = s;
            c->speaker = k == 0;
            c->slow = k > 0 && s_is_slow(k - 1, o->slow_pct);
            c->fd = -1;
            c->src = -1;
            c->lang = k > 0 ? (s->id * o->listeners + gl++) % o->nlang : 0;
        }
    }
    W.nconns = (size_t)W.nsessions * per;
    W.unresolved = W.nconns;
    W.r.planned = W.nconns;
    /* speakers first; tolk listeners join once their session exists */
    for (int i = 0; i < W.nsessions; i++)
        s_enqueue(W.sessions[i].speaker, now);
    if (o->mode != S_MODE_TOLK)
        for (int i = 0; i < W.nsessions; i++)
            for (int k = 1; k < W.sessions[i].nconns; k++)
                s_enqueue(&W.sessions[i].conns[k], now);
    double rate = o->ramp / procs;
    W.ramp_period = (int64_t)(1e9 / (rate > 0 ? rate : 1));
    W.ramp_next = now;
    W.connect_deadline = now + (int64_t)W.nconns * W.ramp_period + S_CONNECT_GRACE_NS;
    W.hb_next = now + S_NS;
    W.phase = S_PH_CONNECT;

    int rc = o->mode == S_MODE_TCP ? s_tcp_run() : s_ws_run();
    *out = W.r;
    s_timeline_write();
    for (int i = 0; i < W.nsessions; i++) {
        for (int k = 0; k < W.sessions[i].nconns; k++) {
            free(W.sessions[i].conns[k].rx);
            free(W.sessions[i].conns[k].tx);
            free(W.sessions[i].conns[k].seen);
        }
        free(W.sessions[i].timeline);
        free(W.sessions[i].conns);
        free(W.sessions[i].ctl_ring);
        free(W.sessions[i].caps);
    }
    free(W.sessions);
    free(W.queue);
    free(W.tx);
    free(W.audio);
    return rc;
}

/* --- results ------------------------------------------------------------------ */

/* Add one process's result into the total. */
static void s_result_merge(s_result_t *t, const s_result_t *r)
{
    t->planned += r->planned;
    t->established += r->established;
    t->failures += r->failures;
    if (r->first_attempt_ns && (!t->first_attempt_ns || r->first_attempt_ns < t->first_attempt_ns))
        t->first_attempt_ns = r->first_attempt_ns;
    if (r->last_ready_ns > t->last_ready_ns)
        t->last_ready_ns = r->last_ready_ns;
    t->deliveries += r->deliveries;
    t->partials += r->partials;
    t->speaker_deliveries += r->speaker_deliveries;
    t->control_deliveries += r->control_deliveries;
    t->speaker_control_deliveries += r->speaker_control_deliveries;
    t->audio_sent += r->audio_sent;
    s_ctlstat_add(&t->ctl, &r->ctl);
    s_ctlstat_add(&t->premark_ctl, &r->premark_ctl);
    t->messages_sent += r->messages_sent;
    t->sends_unsent += r->sends_unsent;
    if (r->late_max_ns > t->late_max_ns)
        t->late_max_ns = r->late_max_ns;
    if (r->audio_late_max_ns > t->audio_late_max_ns)
        t->audio_late_max_ns = r->audio_late_max_ns;
    if (r->measure_start_ns && (!t->measure_start_ns || r->measure_start_ns < t->measure_start_ns))
        t->measure_start_ns = r->measure_start_ns;
    if (r->measure_end_ns > t->measure_end_ns)
        t->measure_end_ns = r->measure_end_ns;
    t->errors += r->errors;
    t->caption_last_n += r->caption_last_n;
    t->caption_last_incomplete += r->caption_last_incomplete;
    t->control_last_n += r->control_last_n;
    t->control_last_incomplete += r->control_last_incomplete;
    t->slow += r->slow;
    t->slow_closed += r->slow_closed;
    t->dropped += r->dropped;
    s_tally_merge(&t->error_codes, &r->error_codes);
    s_tally_merge(&t->connect_errors, &r->connect_errors);
    s_tally_merge(&t->slow_codes, &r->slow_codes);
    s_tally_merge(&t->drop_codes, &r->drop_codes);
    tolk_hist_merge(&t->caption, &r->caption);
    tolk_hist_merge(&t->caption_last, &r->caption_last);
    tolk_hist_merge(&t->control, &r->control);
    tolk_hist_merge(&t->control_last, &r->control_last);
    s_seqstat_add(&t->seq, &r->seq);
    s_seqstat_add(&t->premark_seq, &r->premark_seq);
    for (uint32_t i = 0; i < r->nmarks && i < S_MARKS; i++) {
        s_mark_t *a = &t->marks[i];
        const s_mark_t *b = &r->marks[i];
        if (b->at_ns && (!a->at_ns || b->at_ns < a->at_ns))
            a->at_ns = b->at_ns;
        if (b->end_ns > a->end_ns)
            a->end_ns = b->end_ns;
        a->listeners += b->listeners;
        a->never_resumed += b->never_resumed;
        a->interrupted += b->interrupted;
        if (b->resume_max_ns > a->resume_max_ns)
            a->resume_max_ns = b->resume_max_ns;
        if (b->silence_max_ns > a->silence_max_ns)
            a->silence_max_ns = b->silence_max_ns;
        s_seqstat_add(&a->seq, &b->seq);
        s_ctlstat_add(&a->ctl, &b->ctl);
    }
    if (r->nmarks > t->nmarks)
        t->nmarks = r->nmarks;
    if (r->silence_max_ns > t->silence_max_ns) {
        t->silence_max_ns = r->silence_max_ns;
        t->silence_end_ns = r->silence_end_ns;
        t->silence_url = r->silence_url;
    }
    for (int i = 0; i < S_URL_FIGS; i++) {
        t->url_listeners[i] += r->url_listeners[i];
        t->url_open_end[i] += r->url_open_end[i];
        t->url_dropped[i] += r->url_dropped[i];
        s_tally_merge(&t->url_drop_codes[i], &r->url_drop_codes[i]);
        s_seqstat_add(&t->url_seq[i], &r->url_seq[i]);
        if (r->url_silence_max_ns[i] > t->url_silence_max_ns[i])
            t->url_silence_max_ns[i] = r->url_silence_max_ns[i];
    }
    t->talk_listeners += r->talk_listeners;
    t->talk_sent_ms += r->talk_sent_ms;
    t->talk_uncaptioned_ms += r->talk_uncaptioned_ms;
    if (r->talk_uncaptioned_max_ms > t->talk_uncaptioned_max_ms)
        t->talk_uncaptioned_max_ms = r->talk_uncaptioned_max_ms;
    t->talk_excess_ms += r->talk_excess_ms;
    t->speaker_refreshes += r->speaker_refreshes;
    t->speaker_refresh_attempts += r->speaker_refresh_attempts;
    if (r->speaker_away_max_ns > t->speaker_away_max_ns)
        t->speaker_away_max_ns = r->speaker_away_max_ns;
}

static FILE *s_csv; /* --csv, or NULL */

/* One figure: "name value" on stdout, "name,value" in the CSV. */
static void s_fig(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fig(const char *name, const char *fmt, ...)
{
    char v[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    printf("%s %s\n", name, v);
    if (s_csv)
        fprintf(s_csv, "%s,%s\n", name, v);
}

/* A percentile of h (ns) in microseconds. */
static double s_pct_us(const tolk_hist_t *h, double pct)
{
    return tolk_hist_percentile(h, pct) / 1e3;
}

/* The latency rows of one histogram: prefix_p50_us ... prefix_max_us. */
static void s_fig_hist(const char *prefix, const tolk_hist_t *h, bool full)
{
    char name[64];
    static const struct {
        const char *suffix;
        double pct;
        bool brief; /* also in the short set of the last-listener figures */
    } rows[] = {{"p50", 50, true},
                {"p90", 90, false},
                {"p99", 99, true},
                {"p999", 99.9, false},
                {"max", 100, true}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!full && !rows[i].brief)
            continue;
        snprintf(name, sizeof name, "%s_%s_us", prefix, rows[i].suffix);
        s_fig(name, "%.1f", rows[i].pct >= 100 ? h->max / 1e3 : s_pct_us(h, rows[i].pct));
    }
    if (full) {
        snprintf(name, sizeof name, "%s_mean_us", prefix);
        s_fig(name, "%.1f", tolk_hist_mean(h) / 1e3);
    }
}

/* The rows of one s_seqstat_t: prefix_finals ... prefix_talk_gap_ms. */
static void s_fig_seq(const char *prefix, const s_seqstat_t *q)
{
    char name[64];
    const struct {
        const char *name;
        int64_t v;
    } rows[] = {{"finals", q->finals},
                {"duplicates", q->duplicates},
                {"out_of_order", q->out_of_order},
                {"gaps", q->gaps},
                {"missed", q->missed},
                {"unnumbered", q->unnumbered},
                {"content_duplicates", q->content_duplicates},
                {"run_regressions", q->run_regressions},
                {"time_regressions", q->time_regressions},
                {"talk_gaps", q->talk_gaps},
                {"talk_gap_ms", q->talk_gap_ms},
                {"talk_gap_max_ms", q->talk_gap_max_ms}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(name, sizeof name, "%s_%s", prefix, rows[i].name);
        s_fig(name, "%lld", (long long)rows[i].v);
    }
}

/* prefix_sent, _answered, _unanswered, _cut, _repeated, _errors. */
static void s_fig_ctl(const char *prefix, const s_ctlstat_t *q)
{
    char name[64];
    const struct {
        const char *name;
        int64_t v;
    } rows[] = {{"sent", q->sent}, {"answered", q->answered}, {"unanswered", q->unanswered},
                {"cut", q->cut},   {"repeated", q->repeated}, {"errors", q->errors}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(name, sizeof name, "%s_%s", prefix, rows[i].name);
        s_fig(name, "%lld", (long long)rows[i].v);
    }
}

/* --check-seq and --speaker-refresh figures. Times of marks and silences
   are ms since the start of the measurement (measure_start_ns). */
static void s_print_checks(const s_opts_t *o, const s_result_t *r)
{
    char name[64], buf[1200];
    int64_t t0 = r->measure_start_ns;
    if (o->speaker_refresh) {
        s_fig("speaker_refreshes", "%llu", (unsigned long long)r->speaker_refreshes);
        s_fig("speaker_refresh_attempts", "%llu", (unsigned long long)r->speaker_refresh_attempts);
        s_fig("speaker_away_ms_max", "%.1f", r->speaker_away_max_ns / 1e6);
    }
    if (!o->check_seq)
        return;
    s_fig_seq("seq", &r->seq);
    s_fig("silence_ms_max", "%.1f", r->silence_max_ns / 1e6);
    s_fig("silence_end_ms", "%.1f", r->silence_end_ns ? (r->silence_end_ns - t0) / 1e6 : 0.0);
    s_fig("silence_url", "%d", r->silence_url);
    s_fig("talk_listeners", "%llu", (unsigned long long)r->talk_listeners);
    s_fig("talk_sent_ms", "%lld", (long long)r->talk_sent_ms);
    s_fig("talk_uncaptioned_ms", "%lld", (long long)r->talk_uncaptioned_ms);
    s_fig("talk_uncaptioned_max_ms", "%lld", (long long)r->talk_uncaptioned_max_ms);
    s_fig("talk_excess_ms", "%lld", (long long)r->talk_excess_ms);
    s_fig_seq("premark_seq", &r->premark_seq);
    if (o->mode == S_MODE_TOLK && o->control_rate > 0)
        s_fig_ctl("premark_control", &r->premark_ctl);
    s_fig("marks", "%u", r->nmarks);
    for (uint32_t i = 0; i < r->nmarks && i < S_MARKS; i++) {
        const s_mark_t *mk = &r->marks[i];
        snprintf(name, sizeof name, "mark%u_at_ms", i);
        s_fig(name, "%.1f", (mk->at_ns - t0) / 1e6);
        snprintf(name, sizeof name, "mark%u_window_ms", i);
        s_fig(name, "%.1f", (mk->end_ns - mk->at_ns) / 1e6);
        snprintf(name, sizeof name, "mark%u_listeners", i);
        s_fig(name, "%llu", (unsigned long long)mk->listeners);
        snprintf(name, sizeof name, "mark%u_never_resumed", i);
        s_fig(name, "%llu", (unsigned long long)mk->never_resumed);
        snprintf(name, sizeof name, "mark%u_interrupted", i);
        s_fig(name, "%llu", (unsigned long long)mk->interrupted);
        snprintf(name, sizeof name, "mark%u_resume_ms_max", i);
        s_fig(name, "%.1f", mk->resume_max_ns / 1e6);
        snprintf(name, sizeof name, "mark%u_silence_ms_max", i);
        s_fig(name, "%.1f", mk->silence_max_ns / 1e6);
        snprintf(name, sizeof name, "mark%u_seq", i);
        s_fig_seq(name, &mk->seq);
        if (o->mode == S_MODE_TOLK && o->control_rate > 0) {
            snprintf(name, sizeof name, "mark%u_control", i);
            s_fig_ctl(name, &mk->ctl);
        }
    }
    for (int u = 0; u < o->nurl && u < S_URL_FIGS; u++) {
        snprintf(name, sizeof name, "url%d_listeners", u);
        s_fig(name, "%llu", (unsigned long long)r->url_listeners[u]);
        snprintf(name, sizeof name, "url%d_open_end", u);
        s_fig(name, "%llu", (unsigned long long)r->url_open_end[u]);
        snprintf(name, sizeof name, "url%d_dropped", u);
        s_fig(name, "%llu", (unsigned long long)r->url_dropped[u]);
        snprintf(name, sizeof name, "url%d_dropped_close_codes", u);
        s_fig(name, "%s", s_tally_str(&r->url_drop_codes[u], buf, sizeof buf));
        snprintf(name, sizeof name, "url%d_silence_ms_max", u);
        s_fig(name, "%.1f", r->url_silence_max_ns[u] / 1e6);
        snprintf(name, sizeof name, "url%d_seq", u);
        s_fig_seq(name, &r->url_seq[u]);
    }
}

/* Every figure of the run. */
static void s_print(const s_opts_t *o, const s_result_t *r)
{
    static const char *modes[] = {"tolk", "mirror", "tcp"};
    char buf[1200];
    double csecs = r->first_attempt_ns && r->last_ready_ns > r->first_attempt_ns
                       ? (r->last_ready_ns - r->first_attempt_ns) / 1e9
                       : 0;
    s_fig("mode", "%s", modes[o->mode]);
    s_fig("procs", "%d", o->procs);
    s_fig("sessions", "%d", o->sessions);
    s_fig("listeners_per_session", "%d", o->listeners);
    s_fig("connections_planned", "%llu", (unsigned long long)r->planned);
    s_fig("connections", "%llu", (unsigned long long)r->established);
    s_fig("connect_failures", "%llu", (unsigned long long)r->failures);
    s_fig("connect_failure_reasons", "%s", s_tally_str(&r->connect_errors, buf, sizeof buf));
    s_fig("handshakes_per_s", "%.1f", csecs > 0 ? r->established / csecs : 0);
    s_fig("connect_seconds", "%.2f", csecs);
    /* the measurement as it ran: --duration, or less after SIGUSR2 */
    double secs = r->measure_end_ns > r->measure_start_ns
                      ? (r->measure_end_ns - r->measure_start_ns) / 1e9
                      : o->duration;
    if (secs > o->duration)
        secs = o->duration;
    s_fig("duration_s", "%.1f", secs);
    s_fig("measure_start_ns", "%lld", (long long)r->measure_start_ns);
    s_fig("measure_end_ns", "%lld", (long long)(r->measure_start_ns + (int64_t)(secs * 1e9)));
    s_fig("deliveries", "%llu", (unsigned long long)r->deliveries);
    s_fig("deliveries_per_s", "%.1f", r->deliveries / secs);
    s_fig("speaker_deliveries", "%llu", (unsigned long long)r->speaker_deliveries);
    if (o->mode == S_MODE_TOLK)
        s_fig("partials", "%llu", (unsigned long long)r->partials);
    s_fig_hist("caption", &r->caption, true);
    s_fig_hist("caption_last", &r->caption_last, false);
    s_fig("caption_last_count", "%llu", (unsigned long long)r->caption_last_n);
    s_fig("caption_last_incomplete", "%llu", (unsigned long long)r->caption_last_incomplete);
    if (o->mode == S_MODE_TOLK) {
        s_fig_ctl("control", &r->ctl);
        s_fig("control_deliveries", "%llu", (unsigned long long)r->control_deliveries);
        s_fig("speaker_control_deliveries", "%llu",
              (unsigned long long)r->speaker_control_deliveries);
        s_fig_hist("control", &r->control, true);
        s_fig_hist("control_last", &r->control_last, false);
        s_fig("control_last_count", "%llu", (unsigned long long)r->control_last_n);
        s_fig("control_last_incomplete", "%llu", (unsigned long long)r->control_last_incomplete);
        s_fig("audio_chunks_sent", "%llu", (unsigned long long)r->audio_sent);
        s_fig("audio_sends_late_ms_max", "%.3f", r->audio_late_max_ns / 1e6);
    } else
        s_fig("messages_sent", "%llu", (unsigned long long)r->messages_sent);
    s_fig("sends_late_ms_max", "%.3f", r->late_max_ns / 1e6);
    s_fig("sends_unsent", "%llu", (unsigned long long)r->sends_unsent);
    s_fig("errors", "%llu", (unsigned long long)r->errors);
    s_fig("error_codes", "%s", s_tally_str(&r->error_codes, buf, sizeof buf));
    s_fig("dropped", "%llu", (unsigned long long)r->dropped);
    s_fig("dropped_close_codes", "%s", s_tally_str(&r->drop_codes, buf, sizeof buf));
    s_fig("slow_listeners", "%llu", (unsigned long long)r->slow);
    s_fig("slow_closed", "%llu", (unsigned long long)r->slow_closed);
    s_fig("slow_close_code_1013", "%llu", (unsigned long long)s_tally_get(&r->slow_codes, "1013"));
    s_fig("slow_close_codes", "%s", s_tally_str(&r->slow_codes, buf, sizeof buf));
    s_print_checks(o, r);
}

/* --- processes ------------------------------------------------------------------ */

/* Read exactly len bytes (blocking); false on EOF or error. */
static bool s_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Write exactly len bytes; false on error. */
static bool s_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Fork the workers, start them together, merge what they send back. */
static int s_run_procs(const s_opts_t *o, s_result_t *total)
{
    int n = o->procs;
    int up[S_MAX_LIST * 4], down[S_MAX_LIST * 4]; /* parent's ends: from / to child i */
    pid_t pid[S_MAX_LIST * 4];
    bool alive[S_MAX_LIST * 4], answered[S_MAX_LIST * 4];
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < n; i++) {
        int u[2], d[2];
        if (pipe2(u, O_CLOEXEC) != 0 || pipe2(d, O_CLOEXEC) != 0) {
            perror("loadgen: pipe");
            return -1;
        }
        pid[i] = fork();
        if (pid[i] < 0) {
            perror("loadgen: fork");
            return -1;
        }
        if (pid[i] == 0) {
            s_mark_nchildren = 0;         /* a worker takes its marks itself */
            for (int j = 0; j < i; j++) { /* the parent's ends of earlier children */
                close(up[j]);
                close(down[j]);
            }
            close(u[0]);
            close(d[1]);
            s_result_t *r = calloc(1, sizeof *r);
            int rc = r ? s_worker(o, i, n, u[1], d[0], r) : -1;
            if (rc == 0 && !s_write_full(u[1], r, sizeof *r))
                rc = -1;
            free(r);
            free(total); /* the parent's, inherited: this process never fills it */
            close(u[1]);
            close(d[0]);
            exit(rc == 0 ? 0 : 1);
        }
        s_mark_children[i] = pid[i];
        s_mark_nchildren = i + 1;
        close(u[1]);
        close(d[0]);
        up[i] = u[0];
        down[i] = d[1];
        alive[i] = true;
        answered[i] = false;
    }
    /* barrier: every child connected (or dead), then one start time for all */
    int left = n;
    while (left > 0) {
        struct pollfd pfd[S_MAX_LIST * 4];
        int idx[S_MAX_LIST * 4], m = 0;
        for (int i = 0; i < n; i++)
            if (!answered[i]) {
                pfd[m] = (struct pollfd){.fd = up[i], .events = POLLIN};
                idx[m++] = i;
            }
        if (poll(pfd, (nfds_t)m, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: poll");
            break;
        }
        for (int k = 0; k < m; k++) {
            if (!pfd[k].revents)
                continue;
            int i = idx[k];
            char b;
            if (read(up[i], &b, 1) != 1) {
                fprintf(stderr, "loadgen: worker %d ended before it connected\n", i);
                alive[i] = false;
            }
            answered[i] = true;
            left--;
        }
    }
    int64_t start = s_now() + S_START_DELAY_NS;
    for (int i = 0; i < n; i++)
        if (alive[i] && !s_write_full(down[i], &start, sizeof start))
            alive[i] = false;
    s_result_t *r = calloc(1, sizeof *r);
    int got = 0;
    for (int i = 0; i < n; i++) {
        if (alive[i] && r && s_read_full(up[i], r, sizeof *r)) {
            s_result_merge(total, r);
            got++;
        } else
            fprintf(stderr, "loadgen: worker %d sent no result\n", i);
        close(up[i]);
        close(down[i]);
    }
    free(r);
    for (int i = 0; i < n; i++) {
        int status;
        while (waitpid(pid[i], &status, 0) < 0 && errno == EINTR)
            ;
    }
    return got > 0 ? 0 : -1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --mode tolk|mirror|tcp --url HOST:PORT[,...] [options]\n"
            "Open many connections to tolk, libwebsockets-test-server (mirror) or bench/floor\n"
            "(tcp) and measure delivery latency open loop.\n\n"
            "  --mode M            tolk | mirror | tcp\n"
            "  --url H:P[,H:P]     servers; connections go round-robin over them\n"
            "  --src A[,A...]      source addresses to bind (127.0.0.2, ...), round-robin\n"
            "  --procs N           worker processes [1]\n"
            "  --sessions S        sessions (speakers / senders) [1]\n"
            "  --listeners L       listeners per session [10]\n"
            "  --ramp R            new connections a second, all processes [1000]\n"
            "  --duration D        seconds of measurement once all are connected [10]\n"
            "  --caption-rate C    mirror/tcp: messages a second per sender [5]\n"
            "  --control-rate K    tolk: setVolume a second per speaker [0]\n"
            "  --audio-rate A      tolk: audio chunks a second per speaker [10]\n"
            "  --chunk-bytes B     bytes of one audio chunk [3200]\n"
            "  --message-bytes M   mirror/tcp message size [200]\n"
            "  --lang L[,L...]     tolk: listeners' targetLanguage, round-robin [en]\n"
            "  --slow PCT          percent of listeners that stop reading once joined [0]\n"
            "  --jwt-secret S      tolk: HS256 secret for speaker tokens (required in tolk mode)\n"
            "  --csv FILE          also write every figure as metric,value\n"
            "  --quiet             no progress on stderr\n"
            "  --evlib E           lws event loop: ev (libev), uv (libuv) or poll [ev]\n"
            "  --check-seq         tolk: check every final's seq per listener (duplicates,\n"
            "                      order, gaps, unnumbered finals), silences, and per SIGUSR1\n"
            "                      mark how long captions stopped; figures per --url;\n"
            "                      SIGUSR2 ends the measurement early\n"
            "  --outage-ms MS      a silence after a mark over this is an outage [1000]\n"
            "  --talk-slack-ms MS  --check-seq: talk between two source finals longer than\n"
            "                      this is speech never captioned [25]\n"
            "  --drain-s S         after the sends stop, receipts still count this long [2]\n"
            "  --speaker-refresh   tolk: a dropped speaker comes back with refreshConnection\n"
            "                      on the next --url and streams on\n"
            "  --status FILE       rewrite FILE twice a second: phase, sessions, live listeners\n"
            "  --timeline FILE     finals received per session per 100 ms, written at the end\n");
}

/* "HOST:PORT" (a ws:// or tcp:// prefix and a path are tolerated) into u. */
static bool s_parse_url(const char *arg, s_url_t *u)
{
    const char *p = strstr(arg, "://");
    p = p ? p + 3 : arg;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memrchr(p, ':', len);
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof u->host)
        return false;
    memcpy(u->host, p, (size_t)(colon - p));
    u->host[colon - p] = 0;
    u->port = atoi(colon + 1);
    char host[sizeof u->host];
    memcpy(host, u->host, sizeof host);
    snprintf(u->hosthdr, sizeof u->hosthdr, "%s:%d", host, u->port);
    struct in_addr a;
    return u->port > 0 && u->port < 65536 && inet_pton(AF_INET, u->host, &a) == 1;
}

/* Raise the open-file limit to the hard limit: one fd per connection. */
static rlim_t s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* Parse the command line into o; false (after a message) when it is wrong. */
static bool s_parse(int argc, char **argv, s_opts_t *o)
{
    enum {
        O_MODE = 256,
        O_URL,
        O_SRC,
        O_PROCS,
        O_SESSIONS,
        O_LISTENERS,
        O_RAMP,
        O_DURATION,
        O_CAPRATE,
        O_CTLRATE,
        O_AUDIORATE,
        O_CHUNK,
        O_MSG,
        O_LANG,
        O_SLOW,
        O_JWT,
        O_CSV,
        O_QUIET,
        O_EVLIB,
        O_CHECKSEQ,
        O_OUTAGE,
        O_TALKSLACK,
        O_DRAIN,
        O_SPKREFRESH,
        O_STATUS,
        O_TIMELINE,
        O_HELP
    };
    static const struct option opts[] = {{"mode", required_argument, 0, O_MODE},
                                         {"url", required_argument, 0, O_URL},
                                         {"src", required_argument, 0, O_SRC},
                                         {"procs", required_argument, 0, O_PROCS},
                                         {"sessions", required_argument, 0, O_SESSIONS},
                                         {"listeners", required_argument, 0, O_LISTENERS},
                                         {"ramp", required_argument, 0, O_RAMP},
                                         {"duration", required_argument, 0, O_DURATION},
                                         {"caption-rate", required_argument, 0, O_CAPRATE},
                                         {"control-rate", required_argument, 0, O_CTLRATE},
                                         {"audio-rate", required_argument, 0, O_AUDIORATE},
                                         {"chunk-bytes", required_argument, 0, O_CHUNK},
                                         {"message-bytes", required_argument, 0, O_MSG},
                                         {"lang", required_argument, 0, O_LANG},
                                         {"slow", required_argument, 0, O_SLOW},
                                         {"jwt-secret", required_argument, 0, O_JWT},
                                         {"csv", required_argument, 0, O_CSV},
                                         {"quiet", no_argument, 0, O_QUIET},
                                         {"evlib", required_argument, 0, O_EVLIB},
                                         {"check-seq", no_argument, 0, O_CHECKSEQ},
                                         {"outage-ms", required_argument, 0, O_OUTAGE},
                                         {"talk-slack-ms", required_argument, 0, O_TALKSLACK},
                                         {"drain-s", required_argument, 0, O_DRAIN},
                                         {"speaker-refresh", no_argument, 0, O_SPKREFRESH},
                                         {"status", required_argument, 0, O_STATUS},
                                         {"timeline", required_argument, 0, O_TIMELINE},
                                         {"help", no_argument, 0, O_HELP},
                                         {0, 0, 0, 0}};
    const char *mode = NULL, *urls = NULL, *langs = "en";
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
            case O_MODE:
                mode = optarg;
                break;
            case O_URL:
                urls = optarg;
                break;
            case O_SRC:
                o->nsrc = s_split(optarg, o->src, S_MAX_LIST);
                break;
            case O_PROCS:
                o->procs = atoi(optarg);
                break;
            case O_SESSIONS:
                o->sessions = atoi(optarg);
                break;
            case O_LISTENERS:
                o->listeners = atoi(optarg);
                break;
            case O_RAMP:
                o->ramp = atof(optarg);
                break;
            case O_DURATION:
                o->duration = atof(optarg);
                break;
            case O_CAPRATE:
                o->caption_rate = atof(optarg);
                break;
            case O_CTLRATE:
                o->control_rate = atof(optarg);
                break;
            case O_AUDIORATE:
                o->audio_rate = atof(optarg);
                break;
            case O_CHUNK:
                o->chunk_bytes = atoi(optarg);
                break;
            case O_MSG:
                o->message_bytes = atoi(optarg);
                break;
            case O_LANG:
                langs = optarg;
                break;
            case O_SLOW:
                o->slow_pct = atof(optarg);
                break;
            case O_JWT:
                o->jwt_secret = optarg;
                break;
            case O_CSV:
                o->csv = optarg;
                break;
            case O_QUIET:
                o->quiet = true;
                break;
            case O_EVLIB:
                if (strcmp(optarg, "poll") == 0)
                    o->evlib = 0;
                else if (strcmp(optarg, "ev") == 0)
                    o->evlib = LWS_SERVER_OPTION_LIBEV;
                else if (strcmp(optarg, "uv") == 0)
                    o->evlib = LWS_SERVER_OPTION_LIBUV;
                else {
                    fprintf(stderr, "loadgen: --evlib is poll, ev or uv\n");
                    return false;
                }
                break;
            case O_CHECKSEQ:
                o->check_seq = true;
                break;
            case O_OUTAGE:
                o->outage_ms = atof(optarg);
                break;
            case O_TALKSLACK:
                o->talk_slack_ms = atof(optarg);
                break;
            case O_DRAIN:
                o->drain_s = atof(optarg);
                break;
            case O_SPKREFRESH:
                o->speaker_refresh = true;
                break;
            case O_STATUS:
                o->status = optarg;
                break;
            case O_TIMELINE:
                o->timeline = optarg;
                break;
            case O_HELP:
                s_usage(stdout);
                exit(0);
            default:
                return false;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument %s\n", argv[optind]);
        return false;
    }
    if (!mode || !urls) {
        fprintf(stderr, "loadgen: --mode and --url are required\n");
        return false;
    }
    if (strcmp(mode, "tolk") == 0)
        o->mode = S_MODE_TOLK;
    else if (strcmp(mode, "mirror") == 0)
        o->mode = S_MODE_MIRROR;
    else if (strcmp(mode, "tcp") == 0)
        o->mode = S_MODE_TCP;
    else {
        fprintf(stderr, "loadgen: --mode is tolk, mirror or tcp\n");
        return false;
    }
    char *list[S_MAX_LIST];
    int n = s_split(urls, list, S_MAX_LIST);
    for (int i = 0; i < n; i++) {
        if (!s_parse_url(list[i], &o->url[o->nurl])) {
            fprintf(stderr, "loadgen: bad --url entry %s (IPv4:PORT)\n", list[i]);
            for (int k = i; k < n; k++)
                free(list[k]);
            return false;
        }
        o->nurl++;
        free(list[i]);
    }
    o->nlang = s_split(langs, o->lang, S_MAX_LIST);
    for (int i = 0; i < o->nsrc; i++) {
        struct in_addr a;
        if (inet_pton(AF_INET, o->src[i], &a) != 1) {
            fprintf(stderr, "loadgen: bad --src address %s\n", o->src[i]);
            return false;
        }
    }
    if (o->nurl < 1 || o->nlang < 1 || o->sessions < 1 || o->listeners < 0 || o->procs < 1 ||
        o->procs > S_MAX_LIST * 4 || o->duration <= 0 || o->ramp <= 0 || o->caption_rate < 0 ||
        o->control_rate < 0 || o->audio_rate < 0 || o->chunk_bytes < 2 ||
        o->chunk_bytes > 128 * 1024 || o->message_bytes < 1 || o->message_bytes > S_MAX_FRAME ||
        o->slow_pct < 0 || o->slow_pct > 100 || o->outage_ms <= 0 || o->talk_slack_ms < 0 ||
        o->drain_s < 0 || o->drain_s > 60) {
        fprintf(stderr, "loadgen: an option is out of range (see --help)\n");
        return false;
    }
    if (o->mode == S_MODE_TOLK && (!o->jwt_secret || !*o->jwt_secret)) {
        fprintf(stderr, "loadgen: tolk mode needs --jwt-secret (the system's jwt_secret)\n");
        return false;
    }
    if (o->mode == S_MODE_TOLK && o->control_rate >= 10)
        fprintf(stderr, "loadgen: warning: tolk allows 10 control messages a second per "
                        "connection, heartbeats included\n");
    if (o->mode == S_MODE_MIRROR && o->message_bytes > 4096)
        fprintf(stderr, "loadgen: warning: the mirror's rx buffer is 4096 bytes; longer "
                        "messages are mirrored in pieces\n");
    if (o->mode != S_MODE_TOLK && (o->check_seq || o->speaker_refresh)) {
        fprintf(stderr, "loadgen: --check-seq and --speaker-refresh are for tolk mode\n");
        return false;
    }
    if (o->procs > o->sessions)
        o->procs = o->sessions; /* a process owns whole sessions */
    return true;
}

int main(int argc, char **argv)
{
    s_opts_t o = {.evlib = LWS_SERVER_OPTION_LIBEV,
                  .procs = 1,
                  .sessions = 1,
                  .listeners = 10,
                  .ramp = 1000,
                  .duration = 10,
                  .caption_rate = 5,
                  .control_rate = 0,
                  .audio_rate = 10,
                  .chunk_bytes = 3200,
                  .message_bytes = 200,
                  .outage_ms = 1000,
                  .talk_slack_ms = 25,
                  .drain_s = 2};
    if (!s_parse(argc, argv, &o)) {
        s_usage(stderr);
        return 2;
    }
    rlim_t fds = s_raise_nofile();
    size_t per_proc = (size_t)((o.sessions + o.procs - 1) / o.procs) * (size_t)(1 + o.listeners);
    if (per_proc + 64 > fds)
        fprintf(stderr,
                "loadgen: warning: %zu connections per process but only %llu file descriptors; "
                "use more --procs\n",
                per_proc, (unsigned long long)fds);
    signal(SIGPIPE, SIG_IGN);
    if (o.check_seq) { /* marks; restarted calls, so no loop sees EINTR for it */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = s_on_mark;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        sa.sa_handler = s_on_end;
        sigaction(SIGUSR2, &sa, NULL);
    }
    lws_set_log_level(LLL_ERR, NULL);

    s_result_t *total = calloc(1, sizeof *total);
    int rc = -1;
    if (total) {
        if (o.procs == 1)
            rc = s_worker(&o, 0, 1, -1, -1, total);
        else
            rc = s_run_procs(&o, total);
    }
    int status = 0;
    if (rc != 0 || !total || total->established == 0) {
        fprintf(stderr, "loadgen: nothing could connect\n");
        status = 1;
    }
    if (total && rc == 0) {
        if (o.csv && !(s_csv = fopen(o.csv, "w"))) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", o.csv, strerror(errno));
            status = 1;
        }
        s_print(&o, total);
        if (s_csv)
            fclose(s_csv);
    }
    free(total);
    for (int i = 0; i < o.nsrc; i++)
        free(o.src[i]);
    for (int i = 0; i < o.nlang; i++)
        free(o.lang[i]);
    return status;
}
