/*  wsframe.c -- RFC 6455 frame headers, masking and the handshake key;
    see wsframe.h. */
#include "wsframe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/sha.h>

#define S_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int tolk_wsframe_parse(const uint8_t *p, size_t n, tolk_wsframe_t *f)
{
    if (n < 2)
        return 0;
    f->fin = (p[0] & 0x80) != 0;
    f->rsv = (p[0] >> 4) & 7;
    f->opcode = p[0] & 0x0F;
    f->masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7F;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)p[2] << 8) | p[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        h = 10;
    }
    if (f->masked) {
        if (n < h + 4)
            return 0;
        memcpy(f->key, p + h, 4);
        h += 4;
    }
    f->len = len;
    f->hlen = h;
    return 1;
}

size_t tolk_wsframe_header(uint8_t *out, int fin, int opcode, int rsv, const uint8_t *key,
                           uint64_t len)
{
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0F));
    uint8_t mbit = key ? 0x80 : 0;
    if (len < 126)
        out[h++] = mbit | (uint8_t)len;
    else if (len <= 0xFFFF) {
        out[h++] = mbit | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)(len >> (8 * i));
    }
    if (key) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    return h;
}

void tolk_wsframe_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= key[(offset + i) & 3];
}

void tolk_wsframe_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            for (size_t i = 0; i < len; i++)
                p[i] = (unsigned char)rand();
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Base64 of len bytes into out (room for 4*ceil(len/3)+1). */
static void s_base64(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

void tolk_wsframe_key(char key[TOLK_WSFRAME_KEY_LEN], char accept[TOLK_WSFRAME_ACCEPT_LEN])
{
    unsigned char raw[16];
    tolk_wsframe_random(raw, sizeof raw);
    s_base64(raw, sizeof raw, key);
    char kg[TOLK_WSFRAME_KEY_LEN + sizeof S_WS_GUID];
    snprintf(kg, sizeof kg, "%s%s", key, S_WS_GUID);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)kg, strlen(kg), sha);
    s_base64(sha, sizeof sha, accept);
}

bool tolk_wsframe_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t more;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            more = 1;
            cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            more = 2;
            cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            more = 3;
            cp = b & 0x07;
        } else
            return false;
        if (n - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000))
            return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

bool tolk_wsframe_http_header(const char *hdr, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *line = strstr(hdr, "\r\n");
    while (line) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (!end || end == line)
            return false;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            size_t n = (size_t)(e - v) < outlen - 1 ? (size_t)(e - v) : outlen - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return true;
        }
        line = end;
    }
    return false;
}

/* ---------------------------------------------------------------------
   Decoder
*/

struct tolk_wsdec_t {
    size_t max;      /* longest message accepted */
    uint8_t *buf;    /* bytes pushed, not yet consumed */
    size_t len, cap; /* used and allocated (grown as needed, up to limit) */
    size_t limit;    /* max + a header + the NUL: the most it ever holds */
    size_t skip;     /* bytes of buf consumed by the last message returned */
    uint8_t *msg;    /* a fragmented data message being joined */
    size_t msg_len;  /* its length so far */
    int msg_opcode;  /* its opcode, 0 when none is in progress */
    uint8_t *out;    /* the last message handed out, when it was joined */
    char error[96];  /* why it failed, "" while it has not */
    int code;        /* the close code that failure calls for (RFC 6455 7.4.1) */
};

tolk_wsdec_t *tolk_wsdec_new(size_t max)
{
    tolk_wsdec_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max;
    self->limit = max + TOLK_WSFRAME_HEADER_MAX + 1;
    self->cap = self->limit < 16384 ? self->limit : 16384;
    self->buf = malloc(self->cap);
    if (!self->buf) {
        free(self);
        return NULL;
    }
    return self;
}

void tolk_wsdec_destroy(tolk_wsdec_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_wsdec_t *self = *self_p;
    free(self->buf);
    free(self->msg);
    free(self->out);
    free(self);
    *self_p = NULL;
}

/* Drop what the last message returned used up. */
static void s_dec_consume(tolk_wsdec_t *self)
{
    if (self->skip) {
        memmove(self->buf, self->buf + self->skip, self->len - self->skip);
        self->len -= self->skip;
        self->skip = 0;
    }
    free(self->out);
    self->out = NULL;
}

size_t tolk_wsdec_room(tolk_wsdec_t *self)
{
    s_dec_consume(self);
    return self->limit - 1 - self->len;
}

int tolk_wsdec_push(tolk_wsdec_t *self, const uint8_t *data, size_t len)
{
    if (len > tolk_wsdec_room(self))
        return -1;
    if (self->len + len + 1 > self->cap) {
        size_t cap = self->cap * 2;
        while (cap < self->len + len + 1)
            cap *= 2;
        if (cap > self->limit)
            cap = self->limit;
        uint8_t *p = realloc(self->buf, cap);
        if (!p)
            return -1;
        self->buf = p;
        self->cap = cap;
    }
    memcpy(self->buf + self->len, data, len);
    self->len += len;
    return 0;
}

/* Fail the decoder for good with close code and why. Returns -1. */
static int s_dec_fail(tolk_wsdec_t *self, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    self->code = code;
    return -1;
}

int tolk_wsdec_next(tolk_wsdec_t *self, tolk_wsmsg_t *msg)
{
    if (self->error[0])
        return -1;
    s_dec_consume(self);
    for (;;) {
        tolk_wsframe_t f;
        if (!tolk_wsframe_parse(self->buf, self->len, &f))
            return 0;
        if (f.masked)
            return s_dec_fail(self, 1002, "server frame is masked");
        if (f.rsv)
            return s_dec_fail(self, 1002, "reserved bits 0x%x set without an extension", f.rsv);
        if (f.len > self->max)
            return s_dec_fail(self, 1009, "server frame of %llu bytes exceeds %zu",
                              (unsigned long long)f.len, self->max);
        size_t n = (size_t)f.len;
        if (f.opcode >= 0x8 && (!f.fin || n > 125))
            return s_dec_fail(self, 1002, "fragmented or long (%zu bytes) control frame", n);
        if (f.opcode > 0xA)
            return s_dec_fail(self, 1002, "unknown control opcode 0x%x", f.opcode);
        if (self->len < f.hlen + n)
            return 0; /* the buffer holds max + a header: it will fit */
        uint8_t *p = self->buf + f.hlen;
        if (f.opcode >= 0x8) {
            /* NUL after the payload, kept in its own copy: the next frame's
               first byte may sit there */
            self->out = malloc(n + 1);
            if (!self->out)
                return s_dec_fail(self, 1011, "out of memory");
            memcpy(self->out, p, n);
            self->out[n] = 0;
            self->skip = f.hlen + n;
            *msg = (tolk_wsmsg_t){.opcode = f.opcode, .data = self->out, .len = n};
            return 1;
        }
        if (f.opcode == 0x0 && !self->msg_opcode)
            return s_dec_fail(self, 1002, "continuation frame without a message");
        if (f.opcode != 0x0 && self->msg_opcode)
            return s_dec_fail(self, 1002, "new message inside a fragmented one");
        if (f.opcode != 0x0 && f.opcode != 0x1 && f.opcode != 0x2)
            return s_dec_fail(self, 1002, "unknown data opcode 0x%x", f.opcode);
        if (self->msg_len + n > self->max)
            return s_dec_fail(self, 1009, "server message exceeds %zu bytes", self->max);
        uint8_t *m = realloc(self->msg, self->msg_len + n + 1);
        if (!m)
            return s_dec_fail(self, 1011, "out of memory");
        self->msg = m;
        memcpy(m + self->msg_len, p, n);
        self->msg_len += n;
        m[self->msg_len] = 0;
        if (f.opcode != 0x0)
            self->msg_opcode = f.opcode;
        memmove(self->buf, self->buf + f.hlen + n, self->len - f.hlen - n);
        self->len -= f.hlen + n;
        if (!f.fin)
            continue;
        if (self->msg_opcode == 0x1 && !tolk_wsframe_utf8_valid(self->msg, self->msg_len))
            return s_dec_fail(self, 1007, "text message is not UTF-8");
        self->out = self->msg;
        *msg = (tolk_wsmsg_t){.opcode = self->msg_opcode, .data = self->msg, .len = self->msg_len};
        self->msg = NULL;
        self->msg_len = 0;
        self->msg_opcode = 0;
        return 1;
    }
}

const char *tolk_wsdec_error(tolk_wsdec_t *self)
{
    return self->error;
}

int tolk_wsdec_close_code(tolk_wsdec_t *self)
{
    return self->code;
}
