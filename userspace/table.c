// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int ident_cmp(const void *pa, const void *pb)
{
	const struct lb_maglev_backend *a = pa, *b = pb;
	int c = memcmp(a->addr.b, b->addr.b, sizeof(a->addr.b));

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
