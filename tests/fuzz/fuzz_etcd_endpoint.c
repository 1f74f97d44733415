/* Fuzzes the etcd endpoint URL parser (etcd_ep_parse): any bytes, as a NUL-terminated string;
 * what it accepts is checked for the fields the transport relies on, and freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = malloc(size + 1);
	if (!url)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	struct etcd_ep ep;
	struct vxerr err;
	if (etcd_ep_parse(url, &ep, &err) == 0) {
		/* nothing that could split a request line or header may come through */
		if (!ep.host[0] || strpbrk(ep.host_header, " \r\n") || strpbrk(ep.base, " \r\n?#") || !ep.port[0])
			abort();
		etcd_ep_release(&ep);
	}
	free(url);
	return 0;
}
