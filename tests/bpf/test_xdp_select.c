// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend selection over many new flows, through the real XDP object:
 * maglev and ip_hash shares and their agreement with the userspace table and
 * hash (what another node or the proxy computes), weighted round robin, and
 * least_conn's preference for the backend with fewer live connections.
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
#include <bpf/bpf.h>

/* gcc does not know the clang unroll pragma the BPF build needs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "lb_hash.h"
#pragma GCC diagnostic pop

#include "harness.h"

#define VIP4 "198.18.10.1"
#define SEED 0x5eed /* what h_dp_up configures */

static struct h_svc svc(uint8_t method, const struct h_be *be, size_t nbe)
{
	return (struct h_svc){
		.vip_id = 3, .family = 4, .vip = VIP4, .port = 80, .proto = IPPROTO_TCP,
		.method = method, .be = be, .nbe = nbe,
	};
}

/* Send a SYN from client `c` (198.18.100.c / .101.c) port `port`; return
 * the index of the backend it went to. */
static int send_syn(int c, uint16_t port, const struct h_be *be, size_t nbe,
		    struct lb_flow_key *key)
{
	char src[32];
	struct h_spec s = {
		.family = 4, .src = src, .dst = VIP4, .proto = IPPROTO_TCP,
		.sport = port, .dport = 80, .tcp_flags = 0x02,
	};
	struct h_pkt in, out;
	int i;

	snprintf(src, sizeof(src), "198.18.%d.%d", 100 + c / 250, 1 + c % 250);
	memcpy(s.dmac, h_mac_client_if, 6);
	h_mac_client(1, s.smac);
	h_build(&s, &in);
	assert_int_equal(h_run(&in, h_ifindex_client(), &out), XDP_REDIRECT);
	i = h_which_backend(&out, 4, be, nbe);
	assert_true(i >= 0);
	if (key) {
		memset(key, 0, sizeof(*key));
		h_addr(4, src, &key->src);
		h_addr(4, VIP4, &key->dst);
		key->sport = htons(port);
		key->dport = htons(80);
		key->proto = IPPROTO_TCP;
		key->family = LB_AF_INET;
	}
	return i;
}

static int index_of(const struct h_be *be, size_t nbe, __u32 id)
{
	for (size_t i = 0; i < nbe; i++)
		if (be[i].id == id)
			return (int)i;
	return -1;
}

/* Shares within 10% (relative) of the weights over 6000 flows, and every
 * flow where the userspace table and hash say. */
static void test_maglev_distribution(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080, .weight = 1 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080, .weight = 2 },
		{ .id = 3, .addr = "198.18.1.3", .port = 8080, .weight = 3 },
	};
	struct h_svc s = svc(LB_METHOD_MAGLEV, be, 3);
	const int flows = 6000;
	int count[3] = { 0 };
	__u32 *tbl, n;

	(void)st;
	h_svc_add(&s);
	h_svc_table(&s, be, 3, &tbl, &n);
	for (int f = 0; f < flows; f++) {
		struct lb_flow_key k;
		int i = send_syn(f % 500, (uint16_t)(20000 + f / 500), be, 3, &k);

		count[i]++;
		assert_int_equal(i, index_of(be, 3, tbl[lb_hash_flow(&k, SEED) % n]));
	}
	free(tbl);
	for (int i = 0; i < 3; i++) {
		double want = flows * be[i].weight / 6.0;

		printf("  maglev: backend %d weight %u: %d flows (ideal %.0f)\n",
		       i + 1, be[i].weight, count[i], want);
		assert_true(count[i] > want * 0.9 && count[i] < want * 1.1);
	}
}

/* Same client, any port: same backend. Clients spread over the backends. */
static void test_ip_hash_affinity(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	struct h_svc s = svc(LB_METHOD_IP_HASH, be, 2);
	int clients[2] = { 0 };
	__u32 *tbl, n;

	(void)st;
	h_svc_add(&s);
	h_svc_table(&s, be, 2, &tbl, &n);
	for (int c = 0; c < 64; c++) {
		struct lb_flow_key k;
		int first = send_syn(c, 1024, be, 2, &k);

		assert_int_equal(first, index_of(be, 2, tbl[lb_hash_addr(&k.src, SEED) % n]));
		for (int p = 1; p < 8; p++)
			assert_int_equal(send_syn(c, (uint16_t)(1024 + p * 7919), be, 2, NULL), first);
		clients[first]++;
	}
	free(tbl);
	printf("  ip_hash: clients per backend %d / %d\n", clients[0], clients[1]);
	assert_true(clients[0] >= 16 && clients[1] >= 16);
}

/* Weights 3:1 over 400 new flows: exactly 300 and 100, in the smooth order,
 * and packets of established flows do not move the cursor. */
static void test_round_robin_weighted(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080, .weight = 3 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080, .weight = 1 },
	};
	static const int order[4] = { 0, 0, 1, 0 };
	struct h_svc s = svc(LB_METHOD_ROUND_ROBIN, be, 2);
	int count[2] = { 0 };

	(void)st;
	h_svc_add(&s);
	for (int f = 0; f < 400; f++) {
		int i = send_syn(f, 30000, be, 2, NULL);

		assert_int_equal(i, order[f % 4]);
		count[i]++;
		if (f % 3 == 0) /* an established flow's next packet */
			assert_int_equal(send_syn(f, 30000, be, 2, NULL), i);
	}
	printf("  round_robin: %d / %d\n", count[0], count[1]);
	assert_int_equal(count[0], 300);
	assert_int_equal(count[1], 100);
}

/* Backend 1 already carries 1000 connections: new flows go to backend 2
 * unless both random draws land on backend 1 (1 in 4). */
static void test_least_conn_prefers_fewer(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
	};
	struct h_svc s = svc(LB_METHOD_LEAST_CONN, be, 2);
	__u32 id = 1;
	__s64 busy = 1000;
	int count[2] = { 0 };

	(void)st;
	h_svc_add(&s);
	assert_int_equal(bpf_map_update_elem(lb_dp_map_fd(h_dp(), LB_MAP_CONNS), &id, &busy,
					     BPF_ANY), 0);
	for (int f = 0; f < 400; f++)
		count[send_syn(f, 30001, be, 2, NULL)]++;
	printf("  least_conn: busy backend %d, idle backend %d\n", count[0], count[1]);
	assert_true(count[1] >= 260); /* expected 300, sd ~9 */
	assert_int_equal(h_conns(1), 1000 + count[0]);
	assert_int_equal(h_conns(2), count[1]);
}

/* From idle, equal weights: live connections stay level. */
static void test_least_conn_balances(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080 },
		{ .id = 3, .addr = "198.18.1.3", .port = 8080 },
	};
	struct h_svc s = svc(LB_METHOD_LEAST_CONN, be, 3);
	int64_t lo = INT64_MAX, hi = 0;

	(void)st;
	h_svc_add(&s);
	for (int f = 0; f < 300; f++)
		send_syn(f, 30002, be, 3, NULL);
	for (uint32_t id = 1; id <= 3; id++) {
		int64_t c = h_conns(id);

		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
	}
	printf("  least_conn: connections between %lld and %lld\n", (long long)lo, (long long)hi);
	assert_int_equal(h_conns(1) + h_conns(2) + h_conns(3), 300);
	assert_true(hi - lo <= 12);
}

/* Weights 3:1 from idle: connections follow the weights. */
static void test_least_conn_weighted(void **st)
{
	static const struct h_be be[] = {
		{ .id = 1, .addr = "198.18.1.1", .port = 8080, .weight = 3 },
		{ .id = 2, .addr = "198.18.1.2", .port = 8080, .weight = 1 },
	};
	struct h_svc s = svc(LB_METHOD_LEAST_CONN, be, 2);
	int count[2] = { 0 };

	(void)st;
	h_svc_add(&s);
	for (int f = 0; f < 400; f++)
		count[send_syn(f, 30003, be, 2, NULL)]++;
	printf("  least_conn 3:1: %d / %d\n", count[0], count[1]);
	assert_true(count[0] >= 260 && count[0] <= 340);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_dp_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_maglev_distribution),
		T(test_ip_hash_affinity),
		T(test_round_robin_weighted),
		T(test_least_conn_prefers_fewer),
		T(test_least_conn_balances),
		T(test_least_conn_weighted),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
