/* Fuzzes the etcd gateway decoders with raw bytes: the first byte picks a decoder, the rest
 * is a response body or a stream (split into messages as the client does, the last one
 * possibly without its newline). Everything decoded is freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "registry/etcd_codec.h"

static void stream(const char *p, size_t n, int kind)
{
	struct buf in = BUF_INIT(1 << 20);
	const char *line;
	size_t len, used;
	struct vxerr err;
	buf_append(&in, p, n);
	while (etcd_next_line(&in, true, &line, &len, &used)) {
		struct etcd_watch_msg w;
		struct etcd_keepalive_msg k;
		if (kind == 0 && etcd_dec_watch_msg(line, len, &w, &err) == 0)
			etcd_watch_msg_release(&w);
		if (kind == 1 && etcd_dec_keepalive_msg(line, len, &k, &err) == 0)
			etcd_keepalive_msg_release(&k);
		buf_consume(&in, used);
	}
	buf_release(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int sel = data[0] % 14;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct etcd_resp r;
	struct vxerr err;
	char msg[256], *token;
	int code;
	if (sel < 2) {
		stream(p, n, sel);
	} else if (sel == 2) {
		etcd_dec_error(p, n, 400, &code, msg, sizeof(msg));
	} else if (sel == 3) {
		if (etcd_dec_token(p, n, &token, &err) == 0)
			free(token);
	} else if (etcd_dec_resp((enum etcd_call_kind)(sel - 4), p, n, &r, &err) == 0) {
		etcd_resp_release(&r);
	}
	return 0;
}
