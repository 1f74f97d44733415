/* A small HTTP/1.1 client for operational calls on loopback (a health probe, a test backend's
 * statistics and controls): one request per connection, `Connection: close`, bounded answer,
 * deadline. Nonblocking requests can be driven together with poll(2); httpc_request() is the
 * blocking form. Not for traffic (the load generator has its own client). */
#ifndef VX_COMMON_HTTPC_H
#define VX_COMMON_HTTPC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http1.h"

#define HTTPC_BODY_MAX (64 * 1024)

struct httpc {
	int fd;
	int64_t deadline_us;
	struct buf out;
	size_t sent;
	struct buf in;
	struct buf body; /* the answer's body, once done */
	int status;      /* the answer's status, once done */
	bool connected;
};

/* Starts `METHOD target` to 127.0.0.1:port (nonblocking); the deadline covers everything.
 * On failure err says why and *c needs no release. */
int httpc_start(struct httpc *c, uint16_t port, const char *method, const char *target, int64_t timeout_us,
		struct vxerr *err);
/* What to poll for: POLLOUT while connecting and sending, POLLIN while reading. */
short httpc_events(const struct httpc *c);
int httpc_fd(const struct httpc *c);
/* Advances after poll said the fd is ready (or to check the deadline): 1 done (status and
 * body set), 0 not yet, -1 failed or past the deadline (err says why). */
int httpc_step(struct httpc *c, struct vxerr *err);
void httpc_release(struct httpc *c);

/* The whole exchange, blocking: the status (>0), or -1 with err. body (may be NULL) receives
 * the answer's body; caller releases it. */
int httpc_request(uint16_t port, const char *method, const char *target, int64_t timeout_us, struct buf *body,
		  struct vxerr *err);

#endif
