// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Health checks: see health.h. */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "health.h"
#include "log.h"

#define HC_RESP_MAX 16384 /* enough for a status line and a small body */
/* A SYN counts as unanswered once this many feeds (seconds) have passed
 * without an answer: its client has retransmitted it twice by then (1 s,
 * 3 s). One feed took out a backend for a SYN its full accept queue dropped
 * once, a second before the retransmit went through; NGINX, the model of
 * max_fails, counts only a connect that timed out. */
#define SYN_LATE_TICKS 3

enum stage { ST_IDLE, ST_CONNECT, ST_SEND, ST_RECV };

struct target {
	struct lb_health *h;
	char vip[LB_CONF_NAME_MAX];
	struct lb_endpoint ep;
	struct lb_health_conf hc;
	__u32 max_fails;
	__u64 fail_timeout_ms;
	bool src_set;
	union lb_addr src;

	bool active_up, passive_up, provisional, keep, flipped;
	__u32 ok_run, fail_run;
	__u64 checks, failures, passive_fails, changes;
	__u64 last_check_ms, last_change_ms;
	char reason[160];

	/* the check in flight */
	enum stage stage;
	int fd;
	struct lb_loop_handler lh;
	__u64 started_ms, deadline_ms, next_ms; /* next_ms 0: no check scheduled */
	__u64 started_us, latency_us;
	char *req;
	size_t req_len, req_off;
	char *resp;
	size_t resp_len;

	/* passive: failures in the window that began at pwin_ms */
	__u64 pwin_ms, pdown_until;
	__u32 pcount;
	bool syn_base;
	__u32 syn_id;
	__u64 syn_hist[SYN_LATE_TICKS]; /* SYNs sent, at each of the last calls */
	unsigned int syn_pos;            /* the oldest of syn_hist */
	__u64 rst_prev, syn_counted;
	__u64 up_since_ms;

	struct target *next_dead;
	int dead_age;
};

struct lb_health {
	struct lb_loop *loop;
	lb_health_fn fn;
	void *ctx;
	int tfd;
	struct lb_loop_handler tlh;
	struct target **t;
	int n;
	/* Removed targets wait two timer runs before they are freed: an event
	 * for them may still sit in the loop's current epoll batch. */
	struct target *dead;
	__u64 rng;
	/* health_concurrency: checks in flight at once (0: no limit); due
	 * checks past it wait for a slot, oldest-first by index rotation */
	int inflight, max_inflight, rr;
};

static __u64 rnd(struct lb_health *h, __u64 bound)
{
	/* xorshift64*: spreading checks needs no more */
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return bound ? (h->rng * 2685821657736338717ull) % (bound + 1) : 0;
}

static bool is_up(const struct target *t)
{
	return t->active_up && t->passive_up;
}

static const char *ep_str(const struct target *t, char *buf, size_t len)
{
	return lb_endpoint_str(&t->ep, buf, len);
}

static bool full(const struct lb_health *h)
{
	return h->max_inflight && h->inflight >= h->max_inflight;
}

static void arm(struct lb_health *h)
{
	__u64 next = UINT64_MAX;
	struct itimerspec its = { 0 };
	bool wait_slot = full(h); /* a finishing check re-arms */

	for (int i = 0; i < h->n; i++) {
		const struct target *t = h->t[i];

		if (t->stage != ST_IDLE && t->deadline_ms < next)
			next = t->deadline_ms;
		if (t->stage == ST_IDLE && t->next_ms && t->next_ms < next && !wait_slot)
			next = t->next_ms;
		if (!t->passive_up && t->pdown_until < next)
			next = t->pdown_until;
	}
	if (h->dead && next == UINT64_MAX)
		next = lb_now_ms() + 1000;
	if (next != UINT64_MAX) {
		/* 5 ms slots: many targets, few wake-ups (each scans them all) */
		next = (next / 5 + 1) * 5;
		its.it_value.tv_sec = (time_t)(next / 1000);
		its.it_value.tv_nsec = (long)(next % 1000) * 1000000;
	}
	if (timerfd_settime(h->tfd, TFD_TIMER_ABSTIME, &its, NULL))
		lb_err("health: timerfd_settime: %s", strerror(errno));
}

/* Logs and reports a change of the overall state; `was` is the state before. */
static void changed(struct target *t, bool was, const char *why)
{
	struct lb_health *h = t->h;
	char ep[LB_ADDRSTRLEN];
	bool now_up = is_up(t);

	if (now_up == was)
		return;
	t->changes++;
	t->last_change_ms = lb_now_ms();
	if (now_up)
		t->up_since_ms = t->last_change_ms;
	lb_info("vip %s backend %s %s: %s", t->vip, ep_str(t, ep, sizeof(ep)),
		now_up ? "up" : "down", why);
	/* last: the callback may re-sync the engine */
	if (h->fn)
		h->fn(h->ctx, t->vip, &t->ep, now_up, why);
}

static void stop_check(struct target *t)
{
	if (t->stage != ST_IDLE && t->h->inflight-- == t->h->max_inflight)
		arm(t->h); /* a slot is free: the checks waiting for one go now */
	if (t->fd >= 0) {
		lb_loop_del(t->h->loop, t->fd);
		close(t->fd);
		t->fd = -1;
	}
	free(t->req);
	free(t->resp);
	t->req = t->resp = NULL;
	t->req_len = t->req_off = t->resp_len = 0;
	t->stage = ST_IDLE;
}

static void schedule(struct target *t, __u64 now)
{
	__u64 next = t->started_ms + t->hc.interval_ms + rnd(t->h, t->hc.jitter_ms);

	t->next_ms = next > now ? next : now;
}

/* One check is over. */
static void finish(struct target *t, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish(struct target *t, bool ok, const char *fmt, ...)
{
	__u64 now = lb_now_ms();
	bool was = is_up(t), flip = false;
	char why[sizeof(t->reason) + 64];
	va_list ap;

	stop_check(t);
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
	t->checks++;
	t->last_check_ms = now;
	t->latency_us = lb_now_us() - t->started_us;
	schedule(t, now);
	if (ok) {
		t->ok_run++;
		t->fail_run = 0;
		t->provisional = false;
		if (!t->active_up && t->ok_run >= t->hc.rise) {
			t->active_up = true;
			flip = true;
		}
	} else {
		t->failures++;
		t->fail_run++;
		t->ok_run = 0;
		if (t->active_up && (t->fail_run >= t->hc.fall || t->provisional)) {
			t->active_up = false;
			t->provisional = false;
			flip = true;
		}
	}
	if (!flip)
		return;
	if (ok)
		snprintf(why, sizeof(why), "%s, %u consecutive success%s", t->reason, t->ok_run,
			 t->ok_run == 1 ? "" : "es");
	else
		snprintf(why, sizeof(why), "%s, %u consecutive failure%s%s", t->reason, t->fail_run,
			 t->fail_run == 1 ? "" : "s",
			 t->fail_run < t->hc.fall ? " (first check)" : "");
	arm(t->h);
	changed(t, was, why);
}

static void status_ranges(const struct lb_health_conf *hc, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < hc->nstatus && o < len; i++) {
		const struct lb_status_range *r = &hc->status[i];
		int w = r->lo == r->hi ? snprintf(buf + o, len - o, "%s%u", i ? "," : "", r->lo)
				       : snprintf(buf + o, len - o, "%s%u-%u", i ? "," : "", r->lo, r->hi);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* Judges what an http check read so far; returns false while it needs more. */
static bool http_judge(struct target *t, bool eof)
{
	const struct lb_health_conf *hc = &t->hc;
	char *r = t->resp, exp[64];
	char *eol = memchr(r, '\n', t->resp_len);
	unsigned int code = 0;
	bool status_ok = false;
	const char *body;

	if (!eol) {
		if (eof || t->resp_len >= HC_RESP_MAX)
			finish(t, false, "http: %s before a status line",
			       eof ? "connection closed" : "too much data");
		return eof || t->resp_len >= HC_RESP_MAX;
	}
	if (t->resp_len < 12 || strncmp(r, "HTTP/1.", 7) || r[8] != ' ' ||
	    sscanf(r + 9, "%3u", &code) != 1 || code < 100) {
		finish(t, false, "http: malformed status line");
		return true;
	}
	for (int i = 0; i < hc->nstatus; i++)
		status_ok |= code >= hc->status[i].lo && code <= hc->status[i].hi;
	if (!status_ok) {
		status_ranges(hc, exp, sizeof(exp));
		finish(t, false, "http status %u (expected %s)", code, exp);
		return true;
	}
	if (!hc->expect[0]) {
		finish(t, true, "http status %u", code);
		return true;
	}
	body = memmem(r, t->resp_len, "\r\n\r\n", 4);
	body = body ? body + 4 : NULL;
	if (body && memmem(body, t->resp_len - (size_t)(body - r), hc->expect, strlen(hc->expect))) {
		finish(t, true, "http status %u, body has \"%s\"", code, hc->expect);
		return true;
	}
	if (eof || t->resp_len >= HC_RESP_MAX) {
		finish(t, false, "http status %u but the body lacks \"%s\"", code, hc->expect);
		return true;
	}
	return false;
}

static void udp_judge(struct target *t, size_t n)
{
	if (t->hc.expect[0] && !memmem(t->resp, n, t->hc.expect, strlen(t->hc.expect)))
		finish(t, false, "udp reply of %zu bytes lacks \"%s\"", n, t->hc.expect);
	else
		finish(t, true, "udp reply of %zu bytes", n);
}

static void on_recv(struct target *t)
{
	for (;;) {
		size_t room;
		ssize_t n;

		if (!t->resp && !(t->resp = malloc(HC_RESP_MAX + 1))) {
			finish(t, false, "out of memory");
			return;
		}
		room = HC_RESP_MAX - t->resp_len;
		n = recv(t->fd, t->resp + t->resp_len, room, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n < 0) {
			if (t->hc.type == LB_HC_UDP && errno == ECONNREFUSED)
				finish(t, false, "udp port unreachable");
			else
				finish(t, false, "%s: recv: %s", lb_hc_type_name(t->hc.type),
				       strerror(errno));
			return;
		}
		if (t->hc.type == LB_HC_UDP) {
			udp_judge(t, (size_t)n);
			return;
		}
		t->resp_len += (size_t)n;
		t->resp[t->resp_len] = '\0';
		if (http_judge(t, n == 0))
			return;
	}
}

static void on_send(struct target *t)
{
	while (t->req_off < t->req_len) {
		ssize_t n = send(t->fd, t->req + t->req_off, t->req_len - t->req_off, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			lb_loop_mod(t->h->loop, t->fd, EPOLLOUT, &t->lh);
			t->stage = ST_SEND;
			return;
		}
		if (n < 0) {
			finish(t, false, "%s: send: %s", lb_hc_type_name(t->hc.type), strerror(errno));
			return;
		}
		t->req_off += (size_t)n;
	}
	t->stage = ST_RECV;
	if (lb_loop_mod(t->h->loop, t->fd, EPOLLIN, &t->lh))
		finish(t, false, "cannot watch the check socket");
}

static void on_event(void *arg, uint32_t events)
{
	struct target *t = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	switch (t->stage) {
	case ST_CONNECT:
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		if (err) {
			finish(t, false, "connect: %s", strerror(err));
			break;
		}
		if (!(events & EPOLLOUT))
			break;
		if (t->hc.type == LB_HC_TCP) {
			finish(t, true, "tcp connect ok");
			break;
		}
		on_send(t);
		break;
	case ST_SEND:
		on_send(t);
		break;
	case ST_RECV:
		on_recv(t);
		break;
	case ST_IDLE:
		break;
	}
	/* No arm(): a check that ends only moves its deadline later, and the
	 * timer, set for the earliest, then finds nothing due and re-arms. */
}

static int check_addr(const struct target *t, struct sockaddr_storage *ss, socklen_t *len,
		      bool src)
{
	__u16 port = htons(t->hc.port ? t->hc.port : ntohs(t->ep.port));
	const union lb_addr *a = src ? &t->src : &t->ep.addr;

	memset(ss, 0, sizeof(*ss));
	if (t->ep.family == LB_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = src ? 0 : port;
		memcpy(&s4->sin_addr, a, 4);
		*len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = src ? 0 : port;
		memcpy(&s6->sin6_addr, a, 16);
		*len = sizeof(*s6);
	}
	return 0;
}

static int build_request(struct target *t)
{
	struct lb_endpoint cep = t->ep;
	char host[LB_CONF_STR_MAX + LB_ADDRSTRLEN];
	int n;

	if (t->hc.port)
		cep.port = htons(t->hc.port);
	if (t->hc.host[0])
		snprintf(host, sizeof(host), "%s", t->hc.host);
	else
		lb_endpoint_str(&cep, host, sizeof(host));
	n = asprintf(&t->req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lbd-health\r\n"
		     "Accept: */*\r\nConnection: close\r\n\r\n", t->hc.method, t->hc.uri, host);
	if (n < 0) {
		t->req = NULL;
		return -ENOMEM;
	}
	t->req_len = (size_t)n;
	t->req_off = 0;
	return 0;
}

static void start_check(struct target *t, __u64 now)
{
	bool udp = t->hc.type == LB_HC_UDP;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	t->started_ms = now;
	t->started_us = lb_now_us();
	t->deadline_ms = now + t->hc.timeout_ms;
	t->next_ms = 0;
	t->stage = ST_CONNECT;
	t->h->inflight++;
	fd = socket(t->ep.family == LB_AF_INET ? AF_INET : AF_INET6,
		    (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		finish(t, false, "socket: %s", strerror(errno));
		return;
	}
	t->fd = fd;
	if (t->src_set) {
		check_addr(t, &ss, &len, true);
		/* not local (yet): the kernel's choice of source still checks */
		if (bind(fd, (struct sockaddr *)&ss, len))
			lb_debug("vip %s: health check source: %s", t->vip, strerror(errno));
	}
	if (t->hc.type == LB_HC_HTTP && build_request(t)) {
		finish(t, false, "out of memory");
		return;
	}
	check_addr(t, &ss, &len, false);
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		finish(t, false, "connect: %s", strerror(errno));
		return;
	}
	if (udp) {
		const char *p = t->hc.send;

		if (send(fd, p, strlen(p), 0) < 0) {
			finish(t, false, "udp send: %s", errno == ECONNREFUSED ?
			       "port unreachable" : strerror(errno));
			return;
		}
		t->stage = ST_RECV;
	}
	if (lb_loop_add(t->h->loop, fd, udp ? EPOLLIN : EPOLLOUT, &t->lh))
		finish(t, false, "cannot watch the check socket");
}

static void passive_recover(struct target *t, __u64 now)
{
	bool was = is_up(t);
	char why[sizeof(t->reason)];

	t->passive_up = true;
	/* NGINX: the next failure within fail_timeout takes it down again */
	t->pcount = t->max_fails ? t->max_fails - 1 : 0;
	t->pwin_ms = now;
	snprintf(why, sizeof(why), "fail_timeout of %llu ms elapsed, trying it again",
		 (unsigned long long)t->fail_timeout_ms);
	snprintf(t->reason, sizeof(t->reason), "%s", why);
	changed(t, was, why);
}

static void on_timer(void *arg, uint32_t events)
{
	struct lb_health *h = arg;
	__u64 exp, now = lb_now_ms();

	(void)events;
	if (read(h->tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		lb_warn("health: timerfd read: %s", strerror(errno));
	for (struct target **pp = &h->dead; *pp;) {
		struct target *d = *pp;

		if (d->dead_age++ < 1) {
			pp = &d->next_dead;
			continue;
		}
		*pp = d->next_dead;
		free(d);
	}
	/* by index: a state callback may re-sync and replace the array; from a
	 * rotating start, so under health_concurrency no target starves */
	h->rr = h->n ? (h->rr + 1) % h->n : 0;
	for (int k = 0; k < h->n; k++) {
		struct target *t = h->t[(h->rr + k) % h->n];

		if (t->stage != ST_IDLE && now >= t->deadline_ms)
			finish(t, false, "%s: timeout after %llu ms%s", lb_hc_type_name(t->hc.type),
			       (unsigned long long)t->hc.timeout_ms,
			       t->stage == ST_CONNECT ? " connecting" : " waiting for a reply");
		else if (t->stage == ST_IDLE && t->next_ms && now >= t->next_ms && !full(h))
			start_check(t, now);
		else if (!t->passive_up && now >= t->pdown_until)
			passive_recover(t, now);
	}
	arm(h);
}

void lb_health_set_concurrency(struct lb_health *h, int max)
{
	h->max_inflight = max > 0 ? max : 0;
	arm(h);
}

int lb_health_inflight(const struct lb_health *h)
{
	return h->inflight;
}

int lb_health_new(struct lb_loop *loop, lb_health_fn fn, void *ctx, struct lb_health **out)
{
	struct lb_health *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->fn = fn;
	h->ctx = ctx;
	h->rng = lb_now_ms() ^ ((__u64)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->tfd < 0) {
		err = -errno;
		lb_err("health: timerfd_create: %s", strerror(errno));
		free(h);
		return err;
	}
	h->tlh = (struct lb_loop_handler){ on_timer, h };
	err = lb_loop_add(loop, h->tfd, EPOLLIN, &h->tlh);
	if (err) {
		lb_err("health: cannot watch the timer: %s", strerror(-err));
		close(h->tfd);
		free(h);
		return err;
	}
	*out = h;
	return 0;
}

static void target_bury(struct target *t)
{
	stop_check(t);
	t->lh.fn = NULL; /* the loop skips it from now on */
	t->next_ms = 0;
	t->dead_age = 0;
	t->next_dead = t->h->dead;
	t->h->dead = t;
}

void lb_health_free(struct lb_health *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->n; i++) {
		stop_check(h->t[i]);
		free(h->t[i]);
	}
	while (h->dead) {
		struct target *d = h->dead;

		h->dead = d->next_dead;
		free(d);
	}
	free(h->t);
	lb_loop_del(h->loop, h->tfd);
	close(h->tfd);
	free(h);
}

void lb_health_effective(const struct lb_health_conf *vip, const struct lb_backend_conf *be,
			 struct lb_health_conf *out)
{
	*out = *vip;
	if (be->health_check != LB_HC_INHERIT)
		out->type = be->health_check;
}

static struct target *find(const struct lb_health *h, const char *vip, const struct lb_endpoint *ep)
{
	for (int i = 0; i < h->n; i++)
		if (lb_endpoint_eq(&h->t[i]->ep, ep) && !strcmp(h->t[i]->vip, vip))
			return h->t[i];
	return NULL;
}

static void target_conf(struct target *t, const struct lb_health_target *c, __u64 now)
{
	bool had = t->hc.type != LB_HC_NONE;

	/* a check in flight for another type or port would be judged wrong */
	if (t->stage != ST_IDLE && (t->hc.type != c->hc.type || t->hc.port != c->hc.port)) {
		stop_check(t);
		t->next_ms = now;
	}
	t->hc = c->hc;
	if (t->hc.rise < 1)
		t->hc.rise = 1;
	if (t->hc.fall < 1)
		t->hc.fall = 1;
	t->max_fails = c->max_fails;
	t->fail_timeout_ms = c->fail_timeout_ms;
	t->src_set = c->src_set;
	t->src = c->src;
	if (t->hc.type == LB_HC_NONE) {
		stop_check(t);
		t->next_ms = 0;
		t->active_up = true;
		t->ok_run = t->fail_run = 0;
	} else if (!had) {
		/* spread the first checks of many targets over the jitter */
		t->next_ms = now + rnd(t->h, t->hc.jitter_ms);
	} else if (t->stage == ST_IDLE && t->next_ms > now + t->hc.interval_ms + t->hc.jitter_ms) {
		t->next_ms = now + rnd(t->h, t->hc.jitter_ms);
	}
	if (!t->max_fails && !t->passive_up) {
		t->passive_up = true;
		t->pcount = 0;
	}
}

int lb_health_sync(struct lb_health *h, const struct lb_health_target *c, int n)
{
	struct target **nt = calloc(n ? (size_t)n : 1, sizeof(*nt));
	__u64 now = lb_now_ms();
	int k = 0, err = 0;
	bool was;

	if (!nt)
		return -ENOMEM;
	for (int i = 0; i < h->n; i++)
		h->t[i]->keep = false;
	for (int i = 0; i < n; i++) {
		struct target *t = find(h, c[i].vip, &c[i].ep);

		if (t && t->keep)
			continue; /* listed twice */
		if (!t) {
			t = calloc(1, sizeof(*t));
			if (!t) {
				err = -ENOMEM;
				break;
			}
			t->h = h;
			snprintf(t->vip, sizeof(t->vip), "%s", c[i].vip);
			t->ep = c[i].ep;
			t->fd = -1;
			t->lh = (struct lb_loop_handler){ on_event, t };
			t->active_up = t->passive_up = t->provisional = true;
			t->up_since_ms = now;
			t->hc.type = LB_HC_NONE;
			snprintf(t->reason, sizeof(t->reason), "not checked yet");
		}
		t->keep = true;
		was = is_up(t);
		target_conf(t, &c[i], now);
		/* a check that went away no longer holds the target down */
		t->flipped = is_up(t) != was;
		nt[k++] = t;
	}
	if (err) {
		/* keep the old set; drop what was new */
		for (int i = 0; i < k; i++)
			if (find(h, nt[i]->vip, &nt[i]->ep) != nt[i])
				target_bury(nt[i]);
		free(nt);
		return err;
	}
	for (int i = 0; i < h->n; i++)
		if (!h->t[i]->keep)
			target_bury(h->t[i]);
	free(h->t);
	h->t = nt;
	h->n = k;
	arm(h);
	/* by index, last: a callback may sync again */
	for (int i = 0; i < h->n; i++) {
		struct target *t = h->t[i];

		if (!t->flipped)
			continue;
		t->flipped = false;
		snprintf(t->reason, sizeof(t->reason), "the check that held it down was removed");
		changed(t, !is_up(t), t->reason);
	}
	return 0;
}

void lb_health_report_fails(struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
			    unsigned int n)
{
	struct target *t = find(h, vip, ep);
	__u64 now = lb_now_ms();
	char why[sizeof(t->reason)];
	bool was;

	if (!t || !n || !t->max_fails)
		return;
	t->passive_fails += n;
	if (!t->passive_up)
		return;
	if (!t->pwin_ms || now - t->pwin_ms >= t->fail_timeout_ms) {
		t->pwin_ms = now;
		t->pcount = 0;
	}
	t->pcount += n;
	if (t->pcount < t->max_fails)
		return;
	was = is_up(t);
	t->passive_up = false;
	t->pdown_until = now + t->fail_timeout_ms;
	snprintf(why, sizeof(why), "%u failed connection%s within %llu ms (max_fails %u), "
		 "out for fail_timeout", t->pcount, t->pcount == 1 ? "" : "s",
		 (unsigned long long)t->fail_timeout_ms, t->max_fails);
	snprintf(t->reason, sizeof(t->reason), "%s", why);
	arm(h);
	changed(t, was, why);
}

void lb_health_feed_syn(struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
			__u32 counters_id, __u64 syn, __u64 synack, __u64 rst_syn)
{
	struct target *t = find(h, vip, ep);
	__u64 answered = synack + rst_syn, oldest, outstanding, late, rst;

	if (!t)
		return;
	oldest = t->syn_hist[t->syn_pos];
	/* counters that went back were reset (another backend in the slot) */
	if (!t->syn_base || t->syn_id != counters_id ||
	    syn < t->syn_hist[(t->syn_pos + SYN_LATE_TICKS - 1) % SYN_LATE_TICKS] ||
	    rst_syn < t->rst_prev) {
		t->syn_base = true;
		t->syn_id = counters_id;
		for (int i = 0; i < SYN_LATE_TICKS; i++)
			t->syn_hist[i] = syn;
		t->syn_pos = 0;
		t->rst_prev = rst_syn;
		/* what is unanswered now is someone else's business */
		t->syn_counted = syn > answered ? syn - answered : 0;
		return;
	}
	/* SYNs sent SYN_LATE_TICKS feeds ago or before, and not answered
	 * since (a lower bound: later SYNs may have taken some of the
	 * answers); those reported before and answered late since are no
	 * longer counted */
	outstanding = oldest > answered ? oldest - answered : 0;
	if (t->syn_counted > outstanding)
		t->syn_counted = outstanding;
	late = outstanding - t->syn_counted;
	t->syn_counted += late;
	rst = rst_syn - t->rst_prev;
	t->syn_hist[t->syn_pos] = syn;
	t->syn_pos = (t->syn_pos + 1) % SYN_LATE_TICKS;
	t->rst_prev = rst_syn;
	if (late + rst)
		lb_debug("vip %s: backend: %llu unanswered and %llu refused SYNs", t->vip,
			 (unsigned long long)late, (unsigned long long)rst);
	lb_health_report_fails(h, vip, ep, (unsigned int)(late + rst > UINT32_MAX ? UINT32_MAX
							   : late + rst));
}

bool lb_health_up(const struct lb_health *h, const char *vip, const struct lb_endpoint *ep)
{
	const struct target *t = h ? find(h, vip, ep) : NULL;

	return !t || is_up(t);
}

int lb_health_status(const struct lb_health *h, const char *vip, const struct lb_endpoint *ep,
		     struct lb_health_status *out)
{
	const struct target *t = h ? find(h, vip, ep) : NULL;

	if (!t)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->up = is_up(t);
	out->active_up = t->active_up;
	out->passive_up = t->passive_up;
	out->checking = t->hc.type != LB_HC_NONE;
	out->ok_run = t->ok_run;
	out->fail_run = t->fail_run;
	out->checks = t->checks;
	out->failures = t->failures;
	out->passive_fails = t->passive_fails;
	out->changes = t->changes;
	out->last_check_ms = t->last_check_ms;
	out->last_change_ms = t->last_change_ms;
	out->latency_us = t->latency_us;
	out->up_since_ms = t->up_since_ms;
	snprintf(out->reason, sizeof(out->reason), "%s", t->reason);
	return 0;
}

int lb_health_count(const struct lb_health *h)
{
	return h ? h->n : 0;
}
