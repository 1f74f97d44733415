/* Per-second traffic of each backend, from its own counters (GET /_testserver/stats): what it
 * answered (200 and 500) and what it refused by overload (503). Requests go out together at each
 * second of the scenario clock (nonblocking, common/httpc.h), and the director's tick wait is the
 * poll, so a frozen backend costs a timeout on its own request and nothing else. A backend that is not
 * running served 0; one that did not answer is unknown (NaN) for that second. */
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/httpc.h"
#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define TIMEOUT_US (600 * USEC_PER_MS)

struct xfer {
	struct httpc c;
	size_t bk;
	size_t sec;
	bool busy;
};

struct scn_sampler {
	struct xfer x[SCN_MAX_BACKENDS];
};

struct scn_sampler *scn_sampler_new(void)
{
	return xcalloc(1, sizeof(struct scn_sampler));
}

void scn_sampler_free(struct scn_sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++)
		if (s->x[i].busy)
			httpc_release(&s->x[i].c);
	free(s);
}

static void put(struct scn_rt *rt, size_t sec, size_t bk, double served, double rejected)
{
	pthread_mutex_lock(&rt->mu);
	if (sec < rt->res->n_seconds) {
		rt->res->seconds[sec].served[bk] = served;
		rt->res->seconds[sec].rejected[bk] = rejected;
	}
	pthread_mutex_unlock(&rt->mu);
}

static bool running(const struct scn_bk *b)
{
	return b->state == BK_UP || b->state == BK_DRAINING || b->state == BK_STOPPING;
}

void scn_sampler_begin(struct scn_sampler *s, struct scn_rt *rt, size_t sec)
{
	for (size_t i = 0; i < rt->n_bks; i++) {
		struct scn_bk *b = &rt->bks[i];
		struct xfer *x = &s->x[i];
		if (!running(b)) {
			put(rt, sec, i, 0, 0);
			b->have_counters = false;
			continue;
		}
		if (x->busy) /* the previous second's request is still out: a frozen server */
			continue;
		x->bk = i;
		x->sec = sec;
		if (httpc_start(&x->c, b->port, "GET", "/_testserver/stats", TIMEOUT_US, NULL) != 0) {
			if (sec > 0)
				put(rt, sec - 1, i, NAN, NAN);
			continue;
		}
		x->busy = true;
	}
}

static bool counter(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Counters that went down belong to a new process (a restart): count from zero. */
static double delta(uint64_t now, uint64_t before, bool have)
{
	return (double)(have && now >= before ? now - before : now);
}

static void finish(struct scn_rt *rt, struct xfer *x, bool ok)
{
	struct scn_bk *b = &rt->bks[x->bk];
	json_t *o = ok ? json_loadb(x->c.body.data ? x->c.body.data : "", x->c.body.len, 0, NULL) : NULL;
	uint64_t served, rejected;
	x->busy = false;
	httpc_release(&x->c);
	if (!o || !counter(o, "served", &served) || !counter(o, "rejected", &rejected)) {
		if (x->sec > 0)
			put(rt, x->sec - 1, x->bk, NAN, NAN);
	} else {
		/* second 0's answer is the baseline; each later one closes the second before it */
		if (x->sec > 0)
			put(rt, x->sec - 1, x->bk, delta(served, b->served, b->have_counters),
			    delta(rejected, b->rejected, b->have_counters));
		b->served = served;
		b->rejected = rejected;
		b->have_counters = true;
	}
	json_decref(o);
}

void scn_sampler_poll(struct scn_sampler *s, struct scn_rt *rt, int timeout_ms)
{
	struct pollfd fds[SCN_MAX_BACKENDS];
	struct xfer *who[SCN_MAX_BACKENDS];
	nfds_t n = 0;
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++) {
		if (!s->x[i].busy)
			continue;
		fds[n] = (struct pollfd){ httpc_fd(&s->x[i].c), httpc_events(&s->x[i].c), 0 };
		who[n++] = &s->x[i];
	}
	if (n == 0) {
		time_sleep_us((int64_t)timeout_ms * USEC_PER_MS);
		return;
	}
	poll(fds, n, timeout_ms);
	for (nfds_t i = 0; i < n; i++) {
		int r = httpc_step(&who[i]->c, NULL);
		if (r != 0)
			finish(rt, who[i], r > 0 && who[i]->c.status == 200);
	}
}
