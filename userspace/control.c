// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Control socket: the server half runs inside lbd's epoll loop and never
 * blocks; the client half (lb_ctl_call) is what lbctl uses. The wire format
 * is described in control.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/acl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

/* The client refuses answers larger than this rather than eat all memory. */
#define LB_CTL_MAX_RESP  (256u << 20)
#define LB_CTL_ACCEPT_BATCH 64
#define LB_CTL_MAX_GROUPS 1024

/* ---- lb_buf ---- */

static bool buf_reserve(struct lb_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return false;
	if (extra > SIZE_MAX - b->len - 1)
		goto oom;
	need = b->len + extra + 1; /* always room for the NUL */
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto oom;
	b->data = p;
	b->cap = cap;
	return true;
oom:
	b->oom = true;
	return false;
}

void lb_buf_append(struct lb_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void lb_buf_vprintf(struct lb_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (!buf_reserve(b, 0))
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!buf_reserve(b, (size_t)n)) {
			b->data[b->len] = '\0';
			return;
		}
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void lb_buf_printf(struct lb_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lb_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void lb_buf_json_str(struct lb_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	lb_buf_append(b, "\"", 1);
	for (; *p; p++) {
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
		const char *rep = NULL;

		switch (*p) {
		case '"':  rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		case '\b': rep = "\\b"; break;
		case '\f': rep = "\\f"; break;
		default:
			break;
		}
		if (rep) {
			lb_buf_append(b, rep, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			lb_buf_append(b, esc, sizeof(esc));
		} else {
			lb_buf_append(b, p, 1);
		}
	}
	lb_buf_append(b, "\"", 1);
}

void lb_buf_free(struct lb_buf *b)
{
	free(b->data);
	*b = (struct lb_buf){ 0 };
}

/* ---- server ---- */

enum ctl_state { ST_LEN, ST_BODY, ST_WRITE };

struct ctl_client {
	struct lb_ctl *ctl;
	struct lb_loop_handler h;
	int fd;
	enum ctl_state st;
	unsigned char hdr[4];
	size_t hdr_got;
	char *body;
	size_t body_len, body_got;
	struct lb_buf out;     /* status word then the text */
	size_t out_off;
	int *fds;              /* to send with the first bytes of out */
	int nfds;
	uint64_t deadline_ms;  /* reading: since accept; writing: since progress */
	uid_t uid;
	bool readonly;          /* only in control_readonly_group */
	bool evicted;           /* dropped for a newcomer; freed by the tick */
	gid_t gid;
	pid_t pid;
	struct ctl_client *prev, *next;
};

struct lb_ctl {
	struct lb_loop *loop;
	struct lb_loop_handler h;
	int fd;
	int spare_fd;          /* given up to accept-and-close on EMFILE */
	char *path;
	dev_t dev;             /* the socket file we made, to unlink only ours */
	ino_t ino;
	bool has_group;
	gid_t gid;
	bool has_ro_group;     /* control_readonly_group */
	gid_t ro_gid;
	lb_ctl_handler_fn handler;
	void *ctx;
	int timeout_ms;
	int max_clients;
	int evicted;           /* clients dropped for newcomers since the tick */
	size_t max_request;
	int nclients;
	struct ctl_client *clients;
};

static void close_fds(struct ctl_client *cl)
{
	for (int i = 0; i < cl->nfds; i++)
		close(cl->fds[i]);
	free(cl->fds);
	cl->fds = NULL;
	cl->nfds = 0;
}

/* The first bytes of the answer, with the descriptors as ancillary data. */
static ssize_t send_with_fds(struct ctl_client *cl)
{
	struct iovec iov = { .iov_base = cl->out.data, .iov_len = cl->out.len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * LB_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)cl->nfds) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	ssize_t n;

	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)cl->nfds);
	memcpy(CMSG_DATA(cm), cl->fds, sizeof(int) * (size_t)cl->nfds);
	n = sendmsg(cl->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		close_fds(cl); /* the peer holds its own references now */
	return n;
}

static void client_free(struct ctl_client *cl)
{
	struct lb_ctl *c = cl->ctl;

	if (!cl->evicted) {
		lb_loop_del(c->loop, cl->fd);
		c->nclients--;
	}
	close(cl->fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	close_fds(cl);
	free(cl->body);
	lb_buf_free(&cl->out);
	free(cl);
}

/* Sends what it can; frees the client once everything went out or the peer
 * is gone. Returns true if the client still exists. */
static bool client_flush(struct ctl_client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t n = cl->nfds ? send_with_fds(cl) :
			    send(cl->fd, cl->out.data + cl->out_off, cl->out.len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			cl->out_off += (size_t)n;
			cl->deadline_ms = lb_now_ms() + (uint64_t)cl->ctl->timeout_ms;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		/* EPIPE/ECONNRESET: lbctl went away; nothing to tell anyone. */
		lb_debug("control: client pid %d: %s", (int)cl->pid, strerror(errno));
		client_free(cl);
		return false;
	}
	client_free(cl);
	return false;
}

static void client_respond(struct ctl_client *cl, int status, struct lb_buf *text)
{
	unsigned char hdr[4];
	uint32_t st = (uint32_t)status;
	bool oom = text && text->oom;

	free(cl->body);
	cl->body = NULL;
	if (oom) {
		lb_warn("control: out of memory building the answer for pid %d", (int)cl->pid);
		st = LB_CTL_FAILED;
		text = NULL;
	}
	hdr[0] = (unsigned char)(st >> 24);
	hdr[1] = (unsigned char)(st >> 16);
	hdr[2] = (unsigned char)(st >> 8);
	hdr[3] = (unsigned char)st;
	lb_buf_free(&cl->out);
	lb_buf_append(&cl->out, hdr, sizeof(hdr));
	if (oom)
		lb_buf_printf(&cl->out, "lbd: out of memory\n");
	else if (text && text->len)
		lb_buf_append(&cl->out, text->data, text->len);
	if (cl->out.oom) {
		lb_err("control: out of memory answering pid %d", (int)cl->pid);
		client_free(cl);
		return;
	}
	cl->st = ST_WRITE;
	cl->out_off = 0;
	cl->deadline_ms = lb_now_ms() + (uint64_t)cl->ctl->timeout_ms;
	if (!client_flush(cl))
		return;
	if (lb_loop_mod(cl->ctl->loop, cl->fd, EPOLLOUT, &cl->h) < 0)
		client_free(cl);
}

static void client_respond_msg(struct ctl_client *cl, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void client_respond_msg(struct ctl_client *cl, int status, const char *fmt, ...)
{
	struct lb_buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	lb_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	client_respond(cl, status, &b);
	lb_buf_free(&b);
}

/* Splits and checks the body; calls the handler only for a valid request. */
static void client_dispatch(struct ctl_client *cl)
{
	struct lb_ctl *c = cl->ctl;
	char *argv[LB_CTL_MAX_WORDS + 1];
	struct lb_ctl_fds pass = { .n = 0 };
	struct lb_ctl_req req = { .uid = cl->uid, .pid = cl->pid, .readonly = cl->readonly,
				  .pass = &pass };
	struct lb_buf out = { 0 };
	const char *opt;
	size_t off;
	int rc;

	if (cl->body[cl->body_len - 1] != '\0') {
		client_respond_msg(cl, LB_CTL_USAGE, "lbd: malformed request: not NUL-terminated\n");
		return;
	}
	opt = cl->body;
	off = strlen(opt) + 1;
	if (opt[strspn(opt, "jn")] != '\0') {
		client_respond_msg(cl, LB_CTL_USAGE, "lbd: malformed request: bad option word\n");
		return;
	}
	while (off < cl->body_len) {
		if (req.argc == LB_CTL_MAX_WORDS) {
			client_respond_msg(cl, LB_CTL_USAGE,
					   "lbd: request has more than %d words\n", LB_CTL_MAX_WORDS);
			return;
		}
		argv[req.argc++] = cl->body + off;
		off += strlen(cl->body + off) + 1;
	}
	argv[req.argc] = NULL;
	if (req.argc < 1 || !argv[0][0]) {
		client_respond_msg(cl, LB_CTL_USAGE, "lbd: malformed request: no command\n");
		return;
	}
	req.argv = argv;
	req.json = strchr(opt, 'j') != NULL;
	req.dry_run = strchr(opt, 'n') != NULL;
	rc = c->handler(c->ctx, &req, &out);
	if (rc < 0 || rc > 255) {
		lb_warn("control: handler for '%s' returned %d", argv[0], rc);
		rc = LB_CTL_FAILED;
	}
	if (pass.n > 0) {
		cl->fds = malloc(sizeof(int) * (size_t)pass.n);
		if (cl->fds) {
			memcpy(cl->fds, pass.fd, sizeof(int) * (size_t)pass.n);
			cl->nfds = pass.n;
		} else {
			for (int i = 0; i < pass.n; i++)
				close(pass.fd[i]);
			out.oom = true;
		}
	}
	client_respond(cl, rc, &out);
	lb_buf_free(&out);
}

/* Reads into [p, p+want) what is there. Returns >0 progress, 0 for nothing
 * yet, <0 when the client is gone or broken. */
static ssize_t client_read(struct ctl_client *cl, void *p, size_t want)
{
	for (;;) {
		ssize_t n = recv(cl->fd, p, want, MSG_DONTWAIT);

		if (n > 0)
			return n;
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
}

static void client_on_read(struct ctl_client *cl)
{
	ssize_t n;

	if (cl->st == ST_LEN) {
		n = client_read(cl, cl->hdr + cl->hdr_got, sizeof(cl->hdr) - cl->hdr_got);
		if (n < 0)
			goto gone;
		cl->hdr_got += (size_t)n;
		if (cl->hdr_got < sizeof(cl->hdr))
			return;
		cl->body_len = (uint32_t)cl->hdr[0] << 24 | (uint32_t)cl->hdr[1] << 16 |
			       (uint32_t)cl->hdr[2] << 8 | cl->hdr[3];
		if (cl->body_len == 0) {
			client_respond_msg(cl, LB_CTL_USAGE, "lbd: empty request\n");
			return;
		}
		if (cl->body_len > cl->ctl->max_request) {
			/* Answer without reading the body: it is not worth the memory. */
			client_respond_msg(cl, LB_CTL_USAGE,
					   "lbd: request too large (%zu bytes, limit %zu: control_max_request)\n",
					   cl->body_len, cl->ctl->max_request);
			return;
		}
		cl->body = malloc(cl->body_len);
		if (!cl->body) {
			client_respond_msg(cl, LB_CTL_FAILED, "lbd: out of memory\n");
			return;
		}
		cl->st = ST_BODY;
	}
	n = client_read(cl, cl->body + cl->body_got, cl->body_len - cl->body_got);
	if (n < 0)
		goto gone;
	cl->body_got += (size_t)n;
	if (cl->body_got == cl->body_len)
		client_dispatch(cl);
	return;
gone:
	lb_debug("control: client pid %d left before its request was complete", (int)cl->pid);
	client_free(cl);
}

static void client_on_event(void *arg, uint32_t events)
{
	struct ctl_client *cl = arg;

	if (cl->evicted) /* an event of the current batch; the tick frees it */
		return;
	if (cl->st == ST_WRITE) {
		if (events & (EPOLLERR | EPOLLHUP))
			client_free(cl);
		else if (events & EPOLLOUT)
			client_flush(cl);
		return;
	}
	/* Read first even on HUP: the whole request may be queued already. */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_on_read(cl);
}

static bool gid_in(gid_t g, const gid_t *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == g)
			return true;
	return false;
}

/* Supplementary groups as of connect(): SO_PEERGROUPS (Linux 4.13), else
 * the Groups line of /proc/PID/status. */
static bool peer_in_group(int fd, pid_t pid, gid_t want)
{
	gid_t groups[LB_CTL_MAX_GROUPS];
	socklen_t len = sizeof(groups);
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return gid_in(want, groups, (int)(len / sizeof(gid_t)));
	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (g == want) {
				found = true;
				break;
			}
		}
		break;
	}
	fclose(f);
	return found;
}

static bool peer_member(struct ctl_client *cl, gid_t g)
{
	return cl->gid == g || peer_in_group(cl->fd, cl->pid, g);
}

/* Root, lbd's own user and control_group may do everything; members of
 * control_readonly_group only what the handler lets a read-only request do. */
static bool peer_allowed(struct lb_ctl *c, struct ctl_client *cl)
{
	if (cl->uid == 0 || cl->uid == geteuid())
		return true;
	if (c->has_group && peer_member(cl, c->gid))
		return true;
	cl->readonly = c->has_ro_group && peer_member(cl, c->ro_gid);
	return cl->readonly;
}

/* Best effort, one small write into an empty socket buffer: no blocking. */
static void reject_now(int fd, int status, const char *msg)
{
	unsigned char buf[128] = { 0, 0, 0, (unsigned char)status };
	size_t n = strlen(msg);

	if (n > sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	memcpy(buf + 4, msg, n);
	if (send(fd, buf, 4 + n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		lb_debug("control: rejecting a client: %s", strerror(errno));
	close(fd);
}

/* Full: make room by dropping the client that has waited longest without
 * sending a whole request (idle or slow), as NGINX reuses idle connections.
 * A newcomer, lbctl, sends its request at once, so a flood of idle clients
 * cannot lock it out. The client may have an event in the loop's current
 * batch: it is only unhooked here and freed by the next tick. */
static bool evict_oldest_reader(struct lb_ctl *c)
{
	struct ctl_client *victim = NULL;

	for (struct ctl_client *cl = c->clients; cl; cl = cl->next)
		if (!cl->evicted && cl->st != ST_WRITE)
			victim = cl; /* newest first: the last match is the oldest */
	if (!victim)
		return false;
	victim->evicted = true;
	lb_loop_del(c->loop, victim->fd);
	shutdown(victim->fd, SHUT_RDWR);
	c->nclients--;
	return true;
}

static void ctl_accept_one(struct lb_ctl *c, int fd)
{
	struct ctl_client *cl;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (c->nclients >= c->max_clients && evict_oldest_reader(c))
		c->evicted++;
	if (c->nclients >= c->max_clients) {
		lb_warn("control: %d clients already, turning one away", c->nclients);
		reject_now(fd, LB_CTL_FAILED, "lbd: busy: too many control clients\n");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		lb_warn("control: SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		reject_now(fd, LB_CTL_FAILED, "lbd: out of memory\n");
		return;
	}
	cl->ctl = c;
	cl->fd = fd;
	cl->uid = cred.uid;
	cl->gid = cred.gid;
	cl->pid = cred.pid;
	cl->h.fn = client_on_event;
	cl->h.arg = cl;
	cl->deadline_ms = lb_now_ms() + (uint64_t)c->timeout_ms;
	if (lb_loop_add(c->loop, fd, EPOLLIN, &cl->h) < 0) {
		lb_warn("control: epoll add: %s", strerror(errno));
		close(fd);
		free(cl);
		return;
	}
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	c->nclients++;
	if (!peer_allowed(c, cl)) {
		lb_warn("control: uid %u (pid %d) is not allowed on the control socket",
			(unsigned)cl->uid, (int)cl->pid);
		client_respond_msg(cl, LB_CTL_FAILED, "lbd: permission denied\n");
	}
}

static void ctl_on_listen(void *arg, uint32_t events)
{
	struct lb_ctl *c = arg;

	(void)events;
	for (int i = 0; i < LB_CTL_ACCEPT_BATCH; i++) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			ctl_accept_one(c, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if ((errno == EMFILE || errno == ENFILE) && c->spare_fd >= 0) {
			/* Out of fds: free the spare so the pending client can be
			 * taken and closed, or level-triggered epoll spins on it. */
			lb_warn("control: out of file descriptors, dropping a client");
			close(c->spare_fd);
			fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			break;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			lb_warn("control: accept: %s", strerror(errno));
		break;
	}
}

/* mkdir -p for the socket's directory. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	size_t n = strlen(path);

	if (!n)
		return -EINVAL;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* 0 when a server accepts connections at sa, else -errno of the connect
 * (-ECONNREFUSED: a socket file nobody listens on; -ENOENT: no file). */
static int probe(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	err = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
	close(fd);
	return err;
}

/* The path is taken. A socket nobody listens on is stale and removed (lbd
 * crashed); a live server or a file that is not a socket is left alone. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int err;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		lb_err("control: %s exists and is not a socket", path);
		return -EEXIST;
	}
	err = -probe(sa);
	if (err == ECONNREFUSED) {
		lb_info("control: removing stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	if (err == ENOENT)
		return 0;
	if (err == 0 || err == EAGAIN) {
		lb_err("control: %s: another lbd is already listening there", path);
		return -EADDRINUSE;
	}
	lb_err("control: %s: cannot tell whether it is in use: %s", path, strerror(err));
	return -err;
}

int lb_ctl_probe(const char *path)
{
	struct sockaddr_un sa;
	int err = fill_addr(path, &sa);

	return err ? err : probe(&sa);
}

static int resolve_group(const char *name, gid_t *gid)
{
	struct group *gr;
	char *end;
	unsigned long v;

	errno = 0;
	gr = getgrnam(name);
	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	v = strtoul(name, &end, 10);
	if (name[0] >= '0' && name[0] <= '9' && !*end && v < (gid_t)-1) {
		*gid = (gid_t)v;
		return 0;
	}
	return errno ? -errno : -ENOENT;
}

/* connect() needs write permission on the socket file, and the file has one
 * group: the read-only group gets its own POSIX ACL entry. */
static int grant_ro_group(struct lb_ctl *c, const char *path)
{
	char text[128];
	acl_t acl;
	int err = 0;

	snprintf(text, sizeof(text), "u::rw-,g::%s,g:%u:rw-,m::rw-,o::---",
		 c->has_group ? "rw-" : "---", (unsigned)c->ro_gid);
	acl = acl_from_text(text);
	if (!acl)
		err = -errno;
	else if (acl_set_file(path, ACL_TYPE_ACCESS, acl) < 0)
		err = -errno;
	if (err)
		lb_err("control: cannot let the read-only group into %s (%s): %s", path,
		       err == -EOPNOTSUPP ? "this filesystem has no POSIX ACLs" : "acl",
		       strerror(-err));
	acl_free(acl);
	return err;
}

/* An optional group option: none given is fine. */
static int opt_group(const char *what, const char *name, gid_t *gid, bool *has)
{
	int err;

	if (!name || !name[0])
		return 0;
	err = resolve_group(name, gid);
	if (err) {
		lb_err("control: %s '%s': %s", what, name,
		       err == -ENOENT ? "no such group" : strerror(-err));
		return err;
	}
	*has = true;
	return 0;
}

static int ctl_bind(struct lb_ctl *c, const struct lb_ctl_opts *o)
{
	struct sockaddr_un sa;
	mode_t mode = c->has_group ? 0660 : 0600;
	struct stat st;
	int err;

	err = fill_addr(o->path, &sa);
	if (err) {
		lb_err("control: bad socket path '%s': %s", o->path, strerror(-err));
		return err;
	}
	err = make_dirs(o->path);
	if (err) {
		lb_err("control: creating the directory of %s: %s", o->path, strerror(-err));
		return err;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err = -errno;
		lb_err("control: socket: %s", strerror(-err));
		return err;
	}
	/* On Linux the file gets the socket inode's mode (minus umask) at
	 * bind: set it first so there is never a wider-open file. */
	if (fchmod(c->fd, mode) < 0)
		lb_debug("control: fchmod on the socket: %s", strerror(errno));
	for (int tries = 0;; tries++) {
		if (!bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		err = -errno;
		if (err != -EADDRINUSE || tries == 2) {
			lb_err("control: bind %s: %s", o->path, strerror(-err));
			return err;
		}
		err = clear_stale(o->path, &sa);
		if (err)
			return err;
	}
	/* Nobody can connect before listen(): fix owner and mode in between. */
	if (c->has_ro_group) {
		err = grant_ro_group(c, o->path);
		if (err) {
			unlink(o->path);
			return err;
		}
	}
	if (c->has_group && chown(o->path, (uid_t)-1, c->gid) < 0) {
		err = -errno;
		lb_err("control: chgrp %s to '%s': %s", o->path, o->group, strerror(-err));
		unlink(o->path);
		return err;
	}
	if (chmod(o->path, mode) < 0 || stat(o->path, &st) < 0) {
		err = -errno;
		lb_err("control: chmod %s: %s", o->path, strerror(-err));
		unlink(o->path);
		return err;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->fd, SOMAXCONN) < 0) {
		err = -errno;
		lb_err("control: listen on %s: %s", o->path, strerror(-err));
		unlink(o->path);
		return err;
	}
	return 0;
}

int lb_ctl_open(struct lb_loop *loop, const struct lb_ctl_opts *o, struct lb_ctl **out)
{
	struct lb_ctl *c;
	int err;

	if (!loop || !o || !o->path || !o->handler || !out) {
		lb_err("control: lb_ctl_open needs a loop, a path and a handler");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		lb_err("control: out of memory");
		return -ENOMEM;
	}
	c->fd = -1;
	c->loop = loop;
	c->handler = o->handler;
	c->ctx = o->ctx;
	c->timeout_ms = o->client_timeout_ms > 0 ? o->client_timeout_ms : LB_CTL_CLIENT_TIMEOUT_MS;
	c->max_clients = o->max_clients > 0 ? o->max_clients : LB_CTL_MAX_CLIENTS;
	c->max_request = o->max_request > 0 && o->max_request <= LB_CTL_REQ_LIMIT ?
			 o->max_request : LB_CTL_MAX_REQ;
	c->h.fn = ctl_on_listen;
	c->h.arg = c;
	c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c->path = strdup(o->path);
	if (!c->path) {
		lb_err("control: out of memory");
		err = -ENOMEM;
		goto fail;
	}
	err = opt_group("group", o->group, &c->gid, &c->has_group);
	if (!err)
		err = opt_group("read-only group", o->ro_group, &c->ro_gid, &c->has_ro_group);
	if (!err)
		err = ctl_bind(c, o);
	if (err)
		goto fail;
	err = lb_loop_add(loop, c->fd, EPOLLIN, &c->h);
	if (err) {
		lb_err("control: epoll add: %s", strerror(-err));
		unlink(c->path);
		goto fail;
	}
	lb_info("control: listening on %s (mode %s%s%s%s)", c->path,
		c->has_group ? "0660, group " : "0600", c->has_group ? o->group : "",
		c->has_ro_group ? ", read-only group " : "", c->has_ro_group ? o->ro_group : "");
	*out = c;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	if (c->spare_fd >= 0)
		close(c->spare_fd);
	free(c->path);
	free(c);
	return err;
}

void lb_ctl_close(struct lb_ctl *c)
{
	struct stat st;

	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	lb_loop_del(c->loop, c->fd);
	close(c->fd);
	/* A newer lbd may own the path by now: remove only our own file. */
	if (!lstat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	if (c->spare_fd >= 0)
		close(c->spare_fd);
	free(c->path);
	free(c);
}

int lb_ctl_rename(struct lb_ctl *c, const char *path)
{
	struct sockaddr_un sa;
	char *np;
	int err = fill_addr(path, &sa);

	if (err)
		return err;
	np = strdup(path);
	if (!np)
		return -ENOMEM;
	if (rename(c->path, path) < 0) {
		err = -errno;
		lb_err("control: rename %s to %s: %s", c->path, path, strerror(-err));
		free(np);
		return err;
	}
	free(c->path);
	c->path = np;
	return 0;
}

void lb_ctl_tick(struct lb_ctl *c)
{
	uint64_t now = lb_now_ms();
	struct ctl_client *cl, *next;

	if (!c)
		return;
	if (c->evicted) {
		lb_warn("control: full (%d clients): dropped %d that sent no whole request",
			c->max_clients, c->evicted);
		c->evicted = 0;
	}
	for (cl = c->clients; cl; cl = next) {
		next = cl->next;
		if (cl->evicted) {
			client_free(cl);
			continue;
		}
		if (now < cl->deadline_ms)
			continue;
		lb_info("control: dropping client pid %d: idle for %d ms", (int)cl->pid,
			c->timeout_ms);
		client_free(cl);
	}
}

int lb_ctl_pending(const struct lb_ctl *c)
{
	int n = 0;

	for (const struct ctl_client *cl = c ? c->clients : NULL; cl; cl = cl->next)
		n += cl->st == ST_WRITE;
	return n;
}

/* ---- client ---- */

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = lb_now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		int ms = remaining_ms(deadline);
		int n;

		if (!ms)
			return -ETIMEDOUT;
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int build_request(const char *opts, int argc, char *const *argv, struct lb_buf *req)
{
	size_t len = strlen(opts) + 1;
	unsigned char hdr[4];

	if (opts[strspn(opts, "jn")] || argc < 1 || argc > LB_CTL_MAX_WORDS || !argv[0][0])
		return -EINVAL;
	for (int i = 0; i < argc; i++) {
		if (!argv[i])
			return -EINVAL;
		len += strlen(argv[i]) + 1;
		if (len > LB_CTL_REQ_LIMIT)
			return -E2BIG;
	}
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	lb_buf_append(req, hdr, sizeof(hdr));
	lb_buf_append(req, opts, strlen(opts) + 1);
	for (int i = 0; i < argc; i++)
		lb_buf_append(req, argv[i], strlen(argv[i]) + 1);
	return req->oom ? -ENOMEM : 0;
}

/* A blocking connect with SO_SNDTIMEO: a unix connect waits while the
 * listener's backlog is full, and the timeout bounds that wait. */
static int connect_to(const char *path, uint64_t deadline)
{
	struct sockaddr_un sa;
	int ms = remaining_ms(deadline);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int fd, err;

	err = fill_addr(path, &sa);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		goto fail;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR && remaining_ms(deadline))
			continue;
		if (errno == EAGAIN || errno == EINPROGRESS || errno == EINTR)
			errno = ETIMEDOUT;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static int send_all(int fd, const struct lb_buf *req, uint64_t deadline)
{
	size_t off = 0;

	while (off < req->len) {
		ssize_t n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
		int err;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

/* Everything until EOF. A server that answers before reading the whole
 * request (too large, not allowed) closes with unread data, which makes
 * the end of its answer read as ECONNRESET rather than EOF. */
struct rfds {
	int *fd;
	int max, n;
};

/* Keeps what fits in r, closes the rest. */
static void take_fds(struct msghdr *m, struct rfds *r)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + sizeof(int) * (size_t)i, sizeof(fd));
			if (r && r->n < r->max)
				r->fd[r->n++] = fd;
			else
				close(fd);
		}
	}
}

static int recv_all(int fd, struct lb_buf *resp, uint64_t deadline, struct rfds *r)
{
	char chunk[16384];
	union {
		char buf[CMSG_SPACE(sizeof(int) * LB_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;

	for (;;) {
		struct iovec iov = { .iov_base = chunk, .iov_len = sizeof(chunk) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		int err;

		if (n > 0)
			take_fds(&m, r);

		if (n > 0) {
			if (resp->len + (size_t)n > LB_CTL_MAX_RESP)
				return -EMSGSIZE;
			lb_buf_append(resp, chunk, (size_t)n);
			if (resp->oom)
				return -ENOMEM;
			continue;
		}
		if (n == 0 || (errno == ECONNRESET && resp->len >= 4))
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

int lb_ctl_call(const char *path, const char *opts, int argc, char *const *argv,
		int timeout_ms, struct lb_buf *out)
{
	return lb_ctl_call_fds(path, opts, argc, argv, timeout_ms, out, NULL, 0, NULL);
}

int lb_ctl_call_fds(const char *path, const char *opts, int argc, char *const *argv,
		    int timeout_ms, struct lb_buf *out, int *fds, int max, int *nfds)
{
	uint64_t deadline = lb_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	struct rfds r = { .fd = fds, .max = fds ? max : 0 };
	struct lb_buf req = { 0 }, resp = { 0 };
	uint32_t status;
	int fd, err;

	if (!path || !argv || !out)
		return -EINVAL;
	err = build_request(opts ? opts : "", argc, argv, &req);
	if (err)
		goto out;
	fd = connect_to(path, deadline);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = send_all(fd, &req, deadline);
	/* The server may have answered and closed early: read what it said. */
	if (err && err != -EPIPE && err != -ECONNRESET) {
		close(fd);
		goto out;
	}
	err = recv_all(fd, &resp, deadline, &r);
	close(fd);
	if (err)
		goto out;
	if (resp.len < 4) {
		err = -EPROTO;
		goto out;
	}
	status = (uint32_t)(unsigned char)resp.data[0] << 24 |
		 (uint32_t)(unsigned char)resp.data[1] << 16 |
		 (uint32_t)(unsigned char)resp.data[2] << 8 | (unsigned char)resp.data[3];
	if (status > 255) {
		err = -EPROTO;
		goto out;
	}
	lb_buf_append(out, resp.data + 4, resp.len - 4);
	err = out->oom ? -ENOMEM : (int)status;
out:
	if (err < 0) {
		for (int i = 0; i < r.n; i++)
			close(r.fd[i]);
		r.n = 0;
	}
	if (nfds)
		*nfds = r.n;
	lb_buf_free(&req);
	lb_buf_free(&resp);
	return err;
}
