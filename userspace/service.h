/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The running service: what lbd balances right now and the data path that
 * does it. It owns the effective model (the config file as last loaded, plus
 * the runtime layer of lbctl changes on top), the mapping of VIPs and
 * backends to data-path ids (stable across restarts: they are recovered from
 * the pinned maps), the selection tables, the persisted runtime layer and
 * the attached interfaces. lbd wires it to the loop; control commands land
 * in lb_svc_command().
 */
#ifndef LBD_SERVICE_H
#define LBD_SERVICE_H

#include <stdbool.h>
#include "config.h"
#include "control.h"

#define LBD_VERSION "0.1"

struct lb_svc;

/* Takes ownership of *conf (loaded from conf_path) on success. */
/* inherit: listening sockets handed over by a previous lbd (lbd --takeover),
 * owned by the service from here on (the proxy takes them; a BPF mode
 * closes them). */
int  lb_svc_start(const char *conf_path, struct lb_conf *conf, const int *inherit, int ninherit,
		  struct lb_svc **out);
/* Ends the service. With cleanup, detaches every interface, removes the
 * pinned maps and links and the VIP addresses, and stops the proxy's workers;
 * without, the data path keeps forwarding for the next lbd to adopt, and the
 * proxy's workers serving for it to retire. */
void lb_svc_stop(struct lb_svc *s, bool cleanup);

/* Re-reads the config file and applies only the difference. Errors (one per
 * line, FILE:LINE: message) go to errs; on any error nothing changes. */
int  lb_svc_reload(struct lb_svc *s, struct lb_buf *errs);

/* The control socket handler (ctx is the struct lb_svc). */
int  lb_svc_command(void *ctx, const struct lb_ctl_req *req, struct lb_buf *out);

/* The metrics renderer (lb_metrics_render_fn; ctx is the struct lb_svc):
 * Prometheus text format 0.0.4 with every counter read once per scrape. */
int  lb_svc_metrics(void *ctx, struct lb_buf *out);
/* The `lbctl -j status` document, for the metrics endpoint's /api/status
 * (one renderer for both). Returns 0 or a negative errno. */
int  lb_svc_status_json(struct lb_svc *s, struct lb_buf *out);
/* The metrics endpoint of the configuration in effect (after reloads);
 * false when none is configured. */
bool lb_svc_metrics_addr(const struct lb_svc *s, struct lb_endpoint *ep);

/* Starts the health checks (health.c) in the loop, for the current model
 * and every model applied later. */
struct lb_loop;
int  lb_svc_health_start(struct lb_svc *s, struct lb_loop *loop);

/* Starts the worker blocks (supervisor.c) in the loop; ready instances
 * become `local` backends of their VIP. Reloads follow the blocks. */
int  lb_svc_workers_start(struct lb_svc *s, struct lb_loop *loop);

/* Follows link events (rtnetlink) in the loop: interfaces that appear are
 * attached, removed ones detached. */
int  lb_svc_netlink_start(struct lb_svc *s, struct lb_loop *loop);

/* With a bgp block: writes BIRD's files, starts or finds BIRD and announces
 * the VIPs that have a healthy backend (bgp.c). Reloads follow the block. */
int  lb_svc_bgp_start(struct lb_svc *s, struct lb_loop *loop);
/* SIGTERM: start draining the node (bgp block, stop_drain > 0, not drained
 * yet); true when lbd should wait for lb_svc_drained, at most
 * lb_svc_stop_drain_ms. */
bool lb_svc_drain_for_stop(struct lb_svc *s);
bool lb_svc_drained(const struct lb_svc *s);
__u64 lb_svc_stop_drain_ms(const struct lb_svc *s);

/* Once a second: rate snapshots, link re-checks. */
void lb_svc_tick(struct lb_svc *s);

/* True once `lbctl stop` asked lbd to exit (with cleanup). */
bool lb_svc_stop_requested(const struct lb_svc *s);

/* Listener handover, the old lbd's half (see lbd.c): the proxy's listening
 * sockets (duplicates) appended to pass, one "listener NAME ADDR:PORT" line
 * each in out; the count, or -EOPNOTSUPP when no proxy serves (a BPF data
 * path needs no handover: the next lbd adopts its pins), -E2BIG. */
int  lb_svc_listeners(struct lb_svc *s, struct lb_ctl_fds *pass, struct lb_buf *out);
/* The successor serves: stop accepting; open connections go on. */
void lb_svc_stop_accepting(struct lb_svc *s);
/* The proxy's workers killed now (lb_svc_stop leaves them serving unless
 * it cleans up): a takeover that failed, whose predecessor serves on. */
void lb_svc_proxy_stop(struct lb_svc *s);
/* Connections (UDP: sessions) the proxy still carries; 0 without it. */
__u64 lb_svc_proxy_active(struct lb_svc *s);

/* lbd --cleanup: tear down what a (dead) lbd left for this config. */
int  lb_svc_cleanup(const struct lb_conf *conf);

#endif
