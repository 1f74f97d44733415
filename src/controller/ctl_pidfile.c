/* <state_dir>/controller.pid, write-locked (fcntl) while a controller runs. The lock, not the
 * file's content, says who runs: a controller killed with SIGKILL leaves the file but not the
 * lock, so `--force-sync` never signals a stale pid (which could belong to any process by now),
 * and a second controller on the same state directory (two writers fighting over one HAProxy)
 * refuses to start. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "controller/ctl_int.h"

static char *pid_path(const struct vx_config *cfg)
{
	return xasprintf("%s/controller.pid", cfg->haproxy.state_dir);
}

static pid_t lock_holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid;
}

int ctl_pidfile_acquire(const struct vx_config *cfg, struct vxerr *err)
{
	char *path = pid_path(cfg);
	int fd = -1;
	if (fs_mkdir_p(cfg->haproxy.state_dir, err) != 0)
		goto out;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		vxerr_set(err, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		vxerr_set(err, "another controller (pid %d) runs with haproxy.state_dir %s", (int)lock_holder(fd),
			  cfg->haproxy.state_dir);
		close(fd);
		fd = -1;
		goto out;
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, line, (size_t)n) != n) {
		vxerr_set(err, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	free(path);
	return fd;
}

void ctl_pidfile_release(const struct vx_config *cfg, int fd)
{
	if (fd < 0)
		return;
	char *path = pid_path(cfg);
	unlink(path); /* while still holding the lock: never another controller's file */
	close(fd);
	free(path);
}

pid_t ctl_pidfile_holder(const struct vx_config *cfg)
{
	char *path = pid_path(cfg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	pid_t pid = fd >= 0 ? lock_holder(fd) : 0;
	if (fd >= 0)
		close(fd);
	free(path);
	return pid;
}
