// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbdp - drive the BPF data path directly, without lbd: for debugging, for
 * operators poking at a node, and for the tests that check each attach mode.
 *
 *   lbdp [-P PIN_ROOT] vip [id N] ADDR:PORT [tcp|udp] snat ADDR BACKEND[@WEIGHT]...
 *   lbdp [-P PIN_ROOT] attach IFNAME xdp|xdp-generic|tc
 *   lbdp [-P PIN_ROOT] detach IFNAME xdp|xdp-generic|tc
 *   lbdp [-P PIN_ROOT] stats
 *
 * Every run opens the data path (both the XDP and the TC object) on the pin
 * root (default /sys/fs/bpf/lbd, which must be on a bpffs), adopting the maps
 * and XDP links an earlier run or lbd pinned there, so the steps can be run
 * one after another. `vip` installs one VIP (id N, default 0; full NAT,
 * Maglev, hash seed from the config map) with its backends in slots
 * N*64 onwards, of weight WEIGHT (default 1), replacing what VIP N and those
 * backend slots held. `attach` leaves the XDP
 * link pinned as PIN_ROOT/link_MODE_IFNAME and the TC filter in the kernel
 * (handle 0x1bd, priority 1 on clsact ingress); `detach` removes them. The
 * pinned maps stay until the pin root is removed (rm -r PIN_ROOT).
 *
 * The data path runs where it is attached: attach it on the client-facing
 * interface and on the backend-facing one (replies come in there).
 * Exit status 0 on success, 1 on failure (the kernel's reason on stderr),
 * 2 on bad usage.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dataplane.h"
#include "table.h"

#define MAX_BACKENDS 64

static int usage(void)
{
	fprintf(stderr,
		"usage: lbdp [-P PIN_ROOT] vip [id N] ADDR:PORT [tcp|udp] snat ADDR BACKEND[@WEIGHT]...\n"
		"       lbdp [-P PIN_ROOT] attach|detach IFNAME xdp|xdp-generic|tc\n"
		"       lbdp [-P PIN_ROOT] stats\n");
	return 2;
}

static int parse_mode(const char *s, enum lb_dp_mode *m)
{
	for (enum lb_dp_mode i = LB_DP_XDP; i <= LB_DP_TC; i++) {
		if (!strcmp(s, lb_dp_mode_name(i))) {
			*m = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int fail(const char *what, const char *arg, int err)
{
	fprintf(stderr, "lbdp: %s %s: %s\n", what, arg, strerror(-err));
	return 1;
}

static int parse_backend(const char *arg, struct lb_maglev_backend *mb)
{
	char buf[LB_ADDRSTRLEN + 16], *at, *endp;
	struct lb_endpoint ep;
	unsigned long w = 1;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	at = strrchr(buf, '@');
	if (at) {
		*at = '\0';
		errno = 0;
		w = strtoul(at + 1, &endp, 10);
		if (errno || *endp || w == 0 || w > UINT32_MAX)
			return -EINVAL;
	}
	if (lb_endpoint_parse(buf, &ep))
		return -EINVAL;
	mb->addr = ep.addr;
	mb->port = ep.port;
	mb->family = ep.family;
	mb->weight = (__u32)w;
	return 0;
}

static int cmd_vip(struct lb_dp *dp, int argc, char **argv)
{
	struct lb_maglev_backend mb[MAX_BACKENDS];
	struct lb_vip_key vk = { .proto = IPPROTO_TCP };
	struct lb_vip vip = { .method = LB_METHOD_MAGLEV, .fwd = LB_FWD_NAT,
			      .flags = LB_VIP_F_SNAT_SET };
	struct lb_config cfg;
	struct lb_endpoint ep;
	__u32 *tbl = NULL, tn = 0;
	int i = 1, n = 0, err;
	unsigned long id = 0;
	const char *vs;

	if (argc >= 2 && !strcmp(argv[0], "id")) {
		char *endp;

		errno = 0;
		id = strtoul(argv[1], &endp, 10);
		if (errno || *endp || id >= LB_MAX_VIPS || (id + 1) * MAX_BACKENDS > LB_MAX_BACKENDS)
			return fail("bad vip id", argv[1], -EINVAL);
		argv += 2;
		argc -= 2;
	}
	vip.id = (__u32)id;
	if (argc < 4 || lb_endpoint_parse(argv[0], &ep))
		return usage();
	vs = argv[0];
	if (!strcmp(argv[i], "tcp") || !strcmp(argv[i], "udp"))
		vk.proto = !strcmp(argv[i++], "udp") ? IPPROTO_UDP : IPPROTO_TCP;
	if (i + 1 >= argc || strcmp(argv[i], "snat") ||
	    lb_addr_parse(argv[i + 1], &vip.snat_addr, &vip.family) || vip.family != ep.family)
		return usage();
	vk.addr = ep.addr;
	vk.port = ep.port;
	vk.family = ep.family;
	argv += i + 2;
	argc -= i + 2;
	for (i = 0; i < argc; i++, n++) {
		if (n == MAX_BACKENDS || parse_backend(argv[i], &mb[n]) || mb[n].family != ep.family)
			return fail("bad backend", argv[i], -EINVAL);
		mb[n].id = vip.id * MAX_BACKENDS + (__u32)n;
	}
	if (!n)
		return usage();
	err = lb_dp_get_config(dp, &cfg);
	if (err)
		return fail("read", "config", err);
	for (i = 0; i < n; i++) {
		struct lb_backend be = { .addr = mb[i].addr, .port = mb[i].port,
					 .family = mb[i].family, .state = LB_BE_UP,
					 .weight = mb[i].weight, .vip_id = vip.id, .gen = 1 };

		err = lb_dp_backend_set(dp, mb[i].id, &be);
		if (err)
			return fail("set backend", argv[i], err);
	}
	err = lb_table_build(LB_METHOD_MAGLEV, mb, (size_t)n, cfg.hash_seed,
			     LB_MAGLEV_DEFAULT_SIZE, &tbl, &tn);
	if (!err)
		err = lb_dp_table_swap(dp, vip.id, tbl, tn);
	free(tbl);
	if (err)
		return fail("table for", vs, err);
	vip.table_size = tn;
	err = lb_dp_vip_set(dp, &vk, &vip);
	return err ? fail("set vip", vs, err) : 0;
}

static int cmd_attach(struct lb_dp *dp, bool attach, int argc, char **argv)
{
	enum lb_dp_mode mode;
	int ifindex, err;

	if (argc != 2 || parse_mode(argv[1], &mode))
		return usage();
	ifindex = (int)if_nametoindex(argv[0]);
	if (!ifindex)
		return fail("no interface", argv[0], -errno);
	err = attach ? lb_dp_attach(dp, ifindex, mode) : lb_dp_detach(dp, ifindex, mode);
	if (err)
		return fail(attach ? "attach" : "detach", argv[0], err);
	return 0;
}

static int cmd_stats(struct lb_dp *dp)
{
	__u64 drops[LB_DROP_REASONS], ev[LB_EVENTS];
	__u32 ids[MAX_BACKENDS];
	struct lb_vip_stats vs;
	size_t n = 0;
	int err;

	/* VIP 0's backends: the used slots of its range (see `vip`) */
	for (__u32 id = 0; id < MAX_BACKENDS; id++) {
		struct lb_backend b;

		if (!lb_dp_backend_get(dp, id, &b) && b.state != LB_BE_UNUSED && b.vip_id == 0)
			ids[n++] = id;
	}
	err = lb_dp_drops(dp, drops);
	if (!err)
		err = lb_dp_events(dp, ev);
	if (!err)
		err = lb_dp_vip_stats(dp, 0, ids, n, &vs);
	if (err)
		return fail("read", "counters", err);
	printf("vip0 packets=%llu new_flows=%llu reply_packets=%llu\n",
	       (unsigned long long)vs.packets, (unsigned long long)vs.new_flows,
	       (unsigned long long)vs.reply_packets);
	for (unsigned int i = 0; i < LB_EVENTS; i++)
		printf("event %s %llu\n", lb_event_name(i), (unsigned long long)ev[i]);
	for (unsigned int i = 0; i < LB_DROP_REASONS; i++)
		printf("drop %s %llu\n", lb_drop_name(i), (unsigned long long)drops[i]);
	return 0;
}

int main(int argc, char **argv)
{
	struct lb_dp_opts o = { .pin_root = "/sys/fs/bpf/lbd", .load_tc = true };
	struct lb_dp *dp;
	const char *cmd;
	int err, rc;

	argv++, argc--;
	if (argc >= 2 && !strcmp(argv[0], "-P")) {
		o.pin_root = argv[1];
		argv += 2, argc -= 2;
	}
	if (argc < 1)
		return usage();
	cmd = argv[0];
	argv++, argc--;
	if (strcmp(cmd, "vip") && strcmp(cmd, "attach") && strcmp(cmd, "detach") &&
	    strcmp(cmd, "stats"))
		return usage();
	err = lb_dp_open(&o, &dp);
	if (err)
		return fail("open data path at", o.pin_root, err);
	if (!strcmp(cmd, "vip"))
		rc = cmd_vip(dp, argc, argv);
	else if (!strcmp(cmd, "stats"))
		rc = cmd_stats(dp);
	else
		rc = cmd_attach(dp, !strcmp(cmd, "attach"), argc, argv);
	lb_dp_close(dp);
	return rc;
}
