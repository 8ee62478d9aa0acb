/*  tolk-token.c -- mint a speaker token from the local configuration.

    For development and small self-hosted setups without an identity
    provider: it signs with the same algorithm, key, issuer and audience
    the gateway is configured to verify, and prints the token on stdout
    so it can be pasted into the speaker page or a script.
*/
#include "config.h"
#include "jwt_check.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_DEFAULT_SUB "speaker"
#define S_DEFAULT_TTL (3600L * 12)
#define S_KEY_MAX     (64 * 1024) /* bytes; a PEM private key is a few KB */

/* Print usage and the effective configuration, so --help shows which
   algorithm and issuer a token will carry. */
static void s_usage(FILE *out, const tolk_config_t *cfg)
{
    fprintf(out, "usage: tolk-token [--sub NAME] [--ttl SECONDS] [--config FILE] [--help] "
                 "[--version]\n"
                 "\n"
                 "Prints a speaker token signed with the configured key.\n"
                 "  --sub NAME      speaker identity (default \"" S_DEFAULT_SUB "\")\n"
                 "  --ttl SECONDS   lifetime (default 43200)\n"
                 "  --config FILE   config file (default $TOLK_CONFIG)\n"
                 "\n"
                 "Uses jwt_alg, jwt_secret (HS256), jwt_private_key_file (RS256/ES256),\n"
                 "jwt_issuer and jwt_audience. Current settings:\n");
    if (cfg)
        tolk_config_print(cfg, out);
}

/* Read the whole PEM file into a malloc'd buffer, bounded, so a wrong
   path to a huge file fails cleanly. */
static unsigned char *s_read_key(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tolk-token: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(S_KEY_MAX + 1);
    size_t n = buf ? fread(buf, 1, S_KEY_MAX + 1, f) : 0;
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed || n == 0 || n > S_KEY_MAX) {
        fprintf(stderr, "tolk-token: %s is empty, unreadable or too large\n", path);
        if (buf)
            OPENSSL_clear_free(buf, S_KEY_MAX + 1);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Parse --ttl as a positive number of seconds. */
static int s_parse_ttl(const char *text, long *ttl)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v <= 0 || v > INT_MAX)
        return -1;
    *ttl = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"sub", required_argument, NULL, 's'},    {"ttl", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *sub = S_DEFAULT_SUB;
    const char *config_path = NULL;
    long ttl = S_DEFAULT_TTL;
    int help = 0, opt;
    while ((opt = getopt_long(argc, argv, "s:t:c:hV", options, NULL)) != -1) {
        switch (opt) {
            case 's':
                sub = optarg;
                break;
            case 't':
                if (s_parse_ttl(optarg, &ttl) != 0) {
                    fprintf(stderr, "tolk-token: --ttl wants a positive number of seconds\n");
                    return 2;
                }
                break;
            case 'c':
                config_path = optarg;
                break;
            case 'h':
                help = 1;
                break;
            case 'V':
                printf("tolk-token " TOLK_VERSION "\n");
                return 0;
            default:
                s_usage(stderr, NULL);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tolk-token: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr, NULL);
        return 2;
    }
    tolk_config_t cfg;
    char err[512] = "";
    int loaded = tolk_config_load(&cfg, config_path, err, sizeof err);
    if (loaded != 0) {
        fprintf(stderr, "tolk-token: %s\n", err);
        if (help)
            s_usage(stdout, NULL);
        return help ? 0 : 1;
    }
    if (help) {
        s_usage(stdout, &cfg);
        return 0;
    }
    if (!*sub || strlen(sub) > TOLK_JWT_SUB_MAX) {
        fprintf(stderr, "tolk-token: --sub must be 1 to %d bytes\n", TOLK_JWT_SUB_MAX);
        return 2;
    }
    tolk_jwt_alg_t alg = tolk_jwt_alg_from_name(cfg.jwt_alg);
    if (!alg) {
        fprintf(stderr, "tolk-token: jwt_alg must be HS256, RS256 or ES256\n");
        return 1;
    }
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (alg == TOLK_JWT_HS256) {
        key_len = strlen(cfg.jwt_secret);
        if (key_len == 0) {
            fprintf(stderr, "tolk-token: HS256 needs jwt_secret (or TOLK_JWT_SECRET)\n");
            return 1;
        }
        key = malloc(key_len);
        if (!key)
            return 1;
        memcpy(key, cfg.jwt_secret, key_len);
    } else {
        if (!*cfg.jwt_private_key_file) {
            fprintf(stderr, "tolk-token: %s needs jwt_private_key_file\n", cfg.jwt_alg);
            return 1;
        }
        key = s_read_key(cfg.jwt_private_key_file, &key_len);
        if (!key)
            return 1;
    }
    char *token =
        tolk_jwt_mint(alg, key, key_len, sub, cfg.jwt_issuer, cfg.jwt_audience, ttl, time(NULL));
    OPENSSL_clear_free(key, alg == TOLK_JWT_HS256 ? key_len : S_KEY_MAX + 1);
    OPENSSL_cleanse(cfg.jwt_secret, sizeof cfg.jwt_secret);
    if (!token) {
        fprintf(stderr, "tolk-token: signing failed (is the key a %s private key?)\n", cfg.jwt_alg);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}
