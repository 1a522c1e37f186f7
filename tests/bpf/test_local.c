// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Forward mode `local` through the real objects. XDP and TC ingress pass a
 * local VIP's packets up byte for byte (counted, never rewritten, no flow
 * state); the socket-lookup program (lb_sk.bpf.c, run with
 * BPF_PROG_TEST_RUN on real sockets of this process) hands each new
 * connection to the socket of the instance the VIP's table picks, skips an
 * instance whose socket is gone or that is marked down, takes a dual-stack
 * socket for IPv4, and leaves every other lookup to the stack.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "lb_hash.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static const struct h_be two4[] = {
	{ .id = 1, .addr = H_VIP4, .port = 3000 },
	{ .id = 2, .addr = H_VIP4, .port = 3001 },
};
static const struct h_be two6[] = {
	{ .id = 1, .addr = H_VIP6, .port = 3000 },
	{ .id = 2, .addr = H_VIP6, .port = 3001 },
};

static struct h_svc local_vip(int fam, uint8_t proto, const struct h_be *be, size_t nbe)
{
	return (struct h_svc){
		.vip_id = 5, .family = fam, .vip = fam == 6 ? H_VIP6 : H_VIP4, .port = 80,
		.proto = proto, .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_LOCAL,
		.be = be, .nbe = nbe,
	};
}

static void add_local_vip(int fam, uint8_t proto, const struct h_be *be, size_t nbe)
{
	struct h_svc s = local_vip(fam, proto, be, nbe);

	h_svc_add(&s);
}

/* ---- XDP and TC ingress: up as it is ---------------------------------- */

enum entry { XDP, TC };

static void pass_untouched(enum entry e, int fam, uint8_t proto, uint8_t ttl)
{
	struct h_spec in = h_from_client(fam, proto, 40000, 80);
	struct h_pkt pin, out;
	uint32_t be;
	int v;

	add_local_vip(fam, proto, fam == 6 ? two6 : two4, 2);
	in.ttl = ttl;
	h_build(&in, &pin);
	if (e == XDP) {
		v = h_run(&pin, h_ifindex_client(), &out);
	} else {
		struct __sk_buff ctx = { .ifindex = (__u32)h_ifindex_client(),
					 .ingress_ifindex = (__u32)h_ifindex_client() };

		v = h_test_run(lb_dp_tc_prog_fd(h_dp()), &ctx, sizeof(ctx), &pin, &out);
	}
	h_expect(v, e == XDP ? XDP_PASS : TC_ACT_OK, &out, &pin);
	assert_int_equal(h_event(LB_EV_LOCAL), 1);
	assert_int_equal(h_event(LB_EV_FLOW_NEW), 0);
	assert_int_equal(h_event(LB_EV_PASS_TTL), 0);
	/* nothing tracked: there is nothing to reverse */
	assert_int_not_equal(h_flow_backend(fam, fam == 6 ? H_CL6 : H_CL4, 40000,
					    fam == 6 ? H_VIP6 : H_VIP4, 80, proto, &be), 0);
}

static void test_xdp_tcp4(void **st) { (void)st; pass_untouched(XDP, 4, IPPROTO_TCP, 64); }
static void test_xdp_udp6(void **st) { (void)st; pass_untouched(XDP, 6, IPPROTO_UDP, 64); }
static void test_tc_tcp6(void **st)  { (void)st; pass_untouched(TC, 6, IPPROTO_TCP, 64); }
/* Delivered, not routed: a TTL that would expire on a router is fine. */
static void test_xdp_ttl1(void **st) { (void)st; pass_untouched(XDP, 4, IPPROTO_TCP, 1); }

/* ---- socket lookup ------------------------------------------------------ */

struct inst {
	int fd;
	uint64_t cookie;
};

/* A socket of this process standing in for an instance's: a TCP listener
 * or a bound UDP socket on an ephemeral loopback port (the program may
 * hand a connection to any socket, whatever it is bound to). */
static struct inst inst_open(int fam, uint8_t proto, int v6only)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int type = proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	struct inst in = { .fd = socket(fam == 6 ? AF_INET6 : AF_INET, type, 0) };
	socklen_t len = sizeof(in.cookie);

	assert_true(in.fd >= 0);
	if (fam == 6) {
		if (!v6only) /* [::] for both families, as Node listens */
			a6.sin6_addr = in6addr_any;
		assert_int_equal(setsockopt(in.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)), 0);
		assert_int_equal(bind(in.fd, (struct sockaddr *)&a6, sizeof(a6)), 0);
	} else {
		assert_int_equal(bind(in.fd, (struct sockaddr *)&a4, sizeof(a4)), 0);
	}
	if (type == SOCK_STREAM)
		assert_int_equal(listen(in.fd, 8), 0);
	assert_int_equal(getsockopt(in.fd, SOL_SOCKET, SO_COOKIE, &in.cookie, &len), 0);
	return in;
}

static void inst_register(uint32_t id, const struct inst *in)
{
	assert_int_equal(lb_dp_local_sock_set(h_dp(), id, in->fd), 0);
}

/* One lookup, client CL:sport -> VIP:dport. Returns the verdict; *cookie is
 * the chosen socket's (0: none chosen). */
static int lookup(int fam, uint8_t proto, uint16_t sport, uint16_t dport, uint64_t *cookie)
{
	struct bpf_sk_lookup ctx = {
		.family = fam == 6 ? AF_INET6 : AF_INET,
		.protocol = proto,
		.remote_port = htons(sport),
		.local_port = dport,
	};
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &ctx, .ctx_size_out = sizeof(ctx), .repeat = 1);
	union lb_addr a;

	if (fam == 6) {
		h_addr(6, H_CL6, &a);
		memcpy(ctx.remote_ip6, a.v6, 16);
		h_addr(6, H_VIP6, &a);
		memcpy(ctx.local_ip6, a.v6, 16);
	} else {
		h_addr(4, H_CL4, &a);
		ctx.remote_ip4 = a.v4;
		h_addr(4, H_VIP4, &a);
		ctx.local_ip4 = a.v4;
	}
	if (bpf_prog_test_run_opts(lb_dp_sk_prog_fd(h_dp()), &o))
		fail_msg("bpf_prog_test_run_opts(sk_lookup): %s", strerror(errno));
	*cookie = ctx.cookie;
	return (int)o.retval;
}

/* The backend id the VIP's Maglev table gives client port sport. */
static uint32_t table_choice(const struct h_svc *s, uint16_t sport)
{
	struct lb_flow_key k = { .sport = htons(sport), .dport = htons(s->port),
				 .proto = s->proto, .family = (__u8)s->family };
	__u32 *tbl, n, id;

	h_addr(s->family, s->family == 6 ? H_CL6 : H_CL4, &k.src);
	h_addr(s->family, s->vip, &k.dst);
	h_svc_table(s, s->be, s->nbe, &tbl, &n);
	id = tbl[lb_hash_flow(&k, 0x5eed) % n];
	free(tbl);
	return id;
}

/* Each new connection goes to the socket of the instance the table picks
 * (the same lb_hash.h choice as XDP, TC and the proxy). */
static void picks_table_choice(int fam, uint8_t proto)
{
	struct h_svc s = local_vip(fam, proto, fam == 6 ? two6 : two4, 2);
	struct inst a = inst_open(fam, proto, 1), b = inst_open(fam, proto, 1);
	int seen[3] = { 0, 0, 0 };
	uint64_t c;

	h_svc_add(&s);
	inst_register(1, &a);
	inst_register(2, &b);
	for (uint16_t sp = 41000; sp < 41064; sp++) {
		uint32_t want = table_choice(&s, sp);

		assert_int_equal(lookup(fam, proto, sp, 80, &c), SK_PASS);
		assert_true(c == (want == 1 ? a.cookie : b.cookie));
		seen[want]++;
	}
	print_message("  instance 1 got %d, instance 2 got %d of 64\n", seen[1], seen[2]);
	assert_true(seen[1] > 8 && seen[2] > 8);
	assert_int_equal(h_event(LB_EV_LOCAL_SOCK), 64);
	close(a.fd);
	close(b.fd);
}

static void test_sk_tcp4(void **st) { (void)st; picks_table_choice(4, IPPROTO_TCP); }
static void test_sk_tcp6(void **st) { (void)st; picks_table_choice(6, IPPROTO_TCP); }
static void test_sk_udp4(void **st) { (void)st; picks_table_choice(4, IPPROTO_UDP); }

/* A dual-stack IPv6 socket ([::], v6only off) takes the VIP's IPv4
 * connections; a v6-only one does not. */
static void test_sk_dual_stack(void **st)
{
	static const struct h_be one[] = { { .id = 1, .addr = H_VIP4, .port = 3000 } };
	struct inst d = inst_open(6, IPPROTO_TCP, 0), o = inst_open(6, IPPROTO_TCP, 1);
	uint64_t c;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, one, 1);
	inst_register(1, &o);
	assert_int_equal(lookup(4, IPPROTO_TCP, 42000, 80, &c), SK_DROP);
	assert_int_equal(h_drops(LB_DROP_NO_BACKEND), 1);
	inst_register(1, &d);
	assert_int_equal(lookup(4, IPPROTO_TCP, 42000, 80, &c), SK_PASS);
	assert_true(c == d.cookie);
	close(d.fd);
	close(o.fd);
}

/* An instance that died (its socket closed: the kernel drops it from the
 * map) or is marked down: another instance takes its connections at once,
 * before the table is rebuilt. None left: dropped, so TCP retries the SYN. */
static void test_sk_dead_instance(void **st)
{
	struct h_svc s = local_vip(4, IPPROTO_TCP, two4, 2);
	struct inst a = inst_open(4, IPPROTO_TCP, 1), b = inst_open(4, IPPROTO_TCP, 1);
	uint16_t sp1 = 0, sp2 = 0;
	uint64_t c;

	(void)st;
	h_svc_add(&s);
	inst_register(1, &a);
	inst_register(2, &b);
	for (uint16_t sp = 43000; sp < 43100 && (!sp1 || !sp2); sp++)
		*(table_choice(&s, sp) == 1 ? &sp1 : &sp2) = sp;
	assert_true(sp1 && sp2);

	close(a.fd);
	assert_int_equal(lookup(4, IPPROTO_TCP, sp1, 80, &c), SK_PASS);
	assert_true(c == b.cookie);

	h_backend_state(2, LB_BE_DOWN);
	assert_int_equal(lookup(4, IPPROTO_TCP, sp2, 80, &c), SK_DROP);
	assert_int_equal(c, 0);
	assert_int_equal(h_drops(LB_DROP_NO_BACKEND), 1);
	h_backend_state(2, LB_BE_UP);
	assert_int_equal(lookup(4, IPPROTO_TCP, sp2, 80, &c), SK_PASS);
	assert_true(c == b.cookie);
	close(b.fd);
}

/* Not a local VIP (another port, a NAT VIP): the stack's own lookup. */
static void test_sk_others_untouched(void **st)
{
	struct h_svc nat = {
		.vip_id = 6, .family = 4, .vip = H_VIP4, .port = 443, .proto = IPPROTO_TCP,
		.method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT, .be = two4, .nbe = 2,
	};
	struct inst a = inst_open(4, IPPROTO_TCP, 1);
	uint64_t c;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, two4, 2);
	h_svc_add(&nat);
	inst_register(1, &a);
	assert_int_equal(lookup(4, IPPROTO_TCP, 44000, 3000, &c), SK_PASS);
	assert_int_equal(c, 0);
	assert_int_equal(lookup(4, IPPROTO_TCP, 44000, 443, &c), SK_PASS);
	assert_int_equal(c, 0);
	assert_int_equal(lookup(4, IPPROTO_UDP, 44000, 80, &c), SK_PASS);
	assert_int_equal(c, 0);
	assert_int_equal(h_event(LB_EV_LOCAL_SOCK), 0);
	close(a.fd);
}

/* lbd's registration: deleting forgets every family and protocol. */
static void test_sk_del(void **st)
{
	static const struct h_be one[] = { { .id = 1, .addr = H_VIP4, .port = 3000 } };
	struct inst d = inst_open(6, IPPROTO_TCP, 0);
	uint64_t c;

	(void)st;
	add_local_vip(4, IPPROTO_TCP, one, 1);
	inst_register(1, &d);
	assert_int_equal(lb_dp_local_sock_del(h_dp(), 1), 0);
	assert_int_equal(lookup(4, IPPROTO_TCP, 45000, 80, &c), SK_DROP);
	close(d.fd);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_tc_up, h_dp_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_xdp_tcp4),
		T(test_xdp_udp6),
		T(test_tc_tcp6),
		T(test_xdp_ttl1),
		T(test_sk_tcp4),
		T(test_sk_tcp6),
		T(test_sk_udp4),
		T(test_sk_dual_stack),
		T(test_sk_dead_instance),
		T(test_sk_others_untouched),
		T(test_sk_del),
	};

	h_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
