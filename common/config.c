/*  config.c -- defaults, config file and environment for every process.

    A table maps each key to its field, so the file parser, the
    environment overrides and --help all agree on one list of names.
*/
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_STR } field_type_t;

/* One configurable key: where it lives in the struct and how to parse it. */
typedef struct {
    const char *name;  /* key in the file; TOLK_<NAME upper> in the environment */
    field_type_t type; /* how to parse the value */
    size_t offset;     /* offset of the field in tolk_config_t */
    size_t size;       /* capacity of a string field */
    bool secret;       /* masked when printed */
} field_t;

#define FI(n)                                                                                      \
    {                                                                                              \
#n, T_INT, offsetof(tolk_config_t, n), sizeof(int), false                                  \
    }
#define FS(n)                                                                                      \
    {                                                                                              \
#n, T_STR, offsetof(tolk_config_t, n), sizeof(((tolk_config_t *)0)->n), false              \
    }
#define FX(n)                                                                                      \
    {                                                                                              \
#n, T_STR, offsetof(tolk_config_t, n), sizeof(((tolk_config_t *)0)->n), true               \
    }

static const field_t s_fields[] = {
    FS(bind_address),
    FI(port),
    FS(public_url),
    FS(trusted_proxies),
    FS(tls_cert_file),
    FS(tls_key_file),
    FS(backend_host),
    FS(web_root),
    FS(origins),
    FI(drain_timeout_ms),
    FS(event_loop),
    FS(redis_host),
    FI(redis_port),
    FI(redis_timeout_ms),
    FS(status_endpoint),
    FS(jwt_alg),
    FX(jwt_secret),
    FS(jwt_public_key_file),
    FS(jwt_private_key_file),
    FS(jwt_issuer),
    FS(jwt_audience),
    FI(jwt_leeway_s),
    FI(max_listeners),
    FI(grace_period_s),
    FI(max_session_s),
    FI(session_create_per_hour),
    FI(failed_joins_per_hour),
    FS(languages),
    FI(refresh_required_s),
    FI(refresh_warning_s),
    FI(idle_timeout_s),
    FI(control_rate_per_s),
    FI(heartbeat_ms),
    FI(heartbeat_misses),
    FI(sweep_interval_ms),
    FI(stop_timeout_ms),
    FI(status_period_s),
    FI(status_change_pct),
    FI(status_rate_per_s),
    FI(status_poll_ms),
    FI(audio_rate_per_s),
    FI(audio_warn_after_s),
    FI(audio_close_after_s),
    FS(source_languages),
    FS(asr_engine),
    FS(asr_model_dir),
    FI(loadtest_caption_ms),
    FS(asr_frontend),
    FS(whisper_url),
    FS(whisper_model),
    FS(whisper_api_key_file),
    FI(whisper_timeout_ms),
    FS(vosk_url),
    FS(vosk_url_for),
    FS(apy_url),
    FI(apy_timeout_ms),
    FS(pivot_language),
    FI(history_max),
    FI(catchup_finals),
    FI(transcript_retention_s),
    FI(speech_enabled),
    FS(log_level),
};
#define FIELD_COUNT (sizeof(s_fields) / sizeof(s_fields[0]))

static void s_defaults(tolk_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind_address, "127.0.0.1");
    cfg->port = 8080;
    strcpy(cfg->backend_host, "127.0.0.1");
    strcpy(cfg->web_root, "web");
    cfg->drain_timeout_ms = 5000;
    strcpy(cfg->event_loop, "ev");
    strcpy(cfg->redis_host, "127.0.0.1");
    cfg->redis_port = 6379;
    cfg->redis_timeout_ms = 1000;
    strcpy(cfg->status_endpoint, "tcp://127.0.0.1:*");
    strcpy(cfg->jwt_alg, "HS256");
    cfg->jwt_leeway_s = 60;
    cfg->max_listeners = 500;
    cfg->grace_period_s = 60;
    cfg->max_session_s = 2 * 3600;
    cfg->session_create_per_hour = 10;
    cfg->failed_joins_per_hour = 600;
    strcpy(cfg->languages, "en,es,ca,gl,eo,fr,pt,it,ro");
    cfg->refresh_required_s = 100 * 60;
    cfg->refresh_warning_s = 105 * 60;
    cfg->idle_timeout_s = 120;
    cfg->control_rate_per_s = 10;
    cfg->heartbeat_ms = 1000;
    cfg->heartbeat_misses = 3;
    cfg->sweep_interval_ms = 1000;
    cfg->stop_timeout_ms = 10000;
    cfg->status_period_s = 30;
    cfg->status_change_pct = 10;
    cfg->status_rate_per_s = 2;
    cfg->status_poll_ms = 250;
    cfg->audio_rate_per_s = 50;
    cfg->audio_warn_after_s = 5;
    cfg->audio_close_after_s = 30;
    strcpy(cfg->source_languages, "en");
    strcpy(cfg->asr_engine, "pocketsphinx");
    strcpy(cfg->asr_model_dir, "/usr/share/pocketsphinx/model/en-us");
    cfg->loadtest_caption_ms = 200;
    strcpy(cfg->asr_frontend, "on"); /* bench/asr's verdict: docs/performance.md */
    strcpy(cfg->whisper_url, "http://127.0.0.1:8000/v1/audio/transcriptions");
    strcpy(cfg->whisper_model, "whisper-1");
    cfg->whisper_timeout_ms = 3000;
    strcpy(cfg->vosk_url, "ws://127.0.0.1:2700");
    strcpy(cfg->apy_url, "http://127.0.0.1:2737");
    cfg->apy_timeout_ms = 2000;
    strcpy(cfg->pivot_language, "es");
    cfg->history_max = 1000;
    cfg->catchup_finals = 20;
    cfg->transcript_retention_s = 86400;
    cfg->speech_enabled = 1;
    strcpy(cfg->log_level, "info");
}

static const field_t *s_find(const char *key)
{
    for (size_t i = 0; i < FIELD_COUNT; i++)
        if (strcmp(s_fields[i].name, key) == 0)
            return &s_fields[i];
    return NULL;
}

int tolk_config_set(tolk_config_t *cfg, const char *key, const char *value)
{
    const field_t *f = s_find(key);
    if (!f)
        return -1;
    char *base = (char *)cfg + f->offset;
    if (f->type == T_INT) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L)
            return -1;
        *(int *)base = (int)v;
    } else {
        size_t n = strlen(value);
        if (n >= f->size)
            return -1;
        memcpy(base, value, n + 1);
    }
    return 0;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int s_load_file(tolk_config_t *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            /* a line longer than the buffer: its tail must never parse as a line of its own */
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *s = s_trim(line);
        if (*s == 0 || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = s_trim(s), *value = s_trim(eq + 1);
        if (tolk_config_set(cfg, key, value) != 0) {
            snprintf(err, errlen, "%s:%d: bad key or value for '%s'", path, lineno, key);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int tolk_config_load(tolk_config_t *cfg, const char *path, char *err, size_t errlen)
{
    s_defaults(cfg);
    if (!path)
        path = getenv("TOLK_CONFIG");
    if (path && *path && s_load_file(cfg, path, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        char env[64] = "TOLK_";
        size_t j = 5;
        for (const char *p = s_fields[i].name; *p && j < sizeof env - 1; p++)
            env[j++] = (char)toupper((unsigned char)*p);
        env[j] = 0;
        const char *v = getenv(env);
        if (v && tolk_config_set(cfg, s_fields[i].name, v) != 0) {
            snprintf(err, errlen, "bad value in %s", env);
            return -1;
        }
    }
    if (!*cfg->tls_cert_file != !*cfg->tls_key_file) {
        snprintf(err, errlen, "tls_cert_file and tls_key_file go together: set both or neither");
        return -1;
    }
    if (!*cfg->public_url)
        snprintf(cfg->public_url, sizeof cfg->public_url, "%s://%s:%d",
                 *cfg->tls_cert_file ? "https" : "http",
                 strcmp(cfg->bind_address, "0.0.0.0") ? cfg->bind_address : "localhost", cfg->port);
    return 0;
}

bool tolk_config_language_supported(const tolk_config_t *cfg, const char *lang)
{
    return tolk_csv_has(cfg->languages, lang);
}

bool tolk_csv_has(const char *csv, const char *item)
{
    size_t n = strlen(item);
    if (n == 0)
        return false;
    const char *p = csv;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

int tolk_config_vosk_url(const tolk_config_t *cfg, const char *lang, char *out, size_t cap)
{
    size_t n = strlen(lang);
    const char *url = cfg->vosk_url;
    size_t len = strlen(url);
    for (const char *p = cfg->vosk_url_for; n && *p;) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ',');
        size_t elen = e ? (size_t)(e - p) : strlen(p);
        if (elen > n && strncmp(p, lang, n) == 0 && p[n] == ':') {
            url = p + n + 1;
            len = elen - n - 1;
            break;
        }
        if (!e)
            break;
        p = e + 1;
    }
    while (len && url[len - 1] == ' ')
        len--;
    if (len + 1 > cap)
        return -1;
    memcpy(out, url, len);
    out[len] = 0;
    return 0;
}

void tolk_config_print(const tolk_config_t *cfg, void *file)
{
    FILE *out = file;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const field_t *f = &s_fields[i];
        const char *base = (const char *)cfg + f->offset;
        if (f->type == T_INT)
            fprintf(out, "  %-26s %d\n", f->name, *(const int *)base);
        else
            fprintf(out, "  %-26s %s\n", f->name, f->secret && *base ? "(set)" : base);
    }
}
