/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The data path's maps. Every object (XDP, TC) includes this one file, and
 * libbpf pins them by name under the pin root lbd chooses, so both programs
 * and a restarted lbd share one set of state.
 */
#ifndef LB_MAPS_H
#define LB_MAPS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_VIPS * 2); /* VIPs plus address markers */
	__type(key, struct lb_vip_key);
	__type(value, struct lb_vip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends SEC(".maps");

/* A VIP's selection table: backend ids. Replaced whole (inner map swap) so a
 * reader never sees a half-written table. BPF_F_INNER_MAP lets tables of
 * different sizes live in one outer map. */
struct lb_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAGLEV_DEFAULT_SIZE);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, LB_MAX_VIPS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct lb_table);
} vip_tables SEC(".maps");

/*
 * Conntrack, one pair of maps per family (see struct lb_flow_key4); reach
 * them through conntrack.h's lb_ct_* and lb_nat_*, which pick the map.
 * Two tiers (conntrack.h says why): ct/ct4 and nat/nat4, LRU maps, hold
 * new flows (sizes set by lbd: conntrack_new_size, nat twice that);
 * ct_est/ct4_est and nat_est/nat4_est, preallocated hash maps that never
 * evict, hold confirmed ones (conntrack_size). ct and nat keep their names
 * (and pins) from when they held both families and both tiers.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_NEW_DEFAULT_SIZE);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_NEW_DEFAULT_SIZE);
	__type(key, struct lb_flow_key4);
	__type(value, struct lb_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_NEW_DEFAULT_SIZE * 2);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_NEW_DEFAULT_SIZE * 2);
	__type(key, struct lb_flow_key4);
	__type(value, struct lb_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_CT_DEFAULT_SIZE);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_est SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_CT_DEFAULT_SIZE);
	__type(key, struct lb_flow_key4);
	__type(value, struct lb_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct4_est SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_CT_DEFAULT_SIZE);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_est SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_CT_DEFAULT_SIZE);
	__type(key, struct lb_flow_key4);
	__type(value, struct lb_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat4_est SEC(".maps");

/* Where a new flow builds its `nat` value: next to everything else on that
 * path, struct lb_nat does not fit the 512-byte stack. Not pinned: scratch. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_nat);
} nat_scratch SEC(".maps");

/* Where a new flow is built, or a new-tier flow copied (lib/lb.h:
 * lb_ct_find says why). Not pinned: scratch. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_flow);
} flow_scratch SEC(".maps");

/* Open TCP connections behind backend_conns (conntrack.h, lb_conn_open):
 * keyed by the client tuple with the flow's SNAT port in pad, the backend
 * that counted the connection in and its generation as value (lb_conn_val).
 * Not an LRU, which would drop the entries of the oldest live connections
 * (and their counts would never go down): allocated as connections open,
 * sized by lbd for every flow of both tiers. An entry whose flow went without a FIN or RST seen (idle,
 * evicted) is counted out by lbd's collection (lb_dp_conn_sweep). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * (LB_CT_DEFAULT_SIZE + LB_CT_NEW_DEFAULT_SIZE));
	__type(key, struct lb_flow_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_open SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* Live TCP connections per backend (least_conn, and a gauge for operators).
 * Mmapable: lbd counts out the connections its collection found gone with
 * an atomic add on the same words (lb_dp_conn_sweep). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __s64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rr_cursor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct lb_vip_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_stats SEC(".maps");

/* Userspace's alone (no program touches it): the counters of the backends
 * a VIP had, folded in when their slot is released, so that the VIP's
 * totals (vip_stats plus its backends', see stats.h) never go back. Pinned
 * like the rest: the totals survive a restart of lbd. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct lb_vip_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_retired SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_backend_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_DROP);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_DROP);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_stats SEC(".maps");

/* forward local: the worker instances' sockets (struct lb_sock_key), put
 * there by lbd; the kernel removes a socket when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, LB_MAX_LOCAL_SOCKS);
	__type(key, struct lb_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local_socks SEC(".maps");

/* Flows of peer nodes, sent on to their owner (struct lb_owner). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_OWNERS_MAX);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} owners SEC(".maps");

/*
 * The programs the main XDP and TC programs tail-call (enum lb_call), an
 * array per program type: a prog array holds programs of one type. Both
 * are in every object so that the TC object takes them over from the XDP
 * one by name like the rest. Pinned because the kernel empties a prog
 * array when its last file and pin are gone, while the programs that call
 * through it stay attached after lbd exits.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, LB_CALLS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, LB_CALLS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_calls SEC(".maps");

#endif
