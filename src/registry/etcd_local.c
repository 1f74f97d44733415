/* A local etcd child process (see etcd_local.h). */
#include "registry/etcd_local.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/httpc.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"

#define HEALTH_TIMEOUT_MS 1000

/* GET /health answered 200 within a second. */
static bool healthy(const struct etcd_local *e)
{
	return httpc_request((uint16_t)e->client_port, "GET", "/health", HEALTH_TIMEOUT_MS * USEC_PER_MS, NULL, NULL) == 200;
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
