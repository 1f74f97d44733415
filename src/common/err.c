/* Caller-supplied error messages. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vxerr_set(struct vxerr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int vxerr_prefix(struct vxerr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char head[VXERR_MAX], old[VXERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	size_t h = strlen(head), o = strnlen(old, sizeof(old) - 1);
	if (h > sizeof(err->msg) - 1)
		h = sizeof(err->msg) - 1;
	if (o > sizeof(err->msg) - 1 - h)
		o = sizeof(err->msg) - 1 - h;
	memcpy(err->msg, head, h);
	memcpy(err->msg + h, old, o);
	err->msg[h + o] = '\0';
	return -1;
}
