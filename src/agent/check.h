/* Health checks for the agent: tcp connect, HTTP GET, or a command, run on a libev loop with a
 * timeout, never overlapping, with rise/fall hysteresis. Checks never block the loop, so the
 * lease keepalive on the same loop is never delayed by a slow or hanging check. */
#ifndef VX_AGENT_CHECK_H
#define VX_AGENT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/net.h"

struct ev_loop;

enum check_kind { CHECK_KIND_TCP, CHECK_KIND_HTTP, CHECK_KIND_EXEC };

struct check_spec {
	enum check_kind kind;
	char address[NET_IP_MAX]; /* where tcp and http checks connect */
	uint16_t port;
	const char *path;    /* http: request target, default "/" */
	const char *command; /* exec: run with /bin/sh -c */
	int64_t interval_us;
	int64_t timeout_us;
	int rise;
	int fall;
};

/* Parses the --check flag: "tcp", "http:/healthz" (or "http" for "/"), "exec:CMD". */
int check_spec_parse(const char *text, struct check_spec *spec, struct vxerr *err);

enum check_state { CHECK_STATE_UNKNOWN, CHECK_STATE_UP, CHECK_STATE_DOWN };
const char *check_state_name(enum check_state st);

struct check_result {
	bool pass;
	char detail[160]; /* "http GET /healthz: 503", "tcp 127.0.0.1:8080: connection refused" */
	int64_t duration_us;
};

/* Called after every check with its result, and with `changed` true when rise/fall moved the
 * state. */
typedef void (*check_cb)(void *ud, enum check_state state, bool changed, const struct check_result *res);

struct checker;
/* The loop must be libev's default loop (exec checks use child watchers). */
struct checker *checker_new(struct ev_loop *loop, const struct check_spec *spec, check_cb cb, void *ud);
void checker_start(struct checker *c); /* first check at once */
void checker_stop(struct checker *c);  /* cancels a running check (kills its command) */
void checker_free(struct checker *c);
enum check_state checker_state(const struct checker *c);
/* Where the next tcp or http check connects (the agent re-derives its address until the
 * service listens); a check in progress keeps its target. */
void checker_set_address(struct checker *c, const char *address);

#endif
