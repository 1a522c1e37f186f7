// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "maglev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* lb_hash.h asks clang to unroll for the BPF verifier; gcc warns about the
 * unknown pragma, which -Werror would make fatal. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "lb_hash.h"
#pragma GCC diagnostic pop

/* Tags that turn the configured seed into the offset and skip seeds. They are
 * part of the on-the-wire contract: changing one reshuffles every table. */
#define MAGLEV_TAG_OFFSET 0x4d4f4646u /* "MOFF" */
#define MAGLEV_TAG_SKIP   0x4d534b50u /* "MSKP" */

#define IDENT_WORDS 5

struct entry {
	__u32 ident[IDENT_WORDS];
	__u32 id;
	__u32 weight;
	__u32 next;   /* next candidate slot in this backend's permutation */
	__u32 skip;
	__u32 placed;
};

bool lb_is_prime(__u32 n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (__u32 d = 3; (__u64)d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

static __u32 load_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/* Identity as words built byte by byte, so hosts of either byte order hash
 * the same values; the unused tail of an IPv4 address is ignored rather
 * than trusted to be zero. */
static int make_ident(const struct lb_maglev_backend *b, __u32 w[IDENT_WORDS])
{
	unsigned int words;

	if (b->family == LB_AF_INET)
		words = 1;
	else if (b->family == LB_AF_INET6)
		words = 4;
	else
		return -EINVAL;
	memset(w, 0, IDENT_WORDS * sizeof(*w));
	for (unsigned int i = 0; i < words; i++)
		w[i] = load_be32(&b->addr.b[4 * i]);
	w[4] = (__u32)b->family << 16 | ntohs(b->port);
	return 0;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;

	for (unsigned int i = 0; i < IDENT_WORDS; i++)
		if (a->ident[i] != b->ident[i])
			return a->ident[i] < b->ident[i] ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

/* Collect the backends that take part, in identity order: the round-robin
 * order of the fill decides who wins contested slots, so it must not depend
 * on the caller's array order. */
static int collect(const struct lb_maglev_backend *b, size_t n, __u32 seed,
		   __u32 size, struct entry *e, size_t *count)
{
	__u32 off_seed = lb_hash_words(&seed, 1, MAGLEV_TAG_OFFSET);
	__u32 skip_seed = lb_hash_words(&seed, 1, MAGLEV_TAG_SKIP);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct entry *x = &e[k];

		if (make_ident(&b[i], x->ident))
			return -EINVAL;
		if (!b[i].weight)
			continue;
		x->id = b[i].id;
		x->weight = b[i].weight;
		x->placed = 0;
		x->next = lb_hash_words(x->ident, IDENT_WORDS, off_seed) % size;
		/* Any skip in 1..size-1 walks every slot because size is prime. */
		x->skip = size > 2 ?
			lb_hash_words(x->ident, IDENT_WORDS, skip_seed) % (size - 1) + 1 : 1;
		k++;
	}
	qsort(e, k, sizeof(*e), cmp_entry);
	*count = k;
	return k ? 0 : -ENOENT;
}

/*
 * Rounds of the Maglev fill, where a backend may take its next preferred slot
 * in round r only while placed/weight < r/max_weight. The heaviest backends
 * place every round, a backend of half their weight every other round, so
 * the counts stay within one slot of weight-proportional at every instant and
 * the equal-weight case is exactly the original Maglev fill.
 */
static void populate(struct entry *e, size_t k, __u32 size, __u32 *table, __u8 *taken)
{
	__u32 wmax = 0, filled = 0;

	for (size_t i = 0; i < k; i++)
		if (e[i].weight > wmax)
			wmax = e[i].weight;
	for (__u64 r = 1;; r++) {
		for (size_t i = 0; i < k; i++) {
			struct entry *x = &e[i];
			__u32 pos = x->next, skip = x->skip;

			if ((__u64)x->placed * wmax >= (__u64)x->weight * r)
				continue;
			while (taken[pos]) {
				pos += skip;
				if (pos >= size)
					pos -= size;
			}
			taken[pos] = 1;
			table[pos] = x->id;
			x->placed++;
			pos += skip;
			x->next = pos >= size ? pos - size : pos;
			if (++filled == size)
				return;
		}
	}
}

int lb_maglev_build(const struct lb_maglev_backend *b, size_t n, __u32 seed,
		    __u32 size, __u32 *table)
{
	struct entry *e;
	__u8 *taken;
	size_t k;
	int err;

	if (size > LB_MAGLEV_MAX_SIZE || !lb_is_prime(size) || !table || (n && !b))
		return -EINVAL;
	if (!n)
		return -ENOENT;
	e = malloc(n * sizeof(*e));
	taken = calloc(size, 1);
	err = e && taken ? 0 : -ENOMEM;
	if (!err)
		err = collect(b, n, seed, size, e, &k);
	if (!err)
		populate(e, k, size, table, taken);
	free(taken);
	free(e);
	return err;
}
