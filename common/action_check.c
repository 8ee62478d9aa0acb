/*  action_check.c -- client action and connect parameter checks; see
    action_check.h. */
#include "action_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON number (integer or real) that is a finite value. */
static bool s_is_number(json_t *v)
{
    return json_is_integer(v) || (json_is_real(v) && isfinite(json_real_value(v)));
}

/* A volume: a number from 0.0 to 1.0. */
static bool s_is_volume(json_t *v)
{
    return s_is_number(v) && json_number_value(v) >= 0.0 && json_number_value(v) <= 1.0;
}

/* Append one field/value pair. */
static void s_set(tolk_state_change_t *out, const char *field, const char *value)
{
    out->fields[out->n++] = field;
    out->fields[out->n++] = value;
}

const char *tolk_action_state(const char *action, json_t *msg, tolk_state_change_t *out)
{
    memset(out, 0, sizeof *out);
    static const struct {
        const char *action, *field, *value, *notification;
    } flags[] = {{"pauseBroadcast", "isPaused", "1", "broadcastPaused"},
                 {"resumeBroadcast", "isPaused", "0", "broadcastResumed"},
                 {"muteBroadcast", "isMuted", "1", "broadcastMuted"},
                 {"unmuteBroadcast", "isMuted", "0", "broadcastUnmuted"}};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if (strcmp(action, flags[i].action) == 0) {
            s_set(out, flags[i].field, flags[i].value);
            out->notification = flags[i].notification;
            return NULL;
        }
    if (strcmp(action, "setVolume") == 0) {
        json_t *v = json_object_get(msg, "volumeLevel");
        if (!s_is_volume(v))
            return "volumeLevel must be a number from 0.0 to 1.0";
        snprintf(out->volume, sizeof out->volume, "%.4g", json_number_value(v));
        s_set(out, "volume", out->volume);
        out->notification = "volumeChanged";
        return NULL;
    }
    if (strcmp(action, "speakerStateChange") != 0)
        return "not a broadcast state action";
    json_t *st = json_object_get(msg, "state");
    if (!json_is_object(st) || json_object_size(st) == 0)
        return "state must be an object with isPaused, isMuted or volume";
    const char *key;
    json_t *val;
    json_object_foreach(st, key, val)
    {
        /* each key at most once: jansson keeps the last of duplicates, and
           frame.c refuses duplicate keys before a worker sees them */
        if (strcmp(key, "isPaused") == 0 && json_is_boolean(val))
            s_set(out, "isPaused", json_is_true(val) ? "1" : "0");
        else if (strcmp(key, "isMuted") == 0 && json_is_boolean(val))
            s_set(out, "isMuted", json_is_true(val) ? "1" : "0");
        else if (strcmp(key, "volume") == 0 && s_is_volume(val)) {
            snprintf(out->volume, sizeof out->volume, "%.4g", json_number_value(val));
            s_set(out, "volume", out->volume);
        } else {
            memset(out, 0, sizeof *out);
            return "state accepts isPaused and isMuted (booleans) and volume (0.0 to 1.0)";
        }
    }
    out->notification = "speakerStateChanged";
    return NULL;
}

const char *tolk_action_speech(json_t *msg, bool *enabled)
{
    json_t *en = json_object_get(msg, "enabled");
    if (!json_is_boolean(en))
        return "enabled must be true or false";
    *enabled = json_is_true(en);
    return NULL;
}

bool tolk_parse_seq(const char *text, long *out)
{
    if (!text || !text[0] || strlen(text) > 10)
        return false;
    for (const char *c = text; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    long v = strtol(text, NULL, 10);
    if (v > 2147483647L)
        return false;
    *out = v;
    return true;
}

int tolk_parse_flag(const char *text)
{
    if (!text || strcmp(text, "0") == 0 || strcmp(text, "false") == 0)
        return 0;
    if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0)
        return 1;
    return -1;
}
