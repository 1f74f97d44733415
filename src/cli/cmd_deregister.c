/* `veltrix deregister`: remove one instance without surprising the controller. A key that
 * vanishes while its server serves looks like a registry accident (the controller fails
 * static), but `state: draining` is honoured at once; so the value is first rewritten as
 * draining (compare-and-swap on its revision, same lease), and the key is deleted after the
 * drain wait (again only if nobody changed it meanwhile). --now deletes at once. */
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_reg.h"
#include "common/alloc.h"
#include "common/timeutil.h"
#include "registry/reg.h"
#include "registry/reg_write.h"

enum { OPT_ETCD = 256, OPT_SERVICE, OPT_INSTANCE, OPT_DRAIN_WAIT, OPT_NOW };

const struct cli_opt cmd_deregister_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml; none needed with --etcd)" },
	{ OPT_ETCD, "etcd", "URL[,URL...]", "etcd endpoints, overriding etcd.endpoints" },
	{ OPT_SERVICE, "service", "NAME", "service name (required)" },
	{ OPT_INSTANCE, "instance", "NAME", "instance name (required)" },
	{ OPT_DRAIN_WAIT, "drain-wait", "DURATION", "how long to leave it draining before deleting (default: the service's drain_timeout, else 5s; at most 1h)" },
	{ OPT_NOW, "now", NULL, "delete at once, without draining" },
	{ 0, NULL, NULL, NULL },
};

#define DEFAULT_WAIT_US (5 * USEC_PER_SEC)
#define MAX_WAIT_US (3600 * USEC_PER_SEC)
#define CAS_ATTEMPTS 5

struct dereg_args {
	const char *cfg_path, *etcd, *service, *instance, *drain_wait;
	bool now;
};

struct dereg {
	struct cli_reg r;
	char key[REG_KEY_MAX];
	int64_t wait_us;
	char wait_why[128]; /* where wait_us came from, for the message */
};

/* The key's current record; 1 when found, 0 when absent, -1 after printing an etcd error. */
static int read_key(struct dereg *d, struct etcd_kv *kv, char **value)
{
	struct etcd_resp resp;
	struct vxerr err;
	struct etcd_range_req req = { .key = d->key };
	if (etcd_range(d->r.client, &req, &resp, &err) != 0) {
		etcd_resp_release(&resp);
		cli_reg_etcd_error(&d->r, "cannot read the key", err.msg);
		return -1;
	}
	int found = resp.n_kvs > 0;
	if (found) {
		*kv = resp.kvs[0];
		*value = xmalloc(kv->value_len + 1);
		if (kv->value_len)
			memcpy(*value, resp.kvs[0].value, kv->value_len);
		(*value)[kv->value_len] = '\0';
		kv->key = NULL;
		kv->value = NULL;
	}
	etcd_resp_release(&resp);
	return found;
}

/* Deletes the key when its mod revision is still mod_rev; returns the exit code. */
static int delete_if(struct dereg *d, int64_t mod_rev)
{
	struct etcd_resp resp;
	struct vxerr err;
	struct etcd_compare cmp = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL, .key = d->key, .number = mod_rev };
	struct etcd_txn_op del = { .type = ETCD_OP_DELETE, .del = { .key = d->key } };
	struct etcd_txn_op get = { .type = ETCD_OP_RANGE, .range = { .key = d->key } };
	struct etcd_txn_req txn = { &cmp, 1, &del, 1, &get, 1 };
	if (etcd_txn(d->r.client, &txn, &resp, &err) != 0) {
		etcd_resp_release(&resp);
		return cli_reg_etcd_error(&d->r, "cannot delete the key", err.msg);
	}
	int rc = EXIT_OK;
	if (resp.succeeded)
		printf("deleted %s (revision %" PRId64 ")\n", d->key, resp.header.revision);
	else if (resp.n_ops == 1 && resp.ops[0].n_kvs == 0)
		printf("%s is already gone\n", d->key);
	else {
		fprintf(stderr, "veltrix deregister: %s changed meanwhile (now at revision %" PRId64 "); not deleted: "
				"whoever wrote it still registers it\n",
			d->key, resp.n_ops == 1 && resp.ops[0].n_kvs ? resp.ops[0].kvs[0].mod_revision : 0);
		rc = EXIT_FAILED;
	}
	etcd_resp_release(&resp);
	return rc;
}

/* Rewrites the value as draining if it is still at kv->mod_revision (same lease). Returns 1 and
 * *rev (the new revision) when written, 0 when the key changed meanwhile (read again), 2 when
 * the lease is gone (and the key with it), -1 after printing an etcd error. */
static int write_draining(struct dereg *d, const struct etcd_kv *kv, const char *value, size_t len, int64_t *rev)
{
	struct etcd_resp resp;
	struct vxerr err;
	struct etcd_compare cmp = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL, .key = d->key, .number = kv->mod_revision };
	struct etcd_txn_op put = { .type = ETCD_OP_PUT, .put = { .key = d->key, .value = value, .value_len = len, .lease = kv->lease } };
	struct etcd_txn_req txn = { &cmp, 1, &put, 1, NULL, 0 };
	int rc = etcd_txn(d->r.client, &txn, &resp, &err);
	int out = rc == 0 ? (resp.succeeded ? 1 : 0) : resp.code == ETCD_NOT_FOUND ? 2 : -1;
	if (out == 1)
		*rev = resp.header.revision;
	if (out == -1)
		cli_reg_etcd_error(&d->r, "cannot mark the instance draining", err.msg);
	etcd_resp_release(&resp);
	return out;
}

/* Waits d->wait_us unless SIGINT/SIGTERM comes first; true when the wait ran out. */
static void on_wait_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	*(bool *)w->data = true;
	ev_break(loop, EVBREAK_ALL);
}

static void on_wait_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static bool wait_drain(struct dereg *d)
{
	struct ev_loop *loop = EV_DEFAULT;
	bool interrupted = false;
	ev_timer t;
	ev_signal sigs[2];
	static const int signums[2] = { SIGINT, SIGTERM };
	ev_timer_init(&t, on_wait_timer, (double)d->wait_us / 1e6, 0.);
	ev_timer_start(loop, &t);
	for (int i = 0; i < 2; i++) {
		ev_signal_init(&sigs[i], on_wait_signal, signums[i]);
		sigs[i].data = &interrupted;
		ev_signal_start(loop, &sigs[i]);
	}
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
	for (int i = 0; i < 2; i++)
		ev_signal_stop(loop, &sigs[i]);
	return !interrupted;
}

enum plan { PLAN_WRITE, PLAN_WAIT, PLAN_DELETE };

/* What to do with the stored value: rewrite it as draining (*out), only wait (it is draining
 * already), or delete it now (why[] says why). */
static enum plan drain_plan(const char *value, size_t len, char **out, size_t *out_len, char *why, size_t cap)
{
	struct reg_instance in = { 0 };
	struct reg_fail fail;
	if (reg_value_decode(value, len, &in, &fail) != 0) {
		snprintf(why, cap, "its value is rejected (%s), so no controller routes to it", reg_reason_name(fail.reason));
		return PLAN_DELETE;
	}
	enum reg_state st = in.state;
	reg_instance_release(&in);
	if (st == REG_STATE_DOWN) {
		snprintf(why, cap, "its state is down, so it gets no traffic");
		return PLAN_DELETE;
	}
	if (st == REG_STATE_DRAINING)
		return PLAN_WAIT;
	if (reg_value_set_state(value, len, REG_STATE_DRAINING, out, out_len, &fail) != 0) {
		snprintf(why, cap, "its value cannot be rewritten as draining (%s)", reg_reason_name(fail.reason));
		return PLAN_DELETE;
	}
	return PLAN_WRITE;
}

enum attempt { ATT_GO, ATT_RETRY, ATT_DONE };

/* One read-and-rewrite. ATT_GO: go on at *rev (*now: delete without waiting); ATT_RETRY: the
 * key changed meanwhile; ATT_DONE: finished with exit code *rc. */
static enum attempt drain_attempt(struct dereg *d, int64_t *rev, bool *now, int *rc)
{
	struct etcd_kv kv = { 0 };
	char *value = NULL, *draining = NULL, why[160];
	size_t len = 0;
	int found = read_key(d, &kv, &value);
	if (found == 0)
		fprintf(stderr, "veltrix deregister: no such instance: %s is not registered\n", d->key);
	if (found <= 0) {
		*rc = found == 0 ? EXIT_FAILED : EXIT_USAGE;
		return ATT_DONE;
	}
	enum plan plan = drain_plan(value, kv.value_len, &draining, &len, why, sizeof(why));
	int w = 1;
	*rev = kv.mod_revision;
	if (plan == PLAN_DELETE) {
		printf("%s: %s; deleting it now\n", d->key, why);
		*now = true;
	} else if (plan == PLAN_WRITE) {
		w = write_draining(d, &kv, draining, len, rev);
	}
	free(value);
	free(draining);
	if (w == 2)
		printf("%s: its lease expired meanwhile; the key is gone\n", d->key);
	*rc = w == 2 ? EXIT_OK : EXIT_USAGE;
	return w == 1 ? ATT_GO : w == 0 ? ATT_RETRY : ATT_DONE;
}

/* Marks the instance draining, retrying while others write the key. Returns -1 when the caller
 * goes on at *rev (the draining revision; *now: delete without waiting), else the exit code. */
static int mark_draining(struct dereg *d, int64_t *rev, bool *now)
{
	int rc = EXIT_FAILED;
	for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
		enum attempt a = drain_attempt(d, rev, now, &rc);
		if (a != ATT_RETRY)
			return a == ATT_GO ? -1 : rc;
	}
	fprintf(stderr, "veltrix deregister: %s keeps changing; is an agent still registering it?\n", d->key);
	return EXIT_FAILED;
}

static int drain_then_delete(struct dereg *d)
{
	int64_t rev = 0;
	bool now = false;
	int rc = mark_draining(d, &rev, &now);
	if (rc != -1)
		return rc;
	if (!now) {
		char wait[32];
		dur_format(d->wait_us, wait, sizeof(wait));
		printf("%s: state draining (revision %" PRId64 "); waiting %s (%s) for HAProxy to drain it, then deleting it\n",
		       d->key, rev, wait, d->wait_why);
		fflush(stdout);
		if (!wait_drain(d)) {
			fprintf(stderr, "veltrix deregister: interrupted: %s is left draining; "
					"'veltrix deregister --now' deletes it\n", d->key);
			return EXIT_FAILED;
		}
	}
	return delete_if(d, rev);
}

static int delete_now(struct dereg *d)
{
	struct etcd_kv kv = { 0 };
	char *value = NULL;
	int found = read_key(d, &kv, &value);
	free(value);
	if (found == 0)
		fprintf(stderr, "veltrix deregister: no such instance: %s is not registered\n", d->key);
	if (found <= 0)
		return found == 0 ? EXIT_FAILED : EXIT_USAGE;
	return delete_if(d, kv.mod_revision);
}

static int wait_time(struct dereg *d, const struct dereg_args *a)
{
	const struct cfg_service *s = cfg_service_find(d->r.cfg, a->service);
	char why[128];
	if (a->drain_wait) {
		if (dur_parse(a->drain_wait, &d->wait_us, why, sizeof(why)) != 0 || d->wait_us > MAX_WAIT_US) {
			fprintf(stderr, "veltrix deregister: --drain-wait '%s': %s\n", a->drain_wait,
				d->wait_us > MAX_WAIT_US ? "at most 1h" : why);
			return -1;
		}
		snprintf(d->wait_why, sizeof(d->wait_why), "--drain-wait");
	} else if (s) {
		d->wait_us = s->drain_timeout_us;
		snprintf(d->wait_why, sizeof(d->wait_why), "drain_timeout of service %s", s->name);
	} else {
		d->wait_us = DEFAULT_WAIT_US;
		snprintf(d->wait_why, sizeof(d->wait_why), "the default: %s is not in the configuration", a->service);
	}
	return 0;
}

static int run_deregister(const struct dereg_args *a)
{
	struct dereg d;
	struct vxerr err;
	int rc = EXIT_USAGE;
	memset(&d, 0, sizeof(d));
	if (cli_reg_open(&d.r, "deregister", a->cfg_path, a->etcd, EV_DEFAULT) != 0)
		return EXIT_USAGE;
	if (reg_key_build(d.r.prefix, a->service, a->instance, d.key, sizeof(d.key), &err) != 0)
		fprintf(stderr, "veltrix deregister: %s\n", err.msg);
	else if (wait_time(&d, a) == 0)
		rc = a->now ? delete_now(&d) : drain_then_delete(&d);
	cli_reg_close(&d.r);
	return rc;
}

int cmd_deregister(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct dereg_args a = { 0 };
	const char *arg;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0) {
		if (c == 'c')
			a.cfg_path = arg;
		else if (c == OPT_ETCD)
			a.etcd = arg;
		else if (c == OPT_SERVICE)
			a.service = arg;
		else if (c == OPT_INSTANCE)
			a.instance = arg;
		else if (c == OPT_DRAIN_WAIT)
			a.drain_wait = arg;
		else if (c == OPT_NOW)
			a.now = true;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	if (!a.service || !a.instance)
		return cli_usage_error(cmd, "--%s is required", a.service ? "instance" : "service");
	if (a.now && a.drain_wait)
		return cli_usage_error(cmd, "give --now or --drain-wait, not both");
	return run_deregister(&a);
}
