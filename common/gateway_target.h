/*  gateway_target.h -- where tolk-speak and tolk-listen find the gateway.

    The command-line clients read the same tolk.conf as the system (make
    run's run/<port>/tolk.conf, or /etc/tolk/tolk.conf): its port, the
    address the gateway binds (127.0.0.1 for a wildcard bind; with TLS, the
    host of public_url, which its certificate names), and whether it
    serves TLS. A gateway with tls_cert_file is reached over wss, and
    that file is trusted as its certificate (it may be self-signed, as
    make run LAN=1 makes it). Options on the command line then override
    each of these.
*/
#ifndef TOLK_GATEWAY_TARGET_H
#define TOLK_GATEWAY_TARGET_H

#include "config.h"
#include "wsclient.h"

#include <stdbool.h>

typedef struct {
    char host[256];                /* address or name to connect to */
    int port;                      /* the gateway's port */
    bool tls;                      /* wss */
    char ca_file[TOLK_CONFIG_STR]; /* PEM to trust; "": the system's CAs */
    bool insecure;                 /* accept any certificate */
} tolk_target_t;

/* The gateway of cfg's system. */
void tolk_target_from_config(tolk_target_t *self, const tolk_config_t *cfg);

/* What the command line said, over the config's: host, port (0), cafile
   (NULL: none given); tls, cafile and insecure each ask for wss. */
void tolk_target_override(tolk_target_t *self, const char *host, int port, const char *cafile,
                          bool tls, bool insecure);

/* Connection options for ws_connect_with (valid while self lives). */
ws_connect_opts_t tolk_target_opts(const tolk_target_t *self);

#endif
