/*  tolk-speak.c -- be a speaker from the command line: stream a recording.

    Reads any audio file libsndfile reads (WAV, FLAC, Ogg, ...; any rate,
    any channels) as 16 kHz mono PCM (common/audio_file.h). Creates a session (or resumes one with
   refreshConnection), streams the file's PCM as binary frames at the pace it was spoken (or --speed
   times faster), and prints every message the server sends back: the session code and listener link
   first, then the speaker's own captions and status. At the end of the file it waits --linger
   seconds for the last captions, then ends the session with a clean close. The README's "try it"
   section and the end-to-end tests use it as a real client would.
*/
#include "audio_file.h"
#include "config.h"
#include "gateway_target.h"
#include "jwt_check.h"
#include "wsclient.h"

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print one server message: JSON as it came, or a readable line. */
static void s_show(const char *text, bool json)
{
    if (json) {
        printf("%s\n", text);
        fflush(stdout);
        return;
    }
    json_t *o = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    if (type && strcmp(type, "sessionCreated") == 0)
        printf("session %s  listeners join at %s\n",
               json_string_value(json_object_get(o, "sessionId")),
               json_string_value(json_object_get(o, "listenerUrl")));
    else if (type && strcmp(type, "caption") == 0)
        printf("%s [%s #%lld] %s\n",
               json_is_true(json_object_get(o, "isPartial")) ? "partial" : "final  ",
               json_string_value(json_object_get(o, "language")),
               (long long)json_integer_value(json_object_get(o, "seq")),
               json_string_value(json_object_get(o, "text")));
    else
        printf("%s\n", text);
    fflush(stdout);
    json_decref(o);
}

/* Read and print messages until deadline (monotonic ms). Returns -1 once
   the connection has closed. */
static int s_pump(ws_client_t *ws, int64_t deadline, bool json)
{
    for (;;) {
        int64_t left = deadline - s_now_ms();
        char *msg = ws_recv_text(ws, left > 0 ? (int)left : 0);
        if (msg) {
            s_show(msg, json);
            free(msg);
            continue;
        }
        if (!ws_is_open(ws))
            return -1;
        if (left <= 0)
            return 0;
    }
}

/* A token from --token, $TOLK_TOKEN, or minted from the local HS256 secret
   (development systems: make run's configuration). */
static char *s_token(const char *given, const tolk_config_t *cfg)
{
    if (given)
        return strdup(given);
    const char *env = getenv("TOLK_TOKEN");
    if (env && *env)
        return strdup(env);
    if (strcmp(cfg->jwt_alg, "HS256") != 0 || !cfg->jwt_secret[0])
        return NULL;
    return tolk_jwt_mint(TOLK_JWT_HS256, (const unsigned char *)cfg->jwt_secret,
                         strlen(cfg->jwt_secret), "tolk-speak", cfg->jwt_issuer, cfg->jwt_audience,
                         3600, time(NULL));
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: tolk-speak FILE [options]\n"
                 "Stream a recording (WAV, FLAC, Ogg, ...: anything libsndfile reads, at any\n"
                 "rate) to tolk as a speaker and print what comes back.\n\n"
                 "  --session-create     start a new session (the default)\n"
                 "  --session ID         resume session ID (refreshConnection as its speaker)\n"
                 "  --host H --port P    the gateway [the configured bind_address and port]\n"
                 "  --tls                wss [when the config has tls_cert_file]\n"
                 "  --cafile FILE        trust this certificate [the config's tls_cert_file]\n"
                 "  --insecure           wss without checking the certificate\n"
                 "  --token JWT          speaker token [$TOLK_TOKEN, else minted from the config]\n"
                 "  --source-language L  [en]\n"
                 "  --speed N            N times faster than real time [1]\n"
                 "  --chunk-ms MS        audio per frame, 100 to 200 [100]\n"
                 "  --linger S           wait S seconds after the file for captions [5]\n"
                 "  --json               print the server's messages as JSON lines\n"
                 "  --config FILE        tolk.conf to read [$TOLK_CONFIG]\n");
}

int main(int argc, char **argv)
{
    const char *host = NULL, *cafile = NULL, *session = NULL, *token_arg = NULL, *source = "en",
               *config_path = NULL;
    int port = 0, chunk_ms = 100;
    double speed = 1.0, linger = 5.0;
    bool tls = false, insecure = false;
    bool json = false;
    static const struct option opts[] = {{"session-create", no_argument, 0, 'C'},
                                         {"session", required_argument, 0, 's'},
                                         {"host", required_argument, 0, 'H'},
                                         {"tls", no_argument, 0, 'T'},
                                         {"cafile", required_argument, 0, 'A'},
                                         {"insecure", no_argument, 0, 'I'},
                                         {"port", required_argument, 0, 'p'},
                                         {"token", required_argument, 0, 't'},
                                         {"source-language", required_argument, 0, 'l'},
                                         {"speed", required_argument, 0, 'x'},
                                         {"chunk-ms", required_argument, 0, 'k'},
                                         {"linger", required_argument, 0, 'w'},
                                         {"json", no_argument, 0, 'j'},
                                         {"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
            case 'C':
                session = NULL;
                break;
            case 's':
                session = optarg;
                break;
            case 'H':
                host = optarg;
                break;
            case 'T':
                tls = true;
                break;
            case 'A':
                cafile = optarg;
                break;
            case 'I':
                insecure = true;
                break;
            case 'p':
                port = atoi(optarg);
                break;
            case 't':
                token_arg = optarg;
                break;
            case 'l':
                source = optarg;
                break;
            case 'x':
                speed = atof(optarg);
                break;
            case 'k':
                chunk_ms = atoi(optarg);
                break;
            case 'w':
                linger = atof(optarg);
                break;
            case 'j':
                json = true;
                break;
            case 'c':
                config_path = optarg;
                break;
            case 'h':
                s_usage(stdout);
                return 0;
            case 'V':
                printf("tolk-speak " TOLK_VERSION "\n");
                return 0;
            default:
                s_usage(stderr);
                return 2;
        }
    }
    if (optind + 1 != argc || speed <= 0 || chunk_ms < 10 || chunk_ms > 1000) {
        s_usage(stderr);
        return 2;
    }
    tolk_config_t cfg;
    char err[512];
    if (tolk_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-speak: %s\n", err);
        return 1;
    }
    /* the gateway the config describes, then what the command line says */
    tolk_target_t target;
    tolk_target_from_config(&target, &cfg);
    tolk_target_override(&target, host, port, cafile, tls, insecure);
    ws_connect_opts_t wsopts = tolk_target_opts(&target);
    int16_t *samples = NULL;
    size_t count = 0;
    if (tolk_audio_file_read(argv[optind], &samples, &count, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-speak: %s\n", err);
        return 1;
    }
    const uint8_t *pcm = (const uint8_t *)samples;
    size_t pcm_len = count * sizeof *samples;
    char *token = s_token(token_arg, &cfg);
    if (!token) {
        fprintf(stderr, "tolk-speak: no token: pass --token or set TOLK_TOKEN\n");
        free(samples);
        return 1;
    }
    char path[8192];
    if (session)
        snprintf(path, sizeof path,
                 "/ws?action=refreshConnection&sessionId=%s&role=speaker&token=%s", session, token);
    else
        snprintf(path, sizeof path,
                 "/ws?action=createSession&sourceLanguage=%s&qualityTier=standard&token=%s", source,
                 token);
    free(token);
    ws_client_t *ws = ws_connect_with(target.host, target.port, path, &wsopts, 5000);
    if (!ws) {
        fprintf(stderr, "tolk-speak: cannot connect to %s://%s:%d: %s\n", target.tls ? "wss" : "ws",
                target.host, target.port, ws_last_error());
        free(samples);
        return 1;
    }
    /* the first answer says whether we are in */
    char *first = ws_recv_text(ws, 10000);
    if (!first ||
        (!strstr(first, "\"sessionCreated\"") && !strstr(first, "\"connectionRefreshComplete\""))) {
        fprintf(stderr, "tolk-speak: refused: %s\n", first ? first : "no answer");
        free(first);
        ws_destroy(&ws);
        free(samples);
        return 1;
    }
    s_show(first, json);
    free(first);
    size_t chunk = (size_t)chunk_ms * 32; /* 16 kHz x 2 bytes */
    int64_t start = s_now_ms();
    int rc = 0;
    for (size_t off = 0, i = 0; off < pcm_len; off += chunk, i++) {
        /* open loop: chunk i is due at its audio time over speed, whatever came before */
        int64_t due = start + (int64_t)((double)i * chunk_ms / speed);
        if (s_pump(ws, due, json) < 0) {
            rc = 1;
            break;
        }
        size_t n = pcm_len - off < chunk ? pcm_len - off : chunk;
        if (n < 100)
            break; /* the server refuses scraps; a few ms of audio do not matter */
        if (ws_send_binary(ws, pcm + off, n) != 0) {
            rc = 1;
            break;
        }
    }
    free(samples);
    if (rc == 0 && s_pump(ws, s_now_ms() + (int64_t)(linger * 1000), json) < 0)
        rc = 1;
    if (rc != 0)
        fprintf(stderr, "tolk-speak: the connection closed (%d %s)\n", ws_close_code(ws),
                ws_close_reason(ws));
    else
        ws_close(ws, 1000, "done");
    ws_destroy(&ws);
    return rc;
}
