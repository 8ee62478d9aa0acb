/*  tolk-listen.c -- be a listener from the command line.

    Joins a session in a language and prints its captions as they arrive:
    finals as lines; partials too with --partials (on a terminal they
    overwrite each other in place). Stops when the session ends. With
    --json it prints the raw messages, which is what scripts and tests use.

    The gateway closes a connection that has sent nothing for its idle
    timeout (idle_timeout_s, 120 s by default), however many captions it
    receives, so the listener sends a heartbeat every --heartbeat seconds
    by the clock, not only after a quiet spell.
*/
#include "config.h"
#include "gateway_target.h"
#include "wsclient.h"

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Monotonic milliseconds: deadlines must not move with the wall clock. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: tolk-listen --session ID [--lang L] [options]\n"
                 "Join a tolk session as a listener and print its captions.\n\n"
                 "  --session ID        the session code, e.g. golden-eagle-427-913\n"
                 "  --lang L            the language to read [en]\n"
                 "  --host H --port P   the gateway [the configured bind_address and port]\n"
                 "  --tls               wss [when the config has tls_cert_file]\n"
                 "  --cafile FILE       trust this certificate [the config's tls_cert_file]\n"
                 "  --insecure          wss without checking the certificate\n"
                 "  --partials          print partial captions too\n"
                 "  --json              print every message as a JSON line\n"
                 "  --seconds S         stop after S seconds [until the session ends]\n"
                 "  --heartbeat S       send a heartbeat every S seconds [30]\n"
                 "  --config FILE       tolk.conf to read [$TOLK_CONFIG]\n");
}

int main(int argc, char **argv)
{
    const char *host = NULL, *cafile = NULL, *session = NULL, *lang = "en", *config_path = NULL;
    int port = 0;
    double seconds = 0, heartbeat = 30;
    bool tls = false, insecure = false;
    bool json = false, partials = false;
    static const struct option opts[] = {{"session", required_argument, 0, 's'},
                                         {"lang", required_argument, 0, 'l'},
                                         {"host", required_argument, 0, 'H'},
                                         {"tls", no_argument, 0, 'T'},
                                         {"cafile", required_argument, 0, 'A'},
                                         {"insecure", no_argument, 0, 'I'},
                                         {"port", required_argument, 0, 'p'},
                                         {"partials", no_argument, 0, 'P'},
                                         {"json", no_argument, 0, 'j'},
                                         {"seconds", required_argument, 0, 'S'},
                                         {"heartbeat", required_argument, 0, 'B'},
                                         {"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
            case 's':
                session = optarg;
                break;
            case 'l':
                lang = optarg;
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
            case 'P':
                partials = true;
                break;
            case 'j':
                json = true;
                break;
            case 'S':
                seconds = atof(optarg);
                break;
            case 'B':
                heartbeat = atof(optarg);
                break;
            case 'c':
                config_path = optarg;
                break;
            case 'h':
                s_usage(stdout);
                return 0;
            case 'V':
                printf("tolk-listen " TOLK_VERSION "\n");
                return 0;
            default:
                s_usage(stderr);
                return 2;
        }
    }
    if (!session || optind != argc || heartbeat < 0.1) {
        s_usage(stderr);
        return 2;
    }
    tolk_config_t cfg;
    char err[512];
    if (tolk_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "tolk-listen: %s\n", err);
        return 1;
    }
    /* the gateway the config describes, then what the command line says */
    tolk_target_t target;
    tolk_target_from_config(&target, &cfg);
    tolk_target_override(&target, host, port, cafile, tls, insecure);
    ws_connect_opts_t wsopts = tolk_target_opts(&target);
    char path[512];
    snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s", session,
             lang);
    ws_client_t *ws = ws_connect_with(target.host, target.port, path, &wsopts, 5000);
    if (!ws) {
        fprintf(stderr, "tolk-listen: cannot connect to %s://%s:%d: %s\n",
                target.tls ? "wss" : "ws", target.host, target.port, ws_last_error());
        return 1;
    }
    bool tty = isatty(STDOUT_FILENO), dangling = false;
    int64_t now = s_now_ms(), beat_ms = (int64_t)(heartbeat * 1000);
    int64_t end = seconds > 0 ? now + (int64_t)(seconds * 1000) : INT64_MAX;
    int64_t next_beat = now + beat_ms;
    int rc = 0;
    while (now < end) {
        int64_t until = next_beat < end ? next_beat : end;
        char *msg = ws_recv_text(ws, until > now ? (int)(until - now) : 0);
        now = s_now_ms();
        if (now >= next_beat && ws_is_open(ws)) {
            ws_send_text(ws, "{\"action\":\"heartbeat\"}");
            next_beat = now + beat_ms;
        }
        if (!msg) {
            if (!ws_is_open(ws))
                break;
            continue;
        }
        if (json) {
            printf("%s\n", msg);
            fflush(stdout);
            free(msg);
            continue;
        }
        json_t *o = json_loads(msg, 0, NULL);
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && strcmp(type, "caption") == 0) {
            const char *text = json_string_value(json_object_get(o, "text"));
            bool partial = json_is_true(json_object_get(o, "isPartial"));
            if (partial && partials && tty) {
                printf("\r\033[K%s", text ? text : "");
                dangling = true;
            } else if (partial && partials) {
                printf("… %s\n", text ? text : "");
            } else if (!partial) {
                printf("%s%s%s\n", dangling ? "\r\033[K" : "", text ? text : "",
                       json_is_true(json_object_get(o, "untranslated")) ? " (untranslated)" : "");
                dangling = false;
            }
        } else if (type && strcmp(type, "error") == 0) {
            fprintf(stderr, "tolk-listen: %s\n", msg);
            rc = 1;
        } else if (type && strcmp(type, "heartbeatAck") != 0) {
            printf("%s-- %s\n", dangling ? "\n" : "", type);
            dangling = false;
        }
        fflush(stdout);
        json_decref(o);
        free(msg);
    }
    if (ws_is_open(ws))
        ws_close(ws, 1000, "done");
    ws_destroy(&ws);
    return rc;
}
