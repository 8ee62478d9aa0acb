/*  jwt_check.h -- speaker token verification with the algorithm pinned.

    libjwt 1.10 accepts alg=none, accepts HS256 tokens signed with an RSA
    public key, and checks no claims; so this module checks the header's
    alg before decoding, again after, and every claim itself.
*/
#ifndef TOLK_JWT_CHECK_H
#define TOLK_JWT_CHECK_H

#include <stddef.h>
#include <time.h>

#define TOLK_JWT_MAX_TOKEN 4096 /* bytes; longer tokens are refused unread */
#define TOLK_JWT_SUB_MAX   255

typedef enum { TOLK_JWT_HS256 = 1, TOLK_JWT_RS256 = 2, TOLK_JWT_ES256 = 3 } tolk_jwt_alg_t;

/* What a token must satisfy. Strings may be NULL or "" for "not checked". */
typedef struct {
    tolk_jwt_alg_t alg;       /* the only algorithm accepted */
    const unsigned char *key; /* HS256 secret, or PEM public key for RS/ES */
    size_t key_len;
    const char *issuer;   /* required iss when set */
    const char *audience; /* required aud (string or member of array) when set */
    long leeway_s;        /* clock skew allowed on exp and nbf */
} tolk_jwt_policy_t;

/* The claims tolk uses from a valid token. */
typedef struct {
    char sub[TOLK_JWT_SUB_MAX + 1]; /* the speaker's identity */
    long exp;                       /* expiry, Unix seconds */
} tolk_jwt_claims_t;

/* Parse "HS256"/"RS256"/"ES256"; returns 0 if unknown. */
tolk_jwt_alg_t tolk_jwt_alg_from_name(const char *name);

/* Verify token against policy at time now. Returns 0 and fills claims, or
   -1 with a short static reason ("expired", "bad signature", ...) that
   never contains any part of the token. */
int tolk_jwt_verify(const tolk_jwt_policy_t *policy, const char *token, time_t now,
                    tolk_jwt_claims_t *claims, const char **reason);

/* Mint a token for development (tolk-token and tests): key is the HS256
   secret or a PEM private key. iss/aud may be NULL. Returns a malloc'd
   string or NULL. */
char *tolk_jwt_mint(tolk_jwt_alg_t alg, const unsigned char *key, size_t key_len, const char *sub,
                    const char *iss, const char *aud, long ttl_s, time_t now);

#endif
