// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The next-hop cache of lb_xdp (struct lb_nh in ct and nat entries): an
 * established flow, or one in the new tier after its first packet, keeps
 * the next hop of its last fib lookup until
 * userspace bumps lb_config.fib_gen, then routes again. Neighbour MAC
 * changes are how the tests tell a cached send from a looked-up one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "harness.h"

static const struct h_be be4_one[] = { { .id = 1, .addr = H_BE4, .port = 8080 } };
static const struct h_be be6_one[] = { { .id = 1, .addr = H_BE6, .port = 8080 } };
static const uint8_t new_mac[6] = { 0x02, 0, 0, 0, 0xaa, 0x01 };

static struct h_svc svc(int fam, uint8_t proto)
{
	return (struct h_svc){
		.vip_id = 7, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT,
		.be = fam == 6 ? be6_one : be4_one, .nbe = 1,
	};
}

static void sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		fail_msg("failed: %s", cmd);
}

/* Point addr's permanent neighbour entry on dev at mac. */
static void neigh(const char *addr, const char *dev, const uint8_t mac[6])
{
	sh("ip neigh replace %s lladdr %02x:%02x:%02x:%02x:%02x:%02x dev %s nud permanent",
	   addr, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], dev);
}

static void bump(void)
{
	assert_int_equal(lb_dp_fib_bump(h_dp()), 0);
}

/* Client packet n of the flow in: SYN first, then ACKs. */
static struct h_spec client_pkt(const struct h_spec *in, int n)
{
	struct h_spec s = *in;

	if (n > 0 && s.proto == IPPROTO_TCP) {
		s.tcp_flags = 0x10;
		s.seq += (uint32_t)n;
		s.ack = 5000;
	}
	return s;
}

/* Send client packet n; the frame to backend 1 must carry dmac. */
static void to_backend(const struct h_spec *in, int n, uint16_t port, const uint8_t dmac[6],
		       int want_verdict)
{
	struct h_spec s = client_pkt(in, n), w = h_to_backend(&s, port);
	struct h_pkt pin, out, want;

	memcpy(w.dmac, dmac, 6);
	h_build(&s, &pin);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), want_verdict, &out, &want);
}

/* The SNAT port the first packet got (the harness has one backend). */
static uint16_t first_packet(const struct h_spec *in)
{
	struct h_spec s = client_pkt(in, 0);
	struct h_pkt pin, out;

	h_build(&s, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
	return ntohs(h_port(&out, 0));
}

/* The backend answers (no SYN): the flow's next client packet moves it to
 * the established tier, whose flows keep their next hop (conntrack.h; new
 * ones route every packet). */
static void confirm(int fam, uint8_t proto, uint16_t port)
{
	struct h_spec r = h_from_backend(fam, proto, port);
	struct h_pkt pin, out;

	r.tcp_flags = 0x10;
	h_build(&r, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT);
}

static void forward_next_hop_change(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto);
	struct h_spec in = h_from_client(fam, proto, 41000, 80);
	const char *be = fam == 6 ? H_BE6 : H_BE4;
	uint8_t old_mac[6];
	uint16_t port;

	h_mac_backend(1, old_mac);
	h_svc_add(&s);
	port = first_packet(&in);
	confirm(fam, proto, port);
	to_backend(&in, 1, port, old_mac, XDP_REDIRECT); /* promoted, fills the cache */
	neigh(be, H_BACKEND_IF, new_mac);
	/* Until userspace says routes may have changed, the flow keeps its
	 * next hop: this is what spares it the lookup. */
	to_backend(&in, 2, port, old_mac, XDP_REDIRECT);
	to_backend(&in, 3, port, old_mac, XDP_REDIRECT);
	bump();
	to_backend(&in, 4, port, new_mac, XDP_REDIRECT);
	to_backend(&in, 5, port, new_mac, XDP_REDIRECT);
	neigh(be, H_BACKEND_IF, old_mac);
	to_backend(&in, 6, port, new_mac, XDP_REDIRECT);
	bump();
	to_backend(&in, 7, port, old_mac, XDP_REDIRECT);
	assert_int_equal(h_event(LB_EV_REDIRECT), 9);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 1);
}

static void test_tcp4_next_hop_change(void **st) { (void)st; forward_next_hop_change(4, IPPROTO_TCP); }
static void test_udp6_next_hop_change(void **st) { (void)st; forward_next_hop_change(6, IPPROTO_UDP); }

/* Backend reply n to SNAT port; the frame to client 1 must carry dmac. */
static void to_client(int fam, uint8_t proto, uint16_t port, int n, const uint8_t dmac[6])
{
	struct h_spec r = h_from_backend(fam, proto, port), w;
	struct h_pkt pin, out, want;

	if (proto == IPPROTO_TCP && n > 0) {
		r.tcp_flags = 0x10;
		r.seq += (uint32_t)n;
	}
	w = r;
	w.src = fam == 6 ? H_VIP6 : H_VIP4;
	w.dst = fam == 6 ? H_CL6 : H_CL4;
	w.sport = 80;
	w.dport = 41001;
	w.ttl = 62;
	memcpy(w.smac, h_mac_client_if, 6);
	memcpy(w.dmac, dmac, 6);
	h_build(&r, &pin);
	h_build(&w, &want);
	h_expect(h_run(&pin, h_ifindex_backend(), &out), XDP_REDIRECT, &out, &want);
}

static void reply_next_hop_change(int fam, uint8_t proto)
{
	struct h_svc s = svc(fam, proto);
	struct h_spec in = h_from_client(fam, proto, 41001, 80);
	const char *cl = fam == 6 ? H_CL6 : H_CL4;
	uint8_t old_mac[6];
	uint16_t port;

	h_mac_client(1, old_mac);
	h_svc_add(&s);
	port = first_packet(&in);
	to_client(fam, proto, port, 0, old_mac); /* fills the nat entry's */
	neigh(cl, H_CLIENT_IF, new_mac);
	to_client(fam, proto, port, 1, old_mac);
	bump();
	to_client(fam, proto, port, 2, new_mac);
	neigh(cl, H_CLIENT_IF, old_mac);
	to_client(fam, proto, port, 3, new_mac);
	bump();
	to_client(fam, proto, port, 4, old_mac);
	assert_int_equal(h_event(LB_EV_REPLY), 5);
}

static void test_tcp4_reply_next_hop_change(void **st) { (void)st; reply_next_hop_change(4, IPPROTO_TCP); }
static void test_tcp6_reply_next_hop_change(void **st) { (void)st; reply_next_hop_change(6, IPPROTO_TCP); }

/* A flow its backend has not answered stays in the new tier (conntrack.h),
 * as a short connection whose server closes first does all its life: its
 * packets keep the next hop they found there, as an established flow's do
 * (lb_tier). Only the SYN's is not kept. */
static void test_new_tier_cached(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41005, 80);
	uint8_t old_mac[6];
	uint16_t port;

	(void)st;
	h_mac_backend(1, old_mac);
	h_svc_add(&s);
	port = first_packet(&in);
	neigh(H_BE4, H_BACKEND_IF, new_mac);
	to_backend(&in, 1, port, new_mac, XDP_REDIRECT); /* routes, fills the cache */
	neigh(H_BE4, H_BACKEND_IF, old_mac);
	to_backend(&in, 2, port, new_mac, XDP_REDIRECT);
	to_backend(&in, 3, port, new_mac, XDP_REDIRECT);
	bump();
	to_backend(&in, 4, port, old_mac, XDP_REDIRECT);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_event(LB_EV_CT_PROMOTE), 0);
	assert_int_equal(h_event(LB_EV_REDIRECT), 5);
}

/* A packet over the MTU the cached route had takes the lookup, which drops
 * it as before; one that fits still leaves, cached or not. */
static void test_mtu_cached(void **st)
{
	static uint8_t big[1400];
	struct h_svc s = svc(4, IPPROTO_UDP);
	struct h_spec in = h_from_client(4, IPPROTO_UDP, 41002, 80), b;
	struct h_pkt pin, out;
	uint8_t mac[6];
	uint16_t port;
	int v1, v2, v3;

	(void)st;
	h_mac_backend(1, mac);
	h_svc_add(&s);
	sh("ip link set " H_BACKEND_IF " mtu 1280");
	port = first_packet(&in);
	to_backend(&in, 1, port, mac, XDP_REDIRECT); /* cached with MTU 1280 */
	b = in;
	b.payload = big;
	b.plen = sizeof(big);
	h_build(&b, &pin);
	v1 = h_run(&pin, h_ifindex_client(), &out);
	sh("ip link set " H_BACKEND_IF " mtu 1500");
	/* no bump: the cached MTU is smaller, so the lookup runs and sees
	 * the new one */
	v2 = h_run(&pin, h_ifindex_client(), &out);
	/* now cached with 1500; an MTU drop needs the bump to be seen */
	sh("ip link set " H_BACKEND_IF " mtu 1280");
	bump();
	v3 = h_run(&pin, h_ifindex_client(), &out);
	sh("ip link set " H_BACKEND_IF " mtu 1500");
	assert_int_equal(v1, XDP_DROP);
	assert_int_equal(v2, XDP_REDIRECT);
	assert_int_equal(v3, XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_MTU), 2);
	to_backend(&in, 2, port, mac, XDP_REDIRECT);
}

/* Tagged frames leave where they came in, from the cache as well. */
static void test_vlan_cached(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41003, 80);
	uint8_t mac[6];
	uint16_t port = 0;

	(void)st;
	h_mac_backend(1, mac);
	h_svc_add(&s);
	in.nvlan = 1;
	in.tpid[0] = 0x8100;
	in.vid[0] = 100;
	for (int n = 0; n < 3; n++) {
		struct h_spec c = client_pkt(&in, n);
		struct h_pkt pin, out;

		h_build(&c, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_TX);
		if (!port)
			port = ntohs(h_port(&out, 0));
		to_backend(&in, n, port, mac, XDP_TX);
	}
	assert_int_equal(h_event(LB_EV_TX), 6);
	assert_int_equal(h_event(LB_EV_REDIRECT), 0);
}

/* A flow whose next hop has no neighbour is passed each time, never
 * cached: the lookup runs again until the neighbour is there. */
static void test_no_neigh_not_cached(void **st)
{
	static const struct h_be nn[] = { { .id = 1, .addr = "198.18.1.99", .port = 8080 } };
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0x01, 0x99 };
	struct h_svc s = svc(4, IPPROTO_TCP);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 41004, 80), c;
	struct h_pkt pin, out;
	int v;

	(void)st;
	s.be = nn;
	h_svc_add(&s);
	for (int n = 0; n < 2; n++) {
		c = client_pkt(&in, n);
		h_build(&c, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_PASS);
	}
	assert_int_equal(h_event(LB_EV_PASS_NO_NEIGH), 2);
	neigh("198.18.1.99", H_BACKEND_IF, mac);
	c = client_pkt(&in, 2);
	h_build(&c, &pin);
	v = h_run(&pin, h_ifindex_client(), &out);
	sh("ip neigh del 198.18.1.99 dev " H_BACKEND_IF);
	assert_int_equal(v, XDP_REDIRECT);
	assert_memory_equal(out.b, mac, 6);
}

/* A failed test leaves the topology as the next one expects it. */
static int teardown(void **state)
{
	uint8_t mac[6];

	h_mac_backend(1, mac);
	neigh(H_BE4, H_BACKEND_IF, mac);
	neigh(H_BE6, H_BACKEND_IF, mac);
	h_mac_client(1, mac);
	neigh(H_CL4, H_CLIENT_IF, mac);
	neigh(H_CL6, H_CLIENT_IF, mac);
	sh("ip link set " H_BACKEND_IF " mtu 1500");
	sh("ip neigh flush to 198.18.1.99 dev " H_BACKEND_IF);
	return h_dp_down(state);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tcp4_next_hop_change),
		T(test_udp6_next_hop_change),
		T(test_tcp4_reply_next_hop_change),
		T(test_tcp6_reply_next_hop_change),
		T(test_new_tier_cached),
		T(test_mtu_cached),
		T(test_vlan_cached),
		T(test_no_neigh_not_cached),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
