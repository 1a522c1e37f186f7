// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * demo_backend - the tiny backend behind lbd's demo and network tests.
 *
 *   demo_backend [-l ADDR:PORT]... [-u ADDR:PORT]... [-n NAME]
 *                [--status CODE] [--rst] [--delay-ms N]
 *
 * TCP (-l): HTTP/1.0 and 1.1, every request answered with the body
 * "Here we are! NAME\n" (keep-alive unless "Connection: close" or HTTP/1.0
 * without "Connection: keep-alive"); GET /slow?ms=N answers after N ms.
 * A line "PING" instead of a request line is answered with "NAME\n", so
 * clients that do not speak HTTP can tell which backend they reached.
 * UDP (-u): every datagram is answered with "NAME\n", from the address it
 * was sent to.
 *
 * Without -l (or -u), $PORT supplies the missing listener on 0.0.0.0 and ::.
 * NAME defaults to $LBD_INSTANCE, then the hostname. Single file, no
 * dependencies beyond libc: one epoll loop, non-blocking sockets, a timerfd
 * per delayed reply, a signalfd for SIGTERM/SIGINT (clean exit).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_LISTENERS 32
#define IN_BUF        8192
#define OUT_BUF       1024
#define MAX_SLOW_MS   600000
#define NAME_MAX_LEN  64

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* What an epoll event's data.ptr points at. */
enum ev_kind { EV_LISTEN, EV_UDP, EV_CONN, EV_TIMER, EV_SIGNAL };

struct ev {
	enum ev_kind kind;
	int fd;
};

enum conn_state { C_READING, C_DELAYED, C_WRITING };

struct conn {
	struct ev sock;
	struct ev timer;         /* fd -1 unless a reply waits for its delay */
	enum conn_state state;
	bool peer_eof;           /* the client shut down its side */
	bool dead;               /* closed; freed after the current event batch */
	struct conn *next_dead;
	struct conn *prev, *next; /* cfg.live, while open */
	bool close_after;        /* close once `out` is written */
	size_t skip;             /* request body bytes still to discard */
	size_t in_len, out_len, out_off;
	char in[IN_BUF + 1];     /* + 1 for a terminating NUL */
	char out[OUT_BUF];
};

static struct {
	char name[NAME_MAX_LEN];
	int status;
	bool rst;
	unsigned delay_ms;
	int epfd;
	struct conn *dead;       /* closed this batch, events may still name them */
	struct conn *live;       /* open connections, closed at exit (no leak) */
} cfg = { .status = 200 };

static void die(const char *what)
{
	fprintf(stderr, "demo_backend: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void ep_ctl(int op, struct ev *e, unsigned events)
{
	struct epoll_event ee = { .events = events, .data.ptr = e };

	if (epoll_ctl(cfg.epfd, op, e->fd, &ee) && op != EPOLL_CTL_DEL)
		die("epoll_ctl");
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT"/"PORT" (0.0.0.0) into a sockaddr. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2] = "0.0.0.0";
	const char *port = strrchr(s, ':');
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	size_t hl;

	if (!port) {
		port = s;
	} else {
		hl = (size_t)(port - s);
		if (hl && s[0] == '[' && s[hl - 1] == ']') {
			s++;
			hl -= 2;
		}
		if (hl >= sizeof(host))
			return -1;
		if (hl) {
			memcpy(host, s, hl);
			host[hl] = '\0';
		}
		port++;
	}
	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void open_listener(const char *spec, int type)
{
	static struct ev evs[MAX_LISTENERS];
	static int n;
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	if (n == MAX_LISTENERS || parse_listen(spec, &ss, &len)) {
		fprintf(stderr, "demo_backend: bad or too many listen addresses: %s\n", spec);
		exit(2);
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one)); /* VIPs added later */
	if (ss.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (type == SOCK_DGRAM)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	} else if (type == SOCK_DGRAM) {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len))
		die(spec);
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN))
		die("listen");
	evs[n] = (struct ev){ .kind = type == SOCK_STREAM ? EV_LISTEN : EV_UDP, .fd = fd };
	ep_ctl(EPOLL_CTL_ADD, &evs[n++], EPOLLIN);
}

static void conn_close(struct conn *c)
{
	if (c->timer.fd >= 0)
		close(c->timer.fd);
	close(c->sock.fd); /* also drops it from the epoll set */
	if (c->prev)
		c->prev->next = c->next;
	else
		cfg.live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->dead = true;
	c->next_dead = cfg.dead;
	cfg.dead = c;
}

static void free_dead(void)
{
	while (cfg.dead) {
		struct conn *c = cfg.dead;

		cfg.dead = c->next_dead;
		free(c);
	}
}

static void on_accept(struct ev *l)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN, or out of fds/memory: retried next wakeup */
		if (cfg.rst) {
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->sock = (struct ev){ .kind = EV_CONN, .fd = fd };
		c->timer = (struct ev){ .kind = EV_TIMER, .fd = -1 };
		c->next = cfg.live;
		if (cfg.live)
			cfg.live->prev = c;
		cfg.live = c;
		ep_ctl(EPOLL_CTL_ADD, &c->sock, EPOLLIN | EPOLLRDHUP);
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default:  return "Status";
	}
}

static void reply_http(struct conn *c, int minor, int status, bool head, bool keep)
{
	char body[NAME_MAX_LEN + 32];
	int bl = snprintf(body, sizeof(body), "Here we are! %s\n", cfg.name);

	c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
		"HTTP/1.%d %d %s\r\nServer: demo_backend\r\nX-Backend: %s\r\n"
		"Content-Type: text/plain\r\nContent-Length: %d\r\n"
		"Connection: %s\r\n\r\n%s",
		minor, status, reason(status), cfg.name, bl,
		keep ? "keep-alive" : "close", head ? "" : body);
	c->close_after = !keep;
}

/* Case-insensitive "Name:" match at the start of a header line. */
static const char *header_value(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) || line[n] != ':')
		return NULL;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

/*
 * Parses one request from c->in, fills c->out and returns the delay before
 * answering (ms), or -1 when the request is not complete yet.
 */
static long parse_request(struct conn *c)
{
	char *eol, *end, *line, *next, method[16], target[256];
	bool conn_close = false, conn_keep = false;
	unsigned long clen = 0;
	long delay = cfg.delay_ms;
	size_t used;
	int minor;

	eol = memchr(c->in, '\n', c->in_len);
	if (!eol)
		return -1;
	if (!strncmp(c->in, "PING\n", 5) || !strncmp(c->in, "PING\r\n", 6)) {
		c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "%s\n", cfg.name);
		c->close_after = false;
		used = (size_t)(eol - c->in) + 1;
		goto consume;
	}
	c->in[c->in_len] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	used = end ? (size_t)(end - c->in) + 4 : 0;
	if (!end && (end = strstr(c->in, "\n\n")))
		used = (size_t)(end - c->in) + 2;
	if (!end)
		return -1;
	*end = '\0';
	if (sscanf(c->in, "%15s %255s HTTP/1.%d", method, target, &minor) != 3 ||
	    minor < 0 || minor > 1) {
		reply_http(c, 0, 400, false, false);
		delay = 0;
		goto consume;
	}
	for (line = strchr(c->in, '\n'); line; line = next) {
		const char *v;

		next = strchr(++line, '\n');
		if ((v = header_value(line, "Connection"))) {
			conn_close |= !strncasecmp(v, "close", 5);
			conn_keep |= !strncasecmp(v, "keep-alive", 10);
		} else if ((v = header_value(line, "Content-Length"))) {
			clen = strtoul(v, NULL, 10);
		}
	}
	if (!strncmp(target, "/slow", 5) && (line = strstr(target, "ms=")))
		delay = strtol(line + 3, NULL, 10);
	if (delay < 0 || delay > MAX_SLOW_MS)
		delay = MAX_SLOW_MS;
	reply_http(c, minor, cfg.status, !strcmp(method, "HEAD"),
		   minor == 1 ? !conn_close : conn_keep);
	c->skip = clen;
consume:
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	return delay;
}

static void set_state(struct conn *c, enum conn_state s)
{
	static const unsigned events[] = {
		[C_READING] = EPOLLIN | EPOLLRDHUP,
		[C_DELAYED] = 0,
		[C_WRITING] = EPOLLOUT,
	};

	if (c->state != s)
		ep_ctl(EPOLL_CTL_MOD, &c->sock, events[s]);
	c->state = s;
}

/* Writes what is pending; returns false when the connection is gone. */
static bool flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->sock.fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			set_state(c, C_WRITING);
			return true;
		}
		if (n <= 0) {
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	if (c->close_after) {
		conn_close(c);
		return false;
	}
	set_state(c, C_READING);
	return true;
}

static void arm_delay(struct conn *c, long ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
	};

	if (c->timer.fd < 0) {
		c->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (c->timer.fd < 0) {
			conn_close(c);
			return;
		}
		ep_ctl(EPOLL_CTL_ADD, &c->timer, EPOLLIN);
	}
	timerfd_settime(c->timer.fd, 0, &its, NULL);
	set_state(c, C_DELAYED);
}

/* Answers every complete request in the buffer, one at a time. */
static void serve(struct conn *c)
{
	while (c->state == C_READING) {
		size_t drop = c->skip < c->in_len ? c->skip : c->in_len;
		long delay;

		memmove(c->in, c->in + drop, c->in_len - drop);
		c->in_len -= drop;
		c->skip -= drop;
		delay = parse_request(c);
		if (delay < 0) {
			if (c->peer_eof || c->in_len == IN_BUF) {
				conn_close(c); /* nothing more will come, or never ends */
				return;
			}
			return;
		}
		if (delay > 0) {
			arm_delay(c, delay);
			return;
		}
		if (!flush_out(c))
			return;
	}
}

static void on_conn(struct conn *c, unsigned events)
{
	if (c->state == C_WRITING) {
		if (flush_out(c))
			serve(c);
		return;
	}
	if (c->state == C_DELAYED) {
		if (events & (EPOLLHUP | EPOLLERR))
			conn_close(c);
		return;
	}
	while (c->in_len < IN_BUF && !c->peer_eof) {
		ssize_t n = recv(c->sock.fd, c->in + c->in_len, IN_BUF - c->in_len, 0);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0)
			c->peer_eof = true;
		c->in_len += (size_t)n;
	}
	serve(c);
}

static void on_timer(struct conn *c)
{
	uint64_t ticks;

	if (read(c->timer.fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (flush_out(c))
		serve(c);
}

/* Answers each datagram from the address it was sent to (VIPs, DSR). */
static void on_udp(struct ev *u)
{
	char buf[2048], cbuf[256], reply[NAME_MAX_LEN + 2];
	int rl = snprintf(reply, sizeof(reply), "%s\n", cfg.name);

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr m = {
			.msg_name = &peer, .msg_namelen = sizeof(peer),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm;

		if (recvmsg(u->fd, &m, 0) < 0)
			return;
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo *pi = (void *)CMSG_DATA(cm);

				pi->ipi_spec_dst = pi->ipi_addr;
				pi->ipi_ifindex = 0;
			} else if (cm->cmsg_level == IPPROTO_IPV6 &&
				   cm->cmsg_type == IPV6_PKTINFO) {
				((struct in6_pktinfo *)(void *)CMSG_DATA(cm))->ipi6_ifindex = 0;
			}
		}
		iov = (struct iovec){ reply, (size_t)rl };
		sendmsg(u->fd, &m, MSG_DONTWAIT);
	}
}

/* Handles one event; returns true on SIGTERM/SIGINT. */
static bool dispatch(struct ev *e, unsigned events)
{
	struct conn *c;

	switch (e->kind) {
	case EV_LISTEN:
		on_accept(e);
		break;
	case EV_UDP:
		on_udp(e);
		break;
	case EV_CONN:
		c = container_of(e, struct conn, sock);
		if (!c->dead)
			on_conn(c, events);
		break;
	case EV_TIMER:
		c = container_of(e, struct conn, timer);
		if (!c->dead)
			on_timer(c);
		break;
	case EV_SIGNAL:
		return true;
	}
	return false;
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		die("signalfd");
	return fd;
}

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: demo_backend [-l ADDR:PORT]... [-u ADDR:PORT]... [-n NAME]\n"
		"                    [--status CODE] [--rst] [--delay-ms N]\n"
		"  -l ADDR:PORT   TCP listener (HTTP and PING); default $PORT on 0.0.0.0 and ::\n"
		"  -u ADDR:PORT   UDP listener; default $PORT on 0.0.0.0 and ::\n"
		"  -n NAME        name in replies (default $LBD_INSTANCE, then hostname)\n"
		"  --status CODE  HTTP status of every answer (default 200)\n"
		"  --rst          reset every TCP connection right after accept\n"
		"  --delay-ms N   wait N ms before every TCP answer\n");
	exit(code);
}

static void default_name(void)
{
	const char *env = getenv("LBD_INSTANCE");

	if (env && *env)
		snprintf(cfg.name, sizeof(cfg.name), "%s", env);
	else if (gethostname(cfg.name, sizeof(cfg.name) - 1))
		strcpy(cfg.name, "demo");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "status", required_argument, NULL, 'S' },
		{ "rst", no_argument, NULL, 'R' },
		{ "delay-ms", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *tcp[MAX_LISTENERS], *udp[MAX_LISTENERS], *port = getenv("PORT");
	int ntcp = 0, nudp = 0, opt;
	struct ev sig = { .kind = EV_SIGNAL };

	default_name();
	while ((opt = getopt_long(argc, argv, "l:u:n:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'l': if (ntcp < MAX_LISTENERS) tcp[ntcp++] = optarg; break;
		case 'u': if (nudp < MAX_LISTENERS) udp[nudp++] = optarg; break;
		case 'n': snprintf(cfg.name, sizeof(cfg.name), "%s", optarg); break;
		case 'S': cfg.status = atoi(optarg); break;
		case 'R': cfg.rst = true; break;
		case 'D': cfg.delay_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc || cfg.status < 100 || cfg.status > 999)
		usage(2);
	if (!ntcp && !nudp && !(port && *port)) {
		fprintf(stderr, "demo_backend: nothing to listen on (give -l/-u or set $PORT)\n");
		usage(2);
	}
	raise_nofile();
	cfg.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cfg.epfd < 0)
		die("epoll_create1");
	sig.fd = signal_fd();
	ep_ctl(EPOLL_CTL_ADD, &sig, EPOLLIN);

	char any4[16], any6[16];

	snprintf(any4, sizeof(any4), "0.0.0.0:%.6s", port ? port : "");
	snprintf(any6, sizeof(any6), "[::]:%.6s", port ? port : "");
	for (int i = 0; i < ntcp; i++)
		open_listener(tcp[i], SOCK_STREAM);
	for (int i = 0; i < nudp; i++)
		open_listener(udp[i], SOCK_DGRAM);
	if (port && *port && !ntcp) {
		open_listener(any4, SOCK_STREAM);
		open_listener(any6, SOCK_STREAM);
	}
	if (port && *port && !nudp) {
		open_listener(any4, SOCK_DGRAM);
		open_listener(any6, SOCK_DGRAM);
	}

	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(cfg.epfd, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (!dispatch(evs[i].data.ptr, evs[i].events))
				continue;
			while (cfg.live)
				conn_close(cfg.live);
			free_dead();
			return 0;
		}
		free_dead();
	}
}
