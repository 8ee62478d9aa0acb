/*  query.c -- bounded query-string parsing; see query.h. */
#include "query.h"

#include <stdlib.h>
#include <string.h>

void tolk_query_init(tolk_query_t *q)
{
    memset(q, 0, sizeof *q);
}

void tolk_query_reset(tolk_query_t *q)
{
    for (int i = 0; i < q->count; i++)
        free(q->params[i].value);
    tolk_query_init(q);
}

static bool s_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Store key (klen bytes) and value (vlen bytes, already decoded). */
static int s_store(tolk_query_t *q, const char *key, size_t klen, const char *value, size_t vlen)
{
    if (klen == 0 || klen > TOLK_QUERY_KEY_MAX)
        return TOLK_QUERY_EKEY;
    for (size_t i = 0; i < klen; i++)
        if (!s_key_char(key[i]))
            return TOLK_QUERY_EKEY;
    if (vlen > TOLK_QUERY_VALUE_MAX) {
        memcpy(q->failed_key, key, klen);
        q->failed_key[klen] = 0;
        return TOLK_QUERY_ETOOLONG;
    }
    if (memchr(value, 0, vlen))
        return TOLK_QUERY_EESCAPE;
    for (int i = 0; i < q->count; i++)
        if (strlen(q->params[i].key) == klen && memcmp(q->params[i].key, key, klen) == 0)
            return TOLK_QUERY_EDUP;
    if (q->count == TOLK_QUERY_MAX_PARAMS)
        return TOLK_QUERY_ETOOMANY;
    char *v = malloc(vlen + 1);
    if (!v)
        return TOLK_QUERY_ETOOMANY;
    memcpy(v, value, vlen);
    v[vlen] = 0;
    tolk_query_param_t *p = &q->params[q->count++];
    memcpy(p->key, key, klen);
    p->key[klen] = 0;
    p->value = v;
    return TOLK_QUERY_OK;
}

int tolk_query_add(tolk_query_t *q, const char *pair, size_t len)
{
    const char *eq = memchr(pair, '=', len);
    size_t klen = eq ? (size_t)(eq - pair) : len;
    const char *value = eq ? eq + 1 : "";
    size_t vlen = eq ? len - klen - 1 : 0;
    return s_store(q, pair, klen, value, vlen);
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode %XX and '+' of src[0..len) into dst (which has room for len bytes). */
static int s_decode(char *dst, const char *src, size_t len, size_t *out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%') {
            if (i + 2 >= len)
                return TOLK_QUERY_EESCAPE;
            int hi = s_hex(src[i + 1]), lo = s_hex(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return TOLK_QUERY_EESCAPE;
            dst[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[j++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    *out_len = j;
    return TOLK_QUERY_OK;
}

int tolk_query_parse(tolk_query_t *q, const char *raw, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *amp = memchr(raw + pos, '&', len - pos);
        size_t plen = amp ? (size_t)(amp - (raw + pos)) : len - pos;
        if (plen > 0) {
            const char *pair = raw + pos;
            const char *eq = memchr(pair, '=', plen);
            size_t klen = eq ? (size_t)(eq - pair) : plen, kdl, vdl = 0;
            /* every decoded byte takes at most 3 raw ones: refuse before allocating */
            if (klen > TOLK_QUERY_KEY_MAX * 3)
                return TOLK_QUERY_EKEY;
            if (plen - klen > TOLK_QUERY_VALUE_MAX * 3 + 1) {
                char key[TOLK_QUERY_KEY_MAX * 3 + 1];
                size_t kcopy = 0;
                q->failed_key[0] = 0;
                if (s_decode(key, pair, klen, &kcopy) == TOLK_QUERY_OK &&
                    kcopy <= TOLK_QUERY_KEY_MAX) {
                    memcpy(q->failed_key, key, kcopy);
                    q->failed_key[kcopy] = 0;
                }
                return TOLK_QUERY_ETOOLONG;
            }
            char *buf = malloc(plen + 1);
            if (!buf)
                return TOLK_QUERY_ETOOMANY;
            int rc = s_decode(buf, pair, klen, &kdl);
            if (rc == TOLK_QUERY_OK && eq) {
                rc = s_decode(buf + kdl + 1, eq + 1, plen - klen - 1, &vdl);
            }
            if (rc == TOLK_QUERY_OK)
                rc = s_store(q, buf, kdl, buf + kdl + 1, vdl);
            free(buf);
            if (rc != TOLK_QUERY_OK)
                return rc;
        }
        pos += plen + 1;
    }
    return TOLK_QUERY_OK;
}

const char *tolk_query_get(const tolk_query_t *q, const char *key)
{
    for (int i = 0; i < q->count; i++)
        if (strcmp(q->params[i].key, key) == 0)
            return q->params[i].value;
    return NULL;
}
