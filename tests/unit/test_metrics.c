// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * metrics.c: a real server on 127.0.0.1 (a free port), its loop running in a
 * thread, driven by raw TCP sockets that send good, bad, huge, slow and many
 * requests.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "webui.h"

#define WAIT_MS 5000
#define BODY    "# HELP fake_total A fake counter.\n# TYPE fake_total counter\nfake_total 42\n"

enum render_mode { RENDER_OK, RENDER_FAIL, RENDER_BIG };

struct server {
	struct lb_loop *loop;
	struct lb_metrics *m;
	struct lb_endpoint addr;   /* bound */
	pthread_t thread;
	atomic_bool stop;
	atomic_int renders;
	atomic_int mode;
	bool running;
};

static int fake_render(void *ctx, struct lb_buf *out)
{
	struct server *s = ctx;

	atomic_fetch_add(&s->renders, 1);
	switch (atomic_load(&s->mode)) {
	case RENDER_FAIL:
		return -EIO;
	case RENDER_BIG:
		/* far more than a socket buffer: the answer goes out in pieces */
		for (int i = 0; i < 4 * 1024 * 1024 / 32; i++)
			lb_buf_printf(out, "fake_big{i=\"%09d\"} %09d\n", i, i);
		return 0;
	default:
		lb_buf_printf(out, "%s", BODY);
		return 0;
	}
}

#define STATUS_JSON "{\"vips\":[]}\n"

static int fake_status(void *ctx, struct lb_buf *out)
{
	(void)ctx;
	lb_buf_printf(out, "%s", STATUS_JSON);
	return 0;
}

static void *server_thread(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->stop)) {
		lb_loop_run_once(s->loop, 10);
		lb_metrics_tick(s->m);
	}
	return NULL;
}

static void server_start_opts(struct server *s, struct lb_metrics_opts *o)
{
	o->render = fake_render;
	o->ctx = s;
	if (!o->addr.family) {
		o->addr.family = LB_AF_INET;
		o->addr.addr.v4 = htonl(INADDR_LOOPBACK);
	}
	assert_int_equal(lb_loop_new(&s->loop), 0);
	assert_int_equal(lb_metrics_open(s->loop, o, &s->m), 0);
	lb_metrics_addr(s->m, &s->addr);
	assert_int_not_equal(s->addr.port, 0);
	assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
	s->running = true;
}

static void server_start(struct server *s)
{
	struct lb_metrics_opts o = { 0 };

	server_start_opts(s, &o);
}

static void server_halt(struct server *s)
{
	if (!s->running)
		return;
	s->running = false;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	lb_metrics_close(s->m);
	lb_loop_free(s->loop);
}

/* The server lives outside the test's frame so that a failed assertion
 * (a longjmp out of the test) cannot leave its thread on a dead stack. */
static int setup(void **state)
{
	*state = calloc(1, sizeof(struct server));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	server_halt(*state);
	free(*state);
	return 0;
}

static int tcp_connect(const struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = lb_endpoint_sockaddr(&s->addr, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static void send_str(int fd, const char *p)
{
	size_t n = strlen(p);

	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads to EOF within WAIT_MS; returns the bytes (malloc'ed, NUL-terminated). */
static char *read_all(int fd, size_t *lenp)
{
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap);
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_non_null(buf);
	for (;;) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		if (got + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = recv(fd, buf + got, cap - got - 1, 0);
		if (n == 0)
			break;
		if (n < 0)
			fail_msg("recv: %s", strerror(errno));
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (lenp)
		*lenp = got;
	return buf;
}

struct resp {
	int status;
	char head[2048];
	char *body;
	size_t body_len;
};

static void parse_resp(char *raw, size_t len, struct resp *r)
{
	char *end = strstr(raw, "\r\n\r\n");
	size_t hl;

	assert_non_null(end);
	hl = (size_t)(end - raw) + 4;
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, raw, hl);
	r->head[hl] = '\0';
	assert_int_equal(sscanf(raw, "HTTP/1.1 %d ", &r->status), 1);
	r->body = raw + hl;
	r->body_len = len - hl;
}

static bool has_header(const struct resp *r, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\r\n%s\r\n", line);
	return strstr(r->head, want) != NULL;
}

static long content_length(const struct resp *r)
{
	const char *p = strstr(r->head, "\r\nContent-Length: ");

	assert_non_null(p);
	return strtol(p + 18, NULL, 10);
}

/* One request on a fresh connection; the answer in *r (free r->raw with
 * the returned pointer). */
static char *request(const struct server *s, const char *req, struct resp *r)
{
	size_t len;
	char *raw;
	int fd = tcp_connect(s);

	send_str(fd, req);
	raw = read_all(fd, &len);
	close(fd);
	parse_resp(raw, len, r);
	return raw;
}

static int status_of(const struct server *s, const char *req)
{
	struct resp r;
	char *raw = request(s, req, &r);

	assert_true(has_header(&r, "Connection: close"));
	assert_int_equal(content_length(&r), (long)r.body_len);
	free(raw);
	return r.status;
}

static void test_get_metrics(void **state)
{
	struct server *s = *state;
	struct resp r;
	char *raw;

	server_start(s);
	raw = request(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	assert_true(has_header(&r, "Connection: close"));
	assert_int_equal(content_length(&r), strlen(BODY));
	assert_int_equal(r.body_len, strlen(BODY));
	assert_memory_equal(r.body, BODY, strlen(BODY));
	free(raw);
	assert_int_equal(atomic_load(&s->renders), 1);

	/* HTTP/1.0, a query string, bare newlines (hand-typed) */
	raw = request(s, "GET /metrics?name[]=x HTTP/1.0\n\n", &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, BODY, strlen(BODY));
	free(raw);

	/* HEAD: the same head, no body */
	raw = request(s, "HEAD /metrics HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(content_length(&r), strlen(BODY));
	assert_int_equal(r.body_len, 0);
	free(raw);

	raw = request(s, "GET / HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: text/html; charset=utf-8"));
	assert_non_null(strstr(r.body, "href=\"/metrics\""));
	/* the page fetches its data and nothing else */
	assert_non_null(strstr(r.body, "/api/status"));
	assert_true(has_header(&r, "Content-Security-Policy: default-src 'none'; "
				   "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
				   "connect-src 'self'; img-src data:"));
	assert_int_equal(content_length(&r), lb_webui_html_len());
	assert_null(strstr(r.body, "src=\"http"));
	assert_null(strstr(r.body, "href=\"http"));
	free(raw);

	/* no status renderer: no /api/status */
	assert_int_equal(status_of(s, "GET /api/status HTTP/1.1\r\n\r\n"), 404);
}

static void test_api_status(void **state)
{
	struct server *s = *state;
	struct lb_metrics_opts o = { .status = fake_status };
	struct resp r;
	char *raw;

	server_start_opts(s, &o);
	raw = request(s, "GET /api/status HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: application/json"));
	assert_int_equal(content_length(&r), strlen(STATUS_JSON));
	assert_memory_equal(r.body, STATUS_JSON, strlen(STATUS_JSON));
	free(raw);
	/* read-only: nothing but GET and HEAD */
	assert_int_equal(status_of(s, "POST /api/status HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
			 405);
}

static void test_errors(void **state)
{
	struct server *s = *state;
	struct resp r;
	char *raw;

	server_start(s);
	assert_int_equal(status_of(s, "GET /nope HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(status_of(s, "GET /metricsx HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(status_of(s, "DELETE /metrics HTTP/1.1\r\n\r\n"), 405);
	raw = request(s, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow: GET, HEAD"));
	free(raw);
	assert_int_equal(status_of(s, "HELLO\r\n\r\n"), 400);
	assert_int_equal(status_of(s, "GET /metrics\r\n\r\n"), 400);         /* HTTP/0.9 */
	assert_int_equal(status_of(s, "GET /metrics HTTP/2.0\r\n\r\n"), 400);
	assert_int_equal(status_of(s, "GET  /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of(s, "G(T /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of(s, "GET metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(atomic_load(&s->renders), 0);

	/* a NUL byte in the head */
	{
		static const char nul[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
		int fd = tcp_connect(s);
		size_t len;

		assert_int_equal(send(fd, nul, sizeof(nul) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(nul) - 1));
		raw = read_all(fd, &len);
		close(fd);
		parse_resp(raw, len, &r);
		assert_int_equal(r.status, 400);
		free(raw);
	}

	atomic_store(&s->mode, RENDER_FAIL);
	assert_int_equal(status_of(s, "GET /metrics HTTP/1.1\r\n\r\n"), 500);
	atomic_store(&s->mode, RENDER_OK);
	assert_int_equal(status_of(s, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
}

static void test_oversized(void **state)
{
	struct server *s = *state;
	char *big = malloc(LB_METRICS_MAX_REQ + 2048), *raw;
	struct resp r;
	size_t len;
	int fd;

	server_start(s);
	assert_non_null(big);
	/* headers past the limit, the blank line never reached */
	len = (size_t)sprintf(big, "GET /metrics HTTP/1.1\r\n");
	while (len < LB_METRICS_MAX_REQ + 1024)
		len += (size_t)sprintf(big + len, "X-Filler: %040d\r\n", 0);
	fd = tcp_connect(s);
	assert_int_equal(send(fd, big, len, MSG_NOSIGNAL), (ssize_t)len);
	raw = read_all(fd, &len); /* EOF: the server closed */
	close(fd);
	parse_resp(raw, len, &r);
	assert_int_equal(r.status, 431);
	free(raw);
	free(big);
	assert_int_equal(atomic_load(&s->renders), 0);

	/* just under the limit is fine */
	big = malloc(LB_METRICS_MAX_REQ);
	assert_non_null(big);
	len = (size_t)sprintf(big, "GET /metrics HTTP/1.1\r\n");
	while (len + 60 < LB_METRICS_MAX_REQ)
		len += (size_t)sprintf(big + len, "X-Filler: %040d\r\n", 0);
	sprintf(big + len, "\r\n");
	assert_int_equal(status_of(s, big), 200);
	free(big);
}

/* Byte by byte, with pauses: the head is assembled across reads. */
static void test_trickle(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct server *s = *state;
	struct resp r;
	size_t len;
	char *raw;
	int fd;

	server_start(s);
	fd = tcp_connect(s);
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		assert_int_equal(send(fd, req + i, 1, MSG_NOSIGNAL), 1);
		usleep(2000);
	}
	raw = read_all(fd, &len);
	close(fd);
	parse_resp(raw, len, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, BODY, strlen(BODY));
	free(raw);
}

static void test_concurrent(void **state)
{
	struct server *s = *state;
	int fds[50];

	server_start(s);
	for (int i = 0; i < 50; i++)
		fds[i] = tcp_connect(s);
	for (int i = 0; i < 50; i++)
		send_str(fds[i], "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50; i++) {
		struct resp r;
		size_t len;
		char *raw = read_all(fds[i], &len);

		close(fds[i]);
		parse_resp(raw, len, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body_len, strlen(BODY));
		free(raw);
	}
	assert_int_equal(atomic_load(&s->renders), 50);
}

/* A client that sends half a request, and one that never reads its 4 MiB
 * answer, do not hold up anybody else. */
static void test_slow_clients(void **state)
{
	struct server *s = *state;
	uint64_t t0;
	struct resp r;
	size_t len;
	char *raw;
	int slow_w, slow_r;

	server_start(s);
	slow_w = tcp_connect(s);
	send_str(slow_w, "GET /metr");
	atomic_store(&s->mode, RENDER_BIG);
	slow_r = tcp_connect(s);
	send_str(slow_r, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 100 && atomic_load(&s->renders) < 1; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&s->renders), 1);
	atomic_store(&s->mode, RENDER_OK);

	t0 = lb_now_ms();
	for (int i = 0; i < 10; i++)
		assert_int_equal(status_of(s, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
	assert_true(lb_now_ms() - t0 < 2000);

	/* both slow ones still get their complete answers */
	send_str(slow_w, "ics HTTP/1.1\r\n\r\n");
	raw = read_all(slow_w, &len);
	parse_resp(raw, len, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, BODY, strlen(BODY));
	free(raw);
	raw = read_all(slow_r, &len);
	parse_resp(raw, len, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(content_length(&r), (long)r.body_len);
	assert_true(r.body_len >= 4 * 1024 * 1024 - 64);
	assert_memory_equal(r.body + r.body_len - 34, "fake_big{i=\"000131071\"} 000131071\n", 34);
	free(raw);
	close(slow_w);
	close(slow_r);
}

static void test_idle_dropped(void **state)
{
	struct server *s = *state;
	struct lb_metrics_opts o = { .client_timeout_ms = 200 };
	struct pollfd p;
	char c;
	int fd;

	server_start_opts(s, &o);
	fd = tcp_connect(s);
	send_str(fd, "GET /metrics HTTP/1.1\r\n");
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(recv(fd, &c, 1, 0), 0); /* closed without an answer */
	close(fd);
	assert_int_equal(status_of(s, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
}

static void test_busy(void **state)
{
	struct server *s = *state;
	struct lb_metrics_opts o = { .max_clients = 4 };
	int fds[4];

	server_start_opts(s, &o);
	for (int i = 0; i < 4; i++) {
		fds[i] = tcp_connect(s);
		send_str(fds[i], "GET /");  /* holds a slot */
	}
	usleep(50000);
	assert_int_equal(status_of(s, ""), 503);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	/* slots come back (until the server has seen the four EOFs, a new
	 * client may still be turned away, its request unread: a reset) */
	for (int i = 0; i < 100; i++) {
		char buf[512];
		int fd = tcp_connect(s), st = 0;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		send_str(fd, "GET /metrics HTTP/1.1\r\n\r\n");
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		if (recv(fd, buf, sizeof(buf) - 1, 0) > 12)
			sscanf(buf, "HTTP/1.1 %d ", &st);
		close(fd);
		if (st == 200)
			return;
		usleep(10000);
	}
	fail_msg("slots were not released after the clients closed");
}

static void test_ipv6(void **state)
{
	struct server *s = *state;
	struct lb_metrics_opts o = { .addr.family = LB_AF_INET6 };
	struct lb_loop *probe_loop;
	struct lb_metrics *probe;

	o.addr.addr.b[15] = 1; /* ::1 */
	assert_int_equal(lb_loop_new(&probe_loop), 0);
	o.render = fake_render;
	if (lb_metrics_open(probe_loop, &o, &probe)) {
		lb_loop_free(probe_loop);
		printf("SKIP: test_ipv6: cannot bind [::1] here (no IPv6 loopback)\n");
		skip();
	}
	lb_metrics_close(probe);
	lb_loop_free(probe_loop);
	server_start_opts(s, &o);
	assert_int_equal(s->addr.family, LB_AF_INET6);
	assert_int_equal(status_of(s, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
}

static void test_bind_error(void **state)
{
	struct server *s = *state;
	struct lb_metrics_opts o = { 0 };
	struct lb_metrics *second;

	server_start(s);
	o.addr = s->addr;
	o.render = fake_render;
	assert_int_equal(lb_metrics_open(s->loop, &o, &second), -EADDRINUSE);
}

static void test_label_escape(void **state)
{
	struct lb_buf b = { 0 };

	(void)state;
	lb_metrics_label(&b, "a\"b\\c\nd");
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\"");
	lb_buf_free(&b);
	lb_metrics_label(&b, "");
	assert_string_equal(b.data, "\"\"");
	lb_buf_free(&b);
	lb_metrics_head(&b, "x_total", "counter", "Say \"hi\"\\\n");
	assert_string_equal(b.data, "# HELP x_total Say \"hi\"\\\\\\n\n# TYPE x_total counter\n");
	lb_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trickle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_error, setup, teardown),
		cmocka_unit_test(test_label_escape),
	};

	lb_log_set_level(LB_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
