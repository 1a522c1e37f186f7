// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The metrics endpoint: a deliberately small HTTP server (one request per
 * connection, then close) that lives in lbd's event loop. See metrics.h.
 *
 * Clients live in a slot array allocated once at open, never in memory freed
 * while the server runs: lb_loop dispatches a batch of epoll events, and a
 * client dropped by the timer (or another handler) may still have an event
 * later in the same batch. Its handler then finds a free slot (fd -1) and
 * returns; a slot is reused round-robin, so a stale event reaching a reused
 * slot within one batch would need all the others to turn over first, and
 * even then only causes a non-blocking read that finds nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "webui.h"

#define MT_ACCEPT_BATCH  64
#define MT_LINGER_MS     2000        /* after the answer: wait for the peer's close */
#define MT_LINGER_BYTES  (64 * 1024) /* discard at most this much meanwhile */

enum mt_state { MT_FREE, MT_READ, MT_WRITE, MT_LINGER };

struct mt_client {
	struct lb_metrics *m;
	struct lb_loop_handler h;
	int fd;
	enum mt_state st;
	char *req;             /* LB_METRICS_MAX_REQ + 1 */
	size_t req_len;
	struct lb_buf out;
	size_t out_off;
	size_t drained;
	uint64_t deadline_ms;  /* reading: since accept; otherwise since progress */
};

struct lb_metrics {
	struct lb_loop *loop;
	struct lb_loop_handler h;
	int fd;
	int spare_fd;          /* given up to accept-and-close on EMFILE */
	struct lb_endpoint addr;
	lb_metrics_render_fn render;
	lb_metrics_render_fn status;
	void *ctx;
	int timeout_ms;
	int max_clients;
	int next_slot;
	struct mt_client *cl;  /* max_clients slots */
};

/* ---- exposition helpers ---- */

static void escape(struct lb_buf *b, const char *s, bool quote)
{
	for (const char *p = s; *p; p++) {
		const char *rep = NULL;

		if (*p == '\\')
			rep = "\\\\";
		else if (*p == '\n')
			rep = "\\n";
		else if (*p == '"' && quote)
			rep = "\\\"";
		if (rep)
			lb_buf_append(b, rep, 2);
		else
			lb_buf_append(b, p, 1);
	}
}

void lb_metrics_label(struct lb_buf *b, const char *value)
{
	lb_buf_append(b, "\"", 1);
	escape(b, value, true);
	lb_buf_append(b, "\"", 1);
}

void lb_metrics_head(struct lb_buf *b, const char *name, const char *type, const char *help)
{
	lb_buf_printf(b, "# HELP %s ", name);
	escape(b, help, false);
	lb_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* ---- clients ---- */

static void client_free(struct mt_client *c)
{
	if (c->st == MT_FREE)
		return;
	lb_loop_del(c->m->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	c->st = MT_FREE;
	free(c->req);
	c->req = NULL;
	lb_buf_free(&c->out);
	c->out_off = 0;
}

static void client_linger(struct mt_client *c)
{
	/* Closing with unread request bytes queued would send an RST that can
	 * destroy the answer in flight: half-close and wait for the peer. */
	shutdown(c->fd, SHUT_WR);
	c->st = MT_LINGER;
	c->drained = 0;
	c->deadline_ms = lb_now_ms() + MT_LINGER_MS;
	if (lb_loop_mod(c->m->loop, c->fd, EPOLLIN | EPOLLRDHUP, &c->h) < 0)
		client_free(c);
}

static void client_flush(struct mt_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->deadline_ms = lb_now_ms() + (uint64_t)c->m->timeout_ms;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->st != MT_WRITE) {
				c->st = MT_WRITE;
				if (lb_loop_mod(c->m->loop, c->fd, EPOLLOUT, &c->h) < 0)
					client_free(c);
			}
			return;
		}
		lb_debug("metrics: client went away: %s", strerror(errno));
		client_free(c);
		return;
	}
	client_linger(c);
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Error";
	}
}

/* The page may run its own inline script and fetch from this server only:
 * nothing else loads, whatever a label or a name in the data holds. */
#define MT_PAGE_HEADERS \
	"Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; " \
	"style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n"

/* The whole response goes into one buffer, then out as fast as the peer
 * takes it. */
static void client_respond(struct mt_client *c, int code, const char *ctype,
			   const struct lb_buf *body, bool head_only)
{
	bool page = ctype && !strncmp(ctype, "text/html", 9);

	const char *text = body && body->len ? body->data : "";
	size_t len = body ? body->len : 0;
	struct lb_buf msg = { 0 };

	if (!body) {
		lb_buf_printf(&msg, "%d %s\n", code, reason(code));
		text = msg.data ? msg.data : "";
		len = msg.len;
		ctype = "text/plain; charset=utf-8";
	}
	free(c->req);
	c->req = NULL;
	lb_buf_free(&c->out);
	lb_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "%s%sX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
		      "Connection: close\r\n\r\n",
		      code, reason(code), ctype, len, code == 405 ? "Allow: GET, HEAD\r\n" : "",
		      page ? MT_PAGE_HEADERS : "");
	if (!head_only)
		lb_buf_append(&c->out, text, len);
	lb_buf_free(&msg);
	if (c->out.oom) {
		lb_err("metrics: out of memory answering a scrape");
		client_free(c);
		return;
	}
	c->out_off = 0;
	c->deadline_ms = lb_now_ms() + (uint64_t)c->m->timeout_ms;
	client_flush(c);
}

static bool token_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A rendered body, or a 500 when the renderer failed. */
static void client_render(struct mt_client *c, lb_metrics_render_fn fn, const char *ctype,
			  bool head)
{
	struct lb_buf body = { 0 };
	int err = fn(c->m->ctx, &body);

	if (err || body.oom) {
		lb_warn("metrics: rendering failed: %s", strerror(err ? -err : ENOMEM));
		client_respond(c, 500, NULL, NULL, head);
	} else {
		client_respond(c, 200, ctype, &body, head);
	}
	lb_buf_free(&body);
}

/* The request line decides everything: headers are only bounded in size. */
static void client_dispatch(struct mt_client *c)
{
	char *line = c->req, *eol = strchr(line, '\n'), *sp1, *sp2, *path;
	struct lb_buf body = { 0 };
	bool head = false;
	int code = 200;

	*eol = '\0';
	if (eol > line && eol[-1] == '\r')
		eol[-1] = '\0';
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || sp1 == line || !sp2 || strchr(sp2 + 1, ' ') ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) || !sp2[8] || sp2[9])
		code = 400;
	else
		*sp1 = *sp2 = '\0';
	for (const char *p = line; code == 200 && *p; p++)
		if (!token_char(*p))
			code = 400;
	if (code == 200 && strcmp(line, "GET") && strcmp(line, "HEAD"))
		code = 405;
	if (code != 200) {
		client_respond(c, code, NULL, NULL, false);
		return;
	}
	head = !strcmp(line, "HEAD");
	path = sp1 + 1;
	path[strcspn(path, "?#")] = '\0';
	if (!strcmp(path, "/")) {
		lb_buf_append(&body, lb_webui_html, lb_webui_html_len());
		client_respond(c, 200, "text/html; charset=utf-8", &body, head);
	} else if (!strcmp(path, "/metrics")) {
		client_render(c, c->m->render, LB_METRICS_CONTENT_TYPE, head);
	} else if (!strcmp(path, "/api/status") && c->m->status) {
		client_render(c, c->m->status, "application/json", head);
	} else {
		client_respond(c, path[0] == '/' ? 404 : 400, NULL, NULL, head);
	}
	lb_buf_free(&body);
}

/* The end of the request head ("\r\n\r\n", or bare "\n\n" from hand-typed
 * requests), searching only where new bytes could complete it. */
static bool head_complete(const struct mt_client *c, size_t old_len)
{
	size_t from = old_len > 3 ? old_len - 3 : 0;

	for (size_t i = from; i + 1 < c->req_len; i++) {
		if (c->req[i] != '\n')
			continue;
		if (c->req[i + 1] == '\n')
			return true;
		if (i + 2 < c->req_len && c->req[i + 1] == '\r' && c->req[i + 2] == '\n')
			return true;
	}
	return false;
}

static void client_on_read(struct mt_client *c)
{
	for (;;) {
		size_t room = LB_METRICS_MAX_REQ - c->req_len, old = c->req_len;
		ssize_t n;

		if (!room) {
			lb_debug("metrics: request head over %d bytes", LB_METRICS_MAX_REQ);
			client_respond(c, 431, NULL, NULL, false);
			return;
		}
		n = recv(c->fd, c->req + c->req_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			lb_debug("metrics: client left before its request was complete");
			client_free(c);
			return;
		}
		c->req_len += (size_t)n;
		c->req[c->req_len] = '\0';
		if (memchr(c->req + old, '\0', (size_t)n)) {
			client_respond(c, 400, NULL, NULL, false);
			return;
		}
		if (head_complete(c, old)) {
			client_dispatch(c);
			return;
		}
	}
}

static void client_on_linger(struct mt_client *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->drained += n > 0 ? (size_t)n : 0;
		if (n <= 0 || c->drained > MT_LINGER_BYTES) {
			client_free(c);
			return;
		}
	}
}

static void client_on_event(void *arg, uint32_t events)
{
	struct mt_client *c = arg;

	switch (c->st) {
	case MT_FREE:
		return; /* a stale event of a client dropped earlier in this batch */
	case MT_READ:
		/* read first even on HUP: the whole request may be queued */
		client_on_read(c);
		return;
	case MT_WRITE:
		if (events & (EPOLLERR | EPOLLHUP))
			client_free(c);
		else if (events & EPOLLOUT)
			client_flush(c);
		return;
	case MT_LINGER:
		client_on_linger(c);
		return;
	}
}

static struct mt_client *slot_get(struct lb_metrics *m)
{
	for (int i = 0; i < m->max_clients; i++) {
		int k = (m->next_slot + i) % m->max_clients;

		if (m->cl[k].st == MT_FREE) {
			m->next_slot = (k + 1) % m->max_clients;
			return &m->cl[k];
		}
	}
	return NULL;
}

static void reject_busy(int fd)
{
	static const char busy[] =
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n";

	if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		lb_debug("metrics: turning a client away: %s", strerror(errno));
	close(fd);
}

static void accept_one(struct lb_metrics *m, int fd)
{
	struct mt_client *c = slot_get(m);

	if (!c) {
		lb_warn("metrics: %d clients already, turning one away", m->max_clients);
		reject_busy(fd);
		return;
	}
	c->req = malloc(LB_METRICS_MAX_REQ + 1);
	if (!c->req) {
		lb_err("metrics: out of memory");
		close(fd);
		return;
	}
	c->req_len = 0;
	c->fd = fd;
	c->st = MT_READ;
	c->deadline_ms = lb_now_ms() + (uint64_t)m->timeout_ms;
	if (lb_loop_add(m->loop, fd, EPOLLIN | EPOLLRDHUP, &c->h) < 0) {
		lb_warn("metrics: epoll add: %s", strerror(errno));
		c->st = MT_FREE;
		c->fd = -1;
		free(c->req);
		c->req = NULL;
		close(fd);
	}
}

static void on_listen(void *arg, uint32_t events)
{
	struct lb_metrics *m = arg;

	(void)events;
	for (int i = 0; i < MT_ACCEPT_BATCH; i++) {
		int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			accept_one(m, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if ((errno == EMFILE || errno == ENFILE) && m->spare_fd >= 0) {
			/* free the spare to take the pending client and close it, or
			 * level-triggered epoll spins on the listener */
			lb_warn("metrics: out of file descriptors, dropping a client");
			close(m->spare_fd);
			fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			m->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			break;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			lb_warn("metrics: accept: %s", strerror(errno));
		break;
	}
}

/* ---- server ---- */

static int server_bind(struct lb_metrics *m, const struct lb_endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t len = lb_endpoint_sockaddr(ep, &ss);
	char name[LB_ADDRSTRLEN];
	int one = 1, err;

	lb_endpoint_str(ep, name, sizeof(name));
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		err = -errno;
		lb_err("metrics: socket for %s: %s", name, strerror(-err));
		return err;
	}
	/* a restarted lbd must not wait for TIME_WAIT of the last scrapes */
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, (struct sockaddr *)&ss, len) || listen(m->fd, 128)) {
		err = -errno;
		lb_err("metrics: cannot listen on %s: %s", name, strerror(-err));
		return err;
	}
	len = sizeof(ss);
	if (getsockname(m->fd, (struct sockaddr *)&ss, &len)) {
		err = -errno;
		lb_err("metrics: getsockname: %s", strerror(-err));
		return err;
	}
	m->addr = *ep;
	m->addr.port = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port;
	return 0;
}

int lb_metrics_open(struct lb_loop *loop, const struct lb_metrics_opts *o, struct lb_metrics **out)
{
	char name[LB_ADDRSTRLEN];
	struct lb_metrics *m;
	int err;

	if (!loop || !o || !o->render || !out ||
	    (o->addr.family != LB_AF_INET && o->addr.family != LB_AF_INET6)) {
		lb_err("metrics: lb_metrics_open needs a loop, an address and a renderer");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		lb_err("metrics: out of memory");
		return -ENOMEM;
	}
	m->loop = loop;
	m->fd = -1;
	m->render = o->render;
	m->status = o->status;
	m->ctx = o->ctx;
	m->timeout_ms = o->client_timeout_ms > 0 ? o->client_timeout_ms : LB_METRICS_TIMEOUT_MS;
	m->max_clients = o->max_clients > 0 ? o->max_clients : LB_METRICS_MAX_CLIENTS;
	m->h = (struct lb_loop_handler){ on_listen, m };
	m->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	m->cl = calloc((size_t)m->max_clients, sizeof(*m->cl));
	if (!m->cl) {
		lb_err("metrics: out of memory");
		err = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < m->max_clients; i++) {
		m->cl[i].m = m;
		m->cl[i].fd = -1;
		m->cl[i].h = (struct lb_loop_handler){ client_on_event, &m->cl[i] };
	}
	err = server_bind(m, &o->addr);
	if (err)
		goto fail;
	err = lb_loop_add(loop, m->fd, EPOLLIN, &m->h);
	if (err) {
		lb_err("metrics: epoll add: %s", strerror(-err));
		goto fail;
	}
	lb_info("metrics: serving http://%s/metrics", lb_endpoint_str(&m->addr, name, sizeof(name)));
	*out = m;
	return 0;
fail:
	if (m->fd >= 0)
		close(m->fd);
	if (m->spare_fd >= 0)
		close(m->spare_fd);
	free(m->cl);
	free(m);
	return err;
}

void lb_metrics_close(struct lb_metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->max_clients; i++)
		client_free(&m->cl[i]);
	lb_loop_del(m->loop, m->fd);
	close(m->fd);
	if (m->spare_fd >= 0)
		close(m->spare_fd);
	free(m->cl);
	free(m);
}

void lb_metrics_tick(struct lb_metrics *m)
{
	uint64_t now = lb_now_ms();

	if (!m)
		return;
	for (int i = 0; i < m->max_clients; i++) {
		struct mt_client *c = &m->cl[i];

		if (c->st == MT_FREE || now < c->deadline_ms)
			continue;
		if (c->st != MT_LINGER)
			lb_debug("metrics: dropping a client idle for %d ms", m->timeout_ms);
		client_free(c);
	}
}

void lb_metrics_addr(const struct lb_metrics *m, struct lb_endpoint *out)
{
	*out = m->addr;
}
