/* The target URL and the request, rendered once per run (pure). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/http1.h"
#include "common/net.h"
#include "common/parse.h"
#include "load/load_int.h"

static int set_addr(struct load_target *t, const char *host, uint16_t port)
{
	memset(&t->addr, 0, sizeof(t->addr));
	const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		t->addrlen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		t->addrlen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static bool path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
			return false;
	return true;
}

/* host and port of the authority a[0..n): "h", "h:p", "[v6]" or "[v6]:p". */
static int split_authority(const char *a, size_t n, char *host, size_t cap, uint16_t *port)
{
	const char *portp = NULL;
	size_t hs = 0, hl;
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (!close)
			return -1;
		hs = 1;
		hl = (size_t)(close - a) - 1;
		if ((size_t)(close - a) + 1 < n) {
			if (close[1] != ':')
				return -1;
			portp = close + 2;
		}
	} else {
		const char *colon = memchr(a, ':', n);
		hl = colon ? (size_t)(colon - a) : n;
		portp = colon ? colon + 1 : NULL;
	}
	if (hl == 0 || hl >= cap)
		return -1;
	memcpy(host, a + hs, hl);
	host[hl] = '\0';
	int64_t p = 80;
	if (portp && parse_i64_n(portp, n - (size_t)(portp - a), 1, 65535, &p) != 0)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

int load_url_parse(const char *url, struct load_target *out, struct vxerr *err)
{
	if (strlen(url) >= LOAD_URL_MAX)
		return vxerr_set(err, "url is longer than %d bytes", LOAD_URL_MAX - 1);
	if (strncasecmp(url, "http://", 7) != 0)
		return vxerr_set(err, "'%s': only http:// URLs are supported", url);
	const char *a = url + 7, *slash = strchr(a, '/');
	size_t alen = slash ? (size_t)(slash - a) : strlen(a);
	struct load_target t;
	char host[NET_IP_MAX + 16];
	uint16_t port;
	if (alen >= sizeof(t.authority) || split_authority(a, alen, host, sizeof(host), &port) != 0)
		return vxerr_set(err, "'%s': write http://HOST[:PORT]/PATH with HOST an IP address, [IPv6] or localhost", url);
	if (set_addr(&t, host, port) != 0)
		return vxerr_set(err, "'%s': host '%s' is not an IP address or localhost (names are not resolved)", url, host);
	memcpy(t.authority, a, alen);
	t.authority[alen] = '\0';
	strcpy(t.path, slash ? slash : "/");
	if (!path_ok(t.path))
		return vxerr_set(err, "'%s': the path has spaces, control characters or a fragment", url);
	*out = t;
	return 0;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "Name: value": a token, a colon, and a value without control characters. */
static int check_header(const char *h, size_t *name_len, struct vxerr *err)
{
	size_t i = 0;
	while (is_tchar(h[i]))
		i++;
	if (i == 0 || h[i] != ':')
		return vxerr_set(err, "header '%s' is not 'Name: value'", h);
	for (const char *v = h + i + 1; *v; v++)
		if ((unsigned char)*v < 0x20 && *v != '\t')
			return vxerr_set(err, "header '%.*s' has a control character in its value", (int)i, h);
	if (http1_token_eq(h, i, "content-length") || http1_token_eq(h, i, "transfer-encoding"))
		return vxerr_set(err, "header '%.*s' is set by the generator from --body", (int)i, h);
	*name_len = i;
	return 0;
}

static bool has_header(const struct load_spec *s, const char *name)
{
	for (size_t i = 0; i < s->nheaders; i++) {
		const char *colon = strchr(s->headers[i], ':');
		if (colon && http1_token_eq(s->headers[i], (size_t)(colon - s->headers[i]), name))
			return true;
	}
	return false;
}

static int render_head(const struct load_spec *s, const struct load_target *t, const char *method, struct buf *b,
		       struct vxerr *err)
{
	buf_printf(b, "%s %s HTTP/1.1\r\n", method, t->path);
	if (!has_header(s, "host"))
		buf_printf(b, "Host: %s\r\n", t->authority);
	if (!has_header(s, "user-agent"))
		buf_puts(b, "User-Agent: veltrix-load\r\n");
	for (size_t i = 0; i < s->nheaders; i++) {
		size_t nl;
		if (check_header(s->headers[i], &nl, err) != 0)
			return -1;
		buf_printf(b, "%s\r\n", s->headers[i]);
	}
	bool wants_length = s->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
			    strcmp(method, "PATCH") == 0;
	if (wants_length)
		buf_printf(b, "Content-Length: %zu\r\n", s->body_len);
	return buf_puts(b, "\r\n");
}

int load_request_render(const struct load_spec *s, const struct load_target *t, char **out, size_t *len,
			struct vxerr *err)
{
	const char *method = s->method ? s->method : "GET";
	size_t ml = strlen(method);
	for (size_t i = 0; i < ml; i++)
		if (!is_tchar(method[i]))
			return vxerr_set(err, "method '%s' is not an HTTP token", method);
	if (ml == 0 || ml > 32)
		return vxerr_set(err, "method '%s' is empty or too long", method);
	struct buf b = BUF_INIT(LOAD_REQ_MAX);
	if (render_head(s, t, method, &b, err) != 0) {
		buf_release(&b);
		return -1;
	}
	if (buf_append(&b, s->body, s->body_len) != 0) {
		buf_release(&b);
		return vxerr_set(err, "request is larger than %u bytes", LOAD_REQ_MAX);
	}
	*out = buf_detach(&b, len);
	return 0;
}
