/*  audio_worker.c -- the audio worker's loop: gateways, streams, APy.

    One thread, one poll: the DEALERs to the gateways and libcurl's
    sockets are waited on together (tolk_gwlink_recv_with), so a slow
    translation never holds up recognition and recognition never blocks
    a translation's reply. Housekeeping runs every quarter second.
*/
#include "audio_worker.h"
#include "asr.h"
#include "asr_vosk.h"
#include "ids.h"
#include "log.h"
#include "stream.h"
#include "targets_store.h"

#include <string.h>

#define HOUSEKEEPING_MS      250
#define DISCOVERY_RETRY_MS   2000  /* APy not answering yet */
#define DISCOVERY_REFRESH_MS 30000 /* APy answered: look again now and then */
#define TARGETS_TTL_S        90    /* the targets key outlives a few missed refreshes */

/* A warm-up translation's answer: nobody waits for it. */
static void s_warmed(void *arg, const char *target, const char *text)
{
    (void)arg;
    (void)target;
    (void)text;
}

/* APy starts each pair's pipeline on its first request (0.1 to 0.5 s):
   pay that now, not on the first caption a listener waits for. */
static void s_warm_up(audio_worker_t *self, const char *source, const char *targets)
{
    char list[sizeof self->targets];
    snprintf(list, sizeof list, "%s", targets);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, source) != 0)
            tolk_translator_submit(self->tr, source, t, "Hello.", s_warmed, NULL);
}

/* APy's pairs are in (or could not be read): publish what each source
   language reaches in Redis (tolk:targets:<source>) for the control
   workers, which validate joinSession and changeLanguage against it, and
   plan the next look. */
static void s_discovered(void *arg, bool ok)
{
    audio_worker_t *self = arg;
    int64_t now = zclock_mono();
    self->next_discovery_ms = now + (ok ? DISCOVERY_REFRESH_MS : DISCOVERY_RETRY_MS);
    if (!ok) {
        if (!self->apy_down)
            tolk_warn("discover", NULL, "APy at %s is not answering: looking again every %d ms",
                      self->cfg.apy_url, DISCOVERY_RETRY_MS);
        self->apy_down = true;
        return;
    }
    if (self->apy_down)
        tolk_info("discover", NULL, "APy at %s answers again", self->cfg.apy_url);
    self->apy_down = false;
    char sources[sizeof self->cfg.source_languages];
    snprintf(sources, sizeof sources, "%s", self->cfg.source_languages);
    for (char *save = NULL, *src = strtok_r(sources, ",", &save); src;
         src = strtok_r(NULL, ",", &save)) {
        char targets[sizeof self->targets], before[sizeof self->targets] = "";
        if (tolk_translator_targets(self->tr, src, targets, sizeof targets) < 0)
            continue;
        /* each source's last list, so a second source language does not
           make every discovery look like a change */
        tolk_targets_get(self->redis, src, before, sizeof before);
        if (strcmp(targets, before) != 0) {
            tolk_info("discover", NULL, "%s reaches %s", src, targets);
            s_warm_up(self, src, targets);
        }
        snprintf(self->targets, sizeof self->targets, "%s", targets);
        tolk_targets_set(self->redis, src, targets, TARGETS_TTL_S);
    }
}

/* Ask APy (again) when it is time; the answer comes to s_discovered
   through the translator's multi handle, so nothing here waits for APy. */
static void s_discover(audio_worker_t *self, int64_t now_ms)
{
    if (now_ms >= self->next_discovery_ms &&
        tolk_translator_discover(self->tr, self->cfg.pivot_language, s_discovered, self) == 0)
        self->next_discovery_ms = INT64_MAX; /* s_discovered sets the next */
}

static void s_audio(audio_worker_t *self, const tolk_envelope_t *env)
{
    if (env->sent_ns)
        tolk_hist_record(&self->chunk_hop, (tolk_now_ns() - env->sent_ns) / 1000);
    self->chunks_in++;
    self->bytes_in += (int64_t)env->payload_len;
    stream_t *s = zhashx_lookup(self->streams, env->session);
    if (!s) {
        s = stream_new(self, env->session);
        if (!s) {
            self->chunks_dropped++;
            return;
        }
        zhashx_insert(self->streams, env->session, s);
    }
    uint64_t t0 = tolk_now_ns();
    int rc = stream_feed(s, env->payload, env->payload_len);
    if (rc == STREAM_SUPERSEDED) {
        /* the audio is back after another worker stood in: a new stream
           (a new asrEpoch) takes it from here */
        zhashx_delete(self->streams, env->session);
        s = stream_new(self, env->session);
        if (!s) {
            self->chunks_dropped++;
            return;
        }
        zhashx_insert(self->streams, env->session, s);
        rc = stream_feed(s, env->payload, env->payload_len);
    }
    tolk_prom_hist_observe_ns(&self->chunk_processing, (int64_t)(tolk_now_ns() - t0));
    if (rc != 0) {
        tolk_info("stream", env->session, "stream closed: session ended or recogniser failed");
        zhashx_delete(self->streams, env->session);
        return;
    }
    if (env->sent_ns)
        tolk_hist_record(&self->chunk_latency, (tolk_now_ns() - env->sent_ns) / 1000);
}

/* Every stream's housekeeping; streams that are done are closed. */
static void s_housekeeping(audio_worker_t *self, int64_t now_ms)
{
    zlistx_t *gone = zlistx_new(); /* ids copied: deleting a stream frees its key */
    zlistx_set_duplicator(gone, (czmq_duplicator *)strdup);
    zlistx_set_destructor(gone, (czmq_destructor *)zstr_free);
    for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams))
        if (!stream_tick(s, now_ms))
            zlistx_add_end(gone, (void *)zhashx_cursor(self->streams));
    for (const char *sid = zlistx_first(gone); sid; sid = zlistx_next(gone)) {
        tolk_info("stream", sid, "stream closed: silent or session ended");
        zhashx_delete(self->streams, sid);
    }
    zlistx_destroy(&gone);
}

/* The counters of the status feed (the base adds its own). */
static void s_on_report(void *arg, tolk_statfeed_t *feed)
{
    audio_worker_t *self = arg;
    tolk_translator_stats_t ts;
    tolk_translator_stats(self->tr, &ts);
    tolk_statfeed_set(feed, "chunks_in", self->chunks_in);
    tolk_statfeed_set_hist(feed, "chunk_processing_seconds", &self->chunk_processing);
    tolk_statfeed_set_hist(feed, "caption_latency_seconds", &self->caption_latency);
    tolk_statfeed_set(feed, "chunks_dropped", self->chunks_dropped);
    tolk_statfeed_set(feed, "streams", (int64_t)zhashx_size(self->streams));
    tolk_statfeed_set(feed, "streams_opened", self->streams_opened);
    tolk_statfeed_set(feed, "partials_out", self->partials_out);
    tolk_statfeed_set(feed, "finals_out", self->finals_out);
    tolk_statfeed_set(feed, "untranslated", self->captions_untranslated);
    tolk_statfeed_set(feed, "finals_backfilled", self->finals_backfilled);
    tolk_statfeed_set(feed, "finals_duplicate", self->finals_duplicate);
    tolk_statfeed_set(feed, "speech_synth", self->speech_synth);
    tolk_statfeed_set(feed, "speech_failed", self->speech_failed);
    tolk_statfeed_set(feed, "translations", ts.completed);
    tolk_statfeed_set(feed, "translation_retries", ts.retries);
    tolk_statfeed_set(feed, "translation_failures", ts.failures);
    tolk_statfeed_set(feed, "translation_shed", ts.shed);
    tolk_statfeed_set(feed, "translator_down", tolk_translator_down(self->tr));
    tolk_whisper_stats_t ws;
    tolk_whisper_stats(self->whisper, &ws);
    tolk_statfeed_set(feed, "second_pass_requests", ws.requests);
    tolk_statfeed_set(feed, "second_pass_answered", ws.answered);
    tolk_statfeed_set(feed, "second_pass_late", ws.late);
    tolk_statfeed_set(feed, "second_pass_failed", ws.failed);
    tolk_statfeed_set(feed, "second_pass_ms_mean", ws.answered ? ws.ms_sum / ws.answered : 0);
    tolk_vosk_stats_t vs;
    tolk_vosk_stats(&vs);
    tolk_statfeed_set(feed, "vosk_connects", vs.connects);
    tolk_statfeed_set(feed, "vosk_failures", vs.failures);
    tolk_statfeed_set(feed, "vosk_utterances_cut", vs.lost);
    tolk_statfeed_set(feed, "vosk_finals", vs.finals);
    tolk_statfeed_set(feed, "vosk_servers_down", vs.servers_down);
    tolk_statfeed_set(feed, "translation_ms_mean",
                      ts.completed ? ts.latency_ms_sum / ts.completed : 0);
    /* real-time factor in thousandths: recognition time per audio time */
    tolk_statfeed_set(feed, "asr_rtf_milli",
                      self->audio_ms ? self->asr_ns / 1000 / self->audio_ms : 0);
    tolk_statfeed_set(feed, "chunk_hop_us_p50",
                      (int64_t)tolk_hist_percentile(&self->chunk_hop, 50));
    tolk_statfeed_set(feed, "chunk_hop_us_p99",
                      (int64_t)tolk_hist_percentile(&self->chunk_hop, 99));
    tolk_statfeed_set(feed, "chunk_hop_us_max", (int64_t)self->chunk_hop.max);
    tolk_statfeed_set(feed, "chunk_latency_us_p50",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 50));
    tolk_statfeed_set(feed, "chunk_latency_us_p95",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 95));
    tolk_statfeed_set(feed, "chunk_latency_us_p99",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 99));
    tolk_statfeed_set(feed, "chunk_latency_us_max", (int64_t)self->chunk_latency.max);
    tolk_statfeed_set(feed, "errors", self->errors);
    tolk_statfeed_set(feed, "streams_superseded", self->streams_superseded);
    tolk_statfeed_set(feed, "vocabularies", self->vocabularies);
    tolk_statfeed_set(feed, "finals_lost", self->finals_lost);
    tolk_statfeed_set(feed, "apy_down", self->apy_down);
}

/* The start-up probe's results go nowhere (it is never fed). */
static void s_discard(void *arg, const tolk_asr_result_t *result)
{
    (void)arg;
    (void)result;
}

/* zhashx destructor for streams. */
static void s_stream_free(void **item)
{
    stream_destroy((stream_t **)item);
}

/* ----------------------------------------------------------- the base's handlers */

static void s_on_message(void *arg, const char *gw, const tolk_envelope_t *env)
{
    (void)gw;
    if (env->kind == TOLK_KIND_AUDIO && env->session[0])
        s_audio(arg, env);
}

static void s_on_housekeeping(void *arg, int64_t now_ms)
{
    (void)now_ms;
    audio_worker_t *self = arg;
    if (!tolk_worker_stopping(self->base))
        s_discover(self, zclock_mono());
    s_housekeeping(self, tolk_now_ms());
}

/* At a stop, once no more audio comes: every open utterance ends now and
   its final goes out like any other; done when every lane is empty (its
   translations back or given up) or no stream is left. */
static bool s_on_finish(void *arg)
{
    audio_worker_t *self = arg;
    if (!self->finishing) {
        self->finishing = true;
        tolk_info("stop", NULL, "ending %zu open stream(s)", zhashx_size(self->streams));
        for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams))
            stream_end(s);
    }
    for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams))
        if (!stream_drained(s))
            return false;
    return true;
}

/* asr.h's IPA function: espeak-ng through speech.c, its one owner. */
static int s_ipa(void *arg, const char *text, char *ipa, size_t size)
{
    return tolk_speech_ipa(arg, text, ipa, size);
}

static void s_on_destroy(void *arg)
{
    audio_worker_t *self = arg;
    tolk_asr_set_ipa(NULL, NULL);
    zhashx_destroy(&self->streams); /* before the translator: orphans its pending captions */
    tolk_translator_destroy(&self->tr);
    tolk_whisper_destroy(&self->whisper);
    tolk_speech_destroy(&self->speech);
    tolk_asr_shutdown();
    free(self);
}

/* The translator's sockets and timer on the base's loop. */
static int s_tr_pollitems(void *arg, zmq_pollitem_t *items, int max)
{
    return tolk_translator_pollitems(arg, items, max);
}

static long s_tr_timeout(void *arg)
{
    return tolk_translator_timeout_ms(arg);
}

static void s_tr_run(void *arg, const zmq_pollitem_t *items, int n)
{
    tolk_translator_run(arg, items, n);
}

/* The second pass's sockets and timer on the base's loop. */
static int s_wh_pollitems(void *arg, zmq_pollitem_t *items, int max)
{
    return tolk_whisper_pollitems(arg, items, max);
}

static long s_wh_timeout(void *arg)
{
    return tolk_whisper_timeout_ms(arg);
}

static void s_wh_run(void *arg, const zmq_pollitem_t *items, int n)
{
    tolk_whisper_run(arg, items, n);
}

/* The streams of an engine that answers from the loop (vosk): each
   stream's connection is a poll item. Between pollitems and run the set
   of streams does not change (the base runs the sources before it
   dispatches messages), and each stream finds its own item by fd. */
static int s_vk_pollitems(void *arg, zmq_pollitem_t *items, int max)
{
    audio_worker_t *self = arg;
    int n = 0;
    for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams))
        n += stream_pollitems(s, items + n, max - n);
    return n;
}

static long s_vk_timeout(void *arg)
{
    audio_worker_t *self = arg;
    long wait = -1;
    for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams)) {
        long t = stream_timeout_ms(s);
        if (t >= 0 && (wait < 0 || t < wait))
            wait = t;
    }
    return wait;
}

static void s_vk_run(void *arg, const zmq_pollitem_t *items, int n)
{
    audio_worker_t *self = arg;
    for (stream_t *s = zhashx_first(self->streams); s; s = zhashx_next(self->streams))
        stream_run(s, items, n);
}

const char *audio_worker_model(audio_worker_t *self, const char *lang, char *buf, size_t cap)
{
    if (!self->vosk || tolk_config_vosk_url(&self->cfg, lang, buf, cap) != 0)
        return self->cfg.asr_model_dir;
    return buf;
}

/* Fail at start, not at the first chunk, when the recogniser cannot
   open: every source language's model (for vosk, its server's URL is
   parsed and its name resolved, once, here; nothing connects yet).
   Returns 0, or -1 after logging why. */
static int s_probe(audio_worker_t *self, const tolk_config_t *cfg)
{
    char sources[sizeof cfg->source_languages];
    snprintf(sources, sizeof sources, "%s", self->vosk ? cfg->source_languages : "en");
    for (char *save = NULL, *src = strtok_r(sources, ",", &save); src;
         src = strtok_r(NULL, ",", &save)) {
        char buf[TOLK_CONFIG_STR];
        const char *model = audio_worker_model(self, src, buf, sizeof buf);
        tolk_asr_stream_t *probe = tolk_asr_stream_new(self->asr_local, model, s_discard, NULL);
        if (!probe) {
            tolk_error("start", NULL, "recogniser %s cannot load %s", self->asr_local, model);
            return -1;
        }
        if (self->vosk)
            tolk_info("start", NULL, "%s speech is recognised by the vosk-server at %s", src,
                      model);
        tolk_asr_stream_destroy(&probe); /* its decoder stays pooled for the first session */
    }
    return 0;
}

/* The second pass of asr_engine = whisper, its API key read from
   whisper_api_key_file (first line). Returns 0, or -1 after logging why. */
static int s_whisper_start(audio_worker_t *self, const tolk_config_t *cfg)
{
    char key[1024] = "";
    if (cfg->whisper_api_key_file[0]) {
        FILE *f = fopen(cfg->whisper_api_key_file, "r");
        if (!f || !fgets(key, sizeof key, f)) {
            tolk_error("start", NULL, "cannot read the API key in %s", cfg->whisper_api_key_file);
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        key[strcspn(key, "\r\n")] = 0;
    }
    self->whisper =
        tolk_whisper_new(cfg->whisper_url, cfg->whisper_model, key, cfg->whisper_timeout_ms);
    if (!self->whisper) {
        tolk_error("start", NULL, "cannot set up the second pass at '%s'", cfg->whisper_url);
        return -1;
    }
    tolk_info("start", NULL, "second pass: %s (model %s), %d ms at most per utterance",
              cfg->whisper_url, cfg->whisper_model, cfg->whisper_timeout_ms);
    return 0;
}

tolk_worker_t *audio_worker_new(const tolk_config_t *cfg)
{
    audio_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->tr = tolk_translator_new(cfg->apy_url, cfg->apy_timeout_ms);
    self->streams = zhashx_new();
    if (!self->tr || !self->streams) {
        zhashx_destroy(&self->streams);
        tolk_translator_destroy(&self->tr);
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->streams, s_stream_free);
    tolk_worker_handlers_t handlers = {.on_message = s_on_message,
                                       .on_report = s_on_report,
                                       .on_finish = s_on_finish,
                                       .on_destroy = s_on_destroy};
    tolk_worker_t *base = tolk_worker_new(TOLK_WORKER_AUDIO, cfg, &handlers, self);
    if (!base)
        return NULL;
    tolk_worker_lend(base, &self->base, self->id, sizeof self->id, &self->redis, &self->link);
    tolk_worker_source_t curl = {s_tr_pollitems, s_tr_timeout, s_tr_run, self->tr};
    tolk_worker_source(self->base, &curl);
    bool two_pass = strcmp(cfg->asr_engine, "whisper") == 0;
    self->vosk = strcmp(cfg->asr_engine, "vosk") == 0;
    if (strcmp(cfg->asr_frontend, "on") != 0 && strcmp(cfg->asr_frontend, "off") != 0) {
        tolk_error("start", NULL, "asr_frontend is '%s': it must be on or off", cfg->asr_frontend);
        tolk_worker_destroy(&base); /* frees the worker too */
        return NULL;
    }
    self->frontend = strcmp(cfg->asr_frontend, "on") == 0;
    snprintf(self->asr_local, sizeof self->asr_local, "%s",
             two_pass ? "pocketsphinx" : cfg->asr_engine);
    if (two_pass) {
        if (s_whisper_start(self, cfg) != 0) {
            tolk_worker_destroy(&base); /* frees the worker too */
            return NULL;
        }
        tolk_worker_source_t second = {s_wh_pollitems, s_wh_timeout, s_wh_run, self->whisper};
        tolk_worker_source(self->base, &second);
    }
    tolk_worker_timer(self->base, HOUSEKEEPING_MS, true, s_on_housekeeping, self);
    tolk_asr_loadtest_set_period(cfg->loadtest_caption_ms);
    if (strcmp(cfg->asr_engine, "loadtest") == 0)
        tolk_warn("start", NULL,
                  "the load-test recogniser is on: captions are scripted, "
                  "one per %d ms of audio, not recognised speech",
                  cfg->loadtest_caption_ms);
    if (self->vosk) {
        tolk_worker_source_t vosk = {s_vk_pollitems, s_vk_timeout, s_vk_run, self};
        tolk_worker_source(self->base, &vosk);
    }
    if (s_probe(self, cfg) != 0) {
        tolk_worker_destroy(&base); /* frees the worker too */
        return NULL;
    }
    if (cfg->speech_enabled) {
        self->speech = tolk_speech_new(NULL);
        if (!self->speech)
            tolk_warn("start", NULL, "espeak-ng is not available: no spoken translation");
    }
    /* vocabulary words the dictionary lacks are pronounced by espeak-ng */
    if (self->speech)
        tolk_asr_set_ipa(s_ipa, self->speech);
    return base;
}

const tolk_worker_program_t audio_worker_program = {
    "tolk-audio-worker", "audio_worker",
    "Recognises each session's speech (pocketsphinx, or a vosk-server), translates it\n"
    "once per language with listeners (Apertium through APy), and sends\n"
    "the captions to the gateways.",
    audio_worker_new};
