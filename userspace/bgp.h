/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Route announcement through BIRD2 and the node's drain state. lbd does not
 * speak BGP itself: it generates BIRD's configuration for its VIPs, runs a
 * BIRD of its own (supervised: restarted when it dies) or drives one the
 * operator runs, and talks to it over BIRD's control socket. The service
 * tells it which VIP addresses may be announced (data path attached, a
 * healthy backend); this module owns whether the node announces at all
 * (active, draining, drained).
 */
#ifndef LBD_BGP_H
#define LBD_BGP_H

#include <stdbool.h>
#include "config.h"
#include "control.h"

struct lb_bgp;
struct lb_loop;

struct lb_bgp_route {
	union lb_addr addr;
	__u8 family;
};

enum lb_node_state {
	LB_NODE_ACTIVE = 0,   /* announcing */
	LB_NODE_GRACE,        /* announcing with GRACEFUL_SHUTDOWN (65535:0) */
	LB_NODE_DRAINING,     /* withdrawn, new flows still arrive */
	LB_NODE_DRAINED,      /* withdrawn, no new flow for drain_quiet */
};

/* Writes BIRD's files and, without `bird external`, starts BIRD. */
int  lb_bgp_new(struct lb_loop *loop, const struct lb_bgp_conf *c, const char *state_dir,
		struct lb_bgp **out);
/* Withdraws everything: stops its own BIRD (bounded), or empties the
 * routes of an external one. NULL is fine. */
void lb_bgp_free(struct lb_bgp *b);
/* A reload's bgp block (same block: nothing happens). */
void lb_bgp_reconf(struct lb_bgp *b, const struct lb_bgp_conf *c);
/* The addresses that may be announced now (duplicates allowed). BIRD is
 * reconfigured at once when the set differs. */
void lb_bgp_set_routes(struct lb_bgp *b, const struct lb_bgp_route *r, int n);
/* Once a second, with the data path's new-flow count (all VIPs, ever). */
void lb_bgp_tick(struct lb_bgp *b, __u64 new_flows);
/* `node drain` / `node undrain`; persisted in state_dir. Returns false if
 * the node already was in that state. */
bool lb_bgp_drain(struct lb_bgp *b, bool drain);
enum lb_node_state lb_bgp_state(const struct lb_bgp *b);
const char *lb_node_state_name(enum lb_node_state s);
/* The "node" member of `status -j` (an object), or the text lines. */
void lb_bgp_status(const struct lb_bgp *b, bool json, struct lb_buf *o);
/* Prometheus families lbd_node_* and lbd_bgp_*. */
void lb_bgp_metrics(const struct lb_bgp *b, struct lb_buf *o);

#endif
