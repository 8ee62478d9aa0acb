/*  fuzz_apy.c -- libFuzzer target for what the audio worker reads from
    Apertium's APy (audio_worker/translator.c): a /translate answer and a
    /listPairs answer.

    APy runs beside tolk, but it is another program whose answers the
    worker parses with every caption; a truncated, hostile or plain wrong
    answer must never crash the worker that carries a live talk. The first
    byte splits the input: the rest is the answer, and (for /translate) the
    input text the cleaner compares marks against is taken from its tail.
    A cleaned translation never grows and never holds a run of spaces or a
    space at either end; a pair count is never over the table's size.
    Inputs stay under 16 KB: a caption's translation is short, and larger
    inputs only slow the search (the 64 KB cap on an answer is tested in
    test_translator).
*/
/* fuzz-options: -max_len=16384 */
#include "../../audio_worker/translator.h" /* the Makefile has no -Iaudio_worker */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Abort unless text is a clean caption line of at most max bytes. */
static void s_check_clean(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n > max)
        abort();
    if (n && (text[0] == ' ' || text[n - 1] == ' '))
        abort();
    if (strstr(text, "  ") || strchr(text, '\t') || strchr(text, '\n') || strchr(text, '\r'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        int n = tolk_translator_parse_pairs(body, len);
        if (n < -1 || n > 512)
            abort();
        return 0;
    }
    /* the input text: the last few bytes, NUL terminated */
    size_t in_len = len < 8 ? len : 8;
    char input[9];
    memcpy(input, body + len - in_len, in_len);
    input[in_len] = 0;
    char *text = tolk_translator_parse_answer(body, len, input);
    if (text) {
        s_check_clean(text, len);
        free(text);
    }
    return 0;
}
