/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection for a new flow. Every method reads the VIP's table, which
 * userspace fills per method:
 *   maglev, ip_hash   the weighted Maglev table (hash of 5-tuple / client)
 *   round_robin       a smooth weighted sequence walked by a per-CPU cursor
 *   least_conn        the same weighted sequence; two random slots are drawn
 *                     and the one with fewer live connections per unit of
 *                     weight wins (power of two choices). Drawing from the
 *                     weighted sequence keeps idle backends loaded in
 *                     proportion to their weights.
 */
#ifndef LB_SELECT_H
#define LB_SELECT_H

#include "maps.h"
#include "parse.h"

static __always_inline int lb_table_get(void *tbl, __u32 idx, __u32 *be_id)
{
	__u32 *slot = bpf_map_lookup_elem(tbl, &idx);

	if (!slot)
		return -1;
	*be_id = *slot;
	return 0;
}

static __always_inline __s64 lb_conns(__u32 be_id)
{
	__s64 *c = bpf_map_lookup_elem(&backend_conns, &be_id);

	return c ? *c : 0;
}

static __always_inline __u32 lb_weight(__u32 be_id)
{
	struct lb_backend *be = bpf_map_lookup_elem(&backends, &be_id);

	return be ? be->weight : 0;
}

static __always_inline int lb_least_conn(void *tbl, __u32 n, __u32 *be_id)
{
	__u32 r = bpf_get_prandom_u32();
	__u32 a, b;
	__s64 ca, cb;

	if (lb_table_get(tbl, r % n, &a))
		return -1;
	if (n == 1 || lb_table_get(tbl, (r >> 16) % n, &b) || a == b) {
		*be_id = a;
		return 0;
	}
	ca = lb_conns(a);
	cb = lb_conns(b);
	if (ca < 0)
		ca = 0;
	if (cb < 0)
		cb = 0;
	/* ca/wa <= cb/wb without division */
	*be_id = (__u64)ca * lb_weight(b) <= (__u64)cb * lb_weight(a) ? a : b;
	return 0;
}

/* The VIP a packet is for: {addr, port, proto}, then the wildcard port. */
static __always_inline struct lb_vip *lb_vip_lookup(const struct lb_pkt *p,
						    const struct lb_config *cfg)
{
	struct lb_vip_key vk;
	struct lb_vip *vip;

	lb_addr_copy(&vk.addr, &p->key.dst);
	vk.family = p->key.family;
	vk.port = p->key.dport;
	vk.proto = p->key.proto;
	vip = bpf_map_lookup_elem(&vips, &vk);
	if (!vip && (cfg->flags & LB_CFG_F_WILDCARD)) {
		vk.port = 0;
		vip = bpf_map_lookup_elem(&vips, &vk);
	}
	return vip;
}

/* Pick a backend id for a new flow. Returns 0, or a drop reason. */
static __always_inline int lb_select(const struct lb_pkt *p, const struct lb_vip *vip,
				     __u32 seed, __u32 *be_id)
{
	__u32 n = vip->table_size, vip_id = vip->id, idx;
	void *tbl;

	if (n == 0)
		return LB_DROP_NO_BACKEND;
	tbl = bpf_map_lookup_elem(&vip_tables, &vip_id);
	if (!tbl)
		return LB_DROP_NO_TABLE;

	switch (vip->method) {
	case LB_METHOD_IP_HASH:
		idx = lb_hash_addr(&p->key.src, seed) % n;
		break;
	case LB_METHOD_ROUND_ROBIN: {
		__u32 *cur = bpf_map_lookup_elem(&rr_cursor, &vip_id);

		if (!cur)
			return LB_DROP_NO_TABLE;
		idx = *cur;
		if (idx >= n) /* table shrank since */
			idx = 0;
		*cur = idx + 1;
		break;
	}
	case LB_METHOD_LEAST_CONN:
		return lb_least_conn(tbl, n, be_id) ? LB_DROP_NO_TABLE : 0;
	default:
		idx = lb_hash_flow(&p->key, seed) % n;
		break;
	}
	return lb_table_get(tbl, idx, be_id) ? LB_DROP_NO_TABLE : 0;
}

#endif
