/*  fuzz_query.c -- libFuzzer target for the connect-URL query parser.

    The query string is the first outside data a gateway reads, so the
    parser must never crash, read past the input (which has no NUL) or
    leak, whatever the bytes. Beyond not crashing, whatever it keeps must
    honour query.h's bounds: at most TOLK_QUERY_MAX_PARAMS parameters,
    non-empty keys of allowed characters within TOLK_QUERY_KEY_MAX, values
    within TOLK_QUERY_VALUE_MAX, no two keys alike, and every kept key
    found again by tolk_query_get. The same bytes fed pair by pair to
    tolk_query_add (as lws would hand them) are held to the same bounds.

    clang -g -fsanitize=fuzzer,address,undefined -Icommon \
        tests/fuzz/fuzz_query.c common/query.c -o /tmp/fuzz_query
    /tmp/fuzz_query -malloc_limit_mb=64 -rss_limit_mb=512 tests/fuzz/corpus/query
*/
#define _POSIX_C_SOURCE 200809L /* strnlen, when built with -std=c11 */

#include "query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* True for the bytes query.c allows in a key; kept apart from query.c's
   own table so a loosened check there shows up here. */
static bool s_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Abort unless every parameter q holds is within query.h's bounds. */
static void s_check_bounds(const tolk_query_t *q)
{
    if (q->count < 0 || q->count > TOLK_QUERY_MAX_PARAMS)
        abort();
    if (strnlen(q->failed_key, sizeof q->failed_key) > TOLK_QUERY_KEY_MAX)
        abort();
    for (int i = 0; i < q->count; i++) {
        const tolk_query_param_t *p = &q->params[i];
        size_t klen = strnlen(p->key, sizeof p->key);
        if (klen == 0 || klen > TOLK_QUERY_KEY_MAX)
            abort();
        for (size_t k = 0; k < klen; k++)
            if (!s_key_char(p->key[k]))
                abort();
        if (!p->value || strlen(p->value) > TOLK_QUERY_VALUE_MAX)
            abort();
        for (int j = 0; j < i; j++)
            if (strcmp(q->params[j].key, p->key) == 0)
                abort();
        if (tolk_query_get(q, p->key) != p->value)
            abort();
    }
}

/* One input: parse it whole, then add it pair by pair; check both. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact copy, so ASan sees any read past the end */
    char *raw = malloc(size ? size : 1);
    if (!raw)
        return 0;
    if (size)
        memcpy(raw, data, size);

    tolk_query_t q;
    tolk_query_init(&q);
    int rc = tolk_query_parse(&q, raw, size);
    if (rc > 0 || rc < TOLK_QUERY_EDUP)
        abort();
    s_check_bounds(&q);
    tolk_query_reset(&q);
    if (q.count != 0)
        abort();

    /* the already-decoded path: split on '&' only */
    size_t pos = 0;
    while (pos < size) {
        const char *amp = memchr(raw + pos, '&', size - pos);
        size_t plen = amp ? (size_t)(amp - (raw + pos)) : size - pos;
        rc = tolk_query_add(&q, raw + pos, plen);
        if (rc > 0 || rc < TOLK_QUERY_EDUP)
            abort();
        if (rc != TOLK_QUERY_OK)
            break;
        pos += plen + 1;
    }
    s_check_bounds(&q);
    tolk_query_reset(&q);
    free(raw);
    return 0;
}
