// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The BPF data path under hostile frames: every input is one Ethernet frame,
 * run through BPF_PROG_TEST_RUN of the real XDP program (as received on the
 * client side and on the backend side) and of the real TC ingress program,
 * all loaded by dataplane.c in tests/bpf/harness.c's namespace with four
 * VIPs (IPv4/IPv6, TCP/UDP, NAT and DSR, maglev and round robin). The seeds
 * (tests/fuzz/bpf/, written by LBD_FUZZ_WRITE_SEEDS=DIR; LBD_FUZZ_VERBOSE=1
 * prints each run's verdict) are valid frames of
 * every kind the parser knows: both families and protocols, ICMP errors,
 * VLAN and QinQ, IPv4 options, IPv6 extension headers, fragments and
 * truncations; libFuzzer mutates them. libFuzzer sees no coverage inside
 * the BPF program: this is mutation fuzzing guided by the seeds only.
 *
 * Invariants, for every run:
 *  - the verdict is one the program may give (XDP: DROP, PASS, TX,
 *    REDIRECT; TC: OK, SHOT, REDIRECT), never ABORTED or anything else;
 *  - a frame whose destination is not a VIP or SNAT address (or cannot be
 *    read: too short, more than two VLAN tags, not IP) passes untouched;
 *  - a forwarded frame (TX, REDIRECT) has a valid IPv4 header checksum and
 *    a valid TCP/UDP/ICMP checksum whenever the frame that came in had;
 *  - no packet, byte, flow, drop or event counter ever goes backwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "fuzz.h"
#include "../bpf/harness.h"

#define NVIPS 4
#define NBES  5

/* The addresses whose frames the data path may touch. */
static union lb_addr ours4[2], ours6[2];

static const struct h_be be_tcp4[] = { { .id = 1, .addr = H_BE4, .port = 8080 },
				       { .id = 2, .addr = "198.18.1.2", .port = 8080 } };
static const struct h_be be_udp4[] = { { .id = 3, .addr = "198.18.1.3", .port = 53 } };
static const struct h_be be_tcp6[] = { { .id = 4, .addr = H_BE6, .port = 8080 } };
static const struct h_be be_udp6[] = { { .id = 5, .addr = "2001:2:0:1::2", .port = 53 } };

static const struct h_svc svcs[NVIPS] = {
	{ .vip_id = 1, .family = 4, .vip = H_VIP4, .port = 80, .proto = IPPROTO_TCP,
	  .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT, .be = be_tcp4, .nbe = 2 },
	{ .vip_id = 2, .family = 4, .vip = H_VIP4, .port = 53, .proto = IPPROTO_UDP,
	  .method = LB_METHOD_ROUND_ROBIN, .fwd = LB_FWD_NAT, .be = be_udp4, .nbe = 1 },
	{ .vip_id = 3, .family = 6, .vip = H_VIP6, .port = 80, .proto = IPPROTO_TCP,
	  .method = LB_METHOD_IP_HASH, .fwd = LB_FWD_NAT, .be = be_tcp6, .nbe = 1 },
	{ .vip_id = 4, .family = 6, .vip = H_VIP6, .port = 53, .proto = IPPROTO_UDP,
	  .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_DSR, .be = be_udp6, .nbe = 1 },
};

/* Every counter, in one flat array, to compare snapshots. */
#define NCOUNTERS (LB_DROP_REASONS + LB_EVENTS + NVIPS * 5 + NBES * 6)
static __u64 last[NCOUNTERS];
static bool verbose; /* LBD_FUZZ_VERBOSE=1: each run's verdict on stderr */

static void counters(__u64 *c)
{
	size_t k = 0;

	FZ_CHECK(lb_dp_drops(h_dp(), c) == 0, "reading drops");
	k += LB_DROP_REASONS;
	FZ_CHECK(lb_dp_events(h_dp(), c + k) == 0, "reading events");
	k += LB_EVENTS;
	for (int i = 0; i < NVIPS; i++, k += 5) {
		struct lb_vip_stats s;
		__u32 ids[2];

		for (size_t j = 0; j < svcs[i].nbe; j++)
			ids[j] = svcs[i].be[j].id;
		FZ_CHECK(lb_dp_vip_stats(h_dp(), svcs[i].vip_id, ids, svcs[i].nbe, &s) == 0,
			 "reading vip stats");
		_Static_assert(sizeof(s) == 5 * sizeof(__u64), "lb_vip_stats: 5 counters");
		memcpy(c + k, &s, sizeof(s));
	}
	for (__u32 id = 1; id <= NBES; id++, k += 6) {
		struct lb_backend_stats s;

		FZ_CHECK(lb_dp_backend_stats(h_dp(), id, &s) == 0, "reading backend stats");
		_Static_assert(sizeof(s) == 6 * sizeof(__u64), "lb_backend_stats: 6 counters");
		memcpy(c + k, &s, sizeof(s));
	}
}

/* ---- an independent reading of the frame ---- */

struct view {
	int fam;               /* 0: no readable destination address */
	const uint8_t *dst;
	bool ip_ok;            /* IPv4 header checksum (IPv6: always) */
	int l4;                /* 1 valid, 0 invalid, -1 not checkable */
	uint8_t proto;
};

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
	return h_csum_add(s, p, n);
}

static bool folds_ok(uint32_t s)
{
	return h_csum_fold(s) == 0xffff;
}

static int l4_valid(const struct view *v, const uint8_t *l3, const uint8_t *l4, size_t len)
{
	uint32_t s;

	switch (v->proto) {
	case IPPROTO_TCP:
		if (len < 20)
			return -1;
		break;
	case IPPROTO_UDP:
		if (len < 8)
			return -1;
		if (v->fam == 4 && !l4[6] && !l4[7])
			return 1; /* IPv4 UDP without checksum */
		break;
	case IPPROTO_ICMP:
		return len < 8 ? -1 : folds_ok(sum16(0, l4, len));
	case IPPROTO_ICMPV6:
		if (len < 8)
			return -1;
		break;
	default:
		return -1;
	}
	/* pseudo-header: addresses, protocol, L4 length */
	s = v->fam == 4 ? sum16(0, l3 + 12, 8) : sum16(0, l3 + 8, 32);
	s += v->proto + (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
	return folds_ok(sum16(s, l4, len));
}

static void view(const uint8_t *b, size_t n, struct view *v)
{
	size_t off = 14, l3end, l4off;
	uint16_t type;
	int tags = 0;

	memset(v, 0, sizeof(*v));
	v->l4 = -1;
	if (n < 14)
		return;
	type = (uint16_t)(b[12] << 8 | b[13]);
	while ((type == 0x8100 || type == 0x88a8) && tags < 2 && off + 4 <= n) {
		type = (uint16_t)(b[off + 2] << 8 | b[off + 3]);
		off += 4;
		tags++;
	}
	if (type == 0x0800 && off + 20 <= n) {
		const uint8_t *ip = b + off;
		size_t hl = (size_t)(ip[0] & 15) * 4, tot = (size_t)(ip[2] << 8 | ip[3]);

		v->fam = 4;
		v->dst = ip + 16;
		v->proto = ip[9];
		if ((ip[0] >> 4) != 4 || hl < 20 || off + hl > n)
			return;
		v->ip_ok = folds_ok(sum16(0, ip, hl));
		if (tot < hl || off + tot > n || (ip[6] & 0x3f) || ip[7])
			return; /* truncated, or a fragment: no whole L4 here */
		v->l4 = l4_valid(v, ip, ip + hl, tot - hl);
	} else if (type == 0x86dd && off + 40 <= n) {
		const uint8_t *ip = b + off;
		uint8_t nh = ip[6];

		v->fam = 6;
		v->dst = ip + 24;
		v->ip_ok = true;
		l3end = off + 40 + (size_t)(ip[4] << 8 | ip[5]);
		if ((ip[0] >> 4) != 6 || l3end > n)
			return;
		l4off = off + 40;
		for (int i = 0; i < 8; i++) {
			if (nh == IPPROTO_FRAGMENT)
				return;
			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
				break;
			if (l4off + 8 > l3end)
				return;
			nh = b[l4off];
			l4off += 8 + (size_t)b[l4off + 1] * 8;
		}
		if (l4off > l3end)
			return;
		v->proto = nh;
		v->l4 = l4_valid(v, ip, b + l4off, l3end - l4off);
	}
}

static bool is_ours(const struct view *v)
{
	const union lb_addr *set = v->fam == 4 ? ours4 : ours6;
	size_t alen = v->fam == 4 ? 4 : 16;

	if (!v->fam)
		return false;
	for (int i = 0; i < 2; i++)
		if (!memcmp(v->dst, set[i].b, alen))
			return true;
	return false;
}

/* ---- runs ---- */

static void check_run(const char *what, const struct h_pkt *in, int verdict, bool forwarded,
		      bool passed, const struct h_pkt *out)
{
	struct view vi, vo;

	view(in->b, in->len, &vi);
	if (verbose)
		fprintf(fz_stderr(), "  %-17s verdict %d, %zu -> %zu bytes%s\n", what, verdict,
			in->len, out->len, is_ours(&vi) ? "" : " (not ours)");
	if (!is_ours(&vi))
		FZ_CHECK(passed && out->len == in->len && !memcmp(out->b, in->b, in->len),
			 "%s: a frame not for a VIP was changed or not passed (verdict %d)", what,
			 verdict);
	if (!forwarded)
		return;
	view(out->b, out->len, &vo);
	FZ_CHECK(vo.fam, "%s: forwarded frame without an IP header", what);
	if (vi.ip_ok)
		FZ_CHECK(vo.ip_ok, "%s: forwarded with a bad IPv4 header checksum", what);
	if (vi.l4 == 1 && vo.l4 >= 0)
		FZ_CHECK(vo.l4 == 1, "%s: forwarded with a bad L4 (proto %u) checksum", what,
			 vo.proto);
}

static void run_xdp(const struct h_pkt *in, int ifindex, const char *what)
{
	struct h_pkt out;
	int v = h_run(in, ifindex, &out);

	FZ_CHECK(v == XDP_DROP || v == XDP_PASS || v == XDP_TX || v == XDP_REDIRECT,
		 "%s: verdict %d", what, v);
	check_run(what, in, v, v == XDP_TX || v == XDP_REDIRECT, v == XDP_PASS, &out);
}

static void run_tc(const struct h_pkt *in, int ifindex)
{
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex, .ingress_ifindex = (__u32)ifindex };
	struct h_pkt out = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = in->b,
		.data_size_in = (__u32)in->len,
		.data_out = out.b,
		.data_size_out = sizeof(out.b),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	);
	int v;

	/* The kernel refuses skb test runs it cannot make an skb of (an IP
	 * ethertype with less than an IP header): those never reach the
	 * program this way, and the XDP runs cover them. */
	if (bpf_prog_test_run_opts(lb_dp_tc_prog_fd(h_dp()), &o)) {
		FZ_CHECK(errno == EINVAL, "tc test run: %s", strerror(errno));
		return;
	}
	out.len = o.data_size_out;
	v = (int)o.retval;
	FZ_CHECK(v == TC_ACT_OK || v == TC_ACT_SHOT || v == TC_ACT_REDIRECT, "tc: verdict %d", v);
	check_run("tc", in, v, v == TC_ACT_REDIRECT, v == TC_ACT_OK, &out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h_pkt in = { 0 };
	__u64 now[NCOUNTERS];

	/* XDP test runs need a whole Ethernet header and fit a page. */
	if (size < 14 || size > 3000)
		return 0;
	memcpy(in.b, data, size);
	in.len = size;
	run_xdp(&in, h_ifindex_client(), "xdp client side");
	run_xdp(&in, h_ifindex_backend(), "xdp backend side");
	run_tc(&in, h_ifindex_client());
	counters(now);
	for (size_t i = 0; i < NCOUNTERS; i++)
		FZ_CHECK(now[i] >= last[i], "counter %zu went back from %llu to %llu", i,
			 (unsigned long long)last[i], (unsigned long long)now[i]);
	memcpy(last, now, sizeof(now));
	return 0;
}

/* ---- seeds ---- */

static void write_seed(const char *dir, const char *name, const struct h_pkt *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p->b, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

/* The frame, and for the first kinds also its truncations. */
static void seed(const char *dir, const char *name, const struct h_spec *s, bool cut)
{
	struct h_pkt p;
	char n[256];

	h_build(s, &p);
	write_seed(dir, name, &p, p.len);
	if (!cut)
		return;
	snprintf(n, sizeof(n), "%s-cut-l3", name);
	write_seed(dir, n, &p, p.l3off + 10);
	snprintf(n, sizeof(n), "%s-cut-l4", name);
	write_seed(dir, n, &p, p.l4off + 4);
	snprintf(n, sizeof(n), "%s-cut-payload", name);
	write_seed(dir, n, &p, p.len - 3);
}

static void write_seeds(const char *dir)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	char name[128];
	struct h_spec s, inner;
	struct h_pkt ip;

	mkdir(dir, 0755);
	for (int fam = 4; fam <= 6; fam += 2) {
		for (int i = 0; i < 2; i++) {
			uint8_t pr = protos[i];
			uint16_t port = pr == IPPROTO_TCP ? 80 : 53;
			const char *pn = pr == IPPROTO_TCP ? "tcp" : "udp";

			s = h_from_client(fam, pr, 40000, port);
			snprintf(name, sizeof(name), "v%d-%s-vip", fam, pn);
			seed(dir, name, &s, true);
			s.dport = 9999;
			snprintf(name, sizeof(name), "v%d-%s-vip-other-port", fam, pn);
			seed(dir, name, &s, false);
			s = h_from_client(fam, pr, 40001, port);
			s.dst = fam == 4 ? "198.18.0.254" : "2001:2::fe";
			snprintf(name, sizeof(name), "v%d-%s-not-vip", fam, pn);
			seed(dir, name, &s, true);
			s = h_from_client(fam, pr, 40002, port);
			s.nvlan = 1;
			s.tpid[0] = 0x8100;
			s.vid[0] = 10;
			snprintf(name, sizeof(name), "v%d-%s-vlan", fam, pn);
			seed(dir, name, &s, true);
			s.nvlan = 2;
			s.tpid[0] = 0x88a8;
			s.tpid[1] = 0x8100;
			s.vid[1] = 20;
			snprintf(name, sizeof(name), "v%d-%s-qinq", fam, pn);
			seed(dir, name, &s, false);
			s = h_from_backend(fam, pr, LB_SNAT_PORT_LO);
			snprintf(name, sizeof(name), "v%d-%s-reply", fam, pn);
			seed(dir, name, &s, true);
		}
		s = h_from_client(fam, fam == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6, 0, 0);
		s.icmp_type = fam == 4 ? 8 : 128;
		snprintf(name, sizeof(name), "v%d-icmp-echo-vip", fam);
		seed(dir, name, &s, false);
		/* an ICMP error about a NAT flow, sent by a router to the SNAT address */
		inner = h_from_client(fam, IPPROTO_TCP, 40000, 80);
		inner = h_to_backend(&inner, LB_SNAT_PORT_LO);
		h_build(&inner, &ip);
		s = h_from_backend(fam, fam == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6, 0);
		s.icmp_type = fam == 4 ? 3 : 2;   /* unreachable / packet too big */
		s.icmp_code = fam == 4 ? 4 : 0;   /* fragmentation needed */
		s.icmp_rest = 1400;
		s.payload = ip.b + ip.l3off;
		s.plen = ip.len - ip.l3off;
		snprintf(name, sizeof(name), "v%d-icmp-too-big", fam);
		seed(dir, name, &s, true);
	}
	s = h_from_client(4, IPPROTO_TCP, 40010, 80);
	s.ipopt_len = 8;
	seed(dir, "v4-options", &s, true);
	s.ipopt_len = 40;
	seed(dir, "v4-options-max", &s, false);
	s = h_from_client(4, IPPROTO_UDP, 40011, 53);
	s.frag = 0x2000; /* more fragments */
	seed(dir, "v4-frag-first", &s, false);
	s.frag = 0x0010;
	seed(dir, "v4-frag-later", &s, false);
	s = h_from_client(4, IPPROTO_UDP, 40012, 53);
	s.udp_nocsum = true;
	seed(dir, "v4-udp-nocsum", &s, false);
	{
		static const struct h_ext exts[][2] = {
			{ { .type = IPPROTO_HOPOPTS } },
			{ { .type = IPPROTO_ROUTING, .len8 = 2 } },
			{ { .type = IPPROTO_DSTOPTS, .len8 = 1 }, { .type = IPPROTO_ROUTING } },
			{ { .type = IPPROTO_FRAGMENT, .frag = 0x0001 } },
			{ { .type = IPPROTO_FRAGMENT, .frag = 0x0100 } },
		};
		static const char *const names[] = { "v6-hopopts", "v6-routing", "v6-dst-routing",
						     "v6-frag-first", "v6-frag-later" };

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			s = h_from_client(6, i % 2 ? IPPROTO_UDP : IPPROTO_TCP, 40020, i % 2 ? 53 : 80);
			s.ext[0] = exts[i][0];
			s.ext[1] = exts[i][1];
			s.next = exts[i][1].type ? 2 : 1;
			seed(dir, names[i], &s, i < 2);
		}
	}
	s = (struct h_spec){ .ethertype = 0x0806, .payload = "arp who-has", .plen = 11 };
	memcpy(s.dmac, h_mac_client_if, 6);
	h_mac_client(2, s.smac);
	seed(dir, "arp", &s, false);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("LBD_FUZZ_WRITE_SEEDS");

	verbose = getenv("LBD_FUZZ_VERBOSE") != NULL;
	(void)argc;
	(void)argv;
	h_init(); /* SKIP and exit 0 when not root */
	if (h_dp_up(NULL) || lb_dp_load_tc(h_dp())) {
		fprintf(stderr, "fuzz_bpf: cannot load the data path\n");
		exit(1);
	}
	for (int i = 0; i < NVIPS; i++)
		h_svc_add(&svcs[i]);
	h_addr(4, H_VIP4, &ours4[0]);
	h_addr(4, H_SNAT4, &ours4[1]);
	h_addr(6, H_VIP6, &ours6[0]);
	h_addr(6, H_SNAT6, &ours6[1]);
	counters(last);
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}
