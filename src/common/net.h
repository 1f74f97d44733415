/* Addresses and sockets: strict IP literals, host:port, CIDR, loopback helpers. */
#ifndef VX_COMMON_NET_H
#define VX_COMMON_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Large enough for any canonical IPv6 text (INET6_ADDRSTRLEN) */
#define NET_IP_MAX 46
/* "[v6]:65535" */
#define NET_HOSTPORT_MAX (NET_IP_MAX + 8)

/* Parses an IPv4 or IPv6 literal strictly (no zone ids, no leading zeros, no hostnames) and
 * writes its canonical form (inet_ntop of inet_pton). Returns the family (AF_INET or AF_INET6)
 * or -1. */
int net_ip_canon(const char *s, char *out, size_t cap);

/* "host:port" or "[v6]:port". host is copied as written (may be a name, "*" or empty);
 * port must be 1..65535. Returns 0 or -1 with a reason in err. */
int net_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port, struct vxerr *err);
/* Formats ip and port, bracketing IPv6: "[::1]:80". */
void net_hostport_format(const char *ip, uint16_t port, char *out, size_t cap);

struct cidr {
	int family;
	uint8_t addr[16];
	int prefix;
};
/* "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). */
int cidr_parse(const char *s, struct cidr *out, struct vxerr *err);
/* True when the canonical IP literal ip lies inside c. */
bool cidr_contains(const struct cidr *c, const char *ip);

/* A TCP port on 127.0.0.1 that was free a moment ago (for tests and local stacks). */
int net_free_port(void);
/* Binds a TCP socket to ip:port ("" = every IPv4 address) the way HAProxy binds a listener
 * (SO_REUSEADDR, SO_REUSEPORT) and closes it: 0 when HAProxy's bind would succeed now, -1 with
 * the reason (in use by another process, address not on this host) in err. */
int net_bind_probe(const char *ip, uint16_t port, struct vxerr *err);
int net_set_nonblock(int fd);
/* A listening TCP socket (SO_REUSEADDR, nonblocking, close-on-exec) on host:port. */
int net_listen_tcp(const char *host, uint16_t port, int backlog, struct vxerr *err);
/* A blocking connected unix stream socket, close-on-exec. */
int net_connect_unix(const char *path, struct vxerr *err);
/* Writes all of p, retrying on EINTR and short writes (blocking fds); 0 or -1. */
int net_write_all(int fd, const void *p, size_t n);

#endif
