/* Benchmark of the registry view alone (no etcd): decode and load a snapshot of 10,000
 * instances in 100 services, apply 10,000 watch events (one per key, load figures changing),
 * and look instances up. Prints one logfmt line; numbers for docs/benchmarks.md are taken on a
 * quiet machine. Usage: bench_reg_view [instances] (default 10000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "common/timeutil.h"
#include "registry/reg.h"

#define SERVICES 100

static char *value(int i, int round)
{
	return xasprintf("{\"address\":\"10.%d.%d.%d\",\"port\":%d,\"capacity\":%d,\"state\":\"up\","
			 "\"zone\":\"z%d\",\"version\":\"1.4.%d\",\"tags\":[\"a\",\"b\"],"
			 "\"load\":{\"inflight\":%d,\"rps\":%d.5,\"latency_ms\":3.25}}",
			 (i >> 16) & 255, (i >> 8) & 255, i & 255, 1024 + i % 60000, 1 + i % 500, i % 3,
			 round, i % 50, i + round);
}

int main(int argc, char **argv)
{
	int n = 10000;
	if (argc > 1 && parse_int(argv[1], SERVICES, 1000000, &n) != 0) {
		fprintf(stderr, "usage: bench_reg_view [instances >= %d]\n", SERVICES);
		return 2;
	}
	struct etcd_kv *kvs = xcalloc((size_t)n, sizeof(*kvs));
	struct etcd_event *ev = xcalloc((size_t)n, sizeof(*ev));
	for (int i = 0; i < n; i++) {
		kvs[i].key = xasprintf("/veltrix/services/svc-%03d/inst-%06d", i % SERVICES, i);
		kvs[i].key_len = strlen(kvs[i].key);
		kvs[i].value = value(i, 0);
		kvs[i].value_len = strlen(kvs[i].value);
		kvs[i].mod_revision = kvs[i].create_revision = 2 + i;
		ev[i].kv = kvs[i];
		ev[i].kv.value = value(i, 1);
		ev[i].kv.value_len = strlen(ev[i].kv.value);
		ev[i].kv.mod_revision = 2 + n + i;
	}
	struct reg_view *v = reg_view_new(NULL, NULL, NULL);
	int64_t t0 = time_mono_us();
	reg_view_load_snapshot(v, kvs, (size_t)n, 1 + n);
	int64_t t1 = time_mono_us();
	reg_view_clear_changes(v);
	size_t applied = reg_view_apply(v, ev, (size_t)n, 1 + 2 * n);
	int64_t t2 = time_mono_us();
	char svc[32], inst[32];
	size_t found = 0;
	for (int i = 0; i < n; i++) {
		snprintf(svc, sizeof(svc), "svc-%03d", i % SERVICES);
		snprintf(inst, sizeof(inst), "inst-%06d", i);
		found += reg_view_find(v, svc, inst) != NULL;
	}
	int64_t t3 = time_mono_us();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("bench=reg_view instances=%d services=%d snapshot_us=%lld apply_events=%zu "
	       "apply_us=%lld events_per_s=%.0f lookups=%zu lookup_ns=%.0f maxrss_kib=%ld\n",
	       n, SERVICES, (long long)(t1 - t0), applied, (long long)(t2 - t1),
	       (double)applied * 1e6 / (double)(t2 - t1 ? t2 - t1 : 1), found,
	       (double)(t3 - t2) * 1000.0 / n, ru.ru_maxrss);
	int rc = found == (size_t)n && applied == (size_t)n && reg_view_n_instances(v) == (size_t)n ? 0 : 1;
	reg_view_free(v);
	for (int i = 0; i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].value);
		free(ev[i].kv.value);
	}
	free(kvs);
	free(ev);
	return rc;
}
