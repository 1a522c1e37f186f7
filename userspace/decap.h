/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `lbd --decap IFACE`: the backends' decapsulation program
 * (bpf/lb_decap.bpf.c) attached to one interface, with the host's addresses
 * in its map, for as long as the process runs.
 */
#ifndef LBD_DECAP_H
#define LBD_DECAP_H

#include <stdbool.h>
#include "lb_abi.h"

struct lb_decap_dp;

enum lb_decap_mode {
	LB_DECAP_AUTO = 0, /* native XDP, else generic XDP */
	LB_DECAP_XDP,
	LB_DECAP_XDP_GENERIC,
	LB_DECAP_TC,
};

/* Load the object; gue_port in host order (0: no GUE). */
int  lb_decap_open(__u16 gue_port, struct lb_decap_dp **out);
void lb_decap_close(struct lb_decap_dp *d);
/* Make decap_addrs the addresses configured on this host now; returns how
 * many there are, or a negative errno. */
int  lb_decap_sync_addrs(struct lb_decap_dp *d);
int  lb_decap_add_addr(struct lb_decap_dp *d, const union lb_addr *a, __u8 family);
int  lb_decap_prog_fd(const struct lb_decap_dp *d, bool tc);
int  lb_decap_stats(const struct lb_decap_dp *d, __u64 out[LB_DECAP_STATS]);

/* The whole mode: attach to ifname, follow the host's addresses once a
 * second, log the counters at exit, detach on SIGTERM/SIGINT. Returns the
 * process exit status. */
int  lb_decap_run(const char *ifname, __u16 gue_port, enum lb_decap_mode mode);

#endif
