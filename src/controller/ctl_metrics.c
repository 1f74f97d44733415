/* The controller's Prometheus metrics and its /metrics and /healthz endpoint. */
#include <stdlib.h>
#include <string.h>

#include "common/httpd.h"
#include "common/log.h"
#include "controller/ctl_int.h"

#define METRICS_MAX (8u << 20)

static const double latency_buckets[] = { 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5 };

void ctl_metrics_init(struct ctl_metrics *m)
{
	size_t nb = sizeof(latency_buckets) / sizeof(latency_buckets[0]);
	m->reg = metrics_new();
	m->apply_seconds = metrics_histogram(m->reg, "veltrix_registry_apply_seconds",
					     "From a registry change reaching the controller to HAProxy acknowledging it.",
					     NULL, latency_buckets, nb);
	m->reconcile_seconds = metrics_histogram(m->reg, "veltrix_reconcile_seconds",
						 "Duration of one reconcile round (read, diff, apply).", NULL,
						 latency_buckets, nb);
	m->ops_total = metrics_counter(m->reg, "veltrix_runtime_operations_total",
				       "Runtime API operations applied, by kind.", "kind");
	m->op_errors_total = metrics_counter(m->reg, "veltrix_runtime_errors_total",
					     "Runtime API commands HAProxy refused, by operation kind.", "kind");
	m->rejected = metrics_gauge(m->reg, "veltrix_registry_rejected_keys",
				    "Registry keys whose current value is rejected, by reason.", "reason");
	m->rejections_total = metrics_counter(m->reg, "veltrix_registry_rejections_total",
					      "Registry values rejected, by reason (each counted once).", "reason");
	m->staleness = metrics_gauge(m->reg, "veltrix_registry_staleness_seconds",
				     "Seconds the registry view may be out of date (0 while etcd is reachable).", NULL);
	m->revision = metrics_gauge(m->reg, "veltrix_registry_revision", "The etcd revision the view reflects.", NULL);
	m->reloads_total = metrics_counter(m->reg, "veltrix_haproxy_reloads_total",
					   "HAProxy reloads done by the controller (service changes only).", NULL);
	m->restarts_total = metrics_counter(m->reg, "veltrix_haproxy_restarts_total",
					    "HAProxy started again by the controller after its process exited (managed mode).",
					    NULL);
	m->resyncs_total = metrics_counter(m->reg, "veltrix_watch_resyncs_total",
					   "Full registry re-lists after a watch could not continue, by reason.", "reason");
	m->held_back = metrics_gauge(m->reg, "veltrix_panic_held_servers",
				     "Servers kept because removing them would pass the panic threshold.", "service");
	m->servers = metrics_gauge(m->reg, "veltrix_registry_instances", "Valid registered instances per service.",
				   "service");
	m->runtime_up = metrics_gauge(m->reg, "veltrix_haproxy_runtime_up",
				      "1 while HAProxy's runtime API answers, 0 after it has not for a second.", NULL);
	metric_add(m->reloads_total, 0, NULL);
	metric_add(m->restarts_total, 0, NULL);
}

void ctl_metrics_release(struct ctl_metrics *m)
{
	metrics_free(m->reg);
	memset(m, 0, sizeof(*m));
}

/* Gauges that are states, not events: refreshed every second and before each scrape. */
void ctl_metrics_refresh(struct controller *c)
{
	if (!c->m.reg)
		return;
	metric_set(c->m.staleness, ctl_registry_staleness_s(c), NULL);
	metric_set(c->m.runtime_up, ctl_rt_unresponsive(c) ? 0 : 1, NULL);
	if (!c->view)
		return;
	metric_set(c->m.revision, (double)reg_view_revision(c->view), NULL);
	size_t by_reason[REG_REASON_COUNT] = { 0 };
	for (size_t i = 0; i < reg_view_n_rejected(c->view); i++)
		by_reason[reg_view_rejected_at(c->view, i)->reason]++;
	for (int r = 1; r < REG_REASON_COUNT; r++) {
		const char *labels[] = { reg_reason_name((enum reg_reason)r) };
		if (by_reason[r] || metric_value(c->m.rejected, labels) != 0)
			metric_set(c->m.rejected, (double)by_reason[r], labels);
	}
	for (size_t i = 0; i < c->n_svcs; i++) {
		const char *labels[] = { c->svcs[i].name };
		const struct reg_service *rs = reg_view_find_service(c->view, c->svcs[i].name);
		metric_set(c->m.servers, rs ? (double)rs->n_instances : 0, labels);
		metric_set(c->m.held_back, (double)c->svcs[i].held_back, labels);
	}
}

static void handle(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
	struct controller *c = ud;
	if (strcmp(req->path, "/metrics") == 0) {
		ctl_metrics_refresh(c);
		resp->content_type = "text/plain; version=0.0.4";
		if (metrics_render(c->m.reg, &resp->body) != 0)
			resp->status = 500;
	} else if (strcmp(req->path, "/healthz") == 0) {
		bool hap_up = !ctl_rt_unresponsive(c);
		bool ok = c->have_snapshot && c->registry_up && hap_up;
		resp->status = ok ? 200 : 503;
		buf_printf(&resp->body, "%s registry=%s snapshot=%s staleness_seconds=%.1f haproxy=%s\n",
			   ok ? "ok" : "degraded", c->registry_up ? "up" : "down", c->have_snapshot ? "yes" : "no",
			   ctl_registry_staleness_s(c), hap_up ? "up" : "unresponsive");
	} else {
		resp->status = 404;
		buf_puts(&resp->body, "not found: try /metrics or /healthz\n");
	}
}

int ctl_metrics_serve(struct controller *c, const char *hostport, struct vxerr *err)
{
	c->httpd = httpd_start(c->loop, hostport, handle, c, err);
	if (!c->httpd)
		return vxerr_prefix(err, "controller.metrics: ");
	return 0;
}
