/*  audio_file.c -- decode with libsndfile, downmix, resample with libsamplerate. */
#include "audio_file.h"

#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

/* The rate tolk's recognisers and wire format use. */
#define TOLK_AUDIO_RATE 16000

/* Read the frames of f as mono floats (channels averaged), at most limit.
   The buffer grows with what is really decoded, never with what the header
   claims. NULL on failure; *frames the count read. */
static float *s_read_mono(SNDFILE *f, size_t channels, size_t limit, size_t *frames)
{
    size_t cap = 16384, got = 0;
    float *mono = malloc(cap * sizeof *mono);
    float *block = malloc(4096 * channels * sizeof *block);
    while (mono && block && got < limit) {
        sf_count_t n = sf_readf_float(f, block, 4096);
        if (n <= 0)
            break;
        if (got + (size_t)n > cap) {
            cap *= 2;
            float *bigger = realloc(mono, cap * sizeof *mono);
            if (!bigger) {
                free(mono);
                mono = NULL;
                break;
            }
            mono = bigger;
        }
        for (sf_count_t i = 0; i < n && got < limit; i++, got++) {
            float sum = 0;
            for (size_t c = 0; c < channels; c++)
                sum += block[(size_t)i * channels + c];
            mono[got] = sum / (float)channels;
        }
    }
    free(block);
    *frames = got;
    return mono;
}

/* Decode the open file f (closed here); path names it in messages. */
static int s_decode(SNDFILE *f, SF_INFO info, const char *path, int16_t **pcm, size_t *samples,
                    char *err, size_t errlen)
{
    if (!f) {
        snprintf(err, errlen, "%s: not an audio file libsndfile reads: %s", path,
                 sf_strerror(NULL));
        return -1;
    }
    if (info.channels < 1 || info.samplerate < 1000 || info.samplerate > 384000 ||
        info.frames < 0) {
        snprintf(err, errlen, "%s: %d channels at %d Hz is not audio tolk can use", path,
                 info.channels, info.samplerate);
        sf_close(f);
        return -1;
    }
    size_t limit = (size_t)TOLK_AUDIO_FILE_MAX_S * (size_t)info.samplerate, frames = 0;
    if (info.channels > 64 || info.frames > (sf_count_t)limit) {
        snprintf(err, errlen, "%s: %d channels, %lld frames: more than %d hours of audio", path,
                 info.channels, (long long)info.frames, TOLK_AUDIO_FILE_MAX_S / 3600);
        sf_close(f);
        return -1;
    }
    float *mono = s_read_mono(f, (size_t)info.channels, limit, &frames);
    sf_close(f);
    if (!mono) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    double ratio = (double)TOLK_AUDIO_RATE / info.samplerate;
    size_t out_frames = (size_t)((double)frames * ratio) + 16;
    float *resampled = mono;
    if (info.samplerate != TOLK_AUDIO_RATE) {
        resampled = malloc(out_frames * sizeof *resampled);
        SRC_DATA d = {.data_in = mono,
                      .data_out = resampled,
                      .input_frames = (long)frames,
                      .output_frames = (long)out_frames,
                      .src_ratio = ratio};
        int rc = resampled ? src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1) : -1;
        free(mono);
        if (rc != 0) {
            free(resampled);
            snprintf(err, errlen, "%s: cannot convert %d Hz to 16 kHz: %s", path, info.samplerate,
                     rc > 0 ? src_strerror(rc) : "out of memory");
            return -1;
        }
        frames = (size_t)d.output_frames_gen;
    }
    *pcm = malloc((frames ? frames : 1) * sizeof **pcm);
    if (!*pcm) {
        free(resampled);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    src_float_to_short_array(resampled, *pcm, (int)frames);
    free(resampled);
    *samples = frames;
    return 0;
}

int tolk_audio_file_read(const char *path, int16_t **pcm, size_t *samples, char *err, size_t errlen)
{
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    return s_decode(f, info, path, pcm, samples, err, errlen);
}

int tolk_audio_file_read_fd(int fd, const char *name, int16_t **pcm, size_t *samples, char *err,
                            size_t errlen)
{
    SF_INFO info = {0};
    SNDFILE *f = sf_open_fd(fd, SFM_READ, &info, 0);
    return s_decode(f, info, name, pcm, samples, err, errlen);
}
