// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark companions of lb_xdp (tools/bench_xdp.c):
 *   bench_tx    the baseline: swap Ethernet addresses, XDP_TX
 *   bench_pass  the baseline for XDP_PASS paths
 *   bench_sink  attached to the peer of the veth the benchmark transmits on:
 *               drops every frame, after writing the benchmark's template
 *               packet back into it.
 *
 * Why the sink rewrites: BPF_PROG_RUN in live-frames mode recycles its pages
 * without copying the input packet again, so a program that rewrites packets
 * (NAT) would see its own output on the next run of that page. Frames sent
 * with XDP_TX come back to the pool through the sink's XDP_DROP, so the sink
 * restores the input there, and with `flows` set gives it the client
 * address and port of flow seq % flows (seq counts the frames of this CPU),
 * and with `vips` > 1 the destination address of VIP (seq % flows) % vips:
 * flows = ~0 is a new flow on every frame; flows = N cycles through N
 * flows, each always to the same VIP, so a run of N SYNs opens them all
 * and later runs find them established.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#define BENCH_PKT_LEN 64 /* every benchmark packet is exactly this long */

struct bench_tmpl {
	__u32 flows;     /* 0: the template as is; else the flow count cycled */
	__u32 vips;      /* > 1: destination 198.20.x.y of VIP x * 256 + y */
	__u32 stride;    /* > 1: frame k carries flow k * stride % flows, a
	                  * permutation when stride and flows are coprime */
	__u32 pad;
	__u64 data[BENCH_PKT_LEN / 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_tmpl);
} tmpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} seq SEC(".maps");

SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u64 *d = data;
	__u8 *b = data;
	struct bench_tmpl *t;
	__u32 zero = 0, *n;

	t = bpf_map_lookup_elem(&tmpl, &zero);
	n = bpf_map_lookup_elem(&seq, &zero);
	if (!t || !n || data + BENCH_PKT_LEN > end)
		return XDP_DROP;
#pragma clang loop unroll(full)
	for (int i = 0; i < BENCH_PKT_LEN / 8; i++)
		d[i] = t->data[i];
	if (t->flows) {
		/* IPv4 without options: source address at 26, port at 34,
		 * destination address at 30. */
		__u32 v = (*n)++ % t->flows;

		if (t->stride > 1)
			v = (__u32)((__u64)v * t->stride % t->flows);

		/* The address varies first: ip_hash then sees many clients. */
		b[28] = (__u8)(v >> 8);
		b[29] = (__u8)v;
		b[34] = (__u8)(v >> 24);
		b[35] = (__u8)(v >> 16);
		if (t->vips > 1) {
			v %= t->vips;
			b[32] = (__u8)(v >> 8);
			b[33] = (__u8)v;
		}
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
