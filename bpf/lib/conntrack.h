/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: `ct` maps a client's tuple to its backend, `nat`
 * maps the backend's reply tuple back to the client (IPv4: ct4, nat4).
 *
 * Two tiers, so that a flood of new flows can never evict established ones:
 *   - new flows go into the LRU maps (ct, nat): evictable, a flood of SYNs
 *     or spoofed datagrams churns only them;
 *   - a flow is promoted into the established maps (ct_est, nat_est:
 *     preallocated hash maps, which never evict) once it is confirmed:
 *       full NAT: the backend sent something a connection it has would
 *       send (UDP: any reply; TCP: a segment without SYN or RST, which the
 *       backend's stack sends only after a valid handshake ACK, so a blind
 *       spoofer cannot produce it), marked on the reply path
 *       (LB_FLOW_F_CONFIRMED), and then the client sent again: a one-shot
 *       request/reply (DNS) stays in the LRU tier, where it belongs;
 *       DSR (no replies come through us): the client's second packet,
 *       unless a bare SYN. A spoofer sending two packets a tuple can
 *       fill the established tier; it then refuses promotions (counted)
 *       and the flows stay in the LRU tier: established flows keep going.
 *   - lookups try the established tier first: an established packet
 *     costs one lookup, as before;
 *   - when the established tier is full, promotion fails, is counted
 *     (LB_EV_CT_FULL) and retried a second later; the flow goes on from the
 *     LRU tier;
 *   - lbd removes idle established flows (lb_dp_ct_gc: timeouts per
 *     protocol, FIN/RST-closed flows sooner), from the `seen` stamps the
 *     data path writes when lb_config.now moved on (a compare per packet,
 *     a store a second).
 * A SNAT port is taken while its reply tuple is in either nat tier: a new
 * flow skips ports the established tier holds (checked before the LRU
 * claim; a promotion of that very tuple in between is not guarded
 * against) unless their flow is over (lb_snat_reclaim_est), as in the LRU
 * tier; lbd's collection frees the others.
 */
#ifndef LB_CONNTRACK_H
#define LB_CONNTRACK_H

#include "maps.h"
#include "parse.h"
#include "stats.h"

/*
 * Flow map operations on the map of the packet's family: m4 (struct
 * lb_flow_key4 keys) for IPv4, m6 for IPv6. k is a tuple of p's family.
 * The choice reads p->v6, not k->family: the verifier knows that word's
 * value on each path, so it walks one side of every such branch instead of
 * both (which doubled its work per map operation on the path).
 */
static __always_inline void *lb_flow_lookup(void *m4, void *m6, const struct lb_pkt *p,
					    const struct lb_flow_key *k)
{
	struct lb_flow_key4 k4;

	if (p->v6)
		return bpf_map_lookup_elem(m6, k);
	lb_flow_key4(&k4, k);
	return bpf_map_lookup_elem(m4, &k4);
}

static __always_inline long lb_flow_update(void *m4, void *m6, const struct lb_pkt *p,
					   const struct lb_flow_key *k, const void *v,
					   __u64 flags)
{
	struct lb_flow_key4 k4;

	if (p->v6)
		return bpf_map_update_elem(m6, k, v, flags);
	lb_flow_key4(&k4, k);
	return bpf_map_update_elem(m4, &k4, v, flags);
}

static __always_inline long lb_flow_delete(void *m4, void *m6, const struct lb_pkt *p,
					   const struct lb_flow_key *k)
{
	struct lb_flow_key4 k4;

	if (p->v6)
		return bpf_map_delete_elem(m6, k);
	lb_flow_key4(&k4, k);
	return bpf_map_delete_elem(m4, &k4);
}

/* Both tiers, the established one first; *est says where f was found. */
static __always_inline struct lb_flow *lb_ct_lookup(const struct lb_pkt *p,
						    const struct lb_flow_key *k, int *est)
{
	struct lb_flow *f = lb_flow_lookup(&ct4_est, &ct_est, p, k);

	*est = f != 0;
	return f ? f : lb_flow_lookup(&ct4, &ct, p, k);
}

/* A new flow's entry: the LRU tier. */
static __always_inline long lb_ct_update(const struct lb_pkt *p, const struct lb_flow_key *k,
					 const struct lb_flow *f)
{
	return lb_flow_update(&ct4, &ct, p, k, f, BPF_ANY);
}

static __always_inline long lb_ct_delete(const struct lb_pkt *p, const struct lb_flow_key *k,
					 int est)
{
	return est ? lb_flow_delete(&ct4_est, &ct_est, p, k) : lb_flow_delete(&ct4, &ct, p, k);
}

static __always_inline struct lb_nat *lb_nat_lookup(const struct lb_pkt *p,
						    const struct lb_flow_key *k, int *est)
{
	struct lb_nat *n = lb_flow_lookup(&nat4_est, &nat_est, p, k);

	*est = n != 0;
	return n ? n : lb_flow_lookup(&nat4, &nat, p, k);
}

static __always_inline struct lb_nat *lb_nat_lookup_tier(const struct lb_pkt *p,
							 const struct lb_flow_key *k, int est)
{
	return est ? lb_flow_lookup(&nat4_est, &nat_est, p, k) : lb_flow_lookup(&nat4, &nat, p, k);
}

/* The LRU tier: claims of new flows. */
static __always_inline long lb_nat_update(const struct lb_pkt *p, const struct lb_flow_key *k,
					  const struct lb_nat *n, __u64 flags)
{
	return lb_flow_update(&nat4, &nat, p, k, n, flags);
}

static __always_inline long lb_nat_delete(const struct lb_pkt *p, const struct lb_flow_key *k,
					  int est)
{
	return est ? lb_flow_delete(&nat4_est, &nat_est, p, k) : lb_flow_delete(&nat4, &nat, p, k);
}

/* The flow's backend if it still may carry the flow: same slot generation
 * (the slot was not reused) and not removed or marked down. */
static __always_inline struct lb_backend *lb_flow_backend(const struct lb_flow *f)
{
	__u32 id = f->backend_id;
	struct lb_backend *be = bpf_map_lookup_elem(&backends, &id);

	if (!be || be->gen != f->backend_gen ||
	    be->state == LB_BE_UNUSED || be->state == LB_BE_DOWN)
		return 0;
	return be;
}

static __always_inline void lb_conns_add(__u32 be_id, __s64 d)
{
	__s64 *c = bpf_map_lookup_elem(&backend_conns, &be_id);

	if (c)
		__sync_fetch_and_add(c, d);
}

/* The conn_open key of client tuple k's connection on SNAT port port. */
static __always_inline void lb_conn_key(struct lb_flow_key *t, const struct lb_flow_key *k,
					__u16 port)
{
	__builtin_memcpy(t, k, sizeof(*t));
	t->pad = port;
}

/*
 * Count out the connection of client tuple k on SNAT port port, if it is
 * still counted in: once, on the backend that counted it in. The count
 * goes down only where an entry of conn_open goes, and a delete succeeds
 * once: the client's and the backend's FIN crossing on two CPUs, a flow
 * with an entry in each tier for a moment (promotion), or a late packet of
 * an earlier connection on the same tuple cannot take a count twice, or
 * from a backend that did not count the connection in. (The flow's flags
 * cannot decide it: there are no atomic bit operations below BPF v3, which
 * lb_xdp does not pass the verifier with.) Global functions, these two:
 * verified once, not at every inlined caller.
 */
__attribute__((noinline)) int lb_conn_close(const struct lb_flow_key *k, __u32 port)
{
	struct lb_flow_key t;
	struct lb_backend *be;
	__u32 *v, val, be_id;

	if (!k)
		return 0;
	lb_conn_key(&t, k, (__u16)port);
	v = bpf_map_lookup_elem(&conn_open, &t);
	if (!v)
		return 0;
	val = *v;
	if (bpf_map_delete_elem(&conn_open, &t))
		return 0; /* another closer's */
	be_id = val & LB_CONN_ID_MASK;
	/* the slot's earlier backend's: lbd zeroed the count (lb_abi.h) */
	be = bpf_map_lookup_elem(&backends, &be_id);
	if (!be || !lb_conn_current(val, be->gen))
		return 1;
	lb_conns_add(be_id, -1);
	return 1;
}

/* Count in a new connection of client tuple k on SNAT port port at backend
 * be_id of generation gen; 1 when counted. An entry of an earlier
 * connection on the same tuple and port is over (this one replaces it):
 * counted out first. */
__attribute__((noinline)) int lb_conn_open(const struct lb_flow_key *k, __u32 port, __u32 be_id,
					   __u32 gen)
{
	struct lb_flow_key t;
	__u32 val = lb_conn_val(be_id, gen);

	if (!k)
		return 0;
	lb_conn_key(&t, k, (__u16)port);
	if (bpf_map_update_elem(&conn_open, &t, &val, BPF_NOEXIST)) {
		lb_conn_close(k, port);
		if (bpf_map_update_elem(&conn_open, &t, &val, BPF_NOEXIST))
			return 0;
	}
	lb_conns_add(be_id, 1);
	return 1;
}

/* TCP connection accounting on tracked flow f of client tuple k, from
 * either direction. A SYN reusing a closed flow's tuple never gets here:
 * it is a new flow (lb_flow_reused). */
static __always_inline void lb_flow_tcp_flags(struct lb_flow *f, const struct lb_flow_key *k,
					      __u8 flags)
{
	if ((flags & (TCPF_FIN | TCPF_RST)) && !(f->flags & LB_FLOW_F_CLOSING)) {
		f->flags |= LB_FLOW_F_CLOSING;
		if (f->flags & LB_FLOW_F_COUNTED) {
			f->flags &= ~LB_FLOW_F_COUNTED;
			lb_conn_close(k, f->snat_port);
		}
	}
}

/* What a reply of this client's flow translates back to, built in this
 * CPU's nat_scratch (whole: no next hop yet). 0 if there is none. */
static __always_inline struct lb_nat *lb_nat_val(const struct lb_pkt *p,
						 __u32 vip_id, __u32 be_id)
{
	__u32 zero = 0;
	struct lb_nat *nv = bpf_map_lookup_elem(&nat_scratch, &zero);

	if (!nv)
		return 0;
	__builtin_memset(nv, 0, sizeof(*nv));
	lb_addr_copy(&nv->client, &p->key.src);
	lb_addr_copy(&nv->vip, &p->key.dst);
	nv->client_port = p->key.sport;
	nv->vip_port = p->key.dport;
	nv->backend_id = be_id;
	nv->vip_id = vip_id;
	return nv;
}

/* The reply tuple of a NAT flow: backend -> SNAT address:port. */
static __always_inline void lb_nat_key(struct lb_flow_key *rk, const struct lb_pkt *p,
				       const struct lb_backend *be,
				       const union lb_addr *snat_addr, __u16 snat_port)
{
	lb_addr_copy(&rk->src, &be->addr);
	lb_addr_copy(&rk->dst, snat_addr);
	rk->sport = be->port;
	rk->dport = snat_port;
	rk->proto = p->key.proto;
	rk->family = p->key.family;
	rk->pad = 0;
}

/* n translates back to the client of nv (rk holds the backend, so only
 * the client side needs comparing). */
static __always_inline int lb_nat_same(const struct lb_nat *n, const struct lb_nat *nv)
{
	return n->client_port == nv->client_port && n->vip_port == nv->vip_port &&
	       lb_addr_eq(&n->client, &nv->client) && lb_addr_eq(&n->vip, &nv->vip);
}

/* The client tuple of reply mapping n (reply tuple rk). */
static __always_inline void lb_nat_client_tuple(struct lb_flow_key *ck, const struct lb_nat *n,
						const struct lb_flow_key *rk)
{
	__builtin_memset(ck, 0, sizeof(*ck));
	lb_addr_copy(&ck->src, &n->client);
	lb_addr_copy(&ck->dst, &n->vip);
	ck->sport = n->client_port;
	ck->dport = n->vip_port;
	ck->proto = rk->proto;
	ck->family = rk->family;
}

/*
 * A taken SNAT port may be reused when its flow is over: the client's ct
 * entry is gone (evicted by the LRU), points at another port, or has seen a
 * FIN or RST. Without this, ports of closed flows stay claimed until the
 * LRU evicts them, and a busy VIP runs out of ports long before it has that
 * many live connections. The old flow's ct entry is removed with it, so a
 * late packet of the old connection cannot use the port's new owner. The
 * LRU tier only: established flows' ports are freed by lbd's collection.
 */
static __always_inline int lb_snat_reclaim(const struct lb_pkt *p, const struct lb_flow_key *rk,
					   __u16 port)
{
	struct lb_nat *old = lb_nat_lookup_tier(p, rk, 0);
	struct lb_flow_key ck;
	struct lb_flow *f;

	if (!old)
		return 1;
	lb_nat_client_tuple(&ck, old, rk);
	f = lb_flow_lookup(&ct4, &ct, p, &ck);
	if (!f || f->snat_port != port)
		return 1;
	if (!(f->flags & LB_FLOW_F_CLOSING))
		return 0;
	lb_ct_delete(p, &ck, 0);
	return 1;
}

/* Flow map operations by the tuple's own family (k->family): for global
 * functions, which get no struct lb_pkt. */
static __always_inline void *lb_flow_lookup_k(void *m4, void *m6, const struct lb_flow_key *k)
{
	struct lb_flow_key4 k4;

	if (k->family == LB_AF_INET6)
		return bpf_map_lookup_elem(m6, k);
	lb_flow_key4(&k4, k);
	return bpf_map_lookup_elem(m4, &k4);
}

static __always_inline long lb_flow_update_k(void *m4, void *m6, const struct lb_flow_key *k,
					     const void *v, __u64 flags)
{
	struct lb_flow_key4 k4;

	if (k->family == LB_AF_INET6)
		return bpf_map_update_elem(m6, k, v, flags);
	lb_flow_key4(&k4, k);
	return bpf_map_update_elem(m4, &k4, v, flags);
}

static __always_inline long lb_flow_delete_k(void *m4, void *m6, const struct lb_flow_key *k)
{
	struct lb_flow_key4 k4;

	if (k->family == LB_AF_INET6)
		return bpf_map_delete_elem(m6, k);
	lb_flow_key4(&k4, k);
	return bpf_map_delete_elem(m4, &k4);
}

/*
 * A SNAT port the established tier holds (reply tuple rk) may go to a new
 * flow once its flow is over: the client's established entry has seen a
 * FIN or RST, or is gone or on another port (reselected). Both entries go
 * then. Left to lbd's collection (30 s after the FIN), the ports of short
 * connections from reused client ports piled up: at ~10k connections a
 * second, half of a backend's ports were held by closed flows and a flow
 * whose 8 probes all hit one lost its SYN and the retransmit (same probes)
 * as snat_exhausted. A flow in the LRU tier with this port is being
 * promoted (the reply mapping goes in first): it keeps the port. A global
 * function: verified once, not once per unrolled probe.
 */
__attribute__((noinline)) int lb_snat_reclaim_est(const struct lb_flow_key *rk, __u32 port)
{
	struct lb_flow_key ck;
	struct lb_flow *f, *g;
	struct lb_nat *old;

	if (!rk)
		return 0;
	old = lb_flow_lookup_k(&nat4_est, &nat_est, rk);
	if (!old)
		return 1;
	lb_nat_client_tuple(&ck, old, rk);
	f = lb_flow_lookup_k(&ct4_est, &ct_est, &ck);
	if (f && f->snat_port == port) {
		if (!(f->flags & LB_FLOW_F_CLOSING))
			return 0;
		lb_flow_delete_k(&ct4_est, &ct_est, &ck);
	} else if (!f) {
		g = lb_flow_lookup_k(&ct4, &ct, &ck);
		if (g && g->snat_port == port && !(g->flags & LB_FLOW_F_CLOSING))
			return 0;
	}
	lb_flow_delete_k(&nat4_est, &nat_est, rk);
	return 1;
}

/*
 * Whether a new flow of client nv may take SNAT port rk->dport as far as
 * the established tier goes: no reply mapping holds it there, or the one
 * that does is this very client tuple's (a connection before this one on a
 * reused client port), which then goes. The backend may still hold that
 * connection in TIME_WAIT; a SYN from the same client tuple passes it (the
 * client's timestamps and sequence numbers move on per tuple), a SYN from
 * another client tuple fails PAWS half the time: the backend answers with
 * an ACK, the client resets, and its retransmit comes a second later.
 * Skipping its own port sent every reused tuple to a new one, so ports went
 * per connection instead of per tuple: at ~10k connections a second they
 * ran out and the reclaim below handed closed ports to other tuples
 * (test_lbd's stream lost 1 in 30k connections to a timeout). A global
 * function: verified once, not once per unrolled probe.
 */
__attribute__((noinline)) int lb_snat_est_free(const struct lb_flow_key *rk,
					       const struct lb_nat *nv)
{
	struct lb_nat *e;

	if (!rk || !nv)
		return 0;
	e = lb_flow_lookup_k(&nat4_est, &nat_est, rk);
	if (!e)
		return 1;
	if (!lb_nat_same(e, nv))
		return 0;
	lb_flow_delete_k(&nat4_est, &nat_est, rk);
	return 1;
}

/* The reply tuple rk is already this client's: its conntrack entry was
 * evicted (LRU) while the nat entry lived on. Keeping the port keeps the
 * connection; another one would reach the backend as a stranger's ACK and be
 * reset. */
static __always_inline int lb_nat_is_ours(const struct lb_pkt *p, const struct lb_flow_key *rk,
					  const struct lb_nat *nv)
{
	struct lb_nat *old = lb_nat_lookup_tier(p, rk, 0);

	if (!old || !lb_nat_same(old, nv))
		return 0;
	return lb_nat_update(p, rk, nv, BPF_ANY) == 0;
}

/*
 * Claim a SNAT port for a new flow: start at a hash of the tuple (so
 * the choice spreads without shared state) and probe a few ports.
 * BPF_NOEXIST makes the claim atomic across CPUs. Returns the port
 * (network order), or 0.
 */
static __always_inline __u16 lb_snat_alloc(const struct lb_pkt *p, const struct lb_vip *vip,
					   const struct lb_backend *be, __u32 be_id,
					   const struct lb_config *cfg)
{
	__u32 lo = cfg->snat_port_lo, range = cfg->snat_port_hi - lo + 1, off, step;
	struct lb_flow_key rk;
	struct lb_nat *nv;

	if (!lo || cfg->snat_port_hi < lo)
		return 0;
	nv = lb_nat_val(p, vip->id, be_id);
	if (!nv)
		return 0;
	off = lb_hash_flow(&p->key, cfg->hash_seed ^ 0x9e3779b9u) % range;
	/* Double hashing: each flow probes its own sequence. Consecutive ports
	 * would let taken runs grow into each other (linear probing's
	 * clustering), and a flow whose 8 ports were taken would be dropped on
	 * every SYN retransmit too: 0.15% of new flows at 10% of the ports used. */
	step = range > 1 ? 1 + lb_hash_flow(&p->key, cfg->hash_seed ^ 0x85ebca6bu) % (range - 1) : 1;

	/* Free ports first: a reclaimed one may still be in TIME_WAIT on the
	 * backend, which then answers the first SYN of the new flow with a
	 * stale ACK and costs the client a retransmit. */
#pragma clang loop unroll(full)
	for (int i = 0; i < LB_SNAT_TRIES; i++) {
		__u16 port = bpf_htons((__u16)(lo + (off + i * step) % range));

		lb_nat_key(&rk, p, be, &vip->snat_addr, port);
		/* another's in the established tier: the loop below may reclaim it */
		if (!lb_snat_est_free(&rk, nv))
			continue;
		if (lb_nat_update(p, &rk, nv, BPF_NOEXIST) == 0 || lb_nat_is_ours(p, &rk, nv))
			return port;
	}
#pragma clang loop unroll(full)
	for (int i = 0; i < LB_SNAT_TRIES; i++) {
		__u16 port = bpf_htons((__u16)(lo + (off + i * step) % range));

		lb_nat_key(&rk, p, be, &vip->snat_addr, port);
		if (lb_snat_reclaim_est(&rk, port) && lb_snat_reclaim(p, &rk, port) &&
		    lb_nat_update(p, &rk, nv, BPF_ANY) == 0)
			return port;
	}
	return 0;
}

/*
 * Promotion works on the tuple alone, in functions of their own (global
 * BPF functions, verified once): the flow pointer the fast path holds comes
 * from one of two maps, and inlined here every path after it would be
 * verified once per map, which took the program past the verifier's
 * million instructions.
 */

/* The reply tuple of NAT flow f (client tuple k, backend be). */
static __always_inline void lb_flow_reply_key(struct lb_flow_key *rk, const struct lb_flow_key *k,
					      const struct lb_flow *f, const struct lb_backend *be)
{
	__builtin_memset(rk, 0, sizeof(*rk));
	lb_addr_copy(&rk->src, &be->addr);
	lb_addr_copy(&rk->dst, &f->snat_addr);
	rk->sport = be->port;
	rk->dport = f->snat_port;
	rk->proto = k->proto;
	rk->family = k->family;
}

static __always_inline int lb_nat_of(const struct lb_nat *n, const struct lb_flow_key *k)
{
	return n->client_port == k->sport && n->vip_port == k->dport &&
	       lb_addr_eq(&n->client, &k->src) && lb_addr_eq(&n->vip, &k->dst);
}

/*
 * Move new-tier flow f of client tuple k to the established tier, with its
 * reply mapping (rebuilt if the LRU lost it). The LRU entries stay for the
 * caller, who removes them once done with f (lb_ct_promoted). Returns 1
 * when promoted. A full established tier is counted and retried a second
 * later (f->seen); a reply tuple held there for another client (only
 * after the LRU lost this flow's claim) keeps the flow where it is.
 */
__attribute__((noinline)) int lb_ct_promote(const struct lb_flow_key *k, struct lb_flow *f,
					     const struct lb_backend *be, __u32 now)
{
	struct lb_flow_key rk;
	struct lb_nat *nv, *e;
	__u32 zero = 0;

	if (!k || !f || !be || f->seen == now)
		return 0; /* refused this second already */
	f->seen = now;
	if (f->fwd == LB_FWD_NAT) {
		lb_flow_reply_key(&rk, k, f, be);
		nv = lb_flow_lookup_k(&nat4, &nat, &rk);
		if (!nv || !lb_nat_of(nv, k)) {
			nv = bpf_map_lookup_elem(&nat_scratch, &zero);
			if (!nv)
				return 0;
			__builtin_memset(nv, 0, sizeof(*nv));
			lb_addr_copy(&nv->client, &k->src);
			lb_addr_copy(&nv->vip, &k->dst);
			nv->client_port = k->sport;
			nv->vip_port = k->dport;
			nv->backend_id = f->backend_id;
			nv->vip_id = f->vip_id;
		}
		nv->seen = now;
		nv->flags |= LB_FLOW_F_ESTABLISHED;
		if (lb_flow_update_k(&nat4_est, &nat_est, &rk, nv, BPF_NOEXIST)) {
			e = lb_flow_lookup_k(&nat4_est, &nat_est, &rk);
			if (!e) {
				lb_event(LB_EV_CT_FULL);
				return 0;
			}
			if (!lb_nat_of(e, k))
				return 0;
		}
	}
	if (lb_flow_update_k(&ct4_est, &ct_est, k, f, BPF_NOEXIST) &&
	    !lb_flow_lookup_k(&ct4_est, &ct_est, k)) {
		if (f->fwd == LB_FWD_NAT)
			lb_flow_delete_k(&nat4_est, &nat_est, &rk);
		lb_event(LB_EV_CT_FULL);
		return 0;
	}
	lb_event(LB_EV_CT_PROMOTE);
	return 1;
}

/*
 * After lb_ct_promote: the flow's LRU entries go. A FIN or RST of the
 * backend's that another CPU applied to the LRU entry while the flow was
 * copied over (the backend's FIN crosses the client's ACK of the response)
 * is carried over to the established entry, already counted out: else the
 * client's FIN counted the connection out again (backend_conns drifted by
 * -80 over 40k short connections).
 */
__attribute__((noinline)) int lb_ct_promoted(const struct lb_flow_key *k,
					      const struct lb_flow *f,
					      const struct lb_backend *be)
{
	struct lb_flow *g, *e;
	struct lb_flow_key rk;
	struct lb_nat *n;

	if (!k || !f || !be)
		return 0;
	g = lb_flow_lookup_k(&ct4, &ct, k);
	e = lb_flow_lookup_k(&ct4_est, &ct_est, k);
	if (g && e && (g->flags & LB_FLOW_F_CLOSING) && !(e->flags & LB_FLOW_F_CLOSING))
		e->flags = (e->flags & ~LB_FLOW_F_COUNTED) | LB_FLOW_F_CLOSING;
	if (f->fwd == LB_FWD_NAT) {
		lb_flow_reply_key(&rk, k, f, be);
		n = lb_flow_lookup_k(&nat4, &nat, &rk);
		if (n && lb_nat_of(n, k))
			lb_flow_delete_k(&nat4, &nat, &rk);
	}
	lb_flow_delete_k(&ct4, &ct, k);
	return 0;
}

/* A reply of new-tier flow n whose client tuple is k confirms the flow
 * (see the top of this file). */
__attribute__((noinline)) int lb_ct_confirm(const struct lb_flow_key *k, struct lb_nat *n)
{
	struct lb_flow *f;

	if (!k || !n)
		return 0;
	f = lb_flow_lookup_k(&ct4, &ct, k);
	if (!f)
		return 0;
	f->flags |= LB_FLOW_F_CONFIRMED;
	n->flags |= LB_FLOW_F_CONFIRMED;
	return 0;
}

#endif
