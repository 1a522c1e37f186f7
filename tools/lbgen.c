// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbgen - the benchmarks' packet generator: many distinct flows out of a
 * veth at the rate the machine allows (or a set one), from BPF_PROG_RUN in
 * live-frames mode (xdp-trafficgen does not run on this kernel).
 *
 *   lbgen -i DEV --dmac MAC -s SRC -d ADDR:PORT [--udp|--tcp] [-f FLOWS]
 *         [-n NEW_PERMILLE] [-r PPS] [-t SECONDS] [-c CPUS] [-j]
 *   lbgen --sink DEV | --unsink DEV
 *
 * Each CPU of CPUS (default 0; "0,1", "0-1") runs one thread pinned to it
 * that calls BPF_PROG_RUN (BPF_F_TEST_XDP_LIVE_FRAMES, ingress DEV) on
 * lbgen_tx (bpf/lbgen.bpf.c): every run writes one frame to SRC..:port ->
 * ADDR:PORT, Ethernet destination MAC (the next hop: DEV's peer), and
 * XDP_TX sends it out of DEV into its peer, where the device under test
 * receives it. The peer must take XDP frames: an XDP program or GRO on.
 * The softirq work the frame causes on the receiving side runs on the
 * sending CPU, so CPUS is also the number of cores the path under test
 * gets (give DEV's peer as many rx queues).
 *
 * Flows: FLOWS established flows (default 1000) are cycled through, each
 * CPU sending its own share (CPU c the flows f with f % N == c % N, N the
 * number of CPUs given), as a NIC's receive-side scaling would;
 * NEW_PERMILLE of every 1000 frames (default 0) open a flow never sent
 * before (TCP: SYN; established frames are ACKs). Flow f has source port
 * 1024 + f % 64512 and source address SRC + f / 64512 (last 16 bits).
 *
 * --sink DEV attaches lbgen_sink (XDP_DROP) to DEV in native mode and
 * exits: the veth counts what it dropped (ethtool -S DEV:
 * rx_queue_N_xdp_drops), which is what arrived. --unsink detaches it.
 *
 * Output: "sent=N new=N elapsed_ms=N rate=N/s cpus=N" (-j: JSON), where
 * sent counts frames handed to XDP_TX; whether they arrived is the
 * receiver's count. Exit 0, 1 on a runtime error, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "csum.h"
#include "lbgen.skel.h"

#define MAX_CPUS     64
#define MAX_SECONDS  3600
#define SLOT_NS      50000000LL  /* rate limiting: a batch per 50 ms */
#define CALL_NS      100000000LL /* unlimited: aim at 100 ms per call */
#define FIRST_BATCH  4096
#define MAX_BATCH    (1 << 24)
#define PAYLOAD      16

static struct {
	const char *dev;
	int ifindex;
	__u8 smac[6], dmac[6];
	bool have_dmac, have_src, udp, json;
	struct lb_endpoint dst;
	union lb_addr src;
	__u8 src_family;
	__u32 flows, new_permille;
	double rate, seconds;
	int cpus[MAX_CPUS], ncpus;
} opt = { .udp = true, .flows = 1000, .seconds = 1 };

struct worker {
	pthread_t tid;
	int cpu, prog_fd, err;
	struct lb_gen_cfg *cfg;
	long long end_ns;
	double rate;      /* this thread's share, 0: unlimited */
	unsigned long long calls;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(long long t)
{
	struct timespec ts = { .tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---------------------------------------------------------------- frame */

static void put16(__u8 *p, __u16 host)
{
	__u16 v = htons(host);

	memcpy(p, &v, 2);
}

/*
 * The template: flow 0 of the run, an established packet (TCP ACK), every
 * checksum complete (XDP frames carry no offload state).
 */
static void build_template(struct lb_gen_cfg *c)
{
	bool v6 = opt.dst.family == LB_AF_INET6, tcp = !opt.udp;
	size_t alen = v6 ? 16 : 4, l3 = v6 ? 40 : 20, l4 = tcp ? 20 : 8;
	__u8 *f = c->tmpl, *ip = f + 14, *th = ip + l3, pseudo[40];
	size_t len = 14 + l3 + l4 + PAYLOAD, plen = l4 + PAYLOAD;
	__u32 sum;

	if (len < 64)
		len = 64; /* the Ethernet minimum: pad the payload */
	plen = len - 14 - l3;
	memset(c, 0, sizeof(*c));
	c->flows = opt.flows;
	c->new_permille = opt.new_permille;
	c->len = (__u16)len;
	c->l4_off = (__u16)(14 + l3);
	c->ipv6 = v6;
	c->proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
	c->shards = (__u8)opt.ncpus;
	memcpy(f, opt.dmac, 6);
	memcpy(f + 6, opt.smac, 6);
	put16(f + 12, v6 ? 0x86dd : 0x0800);
	if (v6) {
		ip[0] = 0x60;
		put16(ip + 4, (__u16)plen);
		ip[6] = c->proto;
		ip[7] = 64;
		memcpy(ip + 8, opt.src.b, 16);
		memcpy(ip + 24, opt.dst.addr.b, 16);
	} else {
		ip[0] = 0x45;
		put16(ip + 2, (__u16)(len - 14));
		ip[6] = 0x40; /* DF */
		ip[8] = 64;
		ip[9] = c->proto;
		memcpy(ip + 12, &opt.src.v4, 4);
		memcpy(ip + 16, &opt.dst.addr.v4, 4);
		put16(ip + 10, lb_csum_fold(lb_csum_add(0, ip, 20)));
	}
	put16(th, LB_GEN_PORT_LO);
	memcpy(th + 2, &opt.dst.port, 2);
	if (tcp) {
		th[7] = 1;              /* seq 1 */
		th[11] = 1;             /* ack 1 */
		th[12] = 5 << 4;
		th[13] = 0x10;          /* ACK */
		put16(th + 14, 65535);
	} else {
		put16(th + 4, (__u16)plen);
	}
	memset(th + l4, 'x', plen - l4);
	/* pseudo header: addresses, protocol, length */
	memset(pseudo, 0, sizeof(pseudo));
	memcpy(pseudo, ip + (v6 ? 8 : 12), 2 * alen);
	sum = lb_csum_add(0, pseudo, 2 * alen);
	sum += c->proto + (__u32)plen;
	sum = lb_csum_add(sum, th, plen);
	put16(th + (tcp ? 16 : 6), lb_csum_fold(sum) ? lb_csum_fold(sum) : 0xffff);
}

/* ---------------------------------------------------------------- sending */

/* One BPF_PROG_RUN of n live frames. */
static int send_batch(struct worker *w, __u32 n)
{
	struct xdp_md xmd = { .data_end = w->cfg->len, .ingress_ifindex = (__u32)opt.ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = w->cfg->tmpl, .data_size_in = w->cfg->len,
		.ctx_in = &xmd, .ctx_size_in = sizeof(xmd),
		.repeat = (int)n, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	w->calls++;
	return bpf_prog_test_run_opts(w->prog_fd, &o) ? -errno : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	__u32 batch = FIRST_BATCH;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if ((w->err = -pthread_setaffinity_np(pthread_self(), sizeof(set), &set)))
		return NULL;
	for (long long t = now_ns(); t < w->end_ns; t = now_ns()) {
		if (w->rate > 0) {
			/* a slot's worth, then sleep out the slot */
			double n = w->rate * SLOT_NS / 1e9;

			batch = n < 1 ? 1 : n > MAX_BATCH ? MAX_BATCH : (__u32)n;
			if ((w->err = send_batch(w, batch)))
				return NULL;
			sleep_until(t + SLOT_NS < w->end_ns ? t + SLOT_NS : w->end_ns);
			continue;
		}
		/* as fast as it goes, in calls of about CALL_NS, none past the end */
		long long left = w->end_ns - t;

		if ((w->err = send_batch(w, batch)))
			return NULL;
		long long took = now_ns() - t;
		double per = took > 0 ? (double)took / batch : 1;
		double next = (left - took < CALL_NS ? left - took : CALL_NS) / per;

		if (next < 1)
			break;
		batch = next > MAX_BATCH ? MAX_BATCH : (__u32)next;
	}
	return NULL;
}

/* ---------------------------------------------------------------- setup */

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: lbgen -i DEV --dmac MAC -s SRC -d ADDR:PORT [--udp|--tcp] [-f FLOWS]\n"
		"             [-n NEW_PERMILLE] [-r PPS] [-t SECONDS] [-c CPUS] [-j]\n"
		"       lbgen --sink DEV | --unsink DEV\n"
		"  -i DEV          send out of DEV (a veth; the device under test is its peer)\n"
		"  --dmac MAC      Ethernet destination (DEV's peer)\n"
		"  -s SRC          first source address (flows add to its last 16 bits)\n"
		"  -d ADDR:PORT    destination ([V6]:PORT for IPv6)\n"
		"  --udp, --tcp    protocol (default udp; tcp sends ACKs, SYNs for new flows)\n"
		"  -f FLOWS        established flows cycled through (default 1000, max %u)\n"
		"  -n PERMILLE     of every 1000 frames, this many open a new flow (default 0)\n"
		"  -r PPS          at most PPS frames/s in all (default: as fast as it goes)\n"
		"  -t SECONDS      how long (default 1, max %d; fractions allowed)\n"
		"  -c CPUS         one sending thread per CPU: \"0\", \"0,1\", \"0-3\" (default 0)\n"
		"  -j              JSON output\n"
		"  --sink DEV      attach an XDP_DROP program to DEV (native) and exit\n"
		"  --unsink DEV    detach it\n",
		LB_GEN_MAX_FLOWS, MAX_SECONDS);
	exit(code);
}

static void bad(const char *what, const char *arg)
{
	fprintf(stderr, "lbgen: bad %s '%s'\n", what, arg);
	exit(2);
}

static double num_arg(const char *what, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "lbgen: %s '%s' is not a number in %g..%g\n", what, s, min, max);
		exit(2);
	}
	return v;
}

static bool parse_mac(const char *s, __u8 *mac)
{
	unsigned m[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
		   &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		if (m[i] > 255)
			return false;
		mac[i] = (__u8)m[i];
	}
	return true;
}

/* "0", "0,2", "0-3", "0-1,4" */
static void parse_cpus(const char *s)
{
	const char *p = s;

	opt.ncpus = 0;
	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p || a < 0)
			bad("CPU list", s);
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				bad("CPU list", s);
		}
		for (long c = a; c <= b; c++) {
			if (opt.ncpus == MAX_CPUS || c >= CPU_SETSIZE)
				bad("CPU list (too many)", s);
			opt.cpus[opt.ncpus++] = (int)c;
		}
		if (*end == ',')
			end++;
		else if (*end)
			bad("CPU list", s);
		p = end;
	}
	if (!opt.ncpus)
		bad("CPU list", s);
}

static int read_mac(const char *dev, __u8 *mac)
{
	char path[64 + IF_NAMESIZE], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", dev);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return parse_mac(buf, mac) ? 0 : -EINVAL;
}

/* --sink / --unsink */
static int sink(const char *dev, bool attach)
{
	struct lbgen *skel;
	int ifindex = (int)if_nametoindex(dev), err;

	if (!ifindex) {
		fprintf(stderr, "lbgen: no interface '%s'\n", dev);
		return 1;
	}
	if (!attach) {
		err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
		if (err)
			fprintf(stderr, "lbgen: detach from %s: %s\n", dev, strerror(-err));
		return err ? 1 : 0;
	}
	skel = lbgen__open_and_load();
	if (!skel) {
		fprintf(stderr, "lbgen: loading bpf/lbgen.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	err = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.lbgen_sink),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err)
		fprintf(stderr, "lbgen: attach to %s: %s\n", dev, strerror(-err));
	lbgen__destroy(skel); /* the attachment holds the program */
	return err ? 1 : 0;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dmac", required_argument, NULL, 'M' },
		{ "udp", no_argument, NULL, 'U' },
		{ "tcp", no_argument, NULL, 'T' },
		{ "sink", required_argument, NULL, 'S' },
		{ "unsink", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;

	opt.cpus[0] = 0;
	opt.ncpus = 1;
	while ((o = getopt_long(argc, argv, "i:s:d:f:n:r:t:c:jh", lopts, NULL)) != -1) {
		switch (o) {
		case 'i': opt.dev = optarg; break;
		case 'M':
			if (!parse_mac(optarg, opt.dmac))
				bad("--dmac (want aa:bb:cc:dd:ee:ff)", optarg);
			opt.have_dmac = true;
			break;
		case 's':
			if (lb_addr_parse(optarg, &opt.src, &opt.src_family))
				bad("source address (-s)", optarg);
			opt.have_src = true;
			break;
		case 'd':
			if (lb_endpoint_parse(optarg, &opt.dst) || !opt.dst.port)
				bad("destination (-d ADDR:PORT or [V6]:PORT)", optarg);
			break;
		case 'f': opt.flows = (__u32)num_arg("-f", optarg, 1, LB_GEN_MAX_FLOWS / 2); break;
		case 'n': opt.new_permille = (__u32)num_arg("-n", optarg, 0, 1000); break;
		case 'r': opt.rate = num_arg("-r", optarg, 1, 1e9); break;
		case 't': opt.seconds = num_arg("-t", optarg, 0.01, MAX_SECONDS); break;
		case 'c': parse_cpus(optarg); break;
		case 'j': opt.json = true; break;
		case 'U': opt.udp = true; break;
		case 'T': opt.udp = false; break;
		case 'S': exit(sink(optarg, true));
		case 'X': exit(sink(optarg, false));
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc || !opt.dev || !opt.have_dmac || !opt.have_src || !opt.dst.family)
		usage(2);
	if (opt.src_family != opt.dst.family)
		bad("source address (not the destination's family)",
		    opt.src_family == LB_AF_INET6 ? "IPv6" : "IPv4");
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_CPUS];
	struct lb_gen_state st[MAX_CPUS];
	struct lb_gen_cfg cfg;
	unsigned long long sent = 0, nflows = 0;
	struct lbgen *skel;
	long long t0, elapsed;
	__u32 zero = 0;
	int err = 0, ncpu = libbpf_num_possible_cpus();

	parse_args(argc, argv);
	opt.ifindex = (int)if_nametoindex(opt.dev);
	if (!opt.ifindex || read_mac(opt.dev, opt.smac)) {
		fprintf(stderr, "lbgen: no interface '%s' (or no MAC address)\n", opt.dev);
		return 1;
	}
	if (ncpu <= 0 || ncpu > MAX_CPUS) {
		fprintf(stderr, "lbgen: %d possible CPUs (at most %d)\n", ncpu, MAX_CPUS);
		return 1;
	}
	build_template(&cfg);
	skel = lbgen__open_and_load();
	if (!skel) {
		fprintf(stderr, "lbgen: loading bpf/lbgen.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.cfg), &zero, &cfg, BPF_ANY)) {
		fprintf(stderr, "lbgen: writing the template: %s\n", strerror(errno));
		lbgen__destroy(skel);
		return 1;
	}
	t0 = now_ns();
	for (int i = 0; i < opt.ncpus; i++) {
		w[i] = (struct worker){ .cpu = opt.cpus[i], .cfg = &cfg,
			.prog_fd = bpf_program__fd(skel->progs.lbgen_tx),
			.end_ns = t0 + (long long)(opt.seconds * 1e9),
			.rate = opt.rate / opt.ncpus };
		if ((err = -pthread_create(&w[i].tid, NULL, worker_main, &w[i]))) {
			fprintf(stderr, "lbgen: thread: %s\n", strerror(-err));
			opt.ncpus = i;
			break;
		}
	}
	for (int i = 0; i < opt.ncpus; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].err) {
			fprintf(stderr, "lbgen: CPU %d: %s\n", w[i].cpu, strerror(-w[i].err));
			err = w[i].err;
		}
	}
	elapsed = now_ns() - t0;
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.state), &zero, st)) {
		for (int i = 0; i < ncpu; i++) {
			sent += st[i].packets;
			nflows += st[i].new_flows;
		}
	}
	lbgen__destroy(skel);
	printf(opt.json ? "{\"sent\":%llu,\"new\":%llu,\"elapsed_ms\":%lld,\"rate\":%.0f,\"cpus\":%d}\n"
			: "sent=%llu new=%llu elapsed_ms=%lld rate=%.0f/s cpus=%d\n",
	       sent, nflows, elapsed / 1000000, elapsed ? sent * 1e9 / elapsed : 0.0, opt.ncpus);
	return err ? 1 : 0;
}
