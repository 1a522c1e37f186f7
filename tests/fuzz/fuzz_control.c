// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control protocol (userspace/control.c), server side: the input is the
 * raw byte stream of one client. The real server runs on a unix socket in
 * a temporary directory with its real loop; the fuzz target connects, sends
 * the bytes, closes its write side and reads the answer until the server
 * hangs up.
 *
 * Invariants: the server answers a complete request with a 4-byte status
 * (0..2) and text; a request that is well-formed (checked here against the
 * wire format of control.h) reaches the handler with exactly its words and
 * flags, anything else is answered with status 2 and never reaches it; an
 * incomplete request gets no answer, and the server never crashes, leaks or
 * waits. The handler passes `backend ...` words to the backend grammar,
 * as lbd's does.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "fuzz.h"
#include "log.h"
#include "loop.h"

#define MAX_ROUNDS 2000 /* loop turns per input; an answer needs a handful */

static struct lb_loop *loop;
static struct lb_ctl *ctl;
static char dir[] = "/tmp/lbd-fuzz-ctl.XXXXXX";
static char path[108];

struct seen {
	bool called;
	int argc;
	bool json, dry_run;
	char words[LB_CTL_MAX_REQ];
	size_t words_len;
};

static struct seen seen;

static int handler(void *ctx, const struct lb_ctl_req *req, struct lb_buf *out)
{
	(void)ctx;
	seen.called = true;
	seen.argc = req->argc;
	seen.json = req->json;
	seen.dry_run = req->dry_run;
	seen.words_len = 0;
	for (int i = 0; i < req->argc; i++) {
		size_t n = strlen(req->argv[i]) + 1;

		FZ_CHECK(seen.words_len + n <= sizeof(seen.words), "words exceed the request");
		memcpy(seen.words + seen.words_len, req->argv[i], n);
		seen.words_len += n;
	}
	FZ_CHECK(req->argv[req->argc] == NULL, "argv not NULL-terminated");
	if (!strcmp(req->argv[0], "backend") && req->argc >= 3) {
		struct lb_backend_conf bc;
		unsigned int given;
		char err[256];

		if (lb_config_parse_backend_given(req->argv + 2, req->argc - 2, &bc, &given, err,
						  sizeof(err))) {
			lb_buf_printf(out, "%s\n", err);
			return LB_CTL_USAGE;
		}
	}
	lb_buf_printf(out, "ok %d words\n", req->argc);
	return LB_CTL_OK;
}

/* What the server must make of the bytes, from the wire format alone:
 * -1 incomplete (no answer), 0 a valid request (words at *body), 2 refused. */
static int expect(const uint8_t *d, size_t n, const uint8_t **body, size_t *blen, int *words)
{
	size_t len, off, w = 0;

	if (n < 4)
		return -1;
	len = (size_t)d[0] << 24 | (size_t)d[1] << 16 | (size_t)d[2] << 8 | d[3];
	if (len == 0 || len > LB_CTL_MAX_REQ)
		return 2;
	if (n - 4 < len)
		return -1;
	d += 4;
	if (d[len - 1] != '\0')
		return 2;
	off = strlen((const char *)d) + 1;
	if (d[strspn((const char *)d, "jn")] != '\0')
		return 2;
	*body = d + off;
	*blen = len - off;
	for (size_t i = off; i < len; i += strlen((const char *)d + i) + 1)
		w++;
	if (w < 1 || w > LB_CTL_MAX_WORDS || !d[off])
		return 2;
	*words = (int)w;
	return 0;
}

static void cleanup(void)
{
	lb_ctl_close(ctl); /* unlinks the socket */
	lb_loop_free(loop);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct lb_ctl_opts o = { .handler = handler, .client_timeout_ms = 1000 };

	(void)argc;
	(void)argv;
	fz_quiet();
	lb_log_set_level(LB_LOG_ERR);
	if (!mkdtemp(dir) || lb_loop_new(&loop)) {
		perror("fuzz_control: setup");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	o.path = path;
	if (lb_ctl_open(loop, &o, &ctl)) {
		fprintf(fz_stderr(), "fuzz_control: cannot open %s\n", path);
		exit(1);
	}
	atexit(cleanup);
	return 0;
}

static int client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	FZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		 strerror(errno));
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ans[256];
	size_t sent = 0, got = 0;
	bool eof = false, shut = false;
	const uint8_t *body = NULL;
	size_t blen = 0;
	int words = 0, want, fd;

	want = expect(data, size, &body, &blen, &words);
	memset(&seen, 0, sizeof(seen));
	fd = client();
	for (int round = 0; !eof; round++) {
		FZ_CHECK(round < MAX_ROUNDS, "no answer after %d loop turns", round);
		if (sent < size) {
			ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
			else if (errno == EPIPE || errno == ECONNRESET)
				sent = size; /* answered early and gone: the rest is moot */
		}
		if (sent == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		lb_loop_run_once(loop, 0);
		for (;;) {
			uint8_t chunk[4096];
			ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

			if (n > 0) {
				if (got < sizeof(ans))
					memcpy(ans + got, chunk,
					       (size_t)n < sizeof(ans) - got ? (size_t)n
									   : sizeof(ans) - got);
				got += (size_t)n;
				continue;
			}
			if (n == 0 || errno == ECONNRESET)
				eof = true;
			break;
		}
		if (!eof)
			poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, round > 10);
	}
	close(fd);
	if (want < 0) {
		FZ_CHECK(got == 0 && !seen.called, "incomplete request answered (%zu bytes)", got);
		return 0;
	}
	FZ_CHECK(got >= 4 && ans[0] == 0 && ans[1] == 0 && ans[2] == 0 && ans[3] <= 2,
		 "answer of %zu bytes, status %02x%02x%02x%02x", got, ans[0], ans[1], ans[2],
		 ans[3]);
	if (want == 2) {
		FZ_CHECK(!seen.called && ans[3] == 2, "malformed request: handler %d, status %u",
			 seen.called, ans[3]);
		return 0;
	}
	FZ_CHECK(seen.called, "valid request (%d words) not handled, status %u", words, ans[3]);
	FZ_CHECK(seen.argc == words && seen.words_len == blen && !memcmp(seen.words, body, blen),
		 "handler saw %d words (%zu bytes), sent %d (%zu bytes)", seen.argc,
		 seen.words_len, words, blen);
	FZ_CHECK(seen.json == (memchr(data + 4, 'j', strlen((const char *)data + 4)) != NULL) &&
		 seen.dry_run == (memchr(data + 4, 'n', strlen((const char *)data + 4)) != NULL),
		 "flags differ");
	return 0;
}
