/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbd's one event loop: epoll over non-blocking fds (signalfd, timerfd, the
 * control socket and its clients, health-check sockets, child pipes). Each
 * registered fd carries a handler; nothing in a handler may block.
 */
#ifndef LBD_LOOP_H
#define LBD_LOOP_H

#include <stdint.h>

struct lb_loop;

typedef void (*lb_loop_fn)(void *arg, uint32_t events);

/* Embed one of these in the object that owns the fd; it must stay at the
 * same address while the fd is registered. */
struct lb_loop_handler {
	lb_loop_fn fn;
	void *arg;
};

int  lb_loop_new(struct lb_loop **out);
void lb_loop_free(struct lb_loop *l);
/* events: EPOLLIN/EPOLLOUT/...; the handler gets epoll's event mask. */
int  lb_loop_add(struct lb_loop *l, int fd, uint32_t events, struct lb_loop_handler *h);
int  lb_loop_mod(struct lb_loop *l, int fd, uint32_t events, struct lb_loop_handler *h);
int  lb_loop_del(struct lb_loop *l, int fd);
/* Wait up to timeout_ms (-1: forever) and dispatch what is ready. Returns the
 * number of events handled or a negative errno (EINTR is not an error). */
int  lb_loop_run_once(struct lb_loop *l, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds; in microseconds. */
uint64_t lb_now_ms(void);
uint64_t lb_now_us(void);

#endif
