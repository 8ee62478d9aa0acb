/*  stream.c -- one session's recognition and ordered caption lanes; see
    stream.h. */
#include "stream.h"
#include "asr.h"
#include "caption_store.h"
#include "frontend.h"
#include "log.h"
#include "session_store.h"
#include "speech.h"
#include "vocabulary.h"
#include "whisper.h"

#include <jansson.h>
#include <string.h>

#define STREAM_LANES_MAX  TOLK_TRANSLATOR_MAX_TARGETS
#define STREAM_REFRESH_MS 1000  /* how stale the languages and gateways may get */
#define STREAM_GAP_MS     1500  /* no audio this long ends the utterance in progress */
#define STREAM_IDLE_MS    60000 /* no audio this long closes the stream */
/* how long a final waits at the head of its lane for Redis to come back
   (a restart takes about a second) before it is given up */
#define STREAM_STORE_RETRY_MS 10000
#define STREAM_PCM_SAMPLES    (32 * 1024 / 2)
#define STREAM_SPEECH_PART    (32 * 1024) /* PCM bytes per spoken-translation frame */
/* bytes of the second pass's prompt: whole entries, comma separated.
   Whisper reads at most 224 prompt tokens; 800 bytes of names stays under */
#define STREAM_PROMPT_MAX 800

typedef struct lane_s lane_t;

/* One caption on its way out: waits in its lane until every caption
   before it has gone, and until its translation is back. */
typedef struct item_s {
    struct item_s *next;
    lane_t *lane;     /* NULL once the stream is gone: the translation callback frees it */
    uint32_t segment; /* the utterance it belongs to */
    char segid[32];   /* its segmentId: "<run>-<n>", or a past run's for a backfilled final */
    bool is_final;
    bool pending;      /* a translation is out */
    bool done;         /* text is final and may be sent */
    bool superseded;   /* a newer result of the same utterance came: drop this partial */
    bool untranslated; /* translation failed: text is the source */
    char *text;        /* what the listener reads */
    char *source_text; /* the transcript it came from */
    int64_t start_ms, end_ms;
    int64_t store_failed_ms; /* a final Redis could not store yet: when that first happened */
    uint64_t made_ns;        /* when the recogniser gave it: caption_latency starts here */
} item_t;

/* The captions of one language, in recognition order. */
struct lane_s {
    char lang[TOLK_LANG_MAX + 1];
    stream_t *stream;
    item_t *head, *tail;
    long seq_last;  /* seq of the last final sent, as Redis counted it */
    bool seq_known; /* seq_last was read from Redis */
    bool listened;  /* someone listens in this language now */
    bool spoken;    /* someone listening in it asked to hear the translation */
};

struct stream_s {
    audio_worker_t *worker;
    char sid[TOLK_ID_MAX + 1];
    char source[TOLK_LANG_MAX + 1]; /* the speaker's language */
    tolk_asr_stream_t *asr;
    tolk_frontend_t *frontend; /* asr_frontend = on: cleans the audio first; else NULL */
    uint32_t epoch;            /* which recogniser run of this session: keeps segment ids unique */
    int64_t offset_ms;         /* stream start relative to the session's creation */
    int64_t last_audio_ms;     /* wall clock of the last chunk */
    int64_t refreshed_ms;      /* last read of languages and gateways */
    bool fed_since_finish;     /* an utterance may be open */
    bool dead;                 /* the session ended: stop */
    lane_t lanes[STREAM_LANES_MAX];
    int nlanes;
    char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1]; /* gateways hosting members */
    int ngws;
    int16_t pcm[STREAM_PCM_SAMPLES];                         /* aligned copy of a chunk */
    int16_t clean[STREAM_PCM_SAMPLES + TOLK_FRONTEND_FRAME]; /* the front end's output */
    /* the second pass (asr_engine = whisper): the last
       TOLK_WHISPER_MAX_SAMPLES of audio, so an utterance's samples can be
       sent when pocketsphinx ends it; NULL without a second pass */
    int16_t *ring;
    uint64_t fed;        /* samples fed since the stream opened: the recogniser's clock */
    long long vocab_rev; /* the session's vocabRev the recogniser has (0: none yet) */
    long long seen_rev;  /* the vocabRev of the last snapshot */
    char *prompt;        /* the vocabulary as the second pass's prompt; NULL for none */
};

/* One utterance at the second pass: its final in every lane, held until
   the engine answers or gives up. Freed by the answer's callback. */
typedef struct {
    item_t *items[STREAM_LANES_MAX]; /* lane NULL: the stream is gone, free it */
    int n;                           /* items used */
} pass_t;

/* ----------------------------------------------------------- lanes */

static lane_t *s_lane(stream_t *self, const char *lang, bool create)
{
    for (int i = 0; i < self->nlanes; i++)
        if (strcmp(self->lanes[i].lang, lang) == 0)
            return &self->lanes[i];
    if (!create || self->nlanes == STREAM_LANES_MAX)
        return NULL;
    lane_t *l = &self->lanes[self->nlanes++];
    memset(l, 0, sizeof *l);
    snprintf(l->lang, sizeof l->lang, "%s", lang);
    l->stream = self;
    return l;
}

static void s_item_free(item_t *it)
{
    free(it->text);
    free(it->source_text);
    free(it);
}

/* Send one message to the listeners of lane l on every gateway listed:
   a caption (text) or, with TOLK_FLAG_SPEECH, a frame of speech. */
static void s_send_lane(stream_t *self, lane_t *l, uint32_t flags, long seq, const void *payload,
                        size_t len, char gws[][TOLK_ID_MAX + 1], int ngws)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_PUBLISH);
    tolk_envelope_set_str(env.session, sizeof env.session, self->sid);
    tolk_envelope_set_str(env.worker, sizeof env.worker, self->worker->id);
    tolk_envelope_set_str(env.lang, sizeof env.lang, l->lang);
    env.audience = TOLK_AUDIENCE_LANGUAGE;
    env.flags = flags;
    env.seq = seq > 0 ? (uint64_t)seq : 0;
    env.payload = payload;
    env.payload_len = len;
    env.sent_ns = tolk_now_ns();
    for (int i = 0; i < ngws; i++)
        tolk_gwlink_send(self->worker->link, gws[i], &env);
}

/* Speak a final to the listeners of its language who asked to hear it:
   synthesised once, whatever their number, and sent as binary frames of
   [u16 header length][JSON header][PCM s16le mono] (docs/protocol.md). */
static void s_speak(stream_t *self, lane_t *l, item_t *it, long seq, tolk_caption_sent_t *to)
{
    audio_worker_t *w = self->worker;
    int16_t *pcm = NULL;
    size_t samples = 0;
    if (!w->speech || tolk_speech_synthesize(w->speech, l->lang, it->text, &pcm, &samples) != 0) {
        w->speech_failed++;
        return;
    }
    w->speech_synth++;
    size_t bytes = samples * 2, parts = (bytes + STREAM_SPEECH_PART - 1) / STREAM_SPEECH_PART;
    uint8_t *frame = malloc(2 + 512 + STREAM_SPEECH_PART);
    for (size_t p = 0; frame && p < parts; p++) {
        size_t off = p * STREAM_SPEECH_PART;
        size_t len = bytes - off < STREAM_SPEECH_PART ? bytes - off : STREAM_SPEECH_PART;
        int hl = snprintf((char *)frame + 2, 512,
                          "{\"type\":\"speech\",\"sessionId\":\"%s\",\"language\":\"%s\","
                          "\"seq\":%ld,\"segmentId\":\"%s\",\"part\":%zu,\"last\":%s,"
                          "\"sampleRate\":%d}",
                          self->sid, l->lang, seq, it->segid, p, p + 1 == parts ? "true" : "false",
                          tolk_speech_rate(w->speech));
        if (hl <= 0 || hl >= 512)
            break;
        frame[0] = (uint8_t)(hl >> 8);
        frame[1] = (uint8_t)hl;
        memcpy(frame + 2 + hl, (const uint8_t *)pcm + off, len);
        s_send_lane(self, l, TOLK_FLAG_SPEECH, seq, frame, 2 + (size_t)hl + len, to->gws, to->ngws);
    }
    free(frame);
    free(pcm);
}

/* Send a final: its seq and its place in the history come from one script,
   which also names the gateways hosting members at that instant. text is
   the caption without its seq; the seq goes last. */
static int s_publish_final(stream_t *self, lane_t *l, item_t *it, const char *text)
{
    audio_worker_t *w = self->worker;
    size_t n = strlen(text);
    char *head = malloc(n + 8);
    if (!head || n < 2) {
        free(head);
        return 0;
    }
    memcpy(head, text, n - 1); /* drop the closing brace */
    memcpy(head + n - 1, ",\"seq\":", 7);
    head[n + 6] = 0;
    tolk_caption_sent_t to;
    int64_t keep_ms = ((int64_t)w->cfg.max_session_s + w->cfg.transcript_retention_s) * 1000;
    int rc = tolk_captions_append(w->redis, self->sid, l->lang, it->segid, head, "}",
                                  w->cfg.history_max, keep_ms, &to);
    if (rc != 0) {
        free(head);
        return -1; /* Redis away: the lane tries again */
    }
    if (to.seq <= 0) {
        self->dead = true; /* the session has ended */
        free(head);
        return 0;
    }
    if (to.duplicate) {
        /* another worker (or our own lost-reply retry) stored it: send it
           under that seq, which a listener who has it drops */
        w->finals_duplicate++;
        l->seq_known = false; /* the lane's count may be behind: read it again */
    } else {
        l->seq_last = to.seq;
        l->seq_known = true;
    }
    char *json = NULL;
    if (asprintf(&json, "%s%ld}", head, to.seq) < 0)
        json = NULL;
    free(head);
    if (!json)
        return 0;
    if (l->listened)
        s_send_lane(self, l, 0, to.seq, json, strlen(json), to.gws, to.ngws);
    if (strcmp(l->lang, self->source) == 0)
        tolk_store_publish(w->link, to.gws, to.ngws, self->sid, TOLK_AUDIENCE_SPEAKER, json, 0, 0);
    free(json);
    if (l->listened && l->spoken && !it->untranslated)
        s_speak(self, l, it, to.seq, &to);
    return 0;
}

/* The last final's seq, read once per lane (a partial carries the next). */
static void s_seq_load(stream_t *self, lane_t *l)
{
    if (l->seq_known)
        return;
    long seq = tolk_captions_last_seq(self->worker->redis, self->sid, l->lang);
    if (seq < 0)
        return; /* Redis away: try again with the next caption */
    l->seq_last = seq;
    l->seq_known = true;
}

/* Send one caption to the listeners of its language (and, for the
   source language, to the speaker, whose console shows what it hears).
   ahead: finals still held before a partial (their seqs come first). */
static int s_publish(stream_t *self, lane_t *l, item_t *it, int ahead)
{
    audio_worker_t *w = self->worker;
    long seq = 0;
    if (!it->is_final) {
        s_seq_load(self, l);
        if (!l->seq_known)
            return 0;
        seq = l->seq_last + 1 + ahead; /* after the finals still held ahead of it */
    }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I}", "type", "caption", "sessionId",
                  self->sid, "language", l->lang, "segmentId", it->segid, "isPartial",
                  !it->is_final, "text", it->text, "startMs", (json_int_t)it->start_ms, "endMs",
                  (json_int_t)it->end_ms, "timestamp", (json_int_t)tolk_now_ms());
    if (!o)
        return 0;
    if (!it->is_final) {
        json_object_set_new(o, "seq", json_integer(seq));
        json_object_set_new(o, "stableText", json_string(it->text));
    }
    if (strcmp(l->lang, self->source) != 0)
        json_object_set_new(o, "sourceText", json_string(it->source_text));
    if (it->untranslated)
        json_object_set_new(o, "untranslated", json_true());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return 0;
    if (it->is_final) {
        int rc = s_publish_final(self, l, it, text);
        free(text);
        if (rc != 0)
            return -1;
        w->finals_out++;
        if (it->made_ns)
            tolk_prom_hist_observe_ns(&w->caption_latency, (int64_t)(tolk_now_ns() - it->made_ns));
        if (it->untranslated)
            w->captions_untranslated++;
        return 0;
    }
    uint32_t flags = TOLK_FLAG_PARTIAL;
    if (l->listened)
        s_send_lane(self, l, flags, 0, text, strlen(text), self->gws, self->ngws);
    if (strcmp(l->lang, self->source) == 0)
        tolk_store_publish(w->link, self->gws, self->ngws, self->sid, TOLK_AUDIENCE_SPEAKER, text,
                           0, flags);
    free(text);
    w->partials_out++;
    return 0;
}

/* Send what is ready at the head of the lane, in order. A final Redis
   could not store (and so could not number) stays at the head, holding
   the lane, and is tried again at the next chunk or tick: while Redis
   restarts, captions wait instead of going out without a seq or being
   lost; after STREAM_STORE_RETRY_MS it is given up and counted. Behind a
   final that is still held (its translation, its second pass), partials
   of the next utterances go out at once with the seq they will have:
   finals keep their order, the words being said do not wait for them. */
static void s_lane_flush(lane_t *l)
{
    while (l->head && l->head->done) {
        item_t *it = l->head;
        if (!it->superseded && !l->stream->dead && s_publish(l->stream, l, it, 0) != 0) {
            int64_t now = tolk_now_ms();
            if (!it->store_failed_ms)
                it->store_failed_ms = now;
            if (now - it->store_failed_ms < STREAM_STORE_RETRY_MS)
                return;
            l->stream->worker->finals_lost++;
            tolk_warn("caption", l->stream->sid, "a %s final was lost: Redis did not come back",
                      l->lang);
        }
        l->head = it->next;
        if (!l->head)
            l->tail = NULL;
        s_item_free(it);
    }
    if (!l->head || l->head->store_failed_ms)
        return;
    int ahead = 0;
    for (item_t *prev = NULL, *it = l->head; it;) {
        item_t *next = it->next;
        if (it->is_final || !it->done) {
            ahead += it->is_final;
            prev = it;
        } else {
            if (!it->superseded && !l->stream->dead)
                s_publish(l->stream, l, it, ahead);
            prev->next = next; /* prev exists: the head is held */
            if (l->tail == it)
                l->tail = prev;
            s_item_free(it);
        }
        it = next;
    }
}

/* The item's text is known: text, or (NULL) the source marked
   untranslated. Then release what is ready in its lane. Out of memory
   drops the item rather than block the lane behind it. */
static void s_item_ready(item_t *it, const char *text)
{
    it->pending = false;
    it->untranslated = text == NULL;
    it->text = strdup(text ? text : it->source_text);
    it->done = true;
    it->superseded |= it->text == NULL;
    s_lane_flush(it->lane);
}

/* The translator's answer (or NULL: failed after its retries). */
static void s_translated(void *arg, const char *target, const char *text)
{
    (void)target;
    item_t *it = arg;
    if (!it->lane) { /* the stream is gone */
        s_item_free(it);
        return;
    }
    s_item_ready(it, text);
}

/* Queue a new caption of recogniser result r on lane l (its text not yet
   known: pending). NULL when out of memory. */
static item_t *s_item_add(stream_t *self, lane_t *l, const tolk_asr_result_t *r)
{
    item_t *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->lane = l;
    it->segment = r->segment;
    snprintf(it->segid, sizeof it->segid, "%u-%u", self->epoch, r->segment);
    it->is_final = r->is_final;
    it->start_ms = self->offset_ms + r->start_ms;
    it->end_ms = self->offset_ms + r->end_ms;
    it->made_ns = tolk_now_ns();
    it->source_text = strdup(r->text);
    if (!it->source_text) {
        free(it);
        return NULL;
    }
    /* older partials of this utterance still queued are stale now */
    for (item_t *o = l->head; o; o = o->next)
        if (!o->is_final && o->segment == r->segment)
            o->superseded = true;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    it->pending = true;
    return it;
}

/* The item's source text is settled: the source language's caption is
   it, another language's is its translation. */
static void s_item_settled(stream_t *self, item_t *it)
{
    if (strcmp(it->lane->lang, self->source) == 0) {
        s_item_ready(it, it->source_text); /* the transcript itself */
        return;
    }
    if (tolk_translator_submit(self->worker->tr, self->source, it->lane->lang, it->source_text,
                               s_translated, it) != 0)
        s_item_ready(it, NULL);
}

/* Queue one recogniser result on a lane, translating it when needed. */
static void s_lane_add(stream_t *self, lane_t *l, const tolk_asr_result_t *r)
{
    item_t *it = s_item_add(self, l, r);
    if (it)
        s_item_settled(self, it);
}

/* The second pass answered (text) or gave up (NULL): every lane's final
   of the utterance gets the engine's text, or keeps the local one. */
static void s_second_done(void *arg, const char *text)
{
    pass_t *pass = arg;
    for (int i = 0; i < pass->n; i++) {
        item_t *it = pass->items[i];
        if (!it->lane) { /* the stream is gone */
            s_item_free(it);
            continue;
        }
        char *better = text ? strdup(text) : NULL;
        if (better) {
            free(it->source_text);
            it->source_text = better;
        }
        s_item_settled(it->lane->stream, it);
    }
    free(pass);
}

/* Send final r's audio to the second pass, its captions held until the
   answer. Returns false when there is no second pass for it (none set
   up, the utterance longer than the ring, out of memory): the local
   final then goes out as it is. */
static bool s_second_pass(stream_t *self, const tolk_asr_result_t *r)
{
    audio_worker_t *w = self->worker;
    if (!w->whisper || !self->ring)
        return false;
    uint64_t from = (uint64_t)(r->start_ms > 0 ? r->start_ms : 0) * 16;
    uint64_t to = (uint64_t)(r->end_ms > 0 ? r->end_ms : 0) * 16;
    if (to > self->fed)
        to = self->fed;
    if (to <= from || self->fed - from > TOLK_WHISPER_MAX_SAMPLES)
        return false;
    size_t n = (size_t)(to - from);
    int16_t *pcm = malloc(n * sizeof *pcm);
    pass_t *pass = calloc(1, sizeof *pass);
    if (!pcm || !pass) {
        free(pcm);
        free(pass);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        pcm[i] = self->ring[(from + i) % TOLK_WHISPER_MAX_SAMPLES];
    for (int i = 0; i < self->nlanes; i++) {
        lane_t *l = &self->lanes[i];
        if (l->listened || strcmp(l->lang, self->source) == 0) {
            item_t *it = s_item_add(self, l, r);
            if (it)
                pass->items[pass->n++] = it;
        }
    }
    if (tolk_whisper_submit(w->whisper, pcm, n, self->source, self->prompt, s_second_done, pass) !=
        0)
        s_second_done(pass, NULL);
    free(pcm);
    return true;
}

/* ------------------------------------------------------ recognition */

/* A recogniser result: one caption per language someone listens in. */
static void s_on_result(void *arg, const tolk_asr_result_t *r)
{
    stream_t *self = arg;
    if (!r->text || !r->text[0] || self->dead)
        return;
    if (r->is_final && s_second_pass(self, r))
        return;
    for (int i = 0; i < self->nlanes; i++) {
        lane_t *l = &self->lanes[i];
        bool source = strcmp(l->lang, self->source) == 0;
        if (l->listened || source)
            s_lane_add(self, l, r);
    }
}

/* A language has listeners again: the last catchup_finals source finals
   that its history lacks (matched by segmentId) are translated and queued
   ahead of anything new, so the first listener of a language also finds
   what was just said. They get this language's next seqs. */
static void s_backfill(stream_t *self, lane_t *l)
{
    audio_worker_t *w = self->worker;
    int want = w->cfg.catchup_finals;
    tolk_caption_rec_t *have = NULL, *src = NULL;
    int nhave = tolk_captions_read(w->redis, self->sid, l->lang, -1, want, &have);
    int nsrc =
        nhave < 0 ? -1 : tolk_captions_read(w->redis, self->sid, self->source, -1, want, &src);
    for (int i = 0; i < nsrc; i++) {
        bool known = false;
        for (int j = 0; j < nhave && !known; j++)
            known = strcmp(have[j].segment, src[i].segment) == 0;
        json_error_t jerr;
        json_t *o = known ? NULL : json_loads(src[i].json, 0, &jerr);
        const char *text = json_string_value(json_object_get(o, "text"));
        item_t *it = text && text[0] ? calloc(1, sizeof *it) : NULL;
        if (it && (it->source_text = strdup(text))) {
            it->lane = l;
            it->segment = UINT32_MAX; /* never an utterance in progress */
            snprintf(it->segid, sizeof it->segid, "%s", src[i].segment);
            it->is_final = true;
            it->start_ms = json_integer_value(json_object_get(o, "startMs"));
            it->end_ms = json_integer_value(json_object_get(o, "endMs"));
            if (l->tail)
                l->tail->next = it;
            else
                l->head = it;
            l->tail = it;
            it->pending = true;
            w->finals_backfilled++;
            if (tolk_translator_submit(w->tr, self->source, l->lang, text, s_translated, it) != 0)
                s_item_ready(it, NULL);
        } else
            free(it);
        json_decref(o);
    }
    tolk_captions_free(&have, nhave);
    tolk_captions_free(&src, nsrc);
}

/* The vocabulary as a prompt: entries joined by ", ", whole entries only,
   at most STREAM_PROMPT_MAX bytes; NULL for none (or out of memory). */
static char *s_prompt(const tolk_vocab_t *v)
{
    char *out = v->n ? malloc(STREAM_PROMPT_MAX + 1) : NULL;
    size_t n = 0;
    for (int i = 0; out && i < v->n; i++) {
        size_t len = strlen(v->entries[i]);
        if (n + (n ? 2 : 0) + len > STREAM_PROMPT_MAX)
            break;
        if (n) {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        memcpy(out + n, v->entries[i], len);
        n += len;
    }
    if (out)
        out[n] = 0;
    return out;
}

/* The session's vocabulary changed (vocabRev rev, seen in a snapshot):
   read it (one round trip, only on a change) and give it to the
   recogniser, which uses it from its next utterance, and to the second
   pass. Redis away: tried again with the next snapshot. */
static void s_vocab_load(stream_t *self, long long rev)
{
    if (!self->asr || rev == self->vocab_rev)
        return;
    char *text = NULL;
    long long got = tolk_store_vocabulary(self->worker->redis, self->sid, &text);
    static tolk_vocab_t vocab; /* 13 KB: not on the stack; one loop */
    char bad[TOLK_VOCAB_ERR_MAX];
    if (got < 0 || !text || !tolk_vocab_parse_list(&vocab, text, strlen(text), '\n', bad)) {
        free(text);
        return;
    }
    free(text);
    const char *entries[TOLK_VOCAB_MAX];
    for (int i = 0; i < vocab.n; i++)
        entries[i] = vocab.entries[i];
    if (tolk_asr_stream_set_vocabulary(self->asr, entries, vocab.n) != 0)
        return; /* the stream reports its failure with the next chunk */
    free(self->prompt);
    self->prompt = s_prompt(&vocab);
    self->vocab_rev = got;
    self->worker->vocabularies++;
    tolk_info("stream", self->sid, "vocabulary %lld: %d entries", got, vocab.n);
}

/* Read the session's languages and gateways (one round trip). Returns
   false when the session no longer exists. */
static bool s_refresh(stream_t *self, int64_t now_ms)
{
    tolk_session_snapshot_t snap;
    int rc = tolk_store_snapshot(self->worker->redis, self->sid, &snap);
    if (rc == TOLK_STORE_NOT_FOUND) {
        self->dead = true;
        return false;
    }
    if (rc != TOLK_STORE_OK)
        return true; /* Redis away: keep what we know */
    if (snap.source[0] && !self->source[0])
        snprintf(self->source, sizeof self->source, "%s", snap.source);
    if (!self->refreshed_ms) {
        int64_t created = snap.created_known ? snap.created_at : now_ms;
        self->offset_ms = now_ms - created > 0 ? now_ms - created : 0;
    }
    bool was[STREAM_LANES_MAX];
    for (int i = 0; i < self->nlanes; i++) {
        was[i] = self->lanes[i].listened;
        self->lanes[i].listened = self->lanes[i].spoken = false;
    }
    int before = self->nlanes;
    for (int i = 0; i < snap.nlangs; i++) {
        lane_t *l = s_lane(self, snap.langs[i].code, true);
        if (l)
            l->listened = true;
    }
    for (int i = 0; i < snap.nspoken; i++) {
        lane_t *l = s_lane(self, snap.spoken[i], false);
        if (l)
            l->spoken = true;
    }
    memcpy(self->gws, snap.gws, (size_t)snap.ngws * sizeof *snap.gws);
    self->ngws = snap.ngws;
    self->refreshed_ms = now_ms;
    self->seen_rev = snap.vocab_rev;
    s_vocab_load(self, snap.vocab_rev);
    /* a language someone started listening in: translate what was just said */
    for (int i = 0; i < self->nlanes; i++)
        if (self->lanes[i].listened && (i >= before || !was[i]) && self->source[0] &&
            strcmp(self->lanes[i].lang, self->source) != 0)
            s_backfill(self, &self->lanes[i]);
    return true;
}

stream_t *stream_new(audio_worker_t *worker, const char *sid)
{
    stream_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    snprintf(self->sid, sizeof self->sid, "%s", sid);
    int64_t now = tolk_now_ms();
    if (!s_refresh(self, now) || !self->refreshed_ms || !self->source[0]) {
        free(self);
        return NULL;
    }
    s_lane(self, self->source, true);
    long long epoch = tolk_store_asr_epoch_next(worker->redis, sid);
    self->epoch = epoch > 0 ? (uint32_t)epoch : 0; /* 0: Redis away or the session just ended */
    char model[TOLK_CONFIG_STR];
    self->asr = tolk_asr_stream_new(worker->asr_local,
                                    audio_worker_model(worker, self->source, model, sizeof model),
                                    s_on_result, self);
    if (worker->whisper)
        self->ring = malloc(TOLK_WHISPER_MAX_SAMPLES * sizeof *self->ring);
    /* the front end was measured for pocketsphinx (bench/asr); a vosk-server's
       models get the audio as it came, as the whisper pass does */
    bool clean = worker->frontend && !worker->vosk;
    if (clean)
        self->frontend = tolk_frontend_new(NULL);
    if (!self->asr || (worker->whisper && !self->ring) || (clean && !self->frontend)) {
        tolk_asr_stream_destroy(&self->asr);
        tolk_frontend_destroy(&self->frontend);
        free(self->ring);
        free(self);
        return NULL;
    }
    s_vocab_load(self, self->seen_rev); /* the first snapshot came before the recogniser */
    self->last_audio_ms = now;
    worker->streams_opened++;
    tolk_info("stream", sid, "recognition stream %u opened (%s)", self->epoch, self->source);
    return self;
}

void stream_destroy(stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    stream_t *self = *self_p;
    tolk_asr_stream_destroy(&self->asr);
    tolk_frontend_destroy(&self->frontend);
    free(self->ring);
    free(self->prompt);
    for (int i = 0; i < self->nlanes; i++) {
        item_t *it = self->lanes[i].head;
        while (it) {
            item_t *next = it->next;
            if (it->pending)
                it->lane = NULL; /* its callback frees it */
            else
                s_item_free(it);
            it = next;
        }
    }
    free(self);
    *self_p = NULL;
}

/* True when a newer recognition stream was opened for this session since
   ours (its asrEpoch moved on): the session's audio went to another worker
   while we were stopped or while it stood in for us, and that worker's
   finals are already out. What this stream still holds is older than what
   the listeners have, and a final made of it would arrive out of talk
   order. Asked only after a gap in our audio, so one Redis call per gap. */
static bool s_superseded(stream_t *self)
{
    long long epoch = tolk_store_asr_epoch(self->worker->redis, self->sid);
    if (epoch < 0)
        return false; /* Redis away: keep going, the next gap asks again */
    if (epoch <= (long long)self->epoch)
        return false;
    tolk_info("stream", self->sid,
              "recognition stream %u superseded by stream %lld of another worker: dropped",
              self->epoch, epoch);
    self->worker->streams_superseded++;
    return true;
}

/* End the utterance in progress: the front end's held remainder (under
   20 ms) goes to the recogniser first, so the final covers all the audio. */
static void s_finish(stream_t *self)
{
    size_t n = self->frontend ? tolk_frontend_flush(self->frontend, self->clean) : 0;
    if (n)
        tolk_asr_stream_feed(self->asr, self->clean, n);
    tolk_asr_stream_finish(self->asr);
}

int stream_feed(stream_t *self, const uint8_t *pcm, size_t len)
{
    if (self->dead)
        return -1;
    if (tolk_now_ms() - self->last_audio_ms >= STREAM_GAP_MS && s_superseded(self)) {
        self->dead = true;
        return STREAM_SUPERSEDED;
    }
    size_t samples = len / 2;
    if (samples > STREAM_PCM_SAMPLES)
        samples = STREAM_PCM_SAMPLES;
    /* the payload sits at any offset of the envelope: copy it aligned;
       PCM on the wire is little-endian, as is every host we build for */
    memcpy(self->pcm, pcm, samples * 2);
    for (size_t i = 0; self->ring && i < samples; i++) /* before the recogniser ends an utterance */
        self->ring[(self->fed + i) % TOLK_WHISPER_MAX_SAMPLES] = self->pcm[i];
    self->fed += samples;
    int64_t now = tolk_now_ms();
    if (now - self->refreshed_ms >= STREAM_REFRESH_MS && !s_refresh(self, now))
        return -1;
    self->last_audio_ms = now;
    self->fed_since_finish = true;
    uint64_t t0 = tolk_now_ns();
    /* the second pass's ring keeps the audio as it came: a Whisper-class
       model is trained on noisy speech, not on a noise suppressor's output */
    const int16_t *heard = self->pcm;
    size_t nheard = samples;
    if (self->frontend) {
        nheard = tolk_frontend_process(self->frontend, self->pcm, samples, self->clean);
        heard = self->clean;
    }
    int rc = tolk_asr_stream_feed(self->asr, heard, nheard);
    self->worker->asr_ns += (int64_t)(tolk_now_ns() - t0);
    self->worker->audio_ms += (int64_t)samples / 16;
    return rc < 0 || self->dead ? -1 : 0;
}

bool stream_tick(stream_t *self, int64_t now_ms)
{
    if (self->dead)
        return false;
    /* languages and gateways first, so a final made now reaches who is there */
    if (now_ms - self->refreshed_ms >= STREAM_REFRESH_MS && !s_refresh(self, now_ms))
        return false;
    /* finals held while Redis was away: try them again */
    for (int i = 0; i < self->nlanes; i++)
        if (self->lanes[i].head && self->lanes[i].head->store_failed_ms)
            s_lane_flush(&self->lanes[i]);
    if (self->fed_since_finish && now_ms - self->last_audio_ms >= STREAM_GAP_MS) {
        self->fed_since_finish = false;
        /* the utterance of a stream another worker has taken over is not
           finished: its listeners saw its partials, and its final would
           come after newer ones */
        if (s_superseded(self)) {
            self->dead = true;
            return false;
        }
        s_finish(self);
    }
    return now_ms - self->last_audio_ms < STREAM_IDLE_MS && !self->dead;
}

void stream_end(stream_t *self)
{
    if (self->dead || !self->fed_since_finish)
        return;
    self->fed_since_finish = false;
    s_finish(self);
}

bool stream_drained(stream_t *self)
{
    if (self->dead)
        return true;
    for (int i = 0; i < self->nlanes; i++) {
        if (self->lanes[i].head && self->lanes[i].head->store_failed_ms)
            s_lane_flush(&self->lanes[i]); /* a final waiting for Redis: try it again */
        if (self->lanes[i].head)
            return false;
    }
    return !tolk_asr_stream_busy(self->asr);
}

int stream_pollitems(stream_t *self, zmq_pollitem_t *items, int max)
{
    return self->dead ? 0 : tolk_asr_stream_pollitems(self->asr, items, max);
}

long stream_timeout_ms(stream_t *self)
{
    return self->dead ? -1 : tolk_asr_stream_timeout_ms(self->asr);
}

/* A result reported from here is a caption like one from feed: the
   lanes take a result at any time, and a stream the result kills (its
   session ended) is closed by the next housekeeping. */
void stream_run(stream_t *self, const zmq_pollitem_t *items, int n)
{
    if (!self->dead)
        tolk_asr_stream_run(self->asr, items, n);
}
