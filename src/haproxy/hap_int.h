/* Private helpers shared by the files of src/haproxy (not part of the module's face). */
#ifndef VX_HAPROXY_HAP_INT_H
#define VX_HAPROXY_HAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "haproxy/hap.h"

/* "<addr>:<port> weight W [maxconn M] [disabled] [check ...] pool-max-conn -1 pool-purge-delay 5s"
 * for a server, as both `add server` and a config `server` line take it. in_config adds
 * `disabled` for maintenance and weight 0 for drain (a command sets those states separately). */
int hap_server_args(char *out, size_t cap, const struct hap_server *srv, const struct hap_check *chk,
		    bool in_config, struct vxerr *err);

/* A duration as HAProxy reads it, in whole milliseconds rounded up ("250ms"). */
void hap_fmt_ms(char *out, size_t cap, int64_t us);

/* Bounded line splitting over text[0..len): returns the next line (without "\n" or "\r\n") in
 * *line and *line_len and advances *pos; false at the end. */
bool hap_next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len);

/* Prompt-mode framing (FACTS 3.8): every reply ends with the prompt "> " at the start of a
 * line. Returns the bytes the first complete reply takes, prompt included, and its length
 * without the prompt in *reply_len; 0 while incomplete. */
size_t hap_prompt_split(const char *p, size_t len, size_t *reply_len);
/* The same, knowing that p holds no prompt starting before `from` (an earlier, shorter scan). */
size_t hap_prompt_split_from(const char *p, size_t len, size_t from, size_t *reply_len);

#endif
