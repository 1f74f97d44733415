/* Private to the scenario loader (scn_schema.c, scn_load.c, scn_check.c): schema rows, the
 * loader's state and the positions it remembers for cross-field findings. */
#ifndef VX_SCENARIO_SCN_LOAD_INT_H
#define VX_SCENARIO_SCN_LOAD_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "config/config.h"
#include "config/yaml.h"
#include "scenario/scenario.h"

enum scn_vtype {
	SCN_V_SECTION,   /* a mapping of further keys */
	SCN_V_LIST,      /* a list of mappings (list_scope) */
	SCN_V_STR,       /* char *, printable text */
	SCN_V_NAME,      /* char[SCN_NAME_MAX]: [a-z][a-z0-9_-]{0,20} */
	SCN_V_INSTANCE,  /* char[SCN_NAME_MAX]: an instance name, checked against the backends later */
	SCN_V_INSTANCES, /* list of instance names */
	SCN_V_PATH,      /* char *: an absolute URL path */
	SCN_V_INT,       /* int64_t, [min, max] */
	SCN_V_DUR,       /* int64_t microseconds, [min, max] */
	SCN_V_FRAC,      /* double in [0, 1]: "0.01" or "1%" */
	SCN_V_ENUM,      /* int (enum): index into choices */
	SCN_V_BOOL,
	SCN_V_RATE,      /* struct scn_rate: "500" or "500..3000" */
	SCN_V_SLO,       /* struct load_slo (+ the text, kept by the loader) */
	SCN_V_DIST,      /* struct ts_dist */
	SCN_V_CAPS,      /* int64_t[SCN_MAX_BACKENDS]: one number or a list */
};

enum scn_scope { SCN_SCOPE_ROOT, SCN_SCOPE_GROUP, SCN_SCOPE_PHASE, SCN_SCOPE_FAULT };

enum { SCN_F_REQUIRED = 1 };

struct scn_row {
	const char *path; /* "load.phases[].rate" */
	enum scn_vtype type;
	const char *def;     /* default as written in YAML; NULL: none (or derived: def_doc) */
	const char *def_doc; /* how a derived default reads in docs */
	int64_t min, max;
	const char *const *choices;
	enum scn_scope scope;      /* whose struct off points into */
	enum scn_scope list_scope; /* SCN_V_LIST: the scope of its items */
	size_t off;
	unsigned flags;
	const char *doc;
};

extern const struct scn_row scn_rows[];
extern const size_t scn_rows_len;
extern const char *const scn_action_names[];

const struct scn_row *scn_row_find(const char *path);
const char *scn_type_name(enum scn_vtype t);

/* Where an instance path ("faults[2].target") was written. */
struct scn_pos {
	char *path;
	int line, col;
};

struct scn_loader {
	const char *file;
	struct cfg_diags *d;
	struct scn *s;
	struct scn_pos *pos;
	size_t n_pos, cap_pos;
	char **bad;    /* paths with a finding: cross-field checks leave them alone */
	size_t n_bad, cap_bad;
	bool count_given[SCN_MAX_BACKENDS]; /* per group: count was written */
	unsigned fault_keys[SCN_MAX_FAULTS]; /* per fault: bit (1 << row index - first fault row) */
};

/* Reports a finding at a node (NULL: no position). */
void scn_lerr(struct scn_loader *L, const struct ynode *at, const char *path, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Reports a finding at a remembered path (its nearest written ancestor). */
void scn_perr(struct scn_loader *L, const char *path, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* True when a finding was made at path or below it ("faults[2]" covers "faults[2].at"). */
bool scn_path_bad(const struct scn_loader *L, const char *path);
/* Parses one scalar into the row's field under base; on failure why and hint say why and
 * what to write. */
int scn_value_set(const struct scn_row *row, const char *text, void *base, char *why, size_t whylen, char *hint,
		  size_t hintlen);
/* Cross-field checks after the walk (scn_check.c): expansion of groups into instances, fault
 * targets and parameters, times against the load's length, stack-specific actions. */
void scn_check(struct scn_loader *L);
/* Bit of a fault key ("target", "service_time", ...) in fault_keys; 0 for unknown names. */
unsigned scn_fault_key_bit(const char *leaf);

#endif
