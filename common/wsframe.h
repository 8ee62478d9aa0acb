/*  wsframe.h -- the RFC 6455 pieces every WebSocket client of tolk needs.

    Two clients speak WebSocket by hand: the blocking one of the tools and
    tests (wsclient.c) and the non-blocking one on a worker's loop
    (wsconn.c, the audio worker's link to a vosk-server). What they share
    lives here once: frame headers written and read, masking, the
    handshake's key and its expected answer, UTF-8 checking, and reading
    one header of an HTTP answer. Nothing here does I/O.
*/
#ifndef TOLK_WSFRAME_H
#define TOLK_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest frame header: 2 bytes, 8 of length, 4 of mask key. */
#define TOLK_WSFRAME_HEADER_MAX 14
/* Room for a handshake key (base64 of 16 bytes) and for its accept value
   (base64 of a SHA-1), with their NULs. */
#define TOLK_WSFRAME_KEY_LEN    25
#define TOLK_WSFRAME_ACCEPT_LEN 29

/* One parsed frame header; the payload follows it. */
typedef struct {
    bool fin;       /* last fragment of its message */
    int rsv;        /* the three reserved bits */
    int opcode;     /* 0x0..0xF */
    bool masked;    /* mask bit (a server must not set it) */
    uint64_t len;   /* payload length */
    uint8_t key[4]; /* masking key when masked */
    size_t hlen;    /* header length: the payload starts here */
} tolk_wsframe_t;

/* Read the frame header at buf[0..len): 1 with f filled, 0 when more
   bytes are needed. Any bytes are a header; the caller judges them. */
int tolk_wsframe_parse(const uint8_t *buf, size_t len, tolk_wsframe_t *f);

/* Write a frame header for a payload of len bytes into out
   (TOLK_WSFRAME_HEADER_MAX bytes of room): fin 0/1, opcode, rsv (0..7),
   masked with key (4 bytes) unless key is NULL. Returns its length. */
size_t tolk_wsframe_header(uint8_t *out, int fin, int opcode, int rsv, const uint8_t *key,
                           uint64_t len);

/* XOR data[0..len) with key, as if it started at byte offset of the
   payload (so a payload can be masked in pieces). */
void tolk_wsframe_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset);

/* Fill buf with unpredictable bytes (keys must be, RFC 6455 10.3). */
void tolk_wsframe_random(void *buf, size_t len);

/* A fresh Sec-WebSocket-Key into key and the Sec-WebSocket-Accept the
   server must answer with into accept. */
void tolk_wsframe_key(char key[TOLK_WSFRAME_KEY_LEN], char accept[TOLK_WSFRAME_ACCEPT_LEN]);

/* True when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or
   code points past U+10FFFF), as text messages and close reasons must be. */
bool tolk_wsframe_utf8_valid(const uint8_t *p, size_t n);

/* The value of header name (case-insensitive, blanks trimmed) in the
   NUL-terminated header block hdr (status line first, lines ending in
   CRLF) into out. Returns true when present. */
bool tolk_wsframe_http_header(const char *hdr, const char *name, char *out, size_t outlen);

/* ---------------------------------------------------------------------
   Decoding a server's byte stream into messages
*/

/* What tolk_wsdec_next found. */
typedef struct {
    int opcode;          /* 0x1 text, 0x2 binary, or a control frame's 0x8..0xA */
    const uint8_t *data; /* the whole message (or control payload), NUL after it;
                            valid until the next call */
    size_t len;
} tolk_wsmsg_t;

typedef struct tolk_wsdec_t tolk_wsdec_t;

/* A decoder of what a server sends, refusing messages longer than max
   bytes; NULL when out of memory. It holds at most max plus one frame
   header of unread bytes: push refuses more. */
tolk_wsdec_t *tolk_wsdec_new(size_t max);

/* Free it; NULLs *self_p; safe on NULL. */
void tolk_wsdec_destroy(tolk_wsdec_t **self_p);

/* Take len bytes read from the socket. Returns 0, or -1 when they do not
   fit (the caller reads less: tolk_wsdec_room says how much fits). */
int tolk_wsdec_push(tolk_wsdec_t *self, const uint8_t *data, size_t len);

/* How many bytes push would take now. */
size_t tolk_wsdec_room(tolk_wsdec_t *self);

/* The next whole message or control frame: 1 with msg filled, 0 when
   more bytes are needed, -1 when the server broke the protocol (masked or
   reserved-bit frames, a bad or fragmented control frame, a stray
   continuation, an unknown opcode, text that is not UTF-8, a message
   over max); tolk_wsdec_error then says which, and the decoder stays
   failed. */
int tolk_wsdec_next(tolk_wsdec_t *self, tolk_wsmsg_t *msg);

/* Why the decoder failed ("" when it has not). */
const char *tolk_wsdec_error(tolk_wsdec_t *self);

/* The close code its failure calls for: 1002 protocol error, 1007 bad
   UTF-8, 1009 too long, 1011 out of memory; 0 when it has not failed. */
int tolk_wsdec_close_code(tolk_wsdec_t *self);

#endif
