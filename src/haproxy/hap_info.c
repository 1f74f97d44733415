/* Parsers for the small line-oriented replies: `show info` ("Key: value" lines), the master
 * CLI's `show proc` (who is master, which workers run, reload and failure counters) and
 * `show backend` (one name a line). Pure and bounded like the table parsers. */
#include "haproxy/hap.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "common/strutil.h"
#include "haproxy/hap_int.h"

#define LINE_MAX_BYTES 4096
#define PROC_MAX_FIELDS 8

static int check_input(const char *what, const char *text, size_t len, struct vxerr *err)
{
	if (!text || len > HAP_REPLY_PARSE_MAX)
		return vxerr_set(err, "%s: reply missing or larger than %u bytes", what, HAP_REPLY_PARSE_MAX);
	if (memchr(text, '\0', len))
		return vxerr_set(err, "%s: reply holds a NUL byte", what);
	return 0;
}

/* Copies line[0..n) into out[cap] as a C string; false when it does not fit. */
static bool line_copy(const char *line, size_t n, char *out, size_t cap)
{
	if (n >= cap)
		return false;
	memcpy(out, line, n);
	out[n] = '\0';
	return true;
}

/* ---- show info ---- */

struct info_key {
	const char *key;
	size_t offset; /* of an int64_t in struct hap_info */
};

#define HI(field) offsetof(struct hap_info, field)
static const struct info_key info_numbers[] = {
	{ "Pid", HI(pid) },           { "Uptime_sec", HI(uptime_sec) }, { "Nbthread", HI(nbthread) },
	{ "Maxconn", HI(maxconn) },   { "Ulimit-n", HI(ulimit_n) },     { "CurrConns", HI(curr_conns) },
	{ "CumConns", HI(cum_conns) }, { "Stopping", HI(stopping) },
};

static int info_line(struct hap_info *info, const char *key, const char *value, struct vxerr *err)
{
	if (strcmp(key, "Name") == 0)
		return str_copy(info->name, sizeof(info->name), value) == 0 ? 0 : vxerr_set(err, "show info: Name too long");
	if (strcmp(key, "Version") == 0)
		return str_copy(info->version, sizeof(info->version), value) == 0
			       ? 0
			       : vxerr_set(err, "show info: Version too long");
	for (size_t i = 0; i < sizeof(info_numbers) / sizeof(info_numbers[0]); i++) {
		if (strcmp(key, info_numbers[i].key) != 0)
			continue;
		int64_t *slot = (int64_t *)(void *)((char *)info + info_numbers[i].offset);
		if (parse_i64(value, 0, INT64_MAX, slot) != 0)
			return vxerr_set(err, "show info: %s '%.32s' is not a number", key, value);
	}
	return 0;
}

static int info_split(const char *line, size_t n, char *key, size_t kcap, char *value, size_t vcap)
{
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return -1;
	size_t kn = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vn = n - kn - 1;
	while (vn && *v == ' ') {
		v++;
		vn--;
	}
	return line_copy(line, kn, key, kcap) && line_copy(v, vn, value, vcap) ? 0 : -1;
}

int hap_parse_info(const char *text, size_t len, struct hap_info *out, struct vxerr *err)
{
	if (check_input("show info", text, len, err) != 0)
		return -1;
	struct hap_info info = { .pid = -1, .uptime_sec = -1, .nbthread = -1, .maxconn = -1, .ulimit_n = -1,
				 .curr_conns = -1, .cum_conns = -1, .stopping = -1 };
	size_t pos = 0, n;
	const char *line;
	char key[64], value[256];
	while (hap_next_line(text, len, &pos, &line, &n)) {
		if (n == 0 || info_split(line, n, key, sizeof(key), value, sizeof(value)) != 0)
			continue; /* not a "Key: value" line, or one too long for any key we read */
		if (info_line(&info, key, value, err) != 0)
			return -1;
	}
	if (info.pid <= 0 || info.uptime_sec < 0 || !info.version[0])
		return vxerr_set(err, "show info: Pid, Uptime_sec or Version missing");
	*out = info;
	return 0;
}

/* ---- show proc (master CLI) ---- */

enum proc_section { SEC_NONE, SEC_WORKERS, SEC_OLD, SEC_OTHER };

static size_t split_words(char *s, char **w, size_t max)
{
	size_t n = 0;
	while (n < max) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			break;
		w[n++] = s;
		s += strcspn(s, " \t");
	}
	*s = '\0'; /* words past max are dropped, not glued to the last one */
	return n;
}

/* "<pid> master <reloads> [failed: <n>] <uptime> <version>" */
static int proc_master(struct hap_proc_list *l, char **w, size_t n, struct vxerr *err)
{
	if (n < 3 || parse_i64(w[0], 1, INT32_MAX, &l->master_pid) != 0 ||
	    parse_i64(w[2], 0, INT64_MAX, &l->master_reloads) != 0)
		return vxerr_set(err, "show proc: malformed master line");
	l->failed = 0;
	if (n >= 5 && strcmp(w[3], "[failed:") == 0) {
		size_t k = strlen(w[4]);
		if (k < 2 || w[4][k - 1] != ']' || parse_i64_n(w[4], k - 1, 0, INT64_MAX, &l->failed) != 0)
			return vxerr_set(err, "show proc: malformed [failed: N] counter");
	}
	return 0;
}

static int proc_worker(struct hap_proc_list *l, char **w, size_t n, bool old, struct vxerr *err)
{
	struct hap_proc_entry e = { .old = old };
	if (n < 3 || strcmp(w[1], "worker") != 0 || parse_i64(w[0], 1, INT32_MAX, &e.pid) != 0 ||
	    parse_i64(w[2], 0, INT64_MAX, &e.reloads) != 0)
		return vxerr_set(err, "show proc: malformed worker line");
	if (l->n < HAP_PROC_MAX)
		l->workers[l->n++] = e;
	return 0;
}

static enum proc_section proc_section(const char *line, enum proc_section cur)
{
	if (strcmp(line, "# workers") == 0)
		return SEC_WORKERS;
	if (strcmp(line, "# old workers") == 0)
		return SEC_OLD;
	if (line[0] == '#' && strncmp(line, "#<PID>", 6) != 0)
		return SEC_OTHER; /* "# programs" and anything newer */
	return cur;
}

static int proc_line(struct hap_proc_list *l, char *line, enum proc_section *sec, struct vxerr *err)
{
	if (line[0] == '#') {
		*sec = proc_section(line, *sec);
		return 0;
	}
	char *w[PROC_MAX_FIELDS];
	size_t n = split_words(line, w, PROC_MAX_FIELDS);
	if (n == 0 || *sec == SEC_OTHER)
		return 0;
	if (n >= 2 && strcmp(w[1], "master") == 0)
		return proc_master(l, w, n, err);
	if (*sec == SEC_WORKERS || *sec == SEC_OLD)
		return proc_worker(l, w, n, *sec == SEC_OLD, err);
	return vxerr_set(err, "show proc: unexpected line before any section");
}

int hap_parse_proc(const char *text, size_t len, struct hap_proc_list *out, struct vxerr *err)
{
	if (check_input("show proc", text, len, err) != 0)
		return -1;
	struct hap_proc_list *l = xcalloc(1, sizeof(*l));
	enum proc_section sec = SEC_NONE;
	size_t pos = 0, n;
	const char *line;
	char buf[LINE_MAX_BYTES];
	int rc = -1;
	while (hap_next_line(text, len, &pos, &line, &n)) {
		if (!line_copy(line, n, buf, sizeof(buf))) {
			vxerr_set(err, "show proc: line longer than %d bytes", LINE_MAX_BYTES);
			goto out;
		}
		if (proc_line(l, buf, &sec, err) != 0)
			goto out;
	}
	if (l->master_pid <= 0) {
		vxerr_set(err, "show proc: no master line");
		goto out;
	}
	*out = *l;
	rc = 0;
out:
	free(l);
	return rc;
}

int64_t hap_proc_current_worker(const struct hap_proc_list *l)
{
	const struct hap_proc_entry *best = NULL;
	for (size_t i = 0; i < l->n; i++)
		if (!l->workers[i].old && (!best || l->workers[i].reloads < best->reloads))
			best = &l->workers[i];
	return best ? best->pid : 0;
}

/* ---- show backend ---- */

int hap_parse_backends(const char *text, size_t len, struct hap_backends *out, struct vxerr *err)
{
	if (check_input("show backend", text, len, err) != 0)
		return -1;
	size_t pos = 0, n, cap = 0;
	const char *line;
	if (!hap_next_line(text, len, &pos, &line, &n) || n < 6 || memcmp(line, "# name", 6) != 0)
		return vxerr_set(err, "show backend: missing the '# name' header line");
	struct hap_backends b = { NULL, 0 };
	while (hap_next_line(text, len, &pos, &line, &n)) {
		if (n == 0)
			continue;
		if (n > LINE_MAX_BYTES) {
			hap_backends_release(&b);
			return vxerr_set(err, "show backend: name longer than %d bytes", LINE_MAX_BYTES);
		}
		b.names = xgrow(b.names, sizeof(*b.names), &cap, b.n + 1);
		b.names[b.n++] = xstrndup(line, n);
	}
	*out = b;
	return 0;
}

void hap_backends_release(struct hap_backends *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->names[i]);
	free(b->names);
	b->names = NULL;
	b->n = 0;
}
