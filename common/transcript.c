/*  transcript.c -- captions to WebVTT or text; see transcript.h. */
#include "transcript.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tolk_transcript_format_parse(const char *name)
{
    if (!name || strcmp(name, "vtt") == 0)
        return TOLK_TRANSCRIPT_VTT;
    if (strcmp(name, "text") == 0)
        return TOLK_TRANSCRIPT_TEXT;
    return -1;
}

const char *tolk_transcript_header(tolk_transcript_format_t format)
{
    return format == TOLK_TRANSCRIPT_VTT ? "WEBVTT\n\n" : "";
}

/* hh:mm:ss.mmm, WebVTT's timestamp. */
static void s_stamp(char *out, size_t cap, long long ms)
{
    if (ms < 0)
        ms = 0;
    snprintf(out, cap, "%02lld:%02lld:%02lld.%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
             ms % 1000);
}

/* Copy text onto one line: line breaks and control characters become
   spaces; for WebVTT, & < > are escaped and "-->" cannot appear. */
static char *s_line(const char *text, bool vtt)
{
    size_t n = strlen(text);
    char *out = malloc(n * 5 + 1); /* "&amp;" is the longest expansion */
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x20 || ch == 0x7f)
            out[j++] = ' ';
        else if (vtt && ch == '&')
            j += (size_t)sprintf(out + j, "&amp;");
        else if (vtt && ch == '<')
            j += (size_t)sprintf(out + j, "&lt;");
        else if (vtt && ch == '>')
            j += (size_t)sprintf(out + j, "&gt;");
        else
            out[j++] = (char)ch;
    }
    out[j] = 0;
    return out;
}

char *tolk_transcript_cue(const char *json, size_t len, tolk_transcript_format_t format)
{
    if (!json || len > TOLK_TRANSCRIPT_CAPTION_MAX)
        return NULL;
    json_error_t err;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    json_t *t = json_object_get(o, "text"), *s = json_object_get(o, "startMs"),
           *e = json_object_get(o, "endMs"), *q = json_object_get(o, "seq");
    char *cue = NULL;
    if (json_is_string(t) && json_string_value(t)[0]) {
        char *line = s_line(json_string_value(t), format == TOLK_TRANSCRIPT_VTT);
        if (line && format == TOLK_TRANSCRIPT_TEXT) {
            if (asprintf(&cue, "%s\n", line) < 0)
                cue = NULL;
        } else if (line) {
            long long start = json_is_integer(s) ? json_integer_value(s) : 0;
            long long end = json_is_integer(e) ? json_integer_value(e) : start;
            if (end <= start)
                end = start + 1; /* a cue must not end before it starts */
            char a[32], b[32];
            s_stamp(a, sizeof a, start);
            s_stamp(b, sizeof b, end);
            if (asprintf(&cue, "%lld\n%s --> %s\n%s\n\n",
                         json_is_integer(q) ? json_integer_value(q) : 0LL, a, b, line) < 0)
                cue = NULL;
        }
        free(line);
    }
    json_decref(o);
    return cue;
}
