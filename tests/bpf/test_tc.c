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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include "harness.h"

static const struct h_be be4[] = { { .id = 1, .addr = H_BE4, .port = 8080 } };
static const struct h_be be6[] = { { .id = 1, .addr = H_BE6, .port = 8080 } };

static void add_vip(int fam, uint8_t proto)
{
	struct h_svc s = {
		.vip_id = 3, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT,
		.be = fam == 6 ? be6 : be4, .nbe = 1,
	};

	h_svc_add(&s);
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
	v = tc ? h_run_tc(&pin, h_ifindex_client(), &out)
	       : h_run(&pin, h_ifindex_client(), &out);
	port = ntohs(h_port(&out, 0));
	assert_in_range(port, LB_SNAT_PORT_LO, LB_SNAT_PORT_HI);
	w = h_to_backend(in, port);
	h_build(&w, &want);
	h_expect(v, tc ? TC_ACT_REDIRECT : XDP_REDIRECT, &out, &want);
	return port;
}

static void nat_and_reply(int fam, uint8_t proto)
{
	struct h_spec in = h_from_client(fam, proto, 40000, 80), r, w;
	struct h_pkt pin, out, want;
	uint16_t port;

	add_vip(fam, proto);
	port = forward(&in, true);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_REDIRECT), 1);

	/* The backend answers to SNAT:port; the client gets VIP:80. */
	r = h_from_backend(fam, proto, port);
	h_build(&r, &pin);
	w = r;
	w.src = in.dst;
	w.dst = in.src;
	w.sport = 80;
	w.dport = 40000;
	w.ttl = (uint8_t)(r.ttl - 1);
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(h_run_tc(&pin, h_ifindex_backend(), &out), TC_ACT_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_REPLY), 1);
}

static void test_tcp4_nat_reply(void **st) { (void)st; nat_and_reply(4, IPPROTO_TCP); }
static void test_udp4_nat_reply(void **st) { (void)st; nat_and_reply(4, IPPROTO_UDP); }
static void test_tcp6_nat_reply(void **st) { (void)st; nat_and_reply(6, IPPROTO_TCP); }
static void test_udp6_nat_reply(void **st) { (void)st; nat_and_reply(6, IPPROTO_UDP); }

/* IPv4 UDP without a checksum must leave without one. */
static void test_udp4_zero_csum_kept(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 40002, 80);

	(void)st;
	add_vip(4, IPPROTO_UDP);
	in.udp_nocsum = true;
	forward(&in, true); /* h_to_backend() keeps udp_nocsum */
}

/* Traffic not for a VIP (and not a NAT reply) is the stack's, untouched. */
static void test_non_vip_untouched(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40003, 80), in6 = h_from_client(6, IPPROTO_TCP, 40003, 80);
	struct h_pkt pin, out;

	(void)st;
	add_vip(4, IPPROTO_TCP);
	in.dst = "198.18.1.1"; /* a backend, directly */
	h_build(&in, &pin);
	h_expect(h_run_tc(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	in.dst = H_VIP4;
	in.dport = 81; /* the VIP's address, another port */
	h_build(&in, &pin);
	h_expect(h_run_tc(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	h_build(&in6, &pin); /* no IPv6 VIP at all */
	h_expect(h_run_tc(&pin, h_ifindex_client(), &out), TC_ACT_OK, &out, &pin);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
}

/* A flow started under XDP continues under TC (the interface fell back) with
 * the same translation: both objects use one conntrack. */
static void test_flow_survives_xdp_to_tc(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40004, 80);
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
		.vip_id = 3, .family = 4, .vip = H_VIP4, .port = 80, .proto = IPPROTO_TCP,
		.method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT, .be = be, .nbe = 1,
	};
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40006, 80), w;
	struct h_pkt pin, out, want;
	int v;

	(void)st;
	h_svc_add(&s);
	h_build(&in, &pin);
	v = h_run_tc(&pin, h_ifindex_client(), &out);
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
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40005, 80);
	struct h_pkt pin, out;

	(void)st;
	add_vip(4, IPPROTO_TCP);
	in.payload = NULL;
	in.plen = 0;
	h_build(&in, &pin);
	pin.len = pin.l4off + 10; /* half a TCP header */
	assert_int_equal(h_run_tc(&pin, h_ifindex_client(), &out), TC_ACT_SHOT);
	assert_int_equal(h_drops(LB_DROP_TRUNC_L4), 1);
}

/* Path MTU discovery through TC: a backend-side router's "fragmentation
 * needed" / "packet too big" about a packet we sent a backend reaches the
 * client about its own packet (ICMP checksums are always complete, so the
 * shared in-place rewrite of bpf/lib/icmp.h is right on skbs too). */
static void icmp_error(int fam)
{
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 40007, 80), sent, orig, e, w;
	struct h_pkt pin, out, want, q_sent, q_orig;
	int v6 = fam == 6;

	add_vip(fam, IPPROTO_TCP);
	in.plen = 0;
	sent = h_to_backend(&in, forward(&in, true));
	h_build(&sent, &q_sent);
	e = (struct h_spec){
		.family = fam, .src = v6 ? "2001:2:0:1::2" : "198.18.1.2",
		.dst = v6 ? H_SNAT6 : H_SNAT4, .ttl = 64,
		.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
		.icmp_type = v6 ? 2 : 3, .icmp_code = v6 ? 0 : 4, .icmp_rest = v6 ? 1280 : 1400,
		.payload = q_sent.b + q_sent.l3off, .plen = q_sent.len - q_sent.l3off,
	};
	memcpy(e.dmac, h_mac_backend_if, 6);
	h_mac_backend(2, e.smac);
	h_build(&e, &pin);

	/* The quote becomes client -> VIP; its TCP checksum stays as quoted. */
	orig = sent;
	orig.src = in.src;
	orig.dst = in.dst;
	orig.sport = in.sport;
	orig.dport = in.dport;
	h_build(&orig, &q_orig);
	memcpy(q_orig.b + q_orig.l4off + 16, q_sent.b + q_sent.l4off + 16, 2);
	w = e;
	w.src = in.dst;
	w.dst = in.src;
	w.ttl = 63;
	w.payload = q_orig.b + q_orig.l3off;
	memcpy(w.smac, h_mac_client_if, 6);
	h_mac_client(1, w.dmac);
	h_build(&w, &want);
	h_expect(h_run_tc(&pin, h_ifindex_backend(), &out), TC_ACT_REDIRECT, &out, &want);
	assert_int_equal(h_event(LB_EV_ICMP_FWD), 1);
}

static void test_icmp4_frag_needed(void **st) { (void)st; icmp_error(4); }
static void test_icmp6_packet_too_big(void **st) { (void)st; icmp_error(6); }

/* Program id of our clsact ingress filter on ifindex, or 0 when none. */
static __u32 tc_filter_prog(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = 0x1bd, .priority = 1);

	return bpf_tc_query(&hook, &o) ? 0 : o.prog_id;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

/* Attach, attach again, a second data path (a restarted lbd) replaces the
 * filter in place, detach twice. */
static void test_attach_replace_detach(void **st)
{
	struct lb_dp_opts o = { .ct_size = 1024 };
	int ifi = h_ifindex_backend();
	struct lb_dp *dp2;

	(void)st;
	assert_int_equal(tc_filter_prog(ifi), 0);
	assert_int_equal(lb_dp_attach(h_dp(), ifi, LB_DP_TC), 0);
	assert_int_equal(tc_filter_prog(ifi), prog_id(lb_dp_tc_prog_fd(h_dp())));
	assert_int_equal(lb_dp_attach(h_dp(), ifi, LB_DP_TC), 0);

	assert_int_equal(lb_dp_open(&o, &dp2), 0);
	assert_int_equal(lb_dp_tc_prog_fd(dp2), -ENOENT); /* loaded on demand */
	assert_int_equal(lb_dp_attach(dp2, ifi, LB_DP_TC), 0);
	assert_true(lb_dp_tc_prog_fd(dp2) >= 0);
	assert_int_equal(tc_filter_prog(ifi), prog_id(lb_dp_tc_prog_fd(dp2)));
	/* The filter outlives the data path that attached it. */
	lb_dp_close(dp2);
	assert_int_not_equal(tc_filter_prog(ifi), 0);

	assert_int_equal(lb_dp_detach(h_dp(), ifi, LB_DP_TC), 0);
	assert_int_equal(tc_filter_prog(ifi), 0);
	assert_int_equal(lb_dp_detach(h_dp(), ifi, LB_DP_TC), 0);
	assert_int_equal(lb_dp_attach(h_dp(), 99999, LB_DP_TC), -ENODEV);
}

/*
 * The main programs tail-call the new-flow one (xdp_calls, tc_calls). With
 * its slot empty, a new flow is dropped and counted, never sent anywhere;
 * an established flow goes on: the established path takes no tail call.
 * Nor does a flow of the new tier (lb_tier), one the backend has not
 * answered yet or one that is closing before it was promoted.
 */
static void no_new_flow_program(bool tc)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40010, 80), in2 = in, r;
	struct h_spec in3 = h_from_client(4, IPPROTO_TCP, 40020, 80);
	int calls = lb_dp_map_fd(h_dp(), tc ? LB_MAP_TC_CALLS : LB_MAP_XDP_CALLS);
	struct h_pkt pin, out;
	__u32 k = LB_CALL_NEW_FLOW;
	uint16_t port, port3;
	int v;

	add_vip(4, IPPROTO_TCP);
	port3 = forward(&in3, tc);
	port = forward(&in, tc);
	/* into the established tier (conntrack.h): the backend sends a
	 * segment without SYN, then the client sends again */
	r = h_from_backend(4, IPPROTO_TCP, port);
	r.tcp_flags = 0x10;
	h_build(&r, &pin);
	v = tc ? h_run_tc(&pin, h_ifindex_backend(), &out) : h_run(&pin, h_ifindex_backend(), &out);
	assert_int_equal(v, tc ? TC_ACT_REDIRECT : XDP_REDIRECT);
	in.tcp_flags = 0x10;
	in.seq++;
	in.ack = 5000;
	assert_int_equal(forward(&in, tc), port);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 1);
	assert_true(calls >= 0);
	assert_int_equal(bpf_map_delete_elem(calls, &k), 0);

	in2.sport++;
	in2.tcp_flags = 0x02;
	h_build(&in2, &pin);
	v = tc ? h_run_tc(&pin, h_ifindex_client(), &out) : h_run(&pin, h_ifindex_client(), &out);
	h_expect(v, tc ? TC_ACT_SHOT : XDP_DROP, &out, &pin);
	assert_int_equal(h_drops(LB_DROP_NO_PROG), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 2);

	in.seq++;
	assert_int_equal(forward(&in, tc), port);
	assert_int_equal(h_drops(LB_DROP_NO_PROG), 1);

	/* in3's backend never answered: its ACK, data and FIN go out of
	 * the new tier, to the backend and SNAT port its SYN got */
	in3.tcp_flags = 0x10;
	in3.seq++;
	in3.ack = 7000;
	assert_int_equal(forward(&in3, tc), port3);
	in3.tcp_flags = 0x18;
	assert_int_equal(forward(&in3, tc), port3);
	in3.tcp_flags = 0x11;
	assert_int_equal(forward(&in3, tc), port3);
	in3.tcp_flags = 0x10;
	in3.seq++;
	assert_int_equal(forward(&in3, tc), port3);
	assert_int_equal(h_drops(LB_DROP_NO_PROG), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 2);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 1);
	/* a SYN on the closed flow's tuple is a new connection: only the
	 * new-flow program may place it */
	in3.tcp_flags = 0x02;
	in3.seq += 1000;
	in3.ack = 0;
	h_build(&in3, &pin);
	v = tc ? h_run_tc(&pin, h_ifindex_client(), &out) : h_run(&pin, h_ifindex_client(), &out);
	h_expect(v, tc ? TC_ACT_SHOT : XDP_DROP, &out, &pin);
	assert_int_equal(h_drops(LB_DROP_NO_PROG), 2);
}

static void test_xdp_no_new_flow_program(void **st) { (void)st; no_new_flow_program(false); }
static void test_tc_no_new_flow_program(void **st) { (void)st; no_new_flow_program(true); }

static __u32 call_slot(struct lb_dp *dp, const char *map)
{
	__u32 k = LB_CALL_NEW_FLOW, id = 0;

	assert_int_equal(bpf_map_lookup_elem(lb_dp_map_fd(dp, map), &k, &id), 0);
	return id;
}

static void rm_dir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A restarted lbd takes the pinned prog arrays over and puts its own
 * programs in them: the earlier lbd's (alive while a slot holds them) would
 * otherwise serve every new flow. */
static void test_pinned_calls_refilled(void **st)
{
	char dir[] = "/sys/fs/bpf/lbd-test-calls-XXXXXX";
	struct lb_dp_opts o = { .load_tc = true };
	struct lb_dp *dp1, *dp2;
	__u32 x1, t1, x2, t2;

	(void)st;
	assert_non_null(mkdtemp(dir));
	o.pin_root = dir;
	assert_int_equal(lb_dp_open(&o, &dp1), 0);
	x1 = call_slot(dp1, LB_MAP_XDP_CALLS);
	t1 = call_slot(dp1, LB_MAP_TC_CALLS);
	lb_dp_close(dp1);
	assert_int_equal(lb_dp_open(&o, &dp2), 0);
	assert_true(lb_dp_adopted(dp2));
	x2 = call_slot(dp2, LB_MAP_XDP_CALLS);
	t2 = call_slot(dp2, LB_MAP_TC_CALLS);
	lb_dp_close(dp2);
	rm_dir(dir);
	assert_true(x1 && t1 && x2 && t2);
	assert_int_not_equal(x1, x2);
	assert_int_not_equal(t1, t2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_tc_up, h_dp_down)

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
		T(test_attach_replace_detach),
		T(test_icmp4_frag_needed),
		T(test_icmp6_packet_too_big),
		T(test_xdp_no_new_flow_program),
		T(test_tc_no_new_flow_program),
		cmocka_unit_test(test_pinned_calls_refilled),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
