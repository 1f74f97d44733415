/* A scripted keep-alive HTTP server for the etcd client's built-in transport: what a real etcd
 * does not do on demand (close a pooled connection, answer one byte at a time, answer without
 * a length, reset a connection), with counts of accepted connections and requests.
 *
 * It reads requests (head plus a Content-Length body) on every connection it accepts; request
 * i, counted over the whole server, gets step i of the script (the last step repeats). Runs in
 * its own thread; fails the test on setup errors. */
#ifndef VX_TESTS_FX_KASERVER_H
#define VX_TESTS_FX_KASERVER_H

#include <stdbool.h>
#include <stddef.h>

enum fx_ka_after {
	FX_KA_KEEP,       /* keep the connection open for the next request */
	FX_KA_CLOSE,      /* close it after the reply */
	FX_KA_IDLE_CLOSE, /* keep it, and close it once it was idle for idle_close_ms */
	FX_KA_RESET,      /* reset it (SO_LINGER 0) after the reply */
};

struct fx_ka_step {
	const char *reply;     /* raw bytes written back ("" or NULL: none) */
	int dribble_us;        /* > 0: the reply goes one byte at a time, this far apart */
	enum fx_ka_after after;
	int idle_close_ms;
	bool stop_listening;   /* close the listening socket after this step (refuse new ones) */
};

struct fx_kaserver;

/* Copies the steps. */
struct fx_kaserver *fx_kaserver_start(const struct fx_ka_step *steps, size_t n);
/* "http://127.0.0.1:<port>" */
const char *fx_kaserver_url(const struct fx_kaserver *s);
int fx_kaserver_accepted(struct fx_kaserver *s);
int fx_kaserver_requests(struct fx_kaserver *s);
/* The body of request i, or NULL (valid until the server is freed). */
const char *fx_kaserver_body(struct fx_kaserver *s, int i);
void fx_kaserver_free(struct fx_kaserver *s);

/* "HTTP/1.1 200 OK" with a JSON body and its Content-Length (caller frees). */
char *fx_ka_json(const char *body);

#endif
