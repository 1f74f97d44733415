/* Results as data: counters, the validity rule, the JSON document and the human report. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"
#include "load/load.h"

static const struct {
	const char *key;
	const char *text;
} err_names[LOAD_ERR_COUNT] = {
	[LOAD_ERR_REFUSED] = { "refused", "connect refused" },
	[LOAD_ERR_CONNECT_TIMEOUT] = { "connect_timeout", "connect timeout" },
	[LOAD_ERR_RESET] = { "reset", "connection reset" },
	[LOAD_ERR_CLOSED] = { "closed", "closed before the response" },
	[LOAD_ERR_READ_TIMEOUT] = { "read_timeout", "read timeout" },
	[LOAD_ERR_BAD_RESPONSE] = { "bad_response", "bad response" },
	[LOAD_ERR_NEVER_COMPLETED] = { "never_completed", "never completed" },
	[LOAD_ERR_NOT_SENT] = { "not_sent", "never sent (all connections busy)" },
	[LOAD_ERR_PORTS] = { "ports_exhausted", "ephemeral ports exhausted (EADDRNOTAVAIL)" },
	[LOAD_ERR_FDS] = { "fds_exhausted", "out of file descriptors (EMFILE)" },
	[LOAD_ERR_OTHER] = { "other", "other socket error" },
};

const char *load_err_key(enum load_err_kind k)
{
	return k < LOAD_ERR_COUNT ? err_names[k].key : "?";
}

const char *load_err_text(enum load_err_kind k)
{
	return k < LOAD_ERR_COUNT ? err_names[k].text : "?";
}

void load_counts_add(struct load_counts *d, const struct load_counts *s)
{
	d->sent += s->sent;
	d->responses += s->responses;
	for (int i = 0; i < 6; i++)
		d->status[i] += s->status[i];
	for (int i = 0; i < LOAD_ERR_COUNT; i++)
		d->errors[i] += s->errors[i];
	d->bytes_in += s->bytes_in;
	d->bytes_out += s->bytes_out;
}

static uint64_t transport_errors(const struct load_counts *c)
{
	uint64_t n = 0;
	for (int i = 0; i < LOAD_ERR_COUNT; i++)
		n += c->errors[i];
	return n;
}

uint64_t load_counts_failed(const struct load_counts *c)
{
	return transport_errors(c) + c->status[5];
}

uint64_t load_counts_finished(const struct load_counts *c)
{
	return transport_errors(c) + c->responses;
}

void load_pcts_of(const struct hist *h, struct load_pcts *o)
{
	o->p50_us = hist_percentile(h, 50);
	o->p90_us = hist_percentile(h, 90);
	o->p99_us = hist_percentile(h, 99);
	o->p999_us = hist_percentile(h, 99.9);
	o->max_us = h->max_us;
	o->mean_us = hist_mean(h);
}

bool load_result_valid(const struct load_result *r, char *why, size_t cap)
{
	char tmp[8];
	if (!why) {
		why = tmp;
		cap = sizeof(tmp);
	}
	const uint64_t *e = r->counts.errors;
	if (e[LOAD_ERR_PORTS]) {
		snprintf(why, cap,
			 "ephemeral ports exhausted: %" PRIu64 " connects failed with EADDRNOTAVAIL; the generator ran out "
			 "of local ports toward this address (hint: keep connections alive instead of --no-keepalive, "
			 "lower the rate, or widen net.ipv4.ip_local_port_range)",
			 e[LOAD_ERR_PORTS]);
		return false;
	}
	if (e[LOAD_ERR_FDS]) {
		snprintf(why, cap,
			 "out of file descriptors: %" PRIu64 " sockets failed with EMFILE/ENFILE (hint: raise ulimit -n "
			 "or lower -c)",
			 e[LOAD_ERR_FDS]);
		return false;
	}
	if (r->generator_saturated) {
		snprintf(why, cap,
			 "the generator was saturated: more than 1%% of the requests left more than 10ms late while a "
			 "connection was free (generator lag p99 %" PRId64 "us); use more threads (-t), fewer "
			 "connections, or a lower rate",
			 hist_percentile(&r->generator_lag, 99));
		return false;
	}
	why[0] = '\0';
	return true;
}

/* ---- JSON ---- */

static json_t *pcts_json(const struct hist *h)
{
	struct load_pcts p;
	load_pcts_of(h, &p);
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)h->total, "min", (json_int_t)h->min_us,
			 "p50", (json_int_t)p.p50_us, "p90", (json_int_t)p.p90_us, "p99", (json_int_t)p.p99_us, "p99_9",
			 (json_int_t)p.p999_us, "max", (json_int_t)p.max_us, "mean", (json_int_t)p.mean_us);
}

static json_t *status_json(const struct load_counts *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "1xx", (json_int_t)c->status[1], "2xx", (json_int_t)c->status[2],
			 "3xx", (json_int_t)c->status[3], "4xx", (json_int_t)c->status[4], "5xx", (json_int_t)c->status[5],
			 "other", (json_int_t)c->status[0]);
}

static json_t *errors_json(const struct load_counts *c)
{
	uint64_t failed = load_counts_failed(c), finished = load_counts_finished(c);
	json_t *o = json_pack("{s:I,s:f}", "total", (json_int_t)failed, "rate",
			      finished ? (double)failed / (double)finished : 0.0);
	for (int i = 0; i < LOAD_ERR_COUNT; i++)
		json_object_set_new(o, err_names[i].key, json_integer((json_int_t)c->errors[i]));
	return o;
}

static json_t *second_json(const struct load_second *s)
{
	const struct load_pcts *p = &s->latency;
	json_t *lat = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "p50", (json_int_t)p->p50_us, "p90", (json_int_t)p->p90_us,
				"p99", (json_int_t)p->p99_us, "p99_9", (json_int_t)p->p999_us, "max",
				(json_int_t)p->max_us, "mean", (json_int_t)p->mean_us);
	return json_pack("{s:I,s:f,s:f,s:I,s:I,s:o,s:o,s:o,s:I,s:I}", "second", (json_int_t)s->second, "target_rps",
			 s->target_rps, "requests_per_second", s->rps, "sent", (json_int_t)s->counts.sent, "responses",
			 (json_int_t)s->counts.responses, "latency", lat, "errors", errors_json(&s->counts), "status",
			 status_json(&s->counts), "bytes_read", (json_int_t)s->counts.bytes_in, "bytes_written",
			 (json_int_t)s->counts.bytes_out);
}

static const char *slo_unit(const struct load_slo_term *t)
{
	switch (t->metric) {
	case LOAD_SLO_LATENCY:
	case LOAD_SLO_MEAN:
		return "us";
	case LOAD_SLO_ERROR_RATE:
		return "fraction";
	case LOAD_SLO_ERROR_COUNT:
		return "requests";
	case LOAD_SLO_RPS:
		return "rps";
	}
	return "";
}

static json_t *slo_json(const struct load_slo *slo, const struct load_result *r)
{
	struct load_slo_outcome out[LOAD_SLO_MAX_TERMS];
	bool all = load_slo_check(slo, r, out);
	json_t *terms = json_array();
	for (size_t i = 0; i < slo->n; i++)
		json_array_append_new(terms, json_pack("{s:s,s:f,s:f,s:s,s:b}", "term", slo->terms[i].text, "value",
						       out[i].value, "limit", slo->terms[i].limit, "unit",
						       slo_unit(&slo->terms[i]), "passed", out[i].ok));
	return json_pack("{s:b,s:o}", "passed", all, "terms", terms);
}

char *load_result_json(const struct load_result *r, const char *url, const struct load_slo *slo)
{
	char why[512];
	bool valid = load_result_valid(r, why, sizeof(why));
	json_t *tl = json_array();
	for (size_t i = 0; i < r->nseconds; i++)
		json_array_append_new(tl, second_json(&r->timeline[i]));
	json_t *doc = json_pack(
		"{s:i,s:s,s:s,s:i,s:i,s:f,s:f,s:b,s:{s:I,s:I,s:I,s:I},s:{s:f,s:f},s:{s:o,s:o},s:o,s:o,s:{s:I,s:I},s:o,s:o,s:b,s:s?}",
		"version", 1, "url", url ? url : "", "mode", r->open_loop ? "open" : "closed", "connections", r->connections,
		"threads", r->threads, "duration_s", (double)r->duration_us / 1e6, "elapsed_s", (double)r->elapsed_us / 1e6,
		"stopped_early", r->stopped_early, "requests", "intended", (json_int_t)r->intended, "sent",
		(json_int_t)r->counts.sent, "responses", (json_int_t)r->counts.responses, "failed",
		(json_int_t)load_counts_failed(&r->counts), "rate", "intended_rps", r->intended_rps, "achieved_rps",
		r->achieved_rps, "latency_us", "corrected", pcts_json(&r->latency), "uncorrected",
		pcts_json(&r->latency_uncorrected), "schedule_lag_us", pcts_json(&r->schedule_lag), "generator_lag_us",
		pcts_json(&r->generator_lag), "bytes", "read", (json_int_t)r->counts.bytes_in, "written",
		(json_int_t)r->counts.bytes_out, "status", status_json(&r->counts), "errors", errors_json(&r->counts),
		"valid", valid, "invalid_reason", valid ? NULL : why);
	json_object_set_new(doc, "slo", slo && slo->n ? slo_json(slo, r) : json_null());
	json_object_set_new(doc, "timeline", tl);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return s;
}

/* ---- text ---- */

static void fmt_us(int64_t us, char *out, size_t cap)
{
	if (us < 1000)
		snprintf(out, cap, "%" PRId64 "us", us);
	else if (us < 1000000)
		snprintf(out, cap, "%.2fms", (double)us / 1e3);
	else
		snprintf(out, cap, "%.2fs", (double)us / 1e6);
}

static void pcts_line(struct buf *b, const char *label, const struct hist *h)
{
	struct load_pcts p;
	load_pcts_of(h, &p);
	char v[6][24];
	fmt_us(p.p50_us, v[0], sizeof(v[0]));
	fmt_us(p.p90_us, v[1], sizeof(v[1]));
	fmt_us(p.p99_us, v[2], sizeof(v[2]));
	fmt_us(p.p999_us, v[3], sizeof(v[3]));
	fmt_us(p.max_us, v[4], sizeof(v[4]));
	fmt_us(p.mean_us, v[5], sizeof(v[5]));
	buf_printf(b, "  %-13s p50 %-9s p90 %-9s p99 %-9s p99.9 %-9s max %-9s mean %s\n", label, v[0], v[1], v[2],
		   v[3], v[4], v[5]);
}

static void errors_text(const struct load_result *r, struct buf *b)
{
	const struct load_counts *c = &r->counts;
	uint64_t failed = load_counts_failed(c), finished = load_counts_finished(c);
	buf_printf(b, "  errors        %" PRIu64 " (%.3f%% of %" PRIu64 " requests)", failed,
		   finished ? 100.0 * (double)failed / (double)finished : 0.0, finished);
	const char *sep = ": ";
	for (int i = 0; i < LOAD_ERR_COUNT; i++) {
		if (c->errors[i]) {
			buf_printf(b, "%s%s %" PRIu64, sep, err_names[i].text, c->errors[i]);
			sep = ", ";
		}
	}
	if (c->status[5])
		buf_printf(b, "%s5xx %" PRIu64, sep, c->status[5]);
	buf_putc(b, '\n');
}

static void slo_text(const struct load_slo *slo, const struct load_result *r, struct buf *b)
{
	struct load_slo_outcome out[LOAD_SLO_MAX_TERMS];
	bool all = load_slo_check(slo, r, out);
	buf_printf(b, "  slo           %s:", all ? "passed" : "FAILED");
	for (size_t i = 0; i < slo->n; i++) {
		const struct load_slo_term *t = &slo->terms[i];
		char v[32];
		if (t->metric == LOAD_SLO_LATENCY || t->metric == LOAD_SLO_MEAN)
			fmt_us((int64_t)out[i].value, v, sizeof(v));
		else if (t->metric == LOAD_SLO_ERROR_RATE)
			snprintf(v, sizeof(v), "%.3f%%", out[i].value * 100);
		else
			snprintf(v, sizeof(v), "%.1f", out[i].value);
		buf_printf(b, " %s %s (%s)", t->text, out[i].ok ? "ok" : "FAILED", v);
	}
	buf_putc(b, '\n');
}

void load_result_text(const struct load_result *r, const char *url, const struct load_slo *slo, struct buf *b)
{
	const struct load_counts *c = &r->counts;
	char dur[32];
	if (r->duration_us % USEC_PER_MS == 0)
		dur_format(r->duration_us, dur, sizeof(dur));
	else
		snprintf(dur, sizeof(dur), "%.3fs", (double)r->duration_us / 1e6);
	buf_printf(b, "veltrix load %s: %s loop, %d connections, %d threads, %s%s\n", url ? url : "",
		   r->open_loop ? "open" : "closed", r->connections, r->threads, dur,
		   r->stopped_early ? " (stopped early)" : "");
	buf_printf(b, "  requests      %" PRIu64 " sent, %" PRIu64 " responses", c->sent, c->responses);
	if (r->open_loop)
		buf_printf(b, ", %.1f req/s achieved of %.1f intended (%.2f%%)\n", r->achieved_rps, r->intended_rps,
			   r->intended_rps > 0 ? 100.0 * r->achieved_rps / r->intended_rps : 0.0);
	else
		buf_printf(b, ", %.1f req/s\n", r->achieved_rps);
	pcts_line(b, "latency", &r->latency);
	if (r->open_loop) {
		pcts_line(b, "uncorrected", &r->latency_uncorrected);
		pcts_line(b, "schedule lag", &r->schedule_lag);
		pcts_line(b, "generator lag", &r->generator_lag);
	}
	buf_printf(b, "  status        1xx %" PRIu64 ", 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "\n",
		   c->status[1], c->status[2], c->status[3], c->status[4], c->status[5]);
	buf_printf(b, "  bytes         %" PRIu64 " read, %" PRIu64 " written\n", c->bytes_in, c->bytes_out);
	errors_text(r, b);
	if (slo && slo->n)
		slo_text(slo, r, b);
	char why[512];
	if (!load_result_valid(r, why, sizeof(why)))
		buf_printf(b, "  INVALID RUN   %s\n", why);
}

void load_second_text(const struct load_second *s, char *out, size_t cap)
{
	char p50[24], p99[24], max[24];
	fmt_us(s->latency.p50_us, p50, sizeof(p50));
	fmt_us(s->latency.p99_us, p99, sizeof(p99));
	fmt_us(s->latency.max_us, max, sizeof(max));
	uint64_t failed = load_counts_failed(&s->counts);
	int n = snprintf(out, cap, "%4" PRId64 "s  %8.0f req/s", s->second + 1, s->rps);
	if (n > 0 && (size_t)n < cap && s->target_rps > 0)
		n += snprintf(out + n, cap - (size_t)n, " (target %.0f)", s->target_rps);
	if (n > 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, "  p50 %s  p99 %s  max %s  errors %" PRIu64, p50, p99, max, failed);
}
