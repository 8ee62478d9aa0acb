/*  config.h -- settings of every tolk process.

    One flat struct filled in three layers: built-in defaults, then the
    config file (key = value lines, '#' comments), then TOLK_<KEY>
    environment variables, so two copies can run side by side with only
    a different environment.
*/
#ifndef TOLK_CONFIG_H
#define TOLK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define TOLK_CONFIG_STR 256

typedef struct {
    /* gateway */
    char bind_address[64];                 /* where the HTTP/WebSocket port listens */
    int port;                              /* TOLK_PORT: public HTTP/WebSocket port */
    char public_url[TOLK_CONFIG_STR];      /* base URL printed and sent in sessionCreated */
    char tls_cert_file[TOLK_CONFIG_STR];   /* PEM certificate (chain): the port serves HTTPS
                                              and WSS; "": plain HTTP */
    char tls_key_file[TOLK_CONFIG_STR];    /* its PEM private key */
    char trusted_proxies[TOLK_CONFIG_STR]; /* peers whose X-Forwarded-For/Forwarded name the
                                              client (addresses, CIDRs); "": nobody's */
    char backend_host[64];                 /* address the gateway's ROUTER binds on */
    char web_root[TOLK_CONFIG_STR];        /* static pages directory */
    char origins[1024];                    /* comma separated allowlist; empty = same origin */
    int drain_timeout_ms;                  /* how long a draining gateway waits before closing */
    char event_loop[8]; /* "ev" (libev: epoll, cost per ready socket) or "poll" (cost per socket) */
    /* redis */
    char redis_host[64];
    int redis_port;       /* TOLK_REDIS_PORT */
    int redis_timeout_ms; /* per-command timeout, so Redis trouble never hangs us */
    /* status feed */
    char status_endpoint[TOLK_CONFIG_STR]; /* PUB endpoints bind ephemeral, registered in Redis */
    /* authentication */
    char jwt_alg[16];                           /* HS256, RS256 or ES256: pinned */
    char jwt_secret[TOLK_CONFIG_STR];           /* TOLK_JWT_SECRET for HS256 */
    char jwt_public_key_file[TOLK_CONFIG_STR];  /* PEM for RS256/ES256 */
    char jwt_private_key_file[TOLK_CONFIG_STR]; /* only tolk-token uses it */
    char jwt_issuer[TOLK_CONFIG_STR];           /* checked when non-empty */
    char jwt_audience[TOLK_CONFIG_STR];         /* checked when non-empty */
    int jwt_leeway_s;
    /* sessions */
    int max_listeners;           /* per session */
    int grace_period_s;          /* speaker drop grace before the session ends */
    int max_session_s;           /* sessions older than this without a refresh end */
    int session_create_per_hour; /* per speaker sub */
    int failed_joins_per_hour;   /* per client address, sliding hour: a venue behind one NAT
                                    address never reaches it by mistyping (protocol.md) */
    char languages[512];         /* comma separated supported ISO 639-1 codes */
    /* connections */
    int refresh_required_s; /* connection age that asks for a refresh */
    int refresh_warning_s;  /* connection age that warns of the hard limit */
    int idle_timeout_s;
    int control_rate_per_s; /* control messages per connection */
    /* heartbeats between processes */
    int heartbeat_ms;     /* worker and gateway beat interval */
    int heartbeat_misses; /* beats missed before a peer is dead */
    int sweep_interval_ms;
    int stop_timeout_ms; /* a worker's orderly stop: longest time to finish what it holds */
    /* status pushes (status_worker) */
    int status_period_s;   /* periodic sessionStatus to the speaker */
    int status_change_pct; /* listener count change that triggers a push */
    int status_rate_per_s; /* getSessionStatus queries per speaker */
    int status_poll_ms;    /* how often the status worker looks for due pushes */
    /* audio (gateway checks, audio_worker) */
    int audio_rate_per_s;       /* chunks per speaker, sliding 1 s window */
    int audio_warn_after_s;     /* continuous violation before a warning */
    int audio_close_after_s;    /* continuous violation before closing (4429) */
    char source_languages[128]; /* what speakers may speak: the recognisers' languages */
    char asr_engine[32];        /* recogniser: "pocketsphinx", "whisper" (pocketsphinx, then a
                                   second pass at whisper_url), "vosk" (a vosk-server) or
                                   "loadtest" (benchmarks) */
    char asr_model_dir[TOLK_CONFIG_STR]; /* acoustic model, dictionary, language model */
    int loadtest_caption_ms;             /* audio time per scripted final of "loadtest" */
    char asr_frontend[8];                /* "on": speexdsp's noise suppression before the recogniser
                                            (audio_worker/frontend.h); "off": the audio as it came */
    char whisper_url[TOLK_CONFIG_STR];   /* "whisper": the transcription endpoint, in full */
    char whisper_model[64];              /* its model field */
    char whisper_api_key_file[TOLK_CONFIG_STR]; /* a file holding its API key; "": none */
    int whisper_timeout_ms;         /* after this long an utterance keeps its local final */
    char vosk_url[TOLK_CONFIG_STR]; /* "vosk": ws://host:port[/path] of the vosk-server */
    char vosk_url_for[1024];        /* "vosk": per-language servers, "fr:ws://b:2700,de:..." */
    /* translation (audio_worker) */
    char apy_url[TOLK_CONFIG_STR]; /* Apertium APy base URL */
    int apy_timeout_ms;            /* per request */
    char pivot_language[8];        /* reach more targets through this one */
    /* caption history: catch-up, resume, transcripts, spoken translation */
    int history_max;            /* finals kept per session and language */
    int catchup_finals;         /* finals a late joiner gets */
    int transcript_retention_s; /* how long a transcript outlives its session */
    int speech_enabled;         /* synthesise finals for listeners who ask (espeak-ng) */
    /* logging */
    char log_level[16]; /* debug, info, warn, error */
} tolk_config_t;

/* Fill cfg with defaults, then the file at path (NULL: $TOLK_CONFIG, else
   none), then the environment. Returns 0, or -1 with a message in err. */
int tolk_config_load(tolk_config_t *cfg, const char *path, char *err, size_t errlen);

/* Set one key from its string value; the same names the file uses.
   Returns 0, or -1 for an unknown key or a bad value. */
int tolk_config_set(tolk_config_t *cfg, const char *key, const char *value);

/* True when lang is in the comma separated supported list. */
bool tolk_config_language_supported(const tolk_config_t *cfg, const char *lang);

/* True when item is one of the entries of a comma separated list. */
bool tolk_csv_has(const char *csv, const char *item);

/* The vosk-server URL for speech in lang into out: its vosk_url_for entry,
   else vosk_url. Returns 0, or -1 when it does not fit. */
int tolk_config_vosk_url(const tolk_config_t *cfg, const char *lang, char *out, size_t cap);

/* Print every key with its current value (secrets masked), for --help. */
void tolk_config_print(const tolk_config_t *cfg, void *file);

#endif
