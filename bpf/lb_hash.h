/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_hash.h - the flow hash, compiled into the BPF programs and userspace.
 *
 * Bob Jenkins' lookup3 word hash (the kernel's jhash2), seeded. The BPF path,
 * the userspace proxy and the Maglev builder must agree bit for bit, so this
 * is the only definition; it is header-only and works on fixed word counts
 * so the BPF verifier sees bounded, unrolled loops.
 */
#ifndef LB_HASH_H
#define LB_HASH_H

#include "lb_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define LB_HASH_INIT 0xdeadbeefu

/* Keys are structs read as words: without may_alias, gcc -O2 (strict
 * aliasing) may read the words before the struct's fields are stored. */
typedef __u32 __attribute__((__may_alias__)) lb_hash_u32;

static __always_inline __u32 lb_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

#define LB_HASH_MIX(a, b, c) do {                        \
	a -= c; a ^= lb_rol32(c, 4);  c += b;            \
	b -= a; b ^= lb_rol32(a, 6);  a += c;            \
	c -= b; c ^= lb_rol32(b, 8);  b += a;            \
	a -= c; a ^= lb_rol32(c, 16); c += b;            \
	b -= a; b ^= lb_rol32(a, 19); a += c;            \
	c -= b; c ^= lb_rol32(b, 4);  b += a;            \
} while (0)

#define LB_HASH_FINAL(a, b, c) do {                      \
	c ^= b; c -= lb_rol32(b, 14);                    \
	a ^= c; a -= lb_rol32(c, 11);                    \
	b ^= a; b -= lb_rol32(a, 25);                    \
	c ^= b; c -= lb_rol32(b, 16);                    \
	a ^= c; a -= lb_rol32(c, 4);                     \
	b ^= a; b -= lb_rol32(a, 14);                    \
	c ^= b; c -= lb_rol32(b, 24);                    \
} while (0)

/* Hash n 32-bit words; n must be a compile-time constant in BPF code. */
static __always_inline __u32 lb_hash_words(const lb_hash_u32 *k, const unsigned int n,
					   __u32 seed)
{
	__u32 a, b, c;
	unsigned int i = 0;

	a = b = c = LB_HASH_INIT + (n << 2) + seed;
#ifdef __clang__
#pragma clang loop unroll(full)
#endif
	for (; i + 3 < n; i += 3) {
		a += k[i];
		b += k[i + 1];
		c += k[i + 2];
		LB_HASH_MIX(a, b, c);
	}
	switch (n - i) {
	case 3: c += k[i + 2]; /* fallthrough */
	case 2: b += k[i + 1]; /* fallthrough */
	case 1: a += k[i];
		LB_HASH_FINAL(a, b, c);
		break;
	default:
		break;
	}
	return c;
}

/* The 5-tuple hash: maglev and the SNAT port choice. */
static __always_inline __u32 lb_hash_flow(const struct lb_flow_key *key, __u32 seed)
{
	return lb_hash_words((const lb_hash_u32 *)key, sizeof(*key) / 4, seed);
}

/* Flow entropy of encapsulated packets (forward ipip/gue: the GUE source
 * port, the IPv6 flow label), so that ECMP on the way and the backends'
 * RSS spread flows. A seed of its own: independent of the table slot. */
#define LB_HASH_ENCAP_TAG 0x67756531u /* "gue1" */

static __always_inline __u32 lb_hash_encap(const struct lb_flow_key *key, __u32 seed)
{
	return lb_hash_flow(key, seed ^ LB_HASH_ENCAP_TAG);
}

/* The client-address hash: ip_hash affinity. */
static __always_inline __u32 lb_hash_addr(const union lb_addr *addr, __u32 seed)
{
	return lb_hash_words(addr->v6, 4, seed);
}

#endif /* LB_HASH_H */
