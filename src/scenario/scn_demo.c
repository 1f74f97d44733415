/* The built-in demo: one scenario, run on a static HAProxy configuration and then on Veltrix,
 * and the side-by-side table of what each did. The scenario retells the story behind Veltrix:
 * backends of unequal capacity, load rising to three times what equal-weight round robin serves
 * comfortably, a crash, a rolling deploy and a server that slows down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "scenario/scn_report_int.h"

/* Sizing: capacities 5:10:20:40 at 20 ms per request serve 250 + 500 + 1000 + 2000 = 3750 req/s
 * when each gets traffic in proportion to its capacity. Equal-weight round robin gives each a
 * quarter, so the smallest limits it to 4 x 250 = 1000 req/s: "comfortable" is below that, and
 * the peak, 3000 req/s, is three times it and 80% of the pool's real capacity. The step at
 * 900 req/s (90% of that) shows what the static configuration can sustain; the crash and the
 * deploy come at 600 req/s, where both stacks should cope. */
const char scn_demo_yaml[] =
	"name: demo\n"
	"description: >-\n"
	"  Four backends of unequal capacity (5, 10, 20 and 40 requests at once, 20 ms each; beyond\n"
	"  its capacity a backend answers 503), the same load and the same faults on both stacks:\n"
	"  a crash (kill -9), a rolling deploy, the load rising to 3x what equal-weight round robin\n"
	"  serves comfortably, then a server that slows down threefold.\n"
	"service:\n"
	"  health: {interval: 1s, timeout: 500ms, rise: 2, fall: 2}\n"
	"  timeouts: {connect: 1s, server: 5s, queue: 1s}\n"
	"  drain_timeout: 1s\n"
	"backends:\n"
	"  - name: app\n"
	"    capacity: [5, 10, 20, 40]\n"
	"    service_time: 20ms\n"
	"    overload: reject\n"
	"load:\n"
	"  connections: 512\n"
	"  timeout: 2s\n"
	"  phases:\n"
	"    - {name: calm, rate: 600, duration: 6s}\n"
	"    - {name: crash, rate: 600, duration: 8s}\n"
	"    - {name: deploy, rate: 600, duration: 16s}\n"
	"    - {name: step, rate: 900, duration: 6s}\n"
	"    - {name: rise, rate: 900..3000, duration: 6s}\n"
	"    - {name: peak, rate: 3000, duration: 16s}\n"
	"faults:\n"
	"  - {at: 7s, action: kill, target: app-3}\n"
	"  - {at: 11s, action: start, target: app-3}\n"
	"  - {at: 15s, action: rolling_deploy, interval: 1s}\n"
	"  - {at: 48s, action: slow, target: app-2, service_time: 60ms}\n"
	"slo: {p99: 100ms, errors: 1%, sustain: 5s}\n"
	"assert: 'errors<1%, p99<100ms'\n";

static void num(char *out, size_t cap, double v)
{
	/* 1234567 -> "1,234,567" */
	char raw[32];
	snprintf(raw, sizeof(raw), "%.0f", v);
	size_t n = strlen(raw), o = 0;
	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		if (i > 0 && raw[i - 1] != '-' && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = raw[i];
	}
	out[o] = '\0';
}

static void cell_failed(char *out, size_t cap, const struct scn_totals *t)
{
	char n[32];
	num(n, sizeof(n), (double)t->failed);
	snprintf(out, cap, "%s (%.2f%%)", n, t->error_rate * 100);
}

static void cell_ms(char *out, size_t cap, int64_t us)
{
	if (us >= 10 * USEC_PER_SEC)
		snprintf(out, cap, "%.1f s", (double)us / 1e6);
	else
		snprintf(out, cap, "%.1f ms", (double)us / 1000.0);
}

static void row(struct buf *out, const char *label, const char *a, const char *b)
{
	buf_printf(out, "  %-30s %22s %22s\n", label, a, b);
}

void scn_demo_table(const struct scn_result *st, const struct scn_result *ve, struct buf *out)
{
	const struct scn_totals *a = &st->totals, *b = &ve->totals;
	const struct scn *s = ve->scn;
	char x[48], y[48];
	buf_printf(out, "\n  %-30s %22s %22s\n", "", "static HAProxy", "Veltrix");
	num(x, sizeof(x), (double)a->requests);
	num(y, sizeof(y), (double)b->requests);
	row(out, "requests", x, y);
	cell_failed(x, sizeof(x), a);
	cell_failed(y, sizeof(y), b);
	row(out, "failed requests", x, y);
	cell_ms(x, sizeof(x), a->latency.p99_us);
	cell_ms(y, sizeof(y), b->latency.p99_us);
	row(out, "p99 latency", x, y);
	num(x, sizeof(x), a->sustained_rps);
	num(y, sizeof(y), b->sustained_rps);
	strcat(x, " req/s");
	strcat(y, " req/s");
	row(out, "sustained throughput", x, y);
	snprintf(x, sizeof(x), "%lld of %lld s", (long long)a->degraded_s, (long long)a->seconds);
	snprintf(y, sizeof(y), "%lld of %lld s", (long long)b->degraded_s, (long long)b->seconds);
	row(out, "degraded service", x, y);
	char p99[16];
	cell_ms(p99, sizeof(p99), s->slo.p99_us);
	buf_printf(out,
		   "\n  failed requests: connection errors, timeouts and 5xx answers (503s from a backend over its\n"
		   "    capacity included), as the load generator saw them.\n"
		   "  p99 latency: over every answer of the run, failures included, measured from when each request\n"
		   "    was due (no coordinated omission); a fast 503 is fast, so look at failures first.\n"
		   "  sustained throughput: the best rate of good answers held for %llds in a row with no degraded\n"
		   "    second; what the stack delivers within the SLO.\n"
		   "  degraded service: seconds with more than %.3g%% failed requests or a p99 above %s.\n"
		   "  Both stacks run the same HAProxy settings (retries, redispatch, checks, timeouts); static lists\n"
		   "  the four servers with equal weights (roundrobin), Veltrix sets weight and maxconn from each\n"
		   "  backend's registered capacity and follows the registry and HAProxy's statistics.\n",
		   (long long)(s->slo.sustain_us / USEC_PER_SEC), s->slo.error_rate * 100, p99);
}

char *scn_demo_json(const struct scn_result *st, const struct scn_result *ve)
{
	json_t *o = json_pack("{s:i,s:s,s:o,s:o}", "version", 1, "demo", "static HAProxy vs Veltrix", "static",
			      scn_report_json_object(st), "veltrix", scn_report_json_object(ve));
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
