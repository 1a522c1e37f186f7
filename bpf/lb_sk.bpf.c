// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-lookup entry point (BPF_PROG_TYPE_SK_LOOKUP, attached to lbd's
 * network namespace): `forward local` delivery to supervised worker
 * instances. When the stack looks for the socket of a new connection (or
 * of a UDP datagram) to a local VIP, this picks an instance with the VIP's
 * method and table (select.h, the same lb_hash.h as XDP, TC and the proxy)
 * and hands the instance's own socket (local_socks, filled by lbd) to the
 * kernel. The packet is never rewritten:
 *   - the connection's local address is the VIP's, so replies leave as
 *     VIP:port -> client with nothing to reverse (no TC egress program, no
 *     per-flow state, no client port ever mistaken for another flow);
 *   - GRO, checksum offload and TSO work as for any local socket;
 *   - established packets never run this (the kernel finds their socket
 *     first): the cost is one lookup per connection, not per packet;
 *   - the node's own connections to the VIP take the same path (lo).
 * The XDP/TC programs count a local VIP's packets and pass them up as they
 * are. The first design rewrote the port in XDP and reversed it at TC
 * egress: one 512 MiB stream ran at 0.32-0.55x of direct (make bench,
 * section workers; 0.85-1.06x with this program), and its BPF time per
 * short HTTP request was about 6.5 us against 3 us for direct traffic
 * through the same programs (kernel.bpf_stats_enabled; this program: about
 * 2.6 us against 1.8 us): every reply needed a writable (uncloned) skb and
 * checksum helpers, every flow two LRU inserts, and a client port reused
 * towards the instance port directly could have its replies rewritten by a
 * stale entry.
 *
 * What this gives up, for local VIPs only: least_conn has no connection
 * counts (no conntrack for these flows) and picks at random by weight;
 * passive health has no SYN/RST counts (the supervisor knows its
 * instances); per-backend counters have new flows, not packets or bytes
 * (the VIP's packets are counted by XDP/TC).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/select.h"
#include "lib/stats.h"

/* Slots tried after the chosen one when its instance has no socket (it
 * just died, and its table is not rebuilt yet; or its socket is not
 * registered yet): another instance takes the connection. */
#define LB_SK_PROBES 4

/* The socket of instance be_id, unless it is gone or marked down (an
 * instance that died is marked down at once, before its table is rebuilt). */
static __always_inline struct bpf_sock *lb_sk_get(__u32 be_id, const struct lb_pkt *p)
{
	struct lb_sock_key k = {
		.backend_id = be_id,
		.family = p->key.family,
		.proto = p->key.proto,
	};
	struct lb_backend *be = bpf_map_lookup_elem(&backends, &be_id);

	if (!be || be->state == LB_BE_UNUSED || be->state == LB_BE_DOWN)
		return NULL;
	return bpf_map_lookup_elem(&local_socks, &k);
}

/* The lookup's tuple in lb_flow_key form: the packet's, client -> VIP.
 * Every field is read up front, each a volatile load: the verifier takes
 * context loads at fixed offsets only, and the compiler would otherwise
 * turn a choice between two fields into one load through a computed
 * pointer. */
#define LB_SK_LOAD(f) (*(volatile const __u32 *)&ctx->f)

static __always_inline int lb_sk_key(const struct bpf_sk_lookup *ctx, struct lb_pkt *p)
{
	__u32 family = LB_SK_LOAD(family), rip4 = LB_SK_LOAD(remote_ip4),
	      lip4 = LB_SK_LOAD(local_ip4);
	__u32 r0 = LB_SK_LOAD(remote_ip6[0]), r1 = LB_SK_LOAD(remote_ip6[1]),
	      r2 = LB_SK_LOAD(remote_ip6[2]), r3 = LB_SK_LOAD(remote_ip6[3]),
	      l0 = LB_SK_LOAD(local_ip6[0]), l1 = LB_SK_LOAD(local_ip6[1]),
	      l2 = LB_SK_LOAD(local_ip6[2]), l3 = LB_SK_LOAD(local_ip6[3]);

	p->key.proto = ctx->protocol;
	p->key.sport = ctx->remote_port;
	p->key.dport = bpf_htons(ctx->local_port);
	if (family == AF_INET) {
		p->key.family = LB_AF_INET;
		p->key.src.v4 = rip4;
		p->key.dst.v4 = lip4;
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	p->key.family = LB_AF_INET6;
	p->key.src.v6[0] = r0;
	p->key.src.v6[1] = r1;
	p->key.src.v6[2] = r2;
	p->key.src.v6[3] = r3;
	p->key.dst.v6[0] = l0;
	p->key.dst.v6[1] = l1;
	p->key.dst.v6[2] = l2;
	p->key.dst.v6[3] = l3;
	return 0;
}

static __always_inline int lb_sk_drop(__u32 reason)
{
	lb_count(&drop_stats, reason);
	return SK_DROP;
}

SEC("sk_lookup")
int lb_sk_lookup(struct bpf_sk_lookup *ctx)
{
	struct lb_backend_stats *bs;
	struct lb_pkt p = {};
	struct lb_config *cfg;
	struct bpf_sock *sk;
	struct lb_vip *vip;
	__u32 zero = 0, be_id, h, n;
	void *tbl;
	int err;

	if (lb_sk_key(ctx, &p))
		return SK_PASS;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SK_PASS;
	vip = lb_vip_lookup(&p, cfg);
	if (!vip || vip->fwd != LB_FWD_LOCAL)
		return SK_PASS; /* not ours: the stack's own lookup goes on */
	/* No usable instance: drop, so that TCP retries the SYN, rather than
	 * let the stack answer RST for a VIP port nobody listens on. */
	err = lb_select(&p, vip, cfg->hash_seed, &be_id);
	if (err)
		return lb_sk_drop(err);
	sk = lb_sk_get(be_id, &p);
	if (!sk) {
		n = vip->table_size;
		tbl = bpf_map_lookup_elem(&vip_tables, &vip->id);
		if (!tbl || !n)
			return lb_sk_drop(LB_DROP_NO_BACKEND);
		h = lb_hash_flow(&p.key, cfg->hash_seed);
		for (int i = 1; i <= LB_SK_PROBES && !sk; i++) {
			if (lb_table_get(tbl, (h + i) % n, &be_id))
				break;
			sk = lb_sk_get(be_id, &p);
		}
		if (!sk)
			return lb_sk_drop(LB_DROP_NO_BACKEND);
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return lb_sk_drop(LB_DROP_NO_BACKEND);
	/* its packets are counted by XDP/TC, which pass them up; the VIP's
	 * new flows are its backends' (lib/stats.h) */
	lb_event(LB_EV_LOCAL_SOCK);
	bs = lb_backend_stats(be_id);
	if (bs) {
		bs->new_flows++;
		if (p.key.proto == IPPROTO_TCP)
			bs->syn++;
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
