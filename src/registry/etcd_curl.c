/* https:// endpoints: libcurl, loaded with dlopen on first use (see etcd_curl.h), driven by
 * its multi-socket interface on the client's libev loop. Curl's write callback only buffers;
 * owners get their bytes after curl_multi_socket_action() returns. */
#include "registry/etcd_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"

/* ---------------------------------------------------------------- the loader */

static const struct {
	const char *name;
	size_t off;
} curl_syms[] = {
	{ "curl_global_init", offsetof(struct etcd_curl_api, global_init) },
	{ "curl_global_cleanup", offsetof(struct etcd_curl_api, global_cleanup) },
	{ "curl_easy_init", offsetof(struct etcd_curl_api, easy_init) },
	{ "curl_easy_cleanup", offsetof(struct etcd_curl_api, easy_cleanup) },
	{ "curl_easy_setopt", offsetof(struct etcd_curl_api, easy_setopt) },
	{ "curl_easy_getinfo", offsetof(struct etcd_curl_api, easy_getinfo) },
	{ "curl_easy_strerror", offsetof(struct etcd_curl_api, easy_strerror) },
	{ "curl_slist_append", offsetof(struct etcd_curl_api, slist_append) },
	{ "curl_slist_free_all", offsetof(struct etcd_curl_api, slist_free_all) },
	{ "curl_multi_init", offsetof(struct etcd_curl_api, multi_init) },
	{ "curl_multi_cleanup", offsetof(struct etcd_curl_api, multi_cleanup) },
	{ "curl_multi_setopt", offsetof(struct etcd_curl_api, multi_setopt) },
	{ "curl_multi_add_handle", offsetof(struct etcd_curl_api, multi_add_handle) },
	{ "curl_multi_remove_handle", offsetof(struct etcd_curl_api, multi_remove_handle) },
	{ "curl_multi_socket_action", offsetof(struct etcd_curl_api, multi_socket_action) },
	{ "curl_multi_assign", offsetof(struct etcd_curl_api, multi_assign) },
	{ "curl_multi_info_read", offsetof(struct etcd_curl_api, multi_info_read) },
};

int etcd_curl_load_from(const char *soname, struct etcd_curl_api *api, struct vxerr *err)
{
	struct etcd_curl_api t;
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return vxerr_set(err, "cannot load %s (install the %s package): %s", soname, ETCD_CURL_PACKAGE, dlerror());
	for (size_t i = 0; i < sizeof(curl_syms) / sizeof(curl_syms[0]); i++) {
		void *f = dlsym(lib, curl_syms[i].name);
		if (!f) {
			vxerr_set(err, "%s has no %s: not a usable libcurl (install the %s package)", soname,
				  curl_syms[i].name, ETCD_CURL_PACKAGE);
			dlclose(lib);
			return -1;
		}
		/* POSIX guarantees that a data pointer from dlsym can hold a function pointer */
		memcpy((char *)&t + curl_syms[i].off, &f, sizeof(f));
	}
	*api = t;
	return 0;
}

static struct etcd_curl_api loaded_api;
static struct vxerr load_err;
static int load_rc = -1;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load_default(void)
{
	const char *name = getenv("VX_TEST_LIBCURL");
	load_rc = etcd_curl_load_from(name && *name ? name : ETCD_CURL_SONAME, &loaded_api, &load_err);
}

const struct etcd_curl_api *etcd_curl_api(struct vxerr *err)
{
	pthread_once(&load_once, load_default);
	if (load_rc != 0) {
		vxerr_set(err, "%s", load_err.msg);
		return NULL;
	}
	return &loaded_api;
}

/* ---------------------------------------------------------------- curl on libev */

struct etcd_sockw {
	ev_io io;
	struct etcd_curl_multi *m;
	struct etcd_sockw *next;
};

struct etcd_curl_multi {
	const struct etcd_curl_api *api;
	struct etcd_client *c;
	CURLM *multi;
	ev_timer timer;
	struct etcd_sockw *socks;
};

/* One https transfer. */
struct etcd_cx {
	CURL *easy;
	struct curl_slist *headers;
	bool added; /* in the multi handle */
	char errbuf[CURL_ERROR_SIZE];
};

static void after_curl(struct etcd_curl_multi *m);

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct etcd_sockw *s = (struct etcd_sockw *)w;
	struct etcd_curl_multi *m = s->m;
	int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	etcd_enter(m->c);
	m->api->multi_socket_action(m->multi, w->fd, action, &running);
	after_curl(m);
	etcd_leave(m->c);
}

static void on_curl_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_curl_multi *m = ETCD_CONTAINER(t, struct etcd_curl_multi, timer);
	int running;
	etcd_enter(m->c);
	m->api->multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	after_curl(m);
	etcd_leave(m->c);
}

static void sockw_remove(struct etcd_curl_multi *m, struct etcd_sockw *s)
{
	for (struct etcd_sockw **p = &m->socks; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	ev_io_stop(m->c->loop, &s->io);
	free(s);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)easy;
	struct etcd_curl_multi *m = userp;
	struct etcd_sockw *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			sockw_remove(m, s);
		m->api->multi_assign(m->multi, fd, NULL);
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->m = m;
		s->next = m->socks;
		m->socks = s;
		ev_init(&s->io, on_io);
		m->api->multi_assign(m->multi, fd, s);
	}
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	ev_io_stop(m->c->loop, &s->io);
	ev_io_set(&s->io, fd, events);
	ev_io_start(m->c->loop, &s->io);
	return 0;
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct etcd_curl_multi *m = userp;
	ev_timer_stop(m->c->loop, &m->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&m->timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(m->c->loop, &m->timer);
	}
	return 0;
}

int etcd_curl_init(struct etcd_client *c, struct vxerr *err)
{
	struct vxerr e;
	const struct etcd_curl_api *api = etcd_curl_api(&e);
	if (!api)
		return vxerr_set(err, "etcd: https endpoints need libcurl: %s", e.msg);
	if (api->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return vxerr_set(err, "etcd: libcurl failed to initialise");
	struct etcd_curl_multi *m = xcalloc(1, sizeof(*m));
	m->api = api;
	m->c = c;
	m->multi = api->multi_init();
	if (!m->multi)
		abort(); /* curl only fails this on allocation failure */
	api->multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	api->multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	api->multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	api->multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	ev_init(&m->timer, on_curl_timer);
	c->curl = m;
	return 0;
}

/* After every transfer is closed (etcd_client_free). */
void etcd_curl_cleanup(struct etcd_client *c)
{
	struct etcd_curl_multi *m = c->curl;
	if (!m)
		return;
	ev_timer_stop(c->loop, &m->timer);
	m->api->multi_cleanup(m->multi);
	while (m->socks)
		sockw_remove(m, m->socks);
	m->api->global_cleanup();
	free(m);
	c->curl = NULL;
}

/* ---------------------------------------------------------------- failures in words */

static void lower_first(char *s)
{
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
}

/* TLS failures, in words that say which side refused what; 0 when rc is not one. */
static int tls_why(CURLcode rc, const char *detail, char *out, size_t cap)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(out, cap, "TLS: server certificate not accepted: %.200s", detail);
		return 1;
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(out, cap, "TLS handshake failed: %.200s", detail);
		return 1;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		snprintf(out, cap, "TLS setup: %.200s", detail);
		return 1;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* with TLS 1.3 a refused client certificate only shows on the first read */
		if (!strstr(detail, "alert bad certificate") && !strstr(detail, "alert certificate required"))
			return 0;
		snprintf(out, cap, "TLS: the server refused our client certificate: %.200s", detail);
		return 1;
	default:
		return 0;
	}
}

static enum etcd_code curl_why(struct etcd_xfer *x, CURLcode rc, char *out, size_t cap)
{
	const struct etcd_curl_api *api = x->c->curl->api;
	long os_errno = 0;
	api->easy_getinfo(x->cx->easy, CURLINFO_OS_ERRNO, &os_errno);
	const char *detail = x->cx->errbuf[0] ? x->cx->errbuf : api->easy_strerror(rc);
	if (tls_why(rc, detail, out, cap))
		return ETCD_UNAVAILABLE;
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		snprintf(out, cap, "%s", os_errno ? strerror((int)os_errno) : "cannot connect");
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (!etcd_curl_sent(x))
			snprintf(out, cap, "connect timed out after %lldms", (long long)(x->c->dial_timeout_us / USEC_PER_MS));
		else
			snprintf(out, cap, "no answer within %lldms", (long long)(x->timeout_us / USEC_PER_MS));
		return ETCD_DEADLINE_EXCEEDED;
	case CURLE_WRITE_ERROR:
		if (!x->too_large)
			goto other;
		snprintf(out, cap, "answer larger than %zu bytes", x->c->max_response_bytes);
		return ETCD_RESOURCE_EXHAUSTED;
	case CURLE_GOT_NOTHING:
		snprintf(out, cap, "connection closed without an answer");
		break;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(out, cap, "connection lost mid-answer: %.200s", detail);
		break;
	default:
	other:
		snprintf(out, cap, "%s", detail);
	}
	lower_first(out);
	return ETCD_UNAVAILABLE;
}

/* Outside curl's callbacks: hand new bytes and finished transfers to their owners. New
 * transfers are linked at the head, so this pass never reaches them. */
static void after_curl(struct etcd_curl_multi *m)
{
	CURLMsg *msg;
	int left;
	while ((msg = m->api->multi_info_read(m->multi, &left)) != NULL) {
		struct etcd_xfer *x = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		m->api->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		CURLcode rc = msg->data.result;
		char why[ETCD_WHY_MAX] = "";
		enum etcd_code code = rc == CURLE_OK ? ETCD_OK : curl_why(x, rc, why, sizeof(why));
		etcd_xfer_end(x, rc == CURLE_OK, code, "%s", why);
	}
	for (struct etcd_xfer *x = m->c->xfers; x; x = x->next)
		if (x->cx && !x->dead)
			etcd_xfer_deliver(x);
}

/* ---------------------------------------------------------------- transfers */

static size_t on_write(char *p, size_t size, size_t n, void *userdata)
{
	struct etcd_xfer *x = userdata;
	size_t len = size * n;
	if (buf_append(&x->in, p, len) != 0) {
		x->too_large = true;
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	x->has_data = true;
	return len;
}

static struct curl_slist *xfer_headers(const struct etcd_curl_api *api, const char *token)
{
	struct curl_slist *h = api->slist_append(NULL, "Content-Type: application/json");
	h = api->slist_append(h, "Expect:"); /* no 100-continue round trip */
	if (token) {
		/* etcd wants the raw token, not "Bearer <token>" */
		char *a = xasprintf("Authorization: %s", token);
		h = api->slist_append(h, a);
		free(a);
	}
	return h;
}

static void xfer_tls(const struct etcd_curl_api *api, struct etcd_client *c, CURL *e)
{
	if (c->tls_ca)
		api->easy_setopt(e, CURLOPT_CAINFO, c->tls_ca);
	if (c->tls_cert)
		api->easy_setopt(e, CURLOPT_SSLCERT, c->tls_cert);
	if (c->tls_key)
		api->easy_setopt(e, CURLOPT_SSLKEY, c->tls_key);
}

static void xfer_options(const struct etcd_curl_api *api, struct etcd_xfer *x, const char *url, const char *body)
{
	struct etcd_client *c = x->c;
	CURL *e = x->cx->easy;
	api->easy_setopt(e, CURLOPT_URL, url);
	api->easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
	api->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* HTTP/1.1 only: over TLS this makes curl offer ALPN "http/1.1" alone, and etcd's
	 * gateway then speaks HTTP/1.1 (offered h2, it would switch). */
	api->easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	api->easy_setopt(e, CURLOPT_POST, 1L);
	api->easy_setopt(e, CURLOPT_HTTPHEADER, x->cx->headers);
	api->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	api->easy_setopt(e, CURLOPT_WRITEDATA, x);
	api->easy_setopt(e, CURLOPT_ERRORBUFFER, x->cx->errbuf);
	api->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->dial_timeout_us / USEC_PER_MS));
	api->easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	api->easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
	api->easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
	api->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	if (getenv("VX_CURL_VERBOSE"))
		api->easy_setopt(e, CURLOPT_VERBOSE, 1L);
	xfer_tls(api, c, e);
	api->easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	if (x->timeout_us > 0)
		api->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(x->timeout_us / USEC_PER_MS));
}

void etcd_curl_start(struct etcd_xfer *x, const char *url, const char *body, const char *token)
{
	struct etcd_curl_multi *m = x->c->curl;
	const struct etcd_curl_api *api = m->api;
	x->cx = xcalloc(1, sizeof(*x->cx));
	x->cx->easy = api->easy_init();
	if (!x->cx->easy)
		abort(); /* curl only fails this on allocation failure */
	x->cx->headers = xfer_headers(api, token);
	xfer_options(api, x, url, body);
	api->multi_add_handle(m->multi, x->cx->easy);
	x->cx->added = true;
}

void etcd_curl_stop(struct etcd_xfer *x)
{
	if (x->cx->added)
		x->c->curl->api->multi_remove_handle(x->c->curl->multi, x->cx->easy);
	x->cx->added = false;
}

void etcd_curl_free(struct etcd_xfer *x)
{
	const struct etcd_curl_api *api = x->c->curl->api;
	api->easy_cleanup(x->cx->easy);
	api->slist_free_all(x->cx->headers);
	free(x->cx);
	x->cx = NULL;
}

long etcd_curl_status(const struct etcd_xfer *x)
{
	long st = 0;
	x->c->curl->api->easy_getinfo(x->cx->easy, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

bool etcd_curl_sent(const struct etcd_xfer *x)
{
	long n = 0;
	x->c->curl->api->easy_getinfo(x->cx->easy, CURLINFO_REQUEST_SIZE, &n);
	return n > 0;
}
