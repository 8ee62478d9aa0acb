/*  test_query.c -- unit tests of the connect-URL query parser (common/query.c).

    The connect URL is the first thing an outsider controls, so every
    bound in query.h is tested on both sides of its edge: the largest
    accepted input and the smallest refused one. Raw queries are copied
    into exactly-sized heap blocks without a terminating NUL before
    parsing, so under ASan (make SAN=1) a read one byte past the end
    fails; the fixture resets the parsed query after every test so the
    leak checker sees anything reset forgets to free.
*/
#include "query.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The query under test; reset by the fixture so each test starts empty
   and nothing it parsed outlives it. */
static tolk_query_t s_q;

/* Last exact-size copy handed to the parser, freed by the fixture. */
static char *s_exact;

/* Start every test with an empty query. */
static void s_setup(void)
{
    tolk_query_init(&s_q);
    s_exact = NULL;
}

/* Free what the test parsed, so leak checkers report only real leaks. */
static void s_teardown(void)
{
    tolk_query_reset(&s_q);
    free(s_exact);
    s_exact = NULL;
}

/* Parse raw[0..len) from an unterminated exact-size heap copy, so the
   parser cannot lean on a NUL that a network buffer would not have. */
static int s_parse_bytes(const char *raw, size_t len)
{
    free(s_exact);
    s_exact = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(s_exact);
    memcpy(s_exact, raw, len);
    return tolk_query_parse(&s_q, s_exact, len);
}

/* Parse a C string (its NUL is not passed). */
static int s_parse(const char *raw)
{
    return s_parse_bytes(raw, strlen(raw));
}

/* Add one pair from an exact-size heap copy, as lws hands a fragment. */
static int s_add(const char *pair)
{
    size_t len = strlen(pair);
    free(s_exact);
    s_exact = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(s_exact);
    memcpy(s_exact, pair, len);
    return tolk_query_add(&s_q, s_exact, len);
}

/* A malloc'd string: prefix followed by n copies of c; the caller frees.
   Long keys and values are built this way rather than spelled out. */
static char *s_repeat(const char *prefix, char c, size_t n)
{
    size_t plen = strlen(prefix);
    char *s = malloc(plen + n + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, plen);
    memset(s + plen, c, n);
    s[plen + n] = 0;
    return s;
}

/* A malloc'd string: prefix followed by n copies of the string unit. */
static char *s_repeat_str(const char *prefix, const char *unit, size_t n)
{
    size_t plen = strlen(prefix), ulen = strlen(unit);
    char *s = malloc(plen + n * ulen + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, plen);
    for (size_t i = 0; i < n; i++)
        memcpy(s + plen + i * ulen, unit, ulen);
    s[plen + n * ulen] = 0;
    return s;
}

/* ---------------------------------------------------------------------
   Ordinary queries
*/

START_TEST(test_init_empty)
{
    ck_assert_int_eq(s_q.count, 0);
    ck_assert_str_eq(s_q.failed_key, "");
    ck_assert_ptr_null(tolk_query_get(&s_q, "action"));
    ck_assert_int_eq(s_parse(""), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

START_TEST(test_connect_url)
{
    ck_assert_int_eq(s_parse("action=joinSession&sessionId=golden-eagle-427&language=es"),
                     TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 3);
    ck_assert_str_eq(s_q.params[0].key, "action");
    ck_assert_str_eq(s_q.params[1].key, "sessionId");
    ck_assert_str_eq(s_q.params[2].key, "language");
    ck_assert_str_eq(tolk_query_get(&s_q, "action"), "joinSession");
    ck_assert_str_eq(tolk_query_get(&s_q, "sessionId"), "golden-eagle-427");
    ck_assert_str_eq(tolk_query_get(&s_q, "language"), "es");
}
END_TEST

START_TEST(test_speaker_url_with_token)
{
    const char *raw = "action=createSession&role=speaker&token=eyJhbGciOiJIUzI1NiJ9."
                      "eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ&language=en";
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 4);
    ck_assert_str_eq(tolk_query_get(&s_q, "role"), "speaker");
    ck_assert_str_eq(tolk_query_get(&s_q, "token"),
                     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ");
}
END_TEST

START_TEST(test_decoding)
{
    ck_assert_int_eq(s_parse("a=hello+world&b=%41%62%2b%2B%20x&c=caf%C3%A9&d=%3D%26&e=+"),
                     TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "a"), "hello world");
    ck_assert_str_eq(tolk_query_get(&s_q, "b"), "Ab++ x");
    ck_assert_str_eq(tolk_query_get(&s_q, "c"), "caf\xc3\xa9");
    ck_assert_str_eq(tolk_query_get(&s_q, "d"), "=&");
    ck_assert_str_eq(tolk_query_get(&s_q, "e"), " ");
}
END_TEST

START_TEST(test_escape_at_end)
{
    /* the shortest escape that ends the input is still whole */
    ck_assert_int_eq(s_parse("k=%41"), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "k"), "A");
}
END_TEST

START_TEST(test_escaped_key)
{
    /* keys are decoded before their characters are checked */
    ck_assert_int_eq(s_parse("session%49d=x"), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "sessionId"), "x");
}
END_TEST

START_TEST(test_second_equals_in_value)
{
    ck_assert_int_eq(s_parse("k=a=b"), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "k"), "a=b");
}
END_TEST

START_TEST(test_missing_equals)
{
    ck_assert_int_eq(s_parse("flag&k=v&last"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 3);
    ck_assert_str_eq(tolk_query_get(&s_q, "flag"), "");
    ck_assert_str_eq(tolk_query_get(&s_q, "k"), "v");
    ck_assert_str_eq(tolk_query_get(&s_q, "last"), "");
}
END_TEST

START_TEST(test_empty_value)
{
    ck_assert_int_eq(s_parse("a=&b=2"), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "a"), "");
    ck_assert_str_eq(tolk_query_get(&s_q, "b"), "2");
}
END_TEST

START_TEST(test_empty_pairs)
{
    ck_assert_int_eq(s_parse("a=1&&b=2"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 2);
    ck_assert_str_eq(tolk_query_get(&s_q, "a"), "1");
    ck_assert_str_eq(tolk_query_get(&s_q, "b"), "2");
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_parse("&&&a=1&"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 1);
    ck_assert_str_eq(tolk_query_get(&s_q, "a"), "1");
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_parse("&"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

START_TEST(test_get_missing)
{
    ck_assert_int_eq(s_parse("action=joinSession"), TOLK_QUERY_OK);
    ck_assert_ptr_null(tolk_query_get(&s_q, "token"));
    ck_assert_ptr_null(tolk_query_get(&s_q, ""));
    ck_assert_ptr_null(tolk_query_get(&s_q, "Action")); /* keys are case sensitive */
    ck_assert_ptr_null(tolk_query_get(&s_q, "actio"));
    ck_assert_ptr_null(tolk_query_get(&s_q, "actionX"));
}
END_TEST

/* ---------------------------------------------------------------------
   Bounds: the count, the key and the value
*/

START_TEST(test_max_params)
{
    char raw[512] = "";
    for (int i = 0; i < TOLK_QUERY_MAX_PARAMS; i++) {
        char pair[16];
        snprintf(pair, sizeof pair, "%sk%d=%d", i ? "&" : "", i, i);
        strcat(raw, pair);
    }
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, TOLK_QUERY_MAX_PARAMS);
    ck_assert_str_eq(tolk_query_get(&s_q, "k15"), "15");

    /* empty pairs do not count */
    tolk_query_reset(&s_q);
    char padded[600];
    snprintf(padded, sizeof padded, "&&%s&&", raw);
    ck_assert_int_eq(s_parse(padded), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, TOLK_QUERY_MAX_PARAMS);

    /* one more is refused; the first 16 are kept for the caller to reset */
    tolk_query_reset(&s_q);
    strcat(raw, "&k16=16");
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOMANY);
    ck_assert_int_eq(s_q.count, TOLK_QUERY_MAX_PARAMS);
    ck_assert_ptr_null(tolk_query_get(&s_q, "k16"));
}
END_TEST

START_TEST(test_key_length)
{
    char *key32 = s_repeat("", 'k', TOLK_QUERY_KEY_MAX);
    char *raw = s_repeat_str(key32, "=v", 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, key32), "v");
    free(raw);
    free(key32);

    tolk_query_reset(&s_q);
    char *key33 = s_repeat("", 'k', TOLK_QUERY_KEY_MAX + 1);
    raw = s_repeat_str(key33, "=v", 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_EKEY);
    ck_assert_int_eq(s_q.count, 0);
    free(raw);
    free(key33);

    /* the limit is on the decoded key: 32 escaped letters are fine */
    tolk_query_reset(&s_q);
    raw = s_repeat_str("", "%6b", TOLK_QUERY_KEY_MAX);
    char *pair = s_repeat_str(raw, "=v", 1);
    ck_assert_int_eq(s_parse(pair), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 1);
    ck_assert_uint_eq(strlen(s_q.params[0].key), TOLK_QUERY_KEY_MAX);
    free(pair);
    free(raw);
}
END_TEST

START_TEST(test_bad_keys)
{
    static const char *const bad[] = {
        "=v",            /* empty key */
        "=",             /* empty key, empty value */
        "a b=v",         /* space */
        "a+b=v",         /* '+' decodes to a space */
        "a%20b=v",       /* escaped space */
        "a/b=v",         /* slash */
        "a;b=v",         /* semicolon */
        "a\"b=v",        /* quote */
        "caf\xc3\xa9=v", /* non-ASCII */
        "a%3Db=v",       /* escaped '=' lands in the key */
        "a%26b=v",       /* escaped '&' lands in the key */
        "a\x01=v",       /* control byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tolk_query_reset(&s_q);
        int rc = s_parse(bad[i]);
        ck_assert_msg(rc == TOLK_QUERY_EKEY, "key of \"%s\": got %d", bad[i], rc);
        ck_assert_int_eq(s_q.count, 0);
    }
    /* every allowed class in one key */
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_parse("aZ09_-.=ok"), TOLK_QUERY_OK);
    ck_assert_str_eq(tolk_query_get(&s_q, "aZ09_-."), "ok");
}
END_TEST

START_TEST(test_raw_nul_in_key)
{
    ck_assert_int_eq(s_parse_bytes("a\0b=v", 5), TOLK_QUERY_EKEY);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

START_TEST(test_value_length)
{
    char *raw = s_repeat("token=", 'x', TOLK_QUERY_VALUE_MAX);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_uint_eq(strlen(tolk_query_get(&s_q, "token")), TOLK_QUERY_VALUE_MAX);
    ck_assert_str_eq(s_q.failed_key, "");
    free(raw);

    tolk_query_reset(&s_q);
    raw = s_repeat("token=", 'x', TOLK_QUERY_VALUE_MAX + 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_str_eq(s_q.failed_key, "token");
    ck_assert_int_eq(s_q.count, 0);
    free(raw);
}
END_TEST

START_TEST(test_value_length_escaped)
{
    /* the limit is on the decoded value: 8192 escapes are 8192 bytes */
    char *raw = s_repeat_str("v=", "%41", TOLK_QUERY_VALUE_MAX);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_uint_eq(strlen(tolk_query_get(&s_q, "v")), TOLK_QUERY_VALUE_MAX);
    free(raw);

    tolk_query_reset(&s_q);
    raw = s_repeat_str("v=", "%41", TOLK_QUERY_VALUE_MAX + 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_str_eq(s_q.failed_key, "v");
    free(raw);
}
END_TEST

START_TEST(test_too_long_keeps_earlier)
{
    char *tail = s_repeat("&token=", 'x', TOLK_QUERY_VALUE_MAX + 1);
    char *raw = s_repeat_str("action=createSession&role=speaker", tail, 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_str_eq(s_q.failed_key, "token");
    /* what came before the refusal is there, so the error can name the action */
    ck_assert_int_eq(s_q.count, 2);
    ck_assert_str_eq(tolk_query_get(&s_q, "action"), "createSession");
    free(raw);
    free(tail);
}
END_TEST

/* Regression (query.c, tolk_query_parse, fixed): a pair longer than the raw pre-check
   bound (KEY_MAX + 1 + 3 * VALUE_MAX bytes) returns ETOOLONG before the key
   is looked at, so failed_key stays empty. A caller telling a too-long token
   (401) from other errors (400) by failed_key then gets the wrong answer. */
START_TEST(test_huge_value_sets_failed_key)
{
    char *raw = s_repeat("token=", 'x', 3 * TOLK_QUERY_VALUE_MAX + 64);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_str_eq(s_q.failed_key, "token");
    free(raw);
}
END_TEST

/* Regression (query.c, tolk_query_parse, fixed): the raw pre-check allows only
   KEY_MAX raw bytes of key, but a key may be escaped (3 raw bytes per
   decoded byte). A 32-byte escaped key with an 8192-byte escaped value is
   within every documented bound, yet it is refused with ETOOLONG. */
START_TEST(test_escaped_key_and_value_at_limits)
{
    char *key = s_repeat_str("", "%6b", TOLK_QUERY_KEY_MAX);
    char *head = s_repeat_str(key, "=", 1);
    char *raw = s_repeat_str(head, "%41", TOLK_QUERY_VALUE_MAX);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 1);
    ck_assert_uint_eq(strlen(s_q.params[0].value), TOLK_QUERY_VALUE_MAX);
    free(raw);
    free(head);
    free(key);
}
END_TEST

/* ---------------------------------------------------------------------
   Escapes and duplicates
*/

START_TEST(test_bad_escapes)
{
    static const char *const bad[] = {
        "k=%4",             /* truncated at the end */
        "k=%",              /* bare percent at the end */
        "k=%4&x",           /* truncated before the next pair */
        "k=%zz",            /* not hex */
        "k=%4g",            /* second digit not hex */
        "k=%g4",            /* first digit not hex */
        "k=% 41",           /* space inside */
        "k=%00",            /* escaped NUL */
        "k=a%00b", "%00=v", /* escaped NUL in the key */
        "k%4=v",            /* truncated escape in the key */
        "k%=v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tolk_query_reset(&s_q);
        int rc = s_parse(bad[i]);
        ck_assert_msg(rc == TOLK_QUERY_EESCAPE, "\"%s\": got %d", bad[i], rc);
        ck_assert_int_eq(s_q.count, 0);
    }
}
END_TEST

START_TEST(test_raw_nul_in_value)
{
    /* a raw NUL would cut the C string short: refused like an escaped one */
    ck_assert_int_eq(s_parse_bytes("k=a\0b", 5), TOLK_QUERY_EESCAPE);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

START_TEST(test_duplicate_key)
{
    ck_assert_int_eq(s_parse("role=listener&role=speaker"), TOLK_QUERY_EDUP);
    ck_assert_int_eq(s_q.count, 1);
    ck_assert_str_eq(tolk_query_get(&s_q, "role"), "listener");

    /* the same key spelled with an escape is still the same key */
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_parse("role=a&r%6fle=b"), TOLK_QUERY_EDUP);

    /* a prefix is a different key */
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_parse("rol=a&role=b&roles=c"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 3);
    ck_assert_str_eq(tolk_query_get(&s_q, "rol"), "a");
    ck_assert_str_eq(tolk_query_get(&s_q, "role"), "b");
    ck_assert_str_eq(tolk_query_get(&s_q, "roles"), "c");
}
END_TEST

/* ---------------------------------------------------------------------
   tolk_query_add: pairs lws has already decoded
*/

START_TEST(test_add_decoded)
{
    ck_assert_int_eq(s_add("action=joinSession"), TOLK_QUERY_OK);
    /* no second decoding: '+' and '%' stay as they are */
    ck_assert_int_eq(s_add("name=a b+c%20"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_add("flag"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_add("eq=x=y"), TOLK_QUERY_OK);
    ck_assert_int_eq(s_q.count, 4);
    ck_assert_str_eq(tolk_query_get(&s_q, "action"), "joinSession");
    ck_assert_str_eq(tolk_query_get(&s_q, "name"), "a b+c%20");
    ck_assert_str_eq(tolk_query_get(&s_q, "flag"), "");
    ck_assert_str_eq(tolk_query_get(&s_q, "eq"), "x=y");

    ck_assert_int_eq(s_add("action=createSession"), TOLK_QUERY_EDUP);
    ck_assert_int_eq(s_add("=v"), TOLK_QUERY_EKEY);
    ck_assert_int_eq(s_add(""), TOLK_QUERY_EKEY);
    ck_assert_int_eq(s_add("a%41=v"), TOLK_QUERY_EKEY); /* '%' is not a key character */
    ck_assert_int_eq(s_q.count, 4);
}
END_TEST

START_TEST(test_add_nul_in_value)
{
    free(s_exact);
    s_exact = malloc(5);
    ck_assert_ptr_nonnull(s_exact);
    memcpy(s_exact, "k=a\0b", 5);
    ck_assert_int_eq(tolk_query_add(&s_q, s_exact, 5), TOLK_QUERY_EESCAPE);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

START_TEST(test_add_bounds)
{
    char *raw = s_repeat("token=", 'x', TOLK_QUERY_VALUE_MAX);
    ck_assert_int_eq(s_add(raw), TOLK_QUERY_OK);
    free(raw);
    raw = s_repeat("other=", 'x', TOLK_QUERY_VALUE_MAX + 1);
    ck_assert_int_eq(s_add(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_str_eq(s_q.failed_key, "other");
    free(raw);

    tolk_query_reset(&s_q);
    for (int i = 0; i < TOLK_QUERY_MAX_PARAMS; i++) {
        char pair[16];
        snprintf(pair, sizeof pair, "k%d=%d", i, i);
        ck_assert_int_eq(s_add(pair), TOLK_QUERY_OK);
    }
    ck_assert_int_eq(s_add("k16=16"), TOLK_QUERY_ETOOMANY);
    ck_assert_int_eq(s_q.count, TOLK_QUERY_MAX_PARAMS);
}
END_TEST

/* ---------------------------------------------------------------------
   Reset
*/

START_TEST(test_reset_frees_everything)
{
    /* a full query of maximal values: under ASan, anything reset misses leaks */
    for (int round = 0; round < 3; round++) {
        char *value = s_repeat("", 'v', TOLK_QUERY_VALUE_MAX);
        for (int i = 0; i < TOLK_QUERY_MAX_PARAMS; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%d=", i);
            char *pair = s_repeat_str(key, value, 1);
            ck_assert_int_eq(s_add(pair), TOLK_QUERY_OK);
            free(pair);
        }
        free(value);
        ck_assert_int_eq(s_q.count, TOLK_QUERY_MAX_PARAMS);
        tolk_query_reset(&s_q);
        ck_assert_int_eq(s_q.count, 0);
        ck_assert_ptr_null(tolk_query_get(&s_q, "k0"));
        for (int i = 0; i < TOLK_QUERY_MAX_PARAMS; i++)
            ck_assert_ptr_null(s_q.params[i].value);
    }

    /* after a failed parse too: the caller resets whatever was kept */
    char *raw = s_repeat("a=1&b=2&c=", 'x', TOLK_QUERY_VALUE_MAX + 1);
    ck_assert_int_eq(s_parse(raw), TOLK_QUERY_ETOOLONG);
    ck_assert_int_eq(s_q.count, 2);
    free(raw);
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_q.count, 0);
    ck_assert_str_eq(s_q.failed_key, "");

    /* and resetting an empty query is harmless */
    tolk_query_reset(&s_q);
    ck_assert_int_eq(s_q.count, 0);
}
END_TEST

/* ---------------------------------------------------------------------
   Suite
*/

/* Every test case, grouped as above. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_init_empty);
    tcase_add_test(tc, test_connect_url);
    tcase_add_test(tc, test_speaker_url_with_token);
    tcase_add_test(tc, test_decoding);
    tcase_add_test(tc, test_escape_at_end);
    tcase_add_test(tc, test_escaped_key);
    tcase_add_test(tc, test_second_equals_in_value);
    tcase_add_test(tc, test_missing_equals);
    tcase_add_test(tc, test_empty_value);
    tcase_add_test(tc, test_empty_pairs);
    tcase_add_test(tc, test_get_missing);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_max_params);
    tcase_add_test(tc, test_key_length);
    tcase_add_test(tc, test_bad_keys);
    tcase_add_test(tc, test_raw_nul_in_key);
    tcase_add_test(tc, test_value_length);
    tcase_add_test(tc, test_value_length_escaped);
    tcase_add_test(tc, test_too_long_keeps_earlier);
    tcase_add_test(tc, test_huge_value_sets_failed_key);
    tcase_add_test(tc, test_escaped_key_and_value_at_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("escapes");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_bad_escapes);
    tcase_add_test(tc, test_raw_nul_in_value);
    tcase_add_test(tc, test_duplicate_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("add");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_add_decoded);
    tcase_add_test(tc, test_add_nul_in_value);
    tcase_add_test(tc, test_add_bounds);
    tcase_add_test(tc, test_reset_frees_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
