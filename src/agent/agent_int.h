/* Shared by the agent's files only: the agent's state, and the registration half
 * (agent_reg.c) that agent.c drives. */
#ifndef VX_AGENT_AGENT_INT_H
#define VX_AGENT_AGENT_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/agent.h"
#include "registry/reg.h"

/* running: checks decide up/down; draining: `draining` is written, waiting for the drain to be
 * done; stopping: revoke the lease, then stop the supervised service; done: leave the loop. */
enum agent_phase { AGENT_RUNNING, AGENT_DRAINING, AGENT_STOPPING, AGENT_DONE };

/* What the next registration txn compares: the key absent (a fresh registration), bound to our
 * lease (an update), or at a mod revision we saw bound to a previous lease of ours (a lease
 * etcd revived after a restart: taking it back cannot steal from anyone). */
enum agent_expect { EXPECT_ABSENT, EXPECT_OURS, EXPECT_MOD };

#define AGENT_OLD_LEASES 4

struct agent {
	struct ev_loop *loop;
	/* ---- options (owned copies) ---- */
	char service[REG_SERVICE_MAX + 1];
	char instance[REG_INSTANCE_MAX + 1];
	bool instance_given;
	bool address_given, address_final;
	uint16_t port;
	int32_t capacity;
	struct check_spec check;
	char *check_path, *check_command;
	int64_t ttl_s;
	int64_t drain_timeout_us;
	int64_t load_report_interval_us;
	char prefix[REG_PREFIX_MAX + 1];
	char key[REG_KEY_MAX];
	char **command; /* NULL-terminated copy, or NULL */
	/* ---- health ---- */
	struct checker *checker;
	enum check_state health;
	bool risen;            /* the first rise happened: from now on the instance is registered */
	bool last_pass, any_result;
	double lat_sum_ms;     /* passing http checks since the last load report */
	int lat_n;
	bool has_latency;
	double latency_ms;     /* the figure being reported */
	ev_timer load_timer;
	/* ---- registration (agent_reg.c) ---- */
	struct etcd_client *etcd;
	int64_t lease, lease_ttl_s;
	struct etcd_keepalive *ka;
	int64_t old_leases[AGENT_OLD_LEASES];
	unsigned gen, call_gen; /* a call answered for an older generation (lease) is stale */
	bool busy;              /* one etcd call at a time */
	char *written;          /* the value etcd holds as far as we know; NULL: none of ours */
	char *inflight;         /* the value of the txn in flight */
	enum agent_expect expect;
	int64_t expect_mod;
	int quick_retries;
	ev_timer retry;
	int64_t backoff_us;
	int64_t conflict_lease, conflict_rev; /* the holder last reported */
	char last_error[VXERR_MAX];           /* last etcd error logged (repeats are not) */
	bool ka_troubled;
	bool revoke_given_up;
	/* ---- the host's shared lease (agent_share.c) ---- */
	char *share_dir;       /* NULL: a lease of its own */
	int share_lock_fd;     /* >= 0: this agent is the keeper */
	int64_t share_checking; /* the lease being looked at before the keeper adopts it */
	int share_member_fd;    /* this agent's member lock */
	int share_orphan_fd;    /* the keeper: a dead member's lock, held while its key is deleted */
	char *share_orphan_path;
	char share_orphan_key[REG_KEY_MAX];
	ev_timer share_tick;
	/* ---- lifecycle ---- */
	enum agent_phase phase;
	int signals;
	bool stop_done;
	ev_signal sig[5];
	ev_timer drain_timer, stop_timer, grace_timer;
	pid_t child;
	ev_child child_w;
	bool child_exited;
	int child_status;
	int exit_code;
};

/* ---- agent_reg.c ---- */
int agent_reg_init(struct agent *a, const struct agent_opts *o, struct vxerr *err);
void agent_reg_release(struct agent *a);
/* Takes the next registration step when none is in flight: grant a lease, write the value
 * when it differs from what etcd holds, or (stopping) revoke the lease and then call
 * agent_stopped. Safe to call at any time. */
void agent_reg_sync(struct agent *a);
/* The value the key should hold now (caller frees), or NULL with err set. */
char *agent_value(const struct agent *a, struct vxerr *err);
/* Hex as etcdctl prints lease IDs. */
const char *agent_lease_hex(int64_t id, char out[17]);
/* The stop deadline passed: give up revoking (the lease expires by itself). */
void agent_reg_give_up(struct agent *a);
/* Pieces agent_share.c builds on. */
void agent_reg_grant(struct agent *a);
void agent_reg_keep_alive(struct agent *a); /* on a->lease, a->lease_ttl_s */
void agent_reg_drop_keepalive(struct agent *a);
void agent_reg_lease_dropped(struct agent *a, const char *reason);
bool agent_reg_is_old_lease(const struct agent *a, int64_t id);
void agent_reg_failed(struct agent *a, const char *call, const struct etcd_resp *r);

/* ---- agent_share.c ---- */
/* dir NULL: no shared lease. */
int agent_share_init(struct agent *a, const char *dir, struct vxerr *err);
void agent_share_release(struct agent *a);
/* Instead of a grant: become the keeper (grant, or adopt a live lease the file names) or bind
 * to the keeper's lease. */
void agent_share_join(struct agent *a);
void agent_share_granted(struct agent *a); /* the keeper writes the file */
/* Instead of the revoke: delete the key while it is bound to the lease, then agent_stopped. */
void agent_share_leave(struct agent *a);

/* ---- agent.c ---- */
/* The lease is revoked (or given up): stop the supervised service, or leave the loop. */
void agent_stopped(struct agent *a);

#endif
