// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The backends' half of forward ipip/gue (bpf/lib/encap.h): strip the
 * tunnel headers in XDP (or TC ingress) and hand the client's packet to the
 * stack as if it had arrived directly, so a backend needs neither the ipip
 * nor the fou module (`lbd --decap IFACE` loads and attaches it).
 *
 * Decapsulated: IPv4 or IPv6 packets carrying IPv4-in-IPv4 (protocol 4),
 * IPv6-in-IPv6 (41), either one in the other family, or UDP to the
 * configured GUE port with a GUE header of version 0 (no control messages;
 * optional fields skipped by hlen) or version 1 (IP directly after UDP),
 * and only when the inner destination is an address of this host
 * (decap_addrs, which lbd keeps equal to the addresses configured here:
 * the VIP on lo). Everything else passes untouched. The outer UDP checksum
 * is not verified: the inner packet carries its own, which the stack checks.
 */
#include "lib/common.h"
#include "lib/parse.h"
#include <linux/pkt_cls.h>

#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

#define MAX_L2     (sizeof(struct ethhdr) + 4 * LB_MAX_VLAN)
#define MAX_GUE_OPT 128 /* hlen is 5 bits of 4-byte words */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_DECAP_MAX_ADDRS);
	__type(key, struct lb_decap_key);
	__type(value, __u8);
} decap_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_decap_cfg);
} decap_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_DECAP_STATS);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&decap_stats, &what);

	if (c)
		*c += 1;
}

/* What to strip: the outer headers from l3off to inner (hl bytes). */
struct tun {
	__u32 l2;      /* Ethernet header and tags */
	__u32 hl;      /* outer IP (+ UDP + GUE) */
	__u8  inner;   /* LB_AF_INET or LB_AF_INET6 */
	__u8  outer;
	__u8  gue;
};

enum { TUN_NO = 0, TUN_YES, TUN_BAD };

/* Is the inner packet at `in` (family fam) for an address of this host? */
static __always_inline int inner_local(void *in, void *end, __u8 fam)
{
	struct lb_decap_key k = { .family = fam };

	if (fam == LB_AF_INET) {
		struct iphdr *ip = in;

		if ((void *)(ip + 1) > end || ip->version != 4)
			return -1;
		k.addr.v4 = ip->daddr;
	} else {
		struct ipv6hdr *ip6 = in;

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return -1;
		__builtin_memcpy(k.addr.b, &ip6->daddr, 16);
	}
	return bpf_map_lookup_elem(&decap_addrs, &k) ? 1 : 0;
}

static __always_inline int parse(void *data, void *end, struct tun *t)
{
	void *cur, *l3, *in;
	__u32 zero = 0;
	__u16 proto;
	__u8 l4;
	int r;

	cur = lb_parse_l2(data, end, &proto);
	if (!cur)
		return TUN_NO;
	l3 = cur;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur;

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return TUN_NO;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return TUN_NO; /* the stack reassembles; no module decaps it */
		l4 = ip->protocol;
		cur += ip->ihl * 4;
		t->outer = LB_AF_INET;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return TUN_NO;
		l4 = ip6->nexthdr;
		cur = ip6 + 1;
		t->outer = LB_AF_INET6;
	} else {
		return TUN_NO;
	}
	t->gue = 0;
	if (l4 == IPPROTO_IPIP) {
		t->inner = LB_AF_INET;
	} else if (l4 == IPPROTO_IPV6) {
		t->inner = LB_AF_INET6;
	} else if (l4 == IPPROTO_UDP) {
		struct lb_decap_cfg *cfg = bpf_map_lookup_elem(&decap_cfg, &zero);
		struct udphdr *uh = cur;
		__u8 *g = (void *)(uh + 1);

		if ((void *)(uh + 1) > end || !cfg || !cfg->gue_port || uh->dest != cfg->gue_port)
			return TUN_NO;
		if ((void *)(g + 4) > end)
			return TUN_BAD;
		t->gue = 1;
		if ((g[0] >> 6) == 1) {          /* version 1: IP right here */
			cur = g;
			t->inner = (g[0] >> 4) == 4 ? LB_AF_INET : LB_AF_INET6;
			if ((g[0] >> 4) != 4 && (g[0] >> 4) != 6)
				return TUN_BAD;
		} else if ((g[0] >> 6) == 0 && !(g[0] & 0x20)) {
			__u32 opt = (g[0] & 0x1f) * 4;

			if (g[1] == IPPROTO_IPIP)
				t->inner = LB_AF_INET;
			else if (g[1] == IPPROTO_IPV6)
				t->inner = LB_AF_INET6;
			else
				return TUN_NO;   /* GUE carrying something else */
			cur = g + 4 + opt;
		} else {
			return TUN_NO;           /* control message, other versions */
		}
	} else {
		return TUN_NO;
	}
	t->l2 = l3 - data;
	t->hl = cur - l3;
	/* bounded for the verifier: IPv4 options, UDP, GUE options */
	if (t->l2 > MAX_L2 || t->hl > 60 + 8 + 4 + MAX_GUE_OPT)
		return TUN_BAD;
	in = data + t->l2 + t->hl;
	r = inner_local(in, end, t->inner);
	if (r < 0)
		return TUN_BAD;
	if (!r) {
		count(LB_DECAP_NOT_LOCAL);
		return TUN_NO;
	}
	return TUN_YES;
}

static __always_inline __u16 eth_type(__u8 fam)
{
	return fam == LB_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
}

SEC("xdp")
int lb_decap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct tun t;
	__u32 *s, *d;
	__u16 type;
	int r = parse(data, end, &t);

	if (r != TUN_YES) {
		if (r == TUN_BAD)
			count(LB_DECAP_BAD);
		return XDP_PASS;
	}
	/* The Ethernet header and tags move forward onto the end of the outer
	 * headers (at least 20 bytes: no overlap with what is read), the last
	 * type set to the inner family's, then the head moves past them. */
	type = eth_type(t.inner);
	d = data + t.hl;
	s = data;
	if ((void *)(d) + MAX_L2 > end || data + MAX_L2 > end)
		return XDP_PASS;
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	if (t.l2 == 14) {
		*(__u16 *)(d + 3) = type;
	} else {
		d[3] = s[3];
		if (t.l2 == 18) {
			*(__u16 *)(d + 4) = type;
		} else {
			d[4] = s[4];
			*(__u16 *)(d + 5) = type;
		}
	}
	if (bpf_xdp_adjust_head(ctx, (int)t.hl))
		return XDP_PASS; /* cannot happen: the headers are there */
	count(t.gue ? LB_DECAP_GUE : LB_DECAP_IPIP);
	return XDP_PASS;
}

/* TC ingress: the kernel strips the room after the MAC header (where the
 * outer IP header is: it took an outer VLAN tag out of the data already,
 * and a frame with a tag still in the data is left alone). */
SEC("tc")
int lb_decap_tc(struct __sk_buff *skb)
{
	void *data, *end;
	struct tun t;
	__u64 flags = 0;
	int r;

	if ((void *)(long)skb->data + skb->len > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	r = parse(data, end, &t);
	if (r != TUN_YES || t.l2 != sizeof(struct ethhdr)) {
		if (r == TUN_BAD)
			count(LB_DECAP_BAD);
		return TC_ACT_OK;
	}
	if (t.inner != t.outer)
		flags = t.inner == LB_AF_INET ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	if (bpf_skb_adjust_room(skb, -(__s32)t.hl, BPF_ADJ_ROOM_MAC, flags)) {
		count(LB_DECAP_BAD);
		return TC_ACT_OK;
	}
	if (t.inner != t.outer) {
		__u16 type = eth_type(t.inner);

		bpf_skb_store_bytes(skb, 12, &type, sizeof(type), 0);
	}
	count(t.gue ? LB_DECAP_GUE : LB_DECAP_IPIP);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
