/*  itest_abuse.c -- the gateway survives protocol abuse, against a real
    system (one gateway, one control worker, Redis, under supervisord).

    Why: the gateway is the one process every client can reach with any
    bytes it likes. A browser never sends an unmasked frame, a reserved
    opcode or a 5000 close code, but anything else on the internet may,
    and each must end that one connection with the close code RFC 6455
    gives it, quickly, while every other client goes on as if nothing
    happened.

    1. A table of raw-frame cases in the spirit of Autobahn's sections 1-7
       (framing, pings, reserved bits, opcodes, fragmentation, UTF-8,
       close handling). Each runs on a fresh listener joined to a live
       session; it must be closed with the expected code within one
       second, or, for the cases that are legal, answered and kept open.
       After each case a bystander listener of the same session answers
       a heartbeat and /readyz is 200. The cases whose violation has
       more frames behind it run 50 times more each: the close frame
       must come however the gateway happens to read them.
    2. Messages over 128 KB, in one frame and in 100 fragments, closed
       with 1009 before the gateway buffers them; 10,000 such attempts
       must not grow the gateway's memory by a megabyte.
    3. Origin: an upgrade from an origin outside the allowlist is refused
       before the upgrade, with the default rule (same origin or none) and
       with a configured list (a second system).
*/
#include "harness.h"
#include "itest_client.h"
#include "wsclient.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "abuse-test-secret-0123456789abcdef"

/* The message limit of SPEC section 5 (TOLK_PAYLOAD_MAX). */
#define S_LIMIT (128 * 1024)
/* What the oversize cases send: 129 KB. */
#define S_OVERSIZE (129 * 1024)
/* The close deadline every violation must meet. */
#define S_CLOSE_MS 1000

/* Attempts of the memory test. Under ASan, whose quarantine holds on to
   freed memory, RSS means nothing: there the test makes fewer attempts
   (every process runs slower) and only checks that each gets 1009. */
#if defined(__SANITIZE_ADDRESS__)
#define S_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_UNDER_ASAN 1
#endif
#endif
#ifdef S_UNDER_ASAN
#define S_ATTEMPTS 3000
#define S_WARMUP   100
#else
#define S_ATTEMPTS 10000
#define S_WARMUP   300
#endif

static harness_t *s_h;

/* Tokens as this system demands them: its secret, no issuer or audience. */
static const ic_jwt_t s_jwt = {.secret = SECRET};

/* ---------------------------------------------------------- the table */

/* One frame as ws_send_frame sends it. data NULL with len > 0 means len
   bytes of 'x' (the long control frames). */
typedef struct {
    int fin, opcode, rsv, masked;
    const char *data;
    size_t len;
} s_frame_t;

#define S_FRAMES_MAX 3

/* One case: frames sent back to back on a fresh connection, then either
   a close with code expect (within S_CLOSE_MS), or, with expect 0, a
   heartbeatAck (the frames carry a heartbeat) after pongs pongs. */
typedef struct {
    const char *name;
    int expect;
    int pongs;
    s_frame_t frames[S_FRAMES_MAX];
} s_case_t;

/* A masked frame whose payload is a string literal (its bytes, no NUL).
   Mind C's greedy hex escapes: "\xe8" "bye", not "\xe8bye". */
#define FR(fin, op, lit)                                                                           \
    {                                                                                              \
        fin, op, 0, 1, lit, sizeof(lit) - 1                                                        \
    }
/* The same with reserved bits rsv and the mask bit given. */
#define FRX(fin, op, rsv, masked, lit)                                                             \
    {                                                                                              \
        fin, op, rsv, masked, lit, sizeof(lit) - 1                                                 \
    }
/* A masked frame of n bytes of 'x'. */
#define FN(fin, op, n)                                                                             \
    {                                                                                              \
        fin, op, 0, 1, NULL, n                                                                     \
    }

#define HB  "{\"action\":\"heartbeat\"}"
#define X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
/* a heartbeat too long for the 7-bit length */
#define HB_PADDED "{\"action\":\"heartbeat\",\"pad\":\"" X50 X50 X50 X50 "\"}"
#define TEXT      WS_OP_TEXT
#define BIN       WS_OP_BINARY
#define CONT      WS_OP_CONT
#define PING      WS_OP_PING
#define PONG      WS_OP_PONG
#define CLS       WS_OP_CLOSE

/* The list, by Autobahn section. 1002 protocol error, 1007 invalid
   payload data; 0 means "legal: must be answered, not closed". */
static const s_case_t s_cases[] = {
    /* 1 framing: the 16- and 64-bit length forms */
    {"1   heartbeat of 230 bytes (16-bit length)", 0, 0, {FR(1, TEXT, HB_PADDED)}},
    {"1   binary of 70,000 bytes (64-bit length)", 0, 0, {FN(1, BIN, 70000), FR(1, TEXT, HB)}},
    /* 2 pings and pongs */
    {"2   ping with 125 bytes is answered", 0, 1, {FN(1, PING, 125), FR(1, TEXT, HB)}},
    {"2   unsolicited pong is ignored", 0, 0, {FR(1, PONG, "unasked"), FR(1, TEXT, HB)}},
    {"2   ping with 126 bytes", 1002, 0, {FN(1, PING, 126)}},
    {"2   pong with 126 bytes", 1002, 0, {FN(1, PONG, 126)}},
    {"2   ping fragmented (FIN=0)", 1002, 0, {FR(0, PING, "a"), FR(1, CONT, "b")}},
    {"2   pong fragmented (FIN=0)", 1002, 0, {FR(0, PONG, "a"), FR(1, CONT, "b")}},
    /* 3 reserved bits */
    {"3   RSV1 on a text frame", 1002, 0, {FRX(1, TEXT, 4, 1, HB)}},
    {"3   RSV2 on a text frame", 1002, 0, {FRX(1, TEXT, 2, 1, HB)}},
    {"3   RSV3 on a text frame", 1002, 0, {FRX(1, TEXT, 1, 1, HB)}},
    {"3   RSV1+2+3 on a binary frame", 1002, 0, {FRX(1, BIN, 7, 1, "\x01\x02")}},
    {"3   RSV2 on a ping", 1002, 0, {FRX(1, PING, 2, 1, "hi")}},
    {"3   RSV3 on a close", 1002, 0, {FRX(1, CLS, 1, 1, "\x03\xe8")}},
    /* 4 opcodes */
    {"4.1 reserved data opcode 3", 1002, 0, {FR(1, 3, "")}},
    {"4.1 reserved data opcode 4", 1002, 0, {FR(1, 4, "x")}},
    {"4.1 reserved data opcode 5", 1002, 0, {FR(1, 5, HB)}},
    {"4.1 reserved data opcode 6", 1002, 0, {FR(1, 6, "")}},
    {"4.1 reserved data opcode 7", 1002, 0, {FR(1, 7, "x")}},
    {"4.2 reserved control opcode 0xB", 1002, 0, {FR(1, 0xB, "")}},
    {"4.2 reserved control opcode 0xC", 1002, 0, {FR(1, 0xC, "x")}},
    {"4.2 reserved control opcode 0xD", 1002, 0, {FR(1, 0xD, "")}},
    {"4.2 reserved control opcode 0xE", 1002, 0, {FR(1, 0xE, "x")}},
    {"4.2 reserved control opcode 0xF", 1002, 0, {FR(1, 0xF, "")}},
    /* 5 fragmentation */
    {"5   fragmented heartbeat",
     0,
     0,
     {FR(0, TEXT, "{\"action\""), FR(1, CONT, ":\"heartbeat\"}")}},
    {"5   empty fragments around a heartbeat",
     0,
     0,
     {FR(0, TEXT, ""), FR(0, CONT, HB), FR(1, CONT, "")}},
    {"5   empty text message (an error, no close)", 0, 0, {FR(1, TEXT, ""), FR(1, TEXT, HB)}},
    {"5   empty binary message (an error, no close)", 0, 0, {FR(1, BIN, ""), FR(1, TEXT, HB)}},
    {"5   ping between fragments",
     0,
     1,
     {FR(0, TEXT, "{\"action\":\"hea"), FR(1, PING, "between"), FR(1, CONT, "rtbeat\"}")}},
    {"5   continuation with no message started", 1002, 0, {FR(1, CONT, HB)}},
    {"5   continuation (FIN=0) with no message", 1002, 0, {FR(0, CONT, "{"), FR(1, CONT, "}")}},
    {"5   text inside a fragmented text message",
     1002,
     0,
     {FR(0, TEXT, "{\"action\":"), FR(1, TEXT, HB)}},
    {"5   binary inside a fragmented text message",
     1002,
     0,
     {FR(0, TEXT, "{\"action\":"), FR(1, BIN, "\x01\x02")}},
    {"5   text inside a fragmented binary message",
     1002,
     0,
     {FR(0, BIN, "\x01\x02"), FR(1, TEXT, HB)}},
    {"5   close fragmented (FIN=0)", 1002, 0, {FR(0, CLS, "\x03\xe8"), FR(1, CONT, "")}},
    /* 6 UTF-8 */
    {"6   invalid UTF-8 (a surrogate) in a text frame",
     1007,
     0,
     {FR(1, TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74")}},
    {"6   a lone 0xFF byte", 1007, 0, {FR(1, TEXT, "\xff")}},
    {"6   an overlong '/'", 1007, 0, {FR(1, TEXT, "\xc0\xaf")}},
    {"6   a code point past U+10FFFF", 1007, 0, {FR(1, TEXT, "\xf4\x90\x80\x80")}},
    {"6   a sequence cut short at the end", 1007, 0, {FR(1, TEXT, "ab\xce")}},
    {"6   invalid UTF-8 in the second fragment",
     1007,
     0,
     {FR(0, TEXT, "{\"action\":"), FR(1, CONT, "\xed\xa0\x80")}},
    {"6   a sequence broken across fragments",
     1007,
     0,
     {FR(0, TEXT, "ok \xce"), FR(0, CONT, "\x41"), FR(1, CONT, "}")}},
    {"6   valid UTF-8 split across fragments",
     0,
     0,
     {FR(0, TEXT, "{\"action\":\"heartbeat\",\"x\":\"\xce"), FR(1, CONT, "\xba\"}")}},
    /* 7 close handling */
    {"7   close with a 1-byte body", 1002, 0, {FR(1, CLS, "\x03")}},
    {"7   invalid UTF-8 in a close reason", 1007, 0, {FR(1, CLS, "\x03\xe8\xff\xfe")}},
    {"7   close with 126 bytes", 1002, 0, {FN(1, CLS, 126)}},
    {"7   close code 0", 1002, 0, {FR(1, CLS, "\x00\x00")}},
    {"7   close code 999", 1002, 0, {FR(1, CLS, "\x03\xe7")}},
    {"7   close code 1004 (reserved)", 1002, 0, {FR(1, CLS, "\x03\xec")}},
    {"7   close code 1005 (never sent)", 1002, 0, {FR(1, CLS, "\x03\xed")}},
    {"7   close code 1006 (never sent)", 1002, 0, {FR(1, CLS, "\x03\xee")}},
    {"7   close code 1015 (never sent)", 1002, 0, {FR(1, CLS, "\x03\xf7")}},
    {"7   close code 1016 (unassigned)", 1002, 0, {FR(1, CLS, "\x03\xf8")}},
    {"7   close code 2999 (unassigned)", 1002, 0, {FR(1, CLS, "\x0b\xb7")}},
    {"7   close code 5000 (out of range)", 1002, 0, {FR(1, CLS, "\x13\x88")}},
    {"7   close code 65535 (out of range)", 1002, 0, {FR(1, CLS, "\xff\xff")}},
    /* 7 legal closes: the code is echoed */
    {"7   close 1000 echoed", 1000, 0, {FR(1, CLS, "\x03\xe8")}},
    {"7   close 1000 with a UTF-8 reason echoed",
     1000,
     0,
     {FR(1, CLS,
         "\x03\xe8"
         "bye \xc3\xbc")}},
    {"7   close 1011 echoed", 1011, 0, {FR(1, CLS, "\x03\xf3")}},
    {"7   close 3000 echoed", 3000, 0, {FR(1, CLS, "\x0b\xb8")}},
    {"7   close 4999 echoed", 4999, 0, {FR(1, CLS, "\x13\x87")}},
    {"7   close without a body echoed without one", 1005, 0, {FR(1, CLS, "")}},
};

/* What the gateway cannot do as RFC 6455 asks yet, and why. These run
   like the others and must leave everyone else served; they are reported,
   not failed, until the reason goes away (then they pass as they are).
   libwebsockets 4.1 parses the mask bit of a client frame but never
   checks it (later releases refuse the frame with 1002 "client
   unmasked"), and its API shows the gateway nothing of a frame header
   but the opcode, the FIN and RSV bits and the length. */
#define S_GAP_MASK "lws 4.1 takes unmasked client frames as masked and tells the gateway nothing"

static const s_case_t s_gaps[] = {
    {"1   text frame not masked", 1002, 0, {FRX(1, TEXT, 0, 0, HB)}},
    {"1   binary frame not masked", 1002, 0, {FRX(1, BIN, 0, 0, "\x01\x02")}},
    {"1   ping not masked", 1002, 0, {FRX(1, PING, 0, 0, "hi")}},
};

#define S_NCASES (sizeof s_cases / sizeof s_cases[0])
#define S_NGAPS  (sizeof s_gaps / sizeof s_gaps[0])

/* ------------------------------------------------------------ helpers */

/* Send one frame of a case. */
static int s_send(ws_client_t *c, const s_frame_t *f)
{
    if (f->data || f->len == 0)
        return ws_send_frame(c, f->fin, f->opcode, f->rsv, f->masked, f->data, f->len);
    char *x = malloc(f->len);
    ck_assert_ptr_nonnull(x);
    memset(x, 'x', f->len);
    int rc = ws_send_frame(c, f->fin, f->opcode, f->rsv, f->masked, x, f->len);
    free(x);
    return rc;
}

/* Everyone else is still served: a listener of the same session on the
   same gateway gets its heartbeatAck, and the gateway is ready. Returns
   NULL or what was wrong, for the suite's report. */
static const char *s_others_served(ws_client_t *bystander)
{
    if (ws_send_text(bystander, HB) != 0)
        return "the bystander's connection is gone";
    char *ack = ws_recv_type(bystander, "heartbeatAck", IC_WAIT_MS);
    if (!ack)
        return "the bystander got no heartbeatAck";
    free(ack);
    char body[512];
    if (http_get("127.0.0.1", harness_gateway_port(s_h, 0), "/readyz", body, sizeof body) != 200)
        return "/readyz is not 200";
    return NULL;
}

/* A fresh listener of sid on gateway 0: a real, bound connection. */
static ws_client_t *s_victim(const char *sid)
{
    return ic_listener(s_h, 0, sid, "es", NULL);
}

/* Gateway 0's resident set in KB, from /proc. */
static long s_gateway_rss_kb(void)
{
    pid_t pid = harness_pid(s_h, "gateway-0");
    ck_assert_int_gt(pid, 0);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_int_gt(kb, 0);
    return kb;
}

/* ------------------------------------------------ 1. the Autobahn table */

/* Run one case on a fresh listener. Returns NULL when the gateway did
   what it should, else a line for the report (static storage). A known
   gap (gap says why) only has to leave the others served. */
static const char *s_run_case(const s_case_t *k, const char *sid, ws_client_t *bystander,
                              const char *gap)
{
    static char why[512];
    ws_client_t *c = s_victim(sid);
    int64_t t0 = ic_now_ms();
    for (int i = 0; i < S_FRAMES_MAX && (k->frames[i].data || k->frames[i].len); i++)
        s_send(c, &k->frames[i]);
    why[0] = 0;
    if (k->expect) {
        int code = ws_wait_closed(c, gap ? S_CLOSE_MS : 3 * S_CLOSE_MS);
        int64_t ms = ic_now_ms() - t0;
        fprintf(stderr, "itest_abuse: %-48s -> %4d in %3lld ms%s%s\n", k->name, code, (long long)ms,
                ws_error(c) ? ": " : "", ws_error(c) ? ws_error(c) : "");
        if (gap && code != k->expect)
            fprintf(stderr, "itest_abuse:     KNOWN GAP, not %d: %s\n", k->expect, gap);
        else if (code != k->expect)
            snprintf(why, sizeof why, "closed with %d, not %d", code, k->expect);
        else if (ms >= S_CLOSE_MS)
            snprintf(why, sizeof why, "closed after %lld ms", (long long)ms);
        else if (ws_error(c))
            snprintf(why, sizeof why, "the server broke the protocol: %s", ws_error(c));
    } else {
        char *ack = ws_recv_type(c, "heartbeatAck", IC_WAIT_MS);
        int64_t ms = ic_now_ms() - t0;
        fprintf(stderr, "itest_abuse: %-48s -> %s, %d pong(s) in %3lld ms\n", k->name,
                ack ? "heartbeatAck" : "nothing", ws_pongs(c), (long long)ms);
        if (!ack)
            snprintf(why, sizeof why, "no heartbeatAck; closed with %d", ws_close_code(c));
        else if (ws_pongs(c) != k->pongs)
            snprintf(why, sizeof why, "%d pongs, not %d", ws_pongs(c), k->pongs);
        else if (!ws_is_open(c))
            snprintf(why, sizeof why, "closed with %d", ws_close_code(c));
        free(ack);
        ws_close(c, 1000, "done");
    }
    ws_destroy(&c);
    const char *others = s_others_served(bystander);
    if (others && !why[0])
        snprintf(why, sizeof why, "afterwards %s", others);
    return why[0] ? why : NULL;
}

START_TEST(test_autobahn_style_cases)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "abuse-table", sid, NULL);
    ws_client_t *bystander = s_victim(sid);
    /* every case runs, then every failure is reported at once */
    char report[8192] = "";
    size_t used = 0;
    int failed = 0;
    for (size_t i = 0; i < S_NCASES + S_NGAPS; i++) {
        const s_case_t *k = i < S_NCASES ? &s_cases[i] : &s_gaps[i - S_NCASES];
        const char *why = s_run_case(k, sid, bystander, i < S_NCASES ? NULL : S_GAP_MASK);
        if (why) {
            failed++;
            used += (size_t)snprintf(report + used, used < sizeof report ? sizeof report - used : 0,
                                     "\n  %s: %s", k->name, why);
            if (used >= sizeof report)
                used = sizeof report - 1;
        }
    }
    ck_assert_msg(failed == 0, "%d of %zu cases failed:%s", failed, S_NCASES + S_NGAPS, report);
    ws_close(bystander, 1000, "done");
    ws_destroy(&bystander);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* How many times each multi-frame violation is repeated below. */
#define S_BEHIND_TRIES 50

/* A violation with more frames right behind it still gets its close
   frame. lws 4.1 goes on reading while its close frame waits for the
   socket to be writable, and a second framing error in what it read
   made it drop TCP with the frame unsent (1006), on about 2 in 100
   attempts: only when the gateway read the two frames apart, so the
   cases of the table whose violation has frames behind it are repeated
   until a regression could hardly hide (50 each: with 4 such cases a 2%
   failure goes unseen 2 times in 100). Every attempt must get its code;
   how long it took is the table's business. */
START_TEST(test_violation_with_frames_behind_gets_its_close)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "abuse-behind", sid, NULL);
    char report[4096] = "";
    size_t used = 0;
    int cases = 0, failed = 0;
    for (size_t i = 0; i < S_NCASES; i++) {
        const s_case_t *k = &s_cases[i];
        if (!k->expect || !(k->frames[1].data || k->frames[1].len))
            continue; /* legal, or a single frame: nothing behind the error */
        cases++;
        int wrong = 0, last = 0;
        for (int t = 0; t < S_BEHIND_TRIES; t++) {
            ws_client_t *c = s_victim(sid);
            for (int f = 0; f < S_FRAMES_MAX && (k->frames[f].data || k->frames[f].len); f++)
                s_send(c, &k->frames[f]);
            int code = ws_wait_closed(c, IC_WAIT_MS);
            if (code != k->expect) {
                wrong++;
                last = code;
            }
            ws_destroy(&c);
        }
        fprintf(stderr, "itest_abuse: %-48s -> %d of %d not %d\n", k->name, wrong, S_BEHIND_TRIES,
                k->expect);
        if (wrong) {
            failed++;
            used += (size_t)snprintf(report + used, used < sizeof report ? sizeof report - used : 0,
                                     "\n  %s: %d of %d closed with %d, not %d", k->name, wrong,
                                     S_BEHIND_TRIES, last, k->expect);
            if (used >= sizeof report)
                used = sizeof report - 1;
        }
    }
    ck_assert_int_ge(cases, 4);
    ck_assert_msg(failed == 0, "%d of %d cases failed:%s", failed, cases, report);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* ------------------------------------------------ 2. over 128 KB: 1009 */

/* One frame header (masked, FIN, opcode op) announcing len bytes, with
   its mask key 0 so the payload can follow as it is. Returns its size. */
static size_t s_header(unsigned char *h, int op, uint64_t len)
{
    size_t n = 0;
    h[n++] = (unsigned char)(0x80 | op);
    h[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
        h[n++] = (unsigned char)(len >> (8 * i));
    memset(h + n, 0, 4); /* masking key 0: payload bytes go out unchanged */
    return n + 4;
}

/* Send an oversized message: one frame (fragments 1) or that many
   fragments of equal size; the last one has FIN unless open_ended.
   Send errors are ignored: the gateway may hang up before the end. */
static void s_send_big(ws_client_t *c, const char *data, size_t len, int fragments, bool open_ended)
{
    if (fragments <= 1) {
        ws_send_frame(c, 1, WS_OP_BINARY, 0, 1, data, len);
        return;
    }
    size_t each = (len + (size_t)fragments - 1) / (size_t)fragments;
    for (int i = 0; i < fragments; i++) {
        size_t off = (size_t)i * each, n = off + each > len ? len - off : each;
        int fin = i == fragments - 1 && !open_ended;
        if (ws_send_frame(c, fin, i == 0 ? WS_OP_TEXT : WS_OP_CONT, 0, 1, data + off, n) != 0)
            return;
    }
}

/* Check that c is closed with 1009 within the deadline from t0. */
static void s_expect_1009(ws_client_t *c, int64_t t0, const char *what)
{
    int code = ws_wait_closed(c, 3 * S_CLOSE_MS);
    int64_t ms = ic_now_ms() - t0;
    fprintf(stderr, "itest_abuse: %-48s -> %4d in %3lld ms\n", what, code, (long long)ms);
    ck_assert_msg(code == 1009, "%s: closed with %d, not 1009", what, code);
    ck_assert_msg(ms < S_CLOSE_MS, "%s: closed after %lld ms", what, (long long)ms);
}

START_TEST(test_oversized_messages_are_closed_1009)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "abuse-size", sid, NULL);
    ws_client_t *bystander = s_victim(sid);
    char *big = malloc(2 * S_LIMIT);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 2 * S_LIMIT);

    /* 129 KB in one frame */
    ws_client_t *c = s_victim(sid);
    int64_t t0 = ic_now_ms();
    s_send_big(c, big, S_OVERSIZE, 1, false);
    s_expect_1009(c, t0, "129 KB in one frame");
    ws_destroy(&c);
    ck_assert_ptr_null(s_others_served(bystander));

    /* 129 KB in 100 fragments */
    c = s_victim(sid);
    t0 = ic_now_ms();
    s_send_big(c, big, S_OVERSIZE, 100, false);
    s_expect_1009(c, t0, "129 KB in 100 fragments");
    ws_destroy(&c);
    ck_assert_ptr_null(s_others_served(bystander));

    /* only the header of a 129 KB frame and its first 2 KB: the gateway
       decides from the header, it never waits for (or keeps) the rest */
    c = s_victim(sid);
    unsigned char h[16];
    size_t hl = s_header(h, WS_OP_BINARY, S_OVERSIZE);
    t0 = ic_now_ms();
    ws_send_raw(c, h, hl);
    ws_send_raw(c, big, 2048);
    s_expect_1009(c, t0, "a 129 KB frame header and 2 KB");
    ws_destroy(&c);

    /* the header and a single byte: enough for lws to hand it over */
    c = s_victim(sid);
    hl = s_header(h, WS_OP_BINARY, S_OVERSIZE);
    t0 = ic_now_ms();
    ws_send_raw(c, h, hl);
    ws_send_raw(c, big, 1);
    s_expect_1009(c, t0, "a 129 KB frame header and 1 byte");
    ws_destroy(&c);

    /* 192 KB in 2 KB fragments that never end: closed once the running
       total passes 128 KB (the 65th), not at the end of the message */
    c = s_victim(sid);
    t0 = ic_now_ms();
    s_send_big(c, big, 2 * S_LIMIT * 3 / 4, 96, true);
    s_expect_1009(c, t0, "2 KB fragments past 128 KB, no FIN");
    ws_destroy(&c);

    /* a 16 MB frame announced, 2 KB sent */
    c = s_victim(sid);
    hl = s_header(h, WS_OP_TEXT, 16u << 20);
    t0 = ic_now_ms();
    ws_send_raw(c, h, hl);
    ws_send_raw(c, big, 2048);
    s_expect_1009(c, t0, "a 16 MB frame header and 2 KB");
    ws_destroy(&c);

    /* exactly 128 KB is within the limit: refused in band (it is no
       control message), the connection stays */
    c = s_victim(sid);
    s_send_big(c, big, S_LIMIT, 64, false);
    ic_expect_error(c, 413, "PAYLOAD_TOO_LARGE");
    ck_assert_int_eq(ws_send_text(c, HB), 0);
    char *ack = ws_recv_type(c, "heartbeatAck", IC_WAIT_MS);
    ck_assert_msg(ack != NULL, "128 KB exactly closed the connection with %d", ws_close_code(c));
    free(ack);
    ws_close(c, 1000, "done");
    ws_destroy(&c);

    ck_assert_ptr_null(s_others_served(bystander));
    free(big);
    ws_close(bystander, 1000, "done");
    ws_destroy(&bystander);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* One memory-test attempt: a fresh listener sends 129 KB, alternately in
   one frame and in 100 fragments, and must be closed with 1009. */
static void s_attempt(const char *sid, const char *big, int i)
{
    ws_client_t *c = s_victim(sid);
    s_send_big(c, big, S_OVERSIZE, i % 2 ? 100 : 1, false);
    int code = ws_wait_closed(c, IC_WAIT_MS);
    ck_assert_msg(code == 1009, "attempt %d (%s): closed with %d", i,
                  i % 2 ? "100 fragments" : "one frame", code);
    ws_destroy(&c);
}

START_TEST(test_oversized_attempts_keep_memory_flat)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "abuse-memory", sid, NULL);
    ws_client_t *bystander = s_victim(sid);
    char *big = malloc(S_OVERSIZE);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', S_OVERSIZE);
    for (int i = 0; i < S_WARMUP; i++)
        s_attempt(sid, big, i);
    long before = s_gateway_rss_kb();
    int64_t t0 = ic_now_ms();
    for (int i = 0; i < S_ATTEMPTS; i++) {
        s_attempt(sid, big, i);
        if (i % 1000 == 999)
            ck_assert_ptr_null(s_others_served(bystander));
    }
    double secs = (double)(ic_now_ms() - t0) / 1000.0;
    long after = s_gateway_rss_kb();
    fprintf(stderr,
            "itest_abuse: %d oversized attempts (after %d warm-up) in %.1f s: gateway VmRSS "
            "%ld kB before, %ld kB after, %+ld kB\n",
            S_ATTEMPTS, S_WARMUP, secs, before, after, after - before);
#ifndef S_UNDER_ASAN
    ck_assert_msg(after - before < 1024, "the gateway grew by %ld kB", after - before);
#endif
    ck_assert_ptr_null(s_others_served(bystander));
    free(big);
    ws_close(bystander, 1000, "done");
    ws_destroy(&bystander);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

/* ------------------------------------------------------------ 3. Origin */

/* Try an upgrade to a join of sid with this Origin (NULL: none). Returns
   101 when it upgraded (and the join worked), else the HTTP status of the
   refusal (0: no HTTP answer at all). */
static int s_upgrade(harness_t *h, const char *sid, const char *origin)
{
    char path[256];
    snprintf(path, sizeof path, "/ws?action=joinSession&sessionId=%s&targetLanguage=es", sid);
    ws_client_t *c = ws_connect("127.0.0.1", harness_gateway_port(h, 0), path, origin, IC_WAIT_MS);
    if (!c)
        return ws_last_http_status();
    json_t *j = ic_json(ws_recv_text(c, IC_WAIT_MS));
    ck_assert_str_eq(ic_get(j, "type"), "sessionJoined");
    json_decref(j);
    ws_close(c, 1000, "done");
    ws_destroy(&c);
    return 101;
}

/* Expect origin to be refused before the upgrade, with 403. */
static void s_refused(harness_t *h, const char *sid, const char *origin)
{
    int status = s_upgrade(h, sid, origin);
    fprintf(stderr, "itest_abuse: Origin %-40s -> HTTP %d\n", origin, status);
    ck_assert_msg(status == 403, "Origin %s: HTTP %d, not 403 (%s)", origin, status,
                  ws_last_error());
}

/* Expect origin (NULL: none) to upgrade. */
static void s_allowed(harness_t *h, const char *sid, const char *origin)
{
    int status = s_upgrade(h, sid, origin);
    ck_assert_msg(status == 101, "Origin %s: HTTP %d, not 101 (%s)", origin ? origin : "(none)",
                  status, ws_last_error());
}

START_TEST(test_origin_default_rule)
{
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(s_h, 0, &s_jwt, "abuse-origin", sid, NULL);
    ws_client_t *bystander = s_victim(sid);
    int port = harness_gateway_port(s_h, 0);
    char same[64], longer[96];
    snprintf(same, sizeof same, "http://127.0.0.1:%d", port);
    snprintf(longer, sizeof longer, "http://127.0.0.1:%d.evil.example", port);
    /* no list: the page's own origin, or no Origin (tools, native apps) */
    s_allowed(s_h, sid, NULL);
    s_allowed(s_h, sid, same);
    s_refused(s_h, sid, "http://evil.example");
    s_refused(s_h, sid, "http://127.0.0.1");
    s_refused(s_h, sid, longer);
    s_refused(s_h, sid, "null"); /* sandboxed frames and file:// pages */
    /* an upgrade anywhere but /ws is refused the same way, with 404 */
    ws_client_t *c = ws_connect("127.0.0.1", port, "/wss", NULL, IC_WAIT_MS);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(ws_last_http_status(), 404);
    ck_assert_ptr_null(s_others_served(bystander));
    ws_close(bystander, 1000, "done");
    ws_destroy(&bystander);
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
}
END_TEST

START_TEST(test_origin_allowlist)
{
    /* a system of its own: the list is configuration, read at start */
    harness_opts_t opts = {
        .control_workers = 1,
        .status_workers = HARNESS_NONE,
        .audio_workers = HARNESS_NONE,
        .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=", "TOLK_JWT_AUDIENCE=",
                      "TOLK_ORIGINS=https://captions.example.org,http://localhost:8080", NULL}};
    harness_t *h = harness_start(&opts);
    ck_assert_ptr_nonnull(h);
    char sid[IC_SID_LEN];
    ws_client_t *spk = ic_speaker(h, 0, &s_jwt, "abuse-allowlist", sid, NULL);
    int port = harness_gateway_port(h, 0);
    char same[64];
    snprintf(same, sizeof same, "http://127.0.0.1:%d", port);
    s_allowed(h, sid, "https://captions.example.org");
    s_allowed(h, sid, "http://localhost:8080");
    s_allowed(h, sid, NULL);
    s_refused(h, sid, "http://evil.example");
    s_refused(h, sid, same); /* with a list, the list alone decides */
    s_refused(h, sid, "https://captions.example.org.evil.example");
    s_refused(h, sid, "https://captions.example.or");
    s_refused(h, sid, "http://captions.example.org");
    s_refused(h, sid, "https://captions.example.org,http://localhost:8080");
    ws_close(spk, 1000, "done");
    ws_destroy(&spk);
    ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

int main(void)
{
    /* one gateway and one control worker: abuse needs nothing more. The
       control rate is raised so the bystander's heartbeat after each of
       sixty cases is never what gets refused. */
    harness_opts_t opts = {.control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .audio_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_CONTROL_RATE_PER_S=1000",
                                         NULL}};
    s_h = harness_start(&opts);
    if (!s_h)
        return 1;
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("gateway");
    tcase_set_timeout(tc, 300); /* a safety net: the memory test takes ~40 s alone */
    tcase_add_test(tc, test_autobahn_style_cases);
    tcase_add_test(tc, test_violation_with_frames_behind_gets_its_close);
    tcase_add_test(tc, test_oversized_messages_are_closed_1009);
    tcase_add_test(tc, test_oversized_attempts_keep_memory_flat);
    tcase_add_test(tc, test_origin_default_rule);
    tcase_add_test(tc, test_origin_allowlist);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int problems = harness_stop(&s_h);
    if (problems)
        fprintf(stderr, "itest_abuse: %d sanitizer or crash reports in the logs\n", problems);
    return failed == 0 && problems == 0 ? 0 : 1;
}
