/* Managed mode's slow work, kept off the event loop: reading every pool, rendering and writing
 * haproxy.cfg, `haproxy -c`, a reload through the master socket, a start. None of it may make a
 * registry change wait (a check of a large configuration takes tens of milliseconds, a reload
 * seconds), so one job at a time runs in steps while the loop keeps reconciling:
 *   PREPARE  worker thread   its own runtime connection reads the pools; render; write candidate
 *   CHECK    child process   `haproxy -c` on the candidate, watched by the loop (ev_child)
 *   INSTALL  loop            rename into place (metadata only)
 *   APPLY    worker thread   reload or start (reload and restart jobs only)
 *   DONE     loop            ctl_managed_done() takes the outcome
 * While a job runs, the loop does not touch c->proc and does not free c->cfg (a configuration
 * reload asked meanwhile waits for the job). ev_child needs libev's default loop, the one every
 * command runs the controller on. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"

#define CHECK_TIMEOUT_S 15.0

enum stage { ST_IDLE, ST_PREPARE, ST_CHECK, ST_APPLY };

struct ctl_jobs {
	struct controller *c;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int (*work)(struct controller *c, struct ctl_job *j); /* set: the thread has work */
	bool quit;
	int work_rc;
	ev_async done_w;
	ev_child child_w;
	ev_timer check_timer;
	bool check_timed_out;
	char *check_out;
	enum stage stage;
	struct ctl_job *job;
};

static void *worker_main(void *arg)
{
	struct ctl_jobs *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->work && !q->quit)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->quit)
			break;
		int (*work)(struct controller *, struct ctl_job *) = q->work;
		pthread_mutex_unlock(&q->mu);
		int rc = work(q->c, q->job);
		pthread_mutex_lock(&q->mu);
		q->work_rc = rc;
		q->work = NULL;
		pthread_cond_broadcast(&q->cv);
		ev_async_send(q->c->loop, &q->done_w);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void hand_over(struct ctl_jobs *q, int (*work)(struct controller *, struct ctl_job *))
{
	pthread_mutex_lock(&q->mu);
	q->work = work;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* Waits until the thread has no step in hand. */
static void wait_idle(struct ctl_jobs *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->work)
		pthread_cond_wait(&q->cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

static void finish(struct ctl_jobs *q, int rc)
{
	struct ctl_job *j = q->job;
	q->job = NULL;
	q->stage = ST_IDLE;
	j->rc = rc;
	ctl_managed_done(q->c, j);
	free(j);
}

static void start_check(struct ctl_jobs *q)
{
	struct controller *c = q->c;
	struct ctl_job *j = q->job;
	pid_t pid = hap_config_check_spawn(c->cfg->haproxy.binary, j->candidate, q->check_out, &j->err);
	if (pid < 0) {
		finish(q, -1);
		return;
	}
	q->stage = ST_CHECK;
	q->check_timed_out = false;
	ev_child_set(&q->child_w, pid, 0);
	ev_child_start(c->loop, &q->child_w);
	ev_timer_set(&q->check_timer, CHECK_TIMEOUT_S, 0);
	ev_timer_start(c->loop, &q->check_timer);
}

static void on_check_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ctl_jobs *q = w->data;
	q->check_timed_out = true;
	kill(-q->child_w.pid, SIGKILL); /* its own process group; the child watcher then reaps it */
}

static void on_check_exit(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct ctl_jobs *q = w->data;
	struct ctl_job *j = q->job;
	ev_child_stop(loop, w);
	ev_timer_stop(loop, &q->check_timer);
	int rc = -1;
	if (q->check_timed_out)
		vxerr_set(&j->err, "haproxy -c -f %s: no result within %.0f s", j->candidate, CHECK_TIMEOUT_S);
	else
		rc = hap_config_check_verdict(w->rstatus, j->candidate, q->check_out, NULL, &j->err);
	unlink(q->check_out);
	if (rc == 0)
		rc = ctl_managed_install(q->c, j);
	if (rc != 0) {
		vxerr_prefix(&j->err, "rendered configuration rejected: ");
		finish(q, -1);
	} else if (j->kind == CTL_JOB_REFRESH) {
		finish(q, 0);
	} else {
		q->stage = ST_APPLY;
		hand_over(q, ctl_managed_apply);
	}
}

static void on_step_done(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ctl_jobs *q = w->data;
	pthread_mutex_lock(&q->mu);
	bool busy = q->work != NULL;
	int rc = q->work_rc;
	pthread_mutex_unlock(&q->mu);
	if (busy || !q->job)
		return;
	if (q->stage == ST_PREPARE && rc == 0)
		start_check(q);
	else if (q->stage == ST_PREPARE || q->stage == ST_APPLY)
		finish(q, rc);
}

int ctl_jobs_init(struct controller *c, struct vxerr *err)
{
	struct ctl_jobs *q = xcalloc(1, sizeof(*q));
	q->c = c;
	q->check_out = xasprintf("%s/haproxy.check.log", c->cfg->haproxy.state_dir);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	ev_async_init(&q->done_w, on_step_done);
	ev_child_init(&q->child_w, on_check_exit, 0, 0);
	ev_timer_init(&q->check_timer, on_check_timeout, 0, 0);
	q->done_w.data = q->child_w.data = q->check_timer.data = q;
	ev_async_start(c->loop, &q->done_w);
	int e = pthread_create(&q->thread, NULL, worker_main, q);
	if (e != 0) {
		ev_async_stop(c->loop, &q->done_w);
		free(q->check_out);
		free(q);
		return vxerr_set(err, "cannot start the controller's worker thread: %s", strerror(e));
	}
	c->jobs = q;
	return 0;
}

bool ctl_job_busy(const struct controller *c)
{
	return c->jobs && c->jobs->job;
}

bool ctl_job_start(struct controller *c, enum ctl_job_kind kind, struct vx_config *next)
{
	struct ctl_jobs *q = c->jobs;
	if (!q || q->job || c->stopping)
		return false;
	struct ctl_job *j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->next = next;
	j->cfg = next ? next : c->cfg;
	q->job = j;
	q->stage = ST_PREPARE;
	hand_over(q, ctl_managed_prepare);
	return true;
}

/* A job cut short by the controller stopping: its step finishes (each is bounded by a timeout),
 * a running check is killed, and the outcome is dropped, not applied. */
void ctl_jobs_stop(struct controller *c)
{
	struct ctl_jobs *q = c->jobs;
	if (!q)
		return;
	wait_idle(q);
	if (q->stage == ST_CHECK) {
		ev_timer_stop(c->loop, &q->check_timer);
		ev_child_stop(c->loop, &q->child_w);
		proc_stop(q->child_w.pid, 0);
		unlink(q->check_out);
	}
	if (q->job) {
		ctl_managed_discard(c, q->job);
		free(q->job);
		q->job = NULL;
	}
	q->stage = ST_IDLE;
	ev_async_stop(c->loop, &q->done_w);
}

void ctl_jobs_free(struct controller *c)
{
	struct ctl_jobs *q = c->jobs;
	if (!q)
		return;
	ctl_jobs_stop(c);
	pthread_mutex_lock(&q->mu);
	q->quit = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->check_out);
	free(q);
	c->jobs = NULL;
}
