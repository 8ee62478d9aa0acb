/*  fuzz_whisper.c -- libFuzzer target for what the audio worker reads from
    a Whisper-class transcription server (audio_worker/whisper.c): the
    answer body {"text": ...}.

    The server is another program, often on another machine; a truncated,
    hostile or wrong answer must never crash the worker carrying a live
    talk. A parsed text is never longer than the body, never empty, and
    holds no control character, no run of spaces and no space at either
    end.
*/
/* fuzz-options: -max_len=16384 */
#include "../../audio_worker/whisper.h" /* the Makefile has no -Iaudio_worker */

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = tolk_whisper_parse((const char *)data, size);
    if (!text)
        return 0;
    size_t n = strlen(text);
    if (n == 0 || n > size || text[0] == ' ' || text[n - 1] == ' ' || strstr(text, "  "))
        abort();
    for (size_t i = 0; i < n; i++)
        if (iscntrl((unsigned char)text[i]))
            abort();
    free(text);
    return 0;
}
