/*  frame.c -- text frame checks and the action routing table; see frame.h. */
#include "frame.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

/* Every action the protocol knows, and the worker kind that owns it. */
static const struct {
    const char *name;
    frame_route_t route;
} s_actions[] = {
    /* one action per line, as the protocol lists them */
    /* clang-format off */
    {"heartbeat", FRAME_ROUTE_HEARTBEAT},
    {"pauseBroadcast", FRAME_ROUTE_CONTROL},
    {"resumeBroadcast", FRAME_ROUTE_CONTROL},
    {"muteBroadcast", FRAME_ROUTE_CONTROL},
    {"unmuteBroadcast", FRAME_ROUTE_CONTROL},
    {"setVolume", FRAME_ROUTE_CONTROL},
    {"speakerStateChange", FRAME_ROUTE_CONTROL},
    {"endSession", FRAME_ROUTE_CONTROL},
    {"pausePlayback", FRAME_ROUTE_CONTROL},
    {"resumePlayback", FRAME_ROUTE_CONTROL},
    {"changeLanguage", FRAME_ROUTE_CONTROL},
    {"setSpeech", FRAME_ROUTE_CONTROL},
    {"setVocabulary", FRAME_ROUTE_CONTROL},
    {"getSessionStatus", FRAME_ROUTE_STATUS},
    {"sendAudio", FRAME_ROUTE_AUDIO},
    /* clang-format on */
};

static int s_refuse(frame_verdict_t *v, int status, const char *code, const char *message)
{
    v->route = FRAME_ROUTE_NONE;
    v->status = status;
    v->code = code;
    v->message = message;
    return -1;
}

int frame_check_text(const char *text, size_t len, frame_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    v->route = FRAME_ROUTE_NONE;
    json_error_t err;
    /* the 128 KB message cap is enforced before we get here, so parsing is bounded */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        if (len > FRAME_CONTROL_MAX)
            return s_refuse(v, 413, "PAYLOAD_TOO_LARGE",
                            "control messages are limited to 4096 bytes");
        return s_refuse(v, 400, "INVALID_MESSAGE", "the message is not a JSON object");
    }
    json_t *action = json_object_get(root, "action");
    const char *name = json_is_string(action) ? json_string_value(action) : NULL;
    if (name && strlen(name) < sizeof v->action)
        strcpy(v->action, name);
    bool has_action = name != NULL;
    json_decref(root); /* name dangles from here on: use v->action */
    if (!has_action)
        return s_refuse(v, 400, "INVALID_MESSAGE", "the message has no action");
    name = v->action;
    for (size_t i = 0; i < sizeof s_actions / sizeof s_actions[0]; i++) {
        if (strcmp(name, s_actions[i].name) != 0)
            continue;
        /* audio in JSON form carries base64 up to 32 KB: only the 128 KB cap applies */
        /* a whole vocabulary (200 entries of 64 bytes) needs more than 4 KB */
        bool vocabulary = strcmp(name, "setVocabulary") == 0;
        if (vocabulary && len > FRAME_VOCABULARY_MAX)
            return s_refuse(v, 413, "PAYLOAD_TOO_LARGE",
                            "setVocabulary messages are limited to 16384 bytes");
        if (!vocabulary && s_actions[i].route != FRAME_ROUTE_AUDIO && len > FRAME_CONTROL_MAX)
            return s_refuse(v, 413, "PAYLOAD_TOO_LARGE",
                            "control messages are limited to 4096 bytes");
        v->route = s_actions[i].route;
        v->rate_limited = s_actions[i].route != FRAME_ROUTE_AUDIO;
        return 0;
    }
    if (len > FRAME_CONTROL_MAX)
        return s_refuse(v, 413, "PAYLOAD_TOO_LARGE", "control messages are limited to 4096 bytes");
    return s_refuse(v, 400, "INVALID_ACTION", "unknown action");
}

tolk_worker_kind_t frame_route_kind(frame_route_t route)
{
    switch (route) {
        case FRAME_ROUTE_CONTROL:
        case FRAME_ROUTE_STATUS:
        case FRAME_ROUTE_AUDIO:
            return (tolk_worker_kind_t)route;
        default:
            return TOLK_WORKER_UNKNOWN;
    }
}
