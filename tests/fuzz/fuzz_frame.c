/*  fuzz_frame.c -- libFuzzer target for the gateway's text frame verdicts.

    Any bytes may arrive in a WebSocket text frame, so frame_check_text
    must never crash, read past the frame (which has no NUL) or leak. Its
    verdict must also be self-consistent, since the gateway acts on it
    field by field: a refusal has route NONE, a 400 or 413 status, a code
    and a message, and returns -1; an acceptance has a real route, no
    status, a known action and returns 0; only a control frame over 4 KB
    gets 413; only audio escapes the rate limit; v.action is always a
    terminated string.

    clang -g -fsanitize=fuzzer,address,undefined -Icommon -Igateway \
        tests/fuzz/fuzz_frame.c gateway/frame.c $(pkg-config --cflags --libs jansson) \
        -o /tmp/fuzz_frame
    /tmp/fuzz_frame -malloc_limit_mb=64 -rss_limit_mb=512 tests/fuzz/corpus/frame
*/
#define _POSIX_C_SOURCE 200809L /* strnlen, when built with -std=c11 */

#include "frame.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One input: judge it, then check the verdict agrees with itself. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact copy, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);

    frame_verdict_t v;
    int rc = frame_check_text(text, size, &v);
    free(text);

    if (strnlen(v.action, sizeof v.action) >= sizeof v.action)
        abort();
    bool refused = v.route == FRAME_ROUTE_NONE;
    /* route NONE <=> status in {400, 413} */
    if (refused != (v.status == 400 || v.status == 413))
        abort();
    if (refused) {
        if (rc != -1 || !v.code || !v.message || v.rate_limited)
            abort();
        /* 413 only for frames over the control limit */
        if (v.status == 413 && size <= FRAME_CONTROL_MAX)
            abort();
        return 0;
    }
    if (rc != 0 || v.status != 0 || v.code || !v.action[0])
        abort();
    switch (v.route) {
        case FRAME_ROUTE_AUDIO:
            if (v.rate_limited || strcmp(v.action, "sendAudio") != 0)
                abort();
            break;
        case FRAME_ROUTE_HEARTBEAT:
            if (!v.rate_limited || strcmp(v.action, "heartbeat") != 0 || size > FRAME_CONTROL_MAX)
                abort();
            break;
        case FRAME_ROUTE_CONTROL:
        case FRAME_ROUTE_STATUS:
            if (!v.rate_limited || size > FRAME_CONTROL_MAX)
                abort();
            break;
        default:
            abort();
    }
    return 0;
}
