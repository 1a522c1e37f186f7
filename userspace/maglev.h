/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Weighted Maglev lookup table (Eisenbud et al., NSDI '16).
 *
 * A backend's place in the table depends only on its identity (family,
 * address, port) and the seed, never on where it sits in the caller's array,
 * so every lbd node given the same backends and seed builds the same table.
 */
#ifndef LBD_MAGLEV_H
#define LBD_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include "lb_abi.h"

struct lb_maglev_backend {
	union lb_addr addr;
	__u16 port;     /* network order */
	__u8  family;   /* LB_AF_INET or LB_AF_INET6 */
	__u32 weight;   /* 0 = not in table */
	__u32 id;       /* value written into table slots */
};

/*
 * Fill table[0..size) with backend ids; each backend's slot count is
 * proportional to its weight. size must be prime (>= 2, <= LB_MAGLEV_MAX_SIZE).
 * Backends with equal identities are ordered by id.
 * Returns 0, -EINVAL (size not prime / bad args), -ENOENT (no backend with
 * weight > 0) or -ENOMEM.
 */
int lb_maglev_build(const struct lb_maglev_backend *b, size_t n, __u32 seed,
		    __u32 size, __u32 *table);

bool lb_is_prime(__u32 n);

#endif
