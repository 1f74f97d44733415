/* Private to src/config: the YAML tree the loader walks, source positions, and helpers shared
 * by the loader, the validator and the lint. Nothing outside src/config includes this. */
#ifndef VX_CONFIG_INTERNAL_H
#define VX_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define VX_STR_(x) #x
#define VX_STR(x) VX_STR_(x)
/* Longest text of a user's value quoted in a message (the rest is cut, marked "..."). */
#define CFG_QUOTE_MAX 64

/* ---- YAML tree (yaml.c): struct ynode, yaml_parse and ynode_free live in config/yaml.h ---- */
#include "config/yaml.h"

/* ---- Positions (load.c) -------------------------------------------------------------------- */
struct cfg_pos {
	char *path; /* instance path: "services[1].health.interval" */
	int line, col;
	bool bad;   /* the value was rejected (the field kept its default) */
};

/* Filled while loading, then sorted by path for lookups. */
struct cfg_positions {
	struct cfg_pos *items;
	size_t n, cap;
	bool sorted;
};

/* Position of exactly this path, or NULL. */
const struct cfg_pos *cfg_pos_find(const struct vx_config *cfg, const char *path);
/* True when the value at path was written but rejected: cross-field rules skip it rather
 * than compare against the default that stayed in its place. */
bool cfg_path_bad(const struct vx_config *cfg, const char *path);

/* ---- Schema (schema.c) ----------------------------------------------------------------------
 * Parses one scalar text for a row and stores it under base (a struct vx_config or a struct
 * cfg_service, following row->scope). On failure writes "what is wrong" into why and "what
 * to write instead" into hint and stores nothing. */
int cfg_value_set(const struct cfg_key *row, const char *text, void *base, char *why, size_t whylen,
		  char *hint, size_t hintlen);
/* Appends one element of a list row (URLS, CIDRS); same contract as cfg_value_set. */
int cfg_list_append(const struct cfg_key *row, const char *text, void *base, char *why, size_t whylen,
		    char *hint, size_t hintlen);
/* Sets every row of the scope that has a default. */
void cfg_defaults_apply(enum cfg_scope scope, void *base);
/* Frees what rows of the scope own under base. */
void cfg_values_release(enum cfg_scope scope, void *base);
/* The row of exactly this schema path, or NULL. */
const struct cfg_key *cfg_schema_find(const char *path);
/* "a duration", "an integer", ... for messages. */
const char *cfg_type_phrase(enum cfg_type t);
/* The value of a row as text for docs and hints ("2s", "16KiB", "50%"). */
void cfg_row_format_bounds(const struct cfg_key *row, char *out, size_t cap);
bool cfg_service_name_valid(const char *s);
/* "\"value\"" cut to CFG_QUOTE_MAX bytes on a UTF-8 boundary, for messages. */
void cfg_quote(char *out, size_t cap, const char *s);

/* ---- Validation (validate.c) ---------------------------------------------------------------
 * Cross-field rules over a loaded config (duplicate names and binds, timeouts, pairs of keys
 * that go together). Positions come from cfg->positions. */
void cfg_validate(const struct vx_config *cfg, struct cfg_diags *d);

void cfg_diags_vadd(struct cfg_diags *d, enum cfg_severity sev, const char *file, int line, int col,
		    const char *path, const char *rule, const char *hint, const char *fmt, va_list ap)
	__attribute__((format(printf, 9, 0)));

/* Adds a finding located at a key path of cfg (nearest written position). */
void cfg_report(const struct vx_config *cfg, struct cfg_diags *d, enum cfg_severity sev, const char *rule,
		const char *path, const char *hint, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#endif
