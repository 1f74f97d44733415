/* Logs as logfmt on stderr: `ts=2026-11-27T07:21:26.123Z level=info msg="lease lost" key=value`.
 *
 * Only command entry points and daemon loops log; library code returns errors instead.
 * Values that may hold spaces, quotes or '=' go through log_q(), which quotes them. */
#ifndef VX_COMMON_LOG_H
#define VX_COMMON_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Minimum level printed; default LOG_INFO, or $VELTRIX_LOG_LEVEL when set. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int log_level_parse(const char *s, enum log_level *out);
/* Where lines go (stderr by default); tests point it at a file. */
void log_set_output(FILE *out);
/* Prefixes every line with `component=<name>` (for example "agent"). */
void log_set_component(const char *name);

int log_enabled(enum log_level level);
void log_write(enum log_level level, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_msg(enum log_level level, const char *msg);

/* A logfmt-safe rendering of s (quoted and escaped when needed). Returns one of a few
 * thread-local buffers, so up to 8 may be used in one log call; long values are cut. */
const char *log_q(const char *s);

#define log_debug(msg, ...) \
	do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
