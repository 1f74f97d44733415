/* Helpers for tests of the etcd client: making clients, running their loop until a condition
 * holds (bounded), and a watch callback set that records everything it is told. */
#ifndef VX_TESTS_FX_ETCD_CLIENT_H
#define VX_TESTS_FX_ETCD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/etcd.h"

/* A client on "url1,url2" with short test timeouts; base (may be NULL) supplies the other
 * options. loop NULL: a private loop. Fails the test on error. */
struct etcd_client *fxc_client_on(struct ev_loop *loop, const char *endpoints, const struct etcd_opts *base);
struct etcd_client *fxc_client(const char *endpoints, const struct etcd_opts *base);

/* Runs the client's loop until cond(arg) or timeout_ms; returns cond's last value. */
bool fxc_run_until(struct etcd_client *c, bool (*cond)(void *arg), void *arg, int timeout_ms);
/* Runs the loop for ms milliseconds. */
void fxc_run_for(struct etcd_client *c, int ms);

/* What a watch reported. Events are flattened in delivery order. */
struct fxc_event {
	int type; /* enum etcd_event_type */
	char *key;
	char *value;
	int64_t mod_revision;
	bool has_prev;
	char *prev_value;
};
struct fxc_watch {
	struct fxc_event *ev;
	size_t n;
	size_t cap;
	size_t batches;
	size_t progress; /* batches without events */
	int64_t last_batch_revision;
	bool resynced;
	int resync_reason;
	char resync_detail[512];
	int downs;
	int ups;
	char last_down[512];
	bool free_on_resync; /* frees the watch from inside its resync callback */
	struct etcd_watch *w;
};
void fxc_watch_cbs(struct fxc_watch *fw, struct etcd_watch_cbs *cbs);
void fxc_watch_release(struct fxc_watch *fw);
/* Condition helpers for fxc_run_until (arg: struct fxc_watch_wait). */
struct fxc_watch_wait {
	struct fxc_watch *fw;
	size_t n;
};
bool fxc_has_events(void *arg);
/* Runs c's loop until fw's watch is confirmed by etcd (fails the test after 10 s): a watch
 * "from now" misses what is written before that. */
void fxc_watch_ready(struct etcd_client *c, struct fxc_watch *fw);
bool fxc_has_resync(void *arg);
bool fxc_has_downs(void *arg); /* fw->downs >= n */

#endif
