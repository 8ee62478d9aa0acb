/*  query.h -- the bounded parser of a connect URL's query parameters.

    The connect URL is the first outside data a gateway reads. Bounded:
    at most TOLK_QUERY_MAX_PARAMS parameters, keys of at most
    TOLK_QUERY_KEY_MAX bytes, values of at most TOLK_QUERY_VALUE_MAX;
    anything more is refused, never truncated.
*/
#ifndef TOLK_QUERY_H
#define TOLK_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define TOLK_QUERY_MAX_PARAMS 16
#define TOLK_QUERY_KEY_MAX    32
#define TOLK_QUERY_VALUE_MAX  8192

/* Why a query was refused. */
typedef enum {
    TOLK_QUERY_OK = 0,
    TOLK_QUERY_ETOOMANY = -1, /* more than TOLK_QUERY_MAX_PARAMS */
    TOLK_QUERY_EKEY = -2,     /* empty, too long, or bad characters in a key */
    TOLK_QUERY_ETOOLONG = -3, /* a value longer than TOLK_QUERY_VALUE_MAX */
    TOLK_QUERY_EESCAPE = -4,  /* a bad %XX escape, or an escaped NUL */
    TOLK_QUERY_EDUP = -5,     /* the same key twice */
} tolk_query_result_t;

/* One parameter; value is NUL terminated. */
typedef struct {
    char key[TOLK_QUERY_KEY_MAX + 1];
    char *value; /* malloc'd */
} tolk_query_param_t;

typedef struct {
    int count;
    tolk_query_param_t params[TOLK_QUERY_MAX_PARAMS];
    char failed_key[TOLK_QUERY_KEY_MAX + 1]; /* the key whose value was refused */
} tolk_query_t;

/* Start empty. */
void tolk_query_init(tolk_query_t *q);

/* Free the values. */
void tolk_query_reset(tolk_query_t *q);

/* Parse a raw query ("a=b&c=d", %XX and '+' decoded). Returns TOLK_QUERY_OK
   or a negative code; q then holds what was parsed before the error. */
int tolk_query_parse(tolk_query_t *q, const char *raw, size_t len);

/* Add one already-decoded "key=value" pair (lws hands them so). */
int tolk_query_add(tolk_query_t *q, const char *pair, size_t len);

/* The value of key, or NULL. */
const char *tolk_query_get(const tolk_query_t *q, const char *key);

#endif
