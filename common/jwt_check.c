/*  jwt_check.c -- speaker token verification with the algorithm pinned.

    libjwt 1.10 trusts the token's own header: it verifies alg=none tokens
    when no key is given, happily uses an RSA public key as an HMAC secret
    when the header says HS256, and checks no claims. So every token goes
    through our own gate first: size, shape, a header decoded here whose
    alg must equal the pinned one, then libjwt's signature check, then the
    alg again, and only then every claim, read by us from the payload the
    signature covers. Reasons are static strings: no token byte reaches them.
*/
#include "jwt_check.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest decoded header or payload: three bytes for every four
   characters of the longest token we accept. */
#define S_SEGMENT_MAX ((TOLK_JWT_MAX_TOKEN / 4) * 3 + 3)

/* Longest leeway honoured, so exp/nbf arithmetic cannot overflow and a
   typo in the config cannot turn expiry off. */
#define S_LEEWAY_MAX (24L * 3600)

/* One token split into its three base64url segments (pointers into the
   caller's string, which stays NUL-terminated as a whole). */
typedef struct {
    const char *header;  /* first segment */
    size_t header_len;   /* its length in characters */
    const char *payload; /* second segment */
    size_t payload_len;  /* its length in characters */
    const char *sig;     /* third segment */
    size_t sig_len;      /* its length in characters */
} s_parts_t;

/* Value of one base64url character, or -1, so decoding and the shape
   check agree on one alphabet (no padding, no standard '+' or '/'). */
static int s_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decode len base64url characters into out (at most cap bytes). Refuses
   impossible lengths, foreign characters and non-zero leftover bits, so
   one decoded value has exactly one accepted spelling. */
static int s_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                           size_t *out_len)
{
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    *out_len = n;
    return 0;
}

/* Encode len bytes as unpadded base64url into out, which must hold
   4 * ceil(len / 3) + 1 bytes; used to compare HMAC signatures. */
static size_t s_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = alphabet[v >> 6 & 63];
        out[n++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = alphabet[v >> 6 & 63];
    }
    out[n] = 0;
    return n;
}

/* Split token into exactly three non-empty segments of base64url
   characters; anything else (padding, spaces, a fourth dot) is refused
   before any decoder sees it. */
static int s_split(const char *token, size_t len, s_parts_t *parts)
{
    const char *seg[3];
    size_t seg_len[3];
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || token[i] == '.') {
            if (count == 3 || i == start)
                return -1;
            seg[count] = token + start;
            seg_len[count] = i - start;
            count++;
            start = i + 1;
        } else if (s_b64url_value((unsigned char)token[i]) < 0)
            return -1;
    }
    if (count != 3)
        return -1;
    parts->header = seg[0];
    parts->header_len = seg_len[0];
    parts->payload = seg[1];
    parts->payload_len = seg_len[1];
    parts->sig = seg[2];
    parts->sig_len = seg_len[2];
    return 0;
}

/* Decode one segment and parse it as a JSON object; duplicate keys are
   refused so no two parsers can disagree on which value counts. */
static json_t *s_decode_object(const char *seg, size_t len)
{
    unsigned char buf[S_SEGMENT_MAX];
    size_t n;
    if (s_b64url_decode(seg, len, buf, sizeof buf, &n) != 0)
        return NULL;
    json_error_t err;
    json_t *obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &err);
    OPENSSL_cleanse(buf, sizeof buf);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Name of a pinned algorithm as it must appear in the header. */
static const char *s_alg_name(tolk_jwt_alg_t alg)
{
    switch (alg) {
        case TOLK_JWT_HS256:
            return "HS256";
        case TOLK_JWT_RS256:
            return "RS256";
        case TOLK_JWT_ES256:
            return "ES256";
    }
    return NULL;
}

/* libjwt's code for a pinned algorithm; JWT_ALG_NONE for anything else,
   which every caller treats as refusal. */
static jwt_alg_t s_libjwt_alg(tolk_jwt_alg_t alg)
{
    switch (alg) {
        case TOLK_JWT_HS256:
            return JWT_ALG_HS256;
        case TOLK_JWT_RS256:
            return JWT_ALG_RS256;
        case TOLK_JWT_ES256:
            return JWT_ALG_ES256;
    }
    return JWT_ALG_NONE;
}

tolk_jwt_alg_t tolk_jwt_alg_from_name(const char *name)
{
    if (!name)
        return 0;
    if (strcmp(name, "HS256") == 0)
        return TOLK_JWT_HS256;
    if (strcmp(name, "RS256") == 0)
        return TOLK_JWT_RS256;
    if (strcmp(name, "ES256") == 0)
        return TOLK_JWT_ES256;
    return 0;
}

/* The header must name exactly the pinned algorithm, may only say it is
   a JWT, and must not demand extensions we do not implement (crit). */
static const char *s_check_header(const s_parts_t *parts, const char *alg_name)
{
    json_t *hdr = s_decode_object(parts->header, parts->header_len);
    if (!hdr)
        return "bad header";
    const char *reason = NULL;
    json_t *alg = json_object_get(hdr, "alg");
    json_t *typ = json_object_get(hdr, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), alg_name) != 0)
        reason = "wrong algorithm";
    else if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        reason = "bad type";
    else if (json_object_get(hdr, "crit"))
        reason = "unsupported header";
    json_decref(hdr);
    return reason;
}

/* Constant-time HMAC-SHA256 check of the signature segment, so an HS256
   forgery is refused before libjwt's own comparison (not documented as
   constant-time) can leak anything through timing. */
static int s_hmac_ok(const s_parts_t *parts, const unsigned char *key, size_t key_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t input_len = parts->header_len + 1 + parts->payload_len;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)parts->header, input_len, mac,
              &mac_len))
        return 0;
    char want[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    size_t want_len = s_b64url_encode(mac, mac_len, want);
    int ok = want_len == parts->sig_len && CRYPTO_memcmp(want, parts->sig, want_len) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    OPENSSL_cleanse(want, sizeof want);
    return ok;
}

/* True when aud is the wanted string or an array holding it. */
static bool s_audience_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    json_t *item;
    json_array_foreach(aud, i, item)
    {
        if (json_is_string(item) && strcmp(json_string_value(item), want) == 0)
            return true;
    }
    return false;
}

/* sub is the speaker's identity: a non-empty string of at most
   TOLK_JWT_SUB_MAX bytes without control characters, since it is used
   as a key and compared on refreshConnection. */
static bool s_sub_ok(json_t *sub)
{
    if (!json_is_string(sub))
        return false;
    size_t len = json_string_length(sub);
    const unsigned char *s = (const unsigned char *)json_string_value(sub);
    if (len == 0 || len > TOLK_JWT_SUB_MAX || strlen((const char *)s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Check every claim tolk relies on in the authenticated payload and copy
   out the ones callers use. */
static const char *s_check_claims(const tolk_jwt_policy_t *policy, json_t *body, time_t now,
                                  tolk_jwt_claims_t *claims)
{
    long long leeway = policy->leeway_s < 0 ? 0 : policy->leeway_s;
    if (leeway > S_LEEWAY_MAX)
        leeway = S_LEEWAY_MAX;
    long long t = (long long)now;
    const char *reason = NULL;
    json_t *exp = json_object_get(body, "exp");
    json_t *nbf = json_object_get(body, "nbf");
    json_t *sub = json_object_get(body, "sub");
    if (!exp)
        reason = "missing exp";
    else if (!json_is_integer(exp) || json_integer_value(exp) > LONG_MAX ||
             json_integer_value(exp) < 0)
        reason = "bad exp";
    else if (json_integer_value(exp) < t - leeway)
        reason = "expired";
    else if (nbf && !json_is_integer(nbf))
        reason = "bad nbf";
    else if (nbf && json_integer_value(nbf) > t + leeway)
        reason = "not yet valid";
    else if (policy->issuer && *policy->issuer &&
             (!json_is_string(json_object_get(body, "iss")) ||
              strcmp(json_string_value(json_object_get(body, "iss")), policy->issuer) != 0))
        reason = "wrong issuer";
    else if (policy->audience && *policy->audience &&
             !s_audience_ok(json_object_get(body, "aud"), policy->audience))
        reason = "wrong audience";
    else if (!sub)
        reason = "missing sub";
    else if (!s_sub_ok(sub))
        reason = "bad sub";
    if (!reason && claims) {
        memset(claims, 0, sizeof(*claims));
        memcpy(claims->sub, json_string_value(sub), json_string_length(sub));
        claims->exp = (long)json_integer_value(exp);
    }
    return reason;
}

/* The whole gate, returning NULL when the token is good or the reason. */
static const char *s_verify(const tolk_jwt_policy_t *policy, const char *token, time_t now,
                            tolk_jwt_claims_t *claims)
{
    if (!policy)
        return "no policy";
    if (!token)
        return "no token";
    size_t len = strnlen(token, TOLK_JWT_MAX_TOKEN + 1);
    if (len > TOLK_JWT_MAX_TOKEN)
        return "token too long";
    const char *alg_name = s_alg_name(policy->alg);
    if (!alg_name)
        return "no algorithm configured";
    if (!policy->key || policy->key_len == 0 || policy->key_len > INT_MAX)
        return "no key configured";
    s_parts_t parts;
    if (s_split(token, len, &parts) != 0)
        return "malformed token";
    const char *reason = s_check_header(&parts, alg_name);
    if (reason)
        return reason;
    /* parsed before the signature check (bounded, as libjwt does too) so
       an unreadable payload is reported as such, not as a bad signature */
    json_t *body = s_decode_object(parts.payload, parts.payload_len);
    if (!body)
        return "bad payload";
    if (policy->alg == TOLK_JWT_HS256 && !s_hmac_ok(&parts, policy->key, policy->key_len))
        reason = "bad signature";
    jwt_t *jwt = NULL;
    if (!reason && (jwt_decode(&jwt, token, policy->key, (int)policy->key_len) != 0 || !jwt))
        reason = "bad signature";
    if (!reason && jwt_get_alg(jwt) != s_libjwt_alg(policy->alg))
        reason = "wrong algorithm";
    if (jwt)
        jwt_free(jwt);
    if (!reason)
        reason = s_check_claims(policy, body, now, claims);
    json_decref(body);
    return reason;
}

int tolk_jwt_verify(const tolk_jwt_policy_t *policy, const char *token, time_t now,
                    tolk_jwt_claims_t *claims, const char **reason)
{
    const char *why = s_verify(policy, token, now, claims);
    if (reason)
        *reason = why;
    return why ? -1 : 0;
}

char *tolk_jwt_mint(tolk_jwt_alg_t alg, const unsigned char *key, size_t key_len, const char *sub,
                    const char *iss, const char *aud, long ttl_s, time_t now)
{
    jwt_alg_t jalg = s_libjwt_alg(alg);
    if (jalg == JWT_ALG_NONE || !key || key_len == 0 || key_len > INT_MAX || !sub || !*sub ||
        strlen(sub) > TOLK_JWT_SUB_MAX || ttl_s <= 0 || (long long)now > LONG_MAX - ttl_s)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    char *token = NULL;
    if (jwt_set_alg(jwt, jalg, key, (int)key_len) == 0 && jwt_add_grant(jwt, "sub", sub) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)now + ttl_s) == 0 &&
        (!iss || !*iss || jwt_add_grant(jwt, "iss", iss) == 0) &&
        (!aud || !*aud || jwt_add_grant(jwt, "aud", aud) == 0))
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}
