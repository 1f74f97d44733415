/* Aligned text tables for people: rows of cells, each column as wide as its widest cell.
 *
 * Cells are copied. What reaches the terminal is printable ASCII only: any other byte of a
 * cell (control characters, escape sequences, non-ASCII) is shown as '?', so a value read from
 * outside can never move the cursor or forge a line. */
#ifndef VX_COMMON_TEXTTAB_H
#define VX_COMMON_TEXTTAB_H

#include <stddef.h>

#include <stdio.h>

#define TEXTTAB_COLS_MAX 32
#define TEXTTAB_CELL_MAX 512 /* longer cells are cut (with "...") */

struct texttab {
	size_t n_cols;
	char **cells; /* n_rows * n_cols, row-major */
	size_t n_rows;
	size_t cap;
};

/* n_cols in 1..TEXTTAB_COLS_MAX. */
void texttab_init(struct texttab *t, size_t n_cols);
void texttab_release(struct texttab *t);
/* Appends a row of n_cols cells; a NULL cell is shown as "-". */
void texttab_row(struct texttab *t, const char *const *cells);
/* Writes every row to out, each line starting with indent and columns two spaces apart; the
 * last column is not padded and no line has trailing spaces. */
void texttab_print(const struct texttab *t, const char *indent, FILE *out);

#endif
