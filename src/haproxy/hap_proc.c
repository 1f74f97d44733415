/* HAProxy as a supervised process: `haproxy -c`, start in master-worker mode, reload through
 * the master socket with confirmation, stop; and the identity (pid, uptime) of whoever answers
 * a runtime socket, which reveals restarts and reloads.
 *
 * Why a reload is confirmed through `show proc`: in 2.6 the master answers `reload` with
 * nothing at all and re-executes itself; a bad config leaves the old worker serving and only
 * bumps "[failed: N]" (FACTS 3.6). A reload counts as done when a new current worker is listed
 * AND answers on the runtime socket, so the caller's next command reaches the new process. */
#include "haproxy/hap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/proc.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "haproxy/hap_int.h"

#define DEFAULT_TIMEOUT_US (10 * INT64_C(1000000))
#define PROBE_TIMEOUT_US (300 * INT64_C(1000))
#define POLL_US (20 * INT64_C(1000))
#define LOG_READ_MAX (256u << 10)
#define PROC_REPLY_MAX (64u << 10)
#define STATE_REPLY_MAX (64u << 20)
#define SOCKET_PATH_MAX 256 /* more than a unix socket address holds */

/* ---- HAProxy's own diagnostics ---- */

/* Reads up to LOG_READ_MAX bytes of path from offset (the tail when the file is longer). */
static void read_from(const char *path, off_t offset, struct buf *out)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size - offset > (off_t)LOG_READ_MAX)
		offset = st.st_size - (off_t)LOG_READ_MAX;
	char chunk[8192];
	ssize_t r;
	while ((r = pread(fd, chunk, sizeof(chunk), offset)) > 0 && buf_append(out, chunk, (size_t)r) == 0)
		offset += r;
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 ? st.st_size : 0;
}

/* "[ALERT]    (123) : config : parsing [x.cfg:9] : unknown keyword ..." -> the part after the
 * pid, joined with " | ", as much as fits in out[cap]. */
static void collect_alerts(const char *text, size_t len, char *out, size_t cap)
{
	size_t pos = 0, n, k = 0;
	const char *line;
	out[0] = '\0';
	while (hap_next_line(text, len, &pos, &line, &n)) {
		if (n < 7 || memcmp(line, "[ALERT]", 7) != 0)
			continue;
		const char *body = memmem(line, n, ") : ", 4);
		size_t skip = body ? (size_t)(body + 4 - line) : 7;
		int w = snprintf(out + k, cap - k, "%s%.*s", k ? " | " : "", (int)(n - skip), line + skip);
		if (w < 0 || (size_t)w >= cap - k)
			return;
		k += (size_t)w;
	}
}

static char *temp_path(const char *tag)
{
	const char *dir = getenv("TMPDIR");
	char *p = xasprintf("%s/vx-%s-XXXXXX", dir && *dir ? dir : "/tmp", tag);
	int fd = mkstemp(p);
	if (fd < 0) {
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

pid_t hap_config_check_spawn(const char *binary, const char *cfg_path, const char *out_path, struct vxerr *err)
{
	const char *argv[] = { binary ? binary : "haproxy", "-c", "-f", cfg_path, NULL };
	struct proc_opts o = { .stdout_path = out_path, .stderr_path = out_path, .new_pgrp = true };
	return proc_spawn((char *const *)(uintptr_t)argv, &o, err);
}

int hap_config_check_verdict(int status, const char *cfg_path, const char *out_path, struct buf *output,
			     struct vxerr *err)
{
	struct buf text = BUF_INIT(LOG_READ_MAX);
	int rc = -1;
	read_from(out_path, 0, &text);
	if (output)
		buf_append(output, text.data ? text.data : "", text.len);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
	} else {
		char alerts[VXERR_MAX - 64];
		collect_alerts(text.data ? text.data : "", text.len, alerts, sizeof(alerts));
		vxerr_set(err, "haproxy rejects %s: %s", cfg_path,
			  alerts[0] ? alerts : "(no [ALERT] line; see its output)");
	}
	buf_release(&text);
	return rc;
}

int hap_config_check(const char *binary, const char *cfg_path, int64_t timeout_us, struct buf *output,
		     struct vxerr *err)
{
	char *out_path = temp_path("hapcheck");
	if (!out_path)
		return vxerr_set(err, "haproxy -c: cannot create a temporary file: %s", strerror(errno));
	int status = 0, rc = -1;
	int64_t wait_us = timeout_us > 0 ? timeout_us : DEFAULT_TIMEOUT_US;
	pid_t pid = hap_config_check_spawn(binary, cfg_path, out_path, err);
	if (pid < 0)
		goto out;
	if (proc_wait(pid, (int)(wait_us / 1000), &status) != 0) {
		proc_stop(pid, 100);
		vxerr_set(err, "haproxy -c -f %s: no result within %lld ms", cfg_path, (long long)(wait_us / 1000));
		goto out;
	}
	rc = hap_config_check_verdict(status, cfg_path, out_path, output, err);
out:
	unlink(out_path);
	free(out_path);
	return rc;
}

/* ---- identity ---- */

int hap_rt_ident(struct hap_rt *rt, struct hap_ident *out, struct vxerr *err)
{
	struct hap_cmd cmd;
	struct hap_reply reply;
	struct hap_info info;
	hap_cmd_show_info(&cmd);
	if (hap_rt_exec(rt, &cmd, &reply, err) != 0)
		return -1;
	int rc = hap_parse_info(reply.text, reply.len, &info, err);
	hap_replies_release(&reply, 1);
	if (rc != 0)
		return -1;
	out->pid = info.pid;
	out->uptime_sec = info.uptime_sec;
	return 0;
}

bool hap_ident_changed(const struct hap_ident *before, const struct hap_ident *now)
{
	return before->pid != now->pid || now->uptime_sec < before->uptime_sec;
}

/* The pid answering on the runtime socket (one short attempt). */
static int probe_runtime(const char *path, int64_t *pid)
{
	struct hap_rt_opts ro = { .timeout_us = PROBE_TIMEOUT_US };
	struct hap_rt *rt = hap_rt_open(path, &ro, NULL);
	struct hap_ident id;
	int rc = rt && hap_rt_ident(rt, &id, NULL) == 0 ? 0 : -1;
	hap_rt_close(rt);
	if (rc == 0)
		*pid = id.pid;
	return rc;
}

/* ---- the process ---- */

int hap_proc_show(const char *master_socket, int64_t timeout_us, struct hap_proc_list *out, struct vxerr *err)
{
	struct buf text = BUF_INIT(PROC_REPLY_MAX);
	int rc = -1;
	if (hap_master_cmd(master_socket, "show proc", timeout_us, &text, err) == 0)
		rc = hap_parse_proc(text.data ? text.data : "", text.len, out, err);
	buf_release(&text);
	return rc;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int copy_opts(struct hap_proc *p, const struct hap_proc_opts *o, struct vxerr *err)
{
	if (!o->master_socket || !o->runtime_socket)
		return vxerr_set(err, "haproxy: master and runtime socket paths are required");
	memset(p, 0, sizeof(*p));
	p->opts = *o;
	p->opts.binary = dup_or_null(o->binary ? o->binary : "haproxy");
	p->opts.cfg_path = dup_or_null(o->cfg_path);
	p->opts.master_socket = dup_or_null(o->master_socket);
	p->opts.runtime_socket = dup_or_null(o->runtime_socket);
	p->opts.log_path = dup_or_null(o->log_path);
	p->opts.state_file = dup_or_null(o->state_file);
	if (p->opts.timeout_us <= 0)
		p->opts.timeout_us = DEFAULT_TIMEOUT_US;
	return 0;
}

void hap_proc_release(struct hap_proc *p)
{
	free((char *)(uintptr_t)p->opts.binary);
	free((char *)(uintptr_t)p->opts.cfg_path);
	free((char *)(uintptr_t)p->opts.master_socket);
	free((char *)(uintptr_t)p->opts.runtime_socket);
	free((char *)(uintptr_t)p->opts.log_path);
	free((char *)(uintptr_t)p->opts.state_file);
	memset(p, 0, sizeof(*p));
}

static int start_failed(struct hap_proc *p, const char *why, off_t log_from, struct vxerr *err)
{
	struct buf text = BUF_INIT(LOG_READ_MAX);
	char alerts[VXERR_MAX - 96];
	read_from(p->opts.log_path, log_from, &text);
	collect_alerts(text.data ? text.data : "", text.len, alerts, sizeof(alerts));
	buf_release(&text);
	return vxerr_set(err, "haproxy %s: %s", why, alerts[0] ? alerts : "(no [ALERT] line in its log)");
}

static pid_t spawn_master(const struct hap_proc_opts *o, struct vxerr *err)
{
	char *master = xasprintf("%s,mode,600", o->master_socket);
	const char *argv[] = { o->binary, "-W", "-S", master, "-f", o->cfg_path, NULL };
	struct proc_opts po = {
		.stdout_path = o->log_path ? o->log_path : "/dev/null",
		.stderr_path = o->log_path ? o->log_path : "/dev/null",
		.new_pgrp = true, /* a terminal's Ctrl-C reaches the controller, which stops HAProxy */
		.die_with_parent = o->die_with_parent,
	};
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &po, err);
	free(master);
	return pid;
}

/* Ready when the runtime socket answers AND the answer comes from our master's current
 * worker: a stale HAProxy still holding the socket paths must not pass for the new one. */
static bool answering_ours(struct hap_proc *p)
{
	struct hap_proc_list l;
	int64_t pid = 0;
	if (probe_runtime(p->opts.runtime_socket, &pid) != 0 ||
	    hap_proc_show(p->opts.master_socket, PROBE_TIMEOUT_US, &l, NULL) != 0)
		return false;
	if (l.master_pid != p->master_pid || hap_proc_current_worker(&l) != pid)
		return false;
	p->worker_pid = pid;
	return true;
}

int hap_proc_start(struct hap_proc *p, const struct hap_proc_opts *opts, struct vxerr *err)
{
	if (!opts->cfg_path)
		return vxerr_set(err, "haproxy: a config path is required");
	if (copy_opts(p, opts, err) != 0)
		return -1;
	off_t log_from = file_size(p->opts.log_path);
	p->master_pid = spawn_master(&p->opts, err);
	if (p->master_pid < 0)
		goto fail;
	p->child = true;
	int64_t deadline = time_mono_us() + p->opts.timeout_us;
	while (!answering_ours(p)) {
		if (!proc_alive(p->master_pid)) {
			p->master_pid = 0;
			start_failed(p, "exited while starting", log_from, err);
			goto fail;
		}
		if (time_mono_us() >= deadline) {
			start_failed(p, "did not answer on its runtime socket in time", log_from, err);
			hap_proc_stop(p, 0);
			goto fail;
		}
		time_sleep_us(POLL_US);
	}
	return 0;
fail:
	hap_proc_release(p);
	return -1;
}

/* The runtime socket the worker serves, asked through the master (`@!<pid>` routes a command
 * to that process): the path it was started with, which the configuration may no longer name. */
static int served_runtime_socket(const struct hap_proc *p, char *path, size_t cap, struct vxerr *err)
{
	char cmd[64];
	struct buf text = BUF_INIT(PROC_REPLY_MAX);
	snprintf(cmd, sizeof(cmd), "@!%lld show cli sockets", (long long)p->worker_pid);
	int rc = hap_master_cmd(p->opts.master_socket, cmd, p->opts.timeout_us, &text, err);
	if (rc == 0)
		rc = hap_parse_cli_sockets(text.data ? text.data : "", text.len, path, cap, err);
	buf_release(&text);
	return rc;
}

static void set_runtime_socket(struct hap_proc *p, const char *path)
{
	free((char *)(uintptr_t)p->opts.runtime_socket);
	p->opts.runtime_socket = xstrdup(path);
}

int hap_proc_adopt(struct hap_proc *p, const struct hap_proc_opts *opts, struct vxerr *err)
{
	if (copy_opts(p, opts, err) != 0)
		return -1;
	struct hap_proc_list l;
	if (hap_proc_show(p->opts.master_socket, p->opts.timeout_us, &l, err) != 0) {
		hap_proc_release(p);
		return -1;
	}
	p->master_pid = (pid_t)l.master_pid;
	p->worker_pid = hap_proc_current_worker(&l);
	char served[SOCKET_PATH_MAX];
	if (p->worker_pid > 0 && served_runtime_socket(p, served, sizeof(served), NULL) == 0)
		set_runtime_socket(p, served);
	return 0;
}

/* Saves `show servers state` atomically. On failure the old file goes, so a stale state can
 * never override the freshly rendered weights; the rendered config still carries them. */
static void save_state(const struct hap_proc *p)
{
	const char *path = p->opts.state_file;
	char *tmp = xasprintf("%s.tmp", path);
	struct hap_rt *rt = hap_rt_open(p->opts.runtime_socket, &(struct hap_rt_opts){ .max_reply = STATE_REPLY_MAX },
					NULL);
	struct hap_cmd cmd;
	struct hap_reply reply = { NULL, 0 };
	bool ok = rt && hap_cmd_show_servers_state(&cmd, NULL, NULL) == 0 && hap_rt_exec(rt, &cmd, &reply, NULL) == 0 &&
		  hap_reply_classify(cmd.kind, reply.text, reply.len) == HAP_OK;
	FILE *f = ok ? fopen(tmp, "w") : NULL;
	ok = f && fwrite(reply.text, 1, reply.len, f) == reply.len;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		unlink(path);
	}
	hap_replies_release(&reply, 1);
	hap_rt_close(rt);
	free(tmp);
}

/* 1 confirmed, 0 not yet, -1 failed (err set). */
static int reload_outcome(struct hap_proc *p, const struct hap_proc_list *before, int64_t old_worker,
			  off_t log_from, struct vxerr *err)
{
	struct hap_proc_list now;
	if (hap_proc_show(p->opts.master_socket, PROBE_TIMEOUT_US, &now, NULL) != 0 ||
	    now.master_reloads <= before->master_reloads)
		return 0; /* refused while the master re-executes, or not re-executed yet */
	if (now.failed > before->failed) {
		start_failed(p, "reload failed, the previous worker keeps serving", log_from, err);
		return -1;
	}
	int64_t cur = hap_proc_current_worker(&now), answering = 0;
	if (cur == 0 || cur == old_worker)
		return 0;
	if (probe_runtime(p->opts.runtime_socket, &answering) != 0 || answering != cur)
		return 0;
	p->master_pid = (pid_t)now.master_pid;
	p->worker_pid = cur;
	return 1;
}

/* Sends `reload` and waits for its outcome, measured against `before` (`show proc` just
 * before the state was saved). */
static int reload_confirmed(struct hap_proc *p, const struct hap_proc_list *before, struct vxerr *err)
{
	struct buf reply = BUF_INIT(PROC_REPLY_MAX);
	int64_t old_worker = hap_proc_current_worker(before);
	off_t log_from = file_size(p->opts.log_path);
	int rc = -1;
	if (hap_master_cmd(p->opts.master_socket, "reload", p->opts.timeout_us, &reply, err) != 0)
		goto out;
	int64_t deadline = time_mono_us() + p->opts.timeout_us;
	while ((rc = reload_outcome(p, before, old_worker, log_from, err)) == 0) {
		if (time_mono_us() >= deadline) {
			vxerr_set(err, "haproxy reload: no new worker within %lld ms",
				  (long long)(p->opts.timeout_us / 1000));
			rc = -1;
			break;
		}
		time_sleep_us(POLL_US);
	}
	rc = rc == 1 ? 0 : -1;
out:
	buf_release(&reply);
	return rc;
}

int hap_proc_reload_to(struct hap_proc *p, const char *runtime_socket, struct vxerr *err)
{
	struct hap_proc_list before;
	if (hap_proc_show(p->opts.master_socket, p->opts.timeout_us, &before, err) != 0)
		return -1;
	if (p->opts.state_file)
		save_state(p); /* through the socket served now */
	if (!runtime_socket || strcmp(runtime_socket, p->opts.runtime_socket) == 0)
		return reload_confirmed(p, &before, err);
	/* The new worker answers where the new configuration says, the old one where it started. */
	char *served = xstrdup(p->opts.runtime_socket);
	set_runtime_socket(p, runtime_socket);
	int rc = reload_confirmed(p, &before, err);
	if (rc != 0)
		set_runtime_socket(p, served);
	free(served);
	return rc;
}

int hap_proc_reload(struct hap_proc *p, struct vxerr *err)
{
	return hap_proc_reload_to(p, NULL, err);
}

bool hap_proc_running(struct hap_proc *p)
{
	if (p->master_pid <= 0)
		return false;
	return p->child ? proc_alive(p->master_pid) : kill(p->master_pid, 0) == 0;
}

void hap_proc_stop(struct hap_proc *p, int64_t grace_us)
{
	if (p->master_pid <= 0)
		return;
	if (p->child) {
		proc_stop(p->master_pid, (int)(grace_us / 1000));
	} else {
		/* Not our child: no wait status, so watch the pid disappear. */
		kill(p->master_pid, SIGTERM);
		int64_t deadline = time_mono_us() + grace_us;
		while (kill(p->master_pid, 0) == 0 && time_mono_us() < deadline)
			time_sleep_us(POLL_US);
		if (kill(p->master_pid, 0) == 0)
			kill(p->master_pid, SIGKILL);
	}
	p->master_pid = 0;
	p->worker_pid = 0;
}
