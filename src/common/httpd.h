/* A tiny HTTP/1.1 server on a libev loop for operational endpoints (/metrics and /healthz):
 * one request per connection, answered with Content-Length and closed.
 * Bounded: request heads up to 16 KiB, bodies ignored beyond 64 KiB, at most 64 connections,
 * 5 s to send a request. Not for traffic (the test backend has its own fast path). */
#ifndef VX_COMMON_HTTPD_H
#define VX_COMMON_HTTPD_H

#include "common/buf.h"
#include "common/err.h"

struct ev_loop;
struct httpd;

struct httpd_request {
	char method[16];
	char path[256];  /* the target up to '?' */
	char query[256]; /* after '?', or "" */
};

struct httpd_response {
	int status;               /* 200 unless the handler says otherwise */
	const char *content_type; /* "text/plain; charset=utf-8" unless set */
	struct buf body;          /* append the body here */
};

typedef void (*httpd_handler)(void *ud, const struct httpd_request *req, struct httpd_response *resp);

/* Listens on "host:port" (port 0 picks one: see httpd_port). */
struct httpd *httpd_start(struct ev_loop *loop, const char *hostport, httpd_handler handler, void *ud,
			  struct vxerr *err);
int httpd_port(const struct httpd *h);
void httpd_free(struct httpd *h);

#endif
