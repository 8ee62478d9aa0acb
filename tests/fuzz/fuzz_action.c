/*  fuzz_action.c -- libFuzzer target for the per-action validators
    (common/action_check.c) and the identifier checks of session_store.c.
    The input is a client message as the control worker gets it (at most
    4096 bytes of JSON, duplicate keys refused as the gateway does): every
    validator runs on it; its first bytes are also tried as a lastSeq, a
    speech flag, a session id and a language code. An accepted change must
    be well formed: pairs of non-empty field names and values.
*/
#include "action_check.h"
#include "session_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *s_actions[] = {"pauseBroadcast",  "resumeBroadcast", "muteBroadcast",
                                  "unmuteBroadcast", "setVolume",       "speakerStateChange",
                                  "endSession"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[80];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = 0;
    long seq;
    if (tolk_parse_seq(text, &seq) && (seq < 0 || seq > 2147483647L))
        abort();
    int flag = tolk_parse_flag(text);
    if (flag < -1 || flag > 1)
        abort();
    (void)tolk_session_id_valid(text);
    (void)tolk_language_code_valid(text);
    if (size > 4096)
        return 0;
    json_t *msg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!msg)
        return 0;
    for (size_t i = 0; i < sizeof s_actions / sizeof *s_actions; i++) {
        tolk_state_change_t c;
        if (tolk_action_state(s_actions[i], msg, &c) == NULL) {
            if (c.n < 2 || c.n % 2 || !c.notification)
                abort();
            for (int f = 0; f < c.n; f++)
                if (!c.fields[f] || !c.fields[f][0])
                    abort();
        }
    }
    bool on;
    (void)tolk_action_speech(msg, &on);
    json_decref(msg);
    return 0;
}
