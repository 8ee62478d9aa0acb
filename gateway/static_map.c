/*  static_map.c -- which file under web_root a URL path names (static.h).

    Kept apart from static_http.c, which needs libwebsockets and the file
    system, so the rule that stands between a URL and the disk can be unit
    tested and fuzzed on its own (tests/fuzz/fuzz_path.c).
*/
#include "static.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *ext;
    const char *type;
} s_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *s_type_of(const char *file)
{
    const char *dot = strrchr(file, '.');
    const char *slash = strrchr(file, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (strcmp(dot, s_types[i].ext) == 0)
            return s_types[i].type;
    return NULL;
}

/* A whitelist, not a blacklist: whatever lws decoded from %XX, anything
   outside this set (backslash, NUL, control bytes, '%', ':', non-ASCII)
   never reaches the file system. */
static bool s_safe_chars(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == '/'))
            return false;
    }
    return true;
}

/* No empty, "." or ".." segment and no hidden file: a segment may not
   start with a dot at all. */
static bool s_safe_segments(const char *rel)
{
    const char *seg = rel;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || seg[0] == '.')
            return false;
        if (!end)
            return true;
        seg = end + 1;
    }
}

/* A session code as it may appear in a link; the page checks the exact form. */
static bool s_code_ok(const char *code)
{
    size_t n = strlen(code);
    if (n == 0 || n > 64)
        return false;
    for (; *code; code++) {
        unsigned char ch = (unsigned char)*code;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

int static_map_path(const char *path, char *rel, size_t relcap, const char **type)
{
    const char *file = NULL;
    if (!path || path[0] != '/' || strlen(path) > STATIC_PATH_MAX || !s_safe_chars(path) ||
        strstr(path, "..") || strstr(path, "//"))
        return -1;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        file = "index.html";
    else if (strcmp(path, "/speak") == 0 || strcmp(path, "/speak/") == 0)
        file = "speak.html";
    else if (strcmp(path, "/listen") == 0 || strcmp(path, "/listen/") == 0)
        file = "index.html"; /* no code yet: the page that asks for one */
    else if (strncmp(path, "/listen/", 8) == 0 && s_code_ok(path + 8))
        file = "listen.html";
    else if (strncmp(path, "/static/", 8) == 0 && s_safe_segments(path + 8))
        file = path + 1;
    else
        return -1;
    const char *t = s_type_of(file);
    if (!t || (size_t)snprintf(rel, relcap, "%s", file) >= relcap)
        return -1;
    *type = t;
    return 0;
}
