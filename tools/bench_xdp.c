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
 * Cases: established (a primed TCP flow, ACKs), nat_reply (the backend's
 * ACK to the SNAT address:port of that flow), new_flow (a SYN of a new
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
#define SEED        0x5eedu
#define IF_IN       "bx0"
#define IF_SINK     "bx1"

/* Addresses (host order) inside the private namespace. */
#define CLIENT      0xc6120001u /* 198.18.0.1 */
#define VIP         0xc612000au /* 198.18.0.10 */
#define NON_VIP     0xc6120063u /* 198.18.0.99 */
#define SNAT        0xc61201feu /* 198.18.1.254 */
#define BACKEND0    0xc6120102u /* 198.18.1.2 + i */
#define VIP_PORT    80
#define BE_PORT     3000
#define CLIENT_PORT 40000

struct bench_tmpl { /* mirrors bpf/bench_tx.bpf.c */
	__u32 vary;
	__u32 pad;
	__u8  data[PKT_LEN];
};

struct ctx {
	struct bench_tx *bt;
	struct lb_dp *dp;
	int ifindex;
	__u32 repeat, new_repeat;
	int runs;
	const char *only;       /* run just this case */
	bool verbose;
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
	char cmds[8192], ip[32];
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
		"neigh add 198.18.0.1 lladdr 02:00:00:00:00:01 dev " IF_IN " nud permanent\n");
	for (int i = 0; i < NBACKENDS; i++) {
		a.s_addr = htonl(BACKEND0 + (__u32)i);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		off += (size_t)snprintf(cmds + off, sizeof(cmds) - off,
			"neigh add %s lladdr 02:00:00:00:01:%02x dev " IF_IN " nud permanent\n",
			ip, i);
	}
	if ((err = run_ip_batch(cmds)))
		return err;
	/* bpf_fib_lookup refuses to route for a device that does not forward. */
	if ((err = write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1")))
		return err;
	return write_file("/proc/sys/net/ipv4/conf/" IF_IN "/forwarding", "1");
}

/* ------------------------------------------------------------ data path */

static int setup_lb(struct lb_dp **out)
{
	struct lb_dp_opts o = { 0 };
	struct lb_config cfg = {
		.hash_seed = SEED,
		.snat_port_lo = LB_SNAT_PORT_LO,
		.snat_port_hi = LB_SNAT_PORT_HI,
	};
	struct lb_maglev_backend mb[NBACKENDS];
	struct lb_vip_key k;
	struct lb_vip v;
	struct lb_dp *dp;
	__u32 *ids = NULL, nids = 0;
	int err;

	if ((err = lb_dp_open(&o, &dp)))
		return err;
	if ((err = lb_dp_set_config(dp, &cfg)))
		goto fail;
	memset(mb, 0, sizeof(mb));
	for (__u32 i = 0; i < NBACKENDS; i++) {
		struct lb_backend b;

		memset(&b, 0, sizeof(b));
		b.addr.v4 = htonl(BACKEND0 + i);
		b.port = htons(BE_PORT);
		b.family = LB_AF_INET;
		b.state = LB_BE_UP;
		b.weight = 1;
		b.gen = 1;
		if ((err = lb_dp_backend_set(dp, i + 1, &b)))
			goto fail;
		mb[i].addr = b.addr;
		mb[i].port = b.port;
		mb[i].family = LB_AF_INET;
		mb[i].weight = 1;
		mb[i].id = i + 1;
	}
	err = lb_table_build(LB_METHOD_MAGLEV, mb, NBACKENDS, SEED, LB_MAGLEV_DEFAULT_SIZE,
			     &ids, &nids);
	if (!err)
		err = lb_dp_table_swap(dp, 0, ids, nids);
	free(ids);
	if (err)
		goto fail;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.addr.v4 = htonl(VIP);
	k.port = htons(VIP_PORT);
	k.proto = IPPROTO_TCP;
	k.family = LB_AF_INET;
	v.id = 0;
	v.method = LB_METHOD_MAGLEV;
	v.fwd = LB_FWD_NAT;
	v.family = LB_AF_INET;
	v.flags = LB_VIP_F_SNAT_SET;
	v.table_size = nids;
	v.snat_addr.v4 = htonl(SNAT);
	if ((err = lb_dp_vip_set(dp, &k, &v)))
		goto fail;
	*out = dp;
	return 0;
fail:
	lb_dp_close(dp);
	return err;
}

static int set_tmpl(struct ctx *c, const __u8 *pkt, bool vary)
{
	struct bench_tmpl t;
	__u32 zero = 0;

	memset(&t, 0, sizeof(t));
	t.vary = vary;
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

enum expect { EXP_EST, EXP_NEW, EXP_REPLY, EXP_PASS };

/* Did every packet of the run take the path the case is about? */
static void check_path(const __u64 *e0, const __u64 *e1, const __u64 *d0, const __u64 *d1,
		       enum expect x, __u32 repeat, char *msg, size_t len)
{
	__u64 tx = e1[LB_EV_TX] - e0[LB_EV_TX];
	__u64 nw = e1[LB_EV_FLOW_NEW] - e0[LB_EV_FLOW_NEW];
	__u64 rp = e1[LB_EV_REPLY] - e0[LB_EV_REPLY];
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
	else if (x == EXP_EST && nw)
		snprintf(msg, len, "FAIL:%llu new flows", (unsigned long long)nw);
	else if (x == EXP_REPLY && rp != repeat)
		snprintf(msg, len, "FAIL:replies %llu of %u", (unsigned long long)rp, repeat);
	/* Each page's first run sees the input tuple itself (a flow already
	 * open), so a batch or two of every run are not new flows. */
	else if (x == EXP_NEW && nw * 100 < (__u64)repeat * 99)
		snprintf(msg, len, "FAIL:new flows %llu of %u", (unsigned long long)nw, repeat);
}

static int bench_case(struct ctx *c, const char *name, const __u8 *pkt, bool vary,
		      enum expect x, __u32 repeat)
{
	int bare_fd = bpf_program__fd(x == EXP_PASS ? c->bt->progs.bench_pass
						    : c->bt->progs.bench_tx);
	int lb_fd = lb_dp_xdp_prog_fd(c->dp);
	struct series bare = { .n = 0 }, lb = { .n = 0 }, ratio = { .n = 0 };
	__u64 e0[LB_EVENTS], e1[LB_EVENTS], d0[LB_DROP_REASONS], d1[LB_DROP_REASONS];
	char check[96] = "";
	double bm, lm, rm;
	int err;

	if (c->only && strcmp(c->only, name))
		return 0;
	if ((err = set_tmpl(c, pkt, vary)))
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
					check_path(e0, e1, d0, d1, x, repeat, check, sizeof(check));
			}
			if (err)
				return err;
		}
	}
	for (int r = 0; r < c->runs; r++)
		ratio.ns[ratio.n++] = bare.ns[r] > 0 ? lb.ns[r] / bare.ns[r] : 0;
	rm = median(&ratio);
	bm = median(&bare);
	lm = median(&lb);
	printf("%s,%s,%.0f,%.0f,%.3f,%.3f,%.0f,%.0f,%.0f,%.0f,%.0f,%u,%d,%s\n", name,
	       x == EXP_PASS ? "bench_pass" : "bench_tx", bm, lm, rm,
	       bare.ns[0] > 0 ? lb.ns[0] / bare.ns[0] : 0, lm - bm,
	       bare.ns[0], bare.ns[bare.n - 1], lb.ns[0], lb.ns[lb.n - 1], repeat, c->runs,
	       check[0] ? check : "ok");
	fflush(stdout);
	return 0;
}

static int bench_all(struct ctx *c)
{
	__u8 syn[PKT_LEN], ack[PKT_LEN], out[256], reply[PKT_LEN], pass[PKT_LEN];
	__u32 verdict = 0, be, snat_port;
	int err;

	build_pkt(syn, CLIENT, CLIENT_PORT, VIP, VIP_PORT, 0x02);
	build_pkt(ack, CLIENT, CLIENT_PORT, VIP, VIP_PORT, 0x10);
	build_pkt(pass, CLIENT, CLIENT_PORT, NON_VIP, VIP_PORT, 0x10);

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

	printf("case,bare_prog,bare_ns,lb_ns,ratio,ratio_best,extra_ns,bare_min,bare_max,lb_min,"
	       "lb_max,repeat,runs,check\n");
	if ((err = bench_case(c, "established", ack, false, EXP_EST, c->repeat)) ||
	    (err = bench_case(c, "nat_reply", reply, false, EXP_REPLY, c->repeat)) ||
	    (err = bench_case(c, "non_vip_pass", pass, false, EXP_PASS, c->repeat)))
		return err;
	/* Last: the flood of new flows churns the conntrack LRU. */
	return bench_case(c, "new_flow", syn, true, EXP_NEW, c->new_repeat);
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
		"usage: bench_xdp [-r REPEAT] [-n NEW_FLOW_REPEAT] [-R RUNS] [-c CASE] [-v]\n"
		"  per-packet cost of lb_xdp vs a bare XDP_TX program (root; runs in a\n"
		"  private network namespace). CSV on stdout.\n");
	exit(code);
}

int main(int argc, char **argv)
{
	struct ctx c = { .repeat = 1000000, .new_repeat = 100000, .runs = 5 };
	int opt, err, sink_if;

	while ((opt = getopt(argc, argv, "r:n:R:c:vh")) != -1) {
		switch (opt) {
		case 'r': c.repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'n': c.new_repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'R': c.runs = atoi(optarg); break;
		case 'c': c.only = optarg; break;
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
	if ((err = setup_lb(&c.dp))) {
		fprintf(stderr, "bench_xdp: loading lb_xdp: %s\n", strerror(-err));
		goto out;
	}
	err = bench_all(&c);
	if (err)
		fprintf(stderr, "bench_xdp: %s\n", strerror(-err));
	lb_dp_close(c.dp);
out:
	/* The namespace, the veth pair and the sink go away with us. */
	bench_tx__destroy(c.bt);
	return err ? 1 : 0;
}
