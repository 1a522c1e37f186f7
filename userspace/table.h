/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A VIP's selection table, as the data path (bpf/lib/select.h) and the proxy
 * read it: the weighted Maglev table for maglev and ip_hash, a smooth
 * weighted sequence for round_robin and least_conn.
 */
#ifndef LBD_TABLE_H
#define LBD_TABLE_H

#include "maglev.h"

#define LB_SEQ_MAX 65536 /* longest weighted sequence; weights scale down */

/* Build the table for `method` into a malloc'ed array (*out, *out_n).
 * Backends with weight 0 are left out. Returns 0, -ENOENT (none usable),
 * -EINVAL or -ENOMEM. */
int lb_table_build(enum lb_method method, const struct lb_maglev_backend *b, size_t n,
		   __u32 seed, __u32 maglev_size, __u32 **out, __u32 *out_n);

/*
 * A 64-bit digest of a built table, for operators comparing nodes: over the
 * method, the seed and the table with every slot read as its backend's
 * identity (family, address, port), never as its id, since ids depend on
 * each node's history of changes. b[0..n) maps the table's ids to their
 * identities (backends not in the table are ignored). Two nodes forward a
 * flow to the same backend when their digests are equal.
 */
__u64 lb_table_digest(enum lb_method method, __u32 seed, const __u32 *tab, __u32 tab_n,
		      const struct lb_maglev_backend *b, size_t n);

#endif
