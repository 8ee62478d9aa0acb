/*  audio_check.c -- audio chunk checks and the per-speaker chunk rate;
    see audio_check.h. */
#include "audio_check.h"

#include <jansson.h>
#include <string.h>

static int s_refuse(audio_verdict_t *v, int status, const char *code, const char *message)
{
    v->status = status;
    v->code = code;
    v->message = message;
    v->pcm_offset = v->pcm_len = 0;
    return -1;
}

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t s_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Walk the RIFF chunks of a WAV header: the format must be what the
   recogniser takes, and the PCM starts at the data chunk. Every chunk
   length is checked against the bytes we have. */
static int s_wav(const uint8_t *data, size_t len, audio_verdict_t *v)
{
    if (len < 12 || memcmp(data + 8, "WAVE", 4) != 0)
        return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "a RIFF header that is not WAVE");
    size_t pos = 12;
    bool have_fmt = false;
    while (pos + 8 <= len) {
        const uint8_t *id = data + pos;
        uint32_t size = s_le32(data + pos + 4);
        pos += 8;
        if (memcmp(id, "data", 4) == 0) {
            if (!have_fmt)
                return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "WAV data before its format");
            /* streaming writers leave the size 0 or huge: take what is here */
            size_t avail = len - pos;
            v->pcm_offset = pos;
            v->pcm_len = size && size < avail ? size : avail;
            return 0;
        }
        if (memcmp(id, "fmt ", 4) == 0) {
            if (size < 16 || size > len - pos)
                return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "a truncated WAV format chunk");
            uint16_t format = s_le16(data + pos), channels = s_le16(data + pos + 2);
            uint32_t rate = s_le32(data + pos + 4);
            uint16_t bits = s_le16(data + pos + 14);
            if (format != 1 || channels != 1 || rate != 16000 || bits != 16)
                return s_refuse(v, 400, "INVALID_AUDIO_FORMAT",
                                "audio must be 16 kHz, 16-bit, mono PCM");
            have_fmt = true;
        }
        /* chunks are padded to an even length */
        size_t skip = (size_t)size + (size & 1);
        if (skip > len - pos)
            return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "a truncated WAV header");
        pos += skip;
    }
    return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "a WAV header without data");
}

int audio_check_chunk(const uint8_t *data, size_t len, audio_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    if (len > AUDIO_CHUNK_MAX)
        return s_refuse(v, 413, "PAYLOAD_TOO_LARGE", "audio chunks are limited to 32 KB");
    if (len < AUDIO_CHUNK_MIN)
        return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "audio chunks must be at least 100 bytes");
    if (len >= 4 && memcmp(data, "RIFF", 4) == 0) {
        if (s_wav(data, len, v) != 0)
            return -1;
    } else {
        v->pcm_offset = 0;
        v->pcm_len = len;
    }
    if (v->pcm_len == 0)
        return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "no audio after the WAV header");
    if (v->pcm_len % 2)
        return s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "16-bit PCM has an even number of bytes");
    return 0;
}

/* Value of one base64 character, or -1. */
static int s_b64(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

long audio_decode_send_audio(const char *text, size_t len, uint8_t *out, size_t cap,
                             audio_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    json_error_t err;
    /* the gateway's 128 KB message cap bounds this parse */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    json_t *data = root ? json_object_get(root, "audioData") : NULL;
    if (!json_is_string(data)) {
        json_decref(root);
        s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "audioData must be a base64 string");
        return -1;
    }
    const char *b64 = json_string_value(data);
    size_t n = json_string_length(data);
    if (n / 4 * 3 > AUDIO_CHUNK_MAX + 2 || n / 4 * 3 > cap) {
        json_decref(root);
        s_refuse(v, 413, "PAYLOAD_TOO_LARGE", "audio chunks are limited to 32 KB");
        return -1;
    }
    if (n % 4) {
        json_decref(root);
        s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "audioData is not valid base64");
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int a = s_b64((unsigned char)b64[i]), b = s_b64((unsigned char)b64[i + 1]);
        bool last = i + 4 == n;
        bool pad2 = last && b64[i + 2] == '=' && b64[i + 3] == '=';
        bool pad1 = last && !pad2 && b64[i + 3] == '=';
        int c = pad2 ? 0 : s_b64((unsigned char)b64[i + 2]);
        int d = pad1 || pad2 ? 0 : s_b64((unsigned char)b64[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0) {
            json_decref(root);
            s_refuse(v, 400, "INVALID_AUDIO_FORMAT", "audioData is not valid base64");
            return -1;
        }
        uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(w >> 16);
        if (!pad2)
            out[o++] = (uint8_t)(w >> 8);
        if (!pad1 && !pad2)
            out[o++] = (uint8_t)w;
    }
    json_decref(root);
    return (long)o;
}

audio_rate_result_t audio_rate_admit(audio_rate_t *r, uint64_t now_ns, int rate, int warn_s,
                                     int close_s)
{
    const uint64_t second = 1000000000ull;
    if (rate > AUDIO_RATE_MAX)
        rate = AUDIO_RATE_MAX;
    if (rate < 1)
        rate = 1;
    /* forget accepted chunks a second old: no allowance for jitter, so that
       no second ever holds more than rate chunks and a sustained rate is
       exactly rate (a client sending at the very limit with uneven delays
       loses a chunk now and then; the protocol's 100-200 ms chunks are far
       below it) */
    while (r->count && now_ns - r->times[r->head] >= second) {
        r->head = (r->head + 1) % AUDIO_RATE_MAX;
        r->count--;
    }
    /* a second without drops ends a violation */
    if (r->violation_start_ns && now_ns - r->last_drop_ns >= second) {
        r->violation_start_ns = 0;
        r->warned = false;
    }
    if (r->count < rate) {
        r->times[(r->head + r->count) % AUDIO_RATE_MAX] = now_ns;
        r->count++;
        return AUDIO_RATE_ACCEPT;
    }
    r->dropped++;
    if (!r->violation_start_ns)
        r->violation_start_ns = now_ns;
    r->last_drop_ns = now_ns;
    uint64_t lasted = now_ns - r->violation_start_ns;
    if (lasted >= (uint64_t)close_s * second)
        return AUDIO_RATE_CLOSE;
    if (lasted >= (uint64_t)warn_s * second && !r->warned) {
        r->warned = true;
        return AUDIO_RATE_WARN;
    }
    return AUDIO_RATE_DROP;
}
