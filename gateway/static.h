/*  static.h -- which file under web_root a URL path names, and as what.

    The gateway serves tolk's browser pages itself so that a speaker and
    their listeners need nothing but the gateway's address. The mapping from
    URL path to file is kept pure (no file system, no lws) so it can be read
    and tested on its own; gateway/static.c does the serving.
*/
#ifndef TOLK_STATIC_H
#define TOLK_STATIC_H

#include <stddef.h>

#define STATIC_FILE_MAX (2 * 1024 * 1024) /* bytes: a page or asset larger than this is refused */
#define STATIC_PATH_MAX 200               /* bytes of a URL path we consider at all */

/* Map a decoded URL path ("/", "/speak", "/listen/golden-eagle-427",
   "/static/app.js") to a file relative to web_root ("index.html",
   "static/app.js") in rel (relcap bytes) and its Content-Type in *type.
   Returns 0, or -1 when the path names nothing we serve or is suspicious
   (a ".." or hidden segment, "//", a character outside [A-Za-z0-9._/-], an
   unknown extension). */
int static_map_path(const char *path, char *rel, size_t relcap, const char **type);

#endif
