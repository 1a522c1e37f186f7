// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The programs of tools/lbgen, the benchmarks' packet generator:
 *   lbgen_tx    run by BPF_PROG_RUN in live-frames mode on the sender's veth:
 *               writes one frame of the configured flow mix and sends it
 *               (XDP_TX: out of that veth, into its peer)
 *   lbgen_sink  attached where the frames end (a backend's veth): XDP_DROP;
 *               the veth counts them (ethtool -S: rx_queue_N_xdp_drops)
 *
 * Live-frames mode recycles its pages without copying the input again, and
 * a balancer on the way rewrites them (NAT), so lbgen_tx writes the whole
 * template every time and then the flow's fields, fixing both checksums
 * incrementally.
 */
#include "lib/common.h"
#include "lib/csum.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_gen_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_gen_state);
} state SEC(".maps");

/* Which flow this frame belongs to, and whether it opens it. */
static __always_inline __u32 next_flow(const struct lb_gen_cfg *c, struct lb_gen_state *s,
				       int *is_new)
{
	__u32 seq = s->seq++;

	*is_new = c->new_permille && seq % 1000 < c->new_permille;
	if (*is_new) {
		/* past the established ones; CPUs interleave, so no two repeat */
		__u32 room = LB_GEN_MAX_FLOWS - c->flows;
		__u32 n = s->new_seq++ * 64 + (bpf_get_smp_processor_id() & 63);

		s->new_flows++;
		return c->flows + (room ? n % room : 0);
	}
	/* each CPU its own share of the flows, as a NIC's RSS would give it */
	if (c->shards > 1) {
		__u32 per = c->flows / c->shards;

		return (seq % (per ? per : 1)) * c->shards + bpf_get_smp_processor_id() % c->shards;
	}
	return c->flows ? seq % c->flows : 0;
}

SEC("xdp")
int lbgen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct lb_gen_state *s;
	struct lb_gen_cfg *c;
	__u32 zero = 0, f;
	__u16 *sport, *word, *l4csum, port, w, w0;
	__u8 *l4;
	int is_new;
	__u64 acc;

	c = bpf_map_lookup_elem(&cfg, &zero);
	s = bpf_map_lookup_elem(&state, &zero);
	if (!c || !s)
		return XDP_ABORTED;
#pragma clang loop unroll(full)
	for (int i = 0; i < LB_GEN_MAX_PKT / 8; i++) {
		if (data + (i + 1) * 8 > end || i * 8 >= c->len)
			break;
		((__u64 *)data)[i] = ((const __u64 *)c->tmpl)[i];
	}
	f = next_flow(c, s, &is_new);
	s->packets++;

	/* the source address's last 16 bits: IPv4 at 14+14, IPv6 at 14+22 */
	word = data + (c->ipv6 ? 14 + 22 : 14 + 14);
	l4 = data + (c->l4_off & 0xff);
	if ((void *)(word + 1) > end || (void *)(l4 + 20) > end)
		return XDP_ABORTED;
	sport = (__u16 *)l4;
	l4csum = (__u16 *)(l4 + (c->proto == IPPROTO_TCP ? 16 : 6));
	w0 = *word;
	w = bpf_htons(bpf_ntohs(w0) + (__u16)(f / LB_GEN_PORT_SPAN));
	port = bpf_htons(LB_GEN_PORT_LO + f % LB_GEN_PORT_SPAN);

	acc = csum_begin(*l4csum);
	acc = csum_sub16(acc, w0, w);
	acc = csum_sub16(acc, *sport, port);
	if (c->proto == IPPROTO_TCP && is_new) {
		/* data offset and flags: ACK -> SYN */
		__u16 *fl = (__u16 *)(l4 + 12), nf = (*fl & bpf_htons(0xff00)) | bpf_htons(TCPF_SYN);

		acc = csum_sub16(acc, *fl, nf);
		*fl = nf;
	}
	*l4csum = csum_end(acc);
	if (c->proto == IPPROTO_UDP && !*l4csum)
		*l4csum = 0xffff; /* 0 would mean "no checksum" */
	if (!c->ipv6) {
		struct iphdr *ip = data + 14;

		if ((void *)(ip + 1) > end)
			return XDP_ABORTED;
		ip->check = csum_end(csum_sub16(csum_begin(ip->check), w0, w));
	}
	*word = w;
	*sport = port;
	return XDP_TX;
}

SEC("xdp")
int lbgen_sink(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
