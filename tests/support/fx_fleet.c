/* The fleet (see fx_fleet.h). */
#include "fx_fleet.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_proxy.h"
#include "fx_stack.h"
#include "haproxy/hap.h"

#define PREFIX "/veltrix/services/"
#define MAX_REPLY (64u << 20)
#define WRITE_GIVE_UP_US (20 * USEC_PER_SEC)
#define MAX_SLOTS 50000 /* ports 10000 + slot */

struct slot {
	int svc;
	bool present; /* as written (the model), under pick_mu */
	int weight;
	atomic_int busy; /* change index + 1 while one is in flight, 0 when free */
};

struct ctl {
	int index;
	char *dir, *cfg, *log, *state_dir, *runtime_sock, *master_sock;
	char metrics_url[64];
	int *ports; /* one frontend per service */
	pid_t pid, hap_master, hap_worker;
	struct fx_proxy *relay[FX_FLEET_MAX_MEMBERS];
	atomic_int *pending; /* per service: changes in flight this HAProxy has not shown yet */
	pthread_t poller;
	int64_t polls;
};

struct fleet {
	struct fx_fleet_opts o;
	struct fx_fleet_report *r;
	struct fx_etcd m[FX_FLEET_MAX_MEMBERS];
	struct ctl c[FX_FLEET_MAX_CTL];
	struct slot *slots;
	int n_slots, per_svc;
	pthread_mutex_t pick_mu;
	uint64_t rng;
	atomic_bool stop_polling;
	atomic_long retries;
	struct ctl_metrics *m0; /* each controller's /metrics when the churn started */
};

/* ---------------------------------------------------------------- small helpers */

static void note(const struct fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const struct fleet *f, const char *fmt, ...)
{
	if (f->o.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "# fleet: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* utime + stime of pid, in clock ticks (-1 when it is gone). */
static long long cpu_ticks(pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	size_t n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	const char *p = strrchr(text, ')');
	if (!p)
		return -1;
	/* after ") ": state is field 3; utime and stime are fields 14 and 15 */
	long long v[16] = { 0 };
	int field = 3;
	for (p += 2; *p && field <= 15; field++) {
		char *end;
		if (field >= 14)
			v[field] = strtoll(p, &end, 10);
		const char *sp = strchr(p, ' ');
		if (!sp)
			break;
		p = sp + 1;
	}
	return v[14] + v[15];
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int port_of(int slot)
{
	return 10000 + slot;
}

static char *b64s(const char *s)
{
	size_t cap = b64_encoded_size(strlen(s));
	char *out = xmalloc(cap);
	b64_encode(s, strlen(s), out, cap);
	return out;
}

static void key_of(const struct fleet *f, int slot, char *out, size_t cap)
{
	snprintf(out, cap, PREFIX "f%03d/i%05d", f->slots[slot].svc, slot);
}

static void value_of(int slot, int weight, char *out, size_t cap)
{
	snprintf(out, cap, "{\"address\":\"127.0.0.1\",\"port\":%d,\"weight\":%d}", port_of(slot), weight);
}

/* "i<digits>" -> slot, or -1. */
static int slot_of_name(const struct fleet *f, const char *name)
{
	int64_t v;
	if (name[0] != 'i' || parse_i64(name + 1, 0, f->n_slots - 1, &v) != 0)
		return -1;
	return (int)v;
}

/* ---------------------------------------------------------------- etcd through its gateway */

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	if (ud && buf_append(ud, p, size * n) != 0)
		return 0;
	return size * n;
}

/* One POST; 200 or -1. The body goes to resp when given. */
static long post(CURL *c, const char *base, const char *path, const char *body, struct buf *resp, long timeout_ms)
{
	char url[160];
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 300L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* Puts every slot's starting value, 100 to a transaction (etcd's --max-txn-ops is 128). */
static void populate(struct fleet *f)
{
	CURL *c = curl_easy_init();
	for (int off = 0; off < f->n_slots; off += 100) {
		struct buf b = BUF_INIT(1u << 20);
		int n = 0;
		buf_printf(&b, "{\"success\":[");
		for (int s = off; s < f->n_slots && s < off + 100; s++) {
			if (!f->slots[s].present)
				continue;
			char key[96], value[128];
			key_of(f, s, key, sizeof(key));
			value_of(s, f->slots[s].weight, value, sizeof(value));
			char *k = b64s(key), *v = b64s(value);
			buf_printf(&b, "%s{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}", n++ ? "," : "", k, v);
			free(k);
			free(v);
		}
		buf_printf(&b, "]}");
		if (n > 0 && post(c, f->m[0].url, "/v3/kv/txn", b.data, NULL, 10000) != 200)
			fx_die("fleet: populating etcd failed");
		buf_release(&b);
	}
	curl_easy_cleanup(c);
}

/* The member that says it is the leader (asking each live member), or -1. */
static int find_leader(struct fleet *f)
{
	CURL *c = curl_easy_init();
	int leader = -1;
	for (int i = 0; i < f->o.members && leader < 0; i++) {
		if (f->m[i].pid <= 0)
			continue;
		struct buf b = BUF_INIT(1u << 16);
		if (post(c, f->m[i].url, "/v3/maintenance/status", "{}", &b, 1000) == 200 && b.data) {
			json_t *j = json_loadb(b.data, b.len, 0, NULL);
			const char *lead = json_string_value(json_object_get(j, "leader"));
			const char *me = json_string_value(json_object_get(json_object_get(j, "header"), "member_id"));
			if (lead && me && strcmp(lead, "0") != 0 && strcmp(lead, me) == 0)
				leader = i;
			json_decref(j);
		}
		buf_release(&b);
	}
	curl_easy_cleanup(c);
	return leader;
}

/* What etcd holds under PREFIX: per slot present / weight (exp arrays of n_slots); the count
 * of keys, and of keys that are not ours (returned through foreign). -1 when unreadable. */
static int etcd_state(struct fleet *f, bool *present, int *weight, int *foreign)
{
	CURL *c = curl_easy_init();
	char *k = b64s(PREFIX), *end = b64s("/veltrix/services0");
	char *body = xasprintf("{\"key\":\"%s\",\"range_end\":\"%s\"}", k, end);
	int n = -1;
	*foreign = 0;
	memset(present, 0, sizeof(*present) * (size_t)f->n_slots);
	for (int i = 0; i < f->o.members && n < 0; i++) {
		struct buf b = BUF_INIT(256u << 20);
		if (f->m[i].pid <= 0 || post(c, f->m[i].url, "/v3/kv/range", body, &b, 20000) != 200 || !b.data) {
			buf_release(&b);
			continue;
		}
		json_t *j = json_loadb(b.data, b.len, 0, NULL);
		json_t *kvs = json_object_get(j, "kvs");
		n = 0;
		for (size_t x = 0; x < json_array_size(kvs); x++) {
			json_t *kv = json_array_get(kvs, x);
			const char *kb = json_string_value(json_object_get(kv, "key"));
			const char *vb = json_string_value(json_object_get(kv, "value"));
			char key[256] = "", val[1024] = "";
			long kl = kb ? b64_decode(kb, strlen(kb), key, sizeof(key) - 1) : -1;
			long vl = vb ? b64_decode(vb, strlen(vb), val, sizeof(val) - 1) : -1;
			n++;
			if (kl < 0 || vl < 0) {
				(*foreign)++;
				continue;
			}
			key[kl] = val[vl] = '\0';
			const char *inst = strrchr(key, '/');
			int s = inst ? slot_of_name(f, inst + 1) : -1;
			char want[96];
			if (s >= 0)
				key_of(f, s, want, sizeof(want));
			json_t *v = json_loads(val, 0, NULL);
			json_t *port = json_object_get(v, "port"), *w = json_object_get(v, "weight");
			if (s < 0 || strcmp(want, key) != 0 || json_integer_value(port) != port_of(s) || !json_is_integer(w)) {
				(*foreign)++;
			} else {
				present[s] = true;
				weight[s] = (int)json_integer_value(w);
			}
			json_decref(v);
		}
		json_decref(j);
		buf_release(&b);
	}
	free(k);
	free(end);
	free(body);
	curl_easy_cleanup(c);
	return n;
}

/* ---------------------------------------------------------------- HAProxy's runtime socket */

/* A bare prompt-mode connection: one write, one read up to the prompt, per command. */
struct cli {
	int fd;
	struct buf in;
};

/* Reads until n prompts ("\n> ", one after each command of a line) have arrived, the last one
 * at the end; the text keeps the inner prompts and loses the last. */
static int cli_read_prompts(struct cli *k, int n)
{
	k->in.len = 0;
	char chunk[65536];
	size_t scanned = 0;
	int seen = 0;
	for (;;) {
		for (; scanned + 3 <= k->in.len; scanned++)
			seen += memcmp(k->in.data + scanned, "\n> ", 3) == 0;
		if (seen >= n && k->in.len >= 3 && memcmp(k->in.data + k->in.len - 3, "\n> ", 3) == 0)
			break;
		ssize_t got = read(k->fd, chunk, sizeof(chunk));
		if (got <= 0 || buf_append(&k->in, chunk, (size_t)got) != 0)
			return -1;
	}
	k->in.len -= 2; /* drop the last "> " */
	k->in.data[k->in.len] = '\0';
	return 0;
}

static int cli_read_prompt(struct cli *k)
{
	return cli_read_prompts(k, 1);
}

static int cli_open(struct cli *k, const char *sock)
{
	buf_init(&k->in, MAX_REPLY);
	k->fd = net_connect_unix(sock, NULL);
	if (k->fd < 0)
		return -1;
	if (net_write_all(k->fd, "prompt\n", 7) != 0 || cli_read_prompt(k) != 0) {
		close(k->fd);
		k->fd = -1;
		return -1;
	}
	return 0;
}

static void cli_close(struct cli *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	buf_release(&k->in);
}

static int cli_cmd(struct cli *k, const char *cmd, struct hap_servers_state *st)
{
	if (net_write_all(k->fd, cmd, strlen(cmd)) != 0 || cli_read_prompt(k) != 0)
		return -1;
	return hap_parse_servers_state(k->in.data, k->in.len, st, NULL);
}

/* ---------------------------------------------------------------- the pollers */

static bool visible(const struct fx_fleet_change *ch, const struct hap_srv_state *row)
{
	bool ready = row && hap_admin_from_bits(row->admin_state) == HAP_ADMIN_READY;
	if (ch->kind == FX_FLEET_DEL)
		return !ready;
	return ready && row->uweight == ch->weight && row->port == port_of(ch->slot);
}

static void mark_seen(struct fleet *f, struct ctl *c, int svc, struct fx_fleet_change *ch, int64_t now)
{
	ch->seen_us[c->index] = now;
	atomic_fetch_sub(&c->pending[svc], 1);
	if (__atomic_add_fetch(&ch->n_seen, 1, __ATOMIC_ACQ_REL) == f->o.controllers)
		atomic_store(&f->slots[ch->slot].busy, 0); /* the instance may change again */
}

/* Checks the changes in flight of service svc against its rows (text: one `show servers state`
 * reply) as seen at now. */
static int64_t check_backend(struct fleet *f, struct ctl *c, int svc, const char *text, size_t len, int64_t now,
			     const struct hap_srv_state **by_slot)
{
	struct hap_servers_state st = { 0 };
	int64_t oldest = 0;
	if (hap_parse_servers_state(text, len, &st, NULL) != 0) {
		hap_servers_state_release(&st);
		return 0;
	}
	int first = svc * f->per_svc;
	for (int j = 0; j < f->per_svc; j++)
		by_slot[j] = NULL;
	for (size_t i = 0; i < st.n; i++) {
		int s = slot_of_name(f, st.rows[i].name);
		if (s >= first && s < first + f->per_svc)
			by_slot[s - first] = &st.rows[i];
	}
	for (int j = 0; j < f->per_svc; j++) {
		int b = atomic_load(&f->slots[first + j].busy);
		if (b == 0)
			continue;
		struct fx_fleet_change *ch = &f->r->ch[b - 1];
		if (ch->seen_us[c->index] != 0)
			continue;
		if (__atomic_load_n(&ch->failed, __ATOMIC_ACQUIRE)) {
			ch->seen_us[c->index] = -1;
			atomic_fetch_sub(&c->pending[svc], 1);
		} else if (visible(ch, by_slot[j])) {
			mark_seen(f, c, svc, ch, now);
		} else if (oldest == 0 || ch->sent_us < oldest) {
			oldest = ch->sent_us;
		}
	}
	hap_servers_state_release(&st);
	return oldest;
}

/* When to look at a backend again: after the pause, or after 5% of the age of its oldest change
 * still in flight (at most 50 ms), whichever is later. A change in flight for 400 ms is then
 * timed to within 20 ms, and the polls (each a dump of the whole backend, for HAProxy too) do
 * not grow with the latency they measure. */
static int64_t next_look(const struct fleet *f, int64_t now, int64_t oldest)
{
	int64_t wait = oldest > 0 ? (now - oldest) / 20 : 0;
	wait = wait > 50000 ? 50000 : wait;
	return now + (wait > f->o.poll_pause_us ? wait - f->o.poll_pause_us : 0);
}

#define BATCH 64 /* backends per command line: well under HAProxy's 16 KiB request buffer */

/* One round trip for up to BATCH backends: `show servers state a;show servers state b;...`
 * answers in prompt mode with the replies one after the other, each followed by a prompt. */
static void poll_backends(struct fleet *f, struct ctl *c, struct cli *k, const int *svcs, int n,
			  const struct hap_srv_state **by_slot, int64_t *due)
{
	char cmd[BATCH * 32];
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%sshow servers state f%03d", i ? ";" : "", svcs[i]);
	snprintf(cmd + len, sizeof(cmd) - len, "\n");
	if (net_write_all(k->fd, cmd, strlen(cmd)) != 0 || cli_read_prompts(k, n) != 0) {
		cli_close(k);
		return;
	}
	int64_t now = time_mono_us();
	const char *p = k->in.data, *stop = k->in.data + k->in.len;
	for (int i = 0; i < n && p < stop; i++) {
		const char *next = memmem(p, (size_t)(stop - p), "\n> ", 3);
		const char *e = next ? next + 1 : stop; /* keep the reply's last newline */
		due[svcs[i]] = next_look(f, now, check_backend(f, c, svcs[i], p, (size_t)(e - p), now, by_slot));
		p = next ? next + 3 : stop;
	}
}

struct poller_arg {
	struct fleet *f;
	struct ctl *c;
};

static void *poller_main(void *arg)
{
	struct poller_arg *pa = arg;
	struct fleet *f = pa->f;
	struct ctl *c = pa->c;
	struct cli k = { .fd = -1 };
	const struct hap_srv_state **by_slot = xcalloc((size_t)f->per_svc, sizeof(*by_slot));
	int64_t *due = xcalloc((size_t)f->o.services, sizeof(*due));
	int64_t down_since = 0;
	while (!atomic_load(&f->stop_polling)) {
		if (k.fd < 0 && cli_open(&k, c->runtime_sock) != 0) {
			cli_close(&k);
			int64_t now = time_mono_us();
			down_since = down_since ? down_since : now;
			if (now - down_since > 10 * USEC_PER_SEC)
				fx_die("fleet: HAProxy of controller %d does not answer on %s", c->index, c->runtime_sock);
			time_sleep_us(10000);
			continue;
		}
		down_since = 0;
		int svcs[BATCH], n = 0;
		int64_t now = time_mono_us();
		for (int s = 0; s < f->o.services && k.fd >= 0; s++) {
			if (atomic_load(&c->pending[s]) > 0 && now >= due[s])
				svcs[n++] = s;
			if (n == BATCH || (n > 0 && s == f->o.services - 1)) {
				poll_backends(f, c, &k, svcs, n, by_slot, due);
				n = 0;
			}
		}
		c->polls++;
		time_sleep_us(f->o.poll_pause_us);
	}
	cli_close(&k);
	free(by_slot);
	free(due);
	return NULL;
}

/* ---------------------------------------------------------------- the writers */

/* Chooses the instance and kind of change i (under pick_mu): a random instance with nothing in
 * flight; a quarter adds, a quarter deletes, half weight changes. */
static int pick_slot(struct fleet *f, int want)
{
	for (int probe = 0; probe < 256; probe++) {
		int t = (int)(rng_next(&f->rng) % (uint64_t)f->n_slots);
		bool ok = want == 0 ? !f->slots[t].present : f->slots[t].present;
		if (atomic_load(&f->slots[t].busy) == 0 && (ok || probe >= 128))
			return t;
	}
	int from = (int)(rng_next(&f->rng) % (uint64_t)f->n_slots); /* nearly all in flight: scan */
	for (int i = 0; i < f->n_slots; i++)
		if (atomic_load(&f->slots[(from + i) % f->n_slots].busy) == 0)
			return (from + i) % f->n_slots;
	return -1;
}

/* When every instance has a change in flight, the writer waits (the schedule slips, and the
 * lag says so) rather than change one twice at once. */
static void pick(struct fleet *f, struct fx_fleet_change *ch, int64_t index)
{
	int64_t since = time_mono_us();
	pthread_mutex_lock(&f->pick_mu);
	int want = (int)(rng_next(&f->rng) % 4), s;
	while ((s = pick_slot(f, want)) < 0) {
		pthread_mutex_unlock(&f->pick_mu);
		if (time_mono_us() - since > 120 * USEC_PER_SEC)
			fx_die("fleet: every instance has had a change in flight for 120 s");
		time_sleep_us(2000);
		pthread_mutex_lock(&f->pick_mu);
	}
	f->r->slot_waits += time_mono_us() - since > 1000;
	struct slot *sl = &f->slots[s];
	ch->slot = s;
	if (!sl->present) {
		ch->kind = FX_FLEET_ADD;
		f->r->adds++;
	} else if (want == 1) {
		ch->kind = FX_FLEET_DEL;
		f->r->dels++;
	} else {
		ch->kind = FX_FLEET_WEIGHT;
		f->r->weights++;
	}
	if (ch->kind != FX_FLEET_DEL)
		sl->weight = ch->weight = sl->weight % 256 + 1; /* never the weight it had */
	sl->present = ch->kind != FX_FLEET_DEL;
	ch->sent_us = time_mono_us();
	atomic_store(&sl->busy, (int)(index + 1));
	pthread_mutex_unlock(&f->pick_mu);
}

/* Writes change ch, trying the next member after a failure, for up to 20 s. */
static void write_change(struct fleet *f, CURL *c, int *member, struct fx_fleet_change *ch)
{
	char key[96], value[128];
	key_of(f, ch->slot, key, sizeof(key));
	value_of(ch->slot, ch->weight, value, sizeof(value));
	char *k = b64s(key), *v = b64s(value);
	char *body = ch->kind == FX_FLEET_DEL ? xasprintf("{\"key\":\"%s\"}", k)
					      : xasprintf("{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
	const char *path = ch->kind == FX_FLEET_DEL ? "/v3/kv/deleterange" : "/v3/kv/put";
	for (;;) {
		ch->attempts++;
		if (post(c, f->m[*member].url, path, body, NULL, 500) == 200) {
			ch->acked_us = time_mono_us();
			break;
		}
		atomic_fetch_add(&f->retries, 1);
		*member = (*member + 1) % f->o.members;
		if (time_mono_us() - ch->sent_us > WRITE_GIVE_UP_US) {
			__atomic_store_n(&ch->failed, true, __ATOMIC_RELEASE);
			break;
		}
		time_sleep_us(20000);
	}
	free(body);
	free(k);
	free(v);
}

struct writer_arg {
	struct fleet *f;
	int index;
};

static void *writer_main(void *arg)
{
	struct writer_arg *wa = arg;
	struct fleet *f = wa->f;
	struct fx_fleet_report *r = f->r;
	CURL *c = curl_easy_init();
	int member = wa->index % f->o.members;
	for (int64_t i = wa->index; i < r->n_ch; i += f->o.writers) {
		struct fx_fleet_change *ch = &r->ch[i];
		ch->due_us = r->start_us + i * USEC_PER_SEC / f->o.rate;
		int64_t now = time_mono_us();
		if (ch->due_us > now)
			time_sleep_us(ch->due_us - now);
		pick(f, ch, i);
		for (int x = 0; x < f->o.controllers; x++)
			atomic_fetch_add(&f->c[x].pending[f->slots[ch->slot].svc], 1);
		write_change(f, c, &member, ch);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* ---------------------------------------------------------------- controllers */

static void write_config(struct fleet *f, struct ctl *c)
{
	struct buf b = BUF_INIT(4u << 20);
	buf_printf(&b, "etcd:\n  endpoints: [");
	for (int i = 0; i < f->o.members; i++) {
		int m = (c->index + i) % f->o.members; /* spread the controllers over the members */
		buf_printf(&b, "%s%s", i ? ", " : "", c->relay[m] ? fx_proxy_url(c->relay[m]) : f->m[m].url);
	}
	buf_printf(&b, "]\n  dial_timeout: 500ms\n  request_timeout: 2s\n");
	buf_printf(&b, "haproxy:\n  mode: managed\n  state_dir: %s\n  maxconn: 4000\n  nbthread: 1\n", c->state_dir);
	buf_printf(&b, "controller:\n  metrics: %s\n", c->metrics_url + strlen("http://"));
	buf_printf(&b, "services:\n");
	for (int s = 0; s < f->o.services; s++)
		buf_printf(&b, "  - name: f%03d\n    bind: 127.0.0.1:%d\n    health:\n      type: none\n", s, c->ports[s]);
	fx_write_file(c->cfg, b.data);
	buf_release(&b);
}

static void ctl_prepare(struct fleet *f, struct ctl *c, int index)
{
	c->index = index;
	c->dir = fx_tmpdir("fleet-ctl");
	c->cfg = fx_path(c->dir, "veltrix.yaml");
	c->log = fx_path(c->dir, "controller.log");
	c->state_dir = fx_path(c->dir, "state");
	c->runtime_sock = fx_path(c->state_dir, "runtime.sock");
	c->master_sock = fx_path(c->state_dir, "master.sock");
	c->pending = xcalloc((size_t)f->o.services, sizeof(*c->pending));
	for (int m = 0; f->o.count_requests && m < f->o.members; m++)
		c->relay[m] = fx_proxy_start(f->m[m].client_port);
}

static void ctl_spawn(struct fleet *f, struct ctl *c)
{
	c->ports = xcalloc((size_t)f->o.services, sizeof(*c->ports));
	for (int s = 0; s < f->o.services; s++)
		c->ports[s] = fx_unique_port();
	snprintf(c->metrics_url, sizeof(c->metrics_url), "http://127.0.0.1:%d", fx_unique_port());
	write_config(f, c);
	const char *argv[] = { fx_veltrix_bin(), "controller", "-c", c->cfg, NULL };
	struct proc_opts po = { .stdout_path = c->log, .stderr_path = c->log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	c->pid = proc_spawn((char *const *)(uintptr_t)argv, &po, &err);
	if (c->pid < 0)
		fx_die("%s", err.msg);
	fx_track(c->pid);
}

static void dump_log_and_die(const struct ctl *c, const char *what)
{
	char *log = fx_read_file(c->log);
	fprintf(stderr, "controller %d log:\n%s\n", c->index, log ? log : "(none)");
	free(log);
	fx_die("fleet: controller %d: %s", c->index, what);
}

static void ctl_wait_ready(struct ctl *c)
{
	int64_t deadline = time_mono_us() + 60 * USEC_PER_SEC;
	for (;;) {
		char *url = xasprintf("%s/healthz", c->metrics_url);
		long st = fx_http("GET", url, NULL, NULL);
		free(url);
		struct hap_proc_list l;
		if (st == 200 && hap_proc_show(c->master_sock, USEC_PER_SEC, &l, NULL) == 0 && l.master_pid > 0) {
			c->hap_master = (pid_t)l.master_pid;
			c->hap_worker = (pid_t)hap_proc_current_worker(&l);
			fx_haproxy_master_track(c->hap_master);
			return;
		}
		if (!proc_alive(c->pid))
			dump_log_and_die(c, "exited");
		if (time_mono_us() > deadline)
			dump_log_and_die(c, "not ready within 60 s");
		time_sleep_us(20000);
	}
}

static void ctl_stop(struct ctl *c)
{
	if (c->pid > 0) {
		proc_stop(c->pid, 5000);
		fx_untrack(c->pid);
	}
	if (c->hap_master <= 0) { /* a controller that died before it was tracked */
		struct hap_proc_list l;
		if (c->master_sock && hap_proc_show(c->master_sock, USEC_PER_SEC, &l, NULL) == 0 && l.master_pid > 0) {
			c->hap_master = (pid_t)l.master_pid;
			fx_haproxy_master_track(c->hap_master);
		}
	}
	fx_haproxy_master_stop(c->hap_master);
	for (int m = 0; m < FX_FLEET_MAX_MEMBERS; m++)
		fx_proxy_free(c->relay[m]);
	free(c->dir);
	free(c->cfg);
	free(c->log);
	free(c->state_dir);
	free(c->runtime_sock);
	free(c->master_sock);
	free(c->ports);
	free(c->pending);
	memset(c, 0, sizeof(*c));
}

/* Figures from a controller's /metrics. */
struct ctl_metrics {
	double resyncs;                  /* veltrix_watch_resyncs_total, all reasons */
	double apply_sum, apply_count;   /* veltrix_registry_apply_seconds */
	double rec_sum, rec_count;       /* veltrix_reconcile_seconds */
};

/* The sum of the samples of every series of metric name (with or without labels). */
static double metric_sum(const char *body, const char *name)
{
	size_t n = strlen(name);
	double sum = 0;
	for (const char *line = body; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, name, n) != 0 || (line[n] != ' ' && line[n] != '{'))
			continue;
		const char *sp = strchr(line + n, ' ');
		if (sp)
			sum += strtod(sp + 1, NULL);
	}
	return sum;
}

/* -1 when /metrics does not answer. */
static int ctl_metrics_get(const struct ctl *c, struct ctl_metrics *m)
{
	char *url = xasprintf("%s/metrics", c->metrics_url), *body = NULL;
	int rc = -1;
	memset(m, 0, sizeof(*m));
	if (fx_http("GET", url, NULL, &body) == 200 && body) {
		m->resyncs = metric_sum(body, "veltrix_watch_resyncs_total");
		m->apply_sum = metric_sum(body, "veltrix_registry_apply_seconds_sum");
		m->apply_count = metric_sum(body, "veltrix_registry_apply_seconds_count");
		m->rec_sum = metric_sum(body, "veltrix_reconcile_seconds_sum");
		m->rec_count = metric_sum(body, "veltrix_reconcile_seconds_count");
		rc = 0;
	}
	free(body);
	free(url);
	return rc;
}

static long relay_requests(const struct fleet *f, const struct ctl *c)
{
	long n = 0;
	if (!f->o.count_requests)
		return -1;
	for (int m = 0; m < f->o.members; m++)
		n += fx_proxy_requests(c->relay[m]);
	return n;
}

/* ---------------------------------------------------------------- comparison with etcd */

/* Whether weight w was ever written for slot s (its start, or any change). */
static bool weight_written(const struct fleet *f, int s, int w, int start_weight)
{
	if (w == start_weight)
		return true;
	for (int64_t i = 0; i < f->r->n_ch; i++)
		if (f->r->ch[i].slot == s && f->r->ch[i].sent_us > 0 && f->r->ch[i].kind != FX_FLEET_DEL &&
		    f->r->ch[i].weight == w)
			return true;
	return false;
}

/* HAProxy c against exp (present / weight per slot); -1 when HAProxy did not answer. */
static int compare(struct fleet *f, const struct ctl *c, const bool *present, const int *weight,
		   const int *start_weight, struct fx_fleet_final *out)
{
	struct cli k = { .fd = -1 };
	struct hap_servers_state st = { 0 };
	int rc = -1;
	memset(out, 0, sizeof(*out));
	if (cli_open(&k, c->runtime_sock) != 0 || cli_cmd(&k, "show servers state\n", &st) != 0)
		goto out;
	bool *have = xcalloc((size_t)f->n_slots, sizeof(*have));
	for (size_t i = 0; i < st.n; i++) {
		const struct hap_srv_state *row = &st.rows[i];
		int64_t svc;
		if (row->backend[0] != 'f' || parse_i64(row->backend + 1, 0, f->o.services - 1, &svc) != 0)
			continue; /* not a fleet backend */
		out->servers++;
		int s = slot_of_name(f, row->name);
		bool ready = hap_admin_from_bits(row->admin_state) == HAP_ADMIN_READY;
		if (s < 0 || f->slots[s].svc != svc || have[s] || row->port != port_of(s)) {
			out->dup++;
			continue;
		}
		have[s] = true;
		if (!present[s] && ready)
			out->lost++; /* its delete was not applied */
		else if (!present[s])
			out->lingering++;
		else if (!ready)
			out->lost++;
		else if (row->uweight != weight[s])
			weight_written(f, s, (int)row->uweight, start_weight[s]) ? out->lost++ : out->dup++;
	}
	for (int s = 0; s < f->n_slots; s++)
		out->lost += present[s] && !have[s];
	free(have);
	rc = 0;
out:
	hap_servers_state_release(&st);
	cli_close(&k);
	return rc;
}

/* Waits until every HAProxy equals etcd: up to cap_ms, and gives up earlier when the count of
 * differences has not gone down for stall_ms (lost, then, rather than late). The last
 * comparison lands in final[]. */
static bool wait_converged(struct fleet *f, int cap_ms, int stall_ms, const int *start_weight,
			   struct fx_fleet_final *final)
{
	bool *present = xcalloc((size_t)f->n_slots, sizeof(*present));
	int *weight = xcalloc((size_t)f->n_slots, sizeof(*weight)), foreign = 0;
	int64_t deadline = time_mono_us() + (int64_t)cap_ms * 1000, progress = time_mono_us();
	long best = -1;
	bool ok = false;
	for (;;) {
		int keys = etcd_state(f, present, weight, &foreign);
		long diff = 0;
		ok = keys >= 0;
		for (int i = 0; i < f->o.controllers; i++) {
			bool answered = compare(f, &f->c[i], present, weight, start_weight, &final[i]) == 0;
			diff += answered ? final[i].lost + final[i].dup + final[i].lingering : f->n_slots;
			ok = ok && answered && final[i].lost + final[i].dup + final[i].lingering == 0;
		}
		if (best < 0 || diff < best) {
			best = diff;
			progress = time_mono_us();
		}
		if (keys >= 0) {
			f->r->etcd_keys = keys;
			f->r->model_mismatch = foreign;
			for (int s = 0; s < f->n_slots; s++)
				f->r->model_mismatch += present[s] != f->slots[s].present ||
							(present[s] && weight[s] != f->slots[s].weight);
		}
		int64_t now = time_mono_us();
		if (ok || now > deadline || now - progress > (int64_t)stall_ms * 1000)
			break;
		time_sleep_us(200000);
	}
	free(present);
	free(weight);
	return ok;
}

/* ---------------------------------------------------------------- the run */

void fx_fleet_defaults(struct fx_fleet_opts *o)
{
	*o = (struct fx_fleet_opts){ .members = 3, .controllers = 4, .services = 100, .instances = 10000,
				     .rate = 1000, .seconds = 20, .writers = 64, .kill_at_ms = 10000,
				     .restart_after_ms = 3000, .window_ms = 2000, .poll_pause_us = 250,
				     .settle_ms = 120000, .stall_ms = 10000,
				     .count_requests = true };
}

static void check_opts(const struct fx_fleet_opts *o)
{
	if (o->members < 1 || o->members > FX_FLEET_MAX_MEMBERS || o->controllers < 1 ||
	    o->controllers > FX_FLEET_MAX_CTL || o->services < 1 || o->services > 999 || o->instances < o->services ||
	    o->instances * 3 / 2 > MAX_SLOTS || o->rate < 1 || o->seconds < 1 || o->writers < 1 || o->writers > 64)
		fx_die("fleet: options out of range");
}

/* Each service: instances / services present, half as many again absent (names for adds).
 * Returns every slot's starting weight (caller frees). */
static int *setup_slots(struct fleet *f)
{
	int present_per = f->o.instances / f->o.services;
	f->per_svc = present_per + (present_per + 1) / 2;
	f->n_slots = f->per_svc * f->o.services;
	f->slots = xcalloc((size_t)f->n_slots, sizeof(*f->slots));
	int *start_weight = xcalloc((size_t)f->n_slots, sizeof(*start_weight));
	for (int s = 0; s < f->n_slots; s++) {
		f->slots[s].svc = s / f->per_svc;
		f->slots[s].present = s % f->per_svc < present_per;
		f->slots[s].weight = start_weight[s] = 1 + (s * 7) % 256;
	}
	return start_weight;
}

struct sample {
	int64_t at;
	long long etcd[FX_FLEET_MAX_MEMBERS], ctl[FX_FLEET_MAX_CTL], hap[FX_FLEET_MAX_CTL];
	double self;
	long req[FX_FLEET_MAX_CTL];
};

static void take_sample(const struct fleet *f, struct sample *s)
{
	s->at = time_mono_us();
	for (int m = 0; m < f->o.members; m++)
		s->etcd[m] = f->m[m].pid > 0 ? cpu_ticks(f->m[m].pid) : 0;
	for (int i = 0; i < f->o.controllers; i++) {
		s->ctl[i] = cpu_ticks(f->c[i].pid);
		s->hap[i] = f->c[i].hap_worker > 0 ? cpu_ticks(f->c[i].hap_worker) : -1;
		s->req[i] = relay_requests(f, &f->c[i]);
	}
	s->self = self_cpu_s();
}

/* Kills the leader at its time and restarts it later; adds the killed process's CPU (from the
 * start sample to just before the kill) to etcd_before. */
static void kill_and_restart(struct fleet *f, const struct sample *start, long long *etcd_before)
{
	struct fx_fleet_report *r = f->r;
	int64_t at = r->start_us + (int64_t)f->o.kill_at_ms * 1000, now = time_mono_us();
	if (at > now)
		time_sleep_us(at - now);
	r->leader = find_leader(f);
	if (r->leader < 0) {
		note(f, "no leader found: nothing killed");
		return;
	}
	struct fx_etcd *m = &f->m[r->leader];
	long long t = cpu_ticks(m->pid);
	etcd_before[r->leader] = t >= 0 ? t - start->etcd[r->leader] : 0;
	r->kill_us = time_mono_us();
	fx_etcd_kill(m);
	note(f, "killed the leader m%d at %.2f s", r->leader + 1, (double)(r->kill_us - r->start_us) / 1e6);
	int64_t restart_at = r->kill_us + (int64_t)f->o.restart_after_ms * 1000;
	while (time_mono_us() < restart_at) {
		if (r->new_leader < 0) {
			int l = find_leader(f);
			if (l >= 0) {
				r->new_leader = l;
				r->elected_us = time_mono_us();
			}
		}
		time_sleep_us(20000);
	}
	r->restart_us = time_mono_us();
	fx_etcd_restart(m);
	r->healthy_us = time_mono_us();
	note(f, "restarted m%d (healthy after %.0f ms)", r->leader + 1, (double)(r->healthy_us - r->restart_us) / 1e3);
}

/* Changes sent that not every HAProxy has shown yet. */
static int64_t in_flight(const struct fleet *f)
{
	int64_t n = 0;
	for (int64_t i = 0; i < f->r->n_ch; i++) {
		const struct fx_fleet_change *ch = &f->r->ch[i];
		n += !__atomic_load_n(&ch->failed, __ATOMIC_ACQUIRE) &&
		     __atomic_load_n(&ch->n_seen, __ATOMIC_ACQUIRE) < f->o.controllers;
	}
	return n;
}

/* Waits for every change to be seen everywhere: up to settle_ms, or until stall_ms pass with
 * none seen. */
static void wait_changes(struct fleet *f)
{
	int64_t deadline = time_mono_us() + (int64_t)f->o.settle_ms * 1000, progress = time_mono_us();
	int64_t best = in_flight(f);
	while (best > 0) {
		time_sleep_us(20000);
		int64_t now = time_mono_us(), n = in_flight(f);
		if (n < best) {
			best = n;
			progress = now;
		}
		if (now > deadline || now - progress > (int64_t)f->o.stall_ms * 1000)
			break;
	}
	f->r->settled_us = best == 0 ? time_mono_us() : 0;
}

static void churn(struct fleet *f)
{
	struct fx_fleet_report *r = f->r;
	struct poller_arg pa[FX_FLEET_MAX_CTL];
	pthread_t wt[64];
	struct writer_arg wa[64];
	struct sample s0, s1;
	long long etcd_killed[FX_FLEET_MAX_MEMBERS] = { 0 };
	struct ctl_metrics *m0 = f->m0;
	for (int i = 0; i < f->o.controllers; i++)
		if (ctl_metrics_get(&f->c[i], &m0[i]) != 0)
			fx_die("fleet: controller %d: /metrics does not answer", i);
	for (int i = 0; i < f->o.controllers; i++) {
		pa[i] = (struct poller_arg){ f, &f->c[i] };
		pthread_create(&f->c[i].poller, NULL, poller_main, &pa[i]);
	}
	r->start_us = time_mono_us() + 50000;
	take_sample(f, &s0);
	for (int w = 0; w < f->o.writers; w++) {
		wa[w] = (struct writer_arg){ f, w };
		pthread_create(&wt[w], NULL, writer_main, &wa[w]);
	}
	note(f, "churn: %lld changes at %d/s", (long long)r->n_ch, f->o.rate);
	if (f->o.kill_at_ms >= 0)
		kill_and_restart(f, &s0, etcd_killed);
	for (int w = 0; w < f->o.writers; w++)
		pthread_join(wt[w], NULL);
	take_sample(f, &s1);
	for (int64_t i = 0; i < r->n_ch; i++) {
		r->end_us = r->ch[i].sent_us > r->end_us ? r->ch[i].sent_us : r->end_us;
		if (r->ch[i].sent_us - r->ch[i].due_us > r->max_lag_us)
			r->max_lag_us = r->ch[i].sent_us - r->ch[i].due_us;
		r->failed += r->ch[i].failed;
	}
	r->retries = atomic_load(&f->retries);
	double secs = (double)(s1.at - s0.at) / 1e6, tck = (double)sysconf(_SC_CLK_TCK);
	r->window_s = secs;
	for (int m = 0; m < f->o.members; m++) {
		bool killed = m == r->leader;
		long long used = killed ? etcd_killed[m] + (s1.etcd[m] > 0 ? s1.etcd[m] : 0) : s1.etcd[m] - s0.etcd[m];
		r->etcd_cpu_pct[m] = 100.0 * (double)used / tck / secs;
	}
	for (int i = 0; i < f->o.controllers; i++) {
		r->ctl[i].cpu_pct = 100.0 * (double)(s1.ctl[i] - s0.ctl[i]) / tck / secs;
		r->ctl[i].hap_cpu_pct = s0.hap[i] >= 0 && s1.hap[i] >= 0 ? 100.0 * (double)(s1.hap[i] - s0.hap[i]) / tck / secs
									 : -1;
		r->ctl[i].requests = f->o.count_requests ? s1.req[i] - s0.req[i] : -1;
	}
	r->harness_cpu_pct = 100.0 * (s1.self - s0.self) / secs;
	note(f, "churn done; waiting for the last changes");
	wait_changes(f);
}

/* After the final comparison (the pollers kept timing late changes until then): the pollers
 * stop; each controller's figures over the whole run. */
static void finish(struct fleet *f)
{
	struct fx_fleet_report *r = f->r;
	struct ctl_metrics m1;
	const struct ctl_metrics *m0 = f->m0;
	atomic_store(&f->stop_polling, true);
	for (int i = 0; i < f->o.controllers; i++) {
		pthread_join(f->c[i].poller, NULL);
		r->ctl[i].polls = f->c[i].polls;
	}
	for (int i = 0; i < f->o.controllers; i++) {
		struct fx_fleet_ctl *x = &r->ctl[i];
		if (ctl_metrics_get(&f->c[i], &m1) != 0) {
			x->resyncs = x->apply_mean_ms = x->reconcile_mean_ms = -1;
			continue;
		}
		x->resyncs = m1.resyncs - m0[i].resyncs;
		x->reconciles = m1.rec_count - m0[i].rec_count;
		x->apply_mean_ms = m1.apply_count > m0[i].apply_count ? 1e3 * (m1.apply_sum - m0[i].apply_sum) /
										(m1.apply_count - m0[i].apply_count)
								      : -1;
		x->reconcile_mean_ms = x->reconciles > 0 ? 1e3 * (m1.rec_sum - m0[i].rec_sum) / x->reconciles : -1;
	}
}

void fx_fleet_run(const struct fx_fleet_opts *o, struct fx_fleet_report *r)
{
	struct fleet *f = xcalloc(1, sizeof(*f));
	struct fx_fleet_final final[FX_FLEET_MAX_CTL];
	check_opts(o);
	f->o = *o;
	f->r = r;
	memset(r, 0, sizeof(*r));
	r->o = *o;
	r->leader = r->new_leader = -1;
	r->n_ch = (int64_t)o->rate * o->seconds;
	r->ch = xcalloc((size_t)r->n_ch, sizeof(*r->ch));
	f->rng = 0x9e3779b97f4a7c15ull;
	pthread_mutex_init(&f->pick_mu, NULL);
	int *start_weight = setup_slots(f);

	fx_etcd_cluster_start(f->m, o->members);
	note(f, "etcd cluster of %d up; populating %d instances", o->members, o->instances);
	populate(f);
	for (int i = 0; i < o->controllers; i++)
		ctl_prepare(f, &f->c[i], i); /* relays bind their ports before any frontend is chosen */
	int64_t t0 = time_mono_us();
	for (int i = 0; i < o->controllers; i++)
		ctl_spawn(f, &f->c[i]);
	for (int i = 0; i < o->controllers; i++)
		ctl_wait_ready(&f->c[i]);
	f->m0 = xcalloc(FX_FLEET_MAX_CTL, sizeof(*f->m0));
	if (!wait_converged(f, 60000, 60000, start_weight, final))
		fx_die("fleet: the controllers did not converge on the starting population within 60 s");
	r->converge_us = time_mono_us() - t0;
	note(f, "%d controllers converged in %.0f ms", o->controllers, (double)r->converge_us / 1e3);

	churn(f);
	note(f, "comparing every HAProxy with etcd");
	r->converged = wait_converged(f, o->settle_ms, o->stall_ms, start_weight, final);
	r->final_us = time_mono_us();
	for (int i = 0; i < o->controllers; i++)
		r->ctl[i].final = final[i];
	finish(f);

	for (int i = 0; i < o->controllers; i++)
		ctl_stop(&f->c[i]);
	for (int m = 0; m < o->members; m++)
		fx_etcd_free(&f->m[m]);
	pthread_mutex_destroy(&f->pick_mu);
	free(f->m0);
	free(f->slots);
	free(start_weight);
	free(f);
}

/* ---------------------------------------------------------------- figures */

static bool in_window(const struct fx_fleet_report *r, const struct fx_fleet_change *ch)
{
	int64_t w = (int64_t)r->o.window_ms * 1000;
	return r->kill_us > 0 && ch->sent_us >= r->kill_us - w && ch->sent_us <= r->kill_us + w;
}

static bool in_span(const struct fx_fleet_report *r, const struct fx_fleet_change *ch, enum fx_fleet_span span)
{
	return span == FX_FLEET_ALL || in_window(r, ch) == (span == FX_FLEET_KILL);
}

static void stats_of(const struct fx_fleet_report *r, int ctl, enum fx_fleet_span span, int kind,
		     struct fx_fleet_stats *out)
{
	int64_t *lat = xcalloc((size_t)r->n_ch + 1, sizeof(*lat));
	memset(out, 0, sizeof(*out));
	for (int64_t i = 0; i < r->n_ch; i++) {
		const struct fx_fleet_change *ch = &r->ch[i];
		if (ch->sent_us == 0 || ch->failed || !in_span(r, ch, span) || (kind >= 0 && ch->kind != kind))
			continue;
		int64_t seen = 0;
		bool all = true;
		for (int c = 0; c < r->o.controllers; c++) {
			if (ctl >= 0 && c != ctl)
				continue;
			all = all && ch->seen_us[c] > 0;
			seen = ch->seen_us[c] > seen ? ch->seen_us[c] : seen;
		}
		if (!all) {
			out->unseen++;
			continue;
		}
		lat[out->n++] = seen - ch->sent_us;
		out->over_2s += seen - ch->sent_us > 2 * USEC_PER_SEC;
	}
	qsort(lat, (size_t)out->n, sizeof(*lat), fx_cmp_i64);
	out->p50 = fx_pct_ms(lat, (size_t)out->n, 0.50);
	out->p99 = fx_pct_ms(lat, (size_t)out->n, 0.99);
	out->max = fx_pct_ms(lat, (size_t)out->n, 1.0);
	free(lat);
}

void fx_fleet_stats(const struct fx_fleet_report *r, int ctl, enum fx_fleet_span span, struct fx_fleet_stats *out)
{
	stats_of(r, ctl, span, -1, out);
}

/* Write times (acked - sent) of the changes of a span: p50, p99, max in ms. */
static void write_stats(const struct fx_fleet_report *r, enum fx_fleet_span span, double *p50, double *p99,
			double *max)
{
	int64_t *v = xcalloc((size_t)r->n_ch + 1, sizeof(*v)), n = 0;
	for (int64_t i = 0; i < r->n_ch; i++)
		if (r->ch[i].acked_us > 0 && in_span(r, &r->ch[i], span))
			v[n++] = r->ch[i].acked_us - r->ch[i].sent_us;
	qsort(v, (size_t)n, sizeof(*v), fx_cmp_i64);
	*p50 = fx_pct_ms(v, (size_t)n, 0.5);
	*p99 = fx_pct_ms(v, (size_t)n, 0.99);
	*max = fx_pct_ms(v, (size_t)n, 1.0);
	free(v);
}

static double since_start_s(const struct fx_fleet_report *r, int64_t t)
{
	return (double)(t - r->start_us) / 1e6;
}

static void print_lat_row(const struct fx_fleet_report *r, FILE *out, const char *who, int ctl)
{
	struct fx_fleet_stats a, st, w;
	fx_fleet_stats(r, ctl, FX_FLEET_ALL, &a);
	fx_fleet_stats(r, ctl, FX_FLEET_STEADY, &st);
	fx_fleet_stats(r, ctl, FX_FLEET_KILL, &w);
	fprintf(out, "  %-6s %6lld %8.2f %8.2f %8.2f %4lld %4lld | %6lld %8.2f %8.2f %8.2f | %5lld %8.2f %8.2f %8.2f %4lld %4lld\n",
		who, (long long)a.n, a.p50, a.p99, a.max, (long long)a.over_2s, (long long)a.unseen, (long long)st.n,
		st.p50, st.p99, st.max, (long long)w.n, w.p50, w.p99, w.max, (long long)w.over_2s, (long long)w.unseen);
}

void fx_fleet_print(const struct fx_fleet_report *r, FILE *out)
{
	const struct fx_fleet_opts *o = &r->o;
	int64_t sent = 0;
	for (int64_t i = 0; i < r->n_ch; i++)
		sent += r->ch[i].sent_us > 0;
	fprintf(out, "fleet: %d etcd members, %d controllers (each its own HAProxy), %d instances in %d services, "
		     "%d changes/s for %d s from %d writer threads\n",
		o->members, o->controllers, o->instances, o->services, o->rate, o->seconds, o->writers);
	fprintf(out, "cold start: %d controllers started -> every HAProxy equal to etcd in %.0f ms\n", o->controllers,
		(double)r->converge_us / 1e3);
	fprintf(out, "churn: %lld changes sent (%ld adds, %ld deletes, %ld weight changes), %.0f changes/s achieved, "
		     "worst schedule lag %.1f ms, write retries %ld, writes failed %ld, waits for a free instance %ld\n",
		(long long)sent, r->adds, r->dels, r->weights, (double)sent / r->window_s, (double)r->max_lag_us / 1e3,
		r->retries, r->failed, r->slot_waits);
	if (r->leader >= 0)
		fprintf(out, "leader: m%d killed -9 at %.2f s; restarted at %.2f s, healthy after %.0f ms; ", r->leader + 1,
			since_start_s(r, r->kill_us), since_start_s(r, r->restart_us),
			(double)(r->healthy_us - r->restart_us) / 1e3);
	if (r->leader >= 0 && r->new_leader >= 0)
		fprintf(out, "new leader m%d seen %.0f ms after the kill\n", r->new_leader + 1,
			(double)(r->elected_us - r->kill_us) / 1e3);
	else if (r->leader >= 0)
		fprintf(out, "no new leader seen before the restart\n");
	double p50, p99, max, wp50, wp99, wmax;
	write_stats(r, FX_FLEET_ALL, &p50, &p99, &max);
	write_stats(r, FX_FLEET_KILL, &wp50, &wp99, &wmax);
	fprintf(out, "etcd write (sent -> 200): p50 %.2f p99 %.2f max %.2f ms; within +-%d ms of the kill: p50 %.2f "
		     "p99 %.2f max %.2f ms\n",
		p50, p99, max, o->window_ms, wp50, wp99, wmax);
	fprintf(out, "latency, ms: put sent -> visible in `show servers state` (fleet: the last of %d HAProxys)\n",
		o->controllers);
	fprintf(out, "  %-6s %-42s | %-33s | changes sent within +-%d ms of the kill\n", "", "whole run",
		"the others (steady)", o->window_ms);
	fprintf(out, "  %-6s %6s %8s %8s %8s %4s %4s | %6s %8s %8s %8s | %5s %8s %8s %8s %4s %4s\n", "", "n", "p50", "p99",
		"max", ">2s", "miss", "n", "p50", "p99", "max", "n", "p50", "p99", "max", ">2s", "miss");
	for (int c = 0; c < o->controllers; c++) {
		char who[16];
		snprintf(who, sizeof(who), "ctl%d", c);
		print_lat_row(r, out, who, c);
	}
	print_lat_row(r, out, "fleet", -1);
	static const char *const kinds[] = { "adds", "deletes", "weight changes" };
	fprintf(out, "  fleet-wide by kind, whole run:");
	for (int k = 0; k < 3; k++) {
		struct fx_fleet_stats ks;
		stats_of(r, -1, FX_FLEET_ALL, k, &ks);
		fprintf(out, "%s %s p50 %.2f p99 %.2f max %.2f", k ? ";" : "", kinds[k], ks.p50, ks.p99, ks.max);
	}
	fprintf(out, " (a delete is visible at the drain)\n");
	if (r->settled_us > 0)
		fprintf(out, "every change was seen in every HAProxy %.1f s after the last one was sent\n",
			(double)(r->settled_us - r->end_us) / 1e6);
	else
		fprintf(out, "not every change was seen in every HAProxy: the wait ended %.1f s after the last one was sent "
			     "(%d s at most, or %d s without progress)\n",
			(double)(r->final_us - r->end_us) / 1e6, o->settle_ms / 1000, o->stall_ms / 1000);
	fprintf(out, "final comparison with etcd, %.1f s after the last change was sent, %s (%d keys; etcd vs what was "
		     "written: %d mismatches):\n",
		(double)(r->final_us - r->end_us) / 1e6, r->converged ? "converged" : "NOT converged", r->etcd_keys,
		r->model_mismatch);
	for (int c = 0; c < o->controllers; c++) {
		const struct fx_fleet_ctl *x = &r->ctl[c];
		fprintf(out, "  ctl%d: servers %d, lost %d, duplicated %d, lingering %d; resyncs %.0f; etcd requests %s",
			c, x->final.servers, x->final.lost, x->final.dup, x->final.lingering, x->resyncs,
			x->requests >= 0 ? "" : "not counted");
		if (x->requests >= 0)
			fprintf(out, "%.1f/s (%ld)", (double)x->requests / r->window_s, x->requests);
		fprintf(out, "; CPU: controller %.1f%%, its HAProxy %.1f%%; poll rounds %lld\n", x->cpu_pct, x->hap_cpu_pct,
			(long long)x->polls);
		fprintf(out, "        its own metrics: registry change -> HAProxy acknowledged mean %.2f ms; %.0f reconcile "
			     "rounds, mean %.2f ms\n",
			x->apply_mean_ms, x->reconciles, x->reconcile_mean_ms);
	}
	fprintf(out, "etcd CPU over the churn (%.1f s), %% of one core:", r->window_s);
	for (int m = 0; m < o->members; m++)
		fprintf(out, " m%d %.1f%s", m + 1, r->etcd_cpu_pct[m], m == r->leader ? " (killed, restarted)" : "");
	fprintf(out, "; this harness (writers, pollers, relays) %.1f%%\n", r->harness_cpu_pct);
}

static json_t *stats_json(const struct fx_fleet_report *r, int ctl, enum fx_fleet_span span)
{
	struct fx_fleet_stats s;
	fx_fleet_stats(r, ctl, span, &s);
	return json_pack("{s:I,s:f,s:f,s:f,s:I,s:I}", "n", (json_int_t)s.n, "p50_ms", s.p50, "p99_ms", s.p99, "max_ms",
			 s.max, "over_2s", (json_int_t)s.over_2s, "unseen", (json_int_t)s.unseen);
}

char *fx_fleet_json(const struct fx_fleet_report *r)
{
	const struct fx_fleet_opts *o = &r->o;
	json_t *ctls = json_array(), *cpu = json_array();
	int lost = 0, dup = 0;
	double resync = 0;
	for (int c = 0; c < o->controllers; c++) {
		const struct fx_fleet_ctl *x = &r->ctl[c];
		lost += x->final.lost;
		dup += x->final.dup;
		resync += x->resyncs;
		json_array_append_new(
			ctls, json_pack("{s:i,s:o,s:o,s:o,s:i,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "index", c, "all",
					stats_json(r, c, FX_FLEET_ALL), "steady", stats_json(r, c, FX_FLEET_STEADY),
					"kill_window", stats_json(r, c, FX_FLEET_KILL), "servers", x->final.servers, "lost",
					x->final.lost, "duplicated", x->final.dup, "lingering", x->final.lingering,
					"resyncs", x->resyncs, "etcd_requests_per_s",
					x->requests >= 0 ? (double)x->requests / r->window_s : -1.0, "cpu_pct", x->cpu_pct,
					"own_apply_mean_ms", x->apply_mean_ms, "own_reconcile_mean_ms", x->reconcile_mean_ms,
					"haproxy_cpu_pct", x->hap_cpu_pct));
	}
	for (int m = 0; m < o->members; m++)
		json_array_append_new(cpu, json_real(r->etcd_cpu_pct[m]));
	json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:i,s:i,s:f,s:i,s:i,s:o,s:f}",
			      "commit", VX_VERSION, "members", o->members, "controllers", o->controllers, "instances",
			      o->instances, "services", o->services, "rate", o->rate, "seconds", o->seconds,
			      "window_s", r->window_s, "converge_ms", (double)r->converge_us / 1e3, "changes",
			      (json_int_t)r->n_ch, "write_retries", (json_int_t)r->retries, "writes_failed",
			      (json_int_t)r->failed, "fleet", stats_json(r, -1, FX_FLEET_ALL), "fleet_steady",
			      stats_json(r, -1, FX_FLEET_STEADY), "fleet_kill_window", stats_json(r, -1, FX_FLEET_KILL), "per_controller", ctls, "lost", lost, "duplicated", dup,
			      "resyncs", resync, "leader_killed", r->leader + 1, "etcd_keys", r->etcd_keys,
			      "etcd_cpu_pct", cpu, "harness_cpu_pct", r->harness_cpu_pct);
	json_object_set_new(j, "achieved_rate", json_real((double)r->n_ch / r->window_s));
	json_object_set_new(j, "max_schedule_lag_ms", json_real((double)r->max_lag_us / 1e3));
	json_object_set_new(j, "converged", json_boolean(r->converged));
	json_object_set_new(j, "settled_after_last_s",
			    json_real(r->settled_us > 0 ? (double)(r->settled_us - r->end_us) / 1e6 : -1.0));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

void fx_fleet_report_release(struct fx_fleet_report *r)
{
	free(r->ch);
	r->ch = NULL;
	r->n_ch = 0;
}
