/* Test fixtures: temporary directories, real etcd processes on free loopback ports, and running
 * the `veltrix` binary. Every process started here is stopped at exit, on SIGTERM/SIGINT/SIGALRM,
 * and by PR_SET_PDEATHSIG when the test process dies; the runner also kills each test's process
 * group. Fixtures abort the test (cmocka fail) on setup errors. */
#ifndef VX_TESTS_FX_H
#define VX_TESTS_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fails the test program on a setup error: prints "fixture: ..." and exits 99 (the atexit
 * hooks stop whatever was started). */
void fx_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A fresh directory under $TMPDIR, removed at exit unless VX_KEEP_TMP=1. Caller frees. */
char *fx_tmpdir(const char *tag);
/* Stop pid (SIGTERM, then SIGKILL) when the test exits. */
void fx_track(pid_t pid);
void fx_untrack(pid_t pid);
/* Path of the veltrix binary under test ($VELTRIX_BIN, or build/asan/veltrix). */
const char *fx_veltrix_bin(void);

char *fx_read_file(const char *path);
void fx_write_file(const char *path, const char *content);
char *fx_path(const char *dir, const char *name); /* dir/name, caller frees */
/* A free loopback port this process has not handed out before: the kernel may offer the same
 * free port twice while nobody binds it. Fails the program when there is none. */
int fx_unique_port(void);

/* Latency samples in microseconds: qsort comparator, and the p-quantile (nearest rank) of v
 * sorted ascending, in ms (-1 when n is 0). */
int fx_cmp_i64(const void *a, const void *b);
double fx_pct_ms(const int64_t *v, size_t n, double p);

/* Runs argv to completion with a timeout, capturing stdout and stderr (caller frees both). */
struct fx_run {
	int status; /* exit code, or 128+signal, or -1 on timeout */
	char *out;
	char *err;
};
void fx_run(struct fx_run *r, int timeout_ms, const char *const argv[]);
void fx_run_free(struct fx_run *r);
/* Runs the veltrix binary with the given arguments (NULL-terminated). */
void fx_veltrix(struct fx_run *r, int timeout_ms, ...);

/* Polls cond every 10 ms until it is true or timeout_ms passes. */
bool fx_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* HTTP through libcurl (for readiness probes and raw gateway calls). Returns the HTTP status,
 * or -1 when no answer; *body (may be NULL) receives the body, caller frees. */
long fx_http(const char *method, const char *url, const char *body, char **resp);

/* One etcd member (or a member of a cluster) on loopback. */
struct fx_etcd {
	pid_t pid;
	char *dir;
	char name[16];
	int client_port;
	int peer_port;
	char url[64];      /* http://127.0.0.1:<client_port> */
	char peer_url[64];
	char *initial_cluster; /* h1=http://...,h2=... */
	const char *const *extra_args;
	/* TLS (optional): when tls_ca is set the client URLs are https and the readiness probe
	 * trusts tls_ca and presents tls_cert/tls_key; etcd's own TLS flags go in extra_args. */
	const char *tls_ca, *tls_cert, *tls_key;
};
/* Starts a single-member etcd and waits until it answers /health. */
void fx_etcd_start(struct fx_etcd *e);
/* Starts n members as one cluster and waits for all. */
void fx_etcd_cluster_start(struct fx_etcd *members, int n);
/* Starts e again on its own data dir and ports (after stop or kill). */
void fx_etcd_restart(struct fx_etcd *e);
void fx_etcd_kill(struct fx_etcd *e); /* SIGKILL; data kept */
void fx_etcd_stop(struct fx_etcd *e); /* SIGTERM and wait; data kept */
void fx_etcd_free(struct fx_etcd *e); /* stop (if running) and forget */
/* "url1,url2,..." for a cluster; caller frees. */
char *fx_etcd_endpoints(const struct fx_etcd *members, int n);
/* Runs etcdctl against e; returns its exit status and stdout (caller frees) in *out. */
int fx_etcdctl(const struct fx_etcd *e, char **out, const char *const args[]);

#endif
