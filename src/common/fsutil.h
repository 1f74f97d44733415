/* Files and directories: create a path, replace a file atomically, read a bounded file. */
#ifndef VX_COMMON_FSUTIL_H
#define VX_COMMON_FSUTIL_H

#include <stddef.h>

#include "common/err.h"

/* mkdir -p with mode 0700 for what it creates. */
int fs_mkdir_p(const char *path, struct vxerr *err);
/* Writes len bytes to path through path.tmp and a rename: readers never see half a file. */
int fs_write_atomic(const char *path, const void *data, size_t len, struct vxerr *err);
/* Reads the whole file (at most max bytes, else an error) into a NUL-terminated heap string. */
char *fs_read_file(const char *path, size_t max, size_t *len, struct vxerr *err);

#endif
