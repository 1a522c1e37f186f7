// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC (clsact ingress) entry point of the lbd data path: the same pipeline as
 * lb_xdp.bpf.c (bpf/lib/lb.h) for interfaces where XDP cannot attach.
 *
 * What differs on an skb:
 * - Data may sit in paged fragments, where direct access cannot see it.
 *   The parser checks a datagram's IP length against the bytes it can
 *   see (a cut datagram is dropped), so the whole skb is made linear
 *   first. That costs a copy for large (GRO/GSO) skbs; a parser that took
 *   skb->len for that check would only need the headers pulled.
 * - The L4 checksum may be CHECKSUM_PARTIAL (veth, TSO, GRO: the field then
 *   holds the pseudo-header sum, not a checksum) or CHECKSUM_COMPLETE
 *   (skb->csum must follow the change). The program cannot see ip_summed,
 *   so the L4 checksum goes through bpf_l4_csum_replace, which handles all
 *   three cases; the IPv4 header checksum is always complete and is updated
 *   in place like XDP does.
 * - Those helpers invalidate packet pointers, so the NAT step re-derives
 *   them from offsets (LB_NAT_REWRITE hook of lb.h).
 * - bpf_fib_lookup checks the MTU on the skb itself (tot_len 0), which
 *   accounts for GSO packets far larger than the MTU.
 * - A next hop without a neighbour entry is handed to bpf_redirect_neigh:
 *   the kernel resolves it and sends the packet. Passing the rewritten
 *   packet up, as XDP must, does not work without accept_local: its source
 *   is now our own SNAT address and the stack drops it as a martian.
 */
#include "lib/common.h"
#include <linux/pkt_cls.h>

struct lb_pkt;

static __always_inline int lb_tc_nat(struct __sk_buff *skb, struct lb_pkt *p, void **endp,
				     const union lb_addr *nsrc, __u16 nsport,
				     const union lb_addr *ndst, __u16 ndport, int dec_ttl);
static __always_inline int lb_tc_no_neigh(struct lb_pkt *p, struct bpf_fib_lookup *fib);
static __always_inline int lb_tc_encap_grow(struct __sk_buff *skb, struct lb_pkt *p, void **endp,
					    __u32 hl, __u32 flags);

#define LB_CTX                  struct __sk_buff
#define LB_PASS                 TC_ACT_OK
#define LB_DROP                 TC_ACT_SHOT
#define LB_TX(ctx)              bpf_redirect((ctx)->ingress_ifindex, 0)
#define LB_REDIRECT(ctx, ifi)   bpf_redirect(ifi, 0)
#define LB_IFINDEX(ctx)         ((ctx)->ingress_ifindex)
#define LB_DATA(ctx)            ((void *)(long)(ctx)->data)
#define LB_DATA_END(ctx)        ((void *)(long)(ctx)->data_end)
#define LB_NAT_REWRITE(ctx, p, end, s, sp, d, dp) lb_tc_nat(ctx, p, &(end), s, sp, d, dp, 1)
#define LB_FIB_TOT_LEN(p)       0
#define LB_NO_NEIGH(ctx, p, fib) lb_tc_no_neigh(p, fib)
#define LB_ENCAP_GROW(ctx, p, endp, hl, flags) lb_tc_encap_grow(ctx, p, endp, hl, flags)
#define LB_ENCAP_GSO(ctx)       ((ctx)->gso_segs > 1)
#define LB_CALLS_MAP            tc_calls

#include "lib/lb.h"

/* Bound on header offsets (Ethernet, VLANs, IPv6 extension headers), so
 * the verifier accepts data + offset. */
#define LB_TC_MAX_OFF 512

static __always_inline int lb_tc_nat(struct __sk_buff *skb, struct lb_pkt *p, void **endp,
				     const union lb_addr *nsrc, __u16 nsport,
				     const union lb_addr *ndst, __u16 ndport, int dec_ttl)
{
	void *data = LB_DATA(skb), *end;
	__u64 l3off = p->l3 - data, l4off = p->l4 - data;
	__u32 csoff;
	__u64 flags = BPF_F_PSEUDO_HDR;
	int v6 = p->key.family == LB_AF_INET6;
	__u16 *ports;

	if (l3off > LB_TC_MAX_OFF || l4off > LB_TC_MAX_OFF)
		return -1;
	if (p->key.proto == IPPROTO_TCP) {
		csoff = l4off + __builtin_offsetof(struct tcphdr, check);
	} else {
		struct udphdr *uh = p->l4;

		if ((void *)(uh + 1) > LB_DATA_END(skb))
			return -1;
		csoff = l4off + __builtin_offsetof(struct udphdr, check);
		/* IPv4 UDP without checksum stays without one; a computed 0
		 * becomes 0xffff. */
		flags |= BPF_F_MARK_MANGLED_0;
	}
	if (v6) {
		__s64 diff = bpf_csum_diff((__be32 *)p->key.src.v6, 16, (__be32 *)nsrc->v6, 16, 0);

		diff = bpf_csum_diff((__be32 *)p->key.dst.v6, 16, (__be32 *)ndst->v6, 16, diff);
		if (bpf_l4_csum_replace(skb, csoff, 0, diff, flags))
			return -1;
	} else {
		if (bpf_l4_csum_replace(skb, csoff, p->key.src.v4, nsrc->v4, flags | 4) ||
		    bpf_l4_csum_replace(skb, csoff, p->key.dst.v4, ndst->v4, flags | 4))
			return -1;
	}
	/* Ports are payload to the checksum: a PARTIAL one is left alone. */
	flags &= ~BPF_F_PSEUDO_HDR;
	if (bpf_l4_csum_replace(skb, csoff, p->key.sport, nsport, flags | 2) ||
	    bpf_l4_csum_replace(skb, csoff, p->key.dport, ndport, flags | 2))
		return -1;

	/* Bound the offsets again, in the registers the additions use: the
	 * verifier forgot the checks above along with the pointers. */
	asm volatile("" : "+r"(l3off), "+r"(l4off));
	if (l3off > LB_TC_MAX_OFF || l4off > LB_TC_MAX_OFF)
		return -1;
	data = LB_DATA(skb);
	end = LB_DATA_END(skb);
	p->eth = data;
	p->l3 = data + l3off;
	p->l4 = data + l4off;
	ports = p->l4;
	if ((void *)(p->eth + 1) > end || (void *)(ports + 2) > end)
		return -1;
	ports[0] = nsport;
	ports[1] = ndport;
	*endp = end;
	return lb_l3_set(p, end, nsrc, ndst, dec_ttl, 0);
}

/*
 * forward ipip/gue (encap.h): the kernel makes the room, so that a GSO
 * packet becomes a tunnel GSO packet (inner headers set, segments shrunk
 * by the overhead so each still fits the MTU) and a checksum the device
 * completes stays pointed at the inner segment. Room is made after the
 * MAC header: a VLAN tag in the data (the kernel took the outer one out
 * already) is not where that room would go, so such frames are refused.
 */
static __always_inline int lb_tc_encap_grow(struct __sk_buff *skb, struct lb_pkt *p, void **endp,
					    __u32 hl, __u32 flags)
{
	__u64 fl = flags & LB_ENCAP_F_V6 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
	void *data, *end;

	if (p->l3 != (void *)(p->eth + 1))
		return -1;
	if (flags & LB_ENCAP_F_GUE)
		fl |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
	if (bpf_skb_adjust_room(skb, hl, BPF_ADJ_ROOM_MAC, fl))
		return -1;
	data = LB_DATA(skb);
	end = LB_DATA_END(skb);
	p->eth = data;
	p->l3 = data + sizeof(struct ethhdr);
	if ((void *)(p->eth + 1) > end)
		return -1;
	*endp = end;
	return 0;
}

static __always_inline int lb_tc_no_neigh(struct lb_pkt *p, struct bpf_fib_lookup *fib)
{
	/* bpf_redirect_neigh strips a plain Ethernet header only. */
	if (p->l3 != (void *)(p->eth + 1)) {
		lb_event(LB_EV_PASS_NO_NEIGH);
		return TC_ACT_OK;
	}
	lb_event(LB_EV_REDIRECT_NEIGH);
	/* No nexthop given: the kernel routes the (rewritten) packet again,
	 * which also covers a gateway that fib_lookup put in ipv4_dst. */
	return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
}

SEC("tc")
int lb_tc(struct __sk_buff *skb)
{
	/* Failure leaves the packet as it was: parsing then sees less, and
	 * drops it as truncated only when it is for a VIP. */
	if (LB_DATA(skb) + skb->len > LB_DATA_END(skb))
		bpf_skb_pull_data(skb, skb->len);
	return lb_process(skb);
}

/* tc_calls[LB_CALL_NEW_FLOW]: the first packet of a flow (lib/lb.h), on
 * the skb lb_tc made linear. */
SEC("tc")
int lb_tc_new(struct __sk_buff *skb)
{
	return lb_process_new(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
