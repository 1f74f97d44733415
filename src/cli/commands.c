/* The command table: one row per `veltrix` command. */
#include <stddef.h>

#include "cli/cli.h"

static const struct cli_opt no_opts[] = { { 0, NULL, NULL, NULL } };

const struct cli_command cli_commands[] = {
	{ "check", "[-c FILE] [--json]", "validate a configuration and lint it against this machine",
	  "Reports every problem at once (FILE:LINE:COL: error|warning: KEY.PATH: what is wrong; what to\n"
	  "write instead), then lints against this machine: file descriptors, ephemeral ports and\n"
	  "TIME_WAIT, somaxconn, capacity, timeouts (docs/config.md).\n"
	  "Exit status: 0 clean (warnings allowed), 1 a lint error, 2 the file is invalid.",
	  cmd_check_opts, cmd_check },
	{ "up", "[-c FILE]", "run the whole stack locally: etcd (when none is configured), HAProxy, controller",
	  "For development and demos, in the foreground. With no etcd.endpoints, a single-member etcd is\n"
	  "started on a free loopback port with its data in etcd.data_dir. HAProxy runs in managed mode\n"
	  "(haproxy.state_dir). Prints where everything listens and how to register an instance.\n"
	  "Ctrl-C or SIGTERM stops everything; so does any part that exits on its own (exit 3).\n"
	  "SIGHUP re-reads the configuration; SIGUSR1 forces one sync past the panic threshold.",
	  cmd_up_opts, cmd_up },
	{ "agent", "--service NAME --port PORT [options] [-- COMMAND ARGS...]",
	  "health-check one instance, register it in etcd under a lease, drain it on SIGTERM",
	  "Runs beside one service instance. Registers it (<prefix>/services/NAME/ID, bound to a lease kept\n"
	  "alive every TTL/3) once `rise` checks in a row pass; `fall` failures mark it down (the key stays),\n"
	  "`rise` passes mark it up again. Writes only on change. A lost lease is granted again and the key\n"
	  "written again, with backoff; a key held by another lease is never overwritten.\n"
	  "SIGTERM/SIGINT: write `draining`, wait --drain-timeout (or until COMMAND exits), revoke the lease\n"
	  "(the key disappears), exit 0; a second signal skips the wait. With `-- COMMAND ARGS...` the agent\n"
	  "starts the service, SIGTERMs it only after the drain, and exits with its status; when the service\n"
	  "exits on its own the lease is revoked. --once runs the check once (exit 0 pass, 1 fail).\n"
	  "See docs/agent.md.",
	  cmd_agent_opts, cmd_agent },
	{ "controller", "[-c FILE] [--etcd URL[,URL...]] [--force-sync]",
	  "keep HAProxy's server pools equal to the registry (one per HAProxy)",
	  "Watches etcd and reconciles HAProxy through its Runtime API, without reloads for membership.\n"
	  "haproxy.mode managed: renders haproxy.cfg, starts HAProxy (or adopts the running one) and\n"
	  "reloads it only when services change. attach: manages only the servers it added to your\n"
	  "HAProxy. etcd unreachable: the last known pools stay (fail static).\n"
	  "Signals: SIGHUP re-reads the configuration, SIGUSR1 applies the registry once past the\n"
	  "panic threshold, SIGTERM/SIGINT stop the controller (HAProxy keeps serving).\n"
	  "Metrics: GET /metrics and /healthz on controller.metrics (docs/controller.md).",
	  cmd_controller_opts, cmd_controller },
	{ "status", "[-c FILE] [--etcd URL[,URL...]] [--json] [--no-haproxy] [SERVICE]",
	  "show the registry and, when HAProxy answers, each server as HAProxy sees it",
	  "Lists the registry at one etcd revision: per service its instances (address, port, capacity,\n"
	  "state, weight, lease TTL left, version, zone) and every rejected key with its reason. When\n"
	  "haproxy.runtime_socket answers, each instance also shows HAProxy's state, weight, sessions,\n"
	  "queue, response time and check, and servers HAProxy has that the registry lacks are listed.\n"
	  "--json prints the shape documented in docs/registry.md.\n"
	  "Exit status: 0 ok, 1 SERVICE is unknown, 2 usage, configuration, or etcd unreachable.",
	  cmd_status_opts, cmd_status },
	{ "register", "--service S --instance I --address IP --port P [options] [--ttl DURATION]",
	  "register one instance (static, or lease-bound and kept alive)",
	  "Writes <prefix>/services/S/I after validating it exactly as the controller will (names, address\n"
	  "literal, ranges, the service's allow-list); a refused value is never written. Without --ttl the\n"
	  "key stays until deregistered. With --ttl it is bound to a lease kept alive until SIGINT or\n"
	  "SIGTERM, which revoke the lease (the key disappears); a lost lease is granted again and the\n"
	  "key written again.\n"
	  "Exit status: 0 ok, 1 the lease could not be revoked, 2 refused value, usage, or etcd unreachable.",
	  cmd_register_opts, cmd_register },
	{ "deregister", "--service S --instance I [--drain-wait DURATION | --now]",
	  "remove one instance: mark it draining, wait, then delete it",
	  "A key that vanishes while its server serves looks like a registry accident to the controller\n"
	  "(it fails static), but state draining is honoured at once. So the value is first rewritten\n"
	  "with state draining (same lease, only if unchanged), then deleted after the drain wait (only\n"
	  "if still unchanged). --now deletes at once. SIGINT/SIGTERM during the wait leave it draining.\n"
	  "Exit status: 0 deleted, 1 no such instance or it changed meanwhile, 2 usage or etcd unreachable.",
	  cmd_deregister_opts, cmd_deregister },
	{ "load", "[options] URL", "HTTP/1.1 load: open loop (-R, --ramp) or closed loop, honest latency, SLO exit codes",
	  "Open loop (-R or --ramp): requests fall due at the given rate whatever the server does; latency\n"
	  "counts from when a request was due (corrected for coordinated omission), and the uncorrected\n"
	  "latency is shown beside it. Without -R: closed loop, each connection as fast as it is answered.\n"
	  "--ramp: '1000:10s,2000:10s' (steps) or '0..5000:30s' (linear), mixed freely.\n"
	  "--slo: 'p99<50ms,p99.9<200ms,mean<5ms,max<1s,errors<0.1%,errors<10,rps>=1000'.\n"
	  "Exit codes: 0 ok, 1 an SLO failed, 2 usage, 3 the generator could not deliver the load\n"
	  "(ephemeral ports or file descriptors ran out, or its own loop fell behind). See docs/load.md.",
	  cmd_load_opts, cmd_load },
	{ "testserver", "--port P [options]", "an HTTP test backend with a set capacity, service time and failure rate",
	  "Serves at most --capacity requests at once, each taking --service-time (5ms, exp:5ms,\n"
	  "uniform:2ms-8ms); beyond that it queues (latency grows) or rejects with 503. GET /healthz is\n"
	  "always 200. GET /_testserver/stats and POST /_testserver/set?service_time=..&fail_rate=..\n"
	  "(loopback clients only) observe and steer it. SIGTERM: stop accepting, finish, exit 0.",
	  cmd_testserver_opts, cmd_testserver },
	{ "scenario", "run|check [options] FILE", "run a fault-injection scenario against a local stack and assert SLOs",
	  "Starts the stack the file describes on loopback (Veltrix: local etcd, controller and HAProxy;\n"
	  "static: a fixed haproxy.cfg), its test backends, then the load phases and the faults on one\n"
	  "clock; checks each phase's assertions; tears everything down however the run ends.\n"
	  "`check` only validates the file. Exit codes: 0 every assertion held, 1 one did not, 2 invalid\n"
	  "file or usage, 3 the run is invalid (the stack broke, the generator could not deliver the\n"
	  "load, or Ctrl-C). See docs/scenarios.md.",
	  cmd_scenario_opts, cmd_scenario },
	{ "demo", "[--quick] [--html FILE] [--json FILE]",
	  "static HAProxy vs Veltrix under the same load and faults, side by side (about 2 minutes)",
	  "Runs the built-in scenario twice, one stack after the other: backends of unequal capacity,\n"
	  "load rising to 3x what the static configuration serves comfortably, a crash (kill -9), a\n"
	  "rolling deploy and a server that slows down. Prints a side-by-side table and writes an HTML\n"
	  "report with the charts. --quick: a short form in seconds (for tests; numbers are rougher).",
	  cmd_demo_opts, cmd_demo },
	{ "help", "[COMMAND]", "show the commands, or one command's options", NULL, no_opts, cmd_help },
	{ "version", "", "print the version", NULL, no_opts, cmd_version },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};
