/*  readable.h -- a bare recogniser's words as a reader expects a caption.

    pocketsphinx says "he was not an ill disposed young man": lower case,
    no punctuation. A listener reads, and Apertium translates, a sentence
    better: "He was not an ill disposed young man." This module makes one
    of the words an engine reports (engines that punctuate, like a
    Whisper-class server, are left as they are), and gives the speaker's
    vocabulary its case ("Dashwood", "ZeroMQ"). It changes the case of
    letters and adds a full stop, never a word, so the word error rate and
    the stability of partials are untouched.
*/
#ifndef TOLK_READABLE_H
#define TOLK_READABLE_H

#include <stdbool.h>

/* A malloc'd copy of text (NULL: "") as words separated by single spaces:
   runs of whitespace and control characters made one space, the ends
   trimmed, so that texts compare word by word with strcmp. What every
   engine's text goes through first (a server's too). NULL when out of
   memory. */
char *tolk_readable_words(const char *text);

/* The readable form of text (words separated by single spaces, as asr.c
   normalises them): the first word capitalised, the pronoun "i" and its
   contractions ("i'm", "i'll", "i've", "i'd") as "I...", and, when final
   (the utterance is over), a full stop unless the text already ends in
   one of . ? ! Letters are ASCII: the models tolk ships are English.
   Returns a malloc'd string, NULL when out of memory. */
char *tolk_readable(const char *text, bool final);

/* The same, and the session's vocabulary (n entries, single-spaced, as
   common/vocabulary.h keeps them) in its case: a run of whole words equal
   to an entry ignoring ASCII case is replaced by the entry ("john
   dashwood" -> "John Dashwood", "zeromq" -> "ZeroMQ"), the longest entry
   first, wherever it stands (the first word of a sentence keeps the
   entry's case: "iPhone"). Lengths never change, so neither do the word
   error rate and the stability of partials. */
char *tolk_readable_vocab(const char *text, bool final, const char *const *entries, int n);

#endif
