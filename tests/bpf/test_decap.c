// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The backends' decapsulation program (bpf/lb_decap.bpf.c) through the real
 * object: what lb_xdp sends a backend in forward ipip and gue, IPv4 and
 * IPv6, tagged or not, comes out of lb_decap (XDP and TC) as exactly the
 * client's frame (the MACs of the hop to the backend), passed to the stack;
 * a tunnel packet for an address that is not local, GUE on another port,
 * and plain traffic pass byte for byte; GUE version 1 (IP right after UDP).
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

#include "decap.h"
#include "harness.h"

#define GUE_PORT 6080

static struct lb_decap_dp *dc;

static int up(void **state)
{
	if (h_tc_up(state) || lb_decap_open(GUE_PORT, &dc))
		return -1;
	return 0;
}

static int down(void **state)
{
	lb_decap_close(dc);
	dc = NULL;
	return h_dp_down(state);
}

static void local_vip(int fam)
{
	union lb_addr a;

	h_addr(fam, fam == 6 ? H_VIP6 : H_VIP4, &a);
	assert_int_equal(lb_decap_add_addr(dc, &a, (__u8)fam), 0);
}

static int decap_run(const struct h_pkt *in, bool tc, struct h_pkt *out)
{
	if (tc) {
		struct __sk_buff ctx = { .ifindex = (__u32)h_ifindex_backend(),
					 .ingress_ifindex = (__u32)h_ifindex_backend() };

		return h_test_run(lb_decap_prog_fd(dc, true), &ctx, sizeof(ctx), in, out);
	} else {
		struct xdp_md ctx = { .data_end = (__u32)in->len,
				      .ingress_ifindex = (__u32)h_ifindex_backend() };

		return h_test_run(lb_decap_prog_fd(dc, false), &ctx, sizeof(ctx), in, out);
	}
}

static __u64 stat(unsigned int s)
{
	__u64 st[LB_DECAP_STATS];

	assert_int_equal(lb_decap_stats(dc, st), 0);
	return st[s];
}

/* Encapsulate with lb_xdp (mode fwd), decapsulate, compare with the
 * client's frame as the backend would see it without a tunnel. */
static void round_trip(int fam, uint8_t proto, uint8_t fwd, int nvlan, bool tc)
{
	static const struct h_be be4[] = { { .id = 1, .addr = H_BE4, .port = 80 } };
	static const struct h_be be6[] = { { .id = 1, .addr = H_BE6, .port = 80 } };
	struct h_svc s = {
		.vip_id = 2, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = fwd, .encap_port = GUE_PORT,
		.be = fam == 6 ? be6 : be4, .nbe = 1,
	};
	struct h_spec in = h_from_client(fam, proto, 40500, 80), w;
	struct h_pkt pin, tun, out, want;
	int v;

	h_svc_add(&s);
	local_vip(fam);
	if (nvlan)
		h_vlan(&in, nvlan);
	h_build(&in, &pin);
	v = h_run(&pin, h_ifindex_client(), &tun);
	assert_int_equal(v, nvlan ? XDP_TX : XDP_REDIRECT);
	w = in;
	memcpy(w.smac, h_mac_backend_if, 6);
	h_mac_backend(1, w.dmac);
	h_build(&w, &want);
	h_expect(decap_run(&tun, tc, &out), tc ? TC_ACT_OK : XDP_PASS, &out, &want);
	assert_int_equal(stat(fwd == LB_FWD_GUE ? LB_DECAP_GUE : LB_DECAP_IPIP), 1);
}

static void test_ipip4(void **st) { (void)st; round_trip(4, IPPROTO_TCP, LB_FWD_IPIP, 0, false); }
static void test_ip6ip6(void **st) { (void)st; round_trip(6, IPPROTO_UDP, LB_FWD_IPIP, 0, false); }
static void test_gue4(void **st) { (void)st; round_trip(4, IPPROTO_UDP, LB_FWD_GUE, 0, false); }
static void test_gue6(void **st) { (void)st; round_trip(6, IPPROTO_TCP, LB_FWD_GUE, 0, false); }
static void test_vlan_ipip4(void **st) { (void)st; round_trip(4, IPPROTO_TCP, LB_FWD_IPIP, 1, false); }
static void test_qinq_gue6(void **st) { (void)st; round_trip(6, IPPROTO_TCP, LB_FWD_GUE, 2, false); }
static void test_tc_ipip4(void **st) { (void)st; round_trip(4, IPPROTO_TCP, LB_FWD_IPIP, 0, true); }
static void test_tc_gue6(void **st) { (void)st; round_trip(6, IPPROTO_UDP, LB_FWD_GUE, 0, true); }

/* A frame that lb_decap must leave alone, byte for byte. */
static void untouched(const struct h_pkt *p, bool tc)
{
	struct h_pkt out;

	h_expect(decap_run(p, tc, &out), tc ? TC_ACT_OK : XDP_PASS, &out, p);
	assert_int_equal(stat(LB_DECAP_IPIP) + stat(LB_DECAP_GUE), 0);
}

/* Tunnel packets whose inner destination is not an address of this host
 * (nothing in decap_addrs), and GUE to a port that is not ours. */
static void test_not_local_passes(void **st)
{
	static const struct h_be be4[] = { { .id = 1, .addr = H_BE4, .port = 80 } };
	struct h_svc s = {
		.vip_id = 2, .family = 4, .vip = H_VIP4, .port = 80, .proto = IPPROTO_TCP,
		.method = LB_METHOD_MAGLEV, .fwd = LB_FWD_GUE, .encap_port = GUE_PORT,
		.be = be4, .nbe = 1,
	};
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40600, 80);
	struct h_pkt pin, tun;

	(void)st;
	h_svc_add(&s);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &tun), XDP_REDIRECT);
	untouched(&tun, false);
	untouched(&tun, true);
	assert_int_equal(stat(LB_DECAP_NOT_LOCAL), 2);
	/* local now, but on another GUE port */
	local_vip(4);
	tun.b[tun.l3off + 20 + 2] ^= 1;
	untouched(&tun, false);
	/* and plain traffic to the VIP itself */
	untouched(&pin, false);
}

/* GUE version 1: the inner IPv4 header right after UDP, built by hand. */
static void test_gue_v1(void **st)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40700, 80), o, w;
	struct h_pkt pin, tun, out, want;

	(void)st;
	local_vip(4);
	h_build(&in, &pin);
	o = in;
	o.src = H_SNAT4;
	o.dst = H_BE4;
	o.proto = IPPROTO_UDP;
	o.sport = 50000;
	o.dport = GUE_PORT;
	o.payload = pin.b + pin.l3off;
	o.plen = pin.len - pin.l3off;
	h_build(&o, &tun);
	w = in;
	h_build(&w, &want);
	h_expect(decap_run(&tun, false, &out), XDP_PASS, &out, &want);
	assert_int_equal(stat(LB_DECAP_GUE), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, up, down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ipip4),
		T(test_ip6ip6),
		T(test_gue4),
		T(test_gue6),
		T(test_vlan_ipip4),
		T(test_qinq_gue6),
		T(test_tc_ipip4),
		T(test_tc_gue6),
		T(test_not_local_passes),
		T(test_gue_v1),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
