/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Least privilege: once its sockets are bound, lbd keeps only the
 * capabilities its data path, health checks, proxy and workers need. */
#ifndef LBD_PRIVS_H
#define LBD_PRIVS_H

#include <stdbool.h>

struct lb_privs_need {
	bool workers; /* supervise processes: setuid/setgid, signal them */
	bool local;   /* some worker serves a VIP (forward local): take its
	               * instances' sockets, pidfd_getfd across users */
};

/* Reduces the permitted, effective and bounding sets of the calling thread
 * (call it before any other thread exists, so they all inherit the result)
 * and clears the inheritable and ambient sets. A process that holds none of
 * the dropped capabilities (a plain user) has nothing to do and returns 0.
 * Logs what it kept; returns 0 or a negative errno (logged). */
int lb_privs_drop(const struct lb_privs_need *need);

/* The capabilities lb_privs_drop keeps, as text ("cap_bpf,cap_net_admin..."),
 * for messages and tests. */
const char *lb_privs_describe(const struct lb_privs_need *need, char *buf, int len);

#endif
