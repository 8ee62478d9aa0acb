/*  fuzz_vosk.c -- libFuzzer target for what the audio worker reads from a
    vosk-server (audio_worker/asr_vosk.c): the bytes of its WebSocket,
    decoded into frames and messages by common/wsframe.c's decoder, and
    every text message parsed as an answer ({"partial": ...}, {"text": ...,
    "result": [...]}, {"alternatives": [...]}).

    The server is another program, often on another machine; a truncated,
    hostile or wrong stream must never crash the worker carrying a live
    talk. The input is pushed in pieces whose sizes its first byte picks,
    as recv would hand them over. Checked: a message is never longer than
    the decoder's bound, a parsed text has no control character, no run of
    spaces and no space at either end, and word times are ordered.
*/
/* fuzz-options: -max_len=140000 */
#include "../../audio_worker/asr_vosk.h" /* the Makefile has no -Iaudio_worker */
#include "wsframe.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void s_check_answer(const uint8_t *msg, size_t len)
{
    tolk_vosk_answer_t a;
    if (tolk_vosk_parse((const char *)msg, len, &a) == TOLK_VOSK_NONE) {
        if (a.text)
            abort();
        return;
    }
    size_t n = strlen(a.text);
    if (n > len || (n && (a.text[0] == ' ' || a.text[n - 1] == ' ')) || strstr(a.text, "  "))
        abort();
    for (size_t i = 0; i < n; i++)
        if (iscntrl((unsigned char)a.text[i]))
            abort();
    if ((a.start_s < 0) != (a.end_s < 0) || (a.start_s >= 0 && a.end_s < a.start_s))
        abort();
    free(a.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = 1 + data[0] * 64; /* 1 to 16321 bytes per recv */
    data++;
    size--;
    /* the parser alone, on the whole input */
    s_check_answer(data, size);
    tolk_wsdec_t *dec = tolk_wsdec_new(TOLK_VOSK_ANSWER_MAX);
    if (!dec)
        return 0;
    int r = 0;
    for (size_t off = 0; off < size && r >= 0;) {
        size_t room = tolk_wsdec_room(dec);
        size_t n = size - off < piece ? size - off : piece;
        if (n > room)
            n = room;
        if (n == 0 || tolk_wsdec_push(dec, data + off, n) != 0)
            abort(); /* room said it fits; a full decoder must have failed or yielded */
        off += n;
        tolk_wsmsg_t m;
        while ((r = tolk_wsdec_next(dec, &m)) == 1) {
            if (m.len > TOLK_VOSK_ANSWER_MAX || m.data[m.len] != 0)
                abort();
            if (m.opcode == 0x1)
                s_check_answer(m.data, m.len);
            else if (m.opcode != 0x2 && (m.opcode < 0x8 || m.opcode > 0xA || m.len > 125))
                abort();
        }
        if (r < 0 && !tolk_wsdec_error(dec)[0])
            abort();
    }
    tolk_wsdec_destroy(&dec);
    return 0;
}
