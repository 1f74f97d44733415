/* Attach mode: HAProxy belongs to the user, so the controller only ever touches servers it added
 * itself. It remembers them in <state_dir>/owned (one "backend server" per line, rewritten
 * atomically), so a restarted controller still knows which servers are its own and never
 * removes one from the user's configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "controller/ctl_int.h"

#define OWNED_MAX 1000000

struct ctl_owned {
	char *path;
	char **keys; /* "backend/server", sorted */
	size_t n, cap;
	bool dirty;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *key_of(const char *backend, const char *server)
{
	return xasprintf("%s/%s", backend, server);
}

static char **find(const struct ctl_owned *o, const char *key)
{
	if (o->n == 0)
		return NULL; /* keys may still be NULL: bsearch must not see it */
	return bsearch(&key, o->keys, o->n, sizeof(*o->keys), cmp_str);
}

static void insert(struct ctl_owned *o, char *key)
{
	o->keys = xgrow(o->keys, sizeof(*o->keys), &o->cap, o->n + 1);
	size_t i = o->n;
	while (i > 0 && strcmp(o->keys[i - 1], key) > 0) {
		o->keys[i] = o->keys[i - 1];
		i--;
	}
	o->keys[i] = key;
	o->n++;
}

static int read_file(struct ctl_owned *o, FILE *f, struct vxerr *err)
{
	char line[HAP_NAME_MAX * 2 + 8];
	while (fgets(line, sizeof(line), f)) {
		char be[HAP_NAME_MAX + 1], srv[HAP_NAME_MAX + 1];
		line[strcspn(line, "\n")] = '\0';
		char *space = strchr(line, ' ');
		if (!space || (size_t)(space - line) > HAP_NAME_MAX || strlen(space + 1) > HAP_NAME_MAX)
			return vxerr_set(err, "%s: malformed line '%s'", o->path, line);
		memcpy(be, line, (size_t)(space - line));
		be[space - line] = '\0';
		snprintf(srv, sizeof(srv), "%s", space + 1);
		if (!hap_name_valid(be) || !hap_name_valid(srv) || o->n >= OWNED_MAX)
			return vxerr_set(err, "%s: invalid entry '%s'", o->path, line);
		char *key = key_of(be, srv);
		if (find(o, key))
			free(key);
		else
			insert(o, key);
	}
	return 0;
}

struct ctl_owned *ctl_owned_load(const char *state_dir, struct vxerr *err)
{
	if (fs_mkdir_p(state_dir, err) != 0) {
		vxerr_prefix(err, "haproxy.state_dir: ");
		return NULL;
	}
	struct ctl_owned *o = xcalloc(1, sizeof(*o));
	o->path = xasprintf("%s/owned", state_dir);
	FILE *f = fopen(o->path, "r");
	if (!f && errno != ENOENT) {
		vxerr_set(err, "cannot read %s: %s", o->path, strerror(errno));
		ctl_owned_free(o);
		return NULL;
	}
	if (f) {
		int r = read_file(o, f, err);
		fclose(f);
		if (r != 0) {
			ctl_owned_free(o);
			return NULL;
		}
	}
	return o;
}

bool ctl_owned_has(const struct ctl_owned *o, const char *backend, const char *server)
{
	if (!o)
		return false;
	char *key = key_of(backend, server);
	bool has = find(o, key) != NULL;
	free(key);
	return has;
}

void ctl_owned_set(struct ctl_owned *o, const char *backend, const char *server, bool owned)
{
	if (!o)
		return;
	char *key = key_of(backend, server);
	char **hit = find(o, key);
	if (owned && !hit) {
		insert(o, key);
		o->dirty = true;
		return;
	}
	if (!owned && hit) {
		free(*hit);
		size_t i = (size_t)(hit - o->keys);
		memmove(&o->keys[i], &o->keys[i + 1], (o->n - i - 1) * sizeof(*o->keys));
		o->n--;
		o->dirty = true;
	}
	free(key);
}

void ctl_owned_prune(struct ctl_owned *o, const char *backend, bool (*present)(const void *ud, const char *server),
		     const void *ud)
{
	if (!o)
		return;
	size_t blen = strlen(backend), kept = 0;
	for (size_t i = 0; i < o->n; i++) {
		char *k = o->keys[i];
		if (strncmp(k, backend, blen) == 0 && k[blen] == '/' && !present(ud, k + blen + 1)) {
			free(k);
			o->dirty = true;
		} else {
			o->keys[kept++] = k; /* order, and so the sort, is kept */
		}
	}
	o->n = kept;
}

int ctl_owned_save(struct ctl_owned *o, struct vxerr *err)
{
	if (!o || !o->dirty)
		return 0;
	char *tmp = xasprintf("%s.tmp", o->path);
	FILE *f = fopen(tmp, "w");
	int r = -1;
	if (!f) {
		vxerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < o->n; i++) {
		char *slash = strchr(o->keys[i], '/');
		fprintf(f, "%.*s %s\n", (int)(slash - o->keys[i]), o->keys[i], slash + 1);
	}
	if (fclose(f) != 0 || rename(tmp, o->path) != 0) {
		vxerr_set(err, "cannot write %s: %s", o->path, strerror(errno));
		goto out;
	}
	o->dirty = false;
	r = 0;
out:
	free(tmp);
	return r;
}

void ctl_owned_free(struct ctl_owned *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		free(o->keys[i]);
	free(o->keys);
	free(o->path);
	free(o);
}
