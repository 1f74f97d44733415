/* Internals of the test server shared with its tests: the control query parser (pure). */
#ifndef VX_LOAD_TS_INT_H
#define VX_LOAD_TS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "load/testserver.h"

#define TS_MAX_CAPACITY 1000000

struct ts_change {
	bool has_service;
	struct ts_dist service;
	double fail_rate; /* < 0: unchanged */
	int capacity;     /* <= 0: unchanged */
};

/* "service_time=200ms&fail_rate=0.1&capacity=8" (n bytes, no leading '?'). Unknown keys,
 * repeated keys, percent-escapes and bad values are refused. */
int ts_query_parse(const char *q, size_t n, struct ts_change *out, struct vxerr *err);

#endif
