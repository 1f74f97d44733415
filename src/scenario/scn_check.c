/* Cross-field checks of a scenario after the walk: groups expand into named instances, fault
 * targets must name one (with "did you mean"), each action takes only its own parameters, and
 * every fault falls inside the load. Findings point at the key that is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "scenario/scn_load_int.h"

enum {
	K_TARGET = 1 << 0,
	K_TARGETS = 1 << 1,
	K_SERVICE = 1 << 2,
	K_FAIL = 1 << 3,
	K_COUNT = 1 << 4,
	K_GROUP = 1 << 5,
	K_CAPACITY = 1 << 6,
	K_INTERVAL = 1 << 7,
};

static const struct {
	const char *leaf;
	unsigned bit;
} fault_keys[] = {
	{ "target", K_TARGET }, { "targets", K_TARGETS }, { "service_time", K_SERVICE }, { "fail_rate", K_FAIL },
	{ "count", K_COUNT },	{ "group", K_GROUP },	  { "capacity", K_CAPACITY },	  { "interval", K_INTERVAL },
};

/* What each action accepts and needs, in the order of enum scn_action. */
static const struct {
	unsigned allowed, required;
	bool veltrix_only;
} actions[SCN_ACTION_COUNT] = {
	[SCN_KILL] = { K_TARGET, K_TARGET, false },
	[SCN_TERM] = { K_TARGET, K_TARGET, false },
	[SCN_FREEZE] = { K_TARGET, K_TARGET, false },
	[SCN_THAW] = { K_TARGET, K_TARGET, false },
	[SCN_START] = { K_TARGET, K_TARGET, false },
	[SCN_RESTART] = { K_TARGET, K_TARGET, false },
	[SCN_SLOW] = { K_TARGET | K_SERVICE, K_TARGET | K_SERVICE, false },
	[SCN_FAIL] = { K_TARGET | K_FAIL, K_TARGET | K_FAIL, false },
	[SCN_ROLLING_DEPLOY] = { K_TARGETS | K_INTERVAL, 0, false },
	[SCN_SCALE_OUT] = { K_COUNT | K_GROUP | K_CAPACITY, 0, false },
	[SCN_ETCD_STOP] = { 0, 0, true },
	[SCN_ETCD_KILL] = { 0, 0, true },
	[SCN_ETCD_START] = { 0, 0, true },
	[SCN_CONTROLLER_KILL] = { 0, 0, true },
	[SCN_CONTROLLER_START] = { 0, 0, true },
	[SCN_HAPROXY_RELOAD] = { 0, 0, false },
};

unsigned scn_fault_key_bit(const char *leaf)
{
	for (size_t i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++)
		if (strcmp(fault_keys[i].leaf, leaf) == 0)
			return fault_keys[i].bit;
	return 0;
}

static const char *key_of(unsigned bit)
{
	for (size_t i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++)
		if (fault_keys[i].bit == bit)
			return fault_keys[i].leaf;
	return "?";
}

static void actions_taking(unsigned bit, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (int a = 0; a < SCN_ACTION_COUNT && n < cap; a++)
		if (actions[a].allowed & bit)
			n += (size_t)snprintf(out + n, cap - n, "%s`%s`", n ? ", " : "", scn_action_name((enum scn_action)a));
}

bool scn_action_veltrix_only(enum scn_action a)
{
	return (unsigned)a < SCN_ACTION_COUNT && actions[a].veltrix_only;
}

/* ---- backends ---- */

static void add_backend(struct scn *s, size_t group, int64_t k, int64_t capacity, bool initial)
{
	struct scn_backend *b = &s->backends[s->n_backends++];
	char name[64]; /* group names are at most 20 bytes: it fits */
	snprintf(name, sizeof(name), "%s-%lld", s->groups[group].name, (long long)k);
	str_copy(b->name, sizeof(b->name), name);
	b->group = group;
	b->capacity = capacity;
	b->initial = initial;
}

static int64_t group_members(const struct scn *s, size_t g)
{
	int64_t n = 0;
	for (size_t i = 0; i < s->n_backends; i++)
		n += s->backends[i].group == g;
	return n;
}

static void expand_groups(struct scn_loader *L)
{
	struct scn *s = L->s;
	for (size_t g = 0; g < s->n_groups; g++) {
		struct scn_group *gr = &s->groups[g];
		char path[48];
		snprintf(path, sizeof(path), "backends[%zu]", g);
		for (size_t h = 0; h < g; h++)
			if (strcmp(s->groups[h].name, gr->name) == 0)
				scn_perr(L, path, "give each group its own name", "a second group named `%s`", gr->name);
		if (!L->count_given[g] || gr->count < 1)
			gr->count = gr->n_caps > 1 ? (int64_t)gr->n_caps : 1;
		if (gr->n_caps > 1 && (size_t)gr->count != gr->n_caps && !scn_path_bad(L, path)) {
			snprintf(path, sizeof(path), "backends[%zu].capacity", g);
			scn_perr(L, path, "give one capacity per instance, or a single number for all",
				 "%zu capacities for %lld instances", gr->n_caps, (long long)gr->count);
			continue;
		}
		if (s->n_backends + (size_t)gr->count > SCN_MAX_BACKENDS) {
			scn_perr(L, path, "run fewer backends", "more than %d backends in all", SCN_MAX_BACKENDS);
			return;
		}
		for (int64_t k = 0; k < gr->count; k++)
			add_backend(s, g, k + 1, gr->caps[gr->n_caps > 1 ? k : 0], true);
	}
}

static long find_group(const struct scn *s, const char *name)
{
	for (size_t g = 0; g < s->n_groups; g++)
		if (strcmp(s->groups[g].name, name) == 0)
			return (long)g;
	return -1;
}

/* A scale_out adds "<group>-<n+1>"...: those names become valid targets of later faults. */
static void expand_scale_out(struct scn_loader *L, size_t i)
{
	struct scn *s = L->s;
	struct scn_fault *f = &s->faults[i];
	char path[48];
	snprintf(path, sizeof(path), "faults[%zu].group", i);
	long g = f->group[0] ? find_group(s, f->group) : 0;
	if (g < 0) {
		scn_perr(L, path, "name a group from `backends`", "no backend group named `%s`", f->group);
		return;
	}
	snprintf(f->group, sizeof(f->group), "%s", s->groups[g].name);
	if (f->count <= 0)
		f->count = 1;
	if (s->n_backends + (size_t)f->count > SCN_MAX_BACKENDS) {
		snprintf(path, sizeof(path), "faults[%zu].count", i);
		scn_perr(L, path, "add fewer backends", "more than %d backends in all", SCN_MAX_BACKENDS);
		return;
	}
	int64_t cap = f->capacity > 0 ? f->capacity : s->groups[g].caps[0];
	int64_t next = group_members(s, (size_t)g);
	for (int64_t k = 0; k < f->count; k++)
		add_backend(s, (size_t)g, next + k + 1, cap, false);
}

/* ---- faults ---- */

static long find_backend(const struct scn *s, const char *name)
{
	for (size_t i = 0; i < s->n_backends; i++)
		if (strcmp(s->backends[i].name, name) == 0)
			return (long)i;
	return -1;
}

static void check_target(struct scn_loader *L, const char *path, const char *name)
{
	const struct scn *s = L->s;
	if (find_backend(s, name) >= 0)
		return;
	const char *best = NULL;
	int best_d = 255;
	for (size_t i = 0; i < s->n_backends; i++) {
		int d = str_edit_distance(name, s->backends[i].name);
		if (d < best_d)
			best_d = d, best = s->backends[i].name;
	}
	char hint[96];
	if (best && best_d <= 2)
		snprintf(hint, sizeof(hint), "did you mean `%s`?", best);
	else
		snprintf(hint, sizeof(hint), "instances are named <group>-<n>, such as `%s`", s->n_backends ? s->backends[0].name : "web-1");
	scn_perr(L, path, hint, "no backend named `%s`", name);
}

static void check_params(struct scn_loader *L, size_t i)
{
	const struct scn_fault *f = &L->s->faults[i];
	unsigned given = L->fault_keys[i], allowed = actions[f->action].allowed, need = actions[f->action].required;
	char path[64], list[256];
	for (unsigned bit = 1; bit <= K_INTERVAL; bit <<= 1) {
		if ((given & bit) && !(allowed & bit)) {
			snprintf(path, sizeof(path), "faults[%zu].%s", i, key_of(bit));
			actions_taking(bit, list, sizeof(list));
			scn_perr(L, path, "remove it", "`%s` does not apply to `%s` (only to %s)", key_of(bit),
				 scn_action_name(f->action), list);
		}
		if ((need & bit) && !(given & bit)) {
			snprintf(path, sizeof(path), "faults[%zu]", i);
			scn_perr(L, path, "add it", "`%s` needs `%s:`", scn_action_name(f->action), key_of(bit));
		}
	}
}

static void check_fault(struct scn_loader *L, size_t i, int64_t total_us)
{
	struct scn *s = L->s;
	struct scn_fault *f = &s->faults[i];
	char path[64], t[32];
	snprintf(path, sizeof(path), "faults[%zu]", i);
	if (scn_path_bad(L, path))
		return; /* already reported: its action or parameters cannot be trusted */
	if (f->at_us >= total_us) {
		snprintf(path, sizeof(path), "faults[%zu].at", i);
		dur_format(total_us, t, sizeof(t));
		scn_perr(L, path, "make it earlier, or the load longer", "the load ends at %s; this fault would never happen", t);
	}
	if (actions[f->action].veltrix_only && s->stack == SCN_STACK_STATIC) {
		snprintf(path, sizeof(path), "faults[%zu].action", i);
		scn_perr(L, path, "use `stack: veltrix`, or remove this fault",
			 "`%s` needs the Veltrix stack (a static stack has no etcd and no controller)", scn_action_name(f->action));
	}
	check_params(L, i);
	if (f->target[0]) {
		snprintf(path, sizeof(path), "faults[%zu].target", i);
		check_target(L, path, f->target);
	}
	for (size_t k = 0; k < f->n_targets; k++) {
		snprintf(path, sizeof(path), "faults[%zu].targets[%zu]", i, k);
		if (f->targets[k][0])
			check_target(L, path, f->targets[k]);
	}
	if (f->action == SCN_ROLLING_DEPLOY && !(L->fault_keys[i] & K_INTERVAL))
		f->interval_us = USEC_PER_SEC;
}

/* Faults run in time order (a stable sort keeps the file's order at equal times). */
static void sort_faults(struct scn_loader *L)
{
	struct scn *s = L->s;
	for (size_t i = 1; i < s->n_faults; i++) {
		for (size_t j = i; j > 0 && s->faults[j - 1].at_us > s->faults[j].at_us; j--) {
			struct scn_fault tmp = s->faults[j];
			unsigned keys = L->fault_keys[j];
			s->faults[j] = s->faults[j - 1];
			L->fault_keys[j] = L->fault_keys[j - 1];
			s->faults[j - 1] = tmp;
			L->fault_keys[j - 1] = keys;
		}
	}
}

static void record_lines(struct scn_loader *L)
{
	for (size_t i = 0; i < L->s->n_faults; i++) {
		char path[32];
		snprintf(path, sizeof(path), "faults[%zu]", i);
		for (size_t k = 0; k < L->n_pos; k++)
			if (strcmp(L->pos[k].path, path) == 0)
				L->s->faults[i].line = L->pos[k].line;
	}
}

static void check_service(struct scn_loader *L)
{
	const struct scn_service *v = &L->s->service;
	if (v->check_timeout_us >= v->check_interval_us && !scn_path_bad(L, "service.health"))
		scn_perr(L, "service.health.timeout", "make it shorter than service.health.interval",
			 "a check timeout must be shorter than the check interval");
	if (v->lease_ttl_us % USEC_PER_SEC != 0)
		scn_perr(L, "service.lease_ttl", "write whole seconds, such as 5s", "etcd lease TTLs are whole seconds");
	if (L->s->stack == SCN_STACK_STATIC && L->s->registration == SCN_REG_AGENT)
		scn_perr(L, "registration", "remove it, or use `stack: veltrix`",
			 "`registration: agent` needs the Veltrix stack (a static stack has no registry)");
}

void scn_check(struct scn_loader *L)
{
	struct scn *s = L->s;
	record_lines(L);
	check_service(L);
	expand_groups(L);
	for (size_t i = 0; i < s->n_phases; i++)
		if (!s->phases[i].name) {
			char name[32];
			snprintf(name, sizeof(name), "phase-%zu", i + 1);
			s->phases[i].name = xstrdup(name);
		}
	int64_t total = scn_duration_us(s);
	if (total > SCN_MAX_DURATION_US)
		scn_perr(L, "load.phases", "keep a scenario under an hour", "the phases last longer than 1h");
	/* Scale-outs name their instances in time order; findings use the file's indexes. */
	size_t order[SCN_MAX_FAULTS];
	for (size_t i = 0; i < s->n_faults; i++) {
		size_t j = i;
		for (; j > 0 && s->faults[order[j - 1]].at_us > s->faults[i].at_us; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (size_t k = 0; k < s->n_faults; k++) {
		char path[32];
		snprintf(path, sizeof(path), "faults[%zu]", order[k]);
		if (s->faults[order[k]].action == SCN_SCALE_OUT && !scn_path_bad(L, path))
			expand_scale_out(L, order[k]);
	}
	for (size_t i = 0; i < s->n_faults; i++)
		check_fault(L, i, total);
	sort_faults(L);
}
