// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the XDP program leaves alone (XDP_PASS, byte for byte) and what it
 * drops, one case per drop reason a packet can trigger, each checking the
 * reason's counter. Two reasons cannot be reached from a packet:
 * LB_DROP_TRUNC_L2 (a frame too short for its Ethernet/VLAN headers carries
 * no address, so it cannot be known to be for a VIP and is passed) and
 * LB_DROP_CT_INSERT (conntrack is an LRU map: inserts evict, never fail).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>

#include "harness.h"

#define VIP4 "198.18.10.1"
#define VIP6 "2001:2:0:a::1"

/* Backend ids: 1..4 for VIP ids 1..4 (a backend belongs to one VIP). */
static const struct h_be be4[] = { { .id = 1, .addr = "198.18.1.1", .port = 8080 } };
static const struct h_be be6[] = { { .id = 2, .addr = "2001:2:0:1::1", .port = 8080 } };
static const struct h_be be4u[] = { { .id = 3, .addr = "198.18.1.1", .port = 8080 } };
static const struct h_be be6u[] = { { .id = 4, .addr = "2001:2:0:1::1", .port = 8080 } };

static void add_vips(void)
{
	struct h_svc s4 = { .vip_id = 1, .family = 4, .vip = VIP4, .port = 80,
			    .proto = IPPROTO_TCP, .be = be4, .nbe = 1 };
	struct h_svc s6 = { .vip_id = 2, .family = 6, .vip = VIP6, .port = 80,
			    .proto = IPPROTO_TCP, .be = be6, .nbe = 1 };
	struct h_svc u4 = s4, u6 = s6;

	u4.vip_id = 3;
	u4.proto = IPPROTO_UDP;
	u4.be = be4u;
	u6.vip_id = 4;
	u6.proto = IPPROTO_UDP;
	u6.be = be6u;
	h_svc_add(&s4);
	h_svc_add(&s6);
	h_svc_add(&u4);
	h_svc_add(&u6);
}

static struct h_spec pkt(int fam, uint8_t proto, const char *dst, uint16_t dport)
{
	static const char pl[] = "payload";
	struct h_spec s = {
		.family = fam, .src = fam == 6 ? "2001:2::1" : "198.18.0.1", .dst = dst,
		.proto = proto, .sport = 33333, .dport = dport, .tcp_flags = 0x02,
		.payload = pl, .plen = sizeof(pl) - 1,
	};

	memcpy(s.dmac, h_mac_client_if, 6);
	h_mac_client(1, s.smac);
	return s;
}

static void expect_pass(const struct h_pkt *in)
{
	struct h_pkt out;

	h_expect(h_run(in, h_ifindex_client(), &out), XDP_PASS, &out, in);
}

static void expect_drop(const struct h_pkt *in, unsigned int reason)
{
	uint64_t before = h_drops(reason);
	struct h_pkt out;

	h_expect(h_run(in, h_ifindex_client(), &out), XDP_DROP, &out, in);
	assert_int_equal(h_drops(reason), before + 1);
}

/* ---- left alone ---- */

static void test_pass_non_vip(void **st)
{
	struct h_spec s;
	struct h_pkt p;

	(void)st;
	add_vips();
	s = pkt(4, IPPROTO_TCP, "198.18.0.254", 22);
	h_build(&s, &p);
	expect_pass(&p);
	s = pkt(6, IPPROTO_UDP, "2001:2::fe", 53);
	h_build(&s, &p);
	expect_pass(&p);
	s = pkt(4, IPPROTO_UDP, "198.18.10.2", 80); /* next to a VIP */
	h_build(&s, &p);
	expect_pass(&p);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
}

static void test_pass_arp(void **st)
{
	/* who-has 198.18.10.1 tell 198.18.0.1 */
	static const uint8_t arp[28] = {
		0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 1,
		0, 0, 0, 0, 0, 0, 198, 18, 10, 1,
	};
	struct h_spec s = { .ethertype = 0x0806, .payload = arp, .plen = sizeof(arp) };
	struct h_pkt p;

	(void)st;
	add_vips();
	memset(s.dmac, 0xff, 6);
	h_mac_client(1, s.smac);
	h_build(&s, &p);
	expect_pass(&p);
}

static void test_pass_non_vip_port(void **st)
{
	struct h_spec s;
	struct h_pkt p;

	(void)st;
	add_vips();
	s = pkt(4, IPPROTO_TCP, VIP4, 443);
	h_build(&s, &p);
	expect_pass(&p);
	s = pkt(6, IPPROTO_TCP, VIP6, 8443); /* in the SNAT port range */
	h_build(&s, &p);
	expect_pass(&p);
	s = pkt(4, IPPROTO_ICMP, VIP4, 0); /* echo request to a VIP */
	s.icmp_type = 8;
	h_build(&s, &p);
	expect_pass(&p);
	s = pkt(4, 47, VIP4, 0); /* GRE: not balanced */
	h_build(&s, &p);
	expect_pass(&p);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
}

static void test_pass_tagged_non_vip(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, "198.18.0.254", 22);
	struct h_pkt p;

	(void)st;
	add_vips();
	s.nvlan = 2;
	s.tpid[0] = 0x88a8;
	s.vid[0] = 10;
	s.tpid[1] = 0x8100;
	s.vid[1] = 20;
	h_build(&s, &p);
	expect_pass(&p);
}

/* Malformed but not for a VIP: the stack's business, not ours. */
static void test_pass_malformed_non_vip(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, "198.18.0.254", 22);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_build(&s, &p);
	p.b[p.l3off] = 0x44; /* IHL 4 */
	expect_pass(&p);
	s.frag = 0x2000; /* more fragments */
	h_build(&s, &p);
	expect_pass(&p);
	for (unsigned int r = 0; r < LB_DROP_REASONS; r++)
		assert_int_equal(h_drops(r), 0);
}

/* ---- drops ---- */

static void test_drop_trunc_l3(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	s.ipopt_len = 8;
	h_build(&s, &p);
	p.len = p.l3off + 24; /* options cut short */
	expect_drop(&p, LB_DROP_TRUNC_L3);
	s = pkt(6, IPPROTO_TCP, VIP6, 80);
	s.next = 1;
	s.ext[0] = (struct h_ext){ .type = IPPROTO_HOPOPTS };
	h_build(&s, &p);
	p.len = p.l3off + 44; /* extension header cut short */
	expect_drop(&p, LB_DROP_TRUNC_L3);
}

static void test_drop_bad_l3(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_build(&s, &p);
	p.b[p.l3off] = 0x44; /* IHL 4 */
	expect_drop(&p, LB_DROP_BAD_L3);
	h_build(&s, &p);
	p.b[p.l3off] = 0x55; /* version 5 under the IPv4 ethertype */
	expect_drop(&p, LB_DROP_BAD_L3);
	h_build(&s, &p);
	p.b[p.l3off + 2] = 0;
	p.b[p.l3off + 3] = 19; /* total length shorter than the header */
	expect_drop(&p, LB_DROP_BAD_L3);
	s = pkt(6, IPPROTO_TCP, VIP6, 80);
	h_build(&s, &p);
	p.b[p.l3off] = 0x40; /* version 4 under the IPv6 ethertype */
	expect_drop(&p, LB_DROP_BAD_L3);
}

/* The IP length claims more than the frame carries. */
static void test_drop_short_datagram(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_build(&s, &p);
	p.len -= 2;
	expect_drop(&p, LB_DROP_TRUNC_L3);
	s = pkt(6, IPPROTO_UDP, VIP6, 80);
	h_build(&s, &p);
	p.len -= 1;
	expect_drop(&p, LB_DROP_TRUNC_L3);
}

/* Set the IP length field (IPv4 total length / IPv6 payload length). */
static void set_ip_len(struct h_pkt *p, int fam, uint16_t v)
{
	p->b[p->l3off + (fam == 6 ? 4 : 2)] = (uint8_t)(v >> 8);
	p->b[p->l3off + (fam == 6 ? 5 : 3)] = (uint8_t)v;
}

static void test_drop_trunc_l4(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_build(&s, &p);
	p.len = p.l4off + 19; /* datagram and frame end inside the TCP header */
	set_ip_len(&p, 4, 20 + 19);
	expect_drop(&p, LB_DROP_TRUNC_L4);
	h_build(&s, &p); /* the rest of the header is in the Ethernet padding */
	set_ip_len(&p, 4, 20 + 10);
	expect_drop(&p, LB_DROP_TRUNC_L4);
	s = pkt(6, IPPROTO_UDP, VIP6, 80);
	h_build(&s, &p);
	p.len = p.l4off + 7;
	set_ip_len(&p, 6, 7);
	expect_drop(&p, LB_DROP_TRUNC_L4);
	s = pkt(4, IPPROTO_ICMP, VIP4, 0);
	h_build(&s, &p);
	p.len = p.l4off + 4;
	set_ip_len(&p, 4, 20 + 4);
	expect_drop(&p, LB_DROP_TRUNC_L4);
}

static void test_drop_bad_l4(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_build(&s, &p);
	p.b[p.l4off + 12] = 4 << 4; /* data offset 4 */
	expect_drop(&p, LB_DROP_BAD_L4);
}

static void test_drop_fragment(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_UDP, VIP4, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	s.frag = 0x2000; /* first fragment: MF */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_FRAGMENT);
	s.frag = 0x00b9; /* last fragment: offset, no MF */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_FRAGMENT);
	s = pkt(6, IPPROTO_UDP, VIP6, 80);
	s.next = 1;
	s.ext[0] = (struct h_ext){ .type = IPPROTO_FRAGMENT, .frag = 0x0001 }; /* M */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_FRAGMENT);
	s.ext[0].frag = 0x05c8; /* offset 185, last */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_FRAGMENT);
}

static void test_drop_too_many_exthdr(void **st)
{
	struct h_spec s = pkt(6, IPPROTO_TCP, VIP6, 80);
	struct h_pkt p, out;

	(void)st;
	add_vips();
	s.next = LB_MAX_EXTHDR;
	for (int i = 0; i < s.next; i++)
		s.ext[i] = (struct h_ext){ .type = IPPROTO_DSTOPTS };
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_EXTHDR);
	s.next = LB_MAX_EXTHDR - 1; /* the most that is parsed */
	h_build(&s, &p);
	assert_int_equal(h_run(&p, h_ifindex_client(), &out), XDP_REDIRECT);
}

static void test_drop_no_backend(void **st)
{
	struct h_svc e = { .vip_id = 9, .family = 4, .vip = "198.18.10.9", .port = 80,
			   .proto = IPPROTO_TCP };
	struct h_spec s = pkt(4, IPPROTO_TCP, "198.18.10.9", 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	h_svc_add(&e); /* no backends: empty table */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_NO_BACKEND);
	/* A table slot naming a freed backend. */
	h_backend_state(1, LB_BE_UNUSED);
	s = pkt(4, IPPROTO_TCP, VIP4, 80);
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_NO_BACKEND);
}

static void test_drop_no_table(void **st)
{
	struct h_spec s = pkt(6, IPPROTO_TCP, VIP6, 80);
	struct h_pkt p;

	(void)st;
	add_vips();
	assert_int_equal(lb_dp_table_clear(h_dp(), 2), 0);
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_NO_TABLE);
}

static void test_drop_snat_exhausted(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_TCP, VIP4, 80);
	struct h_pkt p, out;

	(void)st;
	h_config(5000, 5000, 1); /* one SNAT port */
	add_vips();
	h_build(&s, &p);
	assert_int_equal(h_run(&p, h_ifindex_client(), &out), XDP_REDIRECT);
	assert_int_equal(ntohs(h_port(&out, 0)), 5000);
	s.sport++; /* a second flow to the same backend needs another port */
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_SNAT_EXHAUSTED);
}

static void test_drop_no_route(void **st)
{
	static const struct h_be dead4[] = { { .id = 5, .addr = "198.18.9.1", .port = 80 } };
	static const struct h_be dead6[] = { { .id = 6, .addr = "2001:2:0:9::1", .port = 80 } };
	struct h_svc s4 = { .vip_id = 5, .family = 4, .vip = "198.18.10.5", .port = 80,
			    .proto = IPPROTO_UDP, .be = dead4, .nbe = 1 };
	struct h_svc s6 = { .vip_id = 6, .family = 6, .vip = "2001:2:0:a::5", .port = 80,
			    .proto = IPPROTO_UDP, .be = dead6, .nbe = 1 };
	struct h_spec s = pkt(4, IPPROTO_UDP, "198.18.10.5", 80);
	struct h_pkt p, out;

	(void)st;
	h_svc_add(&s4);
	h_svc_add(&s6);
	h_build(&s, &p);
	assert_int_equal(h_run(&p, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_FIB), 1);
	s = pkt(6, IPPROTO_UDP, "2001:2:0:a::5", 80);
	h_build(&s, &p);
	assert_int_equal(h_run(&p, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_FIB), 2);
}

static void test_drop_bad_icmp(void **st)
{
	struct h_spec s = pkt(4, IPPROTO_ICMP, VIP4, 0);
	struct h_pkt p;
	static const uint8_t shortq[12] = { 0x45, 0, 0, 40 };

	(void)st;
	add_vips();
	s.icmp_type = 3; /* unreachable, quoting 12 bytes of an IP header */
	s.icmp_code = 4;
	s.payload = shortq;
	s.plen = sizeof(shortq);
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_BAD_ICMP);
	s = pkt(6, IPPROTO_ICMPV6, VIP6, 0);
	s.icmp_type = 2;
	s.payload = shortq;
	s.plen = sizeof(shortq);
	h_build(&s, &p);
	expect_drop(&p, LB_DROP_BAD_ICMP);
}

static void test_drop_mtu(void **st)
{
	static uint8_t big[1400];
	struct h_spec s = pkt(4, IPPROTO_UDP, VIP4, 80);
	struct h_pkt p, out;
	int v;

	(void)st;
	add_vips();
	s.payload = big;
	s.plen = sizeof(big);
	h_build(&s, &p);
	if (system("ip link set " H_BACKEND_IF " mtu 1280"))
		fail_msg("cannot set the MTU");
	v = h_run(&p, h_ifindex_client(), &out);
	if (system("ip link set " H_BACKEND_IF " mtu 1500"))
		fail_msg("cannot restore the MTU");
	assert_int_equal(v, XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_MTU), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pass_non_vip),
		T(test_pass_arp),
		T(test_pass_non_vip_port),
		T(test_pass_tagged_non_vip),
		T(test_pass_malformed_non_vip),
		T(test_drop_trunc_l3),
		T(test_drop_bad_l3),
		T(test_drop_short_datagram),
		T(test_drop_trunc_l4),
		T(test_drop_bad_l4),
		T(test_drop_fragment),
		T(test_drop_too_many_exthdr),
		T(test_drop_no_backend),
		T(test_drop_no_table),
		T(test_drop_snat_exhausted),
		T(test_drop_no_route),
		T(test_drop_bad_icmp),
		T(test_drop_mtu),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
