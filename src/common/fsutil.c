/* File helpers (see fsutil.h). */
#include "common/fsutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"

int fs_mkdir_p(const char *path, struct vxerr *err)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return vxerr_set(err, "path too long: %s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return vxerr_set(err, "cannot create %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return vxerr_set(err, "cannot create %s: %s", tmp, strerror(errno));
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, struct vxerr *err)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int r = -1;
	if (!f) {
		vxerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	bool ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		vxerr_set(err, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	r = 0;
out:
	free(tmp);
	return r;
}

char *fs_read_file(const char *path, size_t max, size_t *len, struct vxerr *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		vxerr_set(err, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	struct buf b = BUF_INIT(max);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) != 0) {
			fclose(f);
			buf_release(&b);
			vxerr_set(err, "%s is larger than %zu bytes", path, max);
			return NULL;
		}
	}
	fclose(f);
	return buf_detach(&b, len);
}
