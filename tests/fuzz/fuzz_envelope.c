/*  fuzz_envelope.c -- libFuzzer target for the envelope decoder.

    Any byte string may arrive on a ZeroMQ socket, so the decoder must
    never crash, read out of bounds or allocate on a peer's say-so. When it
    accepts an input, encoding what it decoded and decoding that again must
    give the same envelope, and re-encoding must be byte-for-byte stable:
    the codec agrees with itself.

    clang -g -fsanitize=fuzzer,address,undefined -Icommon \
        tests/fuzz/fuzz_envelope.c common/envelope.c $(pkg-config --libs msgpack) \
        -o /tmp/fuzz_envelope
    /tmp/fuzz_envelope -malloc_limit_mb=64 -rss_limit_mb=512 tests/fuzz/corpus/envelope
*/
#include "envelope.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Field-by-field equality: strings up to their NUL, payload by content,
   since the two payload pointers point into different buffers. */
static bool s_env_equal(const tolk_envelope_t *a, const tolk_envelope_t *b)
{
    return a->version == b->version && a->kind == b->kind && strcmp(a->gateway, b->gateway) == 0 &&
           strcmp(a->worker, b->worker) == 0 && a->conn == b->conn &&
           strcmp(a->session, b->session) == 0 && a->role == b->role &&
           strcmp(a->lang, b->lang) == 0 && a->sent_ns == b->sent_ns &&
           a->audience == b->audience && a->close_code == b->close_code && a->flags == b->flags &&
           a->age_ms == b->age_ms && a->payload_len == b->payload_len &&
           (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* One input: decode; if accepted, encode, decode again and compare. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tolk_envelope_t first;
    if (tolk_envelope_decode(&first, data, size) != TOLK_ENV_OK)
        return 0;
    if (!tolk_envelope_strerror(TOLK_ENV_OK))
        abort();

    //  Whatever the decoder accepts is within every cap, so it encodes
    size_t len = 0;
    uint8_t *wire = tolk_envelope_encode(&first, &len);
    if (!wire || len > TOLK_ENVELOPE_MAX)
        abort();

    tolk_envelope_t second;
    if (tolk_envelope_decode(&second, wire, len) != TOLK_ENV_OK)
        abort();
    if (!s_env_equal(&first, &second))
        abort();

    //  Our own encoding is canonical: encoding it again changes nothing
    size_t len2 = 0;
    uint8_t *wire2 = tolk_envelope_encode(&second, &len2);
    if (!wire2 || len2 != len || memcmp(wire, wire2, len) != 0)
        abort();

    free(wire2);
    free(wire);
    return 0;
}
