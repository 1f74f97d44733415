/* Address parsing and socket helpers. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/parse.h"

int net_ip_canon(const char *s, char *out, size_t cap)
{
	unsigned char bin[16];
	if (!s || strlen(s) >= NET_IP_MAX)
		return -1;
	int family = strchr(s, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, s, bin) != 1)
		return -1;
	if (!inet_ntop(family, bin, out, (socklen_t)cap))
		return -1;
	return family;
}

int net_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port, struct vxerr *err)
{
	const char *colon, *h = s;
	size_t hlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return vxerr_set(err, "'%s' is not [ipv6]:port", s);
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return vxerr_set(err, "'%s' has no port (write host:port, as in 127.0.0.1:8080)", s);
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return vxerr_set(err, "'%s': an IPv6 address needs brackets, as in [::1]:8080", s);
	}
	int64_t p;
	if (parse_i64(colon + 1, 1, 65535, &p) != 0)
		return vxerr_set(err, "'%s': port must be a number from 1 to 65535", s);
	if (hlen >= hostcap)
		return vxerr_set(err, "'%s': host too long", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

void net_hostport_format(const char *ip, uint16_t port, char *out, size_t cap)
{
	if (strchr(ip, ':'))
		snprintf(out, cap, "[%s]:%u", ip, (unsigned)port);
	else
		snprintf(out, cap, "%s:%u", ip, (unsigned)port);
}

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address a.b.c.d to every socket,
 * so it is matched as that: an IPv6 range like ::/0 must not let 127.0.0.2 in by another
 * spelling. Rewrites bin and family in place; prefix, when given, moves with it. */
static void unmap_v4(int *family, uint8_t bin[16], int *prefix)
{
	if (*family != AF_INET6 || memcmp(bin, v4_mapped_prefix, sizeof(v4_mapped_prefix)) != 0)
		return;
	if (prefix && *prefix < 96)
		return; /* a range wider than the mapped block stays IPv6 */
	memmove(bin, bin + 12, 4);
	memset(bin + 4, 0, 12);
	*family = AF_INET;
	if (prefix)
		*prefix -= 96;
}

int cidr_parse(const char *s, struct cidr *out, struct vxerr *err)
{
	char ip[NET_IP_MAX];
	const char *slash = strchr(s, '/');
	size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
	if (iplen == 0 || iplen >= sizeof(ip))
		return vxerr_set(err, "'%s' is not a CIDR (write for example 10.0.0.0/8)", s);
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	struct cidr c = { 0 };
	c.family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, ip, c.addr) != 1)
		return vxerr_set(err, "'%s': '%s' is not an IP address", s, ip);
	int maxbits = c.family == AF_INET ? 32 : 128;
	c.prefix = maxbits;
	if (slash && parse_int(slash + 1, 0, maxbits, &c.prefix) != 0)
		return vxerr_set(err, "'%s': prefix length must be 0 to %d", s, maxbits);
	unmap_v4(&c.family, c.addr, &c.prefix);
	*out = c;
	return 0;
}

bool cidr_contains(const struct cidr *c, const char *ip)
{
	uint8_t bin[16];
	int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, ip, bin) != 1)
		return false;
	unmap_v4(&family, bin, NULL);
	if (family != c->family)
		return false;
	int full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(bin, c->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (bin[full] & mask) == (c->addr[full] & mask);
}

int net_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int port = -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int net_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int net_listen_tcp(const char *host, uint16_t port, int backlog, struct vxerr *err)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	char canon[NET_IP_MAX];
	const char *ip = (!host || !*host || strcmp(host, "*") == 0) ? "0.0.0.0" : host;
	if (strcmp(ip, "localhost") == 0)
		ip = "127.0.0.1";
	int family = net_ip_canon(ip, canon, sizeof(canon));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, canon, &sin->sin_addr);
		sslen = sizeof(*sin);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, canon, &sin6->sin6_addr);
		sslen = sizeof(*sin6);
	} else {
		return vxerr_set(err, "'%s' is not an IP address to listen on", ip);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return vxerr_set(err, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, backlog) != 0) {
		int e = errno;
		close(fd);
		return vxerr_set(err, "cannot listen on %s:%u: %s", ip, (unsigned)port, strerror(e));
	}
	return fd;
}

int net_connect_unix(const char *path, struct vxerr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return vxerr_set(err, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vxerr_set(err, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return vxerr_set(err, "cannot connect to %s: %s", path, strerror(e));
	}
	return fd;
}

int net_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int net_bind_probe(const char *ip, uint16_t port, struct vxerr *err)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(*v4);
	v4->sin_family = AF_INET;
	v4->sin_port = htons(port);
	if (ip[0] && inet_pton(AF_INET, ip, &v4->sin_addr) != 1) {
		memset(&ss, 0, sizeof(ss));
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		len = sizeof(*v6);
		if (inet_pton(AF_INET6, ip, &v6->sin6_addr) != 1)
			return vxerr_set(err, "'%s' is not an IP address", ip);
	}
	char where[NET_IP_MAX + 16];
	net_hostport_format(ip[0] ? ip : "*", port, where, sizeof(where));
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return vxerr_set(err, "cannot probe %s: socket: %s", where, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	int rc = 0;
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		rc = vxerr_set(err, "cannot bind %s: %s%s", where, strerror(errno),
			       errno == EADDRINUSE ? " (another process listens there)" : "");
	close(fd);
	return rc;
}
