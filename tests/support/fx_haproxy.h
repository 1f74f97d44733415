/* Test fixtures for HAProxy: a real HAProxy in master-worker mode with runtime and master
 * sockets in a temp dir, and a static origin (a second HAProxy answering "ok\n" through
 * `http-request return`, FACTS 3.1) for traffic tests. Both are started directly with
 * common/proc.h, independently of src/haproxy (the code under test), tracked with fx_track and
 * stopped at exit. Setup errors abort the test program. */
#ifndef VX_TESTS_FX_HAPROXY_H
#define VX_TESTS_FX_HAPROXY_H

#include <sys/types.h>

#define FX_ORIGIN_MAX 8

struct fx_haproxy {
	pid_t pid; /* the master */
	char *dir;
	char *cfg;          /* dir/haproxy.cfg */
	char *runtime_sock; /* dir/runtime.sock (admin) */
	char *master_sock;  /* dir/master.sock */
	char *log;          /* dir/haproxy.log */
};

/* Writes global (admin runtime socket, stats timeout 2m), defaults (mode http, timeouts) and
 * body (frontends and backends), starts `haproxy -W -S master.sock -f haproxy.cfg` and waits
 * until the runtime socket answers. */
void fx_haproxy_start(struct fx_haproxy *h, const char *body);
/* The full config text fx_haproxy_start writes for body (caller frees). */
char *fx_haproxy_config(const struct fx_haproxy *h, const char *body);
void fx_haproxy_stop(struct fx_haproxy *h);
/* One command on a socket in non-interactive mode (write, read to EOF); caller frees. */
char *fx_haproxy_cmd(const char *sock, const char *cmd);

struct fx_origin {
	pid_t pid;
	char *dir;
	int n;
	int ports[FX_ORIGIN_MAX]; /* answer 200 "ok\n" with header x-origin: <index> at once */
	int slow_port;            /* answers the same after 1.5 s (for requests in flight) */
};
void fx_origin_start(struct fx_origin *o, int n);
void fx_origin_stop(struct fx_origin *o);

/* GET url with curl; returns the HTTP status (-1 when none) and the body in *body (may be
 * NULL; caller frees). */
long fx_get(const char *url, char **body);

#endif
