// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/netlink.c against the real kernel, inside a private network
 * namespace (unshare(CLONE_NEWNET): needs root, hence this suite): link
 * events from veth interfaces (this kernel has no dummy), through the event loop too; idempotent VIP
 * addresses; source address and next hop of routes; neighbour warm-up
 * answered by a peer in a second namespace.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "loop.h"
#include "netlink.h"

#define WAIT_MS 3000

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		fail_msg("command failed: %s", cmd);
}

/* Output of a shell command (first 4 KiB). */
static void sh_out(char *buf, size_t len, const char *cmd)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	pclose(f);
}

/* ---- link events ---- */

#define MAX_EV 64

struct evlog {
	int n;
	struct { enum lb_nl_link_ev ev; int ifindex; char name[IF_NAMESIZE]; } e[MAX_EV];
};

static void record(void *arg, enum lb_nl_link_ev ev, int ifindex, const char *name)
{
	struct evlog *l = arg;

	if (l->n == MAX_EV)
		return;
	l->e[l->n].ev = ev;
	l->e[l->n].ifindex = ifindex;
	snprintf(l->e[l->n].name, IF_NAMESIZE, "%s", name);
	l->n++;
}

/* Index of the first event ev for name, or -1. */
static int find_ev(const struct evlog *l, enum lb_nl_link_ev ev, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (l->e[i].ev == ev && !strcmp(l->e[i].name, name))
			return i;
	return -1;
}

/* Dispatch until an event ev for name arrives; bounded. */
static void wait_ev(struct lb_nl *nl, struct evlog *l, enum lb_nl_link_ev ev, const char *name)
{
	uint64_t end = lb_now_ms() + WAIT_MS;

	while (find_ev(l, ev, name) < 0) {
		struct pollfd p = { .fd = lb_nl_fd(nl), .events = POLLIN };
		int left = (int)(end - lb_now_ms());

		if (lb_now_ms() >= end)
			fail_msg("no event %d for %s within %d ms", ev, name, WAIT_MS);
		if (poll(&p, 1, left) > 0)
			assert_true(lb_nl_dispatch(nl) >= 0);
	}
}

static void test_open_reports_existing(void **st)
{
	struct evlog l = { 0 };
	struct lb_nl *nl;

	(void)st;
	assert_int_equal(lb_nl_open(record, &l, &nl), 0);
	assert_true(find_ev(&l, LB_NL_LINK_NEW, "lo") >= 0);
	assert_true(find_ev(&l, LB_NL_LINK_UP, "lo") > find_ev(&l, LB_NL_LINK_NEW, "lo"));
	assert_int_equal(lb_nl_ifindex(nl, "lo"), 1);
	assert_true(lb_nl_link_is_up(nl, 1));
	assert_int_equal(lb_nl_ifindex(nl, "nosuch0"), -ENODEV);
	/* Nothing happened since: nothing to report, and no blocking. */
	assert_int_equal(lb_nl_dispatch(nl), 0);
	lb_nl_close(nl);
}

static void test_link_lifecycle(void **st)
{
	struct evlog l = { 0 };
	struct lb_nl *nl;
	int idx;

	(void)st;
	assert_int_equal(lb_nl_open(record, &l, &nl), 0);
	l.n = 0;
	sh("ip link add lbt0 type veth peer name lbt0p");
	wait_ev(nl, &l, LB_NL_LINK_NEW, "lbt0");
	idx = lb_nl_ifindex(nl, "lbt0");
	assert_true(idx > 1);
	assert_int_equal(l.e[find_ev(&l, LB_NL_LINK_NEW, "lbt0")].ifindex, idx);
	assert_int_equal(find_ev(&l, LB_NL_LINK_UP, "lbt0"), -1);
	assert_false(lb_nl_link_is_up(nl, idx));

	sh("ip link set lbt0 up");
	wait_ev(nl, &l, LB_NL_LINK_UP, "lbt0");
	assert_true(lb_nl_link_is_up(nl, idx));
	sh("ip link set lbt0 down");
	wait_ev(nl, &l, LB_NL_LINK_DOWN, "lbt0");

	/* Removed while up: DOWN, then DEL, and the cache forgets it. */
	l.n = 0;
	sh("ip link set lbt0 up");
	wait_ev(nl, &l, LB_NL_LINK_UP, "lbt0");
	l.n = 0;
	sh("ip link del lbt0");
	wait_ev(nl, &l, LB_NL_LINK_DEL, "lbt0");
	assert_true(find_ev(&l, LB_NL_LINK_DOWN, "lbt0") >= 0);
	assert_true(find_ev(&l, LB_NL_LINK_DOWN, "lbt0") < find_ev(&l, LB_NL_LINK_DEL, "lbt0"));
	assert_int_equal(l.e[find_ev(&l, LB_NL_LINK_DEL, "lbt0")].ifindex, idx);
	assert_int_equal(lb_nl_ifindex(nl, "lbt0"), -ENODEV);

	/* Re-created under the same name: a new ifindex. */
	sh("ip link add lbt0 type veth peer name lbt0p");
	wait_ev(nl, &l, LB_NL_LINK_NEW, "lbt0");
	assert_int_not_equal(lb_nl_ifindex(nl, "lbt0"), idx);
	/* Renamed: the old name goes, the new one comes, same ifindex. */
	idx = lb_nl_ifindex(nl, "lbt0");
	l.n = 0;
	sh("ip link set lbt0 name lbt1");
	wait_ev(nl, &l, LB_NL_LINK_NEW, "lbt1");
	assert_true(find_ev(&l, LB_NL_LINK_DEL, "lbt0") >= 0);
	assert_true(find_ev(&l, LB_NL_LINK_DEL, "lbt0") < find_ev(&l, LB_NL_LINK_NEW, "lbt1"));
	assert_int_equal(lb_nl_ifindex(nl, "lbt1"), idx);
	sh("ip link del lbt1");
	lb_nl_close(nl);
}

/* Many changes at once, more than the socket buffer holds (shrunk on
 * purpose): the kernel drops events (ENOBUFS), the refill still reports
 * every link exactly once. */
static void test_event_burst(void **st)
{
	enum { N = 60 };
	struct evlog l = { 0 };
	struct lb_nl *nl;
	uint64_t end;
	int news = 0;
	int small = 1024;

	(void)st;
	assert_int_equal(lb_nl_open(record, &l, &nl), 0);
	assert_int_equal(setsockopt(lb_nl_fd(nl), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	l.n = 0;
	sh("for i in $(seq 1 %d); do echo link add lbb$i type veth peer name lbc$i; done |"
	   " ip -batch -", N / 2);
	end = lb_now_ms() + WAIT_MS;
	while (news < N && lb_now_ms() < end) {
		struct pollfd p = { .fd = lb_nl_fd(nl), .events = POLLIN };

		if (poll(&p, 1, 100) > 0)
			assert_true(lb_nl_dispatch(nl) >= 0);
		news = 0;
		for (int i = 0; i < l.n; i++)
			news += l.e[i].ev == LB_NL_LINK_NEW;
	}
	assert_int_equal(news, N);
	assert_int_equal(l.n, N);
	sh("for i in $(seq 1 %d); do echo link del lbb$i; done | ip -batch -", N / 2);
	lb_nl_close(nl);
}

static void test_loop_dispatch(void **st)
{
	struct evlog l = { 0 };
	struct lb_loop *loop;
	struct lb_nl *nl;
	uint64_t end;

	(void)st;
	assert_int_equal(lb_loop_new(&loop), 0);
	assert_int_equal(lb_nl_open(record, &l, &nl), 0);
	assert_int_equal(lb_nl_loop_add(nl, loop), 0);
	l.n = 0;
	sh("ip link add lbt2 type veth peer name lbt2p");
	end = lb_now_ms() + WAIT_MS;
	while (find_ev(&l, LB_NL_LINK_NEW, "lbt2") < 0 && lb_now_ms() < end)
		assert_true(lb_loop_run_once(loop, 100) >= 0);
	assert_true(find_ev(&l, LB_NL_LINK_NEW, "lbt2") >= 0);
	sh("ip link del lbt2");
	assert_int_equal(lb_loop_del(loop, lb_nl_fd(nl)), 0);
	lb_nl_close(nl);
	lb_loop_free(loop);
}

/* ---- addresses ---- */

static bool has_addr(const char *dev, const char *addr)
{
	char cmd[128], out[4096];

	snprintf(cmd, sizeof(cmd), "ip -o addr show dev %s", dev);
	sh_out(out, sizeof(out), cmd);
	return strstr(out, addr) != NULL;
}

static void addr_idempotent(const char *s)
{
	union lb_addr a;
	struct lb_nl *nl;
	__u8 fam;

	assert_int_equal(lb_addr_parse(s, &a, &fam), 0);
	assert_int_equal(lb_nl_open(NULL, NULL, &nl), 0);
	assert_false(has_addr("lo", s));
	assert_int_equal(lb_nl_addr_add(nl, 1, &a, fam, 0), 0);
	assert_true(has_addr("lo", s));
	assert_int_equal(lb_nl_addr_add(nl, 1, &a, fam, 0), 0);
	assert_int_equal(lb_nl_addr_del(nl, 1, &a, fam, 0), 0);
	assert_false(has_addr("lo", s));
	assert_int_equal(lb_nl_addr_del(nl, 1, &a, fam, 0), 0);
	/* The kernel's reason comes back: no such interface. */
	assert_int_equal(lb_nl_addr_add(nl, 9999, &a, fam, 0), -ENODEV);
	assert_int_equal(lb_nl_addr_add(nl, 1, &a, fam, 200), -EINVAL);
	lb_nl_close(nl);
}

static void test_addr_v4(void **st) { (void)st; addr_idempotent("198.18.7.10"); }
static void test_addr_v6(void **st) { (void)st; addr_idempotent("2001:2:0:7::10"); }

static void test_proxy_v6(void **st)
{
	char out[4096];
	union lb_addr a;
	struct lb_nl *nl;
	int idx;
	__u8 fam;

	(void)st;
	sh("ip link add lbp0 type veth peer name lbp0p && ip link set lbp0 up");
	assert_int_equal(lb_nl_open(NULL, NULL, &nl), 0);
	idx = lb_nl_ifindex(nl, "lbp0");
	assert_int_equal(lb_addr_parse("2001:2:0:7::20", &a, &fam), 0);
	assert_int_equal(lb_nl_proxy_add(nl, idx, &a, fam), 0);
	assert_int_equal(lb_nl_proxy_add(nl, idx, &a, fam), 0);
	sh_out(out, sizeof(out), "ip -6 neigh show proxy dev lbp0");
	assert_non_null(strstr(out, "2001:2:0:7::20"));
	assert_int_equal(lb_nl_proxy_del(nl, idx, &a, fam), 0);
	assert_int_equal(lb_nl_proxy_del(nl, idx, &a, fam), 0);
	sh_out(out, sizeof(out), "ip -6 neigh show proxy dev lbp0");
	assert_null(strstr(out, "2001:2:0:7::20"));
	lb_nl_close(nl);
	sh("ip link del lbp0");
}

/* ---- routes ---- */

static void expect_route(struct lb_nl *nl, const char *dst, int err, const char *src,
			 const char *nexthop, bool gw, const char *dev)
{
	union lb_addr d, want;
	struct lb_nl_route r;
	char buf[LB_ADDRSTRLEN];
	__u8 fam;

	assert_int_equal(lb_addr_parse(dst, &d, &fam), 0);
	assert_int_equal(lb_nl_route_get(nl, &d, fam, &r), err);
	if (err)
		return;
	assert_int_equal(lb_addr_parse(src, &want, &fam), 0);
	if (memcmp(&r.src, &want, sizeof(want)))
		fail_msg("%s: source %s, want %s", dst, lb_addr_str(&r.src, fam, buf, sizeof(buf)), src);
	assert_int_equal(lb_addr_parse(nexthop, &want, &fam), 0);
	if (memcmp(&r.nexthop, &want, sizeof(want)))
		fail_msg("%s: next hop %s, want %s", dst,
			 lb_addr_str(&r.nexthop, fam, buf, sizeof(buf)), nexthop);
	assert_int_equal(r.gateway, gw);
	assert_int_equal(r.ifindex, lb_nl_ifindex(nl, dev));
	assert_int_equal(lb_nl_source_addr(nl, &d, fam, &want), 0);
	assert_memory_equal(&want, &r.src, sizeof(want));
}

static void test_route_source(void **st)
{
	struct lb_nl *nl;

	(void)st;
	sh("ip link add lbr0 type veth peer name lbr0p && ip link set lbr0p up && ip link set lbr0 up");
	sh("ip addr add 198.18.8.1/24 dev lbr0 && ip addr add 198.18.8.2/24 dev lbr0");
	sh("ip -6 addr add 2001:2:0:8::1/64 dev lbr0 nodad");
	sh("ip route add 198.18.9.0/24 via 198.18.8.254");
	sh("ip -6 route add 2001:2:0:9::/64 via 2001:2:0:8::fe");
	sh("ip route add 198.18.13.0/24 via 198.18.8.254 src 198.18.8.2");
	assert_int_equal(lb_nl_open(NULL, NULL, &nl), 0);
	/* On link: the primary address; the destination is the next hop. */
	expect_route(nl, "198.18.8.5", 0, "198.18.8.1", "198.18.8.5", false, "lbr0");
	expect_route(nl, "2001:2:0:8::5", 0, "2001:2:0:8::1", "2001:2:0:8::5", false, "lbr0");
	/* Behind a gateway; and a route's own preferred source wins. */
	expect_route(nl, "198.18.9.7", 0, "198.18.8.1", "198.18.8.254", true, "lbr0");
	expect_route(nl, "2001:2:0:9::7", 0, "2001:2:0:8::1", "2001:2:0:8::fe", true, "lbr0");
	expect_route(nl, "198.18.13.7", 0, "198.18.8.2", "198.18.8.254", true, "lbr0");
	/* No route at all: the kernel's reason. */
	expect_route(nl, "203.0.113.1", -ENETUNREACH, NULL, NULL, false, NULL);
	lb_nl_close(nl);
	sh("ip link del lbr0");
}

/* ---- neighbours ---- */

/* A peer namespace: a child process that unshares its own netns and lives
 * until *fd is closed. */
static pid_t peer_start(int *fd)
{
	int go[2], hold[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWNET))
			_exit(1);
		if (write(go[1], "x", 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(go[1]);
	close(hold[0]);
	assert_int_equal(read(go[0], &c, 1), 1);
	close(go[0]);
	*fd = hold[1];
	return pid;
}

static void peer_stop(pid_t pid, int fd)
{
	int status;

	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static bool neigh_state(const char *addr, const char *dev, const char *state)
{
	char cmd[128], out[1024];

	snprintf(cmd, sizeof(cmd), "ip neigh show %s dev %s", addr, dev);
	sh_out(out, sizeof(out), cmd);
	return state ? strstr(out, state) != NULL : out[0] != '\0';
}

static void wait_reachable(const char *addr, const char *dev)
{
	uint64_t end = lb_now_ms() + WAIT_MS;

	while (!neigh_state(addr, dev, "REACHABLE")) {
		if (lb_now_ms() >= end)
			fail_msg("%s on %s not resolved within %d ms", addr, dev, WAIT_MS);
		usleep(20000);
	}
}

static void test_neigh_warm(void **st)
{
	union lb_addr a;
	struct lb_nl *nl;
	int hold;
	pid_t pid;
	__u8 fam;

	(void)st;
	pid = peer_start(&hold);
	sh("ip link add lbn0 type veth peer name lbn1");
	sh("ip link set lbn1 netns %d", (int)pid);
	sh("nsenter -t %d -n sh -c 'ip link set lo up && ip addr add 198.18.11.2/24 dev lbn1 &&"
	   " ip -6 addr add 2001:2:0:11::2/64 dev lbn1 nodad && ip link set lbn1 up'", (int)pid);
	sh("ip addr add 198.18.11.1/24 dev lbn0 && ip -6 addr add 2001:2:0:11::1/64 dev lbn0 nodad");
	sh("ip link set lbn0 up");
	sh("ip route add 198.18.12.0/24 via 198.18.11.2");
	assert_int_equal(lb_nl_open(NULL, NULL, &nl), 0);

	/* On link: the backend's own entry gets resolved. */
	assert_false(neigh_state("198.18.11.2", "lbn0", NULL));
	assert_int_equal(lb_addr_parse("198.18.11.2", &a, &fam), 0);
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), 0);
	wait_reachable("198.18.11.2", "lbn0");
	assert_int_equal(lb_addr_parse("2001:2:0:11::2", &a, &fam), 0);
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), 0);
	wait_reachable("2001:2:0:11::2", "lbn0");

	/* Behind a gateway: the gateway's entry, not the backend's. */
	sh("ip neigh flush dev lbn0");
	assert_int_equal(lb_addr_parse("198.18.12.5", &a, &fam), 0);
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), 0);
	wait_reachable("198.18.11.2", "lbn0");
	assert_false(neigh_state("198.18.12.5", "lbn0", NULL));
	/* Already resolved: asking again is harmless. */
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), 0);
	assert_int_equal(lb_addr_parse("203.0.113.1", &a, &fam), 0);
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), -ENETUNREACH);
	/* An operator's static entry stays as it is (a replace would leave it
	 * INCOMPLETE until the kernel resolves it again). */
	sh("ip neigh replace 198.18.11.7 lladdr 02:00:00:00:11:07 nud permanent dev lbn0");
	assert_int_equal(lb_addr_parse("198.18.11.7", &a, &fam), 0);
	assert_int_equal(lb_nl_neigh_warm(nl, &a, fam), 0);
	assert_true(neigh_state("198.18.11.7", "lbn0", "PERMANENT"));
	assert_true(neigh_state("198.18.11.7", "lbn0", "02:00:00:00:11:07"));

	lb_nl_close(nl);
	sh("ip link del lbn0");
	peer_stop(pid, hold);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_reports_existing),
		cmocka_unit_test(test_link_lifecycle),
		cmocka_unit_test(test_event_burst),
		cmocka_unit_test(test_loop_dispatch),
		cmocka_unit_test(test_addr_v4),
		cmocka_unit_test(test_addr_v6),
		cmocka_unit_test(test_proxy_v6),
		cmocka_unit_test(test_route_source),
		cmocka_unit_test(test_neigh_warm),
	};

	if (geteuid() != 0) {
		printf("SKIP: test_netlink: needs root (a private network namespace)\n");
		return 0;
	}
	if (unshare(CLONE_NEWNET)) {
		printf("SKIP: test_netlink: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 0;
	}
	if (system("ip link set lo up")) {
		fprintf(stderr, "test_netlink: cannot set lo up\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
