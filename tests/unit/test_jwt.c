/*  test_jwt.c -- speaker token verification against the known attacks.

    Every forged token is built here by hand (base64url JSON plus an
    OpenSSL HMAC or ECDSA signature) so the tests do not depend on the
    library under suspicion to produce its own attacks. RSA and EC keys
    are generated at start-up; no key material lives in the repository.
*/
#include "jwt_check.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW    1700000000L /* fixed clock, so expiry tests are exact */
#define TTL    600L        /* lifetime of tokens minted by the tests */
#define LEEWAY 60L         /* the SPEC's clock skew allowance */

static const char s_secret[] = "tolk-unit-test-secret-0123456789abcdef";

/* Keys generated once in main(); forked test processes inherit them. */
static EVP_PKEY *s_rsa;  /* RS256 keypair */
static EVP_PKEY *s_ec;   /* ES256 keypair (P-256) */
static char *s_rsa_priv; /* PEM private key, for minting */
static char *s_rsa_pub;  /* PEM public key, for verifying and the HS256 confusion attack */
static char *s_ec_priv;  /* PEM private key, for minting */
static char *s_ec_pub;   /* PEM public key, for verifying */

/* PEM text of a key (public or private) as a malloc'd C string. */
static char *s_pem(EVP_PKEY *key, int public_only)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    int ok = public_only ? PEM_write_bio_PUBKEY(bio, key)
                         : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long len = ok == 1 ? BIO_get_mem_data(bio, &data) : 0;
    char *copy = len > 0 ? strndup(data, (size_t)len) : NULL;
    BIO_free(bio);
    return copy;
}

/* Unpadded base64url of len bytes, malloc'd. */
static char *s_b64url(const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = malloc(len / 3 * 4 + 5);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned long)in[i + 1] << 8;
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
    return out;
}

/* "b64(header).b64(payload)", the JWS signing input, malloc'd. */
static char *s_signing_input(const char *header, const char *payload)
{
    char *h = s_b64url(header, strlen(header));
    char *p = s_b64url(payload, strlen(payload));
    char *out;
    ck_assert_int_ge(asprintf(&out, "%s.%s", h, p), 0);
    free(h);
    free(p);
    return out;
}

/* A hand-made HS256-style token: HMAC-SHA256 over the signing input with
   key, or the literal sig text when key is NULL (alg none, junk). */
static char *s_forge(const char *header, const char *payload, const void *key, size_t key_len,
                     const char *sig)
{
    char *input = s_signing_input(header, payload);
    char *sig_b64;
    if (key) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)input,
                                   strlen(input), mac, &mac_len));
        sig_b64 = s_b64url(mac, mac_len);
    } else
        sig_b64 = strdup(sig);
    char *out;
    ck_assert_int_ge(asprintf(&out, "%s.%s", input, sig_b64), 0);
    free(input);
    free(sig_b64);
    return out;
}

/* A properly signed HS256 token with the test secret and any payload. */
static char *s_hs(const char *payload)
{
    return s_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, s_secret, strlen(s_secret),
                   NULL);
}

/* An ES256 token signed here with OpenSSL in JOSE form (r || s, 32 bytes
   each), the way external issuers such as Keycloak produce them. */
static char *s_es_external(const char *payload)
{
    char *input = s_signing_input("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", payload);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t der_len = sizeof der;
    ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s_ec), 1);
    ck_assert_int_eq(EVP_DigestSign(ctx, der, &der_len, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    ck_assert_ptr_nonnull(sig);
    unsigned char raw[64];
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32), 32);
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32), 32);
    ECDSA_SIG_free(sig);
    char *sig_b64 = s_b64url(raw, sizeof raw);
    char *out;
    ck_assert_int_ge(asprintf(&out, "%s.%s", input, sig_b64), 0);
    free(input);
    free(sig_b64);
    return out;
}

/* Policy for the pinned algorithm with its verification key. */
static tolk_jwt_policy_t s_policy(tolk_jwt_alg_t alg)
{
    tolk_jwt_policy_t p = {.alg = alg, .leeway_s = LEEWAY};
    const char *key = alg == TOLK_JWT_HS256   ? s_secret
                      : alg == TOLK_JWT_RS256 ? s_rsa_pub
                                              : s_ec_pub;
    p.key = (const unsigned char *)key;
    p.key_len = strlen(key);
    return p;
}

/* Mint with the signing key of alg. */
static char *s_mint(tolk_jwt_alg_t alg, const char *sub, const char *iss, const char *aud)
{
    const char *key = alg == TOLK_JWT_HS256   ? s_secret
                      : alg == TOLK_JWT_RS256 ? s_rsa_priv
                                              : s_ec_priv;
    char *token =
        tolk_jwt_mint(alg, (const unsigned char *)key, strlen(key), sub, iss, aud, TTL, NOW);
    ck_assert_ptr_nonnull(token);
    return token;
}

/* Verify at time now and expect refusal for the given reason. */
static void s_refused(const tolk_jwt_policy_t *p, const char *token, long now, const char *why)
{
    tolk_jwt_claims_t claims;
    const char *reason = NULL;
    ck_assert_int_eq(tolk_jwt_verify(p, token, (time_t)now, &claims, &reason), -1);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, why);
}

/* Verify at time now and expect acceptance for sub. */
static void s_accepted(const tolk_jwt_policy_t *p, const char *token, long now, const char *sub)
{
    tolk_jwt_claims_t claims;
    const char *reason = "unset";
    int rc = tolk_jwt_verify(p, token, (time_t)now, &claims, &reason);
    ck_assert_msg(rc == 0, "refused: %s", reason ? reason : "(null)");
    ck_assert_ptr_null(reason);
    ck_assert_str_eq(claims.sub, sub);
}

/* Replace the character at index i with one that differs, keeping the
   base64url alphabet so only the signature check can catch it. */
static void s_flip(char *token, size_t i)
{
    token[i] = token[i] == 'A' ? 'B' : 'A';
}

START_TEST(test_valid_hs256)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    tolk_jwt_claims_t claims;
    const char *reason = NULL;
    ck_assert_int_eq(tolk_jwt_verify(&p, t, NOW + 1, &claims, &reason), 0);
    ck_assert_str_eq(claims.sub, "alice");
    ck_assert_int_eq(claims.exp, NOW + TTL);
    free(t);
}
END_TEST

START_TEST(test_valid_rs256)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_RS256);
    char *t = s_mint(TOLK_JWT_RS256, "bob", NULL, NULL);
    s_accepted(&p, t, NOW, "bob");
    free(t);
}
END_TEST

START_TEST(test_valid_es256)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_ES256);
    char *t = s_mint(TOLK_JWT_ES256, "carol", NULL, NULL);
    s_accepted(&p, t, NOW, "carol");
    free(t);
}
END_TEST

START_TEST(test_es256_external_signer)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_ES256);
    char *t = s_es_external("{\"sub\":\"dave\",\"exp\":1700000600}");
    s_accepted(&p, t, NOW, "dave");
    free(t);
}
END_TEST

START_TEST(test_alg_none)
{
    const char *payload = "{\"sub\":\"mallory\",\"exp\":1700000600}";
    for (int a = TOLK_JWT_HS256; a <= TOLK_JWT_ES256; a++) {
        tolk_jwt_policy_t p = s_policy((tolk_jwt_alg_t)a);
        /* the classic form: empty signature segment */
        char *t = s_forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, NULL, 0, "");
        s_refused(&p, t, NOW, "malformed token");
        free(t);
        /* with some signature text, so it reaches the header check */
        const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                                 "{\"alg\":\"NONE\"}", "{\"typ\":\"JWT\"}", "{\"alg\":null}"};
        for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
            t = s_forge(headers[i], payload, NULL, 0, "AAAA");
            s_refused(&p, t, NOW, "wrong algorithm");
            free(t);
        }
    }
}
END_TEST

START_TEST(test_hs256_signed_with_rsa_public_key)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_RS256);
    char *t =
        s_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"mallory\",\"exp\":1700000600}",
                s_rsa_pub, strlen(s_rsa_pub), NULL);
    s_refused(&p, t, NOW, "wrong algorithm");
    free(t);
    /* the same trick against an ES256 deployment */
    p = s_policy(TOLK_JWT_ES256);
    t = s_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"mallory\",\"exp\":1700000600}",
                s_ec_pub, strlen(s_ec_pub), NULL);
    s_refused(&p, t, NOW, "wrong algorithm");
    free(t);
}
END_TEST

START_TEST(test_other_pinned_alg_refused)
{
    tolk_jwt_policy_t rs = s_policy(TOLK_JWT_RS256);
    tolk_jwt_policy_t es = s_policy(TOLK_JWT_ES256);
    tolk_jwt_policy_t hs = s_policy(TOLK_JWT_HS256);
    char *t_rs = s_mint(TOLK_JWT_RS256, "bob", NULL, NULL);
    char *t_es = s_mint(TOLK_JWT_ES256, "bob", NULL, NULL);
    char *t_hs = s_mint(TOLK_JWT_HS256, "bob", NULL, NULL);
    s_refused(&es, t_rs, NOW, "wrong algorithm");
    s_refused(&hs, t_rs, NOW, "wrong algorithm");
    s_refused(&rs, t_es, NOW, "wrong algorithm");
    s_refused(&rs, t_hs, NOW, "wrong algorithm");
    free(t_rs);
    free(t_es);
    free(t_hs);
    /* HS384 is still HMAC, but not what is pinned */
    char *t =
        s_forge("{\"alg\":\"HS384\"}", "{\"sub\":\"bob\",\"exp\":1700000600}", NULL, 0, "AAAA");
    s_refused(&hs, t, NOW, "wrong algorithm");
    free(t);
}
END_TEST

START_TEST(test_tampered_payload)
{
    const tolk_jwt_alg_t algs[] = {TOLK_JWT_HS256, TOLK_JWT_RS256, TOLK_JWT_ES256};
    for (size_t i = 0; i < 3; i++) {
        tolk_jwt_policy_t p = s_policy(algs[i]);
        char *t = s_mint(algs[i], "alice", NULL, NULL);
        /* keep header and signature, swap in a payload naming someone else */
        char *h_end = strchr(t, '.');
        char *sig = strrchr(t, '.');
        const char *evil = "{\"exp\":1700000600,\"iat\":1700000000,\"sub\":\"admin\"}";
        char *p_b64 = s_b64url(evil, strlen(evil));
        char *forged;
        ck_assert_int_ge(asprintf(&forged, "%.*s.%s%s", (int)(h_end - t), t, p_b64, sig), 0);
        s_refused(&p, forged, NOW, "bad signature");
        free(p_b64);
        free(forged);
        free(t);
    }
}
END_TEST

START_TEST(test_tampered_signature)
{
    const tolk_jwt_alg_t algs[] = {TOLK_JWT_HS256, TOLK_JWT_RS256, TOLK_JWT_ES256};
    for (size_t i = 0; i < 3; i++) {
        tolk_jwt_policy_t p = s_policy(algs[i]);
        char *t = s_mint(algs[i], "alice", NULL, NULL);
        char *sig = strrchr(t, '.') + 1;
        s_flip(sig, 5);
        s_refused(&p, t, NOW, "bad signature");
        /* a truncated signature */
        s_flip(sig, 5);
        sig[strlen(sig) - 4] = 0;
        s_refused(&p, t, NOW, "bad signature");
        free(t);
    }
    /* an HS256 token signed with a different secret */
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"bob\",\"exp\":1700000600}",
                      "wrong", 5, NULL);
    s_refused(&p, t, NOW, "bad signature");
    free(t);
}
END_TEST

START_TEST(test_expired)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    s_refused(&p, t, NOW + TTL + LEEWAY + 1, "expired");
    s_refused(&p, t, NOW + 10 * TTL, "expired");
    free(t);
}
END_TEST

START_TEST(test_expired_within_leeway)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    s_accepted(&p, t, NOW + TTL + 1, "alice");
    s_accepted(&p, t, NOW + TTL + LEEWAY, "alice");
    /* with no leeway the same moment is too late */
    p.leeway_s = 0;
    s_refused(&p, t, NOW + TTL + 1, "expired");
    s_accepted(&p, t, NOW + TTL, "alice");
    free(t);
}
END_TEST

START_TEST(test_not_yet_valid)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000061}");
    s_refused(&p, t, NOW, "not yet valid");
    s_accepted(&p, t, NOW + 1, "alice");
    free(t);
    t = s_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000060}");
    s_accepted(&p, t, NOW, "alice");
    free(t);
    t = s_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":\"1700000000\"}");
    s_refused(&p, t, NOW, "bad nbf");
    free(t);
}
END_TEST

START_TEST(test_missing_exp)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_hs("{\"sub\":\"alice\",\"iat\":1700000000}");
    s_refused(&p, t, NOW, "missing exp");
    free(t);
}
END_TEST

START_TEST(test_exp_not_integer)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    const char *payloads[] = {
        "{\"sub\":\"alice\",\"exp\":\"1700000600\"}",
        "{\"sub\":\"alice\",\"exp\":1700000600.0}",
        "{\"sub\":\"alice\",\"exp\":1.7e10}",
        "{\"sub\":\"alice\",\"exp\":true}",
        "{\"sub\":\"alice\",\"exp\":null}",
        "{\"sub\":\"alice\",\"exp\":[1700000600]}",
        "{\"sub\":\"alice\",\"exp\":-1}",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *t = s_hs(payloads[i]);
        s_refused(&p, t, NOW, "bad exp");
        free(t);
    }
    /* too big for any integer type: jansson refuses to parse it */
    char *t = s_hs("{\"sub\":\"alice\",\"exp\":99999999999999999999999}");
    s_refused(&p, t, NOW, "bad payload");
    free(t);
}
END_TEST

START_TEST(test_issuer)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    p.issuer = "https://auth.example/realms/tolk";
    char *good = s_mint(TOLK_JWT_HS256, "alice", "https://auth.example/realms/tolk", NULL);
    char *bad = s_mint(TOLK_JWT_HS256, "alice", "https://evil.example/", NULL);
    char *none = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    char *num = s_hs("{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":7}");
    s_accepted(&p, good, NOW, "alice");
    s_refused(&p, bad, NOW, "wrong issuer");
    s_refused(&p, none, NOW, "wrong issuer");
    s_refused(&p, num, NOW, "wrong issuer");
    /* not configured: not checked */
    p.issuer = "";
    s_accepted(&p, bad, NOW, "alice");
    free(good);
    free(bad);
    free(none);
    free(num);
}
END_TEST

START_TEST(test_audience)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    p.audience = "tolk";
    char *good = s_mint(TOLK_JWT_HS256, "alice", NULL, "tolk");
    char *bad = s_mint(TOLK_JWT_HS256, "alice", NULL, "other");
    char *none = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    s_accepted(&p, good, NOW, "alice");
    s_refused(&p, bad, NOW, "wrong audience");
    s_refused(&p, none, NOW, "wrong audience");
    free(good);
    free(bad);
    free(none);
    char *t = s_hs("{\"sub\":\"alice\",\"exp\":1700000600,\"aud\":[\"account\",\"tolk\"]}");
    s_accepted(&p, t, NOW, "alice");
    free(t);
    t = s_hs("{\"sub\":\"alice\",\"exp\":1700000600,\"aud\":[\"account\",\"tolkx\",1]}");
    s_refused(&p, t, NOW, "wrong audience");
    free(t);
    t = s_hs("{\"sub\":\"alice\",\"exp\":1700000600,\"aud\":[]}");
    s_refused(&p, t, NOW, "wrong audience");
    free(t);
    t = s_hs("{\"sub\":\"alice\",\"exp\":1700000600,\"aud\":{\"tolk\":1}}");
    s_refused(&p, t, NOW, "wrong audience");
    free(t);
}
END_TEST

START_TEST(test_subject)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *t = s_hs("{\"exp\":1700000600}");
    s_refused(&p, t, NOW, "missing sub");
    free(t);
    const char *bad[] = {"{\"exp\":1700000600,\"sub\":\"\"}", "{\"exp\":1700000600,\"sub\":42}",
                         "{\"exp\":1700000600,\"sub\":null}",
                         "{\"exp\":1700000600,\"sub\":\"a\\nb\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = s_hs(bad[i]);
        s_refused(&p, t, NOW, "bad sub");
        free(t);
    }
    /* an embedded NUL never reaches us: jansson refuses \u0000 */
    t = s_hs("{\"exp\":1700000600,\"sub\":\"a\\u0000b\"}");
    s_refused(&p, t, NOW, "bad payload");
    free(t);
    /* 255 bytes is the limit; 256 is refused */
    char sub[TOLK_JWT_SUB_MAX + 2], payload[400];
    memset(sub, 's', TOLK_JWT_SUB_MAX);
    sub[TOLK_JWT_SUB_MAX] = 0;
    snprintf(payload, sizeof payload, "{\"exp\":1700000600,\"sub\":\"%s\"}", sub);
    t = s_hs(payload);
    s_accepted(&p, t, NOW, sub);
    free(t);
    sub[TOLK_JWT_SUB_MAX] = 's';
    sub[TOLK_JWT_SUB_MAX + 1] = 0;
    snprintf(payload, sizeof payload, "{\"exp\":1700000600,\"sub\":\"%s\"}", sub);
    t = s_hs(payload);
    s_refused(&p, t, NOW, "bad sub");
    free(t);
}
END_TEST

START_TEST(test_header_checks)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    const char *payload = "{\"sub\":\"alice\",\"exp\":1700000600}";
    char *t = s_forge("{\"alg\":\"HS256\"}", payload, s_secret, strlen(s_secret), NULL);
    s_accepted(&p, t, NOW, "alice");
    free(t);
    t = s_forge("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", payload, s_secret, strlen(s_secret),
                NULL);
    s_refused(&p, t, NOW, "bad type");
    free(t);
    t = s_forge("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", payload, s_secret,
                strlen(s_secret), NULL);
    s_refused(&p, t, NOW, "unsupported header");
    free(t);
    /* two alg keys: one parser might take the first, another the last */
    t = s_forge("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload, s_secret, strlen(s_secret), NULL);
    s_refused(&p, t, NOW, "bad header");
    free(t);
    const char *headers[] = {"[\"HS256\"]", "\"HS256\"", "{\"alg\":\"HS256\"", "{} {}", ""};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        t = s_forge(headers[i], payload, s_secret, strlen(s_secret), NULL);
        /* an empty header encodes to an empty segment */
        s_refused(&p, t, NOW, *headers[i] ? "bad header" : "malformed token");
        free(t);
    }
    /* payload that is not a JSON object */
    t = s_hs("[1,2,3]");
    s_refused(&p, t, NOW, "bad payload");
    free(t);
}
END_TEST

START_TEST(test_oversize)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    /* grow a padding claim until the signed token crosses the limit */
    char *below = NULL, *above = NULL;
    char pad[4096], payload[4200];
    for (size_t n = 2900; n < sizeof pad && !above; n++) {
        memset(pad, 'x', n);
        pad[n] = 0;
        snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"exp\":1700000600,\"pad\":\"%s\"}",
                 pad);
        char *t = s_hs(payload);
        if (strlen(t) <= TOLK_JWT_MAX_TOKEN) {
            free(below);
            below = t;
        } else
            above = t;
    }
    ck_assert_ptr_nonnull(below);
    ck_assert_ptr_nonnull(above);
    ck_assert_int_ge(strlen(below), TOLK_JWT_MAX_TOKEN - 4);
    s_accepted(&p, below, NOW, "alice");
    s_refused(&p, above, NOW, "token too long");
    free(below);
    free(above);
    /* a megabyte of junk is refused just as fast */
    char *huge = malloc(1 << 20);
    memset(huge, 'A', (1 << 20) - 1);
    huge[(1 << 20) - 1] = 0;
    s_refused(&p, huge, NOW, "token too long");
    free(huge);
}
END_TEST

START_TEST(test_garbage)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    char *valid = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    const char *junk[] = {
        "",         "garbage", "a.b",          "a.b.c.d",      "..",           "a..c",
        ".b.c",     "a.b.",    "ab$c.def.ghi", "a b.c.d",      "abc=.def.ghi", "ab+c.de/f.ghi",
        "\xff.b.c", "a.b.c\n", " a.b.c",       "Bearer a.b.c",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        s_refused(&p, junk[i], NOW, "malformed token");
    /* base64url characters that do not decode to a header */
    s_refused(&p, "a.b.c", NOW, "bad header");
    s_refused(&p, "abcde.bcd.cde", NOW, "bad header");
    /* a valid token with trailing junk or a fourth segment */
    char *t;
    ck_assert_int_ge(asprintf(&t, "%s.", valid), 0);
    s_refused(&p, t, NOW, "malformed token");
    free(t);
    ck_assert_int_ge(asprintf(&t, "%s=", valid), 0);
    s_refused(&p, t, NOW, "malformed token");
    free(t);
    s_refused(&p, NULL, NOW, "no token");
    free(valid);
}
END_TEST

START_TEST(test_policy_misconfigured)
{
    char *t = s_mint(TOLK_JWT_HS256, "alice", NULL, NULL);
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    p.key_len = 0;
    s_refused(&p, t, NOW, "no key configured");
    p = s_policy(TOLK_JWT_HS256);
    p.key = NULL;
    s_refused(&p, t, NOW, "no key configured");
    p = s_policy(TOLK_JWT_HS256);
    p.alg = 0;
    s_refused(&p, t, NOW, "no algorithm configured");
    const char *reason = NULL;
    ck_assert_int_eq(tolk_jwt_verify(NULL, t, NOW, NULL, &reason), -1);
    ck_assert_ptr_nonnull(reason);
    /* a public key that is not PEM refuses every RS256 token */
    char *rs = s_mint(TOLK_JWT_RS256, "alice", NULL, NULL);
    p = s_policy(TOLK_JWT_RS256);
    p.key = (const unsigned char *)"not a key";
    p.key_len = 9;
    s_refused(&p, rs, NOW, "bad signature");
    free(rs);
    free(t);
}
END_TEST

START_TEST(test_reason_never_echoes_token)
{
    tolk_jwt_policy_t p = s_policy(TOLK_JWT_HS256);
    p.issuer = "tolk";
    char *t = s_mint(TOLK_JWT_HS256, "SECRETSUBJECT", "SECRETISSUER", NULL);
    tolk_jwt_claims_t claims;
    const char *reason = NULL;
    ck_assert_int_eq(tolk_jwt_verify(&p, t, NOW, &claims, &reason), -1);
    ck_assert_ptr_nonnull(reason);
    ck_assert_ptr_null(strstr(reason, "SECRET"));
    free(t);
}
END_TEST

START_TEST(test_alg_names_and_mint_refusals)
{
    ck_assert_int_eq(tolk_jwt_alg_from_name("HS256"), TOLK_JWT_HS256);
    ck_assert_int_eq(tolk_jwt_alg_from_name("RS256"), TOLK_JWT_RS256);
    ck_assert_int_eq(tolk_jwt_alg_from_name("ES256"), TOLK_JWT_ES256);
    ck_assert_int_eq(tolk_jwt_alg_from_name("none"), 0);
    ck_assert_int_eq(tolk_jwt_alg_from_name("HS512"), 0);
    ck_assert_int_eq(tolk_jwt_alg_from_name(""), 0);
    ck_assert_int_eq(tolk_jwt_alg_from_name(NULL), 0);
    const unsigned char *key = (const unsigned char *)s_secret;
    size_t len = strlen(s_secret);
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_HS256, key, len, "", NULL, NULL, TTL, NOW));
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_HS256, key, len, NULL, NULL, NULL, TTL, NOW));
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_HS256, key, len, "a", NULL, NULL, 0, NOW));
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_HS256, NULL, 0, "a", NULL, NULL, TTL, NOW));
    ck_assert_ptr_null(tolk_jwt_mint(0, key, len, "a", NULL, NULL, TTL, NOW));
    /* a PEM key that is not one cannot sign */
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_RS256, key, len, "a", NULL, NULL, TTL, NOW));
    char sub[TOLK_JWT_SUB_MAX + 2];
    memset(sub, 's', sizeof sub - 1);
    sub[sizeof sub - 1] = 0;
    ck_assert_ptr_null(tolk_jwt_mint(TOLK_JWT_HS256, key, len, sub, NULL, NULL, TTL, NOW));
}
END_TEST

/* Every case in one suite, one test case per attack class. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *valid = tcase_create("valid");
    tcase_add_test(valid, test_valid_hs256);
    tcase_add_test(valid, test_valid_rs256);
    tcase_add_test(valid, test_valid_es256);
    tcase_add_test(valid, test_es256_external_signer);
    suite_add_tcase(s, valid);
    TCase *alg = tcase_create("algorithm");
    tcase_add_test(alg, test_alg_none);
    tcase_add_test(alg, test_hs256_signed_with_rsa_public_key);
    tcase_add_test(alg, test_other_pinned_alg_refused);
    tcase_add_test(alg, test_header_checks);
    suite_add_tcase(s, alg);
    TCase *sig = tcase_create("signature");
    tcase_add_test(sig, test_tampered_payload);
    tcase_add_test(sig, test_tampered_signature);
    suite_add_tcase(s, sig);
    TCase *claims = tcase_create("claims");
    tcase_add_test(claims, test_expired);
    tcase_add_test(claims, test_expired_within_leeway);
    tcase_add_test(claims, test_not_yet_valid);
    tcase_add_test(claims, test_missing_exp);
    tcase_add_test(claims, test_exp_not_integer);
    tcase_add_test(claims, test_issuer);
    tcase_add_test(claims, test_audience);
    tcase_add_test(claims, test_subject);
    suite_add_tcase(s, claims);
    TCase *shape = tcase_create("shape");
    tcase_add_test(shape, test_oversize);
    tcase_add_test(shape, test_garbage);
    tcase_add_test(shape, test_policy_misconfigured);
    tcase_add_test(shape, test_reason_never_echoes_token);
    tcase_add_test(shape, test_alg_names_and_mint_refusals);
    suite_add_tcase(s, shape);
    return s;
}

int main(void)
{
    s_rsa = EVP_RSA_gen(2048);
    s_ec = EVP_EC_gen("P-256");
    if (!s_rsa || !s_ec) {
        fprintf(stderr, "test_jwt: key generation failed\n");
        return 1;
    }
    s_rsa_priv = s_pem(s_rsa, 0);
    s_rsa_pub = s_pem(s_rsa, 1);
    s_ec_priv = s_pem(s_ec, 0);
    s_ec_pub = s_pem(s_ec, 1);
    if (!s_rsa_priv || !s_rsa_pub || !s_ec_priv || !s_ec_pub) {
        fprintf(stderr, "test_jwt: PEM export failed\n");
        return 1;
    }
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(s_rsa_priv);
    free(s_rsa_pub);
    free(s_ec_priv);
    free(s_ec_pub);
    EVP_PKEY_free(s_rsa);
    EVP_PKEY_free(s_ec);
    return failed ? 1 : 0;
}
