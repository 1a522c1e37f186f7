// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd --decap. The program stays attached while this process runs and no
 * longer: XDP through a BPF link the process holds (the kernel detaches it
 * when the process ends, even by kill -9), TC detached at exit. A backend
 * without the process gets tunnel packets it cannot read, exactly as with
 * the tunnel module unloaded, and a stale program never decapsulates for
 * addresses that are gone. The addresses follow the host's once a second
 * (a VIP added to lo is served within that).
 */
#include "decap.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "log.h"
#include "lb_decap.skel.h"

#define DECAP_TC_HANDLE 0x1be /* not lbd's balancer filter (0x1bd) */
#define DECAP_TC_PRIO   1

struct lb_decap_dp {
	struct lb_decap *skel;
};

int lb_decap_open(__u16 gue_port, struct lb_decap_dp **out)
{
	struct lb_decap_cfg cfg = { .gue_port = htons(gue_port) };
	struct lb_decap_dp *d = calloc(1, sizeof(*d));
	__u32 zero = 0;
	int err;

	if (!d)
		return -ENOMEM;
	d->skel = lb_decap__open_and_load();
	if (!d->skel) {
		err = -errno;
		free(d);
		return err ? err : -EINVAL;
	}
	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.decap_cfg), &zero, &cfg, 0)) {
		err = -errno;
		lb_decap_close(d);
		return err;
	}
	*out = d;
	return 0;
}

void lb_decap_close(struct lb_decap_dp *d)
{
	if (!d)
		return;
	lb_decap__destroy(d->skel);
	free(d);
}

int lb_decap_prog_fd(const struct lb_decap_dp *d, bool tc)
{
	return bpf_program__fd(tc ? d->skel->progs.lb_decap_tc : d->skel->progs.lb_decap_xdp);
}

int lb_decap_add_addr(struct lb_decap_dp *d, const union lb_addr *a, __u8 family)
{
	struct lb_decap_key k;
	__u8 one = 1;

	memset(&k, 0, sizeof(k));
	memcpy(k.addr.b, a->b, family == LB_AF_INET ? 4 : 16);
	k.family = family;
	return bpf_map_update_elem(bpf_map__fd(d->skel->maps.decap_addrs), &k, &one, 0) ? -errno : 0;
}

static bool key_in(const struct lb_decap_key *k, const struct lb_decap_key *set, int n)
{
	for (int i = 0; i < n; i++)
		if (!memcmp(k, &set[i], sizeof(*k)))
			return true;
	return false;
}

int lb_decap_sync_addrs(struct lb_decap_dp *d)
{
	int fd = bpf_map__fd(d->skel->maps.decap_addrs), n = 0, err = 0;
	struct lb_decap_key *want, k, next, *prev = NULL;
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa))
		return -errno;
	want = calloc(LB_DECAP_MAX_ADDRS, sizeof(*want));
	if (!want) {
		freeifaddrs(ifa);
		return -ENOMEM;
	}
	for (i = ifa; i && n < LB_DECAP_MAX_ADDRS; i = i->ifa_next) {
		struct lb_decap_key *w = &want[n];

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			w->family = LB_AF_INET;
			memcpy(w->addr.b, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			w->family = LB_AF_INET6;
			memcpy(w->addr.b, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		if (!key_in(w, want, n))
			n++;
		else
			memset(w, 0, sizeof(*w));
	}
	freeifaddrs(ifa);
	/* gone ones out first, then the new ones in */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		if (!key_in(&k, want, n) && !bpf_map_delete_elem(fd, &k))
			continue; /* deleted: walk again from where we are */
		prev = &k;
	}
	for (int j = 0; j < n && !err; j++)
		err = lb_decap_add_addr(d, &want[j].addr, want[j].family);
	free(want);
	return err ? err : n;
}

int lb_decap_stats(const struct lb_decap_dp *d, __u64 out[LB_DECAP_STATS])
{
	int fd = bpf_map__fd(d->skel->maps.decap_stats), ncpu = libbpf_num_possible_cpus();
	__u64 *v;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 s = 0; s < LB_DECAP_STATS; s++) {
		out[s] = 0;
		if (bpf_map_lookup_elem(fd, &s, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[s] += v[c];
	}
	free(v);
	return 0;
}

static int tc_hook(int ifindex, int prog_fd, bool attach)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = DECAP_TC_HANDLE, .priority = DECAP_TC_PRIO);
	int err;

	if (!attach) {
		err = bpf_tc_detach(&hook, &to);
		return err == -ENOENT || err == -EINVAL ? 0 : err;
	}
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	to.flags = BPF_TC_F_REPLACE;
	to.prog_fd = prog_fd;
	return bpf_tc_attach(&hook, &to);
}

static volatile sig_atomic_t decap_stop;

static void on_signal(int sig)
{
	(void)sig;
	decap_stop = 1;
}

static const char *const mode_names[] = {
	[LB_DECAP_AUTO] = "auto", [LB_DECAP_XDP] = "xdp",
	[LB_DECAP_XDP_GENERIC] = "xdp-generic", [LB_DECAP_TC] = "tc",
};

/* Attach: an XDP link fd (>= 0), 0 for TC... as *link; the mode used. */
static int attach(struct lb_decap_dp *d, int ifindex, enum lb_decap_mode mode, int *link,
		  enum lb_decap_mode *used)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	int err = 0;

	*link = -1;
	if (mode == LB_DECAP_TC) {
		*used = LB_DECAP_TC;
		return tc_hook(ifindex, lb_decap_prog_fd(d, true), true);
	}
	if (mode != LB_DECAP_XDP_GENERIC) {
		lo.flags = XDP_FLAGS_DRV_MODE;
		*link = bpf_link_create(lb_decap_prog_fd(d, false), ifindex, BPF_XDP, &lo);
		*used = LB_DECAP_XDP;
		if (*link >= 0 || mode == LB_DECAP_XDP)
			return *link >= 0 ? 0 : -errno;
		err = -errno;
		lb_info("decap: native XDP refused (%s); trying generic XDP", strerror(-err));
	}
	lo.flags = XDP_FLAGS_SKB_MODE;
	*link = bpf_link_create(lb_decap_prog_fd(d, false), ifindex, BPF_XDP, &lo);
	*used = LB_DECAP_XDP_GENERIC;
	return *link >= 0 ? 0 : -errno;
}

int lb_decap_run(const char *ifname, __u16 gue_port, enum lb_decap_mode mode)
{
	int ifindex = (int)if_nametoindex(ifname), link = -1, n, err;
	__u64 st[LB_DECAP_STATS];
	struct sigaction sa;
	enum lb_decap_mode used;
	struct lb_decap_dp *d;

	if (!ifindex) {
		lb_err("decap: no interface \"%s\"", ifname);
		return 1;
	}
	err = lb_decap_open(gue_port, &d);
	if (err) {
		lb_err("decap: cannot load the BPF program: %s", strerror(-err));
		return 1;
	}
	n = lb_decap_sync_addrs(d);
	if (n < 0) {
		lb_err("decap: cannot read this host's addresses: %s", strerror(-n));
		lb_decap_close(d);
		return 1;
	}
	err = attach(d, ifindex, mode, &link, &used);
	if (err) {
		lb_err("decap: cannot attach to %s (%s): %s", ifname, mode_names[used], strerror(-err));
		lb_decap_close(d);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	lb_info("decap: %s on %s, %d local address(es), GUE port %s%u; SIGTERM detaches", mode_names[used],
		ifname, n, gue_port ? "" : "none ", gue_port);
	while (!decap_stop) {
		struct timespec ts = { .tv_sec = 1 };

		nanosleep(&ts, NULL);
		if (!decap_stop && (n = lb_decap_sync_addrs(d)) < 0)
			lb_warn("decap: cannot read this host's addresses: %s", strerror(-n));
	}
	if (!lb_decap_stats(d, st))
		lb_info("decap: exiting: ipip %llu, gue %llu, not local %llu, malformed %llu",
			(unsigned long long)st[LB_DECAP_IPIP], (unsigned long long)st[LB_DECAP_GUE],
			(unsigned long long)st[LB_DECAP_NOT_LOCAL], (unsigned long long)st[LB_DECAP_BAD]);
	if (used == LB_DECAP_TC && (err = tc_hook(ifindex, -1, false)))
		lb_warn("decap: cannot detach from %s: %s", ifname, strerror(-err));
	if (link >= 0)
		close(link);
	lb_decap_close(d);
	return 0;
}
