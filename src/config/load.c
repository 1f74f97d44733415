/* The loader: file -> bounded text -> YAML tree -> typed config, walking the tree with the
 * schema rows. Every problem becomes a finding (with position and key path) and the walk
 * goes on, so that one run reports everything; the config is returned only without errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/strutil.h"
#include "config/internal.h"
#include "config/yaml.h"

#define KEY_MAX 64

struct loader {
	const char *file;
	struct cfg_diags *d;
	struct vx_config *cfg;
};

/* ---- positions ---- */

static void pos_add(struct vx_config *cfg, const char *path, const struct ynode *at, bool bad)
{
	struct cfg_positions *p = cfg->positions;
	p->items = xgrow(p->items, sizeof(*p->items), &p->cap, p->n + 1);
	p->items[p->n++] = (struct cfg_pos){ xstrdup(path), at->line, at->col, bad };
	p->sorted = false;
}

static int pos_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cfg_pos *)a)->path, ((const struct cfg_pos *)b)->path);
}

static void pos_sort(struct cfg_positions *p)
{
	if (p->n)
		qsort(p->items, p->n, sizeof(*p->items), pos_cmp);
	p->sorted = true;
}

const struct cfg_pos *cfg_pos_find(const struct vx_config *cfg, const char *path)
{
	const struct cfg_positions *p = cfg->positions;
	if (!p || p->n == 0)
		return NULL;
	if (p->sorted) {
		struct cfg_pos key = { .path = (char *)(uintptr_t)path };
		return bsearch(&key, p->items, p->n, sizeof(*p->items), pos_cmp);
	}
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i].path, path) == 0)
			return &p->items[i];
	return NULL;
}

bool cfg_path_bad(const struct vx_config *cfg, const char *path)
{
	const struct cfg_pos *p = cfg_pos_find(cfg, path);
	return p && p->bad;
}

bool cfg_key_given(const struct vx_config *cfg, const char *path)
{
	return cfg_pos_find(cfg, path) != NULL;
}

bool cfg_key_pos(const struct vx_config *cfg, const char *path, int *line, int *col)
{
	char tmp[256];
	if (str_copy(tmp, sizeof(tmp), path) != 0)
		return false;
	for (;;) {
		const struct cfg_pos *p = cfg_pos_find(cfg, tmp);
		if (p && p->line > 0) {
			*line = p->line;
			*col = p->col;
			return true;
		}
		char *dot = strrchr(tmp, '.'), *br = strrchr(tmp, '[');
		char *cut = dot > br ? dot : br;
		if (!cut)
			return false;
		*cut = '\0';
	}
}

/* ---- findings ---- */

__attribute__((format(printf, 6, 7))) static void lerr(struct loader *L, const struct ynode *at, const char *path,
							 enum cfg_severity sev, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_diags_vadd(L->d, sev, L->file, at ? at->line : 0, at ? at->col : 0, path, NULL,
		       hint && *hint ? hint : NULL, fmt, ap);
	va_end(ap);
}

static char *join(const char *a, const char *b)
{
	return *a ? xasprintf("%s.%s", a, b) : xstrdup(b);
}

static const char *kind_phrase(enum ykind k)
{
	static const char *const names[] = { [Y_NULL] = "an empty value", [Y_SCALAR] = "a single value",
					     [Y_SEQ] = "a list", [Y_MAP] = "a mapping" };
	return names[k];
}

/* The leaf of a schema path: "services[].health.interval" -> "interval". */
static const char *leaf(const char *path)
{
	const char *dot = strrchr(path, '.');
	return dot ? dot + 1 : path;
}

static bool row_under(const struct cfg_key *row, const char *spath)
{
	size_t n = strlen(spath);
	if (n == 0)
		return strchr(row->path, '.') == NULL;
	return strncmp(row->path, spath, n) == 0 && row->path[n] == '.' && !strchr(row->path + n + 1, '.');
}

/* ---- unknown keys: "did you mean" ---- */

static const struct cfg_key *closest_sibling(const char *spath, const char *key)
{
	const struct cfg_key *best = NULL;
	int best_d = 255;
	for (size_t i = 0; i < cfg_schema_len; i++) {
		if (!row_under(&cfg_schema[i], spath))
			continue;
		int dist = str_edit_distance(key, leaf(cfg_schema[i].path));
		if (dist < best_d) {
			best_d = dist;
			best = &cfg_schema[i];
		}
	}
	size_t len = strlen(key);
	return best && (best_d <= 2 || (size_t)best_d * 3 <= len) && (size_t)best_d < len ? best : NULL;
}

/* The key exists, but at another level: "interval" under a service belongs to health. */
static const struct cfg_key *same_leaf_elsewhere(const char *key)
{
	for (size_t i = 0; i < cfg_schema_len; i++)
		if (strcmp(leaf(cfg_schema[i].path), key) == 0)
			return &cfg_schema[i];
	return NULL;
}

static void list_siblings(const char *spath, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "valid keys here: ");
	bool first = true;
	for (size_t i = 0; i < cfg_schema_len && n < cap; i++) {
		if (!row_under(&cfg_schema[i], spath))
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", first ? "" : ", ", leaf(cfg_schema[i].path));
		first = false;
	}
}

/* A path shown to the user relative to where they are: "health.interval" inside a service. */
static const char *relative(const char *path, const char *spath)
{
	size_t n = strlen(spath);
	if (n && strncmp(path, spath, n) == 0 && path[n] == '.')
		return path + n + 1;
	return path;
}

static void unknown_key(struct loader *L, const struct ynode *k, const char *spath, const char *ipath)
{
	char q[CFG_QUOTE_MAX + 8], hint[512];
	cfg_quote(q, sizeof(q), k->text);
	const struct cfg_key *near = closest_sibling(spath, k->text);
	const struct cfg_key *other = near ? NULL : same_leaf_elsewhere(k->text);
	if (near)
		snprintf(hint, sizeof(hint), "did you mean `%s`?", leaf(near->path));
	else if (other)
		snprintf(hint, sizeof(hint), "did you mean `%s`? (this key belongs there)", relative(other->path, spath));
	else
		list_siblings(spath, hint, sizeof(hint));
	lerr(L, k, ipath, CFG_SEV_ERROR, hint, "unknown key %s", q);
}

/* ---- the walk ---- */

static void load_map(struct loader *L, const struct ynode *map, const char *spath, const char *ipath, void *base);

static void type_error(struct loader *L, const struct cfg_key *row, const struct ynode *v, const char *ipath)
{
	const char *hint;
	switch (row->type) {
	case CFG_T_SECTION:
		hint = "write its keys indented below it";
		break;
	case CFG_T_SERVICES:
		hint = "write one `- name: ...` item per service";
		break;
	case CFG_T_URLS:
	case CFG_T_CIDRS:
		hint = "write a list: [a, b], or one `- item` per line";
		break;
	default:
		hint = "write a single value on the same line as the key";
		break;
	}
	lerr(L, v, ipath, CFG_SEV_ERROR, hint, "expected %s, found %s", cfg_type_phrase(row->type), kind_phrase(v->kind));
	pos_add(L->cfg, ipath, v, true);
}

static void missing_value(struct loader *L, const struct cfg_key *row, const struct ynode *v, const char *ipath)
{
	char hint[256];
	if (row->def)
		snprintf(hint, sizeof(hint), "write %s, or remove the key to use the default (%s)",
			 cfg_type_phrase(row->type), row->def);
	else
		snprintf(hint, sizeof(hint), "write %s, or remove the key", cfg_type_phrase(row->type));
	lerr(L, v, ipath, CFG_SEV_ERROR, hint, "missing value");
	pos_add(L->cfg, ipath, v, true);
}

static void load_scalar(struct loader *L, const struct cfg_key *row, const struct ynode *v, const char *ipath,
			void *base)
{
	char why[512], hint[768];
	bool bad = cfg_value_set(row, v->text, base, why, sizeof(why), hint, sizeof(hint)) != 0;
	if (bad)
		lerr(L, v, ipath, CFG_SEV_ERROR, hint, "%s", why);
	pos_add(L->cfg, ipath, v, bad);
}

static void load_list(struct loader *L, const struct cfg_key *row, const struct ynode *seq, const char *ipath,
		      void *base)
{
	char why[512], hint[768];
	bool bad = false;
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *item = seq->kids[i];
		char *ip = xasprintf("%s[%zu]", ipath, i);
		if (item->kind != Y_SCALAR) {
			lerr(L, item, ip, CFG_SEV_ERROR, "write each item as a single value", "expected %s, found %s",
			     row->type == CFG_T_URLS ? "a URL" : "a CIDR", kind_phrase(item->kind));
			bad = true;
		} else if (cfg_list_append(row, item->text, base, why, sizeof(why), hint, sizeof(hint)) != 0) {
			lerr(L, item, ip, CFG_SEV_ERROR, hint, "%s", why);
			bad = true;
		}
		pos_add(L->cfg, ip, item, false);
		free(ip);
	}
	pos_add(L->cfg, ipath, seq, bad);
}

static void load_services(struct loader *L, const struct ynode *seq, const char *ipath)
{
	struct vx_config *cfg = L->cfg;
	cfg->services = xcalloc(seq->n, sizeof(*cfg->services));
	cfg->n_services = seq->n;
	pos_add(cfg, ipath, seq, false);
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *item = seq->kids[i];
		char *ip = xasprintf("%s[%zu]", ipath, i);
		cfg_defaults_apply(CFG_SCOPE_SERVICE, &cfg->services[i]);
		pos_add(cfg, ip, item, item->kind != Y_MAP);
		if (item->kind == Y_MAP)
			load_map(L, item, "services[]", ip, &cfg->services[i]);
		else
			lerr(L, item, ip, CFG_SEV_ERROR, "write `- name: web` with `bind: 127.0.0.1:8080` below it",
			     "expected a service (a mapping with name, bind, ...), found %s", kind_phrase(item->kind));
		free(ip);
	}
}

static void load_value(struct loader *L, const struct cfg_key *row, const struct ynode *v, const char *spath,
		       const char *ipath, void *base)
{
	bool is_list = row->type == CFG_T_URLS || row->type == CFG_T_CIDRS;
	bool want_map = row->type == CFG_T_SECTION;
	bool want_seq = row->type == CFG_T_SERVICES || is_list;
	if (v->kind == Y_NULL && (want_map || want_seq)) {
		pos_add(L->cfg, ipath, v, false); /* an empty section or list: all defaults */
	} else if (v->kind == Y_NULL) {
		missing_value(L, row, v, ipath);
	} else if (want_map && v->kind == Y_MAP) {
		pos_add(L->cfg, ipath, v, false);
		load_map(L, v, spath, ipath, base);
	} else if (row->type == CFG_T_SERVICES && v->kind == Y_SEQ) {
		load_services(L, v, ipath);
	} else if (is_list && v->kind == Y_SEQ) {
		load_list(L, row, v, ipath, base);
	} else if (!want_map && !want_seq && v->kind == Y_SCALAR) {
		load_scalar(L, row, v, ipath, base);
	} else {
		type_error(L, row, v, ipath);
	}
}

static bool key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

struct seen {
	int line;
};

static void load_pair(struct loader *L, const struct ynode *k, const struct ynode *v, const char *spath,
		      const char *ipath, void *base, struct seen *seen)
{
	char *sp = join(spath, k->text), *ip = join(ipath, k->text);
	const struct cfg_key *row = str_all_in(k->text, k->len, KEY_MAX, key_char) ? cfg_schema_find(sp) : NULL;
	if (!row) {
		unknown_key(L, k, spath, ip);
	} else if (seen[row - cfg_schema].line) {
		char hint[96];
		snprintf(hint, sizeof(hint), "keep only one; the first is on line %d", seen[row - cfg_schema].line);
		lerr(L, k, ip, CFG_SEV_ERROR, hint, "duplicate key `%s`", k->text);
	} else {
		seen[row - cfg_schema].line = k->line > 0 ? k->line : 1;
		load_value(L, row, v, sp, ip, base);
	}
	free(sp);
	free(ip);
}

static void check_required(struct loader *L, const struct ynode *map, const char *spath, const char *ipath,
			   const struct seen *seen)
{
	for (size_t i = 0; i < cfg_schema_len; i++) {
		const struct cfg_key *row = &cfg_schema[i];
		if (!(row->flags & CFG_F_REQUIRED) || seen[i].line || !row_under(row, spath))
			continue;
		char *ip = join(ipath, leaf(row->path));
		char hint[128];
		snprintf(hint, sizeof(hint), "add `%s:` with %s", leaf(row->path), cfg_type_phrase(row->type));
		lerr(L, map, ip, CFG_SEV_ERROR, hint, "missing required key `%s`", leaf(row->path));
		free(ip);
	}
}

static void load_map(struct loader *L, const struct ynode *map, const char *spath, const char *ipath, void *base)
{
	struct seen *seen = xcalloc(cfg_schema_len, sizeof(*seen));
	for (size_t i = 0; i + 1 < map->n; i += 2)
		load_pair(L, map->kids[i], map->kids[i + 1], spath, ipath, base, seen);
	check_required(L, map, spath, ipath, seen);
	free(seen);
}

/* ---- configs ---- */

static struct vx_config *config_new(const char *path)
{
	struct vx_config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = path ? xstrdup(path) : NULL;
	cfg->positions = xcalloc(1, sizeof(*cfg->positions));
	cfg_defaults_apply(CFG_SCOPE_ROOT, cfg);
	return cfg;
}

/* Relative paths are taken from the working directory and made absolute once, at load: HAProxy
 * reads a socket path that does not start with '/' as host:port, and a reload or a child
 * process may run elsewhere. */
static void make_absolute(char **path)
{
	char cwd[4096];
	if (!*path || (*path)[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	const char *rel = (*path)[0] == '.' && (*path)[1] == '/' ? *path + 2 : *path;
	char *abs = xasprintf("%s/%s", cwd, rel);
	free(*path);
	*path = abs;
}

/* Defaults that depend on other keys. */
static void finish_defaults(struct vx_config *cfg)
{
	struct cfg_haproxy *h = &cfg->haproxy;
	make_absolute(&cfg->etcd.data_dir);
	make_absolute(&cfg->agent.shared_lease);
	make_absolute(&h->state_dir);
	make_absolute(&h->runtime_socket);
	make_absolute(&h->master_socket);
	if (h->mode != HAP_MODE_MANAGED)
		return;
	if (!h->runtime_socket)
		h->runtime_socket = xasprintf("%s/runtime.sock", h->state_dir);
	if (!h->master_socket)
		h->master_socket = xasprintf("%s/master.sock", h->state_dir);
}

void cfg_free(struct vx_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++)
		cfg_values_release(CFG_SCOPE_SERVICE, &cfg->services[i]);
	free(cfg->services);
	cfg_values_release(CFG_SCOPE_ROOT, cfg);
	if (cfg->positions) {
		for (size_t i = 0; i < cfg->positions->n; i++)
			free(cfg->positions->items[i].path);
		free(cfg->positions->items);
		free(cfg->positions);
	}
	free(cfg->path);
	free(cfg);
}

struct vx_config *cfg_default(void)
{
	struct vx_config *cfg = config_new(NULL);
	finish_defaults(cfg);
	pos_sort(cfg->positions);
	return cfg;
}

static void load_root(struct loader *L, const struct ynode *root)
{
	if (!root) {
		lerr(L, NULL, NULL, CFG_SEV_ERROR,
		     "start from examples/veltrix.yaml, or write at least `services: [{name: web, bind: 127.0.0.1:8080}]`",
		     "the configuration is empty");
		return;
	}
	if (root->kind != Y_MAP) {
		lerr(L, root, NULL, CFG_SEV_ERROR, "write sections such as `etcd:`, `haproxy:` and `services:` at the top",
		     "the top level must be a mapping of sections, found %s", kind_phrase(root->kind));
		return;
	}
	load_map(L, root, "", "", L->cfg);
}

struct vx_config *cfg_load_buffer(const char *name, const char *data, size_t len, struct cfg_diags *d)
{
	size_t errors = d->n_errors;
	struct vx_config *cfg = config_new(name);
	struct loader L = { .file = name, .d = d, .cfg = cfg };
	struct ynode *root = NULL;
	if (!data)
		data = "";
	if (len > CFG_MAX_FILE_BYTES)
		lerr(&L, NULL, NULL, CFG_SEV_ERROR, "keep the configuration under 1 MiB",
		     "%zu bytes is larger than the limit of %d bytes", len, CFG_MAX_FILE_BYTES);
	else if (yaml_parse(name, data, len, &root, d) == 0)
		load_root(&L, root);
	ynode_free(root);
	if (d->n_errors == errors || cfg->positions->n > 0) {
		finish_defaults(cfg);
		pos_sort(cfg->positions);
		cfg_validate(cfg, d);
	}
	if (d->n_errors != errors) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

char *yaml_read_file(const char *path, size_t max, const char *what, const char *hint_missing, size_t *len,
		     struct cfg_diags *d)
{
	struct buf b = BUF_INIT(max);
	char *out = NULL;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		cfg_diags_add(d, CFG_SEV_ERROR, path, 0, 0, NULL, NULL, errno == ENOENT ? hint_missing : NULL,
			      "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		cfg_diags_add(d, CFG_SEV_ERROR, path, 0, 0, NULL, NULL, NULL, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		bool dir = S_ISDIR(st.st_mode);
		cfg_diags_add(d, CFG_SEV_ERROR, path, 0, 0, NULL, NULL,
			      dir ? "give the YAML file itself, such as DIR/veltrix.yaml" : "give a regular YAML file",
			      dir ? "is a directory" : "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > max)
		goto too_big;
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cfg_diags_add(d, CFG_SEV_ERROR, path, 0, 0, NULL, NULL, NULL, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (buf_append(&b, chunk, (size_t)n) != 0)
			goto too_big;
	}
	out = buf_detach(&b, len);
	if (!out) {
		out = xstrdup("");
		*len = 0;
	}
	goto out;
too_big:
	cfg_diags_add(d, CFG_SEV_ERROR, path, 0, 0, NULL, NULL, "check that this is the right file",
		      "file is larger than the limit of %zu bytes for %s; not read", max, what);
out:
	buf_release(&b);
	close(fd);
	return out;
}

struct vx_config *cfg_load(const char *path, struct cfg_diags *d)
{
	size_t len = 0;
	char *data = yaml_read_file(path, CFG_MAX_FILE_BYTES, "a configuration",
				    "pass -c FILE, set VELTRIX_CONFIG, or create ./veltrix.yaml (see examples/veltrix.yaml)",
				    &len, d);
	if (!data)
		return NULL;
	struct vx_config *cfg = cfg_load_buffer(path, data, len, d);
	free(data);
	return cfg;
}

const struct cfg_service *cfg_service_find(const struct vx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].name && strcmp(cfg->services[i].name, name) == 0)
			return &cfg->services[i];
	return NULL;
}

const char *cfg_path_resolve(const char *flag_path, bool *explicit_out)
{
	const char *env = getenv("VELTRIX_CONFIG");
	const char *path = flag_path ? flag_path : env && *env ? env : "veltrix.yaml";
	if (explicit_out)
		*explicit_out = flag_path || (env && *env);
	return path;
}

struct vx_config *cfg_load_resolved(const char *flag_path, struct cfg_diags *d)
{
	bool explicit_path;
	const char *path = cfg_path_resolve(flag_path, &explicit_path);
	if (!explicit_path && access(path, F_OK) != 0 && errno == ENOENT)
		return cfg_default();
	return cfg_load(path, d);
}
