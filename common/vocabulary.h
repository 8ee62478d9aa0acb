/*  vocabulary.h -- a session's vocabulary: the names and terms a speaker
    gives so the recogniser knows them and captions keep their case.

    A speaker sends the list with createSession (the `vocabulary` query
    parameter, comma separated) or with setVocabulary (a JSON array of
    strings). This module is the one place that decides what an entry may
    be, so the control worker, the audio worker (reading it back from
    Redis) and the fuzz target (tests/fuzz/fuzz_vocabulary.c) agree:

    - each entry is trimmed, and runs of spaces inside it become one space;
      an entry that is empty after trimming is skipped;
    - it must be valid UTF-8 (shortest form, no surrogates), without control
      characters (C0, DEL, C1: a tab or a newline is refused), and at most
      TOLK_VOCAB_ENTRY_MAX bytes once trimmed;
    - entries that differ only in ASCII case are one entry, the first kept
      ("ZeroMQ" then "zeromq" keeps "ZeroMQ"): an entry's case is what
      captions show, so two cases of one entry cannot both be kept;
    - at most TOLK_VOCAB_MAX entries after that.

    Stored in Redis as the entries joined by '\n' (which no entry holds).
*/
#ifndef TOLK_VOCABULARY_H
#define TOLK_VOCABULARY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TOLK_VOCAB_MAX       200 /* entries in one vocabulary */
#define TOLK_VOCAB_ENTRY_MAX 64  /* bytes of one entry, trimmed */
/* Bytes of the stored form at most: every entry and its separator. */
#define TOLK_VOCAB_TEXT_MAX (TOLK_VOCAB_MAX * (TOLK_VOCAB_ENTRY_MAX + 1))
/* Bytes of a refusal message. */
#define TOLK_VOCAB_ERR_MAX 96

/* A parsed vocabulary: entries in the order given, deduplicated. */
typedef struct {
    int n;                                                  /* entries used */
    char entries[TOLK_VOCAB_MAX][TOLK_VOCAB_ENTRY_MAX + 1]; /* trimmed, NUL-terminated */
} tolk_vocab_t;

/* Empty v. */
void tolk_vocab_clear(tolk_vocab_t *v);

/* Add one entry of len bytes (not NUL-terminated). number is its place in
   what the speaker sent (from 1), for the message. Returns true, or false
   with the refusal in err (TOLK_VOCAB_ERR_MAX bytes); v is unchanged then. */
bool tolk_vocab_add(tolk_vocab_t *v, const char *text, size_t len, int number, char *err);

/* Parse len bytes of entries separated by sep (',' for the query
   parameter, '\n' for the stored form) into v (cleared first). Returns
   true, or false with the refusal in err and v empty. */
bool tolk_vocab_parse_list(tolk_vocab_t *v, const char *text, size_t len, char sep, char *err);

/* Parse a JSON value that must be an array of strings (at most
   TOLK_VOCAB_MAX * 4 elements, so a flood of empty or duplicate strings
   is refused without work). Same results as tolk_vocab_parse_list. */
bool tolk_vocab_parse_json(tolk_vocab_t *v, const json_t *value, char *err);

/* The stored form: entries joined by sep, malloc'd ("" for none); NULL
   when out of memory. */
char *tolk_vocab_join(const tolk_vocab_t *v, const char *sep);

/* Index of the entry equal to text (len bytes) ignoring ASCII case, or -1. */
int tolk_vocab_find(const tolk_vocab_t *v, const char *text, size_t len);

#endif
