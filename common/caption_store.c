/*  caption_store.c -- Redis streams of finals; see caption_store.h. */
#include "caption_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: session hist histlangs gws. ARGV: seqfield head tail segment max
   keep_ms lang. The seq, the history entry and the gateways in one step;
   false when the session has ended. An XADD refused (an id below the
   stream's top after someone reset the counter) still sends the caption.
   A segment already among the newest S_DUP_WINDOW entries is not stored
   again: its seq comes back with a third element, 1. Two workers can
   finish the same utterance (one stopping in order while the next fills
   the language in from the history), and a store whose reply was lost is
   tried again; either way the listeners get it once, under one seq. */
#define S_DUP_WINDOW "32"
static tolk_redis_script_t s_append = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "if ARGV[4] ~= '' then\n"
    "  for _, e in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', " S_DUP_WINDOW "))\n"
    "  do\n"
    "    local f = e[2]\n"
    "    for i = 1, #f - 1, 2 do\n"
    "      if f[i] == 'g' and f[i + 1] == ARGV[4] then\n"
    "        return {tonumber(string.match(e[1], '^(%d+)')), redis.call('HKEYS', KEYS[4]), 1}\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local seq = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
    "redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], seq .. '-0',\n"
    "  'c', ARGV[2] .. seq .. ARGV[3], 'g', ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[6])\n"
    "redis.call('SADD', KEYS[3], ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[3], ARGV[6])\n"
    "return {seq, redis.call('HKEYS', KEYS[4])}\n",
    ""};

int tolk_captions_append(tolk_redis_t *r, const char *sid, const char *lang, const char *segment,
                         const char *json_head, const char *json_tail, int history_max,
                         int64_t keep_ms, tolk_caption_sent_t *out)
{
    char session[TOLK_ID_MAX + 32], hist[TOLK_ID_MAX + 48], langs[TOLK_ID_MAX + 32],
        gws[TOLK_ID_MAX + 32], field[TOLK_LANG_MAX + 8], max_s[16], keep_s[24];
    snprintf(session, sizeof session, "tolk:{%s}:session", sid);
    snprintf(hist, sizeof hist, "tolk:{%s}:hist:%s", sid, lang);
    snprintf(langs, sizeof langs, "tolk:{%s}:histlangs", sid);
    snprintf(gws, sizeof gws, "tolk:{%s}:gws", sid);
    snprintf(field, sizeof field, "seq:%s", lang);
    snprintf(max_s, sizeof max_s, "%d", history_max > 0 ? history_max : 1);
    snprintf(keep_s, sizeof keep_s, "%lld", (long long)(keep_ms > 0 ? keep_ms : 1));
    const char *argv[] = {session,   hist,    langs, gws,    field, json_head,
                          json_tail, segment, max_s, keep_s, lang};
    memset(out, 0, sizeof *out);
    redisReply *rep = tolk_redis_eval(r, &s_append, 4, 7, argv);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2) {
        out->seq = (long)tolk_reply_int(rep->element[0], 0);
        out->duplicate = rep->elements == 3;
        const redisReply *g = rep->element[1];
        for (size_t i = 0;
             g->type == REDIS_REPLY_ARRAY && i < g->elements && out->ngws < TOLK_STORE_MAX_GWS;
             i++) {
            const char *v = tolk_reply_str(g->element[i]);
            if (v && strlen(v) <= TOLK_ID_MAX)
                snprintf(out->gws[out->ngws++], TOLK_ID_MAX + 1, "%s", v);
        }
    }
    freeReplyObject(rep);
    return 0;
}

long tolk_captions_last_seq(tolk_redis_t *r, const char *sid, const char *lang)
{
    redisReply *rep = tolk_redis_command(r, "HGET tolk:{%s}:session seq:%s", sid, lang);
    if (!rep)
        return -1;
    long seq = (long)tolk_reply_int(rep, 0);
    freeReplyObject(rep);
    return seq;
}

/* One stream entry [id, [field, value, ...]] into rec; false if malformed. */
static bool s_entry(const redisReply *e, tolk_caption_rec_t *rec)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return false;
    const char *id = tolk_reply_str(e->element[0]);
    const redisReply *f = e->element[1];
    if (!id || f->type != REDIS_REPLY_ARRAY)
        return false;
    memset(rec, 0, sizeof *rec);
    rec->seq = strtol(id, NULL, 10);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = tolk_reply_str(f->element[i]);
        const redisReply *v = f->element[i + 1];
        if (!k || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k, "c") == 0 && !rec->json)
            rec->json = strndup(v->str, v->len);
        else if (strcmp(k, "g") == 0)
            snprintf(rec->segment, sizeof rec->segment, "%.*s", (int)v->len, v->str);
    }
    if (!rec->json || rec->seq <= 0) {
        free(rec->json);
        return false;
    }
    return true;
}

int tolk_captions_read(tolk_redis_t *r, const char *sid, const char *lang, long after_seq, int max,
                       tolk_caption_rec_t **recs)
{
    *recs = NULL;
    if (max <= 0)
        return 0;
    if (max > TOLK_CAPTIONS_READ_MAX)
        max = TOLK_CAPTIONS_READ_MAX;
    /* newest first, so that when more than max qualify the newest are kept */
    redisReply *rep;
    if (after_seq < 0)
        rep = tolk_redis_command(r, "XREVRANGE tolk:{%s}:hist:%s + - COUNT %d", sid, lang, max);
    else
        rep = tolk_redis_command(r, "XREVRANGE tolk:{%s}:hist:%s + %ld-0 COUNT %d", sid, lang,
                                 after_seq + 1, max);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    int n = 0;
    tolk_caption_rec_t *out = rep->elements ? calloc(rep->elements, sizeof *out) : NULL;
    if (rep->elements && !out) {
        freeReplyObject(rep);
        return -1;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        size_t at = rep->elements - 1 - i;
        if (s_entry(rep->element[at], &out[n]))
            n++;
    }
    freeReplyObject(rep);
    if (!n) {
        free(out);
        out = NULL;
    }
    *recs = out;
    return n;
}

void tolk_captions_free(tolk_caption_rec_t **recs_p, int n)
{
    if (!recs_p || !*recs_p)
        return;
    for (int i = 0; i < n; i++)
        free((*recs_p)[i].json);
    free(*recs_p);
    *recs_p = NULL;
}

int tolk_captions_owner(tolk_redis_t *r, const char *sid, char *sub, size_t sub_cap, char *source,
                        size_t source_cap)
{
    static const char *keys[] = {"session", "transcript"};
    for (int k = 0; k < 2; k++) {
        redisReply *rep =
            tolk_redis_command(r, "HMGET tolk:{%s}:%s speakerSub sourceLanguage", sid, keys[k]);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            if (rep)
                freeReplyObject(rep);
            return TOLK_STORE_DOWN;
        }
        const char *s = tolk_reply_str(rep->element[0]);
        const char *l = tolk_reply_str(rep->element[1]);
        if (s && l) {
            snprintf(sub, sub_cap, "%s", s);
            snprintf(source, source_cap, "%s", l);
            freeReplyObject(rep);
            return 0;
        }
        freeReplyObject(rep);
    }
    return TOLK_STORE_NOT_FOUND;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tolk_captions_languages(tolk_redis_t *r, const char *sid, char *out, size_t cap)
{
    out[0] = 0;
    redisReply *rep = tolk_redis_command(r, "SMEMBERS tolk:{%s}:histlangs", sid);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    const char *langs[64];
    int n = 0;
    for (size_t i = 0; i < rep->elements && n < 64; i++) {
        const char *l = tolk_reply_str(rep->element[i]);
        if (l && tolk_language_code_valid(l))
            langs[n++] = l;
    }
    qsort(langs, (size_t)n, sizeof *langs, s_cmp);
    size_t used = 0;
    for (int i = 0; i < n && used + 4 < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", langs[i]);
    freeReplyObject(rep);
    return n;
}
