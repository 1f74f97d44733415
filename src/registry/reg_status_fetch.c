/* Lease TTL lookups for the status report: a bounded window of asynchronous calls on one loop
 * (see reg_status_fetch_ttls in reg_status.h). */
#include <ev.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "registry/etcd.h"
#include "registry/reg_status.h"

struct ttl_fetch {
	struct etcd_client *c;
	const int64_t *ids;
	struct reg_lease_ttl *out;
	size_t n, next, pending;
	bool broken; /* etcd stopped answering: ask no more */
};

struct ttl_call {
	struct ttl_fetch *f;
	size_t i;
};

static void fetch_more(struct ttl_fetch *f);

static void on_ttl(void *arg, struct etcd_resp *resp)
{
	struct ttl_call *call = arg;
	struct ttl_fetch *f = call->f;
	struct reg_lease_ttl *r = &f->out[call->i];
	free(call);
	f->pending--;
	if (resp->code == ETCD_OK)
		r->ttl_s = resp->ttl >= 0 ? resp->ttl : REG_TTL_GONE;
	else if (resp->code == ETCD_NOT_FOUND)
		r->ttl_s = REG_TTL_GONE;
	else if (resp->code == ETCD_UNAVAILABLE || resp->code == ETCD_DEADLINE_EXCEEDED)
		f->broken = true;
	fetch_more(f);
}

static void fetch_more(struct ttl_fetch *f)
{
	while (!f->broken && f->next < f->n && f->pending < REG_STATUS_TTL_WINDOW) {
		struct ttl_call *call = xmalloc(sizeof(*call));
		*call = (struct ttl_call){ f, f->next++ };
		if (etcd_lease_ttl_async(f->c, f->ids[call->i], false, on_ttl, call, NULL) != 0) {
			free(call);
			continue; /* stays unknown */
		}
		f->pending++;
	}
}

struct reg_lease_ttl *reg_status_fetch_ttls(struct etcd_client *c, const int64_t *ids, size_t n)
{
	struct ttl_fetch f = { c, ids, xcalloc(n + 1, sizeof(*f.out)), n, 0, 0, false };
	for (size_t i = 0; i < n; i++)
		f.out[i] = (struct reg_lease_ttl){ ids[i], REG_TTL_UNKNOWN };
	fetch_more(&f);
	while (f.pending > 0)
		ev_run(etcd_client_loop(c), EVRUN_ONCE);
	return f.out;
}
