/* logfmt logging. One write(2)-sized line per call so concurrent processes interleave whole lines. */
#include "common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

static enum log_level min_level = LOG_INFO;
static bool level_from_env_done;
static FILE *log_out;
static char component[32];

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_OFF; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

static void level_from_env(void)
{
	if (level_from_env_done)
		return;
	level_from_env_done = true;
	const char *env = getenv("VELTRIX_LOG_LEVEL");
	enum log_level lvl;
	if (env && log_level_parse(env, &lvl) == 0)
		min_level = lvl;
}

void log_set_level(enum log_level level)
{
	level_from_env_done = true;
	min_level = level;
}

enum log_level log_get_level(void)
{
	level_from_env();
	return min_level;
}

void log_set_output(FILE *out)
{
	log_out = out;
}

void log_set_component(const char *name)
{
	snprintf(component, sizeof(component), "%s", name ? name : "");
}

int log_enabled(enum log_level level)
{
	level_from_env();
	return level >= min_level && level < LOG_OFF;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
			return true;
	return false;
}

const char *log_q(const char *s)
{
	static _Thread_local char bufs[8][256];
	static _Thread_local unsigned next;
	char *out = bufs[next++ % 8];
	size_t cap = sizeof(bufs[0]);
	if (!s)
		s = "";
	if (!needs_quotes(s)) {
		snprintf(out, cap, "%s", s);
		return out;
	}
	size_t o = 0;
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (*p < ' ' || *p == 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	if (o + 8 >= cap && s[0])
		o += (size_t)snprintf(out + o, cap - o, "...");
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static void emit(enum log_level level, const char *msg, const char *kv)
{
	char line[2048];
	char ts[40];
	time_fmt_rfc3339(ts, sizeof(ts), time_wall_ms());
	int n = snprintf(line, sizeof(line), "ts=%s level=%s", ts, level_names[level]);
	if (component[0])
		n += snprintf(line + n, sizeof(line) - (size_t)n, " component=%s", component);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " msg=%s", log_q(msg));
	if (kv && kv[0] && n < (int)sizeof(line) - 2)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", kv);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	FILE *out = log_out ? log_out : stderr;
	fwrite(line, 1, (size_t)n, out);
	fflush(out);
}

void log_write(enum log_level level, const char *msg, const char *kvfmt, ...)
{
	if (!log_enabled(level))
		return;
	char kv[1536];
	va_list ap;
	va_start(ap, kvfmt);
	vsnprintf(kv, sizeof(kv), kvfmt, ap);
	va_end(ap);
	emit(level, msg, kv);
}

void log_msg(enum log_level level, const char *msg)
{
	if (!log_enabled(level))
		return;
	emit(level, msg, NULL);
}
