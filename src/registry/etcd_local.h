/* A local single-member etcd on loopback, for `veltrix up` (the embedded default when no
 * endpoints are configured) and the scenario runner: started as a child process with its data
 * under a directory of ours, on free ports, and stopped by us. Nothing relies on systemd. */
#ifndef VX_REGISTRY_ETCD_LOCAL_H
#define VX_REGISTRY_ETCD_LOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct etcd_local {
	pid_t pid;           /* 0 when not running */
	char *data_dir;      /* <dir>/data */
	char *log_path;      /* <dir>/etcd.log */
	char *binary;        /* "etcd" unless set */
	int client_port, peer_port;
	char url[64];        /* http://127.0.0.1:<client_port> */
	bool die_with_parent;
};

/* Starts etcd with its data and log under dir (created if needed); client_port 0 picks a free
 * port. Waits up to timeout_us for /health. binary NULL: "etcd" from PATH. */
int etcd_local_start(struct etcd_local *e, const char *dir, const char *binary, int client_port,
		     bool die_with_parent, int64_t timeout_us, struct vxerr *err);
/* Starts it again on the same data and ports (after etcd_local_stop or _kill). */
int etcd_local_restart(struct etcd_local *e, int64_t timeout_us, struct vxerr *err);
/* SIGTERM, then SIGKILL after grace_us; the data stays. */
void etcd_local_stop(struct etcd_local *e, int64_t grace_us);
void etcd_local_kill(struct etcd_local *e);
bool etcd_local_running(struct etcd_local *e);
/* Stops it if running and frees the strings. */
void etcd_local_release(struct etcd_local *e);

#endif
