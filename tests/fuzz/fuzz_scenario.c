/* libFuzzer target: the scenario loader from memory (YAML reader, schema walk, cross-field
 * checks, scaling), then both renderings of the findings. Everything allocated is freed, so
 * LeakSanitizer checks the loader too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenario/scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct scn *s = scn_load_buffer("fuzz.yaml", (const char *)data, size, &d);
	if (s) {
		scn_scale(s, 0.5, 2);
		(void)scn_duration_us(s);
		scn_free(s);
	}
	cfg_diags_sort(&d);
	FILE *sink = fopen("/dev/null", "w");
	if (sink) {
		cfg_diags_print(&d, sink);
		fclose(sink);
	}
	free(cfg_diags_to_json(&d));
	cfg_diags_release(&d);
	return 0;
}
