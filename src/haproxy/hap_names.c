/* Whitelists for everything that may become part of a Runtime API command or a config line.
 * Nothing is escaped anywhere in this module: a value is either in its set or refused. */
#include "haproxy/hap.h"

#include <string.h>

#include "common/strutil.h"

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == ':' || c == '-';
}

bool hap_name_valid(const char *s)
{
	if (!s || s[0] == '-')
		return false;
	return str_all_in(s, strlen(s), HAP_NAME_MAX, name_char);
}

int hap_addr_canon(const char *ip, char *out, size_t cap, struct vxerr *err)
{
	char canon[NET_IP_MAX];
	if (!ip || net_ip_canon(ip, canon, sizeof(canon)) < 0)
		return vxerr_set(err, "address '%.64s' is not an IP literal", ip ? ip : "(null)");
	if (str_copy(out, cap, canon) != 0)
		return vxerr_set(err, "address '%s' does not fit", canon);
	return 0;
}

bool hap_weight_valid(int64_t w)
{
	return w >= 0 && w <= HAP_WEIGHT_MAX;
}

bool hap_maxconn_valid(int64_t m)
{
	return m >= 0 && m <= HAP_MAXCONN_MAX;
}

