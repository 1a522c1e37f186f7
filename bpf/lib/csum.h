/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3):
 *   HC' = ~(~HC + ~m + m')
 * accumulated over 16-bit words in network order. One's-complement sums do
 * not care about byte order as long as old and new words are read the same
 * way, so no conversions are needed.
 */
#ifndef LB_CSUM_H
#define LB_CSUM_H

#include "common.h"

/* Start an update of the checksum `old`. */
static __always_inline __u64 csum_begin(__u16 old)
{
	return (__u16)~old;
}

static __always_inline __u64 csum_sub16(__u64 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

/* 32-bit words go in whole: 2^32 - 1 is a multiple of 2^16 - 1, so their
 * sum folds to the same 16-bit result as their halves would, in fewer
 * instructions. The accumulator is 64 bits wide for the carries. */
static __always_inline __u64 csum_sub32(__u64 acc, __u32 from, __u32 to)
{
	return acc + (__u32)~from + to;
}

/* Account for an address change: 1 word for IPv4, 4 for IPv6. */
static __always_inline __u64 csum_sub_addr(__u64 acc, const union lb_addr *from,
					   const union lb_addr *to, int v6)
{
	acc = csum_sub32(acc, from->v6[0], to->v6[0]);
	if (v6) {
		acc = csum_sub32(acc, from->v6[1], to->v6[1]);
		acc = csum_sub32(acc, from->v6[2], to->v6[2]);
		acc = csum_sub32(acc, from->v6[3], to->v6[3]);
	}
	return acc;
}

/* The accumulated sum, folded to 16 bits (not complemented). */
static __always_inline __u16 csum_fold(__u64 acc)
{
	acc = (acc & 0xffffffff) + (acc >> 32);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)acc;
}

static __always_inline __u16 csum_end(__u64 acc)
{
	return (__u16)~csum_fold(acc);
}

/* The checksum `old` updated by a folded delta (csum_fold of the changes'
 * sum): the two 16-bit terms carry into bit 16 at most once, so one fold
 * is all it takes. */
static __always_inline __u16 csum_apply(__u16 old, __u16 delta)
{
	__u32 acc = (__u32)(__u16)~old + delta;

	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

#endif
