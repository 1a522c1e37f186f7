/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF data path seen from userspace: load (adopting pinned maps), attach,
 * and the map writes the controller and the tests make. Every function
 * returns 0 or a negative errno and logs nothing: callers know the context.
 * A NULL struct lb_dp is "no data path" (mode proxy, or BPF denied): writes
 * succeed doing nothing, reads and attaches fail with -ENODEV.
 */
#ifndef LBD_DATAPLANE_H
#define LBD_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include "lb_abi.h"

struct lb_dp;

struct lb_dp_opts {
	const char *pin_root;   /* bpffs directory; NULL: nothing is pinned */
	__u32 ct_size;          /* established flows; 0: LB_CT_DEFAULT_SIZE */
	__u32 ct_new_size;      /* new flows (LRU); 0: LB_CT_NEW_DEFAULT_SIZE */
	bool  load_tc;          /* load the TC object now, not at the first TC attach */
};

enum lb_dp_mode {
	LB_DP_XDP = 0,      /* native XDP (driver mode) */
	LB_DP_XDP_GENERIC,  /* skb-mode XDP */
	LB_DP_TC,           /* clsact ingress */
};

int  lb_dp_open(const struct lb_dp_opts *o, struct lb_dp **out);
void lb_dp_close(struct lb_dp *dp);
/* True when the maps were adopted from an earlier lbd's pins. */
bool lb_dp_adopted(const struct lb_dp *dp);

/* Load the TC object (sharing this object's maps) unless it is loaded. */
int lb_dp_load_tc(struct lb_dp *dp);

int lb_dp_xdp_prog_fd(const struct lb_dp *dp);
int lb_dp_tc_prog_fd(const struct lb_dp *dp);
/* fd of a map by its name in lb_abi.h (LB_MAP_*), or -ENOENT. */
int lb_dp_map_fd(const struct lb_dp *dp, const char *name);
/* A flow's entry in LB_MAP_CT (val: struct lb_flow) or LB_MAP_NAT (struct
 * lb_nat), from the map of the key's family (IPv4: ct4, nat4), in either
 * tier (the established one first, as the data path looks). */
int lb_dp_flow_lookup(const struct lb_dp *dp, const char *map, const struct lb_flow_key *k,
		      void *val);

/* Also sets lb_config.now (the flows' clock, see lb_abi.h) to
 * lb_dp_now(), as does every write of the config (lb_dp_fib_bump). */
int lb_dp_set_config(struct lb_dp *dp, const struct lb_config *cfg);
__u32 lb_dp_now(void);
int lb_dp_get_config(struct lb_dp *dp, struct lb_config *cfg);
/* Invalidate every flow's cached next hop (struct lb_nh): call after route
 * or neighbour changes. */
int lb_dp_fib_bump(struct lb_dp *dp);

/* VIPs: also maintains the per-address marker entry (see lb_abi.h). */
int lb_dp_vip_set(struct lb_dp *dp, const struct lb_vip_key *k, const struct lb_vip *v);
int lb_dp_vip_del(struct lb_dp *dp, const struct lb_vip_key *k);

/* A slot that leaves its VIP (state LB_BE_UNUSED, or another vip_id) hands
 * its counters to that VIP and starts again from zero. */
int lb_dp_backend_set(struct lb_dp *dp, __u32 id, const struct lb_backend *b);
int lb_dp_backend_get(struct lb_dp *dp, __u32 id, struct lb_backend *b);

/* Replace a VIP's selection table whole: a new inner map is filled, then
 * swapped into the outer map in one update. Callers then set
 * lb_vip.table_size (the data path reads both; a size smaller than the new
 * table is harmless, see select.h). */
int lb_dp_table_swap(struct lb_dp *dp, __u32 vip_id, const __u32 *ids, __u32 n);
int lb_dp_table_clear(struct lb_dp *dp, __u32 vip_id);

/*
 * Counters summed over CPUs. A VIP's figures are what the data path counts
 * on the VIP itself (replies, forward local packets), plus the counters of
 * the backends it had (folded in by lb_dp_backend_set when a slot is
 * released), plus those of its backends now, be_ids (see bpf/lib/stats.h).
 * lb_dp_vip_base_stats is the first two; lb_vip_stats_add adds a backend's
 * counters read already.
 */
int lb_dp_vip_stats(struct lb_dp *dp, __u32 vip_id, const __u32 *be_ids, size_t nbe,
		    struct lb_vip_stats *out);
int lb_dp_vip_base_stats(struct lb_dp *dp, __u32 vip_id, struct lb_vip_stats *out);
void lb_vip_stats_add(struct lb_vip_stats *v, const struct lb_backend_stats *b);
int lb_dp_backend_stats(struct lb_dp *dp, __u32 id, struct lb_backend_stats *out);
int lb_dp_backend_conns(struct lb_dp *dp, __u32 id, __s64 *out);
int lb_dp_drops(struct lb_dp *dp, __u64 out[LB_DROP_REASONS]);
int lb_dp_events(struct lb_dp *dp, __u64 out[LB_EVENTS]);

/*
 * Connection tracking's two tiers (bpf/lib/conntrack.h). lb_dp_ct_gc
 * removes the established flows idle for longer than their timeout (TCP,
 * UDP, or closed: FIN or RST seen), with their reply mappings, and reply
 * mappings whose flow is gone. Idle means: last seen (either direction)
 * before now - timeout, where a flow counts as seen at `since` at the
 * latest (lbd's start: while no lbd ran, the clock did not move the
 * stamps). Sweeps both families whole.
 */
struct lb_ct_timeouts {
	__u32 tcp, udp, closed; /* seconds */
};

struct lb_ct_gc_stats {
	__u64 flows;   /* established flows removed */
	__u64 nat;     /* reply mappings removed with them or orphaned */
	__u64 kept;    /* established flows still there */
	__u64 conns;   /* TCP connections counted out (lb_dp_conn_sweep) */
};

int lb_dp_ct_gc(struct lb_dp *dp, __u32 now, __u32 since, const struct lb_ct_timeouts *t,
		struct lb_ct_gc_stats *out);

/* Counts out the TCP connections whose flows went without a close seen
 * (idle, evicted): after lb_dp_ct_gc. *gone: how many. */
int lb_dp_conn_sweep(struct lb_dp *dp, __u64 *gone);

/* Flows in each tier (both families), counted now. */
struct lb_ct_counts {
	__u64 established, new_flows;
	__u32 established_max, new_max;  /* the maps' sizes, each family */
};

int lb_dp_ct_counts(struct lb_dp *dp, struct lb_ct_counts *out);

/* Attach the data path to an interface; the link is pinned when pin_root
 * is set, so it outlives lbd. An existing pinned link is updated in place
 * (atomic program replace) rather than detached. LB_DP_TC is a clsact ingress
 * filter at a fixed handle/priority: it outlives lbd without a pin, and an
 * attach replaces whatever program sits there (ours, from an earlier lbd)
 * atomically. Errors are the kernel's (e.g. -ENODEV, -EOPNOTSUPP). */
int lb_dp_attach(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode);
int lb_dp_detach(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode);
/*
 * forward local: the socket-lookup program (bpf/lb_sk.bpf.c) on lbd's
 * network namespace hands new connections to local VIPs to the worker
 * instances' own sockets. Its link is pinned when pin_root is set, so it
 * outlives lbd; a restarted lbd adopts it (same namespace) and updates it
 * in place.
 */
int lb_dp_attach_sk_lookup(struct lb_dp *dp);
/* The socket-lookup program (loaded on first use), for tests. */
int lb_dp_sk_prog_fd(struct lb_dp *dp);
int lb_dp_detach_sk_lookup(struct lb_dp *dp);
/* The socket of local backend id: a listening TCP or bound UDP socket
 * (the map takes its own reference; sock_fd stays the caller's). A
 * dual-stack IPv6 socket is entered for IPv4 too. The kernel drops an
 * entry when its socket closes. */
int lb_dp_local_sock_set(struct lb_dp *dp, __u32 id, int sock_fd);
int lb_dp_local_sock_del(struct lb_dp *dp, __u32 id);
/* Remove the clsact egress filter an earlier lbd's rewrite-based local
 * delivery left on an interface. Idempotent. */
int lb_dp_detach_egress(int ifindex);

const char *lb_drop_name(unsigned int reason);
const char *lb_event_name(unsigned int ev);
const char *lb_dp_mode_name(enum lb_dp_mode m);

#endif
