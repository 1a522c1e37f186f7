// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * health.c against real sockets on 127.0.0.1: a TCP listener, an HTTP server
 * whose status and body the test changes, a listener that never answers, a
 * UDP echo and closed TCP/UDP ports. The servers live in the same lb_loop as
 * the engine, so one thread drives everything; every wait is bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "log.h"
#include "loop.h"

#define MAX_EV 32

struct ev {
	char vip[32];
	bool up;
	char reason[256];
	uint64_t ms;
};

struct conn {
	struct lb_loop_handler lh;
	struct http_srv *srv;
	int fd;
	char buf[1024];
	size_t len;
};

struct http_srv {
	struct lb_loop_handler lh;
	struct lb_loop *loop;
	int fd;
	int status;
	char body[64];
	char last_req[1024];
	int nreq;
};

struct udp_srv {
	struct lb_loop_handler lh;
	int fd;
};

/* The servers' family: 127.0.0.1 or ::1 */
static int srv_family = AF_INET;

struct fx {
	struct lb_loop *loop;
	struct lb_health *h;
	struct ev ev[MAX_EV];
	int nev;
	uint64_t late_ms;  /* the last run(): time the process was not running */
};

static void on_change(void *ctx, const char *vip, const struct lb_endpoint *ep, bool up,
		      const char *reason)
{
	struct fx *f = ctx;

	(void)ep;
	if (f->nev >= MAX_EV)
		return;
	snprintf(f->ev[f->nev].vip, sizeof(f->ev[0].vip), "%s", vip);
	f->ev[f->nev].up = up;
	snprintf(f->ev[f->nev].reason, sizeof(f->ev[0].reason), "%s", reason);
	f->ev[f->nev].ms = lb_now_ms();
	f->nev++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	lb_log_set_level(LB_LOG_WARN);
	assert_non_null(f);
	assert_int_equal(lb_loop_new(&f->loop), 0);
	assert_int_equal(lb_health_new(f->loop, on_change, f, &f->h), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	lb_health_free(f->h);
	lb_loop_free(f->loop);
	free(f);
	srv_family = AF_INET;
	return 0;
}

/* Runs the loop until nev events were seen or ms passed; returns f->nev. */
/* Runs the loop until nev events or for ms of its own time. A round takes
 * 10 ms at most while the process runs; what a round takes beyond that is
 * time a loaded machine did not give the process, counted in f->late_ms
 * rather than against ms. A bound on when an event came allows for it:
 * the checks could not run while the process did not. */
static int run(struct fx *f, int nev, uint64_t ms)
{
	uint64_t start = lb_now_ms(), prev = start;

	f->late_ms = 0;
	while (f->nev < nev && prev - start < ms + f->late_ms) {
		uint64_t now;

		lb_loop_run_once(f->loop, 10);
		now = lb_now_ms();
		if (now - prev > 10)
			f->late_ms += now - prev - 10;
		prev = now;
	}
	return f->nev;
}

static unsigned short sock_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t l = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
					     : ((struct sockaddr_in *)&a)->sin_port);
}

static int bound(int type)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(srv_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (srv_family == AF_INET6)
		assert_int_equal(bind(fd, (struct sockaddr *)&a6, sizeof(a6)), 0);
	else
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int listener(void)
{
	int fd = bound(SOCK_STREAM);

	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

/* A port nothing listens on. */
static unsigned short closed_port(int type)
{
	int fd = bound(type);
	unsigned short p = sock_port(fd);

	close(fd);
	return p;
}

static void conn_event(void *arg, uint32_t events)
{
	struct conn *c = arg;
	struct http_srv *s = c->srv;
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);

	(void)events;
	if (n > 0) {
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		if (!strstr(c->buf, "\r\n\r\n"))
			return;
		char resp[256];
		int rl = snprintf(resp, sizeof(resp),
				  "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
				  s->status, strlen(s->body), s->body);

		snprintf(s->last_req, sizeof(s->last_req), "%s", c->buf);
		s->nreq++;
		assert_int_equal(send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL), rl);
	} else if (n < 0 && errno == EAGAIN) {
		return;
	}
	lb_loop_del(s->loop, c->fd);
	close(c->fd);
	free(c);
}

static void http_accept(void *arg, uint32_t events)
{
	struct http_srv *s = arg;
	int fd;

	(void)events;
	while ((fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c = calloc(1, sizeof(*c));

		assert_non_null(c);
		c->fd = fd;
		c->srv = s;
		c->lh = (struct lb_loop_handler){ conn_event, c };
		assert_int_equal(lb_loop_add(s->loop, fd, EPOLLIN, &c->lh), 0);
	}
}

static void http_start(struct fx *f, struct http_srv *s, int status, const char *body)
{
	memset(s, 0, sizeof(*s));
	s->loop = f->loop;
	s->fd = listener();
	s->status = status;
	snprintf(s->body, sizeof(s->body), "%s", body);
	s->lh = (struct lb_loop_handler){ http_accept, s };
	assert_int_equal(lb_loop_add(f->loop, s->fd, EPOLLIN, &s->lh), 0);
}

static void http_stop(struct fx *f, struct http_srv *s)
{
	lb_loop_del(f->loop, s->fd);
	close(s->fd);
}

static void udp_echo(void *arg, uint32_t events)
{
	struct udp_srv *u = arg;
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char buf[512];
	ssize_t n;

	(void)events;
	while ((n = recvfrom(u->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl)) >= 0) {
		sendto(u->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
		fl = sizeof(from);
	}
}

static struct lb_health_target target(const char *vip, unsigned short port, enum lb_hc_type type)
{
	struct lb_health_target t = { .vip = vip };

	assert_int_equal(lb_addr_parse(srv_family == AF_INET6 ? "::1" : "127.0.0.1", &t.ep.addr,
				       &t.ep.family), 0);
	t.ep.port = htons(port);
	t.hc.type = type;
	t.hc.interval_ms = 100;
	t.hc.timeout_ms = 100;
	t.hc.rise = 2;
	t.hc.fall = 3;
	snprintf(t.hc.uri, sizeof(t.hc.uri), "/health");
	snprintf(t.hc.method, sizeof(t.hc.method), "GET");
	t.hc.status[0] = (struct lb_status_range){ 200, 399 };
	t.hc.nstatus = 1;
	t.fail_timeout_ms = 10000;
	return t;
}

static struct lb_health_status st(struct fx *f, const struct lb_health_target *t)
{
	struct lb_health_status s;

	assert_int_equal(lb_health_status(f->h, t->vip, &t->ep, &s), 0);
	return s;
}

static void tcp_open_and_closed(void **state)
{
	struct fx *f = *state;
	int lfd = listener();
	struct lb_health_target t[2] = {
		target("open", sock_port(lfd), LB_HC_TCP),
		target("closed", closed_port(SOCK_STREAM), LB_HC_TCP),
	};

	assert_int_equal(lb_health_sync(f->h, t, 2), 0);
	/* provisional: the first failed check takes a new target down */
	assert_int_equal(run(f, 1, 1000), 1);
	assert_string_equal(f->ev[0].vip, "closed");
	assert_false(f->ev[0].up);
	assert_string_equal(f->ev[0].reason,
			    "connect: Connection refused, 1 consecutive failure (first check)");
	run(f, 2, 450);
	assert_int_equal(f->nev, 1);
	assert_true(st(f, &t[0]).up);
	assert_true(st(f, &t[0]).checks >= 3);
	assert_true(st(f, &t[0]).ok_run >= 3);
	assert_string_equal(st(f, &t[0]).reason, "tcp connect ok");
	assert_false(st(f, &t[1]).up);
	assert_true(st(f, &t[1]).fail_run >= 3);
	assert_true(lb_health_up(f->h, "open", &t[0].ep));
	assert_false(lb_health_up(f->h, "closed", &t[1].ep));
	/* unknown targets count as up */
	assert_true(lb_health_up(f->h, "other", &t[1].ep));
	close(lfd);
}

static void http_fall_and_rise(void **state)
{
	struct fx *f = *state;
	struct http_srv s;
	struct lb_health_target t;
	char want[128];
	uint64_t t0;

	http_start(f, &s, 200, "ok");
	t = target("web", sock_port(s.fd), LB_HC_HTTP);
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	run(f, 1, 350);
	assert_int_equal(f->nev, 0);
	assert_true(st(f, &t).up);
	assert_string_equal(st(f, &t).reason, "http status 200");
	assert_true(s.nreq >= 2);
	snprintf(want, sizeof(want), "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n",
		 sock_port(s.fd));
	assert_memory_equal(s.last_req, want, strlen(want));
	assert_non_null(strstr(s.last_req, "\r\nConnection: close\r\n"));
	assert_int_equal(strlen(s.last_req) - 4, (size_t)(strstr(s.last_req, "\r\n\r\n") - s.last_req));

	s.status = 500;
	t0 = lb_now_ms();
	assert_int_equal(run(f, 1, 1000), 1);
	assert_false(f->ev[0].up);
	assert_string_equal(f->ev[0].reason,
			    "http status 500 (expected 200-399), 3 consecutive failures");
	/* three checks at 100 ms intervals: more than two intervals, at most four */
	assert_true(f->ev[0].ms - t0 >= 190 && f->ev[0].ms - t0 <= 420 + f->late_ms);
	assert_false(lb_health_up(f->h, "web", &t.ep));

	s.status = 204;
	t0 = lb_now_ms();
	assert_int_equal(run(f, 2, 1000), 2);
	assert_true(f->ev[1].up);
	assert_string_equal(f->ev[1].reason, "http status 204, 2 consecutive successes");
	assert_true(f->ev[1].ms - t0 >= 90 && f->ev[1].ms - t0 <= 320 + f->late_ms);
	assert_int_equal(st(f, &t).changes, 2);
	assert_true(st(f, &t).last_change_ms >= t0);
	http_stop(f, &s);
}

static void http_status_ranges_and_body(void **state)
{
	struct fx *f = *state;
	struct http_srv s;
	struct lb_health_target t;

	http_start(f, &s, 302, "i am alive");
	t = target("web", sock_port(s.fd), LB_HC_HTTP);
	t.hc.status[0] = (struct lb_status_range){ 200, 200 };
	t.hc.status[1] = (struct lb_status_range){ 300, 302 };
	t.hc.nstatus = 2;
	t.hc.fall = 1;
	snprintf(t.hc.expect, sizeof(t.hc.expect), "alive");
	snprintf(t.hc.method, sizeof(t.hc.method), "HEAD");
	snprintf(t.hc.host, sizeof(t.hc.host), "example.test");
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	run(f, 1, 300);
	assert_int_equal(f->nev, 0);
	assert_string_equal(st(f, &t).reason, "http status 302, body has \"alive\"");
	{
		static const char want[] = "HEAD /health HTTP/1.1\r\nHost: example.test\r\n";

		assert_memory_equal(s.last_req, want, sizeof(want) - 1);
	}

	snprintf(s.body, sizeof(s.body), "i am dead");
	assert_int_equal(run(f, 1, 500), 1);
	assert_string_equal(f->ev[0].reason,
			    "http status 302 but the body lacks \"alive\", 1 consecutive failure");
	snprintf(s.body, sizeof(s.body), "alive");
	s.status = 201;
	run(f, 2, 300);
	assert_int_equal(f->nev, 1);
	assert_string_equal(st(f, &t).reason, "http status 201 (expected 200,300-302)");
	http_stop(f, &s);
}

static void http_timeout(void **state)
{
	struct fx *f = *state;
	int lfd = listener(); /* never accepted, never answers */
	struct lb_health_target t = target("slow", sock_port(lfd), LB_HC_HTTP);

	t.hc.timeout_ms = 60;
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	assert_int_equal(run(f, 1, 500), 1);
	assert_string_equal(f->ev[0].reason, "http: timeout after 60 ms waiting for a reply, "
			    "1 consecutive failure (first check)");
	close(lfd);
}

static void udp_echo_and_closed(void **state)
{
	struct fx *f = *state;
	struct udp_srv u = { .fd = bound(SOCK_DGRAM) };
	struct lb_health_target t[3] = {
		target("echo", sock_port(u.fd), LB_HC_UDP),
		target("closed", closed_port(SOCK_DGRAM), LB_HC_UDP),
		target("picky", sock_port(u.fd), LB_HC_UDP),
	};

	u.lh = (struct lb_loop_handler){ udp_echo, &u };
	assert_int_equal(lb_loop_add(f->loop, u.fd, EPOLLIN, &u.lh), 0);
	for (int i = 0; i < 3; i++)
		snprintf(t[i].hc.send, sizeof(t[i].hc.send), "ping");
	snprintf(t[2].hc.expect, sizeof(t[2].hc.expect), "pong");
	t[2].ep.port = htons(closed_port(SOCK_DGRAM));
	t[2].hc.port = sock_port(u.fd); /* check port differs from the service port */
	assert_int_equal(lb_health_sync(f->h, t, 3), 0);
	assert_int_equal(run(f, 2, 1000), 2);
	for (int i = 0; i < 2; i++)
		assert_false(f->ev[i].up);
	assert_true(!strcmp(f->ev[0].vip, "closed") || !strcmp(f->ev[1].vip, "closed"));
	assert_true(!strcmp(f->ev[0].vip, "picky") || !strcmp(f->ev[1].vip, "picky"));
	assert_string_equal(st(f, &t[1]).reason, "udp port unreachable");
	assert_string_equal(st(f, &t[2]).reason, "udp reply of 4 bytes lacks \"pong\"");
	run(f, 3, 300);
	assert_int_equal(f->nev, 2);
	assert_true(st(f, &t[0]).up);
	assert_true(st(f, &t[0]).checks >= 3);
	assert_string_equal(st(f, &t[0]).reason, "udp reply of 4 bytes");
	lb_loop_del(f->loop, u.fd);
	close(u.fd);
}

static void ipv6_checks(void **state)
{
	struct fx *f = *state;
	struct http_srv s;
	struct lb_health_target t[2];
	char want[96];

	srv_family = AF_INET6;
	http_start(f, &s, 200, "");
	t[0] = target("v6", sock_port(s.fd), LB_HC_HTTP);
	t[1] = target("v6", closed_port(SOCK_STREAM), LB_HC_TCP);
	assert_int_equal(lb_health_sync(f->h, t, 2), 0);
	assert_int_equal(run(f, 1, 500), 1);
	assert_false(f->ev[0].up);
	assert_string_equal(f->ev[0].reason,
			    "connect: Connection refused, 1 consecutive failure (first check)");
	run(f, 2, 250);
	assert_int_equal(f->nev, 1);
	assert_true(st(f, &t[0]).up);
	assert_string_equal(st(f, &t[0]).reason, "http status 200");
	snprintf(want, sizeof(want), "GET /health HTTP/1.1\r\nHost: [::1]:%u\r\n", sock_port(s.fd));
	assert_memory_equal(s.last_req, want, strlen(want));
	http_stop(f, &s);
}

static void check_port_override(void **state)
{
	struct fx *f = *state;
	int lfd = listener();
	struct lb_health_target t = target("p", closed_port(SOCK_STREAM), LB_HC_TCP);

	t.hc.port = sock_port(lfd);
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	run(f, 1, 300);
	assert_int_equal(f->nev, 0);
	assert_true(st(f, &t).checks >= 2);
	close(lfd);
}

static void passive_max_fails(void **state)
{
	struct fx *f = *state;
	struct lb_health_target t = target("pas", 9, LB_HC_NONE);
	uint64_t t0;

	t.max_fails = 2;
	t.fail_timeout_ms = 300;
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	lb_health_report_fails(f->h, "pas", &t.ep, 1);
	assert_int_equal(f->nev, 0);
	lb_health_report_fails(f->h, "pas", &t.ep, 1);
	assert_int_equal(f->nev, 1);
	assert_false(f->ev[0].up);
	assert_string_equal(f->ev[0].reason, "2 failed connections within 300 ms (max_fails 2), "
			    "out for fail_timeout");
	t0 = lb_now_ms();
	assert_int_equal(run(f, 2, 1000), 2);
	assert_true(f->ev[1].up);
	assert_true(f->ev[1].ms - t0 >= 290 && f->ev[1].ms - t0 <= 450 + f->late_ms);
	assert_string_equal(f->ev[1].reason, "fail_timeout of 300 ms elapsed, trying it again");
	/* tried again: one more failure within fail_timeout is enough */
	lb_health_report_fails(f->h, "pas", &t.ep, 1);
	assert_int_equal(f->nev, 3);
	assert_false(f->ev[2].up);
	assert_int_equal(st(f, &t).passive_fails, 3);
	/* max_fails=0 disables passive checks, and a sync says so at once */
	t.max_fails = 0;
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	assert_true(lb_health_up(f->h, "pas", &t.ep));
	lb_health_report_fails(f->h, "pas", &t.ep, 100);
	assert_true(lb_health_up(f->h, "pas", &t.ep));
}

static void passive_syn_counters(void **state)
{
	struct fx *f = *state;
	struct lb_health_target t = target("nat", 9, LB_HC_NONE);

	t.max_fails = 3;
	t.fail_timeout_ms = 5000;
	assert_int_equal(lb_health_sync(f->h, &t, 1), 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 10, 9, 0);    /* baseline, 1 in flight */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 10, 10, 0);   /* answered */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 11, 10, 0);   /* a new one in flight */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 11, 10, 0);
	/* answered two feeds late (a retransmit of it went through): no failure */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 11, 11, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 11, 11, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 11, 11, 0);
	assert_int_equal(st(f, &t).passive_fails, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 13, 11, 0);   /* 2 new ones in flight */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 13, 11, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 13, 11, 0);
	assert_int_equal(st(f, &t).passive_fails, 0);            /* not 3 feeds yet */
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 13, 11, 0);   /* unanswered for 3 */
	assert_int_equal(st(f, &t).passive_fails, 2);
	assert_int_equal(f->nev, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 14, 11, 1);   /* one refused: at once */
	assert_int_equal(st(f, &t).passive_fails, 3);
	assert_int_equal(f->nev, 1);
	assert_false(f->ev[0].up);
	assert_string_equal(f->ev[0].reason, "3 failed connections within 5000 ms (max_fails 3), "
			    "out for fail_timeout");
	/* another id (a re-used slot with its last owner's counts), or counters
	 * that went back, only set a new baseline */
	lb_health_feed_syn(f->h, "nat", &t.ep, 8, 900, 100, 500);
	lb_health_feed_syn(f->h, "nat", &t.ep, 8, 900, 100, 500);
	assert_int_equal(st(f, &t).passive_fails, 3);

	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 0, 0, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 5, 5, 0);
	lb_health_feed_syn(f->h, "nat", &t.ep, 7, 5, 5, 0);
	assert_int_equal(st(f, &t).passive_fails, 3);
}

static void sync_keeps_state(void **state)
{
	struct fx *f = *state;
	struct http_srv s;
	struct lb_health_target t[3];
	struct lb_health_status a;
	int lfd = listener();

	http_start(f, &s, 500, "");
	t[0] = target("web", sock_port(s.fd), LB_HC_HTTP);
	t[1] = target("web", sock_port(lfd), LB_HC_TCP);
	t[2] = target("web2", sock_port(s.fd), LB_HC_TCP);
	assert_int_equal(lb_health_sync(f->h, t, 1), 0);
	assert_int_equal(run(f, 1, 500), 1);
	assert_false(f->ev[0].up);
	a = st(f, &t[0]);
	/* a reload: same target plus new ones; nothing resets */
	t[0].hc.interval_ms = 50;
	assert_int_equal(lb_health_sync(f->h, t, 3), 0);
	assert_int_equal(lb_health_count(f->h), 3);
	assert_false(lb_health_up(f->h, "web", &t[0].ep));
	assert_int_equal(st(f, &t[0]).checks, a.checks);
	run(f, 2, 300);
	assert_int_equal(f->nev, 1);
	assert_true(st(f, &t[0]).fail_run > a.fail_run);
	assert_true(st(f, &t[1]).up && st(f, &t[2]).up);
	/* its check removed: up at once, and said so */
	{
		struct lb_health_target u[3] = { t[0], t[1], t[2] };

		u[0].hc.type = LB_HC_NONE;
		assert_int_equal(lb_health_sync(f->h, u, 3), 0);
		assert_int_equal(f->nev, 2);
		assert_true(f->ev[1].up);
		assert_string_equal(f->ev[1].reason, "the check that held it down was removed");
		assert_int_equal(lb_health_sync(f->h, t, 3), 0); /* back: provisional no more */
		assert_true(lb_health_up(f->h, "web", &t[0].ep));
		assert_int_equal(run(f, 3, 1000), 3);
		assert_false(f->ev[2].up);
		assert_true(st(f, &t[0]).fail_run >= 3);
		f->nev = 1;
	}
	/* removal: dropped silently */
	assert_int_equal(lb_health_sync(f->h, &t[1], 2), 0);
	assert_int_equal(lb_health_count(f->h), 2);
	{
		struct lb_health_status x;

		assert_int_equal(lb_health_status(f->h, "web", &t[0].ep, &x), -ENOENT);
	}
	run(f, 2, 250);
	assert_int_equal(f->nev, 1);
	/* an empty set stops everything */
	assert_int_equal(lb_health_sync(f->h, NULL, 0), 0);
	assert_int_equal(lb_health_count(f->h), 0);
	run(f, 2, 150);
	http_stop(f, &s);
	close(lfd);
}

/* A state callback that re-syncs the engine (as the service does on apply)
 * and removes the very target that is reporting. */
static struct fx *resync_fx;
static void resync_cb(void *ctx, const char *vip, const struct lb_endpoint *ep, bool up,
		      const char *reason)
{
	on_change(ctx, vip, ep, up, reason);
	assert_int_equal(lb_health_sync(resync_fx->h, NULL, 0), 0);
}

static void sync_from_callback(void **state)
{
	struct fx *f = *state;
	struct lb_health_target t[2] = {
		target("a", closed_port(SOCK_STREAM), LB_HC_TCP),
		target("b", closed_port(SOCK_STREAM), LB_HC_HTTP),
	};

	lb_health_free(f->h);
	resync_fx = f;
	assert_int_equal(lb_health_new(f->loop, resync_cb, f, &f->h), 0);
	assert_int_equal(lb_health_sync(f->h, t, 2), 0);
	assert_int_equal(run(f, 1, 500), 1);
	run(f, 2, 300);
	assert_int_equal(f->nev, 1);
	assert_int_equal(lb_health_count(f->h), 0);
}

/* health_concurrency: HTTP checks against a listener that never answers stay
 * in flight until their timeout. Without a limit all 8 are in flight at
 * once; with 2, never more than 2, and still every target gets checked. */
static int most_inflight(struct fx *f, uint64_t ms)
{
	uint64_t end = lb_now_ms() + ms;
	int most = 0;

	while (lb_now_ms() < end) {
		lb_loop_run_once(f->loop, 5);
		if (lb_health_inflight(f->h) > most)
			most = lb_health_inflight(f->h);
	}
	return most;
}

static void concurrency_limit(void **state)
{
	struct fx *f = *state;
	int lfd = listener(); /* never accepted, never answers */
	struct lb_health_target t[8];
	char names[8][8];
	__u64 before[8];

	for (int i = 0; i < 8; i++) {
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		t[i] = target(names[i], sock_port(lfd), LB_HC_HTTP);
		t[i].hc.interval_ms = 50;
		t[i].hc.timeout_ms = 80;
	}
	assert_int_equal(lb_health_sync(f->h, t, 8), 0);
	assert_int_equal(most_inflight(f, 300), 8);
	lb_health_set_concurrency(f->h, 2);
	run(f, 100, 100); /* the 8 in flight time out */
	for (int i = 0; i < 8; i++)
		before[i] = st(f, &t[i]).checks;
	assert_true(most_inflight(f, 700) <= 2);
	for (int i = 0; i < 8; i++) /* 2 slots, 80 ms each: ~17 checks in all */
		assert_true(st(f, &t[i]).checks >= before[i] + 1);
	lb_health_set_concurrency(f->h, 0);
	assert_int_equal(most_inflight(f, 300), 8);
	lb_health_sync(f->h, NULL, 0);
	assert_int_equal(lb_health_inflight(f->h), 0);
	close(lfd);
}

static void accept_close(void *arg, uint32_t events)
{
	int *lfd = arg, fd;

	(void)events;
	while ((fd = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
}

static uint64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static bool all_checked(struct fx *f, const struct lb_health_target *t, int n, uint64_t checks)
{
	for (int i = 0; i < n; i++)
		if (st(f, &t[i]).checks < checks)
			return false;
	return true;
}

/* Hundreds of targets: first checks spread over the jitter, every target
 * checked at its interval, and no loop round takes long. */
static void many_targets(void **state)
{
	enum { N = 300 };
	struct fx *f = *state;
	static struct lb_health_target t[N];
	static char names[N][16];
	int lfd = listener();
	struct lb_loop_handler lh = { accept_close, &lfd };
	static uint64_t first[N];
	uint64_t end, worst = 0, lo = UINT64_MAX, hi = 0;
	int checked = 0;

	assert_int_equal(listen(lfd, 4096), 0);
	assert_int_equal(lb_loop_add(f->loop, lfd, EPOLLIN, &lh), 0);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "v%d", i);
		t[i] = target(names[i], sock_port(lfd), LB_HC_TCP);
		t[i].hc.interval_ms = 200;
		t[i].hc.timeout_ms = 150;
		t[i].hc.jitter_ms = 100;
	}
	assert_int_equal(lb_health_sync(f->h, t, N), 0);
	/* the first checks: when each target was first checked (within 100 ms
	 * of jitter when idle; the deadline is for a loaded machine) */
	end = lb_now_ms() + 20000;
	while (checked < N && lb_now_ms() < end) {
		lb_loop_run_once(f->loop, 2);
		for (int i = 0; i < N; i++) {
			if (first[i])
				continue;
			first[i] = st(f, &t[i]).last_check_ms;
			if (first[i]) {
				checked++;
				lo = first[i] < lo ? first[i] : lo;
				hi = first[i] > hi ? first[i] : hi;
			}
		}
	}
	assert_int_equal(checked, N);
	/* uniform over 0..100 ms */
	assert_true(hi - lo >= 50);
	/* then CPU time per loop round: wall time is the machine's business,
	 * so the rounds go on until every target had 4 checks (about 1.2 s at
	 * 200-300 ms when the machine is idle), within a deadline */
	end = lb_now_ms() + 20000;
	while (lb_now_ms() < end && !all_checked(f, t, N, 4)) {
		uint64_t a = cpu_us(), d;

		lb_loop_run_once(f->loop, 5);
		d = cpu_us() - a;
		worst = d > worst ? d : worst;
	}
	for (int i = 0; i < N; i++) {
		struct lb_health_status x = st(f, &t[i]);

		assert_true(x.up);
		assert_true(x.checks >= 4);
	}
	assert_int_equal(f->nev, 0);
	print_message("    %d targets: first checks spread over %llu ms, worst loop round %llu us of CPU\n",
		      N, (unsigned long long)(hi - lo), (unsigned long long)worst);
	assert_true(worst < 50000);
	lb_health_sync(f->h, NULL, 0);
	lb_loop_del(f->loop, lfd);
	close(lfd);
}

static void effective_override(void **state)
{
	struct lb_health_conf vip = { .type = LB_HC_HTTP, .interval_ms = 2000, .rise = 2 }, out;
	struct lb_backend_conf be = { .health_check = LB_HC_INHERIT };

	(void)state;
	lb_health_effective(&vip, &be, &out);
	assert_int_equal(out.type, LB_HC_HTTP);
	be.health_check = LB_HC_TCP;
	lb_health_effective(&vip, &be, &out);
	assert_int_equal(out.type, LB_HC_TCP);
	assert_int_equal(out.interval_ms, 2000);
	be.health_check = LB_HC_NONE;
	lb_health_effective(&vip, &be, &out);
	assert_int_equal(out.type, LB_HC_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tcp_open_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(http_fall_and_rise, setup, teardown),
		cmocka_unit_test_setup_teardown(http_status_ranges_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(http_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(udp_echo_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(ipv6_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(check_port_override, setup, teardown),
		cmocka_unit_test_setup_teardown(passive_max_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(passive_syn_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(sync_keeps_state, setup, teardown),
		cmocka_unit_test_setup_teardown(sync_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(many_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrency_limit, setup, teardown),
		cmocka_unit_test(effective_override),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
