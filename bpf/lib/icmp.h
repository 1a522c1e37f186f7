/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors that quote a packet of a NAT flow (fragmentation needed /
 * packet too big, unreachable, time exceeded, parameter problem) are
 * translated like the flow itself and sent to the other side, so that path
 * MTU discovery works through the balancer. The quoted L4 checksum is left as
 * is: it is usually truncated, and no stack verifies it (IPVS does the same).
 */
#ifndef LB_ICMP_H
#define LB_ICMP_H

static __always_inline int lb_icmp_is_error(const struct lb_pkt *p, __u8 type)
{
	if (p->key.family == LB_AF_INET6)
		return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

static __always_inline int lb_icmp_bad(const struct lb_pkt *p)
{
	struct lb_vip_key vk = {};

	lb_addr_copy(&vk.addr, &p->key.dst);
	vk.family = p->key.family;
	if (bpf_map_lookup_elem(&vips, &vk))
		return lb_verdict_drop(LB_DROP_BAD_ICMP);
	return LB_PASS;
}

static __always_inline int lb_icmp(LB_CTX *ctx, struct lb_pkt *p, void *end)
{
	int v6 = p->key.family == LB_AF_INET6;
	union lb_addr nsrc, ndst, osrc, odst;
	struct lb_flow_key ik = {}, rk = {};
	__u16 nsport, ndport, *ports;
	__u8 *ic = p->l4;
	struct iphdr *iip = 0;
	struct lb_nat *n;
	int est;
	void *inner;
	__u64 acc;

	if ((void *)(ic + 8) > end || !lb_icmp_is_error(p, ic[0]))
		return LB_PASS;
	inner = ic + 8;
	if (v6) {
		struct ipv6hdr *iip6 = inner;

		if ((void *)(iip6 + 1) > end)
			return lb_icmp_bad(p);
		__builtin_memcpy(ik.src.b, &iip6->saddr, 16);
		__builtin_memcpy(ik.dst.b, &iip6->daddr, 16);
		ik.proto = iip6->nexthdr;
		ports = (__u16 *)(iip6 + 1);
	} else {
		iip = inner;
		if ((void *)(iip + 1) > end)
			return lb_icmp_bad(p);
		ik.src.v4 = iip->saddr;
		ik.dst.v4 = iip->daddr;
		ik.proto = iip->protocol;
		ports = inner + (iip->ihl & 0xf) * 4;
	}
	if ((void *)(ports + 2) > end)
		return lb_icmp_bad(p);
	if (ik.proto != IPPROTO_TCP && ik.proto != IPPROTO_UDP)
		return LB_PASS;
	ik.family = p->key.family;
	ik.sport = ports[0];
	ik.dport = ports[1];

	/* The quoted packet went one way; flows are keyed by the other. */
	lb_addr_copy(&rk.src, &ik.dst);
	lb_addr_copy(&rk.dst, &ik.src);
	rk.sport = ik.dport;
	rk.dport = ik.sport;
	rk.proto = ik.proto;
	rk.family = ik.family;

	n = lb_nat_lookup(p, &rk, &est);
	if (n) {
		/* About a packet we sent to a backend: tell the client. */
		lb_addr_copy(&nsrc, &n->client);
		lb_addr_copy(&ndst, &n->vip);
		nsport = n->client_port;
		ndport = n->vip_port;
		lb_addr_copy(&osrc, &n->vip);
		lb_addr_copy(&odst, &n->client);
	} else {
		/* About a reply we sent to a client: tell the backend. */
		struct lb_flow *f = lb_ct_lookup(p, &rk, &est);
		struct lb_vip_key vk = {};
		struct lb_backend *be;
		struct lb_vip *vip;

		if (!f || !f->snat_port)
			return LB_PASS;
		be = lb_flow_backend(f);
		if (!be)
			return LB_PASS;
		lb_addr_copy(&vk.addr, &ik.src);
		vk.port = ik.sport;
		vk.proto = ik.proto;
		vk.family = ik.family;
		vip = bpf_map_lookup_elem(&vips, &vk);
		if (!vip) {
			vk.port = 0;
			vip = bpf_map_lookup_elem(&vips, &vk);
		}
		if (!vip)
			return LB_PASS;
		lb_addr_copy(&nsrc, &be->addr);
		lb_addr_copy(&ndst, &vip->snat_addr);
		nsport = be->port;
		ndport = f->snat_port;
		lb_addr_copy(&osrc, &vip->snat_addr);
		lb_addr_copy(&odst, &be->addr);
	}
	if (p->ttl <= 1) {
		lb_event(LB_EV_PASS_TTL);
		return LB_PASS;
	}

	/* The ICMP checksum covers the quoted header (and, for ICMPv6, the
	 * outer pseudo-header). */
	acc = csum_begin(*(__u16 *)(ic + 2));
	acc = csum_sub_addr(acc, &ik.src, &nsrc, v6);
	acc = csum_sub_addr(acc, &ik.dst, &ndst, v6);
	acc = csum_sub16(acc, ports[0], nsport);
	acc = csum_sub16(acc, ports[1], ndport);
	if (v6) {
		struct ipv6hdr *iip6 = inner;

		if ((void *)(iip6 + 1) > end)
			return LB_PASS;
		__builtin_memcpy(&iip6->saddr, nsrc.b, 16);
		__builtin_memcpy(&iip6->daddr, ndst.b, 16);
		acc = csum_sub_addr(acc, &p->key.src, &osrc, 1);
		acc = csum_sub_addr(acc, &p->key.dst, &odst, 1);
	} else if (iip) {
		__u64 iacc = csum_begin(iip->check);
		__u16 ncheck;

		iacc = csum_sub32(iacc, iip->saddr, nsrc.v4);
		iacc = csum_sub32(iacc, iip->daddr, ndst.v4);
		ncheck = csum_end(iacc);
		acc = csum_sub16(acc, iip->check, ncheck);
		iip->check = ncheck;
		iip->saddr = nsrc.v4;
		iip->daddr = ndst.v4;
	}
	ports[0] = nsport;
	ports[1] = ndport;
	*(__u16 *)(ic + 2) = csum_end(acc);
	if (lb_l3_rewrite(p, end, &osrc, &odst))
		return LB_PASS;
	lb_event(LB_EV_ICMP_FWD);
	return lb_fib_xmit(ctx, p, end, &osrc, &odst, 0, 0);
}

#endif
