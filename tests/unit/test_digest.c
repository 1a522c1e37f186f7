// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Table digests (lb_table_digest): equal on nodes that forward every flow to
 * the same backend, whatever ids and insertion order each node has; different
 * when the table differs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define SEED 0x5eedu
#define N    12

/* Backend i is 10.0.i.1:8080 (weight 1 + i % 3), id ids[i] (or i). */
static void make(struct lb_maglev_backend *b, size_t n, const __u32 *ids)
{
	memset(b, 0, n * sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		b[i].family = LB_AF_INET;
		b[i].addr.v4 = htonl(0x0a000001u | (__u32)i << 8);
		b[i].port = htons(8080);
		b[i].weight = 1 + (__u32)(i % 3);
		b[i].id = ids ? ids[i] : (__u32)i;
	}
}

static __u64 digest(enum lb_method m, __u32 seed, const struct lb_maglev_backend *b, size_t n,
		    __u32 size, __u32 **tab_out)
{
	__u32 *tab, tn;
	__u64 d;

	assert_int_equal(lb_table_build(m, b, n, seed, size, &tab, &tn), 0);
	d = lb_table_digest(m, seed, tab, tn, b, n);
	if (tab_out)
		*tab_out = tab;
	else
		free(tab);
	return d;
}

/* Node A got the backends in file order with ids 0..N-1; node B got them
 * reversed after a history of adds and removes, so its ids are others. Their
 * tables differ as ids, not as identities: the digests are equal. */
static void test_order_and_ids(void **state)
{
	static const __u32 ids_b[N] = { 40, 7, 3, 12, 99, 5, 64, 1, 33, 2, 8, 1000 };
	struct lb_maglev_backend a[N], b[N], r[N];
	__u32 *ta, *tb;

	(void)state;
	make(a, N, NULL);
	make(b, N, ids_b);
	for (size_t i = 0; i < N; i++)
		r[i] = b[N - 1 - i];
	for (int m = 0; m < LB_METHOD_MAX; m++) {
		__u64 da = digest(m, SEED, a, N, 1009, &ta);
		__u64 db = digest(m, SEED, r, N, 1009, &tb);

		assert_int_not_equal(da, 0);
		assert_int_equal(da, db);
		/* the ids really differ in what the data path stores */
		assert_memory_not_equal(ta, tb, sizeof(*ta) * 10);
		free(ta);
		free(tb);
	}
}

/* A node that had 14 backends and took 2 out of the table (removed, or
 * down: still listed, weight 0), with ids from that history and in another
 * order, against one that only ever had the 12: the same digest. */
static void test_add_remove(void **state)
{
	struct lb_maglev_backend a[N], c[N + 2];

	(void)state;
	make(a, N, NULL);
	for (size_t i = 0; i < N; i++) {
		c[i] = a[N - 1 - i];
		c[i].id = (__u32)(N + 2 - i) * 3;
	}
	for (size_t i = N; i < N + 2; i++) {
		c[i] = a[0];
		c[i].addr.v4 = htonl(0x0b000001u + (__u32)i);
		c[i].weight = 0;
		c[i].id = (__u32)i * 100;
	}
	for (int m = 0; m < LB_METHOD_MAX; m++)
		assert_int_equal(digest(m, SEED, a, N, 65537, NULL),
				 digest(m, SEED, c, N + 2, 65537, NULL));
}

static void test_differs(void **state)
{
	struct lb_maglev_backend a[N], b[N];
	__u64 d;

	(void)state;
	make(a, N, NULL);
	d = digest(LB_METHOD_MAGLEV, SEED, a, N, 65537, NULL);
	/* a weight */
	make(b, N, NULL);
	b[4].weight++;
	assert_int_not_equal(d, digest(LB_METHOD_MAGLEV, SEED, b, N, 65537, NULL));
	/* a port */
	make(b, N, NULL);
	b[4].port = htons(8081);
	assert_int_not_equal(d, digest(LB_METHOD_MAGLEV, SEED, b, N, 65537, NULL));
	/* the seed, the method, the size */
	assert_int_not_equal(d, digest(LB_METHOD_MAGLEV, SEED + 1, a, N, 65537, NULL));
	assert_int_not_equal(d, digest(LB_METHOD_IP_HASH, SEED, a, N, 65537, NULL));
	assert_int_not_equal(d, digest(LB_METHOD_MAGLEV, SEED, a, N, 1009, NULL));
	/* round robin's sequence does not depend on the seed, nor its digest */
	assert_int_equal(digest(LB_METHOD_ROUND_ROBIN, SEED, a, N, 0, NULL),
			 digest(LB_METHOD_ROUND_ROBIN, SEED + 1, a, N, 0, NULL));
	/* but on the weights */
	make(b, N, NULL);
	b[0].weight = 7;
	assert_int_not_equal(digest(LB_METHOD_ROUND_ROBIN, SEED, a, N, 0, NULL),
			     digest(LB_METHOD_ROUND_ROBIN, SEED, b, N, 0, NULL));
}

/* IPv6 identities, and an IPv4 one whose unused address words hold junk. */
static void test_families(void **state)
{
	struct lb_maglev_backend a[N], b[N];

	(void)state;
	make(a, N, NULL);
	make(b, N, NULL);
	for (size_t i = 0; i < N; i++)
		b[i].addr.v6[2] = 0xdeadbeef;
	assert_int_equal(digest(LB_METHOD_MAGLEV, SEED, a, N, 1009, NULL),
			 digest(LB_METHOD_MAGLEV, SEED, b, N, 1009, NULL));
	for (size_t i = 0; i < N; i++) {
		b[i].family = LB_AF_INET6;
		b[i].addr.v6[0] = htonl(0x20010002);
		b[i].addr.v6[1] = 0;
		b[i].addr.v6[2] = 0;
		b[i].addr.v6[3] = htonl((__u32)i + 1);
	}
	assert_int_not_equal(digest(LB_METHOD_MAGLEV, SEED, a, N, 1009, NULL),
			     digest(LB_METHOD_MAGLEV, SEED, b, N, 1009, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_ids),
		cmocka_unit_test(test_add_remove),
		cmocka_unit_test(test_differs),
		cmocka_unit_test(test_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
