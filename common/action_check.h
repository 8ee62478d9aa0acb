/*  action_check.h -- the parameters of client actions and connect requests,
    checked before anything changes.

    Pure functions over the parsed message (jansson) or the query value, so
    each validator is unit tested and fuzzed on its own
    (tests/fuzz/fuzz_action.c) rather than only through a running worker.
    A refusal is the human message of the 400 error; NULL means valid.
*/
#ifndef TOLK_ACTION_CHECK_H
#define TOLK_ACTION_CHECK_H

#include <jansson.h>
#include <stdbool.h>

/* What one broadcast-state action changes: field/value pairs for the
   session's state script, and the notification every member gets. */
typedef struct {
    const char *fields[6];    /* name, value, name, value ... */
    int n;                    /* entries used in fields */
    char volume[32];          /* the volume's text, which fields may point at */
    const char *notification; /* broadcastPaused, volumeChanged ... */
} tolk_state_change_t;

/* pauseBroadcast, resumeBroadcast, muteBroadcast, unmuteBroadcast,
   setVolume (volumeLevel 0..1) and speakerStateChange (state: isPaused,
   isMuted booleans, volume 0..1, at least one). Returns NULL and fills out,
   or the refusal. An action that is none of these is refused. */
const char *tolk_action_state(const char *action, json_t *msg, tolk_state_change_t *out);

/* setSpeech: enabled must be a boolean. */
const char *tolk_action_speech(json_t *msg, bool *enabled);

/* A connect parameter seq (lastSeq): decimal digits only, 0..2^31-1. */
bool tolk_parse_seq(const char *text, long *out);

/* A connect flag (speech): 1 for "1"/"true", 0 for absent/"0"/"false",
   -1 for anything else. */
int tolk_parse_flag(const char *text);

#endif
