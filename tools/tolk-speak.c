/*  tolk-speak.c -- be a speaker from the command line: stream a WAV file.

    Creates a session (or resumes one with refreshConnection), streams the
    file's PCM as binary frames at the pace it was spoken (or --speed times
    faster), and prints every message the server sends back: the session
    code and listener link first, then the speaker's own captions and
    status. At the end of the file it waits --linger seconds for the last
    captions, then ends the session with a clean close. The README's "try
    it" section and the end-to-end tests use it as a real client would.
*/
#include "config.h"
#include "jwt_check.h"
#include "wsclient.h"

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A whole WAV file's PCM, checked to be what the server accepts. */
typedef struct {
    uint8_t *pcm;
    size_t len;
} wav_t;

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Read path; the server wants 16 kHz, 16-bit, mono. Returns 0 or -1. */
static int s_wav_read(const char *path, wav_t *w)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 44 || size > 512L * 1024 * 1024) {
        fclose(f);
        fprintf(stderr, "tolk-speak: %s: not a WAV file of a sensible size\n", path);
        return -1;
    }
    uint8_t *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(buf);
        fprintf(stderr, "tolk-speak: %s: cannot read\n", path);
        return -1;
    }
    fclose(f);
    if (memcmp(buf, "RIFF", 4) || memcmp(buf + 8, "WAVE", 4)) {
        free(buf);
        fprintf(stderr, "tolk-speak: %s: not a RIFF/WAVE file\n", path);
        return -1;
    }
    size_t pos = 12;
    bool fmt_ok = false;
    while (pos + 8 <= (size_t)size) {
        uint32_t len = s_le32(buf + pos + 4);
        const uint8_t *body = buf + pos + 8;
        if (!memcmp(buf + pos, "fmt ", 4) && len >= 16 && pos + 8 + 16 <= (size_t)size)
            fmt_ok = (body[0] | body[1] << 8) == 1 && (body[2] | body[3] << 8) == 1 &&
                     s_le32(body + 4) == 16000 && (body[14] | body[15] << 8) == 16;
        if (!memcmp(buf + pos, "data", 4)) {
            if (!fmt_ok)
                break;
            size_t avail = (size_t)size - pos - 8;
            w->len = (len && len < avail ? len : avail) & ~(size_t)1;
            w->pcm = malloc(w->len ? w->len : 1);
            if (!w->pcm)
                break;
            memcpy(w->pcm, body, w->len);
            free(buf);
            return 0;
        }
        pos += 8 + (size_t)len + (len & 1);
    }
    free(buf);
    fprintf(stderr, "tolk-speak: %s: must be 16 kHz, 16-bit, mono PCM\n", path);
    return -1;
}

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
    fprintf(out, "usage: tolk-speak FILE.wav [options]\n"
                 "Stream a 16 kHz 16-bit mono WAV file to tolk as a speaker and print what\n"
                 "comes back.\n\n"
                 "  --session-create     start a new session (the default)\n"
                 "  --session ID         resume session ID (refreshConnection as its speaker)\n"
                 "  --host H --port P    the gateway [127.0.0.1, the configured port]\n"
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
    const char *host = "127.0.0.1", *session = NULL, *token_arg = NULL, *source = "en",
               *config_path = NULL;
    int port = 0, chunk_ms = 100;
    double speed = 1.0, linger = 5.0;
    bool json = false;
    static const struct option opts[] = {
        {"session-create", no_argument, 0, 'C'}, {"session", required_argument, 0, 's'},
        {"host", required_argument, 0, 'H'},     {"port", required_argument, 0, 'p'},
        {"token", required_argument, 0, 't'},    {"source-language", required_argument, 0, 'l'},
        {"speed", required_argument, 0, 'x'},    {"chunk-ms", required_argument, 0, 'k'},
        {"linger", required_argument, 0, 'w'},   {"json", no_argument, 0, 'j'},
        {"config", required_argument, 0, 'c'},   {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {0, 0, 0, 0}};
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
    if (!port)
        port = cfg.port;
    wav_t wav = {0};
    if (s_wav_read(argv[optind], &wav) != 0)
        return 1;
    char *token = s_token(token_arg, &cfg);
    if (!token) {
        fprintf(stderr, "tolk-speak: no token: pass --token or set TOLK_TOKEN\n");
        free(wav.pcm);
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
    ws_client_t *ws = ws_connect(host, port, path, NULL, 5000);
    if (!ws) {
        fprintf(stderr, "tolk-speak: cannot connect to %s:%d: %s\n", host, port, ws_last_error());
        free(wav.pcm);
        return 1;
    }
    /* the first answer says whether we are in */
    char *first = ws_recv_text(ws, 10000);
    if (!first ||
        (!strstr(first, "\"sessionCreated\"") && !strstr(first, "\"connectionRefreshComplete\""))) {
        fprintf(stderr, "tolk-speak: refused: %s\n", first ? first : "no answer");
        free(first);
        ws_destroy(&ws);
        free(wav.pcm);
        return 1;
    }
    s_show(first, json);
    free(first);
    size_t chunk = (size_t)chunk_ms * 32; /* 16 kHz x 2 bytes */
    int64_t start = s_now_ms();
    int rc = 0;
    for (size_t off = 0, i = 0; off < wav.len; off += chunk, i++) {
        /* open loop: chunk i is due at its audio time over speed, whatever came before */
        int64_t due = start + (int64_t)((double)i * chunk_ms / speed);
        if (s_pump(ws, due, json) < 0) {
            rc = 1;
            break;
        }
        size_t n = wav.len - off < chunk ? wav.len - off : chunk;
        if (n < 100)
            break; /* the server refuses scraps; a few ms of audio do not matter */
        if (ws_send_binary(ws, wav.pcm + off, n) != 0) {
            rc = 1;
            break;
        }
    }
    free(wav.pcm);
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
