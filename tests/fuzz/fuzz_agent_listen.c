/* libFuzzer target for the agent's /proc/net/tcp{,6} listener scan: any input, read as both
 * tables for the port in its first two bytes, yields only canonical IP literals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ip(const char *s)
{
	char canon[NET_IP_MAX];
	if (s[0] && (net_ip_canon(s, canon, sizeof(canon)) < 0 || strcmp(s, canon) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint16_t port = (uint16_t)(data[0] << 8 | data[1]);
	for (int v6 = 0; v6 < 2; v6++) {
		struct agent_listen l = { 0 };
		agent_listen_scan((const char *)data + 2, size - 2, v6, port, &l);
		check_ip(l.loopback);
		check_ip(l.specific);
		char out[NET_IP_MAX];
		agent_address_pick(&l, "", out, sizeof(out));
		check_ip(out);
	}
	return 0;
}
