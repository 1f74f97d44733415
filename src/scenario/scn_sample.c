/* Per-second traffic of each backend, from its own counters (GET /_testserver/stats): what it
 * answered (200 and 500) and what it refused by overload (503). Requests go out together at each
 * second of the scenario clock (libcurl multi), and the director's tick wait is the poll, so a
 * frozen backend costs a timeout on its own request and nothing else. A backend that is not
 * running served 0; one that did not answer is unknown (NaN) for that second. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "scenario/scn_int.h"

#define STATS_MAX 4096
#define TIMEOUT_MS 600L

struct xfer {
	CURL *easy;
	struct buf body;
	size_t bk;
	size_t sec;
	bool busy;
};

struct scn_sampler {
	CURLM *multi;
	struct xfer x[SCN_MAX_BACKENDS];
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	return buf_append(&x->body, p, size * n) == 0 ? size * n : 0;
}

struct scn_sampler *scn_sampler_new(void)
{
	struct scn_sampler *s = xcalloc(1, sizeof(*s));
	s->multi = curl_multi_init();
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++)
		buf_init(&s->x[i].body, STATS_MAX);
	return s;
}

void scn_sampler_free(struct scn_sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++) {
		if (s->x[i].easy) {
			curl_multi_remove_handle(s->multi, s->x[i].easy);
			curl_easy_cleanup(s->x[i].easy);
		}
		buf_release(&s->x[i].body);
	}
	curl_multi_cleanup(s->multi);
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
		char url[96];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/_testserver/stats", (unsigned)b->port);
		if (!x->easy)
			x->easy = curl_easy_init();
		else
			curl_multi_remove_handle(s->multi, x->easy);
		buf_reset(&x->body);
		curl_easy_setopt(x->easy, CURLOPT_URL, url);
		curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
		curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
		curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
		x->bk = i;
		x->sec = sec;
		x->busy = true;
		curl_multi_add_handle(s->multi, x->easy);
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
	json_t *o = ok ? json_loadb(x->body.data ? x->body.data : "", x->body.len, 0, NULL) : NULL;
	uint64_t served, rejected;
	x->busy = false;
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
	int running_handles = 0, left = 0;
	curl_multi_perform(s->multi, &running_handles);
	curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(s->multi, &running_handles);
	CURLMsg *m;
	while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		long status = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (x)
			finish(rt, x, m->data.result == CURLE_OK && status == 200);
	}
}
