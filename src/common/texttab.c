/* Aligned text tables (see texttab.h). */
#include "common/texttab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void texttab_init(struct texttab *t, size_t n_cols)
{
	memset(t, 0, sizeof(*t));
	t->n_cols = n_cols < 1 ? 1 : n_cols > TEXTTAB_COLS_MAX ? TEXTTAB_COLS_MAX : n_cols;
}

void texttab_release(struct texttab *t)
{
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* A printable copy of s, cut to TEXTTAB_CELL_MAX bytes. */
static char *cell_copy(const char *s)
{
	if (!s)
		s = "-";
	size_t n = strlen(s);
	bool cut = n > TEXTTAB_CELL_MAX;
	if (cut)
		n = TEXTTAB_CELL_MAX - 3;
	char *out = xmalloc(n + 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	memcpy(out + n, cut ? "..." : "", cut ? 4 : 1);
	return out;
}

void texttab_row(struct texttab *t, const char *const *cells)
{
	size_t need = (t->n_rows + 1) * t->n_cols;
	t->cells = xgrow(t->cells, sizeof(char *), &t->cap, need);
	for (size_t c = 0; c < t->n_cols; c++)
		t->cells[t->n_rows * t->n_cols + c] = cell_copy(cells[c]);
	t->n_rows++;
}

static void print_row(const struct texttab *t, size_t r, const size_t *width, const char *indent, FILE *out)
{
	char *const *row = t->cells + r * t->n_cols;
	size_t last = t->n_cols;
	while (last > 1 && row[last - 1][0] == '\0')
		last--; /* empty trailing cells would only add spaces */
	fputs(indent, out);
	for (size_t c = 0; c < last; c++)
		fprintf(out, "%s%*s", row[c], c + 1 < last ? (int)(width[c] - strlen(row[c]) + 2) : 0, "");
	fputc('\n', out);
}

void texttab_print(const struct texttab *t, const char *indent, FILE *out)
{
	size_t width[TEXTTAB_COLS_MAX] = { 0 };
	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t c = 0; c < t->n_cols; c++) {
			size_t n = strlen(t->cells[r * t->n_cols + c]);
			width[c] = n > width[c] ? n : width[c];
		}
	for (size_t r = 0; r < t->n_rows; r++)
		print_row(t, r, width, indent ? indent : "", out);
}
