/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * forward ipip / gue: encapsulated direct server return. The client's
 * packet goes to the backend whole, inside an outer IP header (IPv4 in
 * IPv4, IPv6 in IPv6) from the node's address (the flow's snat_addr) to
 * the backend, and for gue a UDP header and a GUE header in between. The
 * backend decapsulates (lb_decap.bpf.c, or the kernel's ipip/fou modules)
 * and answers the client from the VIP directly: nothing to track or
 * reverse here, so a flow that ECMP moves to another node finds the same
 * backend there by the same table and hash.
 *
 * The entry point may override (lb.h's glue must be defined first):
 *   LB_ENCAP_GROW(ctx, p, endp, hl, flags)
 *       make hl bytes of room in front of the IP header, keeping the
 *       Ethernet header (and VLAN tags) in front of it; refresh p->eth,
 *       p->l3 and *endp. 0 or -1. flags: LB_ENCAP_F_*.
 *   LB_ENCAP_GSO(ctx) 1 when the packet will be segmented after us (an
 *       outer IPv6 UDP checksum cannot be computed for the segments).
 *
 * Checksums: the outer IPv4 header's is computed. The GUE UDP checksum is 0
 * over IPv4 (RFC 8086). Over IPv6 it is computed without reading the
 * payload: an inner TCP/UDP segment with a correct checksum sums to the
 * complement of its own pseudo-header, so the inner addresses and length
 * cancel and the outer sum needs only header words (the kernel's "local
 * checksum offload", which also holds for a segment whose checksum the
 * device completes later). Where that does not hold (IPv6 extension
 * headers inside, or a GSO packet) the checksum is 0, which RFC 6935
 * allows for tunnels and lb_decap accepts; Linux's fou needs
 * `ip fou add ... -6` with zero-checksum reception for those.
 * The outer TTL / hop limit is LB_ENCAP_TTL; the inner packet is not
 * touched (like DSR, the node is not a router hop for it).
 */
#ifndef LB_ENCAP_H
#define LB_ENCAP_H

#include "common.h"
#include "csum.h"
#include "parse.h"

#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif

#define LB_ENCAP_F_V6  1
#define LB_ENCAP_F_GUE 2

static __always_inline int lb_fwd_encap(__u8 fwd)
{
	return fwd == LB_FWD_IPIP || fwd == LB_FWD_GUE;
}

#define LB_ENCAP_MAX_L2 (sizeof(struct ethhdr) + 4 * LB_MAX_VLAN)

/* The default (XDP) room maker: grow the head and move the Ethernet
 * header and VLAN tags forward over the new room. */
static __always_inline int lb_encap_grow_xdp(struct xdp_md *ctx, struct lb_pkt *p, void **endp,
					     __u32 hl, __u32 flags)
{
	__u32 l2 = (void *)p->l3 - (void *)p->eth;
	__u32 *d, *s;
	void *data, *end;

	(void)flags;
	if (l2 > LB_ENCAP_MAX_L2 || bpf_xdp_adjust_head(ctx, -(int)hl))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	/* Ethernet and up to two tags: 22 bytes, copied whole whatever l2 is
	 * (past l2 they are inner header bytes the outer header overwrites).
	 * Forward over an overlap, in words (the frame is 2-aligned). */
	if (data + hl + LB_ENCAP_MAX_L2 > end)
		return -1;
	d = data;
	s = data + hl;
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
	d[4] = s[4];
	*(__u16 *)(d + 5) = *(__u16 *)(s + 5);
	p->eth = data;
	p->l3 = data + l2;
	*endp = end;
	return 0;
}

#ifndef LB_ENCAP_GROW
#define LB_ENCAP_GROW(ctx, p, endp, hl, flags) lb_encap_grow_xdp(ctx, p, endp, hl, flags)
#endif
#ifndef LB_ENCAP_GSO
#define LB_ENCAP_GSO(ctx) 0
#endif

/* What the outer headers take from the inner packet, read before it moves. */
struct lb_encap_in {
	__u32 w0;        /* IPv6: version, traffic class, flow label (wire order) */
	__u16 w3;        /* IPv6: next header, hop limit (wire order) */
	__u16 id;        /* IPv4: identification */
	__u16 df;        /* IPv4: DF bit as in frag_off */
	__u8  tos;       /* IPv4 TOS / IPv6 traffic class (DSCP and ECN) */
	__u8  lco;       /* IPv6: no extension headers: the checksum trick holds */
};

static __always_inline int lb_encap_read(struct lb_pkt *p, void *end, struct lb_encap_in *in)
{
	if (p->v6) {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		in->w0 = *(__u32 *)ip6;
		in->w3 = *((__u16 *)ip6 + 3);
		in->tos = (__u8)(bpf_ntohl(in->w0) >> 20);
		in->lco = p->l4 == (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = p->l3;

		if ((void *)(ip + 1) > end)
			return -1;
		in->tos = ip->tos;
		in->id = ip->id;
		in->df = ip->frag_off & bpf_htons(0x4000);
	}
	return 0;
}

static __always_inline __u16 lb_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u64 acc = 0;

#pragma clang loop unroll(full)
	for (int i = 0; i < 10; i++)
		acc += w[i];
	return csum_end(acc);
}

/*
 * Put the outer headers in front of p's packet. On return p->l3 is the
 * outer header and p->l3_len the outer datagram's length, as lb_fib_xmit
 * wants them. Returns 0, or a drop reason (never LB_DROP_TRUNC_L2, which
 * is 0).
 */
static __always_inline int lb_encap(LB_CTX *ctx, struct lb_pkt *p, void **endp,
				    const union lb_addr *src, const union lb_addr *dst,
				    __u16 gue_port, int gue, const struct lb_config *cfg)
{
	__u32 v6 = p->v6 ? 1 : 0;
	__u32 hl = (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr)) +
		   (gue ? sizeof(struct udphdr) + sizeof(struct lb_guehdr) : 0);
	__u32 inner_len = p->l3_len, h = 0;
	__u8 inner_proto = v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	struct lb_encap_in in = {};
	void *end = *endp, *l4;

	if (lb_encap_read(p, end, &in))
		return LB_DROP_TRUNC_L3;
	if (inner_len + hl > 0xffff)
		return LB_DROP_MTU;
	if (gue || v6)
		h = lb_hash_encap(&p->key, cfg->hash_seed);
	/* (no room: counted as truncated, the closest reason; 0 is success
	 * here, so never LB_DROP_TRUNC_L2) */
	if (LB_ENCAP_GROW(ctx, p, &end, hl, (v6 ? LB_ENCAP_F_V6 : 0) | (gue ? LB_ENCAP_F_GUE : 0)))
		return LB_DROP_TRUNC_L3;
	*endp = end;
	if (v6) {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > end)
			return LB_DROP_TRUNC_L3;
		*(__u32 *)ip6 = bpf_htonl(6u << 28 | (__u32)in.tos << 20 | (h & 0xfffff));
		ip6->payload_len = bpf_htons(inner_len + hl - sizeof(*ip6));
		ip6->nexthdr = gue ? IPPROTO_UDP : IPPROTO_IPV6;
		ip6->hop_limit = LB_ENCAP_TTL;
		__builtin_memcpy(&ip6->saddr, src->b, 16);
		__builtin_memcpy(&ip6->daddr, dst->b, 16);
		l4 = ip6 + 1;
	} else {
		struct iphdr *ip = p->l3;

		if ((void *)(ip + 1) > end)
			return LB_DROP_TRUNC_L3;
		*(__u16 *)ip = bpf_htons(0x4500 | in.tos);
		ip->tot_len = bpf_htons(inner_len + hl);
		ip->id = in.id;
		ip->frag_off = in.df;
		ip->ttl = LB_ENCAP_TTL;
		ip->protocol = gue ? IPPROTO_UDP : IPPROTO_IPIP;
		ip->check = 0;
		ip->saddr = src->v4;
		ip->daddr = dst->v4;
		ip->check = lb_ipv4_csum(ip);
		l4 = ip + 1;
	}
	if (gue) {
		struct udphdr *uh = l4;
		struct lb_guehdr *g = (void *)(uh + 1);
		__u16 ulen = inner_len + sizeof(*uh) + sizeof(*g);

		if ((void *)(g + 1) > end)
			return LB_DROP_TRUNC_L4;
		uh->source = bpf_htons(0xc000 | (h & 0x3fff));
		uh->dest = gue_port;
		uh->len = bpf_htons(ulen);
		uh->check = 0;
		g->hlen_ver = 0;
		g->proto_ctype = inner_proto;
		g->flags = 0;
		if (v6 && in.lco && !LB_ENCAP_GSO(ctx)) {
			__u64 acc = 0;

			/* pseudo-header, UDP header, GUE header */
			for (int i = 0; i < 4; i++)
				acc += src->v6[i] + (__u64)dst->v6[i];
			acc += bpf_htons(ulen) + (__u32)bpf_htons(IPPROTO_UDP);
			acc += uh->source + (__u32)uh->dest + uh->len;
			acc += *(__u32 *)g;
			/* the inner header less what its pseudo-header cancels:
			 * addresses and payload length go, the protocol stays
			 * subtracted (nexthdr is the protocol here) */
			acc += in.w0;
			acc += in.w3;
			acc += (__u16)~bpf_htons(p->key.proto);
			uh->check = csum_end(acc);
			if (!uh->check)
				uh->check = 0xffff;
		}
	}
	p->l3_len = inner_len + hl;
	return 0;
}

#endif
