// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_xdp: per-packet cost of lb_xdp against a bare MAC-swap XDP_TX
 * program, both timed the same way in the same run, as CSV on stdout:
 *
 *   case,bare_prog,bare_ns,lb_ns,ratio,ratio_best,extra_ns,bare_min,bare_max,
 *   lb_min,lb_max,repeat,runs,check
 *
 * ratio is the median of the per-run ratios lb/bare (each run times both
 * programs back to back, so drift cancels); ratio_best is lb_min/bare_min
 * (noise only ever adds time, so the minima are the steadiest pair on a
 * busy machine). extra_ns is lb_ns - bare_ns: what lb_xdp adds to the fixed
 * cost of a packet through BPF_PROG_RUN, veth and the sink.
 *
 * Method. Everything runs in a private network namespace (unshare) holding
 * one veth pair: bx0 is the ingress device of BPF_PROG_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES), bx1 its peer with bench_sink attached
 * (XDP_DROP). bx0 carries the client and backend subnets with permanent
 * neighbours, so lb_xdp's fib lookups succeed and both directions leave by
 * XDP_TX, like the baseline. Live frames really go out bx0 and are dropped
 * on bx1; that cost is in both figures.
 *
 * Cases: established (a primed TCP flow, ACKs), new_tier (ACKs of a flow
 * its backend has not answered: it stays in the conntrack's LRU tier, as
 * a short connection whose server closes first does all its life),
 * nat_reply (the backend's ACK to the SNAT address:port of the first
 * flow), new_flow (a SYN of a new
 * client tuple every packet; ct and nat are emptied before each run, so it
 * measures insertion into a table with room, not eviction under overload)
 * and non_vip_pass (to an address that is no VIP: XDP_PASS). The pass case
 * is held against bench_pass, a bare XDP_PASS: both then pay the stack's
 * skb and ip_rcv (the frame's MAC is nobody's, so it dies there early),
 * which an XDP_TX baseline would not, making the ratio meaningless.
 *
 * Live-frames mode recycles its pages without copying the input again, so a
 * NAT program would see its own output on the next run of a page: bench_sink
 * writes the template back before dropping (see bpf/bench_tx.bpf.c), and for
 * the new-flow case writes a fresh client address/port each time. The check
 * column compares lb_xdp's event counters with the repeat count, so a case
 * that measured the wrong path says so ("FAIL:...") instead of a figure.
 *
 * -S (scaling) prints instead, one row a point and case:
 *
 *   dimension,value,case,method,vips,backends,flows,bare_ns,lb_ns,ratio,
 *   lb_min,lb_max,bytes_per_flow,runs,check
 *
 * for 1, 64 and 512 VIPs, 10 and 4096 backends (established: 1000 flows
 * cycled, and new flows), each selection method (new flows), and 1000,
 * 100000 and 1000000 live flows cycled (established), all on one data path
 * with a conntrack of 2^21 entries. bench_sink gives frame n the tuple of
 * flow n % flows (case established: the order the flows were opened in, so
 * their entries are read in address order) or of flow (n % flows) * stride
 * % flows (established_shuffled: an order unrelated to it, as real clients
 * come). bytes_per_flow is the map memory per IPv4 flow of room: ct4's and
 * nat4's memlock (nat4 has twice the entries) over ct4's size. Last, rows
 * "memory,<bytes>,random_read": ns per dependent read of a cache line at a
 * random place in a buffer of that size (in lb_ns), what an entry no cache
 * holds costs on this machine.
 *
 * ns figures are the kernel's own per-packet time (opts.duration: the
 * test-run loop only, preemption excluded), median over runs; min and max
 * are over runs as well. Wall-clock time of the call is no good here: each
 * live-frames call carries a fixed setup/teardown of tens of milliseconds
 * on this kernel. -v prints both for every run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "table.h"
#include "bench_tx.skel.h"

#define PKT_LEN     64          /* BENCH_PKT_LEN in bpf/bench_tx.bpf.c */
#define MAX_RUNS    101
#define NBACKENDS   64          /* enough SNAT tuples for the new-flow flood */
#define MAX_BACKENDS 4096       /* the most of the scaling points (-S) */
#define SEED        0x5eedu
#define IF_IN       "bx0"
#define IF_SINK     "bx1"

/* Addresses (host order) inside the private namespace. */
#define CLIENT      0xc6120001u /* 198.18.0.1 */
#define VIP         0xc612000au /* 198.18.0.10 */
#define NON_VIP     0xc6120063u /* 198.18.0.99 */
#define SNAT        0xc61201feu /* 198.18.1.254 */
#define BACKEND0    0xc6130002u /* 198.19.0.2 + i */
#define SCALE_VIP0  0xc6140000u /* 198.20.0.0 + i: VIPs of the scaling points */
#define VIP_PORT    80
#define BE_PORT     3000
#define CLIENT_PORT 40000

struct bench_tmpl { /* mirrors bpf/bench_tx.bpf.c */
	__u32 flows;
	__u32 vips;
	__u32 stride;
	__u32 pad;
	__u8  data[PKT_LEN];
};

#define NEW_EVERY_PACKET 0xffffffffu /* bench_tmpl.flows: a new flow each frame */

/* The data path's configuration for a run: VIPs (all with the same
 * backends and table), backends, selection method. */
struct setup {
	__u32 vips, backends;
	enum lb_method method;
};

struct ctx {
	struct bench_tx *bt;
	struct lb_dp *dp;
	int ifindex;
	__u32 repeat, new_repeat;
	int runs;
	const char *only;       /* run just this case */
	__u32 max_flows;        /* -S: the largest live-flows point */
	__u32 stride;           /* bench_tmpl.stride of the runs (1: in order) */
	bool verbose;
};

/* One case measured: medians and extremes over the runs. */
struct result {
	double bare, lb, ratio, ratio_best, bare_min, bare_max, lb_min, lb_max;
	char check[96];
};

struct series {
	double ns[MAX_RUNS];
	int n;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(struct series *s)
{
	qsort(s->ns, (size_t)s->n, sizeof(s->ns[0]), cmp_double);
	return s->n ? s->ns[s->n / 2] : 0;
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u32 csum_add(__u32 sum, const void *p, size_t len)
{
	const __u8 *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (__u32)b[len - 1] << 8;
	return sum;
}

/* Packet fields are not aligned: store and load them byte-wise. */
static void put16(__u8 *p, __u16 host)
{
	__u16 v = htons(host);

	memcpy(p, &v, 2);
}

static void put32(__u8 *p, __u32 host)
{
	__u32 v = htonl(host);

	memcpy(p, &v, 4);
}

static __u16 get16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, 2);
	return ntohs(v);
}

static __u32 get32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* A 64-byte Ethernet/IPv4/TCP frame with 10 bytes of payload and valid
 * checksums. The destination MAC is nobody's: XDP_PASS frames die early in
 * ip_rcv (PACKET_OTHERHOST) instead of costing a socket lookup. */
static void build_pkt(__u8 *pkt, __u32 saddr, __u16 sport, __u32 daddr, __u16 dport,
		      __u8 flags)
{
	static const __u8 dmac[6] = { 0x02, 0, 0, 0, 0xee, 0x01 };
	static const __u8 smac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	__u8 *ip = pkt + 14, *th = ip + 20, pseudo[12];
	__u32 sum;

	memset(pkt, 0, PKT_LEN);
	memcpy(pkt, dmac, 6);
	memcpy(pkt + 6, smac, 6);
	pkt[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = PKT_LEN - 14;                  /* total length 50 */
	ip[6] = 0x40;                          /* DF */
	ip[8] = 64;                            /* TTL */
	ip[9] = IPPROTO_TCP;
	put32(ip + 12, saddr);
	put32(ip + 16, daddr);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put16(th + 0, sport);
	put16(th + 2, dport);
	put32(th + 4, 1);
	th[12] = 5 << 4;
	th[13] = flags;
	put16(th + 14, 65535);
	memcpy(th + 20, "bench-xdp!", 10);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 30;
	sum = csum_add(csum_add(0, pseudo, 12), th, 30);
	put16(th + 16, csum_fold(sum));
}

/* ------------------------------------------------------------ namespace */

static int run_ip_batch(const char *cmds)
{
	char path[] = "/tmp/bench_xdp.XXXXXX";
	int fd = mkstemp(path), st;
	pid_t pid;

	if (fd < 0)
		return -errno;
	if (write(fd, cmds, strlen(cmds)) != (ssize_t)strlen(cmds)) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	close(fd);
	pid = fork();
	if (pid == 0) {
		execlp("ip", "ip", "-batch", path, (char *)NULL);
		_exit(127);
	}
	st = -1;
	if (pid > 0)
		waitpid(pid, &st, 0);
	unlink(path);
	return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int err;

	if (!f)
		return -errno;
	err = fputs(s, f) < 0 ? -EIO : 0;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

static int setup_netns(void)
{
	static char cmds[MAX_BACKENDS * 80 + 1024];
	char ip[32];
	size_t off;
	struct in_addr a;
	int err;

	if (unshare(CLONE_NEWNET))
		return -errno;
	off = (size_t)snprintf(cmds, sizeof(cmds),
		"link set lo up\n"
		"link add " IF_IN " type veth peer name " IF_SINK "\n"
		"link set " IF_IN " up\n"
		"link set " IF_SINK " up\n"
		"addr add 198.18.0.254/24 dev " IF_IN "\n"
		"addr add 198.18.1.254/24 dev " IF_IN "\n"
		"addr add 198.19.255.254/16 dev " IF_IN "\n"
		"neigh add 198.18.0.1 lladdr 02:00:00:00:00:01 dev " IF_IN " nud permanent\n");
	for (int i = 0; i < MAX_BACKENDS; i++) {
		a.s_addr = htonl(BACKEND0 + (__u32)i);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		off += (size_t)snprintf(cmds + off, sizeof(cmds) - off,
			"neigh add %s lladdr 02:00:00:01:%02x:%02x dev " IF_IN " nud permanent\n",
			ip, i >> 8, i & 0xff);
	}
	if ((err = run_ip_batch(cmds)))
		return err;
	/* bpf_fib_lookup refuses to route for a device that does not forward. */
	if ((err = write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1")))
		return err;
	return write_file("/proc/sys/net/ipv4/conf/" IF_IN "/forwarding", "1");
}

/* ------------------------------------------------------------ data path */

/* Every VIP after the first gets VIP 0's table: the same inner map put in
 * its slot of the outer one (building and writing hundreds of 65537-slot
 * tables would take the run's time and memory, and the data path reads a
 * table the same way whoever shares it). */
static int share_table(struct lb_dp *dp, __u32 vips)
{
	int outer = lb_dp_map_fd(dp, LB_MAP_TABLES), inner, err = 0;
	__u32 zero = 0, id;

	if (outer < 0)
		return outer;
	if (bpf_map_lookup_elem(outer, &zero, &id))
		return -errno;
	inner = bpf_map_get_fd_by_id(id);
	if (inner < 0)
		return -errno;
	for (__u32 i = 1; i < vips && !err; i++)
		err = bpf_map_update_elem(outer, &i, &inner, BPF_ANY) ? -errno : 0;
	close(inner);
	return err;
}

/* Give dp su's VIPs (vip0, vip0 + 1, ...: port VIP_PORT, TCP, full NAT;
 * VIPs from an earlier configuration beyond su->vips are removed) and
 * backends (BACKEND0 + i, ids from 1; later ids stay, unused). */
static int configure(struct lb_dp *dp, const struct setup *su, __u32 vip0, __u32 old_vips)
{
	static struct lb_maglev_backend mb[MAX_BACKENDS];
	struct lb_vip_key k;
	struct lb_vip v;
	__u32 *ids = NULL, nids = 0;
	int err;

	if (su->backends > MAX_BACKENDS || !su->backends || !su->vips ||
	    su->vips > LB_MAX_VIPS)
		return -EINVAL;
	memset(mb, 0, sizeof(mb));
	for (__u32 i = 0; i < su->backends; i++) {
		struct lb_backend b;

		memset(&b, 0, sizeof(b));
		b.addr.v4 = htonl(BACKEND0 + i);
		b.port = htons(BE_PORT);
		b.family = LB_AF_INET;
		b.state = LB_BE_UP;
		b.weight = 1;
		b.gen = 1;
		if ((err = lb_dp_backend_set(dp, i + 1, &b)))
			return err;
		mb[i].addr = b.addr;
		mb[i].port = b.port;
		mb[i].family = LB_AF_INET;
		mb[i].weight = 1;
		mb[i].id = i + 1;
	}
	err = lb_table_build(su->method, mb, su->backends, SEED, LB_MAGLEV_DEFAULT_SIZE,
			     &ids, &nids);
	if (!err)
		err = lb_dp_table_swap(dp, 0, ids, nids);
	free(ids);
	if (!err)
		err = share_table(dp, su->vips);
	for (__u32 i = 0; i < su->vips + old_vips && !err; i++) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.addr.v4 = htonl(vip0 + i);
		k.port = htons(VIP_PORT);
		k.proto = IPPROTO_TCP;
		k.family = LB_AF_INET;
		if (i >= su->vips) {
			if (i < old_vips)
				err = lb_dp_vip_del(dp, &k);
			continue;
		}
		v.id = i;
		v.method = (__u8)su->method;
		v.fwd = LB_FWD_NAT;
		v.family = LB_AF_INET;
		v.flags = LB_VIP_F_SNAT_SET;
		v.table_size = nids;
		v.snat_addr.v4 = htonl(SNAT);
		err = lb_dp_vip_set(dp, &k, &v);
	}
	return err;
}

/* lb_xdp, loaded, with the hash seed and SNAT range set. */
static int open_lb(__u32 ct_size, struct lb_dp **out)
{
	struct lb_dp_opts o = { .ct_size = ct_size, .ct_new_size = ct_size };
	struct lb_config cfg = {
		.hash_seed = SEED,
		.snat_port_lo = LB_SNAT_PORT_LO,
		.snat_port_hi = LB_SNAT_PORT_HI,
	};
	int err;

	if ((err = lb_dp_open(&o, out)))
		return err;
	if ((err = lb_dp_set_config(*out, &cfg))) {
		lb_dp_close(*out);
		*out = NULL;
	}
	return err;
}

/* What bench_sink writes back into each frame: pkt, and the tuple of flow
 * seq % flows to VIP (seq % flows) % vips (see bpf/bench_tx.bpf.c). */
static int set_tmpl(struct ctx *c, const __u8 *pkt, __u32 flows, __u32 vips)
{
	struct bench_tmpl t;
	__u32 zero = 0;

	memset(&t, 0, sizeof(t));
	t.flows = flows;
	t.vips = vips;
	t.stride = c->stride;
	memcpy(t.data, pkt, PKT_LEN);
	if (bpf_map_update_elem(bpf_map__fd(c->bt->maps.tmpl), &zero, &t, BPF_ANY))
		return -errno;
	return 0;
}

/* One live-frames run of `repeat` packets; *ns is the kernel's ns/packet. */
static int live_run(struct ctx *c, const char *name, int prog_fd, const __u8 *pkt,
		    __u32 repeat, double *ns)
{
	struct xdp_md xmd = { .data_end = PKT_LEN, .ingress_ifindex = (__u32)c->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = pkt, .data_size_in = PKT_LEN,
		.ctx_in = &xmd, .ctx_size_in = sizeof(xmd),
		.repeat = (int)repeat, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		.batch_size = 64);
	double t0 = now_ns();

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	*ns = o.duration;
	if (c->verbose)
		fprintf(stderr, "bench_xdp: prog %s repeat %u: kernel %u ns/pkt, wall %.1f ns/pkt\n",
			name, repeat, o.duration, (now_ns() - t0) / repeat);
	return 0;
}

/* Empty a conntrack map, so every new-flow run starts from the same state
 * and measures insertion, not LRU eviction under overload. */
static int clear_map(struct ctx *c, const char *name)
{
	static struct lb_flow_key keys[4096];
	static __u8 vals[4096 * sizeof(struct lb_nat)];
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	int fd = lb_dp_map_fd(c->dp, name);
	__u32 batch = 0, n;
	bool first = true;

	if (fd < 0)
		return fd;
	for (;;) {
		n = 4096;
		if (bpf_map_lookup_and_delete_batch(fd, first ? NULL : &batch, &batch, keys, vals,
						    &n, &bo)) {
			if (errno == ENOENT)
				return 0; /* the last (maybe partial) batch is done */
			return -errno;
		}
		first = false;
	}
}

/* Move every entry of map `from` to map `to` (same key and value). */
static int move_map(struct ctx *c, const char *from, const char *to)
{
	static struct lb_flow_key keys[4096];
	static __u8 vals[4096 * sizeof(struct lb_nat)];
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	int fd = lb_dp_map_fd(c->dp, from), tfd = lb_dp_map_fd(c->dp, to);
	__u32 batch = 0, n;
	bool first = true, end = false;

	if (fd < 0 || tfd < 0)
		return fd < 0 ? fd : tfd;
	while (!end) {
		n = 4096;
		if (bpf_map_lookup_and_delete_batch(fd, first ? NULL : &batch, &batch, keys, vals,
						    &n, &bo)) {
			if (errno != ENOENT)
				return -errno;
			end = true;
		}
		first = false;
		if (n && bpf_map_update_batch(tfd, keys, vals, &n, &bo))
			return -errno;
	}
	return 0;
}

/* One ordinary (not live) run: the verdict and the rewritten packet. */
static int plain_run(struct ctx *c, const __u8 *pkt, __u8 *out, __u32 *verdict)
{
	struct xdp_md xmd = { .data_end = PKT_LEN, .ingress_ifindex = (__u32)c->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = pkt, .data_size_in = PKT_LEN,
		.data_out = out, .data_size_out = 256,
		.ctx_in = &xmd, .ctx_size_in = sizeof(xmd), .repeat = 1);

	if (bpf_prog_test_run_opts(lb_dp_xdp_prog_fd(c->dp), &o))
		return -errno;
	*verdict = o.retval;
	return 0;
}

enum expect { EXP_EST, EXP_TIER, EXP_NEW, EXP_REPLY, EXP_PASS };

/* Did every packet of the run take the path the case is about? */
static void check_path(const __u64 *e0, const __u64 *e1, const __u64 *d0, const __u64 *d1,
		       enum expect x, __u32 repeat, char *msg, size_t len)
{
	__u64 tx = e1[LB_EV_TX] - e0[LB_EV_TX];
	__u64 nw = e1[LB_EV_FLOW_NEW] - e0[LB_EV_FLOW_NEW];
	__u64 rp = e1[LB_EV_REPLY] - e0[LB_EV_REPLY];
	__u64 pr = e1[LB_EV_CT_PROMOTE] - e0[LB_EV_CT_PROMOTE];
	__u64 drops = 0;

	int worst = 0;

	for (int i = 0; i < LB_DROP_REASONS; i++) {
		drops += d1[i] - d0[i];
		if (d1[i] - d0[i] > d1[worst] - d0[worst])
			worst = i;
	}
	if (msg[0]) /* keep the first failure */
		return;
	if (drops)
		snprintf(msg, len, "FAIL:%llu drops (%s)", (unsigned long long)drops,
			 lb_drop_name((unsigned int)worst));
	else if (x == EXP_PASS && (tx || nw || rp))
		snprintf(msg, len, "FAIL:pass touched (tx %llu)", (unsigned long long)tx);
	else if (x != EXP_PASS && tx != repeat)
		snprintf(msg, len, "FAIL:tx %llu of %u", (unsigned long long)tx, repeat);
	else if ((x == EXP_EST || x == EXP_TIER) && nw)
		snprintf(msg, len, "FAIL:%llu new flows", (unsigned long long)nw);
	else if (x == EXP_TIER && pr)
		snprintf(msg, len, "FAIL:%llu promoted", (unsigned long long)pr);
	else if (x == EXP_REPLY && rp != repeat)
		snprintf(msg, len, "FAIL:replies %llu of %u", (unsigned long long)rp, repeat);
	/* Each page's first run sees the input tuple itself (a flow already
	 * open), so a batch or two of every run are not new flows. */
	else if (x == EXP_NEW && nw * 100 < (__u64)repeat * 99)
		snprintf(msg, len, "FAIL:new flows %llu of %u", (unsigned long long)nw, repeat);
}

/*
 * Time lb_xdp on pkt (as bench_sink varies it: flows, vips) against the
 * bare program, runs times each, back to back. EXP_NEW empties the
 * IPv4 conntrack before each run; other cases find what earlier runs left.
 */
static int measure(struct ctx *c, const char *name, const __u8 *pkt, __u32 flows, __u32 vips,
		   enum expect x, __u32 repeat, struct result *res)
{
	int bare_fd = bpf_program__fd(x == EXP_PASS ? c->bt->progs.bench_pass
						    : c->bt->progs.bench_tx);
	int lb_fd = lb_dp_xdp_prog_fd(c->dp);
	struct series bare = { .n = 0 }, lb = { .n = 0 }, ratio = { .n = 0 };
	__u64 e0[LB_EVENTS], e1[LB_EVENTS], d0[LB_DROP_REASONS], d1[LB_DROP_REASONS];
	int err;

	memset(res, 0, sizeof(*res));
	if ((err = set_tmpl(c, pkt, flows, vips)))
		return err;
	for (int r = 0; r < c->runs; r++) {
		/* Alternate who goes first, so drift hurts both alike. */
		for (int k = 0; k < 2; k++) {
			if ((k ^ r) & 1) {
				err = live_run(c, "bare", bare_fd, pkt, repeat, &bare.ns[bare.n++]);
			} else {
				if (x == EXP_NEW && !(err = clear_map(c, LB_MAP_CT4)))
					err = clear_map(c, LB_MAP_NAT4);
				if (!err && !(err = lb_dp_events(c->dp, e0)))
					err = lb_dp_drops(c->dp, d0);
				if (!err)
					err = live_run(c, name, lb_fd, pkt, repeat, &lb.ns[lb.n++]);
				if (!err && !(err = lb_dp_events(c->dp, e1)))
					err = lb_dp_drops(c->dp, d1);
				if (!err)
					check_path(e0, e1, d0, d1, x, repeat, res->check,
						   sizeof(res->check));
			}
			if (err)
				return err;
		}
	}
	for (int r = 0; r < c->runs; r++)
		ratio.ns[ratio.n++] = bare.ns[r] > 0 ? lb.ns[r] / bare.ns[r] : 0;
	res->ratio = median(&ratio);
	res->bare = median(&bare);
	res->lb = median(&lb);
	/* median() sorted the series: [0] is the minimum */
	res->ratio_best = bare.ns[0] > 0 ? lb.ns[0] / bare.ns[0] : 0;
	res->bare_min = bare.ns[0];
	res->bare_max = bare.ns[bare.n - 1];
	res->lb_min = lb.ns[0];
	res->lb_max = lb.ns[lb.n - 1];
	if (!res->check[0])
		snprintf(res->check, sizeof(res->check), "ok");
	return 0;
}

static int bench_case(struct ctx *c, const char *name, const __u8 *pkt, __u32 flows,
		      enum expect x, __u32 repeat)
{
	struct result r;
	int err;

	if (c->only && strcmp(c->only, name))
		return 0;
	if ((err = measure(c, name, pkt, flows, 1, x, repeat, &r)))
		return err;
	printf("%s,%s,%.0f,%.0f,%.3f,%.3f,%.0f,%.0f,%.0f,%.0f,%.0f,%u,%d,%s\n", name,
	       x == EXP_PASS ? "bench_pass" : "bench_tx", r.bare, r.lb, r.ratio, r.ratio_best,
	       r.lb - r.bare, r.bare_min, r.bare_max, r.lb_min, r.lb_max, repeat, c->runs,
	       r.check);
	fflush(stdout);
	return 0;
}

static int bench_all(struct ctx *c)
{
	__u8 syn[PKT_LEN], ack[PKT_LEN], out[256], reply[PKT_LEN], pass[PKT_LEN];
	__u8 syn2[PKT_LEN], ack2[PKT_LEN];
	__u32 verdict = 0, be, snat_port;
	__u64 ev[LB_EVENTS];
	int err;

	build_pkt(syn, CLIENT, CLIENT_PORT, VIP, VIP_PORT, 0x02);
	build_pkt(ack, CLIENT, CLIENT_PORT, VIP, VIP_PORT, 0x10);
	build_pkt(pass, CLIENT, CLIENT_PORT, NON_VIP, VIP_PORT, 0x10);
	build_pkt(syn2, CLIENT, CLIENT_PORT + 1, VIP, VIP_PORT, 0x02);
	build_pkt(ack2, CLIENT, CLIENT_PORT + 1, VIP, VIP_PORT, 0x10);

	/* Open the flow with a SYN; its output names the backend and the
	 * SNAT port the reply must be addressed to. */
	if ((err = plain_run(c, syn, out, &verdict)))
		return err;
	if (verdict != XDP_TX) {
		fprintf(stderr, "bench_xdp: priming SYN: verdict %u, not XDP_TX\n", verdict);
		return -EPROTO;
	}
	be = get32(out + 14 + 16);
	snat_port = get16(out + 34);
	build_pkt(reply, be, BE_PORT, SNAT, (__u16)snat_port, 0x10);
	/* The backend's ACK confirms the flow and the client's next packet
	 * moves it to the established tier (bpf/lib/conntrack.h), where the
	 * established and nat_reply cases find it. */
	if ((err = plain_run(c, reply, out, &verdict)) || (err = plain_run(c, ack, out, &verdict)) ||
	    (err = lb_dp_events(c->dp, ev)))
		return err;
	if (ev[LB_EV_CT_PROMOTE] != 1) {
		fprintf(stderr, "bench_xdp: priming: the flow was not promoted\n");
		return -EPROTO;
	}
	/* A second flow whose backend never answers stays in the LRU tier:
	 * the new_tier case. Short connections whose server closes first
	 * send every client packet this way (they are never promoted). */
	if ((err = plain_run(c, syn2, out, &verdict)))
		return err;
	if (verdict != XDP_TX) {
		fprintf(stderr, "bench_xdp: priming SYN 2: verdict %u, not XDP_TX\n", verdict);
		return -EPROTO;
	}

	printf("case,bare_prog,bare_ns,lb_ns,ratio,ratio_best,extra_ns,bare_min,bare_max,lb_min,"
	       "lb_max,repeat,runs,check\n");
	if ((err = bench_case(c, "established", ack, 0, EXP_EST, c->repeat)) ||
	    (err = bench_case(c, "new_tier", ack2, 0, EXP_TIER, c->repeat)) ||
	    (err = bench_case(c, "nat_reply", reply, 0, EXP_REPLY, c->repeat)) ||
	    (err = bench_case(c, "non_vip_pass", pass, 0, EXP_PASS, c->repeat)))
		return err;
	/* Last: the flood of new flows churns the conntrack LRU. */
	return bench_case(c, "new_flow", syn, NEW_EVERY_PACKET, EXP_NEW, c->new_repeat);
}

/* ------------------------------------------------------------ scaling (-S) */

/* Kernel memory of a map (fdinfo's memlock): for the LRU maps, every
 * preallocated element, used or not. */
static long map_memlock(int fd)
{
	char path[64], line[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Map memory per IPv4 flow of room: ct4's and nat4's over ct4's entries. */
static double flow_bytes(struct ctx *c)
{
	int ct = lb_dp_map_fd(c->dp, LB_MAP_CT4), nat = lb_dp_map_fd(c->dp, LB_MAP_NAT4);
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	long m1 = map_memlock(ct), m2 = map_memlock(nat);

	memset(&info, 0, sizeof(info));
	if (m1 < 0 || m2 < 0 || bpf_obj_get_info_by_fd(ct, &info, &len) || !info.max_entries)
		return 0;
	return (double)(m1 + m2) / info.max_entries;
}

static const char *method_name(enum lb_method m)
{
	static const char *const n[] = {
		[LB_METHOD_MAGLEV] = "maglev", [LB_METHOD_IP_HASH] = "ip_hash",
		[LB_METHOD_ROUND_ROBIN] = "round_robin", [LB_METHOD_LEAST_CONN] = "least_conn",
	};

	return (unsigned int)m < LB_METHOD_MAX ? n[m] : "?";
}

static void scale_row(struct ctx *c, const char *dim, const char *value, const char *cs,
		      const struct setup *su, __u32 flows, const struct result *r)
{
	printf("%s,%s,%s,%s,%u,%u,%u,%.0f,%.0f,%.3f,%.0f,%.0f,%.0f,%d,%s\n", dim, value, cs,
	       method_name(su->method), su->vips, su->backends, flows, r->bare, r->lb, r->ratio,
	       r->lb_min, r->lb_max, flow_bytes(c), c->runs, r->check);
	fflush(stdout);
}

/* Open flows 0..n-1 (bench_sink's numbering: a run of SYNs cycling through
 * n flows, a little longer than n, since each page's first frame is the
 * template itself). Fails when a SYN was dropped. */
static int open_flows(struct ctx *c, const __u8 *syn, __u32 n, __u32 vips)
{
	__u64 d0[LB_DROP_REASONS], d1[LB_DROP_REASONS], drops = 0;
	double ns;
	int err;

	if ((err = set_tmpl(c, syn, n, vips)) || (err = lb_dp_drops(c->dp, d0)) ||
	    (err = live_run(c, "open", lb_dp_xdp_prog_fd(c->dp), syn, n + n / 8 + 1024, &ns)) ||
	    (err = lb_dp_drops(c->dp, d1)))
		return err;
	for (int i = 0; i < LB_DROP_REASONS; i++)
		drops += d1[i] - d0[i];
	if (drops) {
		fprintf(stderr, "bench_xdp: opening %u flows: %llu SYNs dropped\n", n,
			(unsigned long long)drops);
		return -EPROTO;
	}
	/* established flows, as the data path would promote them once
	 * confirmed (bpf/lib/conntrack.h): the fast path is what is timed */
	if ((err = move_map(c, LB_MAP_CT4, LB_MAP_CT4_EST)))
		return err;
	return move_map(c, LB_MAP_NAT4, LB_MAP_NAT4_EST);
}

/*
 * One configuration of c->dp: established flows (est_flows of them, cycled;
 * 0: not measured), then new flows (if nw), as rows of dimension dim =
 * value. Starts from an empty IPv4 conntrack. New flows per run are kept
 * under 1/40 of the backends' SNAT tuples: port probing (8 consecutive
 * ports, conntrack.h) drops some new flows of 10 backends already at 10%.
 */
static int scale_point(struct ctx *c, const char *dim, const char *value,
		       const struct setup *su, __u32 *vips_now, __u32 est_flows, bool nw)
{
	__u32 ports = LB_SNAT_PORT_HI - LB_SNAT_PORT_LO + 1, nrep = c->new_repeat;
	__u8 syn[PKT_LEN], ack[PKT_LEN];
	struct result r;
	int err;

	build_pkt(syn, CLIENT, CLIENT_PORT, SCALE_VIP0, VIP_PORT, 0x02);
	build_pkt(ack, CLIENT, CLIENT_PORT, SCALE_VIP0, VIP_PORT, 0x10);
	if ((err = configure(c->dp, su, SCALE_VIP0, *vips_now)))
		return err;
	*vips_now = su->vips;
	if ((err = clear_map(c, LB_MAP_CT4)) || (err = clear_map(c, LB_MAP_NAT4)) ||
	    (err = clear_map(c, LB_MAP_CT4_EST)) || (err = clear_map(c, LB_MAP_NAT4_EST)))
		return err;
	if (est_flows) {
		err = open_flows(c, syn, est_flows, su->vips);
		if (!err)
			err = measure(c, "established", ack, est_flows, su->vips, EXP_EST,
				      c->repeat > est_flows ? c->repeat : est_flows, &r);
		if (!err)
			scale_row(c, dim, value, "established", su, est_flows, &r);
	}
	if (nrep > su->backends * (ports / 40))
		nrep = su->backends * (ports / 40);
	if (!err && nw) {
		err = measure(c, "new_flow", syn, NEW_EVERY_PACKET, su->vips, EXP_NEW, nrep, &r);
		if (!err)
			scale_row(c, dim, value, "new_flow", su, 0, &r);
	}
	return err;
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A stride that visits flows 0..n-1 in a scattered order (k * stride % n
 * is a permutation when they are coprime). */
static __u32 coprime_stride(__u32 n)
{
	__u32 s = (__u32)(2654435761u % n), a, b, t;

	for (;; s++) {
		for (a = s, b = n; b; t = a % b, a = b, b = t)
			;
		if (s > 1 && a == 1)
			return s;
	}
}

/* ns per dependent read of one cache line at a random place in a buffer of
 * `bytes` (a pointer chase through a random cycle: no prefetcher helps), the
 * price of a conntrack entry no cache holds. -1 if there is no memory. */
static double read_latency_ns(size_t bytes)
{
	size_t n = bytes / 64, steps = 2000000, i, j, t;
	size_t *perm, *buf;
	volatile size_t p = 0;
	double t0;

	buf = aligned_alloc(64, n * 64);
	perm = malloc(n * sizeof(*perm));
	if (!buf || !perm) {
		free(buf);
		free(perm);
		return -1;
	}
	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n - 1; i > 0; i--) { /* Sattolo: one cycle through all */
		j = (size_t)random() % i;
		t = perm[i], perm[i] = perm[j], perm[j] = t;
	}
	for (i = 0; i < n; i++)
		buf[perm[i] * 8] = perm[(i + 1) % n] * 8;
	for (i = 0; i < n; i++) /* touch every page first */
		p = buf[p];
	/* this thread's CPU time: a busy machine's preemptions are not in it */
	t0 = cpu_ns();
	for (i = 0; i < steps; i++)
		p = buf[p];
	t0 = cpu_ns() - t0;
	free(buf);
	free(perm);
	return t0 / (double)steps;
}

/* Rows "memory,<bytes>,random_read,...,<ns>": the memory the flows points
 * need against what the caches hold. */
static void memory_rows(struct ctx *c)
{
	static const size_t sizes[] = { 256u << 10, 256u << 20 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double ns = read_latency_ns(sizes[i]);

		if (ns < 0)
			continue;
		printf("memory,%zu,random_read,-,0,0,0,0,%.1f,0,%.1f,%.1f,%.0f,1,ok\n", sizes[i], ns,
		       ns, ns, flow_bytes(c));
	}
	fflush(stdout);
}

/*
 * How the cost grows: with the live flows, the VIPs, the backends, and per
 * selection method for new flows. One data path, reconfigured per point,
 * with a conntrack of 2^21 entries a family for every point (so only the
 * occupancy differs). Established flows are 1000 unless the point is about
 * flows; the flows points go up, each opening the flows the one before did
 * not (flow i is always the same tuple).
 */
static int bench_scale(struct ctx *c)
{
	static const __u32 vips[] = { 1, 64, 512 };
	static const __u32 backends[] = { 10, 4096 };
	static const __u32 flows[] = { 1000, 100000, 1000000 };
	struct setup su = { .vips = 1, .backends = 256, .method = LB_METHOD_MAGLEV };
	__u32 vips_now = 0;
	char v[32];
	int err;

	printf("dimension,value,case,method,vips,backends,flows,bare_ns,lb_ns,ratio,lb_min,"
	       "lb_max,bytes_per_flow,runs,check\n");
	if ((err = open_lb(1u << 21, &c->dp)))
		return err;
	for (size_t i = 0; i < sizeof(vips) / sizeof(vips[0]) && !err; i++) {
		su.vips = vips[i];
		snprintf(v, sizeof(v), "%u", vips[i]);
		err = scale_point(c, "vips", v, &su, &vips_now, 1000, true);
	}
	su.vips = 1;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]) && !err; i++) {
		su.backends = backends[i];
		snprintf(v, sizeof(v), "%u", backends[i]);
		err = scale_point(c, "backends", v, &su, &vips_now, 1000, true);
	}
	su.backends = 256;
	for (int m = 0; m < LB_METHOD_MAX && !err; m++) {
		su.method = (enum lb_method)m;
		err = scale_point(c, "method", method_name(su.method), &su, &vips_now, 0, true);
	}
	su.method = LB_METHOD_MAGLEV;
	for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]) && !err; i++) {
		__u8 syn[PKT_LEN], ack[PKT_LEN];

		if (flows[i] > c->max_flows)
			break;
		struct result r;

		build_pkt(syn, CLIENT, CLIENT_PORT, SCALE_VIP0, VIP_PORT, 0x02);
		build_pkt(ack, CLIENT, CLIENT_PORT, SCALE_VIP0, VIP_PORT, 0x10);
		snprintf(v, sizeof(v), "%u", flows[i]);
		if (i == 0)
			err = scale_point(c, "flows", v, &su, &vips_now, 0, false);
		if (!err)
			err = open_flows(c, syn, flows[i], 1);
		/* In the order they were opened (flow k's entry sits next to
		 * flow k+1's: the CPU's prefetcher follows), then in an order
		 * unrelated to it, as a real mix of clients arrives. */
		if (!err)
			err = measure(c, "established", ack, flows[i], 1, EXP_EST,
				      c->repeat > flows[i] ? c->repeat : flows[i], &r);
		if (!err)
			scale_row(c, "flows", v, "established", &su, flows[i], &r);
		c->stride = coprime_stride(flows[i]);
		if (!err)
			err = measure(c, "established_shuffled", ack, flows[i], 1, EXP_EST,
				      c->repeat > flows[i] ? c->repeat : flows[i], &r);
		c->stride = 1;
		if (!err)
			scale_row(c, "flows", v, "established_shuffled", &su, flows[i], &r);
	}
	if (!err)
		memory_rows(c);
	return err;
}

static void pin_cpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	/* One CPU for the whole run: the sink's NAPI runs where we run. */
	CPU_ZERO(&set);
	CPU_SET(n > 1 ? (int)n - 1 : 0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: bench_xdp [-r REPEAT] [-n NEW_FLOW_REPEAT] [-R RUNS] [-c CASE] [-S [-F FLOWS]] [-v]\n"
		"  per-packet cost of lb_xdp vs a bare XDP_TX program (root; runs in a\n"
		"  private network namespace). CSV on stdout. -S: how the cost grows with\n"
		"  live flows (1000, 100000, 1000000: up to FLOWS), VIPs, backends, and per\n"
		"  selection method, instead.\n");
	exit(code);
}

int main(int argc, char **argv)
{
	struct ctx c = { .repeat = 1000000, .new_repeat = 100000, .runs = 5,
			 .max_flows = 1000000, .stride = 1 };
	int opt, err, sink_if;
	bool scale = false;

	while ((opt = getopt(argc, argv, "r:n:R:c:SF:vh")) != -1) {
		switch (opt) {
		case 'r': c.repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'n': c.new_repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'R': c.runs = atoi(optarg); break;
		case 'c': c.only = optarg; break;
		case 'S': scale = true; break;
		case 'F': c.max_flows = (__u32)strtoul(optarg, NULL, 0); break;
		case 'v': c.verbose = true; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (!c.repeat || !c.new_repeat || c.runs < 1 || c.runs > MAX_RUNS / 2)
		usage(2);
	pin_cpu();
	if ((err = setup_netns())) {
		fprintf(stderr, "bench_xdp: private network namespace: %s\n", strerror(-err));
		return 1;
	}
	c.ifindex = (int)if_nametoindex(IF_IN);
	sink_if = (int)if_nametoindex(IF_SINK);
	c.bt = bench_tx__open_and_load();
	if (!c.bt) {
		fprintf(stderr, "bench_xdp: loading bench_tx: %s\n", strerror(errno));
		return 1;
	}
	err = bpf_xdp_attach(sink_if, bpf_program__fd(c.bt->progs.bench_sink),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "bench_xdp: attaching the sink to %s: %s\n", IF_SINK,
			strerror(-err));
		goto out;
	}
	if (scale) {
		err = bench_scale(&c);
	} else {
		struct setup su = { .vips = 1, .backends = NBACKENDS, .method = LB_METHOD_MAGLEV };

		err = open_lb(0, &c.dp);
		if (!err && (err = configure(c.dp, &su, VIP, 0))) {
			lb_dp_close(c.dp);
			c.dp = NULL;
		}
		if (err)
			fprintf(stderr, "bench_xdp: loading lb_xdp: %s\n", strerror(-err));
		else
			err = bench_all(&c);
	}
	if (err)
		fprintf(stderr, "bench_xdp: %s\n", strerror(-err));
	lb_dp_close(c.dp);
out:
	/* The namespace, the veth pair and the sink go away with us. */
	bench_tx__destroy(c.bt);
	return err ? 1 : 0;
}
