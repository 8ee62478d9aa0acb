/*  audio_file.h -- any audio file a speaker has, as the PCM tolk takes.

    tolk's wire format is 16 kHz, 16-bit, mono PCM. A speaker's recording
    is whatever their phone or editor wrote: 44.1 or 48 kHz, stereo, FLAC,
    Ogg Vorbis, MP3 where libsndfile reads it. libsndfile decodes it,
    channels are averaged to mono, and libsamplerate converts the rate, so
    tolk-speak (and the tests and benchmarks that read recordings) never
    parse a container by hand.
*/
#ifndef TOLK_AUDIO_FILE_H
#define TOLK_AUDIO_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The longest recording read: four hours, about 460 MB of 16 kHz PCM. */
#define TOLK_AUDIO_FILE_MAX_S (4 * 3600)

/* Read path into 16 kHz mono int16 samples (host order). On success *pcm is
   malloc'd (the caller frees it), *samples its count, and 0 is returned.
   On failure returns -1 with a sentence in err ("not an audio file
   libsndfile reads: ...", "longer than 4 hours", ...). */
int tolk_audio_file_read(const char *path, int16_t **pcm, size_t *samples, char *err,
                         size_t errlen);

/* The same from an open file descriptor (read from its current offset; not
   closed). The name in messages is what to call it. */
int tolk_audio_file_read_fd(int fd, const char *name, int16_t **pcm, size_t *samples, char *err,
                            size_t errlen);

#endif
