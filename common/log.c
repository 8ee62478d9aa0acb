/*  log.c -- JSON-line logger; see log.h. */
#include "log.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

static const char *s_component = "tolk";
static tolk_log_level_t s_min = TOLK_LOG_INFO;
static const char *s_names[] = {"debug", "info", "warn", "error"};

void tolk_log_init(const char *component, const char *level)
{
    s_component = component;
    for (int i = 0; i < 4; i++)
        if (level && strcasecmp(level, s_names[i]) == 0)
            s_min = (tolk_log_level_t)i;
}

/* Append s to out as the inside of a JSON string, bounded by cap. */
static size_t s_escape(char *out, size_t pos, size_t cap, const char *s)
{
    for (; s && *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    out[pos] = 0;
    return pos;
}

void tolk_log(tolk_log_level_t level, const char *operation, const char *correlation,
              const char *metadata, const char *fmt, ...)
{
    if (level < s_min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    char line[4096];
    size_t cap = sizeof line - 64, pos;
    pos = (size_t)snprintf(line, cap, "{\"timestamp\":%lld,\"level\":\"%s\",\"correlationId\":\"",
                           (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, s_names[level]);
    pos = s_escape(line, pos, cap, correlation ? correlation : "");
    pos += (size_t)snprintf(line + pos, cap - pos, "\",\"component\":\"");
    pos = s_escape(line, pos, cap, s_component);
    pos += (size_t)snprintf(line + pos, cap - pos, "\",\"operation\":\"");
    pos = s_escape(line, pos, cap, operation);
    pos += (size_t)snprintf(line + pos, cap - pos, "\",\"message\":\"");
    pos = s_escape(line, pos, cap, msg);
    if (metadata && strlen(metadata) < cap - pos - 20)
        pos += (size_t)snprintf(line + pos, cap - pos, "\",\"metadata\":%s}\n", metadata);
    else
        pos += (size_t)snprintf(line + pos, cap - pos, "\",\"metadata\":{}}\n");
    fwrite(line, 1, pos, stderr);
}

void tolk_log_hash(const void *data, size_t len, char out[17])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void tolk_log_hash_u64(uint64_t id, char out[17])
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)id);
    tolk_log_hash(buf, (size_t)n, out);
}
