/*  fuzz_audio_file.c -- libFuzzer target for the recordings tolk-speak
    reads (common/audio_file.c: libsndfile, downmix, libsamplerate).

    A speaker's file may be truncated, mislabelled or made by any tool; it
    must get a clear error, never a crash or an allocation of what a lying
    header claims. The input goes through a memfd, as a file would. A
    decoded recording is never longer than the four-hour limit (and the
    resampler's margin).
*/
/* fuzz-options: -max_len=65536 -rss_limit_mb=4096 */
#include "audio_file.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-audio", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return 0;
    }
    int16_t *pcm = NULL;
    size_t samples = 0;
    char err[512];
    if (tolk_audio_file_read_fd(fd, "input", &pcm, &samples, err, sizeof err) == 0) {
        if (samples > (size_t)TOLK_AUDIO_FILE_MAX_S * 16000 + 64)
            abort();
        free(pcm);
    } else if (!err[0]) {
        abort();
    }
    close(fd);
    return 0;
}
