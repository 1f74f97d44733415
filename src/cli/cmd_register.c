/* `veltrix register`: put one instance into the registry, validated exactly like a value read
 * from etcd; with --ttl, bound to a lease kept alive until SIGINT/SIGTERM, then revoked. */
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_reg.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "registry/reg.h"
#include "registry/reg_status.h"
#include "registry/reg_write.h"

enum {
	OPT_ETCD = 256, OPT_SERVICE, OPT_INSTANCE, OPT_ADDRESS, OPT_PORT, OPT_CAPACITY, OPT_STATE,
	OPT_WEIGHT, OPT_ZONE, OPT_VERSION, OPT_TAG, OPT_TTL,
};

const struct cli_opt cmd_register_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml; none needed with --etcd)" },
	{ OPT_ETCD, "etcd", "URL[,URL...]", "etcd endpoints, overriding etcd.endpoints" },
	{ OPT_SERVICE, "service", "NAME", "service name, [a-z0-9][a-z0-9_-]{0,62} (required)" },
	{ OPT_INSTANCE, "instance", "NAME", "instance name, [A-Za-z0-9][A-Za-z0-9._:-]{0,63} (required)" },
	{ OPT_ADDRESS, "address", "IP", "IPv4 or IPv6 literal HAProxy connects to (required)" },
	{ OPT_PORT, "port", "PORT", "1-65535 (required)" },
	{ OPT_CAPACITY, "capacity", "N", "concurrent requests the instance serves, 1-100000 (default: the service's default_capacity)" },
	{ OPT_STATE, "state", "STATE", "up (default), draining or down" },
	{ OPT_WEIGHT, "weight", "W", "operator's weight override, 0-256" },
	{ OPT_ZONE, "zone", "ZONE", "failure domain (printable ASCII, no spaces, at most 64)" },
	{ OPT_VERSION, "version", "VERSION", "software version (printable ASCII, no spaces, at most 64)" },
	{ OPT_TAG, "tag", "TAG", "a free label; repeat for more (at most 32)" },
	{ OPT_TTL, "ttl", "DURATION", "bind the key to a lease of this TTL (2s-24h, whole seconds) and keep it alive until SIGINT/SIGTERM, then revoke it" },
	{ 0, NULL, NULL, NULL },
};

#define TTL_MIN_S 2
#define TTL_MAX_S (24 * 3600)
#define RETRY_MIN_US (200 * USEC_PER_MS)
#define RETRY_MAX_US (5 * USEC_PER_SEC)

struct reg_args {
	const char *cfg_path, *etcd, *ttl;
	struct reg_fields f;
	const char *tags[REG_TAGS_MAX + 1]; /* one more than allowed, so the codec can refuse it */
};

/* ---- a lease-bound registration kept alive (the --ttl loop) ---- */

struct keeper {
	struct cli_reg *r;
	struct ev_loop *loop;
	const char *key, *value;
	int64_t ttl_s;
	int64_t lease; /* current lease, 0 while re-registering */
	int64_t orphan; /* granted after a stop was asked: revoke it too */
	struct etcd_keepalive *ka;
	ev_timer retry;
	ev_signal sigs[2];
	int64_t backoff_us;
	bool stopping;
};

static void regrant(struct keeper *k);

static void retry_later(struct keeper *k, const char *what, const char *why)
{
	int64_t wait = k->backoff_us / 2 + (int64_t)(random() % (k->backoff_us / 2 + 1));
	log_warn("registration failed; retrying", "key=%s step=%s error=%s retry_in_ms=%" PRId64, log_q(k->key),
		 what, log_q(why), wait / USEC_PER_MS);
	k->backoff_us = k->backoff_us * 2 > RETRY_MAX_US ? RETRY_MAX_US : k->backoff_us * 2;
	ev_timer_set(&k->retry, (double)wait / 1e6, 0.);
	ev_timer_start(k->loop, &k->retry);
}

static void on_renewed(void *arg, int64_t ttl_s)
{
	struct keeper *k = arg;
	log_debug("lease renewed", "key=%s ttl_s=%" PRId64, log_q(k->key), ttl_s);
}

static void on_lost(void *arg, const char *reason)
{
	struct keeper *k = arg;
	char hex[17];
	reg_lease_hex(k->lease, hex);
	log_warn("lease lost; registering again", "key=%s lease=%s reason=%s", log_q(k->key), hex, log_q(reason));
	etcd_keepalive_free(k->ka);
	k->ka = NULL;
	k->lease = 0;
	regrant(k);
}

static void on_trouble(void *arg, const char *detail)
{
	struct keeper *k = arg;
	log_warn("lease keepalive trouble; still trying", "key=%s detail=%s", log_q(k->key), log_q(detail));
}

static int keep_alive(struct keeper *k, struct vxerr *err)
{
	struct etcd_keepalive_cbs cbs = { on_renewed, on_lost, on_trouble, k };
	k->ka = etcd_keepalive_start(k->r->client, k->lease, k->ttl_s, &cbs, err);
	return k->ka ? 0 : -1;
}

static void on_put(void *arg, struct etcd_resp *resp)
{
	struct keeper *k = arg;
	struct vxerr err;
	char hex[17];
	if (k->stopping)
		return;
	if (resp->code != ETCD_OK) {
		retry_later(k, "put", resp->error ? resp->error : etcd_code_name(resp->code));
		return;
	}
	if (keep_alive(k, &err) != 0) {
		retry_later(k, "keepalive", err.msg);
		return;
	}
	reg_lease_hex(k->lease, hex);
	log_info("registered again", "key=%s lease=%s revision=%" PRId64, log_q(k->key), hex, resp->header.revision);
	k->backoff_us = RETRY_MIN_US;
}

static void on_grant(void *arg, struct etcd_resp *resp)
{
	struct keeper *k = arg;
	struct vxerr err;
	if (k->stopping) {
		if (resp->code == ETCD_OK)
			k->orphan = resp->lease_id;
		return;
	}
	if (resp->code != ETCD_OK) {
		retry_later(k, "lease grant", resp->error ? resp->error : etcd_code_name(resp->code));
		return;
	}
	k->lease = resp->lease_id;
	struct etcd_put_req put = { .key = k->key, .value = k->value, .lease = k->lease };
	if (etcd_put_async(k->r->client, &put, on_put, k, &err) != 0)
		retry_later(k, "put", err.msg);
}

static void regrant(struct keeper *k)
{
	struct vxerr err;
	if (etcd_lease_grant_async(k->r->client, k->ttl_s, 0, on_grant, k, &err) != 0)
		retry_later(k, "lease grant", err.msg);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	regrant(w->data);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct keeper *k = w->data;
	k->stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

static int lease_revoke(struct keeper *k, int64_t lease)
{
	struct etcd_resp resp;
	struct vxerr err;
	char hex[17];
	reg_lease_hex(lease, hex);
	int rc = etcd_lease_revoke(k->r->client, lease, &resp, &err);
	bool gone = rc == 0 || resp.code == ETCD_NOT_FOUND;
	etcd_resp_release(&resp);
	if (gone) {
		printf("revoked lease %s: %s is gone\n", hex, k->key);
		return EXIT_OK;
	}
	fprintf(stderr, "veltrix register: cannot revoke lease %s (%s); %s disappears when the lease expires, within %" PRId64 " s\n",
		hex, err.msg, k->key, k->ttl_s);
	return EXIT_FAILED;
}

/* Runs until SIGINT/SIGTERM, re-registering after a lost lease; then revokes the lease. */
static int keep_registered(struct keeper *k)
{
	struct vxerr err;
	static const int signums[2] = { SIGINT, SIGTERM };
	if (keep_alive(k, &err) != 0) {
		fprintf(stderr, "veltrix register: %s\n", err.msg);
		lease_revoke(k, k->lease);
		return EXIT_FAILED;
	}
	ev_init(&k->retry, on_retry);
	k->retry.data = k;
	for (int i = 0; i < 2; i++) {
		ev_signal_init(&k->sigs[i], on_signal, signums[i]);
		k->sigs[i].data = k;
		ev_signal_start(k->loop, &k->sigs[i]);
	}
	ev_run(k->loop, 0);
	for (int i = 0; i < 2; i++)
		ev_signal_stop(k->loop, &k->sigs[i]);
	ev_timer_stop(k->loop, &k->retry);
	etcd_keepalive_free(k->ka);
	k->ka = NULL;
	int rc = k->lease ? lease_revoke(k, k->lease) : EXIT_OK;
	if (k->orphan && k->orphan != k->lease)
		lease_revoke(k, k->orphan);
	return rc;
}

/* ---- the first registration ---- */

static int grant(struct cli_reg *r, int64_t ttl_s, int64_t *lease)
{
	struct etcd_resp resp;
	struct vxerr err;
	int rc = etcd_lease_grant(r->client, ttl_s, 0, &resp, &err);
	if (rc == 0)
		*lease = resp.lease_id;
	etcd_resp_release(&resp);
	return rc == 0 ? 0 : cli_reg_etcd_error(r, "cannot grant a lease", err.msg);
}

static int put(struct cli_reg *r, const char *key, const char *value, int64_t lease)
{
	struct etcd_resp resp;
	struct vxerr err;
	struct etcd_put_req req = { .key = key, .value = value, .lease = lease, .prev_kv = true };
	if (etcd_put(r->client, &req, &resp, &err) != 0) {
		etcd_resp_release(&resp);
		return cli_reg_etcd_error(r, "cannot write the key", err.msg);
	}
	char hex[17];
	reg_lease_hex(lease, hex);
	printf("registered %s = %s (revision %" PRId64 "%s%s%s)\n", key, value, resp.header.revision,
	       resp.n_kvs ? ", replacing the previous value" : "", lease ? ", lease " : "", lease ? hex : "");
	etcd_resp_release(&resp);
	return 0;
}

static int parse_ttl(const char *text, int64_t *ttl_s)
{
	int64_t us;
	char why[128];
	if (dur_parse(text, &us, why, sizeof(why)) != 0) {
		fprintf(stderr, "veltrix register: --ttl '%s': %s\n", text, why);
		return -1;
	}
	int64_t s = (us + USEC_PER_SEC - 1) / USEC_PER_SEC; /* etcd leases have whole seconds */
	if (s < TTL_MIN_S || s > TTL_MAX_S) {
		fprintf(stderr, "veltrix register: --ttl '%s': must be between 2s and 24h\n", text);
		return -1;
	}
	*ttl_s = s;
	return 0;
}

/* The key and the value to write, checked before any etcd call: nothing is written when they
 * are refused. */
static int build(struct cli_reg *r, const struct reg_fields *f, char *key, size_t cap, char **value)
{
	struct reg_instance in;
	struct reg_fail fail;
	struct vxerr err;
	size_t n_allow, len;
	const struct cidr *allow = cli_reg_allow(r, f->service, &n_allow);
	if (reg_fields_instance(f, allow, n_allow, &in, &fail) != 0) {
		fprintf(stderr, "veltrix register: refused (%s): %s\n", reg_reason_name(fail.reason), fail.err.msg);
		return -1;
	}
	int rc = reg_key_build(r->prefix, in.service, in.name, key, cap, &err);
	if (rc == 0)
		rc = reg_value_encode(&in, value, &len, &err);
	if (rc != 0)
		fprintf(stderr, "veltrix register: refused: %s\n", err.msg);
	reg_instance_release(&in);
	return rc;
}

static int run_register(const struct reg_args *a)
{
	struct cli_reg r;
	char key[REG_KEY_MAX], *value = NULL;
	int64_t ttl_s = 0, lease = 0;
	int rc = EXIT_USAGE;
	if (a->ttl && parse_ttl(a->ttl, &ttl_s) != 0)
		return EXIT_USAGE;
	if (cli_reg_open(&r, "register", a->cfg_path, a->etcd, EV_DEFAULT) != 0)
		return EXIT_USAGE;
	log_set_component("register");
	srandom((unsigned)(time_mono_ns() ^ (int64_t)getpid()));
	if (build(&r, &a->f, key, sizeof(key), &value) != 0)
		goto out;
	if (ttl_s && grant(&r, ttl_s, &lease) != 0)
		goto out;
	if (put(&r, key, value, lease) != 0) {
		struct keeper k = { .r = &r, .key = key, .ttl_s = ttl_s };
		if (lease)
			lease_revoke(&k, lease);
		goto out;
	}
	rc = EXIT_OK;
	if (ttl_s) {
		printf("keeping lease alive (TTL %" PRId64 "s) until SIGINT or SIGTERM\n", ttl_s);
		fflush(stdout);
		struct keeper k = { .r = &r, .loop = EV_DEFAULT, .key = key, .value = value, .ttl_s = ttl_s,
				    .lease = lease, .backoff_us = RETRY_MIN_US };
		rc = keep_registered(&k);
	}
out:
	free(value);
	cli_reg_close(&r);
	return rc;
}

static bool required(const struct cli_command *cmd, const struct reg_args *a, int *rc)
{
	static const char *const names[] = { "service", "instance", "address", "port" };
	const char *vals[] = { a->f.service, a->f.instance, a->f.address, a->f.port };
	for (int i = 0; i < 4; i++)
		if (!vals[i]) {
			*rc = cli_usage_error(cmd, "--%s is required", names[i]);
			return false;
		}
	return true;
}

static void set_opt(struct reg_args *a, int c, const char *arg)
{
	const char **slot[] = {
		[OPT_SERVICE - OPT_SERVICE] = &a->f.service, [OPT_INSTANCE - OPT_SERVICE] = &a->f.instance,
		[OPT_ADDRESS - OPT_SERVICE] = &a->f.address, [OPT_PORT - OPT_SERVICE] = &a->f.port,
		[OPT_CAPACITY - OPT_SERVICE] = &a->f.capacity, [OPT_STATE - OPT_SERVICE] = &a->f.state,
		[OPT_WEIGHT - OPT_SERVICE] = &a->f.weight, [OPT_ZONE - OPT_SERVICE] = &a->f.zone,
		[OPT_VERSION - OPT_SERVICE] = &a->f.version,
	};
	if (c == 'c')
		a->cfg_path = arg;
	else if (c == OPT_ETCD)
		a->etcd = arg;
	else if (c == OPT_TTL)
		a->ttl = arg;
	else if (c == OPT_TAG && a->f.n_tags <= REG_TAGS_MAX)
		a->tags[a->f.n_tags++] = arg;
	else if (c >= OPT_SERVICE && c <= OPT_VERSION)
		*slot[c - OPT_SERVICE] = arg;
}

int cmd_register(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct reg_args a = { 0 };
	const char *arg;
	int c, rc;
	a.f.tags = a.tags;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0)
		set_opt(&a, c, arg);
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	if (!required(cmd, &a, &rc))
		return rc;
	return run_register(&a);
}
