/* Reads the machine facts the lint needs from /proc/sys and getrlimit. Only I/O lives here;
 * the rules in lint.c take the facts as a plain struct so that tests can inject them. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/parse.h"
#include "config/config.h"

/* Reads up to cap-1 bytes of a small /proc file; returns its length or -1. */
static ssize_t read_small(const char *root, const char *rel, char *out, size_t cap)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return n;
}

/* Parses up to `want` whitespace-separated integers; returns how many were read. */
static int parse_ints(const char *s, int64_t *vals, int want)
{
	int got = 0;
	while (got < want) {
		while (isspace((unsigned char)*s))
			s++;
		size_t len = strcspn(s, " \t\n");
		if (len == 0 || parse_i64_n(s, len, 0, INT64_MAX, &vals[got]) != 0)
			break;
		got++;
		s += len;
	}
	return got;
}

static int64_t read_one(const char *root, const char *rel)
{
	char text[128];
	int64_t v;
	if (read_small(root, rel, text, sizeof(text)) < 0 || parse_ints(text, &v, 1) != 1)
		return -1;
	return v;
}

static int64_t rlim_value(rlim_t r)
{
	return r == RLIM_INFINITY || r > (rlim_t)INT64_MAX ? INT64_MAX : (int64_t)r;
}

void cfg_sysfacts_read_from(struct cfg_sysfacts *f, const char *proc_root)
{
	char text[128];
	int64_t range[2];
	f->port_lo = f->port_hi = -1;
	if (read_small(proc_root, "sys/net/ipv4/ip_local_port_range", text, sizeof(text)) >= 0 &&
	    parse_ints(text, range, 2) == 2 && range[0] <= range[1]) {
		f->port_lo = range[0];
		f->port_hi = range[1];
	}
	f->somaxconn = read_one(proc_root, "sys/net/core/somaxconn");
	f->fin_timeout_s = read_one(proc_root, "sys/net/ipv4/tcp_fin_timeout");
	f->tw_reuse = read_one(proc_root, "sys/net/ipv4/tcp_tw_reuse");
	struct rlimit rl;
	f->nofile_soft = f->nofile_hard = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		f->nofile_soft = rlim_value(rl.rlim_cur);
		f->nofile_hard = rlim_value(rl.rlim_max);
	}
}

void cfg_sysfacts_read(struct cfg_sysfacts *f)
{
	cfg_sysfacts_read_from(f, "/proc");
}
