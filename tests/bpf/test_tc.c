// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The TC entry point (bpf/lb_tc.bpf.c) through the real object, run on skbs
 * with BPF_PROG_TEST_RUN: full NAT of new flows and replies with exact bytes
 * out (the L4 checksum goes through bpf_l4_csum_replace here, unlike XDP),
 * the IPv4 UDP zero-checksum rule, untouched non-VIP traffic, and the maps
 * shared with the XDP object (a flow started by one continues in the other).
 *
 * BPF_PROG_TEST_RUN builds CHECKSUM_NONE skbs, so this proves the complete-
 * checksum arithmetic; CHECKSUM_PARTIAL (veth, GSO) is proven with real
 * traffic by tests/net/test_tc.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "harness.h"

#define VIP4 "198.18.10.1"
#define VIP6 "2001:2:0:a::1"
#define CL4  "198.18.0.1"
#define CL6  "2001:2::1"
#define BE4  "198.18.1.1"
#define BE6  "2001:2:0:1::1"

static const struct h_be be4[] = { { .id = 1, .addr = BE4, .port = 8080 } };
static const struct h_be be6[] = { { .id = 1, .addr = BE6, .port = 8080 } };
static const char req[] = "GET / HTTP/1.0\r\n\r\n";
static const char resp[] = "HTTP/1.0 200 OK\r\n\r\nHere we are! be1\n";

static int tc_up(void **state)
{
	if (h_dp_up(state))
		return -1;
	return lb_dp_load_tc(h_dp()) ? -1 : 0;
}

/* Run the TC program once on `in`, as received on ifindex. */
static int tc_run(const struct h_pkt *in, int ifindex, struct h_pkt *out)
{
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex, .ingress_ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = in->b,
		.data_size_in = (__u32)in->len,
		.data_out = out->b,
		.data_size_out = sizeof(out->b),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	);

	if (bpf_prog_test_run_opts(lb_dp_tc_prog_fd(h_dp()), &o))
		fail_msg("bpf_prog_test_run_opts: %s", strerror(errno));
	out->len = o.data_size_out;
	out->l3off = in->l3off;
	out->l4off = in->l4off;
	return (int)o.retval;
}

static void add_vip(int fam, uint8_t proto)
{
	struct h_svc s = {
		.vip_id = 3, .family = fam, .vip = fam == 6 ? VIP6 : VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT,
		.be = fam == 6 ? be6 : be4, .nbe = 1,
	};

	h_svc_add(&s);
}

static struct h_spec from_client(int fam, uint8_t proto, uint16_t sport)
{
	struct h_spec s = {
		.family = fam, .src = fam == 6 ? CL6 : CL4, .dst = fam == 6 ? VIP6 : VIP4,
		.proto = proto, .sport = sport, .dport = 80, .ttl = 64,
		.tcp_flags = 0x02, .seq = 1000, .ip_id = 0x4321,
		.payload = req, .plen = sizeof(req) - 1,
	};

	memcpy(s.dmac, h_mac_client_if, 6);
	h_mac_client(1, s.smac);
	return s;
}

/* The frame the balancer must send to backend 1 for `in`. */
static struct h_spec to_backend(const struct h_spec *in, uint16_t snat_port)
{
	struct h_spec s = *in;

	s.src = in->family == 6 ? H_SNAT6 : H_SNAT4;
	s.dst = in->family == 6 ? BE6 : BE4;
	s.sport = snat_port;
	s.dport = 8080;
	s.ttl = (uint8_t)(in->ttl - 1);
	memcpy(s.smac, h_mac_backend_if, 6);
	h_mac_backend(1, s.dmac);
	return s;
}

/* Forward `in` with prog(in) and check the exact frame; returns the SNAT
 * port the data path chose (checked against the range). */
static uint16_t forward(const struct h_spec *in, bool tc)
{
	struct h_pkt pin, out, want;
	struct h_spec w;
	uint16_t port;
	int v;

	h_build(in, &pin);
	v = tc ? tc_run(&pin, h_ifindex_client(), &out)
	       : h_run(&pin, h_ifindex_client(), &out);
	port = ntohs(h_port(&out, 0));
	assert_in_range(port, LB_SNAT_PORT_LO, LB_SNAT_PORT_HI);
	w = to_backend(in, port);
	h_build(&w, &want);
	h_expect(v, tc ? TC_ACT_REDIRECT : XDP_REDIRECT, &out, &want);
	return port;
}

static void nat_and_reply(int fam, uint8_t proto)
{
	struct h_spec in = from_client(fam, proto, 40000), r, w;
	struct h_pkt pin, out, want;
	uint16_t port;

	add_vip(fam, proto);
	port = forward(&in, true);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_REDIRECT), 1);

	/* The backend answers to SNAT:port; the client gets VIP:80. */
	r = (struct h_spec){
		.family = fam, .src = fam == 6 ? BE6 : BE4, .dst = fam == 6 ? H_SNAT6 : H_SNAT4,
		.proto = proto, .sport = 8080, .dport = port, .ttl = 64,
		.tcp_flags = 0x12, .seq = 9000, .ack = 1001, .ip_id = 0x1111,
		.payload = resp, .plen = sizeof(resp) - 1,
	};
	memcpy(r.dmac, h_mac_backend_if, 6);
	h_mac_backend(1, r.smac);
	h_build(&r, &pin);
	w = r;
	w.src = in.dst;
	w.dst = in.src;
	w.sport = 80;
	w.dport = 40000;
	w.ttl = 63;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(tc_run(&pin, h_ifindex_backend(), &out), TC_ACT_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_REPLY), 1);
}

static void test_tcp4_nat_reply(void **st) { (void)st; nat_and_reply(4, IPPROTO_TCP); }
static void test_udp4_nat_reply(void **st) { (void)st; nat_and_reply(4, IPPROTO_UDP); }
static void test_tcp6_nat_reply(void **st) { (void)st; nat_and_reply(6, IPPROTO_TCP); }
static void test_udp6_nat_reply(void **st) { (void)st; nat_and_reply(6, IPPROTO_UDP); }

/* IPv4 UDP without a checksum must leave without one. */
static void test_udp4_zero_csum_kept(void **st)
{
	struct h_spec in = from_client(4, IPPROTO_UDP, 40002);

	(void)st;
	add_vip(4, IPPROTO_UDP);
	in.udp_nocsum = true;
	forward(&in, true); /* to_backend() keeps udp_nocsum */
}

/* Traffic not for a VIP (and not a NAT reply) is the stack's, untouched. */
static void test_non_vip_untouched(void **st)
{
	struct h_spec in = from_client(4, IPPROTO_TCP, 40003), in6 = from_client(6, IPPROTO_TCP, 40003);
	struct h_pkt pin, out;

	(void)st;
	add_vip(4, IPPROTO_TCP);
	in.dst = "198.18.1.1"; /* a backend, directly */
	h_build(&in, &pin);
	h_expect(tc_run(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	in.dst = VIP4;
	in.dport = 81; /* the VIP's address, another port */
	h_build(&in, &pin);
	h_expect(tc_run(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	h_build(&in6, &pin); /* no IPv6 VIP at all */
	h_expect(tc_run(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
}

/* A flow started under XDP continues under TC (the interface fell back) with
 * the same translation: both objects use one conntrack. */
static void test_flow_survives_xdp_to_tc(void **st)
{
	struct h_spec in = from_client(4, IPPROTO_TCP, 40004);
	uint16_t p1, p2;

	(void)st;
	add_vip(4, IPPROTO_TCP);
	p1 = forward(&in, false);
	in.tcp_flags = 0x10;
	in.seq++;
	in.ack = 5000;
	p2 = forward(&in, true);
	assert_int_equal(p1, p2);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

/* A backend without a neighbour entry: the packet is translated and handed
 * to bpf_redirect_neigh (MACs are the kernel's to fill in), not passed up. */
static void test_no_neigh_redirect_neigh(void **st)
{
	static const struct h_be be[] = { { .id = 2, .addr = "198.18.1.99", .port = 8080 } };
	struct h_svc s = {
		.vip_id = 3, .family = 4, .vip = VIP4, .port = 80, .proto = IPPROTO_TCP,
		.method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT, .be = be, .nbe = 1,
	};
	struct h_spec in = from_client(4, IPPROTO_TCP, 40006), w;
	struct h_pkt pin, out, want;
	int v;

	(void)st;
	h_svc_add(&s);
	h_build(&in, &pin);
	v = tc_run(&pin, h_ifindex_client(), &out);
	w = in;
	w.src = H_SNAT4;
	w.dst = "198.18.1.99";
	w.sport = ntohs(h_port(&out, 0));
	w.dport = 8080;
	w.ttl = 63;
	h_build(&w, &want);
	h_expect(v, TC_ACT_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_REDIRECT_NEIGH), 1);
	assert_int_equal(h_event(LB_EV_PASS_NO_NEIGH), 0);
}

/* Malformed traffic for a VIP is dropped and counted, as in XDP. */
static void test_truncated_tcp_dropped(void **st)
{
	struct h_spec in = from_client(4, IPPROTO_TCP, 40005);
	struct h_pkt pin, out;

	(void)st;
	add_vip(4, IPPROTO_TCP);
	in.payload = NULL;
	in.plen = 0;
	h_build(&in, &pin);
	pin.len = pin.l4off + 10; /* half a TCP header */
	assert_int_equal(tc_run(&pin, h_ifindex_client(), &out), TC_ACT_SHOT);
	assert_int_equal(h_drops(LB_DROP_TRUNC_L4), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tc_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tcp4_nat_reply),
		T(test_udp4_nat_reply),
		T(test_tcp6_nat_reply),
		T(test_udp6_nat_reply),
		T(test_udp4_zero_csum_kept),
		T(test_non_vip_untouched),
		T(test_flow_survives_xdp_to_tc),
		T(test_truncated_tcp_dropped),
		T(test_no_neigh_redirect_neigh),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
