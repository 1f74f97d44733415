/* Runtime API command builders and reply classification (pure).
 *
 * Every builder checks each name, address and number against the whitelists of hap_names.c
 * before a single byte of the command exists, and writes its output only on success, so a
 * hostile value can never reach the socket (FACTS 3.8: ';' and newline chain commands). */
#include "haproxy/hap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/net.h"
#include "common/strutil.h"
#include "haproxy/hap_int.h"

#define CHECK_INTER_MAX_US (3600 * INT64_C(1000000))
#define CHECK_COUNT_MAX 100

static int put(struct hap_cmd *out, enum hap_cmd_kind kind, struct vxerr *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int put(struct hap_cmd *out, enum hap_cmd_kind kind, struct vxerr *err, const char *fmt, ...)
{
	char text[HAP_CMD_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text))
		return vxerr_set(err, "haproxy command too long");
	if (!hap_cmd_text_safe(text))
		return vxerr_set(err, "haproxy command holds unsafe characters");
	out->kind = kind;
	memcpy(out->text, text, (size_t)n + 1);
	return 0;
}

static int check_name(const char *what, const char *s, struct vxerr *err)
{
	if (hap_name_valid(s))
		return 0;
	return vxerr_set(err, "invalid %s name '%.80s': allowed are 1-%d of [A-Za-z0-9._:-], not starting with '-'",
			 what, s ? s : "(null)", HAP_NAME_MAX);
}

static int check_target(const char *backend, const char *server, struct vxerr *err)
{
	if (check_name("backend", backend, err) != 0)
		return -1;
	return check_name("server", server, err);
}

void hap_fmt_ms(char *out, size_t cap, int64_t us)
{
	int64_t ms = us <= 0 ? 0 : (us + 999) / 1000;
	snprintf(out, cap, "%" PRId64 "ms", ms);
}

static bool check_opts_valid(const struct hap_check *c)
{
	return c->inter_us > 0 && c->inter_us <= CHECK_INTER_MAX_US && c->fastinter_us > 0 &&
	       c->fastinter_us <= CHECK_INTER_MAX_US && c->downinter_us > 0 &&
	       c->downinter_us <= CHECK_INTER_MAX_US && c->rise >= 1 && c->rise <= CHECK_COUNT_MAX &&
	       c->fall >= 1 && c->fall <= CHECK_COUNT_MAX;
}

static int check_args(char *out, size_t cap, const struct hap_check *c, struct vxerr *err)
{
	out[0] = '\0';
	if (!c || !c->enabled)
		return 0;
	if (!check_opts_valid(c))
		return vxerr_set(err, "invalid health check options (inter, rise or fall out of range)");
	char inter[32], fast[32], down[32];
	hap_fmt_ms(inter, sizeof(inter), c->inter_us);
	hap_fmt_ms(fast, sizeof(fast), c->fastinter_us);
	hap_fmt_ms(down, sizeof(down), c->downinter_us);
	snprintf(out, cap, " check inter %s fastinter %s downinter %s rise %d fall %d", inter, fast, down,
		 c->rise, c->fall);
	return 0;
}

static int check_server_values(const struct hap_server *srv, char *addr, size_t cap, struct vxerr *err)
{
	/* fixed arrays filled by callers: never read past them */
	if (!memchr(srv->name, '\0', sizeof(srv->name)) || !memchr(srv->addr, '\0', sizeof(srv->addr)))
		return vxerr_set(err, "server name or address is not terminated");
	if (check_name("server", srv->name, err) != 0)
		return -1;
	if (hap_addr_canon(srv->addr, addr, cap, err) != 0)
		return vxerr_prefix(err, "server %s: ", srv->name);
	if (srv->port == 0)
		return vxerr_set(err, "server %s: port 0 is not allowed", srv->name);
	if (!hap_weight_valid(srv->weight))
		return vxerr_set(err, "server %s: weight %d is outside 0..%d", srv->name, srv->weight, HAP_WEIGHT_MAX);
	if (!hap_maxconn_valid(srv->maxconn))
		return vxerr_set(err, "server %s: maxconn %" PRId64 " is outside 0..%d", srv->name, srv->maxconn,
				 HAP_MAXCONN_MAX);
	return 0;
}

int hap_server_args(char *out, size_t cap, const struct hap_server *srv, const struct hap_check *chk,
		    bool in_config, struct vxerr *err)
{
	char addr[NET_IP_MAX], hostport[NET_HOSTPORT_MAX], checks[160], maxconn[40] = "", id[32] = "";
	if (check_server_values(srv, addr, sizeof(addr), err) != 0 ||
	    check_args(checks, sizeof(checks), chk, err) != 0)
		return -1;
	net_hostport_format(addr, srv->port, hostport, sizeof(hostport));
	if (srv->maxconn > 0)
		snprintf(maxconn, sizeof(maxconn), " maxconn %" PRId64, srv->maxconn);
	if (srv->id > 0 && srv->id <= INT32_MAX)
		snprintf(id, sizeof(id), " id %" PRId64, srv->id);
	int weight = in_config && srv->admin == HAP_ADMIN_DRAIN ? 0 : srv->weight;
	const char *disabled = in_config && srv->admin == HAP_ADMIN_MAINT ? " disabled" : "";
	/* Dynamic servers get no idle-connection pool by default: one new backend connection per
	 * request, and a road to ephemeral-port exhaustion (FACTS 3.2). */
	int n = snprintf(out, cap, "%s%s weight %d%s%s%s pool-max-conn -1 pool-purge-delay 5s", hostport, id, weight,
			 maxconn, disabled, checks);
	if (n < 0 || (size_t)n >= cap)
		return vxerr_set(err, "server %s: options too long", srv->name);
	return 0;
}

int hap_cmd_add_server(struct hap_cmd *out, const char *backend, const struct hap_server *srv,
		       const struct hap_check *chk, struct vxerr *err)
{
	char args[HAP_CMD_MAX];
	if (check_name("backend", backend, err) != 0 ||
	    hap_server_args(args, sizeof(args), srv, chk, false, err) != 0)
		return -1;
	return put(out, HAP_CMD_ADD_SERVER, err, "add server %s/%s %s", backend, srv->name, args);
}

int hap_cmd_enable_server(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	return put(out, HAP_CMD_SET, err, "enable server %s/%s", backend, server);
}

int hap_cmd_enable_health(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	return put(out, HAP_CMD_SET, err, "enable health %s/%s", backend, server);
}

int hap_cmd_set_health_down(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	return put(out, HAP_CMD_SET, err, "set server %s/%s health down", backend, server);
}

int hap_cmd_set_weight(struct hap_cmd *out, const char *backend, const char *server, int weight,
		       struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	if (!hap_weight_valid(weight))
		return vxerr_set(err, "server %s/%s: weight %d is outside 0..%d", backend, server, weight,
				 HAP_WEIGHT_MAX);
	return put(out, HAP_CMD_SET, err, "set server %s/%s weight %d", backend, server, weight);
}

int hap_cmd_set_maxconn(struct hap_cmd *out, const char *backend, const char *server, int64_t maxconn,
			struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	if (!hap_maxconn_valid(maxconn))
		return vxerr_set(err, "server %s/%s: maxconn %" PRId64 " is outside 0..%d", backend, server, maxconn,
				 HAP_MAXCONN_MAX);
	return put(out, HAP_CMD_SET, err, "set maxconn server %s/%s %" PRId64, backend, server, maxconn);
}

int hap_cmd_set_state(struct hap_cmd *out, const char *backend, const char *server, enum hap_admin state,
		      struct vxerr *err)
{
	static const char *const names[] = { [HAP_ADMIN_READY] = "ready", [HAP_ADMIN_DRAIN] = "drain",
					     [HAP_ADMIN_MAINT] = "maint" };
	if (check_target(backend, server, err) != 0)
		return -1;
	if ((unsigned)state > HAP_ADMIN_MAINT)
		return vxerr_set(err, "server %s/%s: unknown state %d", backend, server, (int)state);
	return put(out, HAP_CMD_SET, err, "set server %s/%s state %s", backend, server, names[state]);
}

int hap_cmd_set_addr(struct hap_cmd *out, const char *backend, const char *server, const char *addr,
		     uint16_t port, struct vxerr *err)
{
	char canon[NET_IP_MAX];
	if (check_target(backend, server, err) != 0 || hap_addr_canon(addr, canon, sizeof(canon), err) != 0)
		return -1;
	if (port == 0)
		return vxerr_set(err, "server %s/%s: port 0 is not a port", backend, server);
	return put(out, HAP_CMD_SET_ADDR, err, "set server %s/%s addr %s port %u", backend, server, canon,
		   (unsigned)port);
}

int hap_cmd_shutdown_sessions(struct hap_cmd *out, const char *backend, const char *server,
			      struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	return put(out, HAP_CMD_SET, err, "shutdown sessions server %s/%s", backend, server);
}

int hap_cmd_del_server(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err)
{
	if (check_target(backend, server, err) != 0)
		return -1;
	return put(out, HAP_CMD_DEL_SERVER, err, "del server %s/%s", backend, server);
}

int hap_cmd_delete_sequence(struct hap_cmd out[3], const char *backend, const char *server, struct vxerr *err)
{
	struct hap_cmd seq[3];
	if (hap_cmd_set_state(&seq[0], backend, server, HAP_ADMIN_DRAIN, err) != 0 ||
	    hap_cmd_set_state(&seq[1], backend, server, HAP_ADMIN_MAINT, err) != 0 ||
	    hap_cmd_del_server(&seq[2], backend, server, err) != 0)
		return -1;
	memcpy(out, seq, sizeof(seq));
	return 0;
}

int hap_cmd_show_servers_state(struct hap_cmd *out, const char *backend, struct vxerr *err)
{
	if (!backend)
		return put(out, HAP_CMD_SHOW_SERVERS_STATE, err, "show servers state");
	if (check_name("backend", backend, err) != 0)
		return -1;
	return put(out, HAP_CMD_SHOW_SERVERS_STATE, err, "show servers state %s", backend);
}

int hap_cmd_show_stat(struct hap_cmd *out, const char *backend, struct vxerr *err)
{
	if (!backend)
		return put(out, HAP_CMD_SHOW_STAT, err, "show stat");
	if (check_name("backend", backend, err) != 0)
		return -1;
	/* type 4 = servers, sid -1 = all of them (FACTS 3.5) */
	return put(out, HAP_CMD_SHOW_STAT, err, "show stat %s 4 -1", backend);
}

int hap_cmd_show_stat_id(struct hap_cmd *out, int64_t backend_id, struct vxerr *err)
{
	if (backend_id < 1 || backend_id > INT32_MAX)
		return vxerr_set(err, "proxy id %" PRId64 " is outside 1..%d", backend_id, INT32_MAX);
	return put(out, HAP_CMD_SHOW_STAT, err, "show stat %" PRId64 " 4 -1", backend_id);
}

int hap_cmd_show_stat_server(struct hap_cmd *out, int64_t backend_id, int64_t server_id, struct vxerr *err)
{
	if (backend_id < 1 || backend_id > INT32_MAX || server_id < 1 || server_id > INT32_MAX)
		return vxerr_set(err, "proxy id %" PRId64 " or server id %" PRId64 " is outside 1..%d", backend_id,
				 server_id, INT32_MAX);
	return put(out, HAP_CMD_SHOW_STAT, err, "show stat %" PRId64 " 4 %" PRId64, backend_id, server_id);
}

void hap_cmd_show_info(struct hap_cmd *out)
{
	out->kind = HAP_CMD_SHOW_INFO;
	str_copy(out->text, sizeof(out->text), "show info");
}

void hap_cmd_show_backend(struct hap_cmd *out)
{
	out->kind = HAP_CMD_SHOW_BACKEND;
	str_copy(out->text, sizeof(out->text), "show backend");
}

bool hap_cmd_text_safe(const char *text)
{
	size_t n = strnlen(text, HAP_CMD_MAX);
	if (n == 0 || n >= HAP_CMD_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c > 0x7e || c == ';' || c == '#' || c == '\\' || c == '"' || c == '\'')
			return false;
	}
	return true;
}

/* ---- replies ---- */

static void trim(const char **s, size_t *len)
{
	while (*len && ((*s)[0] == '\n' || (*s)[0] == '\r' || (*s)[0] == ' ')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r' || (*s)[*len - 1] == ' '))
		(*len)--;
}

static bool is(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

static bool not_found(const char *s, size_t len)
{
	return is(s, len, "No such server.") || is(s, len, "No such backend.") || is(s, len, "No such proxy.") ||
	       is(s, len, "Can't find backend.");
}

static enum hap_status classify_show(enum hap_cmd_kind kind, const char *s, size_t len)
{
	/* A show succeeded when its output begins the way that output always begins. */
	static const char *const heads[] = {
		[HAP_CMD_SHOW_SERVERS_STATE] = "1\n", [HAP_CMD_SHOW_STAT] = "# pxname,",
		[HAP_CMD_SHOW_INFO] = "Name: ", [HAP_CMD_SHOW_BACKEND] = "# name",
	};
	if (starts(s, len, heads[kind]) || (kind == HAP_CMD_SHOW_SERVERS_STATE && is(s, len, "1")))
		return HAP_OK;
	return not_found(s, len) ? HAP_NOT_FOUND : HAP_ERR;
}

enum hap_status hap_reply_classify(enum hap_cmd_kind kind, const char *reply, size_t len)
{
	if (!reply)
		return HAP_ERR;
	const char *s = reply;
	trim(&s, &len);
	switch (kind) {
	case HAP_CMD_ADD_SERVER:
		if (is(s, len, "New server registered."))
			return HAP_OK;
		break;
	case HAP_CMD_DEL_SERVER:
		if (is(s, len, "Server deleted."))
			return HAP_OK;
		if (starts(s, len, "Server still has connections attached to it"))
			return HAP_RETRY;
		break;
	case HAP_CMD_SET:
		if (len == 0)
			return HAP_OK;
		break;
	case HAP_CMD_SET_ADDR:
		if (starts(s, len, "IP changed from") || starts(s, len, "port changed from") ||
		    starts(s, len, "no need to change"))
			return HAP_OK;
		break;
	case HAP_CMD_SHOW_SERVERS_STATE:
	case HAP_CMD_SHOW_STAT:
	case HAP_CMD_SHOW_INFO:
	case HAP_CMD_SHOW_BACKEND:
		return classify_show(kind, reply, len + (size_t)(s - reply));
	}
	return not_found(s, len) ? HAP_NOT_FOUND : HAP_ERR;
}

void hap_reply_summary(const char *reply, size_t len, char *out, size_t cap)
{
	if (cap == 0)
		return;
	out[0] = '\0';
	if (!reply) {
		snprintf(out, cap, "(no reply)");
		return;
	}
	size_t pos = 0, n = 0;
	const char *line = NULL;
	while (hap_next_line(reply, len, &pos, &line, &n) && n == 0)
		;
	if (!line || n == 0) {
		snprintf(out, cap, "(empty reply)");
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)line[i];
		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[k] = '\0';
}

bool hap_next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len)
{
	if (*pos >= len)
		return false;
	const char *start = text + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - start) : len - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n && start[n - 1] == '\r')
		n--;
	*line = start;
	*line_len = n;
	return true;
}

void hap_check_from_health(const struct cfg_health *h, struct hap_check *out)
{
	static const int64_t min_fast_us = 100 * INT64_C(1000), default_inter_us = 2 * INT64_C(1000000);
	struct hap_check c = { .enabled = false };
	if (h && h->type != CHECK_NONE) {
		c.enabled = true;
		c.inter_us = h->interval_us > 0 ? h->interval_us : default_inter_us;
		/* A server that starts failing is confirmed down (or back up) at four times the
		 * normal pace: the faster a dead backend leaves the pool, the fewer retries. A down
		 * server is looked at as often: a new one starts down and joins after `rise` checks,
		 * so this is how soon a scale-out takes traffic. */
		c.fastinter_us = c.inter_us / 4 > min_fast_us ? c.inter_us / 4 : min_fast_us;
		if (c.fastinter_us > c.inter_us)
			c.fastinter_us = c.inter_us;
		c.downinter_us = c.fastinter_us;
		c.rise = h->rise > 0 ? h->rise : 2;
		c.fall = h->fall > 0 ? h->fall : 3;
	}
	*out = c;
}
