// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Forward mode `local` through the real objects: a new flow to a local VIP
 * leaves XDP (and TC ingress) as PASS with only the destination port
 * changed to the chosen instance's, checksums right and the TTL kept (the
 * packet is delivered here, not routed); the instance's replies are given
 * the VIP's port back by the TC egress program, byte for byte; traffic that
 * is not a local flow's reply leaves egress untouched.
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
#include <linux/pkt_cls.h>

#include "harness.h"

#define INST_PORT 3001

/* The instances of a local VIP listen on the VIP's own address. */
static const struct h_be inst4[] = {
	{ .id = 1, .addr = H_VIP4, .port = INST_PORT },
};
static const struct h_be inst6[] = {
	{ .id = 1, .addr = H_VIP6, .port = INST_PORT },
};
static const struct h_be two4[] = {
	{ .id = 1, .addr = H_VIP4, .port = 3000 },
	{ .id = 2, .addr = H_VIP4, .port = 3001 },
};

static int tc_up(void **state)
{
	if (h_dp_up(state))
		return -1;
	return lb_dp_load_tc(h_dp()) ? -1 : 0;
}

static int tc_run_prog(int fd, const struct h_pkt *in, int ifindex, bool ingress,
		       struct h_pkt *out)
{
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex,
				 .ingress_ifindex = ingress ? (__u32)ifindex : 0 };

	return h_test_run(fd, &ctx, sizeof(ctx), in, out);
}

static void add_local_vip(int fam, uint8_t proto, const struct h_be *be, size_t nbe)
{
	struct h_svc s = {
		.vip_id = 5, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_LOCAL,
		.be = be, .nbe = nbe,
	};

	h_svc_add(&s);
}

enum entry { XDP, TC };

/* Client's SYN in: PASS, dport = the instance's, nothing else changed. */
static void deliver(enum entry e, const struct h_spec *in, uint16_t want_port)
{
	struct h_pkt pin, out, want;
	struct h_spec w = *in;
	int v;

	h_build(in, &pin);
	if (e == XDP)
		v = h_run(&pin, h_ifindex_client(), &out);
	else
		v = tc_run_prog(lb_dp_tc_prog_fd(h_dp()), &pin, h_ifindex_client(), true, &out);
	w.dport = want_port;
	h_build(&w, &want);
	h_expect(v, e == XDP ? XDP_PASS : TC_ACT_OK, &out, &want);
}

/* The instance's answer (VIP:instance port -> client) as it leaves. */
static struct h_spec from_instance(const struct h_spec *in, uint16_t port)
{
	static const char resp[] = "HTTP/1.0 200 OK\r\n\r\nHere we are!\n";
	struct h_spec r = {
		.family = in->family, .src = in->dst, .dst = in->src, .proto = in->proto,
		.sport = port, .dport = in->sport, .ttl = 64, .tcp_flags = 0x12,
		.seq = 777, .ack = in->seq + 1, .ip_id = 0x4321,
		.payload = resp, .plen = sizeof(resp) - 1,
	};

	memcpy(r.smac, h_mac_client_if, 6);
	h_mac_client(1, r.dmac);
	return r;
}

static void reverse(const struct h_spec *r, uint16_t vip_port)
{
	struct h_pkt pin, out, want;
	struct h_spec w = *r;
	int v;

	h_build(r, &pin);
	v = tc_run_prog(lb_dp_tc_egress_prog_fd(h_dp()), &pin, h_ifindex_client(), false, &out);
	w.sport = vip_port;
	h_build(&w, &want);
	h_expect(v, TC_ACT_OK, &out, &want);
}

static void local_flow(enum entry e, int fam, uint8_t proto)
{
	struct h_spec in = h_from_client(fam, proto, 40000, 80), r;

	add_local_vip(fam, proto, fam == 6 ? inst6 : inst4, 1);
	deliver(e, &in, INST_PORT);
	assert_int_equal(h_event(LB_EV_LOCAL), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_PASS_TTL), 0);

	r = from_instance(&in, INST_PORT);
	reverse(&r, 80);
	assert_int_equal(h_event(LB_EV_LOCAL_REPLY), 1);

	/* The client's next segment stays with the flow. */
	in.tcp_flags = 0x10;
	in.seq = 1001;
	deliver(e, &in, INST_PORT);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_LOCAL), 2);
}

static void test_xdp_tcp4(void **st) { (void)st; local_flow(XDP, 4, IPPROTO_TCP); }
static void test_xdp_udp4(void **st) { (void)st; local_flow(XDP, 4, IPPROTO_UDP); }
static void test_xdp_tcp6(void **st) { (void)st; local_flow(XDP, 6, IPPROTO_TCP); }
static void test_xdp_udp6(void **st) { (void)st; local_flow(XDP, 6, IPPROTO_UDP); }
static void test_tc_tcp4(void **st)  { (void)st; local_flow(TC, 4, IPPROTO_TCP); }
static void test_tc_tcp6(void **st)  { (void)st; local_flow(TC, 6, IPPROTO_TCP); }

/* Delivered, not routed: a TTL that would expire on a router is fine. */
static void test_ttl1_delivered(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40001, 80);

	(void)st;
	add_local_vip(4, IPPROTO_TCP, inst4, 1);
	in.ttl = 1;
	deliver(XDP, &in, INST_PORT);
	assert_int_equal(h_event(LB_EV_PASS_TTL), 0);
}

/* Flows spread over the instances by the VIP's table. */
static void test_two_instances(void **st)
{
	int seen[2] = { 0, 0 };

	(void)st;
	add_local_vip(4, IPPROTO_TCP, two4, 2);
	for (uint16_t sp = 41000; sp < 41064; sp++) {
		struct h_spec in = h_from_client(4, IPPROTO_TCP, sp, 80), r;
		struct h_pkt pin, out;
		uint16_t port;

		h_build(&in, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_PASS);
		port = ntohs(h_port(&out, 1));
		assert_true(port == 3000 || port == 3001);
		seen[port - 3000]++;
		r = from_instance(&in, port);
		reverse(&r, 80);
	}
	print_message("  instances: 3000 got %d, 3001 got %d of 64\n", seen[0], seen[1]);
	assert_true(seen[0] > 8 && seen[1] > 8);
}

/* Egress leaves everything else alone: a reply with no local flow, the
 * instance port seen from another client, a NAT VIP's traffic. */
static void test_egress_untouched(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40002, 80), r;
	struct h_pkt pin, out;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, inst4, 1);
	r = from_instance(&in, INST_PORT); /* no flow yet */
	h_build(&r, &pin);
	h_expect(tc_run_prog(lb_dp_tc_egress_prog_fd(h_dp()), &pin, h_ifindex_client(), false,
			     &out), TC_ACT_OK, &out, &pin);

	deliver(XDP, &in, INST_PORT);
	r = from_instance(&in, INST_PORT);
	r.dport = 40003; /* another connection of the same client */
	h_build(&r, &pin);
	h_expect(tc_run_prog(lb_dp_tc_egress_prog_fd(h_dp()), &pin, h_ifindex_client(), false,
			     &out), TC_ACT_OK, &out, &pin);
	assert_int_equal(h_event(LB_EV_LOCAL_REPLY), 0);
}

/* The client closing is counted out through the egress path too. */
static void test_fin_counted_out(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40004, 80), r;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, inst4, 1);
	deliver(XDP, &in, INST_PORT);
	assert_int_equal(h_conns(1), 1);
	r = from_instance(&in, INST_PORT);
	r.tcp_flags = 0x11; /* FIN|ACK from the instance */
	reverse(&r, 80);
	assert_int_equal(h_conns(1), 0);
}

/* lo: the node's own connection (VIP -> VIP) is balanced like a client's;
 * a NAT VIP's is left alone there. */
static void test_lo_local_only(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 50000, 80), w, r;
	struct h_pkt pin, out, want;
	struct h_svc nat = {
		.vip_id = 6, .family = 4, .vip = H_VIP4, .port = 443, .proto = IPPROTO_TCP,
		.method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT, .be = inst4, .nbe = 1,
	};
	int lo_fd = lb_dp_tc_lo_prog_fd(h_dp());

	(void)st;
	add_local_vip(4, IPPROTO_TCP, inst4, 1);
	h_svc_add(&nat);
	memset(in.smac, 0, 6);
	memset(in.dmac, 0, 6);
	in.src = H_VIP4;
	h_build(&in, &pin);
	w = in;
	w.dport = INST_PORT;
	h_build(&w, &want);
	h_expect(tc_run_prog(lo_fd, &pin, 1, true, &out), TC_ACT_OK, &out, &want);
	assert_int_equal(h_event(LB_EV_LOCAL), 1);
	r = from_instance(&in, INST_PORT);
	reverse(&r, 80);

	in.dport = 443;
	in.sport = 50001;
	h_build(&in, &pin);
	h_expect(tc_run_prog(lo_fd, &pin, 1, true, &out), TC_ACT_OK, &out, &pin);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

/* An instance marked down (it died; its table is being rebuilt): its new
 * flows are dropped, so TCP retries instead of being refused. */
static void test_down_instance_drops_syn(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40005, 80);
	struct h_pkt pin, out;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, inst4, 1);
	h_backend_state(1, LB_BE_DOWN);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_NO_BACKEND), 1);
	assert_int_equal(h_event(LB_EV_LOCAL), 0);
	h_backend_state(1, LB_BE_UP);
	deliver(XDP, &in, INST_PORT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tc_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_xdp_tcp4),
		T(test_xdp_udp4),
		T(test_xdp_tcp6),
		T(test_xdp_udp6),
		T(test_tc_tcp4),
		T(test_tc_tcp6),
		T(test_ttl1_delivered),
		T(test_two_instances),
		T(test_egress_untouched),
		T(test_fin_counted_out),
		T(test_lo_local_only),
		T(test_down_instance_drops_syn),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
