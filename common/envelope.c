/*  envelope.c -- the msgpack envelope codec; see envelope.h.

    Encoding goes through msgpack-c's packer. Decoding does not: msgpack-c's
    unpacker allocates count*24 bytes for a declared container size before
    reading a single element, so a 5-byte header could ask for gigabytes.
    The decoder here is a cursor over the caller's buffer that allocates
    nothing, checks every declared length and count against the bytes left
    before believing it, and caps nesting when it skips unknown values.

    Which error a malformed input gets:
        ETRUNCATED  the input ends inside a fixed-size header or number
        ECOUNT      a declared str/bin/ext length or array/map count is more
                    than the bytes left could hold, or the top map has more
                    than S_MAP_MAX entries
        ETYPE       a known key's value has another type, a number does not
                    fit its field, or a key is not a string
        EINVALID    0xc1, a NUL inside a string field, kind missing or zero
*/
#include "envelope.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* More entries than this in the top map is hostile, not a newer sender:
   we know 14 keys, which leaves room for 18 more. */
#define S_MAP_MAX 32

/* Upper bound of an encoding minus its payload: map header (1), 14 keys
   (2 each), 9 numbers (<= 9 each), 3 ids (<= 2 + 64 each), lang (1 + 8),
   bin32 header (5) = 322; rounded up so the packer never reallocates. */
#define S_ENCODE_OVERHEAD 512

/* The C type of a field, which also fixes its msgpack type on the wire. */
typedef enum {
    S_FIELD_U32, /* uint on the wire, uint32_t in the struct */
    S_FIELD_U64, /* uint on the wire, uint64_t in the struct */
    S_FIELD_STR, /* str on the wire, char[cap + 1] in the struct */
    S_FIELD_BIN, /* bin (or str) on the wire, payload + payload_len */
} s_field_type_t;

/* One known key: the single table both directions work from, so the
   encoder and decoder cannot disagree on a key, type or cap. */
typedef struct {
    char key;            /* one-letter wire key */
    s_field_type_t type; /* how the value is stored and sent */
    size_t offset;       /* where the value lives in tolk_envelope_t */
    size_t cap;          /* longest string or payload accepted, in bytes */
    bool always;         /* written even when zero (v and k) */
} s_field_t;

/* Table order is wire order. */
static const s_field_t s_fields[] = {
    {'v', S_FIELD_U32, offsetof(tolk_envelope_t, version), 0, true},
    {'k', S_FIELD_U32, offsetof(tolk_envelope_t, kind), 0, true},
    {'g', S_FIELD_STR, offsetof(tolk_envelope_t, gateway), TOLK_ID_MAX, false},
    {'w', S_FIELD_STR, offsetof(tolk_envelope_t, worker), TOLK_ID_MAX, false},
    {'c', S_FIELD_U64, offsetof(tolk_envelope_t, conn), 0, false},
    {'s', S_FIELD_STR, offsetof(tolk_envelope_t, session), TOLK_ID_MAX, false},
    {'r', S_FIELD_U32, offsetof(tolk_envelope_t, role), 0, false},
    {'l', S_FIELD_STR, offsetof(tolk_envelope_t, lang), TOLK_LANG_MAX, false},
    {'t', S_FIELD_U64, offsetof(tolk_envelope_t, sent_ns), 0, false},
    {'a', S_FIELD_U32, offsetof(tolk_envelope_t, audience), 0, false},
    {'x', S_FIELD_U32, offsetof(tolk_envelope_t, close_code), 0, false},
    {'f', S_FIELD_U32, offsetof(tolk_envelope_t, flags), 0, false},
    {'o', S_FIELD_U64, offsetof(tolk_envelope_t, age_ms), 0, false},
    {'q', S_FIELD_U64, offsetof(tolk_envelope_t, seq), 0, false},
    {'p', S_FIELD_BIN, offsetof(tolk_envelope_t, payload), TOLK_PAYLOAD_MAX, false},
};
#define S_FIELD_COUNT (sizeof(s_fields) / sizeof(s_fields[0]))

/* The known field for a one-letter key, or NULL: unknown keys are skipped. */
static const s_field_t *s_field_lookup(const uint8_t *key, size_t len)
{
    if (len != 1)
        return NULL;
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if ((uint8_t)s_fields[i].key == key[0])
            return &s_fields[i];
    return NULL;
}

/* ---------------------------------------------------------------------
   Encoder
*/

/* Length of a fixed string field, or -1 when it has no NUL within cap
   bytes: an over-cap field must be refused, never cut. */
static ptrdiff_t s_field_strlen(const char *field, size_t cap)
{
    size_t len = strnlen(field, cap + 1);
    return len > cap ? -1 : (ptrdiff_t)len;
}

/* Whether a field goes on the wire: v and k always, the rest when set. */
static bool s_field_present(const tolk_envelope_t *env, const s_field_t *f)
{
    const char *base = (const char *)env + f->offset;
    if (f->always)
        return true;
    switch (f->type) {
        case S_FIELD_U32:
            return *(const uint32_t *)base != 0;
        case S_FIELD_U64:
            return *(const uint64_t *)base != 0;
        case S_FIELD_STR:
            return base[0] != '\0';
        case S_FIELD_BIN:
            return env->payload_len != 0;
    }
    return false;
}

/* Pack one field, key then value; nonzero when the packer fails (OOM). */
static int s_field_pack(msgpack_packer *pk, const tolk_envelope_t *env, const s_field_t *f)
{
    const char *base = (const char *)env + f->offset;
    if (msgpack_pack_str(pk, 1) || msgpack_pack_str_body(pk, &f->key, 1))
        return -1;
    switch (f->type) {
        case S_FIELD_U32:
            return msgpack_pack_uint32(pk, *(const uint32_t *)base);
        case S_FIELD_U64:
            return msgpack_pack_uint64(pk, *(const uint64_t *)base);
        case S_FIELD_STR: {
            size_t len = strlen(base);
            return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, base, len);
        }
        case S_FIELD_BIN:
            return msgpack_pack_bin(pk, env->payload_len) ||
                   msgpack_pack_bin_body(pk, env->payload, env->payload_len);
    }
    return -1;
}

/* Pack env with msgpack-c and hand over the sbuffer's block (malloc'd, so
   the caller frees it with free()). */
uint8_t *tolk_envelope_encode(const tolk_envelope_t *env, size_t *out_len)
{
    if (!env || !out_len)
        return NULL;
    *out_len = 0;

    //  Refuse over-cap fields before packing anything
    uint32_t count = 0;
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *f = &s_fields[i];
        if (f->type == S_FIELD_STR && s_field_strlen((const char *)env + f->offset, f->cap) < 0)
            return NULL;
        if (s_field_present(env, f))
            count++;
    }
    if (env->payload_len > TOLK_PAYLOAD_MAX || (env->payload_len && !env->payload))
        return NULL;

    //  Size the buffer for the worst case up front, so the sbuffer never
    //  grows and what we hand back is at most S_ENCODE_OVERHEAD too big
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    sbuf.alloc = env->payload_len + S_ENCODE_OVERHEAD;
    sbuf.data = malloc(sbuf.alloc);
    if (!sbuf.data)
        return NULL;

    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, count))
        goto err;
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (s_field_present(env, &s_fields[i]) && s_field_pack(&pk, env, &s_fields[i]))
            goto err;

    *out_len = sbuf.size;
    return (uint8_t *)msgpack_sbuffer_release(&sbuf);

err:
    msgpack_sbuffer_destroy(&sbuf);
    return NULL;
}

/* ---------------------------------------------------------------------
   Decoder
*/

/* Read position in the input; only s_take moves it, so no read can pass
   the end. */
typedef struct {
    const uint8_t *ptr; /* next unread byte */
    size_t left;        /* bytes from ptr to the end of the input */
} s_cursor_t;

/* What a msgpack header announced, in the few classes the decoder cares
   about. */
typedef enum {
    S_ITEM_UINT,   /* positive fixint, uint8..64: value is the number */
    S_ITEM_SCALAR, /* nil, bool, float, signed int: nothing more to read */
    S_ITEM_STR,    /* fixstr, str8..32: value is the byte length */
    S_ITEM_BIN,    /* bin8..32: value is the byte length */
    S_ITEM_EXT,    /* fixext, ext8..32: value is the data length */
    S_ITEM_ARRAY,  /* fixarray, array16/32: value is the element count */
    S_ITEM_MAP,    /* fixmap, map16/32: value is the entry count */
} s_item_class_t;

/* A decoded header: the class and its number, already checked against
   the bytes left. */
typedef struct {
    s_item_class_t cls; /* what follows the header */
    uint64_t value;     /* number, length or count, per cls */
} s_item_t;

/* Consume n bytes; *out points at them. ETRUNCATED when fewer are left. */
static int s_take(s_cursor_t *cur, size_t n, const uint8_t **out)
{
    if (n > cur->left)
        return TOLK_ENV_ETRUNCATED;
    *out = cur->ptr;
    cur->ptr += n;
    cur->left -= n;
    return TOLK_ENV_OK;
}

/* Consume a big-endian unsigned number of n (1, 2, 4 or 8) bytes. */
static int s_take_be(s_cursor_t *cur, size_t n, uint64_t *value)
{
    const uint8_t *p = NULL;
    int rc = s_take(cur, n, &p);
    if (rc)
        return rc;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    *value = v;
    return TOLK_ENV_OK;
}

/* Consume one header and classify it. A declared length or count is only
   believed when the bytes left could hold it (an element takes at least
   one byte, a map entry two), so no later loop or read can be told to run
   past the input. Body bytes (str/bin/ext data, container elements) are
   left for the caller. */
static int s_header(s_cursor_t *cur, s_item_t *item)
{
    const uint8_t *p = NULL;
    int rc = s_take(cur, 1, &p);
    if (rc)
        return rc;
    uint8_t b = *p;
    item->value = 0;
    size_t skip = 0;   /* fixed bytes of a scalar to skip */
    size_t len_sz = 0; /* size of a length or count field */

    if (b <= 0x7f) {
        item->cls = S_ITEM_UINT;
        item->value = b;
        return TOLK_ENV_OK;
    }
    if (b >= 0xe0) {
        item->cls = S_ITEM_SCALAR;
        return TOLK_ENV_OK;
    }
    if (b <= 0x8f) {
        item->cls = S_ITEM_MAP;
        item->value = b & 0x0f;
    } else if (b <= 0x9f) {
        item->cls = S_ITEM_ARRAY;
        item->value = b & 0x0f;
    } else if (b <= 0xbf) {
        item->cls = S_ITEM_STR;
        item->value = b & 0x1f;
    } else {
        switch (b) {
            case 0xc0: /* nil */
            case 0xc2: /* false */
            case 0xc3: /* true */
                item->cls = S_ITEM_SCALAR;
                return TOLK_ENV_OK;
            case 0xc1: /* never used */
                return TOLK_ENV_EINVALID;
            case 0xc4:
            case 0xc5:
            case 0xc6:
                item->cls = S_ITEM_BIN;
                len_sz = (size_t)1 << (b - 0xc4);
                break;
            case 0xc7:
            case 0xc8:
            case 0xc9:
                item->cls = S_ITEM_EXT;
                len_sz = (size_t)1 << (b - 0xc7);
                break;
            case 0xca: /* float32 */
                item->cls = S_ITEM_SCALAR;
                skip = 4;
                break;
            case 0xcb: /* float64 */
                item->cls = S_ITEM_SCALAR;
                skip = 8;
                break;
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
                item->cls = S_ITEM_UINT;
                return s_take_be(cur, (size_t)1 << (b - 0xcc), &item->value);
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3: /* int8..int64 */
                item->cls = S_ITEM_SCALAR;
                skip = (size_t)1 << (b - 0xd0);
                break;
            case 0xd4:
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8: /* fixext 1..16: type byte, then the data */
                item->cls = S_ITEM_EXT;
                item->value = (uint64_t)1 << (b - 0xd4);
                if ((rc = s_take(cur, 1, &p)))
                    return rc;
                break;
            case 0xd9:
            case 0xda:
            case 0xdb:
                item->cls = S_ITEM_STR;
                len_sz = (size_t)1 << (b - 0xd9);
                break;
            case 0xdc:
            case 0xdd:
                item->cls = S_ITEM_ARRAY;
                len_sz = (size_t)2 << (b - 0xdc);
                break;
            default: /* 0xde, 0xdf */
                item->cls = S_ITEM_MAP;
                len_sz = (size_t)2 << (b - 0xde);
                break;
        }
    }
    if (skip)
        return s_take(cur, skip, &p);
    if (len_sz && (rc = s_take_be(cur, len_sz, &item->value)))
        return rc;
    if (item->cls == S_ITEM_EXT && len_sz && (rc = s_take(cur, 1, &p)))
        return rc; /* ext8..32: type byte after the length */

    //  The check that makes the decoder safe against hostile sizes
    uint64_t left = cur->left;
    if (item->cls == S_ITEM_MAP ? item->value > left / 2 : item->value > left)
        return TOLK_ENV_ECOUNT;
    return TOLK_ENV_OK;
}

/* Skip one whole value of any type. depth counts the containers we are
   already inside; opening one more than TOLK_SKIP_DEPTH_MAX is EDEPTH, so
   recursion is bounded whatever the input says. */
static int s_skip(s_cursor_t *cur, int depth)
{
    s_item_t item;
    const uint8_t *p = NULL;
    int rc = s_header(cur, &item);
    if (rc)
        return rc;
    switch (item.cls) {
        case S_ITEM_UINT:
        case S_ITEM_SCALAR:
            return TOLK_ENV_OK;
        case S_ITEM_STR:
        case S_ITEM_BIN:
        case S_ITEM_EXT:
            return s_take(cur, (size_t)item.value, &p);
        case S_ITEM_ARRAY:
        case S_ITEM_MAP:
            break;
    }
    if (depth >= TOLK_SKIP_DEPTH_MAX)
        return TOLK_ENV_EDEPTH;
    uint64_t values = item.cls == S_ITEM_MAP ? item.value * 2 : item.value;
    for (uint64_t i = 0; i < values; i++)
        if ((rc = s_skip(cur, depth + 1)))
            return rc;
    return TOLK_ENV_OK;
}

/* Decode the value of a known key into env. The version goes to the
   caller's version variable instead, so a number too big for the struct
   still reads as "not 1". */
static int s_field_decode(s_cursor_t *cur, const s_field_t *f, tolk_envelope_t *env,
                          uint64_t *version)
{
    char *base = (char *)env + f->offset;
    const uint8_t *p = NULL;
    s_item_t item;
    int rc = s_header(cur, &item);
    if (rc)
        return rc;

    switch (f->type) {
        case S_FIELD_U32:
            if (item.cls != S_ITEM_UINT)
                return TOLK_ENV_ETYPE;
            if (f->key == 'v') {
                *version = item.value;
                return TOLK_ENV_OK;
            }
            if (item.value > UINT32_MAX)
                return TOLK_ENV_ETYPE;
            *(uint32_t *)base = (uint32_t)item.value;
            return TOLK_ENV_OK;
        case S_FIELD_U64:
            if (item.cls != S_ITEM_UINT)
                return TOLK_ENV_ETYPE;
            *(uint64_t *)base = item.value;
            return TOLK_ENV_OK;
        case S_FIELD_STR:
            if (item.cls != S_ITEM_STR)
                return TOLK_ENV_ETYPE;
            if (item.value > f->cap)
                return TOLK_ENV_ETOOLONG;
            if ((rc = s_take(cur, (size_t)item.value, &p)))
                return rc; /* s_header checked already: cannot happen */
            if (item.value && memchr(p, 0, (size_t)item.value))
                return TOLK_ENV_EINVALID;
            if (item.value)
                memcpy(base, p, (size_t)item.value);
            base[item.value] = '\0';
            return TOLK_ENV_OK;
        case S_FIELD_BIN:
            if (item.cls != S_ITEM_BIN && item.cls != S_ITEM_STR)
                return TOLK_ENV_ETYPE;
            if (item.value > f->cap)
                return TOLK_ENV_ETOOLONG;
            if ((rc = s_take(cur, (size_t)item.value, &p)))
                return rc;
            env->payload = item.value ? p : NULL;
            env->payload_len = (size_t)item.value;
            return TOLK_ENV_OK;
    }
    return TOLK_ENV_ETYPE;
}

/* The decoder proper; tolk_envelope_decode wipes env when this fails. */
static int s_decode(tolk_envelope_t *env, const uint8_t *buf, size_t len)
{
    s_cursor_t cur = {buf, len};
    s_item_t item;
    uint64_t version = 0;
    const uint8_t *key = NULL;
    int rc;

    //  Look at the type byte first, so a non-map is ENOTMAP whatever
    //  length it might declare
    if (len == 0)
        return TOLK_ENV_ETRUNCATED;
    if (!((buf[0] >= 0x80 && buf[0] <= 0x8f) || buf[0] == 0xde || buf[0] == 0xdf))
        return TOLK_ENV_ENOTMAP;
    if ((rc = s_header(&cur, &item)))
        return rc;
    if (item.value > S_MAP_MAX)
        return TOLK_ENV_ECOUNT;

    for (uint64_t i = 0; i < item.value; i++) {
        s_item_t key_item;
        if ((rc = s_header(&cur, &key_item)))
            return rc;
        if (key_item.cls != S_ITEM_STR)
            return TOLK_ENV_ETYPE;
        if ((rc = s_take(&cur, (size_t)key_item.value, &key)))
            return rc;
        const s_field_t *f = s_field_lookup(key, (size_t)key_item.value);
        rc = f ? s_field_decode(&cur, f, env, &version) : s_skip(&cur, 0);
        if (rc)
            return rc;
    }
    if (cur.left)
        return TOLK_ENV_ETRAILING;
    if (version != TOLK_ENVELOPE_VERSION)
        return TOLK_ENV_EVERSION; /* also when v was missing */
    env->version = TOLK_ENVELOPE_VERSION;
    if (env->kind == TOLK_KIND_NONE)
        return TOLK_ENV_EINVALID;
    return TOLK_ENV_OK;
}

/* Public entry: starts from a zeroed env and never leaves a half-filled
   one behind. */
int tolk_envelope_decode(tolk_envelope_t *env, const uint8_t *buf, size_t len)
{
    if (!env)
        return TOLK_ENV_EINVALID;
    memset(env, 0, sizeof(*env));
    if (!buf && len)
        return TOLK_ENV_EINVALID;
    int rc = s_decode(env, buf, len);
    if (rc)
        memset(env, 0, sizeof(*env)); /* no half-decoded envelope to misuse */
    return rc;
}

/* ---------------------------------------------------------------------
   Small helpers
*/

/* Every envelope starts here, so no sender forgets the version. */
void tolk_envelope_init(tolk_envelope_t *env, tolk_kind_t kind)
{
    if (!env)
        return;
    memset(env, 0, sizeof(*env));
    env->version = TOLK_ENVELOPE_VERSION;
    env->kind = (uint32_t)kind;
}

/* Short lower-case names, for log lines and test messages. */
const char *tolk_envelope_strerror(int rc)
{
    switch (rc) {
        case TOLK_ENV_OK:
            return "ok";
        case TOLK_ENV_ETRUNCATED:
            return "truncated";
        case TOLK_ENV_ENOTMAP:
            return "not a map";
        case TOLK_ENV_ECOUNT:
            return "count or length over bytes left or cap";
        case TOLK_ENV_ETYPE:
            return "wrong type";
        case TOLK_ENV_ETOOLONG:
            return "string or payload too long";
        case TOLK_ENV_EDEPTH:
            return "nesting too deep";
        case TOLK_ENV_EVERSION:
            return "missing or unsupported version";
        case TOLK_ENV_ETRAILING:
            return "trailing bytes";
        case TOLK_ENV_EINVALID:
            return "invalid";
    }
    return "unknown envelope error";
}

/* cap is the size of the field's buffer (sizeof field), NUL included;
   NULL src clears the field. Refusing beats truncating an id. */
static const char *s_worker_kind_names[TOLK_WORKER_KINDS] = {"control", "status", "audio",
                                                             "sweeper"};

const char *tolk_worker_kind_name(tolk_worker_kind_t kind)
{
    return kind >= 0 && kind < TOLK_WORKER_KINDS ? s_worker_kind_names[kind] : "unknown";
}

tolk_worker_kind_t tolk_worker_kind_from_name(const char *name, size_t len)
{
    for (int k = 0; name && k < TOLK_WORKER_KINDS; k++)
        if (strlen(s_worker_kind_names[k]) == len && memcmp(s_worker_kind_names[k], name, len) == 0)
            return (tolk_worker_kind_t)k;
    return TOLK_WORKER_UNKNOWN;
}

int tolk_envelope_set_str(char *field, size_t cap, const char *src)
{
    if (!field || cap == 0)
        return -1;
    size_t len = src ? strlen(src) : 0;
    if (len >= cap)
        return -1;
    if (len)
        memcpy(field, src, len);
    field[len] = '\0';
    return 0;
}

/* Monotonic: latency tracing must not jump with the wall clock. */
uint64_t tolk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wall clock: protocol timestamps are compared across machines. */
int64_t tolk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
