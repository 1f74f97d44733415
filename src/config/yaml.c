/* YAML text -> a small tree of ynodes, through libfyaml's event parser.
 *
 * Why events and not libfyaml's document API: the tree is bounded as it is built (depth,
 * number of values), aliases are refused at the first one (no billion laughs: nothing is ever
 * expanded), duplicate keys are left for the loader to report with both positions, and
 * libfyaml's own messages are captured through its diag API instead of reaching stderr. */
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/utf8.h"
#include "config/internal.h"

struct builder {
	const char *file;
	struct cfg_diags *d;
	struct ynode *root;
	struct ynode *stack[CFG_MAX_DEPTH];
	int depth;
	size_t nodes;
	int docs;
	bool failed;
};

void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static void fail(struct builder *b, int line, int col, const char *hint, const char *msg)
{
	cfg_diags_add(b->d, CFG_SEV_ERROR, b->file, line, col, NULL, NULL, hint, "%s", msg);
	b->failed = true;
}

static void mark_pos(struct fy_event *e, int *line, int *col)
{
	const struct fy_mark *m = fy_event_start_mark(e);
	*line = m && m->line >= 0 ? m->line + 1 : 0;
	*col = m && m->column >= 0 ? m->column + 1 : 0;
}

static bool is_null_text(const char *t)
{
	return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

static struct ynode *scalar_node(struct fy_event *e)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	size_t len = 0;
	const char *t = fy_token_get_text(e->scalar.value, &len);
	n->text = xstrndup(t ? t : "", t ? len : 0);
	n->len = t ? len : 0;
	enum fy_scalar_style st = fy_token_scalar_style(e->scalar.value);
	n->quoted = st != FYSS_PLAIN && st != FYSS_ANY;
	n->kind = !n->quoted && is_null_text(n->text) ? Y_NULL : Y_SCALAR;
	return n;
}

/* Hangs n under the open container (or makes it the root); takes ownership of n. */
static void attach(struct builder *b, struct ynode *n)
{
	if (b->depth == 0) {
		ynode_free(b->root);
		b->root = n;
		return;
	}
	struct ynode *parent = b->stack[b->depth - 1];
	bool is_key = parent->kind == Y_MAP && parent->n % 2 == 0;
	bool is_value = parent->kind == Y_MAP && !is_key;
	if (is_value && n->line == 0) { /* an empty value has no mark: point at its key */
		n->line = parent->kids[parent->n - 1]->line;
		n->col = parent->kids[parent->n - 1]->col;
	}
	parent->kids = xgrow(parent->kids, sizeof(*parent->kids), &parent->cap, parent->n + 1);
	parent->kids[parent->n++] = n;
	if (is_key && n->kind != Y_SCALAR)
		fail(b, n->line, n->col, "write keys as plain words, such as `name:`",
		     "a mapping key must be a plain string, not a list, mapping or empty value");
}

static void on_node(struct builder *b, struct fy_event *e, enum ykind kind)
{
	int line, col;
	mark_pos(e, &line, &col);
	if (++b->nodes > CFG_MAX_NODES) {
		fail(b, line, col, "split the configuration or remove unused values",
		     "more than " VX_STR(CFG_MAX_NODES) " YAML values in one file");
		return;
	}
	struct ynode *n = kind == Y_SCALAR ? scalar_node(e) : xcalloc(1, sizeof(*n));
	if (kind != Y_SCALAR)
		n->kind = kind;
	n->line = line;
	n->col = col;
	/* An escape like "\u0000" would end the C string there: "web\u0000zzz" would read "web". */
	if (kind == Y_SCALAR && memchr(n->text, '\0', n->len))
		fail(b, line, col, "remove the \\0, \\x00 or \\u0000 escape",
		     "a value holds a NUL character, which no setting can contain");
	attach(b, n);
	if (b->failed || kind == Y_SCALAR)
		return;
	if (b->depth >= CFG_MAX_DEPTH) {
		fail(b, line, col, "the configuration needs only a few levels; flatten this value",
		     "nesting deeper than " VX_STR(CFG_MAX_DEPTH) " levels");
		return;
	}
	b->stack[b->depth++] = n;
}

static void on_event(struct builder *b, struct fy_event *e)
{
	int line, col;
	switch (e->type) {
	case FYET_DOCUMENT_START:
		if (++b->docs > 1) {
			mark_pos(e, &line, &col);
			fail(b, line, col, "keep one document: remove the second `---` and what follows, or merge them",
			     "more than one YAML document in the file");
		}
		break;
	case FYET_MAPPING_START:
		on_node(b, e, Y_MAP);
		break;
	case FYET_SEQUENCE_START:
		on_node(b, e, Y_SEQ);
		break;
	case FYET_MAPPING_END:
	case FYET_SEQUENCE_END:
		if (b->depth > 0)
			b->depth--;
		break;
	case FYET_SCALAR:
		on_node(b, e, Y_SCALAR);
		break;
	case FYET_ALIAS:
		mark_pos(e, &line, &col);
		fail(b, line, col, "write the value out in full where it is used",
		     "YAML aliases (*name) are not supported: they can expand without bound");
		break;
	default:
		break;
	}
}

/* libfyaml reports through this only what it does not collect; keep stderr clean. */
static void diag_sink(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag;
	(void)user;
	(void)buf;
	(void)len;
}

static void collect_fy_errors(struct builder *b, struct fy_diag *diag)
{
	void *it = NULL;
	struct fy_diag_error *de;
	bool any = false;
	while ((de = fy_diag_errors_iterate(diag, &it)) != NULL) {
		if (de->type < FYET_ERROR)
			continue;
		cfg_diags_add(b->d, CFG_SEV_ERROR, b->file, de->line, de->column, NULL, NULL,
			      "fix the YAML syntax at this place", "YAML syntax error: %s", de->msg ? de->msg : "?");
		any = true;
	}
	if (!any)
		cfg_diags_add(b->d, CFG_SEV_ERROR, b->file, 0, 0, NULL, NULL, NULL, "YAML syntax error");
	b->failed = true;
}

static void offset_pos(const char *data, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Binary files and broken encodings get one clear message instead of libfyaml's guesses
 * (which silently drops invalid UTF-8). */
static int check_text(struct builder *b, const char *data, size_t len)
{
	const char *nul = memchr(data, '\0', len);
	size_t bad = utf8_check(data, nul ? (size_t)(nul - data) : len);
	size_t at = nul ? (size_t)(nul - data) : len;
	if (bad < at)
		at = bad;
	if (at == len)
		return 0;
	int line, col;
	offset_pos(data, at, &line, &col);
	if (nul && at == (size_t)(nul - data))
		fail(b, line, col, "give a YAML text file", "this is not a text file (NUL byte)");
	else
		fail(b, line, col, "save the file as UTF-8", "text is not valid UTF-8");
	return -1;
}

static struct fy_diag *make_diag(void)
{
	struct fy_diag_cfg dc;
	fy_diag_cfg_default(&dc);
	dc.fp = NULL;
	dc.output_fn = diag_sink;
	dc.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dc);
	if (!diag)
		abort(); /* allocation failure: same policy as xmalloc */
	fy_diag_set_collect_errors(diag, true);
	return diag;
}

static void run_parser(struct builder *b, const char *data, size_t len)
{
	struct fy_diag *diag = make_diag();
	struct fy_parse_cfg pc = { .flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_JSON_NONE, .diag = diag };
	struct fy_parser *p = fy_parser_create(&pc);
	if (!p || fy_parser_set_string(p, len ? data : "", len) != 0)
		abort();
	struct fy_event *e;
	while (!b->failed && (e = fy_parser_parse(p)) != NULL) {
		on_event(b, e);
		fy_parser_event_free(p, e);
	}
	if (!b->failed && fy_parser_get_stream_error(p))
		collect_fy_errors(b, diag);
	fy_parser_destroy(p);
	fy_diag_destroy(diag);
}

int yaml_parse(const char *file, const char *data, size_t len, struct ynode **root, struct cfg_diags *d)
{
	struct builder b = { .file = file, .d = d };
	if (check_text(&b, data, len) == 0)
		run_parser(&b, data, len);
	if (b.failed) {
		ynode_free(b.root);
		return -1;
	}
	*root = b.root;
	return 0;
}
