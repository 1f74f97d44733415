/* libFuzzer target for hand-written registry values: the input as a stored value rewritten as
 * draining (the result must decode to the same instance but for its state), and as command-line
 * fields split at '\n' (an accepted instance must encode and decode back to itself). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/reg_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rewrite(const char *s, size_t size)
{
	struct reg_instance before, after;
	char *out = NULL;
	size_t len = 0;
	if (reg_value_set_state(s, size, REG_STATE_DRAINING, &out, &len, NULL) != 0)
		return;
	if (reg_value_decode(s, size, &before, NULL) != 0 || reg_value_decode(out, len, &after, NULL) != 0 ||
	    after.state != REG_STATE_DRAINING)
		abort();
	before.state = REG_STATE_DRAINING;
	if (!reg_instance_same(&before, &after))
		abort();
	reg_instance_release(&before);
	reg_instance_release(&after);
	free(out);
}

static void from_fields(const char *s, size_t size)
{
	char *copy = strndup(s, size), *f[9] = { 0 }, *p = copy;
	for (size_t i = 0; i < 9 && p; i++) {
		f[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	struct reg_fields in = { f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], NULL, 0 };
	struct reg_instance inst, back;
	char *json = NULL;
	size_t len = 0;
	if (reg_fields_instance(&in, NULL, 0, &inst, NULL) == 0) {
		if (reg_value_encode(&inst, &json, &len, NULL) != 0 || reg_value_decode(json, len, &back, NULL) != 0 ||
		    !reg_instance_same(&inst, &back))
			abort();
		reg_instance_release(&back);
		reg_instance_release(&inst);
		free(json);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rewrite((const char *)data, size);
	from_fields((const char *)data, size);
	return 0;
}
