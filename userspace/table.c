// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int ident_cmp(const void *pa, const void *pb)
{
	const struct lb_maglev_backend *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = memcmp(a->addr.b, b->addr.b, a->family == LB_AF_INET ? 4 : sizeof(a->addr.b));
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static __u64 gcd(__u64 a, __u64 b)
{
	while (b) {
		__u64 t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * NGINX's smooth weighted round robin, unrolled into a sequence: every
 * backend appears weight/gcd times, spread out rather than in runs, so a
 * cursor walking it interleaves backends. Sorted by identity first, so every
 * node builds the same sequence.
 */
static int build_sequence(const struct lb_maglev_backend *in, size_t n, __u32 **out, __u32 *out_n)
{
	struct lb_maglev_backend *b;
	__s64 *cur;
	__u64 g = 0, total = 0;
	__u32 *seq, len = 0;
	size_t m = 0;

	b = malloc(n * sizeof(*b));
	cur = calloc(n, sizeof(*cur));
	if (!b || !cur) {
		free(b);
		free(cur);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (in[i].weight)
			b[m++] = in[i];
	if (!m) {
		free(b);
		free(cur);
		return -ENOENT;
	}
	qsort(b, m, sizeof(*b), ident_cmp);
	for (size_t i = 0; i < m; i++)
		g = gcd(g, b[i].weight);
	for (size_t i = 0; i < m; i++) {
		b[i].weight = (__u32)(b[i].weight / g);
		total += b[i].weight;
	}
	if (total > LB_SEQ_MAX) {
		/* Scale down, keeping every backend in at least once. */
		__u64 t2 = 0;

		for (size_t i = 0; i < m; i++) {
			__u64 w = (__u64)b[i].weight * LB_SEQ_MAX / total;

			b[i].weight = (__u32)(w ? w : 1);
			t2 += b[i].weight;
		}
		total = t2;
	}
	seq = malloc(total * sizeof(*seq));
	if (!seq) {
		free(b);
		free(cur);
		return -ENOMEM;
	}
	while (len < total) {
		size_t best = 0;

		for (size_t i = 0; i < m; i++) {
			cur[i] += b[i].weight;
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (__s64)total;
		seq[len++] = b[best].id;
	}
	free(b);
	free(cur);
	*out = seq;
	*out_n = len;
	return 0;
}

int lb_table_build(enum lb_method method, const struct lb_maglev_backend *b, size_t n,
		   __u32 seed, __u32 maglev_size, __u32 **out, __u32 *out_n)
{
	__u32 *t;
	int err;

	if (method == LB_METHOD_ROUND_ROBIN || method == LB_METHOD_LEAST_CONN)
		return build_sequence(b, n, out, out_n);
	if (!maglev_size)
		maglev_size = LB_MAGLEV_DEFAULT_SIZE;
	t = malloc((size_t)maglev_size * sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = lb_maglev_build(b, n, seed, maglev_size, t);
	if (err) {
		free(t);
		return err;
	}
	*out = t;
	*out_n = maglev_size;
	return 0;
}

/* FNV-1a, 64 bits: a digest to compare by eye, not a defence. */
#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull

static __u64 fnv64(__u64 h, const void *data, size_t len)
{
	const __u8 *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV64_PRIME;
	return h;
}

/* Words in a fixed byte order (big-endian), so hosts of either order agree. */
static __u64 fnv64_u32(__u64 h, __u32 v)
{
	__u8 w[4] = { (__u8)(v >> 24), (__u8)(v >> 16), (__u8)(v >> 8), (__u8)v };

	return fnv64(h, w, sizeof(w));
}

static int id_cmp(const void *pa, const void *pb)
{
	const struct lb_maglev_backend *a = pa, *b = pb;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Index of id in b[0..n) sorted by id, or -1. */
static long find_id(const struct lb_maglev_backend *b, size_t n, __u32 id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b[mid].id == id)
			return (long)mid;
		if (b[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * The slots are hashed as ranks in the identity order of the backends the
 * table names: with the list of those identities in front, that is the
 * table of identities, at 4 bytes a slot.
 */
__u64 lb_table_digest(enum lb_method method, __u32 seed, const __u32 *tab, __u32 tab_n,
		      const struct lb_maglev_backend *b, size_t n)
{
	struct lb_maglev_backend *s = malloc((n ? n : 1) * sizeof(*s));
	__u32 *rank = calloc(n ? n : 1, sizeof(*rank)); /* by position in s (id order) */
	__u64 h = FNV64_OFFSET;
	__u32 used = 0, prev = 0;
	long at = -1;

	if (!s || !rank) {
		free(s);
		free(rank);
		return 0;
	}
	if (n)
		memcpy(s, b, n * sizeof(*s));
	qsort(s, n, sizeof(*s), id_cmp);
	/* rank 0: not in the table; a slot naming an unknown id hashes as ~0 */
	for (__u32 k = 0; k < tab_n; k++) {
		if (at < 0 || tab[k] != prev)
			at = find_id(s, n, prev = tab[k]);
		if (at >= 0)
			rank[at] = 1;
	}
	/* identity order among those in the table */
	for (size_t i = 0; i < n; i++)
		s[i].weight = rank[i];
	qsort(s, n, sizeof(*s), ident_cmp);
	h = fnv64(h, "lbd-table-1", 11);
	h = fnv64_u32(h, (__u32)method);
	h = fnv64_u32(h, method == LB_METHOD_MAGLEV || method == LB_METHOD_IP_HASH ? seed : 0);
	h = fnv64_u32(h, tab_n);
	for (size_t i = 0; i < n; i++) {
		if (!s[i].weight)
			continue;
		s[i].weight = ++used; /* its rank from here on */
		h = fnv64_u32(h, s[i].family);
		h = fnv64(h, s[i].addr.b, s[i].family == LB_AF_INET ? 4 : 16);
		h = fnv64(h, &s[i].port, sizeof(s[i].port));
	}
	qsort(s, n, sizeof(*s), id_cmp);
	at = -1;
	for (__u32 k = 0; k < tab_n; k++) {
		if (at < 0 || tab[k] != prev)
			at = find_id(s, n, prev = tab[k]);
		h = fnv64_u32(h, at >= 0 ? s[at].weight : ~0u);
	}
	free(s);
	free(rank);
	return h;
}
