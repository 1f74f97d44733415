/* The scenario schema: one row per key (path, type, default, bounds, where it is stored, doc).
 * The loader walks YAML with these rows, "did you mean" searches them, the defaults go through
 * the same value parsers as the file, and docs/scenarios.md is checked against them by a test. */
#include <stddef.h>
#include <string.h>

#include "common/timeutil.h"
#include "scenario/scn_load_int.h"

#define D_MS(x) ((int64_t)(x) * USEC_PER_MS)
#define D_S(x) ((int64_t)(x) * USEC_PER_SEC)
#define D_H(x) (D_S(x) * 3600)

static const char *const stacks[] = { "veltrix", "static", NULL };
static const char *const registrations[] = { "direct", "agent", NULL };
static const char *const balances[] = { "roundrobin", "leastconn", "first", "random", NULL };
static const char *const reuses[] = { "never", "safe", "aggressive", "always", NULL };
static const char *const overloads[] = { "queue", "reject", NULL };
/* In the order of enum scn_action. */
const char *const scn_action_names[] = {
	"kill", "term", "freeze", "thaw", "start", "restart", "slow", "fail", "rolling_deploy", "scale_out",
	"etcd_stop", "etcd_kill", "etcd_start", "controller_kill", "controller_start", "haproxy_reload", NULL,
};

#define ROOT(f) .scope = SCN_SCOPE_ROOT, .off = offsetof(struct scn, f)
#define GROUP(f) .scope = SCN_SCOPE_GROUP, .off = offsetof(struct scn_group, f)
#define PHASE(f) .scope = SCN_SCOPE_PHASE, .off = offsetof(struct scn_phase, f)
#define FAULT(f) .scope = SCN_SCOPE_FAULT, .off = offsetof(struct scn_fault, f)
#define SECTION(p, d) { .path = p, .type = SCN_V_SECTION, .doc = d }

const struct scn_row scn_rows[] = {
	{ .path = "name", .type = SCN_V_STR, ROOT(name), .doc = "the scenario's name in reports (default: the file name)" },
	{ .path = "description", .type = SCN_V_STR, ROOT(description), .doc = "what the scenario shows, printed with its report" },
	{ .path = "stack", .type = SCN_V_ENUM, .def = "veltrix", .choices = stacks, ROOT(stack),
	  .doc = "`veltrix`: local etcd, `veltrix controller` and the HAProxy it manages; `static`: a hand-written-style haproxy.cfg listing the backends with equal weights" },
	{ .path = "registration", .type = SCN_V_ENUM, .def = "direct", .choices = registrations, ROOT(registration),
	  .doc = "Veltrix stack: `direct`: the runner registers each backend (lease + put, docs/registry.md); `agent`: each backend runs under `veltrix agent`" },

	SECTION("service", "the HAProxy frontend and backend both stacks render (the same settings on both sides)"),
	{ .path = "service.balance", .type = SCN_V_ENUM, .choices = balances, ROOT(service.balance),
	  .def_doc = "`leastconn` (veltrix), `roundrobin` (static)", .doc = "load-balancing algorithm" },
	{ .path = "service.http_reuse", .type = SCN_V_ENUM, .def = "safe", .choices = reuses, ROOT(service.http_reuse),
	  .doc = "HAProxy `http-reuse`; `never` opens a server connection per request (ephemeral-port exhaustion)" },
	{ .path = "service.retries", .type = SCN_V_INT, .def = "3", .min = 0, .max = 100, ROOT(service.retries),
	  .doc = "HAProxy `retries` (connection failures and empty responses are retried)" },
	SECTION("service.health", "HAProxy's own check of each backend (`GET /healthz`)"),
	{ .path = "service.health.interval", .type = SCN_V_DUR, .def = "1s", .min = D_MS(100), .max = D_S(60),
	  ROOT(service.check_interval_us), .doc = "time between two checks of one server" },
	{ .path = "service.health.timeout", .type = SCN_V_DUR, .def = "500ms", .min = D_MS(10), .max = D_S(30),
	  ROOT(service.check_timeout_us), .doc = "a check not answered within this fails; shorter than `interval`" },
	{ .path = "service.health.rise", .type = SCN_V_INT, .def = "2", .min = 1, .max = 100, ROOT(service.rise),
	  .doc = "passing checks that bring a server up" },
	{ .path = "service.health.fall", .type = SCN_V_INT, .def = "2", .min = 1, .max = 100, ROOT(service.fall),
	  .doc = "failing checks that take a server down" },
	SECTION("service.timeouts", "HAProxy timeouts"),
	{ .path = "service.timeouts.connect", .type = SCN_V_DUR, .def = "1s", .min = D_MS(1), .max = D_S(60),
	  ROOT(service.connect_us), .doc = "`timeout connect`" },
	{ .path = "service.timeouts.server", .type = SCN_V_DUR, .def = "10s", .min = D_MS(1), .max = D_H(1),
	  ROOT(service.server_us), .doc = "`timeout server`" },
	{ .path = "service.timeouts.queue", .type = SCN_V_DUR, .def = "2s", .min = D_MS(1), .max = D_H(1),
	  ROOT(service.queue_us), .doc = "`timeout queue`: a request waiting this long for a server slot gets a 503" },
	{ .path = "service.timeouts.client", .type = SCN_V_DUR, .def = "30s", .min = D_MS(1), .max = D_H(1),
	  ROOT(service.client_us), .doc = "`timeout client`" },
	{ .path = "service.drain_timeout", .type = SCN_V_DUR, .def = "2s", .min = 0, .max = D_S(300),
	  ROOT(service.drain_us),
	  .doc = "Veltrix stack: how long a backend stays `draining` in the registry before `term` sends SIGTERM (the agent's drain timeout)" },
	{ .path = "service.lease_ttl", .type = SCN_V_DUR, .def = "5s", .min = D_S(2), .max = D_S(60),
	  ROOT(service.lease_ttl_us), .doc = "Veltrix stack: TTL of each backend's registry lease (whole seconds)" },

	{ .path = "backends", .type = SCN_V_LIST, .list_scope = SCN_SCOPE_GROUP, .flags = SCN_F_REQUIRED,
	  .doc = "groups of `veltrix testserver` backends; group `web` with count 2 is instances `web-1` and `web-2`" },
	{ .path = "backends[].name", .type = SCN_V_NAME, GROUP(name), .flags = SCN_F_REQUIRED,
	  .doc = "group name, `[a-z][a-z0-9_]{0,20}`; instances are `<name>-<n>`" },
	{ .path = "backends[].count", .type = SCN_V_INT, .min = 1, .max = SCN_MAX_BACKENDS, GROUP(count),
	  .def_doc = "the number of capacities, else 1", .doc = "instances in the group" },
	{ .path = "backends[].capacity", .type = SCN_V_CAPS, .def = "100", .min = 1, .max = 100000, GROUP(caps),
	  .doc = "requests each instance serves at once: one number, or one per instance (`[5, 10, 20, 40]`)" },
	{ .path = "backends[].service_time", .type = SCN_V_DIST, .def = "20ms", GROUP(service),
	  .doc = "time per request: `20ms`, `exp:20ms` (mean) or `uniform:10ms-30ms`" },
	{ .path = "backends[].overload", .type = SCN_V_ENUM, .def = "queue", .choices = overloads, GROUP(overload),
	  .doc = "beyond capacity: `queue` (latency grows) or `reject` (503 at once)" },
	{ .path = "backends[].fail_rate", .type = SCN_V_FRAC, .def = "0", GROUP(fail_rate),
	  .doc = "share of requests answered 500: `0.01` or `1%`" },
	{ .path = "backends[].threads", .type = SCN_V_INT, .def = "1", .min = 1, .max = 8, GROUP(threads),
	  .doc = "event loops of each test server" },

	{ .path = "load", .type = SCN_V_SECTION, .flags = SCN_F_REQUIRED, .doc = "the open-loop load (`veltrix load` in-process)" },
	{ .path = "load.connections", .type = SCN_V_INT, .def = "256", .min = 1, .max = 20000, ROOT(load.connections),
	  .doc = "connections to the frontend; a request due while all are busy waits (and its wait counts)" },
	{ .path = "load.threads", .type = SCN_V_INT, .def = "1", .min = 1, .max = 16, ROOT(load.threads),
	  .doc = "load generator threads" },
	{ .path = "load.timeout", .type = SCN_V_DUR, .def = "2s", .min = D_MS(1), .max = D_S(300), ROOT(load.timeout_us),
	  .doc = "a request not answered within this is an error (read timeout)" },
	{ .path = "load.path", .type = SCN_V_PATH, .def = "/", ROOT(load.path), .doc = "the path requested" },
	{ .path = "load.phases", .type = SCN_V_LIST, .list_scope = SCN_SCOPE_PHASE, .flags = SCN_F_REQUIRED,
	  .doc = "phases of the load, one after the other; each is measured and asserted on its own" },
	{ .path = "load.phases[].name", .type = SCN_V_STR, PHASE(name), .def_doc = "`phase-<n>`", .doc = "name in reports" },
	{ .path = "load.phases[].rate", .type = SCN_V_RATE, PHASE(rate), .flags = SCN_F_REQUIRED,
	  .doc = "requests per second: `500`, or a linear ramp `500..3000`" },
	{ .path = "load.phases[].duration", .type = SCN_V_DUR, .min = D_MS(100), .max = SCN_MAX_DURATION_US,
	  PHASE(duration_us), .flags = SCN_F_REQUIRED, .doc = "how long the phase lasts" },
	{ .path = "load.phases[].assert", .type = SCN_V_SLO, PHASE(slo),
	  .doc = "assertions on the phase: `p99<100ms, errors<0.1%, rps>=900` (see Assertions)" },

	{ .path = "faults", .type = SCN_V_LIST, .list_scope = SCN_SCOPE_FAULT, .doc = "what breaks, and when (see Faults)" },
	{ .path = "faults[].at", .type = SCN_V_DUR, .min = 0, .max = SCN_MAX_DURATION_US, FAULT(at_us),
	  .flags = SCN_F_REQUIRED, .doc = "time from the start of the load" },
	{ .path = "faults[].action", .type = SCN_V_ENUM, .choices = scn_action_names, FAULT(action),
	  .flags = SCN_F_REQUIRED, .doc = "what happens (see Faults)" },
	{ .path = "faults[].target", .type = SCN_V_INSTANCE, FAULT(target), .doc = "the backend instance, e.g. `web-2`" },
	{ .path = "faults[].targets", .type = SCN_V_INSTANCES, FAULT(targets),
	  .def_doc = "every backend running at the start", .doc = "`rolling_deploy`: the instances, in order" },
	{ .path = "faults[].service_time", .type = SCN_V_DIST, FAULT(service), .doc = "`slow`: the new service time" },
	{ .path = "faults[].fail_rate", .type = SCN_V_FRAC, FAULT(fail_rate), .doc = "`fail`: the new failure rate" },
	{ .path = "faults[].count", .type = SCN_V_INT, .min = 1, .max = SCN_MAX_BACKENDS, FAULT(count),
	  .def_doc = "1", .doc = "`scale_out`: instances to add" },
	{ .path = "faults[].group", .type = SCN_V_NAME, FAULT(group), .def_doc = "the first group",
	  .doc = "`scale_out`: the group whose settings the new instances take" },
	{ .path = "faults[].capacity", .type = SCN_V_INT, .min = 1, .max = 100000, FAULT(capacity),
	  .def_doc = "the group's first capacity", .doc = "`scale_out`: capacity of the new instances" },
	{ .path = "faults[].interval", .type = SCN_V_DUR, .min = 0, .max = D_S(600), FAULT(interval_us), .def_doc = "1s",
	  .doc = "`rolling_deploy`: pause after a restarted backend is back before the next one goes" },

	SECTION("slo", "what counts as degraded service in the report"),
	{ .path = "slo.p99", .type = SCN_V_DUR, .def = "100ms", .min = D_MS(1), .max = D_S(600), ROOT(slo.p99_us),
	  .doc = "a second whose p99 is above this is degraded" },
	{ .path = "slo.errors", .type = SCN_V_FRAC, .def = "1%", ROOT(slo.error_rate),
	  .doc = "a second with a larger share of failed requests is degraded" },
	{ .path = "slo.sustain", .type = SCN_V_DUR, .def = "5s", .min = D_S(1), .max = D_S(600), ROOT(slo.sustain_us),
	  .doc = "sustained throughput is the best rate held this long without a degraded second" },
	{ .path = "assert", .type = SCN_V_SLO, ROOT(assert_slo), .doc = "assertions on the whole run, like a phase's" },
};
const size_t scn_rows_len = sizeof(scn_rows) / sizeof(scn_rows[0]);

static const char *const type_names[] = {
	[SCN_V_SECTION] = "section", [SCN_V_LIST] = "list", [SCN_V_STR] = "string", [SCN_V_NAME] = "name",
	[SCN_V_INSTANCE] = "instance name", [SCN_V_INSTANCES] = "list of instance names", [SCN_V_PATH] = "path",
	[SCN_V_INT] = "integer", [SCN_V_DUR] = "duration", [SCN_V_FRAC] = "fraction or percent", [SCN_V_ENUM] = "enum",
	[SCN_V_BOOL] = "bool", [SCN_V_RATE] = "rate", [SCN_V_SLO] = "assertions", [SCN_V_DIST] = "distribution",
	[SCN_V_CAPS] = "integer or list",
};

const char *scn_type_name(enum scn_vtype t)
{
	return type_names[t];
}

const struct scn_row *scn_row_find(const char *path)
{
	for (size_t i = 0; i < scn_rows_len; i++)
		if (strcmp(scn_rows[i].path, path) == 0)
			return &scn_rows[i];
	return NULL;
}

size_t scn_schema_count(void)
{
	return scn_rows_len;
}

void scn_schema_doc(size_t i, struct scn_key_doc *out)
{
	const struct scn_row *r = &scn_rows[i];
	out->path = r->path;
	out->type = scn_type_name(r->type);
	out->def = r->def_doc ? r->def_doc : r->def;
	out->doc = r->doc;
}

const char *scn_action_name(enum scn_action a)
{
	return (unsigned)a < SCN_ACTION_COUNT ? scn_action_names[a] : "?";
}
