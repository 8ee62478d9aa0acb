/*  test_audio_check.c -- unit tests of the gateway's audio chunk checks
    and per-speaker chunk rate (gateway/audio_check.c).

    Every refusal SPEC sections 4 and 5 name is reached (too small, too
    large, odd length, a WAV header that is not 16 kHz/16-bit/mono, bad
    base64), a good WAV header is stripped, and the rate limiter is driven
    with a synthetic clock: exactly the rate is accepted per sliding
    second, the warning comes once after warn_s of continuous violation,
    the close after close_s, and a quiet second ends a violation.
*/
#include "../../gateway/audio_check.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A WAV header for rate/channels/bits followed by pcm_len bytes of PCM,
   in an exact-size heap block (ASan sees any read past it). */
static uint8_t *s_wav(uint32_t rate, uint16_t channels, uint16_t bits, size_t pcm_len, size_t *len)
{
    *len = 44 + pcm_len;
    uint8_t *b = calloc(1, *len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "RIFF", 4);
    uint32_t riff = (uint32_t)(*len - 8), fmt = 16, data = (uint32_t)pcm_len,
             byte_rate = rate * channels * bits / 8;
    memcpy(b + 4, &riff, 4);
    memcpy(b + 8, "WAVEfmt ", 8);
    memcpy(b + 16, &fmt, 4);
    uint16_t pcm = 1, align = (uint16_t)(channels * bits / 8);
    memcpy(b + 20, &pcm, 2);
    memcpy(b + 22, &channels, 2);
    memcpy(b + 24, &rate, 4);
    memcpy(b + 28, &byte_rate, 4);
    memcpy(b + 32, &align, 2);
    memcpy(b + 34, &bits, 2);
    memcpy(b + 36, "data", 4);
    memcpy(b + 40, &data, 4);
    return b;
}

static int s_check_len(size_t len, audio_verdict_t *v)
{
    uint8_t *b = calloc(1, len ? len : 1);
    int rc = audio_check_chunk(b, len, v);
    free(b);
    return rc;
}

START_TEST(test_plain_pcm_accepted)
{
    audio_verdict_t v;
    ck_assert_int_eq(s_check_len(3200, &v), 0);
    ck_assert_uint_eq(v.pcm_offset, 0);
    ck_assert_uint_eq(v.pcm_len, 3200);
    ck_assert_int_eq(s_check_len(100, &v), 0);
    ck_assert_int_eq(s_check_len(32 * 1024, &v), 0);
}
END_TEST

START_TEST(test_size_limits)
{
    audio_verdict_t v;
    ck_assert_int_eq(s_check_len(98, &v), -1);
    ck_assert_int_eq(v.status, 400);
    ck_assert_str_eq(v.code, "INVALID_AUDIO_FORMAT");
    ck_assert_int_eq(s_check_len(0, &v), -1);
    ck_assert_int_eq(v.status, 400);
    ck_assert_int_eq(s_check_len(32 * 1024 + 2, &v), -1);
    ck_assert_int_eq(v.status, 413);
    ck_assert_str_eq(v.code, "PAYLOAD_TOO_LARGE");
}
END_TEST

START_TEST(test_odd_length)
{
    audio_verdict_t v;
    ck_assert_int_eq(s_check_len(3201, &v), -1);
    ck_assert_int_eq(v.status, 400);
    ck_assert_str_eq(v.code, "INVALID_AUDIO_FORMAT");
}
END_TEST

START_TEST(test_wav_stripped)
{
    size_t len;
    uint8_t *b = s_wav(16000, 1, 16, 3200, &len);
    audio_verdict_t v;
    ck_assert_int_eq(audio_check_chunk(b, len, &v), 0);
    ck_assert_uint_eq(v.pcm_offset, 44);
    ck_assert_uint_eq(v.pcm_len, 3200);
    /* a streaming writer's header: data size 0 means "the rest" */
    memset(b + 40, 0, 4);
    ck_assert_int_eq(audio_check_chunk(b, len, &v), 0);
    ck_assert_uint_eq(v.pcm_len, 3200);
    free(b);
}
END_TEST

START_TEST(test_wav_wrong_format)
{
    static const struct {
        uint32_t rate;
        uint16_t channels, bits;
    } bad[] = {{44100, 1, 16}, {16000, 2, 16}, {16000, 1, 8}, {8000, 1, 16}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        uint8_t *b = s_wav(bad[i].rate, bad[i].channels, bad[i].bits, 3200, &len);
        audio_verdict_t v;
        ck_assert_int_eq(audio_check_chunk(b, len, &v), -1);
        ck_assert_int_eq(v.status, 400);
        ck_assert_str_eq(v.code, "INVALID_AUDIO_FORMAT");
        free(b);
    }
}
END_TEST

START_TEST(test_wav_truncated)
{
    size_t len;
    uint8_t *b = s_wav(16000, 1, 16, 3200, &len);
    uint32_t huge = 0x7ffffff0;
    memcpy(b + 16, &huge, 4); /* fmt chunk claims more than there is */
    audio_verdict_t v;
    ck_assert_int_eq(audio_check_chunk(b, len, &v), -1);
    ck_assert_int_eq(v.status, 400);
    free(b);
    /* RIFF without WAVE */
    b = s_wav(16000, 1, 16, 3200, &len);
    memcpy(b + 8, "AVI ", 4);
    ck_assert_int_eq(audio_check_chunk(b, len, &v), -1);
    free(b);
    /* header only, no samples after it */
    b = s_wav(16000, 1, 16, 60, &len);
    ck_assert_int_eq(audio_check_chunk(b, 44, &v), -1);
    free(b);
}
END_TEST

START_TEST(test_wav_odd_data)
{
    size_t len;
    uint8_t *b = s_wav(16000, 1, 16, 3201, &len);
    audio_verdict_t v;
    ck_assert_int_eq(audio_check_chunk(b, len, &v), -1);
    ck_assert_int_eq(v.status, 400);
    free(b);
}
END_TEST

START_TEST(test_base64_decoded)
{
    const char *json = "{\"action\":\"sendAudio\",\"audioData\":\"AAECAwQF\"}";
    uint8_t out[AUDIO_CHUNK_MAX + 4];
    audio_verdict_t v;
    long n = audio_decode_send_audio(json, strlen(json), out, sizeof out, &v);
    ck_assert_int_eq(n, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(out[i], i);
    json = "{\"action\":\"sendAudio\",\"audioData\":\"AAE=\"}";
    ck_assert_int_eq(audio_decode_send_audio(json, strlen(json), out, sizeof out, &v), 2);
    json = "{\"action\":\"sendAudio\",\"audioData\":\"AA==\"}";
    ck_assert_int_eq(audio_decode_send_audio(json, strlen(json), out, sizeof out, &v), 1);
}
END_TEST

START_TEST(test_base64_refused)
{
    const char *bad[] = {
        "{\"action\":\"sendAudio\"}",
        "{\"action\":\"sendAudio\",\"audioData\":12}",
        "{\"action\":\"sendAudio\",\"audioData\":\"AAE\"}",
        "{\"action\":\"sendAudio\",\"audioData\":\"AA*A\"}",
        "{\"action\":\"sendAudio\",\"audioData\":\"A===\"}",
        "{\"action\":\"sendAudio\",\"audioData\":\"AA==AAAA\"}",
    };
    uint8_t out[AUDIO_CHUNK_MAX + 4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        audio_verdict_t v;
        ck_assert_msg(audio_decode_send_audio(bad[i], strlen(bad[i]), out, sizeof out, &v) == -1,
                      "accepted %s", bad[i]);
        ck_assert_int_eq(v.status, 400);
        ck_assert_str_eq(v.code, "INVALID_AUDIO_FORMAT");
    }
}
END_TEST

START_TEST(test_base64_too_large)
{
    size_t n = (AUDIO_CHUNK_MAX + 3) / 3 * 4 + 8; /* decodes past 32 KB */
    char *json = malloc(n + 64);
    int h = sprintf(json, "{\"action\":\"sendAudio\",\"audioData\":\"");
    memset(json + h, 'A', n);
    strcpy(json + h + n, "\"}");
    uint8_t out[AUDIO_CHUNK_MAX + 4];
    audio_verdict_t v;
    ck_assert_int_eq(audio_decode_send_audio(json, strlen(json), out, sizeof out, &v), -1);
    ck_assert_int_eq(v.status, 413);
    free(json);
}
END_TEST

#define MS 1000000ull

START_TEST(test_rate_window)
{
    audio_rate_t r;
    memset(&r, 0, sizeof r);
    uint64_t t = 1000 * MS;
    /* 50 at once are fine, the 51st in the same second is not */
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(audio_rate_admit(&r, t + (uint64_t)i * MS, 50, 5, 30), AUDIO_RATE_ACCEPT);
    ck_assert_int_eq(audio_rate_admit(&r, t + 60 * MS, 50, 5, 30), AUDIO_RATE_DROP);
    ck_assert_int_eq(r.dropped, 1);
    /* a second after the first, one slot has freed up, and only one */
    ck_assert_int_eq(audio_rate_admit(&r, t + 999 * MS, 50, 5, 30), AUDIO_RATE_DROP);
    ck_assert_int_eq(audio_rate_admit(&r, t + 1000 * MS, 50, 5, 30), AUDIO_RATE_ACCEPT);
    ck_assert_int_eq(audio_rate_admit(&r, t + 1000 * MS, 50, 5, 30), AUDIO_RATE_DROP);
}
END_TEST

START_TEST(test_rate_steady_at_limit)
{
    audio_rate_t r;
    memset(&r, 0, sizeof r);
    /* 50/s exactly, for a minute: never a drop */
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(audio_rate_admit(&r, (uint64_t)i * 20 * MS + MS, 50, 5, 30),
                         AUDIO_RATE_ACCEPT);
    /* 48/s (4 % under the limit) with every seventh chunk held up 40 ms on
       the way (the chunks after it on time): never a drop */
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(
            audio_rate_admit(&r, (uint64_t)i * 1000 * MS / 48 + MS + (i % 7 == 0 ? 40 * MS : 0), 50,
                             5, 30),
            AUDIO_RATE_ACCEPT);
    /* 100/s for 10 s: exactly 50 a second get through */
    memset(&r, 0, sizeof r);
    int accepted = 0;
    for (int i = 0; i < 1000; i++)
        accepted +=
            audio_rate_admit(&r, (uint64_t)i * 10 * MS + MS, 50, 5, 30) == AUDIO_RATE_ACCEPT;
    ck_assert_int_eq(accepted, 500);
}
END_TEST

START_TEST(test_rate_warn_then_close)
{
    audio_rate_t r;
    memset(&r, 0, sizeof r);
    int warns = 0, accepted = 0;
    uint64_t t, closed_at = 0;
    audio_rate_result_t res = AUDIO_RATE_ACCEPT;
    /* 60 chunks/s: 10 dropped every second, continuously */
    for (t = MS; res != AUDIO_RATE_CLOSE && t < 40000 * MS; t += 1000 * MS / 60) {
        res = audio_rate_admit(&r, t, 50, 5, 30);
        if (res == AUDIO_RATE_WARN) {
            warns++;
            /* at the first drop 5 s into the violation (drops come in
               runs as the window frees slots, up to 1 s apart) */
            ck_assert_uint_ge(t - r.violation_start_ns, 5000 * MS);
            ck_assert_uint_lt(t - r.violation_start_ns, 6000 * MS);
        }
        if (res == AUDIO_RATE_ACCEPT)
            accepted++;
        if (res == AUDIO_RATE_CLOSE)
            closed_at = t;
    }
    ck_assert_int_eq(res, AUDIO_RATE_CLOSE);
    ck_assert_int_eq(warns, 1);
    ck_assert_uint_ge(closed_at - r.violation_start_ns, 30000 * MS);
    ck_assert_uint_lt(closed_at - r.violation_start_ns,
                      31000 * MS); /* at the first drop after 30 s */
    /* accepted: 50 per second of the ~31 s */
    ck_assert_int_ge(accepted, 50 * 30);
    ck_assert_int_le(accepted, 50 * 32);
}
END_TEST

START_TEST(test_rate_violation_ends)
{
    audio_rate_t r;
    memset(&r, 0, sizeof r);
    uint64_t t = MS;
    for (int i = 0; i < 4 * 60; i++, t += 1000 * MS / 60)
        audio_rate_admit(&r, t, 50, 5, 30);
    ck_assert_uint_ne(r.violation_start_ns, 0);
    /* two quiet seconds, then over the rate again: a new violation */
    t += 2000 * MS;
    for (int i = 0; i < 4 * 60; i++, t += 1000 * MS / 60)
        ck_assert_int_ne(audio_rate_admit(&r, t, 50, 5, 30), AUDIO_RATE_WARN);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("audio_check");
    TCase *tc = tcase_create("chunk");
    tcase_add_test(tc, test_plain_pcm_accepted);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_odd_length);
    tcase_add_test(tc, test_wav_stripped);
    tcase_add_test(tc, test_wav_wrong_format);
    tcase_add_test(tc, test_wav_truncated);
    tcase_add_test(tc, test_wav_odd_data);
    suite_add_tcase(s, tc);
    tc = tcase_create("base64");
    tcase_add_test(tc, test_base64_decoded);
    tcase_add_test(tc, test_base64_refused);
    tcase_add_test(tc, test_base64_too_large);
    suite_add_tcase(s, tc);
    tc = tcase_create("rate");
    tcase_add_test(tc, test_rate_window);
    tcase_add_test(tc, test_rate_steady_at_limit);
    tcase_add_test(tc, test_rate_warn_then_close);
    tcase_add_test(tc, test_rate_violation_ends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
