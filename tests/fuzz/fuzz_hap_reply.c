/* Fuzz target: every HAProxy reply parser, the prompt framing and the reply classifier. The
 * first byte picks the parser; the rest is the reply. */
#include <stddef.h>
#include <stdint.h>

#include "haproxy/hap.h"
#include "haproxy/hap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1, n = 0;
	struct hap_servers_state ss;
	struct hap_stats st;
	struct hap_info in;
	struct hap_proc_list pl;
	struct hap_backends be;
	char path[128];
	switch (data[0] % 6) {
	case 0:
		if (hap_parse_servers_state(text, len, &ss, NULL) == 0)
			hap_servers_state_release(&ss);
		break;
	case 1:
		if (hap_parse_stat(text, len, &st, NULL) == 0)
			hap_stats_release(&st);
		break;
	case 2:
		hap_parse_info(text, len, &in, NULL);
		break;
	case 3:
		hap_parse_proc(text, len, &pl, NULL);
		break;
	case 4: /* the two replies that are a header and lines of names */
		if (hap_parse_backends(text, len, &be, NULL) == 0)
			hap_backends_release(&be);
		hap_parse_cli_sockets(text, len, path, sizeof(path), NULL);
		break;
	default:
		hap_prompt_split(text, len, &n);
		hap_reply_classify((enum hap_cmd_kind)(data[0] / 6 % 7), text, len);
	}
	return 0;
}
