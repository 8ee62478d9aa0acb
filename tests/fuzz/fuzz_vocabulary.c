/*  fuzz_vocabulary.c -- libFuzzer target for the session vocabulary
    (common/vocabulary.c). The input is tried as the createSession query
    value (comma separated), as the stored form ('\n' separated) and, when
    it is JSON, as setVocabulary's array. Whatever is accepted must keep
    the module's promises: at most TOLK_VOCAB_MAX entries, each non-empty,
    at most TOLK_VOCAB_ENTRY_MAX bytes, no control byte, no space at either
    end, no two equal ignoring case; and the stored form parses back to the
    same entries.
*/
#include "vocabulary.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Abort unless v keeps every promise of vocabulary.h. */
static void s_check(const tolk_vocab_t *v)
{
    if (v->n < 0 || v->n > TOLK_VOCAB_MAX)
        abort();
    for (int i = 0; i < v->n; i++) {
        const char *e = v->entries[i];
        size_t len = strnlen(e, TOLK_VOCAB_ENTRY_MAX + 1);
        if (len == 0 || len > TOLK_VOCAB_ENTRY_MAX || e[0] == ' ' || e[len - 1] == ' ')
            abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)e[k] < 0x20 || e[k] == 0x7F)
                abort();
        if (tolk_vocab_find(v, e, len) != i)
            abort();
    }
    /* the stored form reads back the same */
    char *joined = tolk_vocab_join(v, "\n");
    if (!joined)
        return;
    static tolk_vocab_t back;
    char err[TOLK_VOCAB_ERR_MAX];
    if (!tolk_vocab_parse_list(&back, joined, strlen(joined), '\n', err) || back.n != v->n)
        abort();
    for (int i = 0; i < v->n; i++)
        if (strcmp(back.entries[i], v->entries[i]) != 0)
            abort();
    free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tolk_vocab_t v;
    char err[TOLK_VOCAB_ERR_MAX];
    if (size > 32 * 1024)
        return 0;
    if (tolk_vocab_parse_list(&v, (const char *)data, size, ',', err))
        s_check(&v);
    else if (v.n != 0 || !err[0])
        abort();
    if (tolk_vocab_parse_list(&v, (const char *)data, size, '\n', err))
        s_check(&v);
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (j) {
        if (tolk_vocab_parse_json(&v, j, err))
            s_check(&v);
        else if (v.n != 0 || !err[0])
            abort();
        json_decref(j);
    }
    return 0;
}
