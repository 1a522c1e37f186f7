// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define LB_LOOP_BATCH 64

struct lb_loop {
	int epfd;
};

int lb_loop_new(struct lb_loop **out)
{
	struct lb_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	*out = l;
	return 0;
}

void lb_loop_free(struct lb_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

static int ctl(struct lb_loop *l, int op, int fd, uint32_t events, struct lb_loop_handler *h)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, op, fd, &ev) ? -errno : 0;
}

int lb_loop_add(struct lb_loop *l, int fd, uint32_t events, struct lb_loop_handler *h)
{
	return ctl(l, EPOLL_CTL_ADD, fd, events, h);
}

int lb_loop_mod(struct lb_loop *l, int fd, uint32_t events, struct lb_loop_handler *h)
{
	return ctl(l, EPOLL_CTL_MOD, fd, events, h);
}

int lb_loop_del(struct lb_loop *l, int fd)
{
	return ctl(l, EPOLL_CTL_DEL, fd, 0, NULL);
}

int lb_loop_run_once(struct lb_loop *l, int timeout_ms)
{
	struct epoll_event evs[LB_LOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, LB_LOOP_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct lb_loop_handler *h = evs[i].data.ptr;

		if (h && h->fn)
			h->fn(h->arg, evs[i].events);
	}
	return n;
}

uint64_t lb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t lb_now_ms(void)
{
	return lb_now_us() / 1000;
}
