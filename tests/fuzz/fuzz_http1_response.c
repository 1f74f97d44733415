/* libFuzzer target: the HTTP/1.1 response parser, fed the input in pieces whose size comes
 * from the first byte, with small limits so that every limit is reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 16) + 1;
	const struct http1_limits lim = { .max_head = 512, .max_headers = 8, .max_chunk_line = 24, .max_body = 4096 };
	struct http1_header hdrs[4];
	struct http1_resp r;
	http1_resp_init(&r, &lim, hdrs, 4);
	r.head_request = data[0] & 0x80;
	char *acc = malloc(size);
	size_t have = 0;
	enum http1_ev ev = HTTP1_AGAIN;
	for (size_t fed = 1; fed < size && ev != HTTP1_ERROR;) {
		size_t k = size - fed < step ? size - fed : step;
		memcpy(acc + have, data + fed, k);
		have += k;
		fed += k;
		do {
			size_t used;
			struct http1_span body;
			ev = http1_resp_feed(&r, acc, have, &used, &body);
			if (ev == HTTP1_HEAD)
				http1_header_get(&r.m, "content-type", &used);
			memmove(acc, acc + used, have - used);
			have -= used;
		} while (ev != HTTP1_AGAIN && ev != HTTP1_ERROR);
	}
	if (ev != HTTP1_ERROR)
		http1_resp_eof(&r);
	free(acc);
	return 0;
}
