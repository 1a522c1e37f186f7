// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lb_hash.h: the flow hash every node, the BPF path and the proxy share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

/* gcc does not know the clang unroll pragma the BPF build needs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "lb_hash.h"
#pragma GCC diagnostic pop

/*
 * Bob Jenkins' lookup3.c hashword(), written out again from the published
 * description, independently of lb_hash.h, so a slip in either shows.
 */
#define REF_ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static uint32_t ref_hashword(const uint32_t *k, size_t length, uint32_t initval)
{
	uint32_t a, b, c;

	a = b = c = 0xdeadbeef + ((uint32_t)length << 2) + initval;
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		a -= c; a ^= REF_ROT(c, 4);  c += b;
		b -= a; b ^= REF_ROT(a, 6);  a += c;
		c -= b; c ^= REF_ROT(b, 8);  b += a;
		a -= c; a ^= REF_ROT(c, 16); c += b;
		b -= a; b ^= REF_ROT(a, 19); a += c;
		c -= b; c ^= REF_ROT(b, 4);  b += a;
		length -= 3;
		k += 3;
	}
	if (length == 0)
		return c;
	if (length == 3)
		c += k[2];
	if (length >= 2)
		b += k[1];
	a += k[0];
	c ^= b; c -= REF_ROT(b, 14);
	a ^= c; a -= REF_ROT(c, 11);
	b ^= a; b -= REF_ROT(a, 25);
	c ^= b; c -= REF_ROT(b, 16);
	a ^= c; a -= REF_ROT(c, 4);
	b ^= a; b -= REF_ROT(a, 14);
	c ^= b; c -= REF_ROT(b, 24);
	return c;
}

/* 198.18.0.1:40000 -> 198.18.1.10:80 TCP, as the data path sees it. */
static struct lb_flow_key flow_v4(__u16 sport)
{
	struct lb_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = LB_AF_INET;
	k.proto = 6;
	k.src.v4 = htonl(0xc6120001u);
	k.dst.v4 = htonl(0xc612010au);
	k.sport = htons(sport);
	k.dport = htons(80);
	return k;
}

static void test_flow_key_is_40_bytes(void **state)
{
	(void)state;
	/* lb_hash_flow hashes sizeof/4 words: the layout is the contract. */
	assert_int_equal(sizeof(struct lb_flow_key), 40);
}

static void test_deterministic(void **state)
{
	struct lb_flow_key a = flow_v4(40000), b = flow_v4(40000);

	(void)state;
	assert_int_equal(lb_hash_flow(&a, 7), lb_hash_flow(&b, 7));
	assert_int_equal(lb_hash_flow(&a, 7), lb_hash_flow(&a, 7));
}

/* Matches the reference for every length the tail switch distinguishes. */
static void test_matches_reference_lookup3(void **state)
{
	__u32 w[13];

	(void)state;
	for (unsigned int i = 0; i < 13; i++)
		w[i] = 0x9e3779b9u * (i + 1);
	for (unsigned int n = 0; n <= 13; n++)
		for (__u32 seed = 0; seed < 3; seed++)
			if (lb_hash_words(w, n, seed) != ref_hashword(w, n, seed))
				fail_msg("n=%u seed=%u: lb_hash_words %#x, reference %#x", n,
					 seed, lb_hash_words(w, n, seed),
					 ref_hashword(w, n, seed));
}

/* Pinned from ref_hashword(), cross-checked with a Python rendering of it:
 * a change here reroutes every flow on a node that upgrades while its peers
 * do not. */
static void test_known_answer(void **state)
{
	const __u32 words[10] = { 0x0100000au, 0x00000000u, 0x00000000u, 0x00000000u,
				  0x0200000au, 0x00000000u, 0x00000000u, 0x00000000u,
				  0x50004e20u, 0x00000406u };

	(void)state;
	assert_int_equal(ref_hashword(words, 10, 0x5eed), 0xbf279f07u);
	assert_int_equal(lb_hash_words(words, 10, 0x5eed), 0xbf279f07u);
	assert_int_equal(ref_hashword(words, 0, 0), 0xdeadbeefu);
}

static void test_seed_sensitivity(void **state)
{
	struct lb_flow_key k = flow_v4(40000);
	__u32 h0 = lb_hash_flow(&k, 0);
	unsigned int flipped = 0;

	(void)state;
	for (__u32 bit = 0; bit < 32; bit++) {
		__u32 h = lb_hash_flow(&k, 1u << bit);

		if (h == h0)
			fail_msg("seed bit %u does not change the hash", bit);
		flipped += (unsigned int)__builtin_popcount(h ^ h0);
	}
	/* Avalanche: about half of the 32 output bits per seed bit. */
	assert_in_range(flipped, 32 * 12, 32 * 20);
}

static void test_every_key_bit_matters(void **state)
{
	struct lb_flow_key k = flow_v4(40000);
	__u32 h0 = lb_hash_flow(&k, 0x5eed);

	(void)state;
	for (unsigned int byte = 0; byte < sizeof(k); byte++) {
		for (unsigned int bit = 0; bit < 8; bit++) {
			struct lb_flow_key x = k;

			((__u8 *)&x)[byte] ^= (__u8)(1u << bit);
			if (lb_hash_flow(&x, 0x5eed) == h0)
				fail_msg("key byte %u bit %u does not change the hash", byte, bit);
		}
	}
}

/*
 * Chi-square of all 65536 source ports over 64 buckets, from the low bits
 * (what a power-of-two map index uses) and the high bits. 63 degrees of
 * freedom: mean 63, and 110 is beyond the 0.9995 quantile.
 */
static double chi_square(unsigned int shift)
{
	enum { BUCKETS = 64, N = 65536 };
	unsigned int count[BUCKETS] = { 0 };
	const double expect = (double)N / BUCKETS;
	double chi = 0;

	for (unsigned int p = 0; p < N; p++) {
		struct lb_flow_key k = flow_v4((__u16)p);

		count[(lb_hash_flow(&k, 0x5eed) >> shift) % BUCKETS]++;
	}
	for (unsigned int i = 0; i < BUCKETS; i++)
		chi += (count[i] - expect) * (count[i] - expect) / expect;
	return chi;
}

static void test_uniform_sequential_ports(void **state)
{
	double lo = chi_square(0), hi = chi_square(26);

	(void)state;
	print_message("chi-square, 63 dof: low bits %.1f, high bits %.1f\n", lo, hi);
	assert_true(lo < 110.0);
	assert_true(hi < 110.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flow_key_is_40_bytes),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_matches_reference_lookup3),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_seed_sensitivity),
		cmocka_unit_test(test_every_key_bit_matters),
		cmocka_unit_test(test_uniform_sequential_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
