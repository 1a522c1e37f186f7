/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The sockets another process serves a port with, duplicated into lbd
 * (pidfd_getfd), so that the data path can hand it connections
 * (forward local: bpf/lb_sk.bpf.c). Any program qualifies, as it is: no
 * socket passing, no library. Needs the right to ptrace the process
 * (root, or the same user where the Yama scope allows it).
 */
#ifndef LBD_PROCSOCK_H
#define LBD_PROCSOCK_H

#include <stdint.h>
#include <sys/types.h>

#define LB_PROCSOCK_MAX  4    /* v4 and v6, TCP and UDP */
#define LB_PROCSOCK_SCAN 4096 /* descriptor numbers looked at */

/* Listening TCP and unconnected UDP sockets of pid (IPv4 or IPv6) bound
 * to port (host order): up to max new fds in fds, each socket once.
 * Returns how many, or a negative errno (-ESRCH: no such process,
 * -EPERM: not allowed to look into it). Looks at descriptors below
 * LB_PROCSOCK_SCAN. */
int lb_procsock_find(pid_t pid, uint16_t port, int *fds, int max);

#endif
