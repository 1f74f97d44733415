/* libFuzzer target: the configuration loader from memory, then the lint and both renderings
 * of whatever it found. Everything allocated is freed, so LeakSanitizer checks the loader. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cfg_sysfacts facts = { .port_lo = 32768, .port_hi = 60999, .somaxconn = 128,
						   .nofile_soft = 1024, .nofile_hard = 4096, .fin_timeout_s = 60,
						   .tw_reuse = 1 };
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *cfg = cfg_load_buffer("fuzz.yaml", (const char *)data, size, &d);
	if (cfg) {
		int line, col;
		cfg_lint(cfg, &facts, &d);
		cfg_key_pos(cfg, "services[0].health.timeout", &line, &col);
		cfg_free(cfg);
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
