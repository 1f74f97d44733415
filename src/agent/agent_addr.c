/* The agent's defaults: the instance id from address and port, and the address to advertise,
 * read from the service's listening sockets (/proc/net/tcp{,6}) and the host's interfaces. */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/strutil.h"

#define PROC_LINE_MAX 512 /* a /proc/net/tcp6 line is about 180 bytes */
#define TCP_LISTEN 0x0A   /* TCP_LISTEN in the kernel's state numbering */

int agent_instance_default(const char *address, uint16_t port, char *out, size_t cap)
{
	char canon[NET_IP_MAX];
	int family = net_ip_canon(address, canon, sizeof(canon));
	int n;
	if (family == AF_INET) {
		n = snprintf(out, cap, "%s:%u", canon, (unsigned)port);
	} else if (family == AF_INET6) {
		unsigned char b[16];
		inet_pton(AF_INET6, canon, b);
		n = snprintf(out, cap, "%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%u",
			     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
			     b[14], b[15], (unsigned)port);
	} else {
		return -1;
	}
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- /proc/net/tcp ----------------------------------------------------------------------- */

/* The next blank-separated token of [*p, end); false when there is none. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	const char *e = s;
	while (e < end && *e != ' ' && *e != '\t')
		e++;
	*p = e;
	*tok = s;
	*len = (size_t)(e - s);
	return e > s;
}

/* n (<= 8) hex digits as a number; false on anything else. */
static bool hex_u32(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	if (n == 0 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
			: c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return true;
}

/* The kernel prints each 32-bit word of the address as a host-order integer (%08X), so the
 * words read back as integers are the address bytes in memory order. */
static bool parse_local(const char *tok, size_t len, bool v6, unsigned char addr[16], uint16_t *port)
{
	size_t hexlen = v6 ? 32 : 8;
	uint32_t word, p;
	if (len != hexlen + 5 || tok[hexlen] != ':' || !hex_u32(tok + hexlen + 1, 4, &p))
		return false;
	for (size_t i = 0; i < hexlen / 8; i++) {
		if (!hex_u32(tok + i * 8, 8, &word))
			return false;
		memcpy(addr + i * 4, &word, 4);
	}
	*port = (uint16_t)p;
	return true;
}

static void note_address(struct agent_listen *l, int family, const unsigned char *addr)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char zero[16] = { 0 };
	if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	bool v4 = family == AF_INET;
	if (memcmp(addr, zero, v4 ? 4 : 16) == 0) {
		l->any = true;
		return;
	}
	static const unsigned char v6loop[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	bool loop = v4 ? addr[0] == 127 : memcmp(addr, v6loop, 16) == 0;
	char *slot = loop ? l->loopback : l->specific;
	if (slot[0] == '\0')
		inet_ntop(family, addr, slot, NET_IP_MAX);
}

void agent_listen_line(const char *line, size_t len, bool v6, uint16_t port, struct agent_listen *l)
{
	const char *p = line, *end = line + len, *tok[4];
	size_t tlen[4];
	for (int i = 0; i < 4; i++)
		if (!next_token(&p, end, &tok[i], &tlen[i]))
			return;
	unsigned char addr[16];
	uint16_t lport;
	uint32_t st;
	if (tlen[0] < 2 || tok[0][tlen[0] - 1] != ':' || !parse_local(tok[1], tlen[1], v6, addr, &lport))
		return;
	if (lport != port || !hex_u32(tok[3], tlen[3], &st) || st != TCP_LISTEN)
		return;
	note_address(l, v6 ? AF_INET6 : AF_INET, addr);
}

void agent_listen_scan(const char *text, size_t len, bool v6, uint16_t port, struct agent_listen *l)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		agent_listen_line(p, (size_t)(eol - p), v6, port, l);
		p = eol + 1;
	}
}

static bool has_listener(const struct agent_listen *l)
{
	return l->any || l->loopback[0] || l->specific[0];
}

static void read_table(const char *path, bool v6, uint16_t port, struct agent_listen *l)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return; /* no IPv6 in this kernel, or no /proc: the fallback applies */
	char line[PROC_LINE_MAX];
	bool skipping = false; /* inside an overlong line: ignore it to its end */
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		bool complete = n > 0 && line[n - 1] == '\n';
		if (!skipping && complete)
			agent_listen_line(line, n - 1, v6, port, l);
		skipping = !complete;
	}
	fclose(f);
}

bool agent_listen_read(const char *proc_root, uint16_t port, struct agent_listen *l)
{
	char path[256];
	memset(l, 0, sizeof(*l));
	snprintf(path, sizeof(path), "%s/net/tcp", proc_root);
	read_table(path, false, port, l);
	snprintf(path, sizeof(path), "%s/net/tcp6", proc_root);
	read_table(path, true, port, l);
	return has_listener(l);
}

/* ---- the address to advertise --------------------------------------------------------------- */

void agent_address_pick(const struct agent_listen *l, const char *first_nonloopback, char *out, size_t cap)
{
	const char *pick = "127.0.0.1";
	if (l->specific[0])
		pick = l->specific;
	else if (l->loopback[0] && !l->any)
		pick = l->loopback;
	else if (first_nonloopback && first_nonloopback[0])
		pick = first_nonloopback;
	str_copy(out, cap, pick);
}

static bool usable(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		return b[0] != 127 && b[0] != 0 && !(b[0] == 169 && b[1] == 254);
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_UNSPECIFIED(a) &&
		       !IN6_IS_ADDR_V4MAPPED(a);
	}
	return false;
}

void agent_first_address(char *out, size_t cap)
{
	struct ifaddrs *all = NULL;
	out[0] = '\0';
	if (getifaddrs(&all) != 0)
		return;
	static const int families[] = { AF_INET, AF_INET6 };
	for (int i = 0; i < 2 && !out[0]; i++) {
		for (struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
			if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != families[i] || !(ifa->ifa_flags & IFF_UP) ||
			    (ifa->ifa_flags & IFF_LOOPBACK) || !usable(ifa->ifa_addr))
				continue;
			const void *a = families[i] == AF_INET ? (const void *)&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr
							       : (const void *)&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
			char text[NET_IP_MAX];
			if (inet_ntop(families[i], a, text, sizeof(text)) && str_copy(out, cap, text) == 0)
				break;
			out[0] = '\0';
		}
	}
	freeifaddrs(all);
}

bool agent_address_default(uint16_t port, char *out, size_t cap)
{
	struct agent_listen l;
	bool found = agent_listen_read("/proc", port, &l);
	char first[NET_IP_MAX];
	agent_first_address(first, sizeof(first));
	agent_address_pick(&l, first, out, cap);
	return found;
}
