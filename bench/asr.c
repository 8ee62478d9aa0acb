/*  asr.c -- the recognition benchmark: how fast tolk recognises speech, how
    many speakers one core carries, how many words it gets wrong in quiet
    and in noise, how well its Spanish captions read, and how long after a
    speaker stops a listener sees the final caption.

    Why: pocketsphinx is by far the most expensive part of tolk (CPU, and
    about 95 MB per live stream), halls are noisy, and the wait for the
    final after an utterance is what a listener notices. These figures size
    a deployment, decide whether the front end (audio_worker/frontend.c) is
    on by default, and show whether the streaming path (audio_worker/asr.c
    and asr_pocketsphinx.c) costs more than pocketsphinx's own batch tool on
    the same audio. docs/performance.md explains each figure.

    Five parts, printed together as one table at the end:
    1. real-time factor: tolk_asr_stream_feed in 100 ms chunks + finish,
       CPU and wall time per second of audio, against
       `pocketsphinx_continuous -infile` on the same five LibriVox files;
    2. streams per core: 1 / RTF, checked by feeding that many streams (and
       one more) round-robin in real time in this one thread, with the
       resident memory each stream costs;
    3. WER (tests/support/wer.c) of the recordings clean and with white
       noise and babble mixed in by sox at 20, 10 and 5 dB SNR, with the
       front end off and on (--tune: this part alone, more settings), and a
       row group per vocabulary of s_vocabs;
    4. a whole system (harness_start): chrF (tests/support/chrf.c) of the
       Spanish of part 3's clean recognitions, with and without the
       readable-text step, against APy's Spanish of the references; then
       the latency from the last chunk of an utterance to its final at a
       Spanish and an English listener, once with the speaker going quiet
       for 2 s after each file (the worker's 1.5 s audio-gap timeout ends
       the utterance) and once with 1 s of digital silence after each file
       (the endpointer ends it);
    5. the same latency with asr_engine = whisper, its second pass at
       tests/support/whisper_standin.py, the stand-in's own time apart.

    It never fails because something is slow: the exit status is non-zero
    only when a part could not run. --quick is a smoke run under a minute,
    --csv FILE also writes every row as CSV.
*/
#include "../audio_worker/asr.h"
#include "../audio_worker/frontend.h"
#include "../audio_worker/readable.h"
#include "chrf.h"
#include "config.h"
#include "harness.h"
#include "jwt_check.h"
#include "wer.h"
#include "wsclient.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIBRIVOX    "/usr/share/pocketsphinx/test/data/librivox"
#define MODEL       "/usr/share/pocketsphinx/model/en-us"
#define ENGINE      "pocketsphinx"
#define NFILES      5
#define RATE        16000 /* samples per second */
#define CHUNK       1600  /* samples in 100 ms, the chunk a speaker's client sends */
#define CHUNK_MS    100
#define MIN_CHUNK   50 /* samples: the gateway refuses chunks under 100 bytes */
#define MAX_STREAMS 8  /* each stream holds a ~95 MB decoder */
#define SECRET      "bench-asr-secret-0123456789abcdef"
#define WAIT_MS     5000
#define GAP_MS      2000 /* how long the speaker goes quiet after a file (gap mode) */
#define SILENCE_MS  1000 /* zeros sent after a file (silence mode) */
#define STREAM_GAP  1500 /* the audio worker's gap timeout (audio_worker/stream.c) */
#define MAX_FINALS  512
#define MAX_UTTS    64
#define MAX_ROWS    128
#define MAX_SNR     3 /* most noise levels a run mixes */

/* pocketsphinx-testdata's recordings (3.0 to 7.1 s each), by name in LIBRIVOX. */
static const char *s_names[NFILES] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930"};

/* One recording, as PCM. */
typedef struct {
    int16_t *pcm;
    size_t samples;
} s_audio_t;

/* One line of the result table. */
typedef struct {
    char section[16];
    char measure[100];
    char value[64];
} s_row_t;

/* How much of everything to run: the default run or --quick. */
typedef struct {
    int files[NFILES]; /* recordings used in parts 1 and 3 */
    int nfiles;        /* how many */
    int rtf_reps;      /* passes over the files in part 1, summed */
    double verify_s;   /* audio per stream in the real-time check of part 2 */
    bool verify_more;  /* also try one stream more than 1 / RTF */
    int gap_reps;      /* passes over the files in gap mode (0: no gap mode) */
    int silence_reps;  /* and in silence mode */
    int wer[NFILES];   /* recordings scored in part 3 (WER) and part 4 (chrF) */
    int nwer;          /* how many */
    int snr[MAX_SNR];  /* the SNRs (dB) noise is mixed in at */
    int nsnr;          /* how many */
    bool tune;         /* part 3 also tries other front-end settings (--tune) */
    bool whisper_gap;  /* part 5 also runs gap mode (silence mode always) */
    int whisper_files; /* part 5 speaks the first this many of files */
} s_plan_t;

static s_audio_t s_files[NFILES];
static s_row_t s_rows[MAX_ROWS];
static int s_nrows;
static double s_rss_base;            /* RSS before any decoder was loaded */
static volatile sig_atomic_t s_stop; /* SIGINT/SIGTERM: wind down, stop the system */

/* ------------------------------------------------------------ helpers */

/* Monotonic clock: wall durations and schedules. */
static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of the whole process (the recogniser runs in this thread). */
static int64_t s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall clock in ms, the clock of the session's createdAt. */
static int64_t s_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep to an absolute monotonic time, for real-time pacing. */
static void s_sleep_until(int64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !s_stop)
        ;
}

/* Resident memory of this process in MB, from /proc (0 when unreadable). */
static double s_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024;
}

/* Time this thread has spent runnable but waiting for a CPU (the
   scheduler's run-queue delay, /proc/thread-self/schedstat), to tell
   "too slow" from "the machine was busy"; 0 when unreadable. */
static int64_t s_runq_wait_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    long long run = 0, wait = 0;
    if (f && fscanf(f, "%lld %lld", &run, &wait) != 2)
        wait = 0;
    if (f)
        fclose(f);
    return wait;
}

/* The 1-minute load average, to tell whether other work shared the machine. */
static double s_loadavg(void)
{
    double l[1] = {0};
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

/* Add a row to the table. */
static void s_row(const char *section, const char *measure, const char *fmt, ...)
{
    if (s_nrows >= MAX_ROWS)
        return;
    s_row_t *r = &s_rows[s_nrows++];
    snprintf(r->section, sizeof r->section, "%s", section);
    snprintf(r->measure, sizeof r->measure, "%s", measure);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->value, sizeof r->value, fmt, ap);
    va_end(ap);
}

/* When the run started, for the progress lines' elapsed time. */
static int64_t s_t0_ns;

/* A progress line on stderr, with the seconds since the start: the run
   takes minutes, the table comes last. */
static void s_progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench/asr: %5.1f s: ", (double)(s_mono_ns() - s_t0_ns) / 1e9);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* qsort order for percentiles. */
static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..100) of v[0..n-1]; sorts v. */
static double s_pct(double *v, int n, double p)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, s_cmp_double);
    int rank = (int)ceil(p / 100.0 * n);
    return v[rank < 1 ? 0 : rank - 1];
}

/* "p50 / p99 ms (n)" of v as a table value. */
static void s_row_pct(const char *section, const char *measure, double *v, int n)
{
    if (n == 0) {
        s_row(section, measure, "no samples");
        return;
    }
    double p50 = s_pct(v, n, 50), p99 = s_pct(v, n, 99);
    s_row(section, measure, "%.0f / %.0f ms (n=%d)", p50, p99, n);
}

/* The PCM of one LibriVox recording (16 kHz mono; its 44-byte header skipped). */
static int s_load(int i)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.wav", LIBRIVOX, s_names[i]);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench/asr: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 44, SEEK_SET);
    size_t n = size > 44 ? (size_t)(size - 44) / 2 : 0;
    s_files[i].pcm = malloc(n * 2 + 1);
    s_files[i].samples = s_files[i].pcm ? fread(s_files[i].pcm, 2, n, f) : 0;
    fclose(f);
    return s_files[i].samples ? 0 : -1;
}

/* Seconds of audio in the plan's recordings. */
static double s_audio_s(const s_plan_t *plan)
{
    size_t n = 0;
    for (int k = 0; k < plan->nfiles; k++)
        n += s_files[plan->files[k]].samples;
    return (double)n / RATE;
}

/* ------------------------------------------- part 1: real-time factor */

/* Counts finals, to show both decoders found the utterances. */
static void s_count_final(void *arg, const tolk_asr_result_t *r)
{
    if (r->is_final)
        (*(int *)arg)++;
}

/* Wall time of finish() in part 1: the end-of-utterance pass (pocketsphinx's
   second search over the utterance), which the gap-timeout final waits for
   and which holds up every other stream of the same worker meanwhile. */
static double s_finish_ms_sum, s_finish_ms_max;

/* One recording through the streaming path in its own stream (from the
   decoder pool, so no model load is timed), fed in 100 ms chunks then
   finished, as the audio worker does. Adds its CPU and wall time. */
static int s_stream_file(const s_audio_t *a, double *cpu_s, double *wall_s, int *finals)
{
    tolk_asr_stream_t *st = tolk_asr_stream_new(ENGINE, MODEL, s_count_final, finals);
    if (!st)
        return -1;
    int64_t c0 = s_cpu_ns(), w0 = s_mono_ns();
    int rc = 0;
    for (size_t off = 0; off < a->samples && rc == 0; off += CHUNK)
        rc = tolk_asr_stream_feed(st, a->pcm + off,
                                  a->samples - off < CHUNK ? a->samples - off : CHUNK);
    int64_t f0 = s_mono_ns();
    if (rc == 0)
        rc = tolk_asr_stream_finish(st);
    double fin_ms = (double)(s_mono_ns() - f0) / 1e6;
    s_finish_ms_sum += fin_ms;
    if (fin_ms > s_finish_ms_max)
        s_finish_ms_max = fin_ms;
    *cpu_s += (double)(s_cpu_ns() - c0) / 1e9;
    *wall_s += (double)(s_mono_ns() - w0) / 1e9;
    tolk_asr_stream_destroy(&st);
    return rc;
}

/* Run pocketsphinx_continuous on one file, as the integration test does;
   its CPU time (user + system) comes from wait4's rusage. */
static int s_continuous(const char *wav, double *cpu_s, double *wall_s)
{
    int64_t w0 = s_mono_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execlp("pocketsphinx_continuous", "pocketsphinx_continuous", "-infile", wav, "-hmm",
               MODEL "/en-us", "-lm", MODEL "/en-us.lm.bin", "-dict", MODEL "/cmudict-en-us.dict",
               "-logfn", "/dev/null", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            return -1;
    *wall_s = (double)(s_mono_ns() - w0) / 1e9;
    *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
             ru.ru_stime.tv_usec / 1e6;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A WAV of 0.1 s of zeros, so one pocketsphinx_continuous run measures its
   start-up (model load) alone. Returns 0 with the path in path. */
static int s_silent_wav(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/tolk-bench-asr-XXXXXX.wav");
    int fd = mkstemps(path, 4);
    if (fd < 0)
        return -1;
    uint32_t data = RATE / 10 * 2;
    unsigned char h[44] = "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0"
                          "\x02\0\x10\0data";
    uint32_t riff = 36 + data;
    memcpy(h + 4, &riff, 4); /* little-endian host, as everywhere tolk builds */
    memcpy(h + 40, &data, 4);
    static const char zeros[RATE / 10 * 2];
    bool ok = write(fd, h, sizeof h) == (ssize_t)sizeof h &&
              write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros;
    close(fd);
    return ok ? 0 : -1;
}

/* Part 1. Returns the streaming path's CPU real-time factor, or -1. */
static double s_part_rtf(const s_plan_t *plan)
{
    s_progress("part 1: real-time factor, tolk streaming vs pocketsphinx_continuous");
    double rss0 = s_rss_mb();
    int64_t w0 = s_mono_ns();
    int dummy = 0;
    tolk_asr_stream_t *st = tolk_asr_stream_new(ENGINE, MODEL, s_count_final, &dummy);
    if (!st) {
        fprintf(stderr, "bench/asr: cannot open a %s stream on %s\n", ENGINE, MODEL);
        return -1;
    }
    double load_s = (double)(s_mono_ns() - w0) / 1e9, load_mb = s_rss_mb() - rss0;
    tolk_asr_stream_destroy(&st); /* parked in the pool for the passes */
    double audio = s_audio_s(plan);
    s_row("rtf", "audio: LibriVox files / seconds of speech", "%d / %.1f s", plan->nfiles, audio);
    s_row("rtf", "decoder load (first stream open): wall, RSS", "%.2f s, %.0f MB", load_s, load_mb);

    /* paired: each recording goes through tolk, then pocketsphinx_continuous,
       then pocketsphinx_continuous on 0.1 s of zeros (its start-up alone),
       so a change in the machine's load hits all three alike */
    char silent[64];
    bool pc_ok = s_silent_wav(silent, sizeof silent) == 0;
    double cpu = 0, wall = 0, pc_cpu = 0, pc_wall = 0, st_cpu = 0, st_wall = 0, done = 0;
    int finals = 0, runs = 0;
    for (int r = 0; r < plan->rtf_reps && !s_stop; r++)
        for (int k = 0; k < plan->nfiles && !s_stop; k++) {
            if (s_stream_file(&s_files[plan->files[k]], &cpu, &wall, &finals) != 0) {
                fprintf(stderr, "bench/asr: the streaming recogniser failed\n");
                unlink(silent);
                return -1;
            }
            char wav[512];
            snprintf(wav, sizeof wav, "%s/%s.wav", LIBRIVOX, s_names[plan->files[k]]);
            double c = 0, w = 0, c1 = 0, w1 = 0;
            pc_ok = pc_ok && s_continuous(wav, &c, &w) == 0 && s_continuous(silent, &c1, &w1) == 0;
            pc_cpu += c, pc_wall += w, st_cpu += c1, st_wall += w1;
            done += (double)s_files[plan->files[k]].samples / RATE;
            runs++;
        }
    unlink(silent);
    if (!runs)
        return -1;
    audio = done;
    double rtf = cpu / audio;
    s_row("rtf", "tolk stream (100 ms feed + finish): CPU / audio", "%.3f", rtf);
    s_row("rtf", "tolk stream (100 ms feed + finish): wall / audio", "%.3f", wall / audio);
    s_row("rtf", "tolk stream: finals (utterances) produced", "%d", finals);
    s_row("rtf", "tolk stream: finish() (end-of-utterance pass), mean / max", "%.0f / %.0f ms",
          s_finish_ms_sum / runs, s_finish_ms_max);
    if (!pc_ok) {
        s_row("rtf", "pocketsphinx_continuous -infile", "could not run");
    } else {
        s_row("rtf", "pocketsphinx_continuous, whole process: CPU / audio", "%.3f", pc_cpu / audio);
        s_row("rtf", "pocketsphinx_continuous, whole process: wall / audio", "%.3f",
              pc_wall / audio);
        s_row("rtf", "pocketsphinx_continuous start-up (0.1 s file): CPU, wall", "%.2f s, %.2f s",
              st_cpu / runs, st_wall / runs);
        s_row("rtf", "pocketsphinx_continuous minus start-up: CPU / audio", "%.3f",
              (pc_cpu - st_cpu) / audio);
    }
    return rtf;
}

/* ---------------------------------------------- part 2: streams per core */

/* Feed n streams round-robin in real time (one 100 ms chunk each per 100 ms
   of wall time) from staggered places in the recordings, and record how
   late each chunk was processed after it became available. A stream that
   keeps up is at most about one round late; one that does not falls
   further behind every round. Reports RSS per stream and the CPU share of
   this one core the n streams used. */
static int s_verify(int n, double seconds, const int16_t *all, size_t all_chunks)
{
    s_progress("part 2: %d streams in real time for %.0f s", n, seconds);
    tolk_asr_stream_t *st[MAX_STREAMS] = {0};
    int finals = 0;
    for (int i = 0; i < n; i++)
        if (!(st[i] = tolk_asr_stream_new(ENGINE, MODEL, s_count_final, &finals))) {
            for (int j = 0; j < i; j++)
                tolk_asr_stream_destroy(&st[j]);
            return -1;
        }
    double rss_n = s_rss_mb();
    int chunks = (int)(seconds * 1000 / CHUNK_MS);
    double max_lag = 0, end_lag = 0;
    int64_t c0 = s_cpu_ns(), t0 = s_mono_ns(), q0 = s_runq_wait_ns();
    int rc = 0;
    for (int k = 0; k < chunks && rc == 0 && !s_stop; k++) {
        int64_t due = t0 + (int64_t)k * CHUNK_MS * 1000000;
        s_sleep_until(due);
        for (int i = 0; i < n && rc == 0; i++) {
            size_t c = ((size_t)i * all_chunks / (size_t)n + (size_t)k) % all_chunks;
            rc = tolk_asr_stream_feed(st[i], all + c * CHUNK, CHUNK);
            double lag = (double)(s_mono_ns() - due) / 1e6;
            if (lag > max_lag)
                max_lag = lag;
            if (k == chunks - 1 && lag > end_lag)
                end_lag = lag;
        }
    }
    double wall = (double)(s_mono_ns() - t0) / 1e9, cpu = (double)(s_cpu_ns() - c0) / 1e9;
    double waited = (double)(s_runq_wait_ns() - q0) / 1e9 / wall;
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = tolk_asr_stream_finish(st[i]);
        tolk_asr_stream_destroy(&st[i]);
    }
    if (rc != 0)
        return -1;
    /* keeping up: the last round ends within about one chunk of its start.
       Behind, the loop never sleeps and should have used a whole core; time
       spent runnable but waiting for a CPU means other processes took it,
       not that tolk is too slow. */
    bool kept_up = end_lag <= 2 * CHUNK_MS;
    const char *verdict = kept_up        ? "kept up"
                          : waited < 0.1 ? "FELL BEHIND (core saturated)"
                                         : "FELL BEHIND, short of CPU (machine busy)";
    char m[100];
    snprintf(m, sizeof m, "%d streams x %.0f s in real time: slowest lag max / at end", n, seconds);
    s_row("streams", m, "%.0f / %.0f ms: %s", max_lag, end_lag, verdict);
    snprintf(m, sizeof m, "%d streams: CPU used / waiting for a CPU, per wall second", n);
    s_row("streams", m, "%.2f / %.2f", cpu / wall, waited);
    snprintf(m, sizeof m, "%d streams: RSS of the process / per stream", n);
    s_row("streams", m, "%.0f MB / %.0f MB", rss_n, (rss_n - s_rss_base) / n);
    return kept_up ? 1 : 0;
}

/* Part 2: streams per core from the RTF, checked in real time. */
static void s_part_streams(const s_plan_t *plan, double rtf)
{
    size_t samples = 0;
    for (int i = 0; i < NFILES; i++)
        samples += s_files[i].samples / CHUNK * CHUNK;
    int16_t *all = malloc(samples * 2 + 1);
    if (!all)
        return;
    size_t at = 0;
    for (int i = 0; i < NFILES; i++) {
        size_t n = s_files[i].samples / CHUNK * CHUNK;
        memcpy(all + at, s_files[i].pcm, n * 2);
        at += n;
    }
    double per_core = 1.0 / rtf;
    int n = (int)floor(per_core);
    if (n < 1)
        n = 1;
    if (n > MAX_STREAMS)
        n = MAX_STREAMS;
    s_row("streams", "streams per core from the RTF (1 / CPU RTF)", "%.2f", per_core);
    int kept = s_verify(n, plan->verify_s, all, samples / CHUNK);
    if (kept >= 0 && plan->verify_more && n < MAX_STREAMS && !s_stop)
        s_verify(n + 1, plan->verify_s, all, samples / CHUNK);
    free(all);
}

/* ------------------------------------ part 3: accuracy under noise */

/* Noise kinds mixed into the recordings. */
#define NKINDS 2
/* Most SNRs a run uses, and most conditions (clean + each kind at each). */
#define MAX_SNR   3
#define MAX_CONDS (1 + NKINDS * MAX_SNR)
/* Most front-end settings compared (off, the default, and --tune's). */
#define MAX_FE 10

static const char *const s_kinds[NKINDS] = {"white", "babble"};

/* One front-end setting: its label and options; on false: no front end. */
typedef struct {
    char label[40];
    bool on;
    tolk_frontend_opts_t opts;
} s_fe_t;

/* A vocabulary given to each stream of a "with a vocabulary" row group:
   its name, its terms (NULL-terminated) and the function that gives a
   pocketsphinx stream a vocabulary (0 on success). The list ends at the
   first entry without a name; every entry gets the rows "vocabulary NAME:
   <condition>" with the default front end. */
typedef struct {
    const char *name;
    const char *const *terms;
    int (*apply)(tolk_asr_stream_t *stream, const char *const *terms);
} s_vocab_t;

/* The recordings' names and rare words, as a speaker would give them. */
static const char *const s_librivox_terms[] = {"John Dashwood", "Dashwood",     "prudently",
                                               "ill disposed",  "cold hearted", "selfish",
                                               "amiable",       "respectable",  NULL};

/* The session vocabulary as the audio worker gives it (asr.h): its
   entries become words of the stream's decoder with a language-model
   boost (asr_pocketsphinx.c, s_teach), and keep their case. */
static int s_vocab_apply(tolk_asr_stream_t *stream, const char *const *terms)
{
    int n = 0;
    while (terms[n])
        n++;
    return tolk_asr_stream_set_vocabulary(stream, terms, n);
}

static const s_vocab_t s_vocabs[] = {{"of the recordings' names", s_librivox_terms, s_vocab_apply},
                                     {NULL, NULL, NULL}};

/* The recordings under every condition: [file][0] is the clean recording
   (s_files, not owned), then kind k at the plan's SNR s in [1 + k * nsnr + s]. */
static s_audio_t s_cond[NFILES][MAX_CONDS];
/* Achieved SNR (dB), summed over files, and clipped samples, per kind and SNR. */
static double s_snr_got[NKINDS][MAX_SNR];
static long s_clipped[NKINDS][MAX_SNR];
/* What the recogniser made of each clean recording with the default front
   end setting (asr_frontend's default), for chrF in part 4; NULL: not run. */
static char *s_clean_text[NFILES];
/* The front end's CPU seconds per second of audio (the default setting). */
static double s_fe_rtf = -1;

/* Run argv (argv[0] looked up in PATH), its output to /dev/null. 0 when it
   exited 0. */
static int s_run(const char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The PCM of a 16-bit mono WAV that sox wrote, from its "data" chunk. */
static int s_read_wav(const char *path, s_audio_t *a)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[12], c[8];
    int rc = -1;
    if (!f || fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4))
        goto done;
    while (fread(c, 1, 8, f) == 8) {
        uint32_t size;
        memcpy(&size, c + 4, 4); /* little-endian host */
        if (memcmp(c, "data", 4) != 0) {
            if (fseek(f, (long)size + (size & 1), SEEK_CUR) != 0)
                goto done;
            continue;
        }
        a->pcm = malloc(size + 2);
        a->samples = a->pcm ? fread(a->pcm, 2, size / 2, f) : 0;
        rc = a->samples ? 0 : -1;
        break;
    }
done:
    if (f)
        fclose(f);
    return rc;
}

/* Root mean square of n samples. */
static double s_rms(const int16_t *p, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)p[i] * p[i];
    return n ? sqrt(sum / (double)n) : 0;
}

/* The noise of kind k for recording i, exactly as long, in dir; its path
   in path. White: sox's whitenoise, seeded (-R) so every run mixes the
   same. Babble: the other four recordings, each repeated to that length,
   mixed (sox -m scales each by 1/4). */
static int s_make_kind(const char *dir, int i, int k, char *path, size_t cap)
{
    char len[32];
    snprintf(len, sizeof len, "%zus", s_files[i].samples); /* sox: a count of samples */
    snprintf(path, cap, "%s/%s-%d.wav", dir, s_kinds[k], i);
    if (k == 0) {
        /* the rate and channels before -n are the null input's, so the length
           in samples counts at 16 kHz */
        const char *argv[] = {"sox", "-R",    "-D", "-r",         "16000", "-c",
                              "1",   "-n",    "-b", "16",         "-e",    "signed-integer",
                              path,  "synth", len,  "whitenoise", NULL};
        return s_run(argv);
    }
    char rep[NFILES - 1][512], wav[512], times[16];
    int n = 0;
    for (int j = 0; j < NFILES; j++) {
        if (j == i)
            continue;
        snprintf(wav, sizeof wav, "%s/%s.wav", LIBRIVOX, s_names[j]);
        snprintf(rep[n], sizeof rep[n], "%s/rep-%d-%d.wav", dir, i, j);
        snprintf(times, sizeof times, "%zu", s_files[i].samples / s_files[j].samples + 1);
        const char *argv[] = {"sox", "-D", wav, rep[n], "repeat", times, "trim", "0", len, NULL};
        if (s_run(argv) != 0)
            return -1;
        n++;
    }
    const char *argv[] = {"sox", "-D", "-m", rep[0], rep[1], rep[2], rep[3], path, NULL};
    return s_run(argv);
}

/* Every noisy version of the plan's recordings, in dir. The SNR is set
   from RMS over the whole recording and the whole noise segment (the
   recordings are single utterances with little silence in them): the
   noise is mixed at gain rms(speech) / (rms(noise) * 10^(SNR/20)) by
   `sox -m -v 1 speech -v gain noise`. The achieved SNR is then measured on
   the mix itself: rms(speech) / rms(mix - speech), which also shows any
   clipping. */
static int s_make_noise(const s_plan_t *plan, const char *dir)
{
    for (int f = 0; f < plan->nwer; f++) {
        int i = plan->wer[f];
        double rms_s = s_rms(s_files[i].pcm, s_files[i].samples);
        s_cond[i][0] = s_files[i];
        for (int k = 0; k < NKINDS; k++) {
            char noise[512], speech[512];
            s_audio_t n = {0};
            if (s_make_kind(dir, i, k, noise, sizeof noise) != 0 || s_read_wav(noise, &n) != 0 ||
                n.samples < s_files[i].samples) {
                free(n.pcm);
                fprintf(stderr, "bench/asr: sox could not make the %s noise\n", s_kinds[k]);
                return -1;
            }
            double rms_n = s_rms(n.pcm, s_files[i].samples);
            free(n.pcm);
            snprintf(speech, sizeof speech, "%s/%s.wav", LIBRIVOX, s_names[i]);
            for (int s = 0; s < plan->nsnr; s++) {
                char gain[32], mix[512];
                snprintf(gain, sizeof gain, "%.6f", rms_s / (rms_n * pow(10, plan->snr[s] / 20.0)));
                snprintf(mix, sizeof mix, "%s/%s-%d-%ddB.wav", dir, s_kinds[k], i, plan->snr[s]);
                const char *argv[] = {"sox", "-D", "-m",  "-v", "1", speech,
                                      "-v",  gain, noise, mix,  NULL};
                s_audio_t *a = &s_cond[i][1 + k * plan->nsnr + s];
                if (s_run(argv) != 0 || s_read_wav(mix, a) != 0 ||
                    a->samples < s_files[i].samples) {
                    fprintf(stderr, "bench/asr: sox could not mix %s\n", mix);
                    return -1;
                }
                double d = 0;
                for (size_t x = 0; x < s_files[i].samples; x++) {
                    double e = (double)a->pcm[x] - s_files[i].pcm[x];
                    d += e * e;
                    s_clipped[k][s] += a->pcm[x] == INT16_MAX || a->pcm[x] == INT16_MIN;
                }
                d = sqrt(d / (double)s_files[i].samples);
                s_snr_got[k][s] += 20 * log10(rms_s / d);
            }
        }
    }
    return 0;
}

/* Remove dir and the files in it (flat). */
static void s_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Appends each final to the malloc'd text at arg, space-separated. */
static void s_collect(void *arg, const tolk_asr_result_t *r)
{
    char **text = arg;
    if (!r->is_final)
        return;
    size_t old = *text ? strlen(*text) : 0, add = strlen(r->text);
    char *t = realloc(*text, old + add + 2);
    if (!t)
        return;
    if (old)
        t[old++] = ' ';
    memcpy(t + old, r->text, add + 1);
    *text = t;
}

/* What one stream (front end fe, vocabulary v or NULL) makes of a: its
   finals joined, malloc'd; NULL when the recogniser failed. The front
   end's CPU time is added to *fe_cpu. Fed in 100 ms chunks and finished,
   as the audio worker does (stream.c). */
static char *s_recognise(const s_audio_t *a, const s_fe_t *fe, const s_vocab_t *v, double *fe_cpu)
{
    char *text = NULL;
    tolk_asr_stream_t *st = tolk_asr_stream_new(ENGINE, MODEL, s_collect, &text);
    tolk_frontend_t *f = st && fe->on ? tolk_frontend_new(&fe->opts) : NULL;
    int rc = !st || (fe->on && !f) ? -1 : 0;
    if (rc == 0 && v && v->apply)
        rc = v->apply(st, v->terms);
    static int16_t out[CHUNK + TOLK_FRONTEND_FRAME];
    for (size_t off = 0; off < a->samples && rc == 0; off += CHUNK) {
        const int16_t *p = a->pcm + off;
        size_t n = a->samples - off < CHUNK ? a->samples - off : CHUNK;
        if (f) {
            int64_t c0 = s_cpu_ns();
            n = tolk_frontend_process(f, p, n, out);
            *fe_cpu += (double)(s_cpu_ns() - c0) / 1e9;
            p = out;
        }
        rc = tolk_asr_stream_feed(st, p, n);
    }
    size_t n = f && rc == 0 ? tolk_frontend_flush(f, out) : 0;
    if (n)
        rc = tolk_asr_stream_feed(st, out, n);
    if (rc == 0)
        rc = tolk_asr_stream_finish(st);
    tolk_frontend_destroy(&f);
    tolk_asr_stream_destroy(&st);
    if (rc != 0) {
        free(text);
        return NULL;
    }
    return text ? text : strdup("");
}

/* Label of condition c of the plan: "clean", "white 10 dB", ... */
static void s_cond_label(const s_plan_t *plan, int c, char *out, size_t cap)
{
    if (c == 0)
        snprintf(out, cap, "clean");
    else
        snprintf(out, cap, "%s %d dB", s_kinds[(c - 1) / plan->nsnr],
                 plan->snr[(c - 1) % plan->nsnr]);
}

/* Word errors and reference words of every condition for one front end
   setting and vocabulary, over the plan's recordings. Keeps the clean
   texts when keep_clean. -1 when the recogniser failed. */
static int s_wer_run(const s_plan_t *plan, const s_fe_t *fe, const s_vocab_t *v, size_t *errors,
                     size_t *words, double *fe_cpu, double *fe_audio, bool keep_clean)
{
    int nconds = 1 + NKINDS * plan->nsnr;
    for (int c = 0; c < nconds && !s_stop; c++) {
        errors[c] = words[c] = 0;
        for (int f = 0; f < plan->nwer; f++) {
            int i = plan->wer[f];
            char *ref = wer_reference(WER_LIBRIVOX_DIR, s_names[i]);
            char *hyp = ref ? s_recognise(&s_cond[i][c], fe, v, fe_cpu) : NULL;
            if (!hyp) {
                free(ref);
                return -1;
            }
            size_t w = 0;
            errors[c] += wer_errors(ref, hyp, &w);
            words[c] += w;
            *fe_audio += (double)s_cond[i][c].samples / RATE;
            if (c == 0 && keep_clean) {
                free(s_clean_text[i]);
                s_clean_text[i] = hyp;
            } else {
                free(hyp);
            }
            free(ref);
        }
    }
    return 0;
}

/* asr_frontend as this build (and this environment) sets it: "on" or "off". */
static const char *s_frontend_default(void)
{
    static tolk_config_t cfg;
    char err[256];
    if (tolk_config_load(&cfg, "", err, sizeof err) != 0)
        return "?";
    return cfg.asr_frontend;
}

/* Part 3: WER of the recordings clean and with noise mixed in, without and
   with the front end (and, with --tune, other front-end settings), and for
   each vocabulary of s_vocabs. Returns 0, -1 when it could not run. */
static int s_part_wer(const s_plan_t *plan, double rtf)
{
    int nconds = 1 + NKINDS * plan->nsnr;
    s_progress("part 3: WER, %d recordings x %d conditions, front end off and on%s", plan->nwer,
               nconds, plan->tune ? ", and --tune's settings" : "");
    char dir[] = "/tmp/tolk-bench-asr-noise-XXXXXX";
    if (!mkdtemp(dir)) {
        s_row("wer", "noisy recordings", "could not run (no temporary directory)");
        return -1;
    }
    int64_t t0 = s_mono_ns();
    int rc = s_make_noise(plan, dir);
    s_rmdir(dir);
    if (rc != 0) {
        s_row("wer", "noisy recordings (sox)", "could not run");
        return -1;
    }
    double make_s = (double)(s_mono_ns() - t0) / 1e9;

    bool dflt_on = strcmp(s_frontend_default(), "on") == 0;
    s_fe_t fes[MAX_FE] = {{.label = "off", .on = false},
                          {.label = "on", .on = true, .opts = tolk_frontend_defaults}};
    int nfe = 2;
    if (plan->tune) {
        /* what --tune tries besides the default: the suppression depth and AGC */
        static const tolk_frontend_opts_t tries[] = {{-10, false}, {-15, false}, {-25, false},
                                                     {-40, false}, {-15, true},  {-5, true}};
        for (size_t t = 0; t < sizeof tries / sizeof tries[0] && nfe < MAX_FE; t++) {
            fes[nfe].on = true;
            fes[nfe].opts = tries[t];
            snprintf(fes[nfe].label, sizeof fes[nfe].label, "%d dB%s", tries[t].suppress_db,
                     tries[t].agc ? " + AGC" : "");
            nfe++;
        }
    }
    size_t errors[MAX_FE][MAX_CONDS], words[MAX_CONDS];
    double fe_cpu = 0, fe_audio = 0, dummy_cpu = 0, dummy_audio = 0;
    for (int e = 0; e < nfe && !s_stop; e++) {
        s_progress("part 3: front end %s", fes[e].label);
        bool dflt = e == (dflt_on ? 1 : 0);
        if (s_wer_run(plan, &fes[e], NULL, errors[e], words, e == 1 ? &fe_cpu : &dummy_cpu,
                      e == 1 ? &fe_audio : &dummy_audio, dflt) != 0) {
            s_row("wer", "recognition", "the recogniser failed");
            return -1;
        }
    }
    if (s_stop)
        return -1;
    char m[100];
    size_t nwords = 0;
    for (int f = 0; f < plan->nwer; f++) {
        char *ref = wer_reference(WER_LIBRIVOX_DIR, s_names[plan->wer[f]]);
        size_t w = 0;
        wer_errors(ref ? ref : "", "", &w);
        nwords += w;
        free(ref);
    }
    s_row("wer", "recordings / reference words / noisy versions made (sox) in", "%d / %zu / %.1f s",
          plan->nwer, nwords, make_s);
    for (int c = 0; c < nconds; c++) {
        char cl[32];
        s_cond_label(plan, c, cl, sizeof cl);
        snprintf(m, sizeof m, "%s: WER, front end off / on", cl);
        s_row("wer", m, "%.1f %% / %.1f %%", 100.0 * errors[0][c] / words[c],
              100.0 * errors[1][c] / words[c]);
    }
    for (int k = 0; k < NKINDS; k++) {
        char v[64] = "";
        long clipped = 0;
        for (int s = 0; s < plan->nsnr; s++) {
            size_t at = strlen(v);
            snprintf(v + at, sizeof v - at, "%s%.2f", s ? " / " : "", s_snr_got[k][s] / plan->nwer);
            clipped += s_clipped[k][s];
        }
        snprintf(m, sizeof m, "%s noise: SNR achieved (dB, mean of files), clipped samples",
                 s_kinds[k]);
        s_row("wer", m, "%s, %ld", v, clipped);
    }
    if (fe_audio > 0) {
        s_fe_rtf = fe_cpu / fe_audio;
        s_row("wer", "front end (speexdsp preprocess): CPU / audio", "%.4f", s_fe_rtf);
        if (rtf > 0)
            s_row("wer", "streams per core with the front end (1 / (RTF + its RTF))", "%.2f",
                  1.0 / (rtf + s_fe_rtf));
    }
    size_t noisy_off = 0, noisy_on = 0;
    for (int c = 1; c < nconds; c++)
        noisy_off += errors[0][c], noisy_on += errors[1][c];
    bool helps = noisy_on < noisy_off && errors[1][0] <= errors[0][0];
    snprintf(m, sizeof m, "front end: errors noisy off -> on, clean off -> on");
    s_row("wer", m, "%zu -> %zu, %zu -> %zu", noisy_off, noisy_on, errors[0][0], errors[1][0]);
    s_row("wer", "verdict: lowers noisy WER without raising clean WER", "%s: should be %s",
          helps ? "yes" : "no", helps ? "on" : "off");
    s_row("wer", "asr_frontend default of this build", "%s (%s)", dflt_on ? "on" : "off",
          helps == dflt_on ? "agrees" : "DISAGREES with the verdict");
    for (int e = 2; e < nfe; e++) {
        char v[64] = "";
        for (int c = 0; c < nconds; c++) {
            size_t at = strlen(v);
            snprintf(v + at, sizeof v - at, "%s%.1f", c ? " " : "",
                     100.0 * errors[e][c] / words[c]);
        }
        snprintf(m, sizeof m, "tune: front end %s: WER %% clean, white, babble", fes[e].label);
        s_row("wer", m, "%s", v);
    }
    /* one row group per vocabulary, with the front end as configured */
    for (const s_vocab_t *v = s_vocabs; v->name && !s_stop; v++) {
        size_t ve[MAX_CONDS], vw[MAX_CONDS];
        s_progress("part 3: vocabulary %s", v->name);
        if (s_wer_run(plan, &fes[dflt_on ? 1 : 0], v, ve, vw, &dummy_cpu, &dummy_audio, false) !=
            0) {
            s_row("wer", "vocabulary", "could not run");
            return -1;
        }
        for (int c = 0; c < nconds; c++) {
            char cl[32];
            s_cond_label(plan, c, cl, sizeof cl);
            snprintf(m, sizeof m, "vocabulary %s: %s: WER", v->name, cl);
            s_row("wer", m, "%.1f %%", 100.0 * ve[c] / vw[c]);
        }
    }
    return 0;
}

/* ------------------------------------------ part 4: chrF of Spanish   */

/* Collects an HTTP answer's body. */
static size_t s_body(char *data, size_t size, size_t n, void *userp)
{
    char **out = userp;
    size_t old = *out ? strlen(*out) : 0;
    char *t = realloc(*out, old + size * n + 1);
    if (!t)
        return 0;
    memcpy(t + old, data, size * n);
    t[old + size * n] = 0;
    *out = t;
    return size * n;
}

/* APy's Spanish for English text, asked as the audio worker asks
   (translator.c: POST /translate, markUnknown=no, format=txt); malloc'd,
   NULL when APy did not answer within 10 s. */
static char *s_apy(int port, const char *text)
{
    CURL *e = curl_easy_init();
    char *q = e ? curl_easy_escape(e, text, 0) : NULL;
    char *post = NULL, *body = NULL, url[128], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/translate", port);
    if (q && asprintf(&post, "langpair=en%%7Ces&markUnknown=no&format=txt&q=%s", q) >= 0) {
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        if (curl_easy_perform(e) == CURLE_OK && body) {
            json_t *j = json_loads(body, 0, NULL);
            const char *t = json_string_value(
                json_object_get(json_object_get(j, "responseData"), "translatedText"));
            out = t ? strdup(t) : NULL;
            json_decref(j);
        }
    } else {
        post = NULL;
    }
    free(post);
    free(body);
    curl_free(q);
    if (e)
        curl_easy_cleanup(e);
    return out;
}

/* pocketsphinx's bare words of a caption: its dictionary is lower case,
   so lower-casing and dropping the full stop undoes tolk_readable exactly
   (malloc'd). */
static char *s_bare(const char *caption)
{
    char *t = strdup(caption);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t n = strlen(t);
    while (n && (t[n - 1] == '.' || t[n - 1] == ' '))
        t[--n] = 0;
    return t;
}

/* text lower-cased (ASCII) with its punctuation taken out, in place: the
   form of a text when only its words are scored. */
static char *s_plain(char *text)
{
    char *w = text;
    for (char *p = text; p && *p; p++)
        if (!ispunct((unsigned char)*p))
            *w++ = (char)tolower((unsigned char)*p);
    if (w)
        *w = 0;
    return text;
}

/* chrF of the Spanish captions made from part 3's clean recognitions
   against APy's Spanish of the reference transcripts, once as tolk sends
   them (tolk_readable: a sentence) and once as bare words. The reference
   is made readable too (a transcript a person writes is a sentence).
   Rows as chrF as defined (case and punctuation count) and on the words
   only (both sides lower-cased, unpunctuated). */
static int s_part_chrf(harness_t *h, const s_plan_t *plan)
{
    int port = harness_apy_port(h);
    chrf_stats_t with = {0}, without = {0}, with_w = {0}, without_w = {0};
    int n = 0, failed = 0;
    s_progress("part 4: chrF of the Spanish captions against APy's Spanish of the references");
    for (int f = 0; f < plan->nwer; f++) {
        int i = plan->wer[f];
        if (!s_clean_text[i])
            continue;
        char *ref = wer_reference(WER_LIBRIVOX_DIR, s_names[i]);
        char *ref_r = ref ? tolk_readable(ref, true) : NULL;
        char *bare = s_bare(s_clean_text[i]);
        char *read = bare ? tolk_readable(bare, true) : NULL;
        char *es_ref = ref_r ? s_apy(port, ref_r) : NULL;
        char *es_bare = bare ? s_apy(port, bare) : NULL;
        char *es_read = read ? s_apy(port, read) : NULL;
        if (es_ref && es_bare && es_read) {
            if (n == 0) {
                s_progress("  reference: %s", es_ref);
                s_progress("  readable:  %s", es_read);
                s_progress("  bare:      %s", es_bare);
            }
            chrf_add(&with, es_read, es_ref);
            chrf_add(&without, es_bare, es_ref);
            s_plain(es_ref), s_plain(es_read), s_plain(es_bare);
            chrf_add(&with_w, es_read, es_ref);
            chrf_add(&without_w, es_bare, es_ref);
            n++;
        } else {
            failed++;
        }
        free(ref), free(ref_r), free(bare), free(read), free(es_ref), free(es_bare), free(es_read);
    }
    if (!n) {
        s_row("chrf", "chrF of the Spanish captions", "could not run (APy)");
        return -1;
    }
    s_row("chrf", "recordings scored / not translated", "%d / %d", n, failed);
    s_row("chrf", "chrF es, as defined: readable step on / off", "%.1f / %.1f", chrf_score(&with),
          chrf_score(&without));
    s_row("chrf", "chrF es, lower-cased unpunctuated: readable on / off", "%.1f / %.1f",
          chrf_score(&with_w), chrf_score(&without_w));
    return 0;
}

/* ------------------------------------------------ part 4: final latency */

/* A final caption as a listener received it. */
typedef struct {
    int64_t arrival_ns; /* when this process read it */
    int64_t end_ms;     /* its endMs: session time */
} s_final_t;

/* A listener and the finals it has received, in order. */
typedef struct {
    ws_client_t *ws;
    const char *lang;
    s_final_t finals[MAX_FINALS];
    int n;
} s_listener_t;

/* One utterance (one recording) as the speaker sent it. */
typedef struct {
    int64_t a_ms, b_ms; /* its span in the stream's audio time */
    int64_t pad_ms;     /* digital silence sent after it */
    int64_t last_ns;    /* when its last chunk was sent */
} s_utt_t;

/* One session being measured: a speaker, an English and a Spanish listener. */
typedef struct {
    ws_client_t *spk;
    s_listener_t lis[2];   /* 0: en, the source language; 1: es, through APy */
    int64_t created_ms;    /* the session's createdAt, from Redis */
    int64_t first_real_ms; /* wall clock when the first chunk was sent */
    int64_t audio_ms;      /* audio sent so far: the stream's clock */
    int64_t *sent_ns;      /* when chunk i was sent */
    int64_t *sent_end_ms;  /* the stream's audio time at the end of chunk i */
    size_t nsent, capsent;
    s_utt_t utts[MAX_UTTS];
    int nutts;
    int64_t t_next; /* when the next chunk is due */
} s_live_t;

/* Translation delay: the Spanish final's arrival minus the English one's,
   over both sessions. */
static double s_translate_ms[2 * MAX_FINALS];
static int s_ntranslate;

/* Everything that has arrived on the session's sockets, finals timestamped
   as they are read. -1 when a connection closed. */
static int s_take(s_live_t *lv)
{
    for (int i = 0; i < 2; i++) {
        s_listener_t *l = &lv->lis[i];
        char *m;
        while ((m = ws_recv_text(l->ws, 0)) != NULL) {
            int64_t t = s_mono_ns();
            json_t *j = json_loads(m, 0, NULL);
            free(m);
            const char *type = json_string_value(json_object_get(j, "type"));
            if (type && strcmp(type, "caption") == 0 &&
                !json_is_true(json_object_get(j, "isPartial")) && l->n < MAX_FINALS) {
                l->finals[l->n].arrival_ns = t;
                l->finals[l->n].end_ms = (int64_t)json_integer_value(json_object_get(j, "endMs"));
                l->n++;
            }
            json_decref(j);
        }
        if (!ws_is_open(l->ws)) {
            fprintf(stderr, "bench/asr: the %s listener was closed (%d)\n", l->lang,
                    ws_close_code(l->ws));
            return -1;
        }
    }
    char *m;
    while ((m = ws_recv_text(lv->spk, 0)) != NULL)
        free(m); /* the speaker's own captions */
    if (!ws_is_open(lv->spk)) {
        fprintf(stderr, "bench/asr: the speaker was closed (%d)\n", ws_close_code(lv->spk));
        return -1;
    }
    return 0;
}

/* Read the sockets until until_ns, so every final is stamped within a
   millisecond or so of its arrival. */
static int s_pump(s_live_t *lv, int64_t until_ns)
{
    for (;;) {
        if (s_take(lv) != 0 || s_stop)
            return -1;
        int64_t left = until_ns - s_mono_ns();
        if (left <= 0)
            return 0;
        struct pollfd p[3] = {{ws_fd(lv->lis[0].ws), POLLIN, 0},
                              {ws_fd(lv->lis[1].ws), POLLIN, 0},
                              {ws_fd(lv->spk), POLLIN, 0}};
        poll(p, 3, (int)((left + 999999) / 1000000));
    }
}

/* Send one chunk when it is due (real time), reading meanwhile. */
static int s_send(s_live_t *lv, const int16_t *pcm, size_t samples)
{
    if (s_pump(lv, lv->t_next) != 0)
        return -1;
    if (lv->nsent == lv->capsent) {
        size_t cap = lv->capsent ? 2 * lv->capsent : 1024;
        int64_t *a = realloc(lv->sent_ns, cap * sizeof *a);
        if (a)
            lv->sent_ns = a;
        int64_t *b = realloc(lv->sent_end_ms, cap * sizeof *b);
        if (b)
            lv->sent_end_ms = b;
        if (!a || !b)
            return -1;
        lv->capsent = cap;
    }
    if (lv->nsent == 0)
        lv->first_real_ms = s_real_ms();
    if (ws_send_binary(lv->spk, pcm, samples * 2) != 0) {
        fprintf(stderr, "bench/asr: sending audio failed\n");
        return -1;
    }
    lv->audio_ms += (int64_t)samples * 1000 / RATE;
    lv->sent_ns[lv->nsent] = s_mono_ns();
    lv->sent_end_ms[lv->nsent] = lv->audio_ms;
    lv->nsent++;
    lv->t_next += (int64_t)samples * 1000000000 / RATE;
    return 0;
}

/* Speak one recording in real time, then pad_ms of zeros. */
static int s_speak(s_live_t *lv, const s_audio_t *a, int64_t pad_ms)
{
    if (lv->nutts >= MAX_UTTS)
        return -1;
    s_utt_t *u = &lv->utts[lv->nutts++];
    u->a_ms = lv->audio_ms;
    u->pad_ms = pad_ms;
    for (size_t off = 0; off + MIN_CHUNK <= a->samples; off += CHUNK)
        if (s_send(lv, a->pcm + off, a->samples - off < CHUNK ? a->samples - off : CHUNK) != 0)
            return -1;
    u->b_ms = lv->audio_ms;
    u->last_ns = lv->sent_ns[lv->nsent - 1];
    static const int16_t zeros[CHUNK];
    for (int64_t t = 0; t < pad_ms; t += CHUNK_MS)
        if (s_send(lv, zeros, CHUNK) != 0)
            return -1;
    return 0;
}

/* A final's end in the stream's audio time: endMs counts from the session's
   creation, the stream from its first chunk. */
static int64_t s_audio_time(const s_live_t *lv, const s_final_t *f)
{
    return f->end_ms - (lv->first_real_ms - lv->created_ms);
}

/* The final that closed utterance u at listener li: the last one that ends
   inside the recording or the silence after it. -1 if none came. */
static int s_closing(const s_live_t *lv, int li, int u)
{
    const s_utt_t *ut = &lv->utts[u];
    const s_listener_t *l = &lv->lis[li];
    int best = -1;
    for (int j = 0; j < l->n; j++) {
        int64_t am = s_audio_time(lv, &l->finals[j]);
        if (am > ut->a_ms && am <= ut->b_ms + ut->pad_ms + 50)
            best = j;
    }
    return best;
}

/* Both listeners have the last utterance's final. */
static bool s_caught_up(const s_live_t *lv)
{
    return s_closing(lv, 0, lv->nutts - 1) >= 0 && lv->lis[1].n >= lv->lis[0].n;
}

/* Open a session: the speaker (token minted with the system's secret), then
   an English and a Spanish listener; createdAt from Redis. */
static int s_open_session(harness_t *h, s_live_t *lv, const char *sub)
{
    int port = harness_gateway_port(h, 0);
    char *token = tolk_jwt_mint(TOLK_JWT_HS256, (const unsigned char *)SECRET, strlen(SECRET), sub,
                                NULL, NULL, 3600, time(NULL));
    char path[4096];
    snprintf(path, sizeof path,
             "/ws?action=createSession&sourceLanguage=en&qualityTier=standard&token=%s",
             token ? token : "");
    free(token);
    lv->spk = ws_connect("127.0.0.1", port, path, NULL, WAIT_MS);
    char *m = lv->spk ? ws_recv_type(lv->spk, "sessionCreated", WAIT_MS) : NULL;
    json_t *j = m ? json_loads(m, 0, NULL) : NULL;
    free(m);
    const char *sid = json_string_value(json_object_get(j, "sessionId"));
    if (!sid) {
        fprintf(stderr, "bench/asr: no session: %s\n",
                lv->spk ? "no sessionCreated" : ws_last_error());
        json_decref(j);
        return -1;
    }
    redisReply *r = harness_redis(h)
                        ? redisCommand(harness_redis(h), "HGET tolk:{%s}:session createdAt", sid)
                        : NULL;
    lv->created_ms = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    if (r)
        freeReplyObject(r);
    static const char *langs[2] = {"en", "es"};
    for (int i = 0; i < 2; i++) {
        lv->lis[i].lang = langs[i];
        snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", sid,
                 langs[i]);
        lv->lis[i].ws = ws_connect("127.0.0.1", port, path, NULL, WAIT_MS);
        m = lv->lis[i].ws ? ws_recv_type(lv->lis[i].ws, "sessionJoined", WAIT_MS) : NULL;
        if (!m) {
            fprintf(stderr, "bench/asr: the %s listener could not join %s\n", langs[i], sid);
            json_decref(j);
            return -1;
        }
        free(m);
    }
    json_decref(j);
    if (!lv->created_ms) {
        fprintf(stderr, "bench/asr: no createdAt for %s in Redis\n", sid);
        return -1;
    }
    return 0;
}

/* Close the speaker cleanly (the session then ends) and drop the listeners. */
static void s_close_session(s_live_t *lv)
{
    if (lv->spk)
        ws_close(lv->spk, 1000, "done");
    ws_destroy(&lv->spk);
    ws_destroy(&lv->lis[0].ws);
    ws_destroy(&lv->lis[1].ws);
    free(lv->sent_ns);
    free(lv->sent_end_ms);
}

/* Rows for one mode: latency from each utterance's last chunk to its final
   at each listener, and what ended the utterances. */
static void s_report_mode(const s_live_t *lv, bool gap, const char *section)
{
    const char *mode = gap ? "gap 2 s" : "silence 1 s";
    char m[100];
    for (int li = 0; li < 2; li++) {
        double v[MAX_UTTS], after_gap[MAX_UTTS];
        int n = 0, ngap = 0, by_timer = 0, by_endpointer = 0, missed = 0;
        for (int u = 0; u < lv->nutts; u++) {
            int j = s_closing(lv, li, u);
            if (j < 0) {
                missed++;
                continue;
            }
            const s_final_t *f = &lv->lis[li].finals[j];
            double lat = (double)(f->arrival_ns - lv->utts[u].last_ns) / 1e6;
            v[n++] = lat;
            /* gap mode: finish() ends the utterance exactly where the audio
               stopped; the endpointer (on silence inside the recording) ends
               it where speech stopped, before that */
            if (llabs(s_audio_time(lv, f) - lv->utts[u].b_ms) <= 100) {
                by_timer++;
                after_gap[ngap++] = lat - STREAM_GAP;
            } else {
                by_endpointer++;
            }
        }
        snprintf(m, sizeof m, "%s: last chunk -> final at %s listener, p50 / p99", mode,
                 lv->lis[li].lang);
        s_row_pct(section, m, v, n);
        if (li == 0 && gap) {
            snprintf(m, sizeof m, "%s: utterances ended by gap timeout / endpointer / no final",
                     mode);
            s_row(section, m, "%d / %d / %d", by_timer, by_endpointer, missed);
        } else if (li == 0) {
            /* the audio never stops here: only the endpointer ends utterances */
            snprintf(m, sizeof m, "%s: utterances ended by the endpointer / no final", mode);
            s_row(section, m, "%d / %d", by_timer + by_endpointer, missed);
        }
        if (gap) {
            snprintf(m, sizeof m, "%s: the same minus the 1.5 s gap timeout (%s, timeout ones)",
                     mode, lv->lis[li].lang);
            s_row_pct(section, m, after_gap, ngap);
        }
    }
    if (!gap)
        for (int li = 0; li < 2; li++) {
            /* every final, from when the audio at its endMs was sent */
            double v[MAX_FINALS];
            int n = 0;
            const s_listener_t *l = &lv->lis[li];
            for (int j = 0; j < l->n; j++) {
                int64_t am = s_audio_time(lv, &l->finals[j]);
                size_t c = 0;
                while (c + 1 < lv->nsent && lv->sent_end_ms[c] < am)
                    c++;
                v[n++] = (double)(l->finals[j].arrival_ns - lv->sent_ns[c]) / 1e6;
            }
            snprintf(m, sizeof m, "%s: speech end (endMs) -> final at %s, every final", mode,
                     l->lang);
            s_row_pct(section, m, v, n);
        }
    int pairs = lv->lis[0].n < lv->lis[1].n ? lv->lis[0].n : lv->lis[1].n;
    for (int j = 0; j < pairs && s_ntranslate < 2 * MAX_FINALS; j++)
        s_translate_ms[s_ntranslate++] =
            (double)(lv->lis[1].finals[j].arrival_ns - lv->lis[0].finals[j].arrival_ns) / 1e6;
}

/* One session in one mode: the plan's recordings reps times over, in real
   time. Gap mode: the speaker stops for 2 s after each recording (longer
   only if a final is still on its way). Silence mode: 1 s of zeros after
   each, then the next at once. */
static int s_mode(harness_t *h, const s_plan_t *plan, bool gap, const char *section)
{
    int reps = gap ? plan->gap_reps : plan->silence_reps;
    s_progress("%s: latency, %s mode, %d x %d recordings in real time (~%.0f s)", section,
               gap ? "2 s gap" : "1 s silence", reps, plan->nfiles,
               reps * (s_audio_s(plan) + plan->nfiles * (gap ? GAP_MS : SILENCE_MS) / 1000.0));
    s_live_t *lv = calloc(1, sizeof *lv);
    if (!lv)
        return -1;
    int rc = s_open_session(h, lv, gap ? "bench-gap" : "bench-silence");
    lv->t_next = s_mono_ns();
    for (int r = 0; r < reps && rc == 0; r++)
        for (int k = 0; k < plan->nfiles && rc == 0; k++) {
            rc = s_speak(lv, &s_files[plan->files[k]], gap ? 0 : SILENCE_MS);
            if (rc != 0 || !gap)
                continue;
            rc = s_pump(lv, lv->utts[lv->nutts - 1].last_ns + (int64_t)GAP_MS * 1000000);
            int64_t limit = s_mono_ns() + 5000000000;
            while (rc == 0 && !s_caught_up(lv) && s_mono_ns() < limit)
                rc = s_pump(lv, s_mono_ns() + 50000000);
            lv->t_next = s_mono_ns();
        }
    /* silence mode: keep the silence going until the last final is in */
    static const int16_t zeros[CHUNK];
    int64_t limit = s_mono_ns() + 4000000000;
    while (rc == 0 && !gap && !s_caught_up(lv) && s_mono_ns() < limit)
        rc = s_send(lv, zeros, CHUNK);
    if (rc == 0)
        s_report_mode(lv, gap, section);
    s_close_session(lv);
    free(lv);
    return rc;
}

/* Part 4: a whole system (1 gateway, 1 control worker, 1 audio worker, APy),
   always stopped again; chrF is scored with its APy while it runs. */
static int s_part_latency(const s_plan_t *plan)
{
    s_progress("part 4: starting a system (1 gateway, 1 audio worker)");
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .audio_workers = 1,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_IDLE_TIMEOUT_S=600", NULL}};
    harness_t *h = harness_start(&opts);
    if (!h) {
        s_row("latency", "whole system", "could not start");
        return -1;
    }
    /* chrF first: its rows then stay apart from the latency rows */
    int chrf_rc = s_part_chrf(h, plan);
    int rc = s_stop ? -1 : plan->gap_reps ? s_mode(h, plan, true, "latency") : 0;
    if (rc == 0 && !s_stop)
        rc = s_mode(h, plan, false, "latency");
    s_row_pct("latency", "es final after en final (APy translation), p50 / p99", s_translate_ms,
              s_ntranslate);
    s_progress("part 4: stopping the system");
    int problems = harness_stop(&h);
    s_row("latency", "harness_stop: sanitizer or crash reports in the logs", "%d", problems);
    if (rc != 0)
        s_row("latency", "latency run", "did not finish");
    return rc != 0 ? rc : chrf_rc;
}

/* ---------------------------------- part 5: the two-pass whisper path */

/* GET path of the stand-in at port as JSON, NULL when it does not answer. */
static json_t *s_standin_get(int port, const char *path)
{
    char url[128], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    json_t *j = rc == CURLE_OK && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return j;
}

/* Part 5: the latency of finals with asr_engine = whisper, its second pass
   at tests/support/whisper_standin.py (a STAND-IN that recognises with
   pocketsphinx_continuous per request), and the stand-in's own time per
   request from its log, so what tolk adds shows apart from what the server
   takes. A real Whisper-class server's time is its own (model size, GPU):
   docs/operations.md. */
static int s_part_whisper(const s_plan_t *plan)
{
    s_progress("part 5: starting the whisper stand-in and a system with asr_engine = whisper");
    int port = harness_free_ports(1);
    const char *top = getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".";
    char script[1024], ports[16], url[160];
    snprintf(script, sizeof script, "%s/tests/support/whisper_standin.py", top);
    snprintf(ports, sizeof ports, "%d", port);
    pid_t pid = port > 0 ? fork() : -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        /* Debian's python3, which has python3-pocketsphinx */
        execl("/usr/bin/python3", "python3", script, "--port", ports, (char *)NULL);
        _exit(127);
    }
    json_t *log = NULL;
    for (int i = 0; pid > 0 && i < 100 && !log && !s_stop; i++) /* Python starts in < 10 s */
        if (!(log = s_standin_get(port, "/standin/log")))
            usleep(100000);
    if (!log) {
        s_row("whisper", "whisper stand-in", "could not start");
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    json_decref(log);
    snprintf(url, sizeof url, "TOLK_WHISPER_URL=http://127.0.0.1:%d/v1/audio/transcriptions", port);
    harness_opts_t opts = {
        .gateways = 1,
        .control_workers = 1,
        .audio_workers = 1,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET,
                      "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=", "TOLK_IDLE_TIMEOUT_S=600",
                      "TOLK_ASR_ENGINE=whisper", url, "TOLK_WHISPER_TIMEOUT_MS=10000", NULL}};
    harness_t *h = harness_start(&opts);
    int rc = h ? 0 : -1;
    if (!h)
        s_row("whisper", "whole system with asr_engine = whisper", "could not start");
    s_ntranslate = 0;
    s_plan_t wp = *plan;
    if (wp.whisper_files < wp.nfiles)
        wp.nfiles = wp.whisper_files;
    if (rc == 0 && plan->whisper_gap)
        rc = s_mode(h, &wp, true, "whisper");
    if (rc == 0 && !s_stop)
        rc = s_mode(h, &wp, false, "whisper");
    log = rc == 0 ? s_standin_get(port, "/standin/log") : NULL;
    double own[MAX_UTTS];
    int nown = 0, answered = 0;
    size_t k;
    json_t *entry;
    json_array_foreach(log, k, entry)
    {
        if (json_integer_value(json_object_get(entry, "status")) == 200)
            answered++;
        json_t *a = json_object_get(entry, "answered_ms"),
               *r = json_object_get(entry, "received_ms");
        if (a && r && nown < MAX_UTTS)
            own[nown++] = (double)(json_integer_value(a) - json_integer_value(r));
    }
    if (log) {
        s_row("whisper", "stand-in requests answered 200 / made", "%d / %zu", answered,
              json_array_size(log));
        s_row_pct("whisper", "stand-in's own time (request in -> answer out), p50 / p99", own,
                  nown);
    }
    json_decref(log);
    if (h) {
        s_row_pct("whisper", "es final after en final (APy translation), p50 / p99", s_translate_ms,
                  s_ntranslate);
        s_progress("part 5: stopping the system");
        s_row("whisper", "harness_stop: sanitizer or crash reports in the logs", "%d",
              harness_stop(&h));
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (rc != 0)
        s_row("whisper", "two-pass latency run", "did not finish");
    return rc;
}

/* ------------------------------------------------------------- main */

/* Ctrl-C or SIGTERM: finish the current step, stop the system, print. */
static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* The table on stdout, and the same rows as CSV when asked. */
static int s_print(const char *csv)
{
    int w = 0;
    for (int i = 0; i < s_nrows; i++)
        if ((int)strlen(s_rows[i].measure) > w)
            w = (int)strlen(s_rows[i].measure);
    printf("\n%-8s  %-*s  %s\n", "part", w, "measure", "value");
    for (int i = 0; i < s_nrows; i++) {
        if (i && strcmp(s_rows[i].section, s_rows[i - 1].section) != 0)
            printf("\n");
        printf("%-8s  %-*s  %s\n", s_rows[i].section, w, s_rows[i].measure, s_rows[i].value);
    }
    if (!csv)
        return 0;
    FILE *f = fopen(csv, "w");
    if (!f) {
        fprintf(stderr, "bench/asr: cannot write %s: %s\n", csv, strerror(errno));
        return -1;
    }
    fprintf(f, "part,measure,value\n");
    for (int i = 0; i < s_nrows; i++)
        fprintf(f, "%s,\"%s\",\"%s\"\n", s_rows[i].section, s_rows[i].measure, s_rows[i].value);
    fclose(f);
    return 0;
}

/* Parts 1 to 3 in order (a later part needs the earlier one's RTF), then
   the table. */
int main(int argc, char **argv)
{
    s_plan_t plan = {.files = {0, 1, 2, 3, 4},
                     .nfiles = NFILES,
                     .rtf_reps = 1,
                     .verify_s = 10,
                     .verify_more = true,
                     .gap_reps = 3,
                     .silence_reps = 1,
                     .wer = {0, 1, 2, 3, 4},
                     .nwer = NFILES,
                     .snr = {20, 10, 5},
                     .nsnr = 3,
                     .whisper_gap = true,
                     .whisper_files = NFILES};
    bool tune = false, wer_only = false;
    const char *csv = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            /* the shortest recording, once; no extra stream count; scored
               at one noise level; latency in silence mode only: under a
               minute even on a busy machine */
            plan = (s_plan_t){.files = {1},
                              .nfiles = 1,
                              .rtf_reps = 1,
                              .verify_s = 3,
                              .verify_more = false,
                              .gap_reps = 0,
                              .silence_reps = 1,
                              .wer = {1},
                              .nwer = 1,
                              .snr = {10},
                              .nsnr = 1,
                              .whisper_gap = false,
                              .whisper_files = 1};
        } else if (strcmp(argv[i], "--tune") == 0) {
            tune = true;
        } else if (strcmp(argv[i], "--wer") == 0) {
            wer_only = true;
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            csv = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--tune] [--wer] [--csv FILE]\n"
                    "  recognition benchmark: real-time factor, streams per core, WER clean\n"
                    "  and with noise with and without the front end, chrF of the Spanish\n"
                    "  captions, latency of finals through a whole system with pocketsphinx\n"
                    "  and with the two-pass whisper path; --tune runs the WER part alone,\n"
                    "  with more front-end settings (suppression depth, AGC); --wer runs it\n"
                    "  alone as the full run has it (with the vocabulary rows)\n",
                    argv[0]);
            return 2;
        }
    }
    plan.tune = tune;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int64_t t0 = s_mono_ns();
    s_t0_ns = t0;
    double load0 = s_loadavg();
    for (int i = 0; i < NFILES; i++)
        if (s_load(i) != 0)
            return 1;
    s_rss_base = s_rss_mb();
    s_row("machine", "online CPUs / 1-min load average at start", "%ld / %.2f",
          sysconf(_SC_NPROCESSORS_ONLN), load0);

    int rc = 0;
    bool alone = tune || wer_only; /* part 3 alone */
    double rtf = alone ? -1 : s_part_rtf(&plan);
    if (rtf <= 0 && !alone)
        rc = 1;
    if (rc == 0 && !s_stop && !alone)
        s_part_streams(&plan, rtf);
    /* each later part runs even when one before it could not */
    if (!s_stop && s_part_wer(&plan, rtf) != 0)
        rc = 1;
    if (!s_stop && !alone && s_part_latency(&plan) != 0)
        rc = 1;
    if (!s_stop && !alone && s_part_whisper(&plan) != 0)
        rc = 1;
    s_row("machine", "1-min load average at end / benchmark wall time", "%.2f / %.0f s",
          s_loadavg(), (double)(s_mono_ns() - t0) / 1e9);
    /* keep the machine rows together at the top */
    s_row_t last = s_rows[s_nrows - 1];
    memmove(&s_rows[2], &s_rows[1], (size_t)(s_nrows - 2) * sizeof *s_rows);
    s_rows[1] = last;
    if (s_print(csv) != 0)
        rc = 1;
    tolk_asr_shutdown();
    for (int i = 0; i < NFILES; i++) {
        for (int c = 1; c < MAX_CONDS; c++)
            free(s_cond[i][c].pcm);
        free(s_clean_text[i]);
        free(s_files[i].pcm);
    }
    curl_global_cleanup();
    return s_stop ? 1 : rc;
}
