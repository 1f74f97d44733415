/* Parsers for HAProxy's two tables: `show servers state` (space separated) and `show stat`
 * (CSV). Both map columns by the names in their header line, never by position: the column
 * sets differ between HAProxy versions (FACTS 3.5). Each parse copies the text once, cuts it
 * into fields in place, and the rows point into that copy. Bounded: the input size is capped,
 * a row needs the header's field count, numbers are checked. */
#include "haproxy/hap.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "haproxy/hap_int.h"

#define MAX_COLUMNS 512

/* One column Veltrix reads: its header name and where its value goes in a row struct. */
struct column {
	const char *name;
	size_t offset;
	bool is_string;
	bool required;
};

struct table {
	char *copy;
	size_t len;
	size_t pos;
	unsigned line_no;
	char *fields[MAX_COLUMNS];
	size_t n_header;
	int map[MAX_COLUMNS]; /* header field index -> column index, or -1 */
};

static int table_open(struct table *t, const char *what, const char *text, size_t len, struct vxerr *err)
{
	memset(t, 0, sizeof(*t));
	if (!text || len > HAP_REPLY_PARSE_MAX)
		return vxerr_set(err, "%s: reply missing or larger than %u bytes", what, HAP_REPLY_PARSE_MAX);
	if (memchr(text, '\0', len))
		return vxerr_set(err, "%s: reply holds a NUL byte", what);
	t->copy = xstrndup(text, len);
	t->len = len;
	return 0;
}

/* The next line, NUL-terminated in place; NULL at the end. */
static char *table_line(struct table *t)
{
	const char *line;
	size_t n;
	if (!hap_next_line(t->copy, t->len, &t->pos, &line, &n))
		return NULL;
	t->line_no++;
	char *l = t->copy + (line - t->copy);
	l[n] = '\0';
	return l;
}

/* Splits on runs of spaces; returns the field count, or MAX_COLUMNS + 1 when too many. */
static size_t split_spaces(char *s, char **fields)
{
	size_t n = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			return n;
		if (n == MAX_COLUMNS)
			return MAX_COLUMNS + 1;
		fields[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
	}
}

/* One CSV field starting at s (quoted per RFC 4180 or bare), unquoted in place; returns the
 * position after it (at ',' or the end), or NULL for an unterminated quote. */
static char *csv_field(char *s)
{
	if (*s != '"')
		return s + strcspn(s, ",");
	char *w = s;
	for (char *r = s + 1;; r++) {
		if (!*r)
			return NULL;
		if (*r == '"' && r[1] == '"') {
			*w++ = '"';
			r++;
		} else if (*r == '"') {
			*w = '\0';
			return r + 1 + strcspn(r + 1, ",");
		} else {
			*w++ = *r;
		}
	}
}

/* Splits a CSV line; returns the field count, 0 on a bad quote, MAX_COLUMNS + 1 when too many. */
static size_t split_csv(char *s, char **fields)
{
	size_t n = 0;
	for (;;) {
		if (n == MAX_COLUMNS)
			return MAX_COLUMNS + 1;
		fields[n++] = s;
		char *end = csv_field(s);
		if (!end)
			return 0;
		bool more = *end == ',';
		*end = '\0';
		if (!more)
			return n;
		s = end + 1;
	}
}

static int table_header(struct table *t, const struct column *cols, size_t n_cols, const char *what,
			struct vxerr *err)
{
	for (size_t i = 0; i < t->n_header; i++) {
		t->map[i] = -1;
		for (size_t c = 0; c < n_cols; c++)
			if (strcmp(t->fields[i], cols[c].name) == 0)
				t->map[i] = (int)c;
	}
	for (size_t c = 0; c < n_cols; c++) {
		bool found = false;
		for (size_t i = 0; i < t->n_header && !found; i++)
			found = t->map[i] == (int)c;
		if (cols[c].required && !found)
			return vxerr_set(err, "%s: header has no column '%s'", what, cols[c].name);
	}
	return 0;
}

/* The "# <column> <column> ..." line: split (by spaces or as CSV) and mapped to cols. */
static int header_line(struct table *t, size_t (*split)(char *, char **), const struct column *cols, size_t n_cols,
		       const char *what, struct vxerr *err)
{
	char *header = table_line(t);
	if (!header || strncmp(header, "# ", 2) != 0)
		return vxerr_set(err, "%s: missing the '# ' header line", what);
	t->n_header = split(header + 2, t->fields);
	if (t->n_header == 0 || t->n_header > MAX_COLUMNS)
		return vxerr_set(err, "%s: header is malformed or has no or too many columns", what);
	return table_header(t, cols, n_cols, what, err);
}

/* Fills one row struct from t->fields (n_fields of them) through the column map. */
static int table_row(struct table *t, size_t n_fields, const struct column *cols, size_t n_cols, void *row,
		     const char *what, struct vxerr *err)
{
	if (n_fields != t->n_header)
		return vxerr_set(err, "%s: line %u has %zu fields, the header %zu", what, t->line_no, n_fields,
				 t->n_header);
	for (size_t c = 0; c < n_cols; c++) {
		char *base = (char *)row + cols[c].offset;
		if (cols[c].is_string)
			*(const char **)(void *)base = "";
		else
			*(int64_t *)(void *)base = -1;
	}
	for (size_t i = 0; i < n_fields; i++) {
		if (t->map[i] < 0)
			continue;
		const struct column *c = &cols[t->map[i]];
		char *base = (char *)row + c->offset;
		if (c->is_string)
			*(const char **)(void *)base = t->fields[i];
		else if (t->fields[i][0] && parse_i64(t->fields[i], INT64_MIN, INT64_MAX, (int64_t *)(void *)base) != 0)
			return vxerr_set(err, "%s: line %u: %s '%.32s' is not a number", what, t->line_no, c->name,
					 t->fields[i]);
	}
	return 0;
}

/* ---- show servers state ---- */

#define SS(field) offsetof(struct hap_srv_state, field)
static const struct column state_cols[] = {
	{ "be_id", SS(be_id), false, false },
	{ "be_name", SS(backend), true, true },
	{ "srv_id", SS(srv_id), false, false },
	{ "srv_name", SS(name), true, true },
	{ "srv_addr", SS(addr), true, true },
	{ "srv_op_state", SS(op_state), false, true },
	{ "srv_admin_state", SS(admin_state), false, true },
	{ "srv_uweight", SS(uweight), false, true },
	{ "srv_iweight", SS(iweight), false, false },
	{ "srv_time_since_last_change", SS(since_change_s), false, false },
	{ "srv_check_status", SS(check_status), false, false },
	{ "srv_check_result", SS(check_result), false, false },
	{ "srv_check_health", SS(check_health), false, false },
	{ "srv_check_state", SS(check_state), false, false },
	{ "srv_port", SS(port), false, false },
};
#define N_STATE_COLS (sizeof(state_cols) / sizeof(state_cols[0]))

static int state_prelude(struct table *t, struct vxerr *err)
{
	char *version = table_line(t);
	if (!version || strcmp(version, "1") != 0)
		return vxerr_set(err, "show servers state: expected format version 1, got '%.32s'",
				 version ? version : "");
	return header_line(t, split_spaces, state_cols, N_STATE_COLS, "show servers state", err);
}

int hap_parse_servers_state(const char *text, size_t len, struct hap_servers_state *out, struct vxerr *err)
{
	struct table t;
	struct hap_srv_state *rows = NULL;
	size_t n = 0, cap = 0;
	if (table_open(&t, "show servers state", text, len, err) != 0)
		return -1;
	if (state_prelude(&t, err) != 0)
		goto fail;
	char *line;
	while ((line = table_line(&t)) != NULL) {
		size_t nf = split_spaces(line, t.fields);
		if (nf == 0)
			continue;
		rows = xgrow(rows, sizeof(*rows), &cap, n + 1);
		if (table_row(&t, nf, state_cols, N_STATE_COLS, &rows[n], "show servers state", err) != 0)
			goto fail;
		n++;
	}
	*out = (struct hap_servers_state){ rows, n, t.copy };
	return 0;
fail:
	free(rows);
	free(t.copy);
	return -1;
}

void hap_servers_state_release(struct hap_servers_state *s)
{
	free(s->rows);
	free(s->text);
	*s = (struct hap_servers_state){ NULL, 0, NULL };
}

const struct hap_srv_state *hap_servers_state_find(const struct hap_servers_state *s, const char *backend,
						   const char *server)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->rows[i].backend, backend) == 0 && strcmp(s->rows[i].name, server) == 0)
			return &s->rows[i];
	return NULL;
}

enum hap_admin hap_admin_from_bits(int64_t admin_state)
{
	if (admin_state < 0)
		return HAP_ADMIN_READY;
	if (admin_state & (HAP_SRV_FMAINT | HAP_SRV_IMAINT | HAP_SRV_CMAINT | HAP_SRV_RMAINT | HAP_SRV_HMAINT))
		return HAP_ADMIN_MAINT;
	if (admin_state & (HAP_SRV_FDRAIN | HAP_SRV_IDRAIN))
		return HAP_ADMIN_DRAIN;
	return HAP_ADMIN_READY;
}

/* ---- show stat ---- */

#define ST(field) offsetof(struct hap_stat_row, field)
static const struct column stat_cols[] = {
	{ "pxname", ST(pxname), true, true },   { "svname", ST(svname), true, true },
	{ "status", ST(status), true, true },   { "check_status", ST(check_status), true, false },
	{ "addr", ST(addr), true, false },      { "type", ST(type), false, false },
	{ "qcur", ST(qcur), false, false },     { "scur", ST(scur), false, false },
	{ "smax", ST(smax), false, false },     { "slim", ST(slim), false, false },
	{ "stot", ST(stot), false, false },     { "econ", ST(econ), false, false },
	{ "eresp", ST(eresp), false, false },   { "wretr", ST(wretr), false, false },
	{ "wredis", ST(wredis), false, false }, { "weight", ST(weight), false, false },
	{ "uweight", ST(uweight), false, false }, { "act", ST(act), false, false },
	{ "chkfail", ST(chkfail), false, false }, { "lastchg", ST(lastchg), false, false },
	{ "check_code", ST(check_code), false, false }, { "hrsp_2xx", ST(hrsp_2xx), false, false },
	{ "hrsp_5xx", ST(hrsp_5xx), false, false }, { "qtime", ST(qtime), false, false },
	{ "ctime", ST(ctime), false, false },   { "rtime", ST(rtime), false, false },
	{ "ttime", ST(ttime), false, false },
};
#define N_STAT_COLS (sizeof(stat_cols) / sizeof(stat_cols[0]))

static void stat_normalise(struct hap_stat_row *r)
{
	/* "UP 1/3" while a transition is confirmed: the first word is the state ("no check" is
	 * the one two-word state). A check running right now is marked "* L7OK". */
	char *st = (char *)(uintptr_t)r->status;
	if (strncmp(st, "no check", 8) != 0)
		st[strcspn(st, " ")] = '\0';
	if (strncmp(r->check_status, "* ", 2) == 0)
		r->check_status += 2;
}

int hap_parse_stat(const char *text, size_t len, struct hap_stats *out, struct vxerr *err)
{
	struct table t;
	struct hap_stat_row *rows = NULL;
	size_t n = 0, cap = 0;
	if (table_open(&t, "show stat", text, len, err) != 0)
		return -1;
	if (header_line(&t, split_csv, stat_cols, N_STAT_COLS, "show stat", err) != 0)
		goto fail;
	char *line;
	while ((line = table_line(&t)) != NULL) {
		if (!line[0])
			continue;
		size_t nf = split_csv(line, t.fields);
		if (nf == 0 || nf > MAX_COLUMNS) {
			vxerr_set(err, "show stat: line %u is malformed", t.line_no);
			goto fail;
		}
		rows = xgrow(rows, sizeof(*rows), &cap, n + 1);
		if (table_row(&t, nf, stat_cols, N_STAT_COLS, &rows[n], "show stat", err) != 0)
			goto fail;
		stat_normalise(&rows[n++]);
	}
	*out = (struct hap_stats){ rows, n, t.copy };
	return 0;
fail:
	free(rows);
	free(t.copy);
	return -1;
}

void hap_stats_release(struct hap_stats *s)
{
	free(s->rows);
	free(s->text);
	*s = (struct hap_stats){ NULL, 0, NULL };
}

const struct hap_stat_row *hap_stats_find(const struct hap_stats *s, const char *pxname, const char *svname)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->rows[i].pxname, pxname) == 0 && strcmp(s->rows[i].svname, svname) == 0)
			return &s->rows[i];
	return NULL;
}

/* ---- show cli sockets ---- */

struct cli_socket_row {
	const char *socket; /* "unix@/path", "ipv4@host:port", "sockpair@N" */
	const char *lvl;
};

#define CS(field) offsetof(struct cli_socket_row, field)
static const struct column cli_socket_cols[] = {
	{ "socket", CS(socket), true, true },
	{ "lvl", CS(lvl), true, true },
};
#define N_CLI_SOCKET_COLS (sizeof(cli_socket_cols) / sizeof(cli_socket_cols[0]))

/* "unix@<path>" at admin level: the path; NULL for any other socket (TCP, sockpair, lower levels). */
static const char *admin_unix_path(const struct cli_socket_row *r)
{
	return strncmp(r->socket, "unix@", 5) == 0 && strcmp(r->lvl, "admin") == 0 ? r->socket + 5 : NULL;
}

int hap_parse_cli_sockets(const char *text, size_t len, char *path, size_t cap, struct vxerr *err)
{
	struct table t;
	struct cli_socket_row row;
	int rc = -1;
	if (table_open(&t, "show cli sockets", text, len, err) != 0)
		return -1;
	if (header_line(&t, split_spaces, cli_socket_cols, N_CLI_SOCKET_COLS, "show cli sockets", err) != 0)
		goto out;
	char *line;
	while ((line = table_line(&t)) != NULL) {
		size_t nf = split_spaces(line, t.fields);
		if (nf == 0)
			continue;
		if (table_row(&t, nf, cli_socket_cols, N_CLI_SOCKET_COLS, &row, "show cli sockets", err) != 0)
			goto out;
		const char *found = admin_unix_path(&row);
		if (!found)
			continue;
		size_t n = strlen(found);
		if (n >= cap) {
			vxerr_set(err, "show cli sockets: path of %zu bytes is too long", n);
			goto out;
		}
		memcpy(path, found, n + 1);
		rc = 0;
		goto out;
	}
	vxerr_set(err, "show cli sockets: no unix socket at admin level");
out:
	free(t.copy);
	return rc;
}
