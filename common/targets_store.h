/*  targets_store.h -- which languages listeners may choose, per source.

    The audio workers ask the translator what each source language reaches
    and publish it as tolk:targets:<source> (a comma separated list of ISO
    639-1 codes, the source first) with a TTL that outlives a few missed
    refreshes; the control workers validate joinSession and changeLanguage
    against it. One key per source language, nothing else.
*/
#ifndef TOLK_TARGETS_STORE_H
#define TOLK_TARGETS_STORE_H

#include "redis_link.h"

#include <stddef.h>

/* Publish the targets of source for ttl_s seconds. Returns 0, or -1 when
   Redis is down or refused. */
int tolk_targets_set(tolk_redis_t *redis, const char *source, const char *targets, int ttl_s);

/* Read the targets of source into out. Returns 1 when found, 0 when the
   key is missing (no audio worker has said yet) or too long for out, -1
   when Redis is down. */
int tolk_targets_get(tolk_redis_t *redis, const char *source, char *out, size_t out_cap);

#endif
