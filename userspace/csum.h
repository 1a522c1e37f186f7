/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The Internet checksum (RFC 1071) over a buffer, for tools that build
 * packets from scratch; the data path updates checksums incrementally
 * (bpf/lib/csum.h). */
#ifndef LBD_CSUM_H
#define LBD_CSUM_H

#include <stddef.h>
#include <linux/types.h>

/* Adds the 16-bit big-endian words of p[0..len) to sum (not folded). */
static inline __u32 lb_csum_add(__u32 sum, const void *p, size_t len)
{
	const __u8 *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (__u32)b[len - 1] << 8;
	return sum;
}

/* Folds sum to 16 bits and inverts it: the checksum field, host order. */
static inline __u16 lb_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
