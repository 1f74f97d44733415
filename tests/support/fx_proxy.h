/* A TCP relay on loopback for fault injection between a client and a real server: cut every
 * connection, refuse new ones (connection refused), freeze the connections open now (bytes
 * held, new connections relayed), or blackhole everything (a wedged peer). Runs in its own
 * thread; every call returns once the relay has applied it. Fails the test on setup errors. */
#ifndef VX_TESTS_FX_PROXY_H
#define VX_TESTS_FX_PROXY_H

#include <stdbool.h>

struct fx_proxy;

struct fx_proxy *fx_proxy_start(int target_port);
/* "http://127.0.0.1:<port>" */
const char *fx_proxy_url(const struct fx_proxy *p);
void fx_proxy_cut(struct fx_proxy *p);
void fx_proxy_refuse(struct fx_proxy *p, bool refuse);
void fx_proxy_freeze_existing(struct fx_proxy *p);
void fx_proxy_blackhole(struct fx_proxy *p, bool on);
/* Connections accepted so far. */
int fx_proxy_accepted(struct fx_proxy *p);
/* HTTP/1.1 requests relayed so far (request lines the clients sent; a watch stream is one). */
long fx_proxy_requests(struct fx_proxy *p);
void fx_proxy_free(struct fx_proxy *p);

#endif
