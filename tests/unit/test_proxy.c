// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy.c on loopback: echo backends on 127.0.0.2.., the proxy on
 * 127.0.0.1:<free port>, real TCP and UDP. Each backend answers a new
 * connection (or datagram) with its one-byte name first, so the tests see
 * which backend a flow reached and compare it with what lb_table_build and
 * lb_hash_flow say the BPF path would pick.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "lb_hash.h"
#include "loop.h"
#include "proxy.h"
#include "table.h"

#define SEED   0x1234abcdu
#define MAXBE  4
#define WAIT_MS 3000

struct backend {
	char name;
	__u8 proto;
	int lfd;
	__u16 port;             /* network order */
	__u32 addr;             /* network order */
	pthread_t th;
	atomic_bool stop;
	atomic_int conns;
};

struct fixture {
	struct backend be[MAXBE];
	int nbe;
	struct lb_proxy *p;
	__u16 vport;            /* network order */
	__u32 *table;
	__u32 table_n;
	bool pp2;               /* the VIP sends PROXY v2 headers */
	__u64 idle_ms, fin_ms;  /* the VIP's own timeouts, 0: the proxy's */
};

/* How long an echo backend keeps its end open after the client's FIN (a
 * backend that answers nothing more and never closes). */
static atomic_int echo_hold_ms;

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t m = write(fd, buf + off, (size_t)(n - off));

			if (m <= 0)
				goto out;
			off += m;
		}
	}
out:
	if (!n && atomic_load(&echo_hold_ms))
		usleep((useconds_t)atomic_load(&echo_hold_ms) * 1000);
	close(fd);
	return NULL;
}

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	char buf[2048];

	while (!atomic_load(&b->stop)) {
		struct pollfd pfd = { .fd = b->lfd, .events = POLLIN };

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (b->proto == IPPROTO_UDP) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(b->lfd, buf + 1, sizeof(buf) - 1, MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fl);

			if (n < 0)
				continue;
			buf[0] = b->name;
			sendto(b->lfd, buf, (size_t)n + 1, 0, (struct sockaddr *)&from, fl);
			continue;
		}
		int fd = accept(b->lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0)
			continue;
		atomic_fetch_add(&b->conns, 1);
		if (write(fd, &b->name, 1) != 1 ||
		    pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int bound_socket(int type, __u32 addr, __u16 *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = addr };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = sa.sin_port;
	return fd;
}

/* Backend i on 127.0.0.(2+i); a dead one has a port nobody listens on; a
 * black hole listens with a full accept queue, so SYNs to it go unanswered. */
enum be_kind { BE_LIVE, BE_DEAD, BE_BLACKHOLE };

static void backend_start(struct fixture *f, __u8 proto, enum be_kind kind)
{
	struct backend *b = &f->be[f->nbe];

	b->name = (char)('A' + f->nbe);
	b->proto = proto;
	b->addr = htonl(0x7f000002u + (__u32)f->nbe);
	f->nbe++;
	b->lfd = bound_socket(proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM, b->addr, &b->port);
	if (kind == BE_DEAD) {
		close(b->lfd); /* the port stays ours long enough: nothing else binds 127.0.0.x */
		b->lfd = -1;
		return;
	}
	if (kind == BE_BLACKHOLE) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = b->port,
					  .sin_addr.s_addr = b->addr };

		assert_int_equal(listen(b->lfd, 0), 0);
		for (int i = 0; i < 3; i++) {
			int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			connect(c, (struct sockaddr *)&sa, sizeof(sa));
			/* leaked on purpose until the process ends: they keep the queue full */
		}
		usleep(50000);
		return;
	}
	if (proto == IPPROTO_TCP)
		assert_int_equal(listen(b->lfd, 128), 0);
	assert_int_equal(pthread_create(&b->th, NULL, backend_main, b), 0);
}

static void backends_stop(struct fixture *f)
{
	for (int i = 0; i < f->nbe; i++) {
		struct backend *b = &f->be[i];

		if (b->lfd < 0)
			continue;
		if (b->th) {
			atomic_store(&b->stop, true);
			pthread_join(b->th, NULL);
		}
		close(b->lfd);
	}
}

static void proxy_start(struct fixture *f, const struct lb_proxy_opts *o0, __u8 proto,
			enum lb_method method, const __u32 *weights, __u32 max_conns)
{
	struct lb_proxy_opts o = *o0;
	struct lb_maglev_backend mb[MAXBE];
	struct lb_proxy_backend pb[MAXBE];
	struct lb_proxy_vip v;
	int fd;

	memset(mb, 0, sizeof(mb));
	memset(pb, 0, sizeof(pb));
	for (int i = 0; i < f->nbe; i++) {
		mb[i].family = pb[i].ep.family = LB_AF_INET;
		mb[i].addr.v4 = pb[i].ep.addr.v4 = f->be[i].addr;
		mb[i].port = pb[i].ep.port = f->be[i].port;
		mb[i].weight = pb[i].weight = weights ? weights[i] : 1;
		mb[i].id = pb[i].id = 100 + (__u32)i;
	}
	assert_int_equal(lb_table_build(method, mb, (size_t)f->nbe, SEED, 0, &f->table, &f->table_n), 0);
	fd = bound_socket(proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM, htonl(0x7f000001u), &f->vport);
	close(fd);
	if (!o.workers)
		o.workers = 2;
	assert_int_equal(lb_proxy_start(&o, &f->p), 0);
	memset(&v, 0, sizeof(v));
	v.name = "t";
	v.listen.family = LB_AF_INET;
	v.listen.addr.v4 = htonl(0x7f000001u);
	v.listen.port = f->vport;
	v.proto = proto;
	v.method = method;
	v.hash_seed = SEED;
	v.max_conns = max_conns;
	v.proxy_protocol = f->pp2;
	v.idle_timeout_ms = f->idle_ms;
	v.fin_timeout_ms = f->fin_ms;
	v.table = f->table;
	v.table_n = f->table_n;
	v.be = pb;
	v.nbe = f->nbe;
	assert_int_equal(lb_proxy_update(f->p, &v, 1), 0);
	usleep(20000); /* workers arm their listeners */
}

/* One live TCP backend behind a maglev VIP. */
static void serve_one(struct fixture *f, const struct lb_proxy_opts *o, __u32 max_conns)
{
	backend_start(f, IPPROTO_TCP, BE_LIVE);
	proxy_start(f, o, IPPROTO_TCP, LB_METHOD_MAGLEV, NULL, max_conns);
}

/* The proxy sees the clients' closes in its own time. */
static void wait_idle(struct lb_proxy *p)
{
	for (int i = 0; i < 100 && lb_proxy_active(p); i++)
		usleep(10000);
	assert_int_equal(lb_proxy_active(p), 0);
}

static void fixture_end(struct fixture *f)
{
	lb_proxy_stop(f->p);
	backends_stop(f);
	free(f->table);
}

static int vip_connect(const struct fixture *f, __u16 *sport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = f->vport,
				  .sin_addr.s_addr = htonl(0x7f000001u) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (sport) {
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
		*sport = sa.sin_port;
	}
	return fd;
}

/* The backend the BPF path would pick for 127.0.0.1:sport -> VIP. */
static __u32 expected_slot(const struct fixture *f, enum lb_method m, __u8 proto, __u16 sport)
{
	struct lb_flow_key k;

	memset(&k, 0, sizeof(k));
	k.src.v4 = htonl(0x7f000001u);
	k.dst.v4 = htonl(0x7f000001u);
	k.sport = sport;
	k.dport = f->vport;
	k.proto = proto;
	k.family = LB_AF_INET;
	if (m == LB_METHOD_IP_HASH)
		return lb_hash_addr(&k.src, SEED) % f->table_n;
	return lb_hash_flow(&k, SEED) % f->table_n;
}

static char name_of(__u32 id)
{
	return (char)('A' + (id - 100));
}

static char first_byte(int fd)
{
	char c = 0;

	return read(fd, &c, 1) == 1 ? c : 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void choice(enum lb_method m)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { 0 };
	__u32 w[3] = { 1, 2, 3 };
	int seen[3] = { 0 };

	for (int i = 0; i < 3; i++)
		backend_start(&f, IPPROTO_TCP, BE_LIVE);
	proxy_start(&f, &o, IPPROTO_TCP, m, w, 0);
	for (int i = 0; i < 60; i++) {
		__u16 sport;
		int fd = vip_connect(&f, &sport);
		char want = name_of(f.table[expected_slot(&f, m, IPPROTO_TCP, sport)]);
		char got = first_byte(fd);

		assert_int_equal(got, want);
		seen[got - 'A']++;
		close(fd);
	}
	if (m == LB_METHOD_MAGLEV) /* a 5-tuple hash spreads one client's flows */
		assert_true(seen[0] && seen[1] && seen[2]);
	fixture_end(&f);
}

static void test_choice_maglev(void **st)
{
	(void)st;
	choice(LB_METHOD_MAGLEV);
}

static void test_choice_ip_hash(void **st)
{
	(void)st;
	choice(LB_METHOD_IP_HASH);
}

static void test_round_robin_weights(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .workers = 1 };
	__u32 w[3] = { 1, 1, 2 };
	int seen[3] = { 0 };

	(void)st;
	for (int i = 0; i < 3; i++)
		backend_start(&f, IPPROTO_TCP, BE_LIVE);
	proxy_start(&f, &o, IPPROTO_TCP, LB_METHOD_ROUND_ROBIN, w, 0);
	for (int i = 0; i < 40; i++) {
		int fd = vip_connect(&f, NULL);
		char got = first_byte(fd);

		assert_true(got >= 'A' && got <= 'C');
		/* one worker walks the smooth sequence exactly */
		assert_int_equal(got, name_of(f.table[i % f.table_n]));
		seen[got - 'A']++;
		close(fd);
	}
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 20);
	fixture_end(&f);
}

/* Four worker processes: the kernel spreads the connections over them, and
 * the counts each choice reads are the totals of all four. */
static void test_least_conn(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .workers = 4 };
	int fds[6], seen[3] = { 0 };

	(void)st;
	for (int i = 0; i < 3; i++)
		backend_start(&f, IPPROTO_TCP, BE_LIVE);
	proxy_start(&f, &o, IPPROTO_TCP, LB_METHOD_LEAST_CONN, NULL, 0);
	/* held open: each new one goes where the fewest are */
	for (int i = 0; i < 6; i++) {
		fds[i] = vip_connect(&f, NULL);
		seen[first_byte(fds[i]) - 'A']++;
	}
	assert_int_equal(seen[0], 2);
	assert_int_equal(seen[1], 2);
	assert_int_equal(seen[2], 2);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	fixture_end(&f);
}

/* Big transfer both ways at once, checked byte for byte. */
static void transfer(bool no_splice)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .no_splice = no_splice };
	const size_t total = 32u << 20;
	size_t sent = 0, got = 0;
	__u64 h_out = 14695981039346656037ull, h_in = h_out;
	struct lb_proxy_vip_stats vs;
	unsigned char *buf = malloc(1 << 16), *rbuf = malloc(1 << 16);
	__u64 start = lb_now_ms();
	int fd;

	assert_non_null(buf);
	assert_non_null(rbuf);
	serve_one(&f, &o, 0);
	fd = vip_connect(&f, NULL);
	assert_int_equal(first_byte(fd), 'A');
	while (got < total) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		assert_true(lb_now_ms() - start < 30000);
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if ((pfd.revents & POLLOUT) && sent < total) {
			size_t n = total - sent < (1 << 16) ? total - sent : (1 << 16);
			ssize_t m;

			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)((sent + i) * 2654435761u >> 13);
			m = send(fd, buf, n, MSG_DONTWAIT);
			if (m > 0) {
				for (ssize_t i = 0; i < m; i++)
					h_out = (h_out ^ buf[i]) * 1099511628211ull;
				sent += (size_t)m;
				if (sent == total)
					shutdown(fd, SHUT_WR); /* half-close crosses the proxy */
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP)) {
			ssize_t m = recv(fd, rbuf, 1 << 16, MSG_DONTWAIT);

			assert_true(m != 0 || got == total);
			for (ssize_t i = 0; i < m; i++)
				h_in = (h_in ^ rbuf[i]) * 1099511628211ull;
			if (m > 0)
				got += (size_t)m;
		}
	}
	assert_int_equal(got, total);
	assert_true(h_in == h_out);
	assert_int_equal(recv(fd, rbuf, 1, 0), 0); /* backend's close arrives as EOF */
	close(fd);
	usleep(50000);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.bytes_in, total);
	assert_int_equal(vs.bytes_out, total + 1);
	free(buf);
	free(rbuf);
	fixture_end(&f);
}

static void test_transfer_splice(void **st)
{
	(void)st;
	transfer(false);
}

static void test_transfer_rw(void **st)
{
	(void)st;
	transfer(true);
}

/* The first choice is dead (refused) or a black hole (connect timeout):
 * the flow goes to the next backend in table order, with the bytes the
 * client sent at once (the proxy reads them before it connects and holds
 * them across the retry). */
static void retry(enum be_kind bad)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .connect_timeout_ms = 200 };
	struct lb_proxy_vip_stats vs;
	struct lb_proxy_be_stats bs;
	int retried = 0, conns = 0;
	char echo[5];

	backend_start(&f, IPPROTO_TCP, BE_LIVE);
	backend_start(&f, IPPROTO_TCP, bad);
	serve_one(&f, &o, 0);
	/* until one hashed to the bad backend (random ports: 12 miss it 0.8%
	 * of the time) */
	for (int i = 0; i < 12 || (!retried && i < 100); i++) {
		__u16 sport;
		int fd = vip_connect(&f, &sport);
		__u32 s = expected_slot(&f, LB_METHOD_MAGLEV, IPPROTO_TCP, sport);
		char want;

		while (name_of(f.table[s]) == 'B')
			s = (s + 1) % f.table_n;
		want = name_of(f.table[s]);
		retried += name_of(f.table[expected_slot(&f, LB_METHOD_MAGLEV, IPPROTO_TCP, sport)]) == 'B';
		assert_int_equal(write(fd, "hello", 5), 5);
		assert_int_equal(first_byte(fd), want);
		assert_int_equal(recv(fd, echo, sizeof(echo), MSG_WAITALL), 5);
		assert_memory_equal(echo, "hello", 5);
		close(fd);
		conns++;
	}
	assert_true(retried > 0);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.bytes_in, 5 * conns);
	assert_int_equal(vs.retries, retried);
	assert_int_equal(vs.connect_fail, retried);
	assert_int_equal(vs.no_backend, 0);
	assert_int_equal(lb_proxy_backend_stats(f.p, 101, &bs), 0);
	assert_int_equal(bs.connect_fail, retried);
	assert_int_equal(bs.connected, 0);
	assert_int_equal(lb_proxy_backend_stats(f.p, 100, &bs), 0);
	assert_int_equal(bs.connect_fail, 0);
	assert_int_equal(bs.connected, bs.conns);
	fixture_end(&f);
}

static void test_retry_refused(void **st)
{
	(void)st;
	retry(BE_DEAD);
}

static void test_retry_timeout(void **st)
{
	(void)st;
	retry(BE_BLACKHOLE);
}

static void test_idle_timeout(void **st)
{
	struct fixture f = { 0 };
	/* margins for a loaded machine: the client may sleep long */
	struct lb_proxy_opts o = { .idle_timeout_ms = 800 };
	struct lb_proxy_vip_stats vs;
	char c;
	__u64 t0;
	int fd;

	(void)st;
	serve_one(&f, &o, 0);
	fd = vip_connect(&f, NULL);
	assert_int_equal(first_byte(fd), 'A');
	/* traffic keeps it open past the timeout */
	for (int i = 0; i < 4; i++) {
		usleep(150000);
		assert_int_equal(write(fd, "x", 1), 1);
		assert_int_equal(read(fd, &c, 1), 1);
	}
	t0 = lb_now_ms();
	assert_int_equal(read(fd, &c, 1), 0); /* then idle: closed */
	assert_true(lb_now_ms() - t0 >= 700 && lb_now_ms() - t0 < 2500);
	close(fd);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.idle_closed, 1);
	assert_int_equal(vs.active, 0);
	fixture_end(&f);
}

/* Half-closed: the client sent its FIN, the backend neither answers nor
 * closes. The VIP's fin timeout closes it, long before its idle timeout
 * (and the proxy's defaults: fin 60 s, idle 600 s, so the per-VIP values
 * are the ones in force). */
static void test_fin_timeout(void **st)
{
	struct fixture f = { .idle_ms = 20000, .fin_ms = 600 };
	struct lb_proxy_opts o = { 0 };
	struct lb_proxy_vip_stats vs;
	char c;
	__u64 t0;
	int fd;

	(void)st;
	atomic_store(&echo_hold_ms, 8000);
	serve_one(&f, &o, 0);
	fd = vip_connect(&f, NULL);
	assert_int_equal(first_byte(fd), 'A');
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	t0 = lb_now_ms();
	assert_int_equal(read(fd, &c, 1), 0);
	assert_true(lb_now_ms() - t0 >= 500 && lb_now_ms() - t0 < 4000);
	close(fd);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.idle_closed, 1);
	assert_int_equal(vs.active, 0);
	fixture_end(&f);
	atomic_store(&echo_hold_ms, 0);
}

/* The limit is the VIP's total over its four worker processes. */
static void test_max_conns(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .workers = 4 };
	struct lb_proxy_vip_stats vs;
	int a, b, c;
	char x;

	(void)st;
	serve_one(&f, &o, 2);
	a = vip_connect(&f, NULL);
	b = vip_connect(&f, NULL);
	assert_int_equal(first_byte(a), 'A');
	assert_int_equal(first_byte(b), 'A');
	c = vip_connect(&f, NULL);
	assert_true(read(c, &x, 1) <= 0); /* closed at once, never reached a backend */
	close(c);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.refused_limit, 1);
	assert_int_equal(vs.active, 2);
	assert_int_equal(atomic_load(&f.be[0].conns), 2);
	close(a);
	for (int i = 0; i < 100 && !lb_proxy_vip_stats(f.p, "t", &vs) && vs.active > 1; i++)
		usleep(10000);
	c = vip_connect(&f, NULL);
	assert_int_equal(first_byte(c), 'A');
	close(b);
	close(c);
	fixture_end(&f);
}

static void test_udp(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .udp_idle_timeout_ms = 300 };
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u) };
	struct lb_proxy_vip_stats vs;
	struct timeval tv = { .tv_sec = 2 };
	int fds[8];

	(void)st;
	for (int i = 0; i < 3; i++)
		backend_start(&f, IPPROTO_UDP, BE_LIVE);
	proxy_start(&f, &o, IPPROTO_UDP, LB_METHOD_MAGLEV, NULL, 0);
	vip.sin_port = f.vport;
	for (int i = 0; i < 8; i++) {
		__u16 sport;

		fds[i] = bound_socket(SOCK_DGRAM, htonl(0x7f000001u), &sport);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (int r = 0; r < 3; r++) { /* the session keeps its backend */
			char msg[32], in[64];
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			int len = snprintf(msg, sizeof(msg), "ping %d %d", i, r);
			ssize_t n;

			assert_int_equal(sendto(fds[i], msg, (size_t)len, 0, (struct sockaddr *)&vip,
						sizeof(vip)), len);
			n = recvfrom(fds[i], in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
			assert_int_equal(n, len + 1);
			assert_memory_equal(in + 1, msg, (size_t)len);
			assert_int_equal(in[0], name_of(f.table[expected_slot(&f, LB_METHOD_MAGLEV,
									      IPPROTO_UDP, sport)]));
			/* the reply comes from the VIP */
			assert_int_equal(from.sin_addr.s_addr, vip.sin_addr.s_addr);
			assert_int_equal(from.sin_port, vip.sin_port);
		}
	}
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.accepted, 8);
	assert_int_equal(vs.dgrams_in, 24);
	assert_int_equal(vs.dgrams_out, 24);
	for (int i = 0; i < 100 && !lb_proxy_vip_stats(f.p, "t", &vs) && vs.active; i++)
		usleep(10000);
	assert_int_equal(vs.active, 0); /* idle sessions expire */
	assert_int_equal(vs.idle_closed, 8);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	fixture_end(&f);
}

/* The fixture's TCP VIP with backend i alone (id 100 + i) in a one-slot
 * table. */
static void one_backend_vip(const struct fixture *f, int i, struct lb_proxy_backend *pb, __u32 *tab,
			    struct lb_proxy_vip *v)
{
	memset(pb, 0, sizeof(*pb));
	pb->ep.family = LB_AF_INET;
	pb->ep.addr.v4 = f->be[i].addr;
	pb->ep.port = f->be[i].port;
	pb->id = 100 + (__u32)i;
	pb->weight = 1;
	tab[0] = pb->id;
	memset(v, 0, sizeof(*v));
	v->name = "t";
	v->listen.family = LB_AF_INET;
	v->listen.addr.v4 = htonl(0x7f000001u);
	v->listen.port = f->vport;
	v->proto = IPPROTO_TCP;
	v->hash_seed = SEED;
	v->table = tab;
	v->table_n = 1;
	v->be = pb;
	v->nbe = 1;
}

/* An update keeps the listener (no refused connection) and moves new flows
 * to the new table; a removed VIP stops accepting while its open connection
 * still works. */
static void test_update_drain(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { 0 };
	struct lb_proxy_backend pb;
	struct lb_proxy_vip v;
	__u32 tab[1];
	char c;
	int a, b;

	(void)st;
	backend_start(&f, IPPROTO_TCP, BE_LIVE);
	backend_start(&f, IPPROTO_TCP, BE_LIVE);
	proxy_start(&f, &o, IPPROTO_TCP, LB_METHOD_MAGLEV, (const __u32[]){ 1, 0 }, 0);
	a = vip_connect(&f, NULL);
	assert_int_equal(first_byte(a), 'A');
	one_backend_vip(&f, 1, &pb, tab, &v);
	assert_int_equal(lb_proxy_update(f.p, &v, 1), 0);
	usleep(20000);
	b = vip_connect(&f, NULL);
	assert_int_equal(first_byte(b), 'B');
	close(b);
	assert_int_equal(lb_proxy_update(f.p, NULL, 0), 0);
	usleep(50000);
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = f.vport,
					  .sin_addr.s_addr = htonl(0x7f000001u) };

		b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(b, (struct sockaddr *)&sa, sizeof(sa)), -1);
		assert_int_equal(errno, ECONNREFUSED);
		close(b);
	}
	/* the old connection still goes through to A */
	assert_int_equal(write(a, "q", 1), 1);
	assert_int_equal(read(a, &c, 1), 1);
	assert_int_equal(c, 'q');
	close(a);
	fixture_end(&f);
}

/* Listener handover, as lbd --takeover does it across processes: a second
 * proxy takes the first one's listeners, the first stops accepting. Every
 * connect succeeds, new connections go to the second proxy, and the first
 * one's open connection goes on. */
static void test_handover(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { 0 }, o2 = { .workers = 2 };
	struct lb_proxy_vip_stats s1, s2;
	struct lb_proxy_backend pb;
	struct lb_proxy_vip v;
	struct lb_buf desc = { 0 };
	struct lb_proxy *p2;
	int fds[4], n, a;
	__u32 tab[1];
	char c;

	(void)st;
	serve_one(&f, &o, 0);
	a = vip_connect(&f, NULL);
	assert_int_equal(first_byte(a), 'A');
	assert_int_equal(lb_proxy_listeners(f.p, fds, 1, &desc), -E2BIG);
	n = lb_proxy_listeners(f.p, fds, 4, &desc);
	assert_int_equal(n, 2); /* one per worker */
	assert_non_null(strstr(desc.data, "listener t 127.0.0.1:"));
	lb_buf_free(&desc);
	o2.inherit = fds;
	o2.ninherit = n;
	assert_int_equal(lb_proxy_start(&o2, &p2), 0);
	one_backend_vip(&f, 0, &pb, tab, &v);
	assert_int_equal(lb_proxy_update(p2, &v, 1), 0);
	lb_proxy_stop_accepting(f.p);
	usleep(50000);
	for (int i = 0; i < 20; i++) {
		int b = vip_connect(&f, NULL); /* asserts the connect succeeded */

		assert_int_equal(first_byte(b), 'A');
		close(b);
	}
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &s1), 0);
	assert_int_equal(lb_proxy_vip_stats(p2, "t", &s2), 0);
	assert_int_equal(s1.accepted, 1);
	assert_int_equal(s2.accepted, 20);
	assert_int_equal(lb_proxy_active(f.p), 1);
	assert_int_equal(write(a, "q", 1), 1);
	assert_int_equal(read(a, &c, 1), 1);
	assert_int_equal(c, 'q');
	close(a);
	wait_idle(f.p);
	lb_proxy_stop(p2);
	fixture_end(&f);
}

/* TCP sockets listening on 127.0.0.1:port (network order), from
 * /proc/net/tcp: the retired workers' go when they close them. */
static int listeners_on(__u16 port)
{
	char line[256], want[32];
	int n = 0;
	FILE *f = fopen("/proc/net/tcp", "re");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "0100007F:%04X 00000000:0000 0A", ntohs(port));
	while (fgets(line, sizeof(line), f))
		n += strstr(line, want) != NULL;
	fclose(f);
	return n;
}

/* Reaps pid (a child, or an orphan of this subreaper) within ms; true if it
 * exited with status 0. */
static bool reaped(pid_t pid, int ms)
{
	int status = 0;

	for (int i = 0; i < ms / 10; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		usleep(10000);
	}
	return false;
}

/* lbd exits without stopping its workers (SIGTERM) or crashes: they serve
 * on, new connections and open ones; the next lbd's proxy finds them in
 * state_dir and retires them once it listens: they accept no more, and
 * exit when their connections are done. The first "lbd" is a child of
 * this test, which is their subreaper: they become its children when that
 * one exits, as they would init's. */
/* The workers test_leave_retire made, whatever became of the test. */
static int leave_setup(void **st)
{
	*st = calloc(2, sizeof(pid_t));
	return *st ? 0 : -1;
}

static int leave_teardown(void **st)
{
	pid_t *w = *st;

	for (int i = 0; i < 2; i++)
		if (w[i] > 0 && !kill(w[i], SIGKILL))
			waitpid(w[i], NULL, 0);
	free(w);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	return 0;
}

static void test_leave_retire(void **st)
{
	struct fixture f = { 0 };
	char dir[] = "/tmp/lbd-test-proxy.XXXXXX";
	struct lb_proxy_opts o = { .workers = 2, .state_dir = dir };
	struct lb_proxy_vip_stats s2;
	struct lb_proxy_backend pb;
	struct lb_proxy_vip v;
	struct lb_proxy *p2;
	int ready[2], status, a, fd;
	pid_t lbd, *w = *st;
	__u32 tab[1];
	char c;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	backend_start(&f, IPPROTO_TCP, BE_LIVE);
	fd = bound_socket(SOCK_STREAM, htonl(0x7f000001u), &f.vport);
	close(fd);
	one_backend_vip(&f, 0, &pb, tab, &v);
	assert_int_equal(pipe(ready), 0);
	lbd = fork();
	assert_true(lbd >= 0);
	if (!lbd) {
		/* no cmocka here: a failed assert would go on with the runner */
		struct lb_proxy *p1;
		bool ok = !lb_proxy_start(&o, &p1) && !lb_proxy_update(p1, &v, 1);

		if (ok) {
			usleep(20000); /* workers arm their listeners */
			lb_proxy_workers(p1, w, 2);
			ok = write(ready[1], w, 2 * sizeof(*w)) == (ssize_t)(2 * sizeof(*w));
			lb_proxy_leave(p1);
		}
		_exit(ok ? 0 : 1);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], w, 2 * sizeof(*w)), 2 * sizeof(*w));
	close(ready[0]);
	assert_int_equal(waitpid(lbd, &status, 0), lbd);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(w[0] > 0 && w[1] > 0);
	/* that "lbd" is gone; its workers serve */
	a = vip_connect(&f, NULL);
	assert_int_equal(first_byte(a), 'A');
	assert_int_equal(kill(w[0], 0), 0);
	assert_int_equal(kill(w[1], 0), 0);
	/* the next one */
	assert_int_equal(lb_proxy_start(&o, &p2), 0);
	assert_int_equal(lb_proxy_update(p2, &v, 1), 0);
	for (int i = 0; i < 200 && listeners_on(f.vport) != 2; i++)
		usleep(10000);
	assert_int_equal(listeners_on(f.vport), 2); /* p2's two, the retired ones' closed */
	for (int i = 0; i < 20; i++) {
		int b = vip_connect(&f, NULL);

		assert_int_equal(first_byte(b), 'A');
		close(b);
	}
	assert_int_equal(lb_proxy_vip_stats(p2, "t", &s2), 0);
	assert_int_equal(s2.accepted, 20);
	/* the open connection goes on through its retired worker, which
	 * exits once it is closed (the other one already has) */
	assert_int_equal(write(a, "q", 1), 1);
	assert_int_equal(read(a, &c, 1), 1);
	assert_int_equal(c, 'q');
	close(a);
	for (int i = 0; i < 2; i++) {
		assert_true(reaped(w[i], 3000));
		w[i] = 0;
	}
	lb_proxy_stop(p2);
	/* empty: the first one's pid file went with its workers' retirement,
	 * p2's with lb_proxy_stop */
	assert_int_equal(rmdir(dir), 0);
	backends_stop(&f);
}

/* Every worker killed: lbd's copies of the listeners keep the queue (a
 * connection made meanwhile is not refused, it waits), the tick restarts
 * them, the dead workers' connections leave the totals, and the counters
 * that only grow keep what the dead ones counted. */
static void test_worker_restart(void **st)
{
	struct fixture f = { 0 };
	struct lb_proxy_opts o = { .workers = 2 };
	struct lb_proxy_vip_stats vs;
	struct lb_proxy_be_stats bs;
	pid_t old[2], now[2];
	int a, b, n;
	char c;

	(void)st;
	serve_one(&f, &o, 0);
	a = vip_connect(&f, NULL);
	assert_int_equal(first_byte(a), 'A');
	assert_int_equal(lb_proxy_workers(f.p, old, 2), 2);
	assert_true(old[0] > 0 && old[1] > 0);
	for (int i = 0; i < 2; i++) {
		siginfo_t si = { 0 };

		assert_int_equal(kill(old[i], SIGKILL), 0);
		/* dead, left unreaped for the proxy to see */
		for (n = 0; n < 300 && !si.si_pid; n++) {
			assert_int_equal(waitid(P_PID, (id_t)old[i], &si, WEXITED | WNOHANG | WNOWAIT), 0);
			if (!si.si_pid)
				usleep(10000);
		}
		assert_int_equal(si.si_pid, old[i]);
	}
	assert_true(read(a, &c, 1) <= 0); /* its connection died with its worker */
	close(a);
	b = vip_connect(&f, NULL);     /* queued in a listener lbd holds */
	for (n = 0; n < 300; n++) {
		lb_proxy_tick(f.p);
		lb_proxy_workers(f.p, now, 2);
		if (now[0] > 0 && now[1] > 0)
			break;
		usleep(10000);
	}
	assert_true(now[0] > 0 && now[1] > 0 && now[0] != old[0] && now[1] != old[1]);
	assert_int_equal(first_byte(b), 'A');
	assert_int_equal(write(b, "q", 1), 1);
	assert_int_equal(read(b, &c, 1), 1);
	assert_int_equal(c, 'q');
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.accepted, 2);
	assert_int_equal(vs.active, 1); /* b only: a's share went with its worker */
	assert_int_equal(lb_proxy_backend_stats(f.p, 100, &bs), 0);
	assert_int_equal(bs.active, 1);
	assert_int_equal(bs.connected, 2);
	close(b);
	wait_idle(f.p);
	fixture_end(&f);
}

/* ---- PROXY protocol v2 ------------------------------------------------------ */

static const __u8 pp2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 'Q', 'U', 'I', 'T', 0x0a };

static void test_pp2_header_v4(void **st)
{
	struct sockaddr_storage c = { 0 }, v = { 0 };
	struct sockaddr_in *c4 = (void *)&c, *v4 = (void *)&v;
	static const __u8 want[28] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x11, 0x00, 0x0c,                 /* v2 PROXY, TCP4, 12 bytes */
		198, 18, 0, 1,  198, 18, 0, 10,         /* source, destination */
		0xd4, 0x31,  0x00, 0x50,                /* 54321, 80 */
	};
	__u8 out[LB_PP2_MAX];

	(void)st;
	c4->sin_family = v4->sin_family = AF_INET;
	inet_pton(AF_INET, "198.18.0.1", &c4->sin_addr);
	inet_pton(AF_INET, "198.18.0.10", &v4->sin_addr);
	c4->sin_port = htons(54321);
	v4->sin_port = htons(80);
	assert_int_equal(lb_proxy_pp2_header(&c, &v, out, sizeof(out)), 28);
	assert_memory_equal(out, want, 28);
	assert_int_equal(lb_proxy_pp2_header(&c, &v, out, 27), -ENOSPC);
}

static void test_pp2_header_v6(void **st)
{
	struct sockaddr_storage c = { 0 }, v = { 0 };
	struct sockaddr_in6 *c6 = (void *)&c, *v6 = (void *)&v;
	static const __u8 want[52] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x21, 0x00, 0x24,                 /* v2 PROXY, TCP6, 36 bytes */
		0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, /* 2001:2::1 */
		0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, /* 2001:2::10 */
		0x04, 0x00,  0x01, 0xbb,                /* 1024, 443 */
	};
	__u8 out[LB_PP2_MAX];

	(void)st;
	c6->sin6_family = v6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:2::1", &c6->sin6_addr);
	inet_pton(AF_INET6, "2001:2::10", &v6->sin6_addr);
	c6->sin6_port = htons(1024);
	v6->sin6_port = htons(443);
	assert_int_equal(lb_proxy_pp2_header(&c, &v, out, sizeof(out)), 52);
	assert_memory_equal(out, want, 52);
	assert_int_equal(lb_proxy_pp2_header(&c, &v, out, 51), -ENOSPC);
}

/* Families that differ: PROXY over UNSPEC, no addresses (the receiver keeps
 * the connection's own). */
static void test_pp2_header_unspec(void **st)
{
	struct sockaddr_storage c = { .ss_family = AF_INET }, v = { .ss_family = AF_INET6 };
	__u8 out[LB_PP2_MAX];

	(void)st;
	assert_int_equal(lb_proxy_pp2_header(&c, &v, out, sizeof(out)), 16);
	assert_memory_equal(out, pp2_sig, 12);
	assert_int_equal(out[12], 0x21);
	assert_int_equal(out[13], 0x00);
	assert_int_equal(out[14], 0);
	assert_int_equal(out[15], 0);
}

/* Through the proxy: the echo backend returns the header it got, then the
 * client's bytes, so the client sees exactly what the backend received. */
static void test_pp2_on_the_wire(void **st)
{
	struct fixture f = { .pp2 = true };
	struct lb_proxy_opts o = { 0 };
	__u8 want[28], got[28 + 5];
	__u16 sport;
	int fd;

	(void)st;
	serve_one(&f, &o, 0);
	fd = vip_connect(&f, &sport);
	assert_int_equal(first_byte(fd), 'A');
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(recv(fd, got, sizeof(got), MSG_WAITALL), (ssize_t)sizeof(got));
	memcpy(want, pp2_sig, 12);
	memcpy(want + 12, (const __u8[]){ 0x21, 0x11, 0x00, 0x0c, 127, 0, 0, 1, 127, 0, 0, 1 }, 12);
	memcpy(want + 24, &sport, 2);
	memcpy(want + 26, &f.vport, 2);
	assert_memory_equal(got, want, 28);
	assert_memory_equal(got + 28, "hello", 5);
	close(fd);
	fixture_end(&f);
}

/* The client speaks first (its bytes are there before the proxy accepts):
 * the header still goes first, and the VIP counts the client's bytes, not
 * the header's. */
static void test_pp2_client_first(void **st)
{
	struct fixture f = { .pp2 = true };
	struct lb_proxy_opts o = { 0 };
	struct lb_proxy_vip_stats vs;
	__u8 got[1 + 28 + 5];
	int fd;

	(void)st;
	serve_one(&f, &o, 0);
	fd = vip_connect(&f, NULL);
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(recv(fd, got, sizeof(got), MSG_WAITALL), (ssize_t)sizeof(got));
	assert_int_equal(got[0], 'A');
	assert_memory_equal(got + 1, pp2_sig, 12);
	assert_memory_equal(got + 1 + 28, "hello", 5);
	close(fd);
	wait_idle(f.p);
	assert_int_equal(lb_proxy_vip_stats(f.p, "t", &vs), 0);
	assert_int_equal(vs.bytes_in, 5);
	assert_int_equal(vs.bytes_out, 1 + 28 + 5);
	fixture_end(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choice_maglev),
		cmocka_unit_test(test_choice_ip_hash),
		cmocka_unit_test(test_round_robin_weights),
		cmocka_unit_test(test_least_conn),
		cmocka_unit_test(test_transfer_splice),
		cmocka_unit_test(test_transfer_rw),
		cmocka_unit_test(test_retry_refused),
		cmocka_unit_test(test_retry_timeout),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_fin_timeout),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_update_drain),
		cmocka_unit_test(test_handover),
		cmocka_unit_test_setup_teardown(test_leave_retire, leave_setup, leave_teardown),
		cmocka_unit_test(test_worker_restart),
		cmocka_unit_test(test_pp2_header_v4),
		cmocka_unit_test(test_pp2_header_v6),
		cmocka_unit_test(test_pp2_header_unspec),
		cmocka_unit_test(test_pp2_on_the_wire),
		cmocka_unit_test(test_pp2_client_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
