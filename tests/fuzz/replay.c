/*  replay.c -- runs a libFuzzer target over its saved corpus without libFuzzer.

    make test links every tests/fuzz/fuzz_<name>.c with this driver as
    replay_<name> and runs it: every input that was ever saved (seeds and
    past findings in tests/fuzz/corpus/<name>/) is fed again under the
    ordinary and the sanitizer build, so a fixed bug stays fixed.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed one file to the target; returns 0, or -1 if it cannot be read. */
static int s_replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    /* the corpus directory: argv[1], else derived from our name replay_<name> */
    char dir[1024];
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    const char *top = getenv("TOLK_TOP") ? getenv("TOLK_TOP") : ".";
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top,
                 strncmp(name, "replay_", 7) == 0 ? name + 7 : name);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: no corpus at %s\n", name, dir);
        return 1;
    }
    int count = 0, failed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (s_replay_file(path) != 0)
            failed++;
        count++;
    }
    closedir(d);
    printf("%s: replayed %d inputs from %s\n", name, count, dir);
    return failed ? 1 : 0;
}
