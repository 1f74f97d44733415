/* libFuzzer target: the HTTP/1.1 request parser on pipelined input fed in pieces whose size
 * comes from the first byte, with small limits so that every limit is reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 32) + 1;
	const struct http1_limits lim = { .max_head = 512, .max_headers = 8, .max_chunk_line = 24, .max_body = 4096 };
	struct http1_header hdrs[4];
	struct http1_req r;
	http1_req_init(&r, &lim, hdrs, 4);
	char *acc = malloc(size);
	size_t have = 0;
	enum http1_ev ev = HTTP1_AGAIN;
	for (size_t fed = 1; fed < size && ev != HTTP1_ERROR;) {
		size_t k = size - fed < step ? size - fed : step;
		memcpy(acc + have, data + fed, k);
		have += k;
		fed += k;
		do {
			size_t used, len;
			struct http1_span body;
			ev = http1_req_feed(&r, acc, have, &used, &body);
			if (ev == HTTP1_HEAD && r.target_len && r.method_len)
				http1_header_get(&r.m, "host", &len);
			memmove(acc, acc + used, have - used);
			have -= used;
		} while (ev != HTTP1_AGAIN && ev != HTTP1_ERROR);
	}
	free(acc);
	return 0;
}
