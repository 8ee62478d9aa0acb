/*  fuzz_jwt.c -- libFuzzer target for speaker token verification.

    Each input is tried twice: as a raw token (the shape, size and header
    gates), and as the payload of a correctly HS256-signed token, so the
    fuzzer also reaches the claim checks that random bytes could never
    get past a signature to hit.

    clang -fsanitize=fuzzer,address,undefined -Icommon \
        $(pkg-config --cflags libjwt jansson) tests/fuzz/fuzz_jwt.c \
        common/jwt_check.c common/log.c common/config.c \
        $(pkg-config --libs libjwt jansson openssl) -o /tmp/fuzz_jwt
*/
#include "jwt_check.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_NOW 1700000000L /* fixed clock, so runs are reproducible */

static const char s_secret[] = "fuzz-secret-0123456789abcdef";
/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char s_header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/* Unpadded base64url of len bytes into out; returns the length written. */
static size_t s_b64url(const uint8_t *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        if (i + 1 < len)
            out[n++] = alphabet[v >> 6 & 63];
        if (i + 2 < len)
            out[n++] = alphabet[v & 63];
    }
    out[n] = 0;
    return n;
}

/* Verify with the pinned HS256 policy; the result does not matter, only
   that nothing crashes, leaks or reads out of bounds. */
static void s_verify(const char *token)
{
    static const tolk_jwt_policy_t policy = {
        .alg = TOLK_JWT_HS256,
        .key = (const unsigned char *)s_secret,
        .key_len = sizeof s_secret - 1,
        .issuer = "tolk",
        .audience = "tolk",
        .leeway_s = 60,
    };
    tolk_jwt_claims_t claims;
    const char *reason = NULL;
    if (tolk_jwt_verify(&policy, token, (time_t)S_NOW, &claims, &reason) == 0) {
        /* a good token must carry a bounded, non-empty sub */
        if (!claims.sub[0] || strlen(claims.sub) > TOLK_JWT_SUB_MAX)
            abort();
    } else if (!reason)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1: the bytes as a token, NUL-terminated */
    char *raw = malloc(size + 1);
    if (!raw)
        return 0;
    memcpy(raw, data, size);
    raw[size] = 0;
    s_verify(raw);
    free(raw);

    /* 2: the bytes as the payload of a validly signed token */
    if (size > TOLK_JWT_MAX_TOKEN)
        return 0;
    size_t cap = sizeof s_header + 1 + (size + 2) / 3 * 4 + 1 + 64;
    char *token = malloc(cap);
    if (!token)
        return 0;
    size_t n = sizeof s_header - 1;
    memcpy(token, s_header, n);
    token[n++] = '.';
    n += s_b64url(data, size, token + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), s_secret, (int)(sizeof s_secret - 1), (const unsigned char *)token, n,
             mac, &mac_len)) {
        token[n++] = '.';
        s_b64url(mac, mac_len, token + n);
        s_verify(token);
    }
    free(token);
    return 0;
}
