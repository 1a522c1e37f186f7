// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP full NAT and DSR through the real object: new flows, replies,
 * established flows across backend changes, TTL, UDP checksum rules, VLAN,
 * IPv4 options, IPv6 extension headers, ICMP errors, counters. Every expected
 * frame is built from the expected fields with the harness's builder.
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

#define VIP4 H_VIP4
#define VIP6 H_VIP6
#define CL4  H_CL4
#define BE4  H_BE4
#define BE6  H_BE6

static const struct h_be be4_one[] = { { .id = 1, .addr = BE4, .port = 8080 } };
static const struct h_be be6_one[] = { { .id = 1, .addr = BE6, .port = 8080 } };

static struct h_svc svc(int fam, uint8_t proto, uint16_t port, uint8_t fwd)
{
	return (struct h_svc){
		.vip_id = 7, .family = fam, .vip = fam == 6 ? VIP6 : VIP4, .port = port,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = fwd,
		.be = fam == 6 ? be6_one : be4_one, .nbe = 1,
	};
}

/* The SNAT port in a forwarded frame: in the configured range, and the nat
 * map holds the reply tuple pointing back at the client. */
static uint16_t snat_port_of(const struct h_pkt *out, const struct h_spec *in,
			     uint16_t lo, uint16_t hi)
{
	uint16_t port = ntohs(h_port(out, 0));
	struct lb_flow_key k = { .sport = htons(8080), .dport = htons(port),
				 .proto = in->proto, .family = (__u8)in->family };
	union lb_addr client;
	struct lb_nat n;

	assert_in_range(port, lo, hi);
	h_addr(in->family, in->family == 6 ? BE6 : BE4, &k.src);
	h_addr(in->family, in->family == 6 ? H_SNAT6 : H_SNAT4, &k.dst);
	h_addr(in->family, in->src, &client);
	assert_int_equal(lb_dp_flow_lookup(h_dp(), LB_MAP_NAT, &k, &n), 0);
	assert_memory_equal(&n.client, &client, sizeof(client));
	assert_int_equal(ntohs(n.client_port), in->sport);
	assert_int_equal(ntohs(n.vip_port), in->dport);
	return port;
}

/* Send `in` from the client; check the frame sent to the backend exactly.
 * Returns the SNAT port. */
static uint16_t forward_ok(const struct h_spec *in)
{
	struct h_pkt pin, out, want;
	struct h_spec w;
	uint16_t port;
	int v;

	h_build(in, &pin);
	v = h_run(&pin, h_ifindex_client(), &out);
	port = snat_port_of(&out, in, LB_SNAT_PORT_LO, LB_SNAT_PORT_HI);
	w = h_to_backend(in, port);
	h_build(&w, &want);
	h_expect(v, XDP_REDIRECT, &out, &want);
	return port;
}

static void new_flow(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, proto, 40000, 80);
	uint16_t p1, p2;

	h_svc_add(&s);
	p1 = forward_ok(&in);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_REDIRECT), 1);
	/* The next packet of the flow takes the same translation. */
	in.tcp_flags = 0x10;
	in.seq++;
	in.ack = 5000;
	p2 = forward_ok(&in);
	assert_int_equal(p1, p2);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

static void test_tcp4_new_flow(void **st) { (void)st; new_flow(4, IPPROTO_TCP); }
static void test_udp4_new_flow(void **st) { (void)st; new_flow(4, IPPROTO_UDP); }
static void test_tcp6_new_flow(void **st) { (void)st; new_flow(6, IPPROTO_TCP); }
static void test_udp6_new_flow(void **st) { (void)st; new_flow(6, IPPROTO_UDP); }

static void reply(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, proto, 40001, 80), r, w;
	struct h_pkt pin, out, want;
	struct lb_vip_stats vs;
	uint16_t port;
	int v;

	h_svc_add(&s);
	port = forward_ok(&in);
	r = h_from_backend(fam, proto, port);
	h_build(&r, &pin);
	v = h_run(&pin, h_ifindex_backend(), &out);
	/* VIP:80 -> client:40001, on the client side, TTL 62. */
	w = r;
	w.src = in.dst;
	w.dst = in.src;
	w.sport = 80;
	w.dport = 40001;
	w.ttl = 62;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(v, XDP_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_REPLY), 1);
	assert_int_equal(lb_dp_vip_stats(h_dp(), 7, NULL, 0, &vs), 0);
	assert_int_equal(vs.reply_packets, 1);
	assert_int_equal(vs.reply_bytes, want.len - want.l3off);
}

static void test_tcp4_reply(void **st) { (void)st; reply(4, IPPROTO_TCP); }
static void test_udp4_reply(void **st) { (void)st; reply(4, IPPROTO_UDP); }
static void test_tcp6_reply(void **st) { (void)st; reply(6, IPPROTO_TCP); }
static void test_udp6_reply(void **st) { (void)st; reply(6, IPPROTO_UDP); }

/* A reply to a SNAT port that no flow owns is not ours. */
static void test_reply_unknown_port_passes(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec r = h_from_backend(4, IPPROTO_TCP, 2000);
	struct h_pkt pin, out;

	(void)st;
	h_svc_add(&s);
	h_build(&r, &pin);
	h_expect(h_run(&pin, h_ifindex_backend(), &out), XDP_PASS, &out, &pin);
}

static void test_established_keeps_backend(void **st)
{
	static const struct h_be two[] = {
		{ .id = 1, .addr = BE4, .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	static const struct h_be other[] = { { .id = 2, .addr = "198.18.1.2", .port = 8080 } };
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40002, 80), in2;
	struct h_pkt pin, out;
	uint32_t id;
	uint16_t port;

	(void)st;
	h_svc_add(&s);
	port = forward_ok(&in);
	/* The set changes under the flow: backend 1 leaves the table. */
	h_svc_backends(&s, two, 2);
	h_svc_backends(&s, other, 1);
	in.tcp_flags = 0x10;
	assert_int_equal(forward_ok(&in), port);
	assert_int_equal(h_flow_backend(4, CL4, 40002, VIP4, 80, IPPROTO_TCP, &id), 0);
	assert_int_equal(id, 1);
	/* A new flow goes to the new set. */
	in2 = h_from_client(4, IPPROTO_TCP, 40003, 80);
	h_build(&in2, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, other, 1), 0);
	/* Backend 1 marked down (reset semantics): the flow moves. */
	h_backend_state(1, LB_BE_DOWN);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, other, 1), 0);
	assert_int_equal(h_event(LB_EV_FLOW_RESELECT), 1);
	assert_int_equal(h_flow_backend(4, CL4, 40002, VIP4, 80, IPPROTO_TCP, &id), 0);
	assert_int_equal(id, 2);
}

/* LRU pressure evicted the flow's conntrack entry but not its nat entry:
 * the next packet recreates the flow with the same SNAT port (the nat entry
 * is its own), not the next free one, which the backend would reset. */
static void test_evicted_flow_keeps_snat_port(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40004, 80);
	struct lb_flow_key k = { .sport = htons(40004), .dport = htons(80),
				 .proto = IPPROTO_TCP, .family = 4 };
	struct lb_flow_key4 k4;
	uint16_t port;

	(void)st;
	h_svc_add(&s);
	port = forward_ok(&in);
	h_addr(4, CL4, &k.src);
	h_addr(4, VIP4, &k.dst);
	lb_flow_key4(&k4, &k);
	assert_int_equal(bpf_map_delete_elem(lb_dp_map_fd(h_dp(), LB_MAP_CT4), &k4), 0);
	in.tcp_flags = 0x10;
	in.seq++;
	assert_int_equal(forward_ok(&in), port);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 2);
	/* Another client's flow never takes a port that is still in use. */
	in = h_from_client(4, IPPROTO_TCP, 40005, 80);
	assert_int_not_equal(forward_ok(&in), port);
}

/* Half of a 1000-port SNAT range taken by 500 flows from one client to one
 * backend: with each flow probing its own sequence (double hashing) almost
 * every flow finds one of its 8 ports free. Consecutive probes let taken
 * runs merge and dropped 6 of these 500; double hashing drops none
 * (deterministic: fixed seed and flows). */
static void test_snat_ports_half_used(void **st)
{
	struct h_svc s = svc(4, IPPROTO_UDP, 80, LB_FWD_NAT);
	struct h_pkt pin, out;
	int ok = 0;

	(void)st;
	h_config(10000, 10999, 0x5eed);
	h_svc_add(&s);
	for (int i = 0; i < 500; i++) {
		struct h_spec in = h_from_client(4, IPPROTO_UDP, (uint16_t)(20000 + i), 80);

		h_build(&in, &pin);
		ok += h_run(&pin, h_ifindex_client(), &out) == XDP_REDIRECT;
	}
	print_message("    %d of 500 new flows got a port, %llu dropped\n", ok,
		      (unsigned long long)h_drops(LB_DROP_SNAT_EXHAUSTED));
	assert_true(h_drops(LB_DROP_SNAT_EXHAUSTED) <= 2);
	assert_int_equal(ok + (int)h_drops(LB_DROP_SNAT_EXHAUSTED), 500);
}

/* Draining: no new flows, established ones stay. */
static void test_drain_keeps_flows(void **st)
{
	static const struct h_be two[] = {
		{ .id = 1, .addr = BE4, .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40004, 80);
	struct h_pkt pin, out;

	(void)st;
	h_svc_add(&s);
	forward_ok(&in);
	h_backend_state(1, LB_BE_DRAIN);
	h_svc_backends(&s, two + 1, 1); /* userspace drops it from the table */
	in.tcp_flags = 0x10;
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, two, 2), 0);
}

/* A SYN that reuses a closed flow's tuple is a new connection: the table
 * of now places it, not the flow that had the tuple before. */
static void test_reused_tuple_follows_table(void **st)
{
	static const struct h_be other[] = { { .id = 2, .addr = "198.18.1.2", .port = 8080 } };
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40019, 80);
	struct h_pkt pin, out;
	uint32_t id;

	(void)st;
	h_svc_add(&s);
	forward_ok(&in);
	/* backend 1 leaves the table but stays up (a backup again, weight 0) */
	h_svc_backends(&s, other, 1);
	in.tcp_flags = 0x10;
	forward_ok(&in); /* established: stays */
	in.tcp_flags = 0x11;
	forward_ok(&in); /* client FIN */
	assert_int_equal(h_event(LB_EV_FLOW_RESELECT), 0);
	in.tcp_flags = 0x02; /* the client reuses its port */
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, other, 1), 0);
	assert_int_equal(h_event(LB_EV_FLOW_RESELECT), 1);
	assert_int_equal(h_flow_backend(4, CL4, 40019, VIP4, 80, IPPROTO_TCP, &id), 0);
	assert_int_equal(id, 2);
}

/* A SYN on a flow its backend never answered, once that backend drains
 * (passive health after unanswered SYNs), is placed by the table of now:
 * the client gave up and reused its port, or retransmits a SYN nobody
 * answered; no connection is there to keep. */
static void test_unanswered_syn_leaves_drained(void **st)
{
	static const struct h_be two[] = {
		{ .id = 1, .addr = BE4, .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40021, 80);
	struct h_pkt pin, out;

	(void)st;
	h_svc_add(&s);
	forward_ok(&in); /* SYN to backend 1, never answered */
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, two, 2), 0); /* up: stays */
	assert_int_equal(h_event(LB_EV_FLOW_RESELECT), 0);
	h_backend_state(1, LB_BE_DRAIN);
	h_svc_backends(&s, two + 1, 1);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_which_backend(&out, 4, two, 2), 1);
	assert_int_equal(h_event(LB_EV_FLOW_RESELECT), 1);
}

static void ttl_expiry(int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 40005, 80);
	struct h_pkt pin, out;

	h_svc_add(&s);
	in.ttl = 1;
	h_build(&in, &pin);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_PASS, &out, &pin);
	assert_int_equal(h_event(LB_EV_PASS_TTL), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
	/* TTL 2 leaves with 1. */
	in.ttl = 2;
	forward_ok(&in);
}

static void test_ttl4_expiry(void **st) { (void)st; ttl_expiry(4); }
static void test_ttl6_expiry(void **st) { (void)st; ttl_expiry(6); }

/*
 * A flow's packets are rewritten with the checksum deltas worked out when
 * it was created (lb_nat_csum_delta): every later packet, whatever its TTL,
 * flags and payload, must leave with the checksums a from-scratch
 * computation gives (forward_ok compares every byte).
 */
static void csum_deltas(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto, 443, LB_FWD_NAT);
	uint8_t pl[64];
	uint32_t r = 0x12345678u + (uint32_t)fam * 31u + proto;

	h_svc_add(&s);
	for (int flow = 0; flow < 40; flow++) {
		struct h_spec in = h_from_client(fam, proto, (uint16_t)(20000 + flow * 997), 443);
		uint16_t first = 0;

		for (int pkt = 0; pkt < 4; pkt++) {
			uint16_t port;

			for (size_t i = 0; i < sizeof(pl); i++) {
				r = r * 1103515245u + 12345u;
				pl[i] = (uint8_t)(r >> 16);
			}
			in.payload = pl;
			in.plen = 1 + (r >> 8) % sizeof(pl);
			in.ttl = (uint8_t)(2 + (r >> 4) % 254);
			if (proto == IPPROTO_TCP) {
				in.tcp_flags = pkt ? 0x18 : 0x02;
				in.seq += 1000;
				in.ack = r;
			}
			port = forward_ok(&in);
			if (!pkt)
				first = port;
			assert_int_equal(port, first);
		}
	}
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 40);
}

static void test_csum_deltas_tcp4(void **st) { (void)st; csum_deltas(4, IPPROTO_TCP); }
static void test_csum_deltas_udp4(void **st) { (void)st; csum_deltas(4, IPPROTO_UDP); }
static void test_csum_deltas_tcp6(void **st) { (void)st; csum_deltas(6, IPPROTO_TCP); }
static void test_csum_deltas_udp6(void **st) { (void)st; csum_deltas(6, IPPROTO_UDP); }

/* IPv4 UDP without checksum stays without one after NAT. */
static void test_udp4_zero_csum_kept(void **st)
{
	struct h_svc s = svc(4, IPPROTO_UDP, 53, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 40006, 53);

	(void)st;
	h_svc_add(&s);
	in.udp_nocsum = true;
	forward_ok(&in); /* h_to_backend() keeps udp_nocsum: checksum 0 expected */
}

/* A translated UDP checksum that comes out 0 must be sent as 0xffff. */
static void test_udp4_csum_result_zero(void **st)
{
	struct h_svc s = svc(4, IPPROTO_UDP, 53, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 40007, 53), w;
	struct h_pkt pin, out, want;
	uint8_t pl[20] = "zero-checksum test";
	uint16_t c;

	(void)st;
	h_config(5000, 5000, 0x5eed); /* the SNAT port is known in advance */
	h_svc_add(&s);
	/* Choose two payload bytes so that the translated datagram sums to
	 * 0xffff, i.e. its checksum computes to 0. */
	in.payload = pl;
	in.plen = sizeof(pl);
	w = h_to_backend(&in, 5000);
	h_build(&w, &want);
	memcpy(&c, want.b + want.l4off + 6, 2);
	c = ntohs(c); /* want = ~sum; add ~want to the sum to reach 0xffff */
	pl[18] = (uint8_t)(c >> 8);
	pl[19] = (uint8_t)c;
	h_build(&w, &want);
	memcpy(&c, want.b + want.l4off + 6, 2);
	assert_int_equal(ntohs(c), 0xffff); /* builder applied RFC 768 */
	h_build(&in, &pin);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT, &out, &want);
}

static void tagged(int nvlan)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40008, 80), w;
	struct h_pkt pin, out, want;
	uint16_t port;

	h_svc_add(&s);
	h_vlan(&in, nvlan);
	h_build(&in, &pin);
	/* Tagged frames leave where they came in, tags kept (one-armed). */
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_TX);
	port = snat_port_of(&out, &in, LB_SNAT_PORT_LO, LB_SNAT_PORT_HI);
	w = h_to_backend(&in, port);
	h_build(&w, &want);
	h_expect(XDP_TX, XDP_TX, &out, &want);
}

static void test_vlan(void **st) { (void)st; tagged(1); }
static void test_qinq(void **st) { (void)st; tagged(2); }

static void test_ipv4_options(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40009, 80);

	(void)st;
	h_svc_add(&s);
	in.ipopt_len = 12;
	forward_ok(&in);
	in.ipopt_len = 40; /* the largest IHL */
	in.sport = 40010;
	forward_ok(&in);
}

static void test_ipv6_ext_headers(void **st)
{
	struct h_svc s = svc(6, IPPROTO_UDP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(6, IPPROTO_UDP, 40011, 80);

	(void)st;
	h_svc_add(&s);
	in.next = 4;
	in.ext[0] = (struct h_ext){ .type = IPPROTO_HOPOPTS };
	in.ext[1] = (struct h_ext){ .type = IPPROTO_ROUTING, .len8 = 2 };
	in.ext[2] = (struct h_ext){ .type = IPPROTO_FRAGMENT, .frag = 0 }; /* atomic */
	in.ext[3] = (struct h_ext){ .type = IPPROTO_DSTOPTS, .len8 = 1 };
	forward_ok(&in);
	in.proto = IPPROTO_TCP;
	s = svc(6, IPPROTO_TCP, 80, LB_FWD_NAT);
	s.vip_id = 8;
	h_svc_add(&s);
	forward_ok(&in);
}

/*
 * An ICMP error from the backend side quoting a packet we sent to the
 * backend (SNAT -> backend) goes to the client, quoting client -> VIP. The
 * quoted L4 checksum is left as it was (see bpf/lib/icmp.h).
 */
static void icmp_error(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, proto, 40012, 80), sent, orig, e, w;
	struct h_pkt pin, out, want, q_sent, q_orig;
	size_t qlen;
	uint16_t port;
	int v6 = fam == 6, v;
	size_t csum_off = proto == IPPROTO_TCP ? 16 : 6;

	h_svc_add(&s);
	in.plen = 0;
	port = forward_ok(&in);
	/* The quote: what we sent to the backend, as a router saw it. */
	sent = h_to_backend(&in, port);
	sent.ttl = 10;
	h_build(&sent, &q_sent);
	qlen = q_sent.len - q_sent.l3off;

	e = (struct h_spec){
		.family = fam, .src = v6 ? "2001:2:0:1::2" : "198.18.1.2",
		.dst = v6 ? H_SNAT6 : H_SNAT4, .ttl = 64,
		.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
		.icmp_type = v6 ? 2 : 3, .icmp_code = v6 ? 0 : 4,
		.icmp_rest = v6 ? 1280 : 1400,
		.payload = q_sent.b + q_sent.l3off, .plen = qlen,
	};
	memcpy(e.dmac, h_mac_backend_if, 6);
	h_mac_backend(2, e.smac);
	h_build(&e, &pin);
	v = h_run(&pin, h_ifindex_backend(), &out);

	/* Expected quote: client:40012 -> VIP:80, inner TTL as quoted, inner
	 * IPv4 header checksum right, inner L4 checksum as it was. */
	orig = sent;
	orig.src = in.src;
	orig.dst = in.dst;
	orig.sport = in.sport;
	orig.dport = in.dport;
	h_build(&orig, &q_orig);
	memcpy(q_orig.b + q_orig.l4off + csum_off, q_sent.b + q_sent.l4off + csum_off, 2);
	w = e;
	w.src = in.dst; /* from the VIP */
	w.dst = in.src;
	w.ttl = 63;
	w.payload = q_orig.b + q_orig.l3off;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(v, XDP_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_ICMP_FWD), 1);
}

static void test_icmp4_frag_needed(void **st) { (void)st; icmp_error(4, IPPROTO_TCP); }
static void test_icmp4_frag_needed_udp(void **st) { (void)st; icmp_error(4, IPPROTO_UDP); }
static void test_icmp6_packet_too_big(void **st) { (void)st; icmp_error(6, IPPROTO_TCP); }

/* An ICMP error quoting no flow of ours is the stack's. */
static void test_icmp_unrelated_passes(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec q = h_from_client(4, IPPROTO_TCP, 1, 2), e;
	struct h_pkt qp, pin, out;

	(void)st;
	h_svc_add(&s);
	q.src = H_SNAT4;
	q.dst = BE4;
	q.sport = 3000;
	q.dport = 8080;
	h_build(&q, &qp);
	e = (struct h_spec){
		.family = 4, .src = "198.18.1.2", .dst = H_SNAT4, .proto = IPPROTO_ICMP,
		.icmp_type = 3, .icmp_code = 4, .icmp_rest = 1400,
		.payload = qp.b + qp.l3off, .plen = qp.len - qp.l3off,
	};
	h_build(&e, &pin);
	h_expect(h_run(&pin, h_ifindex_backend(), &out), XDP_PASS, &out, &pin);
}

static void dsr(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto, 80, LB_FWD_DSR);
	struct h_spec in = h_from_client(fam, proto, 40013, 80), w;
	struct h_pkt pin, out, want;

	h_svc_add(&s);
	h_build(&in, &pin);
	w = in; /* only the MACs change: not even the TTL */
	memcpy(w.smac, h_mac_backend_if, 6);
	h_mac_backend(1, w.dmac);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

static void test_dsr4_tcp(void **st) { (void)st; dsr(4, IPPROTO_TCP); }
static void test_dsr6_udp(void **st) { (void)st; dsr(6, IPPROTO_UDP); }

static void test_stats(void **st)
{
	static const struct h_be two[] = {
		{ .id = 1, .addr = BE4, .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40014, 80), r;
	struct lb_backend_stats bs, total = { 0 };
	__u32 ids[2] = { 1, 2 };
	struct lb_vip_stats vs;
	struct h_pkt pin, out;
	uint64_t bytes = 0;
	int be;

	(void)st;
	s.be = two;
	s.nbe = 2;
	h_svc_add(&s);
	for (int i = 0; i < 3; i++) { /* one SYN and two ACKs */
		in.tcp_flags = i ? 0x10 : 0x02;
		h_build(&in, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
		bytes += pin.len - pin.l3off;
	}
	be = h_which_backend(&out, 4, two, 2);
	assert_true(be >= 0);
	/* The data path counts on the backend only; the VIP adds them up. */
	assert_int_equal(lb_dp_vip_base_stats(h_dp(), 7, &vs), 0);
	assert_int_equal(vs.packets, 0);
	assert_int_equal(lb_dp_vip_stats(h_dp(), 7, ids, 2, &vs), 0);
	assert_int_equal(vs.packets, 3);
	assert_int_equal(vs.bytes, bytes);
	assert_int_equal(vs.new_flows, 1);
	assert_int_equal(lb_dp_backend_stats(h_dp(), two[be].id, &bs), 0);
	assert_int_equal(bs.packets, 3);
	assert_int_equal(bs.bytes, bytes);
	assert_int_equal(bs.new_flows, 1);
	assert_int_equal(bs.syn, 1);
	assert_int_equal(lb_dp_backend_stats(h_dp(), two[!be].id, &total), 0);
	assert_int_equal(total.packets, 0);
	assert_int_equal(h_conns(two[be].id), 1);

	/* The backend's SYN-ACK is counted as its answer. */
	r = h_from_backend(4, IPPROTO_TCP, ntohs(h_port(&out, 0)));
	r.src = two[be].addr;
	h_mac_backend(be + 1, r.smac);
	h_build(&r, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT);
	assert_int_equal(lb_dp_backend_stats(h_dp(), two[be].id, &bs), 0);
	assert_int_equal(bs.synack, 1);
	assert_int_equal(bs.rst_syn, 0);
	/* its SYN-ACK again (the client's ACK was lost): still one answer */
	h_build(&r, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT);
	assert_int_equal(lb_dp_backend_stats(h_dp(), two[be].id, &bs), 0);
	assert_int_equal(bs.synack, 1);

	/* A backend removed hands its counters to the VIP, whose totals stay;
	 * its slot starts again from zero for whoever takes it next. */
	h_backend_state(two[be].id, LB_BE_UNUSED);
	ids[0] = two[!be].id;
	assert_int_equal(lb_dp_vip_stats(h_dp(), 7, ids, 1, &vs), 0);
	assert_int_equal(vs.packets, 3);
	assert_int_equal(vs.bytes, bytes);
	assert_int_equal(vs.new_flows, 1);
	assert_int_equal(lb_dp_backend_stats(h_dp(), two[be].id, &bs), 0);
	assert_int_equal(bs.packets, 0);
	assert_int_equal(bs.synack, 0);
}

/* Connections are counted from SYN to FIN/RST, whichever side sends it. */
static void test_conn_accounting(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec a = h_from_client(4, IPPROTO_TCP, 40015, 80);
	struct h_spec b = h_from_client(4, IPPROTO_TCP, 40016, 80), r;
	uint16_t pb;

	(void)st;
	h_svc_add(&s);
	forward_ok(&a);
	pb = forward_ok(&b);
	assert_int_equal(h_conns(1), 2);
	a.tcp_flags = 0x11; /* client FIN */
	forward_ok(&a);
	assert_int_equal(h_conns(1), 1);
	forward_ok(&a); /* retransmitted FIN is not counted twice */
	assert_int_equal(h_conns(1), 1);
	r = h_from_backend(4, IPPROTO_TCP, pb);
	r.tcp_flags = 0x04; /* backend RST */
	{
		struct h_pkt pin, out;

		h_build(&r, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT);
	}
	assert_int_equal(h_conns(1), 0);
	a.tcp_flags = 0x02; /* the tuple is reused for a new connection */
	forward_ok(&a);
	assert_int_equal(h_conns(1), 1);
}

/* No neighbour for the backend: the stack gets the frame to resolve it. */
static void test_no_neigh_passes(void **st)
{
	static const struct h_be nn[] = { { .id = 1, .addr = "198.18.1.99", .port = 8080 } };
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40017, 80);
	struct h_pkt pin, out;

	(void)st;
	s.be = nn;
	h_svc_add(&s);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_PASS);
	assert_int_equal(h_event(LB_EV_PASS_NO_NEIGH), 1);
}

/* A backend on the ingress side leaves by XDP_TX. */
static void test_same_interface_tx(void **st)
{
	static const struct h_be near[] = { { .id = 1, .addr = "198.18.0.3", .port = 8080 } };
	struct h_svc s = svc(4, IPPROTO_UDP, 80, LB_FWD_DSR);
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 40018, 80), w;
	struct h_pkt pin, out, want;

	(void)st;
	s.be = near;
	h_svc_add(&s);
	h_build(&in, &pin);
	w = in;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(3, w.dmac);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_TX, &out, &want);
	assert_int_equal(h_event(LB_EV_TX), 1);
}

/* A wildcard-port VIP takes any port; the backend keeps the port asked. */
static void test_wildcard_port(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 0, LB_FWD_DSR);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40019, 443), w;
	struct h_pkt pin, out, want;

	(void)st;
	h_svc_add(&s);
	h_build(&in, &pin);
	w = in;
	memcpy(w.smac, h_mac_backend_if, 6);
	h_mac_backend(1, w.dmac);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT, &out, &want);
}

/* A short frame padded to Ethernet's 60 bytes: the padding is carried
 * through untouched and is no part of the datagram's checksums. */
static void test_padded_frame(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40020, 80), w;
	struct h_pkt pin, out, want;
	uint16_t port;

	(void)st;
	h_svc_add(&s);
	in.plen = 0;
	h_build(&in, &pin);
	assert_int_equal(pin.len, 54);
	memset(pin.b + 54, 0xa5, 6);
	pin.len = 60;
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	port = snat_port_of(&out, &in, LB_SNAT_PORT_LO, LB_SNAT_PORT_HI);
	w = h_to_backend(&in, port);
	h_build(&w, &want);
	memset(want.b + 54, 0xa5, 6);
	want.len = 60;
	h_expect(XDP_REDIRECT, XDP_REDIRECT, &out, &want);
}

/*
 * An ICMP error from the client side quoting a reply we sent to the client
 * (VIP -> client) goes to the backend, quoting backend -> SNAT address.
 */
static void icmp_error_to_backend(int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 40021, 80), sent, orig, e, w;
	struct h_pkt pin, out, want, q_sent, q_orig;
	int v6 = fam == 6, v;
	uint16_t port;

	h_svc_add(&s);
	in.plen = 0;
	port = forward_ok(&in);
	/* What we sent to the client: VIP:80 -> client:40021. */
	sent = h_from_backend(fam, IPPROTO_TCP, port);
	sent.src = in.dst;
	sent.dst = in.src;
	sent.sport = 80;
	sent.dport = 40021;
	sent.plen = 0;
	h_build(&sent, &q_sent);
	e = (struct h_spec){
		.family = fam, .src = v6 ? "2001:2::4" : "198.18.0.4", .dst = in.src, .ttl = 64,
		.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
		.icmp_type = v6 ? 2 : 3, .icmp_code = v6 ? 0 : 4,
		.icmp_rest = v6 ? 1280 : 1400,
		.payload = q_sent.b + q_sent.l3off, .plen = q_sent.len - q_sent.l3off,
	};
	memcpy(e.dmac, h_mac_client_if, 6);
	h_mac_client(4, e.smac);
	h_build(&e, &pin);
	v = h_run(&pin, h_ifindex_client(), &out);

	orig = sent; /* backend:8080 -> SNAT:port, L4 checksum as quoted */
	orig.src = v6 ? BE6 : BE4;
	orig.dst = v6 ? H_SNAT6 : H_SNAT4;
	orig.sport = 8080;
	orig.dport = port;
	h_build(&orig, &q_orig);
	memcpy(q_orig.b + q_orig.l4off + 16, q_sent.b + q_sent.l4off + 16, 2);
	w = e;
	w.src = v6 ? H_SNAT6 : H_SNAT4;
	w.dst = v6 ? BE6 : BE4;
	w.ttl = 63;
	w.payload = q_orig.b + q_orig.l3off;
	memcpy(w.smac, h_mac_backend_if, 6);
	h_mac_backend(1, w.dmac);
	h_build(&w, &want);
	h_expect(v, XDP_REDIRECT, &out, &want);
}

static void test_icmp4_to_backend(void **st) { (void)st; icmp_error_to_backend(4); }
static void test_icmp6_to_backend(void **st) { (void)st; icmp_error_to_backend(6); }

/* Client port cport's SYN through a TCP full-NAT VIP to backend 1: the
 * backend's reply to it (no payload; flags to set). */
static struct h_spec syn_to_backend(__u16 cport)
{
	struct h_svc s = svc(4, IPPROTO_TCP, 80, LB_FWD_NAT);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, cport, 80), r;

	h_svc_add(&s);
	r = h_from_backend(4, IPPROTO_TCP, forward_ok(&in));
	r.plen = 0;
	return r;
}

/* Backend 1 sends r with TCP flags fl, on through the balancer; its
 * counters after. */
static struct lb_backend_stats backend_sends(struct h_spec *r, __u8 fl)
{
	struct lb_backend_stats bs;
	struct h_pkt pin, out;

	r->tcp_flags = fl;
	h_build(r, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT);
	assert_int_equal(lb_dp_backend_stats(h_dp(), 1, &bs), 0);
	return bs;
}

/* A backend refusing a SYN (RST) is counted for passive health checks. */
static void test_backend_refuses(void **st)
{
	struct h_spec r = syn_to_backend(40022);
	struct lb_backend_stats bs = backend_sends(&r, 0x14); /* RST, ACK */

	(void)st;
	assert_int_equal(bs.rst_syn, 1);
	assert_int_equal(bs.synack, 0);
	assert_int_equal(h_conns(1), 0);
}

/* A TIME_WAIT on the backend (an earlier connection on this SNAT port)
 * rejects the SYN with a bare ACK: the backend answered, once; the RST it
 * may send later is not a refusal. The ACK goes on to the client, who
 * resets the TIME_WAIT and retransmits. */
static void test_backend_timewait_ack(void **st)
{
	struct h_spec r = syn_to_backend(40023);
	struct lb_backend_stats bs;

	(void)st;
	backend_sends(&r, 0x10); /* ACK */
	bs = backend_sends(&r, 0x10);
	assert_int_equal(bs.syn, 1);
	assert_int_equal(bs.synack, 1);
	bs = backend_sends(&r, 0x14); /* RST, ACK */
	assert_int_equal(bs.synack, 1);
	assert_int_equal(bs.rst_syn, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tcp4_new_flow),
		T(test_udp4_new_flow),
		T(test_tcp6_new_flow),
		T(test_udp6_new_flow),
		T(test_tcp4_reply),
		T(test_udp4_reply),
		T(test_tcp6_reply),
		T(test_udp6_reply),
		T(test_reply_unknown_port_passes),
		T(test_established_keeps_backend),
		T(test_evicted_flow_keeps_snat_port),
		T(test_snat_ports_half_used),
		T(test_drain_keeps_flows),
		T(test_reused_tuple_follows_table),
		T(test_unanswered_syn_leaves_drained),
		T(test_ttl4_expiry),
		T(test_ttl6_expiry),
		T(test_udp4_zero_csum_kept),
		T(test_udp4_csum_result_zero),
		T(test_csum_deltas_tcp4),
		T(test_csum_deltas_udp4),
		T(test_csum_deltas_tcp6),
		T(test_csum_deltas_udp6),
		T(test_vlan),
		T(test_qinq),
		T(test_ipv4_options),
		T(test_ipv6_ext_headers),
		T(test_icmp4_frag_needed),
		T(test_icmp4_frag_needed_udp),
		T(test_icmp6_packet_too_big),
		T(test_icmp_unrelated_passes),
		T(test_dsr4_tcp),
		T(test_dsr6_udp),
		T(test_stats),
		T(test_conn_accounting),
		T(test_no_neigh_passes),
		T(test_same_interface_tx),
		T(test_wildcard_port),
		T(test_padded_frame),
		T(test_icmp4_to_backend),
		T(test_icmp6_to_backend),
		T(test_backend_refuses),
		T(test_backend_timewait_ack),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
