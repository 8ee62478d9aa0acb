/*  audio_worker.h -- the audio worker: speech in, captions out.

    Owns the live recognition stream of every session the gateways'
    rendezvous hash gives it: PCM arrives as AUDIO envelopes, goes through
    the recogniser (asr.h), and each result is translated once per
    language that has listeners (translator.h, APy without blocking) and
    published to the session's gateways as caption messages with a
    gap-free seq per session and language. Many can run; if one dies, the
    gateways route its sessions to another, which picks up the seq where
    Redis says it stands.
*/
#ifndef TOLK_AUDIO_WORKER_H
#define TOLK_AUDIO_WORKER_H

#include "config.h"
#include "envelope.h"
#include "gwlink.h"
#include "latency_hist.h"
#include "prom_hist.h"
#include "redis_link.h"
#include "speech.h"
#include "statfeed.h"
#include "translator.h"
#include "whisper.h"
#include "worker.h"

#include <czmq.h>

typedef struct {
    tolk_config_t cfg;         /* settings */
    tolk_worker_t *base;       /* links, feed, loop, stop: the shape every worker shares */
    char id[TOLK_ID_MAX + 1];  /* the base's id: DEALER identity, unique per process */
    tolk_redis_t *redis;       /* the base's: sessions, seq counters, discovered targets */
    tolk_gwlink_t *link;       /* the base's: the gateways */
    tolk_translator_t *tr;     /* APy client */
    tolk_whisper_t *whisper;   /* the second recognition pass; NULL unless asr_engine = whisper */
    char asr_local[32];        /* the engine streams open: asr_engine, pocketsphinx for whisper */
    bool vosk;                 /* asr_engine = vosk: streams answer from the loop */
    bool frontend;             /* asr_frontend = on: each stream cleans its audio (frontend.h) */
    tolk_speech_t *speech;     /* espeak-ng, NULL when spoken translation is off or unavailable */
    zhashx_t *streams;         /* session id -> stream_t */
    char targets[512];         /* languages reachable from the source, "" until APy answered */
    int64_t next_discovery_ms; /* monotonic ms: when to ask APy (again); INT64_MAX: asking */
    bool apy_down;             /* the last discovery failed: logged once per outage */
    bool finishing;            /* the orderly stop ended every stream's utterance */
    /* counters for the status feed */
    int64_t chunks_in, bytes_in, chunks_dropped, errors;
    int64_t finals_lost;        /* finals given up after Redis stayed away STREAM_STORE_RETRY_MS */
    int64_t streams_superseded; /* streams dropped because another worker took the session over */
    int64_t vocabularies;       /* session vocabularies given to recognisers (a change, or a stream
                                   opened on a session that has one) */
    int64_t partials_out, finals_out, captions_untranslated, streams_opened;
    int64_t finals_backfilled; /* past finals translated for a language's first listener */
    int64_t finals_duplicate;  /* finals whose segment was stored already (caption_store) */
    int64_t speech_synth, speech_failed; /* finals spoken (once per language), failures */
    int64_t asr_ns;                      /* time spent recognising, for the real-time factor */
    int64_t audio_ms;                    /* audio recognised, for the real-time factor */
    /* since start, in microseconds, so a benchmark reads whole-run percentiles
       (the seeds' target: chunk processing p95 < 50 ms) */
    tolk_hist_t chunk_hop;     /* gateway send to this worker's receipt: the ZeroMQ hop */
    tolk_hist_t chunk_latency; /* gateway send to recognised: hop, queueing and recognition */
    /* for /metrics, in the status feed (running totals, fixed buckets) */
    tolk_prom_hist_t chunk_processing; /* this worker's time on one chunk, on its own clock */
    tolk_prom_hist_t caption_latency;  /* a final's recognition to its publication (stream.c) */
} audio_worker_t;

/* An audio worker on the worker base, with APy's client and a warm
   recogniser. Returns the base, which tolk_worker_main runs and whose
   destroy frees the worker; NULL on failure. */
tolk_worker_t *audio_worker_new(const tolk_config_t *cfg);

/* What the recogniser opens for speech in lang: the model directory, or
   for asr_engine = vosk the server's URL for lang (vosk_url_for, else
   vosk_url), written into buf. */
const char *audio_worker_model(audio_worker_t *self, const char *lang, char *buf, size_t cap);

/* The program around it, for its main(): name, log, --help text, constructor. */
extern const tolk_worker_program_t audio_worker_program;

#endif
