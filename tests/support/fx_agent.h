/* Fixtures for agent tests: a `veltrix agent` process in the background with its log in a temp
 * dir, and one registry key read back through etcd's gateway (value, lease, revisions). */
#ifndef VX_TESTS_FX_AGENT_H
#define VX_TESTS_FX_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct fx_agent {
	pid_t pid;
	char *dir;
	char *log;  /* stdout and stderr */
	int status; /* after fx_agent_wait: exit code, 128+signal, or -1 */
};

/* Starts `veltrix agent ARGS...` (args NULL-terminated), in its own process group. */
void fx_agent_start(struct fx_agent *a, const char *const *args);
void fx_agent_signal(const struct fx_agent *a, int sig);
/* Waits up to timeout_ms for the agent to exit; returns (and stores) its status, -1 on timeout. */
int fx_agent_wait(struct fx_agent *a, int timeout_ms);
/* The log so far (caller frees). */
char *fx_agent_log(const struct fx_agent *a);
/* Occurrences of needle in the log. */
int fx_agent_log_count(const struct fx_agent *a, const char *needle);
/* Prints the log to stderr (for failing tests). */
void fx_agent_dump(const struct fx_agent *a);
/* Kills it if it still runs, and forgets it. */
void fx_agent_free(struct fx_agent *a);

/* One key read through the gateway. */
struct fx_key {
	bool present;
	char *value; /* NUL-terminated */
	int64_t lease;
	int64_t create_revision, mod_revision;
};
void fx_key_get(const char *etcd_url, const char *key, struct fx_key *out);
void fx_key_release(struct fx_key *k);
/* The "state" of the key's value ("up", "down", "draining"; "" when the value has none), or
 * NULL when the key is absent. Returns a static buffer. */
const char *fx_key_state(const char *etcd_url, const char *key);
/* Polls every 20 ms until the key's state equals state (NULL: until the key is absent).
 * Returns the milliseconds it took, or -1 on timeout. */
int fx_key_wait(const char *etcd_url, const char *key, const char *state, int timeout_ms);
/* Writes key=value bound to a fresh lease of ttl_s seconds through the gateway; returns the lease. */
int64_t fx_key_put_leased(const char *etcd_url, const char *key, const char *value, int ttl_s);
/* Revokes a lease through the gateway; returns the HTTP status. */
long fx_lease_revoke(const char *etcd_url, int64_t lease);
/* Seconds left on a lease (-1: gone). */
int64_t fx_lease_ttl(const char *etcd_url, int64_t lease);

#endif
