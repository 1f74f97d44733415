/* TCP relay for fault injection (see fx_proxy.h). */
#include "fx_proxy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"

#define MAX_PAIRS 64

enum cmd { CMD_NONE, CMD_CUT, CMD_REFUSE, CMD_ALLOW, CMD_FREEZE, CMD_HOLE_ON, CMD_HOLE_OFF, CMD_QUIT };

struct pair {
	int a, b; /* client side, server side; -1 when free */
	bool frozen;
	char tail[16]; /* the last bytes the client sent, for a request line split over two reads */
	size_t tail_len;
};

static const char REQ_MARK[] = " HTTP/1.1\r\n"; /* ends every HTTP/1.1 request line */

struct fx_proxy {
	int port, target;
	int lfd;
	int wake[2];
	bool blackhole;
	int accepted;
	long requests;
	struct pair pairs[MAX_PAIRS];
	char url[64];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum cmd cmd;
};

static int listen_on(int port)
{
	struct vxerr err;
	int fd = net_listen_tcp("127.0.0.1", (uint16_t)port, 64, &err);
	if (fd < 0)
		fail_msg("proxy listen: %s", err.msg);
	return fd;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static void pair_close(struct pair *p)
{
	if (p->a >= 0)
		close(p->a);
	if (p->b >= 0)
		close(p->b);
	p->a = p->b = -1;
	p->frozen = false;
}

static void on_accept(struct fx_proxy *px)
{
	int c = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	__atomic_add_fetch(&px->accepted, 1, __ATOMIC_SEQ_CST);
	int s = dial(px->target);
	for (int i = 0; s >= 0 && i < MAX_PAIRS; i++) {
		if (px->pairs[i].a < 0) {
			px->pairs[i] = (struct pair){ .a = c, .b = s, .frozen = px->blackhole };
			return;
		}
	}
	close(c);
	if (s >= 0)
		close(s);
}

/* Counts request lines in what the client sent: the mark cannot occur in a request body of
 * JSON (no raw CR/LF inside strings) or base64. */
static void count_requests(struct fx_proxy *px, struct pair *p, const char *data, size_t n)
{
	const size_t keep = sizeof(REQ_MARK) - 2;
	char scan[65536 + sizeof(p->tail)];
	memcpy(scan, p->tail, p->tail_len);
	memcpy(scan + p->tail_len, data, n);
	size_t len = p->tail_len + n;
	long found = 0;
	for (const char *at = scan; (at = memmem(at, len - (size_t)(at - scan), REQ_MARK, sizeof(REQ_MARK) - 1));
	     at += sizeof(REQ_MARK) - 1)
		found++;
	if (found)
		__atomic_add_fetch(&px->requests, found, __ATOMIC_RELAXED);
	p->tail_len = len < keep ? len : keep;
	memcpy(p->tail, scan + len - p->tail_len, p->tail_len);
}

/* Copies what is readable on `from` to `to`; false when the pair is finished. */
static bool relay(struct fx_proxy *px, struct pair *pr, bool from_client)
{
	char buf[65536];
	int from = from_client ? pr->a : pr->b, to = from_client ? pr->b : pr->a;
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return false;
	if (from_client)
		count_requests(px, pr, buf, (size_t)n);
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void apply(struct fx_proxy *px, enum cmd cmd)
{
	for (int i = 0; i < MAX_PAIRS; i++) {
		struct pair *p = &px->pairs[i];
		if (p->a < 0)
			continue;
		if (cmd == CMD_CUT || cmd == CMD_QUIT)
			pair_close(p);
		else if (cmd == CMD_FREEZE || cmd == CMD_HOLE_ON)
			p->frozen = true;
		else if (cmd == CMD_HOLE_OFF)
			p->frozen = false;
	}
	if (cmd == CMD_REFUSE && px->lfd >= 0) {
		close(px->lfd);
		px->lfd = -1;
	} else if (cmd == CMD_ALLOW && px->lfd < 0) {
		px->lfd = listen_on(px->port);
	} else if (cmd == CMD_HOLE_ON || cmd == CMD_HOLE_OFF) {
		px->blackhole = cmd == CMD_HOLE_ON;
	}
}

static bool take_cmd(struct fx_proxy *px)
{
	char c;
	while (read(px->wake[0], &c, 1) == 1)
		;
	pthread_mutex_lock(&px->mu);
	enum cmd cmd = px->cmd;
	px->cmd = CMD_NONE;
	apply(px, cmd);
	pthread_cond_broadcast(&px->cv);
	pthread_mutex_unlock(&px->mu);
	return cmd != CMD_QUIT;
}

static void *run(void *arg)
{
	struct fx_proxy *px = arg;
	for (;;) {
		struct pollfd fds[2 + 2 * MAX_PAIRS];
		int idx[2 + 2 * MAX_PAIRS];
		int n = 0;
		fds[n++] = (struct pollfd){ px->wake[0], POLLIN, 0 };
		if (px->lfd >= 0)
			fds[n++] = (struct pollfd){ px->lfd, POLLIN, 0 };
		for (int i = 0; i < MAX_PAIRS; i++) {
			if (px->pairs[i].a < 0 || px->pairs[i].frozen)
				continue;
			idx[n] = i;
			fds[n++] = (struct pollfd){ px->pairs[i].a, POLLIN, 0 };
			idx[n] = i;
			fds[n++] = (struct pollfd){ px->pairs[i].b, POLLIN, 0 };
		}
		if (poll(fds, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		if (fds[0].revents && !take_cmd(px))
			break;
		for (int k = 1; k < n; k++) {
			if (!fds[k].revents)
				continue;
			if (fds[k].fd == px->lfd) {
				on_accept(px);
				continue;
			}
			struct pair *p = &px->pairs[idx[k]];
			if (p->a < 0 || p->frozen)
				continue;
			bool from_a = fds[k].fd == p->a;
			if (!relay(px, p, from_a))
				pair_close(p);
		}
	}
	return NULL;
}

static void command(struct fx_proxy *px, enum cmd cmd)
{
	pthread_mutex_lock(&px->mu);
	px->cmd = cmd;
	if (write(px->wake[1], "x", 1) != 1)
		fail_msg("proxy wake: %s", strerror(errno));
	while (px->cmd != CMD_NONE)
		pthread_cond_wait(&px->cv, &px->mu);
	pthread_mutex_unlock(&px->mu);
}

struct fx_proxy *fx_proxy_start(int target_port)
{
	struct fx_proxy *px = xcalloc(1, sizeof(*px));
	px->target = target_port;
	px->port = net_free_port();
	px->lfd = listen_on(px->port);
	for (int i = 0; i < MAX_PAIRS; i++)
		px->pairs[i].a = px->pairs[i].b = -1;
	if (pipe2(px->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		fail_msg("proxy pipe: %s", strerror(errno));
	snprintf(px->url, sizeof(px->url), "http://127.0.0.1:%d", px->port);
	pthread_mutex_init(&px->mu, NULL);
	pthread_cond_init(&px->cv, NULL);
	if (pthread_create(&px->thread, NULL, run, px) != 0)
		fail_msg("proxy thread");
	return px;
}

const char *fx_proxy_url(const struct fx_proxy *p)
{
	return p->url;
}

void fx_proxy_cut(struct fx_proxy *p)
{
	command(p, CMD_CUT);
}

void fx_proxy_refuse(struct fx_proxy *p, bool refuse)
{
	command(p, refuse ? CMD_REFUSE : CMD_ALLOW);
}

void fx_proxy_freeze_existing(struct fx_proxy *p)
{
	command(p, CMD_FREEZE);
}

void fx_proxy_blackhole(struct fx_proxy *p, bool on)
{
	command(p, on ? CMD_HOLE_ON : CMD_HOLE_OFF);
}

int fx_proxy_accepted(struct fx_proxy *p)
{
	return __atomic_load_n(&p->accepted, __ATOMIC_SEQ_CST);
}

long fx_proxy_requests(struct fx_proxy *p)
{
	return __atomic_load_n(&p->requests, __ATOMIC_RELAXED);
}

void fx_proxy_free(struct fx_proxy *p)
{
	if (!p)
		return;
	command(p, CMD_QUIT);
	pthread_join(p->thread, NULL);
	if (p->lfd >= 0)
		close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
