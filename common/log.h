/*  log.h -- JSON-line logs, one object per line on stderr.

    {timestamp, level, correlationId, component, operation, message, metadata}
    as SPEC section 6 asks. Callers never pass tokens, audio, user ids or
    addresses; identifiers go through tolk_log_hash first.
*/
#ifndef TOLK_LOG_H
#define TOLK_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TOLK_LOG_DEBUG, TOLK_LOG_INFO, TOLK_LOG_WARN, TOLK_LOG_ERROR } tolk_log_level_t;

/* Name the process's component and the lowest level written. */
void tolk_log_init(const char *component, const char *level);

/* Write one line. correlation may be NULL; metadata, when not NULL, must be a
   JSON object text written as-is. */
void tolk_log(tolk_log_level_t level, const char *operation, const char *correlation,
              const char *metadata, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Short SHA-256 of an identifier (16 hex digits + NUL), for logs. */
void tolk_log_hash(const void *data, size_t len, char out[17]);

/* Same for a numeric connection id. */
void tolk_log_hash_u64(uint64_t id, char out[17]);

#define tolk_debug(op, corr, ...) tolk_log(TOLK_LOG_DEBUG, op, corr, NULL, __VA_ARGS__)
#define tolk_info(op, corr, ...)  tolk_log(TOLK_LOG_INFO, op, corr, NULL, __VA_ARGS__)
#define tolk_warn(op, corr, ...)  tolk_log(TOLK_LOG_WARN, op, corr, NULL, __VA_ARGS__)
#define tolk_error(op, corr, ...) tolk_log(TOLK_LOG_ERROR, op, corr, NULL, __VA_ARGS__)

#endif
