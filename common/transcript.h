/*  transcript.h -- a session's finals as a file the speaker keeps: WebVTT
    (captions for the recording) or plain text (the words). Pure: turns the
    stored caption messages into text, so it is unit tested and fuzzed.
*/
#ifndef TOLK_TRANSCRIPT_H
#define TOLK_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    TOLK_TRANSCRIPT_VTT = 0,
    TOLK_TRANSCRIPT_TEXT = 1,
} tolk_transcript_format_t;

#define TOLK_TRANSCRIPT_CAPTION_MAX (64 * 1024) /* a stored caption longer than this is skipped */

/* Parse "vtt" or "text"; -1 for anything else. */
int tolk_transcript_format_parse(const char *name);

/* What the file starts with ("WEBVTT\n\n", or ""). */
const char *tolk_transcript_header(tolk_transcript_format_t format);

/* One final (its stored caption message, JSON) as a cue or a line; NULL
   when the message is not a usable caption. The caller frees. */
char *tolk_transcript_cue(const char *json, size_t len, tolk_transcript_format_t format);

#endif
