/* A local etcd child process (see etcd_local.h). */
#include "registry/etcd_local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/http1.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"

#define HEALTH_TIMEOUT_MS 1000
#define HEALTH_MAX_BYTES 4096

/* Waits until fd is ready for events or the deadline passes. */
static bool wait_fd(int fd, short events, int64_t deadline_us)
{
	for (;;) {
		int64_t left = deadline_us - time_mono_us();
		if (left <= 0)
			return false;
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, (int)(left / 1000) + 1);
		if (n > 0)
			return true;
		if (n == 0 || errno != EINTR)
			return false;
	}
}

static int connect_loopback(int port, int64_t deadline_us)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = 0;
	socklen_t len = sizeof(e);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline_us) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
		return fd;
	close(fd);
	return -1;
}

/* The status of the answer read from fd, or 0 when none arrived whole in time. */
static int read_status(int fd, int64_t deadline_us)
{
	char b[HEALTH_MAX_BYTES];
	size_t have = 0;
	struct http1_resp r;
	http1_resp_init(&r, NULL, NULL, 0);
	while (have < sizeof(b) && wait_fd(fd, POLLIN, deadline_us)) {
		ssize_t n = read(fd, b + have, sizeof(b) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && http1_resp_eof(&r) == HTTP1_DONE ? r.status : 0;
		have += (size_t)n;
		/* re-fed from the start each time: tiny, and the parser keeps no pointers */
		http1_resp_init(&r, NULL, NULL, 0);
		for (size_t off = 0;;) {
			struct http1_span body;
			size_t used;
			enum http1_ev ev = http1_resp_feed(&r, b + off, have - off, &used, &body);
			off += used;
			if (ev == HTTP1_DONE)
				return r.status;
			if (ev == HTTP1_AGAIN || ev == HTTP1_ERROR)
				break;
		}
	}
	return 0;
}

/* GET /health answered 200 within a second (a plain blocking probe on loopback). */
static bool healthy(const struct etcd_local *e)
{
	int64_t deadline = time_mono_us() + HEALTH_TIMEOUT_MS * USEC_PER_MS;
	int fd = connect_loopback(e->client_port, deadline);
	if (fd < 0)
		return false;
	char req[128];
	int n = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
			 e->client_port);
	int status = 0;
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n)
		status = read_status(fd, deadline);
	close(fd);
	return status == 200;
}

static int spawn(struct etcd_local *e, struct vxerr *err)
{
	char peer[64], cluster[96];
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", e->peer_port);
	snprintf(cluster, sizeof(cluster), "local=%s", peer);
	const char *argv[] = {
		e->binary, "--name", "local", "--data-dir", e->data_dir,
		"--listen-client-urls", e->url, "--advertise-client-urls", e->url,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", cluster, "--initial-cluster-state", "new",
		"--experimental-watch-progress-notify-interval", "5s", NULL,
	};
	struct proc_opts o = { .stdout_path = e->log_path, .stderr_path = e->log_path, .new_pgrp = true,
			       .die_with_parent = e->die_with_parent };
	e->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, err);
	return e->pid > 0 ? 0 : -1;
}

static int wait_healthy(struct etcd_local *e, int64_t timeout_us, struct vxerr *err)
{
	int64_t deadline = time_mono_us() + timeout_us;
	while (time_mono_us() < deadline) {
		if (healthy(e))
			return 0;
		if (!proc_alive(e->pid)) {
			e->pid = 0;
			return vxerr_set(err, "etcd exited at start; see %s", e->log_path);
		}
		time_sleep_us(20000);
	}
	etcd_local_stop(e, USEC_PER_SEC);
	return vxerr_set(err, "etcd did not answer %s/health within %lld ms; see %s", e->url,
			 (long long)(timeout_us / 1000), e->log_path);
}

int etcd_local_start(struct etcd_local *e, const char *dir, const char *binary, int client_port,
		     bool die_with_parent, int64_t timeout_us, struct vxerr *err)
{
	memset(e, 0, sizeof(*e));
	if (fs_mkdir_p(dir, err) != 0)
		return -1;
	e->data_dir = xasprintf("%s/data", dir);
	e->log_path = xasprintf("%s/etcd.log", dir);
	e->binary = xstrdup(binary ? binary : "etcd");
	e->die_with_parent = die_with_parent;
	e->client_port = client_port > 0 ? client_port : net_free_port();
	do
		e->peer_port = net_free_port();
	while (e->peer_port == e->client_port);
	if (e->client_port <= 0 || e->peer_port <= 0)
		return vxerr_set(err, "no free loopback port for etcd");
	snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", e->client_port);
	if (spawn(e, err) != 0)
		return -1;
	return wait_healthy(e, timeout_us, err);
}

int etcd_local_restart(struct etcd_local *e, int64_t timeout_us, struct vxerr *err)
{
	if (etcd_local_running(e))
		return 0;
	if (spawn(e, err) != 0)
		return -1;
	return wait_healthy(e, timeout_us, err);
}

void etcd_local_stop(struct etcd_local *e, int64_t grace_us)
{
	if (e->pid > 0)
		proc_stop(e->pid, (int)(grace_us / 1000));
	e->pid = 0;
}

void etcd_local_kill(struct etcd_local *e)
{
	if (e->pid > 0) {
		kill(-e->pid, SIGKILL);
		kill(e->pid, SIGKILL);
		proc_wait(e->pid, 5000, NULL);
	}
	e->pid = 0;
}

bool etcd_local_running(struct etcd_local *e)
{
	if (e->pid > 0 && !proc_alive(e->pid))
		e->pid = 0;
	return e->pid > 0;
}

void etcd_local_release(struct etcd_local *e)
{
	etcd_local_stop(e, 5 * USEC_PER_SEC);
	free(e->data_dir);
	free(e->log_path);
	free(e->binary);
	memset(e, 0, sizeof(*e));
}
