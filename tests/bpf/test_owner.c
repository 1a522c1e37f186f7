// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Forward to the owner (bpf/lib/lb.h lb_to_owner, the owners map): a TCP
 * packet of a flow that a peer node pushed as its own, arriving here with no
 * flow (or only a closed one), leaves where it came in with only the MACs
 * changed, to the owner; a SYN, a packet from the owner itself, or one for
 * an owner on another interface is this node's as before.
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

static const uint8_t owner_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x0a, 0x02 };
static const struct h_be be4_one[] = { { .id = 1, .addr = H_BE4, .port = 8080 } };
static const struct h_be be6_one[] = { { .id = 1, .addr = H_BE6, .port = 8080 } };

static void svc_up(int fam)
{
	struct h_svc s = {
		.vip_id = 7, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = IPPROTO_TCP, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT,
		.be = fam == 6 ? be6_one : be4_one, .nbe = 1,
	};

	h_svc_add(&s);
}

/* The owners entry of in's client tuple. */
static void owner_set(const struct h_spec *in, const uint8_t mac[6], int ifindex)
{
	struct lb_flow_key k = { .sport = htons(in->sport), .dport = htons(in->dport),
				 .proto = in->proto,
				 .family = in->family == 6 ? LB_AF_INET6 : LB_AF_INET };
	struct lb_owner o = { .ifindex = (__u32)ifindex };

	h_addr(in->family, in->src, &k.src);
	h_addr(in->family, in->dst, &k.dst);
	memcpy(o.mac, mac, 6);
	assert_int_equal(bpf_map_update_elem(lb_dp_map_fd(h_dp(), LB_MAP_OWNERS), &k, &o, BPF_ANY), 0);
}

/* in (an ACK) goes back out to the owner: the same bytes, new MACs. */
static void to_owner_ok(const struct h_spec *in)
{
	struct h_pkt pin, out, want;
	struct h_spec w = *in;

	h_build(in, &pin);
	memcpy(w.smac, h_mac_client_if, 6);
	memcpy(w.dmac, owner_mac, 6);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_TX, &out, &want);
}

static void ack_to_owner(int fam)
{
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 41000, 80);

	svc_up(fam);
	in.tcp_flags = 0x10;
	owner_set(&in, owner_mac, h_ifindex_client());
	to_owner_ok(&in);
	assert_int_equal(h_event(LB_EV_TO_OWNER), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
	assert_int_equal(h_conns(1), 0);
}

static void test_ack4_to_owner(void **st) { (void)st; ack_to_owner(4); }
static void test_ack6_to_owner(void **st) { (void)st; ack_to_owner(6); }

/* A SYN opens a connection here, owner or not. */
static void test_syn_stays(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41001, 80);
	struct h_pkt pin, out;

	(void)st;
	svc_up(4);
	owner_set(&in, owner_mac, h_ifindex_client());
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_event(LB_EV_TO_OWNER), 0);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

/* From the owner itself (two drained nodes), or an owner behind another
 * interface: not sent on; this node takes the packet as before. */
static void test_not_back_to_sender(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41002, 80);
	struct h_spec in2 = h_from_client(4, IPPROTO_TCP, 41003, 80);
	struct h_pkt pin, out;

	(void)st;
	svc_up(4);
	in.tcp_flags = in2.tcp_flags = 0x10;
	owner_set(&in, in.smac, h_ifindex_client());
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	owner_set(&in2, owner_mac, h_ifindex_backend());
	h_build(&in2, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(h_event(LB_EV_TO_OWNER), 0);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 2);
}

/* A closed flow here with the same tuple (the client reused its port) does
 * not hide the owner's live one. */
static void test_closed_flow_yields(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41004, 80);
	struct h_pkt pin, out;

	(void)st;
	svc_up(4);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	in.tcp_flags = 0x11; /* FIN, ACK */
	in.plen = 0;
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	in.tcp_flags = 0x10;
	in.seq = 7000;
	owner_set(&in, owner_mac, h_ifindex_client());
	to_owner_ok(&in);
	assert_int_equal(h_event(LB_EV_TO_OWNER), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ack4_to_owner),
		T(test_ack6_to_owner),
		T(test_syn_stays),
		T(test_not_back_to_sender),
		T(test_closed_flow_yields),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
