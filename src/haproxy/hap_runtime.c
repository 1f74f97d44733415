/* The Runtime API client: one unix-socket connection in prompt mode, pipelined batches.
 *
 * Why prompt mode: without it HAProxy runs what arrives in its first read and closes the
 * connection (FACTS 3.8), so a batch would depend on read boundaries. In prompt mode every
 * reply ends with "> " at the start of a line, and the connection stays open for the next
 * batch. Commands are written while replies are read (poll on both directions), so a large
 * batch can never deadlock on full socket buffers. Every wait is bounded by timeout_us of no
 * progress; every reply by max_reply bytes.
 *
 * Why each batch starts with `show info`: after a reload the old worker keeps serving the CLI
 * connections it already has (a soft-stopping worker waits for its sessions, and every command
 * restarts the CLI idle timer), so a long-lived connection would keep talking to a process that
 * is going away, and every change sent there would be lost. The old worker reports
 * "Stopping: 1"; the client then reconnects, and a new connection reaches the new worker
 * (verified on 2.6.12). The probe is pipelined in the same write as the batch, so it costs
 * about 1 KiB of reply per batch but no extra round trip. */
#include "haproxy/hap.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "haproxy/hap_int.h"

#define DEFAULT_TIMEOUT_US (5 * INT64_C(1000000))
#define DEFAULT_MAX_REPLY (16u << 20)
#define CONNECT_RETRY_US (20 * INT64_C(1000))
#define READ_CHUNK 16384
#define INTERNAL_REPLY_MAX (64u << 10) /* prompt and show info, whatever max_reply says */
/* rt->in holds at most one unfinished reply plus the chunk just read */
#define IN_SLACK (READ_CHUNK + 2)

struct hap_rt {
	char *path;
	int fd; /* -1 while closed */
	int64_t pid; /* the worker answering on fd, from its `show info` */
	int64_t timeout_us;
	size_t max_reply;
	unsigned connections;
	struct buf in;   /* received, not yet consumed */
	size_t scan_from; /* in holds no prompt before this: a large reply is scanned once, not per read */
};

/* Outcome of one exchange on one connection. */
enum xfer { XFER_OK, XFER_FAIL, XFER_LOST_EARLY };

static enum xfer rt_ready(struct hap_rt *rt, struct vxerr *err);

size_t hap_prompt_split_from(const char *p, size_t len, size_t from, size_t *reply_len)
{
	for (size_t i = from; i + 1 < len; i++) {
		const char *gt = memchr(p + i, '>', len - 1 - i);
		if (!gt)
			break;
		i = (size_t)(gt - p);
		if (p[i + 1] == ' ' && (i == 0 || p[i - 1] == '\n')) {
			*reply_len = i;
			return i + 2;
		}
	}
	return 0;
}

size_t hap_prompt_split(const char *p, size_t len, size_t *reply_len)
{
	return hap_prompt_split_from(p, len, 0, reply_len);
}

static bool connect_retryable(int e)
{
	/* refused or missing: HAProxy is (re)starting; EAGAIN: the listen backlog is full */
	return e == ECONNREFUSED || e == ENOENT || e == EAGAIN;
}

static int connect_once(const char *path, int *out_errno)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*out_errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*out_errno = errno;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		*out_errno = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/* A nonblocking connected socket, retrying while HAProxy is not there yet. */
static int connect_until(const char *path, int64_t deadline_us, struct vxerr *err)
{
	for (;;) {
		int e = 0;
		int fd = connect_once(path, &e);
		if (fd >= 0)
			return fd;
		if (!connect_retryable(e) || time_mono_us() >= deadline_us)
			return vxerr_set(err, "haproxy socket %s: %s", path, strerror(e));
		time_sleep_us(CONNECT_RETRY_US);
	}
}

/* Waits for fd to be ready for events; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t timeout_us, short *revents)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t deadline = time_mono_us() + timeout_us;
	for (;;) {
		int64_t left = deadline - time_mono_us();
		if (left < 0)
			left = 0;
		int r = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (r > 0) {
			*revents = pfd.revents;
			return 1;
		}
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Reads what is available into rt->in. 1 read, 0 EOF, -1 error (errno kept). */
static int read_some(struct hap_rt *rt)
{
	char chunk[READ_CHUNK];
	ssize_t r;
	do
		r = read(rt->fd, chunk, sizeof(chunk));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 1 : -1;
	if (r == 0)
		return 0;
	if (buf_append(&rt->in, chunk, (size_t)r) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	return 1;
}

static void drop_connection(struct hap_rt *rt)
{
	if (rt->fd >= 0)
		close(rt->fd);
	rt->fd = -1;
	buf_reset(&rt->in);
	rt->scan_from = 0;
}

/* Takes one complete reply off rt->in into *r; false while incomplete. */
static bool take_reply(struct hap_rt *rt, struct hap_reply *r)
{
	size_t n = 0, used = hap_prompt_split_from(rt->in.data ? rt->in.data : "", rt->in.len, rt->scan_from, &n);
	if (used == 0) {
		rt->scan_from = rt->in.len > 0 ? rt->in.len - 1 : 0;
		return false;
	}
	rt->scan_from = 0;
	r->text = xstrndup(rt->in.data, n);
	r->len = n;
	buf_consume(&rt->in, used);
	return true;
}

/* The wire side of an exchange: bytes left to write, replies still expected. */
struct xchg {
	const char *out;
	size_t out_len, out_done;
	struct hap_reply *replies;
	size_t n, got;
	size_t max;    /* per reply */
	size_t probes; /* leading replies the client asked for itself: bounded apart, not counted */
	bool any_byte;
};

/* The bound of the reply being read: the client's own probes have theirs. */
static size_t xchg_limit(const struct xchg *x)
{
	return x->got < x->probes ? INTERNAL_REPLY_MAX : x->max;
}

/* Replies received and expected, as the caller counts them (without the probes). */
static void xchg_counts(const struct xchg *x, size_t *got, size_t *n)
{
	*got = x->got > x->probes ? x->got - x->probes : 0;
	*n = x->n - x->probes;
}

static int xchg_write(struct hap_rt *rt, struct xchg *x)
{
	ssize_t w = send(rt->fd, x->out + x->out_done, x->out_len - x->out_done, MSG_NOSIGNAL);
	if (w < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	x->out_done += (size_t)w;
	return 0;
}

static enum xfer xchg_fail(struct hap_rt *rt, struct xchg *x, int e, struct vxerr *err)
{
	bool early = !x->any_byte && (e == EPIPE || e == ECONNRESET || e == 0);
	size_t got, n;
	xchg_counts(x, &got, &n);
	if (e == 0)
		vxerr_set(err, "haproxy socket %s: connection closed after %zu of %zu replies", rt->path, got, n);
	else
		vxerr_set(err, "haproxy socket %s: %s after %zu of %zu replies", rt->path, strerror(e), got, n);
	drop_connection(rt);
	return early ? XFER_LOST_EARLY : XFER_FAIL;
}

static enum xfer xchg_read_too_large(struct hap_rt *rt, size_t max, struct vxerr *err)
{
	vxerr_set(err, "haproxy socket %s: a reply larger than %zu bytes", rt->path, max);
	drop_connection(rt);
	return XFER_FAIL;
}

static enum xfer xchg_read(struct hap_rt *rt, struct xchg *x, struct vxerr *err)
{
	size_t before = rt->in.len;
	int r = read_some(rt);
	if (r < 0 && errno == EMSGSIZE)
		return xchg_read_too_large(rt, xchg_limit(x), err);
	if (r <= 0)
		return xchg_fail(rt, x, r == 0 ? 0 : errno, err);
	x->any_byte = x->any_byte || rt->in.len > before;
	while (x->got < x->n) {
		size_t lim = xchg_limit(x);
		if (!take_reply(rt, &x->replies[x->got]))
			break;
		if (x->replies[x->got++].len > lim)
			return xchg_read_too_large(rt, lim, err);
	}
	if (rt->in.len > xchg_limit(x) + 2) {
		errno = EMSGSIZE;
		return xchg_read_too_large(rt, xchg_limit(x), err);
	}
	return XFER_OK;
}

/* Writes x->out and reads x->n replies on the current connection. */
static enum xfer exchange(struct hap_rt *rt, struct xchg *x, struct vxerr *err)
{
	while (x->got < x->n) {
		bool writing = x->out_done < x->out_len;
		short rev = 0;
		int w = wait_fd(rt->fd, (short)(POLLIN | (writing ? POLLOUT : 0)), rt->timeout_us, &rev);
		if (w <= 0) {
			size_t got, n;
			xchg_counts(x, &got, &n);
			vxerr_set(err, "haproxy socket %s: no answer within %lld ms (%zu of %zu replies)", rt->path,
				  (long long)(rt->timeout_us / 1000), got, n);
			drop_connection(rt);
			return XFER_FAIL;
		}
		if ((rev & POLLOUT) && xchg_write(rt, x) != 0)
			return xchg_fail(rt, x, errno, err);
		if (rev & (POLLIN | POLLHUP | POLLERR)) {
			enum xfer r = xchg_read(rt, x, err);
			if (r != XFER_OK)
				return r;
		}
	}
	if (rt->in.len > 0) {
		vxerr_set(err, "haproxy socket %s: %zu unexpected bytes after the last reply", rt->path, rt->in.len);
		drop_connection(rt);
		return XFER_FAIL;
	}
	return XFER_OK;
}

/* Opens a connection and enters prompt mode (its own reply is an empty line). */
static int rt_connect(struct hap_rt *rt, struct vxerr *err)
{
	drop_connection(rt);
	rt->fd = connect_until(rt->path, time_mono_us() + rt->timeout_us, err);
	if (rt->fd < 0)
		return -1;
	rt->connections++;
	struct hap_reply r = { NULL, 0 };
	struct xchg x = { .out = "prompt\n", .out_len = 7, .replies = &r, .n = 1, .max = INTERNAL_REPLY_MAX };
	enum xfer res = exchange(rt, &x, err);
	free(r.text);
	return res == XFER_OK ? 0 : -1;
}

/* An idle connection that HAProxy closed (stats timeout, reload) reads as EOF right away. */
static bool connection_stale(const struct hap_rt *rt)
{
	struct pollfd pfd = { .fd = rt->fd, .events = POLLIN | POLLRDHUP };
	return poll(&pfd, 1, 0) != 0;
}

struct hap_rt *hap_rt_open(const char *path, const struct hap_rt_opts *opts, struct vxerr *err)
{
	struct hap_rt *rt = xcalloc(1, sizeof(*rt));
	rt->path = xstrdup(path);
	rt->fd = -1;
	rt->timeout_us = opts && opts->timeout_us > 0 ? opts->timeout_us : DEFAULT_TIMEOUT_US;
	rt->max_reply = opts && opts->max_reply > 0 ? opts->max_reply : DEFAULT_MAX_REPLY;
	buf_init(&rt->in, (rt->max_reply > INTERNAL_REPLY_MAX ? rt->max_reply : INTERNAL_REPLY_MAX) + IN_SLACK);
	if (rt_ready(rt, err) != XFER_OK) {
		hap_rt_close(rt);
		return NULL;
	}
	return rt;
}

void hap_rt_set_timeout(struct hap_rt *rt, int64_t timeout_us)
{
	rt->timeout_us = timeout_us > 0 ? timeout_us : DEFAULT_TIMEOUT_US;
}

void hap_rt_close(struct hap_rt *rt)
{
	if (!rt)
		return;
	if (rt->fd >= 0)
		(void)!send(rt->fd, "quit\n", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
	drop_connection(rt);
	buf_release(&rt->in);
	free(rt->path);
	free(rt);
}

unsigned hap_rt_connections(const struct hap_rt *rt)
{
	return rt->connections;
}

int64_t hap_rt_pid(const struct hap_rt *rt)
{
	return rt->pid;
}

void hap_replies_release(struct hap_reply *replies, size_t n)
{
	for (size_t i = 0; replies && i < n; i++) {
		free(replies[i].text);
		replies[i].text = NULL;
		replies[i].len = 0;
	}
}

static int batch_text(const struct hap_cmd *cmds, size_t n, struct buf *out, struct vxerr *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!hap_cmd_text_safe(cmds[i].text))
			return vxerr_set(err, "haproxy command %zu refused: empty, too long or unsafe characters", i + 1);
		if (buf_puts(out, cmds[i].text) != 0 || buf_putc(out, '\n') != 0)
			return vxerr_set(err, "haproxy batch of %zu commands too large", n);
	}
	return 0;
}

/* Asks the process behind the connection who it is; *stopping when it is an old worker. */
static enum xfer rt_probe(struct hap_rt *rt, bool *stopping, struct vxerr *err)
{
	struct hap_reply r = { NULL, 0 };
	struct hap_info info;
	struct xchg x = { .out = "show info\n", .out_len = 10, .replies = &r, .n = 1, .max = INTERNAL_REPLY_MAX };
	enum xfer res = exchange(rt, &x, err);
	if (res == XFER_OK && hap_parse_info(r.text, r.len, &info, err) != 0) {
		vxerr_prefix(err, "haproxy socket %s: ", rt->path);
		drop_connection(rt);
		res = XFER_FAIL;
	}
	free(r.text);
	if (res == XFER_OK) {
		rt->pid = info.pid;
		*stopping = info.stopping == 1;
	}
	return res;
}

/* A connection to a live, current worker: reopened when HAProxy closed it (idle timeout,
 * restart) or when the worker behind it is soft-stopping after a reload. */
static enum xfer rt_ready(struct hap_rt *rt, struct vxerr *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		if ((rt->fd < 0 || connection_stale(rt)) && rt_connect(rt, err) != 0)
			return XFER_FAIL;
		bool stopping = false;
		enum xfer r = rt_probe(rt, &stopping, err);
		if (r == XFER_FAIL)
			return r;
		if (r == XFER_OK && !stopping)
			return XFER_OK;
		drop_connection(rt); /* lost early, or an old worker: a new connection */
	}
	vxerr_set(err, "haproxy socket %s: no current worker answers", rt->path);
	return XFER_FAIL;
}

/* Reads the probe reply that led the batch; *stopping when an old worker answered. */
static int probe_reply(struct hap_rt *rt, const struct hap_reply *r, bool *stopping, struct vxerr *err)
{
	struct hap_info info;
	if (hap_parse_info(r->text, r->len, &info, err) != 0)
		return vxerr_prefix(err, "haproxy socket %s: ", rt->path);
	rt->pid = info.pid;
	*stopping = info.stopping == 1;
	return 0;
}

/* The probe rides in the same write as the batch, so it costs no round trip. When an old
 * worker answered, what the batch did there dies with that worker: reconnect (a new connection
 * reaches the new worker) and send it all again. */
static enum xfer batch_attempt(struct hap_rt *rt, const struct buf *text, struct hap_reply *replies, size_t n,
			       struct vxerr *err)
{
	struct hap_reply *all = xcalloc(n + 1, sizeof(*all));
	enum xfer r = XFER_FAIL;
	vxerr_set(err, "haproxy socket %s: no current worker answers", rt->path);
	for (int attempt = 0; attempt < 3; attempt++) {
		if ((rt->fd < 0 || connection_stale(rt)) && rt_connect(rt, err) != 0)
			break;
		struct xchg x = { .out = text->data, .out_len = text->len, .replies = all, .n = n + 1,
				  .max = rt->max_reply, .probes = 1 };
		bool stopping = false;
		r = exchange(rt, &x, err);
		if (r == XFER_OK && probe_reply(rt, &all[0], &stopping, err) != 0)
			r = XFER_FAIL;
		if (r != XFER_OK || !stopping)
			break;
		hap_replies_release(all, n + 1);
		drop_connection(rt);
		r = XFER_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		replies[i] = all[i + 1];
	free(all[0].text);
	free(all);
	return r;
}

int hap_rt_batch(struct hap_rt *rt, const struct hap_cmd *cmds, size_t n, struct hap_reply *replies,
		 struct vxerr *err)
{
	for (size_t i = 0; i < n; i++)
		replies[i] = (struct hap_reply){ NULL, 0 };
	if (n == 0)
		return 0;
	struct buf text = BUF_INIT((n + 1) * (HAP_CMD_MAX + 1));
	int rc = -1;
	if (buf_puts(&text, "show info\n") != 0 || batch_text(cmds, n, &text, err) != 0)
		goto out;
	enum xfer r = batch_attempt(rt, &text, replies, n, err);
	if (r == XFER_LOST_EARLY) /* closed before answering anything: nothing ran; once more */
		r = batch_attempt(rt, &text, replies, n, err);
	rc = r == XFER_OK ? 0 : -1;
out:
	buf_release(&text);
	return rc;
}

int hap_rt_exec(struct hap_rt *rt, const struct hap_cmd *cmd, struct hap_reply *reply, struct vxerr *err)
{
	struct hap_reply r;
	if (hap_rt_batch(rt, cmd, 1, &r, err) != 0) {
		hap_replies_release(&r, 1);
		return -1;
	}
	*reply = r;
	return 0;
}

/* ---- the master CLI: one command per connection ---- */

static int read_to_eof(int fd, const char *path, int64_t timeout_us, struct buf *out, struct vxerr *err)
{
	char chunk[8192];
	for (;;) {
		short rev = 0;
		if (wait_fd(fd, POLLIN, timeout_us, &rev) <= 0)
			return vxerr_set(err, "haproxy master socket %s: no answer within %lld ms", path,
					 (long long)(timeout_us / 1000));
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return vxerr_set(err, "haproxy master socket %s: %s", path, strerror(errno));
		if (r == 0)
			return 0;
		if (buf_append(out, chunk, (size_t)r) != 0)
			return vxerr_set(err, "haproxy master socket %s: reply larger than %zu bytes", path, out->max);
	}
}

static int write_all_nb(int fd, const char *p, size_t n, int64_t timeout_us)
{
	while (n) {
		short rev = 0;
		if (wait_fd(fd, POLLOUT, timeout_us, &rev) <= 0)
			return -1;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int hap_master_cmd(const char *path, const char *cmd, int64_t timeout_us, struct buf *out, struct vxerr *err)
{
	if (!hap_cmd_text_safe(cmd))
		return vxerr_set(err, "haproxy master command refused: empty, too long or unsafe characters");
	if (timeout_us <= 0)
		timeout_us = DEFAULT_TIMEOUT_US;
	int fd = connect_until(path, time_mono_us() + timeout_us, err);
	if (fd < 0)
		return -1;
	char line[HAP_CMD_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	int rc = -1;
	if (write_all_nb(fd, line, (size_t)n, timeout_us) != 0) {
		vxerr_set(err, "haproxy master socket %s: cannot send '%s': %s", path, cmd, strerror(errno));
		goto out;
	}
	/* The master CLI answers once it sees the end of the input, as with `socat` */
	shutdown(fd, SHUT_WR);
	rc = read_to_eof(fd, path, timeout_us, out, err);
out:
	close(fd);
	return rc;
}
