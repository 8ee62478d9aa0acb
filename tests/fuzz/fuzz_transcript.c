/*  fuzz_transcript.c -- libFuzzer target for common/transcript.c: any
    bytes as a stored caption, in both formats. The history is written by
    tolk itself, but its text came from the recogniser and the translator,
    and a transcript must never crash the control worker or emit a cue that
    breaks the file.
*/
#include "transcript.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int f = 0; f < 2; f++) {
        char *cue = tolk_transcript_cue((const char *)data, size, (tolk_transcript_format_t)f);
        if (cue) {
            /* one cue: no blank line before its end, no arrow in its text */
            size_t n = strlen(cue);
            if (f == TOLK_TRANSCRIPT_VTT) {
                const char *text = strchr(strchr(cue, '\n') + 1, '\n') + 1;
                if (strstr(text, "-->") || strstr(text, "\n\n") != cue + n - 2)
                    abort();
            } else if (strchr(cue, '\n') != cue + n - 1)
                abort();
            free(cue);
        }
    }
    return 0;
}
