/*  ids.h -- process instance ids: unique across restarts and hosts, so a
    restarted process is never mistaken for the one that died.
*/
#ifndef TOLK_IDS_H
#define TOLK_IDS_H

#include <stddef.h>
#include <stdint.h>

/* 32 random bits from the kernel. */
uint32_t tolk_random_u32(void);

/* Write "<prefix>-<pid>-<8 hex random>" into out. */
void tolk_make_id(char *out, size_t cap, const char *prefix);

#endif
