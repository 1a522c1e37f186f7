/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Active and passive health checks, run inside lbd's one loop: every check
 * is a non-blocking socket, all deadlines share one timerfd, so hundreds of
 * targets never delay the loop.
 *
 * A target is (VIP name, backend endpoint). Its state is up or down:
 *   - active: `fall` consecutive failed checks take it down, `rise`
 *     consecutive good ones bring it back;
 *   - passive (NGINX max_fails/fail_timeout): max_fails failures reported
 *     within fail_timeout take it down for fail_timeout, then it is tried
 *     again.
 * It is up when neither says down.
 *
 * Initial state (as HAProxy without `init-state`): a new target starts up,
 * so starting lbd or adding a backend never empties a table on its own, but
 * provisionally: until its first check succeeds, ONE failed check takes it
 * down (HAProxy's health counter starting at `rise`). lb_health_sync() keeps
 * the state of targets that stay, so a reload resets nothing.
 */
#ifndef LBD_HEALTH_H
#define LBD_HEALTH_H

#include <stdbool.h>
#include "addr.h"
#include "config.h"
#include "loop.h"

struct lb_health;

/* Called once per change of a target's up/down state (after it was logged). */
typedef void (*lb_health_fn)(void *ctx, const char *vip, const struct lb_endpoint *ep,
			     bool healthy, const char *reason);

struct lb_health_target {
	const char *vip;             /* copied */
	struct lb_endpoint ep;       /* the service endpoint */
	struct lb_health_conf hc;    /* effective check; type LB_HC_NONE: no active check */
	__u32 max_fails;             /* 0: no passive check */
	__u64 fail_timeout_ms;
	bool src_set;                /* bind checks to src (the SNAT address) */
	union lb_addr src;
};

struct lb_health_status {
	bool up;                     /* what the tables should use */
	bool active_up, passive_up;
	bool checking;               /* an active check is configured */
	__u32 ok_run, fail_run;      /* consecutive good / failed checks */
	__u64 checks, failures;      /* active checks done / failed */
	__u64 passive_fails;         /* failures reported by lb_health_report_fails */
	__u64 changes;               /* up/down transitions */
	__u64 last_check_ms;         /* CLOCK_MONOTONIC (lb_now_ms), 0 = never */
	__u64 last_change_ms;        /* 0 = never */
	__u64 latency_us;            /* how long the last check took */
	__u64 up_since_ms;           /* added or last came up (for slow start) */
	char reason[160];            /* why the last check / change happened */
};

int  lb_health_new(struct lb_loop *loop, lb_health_fn fn, void *ctx, struct lb_health **out);
void lb_health_free(struct lb_health *h);
/* At most max active checks in flight (health_concurrency; 0: no limit): a
 * due check waits for a free slot. */
void lb_health_set_concurrency(struct lb_health *h, int max);
int  lb_health_inflight(const struct lb_health *h);

/* The check a backend gets: the VIP's, with the backend's health_check=TYPE
 * override applied. */
void lb_health_effective(const struct lb_health_conf *vip, const struct lb_backend_conf *be,
			 struct lb_health_conf *out);

/* Make the target set exactly t[0..n): new targets start (jittered), the
 * state of targets that stay (same vip + endpoint) is kept (a changed check
 * takes effect from the next check), the others are dropped silently. */
int  lb_health_sync(struct lb_health *h, const struct lb_health_target *t, int n);

/* Passive: n failures (refused or unanswered connects) observed just now. */
void lb_health_report_fails(struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
			    unsigned int n);

/* Passive, from the data path's cumulative per-backend counters (full NAT
 * sees both directions): SYNs answered with RST, and SYNs still unanswered a
 * whole call later (about a second), count as failures. The first call for
 * a target, a call with another counters_id (the data path's backend id: a
 * reused id carries its last owner's counts) and one where a counter went
 * back only set the baseline.
 * Feed only VIPs whose replies pass the balancer (not dsr). */
void lb_health_feed_syn(struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
			__u32 counters_id, __u64 syn, __u64 synack, __u64 rst_syn);

/* True unless the target is known and down. */
bool lb_health_up(const struct lb_health *h, const char *vip, const struct lb_endpoint *ep);
/* 0, or -ENOENT for an unknown target. */
int  lb_health_status(const struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
		      struct lb_health_status *out);

int  lb_health_count(const struct lb_health *h);

#endif
