// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_maglev: Maglev build time and disruption, as CSV on stdout.
 *
 *   maglev_build,<backends>,<M>,<median_us>,<min_us>,<max_us>
 *   maglev_disruption,<backends>,<moved_pct>,<ideal_pct>,<remove|add>
 *
 * moved_pct is the share of all slots whose backend changed when one backend
 * is removed from (or added to) <backends>; ideal_pct is what a perfect
 * consistent hash would move: the removed backend's share, 100/N, or the
 * added backend's share, 100/(N+1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maglev.h"

#define REPEAT  21
#define MAX_BE  4097
#define SEED    0x5eedu
#define M       LB_MAGLEV_DEFAULT_SIZE

static const size_t sizes[] = { 10, 32, 100, 256, 1000, 2048, 4096 };

/* Backend i is 10.0.0.0/8 + i, port 8080, id i: distinct and stable. */
static void make_backends(struct lb_maglev_backend *b, size_t n)
{
	memset(b, 0, n * sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		b[i].family = LB_AF_INET;
		b[i].addr.v4 = htonl(0x0a000000u + 1 + (__u32)i);
		b[i].port = htons(8080);
		b[i].weight = 1;
		b[i].id = (__u32)i;
	}
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int bench_build(const struct lb_maglev_backend *b, size_t n, __u32 *table)
{
	double us[REPEAT];

	for (int i = 0; i < REPEAT; i++) {
		double t0 = now_us();
		int err = lb_maglev_build(b, n, SEED, M, table);

		if (err)
			return err;
		us[i] = now_us() - t0;
	}
	qsort(us, REPEAT, sizeof(us[0]), cmp_double);
	printf("maglev_build,%zu,%u,%.1f,%.1f,%.1f\n", n, M, us[REPEAT / 2], us[0],
	       us[REPEAT - 1]);
	return 0;
}

/* Ids are array indexes in both builds, so compare by identity: map each
 * slot to the backend's address, not its position. */
static double moved_pct(const struct lb_maglev_backend *b1, const __u32 *t1,
			const struct lb_maglev_backend *b2, const __u32 *t2)
{
	__u32 moved = 0;

	for (__u32 s = 0; s < M; s++)
		moved += b1[t1[s]].addr.v4 != b2[t2[s]].addr.v4;
	return 100.0 * moved / M;
}

static int bench_disruption(struct lb_maglev_backend *b, size_t n, __u32 *base,
			    __u32 *table)
{
	static struct lb_maglev_backend less[MAX_BE];
	int err;

	if ((err = lb_maglev_build(b, n, SEED, M, base)))
		return err;
	/* Remove one from the middle; the rest keep their ids by re-indexing. */
	for (size_t i = 0, j = 0; i < n; i++) {
		if (i == n / 2)
			continue;
		less[j] = b[i];
		less[j].id = (__u32)j;
		j++;
	}
	if ((err = lb_maglev_build(less, n - 1, SEED, M, table)))
		return err;
	printf("maglev_disruption,%zu,%.3f,%.3f,remove\n", n,
	       moved_pct(b, base, less, table), 100.0 / (double)n);
	/* b has room for one more: the next address in sequence. */
	make_backends(b, n + 1);
	if ((err = lb_maglev_build(b, n + 1, SEED, M, table)))
		return err;
	printf("maglev_disruption,%zu,%.3f,%.3f,add\n", n,
	       moved_pct(b, base, b, table), 100.0 / (double)(n + 1));
	return 0;
}

int main(void)
{
	static struct lb_maglev_backend b[MAX_BE];
	static __u32 base[M], table[M];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int err;

		make_backends(b, sizes[i]);
		err = bench_build(b, sizes[i], table);
		if (!err)
			err = bench_disruption(b, sizes[i], base, table);
		if (err) {
			fprintf(stderr, "bench_maglev: %zu backends: %s\n", sizes[i],
				strerror(-err));
			return 1;
		}
	}
	return 0;
}
