/* libFuzzer target for the shared lease file (agent_share_parse): whatever it accepts formats
 * back to the same bytes (with its newline) and parses to the same lease and TTL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t lease, ttl, lease2, ttl2;
	char text[AGENT_SHARE_FILE_MAX];
	if (agent_share_parse((const char *)data, size, &lease, &ttl) != 0)
		return 0;
	int n = agent_share_format(lease, ttl, text, sizeof(text));
	if (n < 0 || agent_share_parse(text, (size_t)n, &lease2, &ttl2) != 0 || lease2 != lease || ttl2 != ttl)
		abort();
	size_t body = size > 0 && data[size - 1] == '\n' ? size - 1 : size;
	if ((size_t)n - 1 != body || memcmp(text, data, body) != 0)
		abort();
	return 0;
}
