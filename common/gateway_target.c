/*  gateway_target.c -- a system's gateway as its config describes it. */
#include "gateway_target.h"

#include <stdio.h>
#include <string.h>

void tolk_target_from_config(tolk_target_t *self, const tolk_config_t *cfg)
{
    memset(self, 0, sizeof *self);
    const char *bind = cfg->bind_address;
    snprintf(self->host, sizeof self->host, "%s",
             !bind[0] || strcmp(bind, "0.0.0.0") == 0 ? "127.0.0.1" : bind);
    self->port = cfg->port;
    self->tls = cfg->tls_cert_file[0] != 0;
    snprintf(self->ca_file, sizeof self->ca_file, "%s", cfg->tls_cert_file);
    /* a gateway serving TLS has its certificate for public_url's host (a
       name, or the LAN address make run LAN=1 puts there): ask for that */
    const char *p = strstr(cfg->public_url, "://");
    if (self->tls && p) {
        p += 3;
        size_t n = p[0] == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":/");
        if (n > 0 && n < sizeof self->host)
            snprintf(self->host, sizeof self->host, "%.*s", (int)n, p);
    }
}

void tolk_target_override(tolk_target_t *self, const char *host, int port, const char *cafile,
                          bool tls, bool insecure)
{
    if (host)
        snprintf(self->host, sizeof self->host, "%s", host);
    if (port)
        self->port = port;
    if (cafile)
        snprintf(self->ca_file, sizeof self->ca_file, "%s", cafile);
    self->tls |= tls || cafile || insecure;
    self->insecure = insecure;
}

ws_connect_opts_t tolk_target_opts(const tolk_target_t *self)
{
    ws_connect_opts_t o = {.tls = self->tls,
                           .tls_ca_file = self->ca_file[0] ? self->ca_file : NULL,
                           .tls_insecure = self->insecure};
    return o;
}
