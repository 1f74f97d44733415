/* Fixtures for the load generator and the test server: a `veltrix testserver` process on a
 * free loopback port, a TCP server that resets every connection, raw HTTP exchanges, and
 * `veltrix load` runs in the background with their JSON result parsed. */
#ifndef VX_TESTS_FX_LOAD_H
#define VX_TESTS_FX_LOAD_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

struct fx_testserver {
	pid_t pid;
	int port;
	char url[64]; /* http://127.0.0.1:<port>/ */
	char *dir;
	char *log;
};

/* Starts `veltrix testserver --port <free port> ARGS...` (args NULL-terminated, may be NULL)
 * and waits until /healthz answers. */
void fx_testserver_start(struct fx_testserver *t, const char *const *args);
/* SIGTERM, then waits up to timeout_ms; returns the exit code (or 128+signal, -1 on timeout). */
int fx_testserver_stop(struct fx_testserver *t, int timeout_ms);
/* GET /_testserver/stats, parsed (caller json_decref). */
json_t *fx_testserver_stats(const struct fx_testserver *t);

/* Accepts connections, reads the request, and resets the connection (SO_LINGER 0). */
struct fx_resetter {
	int fd;
	int port;
	char url[64];
	pthread_t th;
	atomic_bool stop;
	atomic_int resets;
};
void fx_resetter_start(struct fx_resetter *r);
void fx_resetter_stop(struct fx_resetter *r);

/* Sends raw bytes to 127.0.0.1:port and reads until the peer closes (at most timeout_ms);
 * returns what was read (caller frees), or NULL when the connection failed. */
char *fx_raw_http(int port, const char *request, int timeout_ms);

/* `veltrix load` in the background; args NULL-terminated. */
struct fx_load {
	pid_t pid;
	char *out_path;
	char *err_path;
	char *json_path;
	int status;
	char *out;
	char *err;
	json_t *json;
};
/* Adds --json <tmp file> and the URL last. */
void fx_load_spawn(struct fx_load *l, const char *url, const char *const *args);
/* Waits for it (timeout_ms), collects stdout, stderr and the JSON (NULL when none). */
void fx_load_wait(struct fx_load *l, int timeout_ms);
void fx_load_free(struct fx_load *l);
/* Runs to completion. */
void fx_load_run(struct fx_load *l, const char *url, const char *const *args, int timeout_ms);

/* json_integer_value / json_real_value of a path of object keys ("errors", "refused", NULL). */
long long fx_jint(json_t *j, ...);
double fx_jnum(json_t *j, ...);

#endif
