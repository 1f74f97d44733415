/* The figures a reconcile takes from `show stat` (maxconn, sessions, HAProxy's check verdict),
 * in a compact sorted form: looked up once per server per round, kept between rounds so that a
 * reconcile which needs none of them fresh (a weight change) does not pay for the read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "controller/ctl_int.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ctl_stat *)a)->name, ((const struct ctl_stat *)b)->name);
}

size_t ctl_stats_extract(const struct hap_stats *st, const char *backend, struct ctl_stat **out)
{
	struct ctl_stat *v = xcalloc(st->n ? st->n : 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < st->n; i++) {
		const struct hap_stat_row *r = &st->rows[i];
		if (r->type != HAP_STAT_SERVER || strcmp(r->pxname, backend) != 0 || strlen(r->svname) >= CTL_NAME_MAX)
			continue;
		struct ctl_stat *e = &v[n++];
		snprintf(e->name, sizeof(e->name), "%s", r->svname);
		e->maxconn = r->slim > 0 && r->slim <= HAP_MAXCONN_MAX ? (int)r->slim : 0;
		e->sessions = r->scur > 0 && r->scur <= INT32_MAX ? (int)r->scur : 0;
		e->check_down = strcmp(r->status, "DOWN") == 0;
	}
	qsort(v, n, sizeof(*v), by_name);
	*out = v;
	return n;
}

const struct ctl_stat *ctl_stats_lookup(const struct ctl_stat *v, size_t n, const char *name)
{
	struct ctl_stat key;
	if (n == 0 || snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), by_name);
}

void ctl_stats_store(struct ctl_service *s, const struct hap_stats *st, int64_t now)
{
	ctl_stats_release(s);
	s->n_stats = ctl_stats_extract(st, s->name, &s->stats);
	s->stats_at_us = now;
}

void ctl_stats_release(struct ctl_service *s)
{
	free(s->stats);
	s->stats = NULL;
	s->n_stats = 0;
	s->stats_at_us = 0;
}
