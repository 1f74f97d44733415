/* Scripted fake HTTP server (see fx_fake.h). */
#include "fx_fake.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/parse.h"

#define MAX_REQ 64
#define MAX_HELD 16

struct fx_fake {
	int lfd;
	int wake[2];
	char **script;
	size_t n;
	char url[64];
	pthread_t thread;
	int served;
	char *bodies[MAX_REQ];
	int held[MAX_HELD];
};

/* Reads one request (head + Content-Length body) within 5 s; returns the body or NULL. */
static char *read_request(int fd)
{
	struct buf b = BUF_INIT(1 << 20);
	char chunk[4096];
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n <= 0 || buf_append(&b, chunk, (size_t)n) != 0)
			break;
		char *end = strstr(b.data, "\r\n\r\n");
		if (!end)
			continue;
		int64_t len = 0;
		char *cl = strcasestr(b.data, "\r\nContent-Length:");
		if (cl && cl < end) {
			char *v = cl + 17, *e = v;
			while (*v == ' ')
				v++;
			for (e = v; *e >= '0' && *e <= '9'; e++)
				;
			parse_i64_n(v, (size_t)(e - v), 0, 1 << 20, &len);
		}
		size_t head = (size_t)(end + 4 - b.data);
		if (b.len - head >= (size_t)len) {
			char *body = xstrndup(end + 4, (size_t)len);
			buf_release(&b);
			return body;
		}
	}
	buf_release(&b);
	return NULL;
}

static void serve(struct fx_fake *f, int fd)
{
	char *body = read_request(fd);
	int i = __atomic_load_n(&f->served, __ATOMIC_SEQ_CST);
	if (i < MAX_REQ)
		f->bodies[i] = body ? body : xstrdup("");
	else
		free(body);
	const char *resp = f->script[(size_t)i < f->n ? (size_t)i : f->n - 1];
	size_t len = strlen(resp);
	bool hold = len >= strlen(FX_HOLD) && strcmp(resp + len - strlen(FX_HOLD), FX_HOLD) == 0;
	if (hold)
		len -= strlen(FX_HOLD);
	/* counted (and the body published) before the answer goes out: a client that has its
	 * answer must find the request counted */
	__atomic_add_fetch(&f->served, 1, __ATOMIC_SEQ_CST);
	net_write_all(fd, resp, len);
	for (int k = 0; hold && k < MAX_HELD; k++) {
		if (f->held[k] < 0) {
			f->held[k] = fd;
			return;
		}
	}
	close(fd);
}

static void *run(void *arg)
{
	struct fx_fake *f = arg;
	for (;;) {
		struct pollfd p[2] = { { f->wake[0], POLLIN, 0 }, { f->lfd, POLLIN, 0 } };
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents) {
			int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve(f, fd);
		}
	}
	return NULL;
}

struct fx_fake *fx_fake_start(const char *const *script, size_t n)
{
	struct fx_fake *f = xcalloc(1, sizeof(*f));
	struct vxerr err;
	int port = net_free_port();
	f->lfd = net_listen_tcp("127.0.0.1", (uint16_t)port, 16, &err);
	if (f->lfd < 0)
		fail_msg("fake listen: %s", err.msg);
	/* the listener is nonblocking; the served sockets are handled blocking, one at a time */
	if (pipe2(f->wake, O_CLOEXEC) != 0)
		fail_msg("fake pipe: %s", strerror(errno));
	f->script = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		f->script[i] = xstrdup(script[i]);
	f->n = n;
	for (int k = 0; k < MAX_HELD; k++)
		f->held[k] = -1;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", port);
	if (pthread_create(&f->thread, NULL, run, f) != 0)
		fail_msg("fake thread");
	return f;
}

const char *fx_fake_url(const struct fx_fake *f)
{
	return f->url;
}

int fx_fake_requests(struct fx_fake *f)
{
	return __atomic_load_n(&f->served, __ATOMIC_SEQ_CST);
}

const char *fx_fake_request_body(struct fx_fake *f, int i)
{
	return i >= 0 && i < MAX_REQ && i < fx_fake_requests(f) ? f->bodies[i] : NULL;
}

void fx_fake_free(struct fx_fake *f)
{
	if (!f)
		return;
	if (write(f->wake[1], "x", 1) != 1)
		fail_msg("fake wake: %s", strerror(errno));
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->wake[0]);
	close(f->wake[1]);
	for (int k = 0; k < MAX_HELD; k++)
		if (f->held[k] >= 0)
			close(f->held[k]);
	for (int i = 0; i < MAX_REQ; i++)
		free(f->bodies[i]);
	for (size_t i = 0; i < f->n; i++)
		free(f->script[i]);
	free(f->script);
	free(f);
}
