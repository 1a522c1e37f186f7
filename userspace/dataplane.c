// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "dataplane.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_xdp.skel.h"
#include "lb_tc.skel.h"
#include "lb_sk.skel.h"

#define LB_DP_MAX_LINKS 32

/*
 * Our clsact ingress filter is identified by this handle and priority. With
 * libbpf 1.1 there are no tcx links to pin: the filter lives on in the
 * kernel after lbd exits, and a restarted lbd adopts it simply by attaching
 * at the same handle/priority with BPF_TC_F_REPLACE (an atomic program swap,
 * no packet sees no filter) and detaches it by the same pair.
 */
#define LB_TC_HANDLE   0x1bd
#define LB_TC_PRIORITY 1

struct lb_dp_link {
	int ifindex;
	enum lb_dp_mode mode;
	int fd;
};

struct lb_dp {
	struct lb_xdp *xdp;
	struct lb_tc *tc;       /* NULL unless lb_dp_opts.load_tc */
	struct lb_sk *sk;       /* socket lookup (forward local); loaded on attach */
	int sk_link;            /* its netns link; -1: not attached */
	char pin_root[PATH_MAX - 64];
	bool pinned;
	bool adopted;
	int ncpus;
	__s64 *conns;           /* backend_conns, mapped (lb_dp_conn_sweep) */
	struct lb_dp_link links[LB_DP_MAX_LINKS];  /* fd -1: a TC filter */
	int nlinks;
};

/* backend_conns, as mapped (whole pages) */
#define CONNS_BYTES (((size_t)LB_MAX_BACKENDS * sizeof(__s64) + 4095) & ~(size_t)4095)

/* The other objects (TC, socket lookup) share every map of the XDP object
 * (same fds), so all programs see one conntrack and one set of VIPs
 * whatever is pinned. */
static int reuse_maps(const struct lb_dp *dp, struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		struct bpf_map *xm = bpf_object__find_map_by_name(dp->xdp->obj, bpf_map__name(m));
		int err;

		bpf_map__set_pin_path(m, NULL);
		if (!xm)
			continue; /* the object's own .rodata and the like */
		err = bpf_map__reuse_fd(m, bpf_map__fd(xm));
		if (err)
			return err;
	}
	return 0;
}

/*
 * Put this load's new-flow program in its tail-call slot (lb_abi.h, enum
 * lb_call). Done at every load: a pinned array that an earlier lbd filled
 * still holds that lbd's program, which the kernel keeps alive through it.
 */
static int calls_fill(struct bpf_map *calls, const struct bpf_program *new_flow)
{
	__u32 k = LB_CALL_NEW_FLOW;
	int fd = bpf_program__fd(new_flow);

	if (bpf_map_update_elem(bpf_map__fd(calls), &k, &fd, BPF_ANY))
		return -errno;
	return 0;
}

int lb_dp_load_tc(struct lb_dp *dp)
{
	int err;

	if (!dp)
		return -ENODEV;
	if (dp->tc)
		return 0;
	dp->tc = lb_tc__open();
	if (!dp->tc)
		return -errno;
	err = reuse_maps(dp, dp->tc->obj);
	if (err)
		goto fail;
	err = lb_tc__load(dp->tc);
	if (!err)
		err = calls_fill(dp->tc->maps.tc_calls, dp->tc->progs.lb_tc_new);
	if (!err)
		return 0;
fail:
	lb_tc__destroy(dp->tc);
	dp->tc = NULL;
	return err;
}

static const char *const drop_names[LB_DROP_REASONS] = {
	[LB_DROP_TRUNC_L2] = "truncated_l2",
	[LB_DROP_TRUNC_L3] = "truncated_l3",
	[LB_DROP_BAD_L3] = "bad_l3",
	[LB_DROP_TRUNC_L4] = "truncated_l4",
	[LB_DROP_BAD_L4] = "bad_l4",
	[LB_DROP_FRAGMENT] = "fragment",
	[LB_DROP_EXTHDR] = "too_many_ext_headers",
	[LB_DROP_NO_BACKEND] = "no_backend",
	[LB_DROP_NO_TABLE] = "no_table",
	[LB_DROP_SNAT_EXHAUSTED] = "snat_exhausted",
	[LB_DROP_CT_INSERT] = "conntrack_insert",
	[LB_DROP_FIB] = "no_route",
	[LB_DROP_BAD_ICMP] = "bad_icmp",
	[LB_DROP_MTU] = "mtu_exceeded",
	[LB_DROP_NO_SOURCE] = "no_encap_source",
	[LB_DROP_NO_PROG] = "no_new_flow_program",
};

static const char *const event_names[LB_EVENTS] = {
	[LB_EV_PASS_TTL] = "pass_ttl",
	[LB_EV_PASS_NO_NEIGH] = "pass_no_neigh",
	[LB_EV_TX] = "tx",
	[LB_EV_REDIRECT] = "redirect",
	[LB_EV_REPLY] = "nat_reply",
	[LB_EV_ICMP_FWD] = "icmp_forwarded",
	[LB_EV_FLOW_NEW] = "flow_new",
	[LB_EV_FLOW_RESELECT] = "flow_reselect",
	[LB_EV_REDIRECT_NEIGH] = "redirect_neigh",
	[LB_EV_LOCAL] = "local",
	[LB_EV_LOCAL_SOCK] = "local_sock",
	[LB_EV_ENCAP] = "encap",
	[LB_EV_TO_OWNER] = "to_owner",
	[LB_EV_CT_PROMOTE] = "ct_promoted",
	[LB_EV_CT_FULL] = "ct_established_full",
};

const char *lb_drop_name(unsigned int r)
{
	return r < LB_DROP_REASONS && drop_names[r] ? drop_names[r] : "unknown";
}

const char *lb_event_name(unsigned int e)
{
	return e < LB_EVENTS && event_names[e] ? event_names[e] : "unknown";
}

const char *lb_dp_mode_name(enum lb_dp_mode m)
{
	switch (m) {
	case LB_DP_XDP: return "xdp";
	case LB_DP_XDP_GENERIC: return "xdp-generic";
	case LB_DP_TC: return "tc";
	}
	return "unknown";
}

static int pin_root_check(const char *dir)
{
	struct statfs st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (statfs(dir, &st))
		return -errno;
	if (st.f_type != BPF_FS_MAGIC)
		return -ENOTSUP; /* pins elsewhere would not survive lbd */
	return 0;
}

int lb_dp_open(const struct lb_dp_opts *o, struct lb_dp **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct lb_dp *dp;
	struct bpf_map *m;
	char probe[PATH_MAX + 16];
	__u32 ct = o->ct_size ? o->ct_size : LB_CT_DEFAULT_SIZE;
	__u32 ctn = o->ct_new_size ? o->ct_new_size : LB_CT_NEW_DEFAULT_SIZE;
	int err;

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->sk_link = -1;
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		err = dp->ncpus ? dp->ncpus : -EINVAL;
		goto fail;
	}
	if (o->pin_root) {
		err = pin_root_check(o->pin_root);
		if (err)
			goto fail;
		snprintf(dp->pin_root, sizeof(dp->pin_root), "%s", o->pin_root);
		snprintf(probe, sizeof(probe), "%s/%s", o->pin_root, LB_MAP_VIPS);
		dp->adopted = access(probe, F_OK) == 0;
		dp->pinned = true;
		oo.pin_root_path = dp->pin_root;
	}
	dp->xdp = lb_xdp__open_opts(&oo);
	if (!dp->xdp) {
		err = -errno;
		goto fail;
	}
	bpf_object__for_each_map(m, dp->xdp->obj) {
		if (!dp->pinned)
			bpf_map__set_pin_path(m, NULL);
	}
	/* Flows of each family (lb_abi.h: struct lb_flow_key4) in each tier
	 * (bpf/lib/conntrack.h): ct_size established, ct_new_size new. */
	bpf_map__set_max_entries(dp->xdp->maps.ct_est, ct);
	bpf_map__set_max_entries(dp->xdp->maps.nat_est, ct);
	bpf_map__set_max_entries(dp->xdp->maps.ct4_est, ct);
	bpf_map__set_max_entries(dp->xdp->maps.nat4_est, ct);
	/* Twice the room for the new flows' reply mappings: under LRU pressure
	 * a live flow then loses its conntrack entry first, which the next
	 * packet recreates with the same SNAT port (lb_nat_is_ours); a lost
	 * reply mapping would make the node's stack reset the connection. */
	bpf_map__set_max_entries(dp->xdp->maps.ct, ctn);
	bpf_map__set_max_entries(dp->xdp->maps.nat, ctn * 2);
	bpf_map__set_max_entries(dp->xdp->maps.ct4, ctn);
	bpf_map__set_max_entries(dp->xdp->maps.nat4, ctn * 2);
	/* room for a connection per flow of either tier and family
	 * (allocated as they open: BPF_F_NO_PREALLOC) */
	bpf_map__set_max_entries(dp->xdp->maps.conn_open, 2 * (ct + ctn));
	err = lb_xdp__load(dp->xdp);
	if (!err)
		err = calls_fill(dp->xdp->maps.xdp_calls, dp->xdp->progs.lb_xdp_new);
	if (err)
		goto fail;
	dp->conns = mmap(NULL, CONNS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			 bpf_map__fd(dp->xdp->maps.backend_conns), 0);
	if (dp->conns == MAP_FAILED) {
		err = -errno;
		dp->conns = NULL;
		goto fail;
	}
	if (o->load_tc) {
		err = lb_dp_load_tc(dp);
		if (err)
			goto fail;
	}
	if (!dp->adopted) {
		struct lb_config cfg = {
			.snat_port_lo = LB_SNAT_PORT_LO,
			.snat_port_hi = LB_SNAT_PORT_HI,
		};

		err = lb_dp_set_config(dp, &cfg);
		if (err)
			goto fail;
	}
	*out = dp;
	return 0;
fail:
	lb_dp_close(dp);
	return err;
}

void lb_dp_close(struct lb_dp *dp)
{
	if (!dp)
		return;
	for (int i = 0; i < dp->nlinks; i++)
		if (dp->links[i].fd >= 0)
			close(dp->links[i].fd); /* pinned links live on */
	if (dp->sk_link >= 0)
		close(dp->sk_link);
	lb_sk__destroy(dp->sk);
	lb_tc__destroy(dp->tc);
	if (dp->conns)
		munmap(dp->conns, CONNS_BYTES);
	lb_xdp__destroy(dp->xdp);
	free(dp);
}

bool lb_dp_adopted(const struct lb_dp *dp)
{
	return dp && dp->adopted;
}

int lb_dp_xdp_prog_fd(const struct lb_dp *dp)
{
	if (!dp)
		return -ENODEV;
	return bpf_program__fd(dp->xdp->progs.lb_xdp);
}

int lb_dp_tc_prog_fd(const struct lb_dp *dp)
{
	if (!dp)
		return -ENODEV;
	return dp->tc ? bpf_program__fd(dp->tc->progs.lb_tc) : -ENOENT;
}

int lb_dp_map_fd(const struct lb_dp *dp, const char *name)
{
	struct bpf_map *m = dp ? bpf_object__find_map_by_name(dp->xdp->obj, name) : NULL;

	if (!dp)
		return -ENODEV;
	return m ? bpf_map__fd(m) : -ENOENT;
}

static int map_fd(const struct lb_dp *dp, const char *name)
{
	return lb_dp_map_fd(dp, name);
}

static int ct_fd(const struct lb_dp *dp, bool est, bool nat, bool v4);

int lb_dp_flow_lookup(const struct lb_dp *dp, const char *map, const struct lb_flow_key *k,
		      void *val)
{
	bool v4 = k->family == LB_AF_INET, ct = strcmp(map, LB_MAP_CT) == 0;
	struct lb_flow_key4 k4;
	int fd;

	if (!ct && strcmp(map, LB_MAP_NAT))
		return -EINVAL;
	if (v4)
		lb_flow_key4(&k4, k);
	for (int est = 1; est >= 0; est--) {
		fd = ct_fd(dp, est, !ct, v4);
		if (fd < 0)
			return fd;
		if (!bpf_map_lookup_elem(fd, v4 ? (const void *)&k4 : k, val))
			return 0;
	}
	return -errno;
}

static int upd(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int get(int fd, const void *k, void *v)
{
	return bpf_map_lookup_elem(fd, k, v) ? -errno : 0;
}

/* fib_gen is the data path's, not the caller's: carried over and bumped,
 * so every config write also makes flows route again. */
/* ---- connection tracking: collection and counts ---- */

#define CT_CHUNK 1024

/* Call fn on every entry of hash map fd, CT_CHUNK at a time (batch
 * lookups: a bucket cursor, which entries fn deletes do not disturb). */
static int map_each(int fd, size_t ksz, size_t vsz,
		    int (*fn)(void *ctx, const void *k, const void *v), void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	char *keys = malloc(CT_CHUNK * ksz), *vals = malloc(CT_CHUNK * vsz);
	__u64 token = 0;
	bool first = true;
	int err = 0;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!err) {
		__u32 n = CT_CHUNK;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &n, &bo);
		bool end = rc && errno == ENOENT;

		if (rc && !end) {
			err = -errno;
			break;
		}
		first = false;
		for (__u32 i = 0; i < n && !err; i++)
			err = fn(ctx, keys + i * ksz, vals + i * vsz);
		if (end)
			break;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static void key_from4(struct lb_flow_key *k, const struct lb_flow_key4 *k4)
{
	memset(k, 0, sizeof(*k));
	k->src.v4 = k4->src;
	k->dst.v4 = k4->dst;
	k->sport = k4->sport;
	k->dport = k4->dport;
	k->proto = k4->proto;
	k->family = LB_AF_INET;
}

/* fd of a conntrack map by tier, kind and family. */
static int ct_fd(const struct lb_dp *dp, bool est, bool nat, bool v4)
{
	static const char *const names[2][2][2] = {
		{ { LB_MAP_CT, LB_MAP_CT4 }, { LB_MAP_NAT, LB_MAP_NAT4 } },
		{ { LB_MAP_CT_EST, LB_MAP_CT4_EST }, { LB_MAP_NAT_EST, LB_MAP_NAT4_EST } },
	};

	return map_fd(dp, names[est][nat][v4]);
}

/* Look up, or delete (val NULL), k in a conntrack map of its family. */
static int ct_op(const struct lb_dp *dp, bool est, bool nat, const struct lb_flow_key *k,
		 void *val)
{
	bool v4 = k->family == LB_AF_INET;
	struct lb_flow_key4 k4;
	const void *key = k;
	int fd = ct_fd(dp, est, nat, v4);

	if (v4) {
		lb_flow_key4(&k4, k);
		key = &k4;
	}
	if (val)
		return bpf_map_lookup_elem(fd, key, val) ? -errno : 0;
	return bpf_map_delete_elem(fd, key) && errno != ENOENT ? -errno : 0;
}

/* map_each over one conntrack map (tier est, kind nat, family v4). */
static int ct_each(struct lb_dp *dp, bool est, bool nat, bool v4,
		   int (*fn)(void *ctx, const void *k, const void *v), void *ctx)
{
	return map_each(ct_fd(dp, est, nat, v4),
			v4 ? sizeof(struct lb_flow_key4) : sizeof(struct lb_flow_key),
			nat ? sizeof(struct lb_nat) : sizeof(struct lb_flow), fn, ctx);
}

struct gc_run {
	struct lb_dp *dp;
	__u32 now, since;
	const struct lb_ct_timeouts *t;
	struct lb_ct_gc_stats *st;
	bool v4;
};

/* Seconds since seen (a flow counts as seen at run->since at the latest). */
static __u32 idle_for(const struct gc_run *r, __u32 seen)
{
	__u32 last = (__s32)(seen - r->since) > 0 ? seen : r->since;

	return (__s32)(r->now - last) > 0 ? r->now - last : 0;
}

static __u32 timeout_of(const struct gc_run *r, __u8 proto, __u8 flags)
{
	if (flags & LB_FLOW_F_CLOSING)
		return r->t->closed;
	return proto == IPPROTO_TCP ? r->t->tcp : r->t->udp;
}

/* The reply tuple of NAT flow f of client tuple k, if its backend slot
 * still holds the flow's backend (else the flow is over anyway). */
static bool gc_reply_key(const struct gc_run *r, const struct lb_flow_key *k,
			 const struct lb_flow *f, struct lb_flow_key *rk)
{
	struct lb_backend be;

	if (lb_dp_backend_get(r->dp, f->backend_id, &be) || be.state == LB_BE_UNUSED ||
	    be.gen != f->backend_gen)
		return false;
	memset(rk, 0, sizeof(*rk));
	rk->src = be.addr;
	rk->dst = f->snat_addr;
	rk->sport = be.port;
	rk->dport = f->snat_port;
	rk->proto = k->proto;
	rk->family = k->family;
	return true;
}

static bool nat_of(const struct lb_nat *n, const struct lb_flow_key *k)
{
	return n->client_port == k->sport && n->vip_port == k->dport &&
	       !memcmp(&n->client, &k->src, sizeof(n->client)) &&
	       !memcmp(&n->vip, &k->dst, sizeof(n->vip));
}

static int gc_flow(void *ctx, const void *key, const void *val)
{
	struct gc_run *r = ctx;
	const struct lb_flow *f = val;
	struct lb_flow_key k, rk;
	struct lb_nat n;
	bool have_rk;
	__u32 to;

	if (r->v4)
		key_from4(&k, key);
	else
		memcpy(&k, key, sizeof(k));
	to = timeout_of(r, k.proto, f->flags);
	if (idle_for(r, f->seen) <= to) {
		r->st->kept++;
		return 0;
	}
	/* idle this way; the replies may still be coming */
	have_rk = f->fwd == LB_FWD_NAT && gc_reply_key(r, &k, f, &rk) &&
		  !ct_op(r->dp, true, true, &rk, &n) && nat_of(&n, &k);
	if (have_rk && idle_for(r, n.seen) <= to) {
		r->st->kept++;
		return 0;
	}
	if (have_rk && !ct_op(r->dp, true, true, &rk, NULL))
		r->st->nat++;
	if (!ct_op(r->dp, true, false, &k, NULL))
		r->st->flows++;
	return 0;
}

/* A reply mapping idle past its protocol's timeout whose flow is gone
 * (removed above, reselected elsewhere, or never promoted). */
static int gc_nat(void *ctx, const void *key, const void *val)
{
	struct gc_run *r = ctx;
	const struct lb_nat *n = val;
	struct lb_flow_key rk, k;
	struct lb_flow f;

	if (r->v4)
		key_from4(&rk, key);
	else
		memcpy(&rk, key, sizeof(rk));
	if (idle_for(r, n->seen) <= timeout_of(r, rk.proto, 0))
		return 0;
	memset(&k, 0, sizeof(k));
	k.src = n->client;
	k.dst = n->vip;
	k.sport = n->client_port;
	k.dport = n->vip_port;
	k.proto = rk.proto;
	k.family = rk.family;
	if (!ct_op(r->dp, true, false, &k, &f) && f.fwd == LB_FWD_NAT && f.snat_port == rk.dport)
		return 0;
	if (!ct_op(r->dp, true, true, &rk, NULL))
		r->st->nat++;
	return 0;
}

int lb_dp_ct_gc(struct lb_dp *dp, __u32 now, __u32 since, const struct lb_ct_timeouts *t,
		struct lb_ct_gc_stats *out)
{
	struct gc_run r = { .dp = dp, .now = now, .since = since, .t = t, .st = out };
	int err = 0;

	if (!dp)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	for (int v4 = 0; v4 < 2 && !err; v4++) {
		r.v4 = v4;
		err = ct_each(dp, true, false, v4, gc_flow, &r);
		if (!err)
			err = ct_each(dp, true, true, v4, gc_nat, &r);
	}
	return err;
}

struct sweep_run {
	struct lb_dp *dp;
	int fd;
	__u64 gone;
};

/* A connection of conn_open whose flow is in neither tier (on its SNAT
 * port) is over without a FIN or RST seen: lbd's collection or the LRU
 * took its flow. Whoever deletes the entry counts the connection out (the
 * data path does the same on a close): once, on the backend it names. */
static int sweep_conn(void *ctx, const void *key, const void *val)
{
	struct sweep_run *r = ctx;
	struct lb_flow_key k;
	struct lb_backend b;
	struct lb_flow f;
	__u32 v = *(const __u32 *)val, be = v & LB_CONN_ID_MASK;
	__u16 port;

	memcpy(&k, key, sizeof(k));
	port = k.pad;
	k.pad = 0;
	if ((!ct_op(r->dp, true, false, &k, &f) && f.snat_port == port) ||
	    (!ct_op(r->dp, false, false, &k, &f) && f.snat_port == port))
		return 0;
	if (bpf_map_delete_elem(r->fd, key))
		return 0;
	/* as lb_conn_close: the slot's earlier backend's is counted out of nothing */
	if (lb_dp_backend_get(r->dp, be, &b) || !lb_conn_current(v, b.gen))
		return 0;
	__atomic_fetch_sub(&r->dp->conns[be], 1, __ATOMIC_RELAXED);
	r->gone++;
	return 0;
}

int lb_dp_conn_sweep(struct lb_dp *dp, __u64 *gone)
{
	struct sweep_run r = { .dp = dp };
	int err;

	*gone = 0;
	if (!dp || !dp->conns)
		return -ENODEV;
	r.fd = map_fd(dp, LB_MAP_CONN_OPEN);
	err = map_each(r.fd, sizeof(struct lb_flow_key), sizeof(__u32), sweep_conn, &r);
	*gone = r.gone;
	return err;
}

static int count_one(void *ctx, const void *k, const void *v)
{
	(void)k;
	(void)v;
	++*(__u64 *)ctx;
	return 0;
}

int lb_dp_ct_counts(struct lb_dp *dp, struct lb_ct_counts *out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int err = 0;

	if (!dp)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	for (int v4 = 0; v4 < 2 && !err; v4++) {
		err = ct_each(dp, true, false, v4, count_one, &out->established);
		if (!err)
			err = ct_each(dp, false, false, v4, count_one, &out->new_flows);
	}
	memset(&info, 0, sizeof(info));
	if (!err && !bpf_obj_get_info_by_fd(ct_fd(dp, true, false, true), &info, &len))
		out->established_max = info.max_entries;
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	if (!err && !bpf_obj_get_info_by_fd(ct_fd(dp, false, false, true), &info, &len))
		out->new_max = info.max_entries;
	return err;
}

int lb_dp_set_config(struct lb_dp *dp, const struct lb_config *cfg)
{
	struct lb_config cur, c = *cfg;
	__u32 zero = 0;
	int fd = map_fd(dp, LB_MAP_CONFIG);

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	c.fib_gen = get(fd, &zero, &cur) ? 1 : cur.fib_gen + 1;
	c.now = lb_dp_now();
	c.pad = 0;
	return upd(fd, &zero, &c);
}

__u32 lb_dp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u32)ts.tv_sec;
}

/* Flows route again on their next packet; racing a concurrent
 * lb_dp_set_config at worst loses one bump of two. */
int lb_dp_fib_bump(struct lb_dp *dp)
{
	struct lb_config c;
	int err = lb_dp_get_config(dp, &c);

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	return err ? err : lb_dp_set_config(dp, &c);
}

int lb_dp_get_config(struct lb_dp *dp, struct lb_config *cfg)
{
	__u32 zero = 0;

	if (!dp)
		return -ENODEV;
	return get(map_fd(dp, LB_MAP_CONFIG), &zero, cfg);
}

static void vip_marker(const struct lb_vip_key *k, struct lb_vip_key *mk)
{
	memset(mk, 0, sizeof(*mk));
	mk->addr = k->addr;
	mk->family = k->family;
}

int lb_dp_vip_set(struct lb_dp *dp, const struct lb_vip_key *k, const struct lb_vip *v)
{
	struct lb_vip mark = { .id = UINT32_MAX, .family = k->family };
	struct lb_vip_key mk;
	int fd = map_fd(dp, LB_MAP_VIPS), err;

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	if (k->proto == 0)
		return -EINVAL; /* proto 0 is the marker's */
	vip_marker(k, &mk);
	err = upd(fd, &mk, &mark);
	return err ? err : upd(fd, k, v);
}

int lb_dp_vip_del(struct lb_dp *dp, const struct lb_vip_key *k)
{
	int fd = map_fd(dp, LB_MAP_VIPS);
	struct lb_vip_key key, next, mk;
	struct lb_vip val;
	bool others = false;

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	if (bpf_map_delete_elem(fd, k))
		return -errno;
	/* Drop the address marker when no other VIP uses the address. */
	vip_marker(k, &mk);
	for (int r = bpf_map_get_next_key(fd, NULL, &key); !r;
	     r = bpf_map_get_next_key(fd, &key, &next), key = next) {
		if (key.proto && key.family == k->family &&
		    !memcmp(&key.addr, &k->addr, sizeof(key.addr)) &&
		    !bpf_map_lookup_elem(fd, &key, &val)) {
			others = true;
			break;
		}
	}
	if (!others)
		bpf_map_delete_elem(fd, &mk);
	return 0;
}

static int percpu_sum(struct lb_dp *dp, const char *map, __u32 idx, __u64 *out, size_t nfields);

/* vip_retired[vip_id] += the three counters a VIP takes from a backend. */
static int retire_add(struct lb_dp *dp, __u32 vip_id, const struct lb_backend_stats *bs)
{
	int fd = map_fd(dp, LB_MAP_VIP_RETIRED);
	struct lb_vip_stats r;
	int err;

	if (vip_id >= LB_MAX_VIPS)
		return -ERANGE;
	err = get(fd, &vip_id, &r);
	if (err)
		return err;
	r.packets += bs->packets;
	r.bytes += bs->bytes;
	r.new_flows += bs->new_flows;
	return upd(fd, &vip_id, &r);
}

/*
 * Slot id leaves VIP vip_id (released, or reused for another VIP): its
 * counters go to the VIP's retired part and the slot starts again from
 * zero, so the next backend in it is not credited with them. Called after
 * the slot is rewritten; a packet counted in between (on a flow that had
 * looked the old backend up) is lost, not counted twice.
 */
static int backend_retire(struct lb_dp *dp, __u32 id, __u32 vip_id)
{
	size_t vsz = (size_t)dp->ncpus * sizeof(struct lb_backend_stats);
	struct lb_backend_stats bs;
	void *zero;
	int err;

	err = percpu_sum(dp, LB_MAP_BE_STATS, id, (__u64 *)&bs, sizeof(bs) / 8);
	if (!err)
		err = retire_add(dp, vip_id, &bs);
	if (err)
		return err;
	zero = calloc(1, vsz);
	if (!zero)
		return -ENOMEM;
	err = upd(map_fd(dp, LB_MAP_BE_STATS), &id, zero);
	free(zero);
	return err;
}

/* Slot id's live connection count back to zero: in the mapping the sweep
 * counts out on (lb_dp_conn_sweep), else through the map. */
static int conns_zero(struct lb_dp *dp, __u32 id)
{
	__s64 zero = 0;

	if (dp->conns) {
		__atomic_store_n(&dp->conns[id], 0, __ATOMIC_RELAXED);
		return 0;
	}
	return upd(map_fd(dp, LB_MAP_CONNS), &id, &zero);
}

int lb_dp_backend_set(struct lb_dp *dp, __u32 id, const struct lb_backend *b)
{
	struct lb_backend old;
	int err;

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	if (id >= LB_MAX_BACKENDS)
		return -ERANGE;
	err = get(map_fd(dp, LB_MAP_BACKENDS), &id, &old);
	if (!err)
		err = upd(map_fd(dp, LB_MAP_BACKENDS), &id, b);
	/* A new generation is a released or reused slot: the connections
	 * counted so far were its earlier backend's, which the data path now
	 * counts out of nothing (lb_abi.h: lb_conn_val). After the write, so
	 * a close that already sees the new generation leaves the zero be. */
	if (!err && b->gen != old.gen)
		err = conns_zero(dp, id);
	if (!err && old.state != LB_BE_UNUSED &&
	    (b->state == LB_BE_UNUSED || b->vip_id != old.vip_id))
		err = backend_retire(dp, id, old.vip_id);
	return err;
}

int lb_dp_backend_get(struct lb_dp *dp, __u32 id, struct lb_backend *b)
{
	if (!dp)
		return -ENODEV;
	if (id >= LB_MAX_BACKENDS)
		return -ERANGE;
	return get(map_fd(dp, LB_MAP_BACKENDS), &id, b);
}

int lb_dp_table_swap(struct lb_dp *dp, __u32 vip_id, const __u32 *ids, __u32 n)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 *keys, count = n;
	int fd, err = 0;

	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	if (!n || n > LB_MAGLEV_MAX_SIZE || vip_id >= LB_MAX_VIPS)
		return -EINVAL;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "lb_table", sizeof(__u32), sizeof(__u32), n, &mo);
	if (fd < 0)
		return -errno;
	keys = malloc(n * sizeof(*keys));
	if (!keys) {
		close(fd);
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		keys[i] = i;
	if (bpf_map_update_batch(fd, keys, ids, &count, &bo)) {
		/* Older kernels: no batch ops for arrays. */
		for (__u32 i = 0; i < n && !err; i++)
			err = upd(fd, &keys[i], &ids[i]);
	}
	free(keys);
	if (!err)
		err = upd(map_fd(dp, LB_MAP_TABLES), &vip_id, &fd);
	close(fd); /* the outer map holds the reference now */
	return err;
}

int lb_dp_table_clear(struct lb_dp *dp, __u32 vip_id)
{
	if (!dp)
		return 0; /* no data path (proxy mode): nothing to program */
	if (bpf_map_delete_elem(map_fd(dp, LB_MAP_TABLES), &vip_id) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Sum a per-CPU value made of u64 fields. */
static int percpu_sum(struct lb_dp *dp, const char *map, __u32 idx, __u64 *out, size_t nfields)
{
	size_t vsz = nfields * sizeof(__u64);
	__u64 *buf = calloc((size_t)dp->ncpus, vsz);
	int err;

	if (!buf)
		return -ENOMEM;
	err = get(map_fd(dp, map), &idx, buf);
	memset(out, 0, vsz);
	for (int c = 0; !err && c < dp->ncpus; c++)
		for (size_t f = 0; f < nfields; f++)
			out[f] += buf[(size_t)c * nfields + f];
	free(buf);
	return err;
}

void lb_vip_stats_add(struct lb_vip_stats *v, const struct lb_backend_stats *b)
{
	v->packets += b->packets;
	v->bytes += b->bytes;
	v->new_flows += b->new_flows;
}

int lb_dp_vip_base_stats(struct lb_dp *dp, __u32 vip_id, struct lb_vip_stats *out)
{
	struct lb_vip_stats r;
	int err;

	if (!dp)
		return -ENODEV;
	err = percpu_sum(dp, LB_MAP_VIP_STATS, vip_id, (__u64 *)out, sizeof(*out) / 8);
	if (!err)
		err = get(map_fd(dp, LB_MAP_VIP_RETIRED), &vip_id, &r);
	if (err)
		return err;
	for (size_t f = 0; f < sizeof(r) / 8; f++)
		((__u64 *)out)[f] += ((const __u64 *)&r)[f];
	return 0;
}

int lb_dp_vip_stats(struct lb_dp *dp, __u32 vip_id, const __u32 *be_ids, size_t nbe,
		    struct lb_vip_stats *out)
{
	int err = lb_dp_vip_base_stats(dp, vip_id, out);

	for (size_t i = 0; !err && i < nbe; i++) {
		struct lb_backend_stats bs;

		err = lb_dp_backend_stats(dp, be_ids[i], &bs);
		if (!err)
			lb_vip_stats_add(out, &bs);
	}
	return err;
}

int lb_dp_backend_stats(struct lb_dp *dp, __u32 id, struct lb_backend_stats *out)
{
	if (!dp)
		return -ENODEV;
	return percpu_sum(dp, LB_MAP_BE_STATS, id, (__u64 *)out, sizeof(*out) / 8);
}

int lb_dp_backend_conns(struct lb_dp *dp, __u32 id, __s64 *out)
{
	if (!dp)
		return -ENODEV;
	return get(map_fd(dp, LB_MAP_CONNS), &id, out);
}

static int counters(struct lb_dp *dp, const char *map, __u64 *out, unsigned int n)
{
	for (__u32 i = 0; i < n; i++) {
		int err = percpu_sum(dp, map, i, &out[i], 1);

		if (err)
			return err;
	}
	return 0;
}

int lb_dp_drops(struct lb_dp *dp, __u64 out[LB_DROP_REASONS])
{
	if (!dp)
		return -ENODEV;
	return counters(dp, LB_MAP_DROPS, out, LB_DROP_REASONS);
}

int lb_dp_events(struct lb_dp *dp, __u64 out[LB_EVENTS])
{
	if (!dp)
		return -ENODEV;
	return counters(dp, LB_MAP_EVENTS, out, LB_EVENTS);
}

/* --- attach --- */

static void link_pin_path(const struct lb_dp *dp, int ifindex, enum lb_dp_mode mode,
			  char *buf, size_t len)
{
	char name[IF_NAMESIZE] = "";

	if (!if_indextoname((unsigned int)ifindex, name))
		snprintf(name, sizeof(name), "if%d", ifindex);
	snprintf(buf, len, "%s/link_%s_%s", dp->pin_root, lb_dp_mode_name(mode), name);
}

static struct lb_dp_link *link_find(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode)
{
	for (int i = 0; dp && i < dp->nlinks; i++)
		if (dp->links[i].ifindex == ifindex && dp->links[i].mode == mode)
			return &dp->links[i];
	return NULL;
}

/* A pinned link from an earlier lbd, if it is attached to this very place:
 * for an XDP link the interface `where` (one re-created under the same name
 * is not), for a netns link the namespace whose inode is `where`. */
static int link_adopt(const char *path, __u32 type, __u64 where)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != type ||
	    (type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex : info.netns.netns_ino) != where) {
		close(fd);
		unlink(path);
		return -ENOENT;
	}
	return fd;
}

static int attach_xdp(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	char path[PATH_MAX];
	int prog = lb_dp_xdp_prog_fd(dp), fd = -ENOENT;

	lo.flags = mode == LB_DP_XDP ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	if (dp->pinned) {
		link_pin_path(dp, ifindex, mode, path, sizeof(path));
		fd = link_adopt(path, BPF_LINK_TYPE_XDP, (__u64)ifindex);
		if (fd >= 0) {
			if (bpf_link_update(fd, prog, NULL)) {
				int err = -errno;

				close(fd);
				return err;
			}
			return fd;
		}
	}
	fd = bpf_link_create(prog, ifindex, BPF_XDP, &lo);
	if (fd < 0)
		return -errno;
	if (dp->pinned && bpf_obj_pin(fd, path)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void tc_hook_init(struct bpf_tc_hook *h, int ifindex)
{
	memset(h, 0, sizeof(*h));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = BPF_TC_INGRESS;
}

static int tc_hook_attach(int ifindex, enum bpf_tc_attach_point ap, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = LB_TC_HANDLE, .priority = LB_TC_PRIORITY,
		    .flags = BPF_TC_F_REPLACE, .prog_fd = prog_fd);
	struct bpf_tc_hook hook;
	int err;

	tc_hook_init(&hook, ifindex);
	hook.attach_point = ap;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &to);
}

static int tc_hook_detach(int ifindex, enum bpf_tc_attach_point ap)
{
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = LB_TC_HANDLE, .priority = LB_TC_PRIORITY);
	struct bpf_tc_hook hook;
	int err;

	tc_hook_init(&hook, ifindex);
	hook.attach_point = ap;
	/* The clsact qdisc stays: other filters (not ours) may hang off it. */
	err = bpf_tc_detach(&hook, &to);
	return err == -ENOENT || err == -EINVAL ? 0 : err;
}

/* Returns -1 (the "fd" of a TC entry in dp->links) or a negative errno. */
static int attach_tc(struct lb_dp *dp, int ifindex)
{
	int err = lb_dp_load_tc(dp);

	if (err)
		return err;
	err = tc_hook_attach(ifindex, BPF_TC_INGRESS, lb_dp_tc_prog_fd(dp));
	return err ? err : -1;
}

static int detach_tc(int ifindex)
{
	return tc_hook_detach(ifindex, BPF_TC_INGRESS);
}

/* What an earlier lbd's local delivery (a rewrite at ingress, reversed at
 * TC egress) left on an interface: removed with it. Idempotent. */
int lb_dp_detach_egress(int ifindex)
{
	return tc_hook_detach(ifindex, BPF_TC_EGRESS);
}

/* --- socket lookup (forward local) --- */

static int sk_load(struct lb_dp *dp)
{
	int err;

	if (dp->sk)
		return 0;
	dp->sk = lb_sk__open();
	if (!dp->sk)
		return -errno;
	err = reuse_maps(dp, dp->sk->obj);
	if (!err)
		err = lb_sk__load(dp->sk);
	if (err) {
		lb_sk__destroy(dp->sk);
		dp->sk = NULL;
	}
	return err;
}

int lb_dp_sk_prog_fd(struct lb_dp *dp)
{
	int err = dp ? sk_load(dp) : -ENODEV;

	return err ? err : bpf_program__fd(dp->sk->progs.lb_sk_lookup);
}

static void sk_pin_path(const struct lb_dp *dp, char *buf, size_t len)
{
	snprintf(buf, len, "%s/link_sk_lookup", dp->pin_root);
}


int lb_dp_attach_sk_lookup(struct lb_dp *dp)
{
	char path[PATH_MAX];
	struct stat st;
	int err, ns, fd = -ENOENT, prog;

	if (!dp)
		return -ENODEV;
	if (dp->sk_link >= 0)
		return 0;
	prog = lb_dp_sk_prog_fd(dp);
	if (prog < 0)
		return prog;
	ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || fstat(ns, &st)) {
		err = -errno;
		if (ns >= 0)
			close(ns);
		return err;
	}
	if (dp->pinned) {
		sk_pin_path(dp, path, sizeof(path));
		fd = link_adopt(path, BPF_LINK_TYPE_NETNS, (__u64)st.st_ino);
		if (fd >= 0 && bpf_link_update(fd, prog, NULL)) {
			err = -errno;
			close(fd);
			close(ns);
			return err;
		}
	}
	if (fd < 0) {
		fd = bpf_link_create(prog, ns, BPF_SK_LOOKUP, NULL);
		if (fd < 0) {
			err = -errno;
			close(ns);
			return err;
		}
		if (dp->pinned && bpf_obj_pin(fd, path)) {
			err = -errno;
			close(fd);
			close(ns);
			return err;
		}
	}
	close(ns);
	dp->sk_link = fd;
	return 0;
}

int lb_dp_detach_sk_lookup(struct lb_dp *dp)
{
	char path[PATH_MAX];
	int err = 0;

	if (!dp)
		return -ENODEV;
	if (dp->pinned) {
		sk_pin_path(dp, path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	if (dp->sk_link >= 0) {
		bpf_link_detach(dp->sk_link);
		close(dp->sk_link);
		dp->sk_link = -1;
	}
	return err;
}

static int sock_opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -errno : v;
}

int lb_dp_local_sock_set(struct lb_dp *dp, __u32 id, int sock_fd)
{
	int fd = lb_dp_map_fd(dp, LB_MAP_LOCAL_SOCKS), domain, proto, v6only = 1, err;
	struct lb_sock_key k = { .backend_id = id };
	__u64 v = (__u64)sock_fd;

	if (fd < 0)
		return fd;
	domain = sock_opt(sock_fd, SOL_SOCKET, SO_DOMAIN);
	proto = sock_opt(sock_fd, SOL_SOCKET, SO_PROTOCOL);
	if (domain < 0 || proto < 0)
		return domain < 0 ? domain : proto;
	if ((domain != AF_INET && domain != AF_INET6) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return -EAFNOSUPPORT;
	if (domain == AF_INET6)
		v6only = sock_opt(sock_fd, IPPROTO_IPV6, IPV6_V6ONLY);
	k.proto = (__u8)proto;
	k.family = domain == AF_INET6 ? LB_AF_INET6 : LB_AF_INET;
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		return -errno;
	/* a dual-stack socket ([::], as Node listens) takes IPv4 too */
	if (domain == AF_INET6 && v6only == 0) {
		k.family = LB_AF_INET;
		err = bpf_map_update_elem(fd, &k, &v, BPF_ANY);
		if (err)
			return -errno;
	}
	return 0;
}

int lb_dp_local_sock_del(struct lb_dp *dp, __u32 id)
{
	int fd = lb_dp_map_fd(dp, LB_MAP_LOCAL_SOCKS);
	static const __u8 fams[] = { LB_AF_INET, LB_AF_INET6 }, protos[] = { IPPROTO_TCP, IPPROTO_UDP };

	if (fd < 0)
		return fd;
	for (int f = 0; f < 2; f++)
		for (int p = 0; p < 2; p++) {
			struct lb_sock_key k = { .backend_id = id, .family = fams[f], .proto = protos[p] };

			bpf_map_delete_elem(fd, &k); /* ENOENT is fine */
		}
	return 0;
}

int lb_dp_attach(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode)
{
	struct lb_dp_link *l = link_find(dp, ifindex, mode);
	int fd;

	if (!dp)
		return -ENODEV;
	if (l)
		return 0;
	if (dp->nlinks == LB_DP_MAX_LINKS)
		return -ENOSPC;
	if (mode == LB_DP_TC) {
		fd = attach_tc(dp, ifindex);
		if (fd != -1)
			return fd;
	} else {
		fd = attach_xdp(dp, ifindex, mode);
		if (fd < 0)
			return fd;
	}
	dp->links[dp->nlinks++] = (struct lb_dp_link){ ifindex, mode, fd };
	return 0;
}

int lb_dp_detach(struct lb_dp *dp, int ifindex, enum lb_dp_mode mode)
{
	struct lb_dp_link *l = link_find(dp, ifindex, mode);
	char path[PATH_MAX];
	int err = 0;

	if (!dp)
		return -ENODEV;
	if (mode == LB_DP_TC)
		err = detach_tc(ifindex);
	else if (dp->pinned) {
		link_pin_path(dp, ifindex, mode, path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	if (l) {
		if (mode != LB_DP_TC) {
			bpf_link_detach(l->fd);
			close(l->fd);
		}
		*l = dp->links[--dp->nlinks];
	}
	return err;
}
