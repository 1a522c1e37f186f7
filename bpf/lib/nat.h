/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address/port translation with incremental checksum fixes, and the router's
 * TTL decrement. Works on the parsed packet in place; no helper calls.
 */
#ifndef LB_NAT_H
#define LB_NAT_H

#include "csum.h"
#include "parse.h"

/* Where the L4 checksum lives; NULL when there is none to fix (IPv4 UDP with
 * checksum 0 means "no checksum" and must stay 0). */
static __always_inline __u16 *lb_l4_csum(struct lb_pkt *p, void *end)
{
	if (p->key.proto == IPPROTO_TCP) {
		struct tcphdr *th = p->l4;

		if ((void *)(th + 1) > end)
			return 0;
		return &th->check;
	}
	if (p->key.proto == IPPROTO_UDP) {
		struct udphdr *uh = p->l4;

		if ((void *)(uh + 1) > end)
			return 0;
		if (uh->check == 0 && p->key.family == LB_AF_INET)
			return 0;
		return &uh->check;
	}
	return 0;
}

/* Store a computed L4 checksum. UDP writes 0xffff for a computed 0, since
 * 0 on the wire means "no checksum". */
static __always_inline void lb_l4_csum_put(struct lb_pkt *p, __u16 *csum, __u16 v)
{
	if (v == 0 && p->key.proto == IPPROTO_UDP)
		v = 0xffff;
	*csum = v;
}

/*
 * What a full-NAT rewrite of p's tuple to (nsrc:nsport -> ndst:ndport),
 * TTL decrement included, adds to the L4 (*l4) and IPv4 header (*l3)
 * checksums, folded. Worked out from the parsed tuple, not the packet, so
 * it holds for every packet of the flow: the TTL's word goes down by the
 * same amount whatever the TTL (at least 2 when forwarded).
 */
static __always_inline void lb_nat_csum_delta(const struct lb_pkt *p,
					      const union lb_addr *nsrc, __u16 nsport,
					      const union lb_addr *ndst, __u16 ndport,
					      __u16 *l4, __u16 *l3)
{
	int v6 = p->key.family == LB_AF_INET6;
	__u16 ttlw = (__u16)(p->ttl << 8 | p->key.proto);
	__u64 addrs;

	addrs = csum_sub_addr(0, &p->key.src, nsrc, v6);
	addrs = csum_sub_addr(addrs, &p->key.dst, ndst, v6);
	*l4 = csum_fold(csum_sub16(csum_sub16(addrs, p->key.sport, nsport),
				   p->key.dport, ndport));
	*l3 = csum_fold(csum_sub16(addrs, bpf_htons(ttlw), bpf_htons(ttlw - 0x100)));
}

/* Rewrite the IP addresses and, when forwarding (dec_ttl), decrement the
 * TTL/hop limit, fixing the IPv4 header checksum. Local delivery keeps the
 * TTL: the packet is not routed. The L4 checksum is the caller's business. */
static __always_inline int lb_l3_set(struct lb_pkt *p, void *end,
				     const union lb_addr *nsrc,
				     const union lb_addr *ndst, int dec_ttl,
				     const __u16 *l3d)
{
	if (p->key.family == LB_AF_INET6) {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		__builtin_memcpy(&ip6->saddr, nsrc->b, 16);
		__builtin_memcpy(&ip6->daddr, ndst->b, 16);
		if (dec_ttl)
			ip6->hop_limit--;
	} else {
		struct iphdr *ip = p->l3;
		__u16 *ttlw, old, nw;
		__u64 acc;

		if ((void *)(ip + 1) > end)
			return -1;
		/* The TTL goes down within its 16-bit word, written whole:
		 * reading the word back after a byte store into it stalls
		 * store forwarding (the hottest line of lb_xdp in a perf
		 * profile of established flows). */
		ttlw = (__u16 *)&ip->ttl;
		old = *ttlw;
		nw = dec_ttl ? bpf_htons(bpf_ntohs(old) - 0x100) : old;
		if (l3d) {
			ip->check = csum_apply(ip->check, *l3d);
		} else {
			acc = csum_begin(ip->check);
			acc = csum_sub16(acc, old, nw);
			acc = csum_sub32(acc, ip->saddr, nsrc->v4);
			acc = csum_sub32(acc, ip->daddr, ndst->v4);
			ip->check = csum_end(acc);
		}
		*ttlw = nw;
		ip->saddr = nsrc->v4;
		ip->daddr = ndst->v4;
	}
	return 0;
}

static __always_inline int lb_l3_rewrite(struct lb_pkt *p, void *end,
					 const union lb_addr *nsrc,
					 const union lb_addr *ndst)
{
	return lb_l3_set(p, end, nsrc, ndst, 1, 0);
}

/*
 * Rewrite the packet's tuple to (nsrc:nsport -> ndst:ndport) and decrement
 * the TTL/hop limit. Ports are in network order. The L4 checksum covers the
 * pseudo-header, so it takes the address change as well as the ports.
 * With f (a flow whose csum_l4 and csum_l3 lb_nat_csum_delta set), the
 * checksums take its precomputed deltas instead.
 */
static __always_inline int lb_rewrite(struct lb_pkt *p, void *end,
				      const union lb_addr *nsrc, __u16 nsport,
				      const union lb_addr *ndst, __u16 ndport, int dec_ttl,
				      const struct lb_flow *f)
{
	int v6 = p->key.family == LB_AF_INET6;
	__u16 *l4csum = lb_l4_csum(p, end);
	__u16 *ports = p->l4;
	__u64 acc;

	if ((void *)(ports + 2) > end)
		return -1;
	if (l4csum && f) {
		lb_l4_csum_put(p, l4csum, csum_apply(*l4csum, f->csum_l4));
	} else if (l4csum) {
		acc = csum_begin(*l4csum);
		acc = csum_sub_addr(acc, &p->key.src, nsrc, v6);
		acc = csum_sub_addr(acc, &p->key.dst, ndst, v6);
		acc = csum_sub16(acc, ports[0], nsport);
		acc = csum_sub16(acc, ports[1], ndport);
		lb_l4_csum_put(p, l4csum, csum_end(acc));
	}
	ports[0] = nsport;
	ports[1] = ndport;
	return lb_l3_set(p, end, nsrc, ndst, dec_ttl, f ? &f->csum_l3 : 0);
}

static __always_inline int lb_nat_rewrite(struct lb_pkt *p, void *end,
					  const union lb_addr *nsrc, __u16 nsport,
					  const union lb_addr *ndst, __u16 ndport)
{
	return lb_rewrite(p, end, nsrc, nsport, ndst, ndport, 1, 0);
}

#endif
