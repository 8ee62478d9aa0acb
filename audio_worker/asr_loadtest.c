/*  asr_loadtest.c -- the load-test recogniser: a stand-in for pocketsphinx
    that emits a scripted transcript at a set rate, for benchmarks only.

    Why: pocketsphinx needs about a third of a core per live stream on the
    benchmark machine, so 100 sessions of captions cannot come from 100
    real recognisers. This engine turns audio into captions at no cost, so
    the rest of the caption path (numbering and history in Redis,
    translation through APy, fan-out by the gateways) is what a benchmark
    measures. It is chosen only by `asr_engine = loadtest` and is never the
    default; its finals say what they are ("loadtest ...").

    Every `loadtest_caption_ms` of audio fed (audio time: a speaker sending
    in real time gets one final per period of wall time) it reports one
    final, the next line of a fixed script, ending with the moment it was
    emitted (CLOCK_MONOTONIC in ns, as decimal digits) so that a load
    generator on the same machine measures the latency from the worker's
    emit to the listener. Apertium passes digits through untranslated. No
    partials: the script has nothing to be unsure of.
*/
#include "asr_stable.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SAMPLES_PER_MS 16

/* The script: short sentences of ordinary English that Apertium knows, so
   translation costs what it costs on real speech. */
static const char *const s_script[] = {
    "loadtest good morning and welcome to the conference",
    "loadtest today we talk about the future of the city",
    "loadtest the first speaker will present the new results",
    "loadtest please ask your questions at the end of the talk",
    "loadtest the project started three years ago in a small office",
    "loadtest many people helped us to build the first version",
    "loadtest we learned that simple tools are easier to trust",
    "loadtest the next part of the talk is about the results",
    "loadtest thank you very much for your attention",
    "loadtest the coffee break starts after this session",
};
#define SCRIPT_LINES (sizeof s_script / sizeof s_script[0])

/* Audio time between finals; set once at start by the worker. */
static int64_t s_period_ms = 200;

/* One stream: where it is in the script and in audio time. */
typedef struct {
    tolk_asr_hyp_fn *hyp; /* asr.c's report callback */
    void *arg;            /* and its argument */
    int64_t fed_ms;       /* audio time fed so far */
    int64_t samples_left; /* samples below one ms, carried to the next feed */
    int64_t last_ms;      /* audio time of the last final: the next one starts there */
    size_t line;          /* next script line, so each stream walks the script */
} loadtest_stream_t;

void tolk_asr_loadtest_set_period(int period_ms)
{
    s_period_ms = period_ms > 0 ? period_ms : 200;
}

/* The final for [last_ms, end_ms): the next line and the emit stamp. */
static void s_emit(loadtest_stream_t *self, int64_t end_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char text[160];
    snprintf(text, sizeof text, "%s %lld", s_script[self->line % SCRIPT_LINES],
             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    self->line++;
    self->hyp(self->arg, true, text, self->last_ms, end_ms);
    self->last_ms = end_ms;
}

static void *s_open(const char *model_dir, tolk_asr_hyp_fn *hyp, void *arg)
{
    (void)model_dir; /* nothing to load */
    loadtest_stream_t *self = calloc(1, sizeof *self);
    if (!self) {
        tolk_error("asr.open", NULL, "out of memory");
        return NULL;
    }
    self->hyp = hyp;
    self->arg = arg;
    return self;
}

static int s_feed(void *stream, const int16_t *pcm, size_t samples)
{
    (void)pcm;
    loadtest_stream_t *self = stream;
    self->samples_left += (int64_t)samples;
    self->fed_ms += self->samples_left / SAMPLES_PER_MS;
    self->samples_left %= SAMPLES_PER_MS;
    /* a chunk longer than the period carries several finals, one per period */
    while (self->fed_ms - self->last_ms >= s_period_ms)
        s_emit(self, self->last_ms + s_period_ms);
    return 0;
}

/* End of audio: whatever was fed since the last final is one more final. */
static int s_finish(void *stream)
{
    loadtest_stream_t *self = stream;
    if (self->fed_ms > self->last_ms)
        s_emit(self, self->fed_ms);
    return 0;
}

static void s_close(void *stream)
{
    free(stream);
}

static void s_shutdown(void)
{
}

const tolk_asr_engine_t tolk_asr_engine_loadtest = {
    .name = "loadtest",
    .open = s_open,
    .feed = s_feed,
    .finish = s_finish,
    .close = s_close,
    .shutdown = s_shutdown,
};
