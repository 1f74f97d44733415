/* Incremental HTTP/1.1 request and response parsers (see http1.h). The head is parsed once it
 * is complete (its end is searched incrementally, so a head fed one byte at a time costs O(n));
 * bodies are streamed through a small state machine without copying. */
#include "common/http1.h"

#include <string.h>

const struct http1_limits http1_default_limits = {
	.max_head = 16 * 1024,
	.max_headers = 100,
	.max_chunk_line = 1024,
	.max_body = 64u << 20,
};

enum { ST_HEAD, ST_LEN, ST_EOF, ST_CSIZE, ST_CDATA, ST_CCRLF, ST_TRAILER, ST_DONE, ST_FAILED };

/* What the framing headers said. */
struct framing {
	int64_t content_length;
	bool te_chunked;
	bool te_seen;
	bool conn_close;
	bool conn_keep_alive;
};

static enum http1_ev fail(struct http1_msg *m, int status, const char *why)
{
	m->error = why;
	m->error_status = status;
	m->state = ST_FAILED;
	return HTTP1_ERROR;
}

static void msg_init(struct http1_msg *m, const struct http1_limits *lim, struct http1_header *headers, size_t cap)
{
	memset(m, 0, sizeof(*m));
	m->lim = lim ? *lim : http1_default_limits;
	if (m->lim.max_headers > HTTP1_MAX_HEADERS)
		m->lim.max_headers = HTTP1_MAX_HEADERS;
	m->headers = headers;
	m->header_cap = headers ? cap : 0;
	m->content_length = -1;
	m->state = ST_HEAD;
}

static void msg_next(struct http1_msg *m)
{
	m->minor = 0;
	m->keep_alive = false;
	m->chunked = false;
	m->content_length = -1;
	m->nheaders = 0;
	m->body_len = 0;
	m->remaining = 0;
	m->scanned = 0;
	m->state = ST_HEAD;
}

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Header values and reasons: no control characters except HTAB (obs-text is allowed). */
static bool is_vchar_or_blank(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool http1_token_eq(const char *p, size_t n, const char *word)
{
	size_t wl = strlen(word);
	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)word[i])
			return false;
	}
	return true;
}

/* Length of the block of lines at p that ends with an empty line (the blank line included),
 * or 0 when it is not complete yet. *scanned remembers how far the search got. */
static size_t block_end(const char *p, size_t n, size_t *scanned)
{
	if (n >= 1 && p[0] == '\n')
		return 1;
	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	size_t i = *scanned <= n ? *scanned : 0;
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		if (!nl)
			break;
		size_t j = (size_t)(nl - p) + 1;
		if (j < n && p[j] == '\n')
			return j + 1;
		if (j + 1 < n && p[j] == '\r' && p[j + 1] == '\n')
			return j + 2;
		if (j >= n || (j + 1 >= n && p[j] == '\r')) {
			*scanned = (size_t)(nl - p);
			return 0;
		}
		i = j;
	}
	*scanned = n;
	return 0;
}

/* The next line of the block p[*pos..end), without its line ending; -1 on a bare CR. */
static int next_line(const char *p, size_t end, size_t *pos, const char **line, size_t *len)
{
	const char *s = p + *pos;
	const char *nl = memchr(s, '\n', end - *pos);
	size_t l = nl ? (size_t)(nl - s) : end - *pos;
	*pos += nl ? l + 1 : l;
	if (l > 0 && s[l - 1] == '\r')
		l--;
	if (memchr(s, '\r', l))
		return -1;
	*line = s;
	*len = l;
	return 0;
}

static int parse_content_length(const char *v, size_t n, struct framing *f)
{
	if (n == 0 || n > 18)
		return -1;
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	if (f->content_length >= 0 && f->content_length != x)
		return -1;
	f->content_length = x;
	return 0;
}

static void parse_connection(const char *v, size_t n, struct framing *f)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (http1_token_eq(v + s, i - s, "close"))
			f->conn_close = true;
		else if (http1_token_eq(v + s, i - s, "keep-alive"))
			f->conn_keep_alive = true;
	}
}

static enum http1_ev framing_header(struct http1_msg *m, const struct http1_header *h, struct framing *f)
{
	if (http1_token_eq(h->name, h->name_len, "content-length")) {
		if (parse_content_length(h->value, h->value_len, f) != 0)
			return fail(m, 400, "invalid content-length");
	} else if (http1_token_eq(h->name, h->name_len, "transfer-encoding")) {
		if (f->te_seen || !http1_token_eq(h->value, h->value_len, "chunked"))
			return fail(m, 501, "unsupported transfer-encoding");
		f->te_seen = f->te_chunked = true;
	} else if (http1_token_eq(h->name, h->name_len, "connection")) {
		parse_connection(h->value, h->value_len, f);
	}
	return HTTP1_AGAIN;
}

/* One "name: value" line into h; -1 when malformed (including obsolete line folding). */
static int split_header(const char *l, size_t len, struct http1_header *h)
{
	size_t i = 0;
	while (i < len && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i >= len || l[i] != ':')
		return -1;
	h->name = l;
	h->name_len = i;
	i++;
	while (i < len && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t e = len;
	while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
		e--;
	for (size_t k = i; k < e; k++)
		if (!is_vchar_or_blank((unsigned char)l[k]))
			return -1;
	h->value = l + i;
	h->value_len = e - i;
	return 0;
}

/* The header lines of a complete head, after the start line at *pos. */
static enum http1_ev parse_headers(struct http1_msg *m, const char *p, size_t end, size_t pos, struct framing *f)
{
	const char *l;
	size_t len;
	for (;;) {
		if (next_line(p, end, &pos, &l, &len) != 0)
			return fail(m, 400, "bare carriage return in header");
		if (len == 0)
			return HTTP1_AGAIN;
		struct http1_header h;
		if (split_header(l, len, &h) != 0)
			return fail(m, 400, "malformed header line");
		if (m->nheaders >= m->lim.max_headers)
			return fail(m, 431, "too many headers");
		if (m->nheaders < m->header_cap)
			m->headers[m->nheaders] = h;
		m->nheaders++;
		if (framing_header(m, &h, f) == HTTP1_ERROR)
			return HTTP1_ERROR;
	}
}

/* Trailer lines are checked like headers, then dropped. */
static int check_trailers(const char *p, size_t end)
{
	size_t pos = 0;
	const char *l;
	size_t len;
	for (;;) {
		if (next_line(p, end, &pos, &l, &len) != 0)
			return -1;
		if (len == 0)
			return 0;
		struct http1_header h;
		if (split_header(l, len, &h) != 0)
			return -1;
	}
}

static int parse_version(const char *s, size_t n, int *minor)
{
	if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9')
		return -1;
	*minor = s[7] - '0';
	return 0;
}

/* Finds the complete head; 0 with HTTP1_AGAIN when it is not there yet. */
static enum http1_ev find_head(struct http1_msg *m, const char *p, size_t n, size_t *hlen)
{
	size_t len = block_end(p, n, &m->scanned);
	if (len == 0 && n >= m->lim.max_head)
		return fail(m, 431, "header section too large");
	if (len > m->lim.max_head)
		return fail(m, 431, "header section too large");
	*hlen = len;
	return HTTP1_AGAIN;
}

static void set_keep_alive(struct http1_msg *m, const struct framing *f)
{
	m->keep_alive = m->minor >= 1 ? !f->conn_close : (f->conn_keep_alive && !f->conn_close);
}

/* Body framing shared by both directions; `none` forces an empty body. */
static enum http1_ev start_body(struct http1_msg *m, const struct framing *f, bool none, bool to_eof)
{
	if (f->te_seen && f->content_length >= 0)
		return fail(m, 400, "both content-length and transfer-encoding");
	m->chunked = f->te_chunked;
	m->content_length = f->content_length;
	set_keep_alive(m, f);
	if (none) {
		m->state = ST_DONE;
	} else if (f->te_chunked) {
		m->state = ST_CSIZE;
	} else if (f->content_length >= 0) {
		if ((uint64_t)f->content_length > m->lim.max_body)
			return fail(m, 413, "body too large");
		m->remaining = (uint64_t)f->content_length;
		m->state = m->remaining ? ST_LEN : ST_DONE;
	} else if (to_eof) {
		m->keep_alive = false;
		m->state = ST_EOF;
	} else {
		m->state = ST_DONE;
	}
	return HTTP1_HEAD;
}

static enum http1_ev chunk_size(struct http1_msg *m, const char *p, size_t n, size_t *used)
{
	size_t lim = n < m->lim.max_chunk_line ? n : m->lim.max_chunk_line;
	const char *nl = memchr(p, '\n', lim);
	if (!nl)
		return n >= m->lim.max_chunk_line ? fail(m, 400, "chunk size line too long") : HTTP1_AGAIN;
	size_t len = (size_t)(nl - p), i = 0;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	uint64_t size = 0;
	for (; i < len && i < 16; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			break;
		size = size * 16 + (uint64_t)d;
	}
	if (i == 0 || i >= 16)
		return fail(m, 400, "invalid chunk size");
	for (size_t k = i; k < len; k++)
		if (!is_vchar_or_blank((unsigned char)p[k]) || (k == i && p[k] != ';' && p[k] != ' ' && p[k] != '\t'))
			return fail(m, 400, "invalid chunk extension");
	if (size > m->lim.max_body - m->body_len)
		return fail(m, 413, "body too large");
	*used = (size_t)(nl - p) + 1;
	m->remaining = size;
	m->state = size ? ST_CDATA : ST_TRAILER;
	m->scanned = 0;
	return HTTP1_AGAIN;
}

static enum http1_ev chunk_crlf(struct http1_msg *m, const char *p, size_t n, size_t *used)
{
	if (n >= 1 && p[0] == '\n') {
		*used = 1;
	} else if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		*used = 2;
	} else if (n == 0 || (n == 1 && p[0] == '\r')) {
		return HTTP1_AGAIN;
	} else {
		return fail(m, 400, "missing line end after chunk data");
	}
	m->state = ST_CSIZE;
	return HTTP1_AGAIN;
}

static enum http1_ev trailers(struct http1_msg *m, const char *p, size_t n, size_t *used)
{
	size_t len = block_end(p, n, &m->scanned);
	if ((len == 0 && n >= m->lim.max_head) || len > m->lim.max_head)
		return fail(m, 431, "trailer section too large");
	if (len == 0)
		return HTTP1_AGAIN;
	if (check_trailers(p, len) != 0)
		return fail(m, 400, "malformed trailer line");
	*used = len;
	m->state = ST_DONE;
	return HTTP1_AGAIN;
}

static enum http1_ev body_bytes(struct http1_msg *m, const char *p, size_t n, size_t *used, struct http1_span *body)
{
	uint64_t k = n;
	if (m->state != ST_EOF && k > m->remaining)
		k = m->remaining;
	if (k == 0)
		return HTTP1_AGAIN;
	if (m->state == ST_EOF && k > m->lim.max_body - m->body_len)
		return fail(m, 413, "body too large");
	body->p = p;
	body->len = (size_t)k;
	*used = (size_t)k;
	m->body_len += k;
	if (m->state != ST_EOF) {
		m->remaining -= k;
		if (m->remaining == 0)
			m->state = m->state == ST_LEN ? ST_DONE : ST_CCRLF;
	}
	return HTTP1_BODY;
}

/* The body states; returns HTTP1_AGAIN with *used > 0 when it made progress without an event. */
static enum http1_ev body_step(struct http1_msg *m, const char *p, size_t n, size_t *used, struct http1_span *body)
{
	switch (m->state) {
	case ST_LEN:
	case ST_EOF:
	case ST_CDATA:
		return body_bytes(m, p, n, used, body);
	case ST_CSIZE:
		return chunk_size(m, p, n, used);
	case ST_CCRLF:
		return chunk_crlf(m, p, n, used);
	case ST_TRAILER:
		return trailers(m, p, n, used);
	case ST_DONE:
		msg_next(m);
		return HTTP1_DONE;
	default:
		return fail(m, 400, "parser used after an error");
	}
}

/* Runs body states until an event or until more bytes are needed. */
static enum http1_ev body_feed(struct http1_msg *m, const char *p, size_t n, size_t *used, struct http1_span *body)
{
	size_t total = 0;
	for (;;) {
		size_t u = 0;
		enum http1_ev ev = body_step(m, p + total, n - total, &u, body);
		total += u;
		if (ev != HTTP1_AGAIN || u == 0) {
			*used = total;
			return ev;
		}
	}
}

/* ---- responses ---- */

void http1_resp_init(struct http1_resp *r, const struct http1_limits *lim, struct http1_header *headers, size_t cap)
{
	msg_init(&r->m, lim, headers, cap);
	r->status = 0;
	r->reason = NULL;
	r->reason_len = 0;
	r->head_request = false;
}

static int parse_status_line(struct http1_resp *r, const char *l, size_t len)
{
	if (len < 12 || parse_version(l, 8, &r->m.minor) != 0 || l[8] != ' ')
		return -1;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (l[i] < '0' || l[i] > '9')
			return -1;
		st = st * 10 + (l[i] - '0');
	}
	if (st < 100 || (len > 12 && l[12] != ' '))
		return -1;
	size_t rs = len > 12 ? 13 : 12;
	for (size_t i = rs; i < len; i++)
		if (!is_vchar_or_blank((unsigned char)l[i]))
			return -1;
	r->status = st;
	r->reason = l + rs;
	r->reason_len = len - rs;
	return 0;
}

/* Parses a complete response head of hlen bytes. */
static enum http1_ev resp_head(struct http1_resp *r, const char *p, size_t hlen)
{
	struct http1_msg *m = &r->m;
	size_t pos = 0;
	const char *l;
	size_t len;
	struct framing f = { .content_length = -1 };
	if (next_line(p, hlen, &pos, &l, &len) != 0 || parse_status_line(r, l, len) != 0)
		return fail(m, 502, "malformed status line");
	if (parse_headers(m, p, hlen, pos, &f) == HTTP1_ERROR)
		return HTTP1_ERROR;
	bool none = r->head_request || r->status < 200 || r->status == 204 || r->status == 304;
	enum http1_ev ev = start_body(m, &f, none, true);
	if (r->status == 101)
		m->keep_alive = false;
	return ev;
}

enum http1_ev http1_resp_feed(struct http1_resp *r, const char *p, size_t n, size_t *used, struct http1_span *body)
{
	struct http1_msg *m = &r->m;
	*used = 0;
	if (m->state != ST_HEAD)
		return body_feed(m, p, n, used, body);
	for (;;) {
		size_t hlen = 0;
		if (find_head(m, p + *used, n - *used, &hlen) == HTTP1_ERROR)
			return HTTP1_ERROR;
		if (hlen == 0)
			return HTTP1_AGAIN;
		enum http1_ev ev = resp_head(r, p + *used, hlen);
		if (ev == HTTP1_ERROR)
			return ev;
		*used += hlen;
		if (r->status >= 200 || r->status == 101)
			return ev;
		msg_next(m); /* an interim 1xx: the real response follows */
	}
}

enum http1_ev http1_resp_eof(struct http1_resp *r)
{
	struct http1_msg *m = &r->m;
	if (m->state == ST_EOF || m->state == ST_DONE) {
		msg_next(m);
		return HTTP1_DONE;
	}
	if (m->state == ST_HEAD && m->scanned == 0)
		return HTTP1_AGAIN;
	if (m->state == ST_FAILED)
		return HTTP1_ERROR;
	return fail(m, 502, "response truncated");
}

bool http1_resp_started(const struct http1_resp *r)
{
	return r->m.state != ST_HEAD || r->m.scanned > 0;
}

/* ---- requests ---- */

void http1_req_init(struct http1_req *r, const struct http1_limits *lim, struct http1_header *headers, size_t cap)
{
	msg_init(&r->m, lim, headers, cap);
	r->method = r->target = NULL;
	r->method_len = r->target_len = 0;
}

static int parse_request_line(struct http1_req *r, const char *l, size_t len)
{
	size_t i = 0;
	while (i < len && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i >= len || l[i] != ' ')
		return -1;
	size_t ts = ++i;
	while (i < len && l[i] > 0x20 && l[i] < 0x7f)
		i++;
	if (i == ts || i >= len || l[i] != ' ')
		return -1;
	if (parse_version(l + i + 1, len - i - 1, &r->m.minor) != 0)
		return -1;
	r->method = l;
	r->method_len = ts - 1;
	r->target = l + ts;
	r->target_len = i - ts;
	return 0;
}

static enum http1_ev req_head(struct http1_req *r, const char *p, size_t hlen)
{
	struct http1_msg *m = &r->m;
	size_t pos = 0;
	const char *l;
	size_t len;
	struct framing f = { .content_length = -1 };
	if (next_line(p, hlen, &pos, &l, &len) != 0 || parse_request_line(r, l, len) != 0)
		return fail(m, 400, "malformed request line");
	if (parse_headers(m, p, hlen, pos, &f) == HTTP1_ERROR)
		return HTTP1_ERROR;
	return start_body(m, &f, false, false);
}

enum http1_ev http1_req_feed(struct http1_req *r, const char *p, size_t n, size_t *used, struct http1_span *body)
{
	struct http1_msg *m = &r->m;
	*used = 0;
	if (m->state != ST_HEAD)
		return body_feed(m, p, n, used, body);
	/* Clients may send stray blank lines between requests (RFC 9112 section 2.2). */
	while (m->scanned == 0 && *used < n) {
		if (p[*used] == '\n') {
			*used += 1;
		} else if (p[*used] == '\r' && *used + 1 >= n) {
			return HTTP1_AGAIN; /* a CR alone: wait for what follows */
		} else if (p[*used] == '\r' && p[*used + 1] == '\n') {
			*used += 2;
		} else {
			break;
		}
	}
	size_t hlen = 0;
	if (find_head(m, p + *used, n - *used, &hlen) == HTTP1_ERROR)
		return HTTP1_ERROR;
	if (hlen == 0)
		return HTTP1_AGAIN;
	enum http1_ev ev = req_head(r, p + *used, hlen);
	if (ev != HTTP1_ERROR)
		*used += hlen;
	return ev;
}

const char *http1_header_get(const struct http1_msg *m, const char *name, size_t *len)
{
	size_t n = m->nheaders < m->header_cap ? m->nheaders : m->header_cap;
	for (size_t i = 0; i < n; i++) {
		if (http1_token_eq(m->headers[i].name, m->headers[i].name_len, name)) {
			*len = m->headers[i].value_len;
			return m->headers[i].value;
		}
	}
	return NULL;
}

static bool check_path_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#' && c != '"' && c != '\'' && c != '\\' && c != ';';
}

bool http1_check_path_valid(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	size_t n = strnlen(path, HTTP1_CHECK_PATH_MAX + 1);
	if (n > HTTP1_CHECK_PATH_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!check_path_char((unsigned char)path[i]))
			return false;
	return true;
}
