/* Incremental, bounded HTTP/1.1 message parsers: responses (for clients such as the load
 * generator and the agent's HTTP check) and requests (for small servers such as the test
 * backend and the controller's /metrics endpoint).
 *
 * The parsers never allocate and never copy: the caller owns the bytes. It feeds everything it
 * holds that was not consumed yet, drops the `*used` bytes the parser consumed, keeps the rest
 * at the front of its buffer, appends what it reads next and feeds again:
 *
 *     for (;;) {
 *         ev = http1_resp_feed(&r, p, n, &used, &body);
 *         p += used; n -= used;
 *         if (ev == HTTP1_AGAIN) break;          // keep p[0..n), read more
 *         ...HTTP1_HEAD / HTTP1_BODY / HTTP1_DONE / HTTP1_ERROR
 *     }
 *
 * Pointers handed out (method, target, reason, headers, body spans) point into the fed bytes
 * and stay valid until the caller changes those bytes. Every part has a limit: the head (start
 * line plus headers, and the trailers), the number of headers, one chunk-size line and the
 * decoded body. Hostile input ends in HTTP1_ERROR with a reason and an HTTP status to answer
 * with (400, 413, 431, 501), never in unbounded memory or reads past n.
 *
 * Framing rules (RFC 9112): Transfer-Encoding must be exactly "chunked" (anything else is 501),
 * Content-Length must be one decimal number (repeated equal values are accepted), a message
 * with both is refused (request smuggling), obsolete line folding is refused. Responses to HEAD
 * and 1xx/204/304 have no body; a response without length runs to EOF and is not keep-alive.
 * Interim 1xx responses (except 101) are skipped. A request without length has no body. */
#ifndef VX_COMMON_HTTP1_H
#define VX_COMMON_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEADERS 128

struct http1_limits {
	size_t max_head;       /* start line + header lines + the blank line; also the trailers */
	size_t max_headers;    /* header lines (at most HTTP1_MAX_HEADERS) */
	size_t max_chunk_line; /* one chunk-size line with its extensions */
	uint64_t max_body;     /* decoded body bytes */
};

/* 16 KiB head, 100 headers, 1 KiB chunk line, 64 MiB body. */
extern const struct http1_limits http1_default_limits;

struct http1_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing blanks removed */
	size_t value_len;
};

enum http1_ev {
	HTTP1_AGAIN, /* more bytes are needed */
	HTTP1_HEAD,  /* start line and headers are parsed */
	HTTP1_BODY,  /* body bytes are in *body */
	HTTP1_DONE,  /* the message is complete; the parser is ready for the next one */
	HTTP1_ERROR, /* malformed or over a limit: see error / error_status; close the connection */
};

struct http1_span {
	const char *p;
	size_t len;
};

/* What requests and responses share. Fields above the line are results, valid after
 * HTTP1_HEAD until the next message starts; the rest is the parser's state. */
struct http1_msg {
	int minor;              /* HTTP/1.<minor> */
	bool keep_alive;        /* the connection may carry another message after this one */
	bool chunked;
	int64_t content_length; /* -1 when absent */
	size_t nheaders;        /* headers seen (stored only when a header array was given) */
	uint64_t body_len;      /* decoded body bytes so far */
	const char *error;      /* after HTTP1_ERROR: a static lowercase reason */
	int error_status;       /* after HTTP1_ERROR: the status a server would answer with */
	/* ---- parser state ---- */
	struct http1_limits lim;
	struct http1_header *headers;
	size_t header_cap;
	int state;
	int body_mode;
	uint64_t remaining;
	size_t scanned;
};

struct http1_resp {
	struct http1_msg m;
	int status;
	const char *reason;
	size_t reason_len;
	bool head_request; /* set before the response to a HEAD request: it has no body */
};

struct http1_req {
	struct http1_msg m;
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
};

/* headers[cap] (may be NULL with cap 0) receives the header fields of each message; the
 * parser still validates and counts them when it is not given any. lim NULL: the defaults. */
void http1_resp_init(struct http1_resp *r, const struct http1_limits *lim, struct http1_header *headers,
		     size_t cap);
enum http1_ev http1_resp_feed(struct http1_resp *r, const char *p, size_t n, size_t *used, struct http1_span *body);
/* The peer closed the connection: HTTP1_DONE when the body ran to EOF, HTTP1_AGAIN when no
 * response had started, HTTP1_ERROR ("truncated") otherwise. */
enum http1_ev http1_resp_eof(struct http1_resp *r);
/* True between the first byte of a response and its HTTP1_DONE. */
bool http1_resp_started(const struct http1_resp *r);

void http1_req_init(struct http1_req *r, const struct http1_limits *lim, struct http1_header *headers, size_t cap);
enum http1_ev http1_req_feed(struct http1_req *r, const char *p, size_t n, size_t *used, struct http1_span *body);

/* The value of the first header named name (case-insensitive) among the stored headers, or
 * NULL; *len receives its length. */
const char *http1_header_get(const struct http1_msg *m, const char *name, size_t *len);
/* Case-insensitive comparison of p[0..n) with a NUL-terminated lowercase word. */
bool http1_token_eq(const char *p, size_t n, const char *word);

#define HTTP1_CHECK_PATH_MAX 256
/* The one rule for a health check's request path (`veltrix check`, the agent and the
 * haproxy.cfg renderer all use it): absolute, at most HTTP1_CHECK_PATH_MAX bytes of visible
 * ASCII with none of '#', '"', '\'', '\\', ';' that a config line or the CLI would read as
 * something else. Spaces are written %20. */
bool http1_check_path_valid(const char *path);

#endif
