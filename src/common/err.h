/* An error message that travels to the caller.
 *
 * Library functions that can fail take a `struct vxerr *` (which may be NULL), fill it with a
 * lowercase message without a full stop that names the file, key or peer involved, and return
 * -1. Only `main` and daemon top levels print it. */
#ifndef VX_COMMON_ERR_H
#define VX_COMMON_ERR_H

#define VXERR_MAX 512

struct vxerr {
	char msg[VXERR_MAX];
};

/* Sets the message; always returns -1 so that `return vxerr_set(err, ...)` reads naturally. */
int vxerr_set(struct vxerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends context ("loading x.yaml: ") to a message already set; returns -1. */
int vxerr_prefix(struct vxerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
