// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbload - a bounded load client for lbd's tests and benchmarks.
 *
 *   lbload -c COUNT [-p PARALLEL] [-t TIMEOUT_MS] [--udp] [--http|--ping]
 *          [--duration SEC] [--keep N [--keep-period MS]] [-j] ADDR:PORT
 *
 * Opens COUNT short connections, PARALLEL at a time (one epoll loop, all
 * sockets non-blocking), each sending one request: an HTTP/1.0 GET (default),
 * a "PING" line, or with --udp one datagram from a fresh socket. Replies are
 * tallied by the backend name they carry (the last word of the body, as
 * demo_backend writes it). --duration keeps PARALLEL requests in flight until
 * the time is up (COUNT, if given, still bounds it) and reports each failure
 * on stderr as it happens. --keep N also holds N keep-alive HTTP/1.1
 * connections for the whole run, one request each per 100 ms (--keep-period),
 * and reports for each whether it failed or ever answered from another
 * backend.
 *
 * Output: "NAME COUNT" per backend, then
 * "total=N ok=N failed=N elapsed_ms=N rate=N/s"; with -j one JSON object.
 * Exit status 0 when nothing failed, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"

#define MAX_PARALLEL   10000
#define MAX_KEEP       15000  /* 10k open connections, under the fd limit */
#define MAX_DURATION_S 86400
#define MAX_NAMES      256
#define NAME_LEN       64
#define REPLY_BUF      4096
#define KEEP_PERIOD_MS 100
#define TICK_MS        10

enum mode { M_HTTP, M_PING, M_UDP };

/* Why a request failed; names printed in the report. */
enum fail_kind { F_REFUSED, F_UNREACH, F_RESET, F_TIMEOUT, F_CLOSED, F_STATUS,
		 F_BADREPLY, F_OTHER, F_MAX };
static const char *const fail_names[F_MAX] = {
	"refused", "unreachable", "reset", "timeout", "closed", "http_status",
	"bad_reply", "other",
};

enum slot_state { S_FREE, S_CONNECTING, S_READING, S_IDLE, S_DONE };

struct slot {
	int fd;
	enum slot_state state;
	bool keep;               /* a long-lived --keep connection */
	long long deadline;      /* ms; the pending step times out then */
	long long next_req;      /* keep: when to send the next request */
	size_t len;
	char buf[REPLY_BUF + 1];
	/* keep connections only */
	char first[NAME_LEN];    /* backend of the first reply */
	unsigned requests;
	bool switched;
	enum fail_kind why;
	bool failed;
	long long failed_at;
};

static struct {
	long count;
	int parallel, timeout_ms, duration_s, keep, keep_period_ms;
	enum mode mode;
	bool json;
	struct lb_endpoint ep;
	struct sockaddr_storage sa;
	socklen_t salen;
	char target[LB_ADDRSTRLEN];
} opt = { .count = -1, .parallel = 1, .timeout_ms = 2000, .keep_period_ms = KEEP_PERIOD_MS };

static struct {
	long started, ok, failed;
	long fails[F_MAX];
	int nnames;
	struct { char name[NAME_LEN]; long n; } names[MAX_NAMES];
	long long t0;
} st;

static int epfd;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void tally(const char *name)
{
	int i;

	for (i = 0; i < st.nnames; i++)
		if (!strcmp(st.names[i].name, name))
			break;
	if (i == st.nnames) {
		if (st.nnames == MAX_NAMES)
			i--; /* the last entry absorbs the rest */
		else
			snprintf(st.names[st.nnames++].name, NAME_LEN, "%s", name);
	}
	st.names[i].n++;
}

/* Reports one failure on stderr with its time (wall clock and run offset). */
static void log_failure(const struct slot *s, int idx, enum fail_kind why, int port)
{
	struct timespec wall;
	struct tm tm;
	long long t = now_ms() - st.t0;

	clock_gettime(CLOCK_REALTIME, &wall);
	localtime_r(&wall.tv_sec, &tm);
	fprintf(stderr, "lbload: %02d:%02d:%02d.%03ld +%lld.%03llds %s %d failed: %s"
		" (client port %d)\n",
		tm.tm_hour, tm.tm_min, tm.tm_sec, wall.tv_nsec / 1000000,
		t / 1000, t % 1000, s->keep ? "keep conn" : "request", idx, fail_names[why], port);
}

static enum fail_kind errno_kind(int err)
{
	switch (err) {
	case ECONNREFUSED: return F_REFUSED;
	case EHOSTUNREACH: case ENETUNREACH: return F_UNREACH;
	case ECONNRESET: case EPIPE: return F_RESET;
	case ETIMEDOUT: return F_TIMEOUT;
	default: return F_OTHER;
	}
}

static void slot_close(struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->len = 0;
}

static void slot_fail(struct slot *s, int idx, enum fail_kind why)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int port = -1;

	if (s->fd >= 0 && !getsockname(s->fd, (struct sockaddr *)&ss, &sl))
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						      : ((struct sockaddr_in *)&ss)->sin_port);
	slot_close(s);
	if (s->keep) {
		s->failed = true;
		s->why = why;
		s->failed_at = now_ms() - st.t0;
		s->state = S_DONE;
		log_failure(s, idx, why, port);
		return;
	}
	st.failed++;
	st.fails[why]++;
	s->state = S_FREE;
	if (opt.duration_s)
		log_failure(s, (int)st.started, why, port);
}

static int ep_set(struct slot *s, unsigned events, int op)
{
	struct epoll_event ee = { .events = events, .data.ptr = s };

	return epoll_ctl(epfd, op, s->fd, &ee);
}

/* Starts a connection (or UDP exchange); false when it failed at once. */
static bool slot_open(struct slot *s)
{
	bool udp = opt.mode == M_UDP && !s->keep;

	s->len = 0;
	s->deadline = now_ms() + opt.timeout_ms;
	s->fd = socket(opt.sa.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) |
		       SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return false;
	if (connect(s->fd, (struct sockaddr *)&opt.sa, opt.salen) && errno != EINPROGRESS)
		return false;
	s->state = S_CONNECTING;
	return ep_set(s, EPOLLOUT, EPOLL_CTL_ADD) == 0;
}

static bool send_request(struct slot *s)
{
	char req[256];
	int n;

	if (s->keep)
		n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n"
			     "User-Agent: lbload\r\n\r\n", opt.target);
	else if (opt.mode == M_HTTP)
		n = snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: %s\r\n"
			     "User-Agent: lbload\r\n\r\n", opt.target);
	else
		n = snprintf(req, sizeof(req), "PING\n");
	/* A fresh socket takes a request this small in one send. */
	if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return false;
	s->len = 0;
	s->state = S_READING;
	s->deadline = now_ms() + opt.timeout_ms;
	return ep_set(s, EPOLLIN, EPOLL_CTL_MOD) == 0;
}

/* The last whitespace-separated word of body[0..len) into name. */
static bool last_word(const char *body, size_t len, char *name)
{
	size_t end = len, start;

	while (end && (body[end - 1] == '\n' || body[end - 1] == '\r' || body[end - 1] == ' '))
		end--;
	start = end;
	while (start && body[start - 1] != ' ' && body[start - 1] != '\n')
		start--;
	if (start == end || end - start >= NAME_LEN)
		return false;
	for (size_t i = start; i < end; i++) /* printable, JSON-safe */
		name[i - start] = body[i] > ' ' && body[i] < 127 && body[i] != '"' &&
				  body[i] != '\\' ? body[i] : '?';
	name[end - start] = '\0';
	return true;
}

/*
 * Is the reply in s->buf complete? Returns 1 (name set), 0 (need more) or
 * -1 (*why set). eof: the peer closed, nothing more will come.
 */
static int parse_reply(struct slot *s, bool eof, char *name, enum fail_kind *why)
{
	char *hdr_end, *cl;
	size_t hlen, blen;
	int status;

	s->buf[s->len] = '\0';
	*why = F_BADREPLY;
	if (opt.mode != M_HTTP && !s->keep) {
		if (!memchr(s->buf, '\n', s->len))
			return eof ? (*why = F_CLOSED, -1) : 0;
		return last_word(s->buf, s->len, name) ? 1 : -1;
	}
	hdr_end = strstr(s->buf, "\r\n\r\n");
	if (!hdr_end)
		return eof || s->len == REPLY_BUF ? (*why = eof ? F_CLOSED : F_BADREPLY, -1) : 0;
	hlen = (size_t)(hdr_end - s->buf) + 4;
	cl = strcasestr(s->buf, "\r\nContent-Length:");
	if (cl && cl < hdr_end)
		blen = strtoul(cl + 17, NULL, 10);
	else if (eof)
		blen = s->len - hlen;
	else
		return 0;
	if (s->len < hlen + blen)
		return eof || hlen + blen > REPLY_BUF ? (*why = F_CLOSED, -1) : 0;
	if (sscanf(s->buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	if (status < 200 || status > 299)
		return *why = F_STATUS, -1;
	if (!last_word(s->buf + hlen, blen, name))
		return -1;
	/* keep-alive: what follows belongs to the next reply (none expected) */
	s->len -= hlen + blen;
	memmove(s->buf, s->buf + hlen + blen, s->len);
	return 1;
}

static void on_reply(struct slot *s, const char *name)
{
	if (!s->keep) {
		tally(name);
		st.ok++;
		slot_close(s);
		s->state = S_FREE;
		return;
	}
	if (!s->requests++)
		snprintf(s->first, NAME_LEN, "%s", name);
	else if (strcmp(s->first, name))
		s->switched = true;
	s->state = S_IDLE;
	s->next_req = now_ms() + opt.keep_period_ms;
	ep_set(s, 0, EPOLL_CTL_MOD);
}

static void on_event(struct slot *s, int idx)
{
	char name[NAME_LEN];
	enum fail_kind why;
	int err = 0, r;
	socklen_t el = sizeof(err);
	ssize_t n;

	if (s->state == S_CONNECTING) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			slot_fail(s, idx, errno_kind(err));
			return;
		}
		if (s->keep) {
			s->state = S_IDLE;
			s->next_req = 0;
			ep_set(s, 0, EPOLL_CTL_MOD);
		} else if (!send_request(s)) {
			slot_fail(s, idx, errno_kind(errno));
		}
		return;
	}
	if (s->state != S_READING) {
		slot_fail(s, idx, F_CLOSED); /* HUP/ERR while idle */
		return;
	}
	n = recv(s->fd, s->buf + s->len, REPLY_BUF - s->len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n < 0) {
		slot_fail(s, idx, errno_kind(errno));
		return;
	}
	s->len += (size_t)n;
	r = parse_reply(s, n == 0, name, &why);
	if (r > 0)
		on_reply(s, name);
	else if (r < 0)
		slot_fail(s, idx, why);
}

/* Starts due keep-alive requests and fails steps past their deadline. */
static void on_tick(struct slot *slots, int nslots, long long now)
{
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];

		if (s->state == S_IDLE && s->next_req <= now) {
			if (!send_request(s))
				slot_fail(s, i - opt.parallel, errno_kind(errno));
		} else if ((s->state == S_CONNECTING || s->state == S_READING) &&
			   s->deadline <= now) {
			slot_fail(s, i - opt.parallel, F_TIMEOUT);
		}
	}
}

static bool more_to_start(long long now, long long end)
{
	return st.started < opt.count && (!end || now < end);
}

/* The event loop; returns the elapsed time in ms. */
static long long run(struct slot *slots)
{
	int nslots = opt.parallel + opt.keep, inflight = 0;
	long long end = opt.duration_s ? now_ms() + opt.duration_s * 1000LL : 0;

	st.t0 = now_ms();
	for (int i = opt.parallel; i < nslots; i++) {
		slots[i].keep = true;
		if (!slot_open(&slots[i]))
			slot_fail(&slots[i], i - opt.parallel, errno_kind(errno));
	}
	for (;;) {
		struct epoll_event evs[256];
		long long now = now_ms();
		int n;

		inflight = 0;
		for (int i = 0; i < opt.parallel; i++) {
			struct slot *s = &slots[i];

			if (s->state == S_FREE && more_to_start(now, end)) {
				st.started++;
				if (!slot_open(s))
					slot_fail(s, 0, errno_kind(errno));
			}
			inflight += s->state != S_FREE;
		}
		/* keep connections alone run until the duration is over */
		if (!inflight && !more_to_start(now, end) && !(opt.keep && end && now < end))
			break;
		n = epoll_wait(epfd, evs, 256, TICK_MS);
		for (int i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;

			on_event(s, (int)(s - slots) - opt.parallel);
		}
		on_tick(slots, nslots, now_ms());
	}
	return now_ms() - st.t0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b); /* name is the first member */
}

/*
 * One printing path for text and JSON (-j): fields are "key=value" separated
 * by spaces in text, "key":value in JSON; pr_open/pr_close nest JSON objects
 * and arrays, and end text lines.
 */
static const char *pr_sep = "";

static void pr_key(const char *key)
{
	if (opt.json)
		printf(key ? "%s\"%s\":" : "%s", pr_sep, key);
	else
		printf("%s%s=", pr_sep, key);
	pr_sep = opt.json ? "," : " ";
}

static void pr_num(const char *key, long long v)
{
	pr_key(key);
	printf("%lld", v);
}

static void pr_str(const char *key, const char *v)
{
	pr_key(key);
	printf(opt.json ? "\"%s\"" : "%s", v);
}

static void pr_bool(const char *key, bool v)
{
	pr_key(key);
	printf("%s", opt.json ? (v ? "true" : "false") : (v ? "yes" : "no"));
}

static void pr_open(const char *key, char bracket)
{
	if (opt.json) {
		if (key)
			pr_key(key);
		else
			printf("%s", pr_sep);
		putchar(bracket);
	}
	pr_sep = "";
}

static void pr_close(char bracket, bool end_line)
{
	if (opt.json)
		putchar(bracket);
	else if (end_line)
		putchar('\n');
	pr_sep = opt.json ? "," : " ";
}

static void report(const struct slot *keep, long long elapsed)
{
	long kfailed = 0, kswitched = 0;

	qsort(st.names, (size_t)st.nnames, sizeof(st.names[0]), cmp_names);
	for (int i = 0; i < opt.keep; i++) {
		kfailed += keep[i].failed;
		kswitched += keep[i].switched;
	}
	pr_open(NULL, '{');
	pr_open("backends", '{');
	for (int i = 0; i < st.nnames; i++) {
		if (opt.json)
			pr_num(st.names[i].name, st.names[i].n);
		else
			printf("%s %ld\n", st.names[i].name, st.names[i].n);
	}
	pr_close('}', false);
	pr_sep = opt.json ? "," : "";
	pr_num("total", st.started);
	pr_num("ok", st.ok);
	pr_num("failed", st.failed);
	pr_num("elapsed_ms", elapsed);
	pr_key("rate");
	printf(opt.json ? "%lld" : "%lld/s", elapsed ? st.ok * 1000LL / elapsed : st.ok);
	if (opt.keep) {
		pr_num("keep", opt.keep);
		pr_num("keep_failed", kfailed);
		pr_num("keep_switched", kswitched);
	}
	if (opt.json) {
		pr_open("errors", '{');
		for (int k = 0; k < F_MAX; k++)
			if (st.fails[k])
				pr_num(fail_names[k], st.fails[k]);
		pr_close('}', false);
	}
	if (!opt.json)
		putchar('\n');
	pr_open("keep_conns", '[');
	for (int i = 0; i < opt.keep; i++) {
		const struct slot *s = &keep[i];

		pr_open(NULL, '{');
		if (!opt.json)
			printf("keep ");
		pr_num("conn", i);
		pr_str("backend", s->requests ? s->first : "-");
		pr_num("requests", s->requests);
		pr_bool("switched", s->switched);
		pr_bool("failed", s->failed);
		if (s->failed) {
			pr_str("error", fail_names[s->why]);
			pr_num("failed_at_ms", s->failed_at);
		}
		pr_close('}', true);
	}
	pr_close(']', false);
	pr_close('}', false);
	if (opt.json)
		putchar('\n');
	if (!opt.json && st.failed) {
		fprintf(stderr, "lbload: failures:");
		for (int k = 0; k < F_MAX; k++)
			if (st.fails[k])
				fprintf(stderr, " %s=%ld", fail_names[k], st.fails[k]);
		fprintf(stderr, "\n");
	}
}

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: lbload -c COUNT [-p PARALLEL] [-t TIMEOUT_MS] [--udp] [--http|--ping]\n"
		"              [--duration SEC] [--keep N [--keep-period MS]] [-j] ADDR:PORT\n"
		"  -c COUNT        requests to make (with --duration: at most)\n"
		"  -p PARALLEL     requests in flight at once (default 1, max %d)\n"
		"  -t TIMEOUT_MS   per connect and per reply (default 2000)\n"
		"  --http          HTTP/1.0 GET per connection (default)\n"
		"  --ping          a \"PING\" line per connection\n"
		"  --udp           a datagram from a fresh socket per request\n"
		"  --duration SEC  run steadily for SEC seconds (max %d)\n"
		"  --keep N        also hold N keep-alive HTTP/1.1 connections, a request\n"
		"                  each per period; report if any failed or switched backend\n"
		"  --keep-period MS  the keep connections' request period (default %d)\n"
		"  -j              JSON output\n",
		MAX_PARALLEL, MAX_DURATION_S, KEEP_PERIOD_MS);
	exit(code);
}

static long num_arg(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "lbload: '%s' is not a number in %ld..%ld\n", s, min, max);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "udp", no_argument, NULL, 'U' },
		{ "http", no_argument, NULL, 'H' },
		{ "ping", no_argument, NULL, 'P' },
		{ "duration", required_argument, NULL, 'd' },
		{ "keep", required_argument, NULL, 'k' },
		{ "keep-period", required_argument, NULL, 'K' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "c:p:t:jh", lopts, NULL)) != -1) {
		switch (o) {
		case 'c': opt.count = num_arg(optarg, 0, LONG_MAX); break;
		case 'p': opt.parallel = (int)num_arg(optarg, 1, MAX_PARALLEL); break;
		case 't': opt.timeout_ms = (int)num_arg(optarg, 1, 3600000); break;
		case 'U': opt.mode = M_UDP; break;
		case 'H': opt.mode = M_HTTP; break;
		case 'P': opt.mode = M_PING; break;
		case 'd': opt.duration_s = (int)num_arg(optarg, 1, MAX_DURATION_S); break;
		case 'k': opt.keep = (int)num_arg(optarg, 0, MAX_KEEP); break;
		case 'K': opt.keep_period_ms = (int)num_arg(optarg, 1, 3600000); break;
		case 'j': opt.json = true; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc - 1 || (opt.count < 0 && !opt.duration_s))
		usage(2);
	if (opt.count < 0)
		opt.count = LONG_MAX; /* --duration bounds it */
	if (lb_endpoint_parse(argv[optind], &opt.ep) || !opt.ep.port) {
		fprintf(stderr, "lbload: bad address '%s' (want ADDR:PORT or [V6]:PORT)\n",
			argv[optind]);
		exit(2);
	}
	lb_endpoint_str(&opt.ep, opt.target, sizeof(opt.target));
}

static void endpoint_sockaddr(void)
{
	if (opt.ep.family == LB_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&opt.sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = opt.ep.port;
		memcpy(&s6->sin6_addr, opt.ep.addr.b, 16);
		opt.salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&opt.sa;

		s4->sin_family = AF_INET;
		s4->sin_port = opt.ep.port;
		s4->sin_addr.s_addr = opt.ep.addr.v4;
		opt.salen = sizeof(*s4);
	}
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct slot *slots;
	long long elapsed;

	parse_args(argc, argv);
	endpoint_sockaddr();
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	slots = calloc((size_t)(opt.parallel + opt.keep), sizeof(*slots));
	if (epfd < 0 || !slots) {
		perror("lbload");
		return 2;
	}
	for (int i = 0; i < opt.parallel + opt.keep; i++)
		slots[i].fd = -1;
	elapsed = run(slots);
	report(slots + opt.parallel, elapsed);
	int rc = st.failed ? 1 : 0;

	for (int i = opt.parallel; i < opt.parallel + opt.keep; i++) {
		if (slots[i].failed || slots[i].switched || !slots[i].requests)
			rc = 1;
		slot_close(&slots[i]);
	}
	free(slots);
	close(epfd);
	return rc;
}
