/* `veltrix up`: a local etcd, HAProxy and the controller come up together from a config with no
 * etcd endpoints; a registration serves traffic; SIGTERM stops everything; a part that dies first
 * (etcd, kill -9) takes the rest down: no orphan process either way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"

struct stack {
	char *dir;
	char *out, *err;
	pid_t pid;
	int http_port;
	char etcd_url[64];
};

/* Pids of processes whose command line mentions needle (our temp dir): etcd and HAProxy. */
static int pids_with(const char *needle, pid_t *out, int cap)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < cap) {
		char path[300], buf[4096];
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, needle) && !strstr(buf, "veltrix up"))
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

static bool banner_ready(void *arg)
{
	struct stack *s = arg;
	char *text = fx_read_file(s->out);
	const char *etcd = text ? strstr(text, "  etcd ") : NULL;
	bool ok = etcd && strstr(text, "Register an instance");
	if (ok)
		sscanf(etcd, "  etcd %63s", s->etcd_url);
	free(text);
	return ok;
}

static void stack_start(struct stack *s)
{
	s->dir = fx_tmpdir("up");
	s->out = fx_path(s->dir, "up.out");
	s->err = fx_path(s->dir, "up.err");
	s->http_port = net_free_port();
	char *cfg = fx_path(s->dir, "veltrix.yaml"), *body = NULL;
	assert_true(asprintf(&body,
			     "etcd: {data_dir: %s/etcd}\nhaproxy: {state_dir: %s/hap}\n"
			     "services:\n  - {name: web, bind: 127.0.0.1:%d, health: {type: tcp, interval: 200ms, timeout: 100ms}}\n",
			     s->dir, s->dir, s->http_port) > 0);
	fx_write_file(cfg, body);
	const char *argv[] = { fx_veltrix_bin(), "up", "-c", cfg, NULL };
	struct proc_opts o = { .stdout_path = s->out, .stderr_path = s->err, .die_with_parent = true };
	struct vxerr err;
	s->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	assert_true(s->pid > 0);
	fx_track(s->pid);
	if (!fx_wait(banner_ready, s, 30000)) {
		char *e = fx_read_file(s->err);
		fail_msg("veltrix up did not come up: %s", e ? e : "");
	}
	free(cfg);
	free(body);
}

static int stack_wait_exit(struct stack *s, int timeout_ms)
{
	int st = 0;
	if (proc_wait(s->pid, timeout_ms, &st) != 0)
		return -1;
	fx_untrack(s->pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void stack_free(struct stack *s)
{
	free(s->dir);
	free(s->out);
	free(s->err);
}

static bool no_processes_left(void *arg)
{
	pid_t pids[16];
	return pids_with(arg, pids, 16) == 0;
}

static void test_up_serves_and_stops_cleanly(void **state)
{
	(void)state;
	struct stack s = { 0 };
	stack_start(&s);
	pid_t pids[16];
	assert_true(pids_with(s.dir, pids, 16) >= 3); /* etcd, HAProxy master and worker */
	/* a backend and a raw registration, as docs/registry.md shows */
	int port = net_free_port();
	char portarg[16], value[128], url[128];
	snprintf(portarg, sizeof(portarg), "%d", port);
	const char *ts[] = { fx_veltrix_bin(), "testserver", "--port", portarg, "--capacity", "4", NULL };
	struct proc_opts o = { .die_with_parent = true, .stdout_path = "/dev/null", .stderr_path = "/dev/null" };
	pid_t backend = proc_spawn((char *const *)(uintptr_t)ts, &o, NULL);
	assert_true(backend > 0);
	fx_track(backend);
	snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%d}", port);
	struct fx_etcd e = { 0 };
	snprintf(e.url, sizeof(e.url), "%s", s.etcd_url);
	const char *put[] = { "put", "/veltrix/services/web/i1", value, NULL };
	assert_int_equal(fx_etcdctl(&e, NULL, put), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.http_port);
	long status = 0;
	for (int i = 0; i < 200 && status != 200; i++) {
		status = fx_http("GET", url, NULL, NULL);
		if (status != 200)
			time_sleep_us(25000);
	}
	assert_int_equal(status, 200);
	kill(s.pid, SIGTERM);
	assert_int_equal(stack_wait_exit(&s, 20000), 0);
	assert_true(fx_wait(no_processes_left, s.dir, 5000));
	proc_stop(backend, 2000);
	fx_untrack(backend);
	stack_free(&s);
}

static void test_etcd_dying_stops_the_stack(void **state)
{
	(void)state;
	struct stack s = { 0 };
	stack_start(&s);
	pid_t pids[16];
	int n = pids_with(s.dir, pids, 16), killed = 0;
	for (int i = 0; i < n; i++) {
		char path[64], comm[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[i]);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) && strncmp(comm, "etcd", 4) == 0 && kill(pids[i], SIGKILL) == 0)
			killed++;
		if (f)
			fclose(f);
	}
	assert_int_equal(killed, 1);
	assert_int_equal(stack_wait_exit(&s, 20000), 3);
	assert_true(fx_wait(no_processes_left, s.dir, 5000));
	char *err = fx_read_file(s.err);
	assert_non_null(strstr(err, "etcd exited, stopping the stack"));
	free(err);
	stack_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_up_serves_and_stops_cleanly),
		cmocka_unit_test(test_etcd_dying_stops_the_stack),
	};
	return cmocka_run_group_tests_name("up", tests, NULL, NULL);
}
