// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Weighted Maglev: balance, weights, disruption, determinism, speed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maglev.h"

#define M      LB_MAGLEV_DEFAULT_SIZE
#define SEED   0x5eedu
#define MAX_BE 1000

/* Backend i is 10.(i/256).(i%256).1:8080, id i. */
static void make_backends(struct lb_maglev_backend *b, size_t n, __u32 weight)
{
	memset(b, 0, n * sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		b[i].family = LB_AF_INET;
		b[i].addr.v4 = htonl(0x0a000001u | (__u32)i << 8);
		b[i].port = htons(8080);
		b[i].weight = weight;
		b[i].id = (__u32)i;
	}
}

static __u32 *build(const struct lb_maglev_backend *b, size_t n, __u32 seed, __u32 size)
{
	__u32 *t = malloc(size * sizeof(*t));

	assert_non_null(t);
	assert_int_equal(lb_maglev_build(b, n, seed, size, t), 0);
	return t;
}

static void count_slots(const __u32 *t, __u32 size, __u32 *count, size_t n)
{
	memset(count, 0, n * sizeof(*count));
	for (__u32 s = 0; s < size; s++) {
		assert_true(t[s] < n);
		count[t[s]]++;
	}
}

/* max share / mean share over backends 0..n-1, all expected equal. */
static double max_over_mean(size_t n)
{
	static struct lb_maglev_backend b[MAX_BE];
	__u32 count[MAX_BE], max = 0;
	__u32 *t;

	make_backends(b, n, 1);
	t = build(b, n, SEED, M);
	count_slots(t, M, count, n);
	for (size_t i = 0; i < n; i++)
		if (count[i] > max)
			max = count[i];
	free(t);
	return max / ((double)M / (double)n);
}

static void test_balance_100(void **state)
{
	double r = max_over_mean(100);

	(void)state;
	print_message("100 backends: max/mean share %.4f\n", r);
	assert_true(r <= 1.01);
}

static void test_balance_1000(void **state)
{
	double r = max_over_mean(1000);

	(void)state;
	print_message("1000 backends: max/mean share %.4f\n", r);
	assert_true(r <= 1.02);
}

/* Slots that belonged to a survivor and now belong to someone else. */
static void test_disruption_remove_one(void **state)
{
	struct lb_maglev_backend b[100];
	__u32 *before, *after, moved = 0, survivors = 0;
	const __u32 gone = 37;

	(void)state;
	make_backends(b, 100, 1);
	before = build(b, 100, SEED, M);
	memmove(&b[gone], &b[gone + 1], (100 - gone - 1) * sizeof(b[0]));
	after = build(b, 99, SEED, M);
	for (__u32 s = 0; s < M; s++) {
		if (before[s] == gone)
			continue;
		survivors++;
		moved += before[s] != after[s];
	}
	print_message("remove 1 of 100: %.3f%% of survivors' slots moved\n",
		      100.0 * moved / survivors);
	assert_true(moved * 1000.0 <= survivors * 15.0);
	free(before);
	free(after);
}

static void test_weight_ratio_5_to_1(void **state)
{
	struct lb_maglev_backend b[2];
	__u32 count[2], *t;
	double ratio;

	(void)state;
	make_backends(b, 2, 5);
	b[1].weight = 1;
	t = build(b, 2, SEED, M);
	count_slots(t, M, count, 2);
	ratio = (double)count[0] / count[1];
	print_message("weights 5:1: slot ratio %.4f\n", ratio);
	assert_true(ratio >= 4.95 && ratio <= 5.05);
	free(t);
}

/* Mixed weights across many backends: every share within 2% of its target. */
static void test_weight_shares_mixed(void **state)
{
	static struct lb_maglev_backend b[100];
	__u32 count[100], wsum = 0, *t;

	(void)state;
	make_backends(b, 100, 1);
	for (size_t i = 0; i < 100; i++) {
		b[i].weight = 1 + (__u32)(i % 4); /* 1..4 */
		wsum += b[i].weight;
	}
	t = build(b, 100, SEED, M);
	count_slots(t, M, count, 100);
	for (size_t i = 0; i < 100; i++) {
		double want = (double)M * b[i].weight / wsum;

		if (count[i] < want * 0.98 || count[i] > want * 1.02)
			fail_msg("backend %zu weight %u: %u slots, want %.1f",
				 i, b[i].weight, count[i], want);
	}
	free(t);
}

/* Build time is a figure of `make bench` (tools/bench_maglev), not a timed
 * test: under sanitizers or a loaded machine a wall-clock assertion fails
 * for reasons that say nothing about the code. */

static void test_independent_of_input_order(void **state)
{
	static struct lb_maglev_backend b[200], r[200];
	__u32 *t1, *t2;

	(void)state;
	make_backends(b, 200, 1);
	for (size_t i = 0; i < 200; i++)
		b[i].weight = 1 + (__u32)(i % 3);
	/* Reverse, then rotate: a permutation that moves every backend. */
	for (size_t i = 0; i < 200; i++)
		r[(i + 77) % 200] = b[199 - i];
	t1 = build(b, 200, SEED, M);
	t2 = build(r, 200, SEED, M);
	assert_memory_equal(t1, t2, M * sizeof(*t1));
	free(t1);
	free(t2);
}

/* IPv4 bytes past the first word are not part of the identity. */
static void test_v4_ignores_unused_addr_words(void **state)
{
	struct lb_maglev_backend b[10];
	__u32 *t1, *t2;

	(void)state;
	make_backends(b, 10, 1);
	t1 = build(b, 10, SEED, 251);
	for (size_t i = 0; i < 10; i++)
		b[i].addr.v6[2] = 0xffffffffu;
	t2 = build(b, 10, SEED, 251);
	assert_memory_equal(t1, t2, 251 * sizeof(*t1));
	free(t1);
	free(t2);
}

static void test_seed_changes_table(void **state)
{
	struct lb_maglev_backend b[50];
	__u32 *t1, *t2, *t3, same = 0;

	(void)state;
	make_backends(b, 50, 1);
	t1 = build(b, 50, SEED, M);
	t2 = build(b, 50, SEED + 1, M);
	t3 = build(b, 50, SEED, M);
	assert_memory_equal(t1, t3, M * sizeof(*t1));
	for (__u32 s = 0; s < M; s++)
		same += t1[s] == t2[s];
	/* Unrelated tables agree on about 1/50 of the slots. */
	assert_true(same < M / 20);
	free(t1);
	free(t2);
	free(t3);
}

static void test_ipv6_and_mixed_families(void **state)
{
	struct lb_maglev_backend b[3] = { 0 };
	__u32 count[3], *t;

	(void)state;
	for (int i = 0; i < 3; i++) {
		b[i].weight = 1;
		b[i].id = (__u32)i;
		b[i].port = htons(443);
	}
	b[0].family = LB_AF_INET6;
	inet_pton(AF_INET6, "2001:2::10", b[0].addr.b);
	b[1].family = LB_AF_INET6;
	inet_pton(AF_INET6, "2001:2::11", b[1].addr.b);
	b[2].family = LB_AF_INET;
	inet_pton(AF_INET, "198.18.0.10", &b[2].addr.v4);
	t = build(b, 3, SEED, 1009);
	count_slots(t, 1009, count, 3);
	for (int i = 0; i < 3; i++)
		assert_in_range(count[i], 336, 337);
	free(t);
}

static void test_rejects_bad_size(void **state)
{
	struct lb_maglev_backend b[2];
	__u32 t[16];

	(void)state;
	make_backends(b, 2, 1);
	assert_int_equal(lb_maglev_build(b, 2, 0, 15, t), -EINVAL);
	assert_int_equal(lb_maglev_build(b, 2, 0, 1, t), -EINVAL);
	assert_int_equal(lb_maglev_build(b, 2, 0, 0, t), -EINVAL);
	assert_int_equal(lb_maglev_build(b, 2, 0, 1000033, NULL), -EINVAL);
	/* Prime but above the ceiling. */
	assert_int_equal(lb_maglev_build(b, 2, 0, 1000033, t), -EINVAL);
	assert_int_equal(lb_maglev_build(NULL, 2, 0, 13, t), -EINVAL);
	b[1].family = 5;
	assert_int_equal(lb_maglev_build(b, 2, 0, 13, t), -EINVAL);
}

static void test_is_prime(void **state)
{
	(void)state;
	assert_false(lb_is_prime(0));
	assert_false(lb_is_prime(1));
	assert_true(lb_is_prime(2));
	assert_true(lb_is_prime(3));
	assert_false(lb_is_prime(4));
	assert_false(lb_is_prime(65535));
	assert_true(lb_is_prime(65537));
	assert_true(lb_is_prime(LB_MAGLEV_MAX_SIZE));
	assert_false(lb_is_prime(1000001)); /* 101 * 9901 */
	assert_true(lb_is_prime(4294967291u)); /* largest 32-bit prime */
	assert_false(lb_is_prime(4294967295u));
}

static void test_weight_zero_excluded(void **state)
{
	struct lb_maglev_backend b[4];
	__u32 count[4], *t;

	(void)state;
	make_backends(b, 4, 1);
	b[2].weight = 0;
	t = build(b, 4, SEED, 1009);
	count_slots(t, 1009, count, 4);
	assert_int_equal(count[2], 0);
	assert_int_equal(count[0] + count[1] + count[3], 1009);
	free(t);
	for (int i = 0; i < 4; i++)
		b[i].weight = 0;
	assert_int_equal(lb_maglev_build(b, 4, SEED, 1009, count), -ENOENT);
	assert_int_equal(lb_maglev_build(b, 0, SEED, 1009, count), -ENOENT);
}

static void test_single_backend_fills_all(void **state)
{
	struct lb_maglev_backend b[1];
	__u32 t[2], *big;

	(void)state;
	make_backends(b, 1, 3);
	b[0].id = 4242;
	big = build(b, 1, SEED, M);
	for (__u32 s = 0; s < M; s++)
		if (big[s] != 4242)
			fail_msg("slot %u holds %u, want 4242", s, big[s]);
	free(big);
	assert_int_equal(lb_maglev_build(b, 1, SEED, 2, t), 0);
	assert_int_equal(t[0], 4242);
	assert_int_equal(t[1], 4242);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balance_100),
		cmocka_unit_test(test_balance_1000),
		cmocka_unit_test(test_disruption_remove_one),
		cmocka_unit_test(test_weight_ratio_5_to_1),
		cmocka_unit_test(test_weight_shares_mixed),
		cmocka_unit_test(test_independent_of_input_order),
		cmocka_unit_test(test_v4_ignores_unused_addr_words),
		cmocka_unit_test(test_seed_changes_table),
		cmocka_unit_test(test_ipv6_and_mixed_families),
		cmocka_unit_test(test_rejects_bad_size),
		cmocka_unit_test(test_is_prime),
		cmocka_unit_test(test_weight_zero_excluded),
		cmocka_unit_test(test_single_backend_fills_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
