/* libFuzzer target for the registry codec: the input as a value (strict decode, and every
 * decoded value must encode and decode back to the same instance) and as a key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct reg_instance *in)
{
	char *json = NULL;
	size_t len = 0;
	struct reg_instance back;
	if (reg_value_encode(in, &json, &len, NULL) != 0)
		abort();
	if (reg_value_decode(json, len, &back, NULL) != 0 || !reg_instance_same(in, &back))
		abort();
	reg_instance_release(&back);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct reg_instance in;
	struct reg_fail fail;
	if (reg_value_decode(s, size, &in, &fail) == 0) {
		roundtrip(&in);
		reg_instance_release(&in);
	}
	struct reg_key k;
	if (reg_key_parse("/veltrix", s, size, &k, &fail) == REG_KEY_INSTANCE &&
	    (!reg_service_name_valid(k.service, strlen(k.service)) ||
	     !reg_instance_name_valid(k.instance, strlen(k.instance))))
		abort();
	return 0;
}
