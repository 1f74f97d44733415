/* Key-value records and watch events as etcd reports them, decoded (keys and values are raw
 * bytes, not base64). The etcd client produces these; the registry model consumes them.
 * This header holds types only, so both sides can include it without including each other. */
#ifndef VX_REGISTRY_KV_H
#define VX_REGISTRY_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd_kv {
	char *key; /* NUL-terminated for convenience; may contain NUL bytes before key_len */
	size_t key_len;
	char *value; /* NULL when etcd sent no value (empty, or a DELETE event) */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0 = none */
};

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;
	struct etcd_kv prev_kv; /* valid when has_prev */
	bool has_prev;
};

#endif
