/* Writing the registry by hand (`veltrix register`, `veltrix deregister`): an instance from
 * fields as a person typed them, validated exactly like a value read from etcd, and the
 * "draining" rewrite of a stored value that keeps every other member as it was written.
 * Pure; the commands do the etcd calls. */
#ifndef VX_REGISTRY_REG_WRITE_H
#define VX_REGISTRY_REG_WRITE_H

#include <stddef.h>

#include "common/net.h"
#include "registry/reg.h"

/* Text as given on a command line; NULL means "not given". */
struct reg_fields {
	const char *service, *instance;
	const char *address, *port, *capacity, *state, *weight, *zone, *version;
	const char *const *tags;
	size_t n_tags;
};

/* The instance the fields describe. The fields become a JSON value (numbers as JSON integers
 * when the text is one, else as text, so "80abc" fails as bad_type) that reg_value_decode
 * must accept, so what this accepts is exactly what a controller accepts, with the same
 * reasons and messages; the names go through the key rules, the address through the
 * service's allow-list allow[0..n_allow). Returns 0 and *out (release it), or -1 and *fail. */
int reg_fields_instance(const struct reg_fields *f, const struct cidr *allow, size_t n_allow,
			struct reg_instance *out, struct reg_fail *fail);

/* The stored value data[0..len) with its "state" set to st, every other member (unknown ones
 * included) kept as written. Fails with the codec's reason when the stored value is rejected,
 * or when the result would be (too_large). *out (NUL-terminated): caller frees. */
int reg_value_set_state(const char *data, size_t len, enum reg_state st, char **out, size_t *out_len,
			struct reg_fail *fail);

#endif
