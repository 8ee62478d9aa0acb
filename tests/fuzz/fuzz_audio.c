/*  fuzz_audio.c -- libFuzzer target for the gateway's audio checks.

    A speaker's binary frames and the base64 of sendAudio are outside data:
    audio_check_chunk must never read past the chunk (WAV chunk lengths are
    attacker-chosen), and its verdict must be consistent: an acceptance
    points at an even, non-empty span inside the chunk; a refusal is a 400
    or 413 with a code. audio_decode_send_audio must never write past its
    buffer, whatever the JSON says. The first byte picks the decoder.

    clang -g -fsanitize=fuzzer,address,undefined -Igateway \
        tests/fuzz/fuzz_audio.c gateway/audio_check.c $(pkg-config --cflags --libs jansson) \
        -o /tmp/fuzz_audio
*/
#include "audio_check.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    /* an exact copy, so ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    audio_verdict_t v;
    if (mode & 1) {
        size_t cap = AUDIO_CHUNK_MAX + 4;
        uint8_t *out = malloc(cap);
        if (out) {
            long n = audio_decode_send_audio((const char *)copy, size, out, cap, &v);
            if (n < 0 && (v.status != 400 && v.status != 413))
                abort();
            if (n >= 0 && (size_t)n > cap)
                abort();
            if (n >= 0)
                audio_check_chunk(out, (size_t)n, &v);
            free(out);
        }
    } else {
        int rc = audio_check_chunk(copy, size, &v);
        if (rc == 0) {
            if (v.status || v.pcm_len == 0 || v.pcm_len % 2 || v.pcm_offset > size ||
                v.pcm_len > size - v.pcm_offset)
                abort();
        } else if (rc != -1 || (v.status != 400 && v.status != 413) || !v.code || !v.message) {
            abort();
        }
    }
    free(copy);
    return 0;
}
