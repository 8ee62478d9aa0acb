/*  fuzz_path.c -- libFuzzer target for the URL-path-to-file rule
    (gateway/static_map.c), the only thing between an HTTP request line and
    the gateway's disk.

    Whatever the bytes (lws hands the rule a decoded path, so anything may
    be in it), an accepted path must name one of the pages or a file under
    static/ by a relative name without "..", "//", a hidden segment or a
    character outside [A-Za-z0-9._/-], with a known Content-Type; and the
    result must fit the caller's buffer, even a small one.
*/
#include "static.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* True for the bytes the rule may ever pass to the file system; kept apart
   from static_map.c's own check so a loosened check there shows up here. */
static bool s_allowed(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/* Abort unless rel is a name static.c may open under web_root. */
static void s_check(const char *rel, const char *type)
{
    if (!type || !type[0] || !rel[0] || rel[0] == '/' || !s_allowed(rel) || strstr(rel, "..") ||
        strstr(rel, "//") || strstr(rel, "/."))
        abort();
    if (strcmp(rel, "index.html") != 0 && strcmp(rel, "speak.html") != 0 &&
        strcmp(rel, "listen.html") != 0 && strncmp(rel, "static/", 7) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* a NUL-terminated copy: lws gives the rule a C string, so bytes after an
       embedded NUL are simply not seen */
    char *path = malloc(size + 1);
    if (!path)
        return 0;
    memcpy(path, data, size);
    path[size] = 0;
    char rel[256];
    const char *type = NULL;
    if (static_map_path(path, rel, sizeof rel, &type) == 0)
        s_check(rel, type);
    /* a buffer too small for most names: refused, never overrun */
    char tiny[12];
    type = NULL;
    if (static_map_path(path, tiny, sizeof tiny, &type) == 0) {
        if (strlen(tiny) >= sizeof tiny)
            abort();
        s_check(tiny, type);
    }
    free(path);
    return 0;
}
