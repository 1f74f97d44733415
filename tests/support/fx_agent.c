/* Agent fixtures (see fx_agent.h). */
#include "fx_agent.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"

void fx_agent_start(struct fx_agent *a, const char *const *args)
{
	memset(a, 0, sizeof(*a));
	a->dir = fx_tmpdir("agent");
	a->log = fx_path(a->dir, "agent.log");
	const char *argv[64] = { fx_veltrix_bin(), "agent" };
	int n = 2;
	for (const char *const *p = args; p && *p && n < 62; p++)
		argv[n++] = *p;
	argv[n] = NULL;
	struct proc_opts o = { .stdout_path = a->log, .stderr_path = a->log, .new_pgrp = true, .die_with_parent = true,
			       .cwd = a->dir };
	struct vxerr err;
	a->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (a->pid < 0)
		fx_die("%s", err.msg);
	fx_track(a->pid);
	a->status = -1;
}

void fx_agent_signal(const struct fx_agent *a, int sig)
{
	if (a->pid > 0)
		kill(a->pid, sig);
}

int fx_agent_wait(struct fx_agent *a, int timeout_ms)
{
	int st;
	if (a->pid <= 0)
		return a->status;
	if (proc_wait(a->pid, timeout_ms, &st) != 0)
		return -1;
	fx_untrack(a->pid);
	a->pid = 0;
	a->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return a->status;
}

char *fx_agent_log(const struct fx_agent *a)
{
	char *s = fx_read_file(a->log);
	return s ? s : xstrdup("");
}

int fx_agent_log_count(const struct fx_agent *a, const char *needle)
{
	char *log = fx_agent_log(a);
	int n = 0;
	for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(log);
	return n;
}

void fx_agent_dump(const struct fx_agent *a)
{
	char *log = fx_agent_log(a);
	fprintf(stderr, "---- agent log %s\n%s----\n", a->log, log);
	free(log);
}

void fx_agent_free(struct fx_agent *a)
{
	if (a->pid > 0) {
		proc_stop(a->pid, 2000);
		fx_untrack(a->pid);
	}
	free(a->dir);
	free(a->log);
	memset(a, 0, sizeof(*a));
}

/* ---- the gateway ---- */

static char *b64(const char *s)
{
	size_t cap = b64_encoded_size(strlen(s));
	char *out = xmalloc(cap);
	b64_encode(s, strlen(s), out, cap);
	return out;
}

static int64_t i64_field(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);
	int64_t x = 0;
	if (json_is_string(v) && parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, &x) != 0)
		fx_die("gateway: a number field is not a number");
	return x;
}

/* POSTs body to path; returns the parsed answer or NULL when etcd did not answer 200. */
static json_t *gateway(const char *url, const char *path, const char *body)
{
	char *u = xasprintf("%s%s", url, path), *resp = NULL;
	long st = fx_http("POST", u, body, &resp);
	json_t *j = st == 200 ? json_loads(resp ? resp : "", 0, NULL) : NULL;
	free(u);
	free(resp);
	return j;
}

void fx_key_get(const char *etcd_url, const char *key, struct fx_key *out)
{
	memset(out, 0, sizeof(*out));
	char *k = b64(key), *body = xasprintf("{\"key\":\"%s\"}", k);
	json_t *j = gateway(etcd_url, "/v3/kv/range", body);
	free(k);
	free(body);
	const json_t *kv = j ? json_array_get(json_object_get(j, "kvs"), 0) : NULL;
	if (kv) {
		const char *v = json_string_value(json_object_get(kv, "value"));
		size_t n = v ? strlen(v) : 0;
		out->value = xmalloc(n + 1);
		long got = v ? b64_decode(v, n, out->value, n + 1) : 0;
		out->value[got > 0 ? got : 0] = '\0';
		out->present = true;
		out->lease = i64_field(kv, "lease");
		out->create_revision = i64_field(kv, "create_revision");
		out->mod_revision = i64_field(kv, "mod_revision");
	}
	json_decref(j);
}

void fx_key_release(struct fx_key *k)
{
	free(k->value);
	memset(k, 0, sizeof(*k));
}

const char *fx_key_state(const char *etcd_url, const char *key)
{
	static char state[32];
	struct fx_key k;
	fx_key_get(etcd_url, key, &k);
	if (!k.present)
		return NULL;
	json_t *v = json_loads(k.value, 0, NULL);
	const char *s = json_string_value(json_object_get(v, "state"));
	snprintf(state, sizeof(state), "%s", s ? s : "");
	json_decref(v);
	fx_key_release(&k);
	return state;
}

int fx_key_wait(const char *etcd_url, const char *key, const char *state, int timeout_ms)
{
	int64_t start = time_mono_us();
	for (;;) {
		const char *now = fx_key_state(etcd_url, key);
		if (state ? now && strcmp(now, state) == 0 : now == NULL)
			return (int)((time_mono_us() - start) / 1000);
		if (time_mono_us() - start > (int64_t)timeout_ms * 1000)
			return -1;
		time_sleep_us(20000);
	}
}

int64_t fx_key_put_leased(const char *etcd_url, const char *key, const char *value, int ttl_s)
{
	char *body = xasprintf("{\"TTL\":%d}", ttl_s);
	json_t *g = gateway(etcd_url, "/v3/lease/grant", body);
	free(body);
	int64_t lease = g ? i64_field(g, "ID") : 0;
	json_decref(g);
	if (!lease)
		fx_die("gateway: lease grant failed");
	char *k = b64(key), *v = b64(value);
	body = xasprintf("{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%lld\"}", k, v, (long long)lease);
	json_t *p = gateway(etcd_url, "/v3/kv/put", body);
	if (!p)
		fx_die("gateway: put failed");
	json_decref(p);
	free(body);
	free(k);
	free(v);
	return lease;
}

long fx_lease_revoke(const char *etcd_url, int64_t lease)
{
	char *u = xasprintf("%s/v3/lease/revoke", etcd_url), *body = xasprintf("{\"ID\":\"%lld\"}", (long long)lease);
	long st = fx_http("POST", u, body, NULL);
	free(u);
	free(body);
	return st;
}

int64_t fx_lease_ttl(const char *etcd_url, int64_t lease)
{
	char *body = xasprintf("{\"ID\":\"%lld\"}", (long long)lease);
	json_t *j = gateway(etcd_url, "/v3/lease/timetolive", body);
	free(body);
	int64_t ttl = j ? i64_field(j, "TTL") : -1;
	json_decref(j);
	return ttl;
}
