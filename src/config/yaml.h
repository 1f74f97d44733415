/* The bounded YAML reader of the configuration layer, public so that other YAML files (scenario
 * files) get the same limits and the same diagnostics: a plain tree built from libfyaml's events,
 * where every node carries its 1-based line and column, aliases are refused, and nesting
 * (CFG_MAX_DEPTH), size (CFG_MAX_NODES values), binary and non-UTF-8 input are reported as
 * findings into a struct cfg_diags. Duplicate keys are kept in the tree for the caller to report.
 * Nothing here changes how the configuration itself is loaded. */
#ifndef VX_CONFIG_YAML_H
#define VX_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

enum ykind { Y_NULL, Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
	enum ykind kind;
	int line, col; /* 1-based; 0 when unknown */
	bool quoted;   /* scalar written in quotes or as a block */
	char *text;    /* scalar text, NUL-terminated */
	size_t len;
	struct ynode **kids; /* seq: items; map: key, value, key, value ... */
	size_t n, cap;
};

/* Parses data into *root (NULL for an empty document). YAML errors, aliases, binary or
 * non-UTF-8 input, nesting past CFG_MAX_DEPTH and more than CFG_MAX_NODES values are
 * reported into d; returns 0, or -1 when something was reported. */
int yaml_parse(const char *file, const char *data, size_t len, struct ynode **root, struct cfg_diags *d);
void ynode_free(struct ynode *n);

/* Reads a YAML file of at most max bytes: refuses directories, devices and FIFOs before reading
 * (O_NONBLOCK keeps a FIFO from blocking the open), and files over max; each problem is a
 * finding in d, with hint_missing (may be NULL) as the hint when the file does not exist and
 * what ("the configuration", "a scenario") in the size message. Returns a NUL-terminated copy
 * (caller frees) and its length, or NULL. */
char *yaml_read_file(const char *path, size_t max, const char *what, const char *hint_missing, size_t *len,
		     struct cfg_diags *d);

#endif
