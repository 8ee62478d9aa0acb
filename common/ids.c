/*  ids.c -- process instance ids; see ids.h. */
#include "ids.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint32_t tolk_random_u32(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    return v;
}

void tolk_make_id(char *out, size_t cap, const char *prefix)
{
    snprintf(out, cap, "%s-%d-%08x", prefix, (int)getpid(), tolk_random_u32());
}
