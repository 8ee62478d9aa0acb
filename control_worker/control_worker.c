/*  control_worker.c -- connect, join, refresh, disconnect, end, and the
    broadcast and listener controls.

    Every change is one Lua script over the session's keys (session_store),
    then one message to the connection that asked and, when the session
    must hear of it, one PUBLISH per gateway hosting members: the gateways
    fan out locally.
*/
#include "control_worker.h"
#include "action_check.h"
#include "caption_store.h"
#include "ids.h"
#include "log.h"
#include "rate_store.h"
#include "session_store.h"
#include "targets_store.h"
#include "transcript.h"
#include "vocabulary.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define CW_TRANSCRIPT_PART (96 * 1024) /* transcript bytes per message: under the 128 KB cap */
/* finals one resume sends at most, the newest: more would overflow the
   connection's send queue (512); the seq gap shows the listener what is lost */
#define CW_RESUME_MAX 256

/* ----------------------------------------------------------- replies */

static void s_reply(control_worker_t *self, const char *gw, uint64_t conn, const char *json,
                    int close_code, uint32_t flags)
{
    if (tolk_worker_send(self->base, gw, conn, json, close_code, flags) == 0)
        self->messages_out++;
    else
        self->errors++;
}

/* Send a json_t (stolen) with a type and timestamp added. */
static void s_reply_obj(control_worker_t *self, const char *gw, uint64_t conn, json_t *obj,
                        int close_code, uint32_t flags)
{
    json_object_set_new(obj, "timestamp", json_integer(tolk_now_ms()));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text)
        s_reply(self, gw, conn, text, close_code, flags);
    free(text);
}

static void s_error(control_worker_t *self, const char *gw, uint64_t conn, int status,
                    const char *code, const char *message, const char *action, int retry_after,
                    bool close)
{
    self->errors++;
    if (tolk_worker_send_error(self->base, gw, conn, status, code, message, action, retry_after,
                               close) == 0)
        self->messages_out++;
}

/* Tell gw that conn is a member of sid. For a listener, seq is what its
   catch-up starts after plus one (0: the last few), with TOLK_FLAG_CATCHUP. */
static void s_bind(control_worker_t *self, const char *gw, uint64_t conn, const char *sid,
                   tolk_role_t role, const char *lang, uint32_t flags, uint64_t seq)
{
    tolk_envelope_t env;
    tolk_envelope_init(&env, TOLK_KIND_BIND);
    tolk_envelope_set_str(env.worker, sizeof env.worker, self->id);
    env.conn = conn;
    tolk_envelope_set_str(env.session, sizeof env.session, sid);
    env.role = role;
    tolk_envelope_set_str(env.lang, sizeof env.lang, lang ? lang : "");
    env.flags = flags;
    env.seq = seq;
    tolk_gwlink_send(self->link, gw, &env);
}

/* Publish to every gateway hosting members of sid. */
static void s_publish(control_worker_t *self, const char *sid, tolk_audience_t audience,
                      json_t *obj, uint32_t flags)
{
    char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
    int n = tolk_store_gateways(self->redis, sid, gws, TOLK_STORE_MAX_GWS);
    json_object_set_new(obj, "timestamp", json_integer(tolk_now_ms()));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text && n > 0) {
        tolk_store_publish(self->link, gws, n, sid, audience, text, 0, flags);
        self->messages_out += n;
    }
    free(text);
}

/* The BIND/PUBLISH flags that tell a gateway whether the speaker's audio
   is to be dropped (paused or muted). */
static uint32_t s_state_flags(bool paused, bool muted)
{
    return TOLK_FLAG_STATE | (paused || muted ? TOLK_FLAG_AUDIO_OFF : 0);
}

/* The broadcastState object of the protocol. */
static json_t *s_broadcast_state(const tolk_broadcast_state_t *state)
{
    return json_pack("{s:b, s:b, s:b, s:f, s:I}", "isActive", state->is_active, "isPaused",
                     state->is_paused, "isMuted", state->is_muted, "volume", state->volume,
                     "lastStateChange", (json_int_t)state->last_state_change);
}

/* ----------------------------------------------------------- connect */

/* Is lang a language listeners may choose? The audio workers publish what
   the translator reaches from each source language (tolk:targets:<src>);
   until one has, the configured list stands in. Cached for a few seconds:
   a join must not cost an extra round trip. */
static bool s_target_supported(control_worker_t *self, const char *lang)
{
    int64_t now = tolk_now_ms();
    if (now - self->targets_read_ms >= 5000) {
        self->targets_read_ms = now;
        char sources[sizeof self->cfg.source_languages], all[sizeof self->targets] = "";
        snprintf(sources, sizeof sources, "%s", self->cfg.source_languages);
        for (char *save = NULL, *src = strtok_r(sources, ",", &save); src;
             src = strtok_r(NULL, ",", &save)) {
            char t[sizeof self->targets];
            if (tolk_targets_get(self->redis, src, t, sizeof t) == 1 &&
                strlen(all) + strlen(t) + 2 < sizeof all) {
                if (all[0])
                    strcat(all, ",");
                strcat(all, t);
            }
        }
        snprintf(self->targets, sizeof self->targets, "%s", all);
    }
    return self->targets[0] ? tolk_csv_has(self->targets, lang)
                            : tolk_config_language_supported(&self->cfg, lang);
}

static const char *s_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A vocabulary's entries as a JSON array (new reference; NULL when out
   of memory). */
static json_t *s_vocab_json(const tolk_vocab_t *v)
{
    json_t *a = json_array();
    for (int i = 0; a && i < v->n; i++)
        if (json_array_append_new(a, json_string(v->entries[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static void s_create(control_worker_t *self, const char *gw, uint64_t conn, json_t *p)
{
    const char *action = "createSession";
    const char *source = s_str(p, "sourceLanguage");
    const char *tier = s_str(p, "qualityTier");
    const char *sub = s_str(p, "sub");
    if (!tier)
        tier = "standard";
    if (!sub || !*sub) {
        s_error(self, gw, conn, 401, "UNAUTHENTICATED", "the speaker is not authenticated", action,
                0, true);
        return;
    }
    if (!source || !tolk_language_code_valid(source)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "sourceLanguage must be an ISO 639-1 code", action, 0, true);
        return;
    }
    if (!tolk_csv_has(self->cfg.source_languages, source)) {
        s_error(self, gw, conn, 400, "UNSUPPORTED_LANGUAGE",
                "this source language is not supported", action, 0, true);
        return;
    }
    if (strcmp(tier, "standard") && strcmp(tier, "premium")) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "qualityTier must be standard or premium", action, 0, true);
        return;
    }
    /* the vocabulary's own checks (common/vocabulary.h); the value is
       bounded by the query's 8192 bytes */
    const char *vocab_param = s_str(p, "vocabulary");
    static tolk_vocab_t vocab; /* 13 KB: not on the stack; one loop, one caller */
    char bad[TOLK_VOCAB_ERR_MAX];
    if (!tolk_vocab_parse_list(&vocab, vocab_param ? vocab_param : "",
                               vocab_param ? strlen(vocab_param) : 0, ',', bad)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS", bad, action, 0, true);
        return;
    }
    char *stored = tolk_vocab_join(&vocab, "\n");
    json_t *entries = s_vocab_json(&vocab);
    if (!stored || !entries) {
        free(stored);
        json_decref(entries);
        s_error(self, gw, conn, 500, "INTERNAL_ERROR", "out of memory", action, 0, true);
        return;
    }
    int wait = tolk_rate_create(self->redis, sub, self->cfg.session_create_per_hour, tolk_now_ms());
    char sid[TOLK_ID_MAX + 1];
    int rc = wait != 0 ? TOLK_STORE_DOWN
                       : tolk_store_create(self->redis, sid, source, tier, sub, gw, conn, stored,
                                           tolk_now_ms());
    free(stored);
    if (wait < 0) {
        json_decref(entries);
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action, 0,
                true);
        return;
    }
    if (wait > 0) {
        json_decref(entries);
        s_error(self, gw, conn, 429, "RATE_LIMIT_EXCEEDED", "too many sessions created", action,
                wait, true);
        return;
    }
    if (rc != TOLK_STORE_OK) {
        json_decref(entries);
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "could not create the session", action,
                0, true);
        return;
    }
    self->sessions_created++;
    s_bind(self, gw, conn, sid, TOLK_ROLE_SPEAKER, source, s_state_flags(false, false), 0);
    char url[TOLK_CONFIG_STR + TOLK_ID_MAX + 16];
    snprintf(url, sizeof url, "%s/listen/%s", self->cfg.public_url, sid);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "sessionCreated", "sessionId",
                          sid, "sourceLanguage", source, "qualityTier", tier, "listenerUrl", url,
                          "maxListeners", self->cfg.max_listeners);
    if (o && json_array_size(entries) > 0)
        json_object_set(o, "vocabulary", entries);
    json_decref(entries);
    s_reply_obj(self, gw, conn, o, 0, 0);
    tolk_info("createSession", sid, "session created");
}

/* Count a failed join for the client's address. */
static void s_join_failed(control_worker_t *self, const char *client)
{
    tolk_rate_join_failed(self->redis, client, tolk_now_ms());
}

static void s_join(control_worker_t *self, const char *gw, uint64_t conn, json_t *p, bool refresh)
{
    const char *action = refresh ? "refreshConnection" : "joinSession";
    const char *sid = s_str(p, "sessionId");
    const char *lang = s_str(p, "targetLanguage");
    const char *client = s_str(p, "clientHash");
    /* Redis away: no limit is known, and the join itself will say so */
    int wait =
        tolk_rate_join_check(self->redis, client, self->cfg.failed_joins_per_hour, tolk_now_ms());
    if (wait > 0) {
        s_error(self, gw, conn, 429, "RATE_LIMIT_EXCEEDED", "too many failed joins", action, wait,
                true);
        return;
    }
    if (!sid || !tolk_session_id_valid(sid)) {
        s_join_failed(self, client);
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "sessionId must look like golden-eagle-427-913", action, 0, true);
        return;
    }
    if (!lang || !tolk_language_code_valid(lang)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "targetLanguage must be an ISO 639-1 code", action, 0, true);
        return;
    }
    if (!s_target_supported(self, lang)) {
        s_error(self, gw, conn, 400, "UNSUPPORTED_LANGUAGE",
                "this target language is not supported", action, 0, true);
        return;
    }
    long last_seq = -1;
    const char *last = s_str(p, "lastSeq");
    if (last && !tolk_parse_seq(last, &last_seq)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS", "lastSeq must be a whole number from 0",
                action, 0, true);
        return;
    }
    int speech = tolk_parse_flag(s_str(p, "speech"));
    if (speech < 0) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS", "speech must be 1, 0, true or false",
                action, 0, true);
        return;
    }
    tolk_session_info_t info;
    int rc = tolk_store_join(self->redis, sid, gw, conn, lang, self->cfg.max_listeners, speech == 1,
                             &info);
    if (rc == TOLK_STORE_ENDED) {
        /* a returning listener: told as the others were, and no failed join */
        json_t *o = json_pack("{s:s, s:s, s:s}", "type", "sessionEnded", "sessionId", sid, "reason",
                              info.end_reason);
        s_reply_obj(self, gw, conn, o, 1000, 0);
        return;
    }
    if (rc == TOLK_STORE_NOT_FOUND) {
        s_join_failed(self, client);
        s_error(self, gw, conn, 404, "SESSION_NOT_FOUND", "no live session has this id", action, 0,
                true);
        return;
    }
    if (rc == TOLK_STORE_FULL) {
        s_error(self, gw, conn, 409, "SESSION_FULL", "the session has reached its listener limit",
                action, 0, true);
        return;
    }
    if (rc != TOLK_STORE_OK) {
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "could not join the session", action, 0,
                true);
        return;
    }
    s_bind(self, gw, conn, sid, TOLK_ROLE_LISTENER, lang,
           s_state_flags(info.state.is_paused, info.state.is_muted) | TOLK_FLAG_CATCHUP |
               TOLK_FLAG_SPEECH_SET | (speech == 1 ? TOLK_FLAG_SPEECH_ON : 0),
           last_seq >= 0 ? (uint64_t)last_seq + 1 : 0);
    json_t *o;
    if (refresh)
        o = json_pack("{s:s, s:s, s:s, s:s}", "type", "connectionRefreshComplete", "sessionId", sid,
                      "role", "listener", "targetLanguage", lang);
    else {
        o = json_pack("{s:s, s:s, s:s, s:s}", "type", "sessionJoined", "sessionId", sid,
                      "targetLanguage", lang, "sourceLanguage", info.source_language);
        self->joins++;
    }
    json_object_set_new(o, "sourceLanguage", json_string(info.source_language));
    json_object_set_new(o, "broadcastState", s_broadcast_state(&info.state));
    json_object_set_new(o, "speakerConnected", json_boolean(!info.in_grace));
    json_object_set_new(o, "speech", json_boolean(speech == 1));
    s_reply_obj(self, gw, conn, o, 0, 0);
}

static void s_speaker_refresh(control_worker_t *self, const char *gw, uint64_t conn, json_t *p)
{
    const char *action = "refreshConnection";
    const char *sid = s_str(p, "sessionId");
    const char *sub = s_str(p, "sub");
    if (!sid || !tolk_session_id_valid(sid)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "sessionId must look like golden-eagle-427-913", action, 0, true);
        return;
    }
    tolk_session_info_t info;
    int rc = tolk_store_speaker_refresh(self->redis, sid, gw, conn, sub ? sub : "", tolk_now_ms(),
                                        &info);
    if (rc == TOLK_STORE_NOT_FOUND) {
        s_error(self, gw, conn, 404, "SESSION_NOT_FOUND", "no live session has this id", action, 0,
                true);
        return;
    }
    if (rc == TOLK_STORE_FORBIDDEN) {
        s_error(self, gw, conn, 403, "UNAUTHORIZED", "only the session's speaker can resume it",
                action, 0, true);
        return;
    }
    if (rc != TOLK_STORE_OK) {
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "could not refresh the connection",
                action, 0, true);
        return;
    }
    s_bind(self, gw, conn, sid, TOLK_ROLE_SPEAKER, info.source_language,
           s_state_flags(info.state.is_paused, info.state.is_muted), 0);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i}", "type", "connectionRefreshComplete",
                          "sessionId", sid, "role", "speaker", "sourceLanguage",
                          info.source_language, "listenerCount", (int)info.listener_count);
    json_object_set_new(o, "broadcastState", s_broadcast_state(&info.state));
    s_reply_obj(self, gw, conn, o, 0, 0);
    if (info.in_grace)
        s_publish(self, sid, TOLK_AUDIENCE_LISTENERS,
                  json_pack("{s:s, s:s}", "type", "speakerReconnected", "sessionId", sid), 0);
}

/* A final with its startMs read once, for sorting. */
typedef struct {
    long long start_ms;
    tolk_caption_rec_t rec;
} s_timed_t;

static int s_by_start(const void *a, const void *b)
{
    const s_timed_t *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return x->rec.seq < y->rec.seq ? -1 : x->rec.seq > y->rec.seq;
}

/* Cues in time order (WebVTT requires it); seq breaks ties. Finals of a
   language are in seq order, except the backfilled ones, which take new
   seqs for what was said earlier. Left as they are when out of memory. */
static void s_sort_by_start(tolk_caption_rec_t *recs, int n)
{
    s_timed_t *t = n > 1 ? malloc((size_t)n * sizeof *t) : NULL;
    if (!t)
        return;
    for (int i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *o = json_loads(recs[i].json, 0, &jerr);
        t[i].start_ms = json_integer_value(json_object_get(o, "startMs"));
        t[i].rec = recs[i];
        json_decref(o);
    }
    qsort(t, (size_t)n, sizeof *t, s_by_start);
    for (int i = 0; i < n; i++)
        recs[i] = t[i].rec;
    free(t);
}

/* getTranscript: the speaker's finals in one language as WebVTT or text,
   in parts that each fit a message, then close 1000. */
static void s_transcript(control_worker_t *self, const char *gw, uint64_t conn, json_t *p)
{
    const char *action = "getTranscript";
    const char *sid = s_str(p, "sessionId");
    const char *sub = s_str(p, "sub");
    const char *lang = s_str(p, "language");
    int format = tolk_transcript_format_parse(s_str(p, "format"));
    if (!sid || !tolk_session_id_valid(sid)) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "sessionId must look like golden-eagle-427-913", action, 0, true);
        return;
    }
    if ((lang && !tolk_language_code_valid(lang)) || format < 0) {
        s_error(self, gw, conn, 400, "INVALID_PARAMETERS",
                "language must be an ISO 639-1 code and format vtt or text", action, 0, true);
        return;
    }
    char owner[256], source[TOLK_LANG_MAX + 1], langs[256];
    int rc = tolk_captions_owner(self->redis, sid, owner, sizeof owner, source, sizeof source);
    if (rc == TOLK_STORE_DOWN) {
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action, 0,
                true);
        return;
    }
    if (rc != 0) {
        s_error(self, gw, conn, 404, "SESSION_NOT_FOUND", "no session or transcript has this id",
                action, 0, true);
        return;
    }
    if (!sub || strcmp(sub, owner) != 0) {
        s_error(self, gw, conn, 403, "UNAUTHORIZED", "only the session's speaker can download it",
                action, 0, true);
        return;
    }
    if (!lang)
        lang = source;
    tolk_captions_languages(self->redis, sid, langs, sizeof langs);
    tolk_caption_rec_t *recs = NULL;
    int n = tolk_captions_read(self->redis, sid, lang, 0, TOLK_CAPTIONS_READ_MAX, &recs);
    if (n < 0) {
        s_error(self, gw, conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action, 0,
                true);
        return;
    }
    if (n == 0 && strcmp(lang, source) != 0) {
        s_error(self, gw, conn, 404, "SESSION_NOT_FOUND", "no transcript in this language", action,
                0, true);
        return;
    }
    s_sort_by_start(recs, n);
    /* parts of at most CW_TRANSCRIPT_PART bytes, split between cues */
    json_t *languages = json_array();
    for (char *save = NULL, *l = strtok_r(langs, ",", &save); l; l = strtok_r(NULL, ",", &save))
        json_array_append_new(languages, json_string(l));
    size_t cap = CW_TRANSCRIPT_PART + 1, used = 0;
    char *part = malloc(cap);
    int part_no = 0;
    const char *head = tolk_transcript_header((tolk_transcript_format_t)format);
    if (part) {
        used = (size_t)snprintf(part, cap, "%s", head);
        for (int i = 0; i <= n; i++) {
            char *cue = i < n ? tolk_transcript_cue(recs[i].json, strlen(recs[i].json),
                                                    (tolk_transcript_format_t)format)
                              : NULL;
            size_t len = cue ? strlen(cue) : 0;
            bool last = i == n;
            if (last || used + len > CW_TRANSCRIPT_PART) {
                if (last || used > 0) {
                    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:i, s:b, s:s#}", "type",
                                          "transcript", "sessionId", sid, "language", lang,
                                          "format", format == TOLK_TRANSCRIPT_VTT ? "vtt" : "text",
                                          "languages", languages, "part", ++part_no, "last", last,
                                          "text", part, (int)used);
                    if (o)
                        s_reply_obj(self, gw, conn, o, last ? 1000 : 0, 0);
                }
                used = 0;
            }
            if (cue && len <= CW_TRANSCRIPT_PART) {
                memcpy(part + used, cue, len);
                used += len;
            }
            free(cue);
        }
    }
    if (!part)
        s_error(self, gw, conn, 500, "INTERNAL_ERROR", "out of memory", action, 0, true);
    free(part);
    json_decref(languages);
    tolk_captions_free(&recs, n);
}

static void s_connect(control_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    json_error_t jerr;
    json_t *p = json_loadb((const char *)env->payload, env->payload_len, 0, &jerr);
    const char *action = p ? s_str(p, "action") : NULL;
    if (!action) {
        s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS", "the connect request is malformed",
                NULL, 0, true);
    } else if (strcmp(action, "createSession") == 0) {
        s_create(self, gw, env->conn, p);
    } else if (strcmp(action, "joinSession") == 0) {
        s_join(self, gw, env->conn, p, false);
    } else if (strcmp(action, "getTranscript") == 0) {
        s_transcript(self, gw, env->conn, p);
    } else if (strcmp(action, "refreshConnection") == 0) {
        const char *role = s_str(p, "role");
        if (role && strcmp(role, "speaker") == 0)
            s_speaker_refresh(self, gw, env->conn, p);
        else if (role && strcmp(role, "listener") == 0)
            s_join(self, gw, env->conn, p, true);
        else
            s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS",
                    "role must be speaker or listener", action, 0, true);
    } else {
        s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS", "unknown connect action", action, 0,
                true);
    }
    json_decref(p);
}

/* -------------------------------------------------------- end, leave */

static void s_end(control_worker_t *self, const char *sid, const char *reason)
{
    char gws[TOLK_STORE_MAX_GWS][TOLK_ID_MAX + 1];
    int n = tolk_store_end(self->redis, sid, reason, self->cfg.transcript_retention_s, gws,
                           TOLK_STORE_MAX_GWS);
    if (n < 0)
        return;
    tolk_store_publish_ended(self->link, gws, n, sid, reason);
    self->sessions_ended++;
    tolk_info("endSession", sid, "session ended (%s)", reason);
}

static void s_disconnect(control_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    if (!env->session[0])
        return;
    if (env->role == TOLK_ROLE_SPEAKER) {
        bool clean = (env->flags & TOLK_FLAG_CLEAN) != 0;
        int rc = tolk_store_speaker_gone(self->redis, env->session, gw, env->conn, clean,
                                         tolk_now_ms(), self->cfg.grace_period_s);
        if (rc == TOLK_SPEAKER_GONE_END)
            s_end(self, env->session, "speakerEnded");
        else if (rc == TOLK_SPEAKER_GONE_GRACE)
            s_publish(self, env->session, TOLK_AUDIENCE_LISTENERS,
                      json_pack("{s:s, s:s, s:i}", "type", "speakerDisconnected", "sessionId",
                                env->session, "gracePeriod", self->cfg.grace_period_s),
                      0);
    } else {
        tolk_store_leave(self->redis, env->session, gw, env->conn);
    }
}

/* ------------------------------------------------- session controls */

/* Reply to the speaker and notify every listener with the same message. */
static void s_state_message(control_worker_t *self, const char *gw, const tolk_envelope_t *env,
                            const char *type, const char **fields, int nfields, const char *action)
{
    tolk_broadcast_state_t now;
    int rc = tolk_store_set_state(self->redis, env->session, tolk_now_ms(), fields, nfields, &now);
    if (rc == TOLK_STORE_DOWN) {
        /* not "ended": the speaker may send it again in a moment */
        s_error(self, gw, env->conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action,
                1, false);
        return;
    }
    json_t *state = rc == TOLK_STORE_OK ? s_broadcast_state(&now) : NULL;
    if (!state) {
        s_error(self, gw, env->conn, 404, "SESSION_NOT_FOUND", "the session has ended", action, 0,
                false);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:O}", "type", type, "sessionId", env->session,
                          "broadcastState", state);
    if (strcmp(type, "volumeChanged") == 0)
        json_object_set(o, "volumeLevel", json_object_get(state, "volume"));
    if (strcmp(type, "speakerStateChanged") == 0)
        json_object_set(o, "state", state);
    uint32_t flags = s_state_flags(json_is_true(json_object_get(state, "isPaused")),
                                   json_is_true(json_object_get(state, "isMuted")));
    json_decref(state);
    s_publish(self, env->session, TOLK_AUDIENCE_ALL, o, flags);
}

/* setVocabulary: the speaker replaces the session's vocabulary. Checked
   first (nothing changes on a refusal), stored in one step, answered to
   the speaker with the entries as kept; the audio worker running the
   stream reads the change with its next snapshot (at most a second
   later) and applies it from the next utterance on. */
static void s_set_vocabulary(control_worker_t *self, const char *gw, const tolk_envelope_t *env,
                             const char *action, json_t *msg)
{
    static tolk_vocab_t vocab; /* 13 KB: not on the stack; one loop, one caller */
    char bad[TOLK_VOCAB_ERR_MAX];
    json_t *value = json_object_get(msg, "vocabulary");
    if (!value) {
        s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS",
                "vocabulary must be an array of strings", action, 0, false);
        return;
    }
    if (!tolk_vocab_parse_json(&vocab, value, bad)) {
        s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS", bad, action, 0, false);
        return;
    }
    char *stored = tolk_vocab_join(&vocab, "\n");
    json_t *entries = stored ? s_vocab_json(&vocab) : NULL;
    long long rev =
        entries ? tolk_store_set_vocabulary(self->redis, env->session, stored) : TOLK_STORE_DOWN;
    free(stored);
    if (rev == TOLK_STORE_NOT_FOUND)
        s_error(self, gw, env->conn, 404, "SESSION_NOT_FOUND", "the session has ended", action, 0,
                false);
    else if (rev < 0 && entries)
        s_error(self, gw, env->conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action,
                1, false);
    else if (!entries)
        s_error(self, gw, env->conn, 500, "INTERNAL_ERROR", "out of memory", action, 0, false);
    else
        s_reply_obj(self, gw, env->conn,
                    json_pack("{s:s, s:s, s:O}", "type", "vocabularyChanged", "sessionId",
                              env->session, "vocabulary", entries),
                    0, 0);
    json_decref(entries);
}

static void s_speaker_action(control_worker_t *self, const char *gw, const tolk_envelope_t *env,
                             const char *action, json_t *msg)
{
    if (strcmp(action, "endSession") == 0) {
        s_end(self, env->session, "endSession");
        return;
    }
    if (strcmp(action, "setVocabulary") == 0) {
        s_set_vocabulary(self, gw, env, action, msg);
        return;
    }
    tolk_state_change_t change;
    const char *bad = tolk_action_state(action, msg, &change);
    if (bad) {
        s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS", bad, action, 0, false);
        return;
    }
    s_state_message(self, gw, env, change.notification, change.fields, change.n, action);
}

static void s_listener_action(control_worker_t *self, const char *gw, const tolk_envelope_t *env,
                              const char *action, json_t *msg)
{
    if (strcmp(action, "pausePlayback") == 0 || strcmp(action, "resumePlayback") == 0) {
        bool pause = action[0] == 'p';
        s_reply_obj(self, gw, env->conn,
                    json_pack("{s:s, s:s}", "type", pause ? "playbackPaused" : "playbackResumed",
                              "sessionId", env->session),
                    0, 0);
        return;
    }
    if (strcmp(action, "setSpeech") == 0) {
        bool on;
        const char *bad = tolk_action_speech(msg, &on);
        if (bad) {
            s_error(self, gw, env->conn, 400, "INVALID_PARAMETERS", bad, action, 0, false);
            return;
        }
        int rc = tolk_store_set_speech(self->redis, env->session, gw, env->conn, on);
        if (rc != TOLK_STORE_OK) {
            s_error(self, gw, env->conn, rc == TOLK_STORE_DOWN ? 503 : 404,
                    rc == TOLK_STORE_DOWN ? "SERVICE_UNAVAILABLE" : "SESSION_NOT_FOUND",
                    rc == TOLK_STORE_DOWN ? "state store unavailable" : "the session has ended",
                    action, 0, false);
            return;
        }
        s_reply_obj(self, gw, env->conn,
                    json_pack("{s:s, s:s, s:b}", "type", "speechChanged", "sessionId", env->session,
                              "enabled", on),
                    0, TOLK_FLAG_SPEECH_SET | (on ? TOLK_FLAG_SPEECH_ON : 0));
        return;
    }
    /* changeLanguage */
    const char *lang = s_str(msg, "targetLanguage");
    if (!lang || !tolk_language_code_valid(lang) || !s_target_supported(self, lang)) {
        s_error(self, gw, env->conn, 400, "UNSUPPORTED_LANGUAGE",
                "this target language is not supported", action, 0, false);
        return;
    }
    int rc = tolk_store_change_language(self->redis, env->session, gw, env->conn, lang);
    if (rc == TOLK_STORE_DOWN) {
        s_error(self, gw, env->conn, 503, "SERVICE_UNAVAILABLE", "state store unavailable", action,
                0, false);
        return;
    }
    if (rc != TOLK_STORE_OK) {
        s_error(self, gw, env->conn, 404, "SESSION_NOT_FOUND", "the session has ended", action, 0,
                false);
        return;
    }
    s_bind(self, gw, env->conn, env->session, TOLK_ROLE_LISTENER, lang, TOLK_FLAG_CATCHUP, 0);
    s_reply_obj(self, gw, env->conn,
                json_pack("{s:s, s:s, s:s, s:s}", "type", "languageChanged", "sessionId",
                          env->session, "targetLanguage", lang, "previousLanguage", env->lang),
                0, 0);
}

static void s_message(control_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)env->payload, env->payload_len, 0, &jerr);
    const char *action = msg ? s_str(msg, "action") : NULL;
    if (!action) {
        s_error(self, gw, env->conn, 400, "INVALID_MESSAGE", "the message is not valid", NULL, 0,
                false);
        json_decref(msg);
        return;
    }
    static const char *speaker_actions[] = {
        "endSession",      "pauseBroadcast", "resumeBroadcast",    "muteBroadcast",
        "unmuteBroadcast", "setVolume",      "speakerStateChange", "setVocabulary"};
    static const char *listener_actions[] = {"pausePlayback", "resumePlayback", "changeLanguage",
                                             "setSpeech"};
    bool known = false;
    for (size_t i = 0; i < sizeof speaker_actions / sizeof *speaker_actions; i++)
        if (strcmp(action, speaker_actions[i]) == 0) {
            known = true;
            if (env->role != TOLK_ROLE_SPEAKER)
                s_error(self, gw, env->conn, 403, "UNAUTHORIZED", "only the speaker can do this",
                        action, 0, false);
            else
                s_speaker_action(self, gw, env, action, msg);
        }
    for (size_t i = 0; i < sizeof listener_actions / sizeof *listener_actions; i++)
        if (strcmp(action, listener_actions[i]) == 0) {
            known = true;
            if (env->role != TOLK_ROLE_LISTENER)
                s_error(self, gw, env->conn, 403, "UNAUTHORIZED", "only a listener can do this",
                        action, 0, false);
            else
                s_listener_action(self, gw, env, action, msg);
        }
    if (!known)
        s_error(self, gw, env->conn, 400, "INVALID_ACTION", "unknown action", action, 0, false);
    json_decref(msg);
}

/* ----------------------------------------------------------- catch-up */

/* A gateway bound a listener and holds its live finals: send the history
   it asked for (after env->seq - 1, or the last catchup_finals), then
   CATCHUP_END with the last seq covered, which releases the held ones. */
static void s_catchup(control_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    if (!env->session[0] || !tolk_language_code_valid(env->lang))
        return;
    tolk_caption_rec_t *recs = NULL;
    long after = env->seq ? (long)env->seq - 1 : -1;
    int n = tolk_captions_read(self->redis, env->session, env->lang, after,
                               after >= 0 ? CW_RESUME_MAX : self->cfg.catchup_finals, &recs);
    uint64_t covered = after > 0 ? (uint64_t)after : 0;
    for (int i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *o = json_loads(recs[i].json, 0, &jerr);
        if (!o)
            continue;
        json_object_set_new(o, "catchUp", json_true());
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
            continue;
        tolk_envelope_t out;
        tolk_envelope_init(&out, TOLK_KIND_SEND);
        tolk_envelope_set_str(out.worker, sizeof out.worker, self->id);
        out.conn = env->conn;
        out.payload = (const uint8_t *)text;
        out.payload_len = strlen(text);
        out.seq = (uint64_t)recs[i].seq;
        out.sent_ns = tolk_now_ns();
        if (tolk_gwlink_send(self->link, gw, &out) == 0)
            self->messages_out++;
        free(text);
        if ((uint64_t)recs[i].seq > covered)
            covered = (uint64_t)recs[i].seq;
    }
    tolk_captions_free(&recs, n);
    tolk_envelope_t end;
    tolk_envelope_init(&end, TOLK_KIND_SEND);
    tolk_envelope_set_str(end.worker, sizeof end.worker, self->id);
    end.conn = env->conn;
    end.flags = TOLK_FLAG_CATCHUP_END;
    end.seq = covered;
    tolk_gwlink_send(self->link, gw, &end);
    self->catchups++;
}

/* ------------------------------------------------------------- core */

void control_worker_handle(control_worker_t *self, const char *gw, const tolk_envelope_t *env)
{
    self->messages_in++;
    /* the replies go out inside the handlers, so this is receipt to reply;
       the hop from the gateway is not in it (another host's clock) */
    uint64_t t0 = tolk_now_ns();
    bool timed = env->kind == TOLK_KIND_CONNECT || env->kind == TOLK_KIND_MESSAGE;
    switch (env->kind) {
        case TOLK_KIND_CONNECT:
            s_connect(self, gw, env);
            break;
        case TOLK_KIND_MESSAGE:
            s_message(self, gw, env);
            break;
        case TOLK_KIND_DISCONNECT:
            s_disconnect(self, gw, env);
            break;
        case TOLK_KIND_CATCHUP:
            s_catchup(self, gw, env);
            break;
        default:
            break;
    }
    if (timed)
        tolk_prom_hist_observe_ns(&self->control_latency, (int64_t)(tolk_now_ns() - t0));
}

/* The base's handlers. */
static void s_on_message(void *arg, const char *gw, const tolk_envelope_t *env)
{
    control_worker_handle(arg, gw, env);
}

static void s_on_report(void *arg, tolk_statfeed_t *feed)
{
    control_worker_t *self = arg;
    tolk_statfeed_set(feed, "messages_in", self->messages_in);
    tolk_statfeed_set(feed, "messages_out", self->messages_out);
    tolk_statfeed_set(feed, "errors", self->errors);
    tolk_statfeed_set(feed, "sessions_created", self->sessions_created);
    tolk_statfeed_set(feed, "sessions_ended", self->sessions_ended);
    tolk_statfeed_set(feed, "catchups", self->catchups);
    tolk_statfeed_set(feed, "joins", self->joins);
    tolk_statfeed_set_hist(feed, "control_latency_seconds", &self->control_latency);
}

tolk_worker_t *control_worker_new(const tolk_config_t *cfg)
{
    control_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    /* everything it answers is answered before the gateways' LEAVE
       answers arrive, so there is nothing to finish */
    tolk_worker_handlers_t handlers = {
        .on_message = s_on_message, .on_report = s_on_report, .on_destroy = free};
    tolk_worker_t *base = tolk_worker_new(TOLK_WORKER_CONTROL, cfg, &handlers, self);
    if (base)
        tolk_worker_lend(base, &self->base, self->id, sizeof self->id, &self->redis, &self->link);
    return base;
}

const tolk_worker_program_t control_worker_program = {
    "tolk-control-worker", "control_worker",
    "Owns session state: connect, join, refresh, disconnect, broadcast\n"
    "controls. Finds the gateways in Redis and connects to each.",
    control_worker_new};
