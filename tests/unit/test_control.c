// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control.c: a real server on a temporary unix socket, its loop running in a
 * thread, driven by lb_ctl_call and by raw sockets that send what lbctl
 * never would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "loop.h"

#define CALL_TIMEOUT_MS 5000

struct server {
	char dir[64];
	char sub[96];
	char path[128];
	struct lb_loop *loop;
	struct lb_ctl *ctl;
	pthread_t thread;
	atomic_bool stop;
	atomic_int calls;
	bool running;
};

/* Echoes the request so the tests can see exactly what arrived. "fail"
 * anywhere answers status 1, "big" a 1 MiB answer (more than a socket buffer). */
static int echo_handler(void *ctx, const struct lb_ctl_req *req, struct lb_buf *out)
{
	struct server *s = ctx;

	atomic_fetch_add(&s->calls, 1);
	for (int i = 0; i < req->argc; i++) {
		if (!strcmp(req->argv[i], "fail")) {
			lb_buf_printf(out, "it failed\n");
			return LB_CTL_FAILED;
		}
	}
	if (!strcmp(req->argv[0], "fds")) { /* "fds N": N pipe write ends, each tagged */
		int n = req->argc > 1 ? atoi(req->argv[1]) : 0;

		for (int i = 0; i < n; i++) {
			int p[2];

			if (pipe2(p, O_CLOEXEC))
				return LB_CTL_FAILED;
			req->pass->fd[req->pass->n++] = p[1];
			lb_buf_printf(out, "%d\n", p[0]); /* the read end stays in this process */
		}
		return LB_CTL_OK;
	}
	if (!strcmp(req->argv[0], "big")) {
		for (int i = 0; i < 1024 * 1024 / 64; i++)
			lb_buf_printf(out, "%063d\n", i);
		return LB_CTL_OK;
	}
	lb_buf_printf(out, "argc=%d json=%d dry=%d uid=%u", req->argc, req->json, req->dry_run,
		      (unsigned)req->uid);
	for (int i = 0; i < req->argc; i++)
		lb_buf_printf(out, " %s", req->argv[i]);
	lb_buf_printf(out, "\n");
	return LB_CTL_OK;
}

static void *server_thread(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->stop)) {
		lb_loop_run_once(s->loop, 10);
		lb_ctl_tick(s->ctl);
	}
	return NULL;
}

static void server_dirs(struct server *s)
{
	strcpy(s->dir, "/tmp/lbd-test-ctl-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->sub, sizeof(s->sub), "%s/run", s->dir);
	snprintf(s->path, sizeof(s->path), "%s/lbd.sock", s->sub);
}

static void server_start_opts(struct server *s, struct lb_ctl_opts *o)
{
	o->path = s->path;
	o->handler = echo_handler;
	o->ctx = s;
	atomic_store(&s->stop, false);
	atomic_store(&s->calls, 0);
	assert_int_equal(lb_loop_new(&s->loop), 0);
	assert_int_equal(lb_ctl_open(s->loop, o, &s->ctl), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
	s->running = true;
}

static void server_start(struct server *s)
{
	struct lb_ctl_opts o = { 0 };

	server_dirs(s);
	server_start_opts(s, &o);
}

static bool server_halt(struct server *s)
{
	if (!s->running)
		return false;
	s->running = false;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	lb_ctl_close(s->ctl);
	lb_loop_free(s->loop);
	return true;
}

static void server_stop(struct server *s)
{
	/* lb_ctl_close removed the socket file: rmdir fails otherwise. */
	if (server_halt(s))
		assert_int_equal(access(s->path, F_OK), -1);
	rmdir(s->sub);
	rmdir(s->dir);
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
	struct server *s = *state;

	server_halt(s);
	if (s->dir[0]) {
		unlink(s->path);
		rmdir(s->sub);
		rmdir(s->dir);
	}
	free(s);
	return 0;
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Reads to EOF (or the reset a server causes when it answers early);
 * returns the status, or -1 when the server closed without one. */
static int raw_answer(int fd, char *text, size_t cap)
{
	unsigned char buf[8192];
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, CALL_TIMEOUT_MS), 1);
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		assert_true(n > 0);
		got += (size_t)n;
		assert_true(got < sizeof(buf));
	}
	close(fd);
	if (got < 4)
		return -1;
	if (text) {
		size_t tl = got - 4 < cap - 1 ? got - 4 : cap - 1;

		memcpy(text, buf + 4, tl);
		text[tl] = '\0';
	}
	return (int)((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
		     buf[3]);
}

/* A request with a length word that matches the body given. */
static int raw_request(const char *path, const void *body, size_t n, char *text, size_t cap)
{
	unsigned char hdr[4];
	int fd = raw_connect(path);

	put_be32(hdr, (uint32_t)n);
	raw_send(fd, hdr, 4);
	if (n)
		raw_send(fd, body, n);
	return raw_answer(fd, text, cap);
}

static int call(struct server *s, const char *opts, int argc, char *const *argv,
		struct lb_buf *out)
{
	lb_buf_free(out);
	return lb_ctl_call(s->path, opts, argc, argv, CALL_TIMEOUT_MS, out);
}

static void test_round_trip(void **state)
{
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "backend", "add", "10.0.0.2:3000", "weight=1" };
	char *fail[] = { "fail" };
	char want[128];

	server_start(s);
	snprintf(want, sizeof(want), "argc=4 json=0 dry=0 uid=%u backend add 10.0.0.2:3000 weight=1\n",
		 (unsigned)geteuid());
	assert_int_equal(call(s, "", 4, argv, &out), 0);
	assert_string_equal(out.data, want);
	assert_int_equal(out.len, strlen(want));

	/* The handler's status is the client's, with its text. */
	assert_int_equal(call(s, "", 1, fail, &out), 1);
	assert_string_equal(out.data, "it failed\n");
	assert_int_equal(atomic_load(&s->calls), 2);
	lb_buf_free(&out);
	server_stop(s);
}

/* Descriptors a handler attaches reach the caller (the same pipes), none
 * is left open in the server, and a caller that wants none gets none. */
static void test_pass_fds(void **state)
{
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "fds", "3" };
	int fds[2], n = -1, rd[3];
	char c;

	server_start(s);
	/* two wanted: the third is closed on arrival */
	assert_int_equal(lb_ctl_call_fds(s->path, "", 2, argv, CALL_TIMEOUT_MS, &out, fds, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sscanf(out.data, "%d\n%d\n%d", &rd[0], &rd[1], &rd[2]), 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fcntl(fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		assert_int_equal(write(fds[i], "x", 1), 1);
		close(fds[i]);
		assert_int_equal(read(rd[i], &c, 1), 1); /* the same pipe */
		assert_int_equal(read(rd[i], &c, 1), 0); /* and no other write end left */
		close(rd[i]);
	}
	assert_int_equal(read(rd[2], &c, 1), 0);
	close(rd[2]);
	lb_buf_free(&out);
	assert_int_equal(call(s, "", 2, argv, &out), 0);
	assert_int_equal(sscanf(out.data, "%d\n%d\n%d", &rd[0], &rd[1], &rd[2]), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read(rd[i], &c, 1), 0);
		close(rd[i]);
	}
	lb_buf_free(&out);
	server_stop(s);
}

/* The option word reaches the handler as the two flags. */
static void expect_flags(struct server *s, const char *opts, int json, int dry)
{
	struct lb_buf out = { 0 };
	char *argv[] = { "status" };
	char want[64];

	snprintf(want, sizeof(want), "argc=1 json=%d dry=%d uid=%u status\n", json, dry,
		 (unsigned)geteuid());
	assert_int_equal(call(s, opts, 1, argv, &out), 0);
	assert_string_equal(out.data, want);
	lb_buf_free(&out);
}

static void test_options(void **state)
{
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "status" };

	server_start(s);
	expect_flags(s, "", 0, 0);
	expect_flags(s, "j", 1, 0);
	expect_flags(s, "n", 0, 1);
	expect_flags(s, "nj", 1, 1);
	expect_flags(s, "jjn", 1, 1);
	/* The client refuses what the server would. */
	assert_int_equal(call(s, "x", 1, argv, &out), -EINVAL);
	assert_int_equal(call(s, "", 0, argv, &out), -EINVAL);
	lb_buf_free(&out);
	server_stop(s);
}

static void test_big_answer(void **state)
{
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "big" };

	server_start(s);
	/* More than the socket buffer: the server must wait for EPOLLOUT. */
	assert_int_equal(call(s, "", 1, argv, &out), 0);
	assert_int_equal(out.len, 1024 * 1024);
	assert_memory_equal(out.data + out.len - 64,
			    "000000000000000000000000000000000000000000000000000000000016383\n", 64);
	lb_buf_free(&out);
	server_stop(s);
}

static void test_oversized(void **state)
{
	struct server *s = *state;
	unsigned char hdr[4];
	char text[256];
	int fd;

	server_start(s);
	/* Only the length word: the server must answer without the body. */
	fd = raw_connect(s->path);
	put_be32(hdr, LB_CTL_MAX_REQ + 1);
	raw_send(fd, hdr, 4);
	assert_int_equal(raw_answer(fd, text, sizeof(text)), 2);
	assert_non_null(strstr(text, "request too large"));

	fd = raw_connect(s->path);
	put_be32(hdr, 0xffffffffu);
	raw_send(fd, hdr, 4);
	/* The server may have answered and closed already: EPIPE is fine. */
	(void)!send(fd, "j\0status\0", 9, MSG_NOSIGNAL);
	assert_int_equal(raw_answer(fd, text, sizeof(text)), 2);
	assert_non_null(strstr(text, "request too large"));

	assert_int_equal(raw_request(s->path, NULL, 0, text, sizeof(text)), 2);
	assert_non_null(strstr(text, "empty request"));
	assert_int_equal(atomic_load(&s->calls), 0);
	server_stop(s);
}

static void test_oversized_client(void **state)
{
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *word = malloc(LB_CTL_MAX_REQ);
	char *argv[] = { "vip", word };

	server_start(s);
	memset(word, 'a', LB_CTL_MAX_REQ - 1);
	word[LB_CTL_MAX_REQ - 1] = '\0';
	/* lbctl sends up to what the framing allows (control_max_request is
	 * lbd's to set); the server refuses past its limit, naming it. */
	assert_int_equal(call(s, "", 2, argv, &out), 2);
	assert_non_null(strstr(out.data, "control_max_request"));
	assert_int_equal(atomic_load(&s->calls), 0);
	lb_buf_free(&out);
	/* The largest request that fits is served. */
	word[LB_CTL_MAX_REQ - 1 - 4 - 1] = '\0';
	assert_int_equal(call(s, "", 2, argv, &out), 0);
	assert_int_equal(atomic_load(&s->calls), 1);
	free(word);
	lb_buf_free(&out);
	/* Past the framing's limit lbctl refuses before sending anything. */
	word = malloc(LB_CTL_REQ_LIMIT + 1);
	assert_non_null(word);
	memset(word, 'a', LB_CTL_REQ_LIMIT);
	word[LB_CTL_REQ_LIMIT] = '\0';
	argv[1] = word;
	assert_int_equal(call(s, "", 2, argv, &out), -E2BIG);
	assert_int_equal(atomic_load(&s->calls), 1);
	free(word);
	lb_buf_free(&out);
	server_stop(s);
}

static void test_malformed(void **state)
{
	static const char no_nul[] = { 'j', 0, 's', 't' };
	static const char bad_opt[] = "jx\0status";
	static const char no_cmd[] = "j";
	static const char empty_cmd[] = "\0";
	struct server *s = *state;
	char text[256];
	char *many;
	size_t n = 0;

	server_start(s);
	assert_int_equal(raw_request(s->path, no_nul, sizeof(no_nul), text, sizeof(text)), 2);
	assert_non_null(strstr(text, "not NUL-terminated"));
	assert_int_equal(raw_request(s->path, bad_opt, sizeof(bad_opt), text, sizeof(text)), 2);
	assert_non_null(strstr(text, "bad option word"));
	assert_int_equal(raw_request(s->path, no_cmd, sizeof(no_cmd), text, sizeof(text)), 2);
	assert_non_null(strstr(text, "no command"));
	assert_int_equal(raw_request(s->path, empty_cmd, sizeof(empty_cmd), text, sizeof(text)), 2);
	assert_non_null(strstr(text, "no command"));

	/* The option word, then one word more than allowed. */
	many = calloc(1, 2 + 2 * (LB_CTL_MAX_WORDS + 1));
	many[n++] = 'j';
	many[n++] = '\0';
	for (int i = 0; i < LB_CTL_MAX_WORDS + 1; i++) {
		many[n++] = 'w';
		many[n++] = '\0';
	}
	assert_int_equal(raw_request(s->path, many, n, text, sizeof(text)), 2);
	assert_non_null(strstr(text, "more than 256 words"));
	/* Exactly the limit is fine. */
	assert_int_equal(raw_request(s->path, many, n - 2, text, sizeof(text)), 0);
	assert_int_equal(atomic_load(&s->calls), 1);
	free(many);
	server_stop(s);
}

/* What the server must say about a body: 0 valid, 2 malformed. */
static int verdict(const char *b, size_t n)
{
	size_t words = 0, opt_len = strlen(b);

	if (b[n - 1] != '\0' || b[strspn(b, "jn")] != '\0' || opt_len + 1 >= n || !b[opt_len + 1])
		return 2;
	for (size_t i = opt_len + 1; i < n; i++)
		words += b[i] == '\0';
	return words > LB_CTL_MAX_WORDS ? 2 : 0;
}

static void test_random_input(void **state)
{
	static const char alphabet[] = { '\0', '\0', 'j', 'n', 'x', 'b' };
	struct server *s = *state;
	unsigned int seed = 42;
	int want_calls = 0;
	char body[600];

	server_start(s);
	for (int i = 0; i < 2000; i++) {
		size_t n = 1 + (size_t)rand_r(&seed) % (i % 10 ? 12 : sizeof(body));
		int expect;

		for (size_t k = 0; k < n; k++)
			body[k] = alphabet[rand_r(&seed) % sizeof(alphabet)];
		if (i % 7 == 0) {
			/* Cut short: length word promises more than arrives. */
			unsigned char hdr[4];
			int fd = raw_connect(s->path);

			put_be32(hdr, (uint32_t)n + 5);
			if (rand_r(&seed) % 2) {
				raw_send(fd, hdr, 4);
				raw_send(fd, body, n);
			} else {
				raw_send(fd, hdr, 1 + (size_t)rand_r(&seed) % 3);
			}
			close(fd);
			continue;
		}
		expect = verdict(body, n);
		want_calls += expect == 0;
		assert_int_equal(raw_request(s->path, body, n, NULL, 0), expect);
	}
	/* Both verdicts were exercised, many times. */
	assert_true(want_calls > 50 && want_calls < 1500);
	assert_int_equal(atomic_load(&s->calls), want_calls);
	expect_flags(s, "j", 1, 0);
	server_stop(s);
}

#define N_CONCURRENT 100

static void test_concurrent(void **state)
{
	static const char body[] = "j\0status\0now";
	struct server *s = *state;
	int fds[N_CONCURRENT];
	unsigned char hdr[4];
	char text[256], want[64];

	server_start(s);
	/* All connected before any sends a byte, then each request in two
	 * pieces: the server must keep 100 half-read requests apart. */
	for (int i = 0; i < N_CONCURRENT; i++)
		fds[i] = raw_connect(s->path);
	put_be32(hdr, sizeof(body));
	for (int i = 0; i < N_CONCURRENT; i++) {
		raw_send(fds[i], hdr, 4);
		raw_send(fds[i], body, 3);
	}
	usleep(20 * 1000);
	for (int i = 0; i < N_CONCURRENT; i++)
		raw_send(fds[i], body + 3, sizeof(body) - 3);
	snprintf(want, sizeof(want), "argc=2 json=1 dry=0 uid=%u status now\n", (unsigned)geteuid());
	for (int i = 0; i < N_CONCURRENT; i++) {
		assert_int_equal(raw_answer(fds[i], text, sizeof(text)), 0);
		assert_string_equal(text, want);
	}
	assert_int_equal(atomic_load(&s->calls), N_CONCURRENT);
	server_stop(s);
}

struct caller {
	const char *path;
	int rc;
};

static void *caller_thread(void *arg)
{
	struct caller *c = arg;
	struct lb_buf out = { 0 };
	char *argv[] = { "stats", "vip", "web" };

	c->rc = lb_ctl_call(c->path, "", 3, argv, CALL_TIMEOUT_MS, &out);
	if (c->rc == 0 && (!out.data || !strstr(out.data, " stats vip web\n")))
		c->rc = -EBADMSG;
	lb_buf_free(&out);
	return NULL;
}

static void test_concurrent_calls(void **state)
{
	struct server *s = *state;
	pthread_t t[N_CONCURRENT];
	struct caller c[N_CONCURRENT];

	server_start(s);
	for (int i = 0; i < N_CONCURRENT; i++) {
		c[i] = (struct caller){ .path = s->path, .rc = -1 };
		assert_int_equal(pthread_create(&t[i], NULL, caller_thread, &c[i]), 0);
	}
	for (int i = 0; i < N_CONCURRENT; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].rc, 0);
	}
	assert_int_equal(atomic_load(&s->calls), N_CONCURRENT);
	server_stop(s);
}

static void test_idle_dropped(void **state)
{
	struct lb_ctl_opts o = { .client_timeout_ms = 200 };
	struct server *s = *state;
	unsigned char hdr[4];
	uint64_t t0, dt;
	int silent, partial;

	server_dirs(s);
	server_start_opts(s, &o);
	t0 = lb_now_ms();
	silent = raw_connect(s->path);
	/* Trickling bytes does not keep a client alive. */
	partial = raw_connect(s->path);
	put_be32(hdr, 100);
	raw_send(partial, hdr, 4);
	raw_send(partial, "j", 1);
	usleep(120 * 1000);
	raw_send(partial, "\0", 1);
	assert_int_equal(raw_answer(silent, NULL, 0), -1);
	assert_int_equal(raw_answer(partial, NULL, 0), -1);
	dt = lb_now_ms() - t0;
	assert_true(dt >= 190);
	assert_true(dt < 2000);
	assert_int_equal(atomic_load(&s->calls), 0);
	server_stop(s);
}

/* Asks for the 1 MiB answer and returns the connection without reading. */
static int request_big(const char *path)
{
	static const char body[] = "\0big";
	unsigned char hdr[4];
	int fd = raw_connect(path);

	put_be32(hdr, sizeof(body));
	raw_send(fd, hdr, 4);
	raw_send(fd, body, sizeof(body));
	return fd;
}

static void test_slow_reader_dropped(void **state)
{
	struct lb_ctl_opts o = { .client_timeout_ms = 200 };
	struct server *s = *state;
	unsigned char buf[65536];
	size_t got = 0;
	int fd;

	server_dirs(s);
	server_start_opts(s, &o);
	fd = request_big(s->path);
	/* Never read: the answer (1 MiB) stalls in the socket buffers. */
	usleep(700 * 1000);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0) {
			assert_true(n == 0 || errno == ECONNRESET);
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	/* Some of it arrived, not all: the server gave up on the reader. */
	assert_true(got > 4);
	assert_true(got < 4 + 1024 * 1024);
	server_stop(s);
}

static void test_pending(void **state)
{
	struct lb_ctl_opts o = { .handler = echo_handler };
	struct server *s = *state;
	unsigned char buf[65536];
	size_t got = 0;
	int fd;

	/* The loop runs here, in this thread, between the client's reads. */
	server_dirs(s);
	o.path = s->path;
	o.ctx = s;
	assert_int_equal(lb_loop_new(&s->loop), 0);
	assert_int_equal(lb_ctl_open(s->loop, &o, &s->ctl), 0);
	fd = request_big(s->path);
	for (int i = 0; i < 100 && !atomic_load(&s->calls); i++)
		lb_loop_run_once(s->loop, 10);
	assert_int_equal(atomic_load(&s->calls), 1);
	assert_int_equal(lb_ctl_pending(s->ctl), 1); /* 1 MiB does not fit */
	for (int i = 0; i < 10000; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		lb_loop_run_once(s->loop, 1);
	}
	close(fd);
	assert_int_equal(got, 4 + 1024 * 1024);
	assert_int_equal(lb_ctl_pending(s->ctl), 0);
	lb_ctl_close(s->ctl);
	lb_loop_free(s->loop);
	server_stop(s);
}

/* Full of clients that sent no whole request: a newcomer is served and the
 * oldest of them is dropped for it. Full of clients whose answers are still
 * being written: a newcomer is told busy. */
static void test_busy(void **state)
{
	struct lb_ctl_opts o = { .max_clients = 2 };
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "status" };
	struct pollfd pfd = { .events = POLLIN };
	char c;
	int a, b;

	server_dirs(s);
	server_start_opts(s, &o);
	a = raw_connect(s->path);
	b = raw_connect(s->path);
	usleep(100 * 1000); /* the server accepts a, then b */
	assert_int_equal(call(s, "", 1, argv, &out), 0);
	pfd.fd = a;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_int_equal(recv(a, &c, 1, 0), 0); /* a, the oldest, was dropped */
	close(a);
	close(b);
	a = request_big(s->path);
	b = request_big(s->path);
	/* Both answers (1 MiB each) stall, unread, in the socket buffers. */
	for (int i = 0; i < 100 && atomic_load(&s->calls) < 3; i++)
		usleep(10 * 1000);
	assert_int_equal(call(s, "", 1, argv, &out), 1);
	assert_non_null(strstr(out.data, "busy"));
	close(a);
	close(b);
	/* The server sees the two hangups in its own time: bounded retry. */
	for (int i = 0; i < 100 && call(s, "", 1, argv, &out) != 0; i++)
		usleep(20 * 1000);
	assert_int_equal(call(s, "", 1, argv, &out), 0);
	lb_buf_free(&out);
	server_stop(s);
}

static void test_stale_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct lb_ctl_opts o = { 0 };
	struct server *s = *state;
	struct lb_buf out = { 0 };
	char *argv[] = { "status" };
	int fd;

	server_dirs(s);
	/* What a crashed lbd leaves: a socket file nobody listens on. */
	assert_int_equal(mkdir(s->sub, 0755), 0);
	strcpy(sa.sun_path, s->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(lb_ctl_call(s->path, "", 1, argv, CALL_TIMEOUT_MS, &out), -ECONNREFUSED);

	server_start_opts(s, &o);
	assert_int_equal(call(s, "", 1, argv, &out), 0);
	lb_buf_free(&out);
	server_stop(s);
	assert_int_equal(lb_ctl_call(s->path, "", 1, argv, CALL_TIMEOUT_MS, &out), -ENOENT);
	lb_buf_free(&out);
}

static void test_not_a_socket(void **state)
{
	struct lb_ctl_opts o = { .handler = echo_handler };
	struct server *s = *state;
	struct lb_ctl *ctl;
	struct lb_loop *loop;
	FILE *f;

	server_dirs(s);
	assert_int_equal(mkdir(s->sub, 0755), 0);
	f = fopen(s->path, "w");
	assert_non_null(f);
	fclose(f);
	o.path = s->path;
	assert_int_equal(lb_loop_new(&loop), 0);
	assert_int_equal(lb_ctl_open(loop, &o, &ctl), -EEXIST);
	assert_int_equal(access(s->path, F_OK), 0); /* left alone */
	lb_loop_free(loop);
	unlink(s->path);
	rmdir(s->sub);
	rmdir(s->dir);
}

static void test_live_server(void **state)
{
	struct lb_ctl_opts o = { .handler = echo_handler };
	struct server *s = *state;
	struct lb_ctl *second;
	struct lb_loop *loop;
	struct lb_buf out = { 0 };
	char *argv[] = { "status" };

	server_start(s);
	o.path = s->path;
	assert_int_equal(lb_loop_new(&loop), 0);
	assert_int_equal(lb_ctl_open(loop, &o, &second), -EADDRINUSE);
	lb_loop_free(loop);
	/* The live one is untouched. */
	assert_int_equal(call(s, "", 1, argv, &out), 0);
	lb_buf_free(&out);
	server_stop(s);
}

static void test_mode(void **state)
{
	struct server *s = *state;
	struct stat st;
	struct group *gr;
	struct lb_ctl_opts o = { 0 };

	server_start(s);
	assert_int_equal(stat(s->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(stat(s->sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	server_stop(s);

	/* With a group: 0660 and that group. Ours, so no root is needed. */
	gr = getgrgid(getegid());
	assert_non_null(gr);
	o.group = gr->gr_name;
	server_dirs(s);
	server_start_opts(s, &o);
	assert_int_equal(stat(s->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, getegid());
	server_stop(s);

	o = (struct lb_ctl_opts){ .group = "no-such-group-lbd-test", .handler = echo_handler };
	server_dirs(s);
	o.path = s->path;
	{
		struct lb_loop *loop;
		struct lb_ctl *ctl;

		assert_int_equal(lb_loop_new(&loop), 0);
		assert_int_equal(lb_ctl_open(loop, &o, &ctl), -ENOENT);
		lb_loop_free(loop);
	}
	rmdir(s->sub);
	rmdir(s->dir);
}

#define NO_SUP ((gid_t)-1)

/* In a child: become uid/gid with the one supplementary group sup (or none),
 * call, and exit with the status (or 100 + errno). */
static int call_as(const char *path, uid_t uid, gid_t gid, gid_t sup, const char *expect)
{
	pid_t pid = fork();
	int wst;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct lb_buf out = { 0 };
		char *argv[] = { "status" };
		int rc;

		if (setgroups(sup == NO_SUP ? 0 : 1, &sup) || setgid(gid) || setuid(uid))
			_exit(99);
		rc = lb_ctl_call(path, "", 1, argv, CALL_TIMEOUT_MS, &out);
		if (rc >= 0 && expect && (!out.data || !strstr(out.data, expect)))
			_exit(98);
		_exit(rc >= 0 ? rc : 100 + (-rc > 100 ? 100 : -rc));
	}
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	return WEXITSTATUS(wst);
}

static void test_credentials(void **state)
{
	const uid_t nobody = 65534;
	const gid_t nogroup = 65534, other = 65533;
	struct lb_ctl_opts o = { 0 };
	struct server *s = *state;
	char grp[16];

	if (geteuid() != 0) {
		print_message("SKIP: test_credentials: needs root to call as another uid\n");
		skip();
	}
	/* Owner-only: a world-writable file still lets nobody in past the
	 * mode, and SO_PEERCRED must stop it. */
	server_start(s);
	assert_int_equal(chmod(s->dir, 0755), 0); /* mkdtemp made it 0700 */
	assert_int_equal(chmod(s->path, 0666), 0);
	assert_int_equal(call_as(s->path, nobody, nogroup, NO_SUP, "permission denied"), 1);
	assert_int_equal(call_as(s->path, 0, 0, NO_SUP, "uid=0 status"), 0);
	assert_int_equal(atomic_load(&s->calls), 1);
	server_stop(s);

	/* With a group: its members get in, by primary or supplementary gid. */
	snprintf(grp, sizeof(grp), "%u", (unsigned)nogroup);
	o.group = grp;
	server_dirs(s);
	server_start_opts(s, &o);
	assert_int_equal(chmod(s->dir, 0755), 0);
	assert_int_equal(call_as(s->path, nobody, other, NO_SUP, NULL), 100 + EACCES); /* file mode */
	assert_int_equal(call_as(s->path, nobody, nogroup, NO_SUP, "uid=65534 status"), 0);
	assert_int_equal(chmod(s->path, 0666), 0);
	assert_int_equal(call_as(s->path, nobody, other, NO_SUP, "permission denied"), 1);
	assert_int_equal(call_as(s->path, nobody, other, nogroup, "uid=65534 status"), 0);
	assert_int_equal(atomic_load(&s->calls), 2);
	server_stop(s);
}

static void read_memfd(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

/* Runs the lbctl built next to this test (O/lbctl for O/tests/unit/x) with
 * LBD_SOCKET=env (NULL: unset); returns its exit status. */
static int run_lbctl(const char *env, char *const *args, char *out, char *err, size_t cap)
{
	char self[PATH_MAX], bin[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int ofd, efd, wst;
	pid_t pid;

	assert_true(n > 0);
	self[n] = '\0';
	snprintf(bin, sizeof(bin), "%s/../../lbctl", dirname(self));
	if (access(bin, X_OK)) {
		print_message("SKIP: lbctl: %s not built\n", bin);
		skip();
	}
	ofd = memfd_create("out", MFD_CLOEXEC);
	efd = memfd_create("err", MFD_CLOEXEC);
	assert_true(ofd >= 0 && efd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[16] = { bin };

		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		if (env)
			setenv("LBD_SOCKET", env, 1);
		else
			unsetenv("LBD_SOCKET");
		if (dup2(ofd, 1) < 0 || dup2(efd, 2) < 0)
			_exit(127);
		execv(bin, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	read_memfd(ofd, out, cap);
	read_memfd(efd, err, cap);
	return WEXITSTATUS(wst);
}

static void test_lbctl(void **state)
{
	struct server *s = *state;
	char out[512], err[512], want[256];
	char *add[] = { "-s", NULL, "-j", "backend", "add", "10.0.0.2:3000", "weight=1", NULL };
	char *stats[] = { "-n", "stats", "vip", "web", NULL };
	char *fail[] = { "-s", NULL, "vip", "show", "fail", NULL };
	char *usage[] = { "-s", NULL, "vip", NULL };
	char *status[] = { "status", NULL };

	server_start(s);
	add[1] = fail[1] = usage[1] = s->path;
	snprintf(want, sizeof(want),
		 "argc=4 json=1 dry=0 uid=%u backend add 10.0.0.2:3000 weight=1\n",
		 (unsigned)geteuid());
	assert_int_equal(run_lbctl(NULL, add, out, err, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_string_equal(err, "");

	/* The socket from the environment; -s wins over it. */
	snprintf(want, sizeof(want), "argc=3 json=0 dry=1 uid=%u stats vip web\n",
		 (unsigned)geteuid());
	assert_int_equal(run_lbctl(s->path, stats, out, err, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(run_lbctl("/nonexistent/lbd.sock", add, out, err, sizeof(out)), 0);

	/* lbd's failure: its text on stderr, its status as the exit code. */
	assert_int_equal(run_lbctl(NULL, fail, out, err, sizeof(out)), 1);
	assert_string_equal(out, "");
	assert_string_equal(err, "it failed\n");

	/* A missing subcommand never reaches lbd. */
	assert_int_equal(atomic_load(&s->calls), 4);
	assert_int_equal(run_lbctl(NULL, usage, out, err, sizeof(out)), 2);
	assert_non_null(strstr(err, "missing subcommand"));
	assert_non_null(strstr(err, "usage: lbctl vip list"));
	assert_int_equal(atomic_load(&s->calls), 4);

	assert_int_equal(run_lbctl("/nonexistent/lbd.sock", status, out, err, sizeof(out)), 1);
	assert_string_equal(err, "lbctl: cannot reach lbd at /nonexistent/lbd.sock: "
				 "No such file or directory (is lbd running?)\n");
	server_stop(s);
}

static void test_json_str(void **state)
{
	struct lb_buf b = { 0 };

	(void)state;
	lb_buf_json_str(&b, "a\"b\\c\nd\te\x01\x1f\x7f/\xc3\xa9");
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\\u007f/\xc3\xa9\"");
	assert_int_equal(b.len, strlen(b.data));
	lb_buf_free(&b);
	lb_buf_json_str(&b, "");
	assert_string_equal(b.data, "\"\"");
	lb_buf_free(&b);
	lb_buf_json_str(&b, "\r\b\f");
	assert_string_equal(b.data, "\"\\r\\b\\f\"");
	lb_buf_free(&b);
}

static void test_buf_printf(void **state)
{
	struct lb_buf b = { 0 };
	char big[5000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	lb_buf_printf(&b, "%d-", 42);
	lb_buf_printf(&b, "%s", big); /* forces a grow mid-format */
	lb_buf_printf(&b, "%s", "");
	assert_int_equal(b.len, 3 + sizeof(big) - 1);
	assert_memory_equal(b.data, "42-xxx", 6);
	assert_int_equal(b.data[b.len], '\0');
	assert_false(b.oom);
	lb_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pass_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lbctl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_str, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buf_printf, setup, teardown),
	};

	lb_log_set_level(LB_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
