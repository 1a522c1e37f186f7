// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "table.h"

const uint8_t h_mac_client_if[6] = { 0x02, 0, 0, 0, 0x00, 0xfe };
const uint8_t h_mac_backend_if[6] = { 0x02, 0, 0, 0, 0x01, 0xfe };
const uint8_t h_mac_peer[6] = { 0x02, 0, 0, 0, 0x0f, 0x01 };

static struct lb_dp *dp;
static int if_client, if_backend;
static struct lb_config cur_cfg;
/* VIP keys by id, so a table swap can update the VIP's table_size. */
static struct lb_vip_key vip_keys[LB_MAX_VIPS];

void h_mac_client(int n, uint8_t mac[6])
{
	const uint8_t m[6] = { 0x02, 0, 0, 0, 0x00, (uint8_t)n };

	memcpy(mac, m, 6);
}

void h_mac_backend(int n, uint8_t mac[6])
{
	const uint8_t m[6] = { 0x02, 0, 0, 0, 0x01, (uint8_t)n };

	memcpy(mac, m, 6);
}

int h_ifindex_client(void)
{
	return if_client;
}

int h_ifindex_backend(void)
{
	return if_backend;
}

struct lb_dp *h_dp(void)
{
	return dp;
}

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "harness: '%s' failed (%d)\n", cmd, rc);
		exit(1);
	}
}

void h_init(void)
{
	cpu_set_t cpus;

	/* H_FILTER=pattern runs only the matching cases (cmocka wildcards). */
	if (getenv("H_FILTER"))
		cmocka_set_test_filter(getenv("H_FILTER"));
	if (geteuid() != 0) {
		printf("SKIP: bpf tests: need root (BPF_PROG_TEST_RUN, network namespaces)\n");
		exit(0);
	}
	/* A private netns: routes and neighbours are ours, and everything we
	 * create goes away with the process. */
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		exit(1);
	}
	/* One CPU: per-CPU state (round-robin cursor, counters) stays put. */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	sh("ip link set lo up");
	sh("ip link add veth0 address 02:00:00:00:00:fe type veth peer name veth1 address 02:00:00:00:00:01");
	sh("ip link add veth2 address 02:00:00:00:01:fe type veth peer name veth3 address 02:00:00:00:01:01");
	sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
	for (int i = 0; i < 4; i++)
		sh("ip link set veth%d up", i);
	sh("ip addr add 198.18.0.254/24 dev veth0");
	sh("ip addr add 2001:2::fe/64 dev veth0 nodad");
	sh("ip addr add 198.18.1.254/24 dev veth2");
	sh("ip addr add 2001:2:0:1::fe/64 dev veth2 nodad");
	sh("ip route add unreachable 198.18.9.0/24");
	sh("ip -6 route add unreachable 2001:2:0:9::/64");
	for (int n = 1; n <= 4; n++) {
		sh("ip neigh add 198.18.0.%d lladdr 02:00:00:00:00:%02x dev veth0 nud permanent", n, n);
		sh("ip neigh add 2001:2::%d lladdr 02:00:00:00:00:%02x dev veth0 nud permanent", n, n);
	}
	for (int n = 1; n <= 8; n++) {
		sh("ip neigh add 198.18.1.%d lladdr 02:00:00:00:01:%02x dev veth2 nud permanent", n, n);
		sh("ip neigh add 2001:2:0:1::%d lladdr 02:00:00:00:01:%02x dev veth2 nud permanent", n, n);
	}
	if_client = (int)if_nametoindex(H_CLIENT_IF);
	if_backend = (int)if_nametoindex(H_BACKEND_IF);
	if (!if_client || !if_backend) {
		fprintf(stderr, "harness: veth interfaces missing\n");
		exit(1);
	}
}

int h_dp_up(void **state)
{
	(void)state;
	return h_dp_open(65536, 0);
}

int h_dp_open(uint32_t ct_size, uint32_t ct_new_size)
{
	struct lb_dp_opts o = { .ct_size = ct_size, .ct_new_size = ct_new_size };
	int err;

	memset(vip_keys, 0, sizeof(vip_keys));
	err = lb_dp_open(&o, &dp);
	if (err) {
		fprintf(stderr, "lb_dp_open: %s\n", strerror(-err));
		return -1;
	}
	h_config(LB_SNAT_PORT_LO, LB_SNAT_PORT_HI, 0x5eed);
	return 0;
}

int h_tc_up(void **state)
{
	if (h_dp_up(state))
		return -1;
	return lb_dp_load_tc(dp) ? -1 : 0;
}

int h_dp_down(void **state)
{
	(void)state;
	lb_dp_close(dp);
	dp = NULL;
	return 0;
}

/* ---- packets ---- */

uint32_t h_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

uint16_t h_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

void h_addr(int family, const char *s, union lb_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(family == 6 ? AF_INET6 : AF_INET, s, a->b) != 1)
		fail_msg("bad address '%s' for IPv%d", s, family);
}

/* Write the IPv6 extension headers; returns their length. */
static size_t build_ext(const struct h_spec *s, uint8_t *p, uint8_t l4proto)
{
	size_t off = 0;

	for (int i = 0; i < s->next; i++) {
		const struct h_ext *e = &s->ext[i];
		uint8_t nh = i + 1 < s->next ? s->ext[i + 1].type : l4proto;
		size_t hl = e->type == IPPROTO_FRAGMENT ? 8 : ((size_t)e->len8 + 1) * 8;

		memset(p + off, 0, hl);
		p[off] = nh;
		if (e->type == IPPROTO_FRAGMENT) {
			put16(p + off + 2, e->frag);
			put32(p + off + 4, 0x12345678);
		} else if (e->type == IPPROTO_ROUTING) {
			p[off + 1] = e->len8;
			p[off + 2] = 4; /* segment routing header, segments left 0 */
		} else {
			p[off + 1] = e->len8;
			p[off + 2] = 1; /* PadN over the rest */
			p[off + 3] = (uint8_t)(hl - 4);
		}
		off += hl;
	}
	return off;
}

void h_build(const struct h_spec *s, struct h_pkt *p)
{
	uint8_t *b = p->b, *l3, *l4;
	union lb_addr src, dst;
	size_t off = 12, l3hl, l4len, hdr;
	uint8_t proto = s->proto;
	uint32_t sum;

	memset(p, 0, sizeof(*p));
	memcpy(b, s->dmac, 6);
	memcpy(b + 6, s->smac, 6);
	for (int i = 0; i < s->nvlan; i++) {
		put16(b + off, s->tpid[i]);
		put16(b + off + 2, s->vid[i]);
		off += 4;
	}
	if (s->family == 0) {
		put16(b + off, s->ethertype);
		off += 2;
		if (s->plen)
			memcpy(b + off, s->payload, s->plen);
		p->len = off + s->plen;
		p->l3off = p->l4off = off;
		return;
	}
	put16(b + off, s->family == 6 ? ETH_P_IPV6 : ETH_P_IP);
	off += 2;
	p->l3off = off;
	l3 = b + off;
	h_addr(s->family, s->src, &src);
	h_addr(s->family, s->dst, &dst);

	if (s->family == 4)
		l3hl = 20 + s->ipopt_len;
	else
		l3hl = 40 + build_ext(s, l3 + 40, proto);
	l4 = l3 + l3hl;
	p->l4off = p->l3off + l3hl;

	switch (proto) {
	case IPPROTO_TCP:
		hdr = 20;
		break;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		hdr = 8;
		break;
	default:
		hdr = 0;
	}
	l4len = hdr + s->plen;
	assert_true(p->l4off + l4len <= H_PKT_MAX);
	if (s->plen)
		memcpy(l4 + hdr, s->payload, s->plen);

	/* L4 header, checksum still 0 */
	if (proto == IPPROTO_TCP) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->ack);
		l4[12] = 5 << 4;
		l4[13] = s->tcp_flags;
		put16(l4 + 14, 64240);
	} else if (proto == IPPROTO_UDP) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, (uint16_t)l4len);
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		l4[0] = s->icmp_type;
		l4[1] = s->icmp_code;
		put32(l4 + 4, s->icmp_rest);
	}

	/* L3 header */
	if (s->family == 4) {
		l3[0] = (uint8_t)(0x40 | (l3hl / 4));
		put16(l3 + 2, (uint16_t)(l3hl + l4len));
		put16(l3 + 4, s->ip_id);
		put16(l3 + 6, s->frag);
		l3[8] = s->ttl ? s->ttl : 64;
		l3[9] = proto;
		memcpy(l3 + 12, &src.v4, 4);
		memcpy(l3 + 16, &dst.v4, 4);
		for (size_t i = 20; i < l3hl; i++) /* NOPs, then end of list */
			l3[i] = i + 1 == l3hl ? 0 : 1;
		put16(l3 + 10, (uint16_t)~h_csum_fold(h_csum_add(0, l3, l3hl)));
	} else {
		l3[0] = 0x60;
		put16(l3 + 4, (uint16_t)(l3hl - 40 + l4len));
		l3[6] = s->next ? s->ext[0].type : proto;
		l3[7] = s->ttl ? s->ttl : 64;
		memcpy(l3 + 8, src.b, 16);
		memcpy(l3 + 24, dst.b, 16);
	}

	/* L4 checksum over the pseudo-header (ICMPv4: none) */
	if (proto == IPPROTO_ICMP) {
		sum = 0;
	} else {
		uint8_t ph[8] = { 0 };

		if (s->family == 4) {
			sum = h_csum_add(0, &src.v4, 4);
			sum = h_csum_add(sum, &dst.v4, 4);
			ph[1] = proto;
			put16(ph + 2, (uint16_t)l4len);
			sum = h_csum_add(sum, ph, 4);
		} else {
			sum = h_csum_add(0, src.b, 16);
			sum = h_csum_add(sum, dst.b, 16);
			put32(ph, (uint32_t)l4len);
			ph[7] = proto;
			sum = h_csum_add(sum, ph, 8);
		}
	}
	sum = h_csum_add(sum, l4, l4len);
	if (proto == IPPROTO_TCP) {
		put16(l4 + 16, (uint16_t)~h_csum_fold(sum));
	} else if (proto == IPPROTO_UDP) {
		uint16_t c = (uint16_t)~h_csum_fold(sum);

		if (s->udp_nocsum && s->family == 4)
			c = 0;
		else if (c == 0)
			c = 0xffff; /* RFC 768: a computed 0 is sent as all ones */
		put16(l4 + 6, c);
	} else if (hdr) {
		put16(l4 + 2, (uint16_t)~h_csum_fold(sum));
	}
	p->len = p->l4off + l4len;
}

uint16_t h_port(const struct h_pkt *p, int dest)
{
	uint16_t v;

	memcpy(&v, p->b + p->l4off + (dest ? 2 : 0), 2);
	return v;
}

/* H_DEBUG=1: the verdict and every non-zero counter after each run. */
static void debug_counters(int verdict)
{
	__u64 d[LB_DROP_REASONS], e[LB_EVENTS];

	fprintf(stderr, "  run: %s", h_verdict_name(verdict));
	if (!lb_dp_drops(dp, d) && !lb_dp_events(dp, e)) {
		for (unsigned int i = 0; i < LB_DROP_REASONS; i++)
			if (d[i])
				fprintf(stderr, " drop.%s=%llu", lb_drop_name(i), (unsigned long long)d[i]);
		for (unsigned int i = 0; i < LB_EVENTS; i++)
			if (e[i])
				fprintf(stderr, " %s=%llu", lb_event_name(i), (unsigned long long)e[i]);
	}
	fprintf(stderr, "\n");
}

int h_test_run(int prog_fd, void *ctx, size_t ctx_size, const struct h_pkt *in,
	       struct h_pkt *out)
{
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = in->b,
		.data_size_in = (__u32)in->len,
		.data_out = out->b,
		.data_size_out = sizeof(out->b),
		.ctx_in = ctx,
		.ctx_size_in = (__u32)ctx_size,
		.repeat = 1,
	);

	memset(out, 0, sizeof(*out));
	if (bpf_prog_test_run_opts(prog_fd, &o))
		fail_msg("bpf_prog_test_run_opts: %s", strerror(errno));
	out->len = o.data_size_out;
	out->l3off = in->l3off;
	out->l4off = in->l4off;
	if (getenv("H_DEBUG"))
		debug_counters((int)o.retval);
	return (int)o.retval;
}

int h_run(const struct h_pkt *in, int ifindex, struct h_pkt *out)
{
	/* data_end is the frame length: test_run sizes the frame from it. */
	struct xdp_md ctx = { .data_end = (__u32)in->len, .ingress_ifindex = (__u32)ifindex };

	return h_test_run(lb_dp_xdp_prog_fd(dp), &ctx, sizeof(ctx), in, out);
}

int h_run_tc(const struct h_pkt *in, int ifindex, struct h_pkt *out)
{
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex, .ingress_ifindex = (__u32)ifindex };

	return h_test_run(lb_dp_tc_prog_fd(dp), &ctx, sizeof(ctx), in, out);
}

void h_vlan(struct h_spec *s, int nvlan)
{
	s->nvlan = nvlan;
	s->tpid[0] = nvlan == 2 ? 0x88a8 : 0x8100;
	s->vid[0] = 100;
	s->tpid[1] = 0x8100;
	s->vid[1] = 200;
}

static const char h_req[] = "GET / HTTP/1.0\r\n\r\n";

struct h_spec h_from_client(int fam, uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct h_spec s = {
		.family = fam, .src = fam == 6 ? H_CL6 : H_CL4, .dst = fam == 6 ? H_VIP6 : H_VIP4,
		.proto = proto, .sport = sport, .dport = dport, .ttl = 64,
		.tcp_flags = 0x02, .seq = 1000, .ip_id = 0x1234,
		.payload = h_req, .plen = sizeof(h_req) - 1,
	};

	memcpy(s.dmac, h_mac_client_if, 6);
	h_mac_client(1, s.smac);
	return s;
}

struct h_spec h_to_backend(const struct h_spec *in, uint16_t snat_port)
{
	struct h_spec s = *in;

	s.src = in->family == 6 ? H_SNAT6 : H_SNAT4;
	s.dst = in->family == 6 ? H_BE6 : H_BE4;
	s.sport = snat_port;
	s.dport = 8080;
	s.ttl = (uint8_t)(in->ttl - 1);
	memcpy(s.smac, h_mac_backend_if, 6);
	h_mac_backend(1, s.dmac);
	return s;
}

struct h_spec h_from_backend(int fam, uint8_t proto, uint16_t snat_port)
{
	static const char resp[] = "HTTP/1.0 200 OK\r\n\r\n";
	struct h_spec s = {
		.family = fam, .src = fam == 6 ? H_BE6 : H_BE4, .dst = fam == 6 ? H_SNAT6 : H_SNAT4,
		.proto = proto, .sport = 8080, .dport = snat_port, .ttl = 63,
		.tcp_flags = 0x12, .seq = 777, .ack = 1001,
		.payload = resp, .plen = sizeof(resp) - 1,
	};

	memcpy(s.dmac, h_mac_backend_if, 6);
	h_mac_backend(1, s.smac);
	return s;
}

const char *h_verdict_name(int v)
{
	switch (v) {
	case XDP_ABORTED: return "XDP_ABORTED";
	case XDP_DROP: return "XDP_DROP";
	case XDP_PASS: return "XDP_PASS";
	case XDP_TX: return "XDP_TX";
	case XDP_REDIRECT: return "XDP_REDIRECT";
	}
	return "?";
}

static void hex_diff(const struct h_pkt *got, const struct h_pkt *want)
{
	size_t n = got->len > want->len ? got->len : want->len;

	fprintf(stderr, "  offset  got                                               want\n");
	for (size_t row = 0; row < n; row += 16) {
		char g[64] = "", w[64] = "", mark[64] = "";
		bool diff = false;

		for (size_t i = row; i < row + 16 && i < n; i++) {
			bool hg = i < got->len, hw = i < want->len;
			bool d = hg != hw || (hg && got->b[i] != want->b[i]);

			snprintf(g + strlen(g), sizeof(g) - strlen(g), hg ? "%02x " : "-- ",
				 hg ? got->b[i] : 0);
			snprintf(w + strlen(w), sizeof(w) - strlen(w), hw ? "%02x " : "-- ",
				 hw ? want->b[i] : 0);
			strcat(mark, d ? "^^ " : "   ");
			diff |= d;
		}
		fprintf(stderr, "  %04zx    %-48s  %s\n", row, g, w);
		if (diff)
			fprintf(stderr, "          %s\n", mark);
	}
}

void h_expect_at(const char *file, int line, int verdict, int want_verdict,
		 const struct h_pkt *got, const struct h_pkt *want)
{
	bool same = got->len == want->len && !memcmp(got->b, want->b, got->len);

	if (verdict == want_verdict && same)
		return;
	fprintf(stderr, "%s:%d: verdict %s, want %s; packet %s (%zu bytes, want %zu)\n",
		file, line, h_verdict_name(verdict), h_verdict_name(want_verdict),
		same ? "as expected" : "differs", got->len, want->len);
	if (!same)
		hex_diff(got, want);
	_fail(file, line);
}

/* ---- maps ---- */

void h_config(uint16_t snat_lo, uint16_t snat_hi, uint32_t seed)
{
	struct lb_config c = {
		.hash_seed = seed,
		.snat_port_lo = snat_lo,
		.snat_port_hi = snat_hi,
		.flags = cur_cfg.flags,
	};

	for (size_t i = 0; i < LB_MAX_VIPS; i++)
		if (vip_keys[i].proto && vip_keys[i].port == 0)
			c.flags |= LB_CFG_F_WILDCARD;
	cur_cfg = c;
	assert_int_equal(lb_dp_set_config(dp, &c), 0);
}

void h_svc_table(const struct h_svc *s, const struct h_be *be, size_t nbe,
		 __u32 **tbl, __u32 *n)
{
	struct lb_maglev_backend mb[64];

	assert_true(nbe > 0 && nbe <= 64);
	for (size_t i = 0; i < nbe; i++) {
		mb[i] = (struct lb_maglev_backend){
			.port = htons(be[i].port), .family = (__u8)s->family,
			.weight = be[i].weight ? be[i].weight : 1, .id = be[i].id,
		};
		h_addr(s->family, be[i].addr, &mb[i].addr);
	}
	assert_int_equal(lb_table_build(s->method, mb, nbe, cur_cfg.hash_seed, 0, tbl, n), 0);
}

static void set_backends(const struct h_svc *s, const struct h_be *be, size_t nbe,
			 struct lb_vip *v)
{
	__u32 *tbl = NULL, n = 0;

	for (size_t i = 0; i < nbe; i++) {
		struct lb_backend b = {
			.port = htons(be[i].port),
			.family = (__u8)s->family,
			.state = LB_BE_UP,
			.weight = be[i].weight ? be[i].weight : 1,
			.vip_id = s->vip_id,
		};

		h_addr(s->family, be[i].addr, &b.addr);
		assert_int_equal(lb_dp_backend_set(dp, be[i].id, &b), 0);
	}
	v->table_size = 0;
	if (nbe) {
		h_svc_table(s, be, nbe, &tbl, &n);
		assert_int_equal(lb_dp_table_swap(dp, s->vip_id, tbl, n), 0);
		v->table_size = n;
		free(tbl);
	}
}

static void vip_of(const struct h_svc *s, struct lb_vip_key *k, struct lb_vip *v)
{
	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	h_addr(s->family, s->vip, &k->addr);
	k->port = htons(s->port);
	k->proto = s->proto;
	k->family = (__u8)s->family;
	v->id = s->vip_id;
	v->method = s->method;
	v->fwd = s->fwd;
	v->family = (__u8)s->family;
	v->flags = LB_VIP_F_SNAT_SET;
	v->encap_port = htons(s->encap_port);
	h_addr(s->family, s->family == 6 ? H_SNAT6 : H_SNAT4, &v->snat_addr);
}

void h_svc_add(const struct h_svc *s)
{
	struct lb_vip_key k;
	struct lb_vip v;

	assert_true(s->vip_id < LB_MAX_VIPS);
	vip_of(s, &k, &v);
	set_backends(s, s->be, s->nbe, &v);
	assert_int_equal(lb_dp_vip_set(dp, &k, &v), 0);
	vip_keys[s->vip_id] = k;
	if (s->port == 0)
		h_config(cur_cfg.snat_port_lo, cur_cfg.snat_port_hi, cur_cfg.hash_seed);
}

void h_svc_backends(const struct h_svc *s, const struct h_be *be, size_t nbe)
{
	struct lb_vip_key k;
	struct lb_vip v;

	vip_of(s, &k, &v);
	set_backends(s, be, nbe, &v);
	assert_int_equal(lb_dp_vip_set(dp, &k, &v), 0);
}

void h_backend_state(uint32_t id, uint8_t state)
{
	struct lb_backend b;

	assert_int_equal(lb_dp_backend_get(dp, id, &b), 0);
	b.state = state;
	assert_int_equal(lb_dp_backend_set(dp, id, &b), 0);
}

uint64_t h_drops(unsigned int reason)
{
	__u64 d[LB_DROP_REASONS];

	assert_int_equal(lb_dp_drops(dp, d), 0);
	return d[reason];
}

uint64_t h_event(unsigned int ev)
{
	__u64 e[LB_EVENTS];

	assert_int_equal(lb_dp_events(dp, e), 0);
	return e[ev];
}

int64_t h_conns(uint32_t be_id)
{
	__s64 c = 0;

	assert_int_equal(lb_dp_backend_conns(dp, be_id, &c), 0);
	return c;
}

int h_flow_backend(int family, const char *src, uint16_t sport, const char *dst,
		   uint16_t dport, uint8_t proto, uint32_t *be_id)
{
	struct lb_flow_key k = { .sport = htons(sport), .dport = htons(dport),
				 .proto = proto, .family = (__u8)family };
	struct lb_flow f;
	int err;

	h_addr(family, src, &k.src);
	h_addr(family, dst, &k.dst);
	err = lb_dp_flow_lookup(dp, LB_MAP_CT, &k, &f);
	if (err)
		return err;
	*be_id = f.backend_id;
	return 0;
}

int h_which_backend(const struct h_pkt *out, int family, const struct h_be *be, size_t nbe)
{
	size_t off = out->l3off + (family == 6 ? 24 : 16), alen = family == 6 ? 16 : 4;

	for (size_t i = 0; i < nbe; i++) {
		union lb_addr a;

		h_addr(family, be[i].addr, &a);
		if (out->len >= off + alen && !memcmp(out->b + off, a.b, alen))
			return (int)i;
	}
	return -1;
}
