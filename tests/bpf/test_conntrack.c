// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection tracking's two tiers (bpf/lib/conntrack.h) through the real
 * object: a new flow lives in the LRU tier until confirmed, is then moved to
 * the established tier with its reply mapping, keeps its backend and SNAT
 * port, and a flood of new flows cannot evict it; a full established tier
 * refuses promotions (counted) and the flows go on; lbd's collection
 * (lb_dp_ct_gc) removes idle established flows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "harness.h"

static const struct h_be be4_one[] = { { .id = 1, .addr = H_BE4, .port = 8080 } };
static const struct h_be be6_one[] = { { .id = 1, .addr = H_BE6, .port = 8080 } };
static const struct h_be be4_two[] = { { .id = 2, .addr = H_BE4, .port = 8080 } };
static const struct lb_ct_timeouts tmo = { .tcp = 900, .udp = 300, .closed = 30 };

static struct h_svc svc(int fam, uint8_t proto, uint8_t fwd)
{
	return (struct h_svc){
		.vip_id = 7, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = fwd,
		.be = fam == 6 ? be6_one : be4_one, .nbe = 1,
	};
}

/* Is k in the map of this tier and kind (its family's)? */
static bool in_map(bool est, bool nat, const struct lb_flow_key *k)
{
	static const char *const names[2][2][2] = {
		{ { LB_MAP_CT, LB_MAP_CT4 }, { LB_MAP_NAT, LB_MAP_NAT4 } },
		{ { LB_MAP_CT_EST, LB_MAP_CT4_EST }, { LB_MAP_NAT_EST, LB_MAP_NAT4_EST } },
	};
	bool v4 = k->family == LB_AF_INET;
	char val[sizeof(struct lb_nat) + sizeof(struct lb_flow)];
	struct lb_flow_key4 k4;

	lb_flow_key4(&k4, k);
	return bpf_map_lookup_elem(lb_dp_map_fd(h_dp(), names[est][nat][v4]),
				   v4 ? (void *)&k4 : (void *)k, val) == 0;
}

/* Remove client flow k from a tier, as lbd's collection or the LRU would. */
static void ct_remove(bool est, const struct lb_flow_key *k)
{
	bool v4 = k->family == LB_AF_INET;
	struct lb_flow_key4 k4;
	const char *name = est ? (v4 ? LB_MAP_CT4_EST : LB_MAP_CT_EST) : (v4 ? LB_MAP_CT4 : LB_MAP_CT);

	lb_flow_key4(&k4, k);
	assert_int_equal(bpf_map_delete_elem(lb_dp_map_fd(h_dp(), name), v4 ? (void *)&k4 : (void *)k),
			 0);
}

static struct lb_flow_key client_key(const struct h_spec *in)
{
	struct lb_flow_key k = { .sport = htons(in->sport), .dport = htons(in->dport),
				 .proto = in->proto, .family = (__u8)in->family };

	h_addr(in->family, in->src, &k.src);
	h_addr(in->family, in->dst, &k.dst);
	return k;
}

static struct lb_flow_key reply_key(const struct h_spec *in, uint16_t port)
{
	struct lb_flow_key k = { .sport = htons(8080), .dport = htons(port),
				 .proto = in->proto, .family = (__u8)in->family };

	h_addr(in->family, in->family == 6 ? H_BE6 : H_BE4, &k.src);
	h_addr(in->family, in->family == 6 ? H_SNAT6 : H_SNAT4, &k.dst);
	return k;
}

/* Where the flow of in is: 1 established (ct and nat), 0 new, -1 nowhere
 * or split between the tiers. */
static int tier(const struct h_spec *in, uint16_t port, bool nat)
{
	struct lb_flow_key k = client_key(in), rk = reply_key(in, port);
	bool e = in_map(true, false, &k), n = in_map(false, false, &k);

	if (nat && (in_map(true, true, &rk) != e || in_map(false, true, &rk) != n))
		return -1;
	return e && !n ? 1 : n && !e ? 0 : -1;
}

/* Client -> VIP, full NAT: exactly the frame for backend 1; its SNAT port. */
static uint16_t fwd(const struct h_spec *in)
{
	struct h_pkt pin, out, want;
	struct h_spec w;
	uint16_t port;
	int v;

	h_build(in, &pin);
	v = h_run(&pin, h_ifindex_client(), &out);
	assert_int_equal(v, XDP_REDIRECT);
	port = ntohs(h_port(&out, 0));
	w = h_to_backend(in, port);
	h_build(&w, &want);
	h_expect(v, XDP_REDIRECT, &out, &want);
	return port;
}

/* Backend -> SNAT port with these TCP flags: exactly the frame for the
 * client of in. */
static void reply(const struct h_spec *in, uint16_t port, uint8_t flags)
{
	struct h_spec r = h_from_backend(in->family, in->proto, port), w;
	struct h_pkt pin, out, want;

	r.tcp_flags = flags;
	h_build(&r, &pin);
	w = r;
	w.src = in->dst;
	w.dst = in->src;
	w.sport = in->dport;
	w.dport = in->sport;
	w.ttl = 62;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT, &out, &want);
}

/* A TCP connection through full NAT up to its promotion; its SNAT port. */
static uint16_t tcp_promoted(struct h_spec *in)
{
	uint64_t p0 = h_event(LB_EV_CT_PROMOTE);
	uint16_t port = fwd(in);                 /* SYN */

	assert_int_equal(tier(in, port, true), 0);
	reply(in, port, 0x12);                   /* SYN-ACK: the backend takes any SYN */
	in->tcp_flags = 0x10;
	in->seq++;
	assert_int_equal(fwd(in), port);         /* ACK: not confirmed yet */
	assert_int_equal(tier(in, port, true), 0);
	reply(in, port, 0x18);                   /* data: a connection the backend has */
	assert_int_equal(tier(in, port, true), 0);
	assert_int_equal(fwd(in), port);         /* the client again: promoted */
	assert_int_equal(tier(in, port, true), 1);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), p0 + 1);
	return port;
}

static void tcp_promotion(int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 41000, 80);
	uint16_t port;

	h_svc_add(&s);
	port = tcp_promoted(&in);
	/* From the established tier: the same translation both ways. */
	assert_int_equal(fwd(&in), port);
	reply(&in, port, 0x10);
	assert_int_equal(tier(&in, port, true), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_conns(1), 1);
	/* a RST from the backend closes it, counted out once */
	reply(&in, port, 0x14);
	assert_int_equal(h_conns(1), 0);
}

static void test_tcp4_promotion(void **st) { (void)st; tcp_promotion(4); }
static void test_tcp6_promotion(void **st) { (void)st; tcp_promotion(6); }

/* UDP: a reply, then the client again. A one-shot request/reply stays. */
static void test_udp_promotion(void **st)
{
	struct h_svc s = svc(4, IPPROTO_UDP, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 41001, 80);
	struct h_spec dns = h_from_client(4, IPPROTO_UDP, 41002, 80);
	uint16_t port, dport;

	(void)st;
	h_svc_add(&s);
	port = fwd(&in);
	assert_int_equal(fwd(&in), port);        /* twice, nothing back: new */
	assert_int_equal(tier(&in, port, true), 0);
	reply(&in, port, 0);
	assert_int_equal(fwd(&in), port);
	assert_int_equal(tier(&in, port, true), 1);
	reply(&in, port, 0);
	dport = fwd(&dns);
	reply(&dns, dport, 0);
	assert_int_equal(tier(&dns, dport, true), 0);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 1);
}

/* DSR sees no replies: the client's first packet after its SYN. */
static void test_dsr_promotion(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, LB_FWD_DSR);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41003, 80);
	struct h_pkt pin, out;

	(void)st;
	h_svc_add(&s);
	for (int i = 0; i < 2; i++) { /* SYN and its retransmit */
		h_build(&in, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
		assert_int_equal(tier(&in, 0, false), 0);
	}
	in.tcp_flags = 0x10;
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(tier(&in, 0, false), 1);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 1);
}

/* Room for 4 established flows a family: the 5th and 6th confirmed flows
 * are refused (counted, once a second each) and go on from the LRU tier. */
static void test_established_full(void **st)
{
	struct h_svc s = svc(4, IPPROTO_UDP, LB_FWD_NAT);
	struct h_spec in[6];
	uint16_t port[6];

	(void)st;
	h_dp_down(NULL);
	assert_int_equal(h_dp_open(4, 0), 0);
	h_svc_add(&s);
	for (int i = 0; i < 6; i++) {
		in[i] = h_from_client(4, IPPROTO_UDP, (uint16_t)(42000 + i), 80);
		port[i] = fwd(&in[i]);
		reply(&in[i], port[i], 0);
		assert_int_equal(fwd(&in[i]), port[i]);
		assert_int_equal(tier(&in[i], port[i], true), i < 4 ? 1 : 0);
	}
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 4);
	assert_int_equal(h_event(LB_EV_CT_FULL), 2);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(fwd(&in[i]), port[i]);
		reply(&in[i], port[i], 0);
	}
	assert_int_equal(h_event(LB_EV_CT_FULL), 2); /* same second: not again */
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 6);
}

/* lbd's collection: idle past the protocol's timeout (counted from lbd's
 * start at the latest), or past the closed timeout after a FIN. */
static void test_gc_removes_idle(void **st)
{
	struct h_svc su = svc(4, IPPROTO_UDP, LB_FWD_NAT), stc = svc(4, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec u = h_from_client(4, IPPROTO_UDP, 41010, 80);
	struct h_spec t1 = h_from_client(4, IPPROTO_TCP, 41011, 80);
	struct h_spec t2 = h_from_client(4, IPPROTO_TCP, 41012, 80);
	struct lb_ct_gc_stats gs;
	struct lb_config cfg;
	uint16_t pu, p1, p2;
	__u32 now;

	(void)st;
	stc.vip_id = 8;
	stc.be = be4_two;
	h_svc_add(&su);
	h_svc_add(&stc);
	pu = fwd(&u);
	reply(&u, pu, 0);
	assert_int_equal(fwd(&u), pu);
	p1 = tcp_promoted(&t1);
	p2 = tcp_promoted(&t2);
	t2.tcp_flags = 0x11; /* FIN */
	assert_int_equal(fwd(&t2), p2);
	assert_int_equal(lb_dp_get_config(h_dp(), &cfg), 0);
	now = cfg.now;

	/* 31 s later: only the closed flow goes */
	assert_int_equal(lb_dp_ct_gc(h_dp(), now + 31, 0, &tmo, &gs), 0);
	assert_int_equal(gs.flows, 1);
	assert_int_equal(gs.nat, 1);
	assert_int_equal(gs.kept, 2);
	assert_int_equal(tier(&t2, p2, true), -1);
	assert_int_equal(tier(&t1, p1, true), 1);
	/* 301 s: the UDP flow too, unless lbd started 100 s after it */
	assert_int_equal(lb_dp_ct_gc(h_dp(), now + 301, now + 100, &tmo, &gs), 0);
	assert_int_equal(gs.flows, 0);
	assert_int_equal(lb_dp_ct_gc(h_dp(), now + 301, 0, &tmo, &gs), 0);
	assert_int_equal(gs.flows, 1);
	assert_int_equal(gs.kept, 1);
	assert_int_equal(tier(&u, pu, true), -1);
	/* its next datagram is a new flow, on the same backend and port */
	assert_int_equal(fwd(&u), pu);
	assert_int_equal(tier(&u, pu, true), 0);
	/* replies keep a flow whose client is silent: one 800 s later */
	cfg.now = now + 800;
	assert_int_equal(bpf_map_update_elem(lb_dp_map_fd(h_dp(), LB_MAP_CONFIG), &(__u32){ 0 },
					     &cfg, BPF_ANY), 0);
	reply(&t1, p1, 0x10);
	assert_int_equal(lb_dp_ct_gc(h_dp(), now + 901, 0, &tmo, &gs), 0);
	assert_int_equal(tier(&t1, p1, true), 1);
	assert_int_equal(lb_dp_ct_gc(h_dp(), now + 1701, 0, &tmo, &gs), 0);
	assert_int_equal(tier(&t1, p1, true), -1);
}

/* An established flow keeps its backend and SNAT port while 8000 new
 * flows churn a 1024-flow LRU tier. */
static void test_flood_keeps_established(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41020, 80), f;
	struct lb_ct_counts c;
	struct h_pkt pin, out;
	uint16_t port;
	int ok = 0;

	(void)st;
	h_dp_down(NULL);
	assert_int_equal(h_dp_open(0, 1024), 0);
	h_svc_add(&s);
	port = tcp_promoted(&in);
	f = h_from_client(4, IPPROTO_TCP, 0, 80);
	for (int i = 0; i < 8000; i++) {
		f.sport = (uint16_t)(10000 + i);
		h_build(&f, &pin);
		ok += h_run(&pin, h_ifindex_client(), &out) == XDP_REDIRECT;
	}
	assert_int_equal(ok, 8000);
	assert_int_equal(lb_dp_ct_counts(h_dp(), &c), 0);
	assert_true(c.new_flows <= 1024);
	assert_int_equal(c.established, 1);
	assert_int_equal(fwd(&in), port);
	reply(&in, port, 0x10);
	assert_int_equal(tier(&in, port, true), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 8001);
}

/* One SNAT port: established flows hold it while open; a new flow of
 * another client takes it once the holder closed (FIN) or lost its
 * established entry (reselected), with no wait for lbd's collection. Short
 * connections from reused client ports held half of a backend's ports for
 * the 30 s of conntrack_timeout closed= and lost SYNs as snat_exhausted. */
static void snat_port_from_established(int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec a = h_from_client(fam, IPPROTO_TCP, 41030, 80);
	struct h_spec b = h_from_client(fam, IPPROTO_TCP, 41031, 80);
	struct h_spec c = h_from_client(fam, IPPROTO_TCP, 41032, 80);
	struct lb_flow_key ka = client_key(&a), kb = client_key(&b);
	struct h_pkt pin, out;

	h_config(5000, 5000, 1);
	h_svc_add(&s);
	assert_int_equal(tcp_promoted(&a), 5000);
	/* open: b's SYN finds no port */
	h_build(&b, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_SNAT_EXHAUSTED), 1);
	assert_int_equal(tier(&a, 5000, true), 1);
	/* a's client closes: b gets the port, a's entries go */
	a.tcp_flags = 0x11;
	assert_int_equal(fwd(&a), 5000);
	assert_int_equal(fwd(&b), 5000);
	assert_int_equal(h_drops(LB_DROP_SNAT_EXHAUSTED), 1);
	assert_false(in_map(true, false, &ka));
	assert_int_equal(tier(&b, 5000, true), 0);
	/* b promoted, then its established entry removed (as a reselection
	 * does, which leaves the reply mapping): c takes the port */
	reply(&b, 5000, 0x12);
	b.tcp_flags = 0x10;
	assert_int_equal(fwd(&b), 5000);
	reply(&b, 5000, 0x18);
	assert_int_equal(fwd(&b), 5000);
	assert_int_equal(tier(&b, 5000, true), 1);
	ct_remove(true, &kb);
	assert_int_equal(fwd(&c), 5000);
	assert_int_equal(tier(&c, 5000, true), 0);
	reply(&c, 5000, 0x12);
	assert_int_equal(h_drops(LB_DROP_SNAT_EXHAUSTED), 1);
}

static void test_snat_port_from_established4(void **st) { (void)st; snat_port_from_established(4); }
static void test_snat_port_from_established6(void **st) { (void)st; snat_port_from_established(6); }

/* A client port reused for a new connection gets its own SNAT port back,
 * though its closed flow still holds it in the established tier: the
 * backend may hold the old connection in TIME_WAIT, which a SYN of the
 * same client tuple passes and one of another tuple fails (PAWS) half the
 * time. Skipping it sent each connection of the tuple to a new port, and
 * at ~10k connections a second the reclaim handed them to other tuples
 * (test_lbd's stream lost 1 connection in 30k to a timeout). The count
 * goes up and down once per connection. */
static void snat_port_own_again(int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec a = h_from_client(fam, IPPROTO_TCP, 41040, 80);
	uint16_t port;

	h_config(5000, 5001, 1);
	h_svc_add(&s);
	port = tcp_promoted(&a);
	assert_int_equal(h_conns(1), 1);
	a.tcp_flags = 0x11;                      /* the client closes */
	assert_int_equal(fwd(&a), port);
	reply(&a, port, 0x11);
	assert_int_equal(h_conns(1), 0);
	a.tcp_flags = 0x02;                      /* and opens again */
	a.seq += 100000;
	assert_int_equal(fwd(&a), port);
	assert_int_equal(tier(&a, port, true), 0);
	assert_int_equal(h_conns(1), 1);
	reply(&a, port, 0x11);                   /* a late FIN of the old one */
	assert_int_equal(h_conns(1), 0);
	a.tcp_flags = 0x11;
	assert_int_equal(fwd(&a), port);
	assert_int_equal(h_conns(1), 0);
}

static void test_snat_port_own_again4(void **st) { (void)st; snat_port_own_again(4); }
static void test_snat_port_own_again6(void **st) { (void)st; snat_port_own_again(6); }

/* Connections whose flows went with no FIN or RST seen (lbd's collection
 * of idle flows, the LRU) are counted out by lbd's sweep, once each, on
 * their backend; live ones stay counted. They stayed counted for good, and
 * least_conn shunned a backend for connections long gone. */
static void test_conn_sweep(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec a = h_from_client(4, IPPROTO_TCP, 41050, 80);
	struct h_spec b = h_from_client(4, IPPROTO_TCP, 41051, 80);
	struct lb_flow_key ka = client_key(&a), kb = client_key(&b);
	__u64 gone = 9;

	(void)st;
	h_svc_add(&s);
	tcp_promoted(&a);                        /* established */
	fwd(&b);                                 /* a SYN: the new tier */
	assert_int_equal(h_conns(1), 2);
	assert_int_equal(lb_dp_conn_sweep(h_dp(), &gone), 0);
	assert_int_equal(gone, 0);
	assert_int_equal(h_conns(1), 2);
	ct_remove(true, &ka);
	assert_int_equal(lb_dp_conn_sweep(h_dp(), &gone), 0);
	assert_int_equal(gone, 1);
	assert_int_equal(h_conns(1), 1);
	assert_int_equal(lb_dp_conn_sweep(h_dp(), &gone), 0);
	assert_int_equal(gone, 0);
	assert_int_equal(h_conns(1), 1);
	ct_remove(false, &kb);
	assert_int_equal(lb_dp_conn_sweep(h_dp(), &gone), 0);
	assert_int_equal(gone, 1);
	assert_int_equal(h_conns(1), 0);
}

/* lbd releases backend slot 1 and gives it to a new backend, as
 * `lbctl backend remove` then `add` do: a new generation each time. */
static void slot_reuse(void)
{
	struct lb_backend b;

	assert_int_equal(lb_dp_backend_get(h_dp(), 1, &b), 0);
	b.gen++;
	b.state = LB_BE_UNUSED;
	assert_int_equal(lb_dp_backend_set(h_dp(), 1, &b), 0);
	b.gen++;
	b.state = LB_BE_UP;
	assert_int_equal(lb_dp_backend_set(h_dp(), 1, &b), 0);
}

/* A reused backend slot starts with no connections, and those of its
 * earlier backend that close later (a FIN through the reply path, which
 * does not look at the backend; lbd's sweep) are counted out of nothing.
 * The new backend inherited the old one's live connections (least_conn
 * shunned it for as long as they lived) or went below zero. */
static void test_conn_slot_reuse(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, LB_FWD_NAT);
	struct h_spec a = h_from_client(4, IPPROTO_TCP, 41060, 80);
	struct h_spec b = h_from_client(4, IPPROTO_TCP, 41061, 80);
	struct h_spec c = h_from_client(4, IPPROTO_TCP, 41062, 80);
	struct lb_flow_key kb = client_key(&b);
	uint16_t port;
	__u64 gone = 9;

	(void)st;
	h_svc_add(&s);
	port = tcp_promoted(&a);                 /* established */
	fwd(&b);                                 /* a SYN: the new tier */
	assert_int_equal(h_conns(1), 2);
	slot_reuse();
	assert_int_equal(h_conns(1), 0);
	reply(&a, port, 0x11);                   /* the old backend's FIN */
	assert_int_equal(h_conns(1), 0);
	ct_remove(false, &kb);
	assert_int_equal(lb_dp_conn_sweep(h_dp(), &gone), 0);
	assert_int_equal(gone, 0);
	assert_int_equal(h_conns(1), 0);
	/* the new backend's own connections count as ever */
	fwd(&c);
	assert_int_equal(h_conns(1), 1);
	c.tcp_flags = 0x04;                      /* RST */
	c.seq++;
	fwd(&c);
	assert_int_equal(h_conns(1), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tcp4_promotion),
		T(test_tcp6_promotion),
		T(test_udp_promotion),
		T(test_dsr_promotion),
		T(test_established_full),
		T(test_gc_removes_idle),
		T(test_flood_keeps_established),
		T(test_snat_port_from_established4),
		T(test_snat_port_from_established6),
		T(test_snat_port_own_again4),
		T(test_snat_port_own_again6),
		T(test_conn_sweep),
		T(test_conn_slot_reuse),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
