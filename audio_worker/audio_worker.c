/*  audio_worker.c -- the audio worker's loop: gateways, streams, APy.

    One thread, one poll: the DEALERs to the gateways and libcurl's
    sockets are waited on together (tolk_gwlink_recv_with), so a slow
    translation never holds up recognition and recognition never blocks
    a translation's reply. Housekeeping runs every quarter second.
*/
#include "audio_worker.h"
#include "asr.h"
#include "ids.h"
#include "log.h"
#include "stream.h"

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

/* Ask APy what each source language reaches, and publish it in Redis
   (tolk:targets:<source>) for the control workers, which validate
   joinSession and changeLanguage against it. */
static void s_discover(audio_worker_t *self, int64_t now_ms)
{
    if (now_ms < self->next_discovery_ms)
        return;
    char sources[sizeof self->cfg.source_languages];
    snprintf(sources, sizeof sources, "%s", self->cfg.source_languages);
    bool ok = true;
    for (char *save = NULL, *src = strtok_r(sources, ",", &save); src;
         src = strtok_r(NULL, ",", &save)) {
        char targets[sizeof self->targets];
        int n = tolk_translator_discover(self->tr, src, self->cfg.pivot_language, targets,
                                         sizeof targets);
        if (n < 0) {
            ok = false;
            continue;
        }
        if (strcmp(targets, self->targets) != 0) {
            tolk_info("discover", NULL, "%s reaches %s", src, targets);
            s_warm_up(self, src, targets);
        }
        snprintf(self->targets, sizeof self->targets, "%s", targets);
        redisReply *r = tolk_redis_command(self->redis, "SET tolk:targets:%s %s EX %d", src,
                                           targets, TARGETS_TTL_S);
        if (r)
            freeReplyObject(r);
    }
    if (!ok)
        tolk_warn("discover", NULL, "APy at %s is not answering yet", self->cfg.apy_url);
    self->next_discovery_ms = now_ms + (ok ? DISCOVERY_REFRESH_MS : DISCOVERY_RETRY_MS);
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

static void s_status(audio_worker_t *self)
{
    if (!self->feed)
        return;
    tolk_translator_stats_t ts;
    tolk_translator_stats(self->tr, &ts);
    tolk_statfeed_set(self->feed, "chunks_in", self->chunks_in);
    tolk_statfeed_set(self->feed, "chunks_dropped", self->chunks_dropped);
    tolk_statfeed_set(self->feed, "streams", (int64_t)zhashx_size(self->streams));
    tolk_statfeed_set(self->feed, "streams_opened", self->streams_opened);
    tolk_statfeed_set(self->feed, "partials_out", self->partials_out);
    tolk_statfeed_set(self->feed, "finals_out", self->finals_out);
    tolk_statfeed_set(self->feed, "untranslated", self->captions_untranslated);
    tolk_statfeed_set(self->feed, "finals_backfilled", self->finals_backfilled);
    tolk_statfeed_set(self->feed, "speech_synth", self->speech_synth);
    tolk_statfeed_set(self->feed, "speech_failed", self->speech_failed);
    tolk_statfeed_set(self->feed, "translations", ts.completed);
    tolk_statfeed_set(self->feed, "translation_retries", ts.retries);
    tolk_statfeed_set(self->feed, "translation_failures", ts.failures);
    tolk_statfeed_set(self->feed, "translation_ms_mean",
                      ts.completed ? ts.latency_ms_sum / ts.completed : 0);
    /* real-time factor in thousandths: recognition time per audio time */
    tolk_statfeed_set(self->feed, "asr_rtf_milli",
                      self->audio_ms ? self->asr_ns / 1000 / self->audio_ms : 0);
    tolk_statfeed_set(self->feed, "chunk_hop_us_p50",
                      (int64_t)tolk_hist_percentile(&self->chunk_hop, 50));
    tolk_statfeed_set(self->feed, "chunk_hop_us_p99",
                      (int64_t)tolk_hist_percentile(&self->chunk_hop, 99));
    tolk_statfeed_set(self->feed, "chunk_hop_us_max", (int64_t)self->chunk_hop.max);
    tolk_statfeed_set(self->feed, "chunk_latency_us_p50",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 50));
    tolk_statfeed_set(self->feed, "chunk_latency_us_p95",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 95));
    tolk_statfeed_set(self->feed, "chunk_latency_us_p99",
                      (int64_t)tolk_hist_percentile(&self->chunk_latency, 99));
    tolk_statfeed_set(self->feed, "chunk_latency_us_max", (int64_t)self->chunk_latency.max);
    tolk_statfeed_set(self->feed, "gateways", tolk_gwlink_count(self->link));
    tolk_statfeed_set(self->feed, "errors", self->errors);
    tolk_statfeed_set(self->feed, "stale_dropped", self->stale_dropped);
    tolk_statfeed_set(self->feed, "streams_superseded", self->streams_superseded);
    tolk_statfeed_set(self->feed, "finals_lost", self->finals_lost);
    tolk_statfeed_report(self->feed, self->redis);
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

audio_worker_t *audio_worker_new(const tolk_config_t *cfg)
{
    audio_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    tolk_make_id(self->id, sizeof self->id, "audio");
    self->redis = tolk_redis_new(cfg->redis_host, cfg->redis_port, cfg->redis_timeout_ms);
    self->link = tolk_gwlink_new("audio", self->id);
    self->feed = tolk_statfeed_new(cfg->status_endpoint, "audio", self->id);
    self->tr = tolk_translator_new(cfg->apy_url, cfg->apy_timeout_ms);
    self->streams = zhashx_new();
    if (!self->redis || !self->link || !self->tr || !self->streams) {
        audio_worker_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->streams, s_stream_free);
    tolk_asr_loadtest_set_period(cfg->loadtest_caption_ms);
    if (strcmp(cfg->asr_engine, "loadtest") == 0)
        tolk_warn("start", NULL,
                  "the load-test recogniser is on: captions are scripted, "
                  "one per %d ms of audio, not recognised speech",
                  cfg->loadtest_caption_ms);
    /* fail at start, not at the first chunk, when the model is missing */
    tolk_asr_stream_t *probe =
        tolk_asr_stream_new(cfg->asr_engine, cfg->asr_model_dir, s_discard, NULL);
    if (!probe) {
        tolk_error("start", NULL, "recogniser %s cannot load %s", cfg->asr_engine,
                   cfg->asr_model_dir);
        audio_worker_destroy(&self);
        return NULL;
    }
    tolk_asr_stream_destroy(&probe); /* its decoder stays pooled for the first session */
    if (cfg->speech_enabled) {
        self->speech = tolk_speech_new(NULL);
        if (!self->speech)
            tolk_warn("start", NULL, "espeak-ng is not available: no spoken translation");
    }
    return self;
}

void audio_worker_destroy(audio_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    audio_worker_t *self = *self_p;
    zhashx_destroy(&self->streams); /* before the translator: orphans its pending captions */
    tolk_translator_destroy(&self->tr);
    tolk_speech_destroy(&self->speech);
    tolk_gwlink_destroy(&self->link);
    tolk_statfeed_retire(&self->feed, self->redis);
    tolk_redis_destroy(&self->redis);
    tolk_asr_shutdown();
    free(self);
    *self_p = NULL;
}

int audio_worker_run(audio_worker_t *self)
{
    int64_t next_beat = 0, next_house = 0;
    zmq_pollitem_t items[TOLK_GWLINK_EXTRA_MAX];
    int64_t stall_ms = (int64_t)self->cfg.heartbeat_ms * self->cfg.heartbeat_misses;
    while (!zsys_interrupted) {
        int stale = tolk_gwlink_drop_stale(self->link, stall_ms);
        if (stale > 0) {
            self->stale_dropped += stale;
            next_beat = 0; /* tell the gateways at once that we are back */
        }
        int64_t now = zclock_mono();
        if (now >= next_beat) {
            tolk_gwlink_tick(self->link, self->redis);
            s_status(self);
            next_beat = now + self->cfg.heartbeat_ms;
        }
        if (now >= next_house) {
            s_discover(self, tolk_now_ms());
            s_housekeeping(self, tolk_now_ms());
            next_house = now + HOUSEKEEPING_MS;
        }
        int64_t wait = (next_beat < next_house ? next_beat : next_house) - now;
        long curl_wait = tolk_translator_timeout_ms(self->tr);
        if (curl_wait >= 0 && curl_wait < wait)
            wait = curl_wait;
        if (wait < 0)
            wait = 0;
        int n = tolk_translator_pollitems(self->tr, items, TOLK_GWLINK_EXTRA_MAX);
        zframe_t *frame;
        const char *gw;
        int rc = tolk_gwlink_recv_with(self->link, (int)wait, items, n, &frame, &gw);
        tolk_translator_run(self->tr, items, n);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        tolk_envelope_t env;
        int drc = tolk_envelope_decode(&env, zframe_data(frame), zframe_size(frame));
        if (drc == TOLK_ENV_OK) {
            if (env.kind == TOLK_KIND_AUDIO && env.session[0])
                s_audio(self, &env);
        } else {
            self->errors++;
            tolk_warn("receive", NULL, "bad envelope from gateway %s: %s", gw,
                      tolk_envelope_strerror(drc));
        }
        zframe_destroy(&frame);
    }
    return 0;
}
