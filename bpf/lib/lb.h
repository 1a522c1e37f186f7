/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet pipeline, shared by the XDP and TC entry points. The entry
 * file defines the context glue before including this:
 *   LB_CTX            context type (struct xdp_md / struct __sk_buff)
 *   LB_PASS, LB_DROP  verdicts
 *   LB_TX(ctx)        send back out the ingress device
 *   LB_REDIRECT(ctx, ifindex)
 *   LB_IFINDEX(ctx)   ingress ifindex
 *   LB_DATA(ctx), LB_DATA_END(ctx)
 * and may override (skbs need both, see lb_tc.bpf.c):
 *   LB_NAT_REWRITE(ctx, p, end, saddr, sport, daddr, dport)
 *                     lb_nat_rewrite(); it may move the packet and must then
 *                     refresh p->eth/l3/l4 and assign `end`
 *   LB_FIB_TOT_LEN(p) tot_len for bpf_fib_lookup's MTU check (0: the kernel
 *                     checks the skb itself, GSO included)
 *   LB_NO_NEIGH(ctx, p, fib)
 *                     verdict when the next hop has no neighbour entry
 *                     (default: pass to the stack)
 *   LB_CALLS_MAP      the prog array of lb_call_new_flow's tail call
 *   LB_FIB_CACHE      1: tracked flows reuse their cached next hop
 *                     (struct lb_nh) instead of bpf_fib_lookup (default 0)
 *   LB_FLOW_CSUM      1: full-NAT flows keep their checksum deltas
 *                     (lb_nat_csum_delta) and their packets are rewritten
 *                     with them (default 0: LB_NAT_REWRITE every packet)
 */
#ifndef LB_LB_H
#define LB_LB_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "nat.h"
#include "conntrack.h"
#include "select.h"
#include "stats.h"
#include "encap.h"

#ifndef LB_NAT_REWRITE
#define LB_NAT_REWRITE(ctx, p, end, s, sp, d, dp) lb_nat_rewrite(p, end, s, sp, d, dp)
#endif
#ifndef LB_FIB_TOT_LEN
#define LB_FIB_TOT_LEN(p) ((p)->l3_len)
#endif
#ifndef LB_NO_NEIGH
#define LB_NO_NEIGH(ctx, p, fib) (lb_event(LB_EV_PASS_NO_NEIGH), LB_PASS)
#endif
#ifndef LB_FIB_CACHE
#define LB_FIB_CACHE 0
#endif
#ifndef LB_FLOW_CSUM
#define LB_FLOW_CSUM 0
#endif

static __always_inline int lb_verdict_drop(__u32 reason)
{
	lb_count(&drop_stats, reason);
	return LB_DROP;
}

/* Send out oif (MACs set): XDP_TX when that is where it came in. */
static __always_inline int lb_send_out(LB_CTX *ctx, struct lb_pkt *p, __u32 oif)
{
	/* VLAN-tagged frames keep their tags and leave where they came in:
	 * a one-armed balancer on a trunk. */
	if (oif == LB_IFINDEX(ctx) || (void *)p->l3 != (void *)(p->eth + 1)) {
		lb_event(LB_EV_TX);
		return LB_TX(ctx);
	}
	lb_event(LB_EV_REDIRECT);
	return LB_REDIRECT(ctx, oif);
}

static __always_inline int lb_xmit(LB_CTX *ctx, struct lb_pkt *p, void *end,
				   const __u8 *dmac, const __u8 *smac, __u32 oif)
{
	struct ethhdr *eth = p->eth;

	if ((void *)(eth + 1) > end)
		return lb_verdict_drop(LB_DROP_TRUNC_L2);
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	return lb_send_out(ctx, p, oif);
}

/* From the cache: dmac and smac lie as in the header, so three words copy
 * them (the bytewise copy of a packed header is four times as long). */
static __always_inline int lb_xmit_nh(LB_CTX *ctx, struct lb_pkt *p, void *end,
				      const struct lb_nh *nh)
{
	const __u32 *src = (const __u32 *)nh->dmac;
	__u32 *dst = (__u32 *)p->eth;

	if ((void *)(p->eth + 1) > end)
		return lb_verdict_drop(LB_DROP_TRUNC_L2);
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	return lb_send_out(ctx, p, nh->ifindex);
}

/* The route lookup behind lb_fib_xmit, apart so that its 64-byte request
 * is built (zeroed) only when the next-hop cache cannot answer. */
static __always_inline int lb_fib_route(LB_CTX *ctx, struct lb_pkt *p, void *end,
					const union lb_addr *src,
					const union lb_addr *dst,
					struct lb_nh *nh, const struct lb_config *cfg)
{
	struct bpf_fib_lookup fib = {};
	__u32 ifindex = LB_IFINDEX(ctx);
	long rc;

	fib.ifindex = ifindex;
	fib.l4_protocol = p->key.proto;
	fib.tot_len = LB_FIB_TOT_LEN(p);
	if (p->key.family == LB_AF_INET6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, src->b, 16);
		__builtin_memcpy(fib.ipv6_dst, dst->b, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = src->v4;
		fib.ipv4_dst = dst->v4;
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The kernel resolves the neighbour and sends this one itself. */
		return LB_NO_NEIGH(ctx, p, &fib);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return lb_verdict_drop(LB_DROP_MTU);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return lb_verdict_drop(LB_DROP_FIB);
	if (LB_FIB_CACHE && nh) {
		/* Other CPUs may read it meanwhile: the generation goes last,
		 * so a half-written entry is not current yet. */
		__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
		__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
		nh->iif = ifindex;
		nh->mtu = fib.mtu_result;
		nh->ifindex = fib.ifindex;
		asm volatile("" ::: "memory");
		nh->gen = cfg->fib_gen;
	}
	return lb_xmit(ctx, p, end, fib.dmac, fib.smac, fib.ifindex);
}

/*
 * Route the (already rewritten) packet towards dst and send it. nh (may be
 * 0) is the flow's cached next hop (struct lb_nh): used when current, and
 * refilled after a successful lookup. A packet larger than the cached MTU
 * takes the lookup, so MTU drops stay the kernel's decision. TC keeps
 * LB_FIB_CACHE off: its MTU check is the kernel's on the skb (GSO).
 */
static __always_inline int lb_fib_xmit(LB_CTX *ctx, struct lb_pkt *p, void *end,
				       const union lb_addr *src,
				       const union lb_addr *dst,
				       struct lb_nh *nh, const struct lb_config *cfg)
{
	if (LB_FIB_CACHE && nh && nh->ifindex && nh->gen == cfg->fib_gen &&
	    nh->iif == LB_IFINDEX(ctx) && p->l3_len <= nh->mtu)
		return lb_xmit_nh(ctx, p, end, nh);
	return lb_fib_route(ctx, p, end, src, dst, nh, cfg);
}

/* A new flow, or one whose backend went away: pick and record a backend. */
static __always_inline int lb_new_flow(struct lb_pkt *p, const struct lb_vip *vip,
				       const struct lb_config *cfg, struct lb_flow *nf,
				       struct lb_backend **bep)
{
	struct lb_backend *be;
	__u32 be_id;
	int reason;

	reason = lb_select(p, vip, cfg->hash_seed, &be_id);
	if (reason)
		return reason;
	be = bpf_map_lookup_elem(&backends, &be_id);
	if (!be || be->state == LB_BE_UNUSED)
		return LB_DROP_NO_BACKEND;
	nf->backend_id = be_id;
	nf->backend_gen = be->gen;
	nf->vip_id = vip->id;
	nf->snat_port = 0;
	nf->flags = 0;
	nf->seen = 0;
	nf->fwd = vip->fwd;
	lb_addr_copy(&nf->snat_addr, &vip->snat_addr);
	__builtin_memset(&nf->nh, 0, sizeof(nf->nh));
	nf->csum_l4 = 0;
	nf->csum_l3 = 0;
	if (vip->fwd == LB_FWD_NAT) {
		nf->snat_port = lb_snat_alloc(p, vip, be, be_id, cfg);
		if (!nf->snat_port)
			return LB_DROP_SNAT_EXHAUSTED;
		if (LB_FLOW_CSUM) {
			lb_nat_csum_delta(p, &nf->snat_addr, nf->snat_port, &be->addr, be->port,
					  &nf->csum_l4, &nf->csum_l3);
			nf->flags |= LB_FLOW_F_CSUM;
		}
	} else if (lb_fwd_encap(vip->fwd)) {
		if (!(vip->flags & LB_VIP_F_SNAT_SET))
			return LB_DROP_NO_SOURCE;
		nf->snat_port = vip->encap_port;
	}
	if (p->key.proto == IPPROTO_TCP && lb_conn_open(&p->key, nf->snat_port, be_id, be->gen))
		nf->flags |= LB_FLOW_F_COUNTED;
	if (lb_ct_update(p, &p->key, nf)) {
		if (nf->flags & LB_FLOW_F_COUNTED)
			lb_conn_close(&p->key, nf->snat_port);
		return LB_DROP_CT_INSERT;
	}
	*bep = be;
	return 0;
}

/* Count the packet of flow f and send it to be (full NAT, DSR, ipip, gue). */
static __always_inline int lb_flow_send(LB_CTX *ctx, struct lb_pkt *p, void *end,
					struct lb_flow *f, const struct lb_backend *be,
					const struct lb_config *cfg, int new_flow)
{
	/* the VIP's figures are its backends' (stats.h) */
	struct lb_backend_stats *bs = lb_backend_stats(f->backend_id);

	if (bs) {
		bs->packets++;
		bs->bytes += p->l3_len;
		bs->new_flows += new_flow;
		if (new_flow && (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN)
			bs->syn++;
	}
	if (f->fwd == LB_FWD_DSR)
		return lb_fib_xmit(ctx, p, end, &p->key.src, &be->addr, &f->nh, cfg);
	if (lb_fwd_encap(f->fwd)) {
		int reason = lb_encap(ctx, p, &end, &f->snat_addr, &be->addr, f->snat_port,
				      f->fwd == LB_FWD_GUE, cfg);

		if (reason)
			return lb_verdict_drop(reason);
		lb_event(LB_EV_ENCAP);
		return lb_fib_xmit(ctx, p, end, &f->snat_addr, &be->addr, &f->nh, cfg);
	}
	if (LB_FLOW_CSUM && (f->flags & LB_FLOW_F_CSUM)) {
		if (lb_rewrite(p, end, &f->snat_addr, f->snat_port, &be->addr, be->port, 1, f))
			return lb_verdict_drop(LB_DROP_TRUNC_L4);
	/* Map values stay put while the packet moves (TC helpers). */
	} else if (LB_NAT_REWRITE(ctx, p, end, &f->snat_addr, f->snat_port, &be->addr,
				  be->port)) {
		return lb_verdict_drop(LB_DROP_TRUNC_L4);
	}
	return lb_fib_xmit(ctx, p, end, &f->snat_addr, &be->addr, &f->nh, cfg);
}

/* Whether the client's packet p confirms its new-tier flow f (see
 * conntrack.h): full NAT once the backend answered (the reply path marks
 * it); DSR, seeing no replies, on any packet after the first but a SYN. */
static __always_inline int lb_ct_confirmed(const struct lb_pkt *p, const struct lb_flow *f)
{
	if (f->flags & LB_FLOW_F_CLOSING)
		return 0;
	if (f->fwd == LB_FWD_NAT)
		return f->flags & LB_FLOW_F_CONFIRMED;
	return p->key.proto != IPPROTO_TCP || (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN;
}

/*
 * Send the packet of flow f: in the established tier (est), a new flow
 * (new_flow), or a copy of the new-tier entry g. An established flow's
 * last-seen stamp moves on once a second; a confirmed new one is promoted
 * with g's flags (the reply path may have confirmed or closed g meanwhile),
 * else the copy's stamp goes back to g. f may be g itself (lb_tier), which
 * keeps the next hop it found; a copy does not (writing it back cost the
 * verifier 4% of its limit), and a promoted flow takes the one just found
 * along.
 */
static __always_inline int lb_flow_go(LB_CTX *ctx, struct lb_pkt *p, void *end,
				      struct lb_flow *f, struct lb_flow *g, int est,
				      const struct lb_backend *be,
				      const struct lb_config *cfg, int new_flow)
{
	int rc;

	if (est && f->seen != cfg->now)
		f->seen = cfg->now;
	rc = lb_flow_send(ctx, p, end, f, be, cfg, new_flow);
	/* after the send: the copy holds the next hop it found */
	if (!est && !new_flow && g) {
		f->flags = g->flags;
		if (lb_ct_confirmed(p, f) && lb_ct_promote(&p->key, f, be, cfg->now))
			lb_ct_promoted(&p->key, f, be);
		else
			g->seen = f->seen;
	}
	/* bpf_redirect's long is never negative, but the verifier does not
	 * know it and would walk on into lb_forward with the packet pointers
	 * that encapsulation (encap.h) invalidated */
	return rc < 0 ? LB_DROP : rc;
}

/* A SYN reusing a closed flow's tuple is a new connection: it goes where
 * the table sends new connections now (IPVS's conn_reuse_mode), not to the
 * backend of the old one, which may have left the table since (draining,
 * a backup again, weight 0, slow start) and would get clients' reused
 * ports for as long as the flow stays in conntrack. */
static __always_inline int lb_flow_reused(const struct lb_pkt *p, const struct lb_flow *f)
{
	return p->key.proto == IPPROTO_TCP && (f->flags & LB_FLOW_F_CLOSING) &&
	       (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN;
}

/* A SYN on a full-NAT flow its backend never confirmed (see conntrack.h),
 * while that backend takes no new connections: a client that gave up on
 * an unanswered SYN (a backend black-holed, then drained by passive
 * health) and reuses the port, or a retransmit of a SYN whose SYN-ACK
 * never came. No connection exists to keep: the table of now places it. */
static __always_inline int lb_flow_unanswered(const struct lb_pkt *p, const struct lb_flow *f,
					      const struct lb_backend *be)
{
	return p->key.proto == IPPROTO_TCP && f->fwd == LB_FWD_NAT && be->state != LB_BE_UP &&
	       !(f->flags & LB_FLOW_F_CONFIRMED) &&
	       (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN;
}

/* The backend tracked flow f of p goes on to, or 0 when the new-flow
 * program must place p again: the backend went (lb_flow_backend), or p
 * opens a new connection on f's tuple (lb_flow_reused, lb_flow_unanswered). */
static __always_inline struct lb_backend *lb_flow_keeps(const struct lb_pkt *p,
							const struct lb_flow *f)
{
	struct lb_backend *be = lb_flow_backend(f);

	if (!be || lb_flow_reused(p, f) || lb_flow_unanswered(p, f, be))
		return 0;
	return be;
}

/* The client's flow of p: its established entry, or a copy in this CPU's
 * flow_scratch of its new-tier entry (*g: the entry), or 0. The tail-called
 * program's: a new-tier flow gets here only when lb_tier could not send it
 * (a backend to pick again), or when it appeared since the main program
 * looked. */
static __always_inline struct lb_flow *lb_ct_find(const struct lb_pkt *p, struct lb_flow **g)
{
	struct lb_flow *f = lb_flow_lookup(&ct4_est, &ct_est, p, &p->key), *n, *sf;
	__u32 zero = 0;

	*g = 0;
	if (f)
		return f;
	n = lb_flow_lookup(&ct4, &ct, p, &p->key);
	if (!n)
		return 0;
	sf = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!sf)
		return 0;
	__builtin_memcpy(sf, n, sizeof(*sf));
	*g = n;
	return sf;
}

/*
 * Client -> VIP on a tracked flow, before (and without) the VIP lookup: the
 * flow has what it needs (backend, mode, SNAT address). A flow whose VIP is
 * gone has lost its backends too. Returns -1 when the flow needs the VIP
 * (reselection): lb_forward then handles the packet.
 */
static __always_inline int lb_established(LB_CTX *ctx, struct lb_pkt *p, void *end,
					  struct lb_flow *f, const struct lb_config *cfg)
{
	struct lb_backend *be;

	if (f->fwd == LB_FWD_LOCAL || f->fwd >= LB_FWD_MAX)
		return -1;
	be = lb_flow_backend(f);
	if (!be || lb_flow_reused(p, f))
		return -1;
	if (p->ttl <= 1 && f->fwd == LB_FWD_NAT) {
		lb_event(LB_EV_PASS_TTL);
		return LB_PASS;
	}
	if (p->key.proto == IPPROTO_TCP)
		lb_flow_tcp_flags(f, &p->key, p->tcp_flags);
	return lb_flow_go(ctx, p, end, f, 0, 1, be, cfg, 0);
}

/*
 * A TCP packet that cannot open a connection (no SYN) and has no flow here,
 * or only a closed one (clients reuse ports: a connection that once went
 * through this node leaves a closed entry with the same tuple): if a peer
 * node pushed it as its own (owners, see lb_abi.h), send it on to that node
 * at L2, as DSR sends to a backend: its NAT state and SNAT address keep the
 * connection. Only back out where it came in, and never back to the node
 * it came from (two drained nodes must not bounce it). Returns -1 when the
 * packet is not a peer's.
 */
static __always_inline int lb_to_owner(LB_CTX *ctx, struct lb_pkt *p, void *end)
{
	struct ethhdr *eth = p->eth;
	const __u16 *src, *own;
	struct lb_owner *o;

	if (p->key.proto != IPPROTO_TCP || (p->tcp_flags & TCPF_SYN))
		return -1;
	o = bpf_map_lookup_elem(&owners, &p->key);
	if (!o || o->ifindex != LB_IFINDEX(ctx) || (void *)(eth + 1) > end)
		return -1;
	src = (const __u16 *)eth->h_source;
	own = (const __u16 *)o->mac;
	if (src[0] == own[0] && src[1] == own[1] && src[2] == own[2])
		return -1;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, o->mac, ETH_ALEN);
	lb_event(LB_EV_TO_OWNER);
	return LB_TX(ctx);
}

/*
 * Client -> VIP on a flow of the new tier (conntrack.h), sent from the main
 * program as lb_forward would send it: every client packet of a flow that
 * is not promoted (a short connection its server closes first is never)
 * takes this path, and the tail call, the second parse and the second VIP
 * and flow lookups of lb_process_new cost as much again as the packet.
 * Returns -1 when lb_forward must decide: no entry, or a backend to pick
 * again.
 */
static __always_inline int lb_tier(LB_CTX *ctx, struct lb_pkt *p, void *end,
				   const struct lb_vip *vip, const struct lb_config *cfg)
{
	struct lb_flow *g = lb_flow_lookup(&ct4, &ct, p, &p->key);
	struct lb_backend *be;
	int rc;

	if (!g || g->fwd == LB_FWD_LOCAL || g->fwd >= LB_FWD_MAX)
		return -1;
	if (p->ttl <= 1 && vip->fwd == LB_FWD_NAT) {
		lb_event(LB_EV_PASS_TTL);
		return LB_PASS;
	}
	if ((g->flags & LB_FLOW_F_CLOSING) && (rc = lb_to_owner(ctx, p, end)) >= 0)
		return rc;
	be = lb_flow_keeps(p, g);
	if (!be)
		return -1;
	if (p->key.proto == IPPROTO_TCP)
		lb_flow_tcp_flags(g, &p->key, p->tcp_flags);
	/* The entry itself, not a copy as in lb_forward: this program has no
	 * third kind of flow pointer to spare the verifier, and the next hop
	 * it finds stays with the flow. An LRU entry is reused as soon as it
	 * is freed (evicted by a flood of new flows, or its SNAT port
	 * reclaimed once closed), so another CPU may turn it into another
	 * flow's while this packet is sent: the copy narrowed that window to
	 * the copy itself, where flags and stamp were already exposed. */
	return lb_flow_go(ctx, p, end, g, g, 0, be, cfg, 0);
}

/*
 * Client -> VIP; f is the packet's conntrack entry, if any: an established
 * one, or a copy of the new-tier entry g in flow_scratch (see lb_ct_find),
 * where a new flow is built too. The copy gives this path two kinds of
 * flow pointer, not three: the verifier walks what follows once for each.
 */
static __always_inline int lb_forward(LB_CTX *ctx, struct lb_pkt *p, void *end,
				      const struct lb_vip *vip, const struct lb_config *cfg,
				      struct lb_flow *f, struct lb_flow *g)
{
	int est = f && !g;
	struct lb_flow *sf;
	__u32 zero = 0;
	struct lb_backend *be = 0;
	int new_flow = 0, reason;

	if (p->ttl <= 1 && vip->fwd == LB_FWD_NAT) {
		lb_event(LB_EV_PASS_TTL);
		return LB_PASS;
	}
	if ((!f || (f->flags & LB_FLOW_F_CLOSING)) && (reason = lb_to_owner(ctx, p, end)) >= 0)
		return reason;
	if (f) {
		be = lb_flow_keeps(p, f);
		if (!be) {
			/* the flow this one replaces, if still counted: once */
			if (f->flags & LB_FLOW_F_COUNTED)
				lb_conn_close(&p->key, f->snat_port);
			be = 0;
			lb_event(LB_EV_FLOW_RESELECT);
		} else if (p->key.proto == IPPROTO_TCP) {
			/* On the entry, not the copy: a copy written back
			 * after the send undid a FIN the backend sent
			 * meanwhile (counted out on the entry), and the
			 * client's FIN counted the connection out twice. */
			lb_flow_tcp_flags(g ? g : f, &p->key, p->tcp_flags);
		}
	}
	if (!be) {
		/* the flow starts again in the LRU tier: its established
		 * entry would shadow the new one */
		if (f && est)
			lb_ct_delete(p, &p->key, 1);
		sf = bpf_map_lookup_elem(&flow_scratch, &zero);
		if (!sf)
			return LB_PASS;
		reason = lb_new_flow(p, vip, cfg, sf, &be);
		if (reason)
			return lb_verdict_drop(reason);
		f = sf;
		g = 0;
		est = 0;
		new_flow = 1;
		lb_event(LB_EV_FLOW_NEW);
	}
	return lb_flow_go(ctx, p, end, f, g, est, be, cfg, new_flow);
}

/* A reply of new-tier flow n: the backend answers as for a connection it
 * has (anything but TCP's SYN or RST), which confirms the flow; its
 * client's next packet promotes it (conntrack.h). */
static __always_inline void lb_reply_confirm(const struct lb_pkt *p, struct lb_nat *n)
{
	struct lb_flow_key fk;

	if (n->flags & LB_FLOW_F_CONFIRMED)
		return;
	if (p->key.proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_RST)))
		return;
	lb_nat_client_tuple(&fk, n, &p->key);
	lb_ct_confirm(&fk, n);
}

/* Passive health and connection accounting from a reply of flow n. */
static __always_inline void lb_reply_track(const struct lb_pkt *p, struct lb_nat *n)
{
	if (p->key.proto == IPPROTO_TCP) {
		__u8 fl = p->tcp_flags;

		/* Passive health: did the backend accept or refuse? Once a
		 * flow, as its SYN counted once (lb_flow_go): the SYN-ACKs a
		 * backend sends again for retransmitted SYNs would hide as
		 * many unanswered SYNs of other flows. */
		if (!(n->flags & (LB_FLOW_F_ESTABLISHED | LB_FLOW_F_ANSWERED))) {
			struct lb_backend_stats *bs = lb_backend_stats(n->backend_id);

			/* A bare ACK answers too: a TIME_WAIT that an earlier
			 * connection (another client's) left on this SNAT port
			 * rejected the SYN (PAWS); the client resets it and its
			 * retransmit gets through. The backend is alive: counted
			 * unanswered, a fresh lbd's first burst took every
			 * backend out (max_fails 1). */
			if (bs && (fl & TCPF_RST))
				bs->rst_syn++;
			else if (bs && (fl & TCPF_ACK))
				bs->synack++;
			if (!(fl & TCPF_SYN))
				n->flags |= LB_FLOW_F_ANSWERED;
		}
		if (fl & TCPF_SYN)
			n->flags |= LB_FLOW_F_ESTABLISHED;
		if (fl & (TCPF_FIN | TCPF_RST)) {
			struct lb_flow_key fk;
			struct lb_flow *f;
			int est;

			lb_nat_client_tuple(&fk, n, &p->key);
			f = lb_ct_lookup(p, &fk, &est);
			if (f)
				lb_flow_tcp_flags(f, &fk, fl);
		}
	}
}

/* Backend -> SNAT address: reverse-translate to VIP -> client. */
static __always_inline int lb_reply(LB_CTX *ctx, struct lb_pkt *p, void *end,
				    struct lb_nat *n, int est, const struct lb_config *cfg)
{
	union lb_addr client, vip;
	__u16 cport = n->client_port, vport = n->vip_port;

	if (p->ttl <= 1) {
		lb_event(LB_EV_PASS_TTL);
		return LB_PASS;
	}
	if (est) {
		if (n->seen != cfg->now)
			n->seen = cfg->now;
	} else {
		lb_reply_confirm(p, n);
	}
	lb_reply_track(p, n);
	lb_count_vip_reply(n->vip_id, p->l3_len);
	lb_event(LB_EV_REPLY);
	lb_addr_copy(&client, &n->client);
	lb_addr_copy(&vip, &n->vip);
	if (LB_NAT_REWRITE(ctx, p, end, &vip, vport, &client, cport))
		return lb_verdict_drop(LB_DROP_TRUNC_L4);
	return lb_fib_xmit(ctx, p, end, &vip, &client, &n->nh, cfg);
}

#include "icmp.h"


/*
 * Parse the packet and find the configuration. Returns -1 when the packet
 * is to be balanced (p and *cfgp set), else its verdict.
 */
static __always_inline int lb_begin(void *data, void *end, struct lb_pkt *p,
				    struct lb_config **cfgp)
{
	struct lb_vip_key vk;
	__u32 zero = 0;
	int rc;

	rc = lb_parse(data, end, p);
	if (rc == LB_PARSE_PASS)
		return LB_PASS;

	if (rc == LB_PARSE_BAD) {
		/* Only drop what is addressed to a VIP: the rest is the stack's. */
		if (!p->have_dst)
			return LB_PASS;
		lb_addr_copy(&vk.addr, &p->key.dst);
		vk.family = p->key.family;
		vk.port = 0;
		vk.proto = 0;
		if (!bpf_map_lookup_elem(&vips, &vk))
			return LB_PASS;
		return lb_verdict_drop(p->reason);
	}
	*cfgp = bpf_map_lookup_elem(&config, &zero);
	if (!*cfgp)
		return LB_PASS;
	return -1;
}

/* A client's packet for a VIP that neither lb_established nor lb_tier
 * could send. */
static __always_inline int lb_call_new_flow(LB_CTX *ctx)
{
	bpf_tail_call(ctx, &LB_CALLS_MAP, LB_CALL_NEW_FLOW);
	/* The slot is empty (lbd did not fill it): nothing here can pick a
	 * backend. Dropped and counted: the stack would answer for the VIP. */
	return lb_verdict_drop(LB_DROP_NO_PROG);
}

/* The main program: tracked flows of either tier, replies, ICMP errors.
 * A flow's first packet, and one whose backend must be picked again, take
 * the tail call to lb_process_new. */
static __always_inline int lb_process(LB_CTX *ctx)
{
	void *data = LB_DATA(ctx), *end = LB_DATA_END(ctx);
	struct lb_pkt p = {};
	struct lb_config *cfg = 0;
	struct lb_flow *f;
	struct lb_vip *vip = 0;
	int rc, snat_range, est;
	__u16 dport;

	rc = lb_begin(data, end, &p, &cfg);
	if (rc >= 0 || !cfg)
		return rc >= 0 ? rc : LB_PASS;
	if (unlikely(p.key.proto == IPPROTO_ICMP || p.key.proto == IPPROTO_ICMPV6))
		return lb_icmp(ctx, &p, end);

	/* A reply can only be addressed to a SNAT port: anything else that
	 * is tracked is a client's flow, sent on without the VIP lookup. In
	 * the SNAT range the VIP goes first, as it always did. */
	dport = bpf_ntohs(p.key.dport);
	snat_range = dport >= cfg->snat_port_lo && dport <= cfg->snat_port_hi;
	if (snat_range) {
		vip = lb_vip_lookup(&p, cfg);
		if (!vip) {
			struct lb_nat *n = lb_nat_lookup(&p, &p.key, &est);

			return n ? lb_reply(ctx, &p, end, n, est, cfg) : LB_PASS;
		}
	}
	/* forward local: the packet goes up as it is (offloads, GRO and
	 * all); the socket-lookup program (lb_sk.bpf.c) hands a new
	 * connection to an instance's socket. Nothing to translate, so
	 * nothing to track or reverse. */
	if (!vip || vip->fwd != LB_FWD_LOCAL) {
		/* The established tier first, without the VIP: most packets
		 * are there. The new tier's flows need the VIP (lb_tier). */
		f = lb_flow_lookup(&ct4_est, &ct_est, &p, &p.key);
		if (f && (f->flags & LB_FLOW_F_CLOSING) && (rc = lb_to_owner(ctx, &p, end)) >= 0)
			return rc;
		if (f && (rc = lb_established(ctx, &p, end, f, cfg)) >= 0)
			return rc;
		/* Built this late: established client flows never look their
		 * VIP up. */
		if (!snat_range)
			vip = lb_vip_lookup(&p, cfg);
		if (!vip)
			return LB_PASS;
		/* A bare SYN opens a flow (or retransmits the one whose SYN
		 * made it): the new-flow program's, without one more lookup
		 * of a tuple that no cache holds yet. */
		if (!f && vip->fwd != LB_FWD_LOCAL &&
		    (p.key.proto != IPPROTO_TCP || (p.tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN) &&
		    (rc = lb_tier(ctx, &p, end, vip, cfg)) >= 0)
			return rc;
	}
	if (vip->fwd == LB_FWD_LOCAL) {
		lb_count_vip(vip->id, p.l3_len);
		lb_event(LB_EV_LOCAL);
		return LB_PASS;
	}
	return lb_call_new_flow(ctx);
}

/* The tail-called program (LB_CALL_NEW_FLOW): the same packet, parsed
 * again (nothing survives a tail call but the context), for a VIP. */
static __always_inline int lb_process_new(LB_CTX *ctx)
{
	void *data = LB_DATA(ctx), *end = LB_DATA_END(ctx);
	struct lb_pkt p = {};
	struct lb_config *cfg = 0;
	struct lb_flow *f, *g;
	struct lb_vip *vip;
	int rc;

	rc = lb_begin(data, end, &p, &cfg);
	if (rc >= 0 || !cfg)
		return rc >= 0 ? rc : LB_PASS;
	if (p.key.proto == IPPROTO_ICMP || p.key.proto == IPPROTO_ICMPV6)
		return LB_PASS; /* the main program's (lb_icmp) */
	vip = lb_vip_lookup(&p, cfg);
	/* Gone or changed since the main program saw it: as that would now. */
	if (!vip || vip->fwd == LB_FWD_LOCAL)
		return LB_PASS;
	f = lb_ct_find(&p, &g);
	return lb_forward(ctx, &p, end, vip, cfg, f, g);
}

#endif
