/* Private to the etcd client: libcurl for https:// endpoints, loaded with dlopen on first use.
 *
 * Nothing in Veltrix links libcurl: a process that merely links it maps libcurl and its ~30
 * dependent libraries (TLS stacks, krb5, ldap, ssh, ...) at exec, about 5 MiB of resident pages
 * for an agent that only ever talks plain HTTP to a loopback etcd. So the client calls libcurl
 * only through the table below, filled by dlopen("libcurl.so.4") when the first client with
 * an https endpoint is made; <curl/curl.h> is included for its types and constants only. */
#ifndef VX_REGISTRY_ETCD_CURL_H
#define VX_REGISTRY_ETCD_CURL_H

#include <curl/curl.h>

#include "common/err.h"
#include "registry/etcd_int.h"

/* The soname loaded, and the Debian package that ships it (named in the error). */
#define ETCD_CURL_SONAME "libcurl.so.4"
#define ETCD_CURL_PACKAGE "libcurl4"

/* The libcurl functions the client calls, by their libcurl names without the curl_ prefix. */
struct etcd_curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *e);
	CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev_bitmask, int *running);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *p);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
};

/* Loads `soname` and resolves every function of the table into *api; no caching, the library
 * stays loaded on success. On failure the message names the library and the package to
 * install: "cannot load libcurl.so.4 (install the libcurl4 package): <dlerror>". */
int etcd_curl_load_from(const char *soname, struct etcd_curl_api *api, struct vxerr *err);
/* The process-wide table, loaded once (thread-safe). The soname is ETCD_CURL_SONAME, or
 * $VX_TEST_LIBCURL when set: tests use it to see the failure of a missing library. */
const struct etcd_curl_api *etcd_curl_api(struct vxerr *err);

#endif
