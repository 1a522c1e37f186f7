/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing: Ethernet, up to two VLAN tags, IPv4 (with options) or IPv6
 * (skipping hop-by-hop, routing, destination-options and fragment headers),
 * then TCP, UDP or ICMP. Fills the 5-tuple exactly as on the wire.
 */
#ifndef LB_PARSE_H
#define LB_PARSE_H

#include "common.h"

enum lb_parse_rc {
	LB_PARSE_OK = 0,
	LB_PARSE_PASS,  /* not IP, or an L4 we do not balance: not ours */
	LB_PARSE_BAD,   /* malformed; p->reason says why, p->have_dst if known */
};

struct lb_pkt {
	struct lb_flow_key key;
	struct ethhdr *eth;
	void *l3;
	void *l4;
	__u16 l3_len;     /* IP datagram length, header included */
	__u8  tcp_flags;
	__u8  reason;     /* enum lb_drop_reason when LB_PARSE_BAD */
	__u8  have_dst;   /* key.dst and key.family are valid */
	__u8  ttl;        /* TTL or hop limit */
	/* 1 for IPv6 (key.family says the same): a whole word, whose value
	 * the verifier tracks on each path, so branches on it (the flow maps
	 * of conntrack.h) are walked one way, not both. */
	__u64 v6;
};

/* l4_len: what the IP length leaves for L4; the frame may be longer
 * (Ethernet padding), and a header in the padding is no header. */
static __always_inline int lb_parse_l4(void *cur, void *end, __u32 l4_len, struct lb_pkt *p)
{
	p->l4 = cur;
	switch (p->key.proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = cur;

		if ((void *)(th + 1) > end || l4_len < sizeof(*th))
			goto trunc;
		if (th->doff < 5) {
			p->reason = LB_DROP_BAD_L4;
			return LB_PARSE_BAD;
		}
		p->key.sport = th->source;
		p->key.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return LB_PARSE_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = cur;

		if ((void *)(uh + 1) > end || l4_len < sizeof(*uh))
			goto trunc;
		p->key.sport = uh->source;
		p->key.dport = uh->dest;
		return LB_PARSE_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* type, code, checksum and 4 more bytes */
		if (cur + 8 > end || l4_len < 8)
			goto trunc;
		return LB_PARSE_OK;
	default:
		return LB_PARSE_PASS;
	}
trunc:
	p->reason = LB_DROP_TRUNC_L4;
	return LB_PARSE_BAD;
}

/* After the L4 header: a datagram shorter than its IP length was cut in
 * transit. (Longer is fine: Ethernet pads short frames.) A missing L4
 * header is reported first, as the more specific reason. */
static __always_inline int lb_parse_l4_len(void *l3, void *end, int rc, struct lb_pkt *p)
{
	__u32 len = p->l3_len;

	/* The 6.12 verifier (Debian 12's kernel, make vm-smoke) reads this u16
	 * back from the stack as an unbounded scalar and refuses the pointer
	 * sum: bound it where every verifier sees it. */
	asm volatile("" : "+r"(len));
	len &= 0xffff;
	if (rc == LB_PARSE_OK && l3 + len > end) {
		p->reason = LB_DROP_TRUNC_L3;
		return LB_PARSE_BAD;
	}
	return rc;
}

static __always_inline int lb_parse_ipv4(void *cur, void *end, struct lb_pkt *p)
{
	struct iphdr *ip = cur;
	__u32 hlen;

	if ((void *)(ip + 1) > end) {
		p->reason = LB_DROP_TRUNC_L3;
		return LB_PARSE_BAD;
	}
	p->l3 = ip;
	p->key.family = LB_AF_INET;
	p->key.src.v4 = ip->saddr;
	p->key.dst.v4 = ip->daddr;
	p->key.proto = ip->protocol;
	p->have_dst = 1;
	p->ttl = ip->ttl;
	p->l3_len = bpf_ntohs(ip->tot_len);
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip) || p->l3_len < hlen) {
		p->reason = LB_DROP_BAD_L3;
		return LB_PARSE_BAD;
	}
	if (cur + hlen > end) {
		p->reason = LB_DROP_TRUNC_L3;
		return LB_PARSE_BAD;
	}
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->reason = LB_DROP_FRAGMENT;
		return LB_PARSE_BAD;
	}
	return lb_parse_l4_len(cur, end, lb_parse_l4(cur + hlen, end, p->l3_len - hlen, p), p);
}

static __always_inline int lb_parse_ipv6(void *cur, void *end, struct lb_pkt *p)
{
	struct ipv6hdr *ip6 = cur;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) > end) {
		p->reason = LB_DROP_TRUNC_L3;
		return LB_PARSE_BAD;
	}
	p->l3 = ip6;
	p->key.family = LB_AF_INET6;
	p->v6 = 1;
	__builtin_memcpy(p->key.src.b, &ip6->saddr, 16);
	__builtin_memcpy(p->key.dst.b, &ip6->daddr, 16);
	p->have_dst = 1;
	p->ttl = ip6->hop_limit;
	p->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	if (ip6->version != 6) {
		p->reason = LB_DROP_BAD_L3;
		return LB_PARSE_BAD;
	}
	nexthdr = ip6->nexthdr;
	cur = ip6 + 1;

#pragma clang loop unroll(full)
	for (int i = 0; i < LB_MAX_EXTHDR; i++) {
		__u8 *h = cur;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (cur + 8 > end)
				goto trunc;
			nexthdr = h[0];
			cur += (h[1] + 1) * 8;
			continue;
		case IPPROTO_FRAGMENT:
			if (cur + 8 > end)
				goto trunc;
			/* offset != 0 or more-fragments: not a whole datagram */
			if ((h[2] << 8 | h[3]) & 0xfff9) {
				p->reason = LB_DROP_FRAGMENT;
				return LB_PARSE_BAD;
			}
			nexthdr = h[0];
			cur += 8;
			continue;
		default: {
			__u32 off = cur - (void *)ip6;

			if (off > p->l3_len)
				goto trunc;
			p->key.proto = nexthdr;
			return lb_parse_l4_len(ip6, end,
					       lb_parse_l4(cur, end, p->l3_len - off, p), p);
		}
		}
	}
	p->reason = LB_DROP_EXTHDR;
	return LB_PARSE_BAD;
trunc:
	p->reason = LB_DROP_TRUNC_L3;
	return LB_PARSE_BAD;
}

/* Past Ethernet and up to LB_MAX_VLAN tags: where L3 starts, with its type
 * in *proto; NULL when the frame is cut short of that. */
static __always_inline void *lb_parse_l2(void *data, void *end, __u16 *proto)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	__u16 type;

	if (cur > end)
		return 0;
	type = eth->h_proto;
#pragma clang loop unroll(full)
	for (int i = 0; i < LB_MAX_VLAN; i++) {
		if (type != bpf_htons(ETH_P_8021Q_) && type != bpf_htons(ETH_P_8021AD_))
			break;
		if (cur + 4 > end)
			return 0;
		type = *(__u16 *)(cur + 2);
		cur += 4;
	}
	*proto = type;
	return cur;
}

static __always_inline int lb_parse(void *data, void *end, struct lb_pkt *p)
{
	void *cur;
	__u16 proto;

	cur = lb_parse_l2(data, end, &proto);
	if (!cur)
		return LB_PARSE_PASS; /* not even Ethernet: leave it to the stack */
	p->eth = data;
	if (proto == bpf_htons(ETH_P_IP))
		return lb_parse_ipv4(cur, end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return lb_parse_ipv6(cur, end, p);
	return LB_PARSE_PASS;
}

#endif
