// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * forward ipip and gue through the real XDP and TC objects: the exact frame
 * a backend receives (outer IPv4 or IPv6 header, GUE's UDP and GUE headers,
 * the client's packet inside byte for byte), checksums computed here from
 * scratch over the finished bytes (the IPv6 GUE checksum over the whole
 * datagram, which the data path computes without reading the payload),
 * established flows, the MTU limit with the overhead, VLAN-tagged ingress,
 * a VIP without an outer source, and two independently loaded data paths
 * with the same configuration (built in different orders, with different
 * backend ids) sending every flow to the same backend: what ECMP across
 * several lbd nodes relies on.
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
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "lb_hash.h"
#pragma GCC diagnostic pop

#include "harness.h"
#include "table.h"

#define SEED     0x5eed /* h_dp_up's */
#define GUE_PORT 6080

static const struct h_be be4[] = { { .id = 1, .addr = H_BE4, .port = 80 } };
static const struct h_be be6[] = { { .id = 1, .addr = H_BE6, .port = 80 } };

static struct h_svc svc(int fam, uint8_t proto, uint8_t fwd)
{
	return (struct h_svc){
		.vip_id = 5, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = fwd, .encap_port = GUE_PORT,
		.be = fam == 6 ? be6 : be4, .nbe = 1,
	};
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The flow entropy the data path must put in the outer headers. */
static uint32_t entropy(const struct h_spec *in)
{
	struct lb_flow_key k;

	memset(&k, 0, sizeof(k));
	h_addr(in->family, in->src, &k.src);
	h_addr(in->family, in->dst, &k.dst);
	k.sport = htons(in->sport);
	k.dport = htons(in->dport);
	k.proto = in->proto;
	k.family = (uint8_t)in->family;
	return lb_hash_encap(&k, SEED);
}

/*
 * The frame backend `be` gets for the client frame pin (built from in): the
 * Ethernet header (and tags) of a frame to that backend, then the outer
 * headers, then pin from its IP header on, unchanged.
 */
static void want_encap(const struct h_spec *in, const struct h_pkt *pin, bool gue,
		       const char *be, struct h_pkt *w)
{
	bool v6 = in->family == 6;
	size_t l2 = pin->l3off, ilen, ohl = (v6 ? 40 : 20) + (gue ? 12 : 0);
	const uint8_t *inner = pin->b + l2;
	uint32_t h = entropy(in);
	union lb_addr src, dst;
	uint8_t *o;

	ilen = v6 ? 40u + get16(inner + 4) : get16(inner + 2);
	memset(w, 0, sizeof(*w));
	memcpy(w->b, pin->b, l2);
	h_mac_backend(1, w->b); /* the route to the backend's MACs */
	memcpy(w->b + 6, h_mac_backend_if, 6);
	o = w->b + l2;
	h_addr(in->family, v6 ? H_SNAT6 : H_SNAT4, &src);
	h_addr(in->family, be, &dst);
	if (v6) {
		uint32_t w0 = 6u << 28 | (uint32_t)((get16(inner) >> 4) & 0xff) << 20 | (h & 0xfffff);

		o[0] = (uint8_t)(w0 >> 24);
		o[1] = (uint8_t)(w0 >> 16);
		o[2] = (uint8_t)(w0 >> 8);
		o[3] = (uint8_t)w0;
		put16(o + 4, (uint16_t)(ilen + ohl - 40));
		o[6] = gue ? IPPROTO_UDP : IPPROTO_IPV6;
		o[7] = 64;
		memcpy(o + 8, src.b, 16);
		memcpy(o + 24, dst.b, 16);
	} else {
		o[0] = 0x45;
		o[1] = inner[1];                      /* TOS */
		put16(o + 2, (uint16_t)(ilen + ohl));
		memcpy(o + 4, inner + 4, 2);          /* identification */
		o[6] = inner[6] & 0x40;               /* DF only */
		o[8] = 64;
		o[9] = gue ? IPPROTO_UDP : IPPROTO_IPIP;
		memcpy(o + 12, &src.v4, 4);
		memcpy(o + 16, &dst.v4, 4);
		put16(o + 10, (uint16_t)~h_csum_fold(h_csum_add(0, o, 20)));
	}
	memcpy(o + ohl, inner, pin->len - l2);
	if (gue) {
		uint8_t *u = o + (v6 ? 40 : 20);
		uint16_t ulen = (uint16_t)(ilen + 12);

		put16(u, (uint16_t)(0xc000 | (h & 0x3fff)));
		put16(u + 2, GUE_PORT);
		put16(u + 4, ulen);
		u[8] = 0;
		u[9] = v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
		if (v6) {
			uint8_t ph[40] = { 0 };
			uint16_t c;

			memcpy(ph, src.b, 16);
			memcpy(ph + 16, dst.b, 16);
			put16(ph + 34, ulen);
			ph[39] = IPPROTO_UDP;
			c = (uint16_t)~h_csum_fold(h_csum_add(h_csum_add(0, ph, 40), u, ulen));
			put16(u + 6, c ? c : 0xffff);
		}
	}
	w->len = pin->len + ohl;
	w->l3off = l2;
	w->l4off = l2 + ohl;
}

/* One flow of a VIP in mode fwd: the first packet and an established one. */
static void encap(int fam, uint8_t proto, uint8_t fwd, bool tc)
{
	struct h_svc s = svc(fam, proto, fwd);
	struct h_spec in = h_from_client(fam, proto, 40100, 80);
	struct h_pkt pin, out, want;
	int verdict = tc ? TC_ACT_REDIRECT : XDP_REDIRECT;
	uint32_t id;

	h_svc_add(&s);
	in.ip_id = 0x4242;
	in.frag = 0x4000; /* DF, copied out */
	h_build(&in, &pin);
	want_encap(&in, &pin, fwd == LB_FWD_GUE, fam == 6 ? H_BE6 : H_BE4, &want);
	h_expect(tc ? h_run_tc(&pin, h_ifindex_client(), &out) : h_run(&pin, h_ifindex_client(), &out),
		 verdict, &out, &want);
	assert_int_equal(h_event(LB_EV_ENCAP), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
	assert_int_equal(h_flow_backend(fam, in.src, in.sport, in.dst, in.dport, proto, &id), 0);
	assert_int_equal(id, 1);

	/* established: the same encapsulation, no new flow */
	in.tcp_flags = 0x10;
	in.seq++;
	h_build(&in, &pin);
	want_encap(&in, &pin, fwd == LB_FWD_GUE, fam == 6 ? H_BE6 : H_BE4, &want);
	h_expect(tc ? h_run_tc(&pin, h_ifindex_client(), &out) : h_run(&pin, h_ifindex_client(), &out),
		 verdict, &out, &want);
	assert_int_equal(h_event(LB_EV_ENCAP), 2);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 1);
}

static void test_ipip4_tcp(void **st) { (void)st; encap(4, IPPROTO_TCP, LB_FWD_IPIP, false); }
static void test_ipip4_udp(void **st) { (void)st; encap(4, IPPROTO_UDP, LB_FWD_IPIP, false); }
static void test_ip6ip6_tcp(void **st) { (void)st; encap(6, IPPROTO_TCP, LB_FWD_IPIP, false); }
static void test_ip6ip6_udp(void **st) { (void)st; encap(6, IPPROTO_UDP, LB_FWD_IPIP, false); }
static void test_gue4_tcp(void **st) { (void)st; encap(4, IPPROTO_TCP, LB_FWD_GUE, false); }
static void test_gue4_udp(void **st) { (void)st; encap(4, IPPROTO_UDP, LB_FWD_GUE, false); }
static void test_gue6_tcp(void **st) { (void)st; encap(6, IPPROTO_TCP, LB_FWD_GUE, false); }
static void test_gue6_udp(void **st) { (void)st; encap(6, IPPROTO_UDP, LB_FWD_GUE, false); }
static void test_tc_ipip4(void **st) { (void)st; encap(4, IPPROTO_TCP, LB_FWD_IPIP, true); }
static void test_tc_ip6ip6(void **st) { (void)st; encap(6, IPPROTO_TCP, LB_FWD_IPIP, true); }
static void test_tc_gue4(void **st) { (void)st; encap(4, IPPROTO_UDP, LB_FWD_GUE, true); }
static void test_tc_gue6(void **st) { (void)st; encap(6, IPPROTO_TCP, LB_FWD_GUE, true); }

/* The GUE source port and the IPv6 flow label follow the flow. */
static void test_gue_entropy_spreads(void **st)
{
	struct h_svc s = svc(6, IPPROTO_TCP, LB_FWD_GUE);
	struct h_pkt pin, out;
	uint16_t ports[64];
	int distinct = 0;

	(void)st;
	h_svc_add(&s);
	for (int i = 0; i < 64; i++) {
		struct h_spec in = h_from_client(6, IPPROTO_TCP, (uint16_t)(41000 + i), 80);

		h_build(&in, &pin);
		assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT);
		ports[i] = get16(out.b + out.l3off + 40);
		assert_true(ports[i] >= 0xc000);
		distinct++;
		for (int j = 0; j < i; j++)
			if (ports[j] == ports[i]) {
				distinct--;
				break;
			}
	}
	/* 64 flows over 16384 ports: a handful of collisions at most */
	assert_true(distinct >= 60);
}

/* Inner 1480 bytes + 20 fit the 1500-byte MTU; 1481 do not: dropped and
 * counted as mtu_exceeded (the kernel's route MTU, through bpf_fib_lookup).
 * GUE over IPv6 takes 52 bytes. */
static void mtu(int fam, uint8_t fwd, size_t hl)
{
	static uint8_t pl[2000];
	struct h_svc s = svc(fam, IPPROTO_UDP, fwd);
	struct h_spec in = h_from_client(fam, IPPROTO_UDP, 40200, 80);
	size_t hdrs = (fam == 6 ? 40 : 20) + 8;
	struct h_pkt pin, out, want;

	h_svc_add(&s);
	in.payload = pl;
	in.plen = 1500 - hl - hdrs;
	h_build(&in, &pin);
	want_encap(&in, &pin, fwd == LB_FWD_GUE, fam == 6 ? H_BE6 : H_BE4, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_REDIRECT, &out, &want);
	assert_int_equal(h_drops(LB_DROP_MTU), 0);
	in.plen++;
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_MTU), 1);
}

static void test_mtu_ipip4(void **st) { (void)st; mtu(4, LB_FWD_IPIP, 20); }
static void test_mtu_gue6(void **st) { (void)st; mtu(6, LB_FWD_GUE, 52); }

/* Tagged frames keep their tags, the outer header goes after them, and
 * they leave where they came in (a one-armed balancer on a trunk). */
static void tagged(int nvlan, uint8_t fwd, int fam)
{
	struct h_svc s = svc(fam, IPPROTO_TCP, fwd);
	struct h_spec in = h_from_client(fam, IPPROTO_TCP, 40300, 80);
	struct h_pkt pin, out, want;

	h_svc_add(&s);
	h_vlan(&in, nvlan);
	h_build(&in, &pin);
	want_encap(&in, &pin, fwd == LB_FWD_GUE, fam == 6 ? H_BE6 : H_BE4, &want);
	h_expect(h_run(&pin, h_ifindex_client(), &out), XDP_TX, &out, &want);
}

static void test_vlan_ipip4(void **st) { (void)st; tagged(1, LB_FWD_IPIP, 4); }
static void test_qinq_gue6(void **st) { (void)st; tagged(2, LB_FWD_GUE, 6); }

/* No outer source address (lbd found none and none is configured): new
 * flows are dropped and counted, nothing is sent from a bogus address. */
static void test_no_source(void **st)
{
	struct h_svc s = svc(4, IPPROTO_TCP, LB_FWD_IPIP);
	struct h_spec in = h_from_client(4, IPPROTO_TCP, 40400, 80);
	struct lb_vip_key k;
	struct lb_vip v;
	struct h_pkt pin, out;

	(void)st;
	h_svc_add(&s);
	memset(&k, 0, sizeof(k));
	h_addr(4, H_VIP4, &k.addr);
	k.port = htons(80);
	k.proto = IPPROTO_TCP;
	k.family = 4;
	assert_int_equal(bpf_map_lookup_elem(lb_dp_map_fd(h_dp(), LB_MAP_VIPS), &k, &v), 0);
	v.flags &= (__u8)~LB_VIP_F_SNAT_SET;
	assert_int_equal(lb_dp_vip_set(h_dp(), &k, &v), 0);
	h_build(&in, &pin);
	assert_int_equal(h_run(&pin, h_ifindex_client(), &out), XDP_DROP);
	assert_int_equal(h_drops(LB_DROP_NO_SOURCE), 1);
}

/* ---- two nodes ---- */

#define NODE_BE 8

static const char *const node_addrs[NODE_BE + 1] = {
	"198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4",
	"198.18.1.5", "198.18.1.6", "198.18.1.7", "198.18.1.8", "198.18.1.99",
};

/* Configure node dp with backends order[0..n) (indexes into node_addrs),
 * giving them the ids ids[]: what lbd does from the same config file after
 * its own history of changes. */
static void node_setup(struct lb_dp *dp, const int *order, const __u32 *ids, size_t n)
{
	struct lb_maglev_backend mb[NODE_BE + 1];
	struct lb_config cfg = { .hash_seed = SEED, .snat_port_lo = LB_SNAT_PORT_LO,
				 .snat_port_hi = LB_SNAT_PORT_HI };
	struct lb_vip_key k;
	struct lb_vip v;
	__u32 *tab, tn;

	assert_int_equal(lb_dp_set_config(dp, &cfg), 0);
	for (size_t i = 0; i < n; i++) {
		struct lb_backend b = { .port = htons(80), .family = 4, .state = LB_BE_UP,
					.weight = 1 + (__u32)(order[i] % 3), .vip_id = 5 };

		h_addr(4, node_addrs[order[i]], &b.addr);
		assert_int_equal(lb_dp_backend_set(dp, ids[i], &b), 0);
		mb[i] = (struct lb_maglev_backend){ .addr = b.addr, .port = b.port, .family = 4,
						    .weight = b.weight, .id = ids[i] };
	}
	assert_int_equal(lb_table_build(LB_METHOD_MAGLEV, mb, n, SEED, 0, &tab, &tn), 0);
	assert_int_equal(lb_dp_table_swap(dp, 5, tab, tn), 0);
	free(tab);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	h_addr(4, H_VIP4, &k.addr);
	k.port = htons(80);
	k.proto = IPPROTO_TCP;
	k.family = 4;
	v.id = 5;
	v.method = LB_METHOD_MAGLEV;
	v.fwd = LB_FWD_GUE;
	v.family = 4;
	v.flags = LB_VIP_F_SNAT_SET;
	v.table_size = tn;
	v.encap_port = htons(GUE_PORT);
	h_addr(4, H_SNAT4, &v.snat_addr);
	assert_int_equal(lb_dp_vip_set(dp, &k, &v), 0);
}

/* Which backend (index into node_addrs) node dp sends the flow to. */
static int node_pick(struct lb_dp *dp, uint16_t sport)
{
	struct h_spec in = h_from_client(4, IPPROTO_TCP, sport, 80);
	struct xdp_md ctx = { .ingress_ifindex = (__u32)h_ifindex_client() };
	struct h_pkt pin, out;
	union lb_addr a;

	in.src = "198.18.0.3";
	h_build(&in, &pin);
	ctx.data_end = (__u32)pin.len;
	assert_int_equal(h_test_run(lb_dp_xdp_prog_fd(dp), &ctx, sizeof(ctx), &pin, &out),
			 XDP_REDIRECT);
	for (int i = 0; i <= NODE_BE; i++) {
		h_addr(4, node_addrs[i], &a);
		if (!memcmp(out.b + out.l3off + 16, &a.v4, 4))
			return i;
	}
	return -1;
}

/*
 * Node A loads the 8 backends in file order with ids 1..8. Node B, a
 * separate data path, got them in another order, had a ninth one added and
 * removed, and so holds other ids. A flow that ECMP sends to either node,
 * first packet or not, goes to the same backend.
 */
static void test_two_nodes_same_backend(void **st)
{
	static const int order_a[NODE_BE] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	static const __u32 ids_a[NODE_BE] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const int order_b9[NODE_BE + 1] = { 7, 3, 8, 5, 0, 6, 2, 4, 1 };
	static const __u32 ids_b9[NODE_BE + 1] = { 40, 11, 2, 9, 30, 4, 17, 5, 60 };
	static const int order_b[NODE_BE] = { 7, 3, 5, 0, 6, 2, 4, 1 };
	static const __u32 ids_b[NODE_BE] = { 40, 11, 9, 30, 4, 17, 5, 60 };
	struct lb_dp_opts o = { .ct_size = 65536 };
	struct lb_dp *b = NULL;
	int hits[NODE_BE + 1] = { 0 };

	(void)st;
	node_setup(h_dp(), order_a, ids_a, NODE_BE);
	assert_int_equal(lb_dp_open(&o, &b), 0);
	node_setup(b, order_b9, ids_b9, NODE_BE + 1);
	node_setup(b, order_b, ids_b, NODE_BE);
	for (int i = 0; i < 400; i++) {
		int pa = node_pick(h_dp(), (uint16_t)(20000 + i));
		int pb = node_pick(b, (uint16_t)(20000 + i));

		if (pa != pb)
			fail_msg("flow %d: node A sent it to %d, node B to %d", i, pa, pb);
		assert_in_range(pa, 0, NODE_BE - 1);
		hits[pa]++;
	}
	/* and a packet of a flow node A started, seen first by node B */
	assert_int_equal(node_pick(b, 20000), node_pick(h_dp(), 20000));
	for (int i = 0; i < NODE_BE; i++)
		assert_true(hits[i] > 0);
	lb_dp_close(b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)
#define TT(f) cmocka_unit_test_setup_teardown(f, h_tc_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ipip4_tcp),
		T(test_ipip4_udp),
		T(test_ip6ip6_tcp),
		T(test_ip6ip6_udp),
		T(test_gue4_tcp),
		T(test_gue4_udp),
		T(test_gue6_tcp),
		T(test_gue6_udp),
		T(test_gue_entropy_spreads),
		T(test_mtu_ipip4),
		T(test_mtu_gue6),
		T(test_vlan_ipip4),
		T(test_qinq_gue6),
		T(test_no_source),
		T(test_two_nodes_same_backend),
		TT(test_tc_ipip4),
		TT(test_tc_ip6ip6),
		TT(test_tc_gue4),
		TT(test_tc_gue6),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
