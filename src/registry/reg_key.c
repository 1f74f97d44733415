/* The registry key layout: <prefix>/services/<service>/<instance>, its names and ranges. */
#include "registry/reg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/strutil.h"
#include "registry/reg_int.h"

#define SERVICES_SEG "/services/"

int reg_fail_set(struct reg_fail *fail, enum reg_reason reason, const char *fmt, ...)
{
	if (!fail)
		return -1;
	fail->reason = reason;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fail->err.msg, sizeof(fail->err.msg), fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_lower_digit(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(unsigned char c)
{
	return is_lower_digit(c) || (c >= 'A' && c <= 'Z');
}

static bool in_service_set(unsigned char c)
{
	return is_lower_digit(c) || c == '_' || c == '-';
}

static bool in_instance_set(unsigned char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
}

static bool in_prefix_set(unsigned char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
}

bool reg_service_name_valid(const char *s, size_t len)
{
	return len > 0 && is_lower_digit((unsigned char)s[0]) &&
	       str_all_in(s, len, REG_SERVICE_MAX, in_service_set);
}

bool reg_instance_name_valid(const char *s, size_t len)
{
	return len > 0 && is_alnum((unsigned char)s[0]) &&
	       str_all_in(s, len, REG_INSTANCE_MAX, in_instance_set);
}

int reg_prefix_check(const char *prefix, struct vxerr *err)
{
	size_t n = strlen(prefix);
	if (n == 0 || n > REG_PREFIX_MAX || prefix[0] != '/' || prefix[n - 1] == '/')
		return vxerr_set(err, "registry prefix '%s' must be /name[/name...] of at most %d bytes",
				 prefix, REG_PREFIX_MAX);
	if (!str_all_in(prefix, n, REG_PREFIX_MAX, in_prefix_set) || strstr(prefix, "//"))
		return vxerr_set(err, "registry prefix '%s' may hold only A-Z a-z 0-9 . _ - and single '/'",
				 prefix);
	return 0;
}

static int names_check(const char *service, const char *instance, struct vxerr *err)
{
	if (!reg_service_name_valid(service, strlen(service)))
		return vxerr_set(err, "service name '%s' must match [a-z0-9][a-z0-9_-]{0,62}", service);
	if (instance && !reg_instance_name_valid(instance, strlen(instance)))
		return vxerr_set(err, "instance name '%s' must match [A-Za-z0-9][A-Za-z0-9._:-]{0,63}",
				 instance);
	return 0;
}

int reg_key_build(const char *prefix, const char *service, const char *instance, char *out,
		  size_t cap, struct vxerr *err)
{
	if (reg_prefix_check(prefix, err) != 0 || names_check(service, instance, err) != 0)
		return -1;
	int n = snprintf(out, cap, "%s" SERVICES_SEG "%s/%s", prefix, service, instance);
	if (n < 0 || (size_t)n >= cap)
		return vxerr_set(err, "key buffer too small for service '%s' instance '%s'", service,
				 instance);
	return 0;
}

/* key/range_end for everything that starts with `start` (which ends in '/'): the end is the
 * same text with that last '/' incremented to '0'. */
static void range_fill(struct reg_range *r, const char *start)
{
	size_t n = strlen(start);
	memcpy(r->key, start, n + 1);
	memcpy(r->range_end, start, n + 1);
	r->range_end[n - 1] = (char)('/' + 1);
}

int reg_range_all(const char *prefix, struct reg_range *out, struct vxerr *err)
{
	if (reg_prefix_check(prefix, err) != 0)
		return -1;
	char start[REG_KEY_MAX];
	snprintf(start, sizeof(start), "%s" SERVICES_SEG, prefix);
	range_fill(out, start);
	return 0;
}

int reg_range_service(const char *prefix, const char *service, struct reg_range *out,
		      struct vxerr *err)
{
	if (reg_prefix_check(prefix, err) != 0 || names_check(service, NULL, err) != 0)
		return -1;
	char start[REG_KEY_MAX];
	snprintf(start, sizeof(start), "%s" SERVICES_SEG "%s/", prefix, service);
	range_fill(out, start);
	return 0;
}

char *reg_key_display(const char *key, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = xmalloc(4 * len + 1), *o = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c > 0x20 && c < 0x7f && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		*o++ = 'x';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 15];
	}
	*o = '\0';
	return out;
}

/* Checks "<service>/<instance>" (what follows "<prefix>/services/"); on success *slen is the
 * length of the service part. */
static enum reg_reason rest_check(const char *s, size_t len, size_t *slen, const char **why)
{
	const char *slash = memchr(s, '/', len);
	if (!slash || slash == s || memchr(slash + 1, '/', len - (size_t)(slash - s) - 1)) {
		*why = "key must be <prefix>/services/<service>/<instance>";
		return REG_BAD_KEY;
	}
	*slen = (size_t)(slash - s);
	if (!reg_service_name_valid(s, *slen)) {
		*why = "service name must match [a-z0-9][a-z0-9_-]{0,62}";
		return REG_BAD_NAME;
	}
	if (!reg_instance_name_valid(slash + 1, len - *slen - 1)) {
		*why = "instance name must match [A-Za-z0-9][A-Za-z0-9._:-]{0,63}";
		return REG_BAD_NAME;
	}
	return REG_OK;
}

enum reg_key_kind reg_key_parse(const char *prefix, const char *key, size_t len,
				struct reg_key *out, struct reg_fail *fail)
{
	size_t plen = strlen(prefix), seglen = strlen(SERVICES_SEG);
	if (len < plen + seglen || memcmp(key, prefix, plen) != 0 ||
	    memcmp(key + plen, SERVICES_SEG, seglen) != 0)
		return REG_KEY_OUTSIDE;
	const char *rest = key + plen + seglen, *why = NULL;
	size_t rlen = len - plen - seglen, slen = 0;
	enum reg_reason r = rest_check(rest, rlen, &slen, &why);
	if (r != REG_OK) {
		char *shown = reg_key_display(key, len);
		reg_fail_set(fail, r, "%s: %s", shown, why);
		free(shown);
		return REG_KEY_INVALID;
	}
	memcpy(out->service, rest, slen);
	out->service[slen] = '\0';
	memcpy(out->instance, rest + slen + 1, rlen - slen - 1);
	out->instance[rlen - slen - 1] = '\0';
	return REG_KEY_INSTANCE;
}
