/*  test_envelope.c -- unit tests of the envelope codec (common/envelope.c).

    Round trips go through the real encoder; every decoder error is reached
    by a buffer built byte by byte, because a hostile peer does not use our
    encoder. Inputs are copied into exactly-sized heap blocks before
    decoding, so under ASan (make SAN=1) a read one byte past the end fails.
*/
#include "envelope.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------
   A byte builder for hand-crafted inputs, and an exact-size decoder
*/

/* The buffer being built: big enough for the largest payload plus headers,
   with room to go over the caps on purpose. */
static uint8_t s_buf[TOLK_ENVELOPE_MAX * 2];
static size_t s_len;

/* Last exact-size copy handed to the decoder; kept alive because a decoded
   payload points into it. */
static uint8_t *s_exact;

/* Start a new buffer. */
static void s_reset(void)
{
    s_len = 0;
}

/* Append raw bytes. */
static void s_put(const void *data, size_t len)
{
    ck_assert_uint_le(s_len + len, sizeof(s_buf));
    memcpy(s_buf + s_len, data, len);
    s_len += len;
}

/* Append one byte. */
static void s_byte(uint8_t b)
{
    s_put(&b, 1);
}

/* Append a big-endian number of n bytes, as msgpack headers carry them. */
static void s_be(uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;)
        s_byte((uint8_t)(v >> (8 * i)));
}

/* Append a fixstr (short keys and values). */
static void s_fixstr(const char *s)
{
    size_t len = strlen(s);
    ck_assert_uint_le(len, 31);
    s_byte((uint8_t)(0xa0 | len));
    s_put(s, len);
}

/* Append a one-letter key. */
static void s_key(char k)
{
    s_byte(0xa1);
    s_byte((uint8_t)k);
}

/* Append a fixmap header of n entries, then v=1 and k=kind as its first
   two: the smallest valid envelope, ready for n - 2 more entries. */
static void s_head(unsigned n, uint8_t kind)
{
    ck_assert_uint_le(n, 15);
    s_byte((uint8_t)(0x80 | n));
    s_key('v');
    s_byte(TOLK_ENVELOPE_VERSION);
    s_key('k');
    s_byte(kind);
}

/* Decode data[0..len) from an exactly-sized heap copy. */
static int s_decode_bytes(tolk_envelope_t *env, const uint8_t *data, size_t len)
{
    free(s_exact);
    s_exact = NULL;
    if (len) {
        s_exact = malloc(len);
        ck_assert_ptr_nonnull(s_exact);
        memcpy(s_exact, data, len);
    }
    return tolk_envelope_decode(env, s_exact, len);
}

/* Decode what the builder holds. */
static int s_decode(tolk_envelope_t *env)
{
    return s_decode_bytes(env, s_buf, s_len);
}

/* Field-by-field equality: strings up to their NUL, payload by content
   (its pointer differs between buffers). */
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

/* Encode env, decode the result, and check the two are equal; returns the
   encoded size. */
static size_t s_roundtrip(const tolk_envelope_t *env)
{
    size_t len = 0;
    uint8_t *wire = tolk_envelope_encode(env, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_uint_le(len, TOLK_ENVELOPE_MAX);
    tolk_envelope_t back;
    int rc = s_decode_bytes(&back, wire, len);
    ck_assert_msg(rc == TOLK_ENV_OK, "decode: %s", tolk_envelope_strerror(rc));
    ck_assert(s_env_equal(env, &back));
    free(wire);
    return len;
}

/* Free the last exact copy so leak checkers stay quiet. */
static void s_teardown(void)
{
    free(s_exact);
    s_exact = NULL;
}

/* An envelope with every field set to something nonzero. */
static void s_full(tolk_envelope_t *env, const uint8_t *payload, size_t payload_len)
{
    tolk_envelope_init(env, TOLK_KIND_PUBLISH);
    ck_assert_int_eq(tolk_envelope_set_str(env->gateway, sizeof env->gateway, "gw-1"), 0);
    ck_assert_int_eq(tolk_envelope_set_str(env->worker, sizeof env->worker, "control-7"), 0);
    ck_assert_int_eq(tolk_envelope_set_str(env->session, sizeof env->session, "ABCD-1234"), 0);
    ck_assert_int_eq(tolk_envelope_set_str(env->lang, sizeof env->lang, "es"), 0);
    env->conn = 123456789012ull;
    env->role = TOLK_ROLE_LISTENER;
    env->sent_ns = 0x0123456789abcdefull;
    env->audience = TOLK_AUDIENCE_LANGUAGE;
    env->close_code = 4001;
    env->flags = TOLK_FLAG_UNBIND | TOLK_FLAG_PARTIAL;
    env->age_ms = 65536;
    env->payload = payload;
    env->payload_len = payload_len;
}

/* One msgpack value spelled out in bytes, for tables of inputs. */
typedef struct {
    const char *name;     /* what it is, for failure messages */
    const uint8_t *bytes; /* its encoding */
    size_t len;           /* length of bytes */
} s_value_t;

#define S_VALUE(name, ...)                                                                         \
    {                                                                                              \
        name, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})               \
    }

/* One value of every msgpack type and width: all skippable as unknowns. */
static const s_value_t s_every_type[] = {
    S_VALUE("nil", 0xc0),
    S_VALUE("false", 0xc2),
    S_VALUE("true", 0xc3),
    S_VALUE("positive fixint", 0x7f),
    S_VALUE("negative fixint", 0xe0),
    S_VALUE("uint8", 0xcc, 0xff),
    S_VALUE("uint16", 0xcd, 0xff, 0xff),
    S_VALUE("uint32", 0xce, 0xff, 0xff, 0xff, 0xff),
    S_VALUE("uint64", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    S_VALUE("int8", 0xd0, 0x80),
    S_VALUE("int16", 0xd1, 0x80, 0x00),
    S_VALUE("int32", 0xd2, 0x80, 0x00, 0x00, 0x00),
    S_VALUE("int64", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
    S_VALUE("float32", 0xca, 0x3f, 0x80, 0x00, 0x00),
    S_VALUE("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0),
    S_VALUE("fixstr", 0xa3, 'a', 'b', 'c'),
    S_VALUE("empty fixstr", 0xa0),
    S_VALUE("str8", 0xd9, 0x02, 'h', 'i'),
    S_VALUE("str16", 0xda, 0x00, 0x02, 'h', 'i'),
    S_VALUE("str32", 0xdb, 0x00, 0x00, 0x00, 0x02, 'h', 'i'),
    S_VALUE("bin8", 0xc4, 0x02, 0x00, 0xff),
    S_VALUE("bin16", 0xc5, 0x00, 0x01, 0x00),
    S_VALUE("bin32", 0xc6, 0x00, 0x00, 0x00, 0x01, 0xc1),
    S_VALUE("fixarray", 0x92, 0x01, 0xc0),
    S_VALUE("empty fixarray", 0x90),
    S_VALUE("array16", 0xdc, 0x00, 0x02, 0xc2, 0xc3),
    S_VALUE("array32", 0xdd, 0x00, 0x00, 0x00, 0x01, 0xa1, 'x'),
    S_VALUE("fixmap", 0x81, 0xa1, 'v', 0x02),
    S_VALUE("empty fixmap", 0x80),
    S_VALUE("map16", 0xde, 0x00, 0x01, 0x01, 0x92, 0xc0, 0xc0),
    S_VALUE("map32", 0xdf, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x80),
    S_VALUE("fixext1", 0xd4, 0x05, 0xaa),
    S_VALUE("fixext2", 0xd5, 0x05, 0xaa, 0xbb),
    S_VALUE("fixext4 timestamp", 0xd6, 0xff, 0x00, 0x00, 0x00, 0x01),
    S_VALUE("fixext8", 0xd7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8),
    S_VALUE("fixext16", 0xd8, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    S_VALUE("ext8", 0xc7, 0x02, 0x05, 0xaa, 0xbb),
    S_VALUE("empty ext8", 0xc7, 0x00, 0x05),
    S_VALUE("ext16", 0xc8, 0x00, 0x01, 0x05, 0xaa),
    S_VALUE("ext32", 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0xaa),
    S_VALUE("nested", 0x82, 0xa1, 'a', 0x91, 0x81, 0xa1, 'b', 0xc4, 0x01, 0x00, 0xa1, 'p', 0x92,
            0xd4, 0x01, 0x02, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
};
#define S_EVERY_TYPE_COUNT (sizeof(s_every_type) / sizeof(s_every_type[0]))

/* Values that are not a uint, for the uint keys. */
static const s_value_t s_not_uint[] = {
    S_VALUE("nil", 0xc0),
    S_VALUE("true", 0xc3),
    S_VALUE("fixstr", 0xa1, '1'),
    S_VALUE("bin8", 0xc4, 0x01, 0x01),
    S_VALUE("float32", 0xca, 0x3f, 0x80, 0x00, 0x00),
    S_VALUE("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0),
    S_VALUE("fixarray", 0x91, 0x01),
    S_VALUE("fixmap", 0x81, 0x01, 0x01),
    S_VALUE("fixext1", 0xd4, 0x01, 0x01),
    S_VALUE("negative fixint", 0xff),
    S_VALUE("negative fixint -32", 0xe0),
    S_VALUE("int8 -1", 0xd0, 0xff),
    S_VALUE("int8 +5", 0xd0, 0x05),
    S_VALUE("int16 -1", 0xd1, 0xff, 0xff),
    S_VALUE("int32 -1", 0xd2, 0xff, 0xff, 0xff, 0xff),
    S_VALUE("int64 -1", 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
};

/* Values that are not a str, for the string keys. */
static const s_value_t s_not_str[] = {
    S_VALUE("nil", 0xc0),
    S_VALUE("false", 0xc2),
    S_VALUE("uint", 0x01),
    S_VALUE("int8", 0xd0, 0xff),
    S_VALUE("bin8", 0xc4, 0x02, 'g', 'w'),
    S_VALUE("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0),
    S_VALUE("fixarray", 0x91, 0xa1, 'x'),
    S_VALUE("fixmap", 0x80),
    S_VALUE("ext8", 0xc7, 0x01, 0x01, 'x'),
};

/* Values that are neither bin nor str, for the payload. */
static const s_value_t s_not_bin[] = {
    S_VALUE("nil", 0xc0),
    S_VALUE("true", 0xc3),
    S_VALUE("uint", 0x05),
    S_VALUE("negative fixint", 0xff),
    S_VALUE("float32", 0xca, 0, 0, 0, 0),
    S_VALUE("fixarray", 0x91, 0x01),
    S_VALUE("fixmap", 0x80),
    S_VALUE("fixext2", 0xd5, 0x01, 'a', 'b'),
    S_VALUE("ext8", 0xc7, 0x01, 0x01, 'x'),
};

#define S_COUNT(table) (sizeof(table) / sizeof((table)[0]))

static const char s_uint_keys[] = "vkcrtaxfo";
static const char s_str_keys[] = "gwsl";

/* ---------------------------------------------------------------------
   Round trips and the helpers
*/

START_TEST(test_init)
{
    tolk_envelope_t env;
    memset(&env, 0xa5, sizeof env);
    tolk_envelope_init(&env, TOLK_KIND_AUDIO);
    ck_assert_uint_eq(env.version, TOLK_ENVELOPE_VERSION);
    ck_assert_uint_eq(env.kind, TOLK_KIND_AUDIO);
    ck_assert_str_eq(env.gateway, "");
    ck_assert_str_eq(env.lang, "");
    ck_assert_uint_eq(env.conn, 0);
    ck_assert_ptr_null(env.payload);
    ck_assert_uint_eq(env.payload_len, 0);
}
END_TEST

START_TEST(test_minimal_wire)
{
    //  v and k always, everything else omitted: pins the wire format
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_HEARTBEAT);
    size_t len;
    uint8_t *wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    const uint8_t expect[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 'k', 0x0b};
    ck_assert_uint_eq(len, sizeof expect);
    ck_assert_mem_eq(wire, expect, sizeof expect);
    free(wire);

    //  v is written even when zero, so the decoder says why it refuses
    env.version = 0;
    wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_uint_eq(len, sizeof expect);
    tolk_envelope_t back;
    ck_assert_int_eq(s_decode_bytes(&back, wire, len), TOLK_ENV_EVERSION);
    free(wire);
}
END_TEST

START_TEST(test_full_wire)
{
    //  Keys in table order, payload as bin
    uint8_t payload[] = {'{', '}'};
    tolk_envelope_t env;
    s_full(&env, payload, sizeof payload);
    size_t len;
    uint8_t *wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_uint_eq(wire[0], 0x8e);
    ck_assert_mem_eq(wire + 1, "\xa1v\x01\xa1k\x16\xa1g\xa4gw-1", 10);
    ck_assert_mem_eq(wire + len - 6, "\xa1p\xc4\x02{}", 6);
    free(wire);
}
END_TEST

START_TEST(test_roundtrip_all_fields)
{
    uint8_t payload[300];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    tolk_envelope_t env;
    s_full(&env, payload, sizeof payload);
    s_roundtrip(&env);

    //  Each field alone, so none depends on another being present
    for (int field = 0; field < 13; field++) {
        tolk_envelope_init(&env, TOLK_KIND_SEND);
        switch (field) {
            case 0:
                strcpy(env.gateway, "g");
                break;
            case 1:
                strcpy(env.worker, "w");
                break;
            case 2:
                env.conn = 1;
                break;
            case 3:
                strcpy(env.session, "s");
                break;
            case 4:
                env.role = TOLK_ROLE_SPEAKER;
                break;
            case 5:
                strcpy(env.lang, "l");
                break;
            case 6:
                env.sent_ns = 1;
                break;
            case 7:
                env.audience = TOLK_AUDIENCE_SPEAKER;
                break;
            case 8:
                env.close_code = 1000;
                break;
            case 9:
                env.flags = TOLK_FLAG_CLEAN;
                break;
            case 10:
                env.age_ms = 1;
                break;
            case 11:
                env.payload = payload;
                env.payload_len = 1;
                break;
            default:
                env.kind = UINT32_MAX;
                break;
        }
        //  map header + v + k + one field of 3..5 bytes (kind alone: none)
        size_t len = s_roundtrip(&env);
        ck_assert_uint_le(len, 7 + 2 + 3);
    }
}
END_TEST

START_TEST(test_roundtrip_max)
{
    static uint8_t payload[TOLK_PAYLOAD_MAX];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ (i >> 8));
    tolk_envelope_t env;
    tolk_envelope_init(&env, UINT32_MAX);
    memset(env.gateway, 'g', TOLK_ID_MAX);
    memset(env.worker, 'w', TOLK_ID_MAX);
    memset(env.session, 's', TOLK_ID_MAX);
    memset(env.lang, 'l', TOLK_LANG_MAX);
    env.conn = UINT64_MAX;
    env.role = UINT32_MAX;
    env.sent_ns = UINT64_MAX;
    env.audience = UINT32_MAX;
    env.close_code = UINT32_MAX;
    env.flags = UINT32_MAX;
    env.age_ms = UINT64_MAX;
    env.payload = payload;
    env.payload_len = sizeof payload;
    size_t len = s_roundtrip(&env);
    ck_assert_uint_le(len, TOLK_ENVELOPE_MAX);
    ck_assert_uint_ge(len, TOLK_PAYLOAD_MAX + 3 * TOLK_ID_MAX + TOLK_LANG_MAX);

    //  The decoded payload points into the input: zero copy
    tolk_envelope_t back;
    uint8_t *wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_int_eq(tolk_envelope_decode(&back, wire, len), TOLK_ENV_OK);
    ck_assert(back.payload > wire && back.payload + back.payload_len == wire + len);
    free(wire);
}
END_TEST

START_TEST(test_roundtrip_empty_payload)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_MESSAGE);
    s_roundtrip(&env);

    //  A non-NULL pointer with length 0 is still "no payload": omitted
    uint8_t byte = 'x';
    env.payload = &byte;
    env.payload_len = 0;
    size_t len;
    uint8_t *wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_uint_eq(len, 7);
    tolk_envelope_t back;
    ck_assert_int_eq(s_decode_bytes(&back, wire, len), TOLK_ENV_OK);
    ck_assert_ptr_null(back.payload);
    ck_assert_uint_eq(back.payload_len, 0);
    free(wire);

    //  An empty bin on the wire decodes the same way
    s_reset();
    s_head(3, TOLK_KIND_MESSAGE);
    s_key('p');
    s_byte(0xc4);
    s_byte(0x00);
    ck_assert_int_eq(s_decode(&back), TOLK_ENV_OK);
    ck_assert_ptr_null(back.payload);
    ck_assert_uint_eq(back.payload_len, 0);
}
END_TEST

START_TEST(test_roundtrip_number_widths)
{
    //  Every msgpack uint width, at and around its boundaries
    const uint64_t values[] = {1,     127,        128,        255,        256,           65535,
                               65536, UINT32_MAX, 1ull << 32, UINT64_MAX, UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        tolk_envelope_t env;
        tolk_envelope_init(&env, TOLK_KIND_BIND);
        env.conn = values[i];
        env.sent_ns = values[i];
        env.age_ms = values[i];
        if (values[i] <= UINT32_MAX) {
            env.kind = (uint32_t)values[i];
            env.role = env.audience = env.close_code = env.flags = (uint32_t)values[i];
        }
        s_roundtrip(&env);
    }
}
END_TEST

START_TEST(test_payload_forms)
{
    //  The payload may arrive as a str (from a JSON-minded sender), and may
    //  hold NUL bytes either way: it is bytes, not a C string
    const uint8_t forms[][4] = {{0xa2},          {0xd9, 0x02}, {0xda, 0x00, 0x02},
                                {0xdb, 0, 0, 0}, {0xc4, 0x02}, {0xc5, 0x00, 0x02},
                                {0xc6, 0, 0, 0}};
    const size_t form_len[] = {1, 2, 3, 4, 2, 3, 4};
    for (size_t i = 0; i < sizeof form_len / sizeof form_len[0]; i++) {
        s_reset();
        s_head(3, TOLK_KIND_AUDIO);
        s_key('p');
        s_put(forms[i], form_len[i]);
        if (forms[i][0] == 0xdb || forms[i][0] == 0xc6)
            s_byte(0x02);
        s_byte(0x00);
        s_byte(0xff);
        tolk_envelope_t env;
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
        ck_assert_uint_eq(env.payload_len, 2);
        ck_assert_mem_eq(env.payload, "\x00\xff", 2);
    }
}
END_TEST

START_TEST(test_string_forms)
{
    //  A string field in every str width, and empty
    s_reset();
    s_byte(0x87);
    s_key('v');
    s_byte(0x01);
    s_key('k');
    s_byte(TOLK_KIND_BIND);
    s_key('g');
    s_put("\xd9\x02gw", 4);
    s_key('w');
    s_put("\xda\x00\x02wk", 5);
    s_key('s');
    s_put("\xdb\x00\x00\x00\x02ss", 7);
    s_key('l');
    s_byte(0xa0);
    s_key('c');
    s_put("\xcd\x01\x00", 3);
    tolk_envelope_t env;
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    ck_assert_str_eq(env.gateway, "gw");
    ck_assert_str_eq(env.worker, "wk");
    ck_assert_str_eq(env.session, "ss");
    ck_assert_str_eq(env.lang, "");
    ck_assert_uint_eq(env.conn, 256);
}
END_TEST

START_TEST(test_duplicate_last_wins)
{
    s_reset();
    s_head(6, TOLK_KIND_SEND);
    s_key('g');
    s_fixstr("long-gateway");
    s_key('g');
    s_fixstr("gw");
    s_key('c');
    s_byte(5);
    s_key('c');
    s_byte(9);
    tolk_envelope_t env;
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    ck_assert_str_eq(env.gateway, "gw");
    ck_assert_uint_eq(env.conn, 9);

    //  Also v: a later v=1 repairs an earlier v=2
    s_reset();
    s_byte(0x83);
    s_key('v');
    s_byte(2);
    s_key('k');
    s_byte(TOLK_KIND_SEND);
    s_key('v');
    s_byte(1);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
}
END_TEST

START_TEST(test_set_str)
{
    char field[TOLK_ID_MAX + 1];
    char longest[TOLK_ID_MAX + 2];
    memset(longest, 'x', sizeof longest);
    longest[TOLK_ID_MAX] = '\0';
    ck_assert_int_eq(tolk_envelope_set_str(field, sizeof field, longest), 0);
    ck_assert_str_eq(field, longest);
    longest[TOLK_ID_MAX] = 'x';
    longest[TOLK_ID_MAX + 1] = '\0';
    ck_assert_int_eq(tolk_envelope_set_str(field, sizeof field, longest), -1);
    ck_assert_int_eq(tolk_envelope_set_str(field, sizeof field, ""), 0);
    ck_assert_str_eq(field, "");
    ck_assert_int_eq(tolk_envelope_set_str(field, sizeof field, NULL), 0);
    ck_assert_str_eq(field, "");
    ck_assert_int_eq(tolk_envelope_set_str(field, 0, "a"), -1);
    ck_assert_int_eq(tolk_envelope_set_str(NULL, 4, "a"), -1);

    char lang[TOLK_LANG_MAX + 1];
    ck_assert_int_eq(tolk_envelope_set_str(lang, sizeof lang, "pt-BR"), 0);
    ck_assert_str_eq(lang, "pt-BR");
    ck_assert_int_eq(tolk_envelope_set_str(lang, sizeof lang, "123456789"), -1);
}
END_TEST

START_TEST(test_strerror)
{
    const int codes[] = {TOLK_ENV_OK,      TOLK_ENV_ETRUNCATED, TOLK_ENV_ENOTMAP,
                         TOLK_ENV_ECOUNT,  TOLK_ENV_ETYPE,      TOLK_ENV_ETOOLONG,
                         TOLK_ENV_EDEPTH,  TOLK_ENV_EVERSION,   TOLK_ENV_ETRAILING,
                         TOLK_ENV_EINVALID};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = tolk_envelope_strerror(-1000);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(tolk_envelope_strerror(1), unknown);
    for (size_t i = 0; i < n; i++) {
        const char *name = tolk_envelope_strerror(codes[i]);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_ne(name, unknown);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(name, tolk_envelope_strerror(codes[j]));
    }
}
END_TEST

START_TEST(test_clocks)
{
    uint64_t a = tolk_now_ns();
    uint64_t b = tolk_now_ns();
    ck_assert_uint_ge(b, a);
    ck_assert_uint_gt(a, 0);

    int64_t ms = tolk_now_ms();
    int64_t wall = (int64_t)time(NULL) * 1000;
    ck_assert_int_ge(ms, wall - 2000);
    ck_assert_int_le(ms, wall + 2000);
}
END_TEST

/* ---------------------------------------------------------------------
   The encoder refusing what the decoder would refuse
*/

START_TEST(test_encode_refuses_over_cap)
{
    static uint8_t payload[TOLK_PAYLOAD_MAX + 1];
    tolk_envelope_t env;
    size_t len = 99;

    //  Each id filled to the brim, with no room left for the NUL
    for (int field = 0; field < 4; field++) {
        tolk_envelope_init(&env, TOLK_KIND_BIND);
        char *target = field == 0   ? env.gateway
                       : field == 1 ? env.worker
                       : field == 2 ? env.session
                                    : env.lang;
        size_t cap = field == 3 ? TOLK_LANG_MAX : TOLK_ID_MAX;
        memset(target, 'a', cap);
        uint8_t *wire = tolk_envelope_encode(&env, &len);
        ck_assert_ptr_nonnull(wire);
        free(wire);
        memset(target, 'a', cap + 1);
        len = 99;
        ck_assert_ptr_null(tolk_envelope_encode(&env, &len));
        ck_assert_uint_eq(len, 0);
    }

    tolk_envelope_init(&env, TOLK_KIND_SEND);
    env.payload = payload;
    env.payload_len = TOLK_PAYLOAD_MAX + 1;
    ck_assert_ptr_null(tolk_envelope_encode(&env, &len));
    env.payload = NULL;
    env.payload_len = 1;
    ck_assert_ptr_null(tolk_envelope_encode(&env, &len));
    ck_assert_ptr_null(tolk_envelope_encode(NULL, &len));
    ck_assert_ptr_null(tolk_envelope_encode(&env, NULL));
}
END_TEST

/* ---------------------------------------------------------------------
   Truncation: no prefix of a valid envelope decodes
*/

/* Decode every proper prefix of data from an exact-size block, checking
   none succeeds and each fails as truncated or over-count. */
static void s_check_prefixes(const uint8_t *data, size_t len)
{
    tolk_envelope_t env;
    ck_assert_int_eq(s_decode_bytes(&env, data, len), TOLK_ENV_OK);
    for (size_t cut = 0; cut < len; cut++) {
        int rc = s_decode_bytes(&env, data, cut);
        ck_assert_msg(rc == TOLK_ENV_ETRUNCATED || rc == TOLK_ENV_ECOUNT,
                      "prefix %zu of %zu: %d (%s)", cut, len, rc, tolk_envelope_strerror(rc));
    }
}

START_TEST(test_every_prefix_encoded)
{
    uint8_t payload[300];
    memset(payload, 0x5a, sizeof payload);
    tolk_envelope_t env;
    s_full(&env, payload, sizeof payload);
    size_t len;
    uint8_t *wire = tolk_envelope_encode(&env, &len);
    ck_assert_ptr_nonnull(wire);
    s_check_prefixes(wire, len);
    free(wire);
}
END_TEST

START_TEST(test_every_prefix_unknowns)
{
    //  Unknown values of every type among known keys, so every header form
    //  is cut somewhere; in batches, as a map holds at most 32 entries
    for (size_t first = 0; first < S_EVERY_TYPE_COUNT; first += 28) {
        size_t n = S_EVERY_TYPE_COUNT - first < 28 ? S_EVERY_TYPE_COUNT - first : 28;
        s_reset();
        s_byte(0xde);
        s_be(n + 4, 2);
        s_key('v');
        s_byte(1);
        s_key('k');
        s_byte(TOLK_KIND_READY);
        for (size_t i = first; i < first + n; i++) {
            s_fixstr("zz");
            s_put(s_every_type[i].bytes, s_every_type[i].len);
        }
        s_key('g');
        s_fixstr("gw");
        s_key('p');
        s_put("\xc5\x00\x03"
              "abc",
              6);
        //  s_check_prefixes decodes from copies, so s_buf may stay as is
        s_check_prefixes(s_buf, s_len);
    }
}
END_TEST

START_TEST(test_truncated_headers)
{
    tolk_envelope_t env;
    ck_assert_int_eq(tolk_envelope_decode(&env, NULL, 0), TOLK_ENV_ETRUNCATED);
    ck_assert_int_eq(tolk_envelope_decode(&env, (const uint8_t *)"", 0), TOLK_ENV_ETRUNCATED);
    ck_assert_int_eq(tolk_envelope_decode(&env, NULL, 5), TOLK_ENV_EINVALID);
    ck_assert_int_eq(tolk_envelope_decode(NULL, (const uint8_t *)"\x80", 1), TOLK_ENV_EINVALID);

    //  uint64 kind missing its last bytes
    s_reset();
    s_byte(0x82);
    s_key('v');
    s_byte(1);
    s_key('k');
    s_put("\xcf\x00\x00\x00", 4);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETRUNCATED);

    //  map16 header cut in its count
    s_reset();
    s_put("\xde\x00", 2);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETRUNCATED);

    //  str length that runs past the end
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_key('g');
    s_put("\xa5gw", 3);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);
}
END_TEST

/* ---------------------------------------------------------------------
   Hostile sizes and nesting
*/

START_TEST(test_hostile_top_map)
{
    tolk_envelope_t env;
    s_reset();
    s_put("\xdf\xff\xff\xff\xff", 5);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);
    s_reset();
    s_put("\xde\xff\xff", 3);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);
    s_reset();
    s_byte(0x8f);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);

    //  32 entries is the cap; 33 is refused even with all the bytes there
    for (unsigned entries = 32; entries <= 34; entries++) {
        s_reset();
        s_byte(0xde);
        s_be(entries, 2);
        s_key('v');
        s_byte(1);
        s_key('k');
        s_byte(TOLK_KIND_HEARTBEAT);
        for (unsigned i = 2; i < entries; i++) {
            char key[8];
            snprintf(key, sizeof key, "u%u", i);
            s_fixstr(key);
            s_byte(0xc0);
        }
        ck_assert_int_eq(s_decode(&env), entries == 32 ? TOLK_ENV_OK : TOLK_ENV_ECOUNT);
    }
}
END_TEST

START_TEST(test_hostile_lengths)
{
    //  4 GB declared inside an unknown key's value, and in known keys
    const s_value_t hostile[] = {
        S_VALUE("array32", 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00),
        S_VALUE("map32", 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00),
        S_VALUE("bin32", 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00),
        S_VALUE("str32", 0xdb, 0xff, 0xff, 0xff, 0xff, 0x00),
        S_VALUE("ext32", 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00),
        S_VALUE("array16", 0xdc, 0xff, 0xff, 0x00),
        S_VALUE("map16", 0xde, 0xff, 0xff, 0x00),
        S_VALUE("ext8", 0xc7, 0xff, 0x01, 0x00),
        S_VALUE("fixext16", 0xd8, 0x01, 0x00),
        S_VALUE("fixarray", 0x9f, 0x00),
        S_VALUE("nested array32", 0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x00),
    };
    tolk_envelope_t env;
    for (size_t i = 0; i < S_COUNT(hostile); i++) {
        s_reset();
        s_head(3, TOLK_KIND_SEND);
        s_fixstr("zz");
        s_put(hostile[i].bytes, hostile[i].len);
        int rc = s_decode(&env);
        ck_assert_msg(rc == TOLK_ENV_ECOUNT, "%s: %s", hostile[i].name, tolk_envelope_strerror(rc));
    }

    const char *known[] = {"g\xdb", "w\xdb", "s\xdb", "l\xdb", "p\xc6", "p\xdb"};
    for (size_t i = 0; i < S_COUNT(known); i++) {
        s_reset();
        s_head(3, TOLK_KIND_SEND);
        s_key(known[i][0]);
        s_byte((uint8_t)known[i][1]);
        s_put("\xff\xff\xff\xff\x00\x00", 6);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);
    }

    //  A key with a hostile length
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_put("\xdb\xff\xff\xff\xff\x00\x00", 7);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ECOUNT);
}
END_TEST

/* Build {v, k, "zz": <depth nested containers around nil>} with arrays or
   single-entry maps. */
static void s_nested(int depth, bool maps)
{
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_fixstr("zz");
    for (int i = 0; i < depth; i++) {
        if (maps) {
            s_byte(0x81);
            s_fixstr("n");
        } else {
            s_byte(0x91);
        }
    }
    s_byte(0xc0);
}

START_TEST(test_depth)
{
    tolk_envelope_t env;
    for (int maps = 0; maps < 2; maps++) {
        s_nested(TOLK_SKIP_DEPTH_MAX, maps);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
        s_nested(TOLK_SKIP_DEPTH_MAX + 1, maps);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_EDEPTH);
        s_nested(100, maps);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_EDEPTH);
    }

    //  Deep nesting far wider than the stack could take if unbounded
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_fixstr("zz");
    for (int i = 0; i < 100000; i++)
        s_byte(0x91);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EDEPTH);

    //  Empty containers count too
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_fixstr("zz");
    for (int i = 0; i < TOLK_SKIP_DEPTH_MAX; i++)
        s_byte(0x91);
    s_byte(0x90);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EDEPTH);
}
END_TEST

START_TEST(test_reserved_byte)
{
    tolk_envelope_t env;
    //  0xc1 inside an unknown value, as a known value, and as a key
    const s_value_t bad[] = {
        S_VALUE("unknown value", 0xa2, 'z', 'z', 0xc1),
        S_VALUE("inside array", 0xa2, 'z', 'z', 0x92, 0x01, 0xc1),
        S_VALUE("known value", 0xa1, 'c', 0xc1),
        S_VALUE("key", 0xc1, 0x01),
    };
    for (size_t i = 0; i < S_COUNT(bad); i++) {
        s_reset();
        s_head(3, TOLK_KIND_SEND);
        s_put(bad[i].bytes, bad[i].len);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_EINVALID);
    }
    //  But inside a bin it is only data
    s_reset();
    s_head(3, TOLK_KIND_SEND);
    s_put("\xa1p\xc4\x01\xc1", 5);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
}
END_TEST

/* ---------------------------------------------------------------------
   Types of known keys
*/

/* {v:1, k:10, key: value} with v or k itself replaced when key is one of
   them. */
static void s_with_value(char key, const uint8_t *value, size_t len)
{
    s_reset();
    if (key == 'v' || key == 'k') {
        s_byte(0x82);
        s_key('v');
        if (key == 'v')
            s_put(value, len);
        else
            s_byte(1);
        s_key('k');
        if (key == 'k')
            s_put(value, len);
        else
            s_byte(TOLK_KIND_READY);
    } else {
        s_head(3, TOLK_KIND_READY);
        s_key(key);
        s_put(value, len);
    }
}

START_TEST(test_wrong_types)
{
    tolk_envelope_t env;
    for (const char *k = s_uint_keys; *k; k++)
        for (size_t i = 0; i < S_COUNT(s_not_uint); i++) {
            s_with_value(*k, s_not_uint[i].bytes, s_not_uint[i].len);
            int rc = s_decode(&env);
            ck_assert_msg(rc == TOLK_ENV_ETYPE, "key %c, %s: %s", *k, s_not_uint[i].name,
                          tolk_envelope_strerror(rc));
        }
    for (const char *k = s_str_keys; *k; k++)
        for (size_t i = 0; i < S_COUNT(s_not_str); i++) {
            s_with_value(*k, s_not_str[i].bytes, s_not_str[i].len);
            int rc = s_decode(&env);
            ck_assert_msg(rc == TOLK_ENV_ETYPE, "key %c, %s: %s", *k, s_not_str[i].name,
                          tolk_envelope_strerror(rc));
        }
    for (size_t i = 0; i < S_COUNT(s_not_bin); i++) {
        s_with_value('p', s_not_bin[i].bytes, s_not_bin[i].len);
        int rc = s_decode(&env);
        ck_assert_msg(rc == TOLK_ENV_ETYPE, "key p, %s: %s", s_not_bin[i].name,
                      tolk_envelope_strerror(rc));
    }
}
END_TEST

START_TEST(test_uint_ranges)
{
    //  32-bit fields refuse a number they cannot hold; 64-bit ones take all
    tolk_envelope_t env;
    const uint8_t big[] = {0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
    const uint8_t u32max[] = {0xce, 0xff, 0xff, 0xff, 0xff};
    const uint8_t u64max[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (const char *k = "krafx"; *k; k++) {
        s_with_value(*k, big, sizeof big);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETYPE);
        s_with_value(*k, u32max, sizeof u32max);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    }
    ck_assert_uint_eq(env.close_code, UINT32_MAX);
    for (const char *k = "cto"; *k; k++) {
        s_with_value(*k, u64max, sizeof u64max);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    }
    ck_assert_uint_eq(env.age_ms, UINT64_MAX);

    //  A uint8 / uint16 / uint32 spelling of a small number is fine
    const uint8_t wide_one[] = {0xce, 0x00, 0x00, 0x00, 0x01};
    s_with_value('v', wide_one, sizeof wide_one);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    const uint8_t wide_kind[] = {0xcd, 0x00, TOLK_KIND_AUDIO};
    s_with_value('k', wide_kind, sizeof wide_kind);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    ck_assert_uint_eq(env.kind, TOLK_KIND_AUDIO);
}
END_TEST

START_TEST(test_key_not_string)
{
    tolk_envelope_t env;
    const s_value_t keys[] = {
        S_VALUE("fixint", 0x01, 0x01),
        S_VALUE("bin", 0xc4, 0x01, 'g', 0xa1, 'x'),
        S_VALUE("nil", 0xc0, 0xc0),
        S_VALUE("array", 0x91, 0x01, 0x01),
    };
    for (size_t i = 0; i < S_COUNT(keys); i++) {
        s_reset();
        s_head(3, TOLK_KIND_SEND);
        s_put(keys[i].bytes, keys[i].len);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETYPE);
    }
}
END_TEST

START_TEST(test_nul_in_string)
{
    tolk_envelope_t env;
    const uint8_t values[][5] = {{0xa3, 'a', 0, 'b'}, {0xa1, 0}, {0xd9, 0x02, 'x', 0}};
    const size_t lens[] = {4, 2, 4};
    for (const char *k = s_str_keys; *k; k++)
        for (size_t i = 0; i < S_COUNT(lens); i++) {
            s_with_value(*k, values[i], lens[i]);
            ck_assert_int_eq(s_decode(&env), TOLK_ENV_EINVALID);
        }
    //  NUL inside an unknown key's string, or a multi-letter key, is skipped
    s_reset();
    s_head(4, TOLK_KIND_SEND);
    s_put("\xa2zz\xa2\x00\x00", 6);
    s_put("\xa2g\x00\x01", 4);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
}
END_TEST

START_TEST(test_too_long)
{
    static uint8_t big[TOLK_PAYLOAD_MAX + 8];
    tolk_envelope_t env;
    for (const char *k = s_str_keys; *k; k++) {
        size_t cap = *k == 'l' ? TOLK_LANG_MAX : TOLK_ID_MAX;
        for (size_t len = cap; len <= cap + 1; len++) {
            s_reset();
            s_head(3, TOLK_KIND_BIND);
            s_key(*k);
            s_byte(0xd9);
            s_byte((uint8_t)len);
            memset(big, 'q', len);
            s_put(big, len);
            int rc = s_decode(&env);
            ck_assert_int_eq(rc, len == cap ? TOLK_ENV_OK : TOLK_ENV_ETOOLONG);
            if (rc == TOLK_ENV_OK && *k == 'l')
                ck_assert_uint_eq(strlen(env.lang), TOLK_LANG_MAX);
            if (rc == TOLK_ENV_OK && *k == 'g')
                ck_assert_uint_eq(strlen(env.gateway), TOLK_ID_MAX);
        }
    }

    //  The payload at its cap and one byte over, as bin32 and as str32
    const uint8_t heads[] = {0xc6, 0xdb};
    for (size_t h = 0; h < sizeof heads; h++)
        for (size_t len = TOLK_PAYLOAD_MAX; len <= TOLK_PAYLOAD_MAX + 1; len++) {
            s_reset();
            s_head(3, TOLK_KIND_AUDIO);
            s_key('p');
            s_byte(heads[h]);
            s_be(len, 4);
            s_put(big, len);
            int rc = s_decode(&env);
            ck_assert_int_eq(rc, len == TOLK_PAYLOAD_MAX ? TOLK_ENV_OK : TOLK_ENV_ETOOLONG);
        }
}
END_TEST

/* ---------------------------------------------------------------------
   Structure: map, version, kind, trailing bytes, unknown keys
*/

START_TEST(test_not_a_map)
{
    const s_value_t tops[] = {
        S_VALUE("fixarray", 0x92, 0xa1, 'v', 0x01),
        S_VALUE("array16", 0xdc, 0x00, 0x00),
        S_VALUE("array32", 0xdd, 0xff, 0xff, 0xff, 0xff),
        S_VALUE("fixint", 0x01),
        S_VALUE("negative fixint", 0xff),
        S_VALUE("fixstr", 0xa1, 'v'),
        S_VALUE("str32", 0xdb, 0xff, 0xff, 0xff, 0xff),
        S_VALUE("bin8", 0xc4, 0x01, 0x80),
        S_VALUE("nil", 0xc0),
        S_VALUE("true", 0xc3),
        S_VALUE("reserved", 0xc1),
        S_VALUE("float64", 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
        S_VALUE("fixext1", 0xd4, 0x01, 0x80),
    };
    tolk_envelope_t env;
    for (size_t i = 0; i < S_COUNT(tops); i++) {
        int rc = s_decode_bytes(&env, tops[i].bytes, tops[i].len);
        ck_assert_msg(rc == TOLK_ENV_ENOTMAP, "%s: %s", tops[i].name, tolk_envelope_strerror(rc));
    }
}
END_TEST

START_TEST(test_trailing)
{
    tolk_envelope_t env;
    s_reset();
    s_head(2, TOLK_KIND_HEARTBEAT);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    s_byte(0x00);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETRAILING);

    //  Two envelopes back to back are one too many
    s_reset();
    s_head(2, TOLK_KIND_HEARTBEAT);
    s_head(2, TOLK_KIND_HEARTBEAT);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETRAILING);

    //  A map that declares fewer entries than it carries
    s_reset();
    s_head(2, TOLK_KIND_HEARTBEAT);
    s_key('c');
    s_byte(0x05);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETRAILING);
}
END_TEST

START_TEST(test_version)
{
    tolk_envelope_t env;
    //  Missing
    s_reset();
    s_byte(0x81);
    s_key('k');
    s_byte(TOLK_KIND_SEND);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EVERSION);
    s_reset();
    s_byte(0x80);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EVERSION);

    //  Present but not 1
    const s_value_t versions[] = {
        S_VALUE("0", 0x00),
        S_VALUE("2", 0x02),
        S_VALUE("uint8 255", 0xcc, 0xff),
        S_VALUE("2^32 + 1", 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01),
    };
    for (size_t i = 0; i < S_COUNT(versions); i++) {
        s_with_value('v', versions[i].bytes, versions[i].len);
        ck_assert_int_eq(s_decode(&env), TOLK_ENV_EVERSION);
    }

    //  A version 1 message that is otherwise fine, to show the helper works
    const uint8_t one = 0x01;
    s_with_value('v', &one, 1);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    ck_assert_uint_eq(env.version, 1);
}
END_TEST

START_TEST(test_kind)
{
    tolk_envelope_t env;
    s_reset();
    s_byte(0x81);
    s_key('v');
    s_byte(1);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EINVALID);
    const uint8_t zero = 0x00;
    s_with_value('k', &zero, 1);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_EINVALID);
}
END_TEST

START_TEST(test_unknown_every_type)
{
    tolk_envelope_t env;
    //  Each type alone, between known keys, so a skip that consumed too
    //  much or too little would misread the key after it
    for (size_t i = 0; i < S_EVERY_TYPE_COUNT; i++) {
        s_reset();
        s_head(5, TOLK_KIND_SEND);
        s_key('g');
        s_fixstr("before");
        s_fixstr("zz");
        s_put(s_every_type[i].bytes, s_every_type[i].len);
        s_key('w');
        s_fixstr("after");
        int rc = s_decode(&env);
        ck_assert_msg(rc == TOLK_ENV_OK, "%s: %s", s_every_type[i].name,
                      tolk_envelope_strerror(rc));
        ck_assert_str_eq(env.gateway, "before");
        ck_assert_str_eq(env.worker, "after");
    }

    //  All at once, under keys that only look like known ones
    const char *keys[] = {"vv", "", "V", "kk", "p ", "pp", "gateway"};
    s_reset();
    s_byte(0xde);
    s_be(3 + 29, 2);
    s_key('v');
    s_byte(1);
    s_key('k');
    s_byte(TOLK_KIND_PUBLISH);
    for (size_t i = 0; i < 29; i++) {
        s_fixstr(keys[i % S_COUNT(keys)]);
        const s_value_t *v = &s_every_type[i % S_EVERY_TYPE_COUNT];
        s_put(v->bytes, v->len);
    }
    s_key('c');
    s_put("\xcd\x12\x34", 3);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_OK);
    ck_assert_uint_eq(env.kind, TOLK_KIND_PUBLISH);
    ck_assert_uint_eq(env.conn, 0x1234);
    ck_assert_str_eq(env.gateway, "");
    ck_assert_ptr_null(env.payload);
}
END_TEST

START_TEST(test_failure_wipes)
{
    //  After a failure nothing half-decoded is left behind
    tolk_envelope_t env;
    s_reset();
    s_head(4, TOLK_KIND_SEND);
    s_key('g');
    s_fixstr("gw");
    s_key('c');
    s_byte(0xc0);
    ck_assert_int_eq(s_decode(&env), TOLK_ENV_ETYPE);
    ck_assert_str_eq(env.gateway, "");
    ck_assert_uint_eq(env.kind, 0);
    ck_assert_uint_eq(env.version, 0);
}
END_TEST

/* Every test, grouped by what it exercises. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("envelope");

    TCase *tc = tcase_create("roundtrip");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_minimal_wire);
    tcase_add_test(tc, test_full_wire);
    tcase_add_test(tc, test_roundtrip_all_fields);
    tcase_add_test(tc, test_roundtrip_max);
    tcase_add_test(tc, test_roundtrip_empty_payload);
    tcase_add_test(tc, test_roundtrip_number_widths);
    tcase_add_test(tc, test_payload_forms);
    tcase_add_test(tc, test_string_forms);
    tcase_add_test(tc, test_duplicate_last_wins);
    tcase_add_test(tc, test_set_str);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_clocks);
    tcase_add_test(tc, test_encode_refuses_over_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_every_prefix_encoded);
    tcase_add_test(tc, test_every_prefix_unknowns);
    tcase_add_test(tc, test_truncated_headers);
    tcase_add_test(tc, test_hostile_top_map);
    tcase_add_test(tc, test_hostile_lengths);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_reserved_byte);
    suite_add_tcase(s, tc);

    tc = tcase_create("types");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_uint_ranges);
    tcase_add_test(tc, test_key_not_string);
    tcase_add_test(tc, test_nul_in_string);
    tcase_add_test(tc, test_too_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("structure");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_not_a_map);
    tcase_add_test(tc, test_trailing);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_kind);
    tcase_add_test(tc, test_unknown_every_type);
    tcase_add_test(tc, test_failure_wipes);
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
