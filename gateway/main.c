/*  main.c -- tolk-gateway: WebSocket and HTTP front of tolk.

    A thin shell: settings, logs, signals, then the gateway (gateway.h)
    until it has drained. Signals only set a flag, the one piece of
    process-wide mutable state; the gateway's cron turns it into a drain.
*/
#include "cli.h"
#include "gateway.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t s_stop_requested; /* SIGTERM or SIGINT seen */

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop_requested = 1;
}

/* lws's own log lines, as ours. */
static void s_lws_log(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    tolk_log(level == LLL_ERR ? TOLK_LOG_ERROR : TOLK_LOG_WARN, "lws", NULL, NULL, "%s", msg);
}

int main(int argc, char **argv)
{
    tolk_config_t cfg;
    int rc = tolk_cli_start(argc, argv, "tolk-gateway",
                            "The WebSocket/HTTP gateway of tolk: serves /ws, /healthz, /readyz\n"
                            "and the pages under web_root on TOLK_PORT, and hands messages to\n"
                            "the workers over ZeroMQ.",
                            &cfg);
    if (rc != TOLK_CLI_CONTINUE)
        return rc;
    tolk_log_init("gateway", cfg.log_level);
    zsys_init();
    zsys_handler_set(NULL); /* our own signal handling below */
    lws_set_log_level(LLL_ERR | LLL_WARN, s_lws_log);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    gateway_t *gw = gateway_new(&cfg, &s_stop_requested);
    if (!gw)
        return 1;
    gateway_run(gw);
    gateway_destroy(&gw);
    return 0;
}
