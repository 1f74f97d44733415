/* One lease for all the agents of a host (`--shared-lease DIR`, `agent.shared_lease`). A lease
 * per instance costs etcd one keepalive request every TTL/3 per instance: 10,000 instances at
 * the default TTL take more than a core of a 3-member cluster (docs/benchmarks.md, lease load).
 * Agents that share a lease cost one keepalive stream per host instead.
 *
 * DIR/lease names the lease ("<16 hex digits> <ttl seconds>\n", replaced atomically). The
 * keeper is the agent holding an exclusive flock on DIR/lease.lock: it grants a lease when the
 * file names none that is alive, writes the file, and keeps the lease alive. The others bind
 * their keys to the lease the file names and send no keepalives. Every second each of them
 * tries the lock and reads the file: when the keeper stops or dies the kernel releases its lock
 * and another agent keeps the lease alive within about a second (the TTL leaves the rest), and
 * when the keeper had to grant a new lease (the old one was lost) the others register again
 * under the new one. Stopping, an agent deletes its own key (only while it is bound to the
 * lease) instead of revoking the lease, which the others still use.
 *
 * A shared lease outlives any one agent, so it cannot tell that one of them died. Each agent
 * therefore holds a flock on a member file of its own (DIR/member-<hash of its key>, holding the
 * key); each second the keeper tries the member files' locks, and a lock it can take belongs to
 * an agent that is gone: its key is deleted (while bound to the lease) and its file removed. An
 * agent killed -9 leaves the registry within about a second, sooner than its own lease would. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/timeutil.h"

#define TICK_S 1.0
#define MEMBER_PREFIX "member-"

static char *share_path(const struct agent *a, const char *name)
{
	return xasprintf("%s/%s", a->share_dir, name);
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int agent_share_parse(const char *text, size_t len, int64_t *lease, int64_t *ttl_s)
{
	uint64_t id = 0;
	int64_t ttl = 0;
	size_t i = 0;
	if (len > AGENT_SHARE_FILE_MAX || len < 18)
		return -1;
	for (; i < 16; i++) {
		int d = hex_digit(text[i]);
		if (d < 0)
			return -1;
		id = id << 4 | (uint64_t)d;
	}
	if (text[i++] != ' ' || text[i] == '0') /* no leading zero: one spelling per lease file */
		return -1;
	size_t digits = 0;
	for (; i < len && text[i] >= '0' && text[i] <= '9' && digits < 6; i++, digits++)
		ttl = ttl * 10 + (text[i] - '0');
	if (i < len && text[i] == '\n')
		i++;
	if (i != len || digits == 0 || ttl < 1 || ttl > 86400 || id == 0 || id > INT64_MAX)
		return -1;
	*lease = (int64_t)id;
	*ttl_s = ttl;
	return 0;
}

int agent_share_format(int64_t lease, int64_t ttl_s, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%016llx %lld\n", (unsigned long long)lease, (long long)ttl_s);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The lease the file names; 0 when none (no file, or not in the expected form). */
static int64_t read_lease(const struct agent *a, int64_t *ttl_s)
{
	char *path = share_path(a, "lease");
	size_t len = 0;
	char *text = fs_read_file(path, AGENT_SHARE_FILE_MAX, &len, NULL);
	int64_t id = 0;
	*ttl_s = 0;
	if (!text || agent_share_parse(text, len, &id, ttl_s) != 0)
		id = 0;
	free(text);
	free(path);
	return id;
}

static void write_lease(struct agent *a)
{
	char *path = share_path(a, "lease"), text[AGENT_SHARE_FILE_MAX];
	struct vxerr err;
	int n = agent_share_format(a->lease, a->lease_ttl_s, text, sizeof(text));
	if (n < 0 || fs_write_atomic(path, text, (size_t)n, &err) != 0)
		log_error("cannot write the shared lease file", "error=%s", log_q(err.msg));
	free(path);
}

/* True when this agent holds the keeper's lock (now or already). */
static bool take_lock(struct agent *a)
{
	if (a->share_lock_fd >= 0)
		return true;
	char *path = share_path(a, "lease.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("cannot open the shared lease lock", "path=%s error=%s", log_q(path), log_q(strerror(errno)));
	} else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	free(path);
	a->share_lock_fd = fd;
	return fd >= 0;
}

static void release_lock(struct agent *a)
{
	if (a->share_lock_fd >= 0)
		close(a->share_lock_fd); /* the kernel drops the flock: another agent keeps the lease */
	a->share_lock_fd = -1;
}

/* Binds the agent to the lease the file names (registered again at the next sync). */
static void adopt(struct agent *a, int64_t id, int64_t ttl_s)
{
	char hex[17];
	a->lease = id;
	a->lease_ttl_s = ttl_s;
	a->expect = EXPECT_ABSENT;
	a->quick_retries = 0;
	log_info("using the host's shared lease", "lease=%s ttl=%llds keeper=%s", agent_lease_hex(id, hex),
		 (long long)ttl_s, a->share_lock_fd >= 0 ? "this agent" : "another agent");
}

static void on_lease_checked(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	int64_t id = a->share_checking;
	a->busy = false;
	a->share_checking = 0;
	if (r->code != ETCD_OK) {
		agent_reg_failed(a, "lease time-to-live", r);
		return;
	}
	if (r->ttl > 0) {
		adopt(a, id, r->granted_ttl > 0 ? r->granted_ttl : r->ttl);
		agent_reg_keep_alive(a);
	} else {
		agent_reg_grant(a); /* expired: the file is rewritten once the new one is granted */
		return;
	}
	agent_reg_sync(a);
}

/* ---- members ---- */

static char *member_path(const struct agent *a)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a: a file name for the key */
	for (const char *p = a->key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return xasprintf("%s/" MEMBER_PREFIX "%016llx", a->share_dir, (unsigned long long)h);
}

/* Holds this agent's member lock; false when another live agent holds the same key's. */
static bool hold_member(struct agent *a)
{
	if (a->share_member_fd >= 0)
		return true;
	char *path = member_path(a);
	int fd = -1;
	bool ok = false;
	/* A keeper may reap (unlink) a file between its creation and its lock: lock what is linked. */
	for (int attempt = 0; attempt < 3 && !ok; attempt++) {
		struct stat held, linked;
		if (fd >= 0)
			close(fd);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
			break;
		ok = fstat(fd, &held) == 0 && stat(path, &linked) == 0 && held.st_ino == linked.st_ino;
	}
	size_t len = strlen(a->key);
	if (ok && (ftruncate(fd, 0) != 0 || pwrite(fd, a->key, len, 0) != (ssize_t)len))
		log_warn("cannot write the member file", "path=%s error=%s", log_q(path), log_q(strerror(errno)));
	if (!ok) {
		log_error("another agent of this host holds the same instance", "key=%s member=%s", a->key, log_q(path));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	a->share_member_fd = fd;
	free(path);
	return ok;
}

static void drop_member(struct agent *a)
{
	if (a->share_member_fd < 0)
		return;
	char *path = member_path(a);
	unlink(path);
	free(path);
	close(a->share_member_fd);
	a->share_member_fd = -1;
}

static void on_orphan_deleted(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	a->busy = false;
	if (r->code == ETCD_OK)
		log_info(r->succeeded ? "deleted the key of an agent of this host that is gone"
				      : "the key of an agent of this host that is gone was not on the lease",
			 "key=%s", a->share_orphan_key);
	if (r->code == ETCD_OK && a->share_orphan_path)
		unlink(a->share_orphan_path);
	if (a->share_orphan_fd >= 0)
		close(a->share_orphan_fd);
	a->share_orphan_fd = -1;
	free(a->share_orphan_path);
	a->share_orphan_path = NULL;
	agent_reg_sync(a);
}

/* Deletes the key of one dead member (its lock could be taken); true when a delete went out. */
static bool reap_member(struct agent *a, const char *path, int fd)
{
	struct vxerr err;
	ssize_t n = pread(fd, a->share_orphan_key, sizeof(a->share_orphan_key) - 1, 0);
	if (n <= 0) { /* an agent that died before writing its key: nothing registered */
		unlink(path);
		return false;
	}
	a->share_orphan_key[n] = '\0';
	struct etcd_compare cmp = { .key = a->share_orphan_key, .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL,
				    .number = a->lease };
	struct etcd_txn_op del = { .type = ETCD_OP_DELETE, .del = { .key = a->share_orphan_key } };
	struct etcd_txn_req req = { &cmp, 1, &del, 1, NULL, 0 };
	if (etcd_txn_async(a->etcd, &req, on_orphan_deleted, a, &err) != 0)
		return false;
	a->busy = true;
	a->share_orphan_fd = fd;
	a->share_orphan_path = xstrdup(path);
	return true;
}

/* The keeper's look at the member files: the first dead one's key goes (one call at a time). */
static void sweep_members(struct agent *a)
{
	DIR *d = a->busy || !a->lease ? NULL : opendir(a->share_dir);
	struct dirent *e;
	char *own = d ? member_path(a) : NULL;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, MEMBER_PREFIX, strlen(MEMBER_PREFIX)) != 0)
			continue;
		char *path = xasprintf("%s/%s", a->share_dir, e->d_name);
		int fd = strcmp(path, own) == 0 ? -1 : open(path, O_RDWR | O_CLOEXEC);
		bool reaping = false;
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			reaping = reap_member(a, path, fd);
		if (fd >= 0 && !reaping)
			close(fd);
		free(path);
		if (reaping)
			break;
	}
	free(own);
	if (d)
		closedir(d);
}

/* ---- joining and leaving ---- */

void agent_share_join(struct agent *a)
{
	struct vxerr err;
	int64_t ttl_s, id = read_lease(a, &ttl_s);
	bool usable = id != 0 && !agent_reg_is_old_lease(a, id);
	if (!hold_member(a))
		return; /* tried again at the next tick */
	if (!take_lock(a)) {
		if (usable)
			adopt(a, id, ttl_s); /* the keeper keeps it alive */
		return;                  /* else the keeper is granting one: the next tick sees it */
	}
	if (!usable) {
		agent_reg_grant(a);
		return;
	}
	/* Keeper now: the lease the file names may have expired while nobody kept it. */
	if (etcd_lease_ttl_async(a->etcd, id, false, on_lease_checked, a, &err) != 0) {
		log_error("cannot look at the shared lease", "error=%s", log_q(err.msg));
		return;
	}
	a->busy = true;
	a->call_gen = a->gen;
	a->share_checking = id;
}

void agent_share_granted(struct agent *a)
{
	write_lease(a);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct agent *a = w->data;
	if (a->phase == AGENT_STOPPING || a->phase == AGENT_DONE)
		return;
	if (a->share_lock_fd >= 0) {
		sweep_members(a);
		return;
	}
	if (take_lock(a)) {
		char hex[17];
		log_info("keeping the host's shared lease alive from now on", "lease=%s", agent_lease_hex(a->lease, hex));
		if (a->lease)
			agent_reg_keep_alive(a);
		agent_reg_sync(a);
		return;
	}
	int64_t ttl_s, id = read_lease(a, &ttl_s);
	if (id != 0 && id != a->lease && !agent_reg_is_old_lease(a, id) && a->lease && !a->busy)
		agent_reg_lease_dropped(a, "the keeper replaced the host's shared lease"); /* joins the new one */
	else
		agent_reg_sync(a);
}

int agent_share_init(struct agent *a, const char *dir, struct vxerr *err)
{
	a->share_lock_fd = a->share_member_fd = a->share_orphan_fd = -1;
	if (!dir)
		return 0;
	if (fs_mkdir_p(dir, err) != 0)
		return -1;
	a->share_dir = xstrdup(dir);
	ev_timer_init(&a->share_tick, on_tick, TICK_S, TICK_S);
	a->share_tick.data = a;
	ev_timer_start(a->loop, &a->share_tick);
	return 0;
}

static void on_key_deleted(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	a->busy = false;
	if (r->code != ETCD_OK) {
		agent_reg_failed(a, "delete the instance key", r);
		return;
	}
	log_info(r->succeeded ? "instance key deleted (the shared lease stays for the other agents)"
			      : "instance key already gone or not ours",
		 "key=%s", a->key);
	a->lease = 0;
	agent_reg_drop_keepalive(a);
	free(a->written);
	a->written = NULL;
	drop_member(a);
	release_lock(a);
	agent_stopped(a);
}

void agent_share_leave(struct agent *a)
{
	struct vxerr err;
	struct etcd_compare cmp = { .key = a->key, .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL,
				    .number = a->lease };
	struct etcd_txn_op del = { .type = ETCD_OP_DELETE, .del = { .key = a->key } };
	struct etcd_txn_req req = { &cmp, 1, &del, 1, NULL, 0 };
	if (etcd_txn_async(a->etcd, &req, on_key_deleted, a, &err) != 0) {
		log_error("cannot delete the instance key", "error=%s", log_q(err.msg));
		agent_reg_give_up(a);
		return;
	}
	a->busy = true;
	a->call_gen = a->gen;
}

void agent_share_release(struct agent *a)
{
	if (a->loop && a->share_dir)
		ev_timer_stop(a->loop, &a->share_tick);
	release_lock(a);
	if (a->share_member_fd >= 0)
		close(a->share_member_fd); /* the file stays: a keeper reaps what this agent left */
	if (a->share_orphan_fd >= 0)
		close(a->share_orphan_fd);
	free(a->share_orphan_path);
	free(a->share_dir);
	a->share_dir = NULL;
}
