/*  whisper.c -- the second recognition pass over HTTP; see whisper.h. */
#include "whisper.h"
#include "readable.h"
#include "curl_loop.h"
#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WAV_HEADER 44   /* bytes of a canonical PCM WAV header */
#define S_WARN_MS    1000 /* an outage logs at most once a second */

/* One utterance on its way: its transfer and the answer so far. */
typedef struct s_req_s {
    struct s_req_s *prev, *next;
    tolk_whisper_t *owner;
    CURL *easy;
    curl_mime *mime;
    uint8_t *wav; /* the utterance as a WAV file; the mime part points at it */
    char *body;   /* the answer, up to TOLK_WHISPER_BODY_MAX */
    size_t len;
    bool over; /* the answer was longer than that */
    int64_t sent_ms;
    tolk_whisper_done_fn *done;
    void *arg;
} s_req_t;

struct tolk_whisper_t {
    char *url;                  /* the endpoint, in full */
    char *model;                /* the model field */
    struct curl_slist *headers; /* "Expect:" and the Authorization header */
    int timeout_ms;             /* CURLOPT_TIMEOUT_MS of every request */
    tolk_curl_loop_t *loop;     /* the multi, on the worker's loop */
    s_req_t *head;              /* pending requests */
    int npending;
    int64_t warned_ms; /* last warning: an outage is logged once, not per utterance */
    tolk_whisper_stats_t stats;
};

/* ------------------------------------------------------------ answers */

char *tolk_whisper_parse(const char *body, size_t len)
{
    if (!body || len > TOLK_WHISPER_BODY_MAX)
        return NULL;
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *text = json_string_value(json_object_get(root, "text"));
    char *out = text ? tolk_readable_words(text) : NULL;
    if (out && !out[0]) {
        free(out);
        out = NULL;
    }
    json_decref(root);
    return out;
}

/* ----------------------------------------------------------- requests */

static size_t s_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    s_req_t *req = userp;
    size_t n = size * nmemb;
    if (req->over || req->len + n > TOLK_WHISPER_BODY_MAX) {
        req->over = true;
        return 0; /* ends the transfer: a bad answer */
    }
    char *grown = realloc(req->body, req->len + n + 1);
    if (!grown)
        return 0;
    req->body = grown;
    memcpy(req->body + req->len, data, n);
    req->len += n;
    req->body[req->len] = 0;
    return n;
}

/* A little-endian field of a WAV header. */
static void s_le(uint8_t *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The samples as a 16 kHz, 16-bit, mono WAV file; malloc'd, *len bytes. */
static uint8_t *s_wav(const int16_t *pcm, size_t samples, size_t *len)
{
    size_t data = samples * 2;
    uint8_t *w = malloc(S_WAV_HEADER + data);
    if (!w)
        return NULL;
    memcpy(w, "RIFF", 4);
    s_le(w + 4, (uint32_t)(36 + data), 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    s_le(w + 16, 16, 4);        /* fmt chunk size */
    s_le(w + 20, 1, 2);         /* PCM */
    s_le(w + 22, 1, 2);         /* mono */
    s_le(w + 24, 16000, 4);     /* sample rate */
    s_le(w + 28, 16000 * 2, 4); /* byte rate */
    s_le(w + 32, 2, 2);         /* block align */
    s_le(w + 34, 16, 2);        /* bits per sample */
    memcpy(w + 36, "data", 4);
    s_le(w + 40, (uint32_t)data, 4);
    for (size_t i = 0; i < samples; i++)
        s_le(w + S_WAV_HEADER + 2 * i, (uint16_t)pcm[i], 2);
    *len = S_WAV_HEADER + data;
    return w;
}

static void s_unlink(tolk_whisper_t *self, s_req_t *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        self->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    self->npending--;
}

/* Take req off the multi and the list, call back, free it. */
static void s_finish(tolk_whisper_t *self, s_req_t *req, const char *text)
{
    curl_multi_remove_handle(tolk_curl_loop_multi(self->loop), req->easy);
    s_unlink(self, req);
    if (req->done)
        req->done(req->arg, text);
    curl_easy_cleanup(req->easy);
    curl_mime_free(req->mime);
    free(req->wav);
    free(req->body);
    free(req);
}

/* Log an outage once a second, not once per utterance. */
static void s_warn(tolk_whisper_t *self, const char *what)
{
    int64_t now = tolk_curl_loop_now_ms();
    if (now - self->warned_ms < S_WARN_MS)
        return;
    self->warned_ms = now;
    tolk_warn("whisper", NULL, "%s: the local final goes out instead", what);
}

/* curl_loop's report of a transfer that has ended. */
static void s_transfer_done(void *arg, CURL *easy, CURLcode res)
{
    tolk_whisper_t *self = arg;
    s_req_t *req = NULL;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (!req)
        return;
    char *text = NULL;
    if (res == CURLE_OPERATION_TIMEDOUT) {
        self->stats.late++;
        s_warn(self, "the recogniser did not answer in time");
    } else if (res != CURLE_OK || status != 200) {
        self->stats.failed++;
        char what[160];
        snprintf(what, sizeof what, "the recogniser failed (%s, HTTP %ld)",
                 res != CURLE_OK ? curl_easy_strerror(res) : "answered", status);
        s_warn(self, what);
    } else if (!(text = tolk_whisper_parse(req->body, req->len))) {
        self->stats.failed++;
        s_warn(self, "the recogniser's answer had no text");
    } else {
        self->stats.answered++;
        self->stats.ms_sum += (long)(tolk_curl_loop_now_ms() - req->sent_ms);
    }
    s_finish(self, req, text);
    free(text);
}

/* --------------------------------------------------------------- API */

tolk_whisper_t *tolk_whisper_new(const char *url, const char *model, const char *api_key,
                                 int timeout_ms)
{
    if (!url || !*url || !model || timeout_ms <= 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    tolk_whisper_t *self = calloc(1, sizeof *self);
    if (!self) {
        curl_global_cleanup();
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    self->warned_ms = INT64_MIN / 2;
    self->url = strdup(url);
    self->model = strdup(model);
    self->headers = curl_slist_append(NULL, "Expect:");
    if (self->headers && api_key && *api_key) {
        char auth[1100];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        struct curl_slist *more = curl_slist_append(self->headers, auth);
        if (more)
            self->headers = more;
        else {
            curl_slist_free_all(self->headers);
            self->headers = NULL;
        }
    }
    self->loop = tolk_curl_loop_new(s_transfer_done, self);
    if (!self->url || !self->model || !self->headers || !self->loop) {
        tolk_whisper_destroy(&self);
        return NULL;
    }
    return self;
}

void tolk_whisper_destroy(tolk_whisper_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tolk_whisper_t *self = *self_p;
    *self_p = NULL;
    while (self->head)
        s_finish(self, self->head, NULL);
    tolk_curl_loop_destroy(&self->loop);
    curl_slist_free_all(self->headers);
    free(self->url);
    free(self->model);
    free(self);
    curl_global_cleanup();
}

/* Add a text field to a form. */
static CURLcode s_field(curl_mime *mime, const char *name, const char *value)
{
    curl_mimepart *part = curl_mime_addpart(mime);
    if (!part)
        return CURLE_OUT_OF_MEMORY;
    CURLcode rc = curl_mime_name(part, name);
    return rc ? rc : curl_mime_data(part, value, CURL_ZERO_TERMINATED);
}

int tolk_whisper_submit(tolk_whisper_t *self, const int16_t *pcm, size_t samples,
                        const char *language, const char *prompt, tolk_whisper_done_fn *done,
                        void *arg)
{
    if (!self || !pcm || samples == 0 || samples > TOLK_WHISPER_MAX_SAMPLES || !language)
        return -1;
    s_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return -1;
    size_t wav_len = 0;
    req->owner = self;
    req->wav = s_wav(pcm, samples, &wav_len);
    req->easy = curl_easy_init();
    req->mime = req->easy ? curl_mime_init(req->easy) : NULL;
    CURLcode rc = req->wav && req->mime ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    curl_mimepart *file = rc ? NULL : curl_mime_addpart(req->mime);
    if (!file)
        rc = CURLE_OUT_OF_MEMORY;
    if (!rc)
        rc = curl_mime_name(file, "file");
    if (!rc)
        rc = curl_mime_filename(file, "utterance.wav");
    if (!rc)
        rc = curl_mime_type(file, "audio/wav");
    if (!rc)
        rc = curl_mime_data(file, (const char *)req->wav, wav_len);
    if (!rc)
        rc = s_field(req->mime, "model", self->model);
    if (!rc)
        rc = s_field(req->mime, "language", language);
    if (!rc && prompt && *prompt)
        rc = s_field(req->mime, "prompt", prompt);
    if (!rc)
        rc = s_field(req->mime, "response_format", "json");
    CURL *e = req->easy;
    if (!rc) {
        rc = curl_easy_setopt(e, CURLOPT_URL, self->url);
        rc |= curl_easy_setopt(e, CURLOPT_MIMEPOST, req->mime);
        rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, self->headers);
        rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->timeout_ms);
        rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write_cb);
        rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
        rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)req);
    }
    if (rc || curl_multi_add_handle(tolk_curl_loop_multi(self->loop), e) != CURLM_OK) {
        curl_mime_free(req->mime);
        if (req->easy)
            curl_easy_cleanup(req->easy);
        free(req->wav);
        free(req);
        return -1;
    }
    req->sent_ms = tolk_curl_loop_now_ms();
    req->done = done;
    req->arg = arg;
    req->next = self->head;
    if (self->head)
        self->head->prev = req;
    self->head = req;
    self->npending++;
    self->stats.requests++;
    return 0;
}

int tolk_whisper_pollitems(tolk_whisper_t *self, zmq_pollitem_t *items, int max)
{
    return self ? tolk_curl_loop_pollitems(self->loop, items, max) : 0;
}

long tolk_whisper_timeout_ms(tolk_whisper_t *self)
{
    if (!self || self->npending == 0)
        return -1;
    int64_t due = tolk_curl_loop_due_ms(self->loop), now = tolk_curl_loop_now_ms();
    if (due < 0)
        return -1;
    return due <= now ? 0 : (long)(due - now);
}

void tolk_whisper_run(tolk_whisper_t *self, const zmq_pollitem_t *items, int n)
{
    if (!self)
        return;
    tolk_curl_loop_sockets(self->loop, items, n);
    tolk_curl_loop_timer(self->loop);
}

int tolk_whisper_pending(tolk_whisper_t *self)
{
    return self ? self->npending : 0;
}

void tolk_whisper_stats(tolk_whisper_t *self, tolk_whisper_stats_t *out)
{
    if (!out)
        return;
    if (!self)
        memset(out, 0, sizeof *out);
    else
        *out = self->stats;
}
