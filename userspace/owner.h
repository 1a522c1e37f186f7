/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow ownership shared between lbd nodes behind ECMP (issue 10). In full
 * NAT a connection lives on the node that opened it (its SNAT address and
 * port); when the router moves it (a drain) another node would reset it. A
 * draining node therefore pushes the client tuples of its flows to its
 * peers over UDP (sync_peer, sync_port), the way IPVS's sync daemon and
 * conntrackd share state; each peer puts them in its owners map, and its
 * data path sends a packet of such a flow on to the owner at L2
 * (bpf/lib/lb.h, lb_to_owner). Only tuples travel, not NAT state: the
 * owner keeps serving its flows.
 */
#ifndef LBD_OWNER_H
#define LBD_OWNER_H

#include "config.h"
#include "control.h"

struct lb_owner_sync;
struct lb_loop;
struct lb_dp;

/* Listens on c->sync_port for the peers' pushes. */
int  lb_owner_open(struct lb_loop *loop, struct lb_dp *dp, const struct lb_bgp_conf *c,
		   struct lb_owner_sync **out);
void lb_owner_close(struct lb_owner_sync *o);
/* Sends this node's open TCP flows to every peer: all of them when a full
 * push is due (the first of a window, then every few seconds), else those
 * not sent since the last full one. Returns the number of flows sent, or a
 * negative errno. */
int  lb_owner_push(struct lb_owner_sync *o);
/* This node starts draining: push now, ask the peers to push theirs, and
 * go on pushing for a while (lb_owner_tick). */
void lb_owner_drain(struct lb_owner_sync *o);
/* Once a second. */
void lb_owner_tick(struct lb_owner_sync *o);
/* The "flow_sync" member of `status -j` (an object), or a text line. */
void lb_owner_status(const struct lb_owner_sync *o, bool json, struct lb_buf *out);

#endif
