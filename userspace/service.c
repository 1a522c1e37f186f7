// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The running service. The effective model is rebuilt from scratch for every
 * change (file config + runtime statements + the new statement), validated,
 * and only then persisted and diffed into the data path, so a bad change or
 * a bad reload cannot leave half of itself behind.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "addr.h"
#include "bgp.h"
#include "dataplane.h"
#include "file.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "netlink.h"
#include "owner.h"
#include "metrics.h"
#include "model.h"
#include "procsock.h"
#include "proxy.h"
#include "service.h"
#include "supervisor.h"
#include "table.h"

#define SVC_MAX_RT      4096  /* runtime statements kept */
#define SVC_RT_FILE     "runtime.conf"
#define SVC_OWNER_FILE  "pinned.owner"
#define SVC_SYNC_DELAY_MS 1500 /* flow sync before a drain's route change */

struct svc_if {
	char name[IF_NAMESIZE];
	int ifindex;
	int mode;               /* enum lb_dp_mode, -1: not attached */
	char why[160];          /* last attach failure */
};

/* forward local: an instance whose sockets are in local_socks. */
struct svc_lsock {
	__u32 id;               /* its backend */
	pid_t pid;
	bool found;             /* some socket serves its port (else: retried) */
	bool seen;              /* still registered (this pass) */
};

struct svc_rate {
	__u64 ms;
	__u64 pkts[LB_MAX_VIPS];
	__u64 bytes[LB_MAX_VIPS];
};

struct lb_svc {
	char conf_path[LB_CONF_PATH_MAX];
	struct lb_conf file;
	struct lb_model m;
	char *rt[SVC_MAX_RT];
	int nrt;
	struct lb_dp *dp;
	struct lb_nl *nl;       /* links, addresses, routes, neighbours */
	struct lb_proxy *px;    /* mode proxy, or auto when no BPF mode attached */
	__u32 *gen;             /* LB_MAX_BACKENDS: last generation per id */
	struct svc_if ifs[LB_CONF_MAX_IFACES];
	int nifs;
	bool stop;
	unsigned int ticks;
	__u32 ct_since;           /* lb_dp_now() at start: see lb_dp_ct_gc */
	struct lb_ct_gc_stats ct_gc; /* totals of lbd's conntrack collections */
	struct svc_rate rate[2]; /* previous and latest tick */
	struct lb_health *health; /* NULL until lb_svc_health_start */
	struct lb_sup *sup;       /* worker instances; NULL until lb_svc_workers_start */
	bool sk_local;            /* the socket-lookup program is attached */
	struct svc_lsock lsock[LB_MAX_LOCAL_SOCKS / 4];
	int nlsock;
	__u64 health_t0;          /* backends up since then were added or came back */
	__u64 start_ms;           /* lbd's uptime in status */
	struct lb_loop *loop;     /* set by lb_svc_bgp_start */
	struct lb_bgp *bgp;       /* announcements (bgp block); NULL without */
	struct lb_owner_sync *owner; /* flow ownership with peer nodes (sync_peer) */
	__u64 drain_at;           /* flows pushed: the routes change then (ms) */
};

/* ---- persistence ------------------------------------------------------ */

static int rt_save(struct lb_svc *s, char **rt, int nrt)
{
	struct lb_buf b = { 0 };
	int err;

	lb_buf_printf(&b, "# lbd runtime layer: lbctl changes applied on top of %s.\n"
		      "# Written by lbd; `lbctl status` shows it.\n", s->conf_path);
	for (int i = 0; i < nrt; i++)
		lb_buf_printf(&b, "%s\n", rt[i]);
	if (b.oom) {
		lb_buf_free(&b);
		return -ENOMEM;
	}
	err = lb_mkdir_p(s->file.state_dir, 0700);
	if (!err)
		err = lb_write_atomic(s->file.state_dir, SVC_RT_FILE, b.data, b.len);
	lb_buf_free(&b);
	if (err)
		lb_err("cannot write %s/%s: %s", s->file.state_dir, SVC_RT_FILE, strerror(-err));
	return err;
}

static int rt_load(struct lb_svc *s)
{
	char path[LB_CONF_PATH_MAX + 32], line[LB_MODEL_STMT_MAX + 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", s->file.state_dir, SVC_RT_FILE);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f) && s->nrt < SVC_MAX_RT) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		s->rt[s->nrt] = strdup(line);
		if (!s->rt[s->nrt]) {
			fclose(f);
			return -ENOMEM;
		}
		s->nrt++;
	}
	fclose(f);
	if (s->nrt)
		lb_info("runtime layer: %d change(s) from %s", s->nrt, path);
	return 0;
}

/* ---- data path ------------------------------------------------------- */

static void vip_addrs_sync(struct lb_svc *s, const struct lb_model *old);
static void neigh_warm_all(struct lb_svc *s);
static int proxy_push(struct lb_svc *s);

static struct lb_vip_key vip_key(const struct lb_vip_conf *c)
{
	struct lb_vip_key k;

	memset(&k, 0, sizeof(k));
	k.addr = c->listen.addr;
	k.port = c->listen.port;
	k.proto = c->proto;
	k.family = c->listen.family;
	return k;
}

/* The VIP's source address: full NAT's SNAT address, or ipip/gue's outer
 * source (encap_source of its family). Else the address towards its
 * backends. */
static void vip_snat(struct lb_svc *s, struct lb_model_vip *v)
{
	bool v6 = v->c.listen.family == LB_AF_INET6;

	v->snat_ok = false;
	if (v->c.snat_set) {
		v->snat = v->c.snat;
		v->snat_ok = true;
		return;
	}
	if (lb_fwd_encap(v->c.forward) && (v6 ? s->file.encap_src6_set : s->file.encap_src4_set)) {
		v->snat = v6 ? s->file.encap_src6 : s->file.encap_src4;
		v->snat_ok = true;
		return;
	}
	for (int i = 0; i < v->nbe && !v->snat_ok; i++)
		v->snat_ok = s->nl && !lb_nl_source_addr(s->nl, &v->be[i].c.ep.addr,
							     v->be[i].c.ep.family, &v->snat);
}

/* Slow start, in tenths of the weight: a backend that came back up (or was
 * added after lbd started) ramps from 1/10 to 10/10 over slow_start. */
/* Each backend's share of v's table (its slots), counted once per table
 * rather than at every status request. */
static void vip_count_slots(struct lb_model_vip *v);

/* The table digest operators compare across nodes (lbctl status). */
static void vip_digest(const struct lb_svc *s, struct lb_model_vip *v)
{
	struct lb_maglev_backend *mb = calloc(v->nbe ? v->nbe : 1, sizeof(*mb));

	v->digest = 0;
	if (!mb)
		return;
	for (int i = 0; i < v->nbe; i++) {
		mb[i].addr = v->be[i].c.ep.addr;
		mb[i].port = v->be[i].c.ep.port;
		mb[i].family = v->be[i].c.ep.family;
		mb[i].id = v->be[i].id;
	}
	v->digest = lb_table_digest(v->c.method, s->file.hash_seed, v->table, v->table_n, mb,
				    (size_t)v->nbe);
	free(mb);
}

static void vip_count_slots(struct lb_model_vip *v)
{
	int *pos = calloc(LB_MAX_BACKENDS, sizeof(*pos)); /* id -> index + 1 */

	for (int i = 0; i < v->nbe; i++) {
		v->be[i].slots = 0;
		if (pos && v->be[i].id < LB_MAX_BACKENDS)
			pos[v->be[i].id] = i + 1;
	}
	for (__u32 k = 0; pos && k < v->table_n; k++)
		if (v->table[k] < LB_MAX_BACKENDS && pos[v->table[k]])
			v->be[pos[v->table[k]] - 1].slots++;
	free(pos);
}

static __u32 be_ramp(const struct lb_svc *s, const struct lb_model_vip *v,
		     const struct lb_model_be *b)
{
	struct lb_health_status hs;
	__u64 now = lb_now_ms(), el;

	if (!v->c.slow_start_ms || !s->health)
		return 10;
	if (lb_health_status(s->health, v->c.name, &b->c.ep, &hs))
		return 1; /* being added right now */
	if (hs.up_since_ms <= s->health_t0)
		return 10;
	el = now - hs.up_since_ms;
	return el >= v->c.slow_start_ms ? 10 : 1 + (__u32)(9 * el / v->c.slow_start_ms);
}

/* Backends that take new flows: up (by the operator and by health checks),
 * not backup, weight > 0; backups only when no primary is up; when no
 * backend is healthy, every primary the operator left up (fail open). */
static int vip_table(struct lb_svc *s, struct lb_model_vip *v, __u32 **tab, __u32 *n)
{
	struct lb_maglev_backend *mb = calloc(v->nbe ? v->nbe : 1, sizeof(*mb));
	__u32 *tenths = calloc(v->nbe ? v->nbe : 1, sizeof(*tenths));
	bool ramp = false;
	int k = 0, err;

	if (!mb || !tenths) {
		free(mb);
		free(tenths);
		return -ENOMEM;
	}
	for (int pass = 0; pass < 3 && !k; pass++) {
		for (int i = 0; i < v->nbe; i++) {
			const struct lb_model_be *b = &v->be[i];

			if (b->c.state != LB_BE_UP || b->c.backup != (pass == 1) || !b->c.weight)
				continue;
			if (pass < 2 && !lb_health_up(s->health, v->c.name, &b->c.ep))
				continue;
			mb[k].addr = b->c.ep.addr;
			mb[k].port = b->c.ep.port;
			mb[k].family = b->c.ep.family;
			mb[k].weight = b->c.weight;
			mb[k].id = b->id;
			tenths[k] = be_ramp(s, v, b);
			ramp |= tenths[k] < 10;
			k++;
		}
		if (k && pass == 2)
			lb_warn("vip %s: every backend is down by health checks: failing open to all %d",
				v->c.name, k);
	}
	/* weights in tenths only while a ramp runs: steady tables stay as built */
	for (int i = 0; ramp && i < k; i++)
		mb[i].weight *= tenths[i];
	free(tenths);
	*tab = NULL;
	*n = 0;
	err = k ? lb_table_build(v->c.method, mb, k, s->file.hash_seed, s->file.maglev_size, tab, n)
		: -ENOENT;
	free(mb);
	return err == -ENOENT ? 0 : err;
}

static int id_alloc(const bool *used, int max)
{
	for (int i = 0; i < max; i++)
		if (!used[i])
			return i;
	return -ENOSPC;
}

static int be_write(struct lb_svc *s, const struct lb_model_vip *v, const struct lb_model_be *b)
{
	struct lb_backend d;

	memset(&d, 0, sizeof(d));
	d.addr = b->c.ep.addr;
	d.port = b->c.ep.port;
	d.family = b->c.ep.family;
	d.state = b->c.state;
	/* Failed health checks drain: open flows finish (HAProxy's default),
	 * and a SYN reusing a closed flow's tuple goes elsewhere. */
	if (d.state == LB_BE_UP && !lb_health_up(s->health, v->c.name, &b->c.ep))
		d.state = LB_BE_DRAIN;
	d.weight = b->c.weight;
	d.vip_id = v->id;
	d.gen = s->gen[b->id];
	return lb_dp_backend_set(s->dp, b->id, &d);
}

static int be_release(struct lb_svc *s, __u32 id)
{
	struct lb_backend d;

	memset(&d, 0, sizeof(d));
	d.state = LB_BE_UNUSED;
	/* flows that still carry the old generation pick again */
	d.gen = ++s->gen[id];
	return lb_dp_backend_set(s->dp, id, &d);
}

static int vip_write(struct lb_svc *s, const struct lb_model_vip *v)
{
	struct lb_vip_key k = vip_key(&v->c);
	struct lb_vip d;

	memset(&d, 0, sizeof(d));
	d.id = v->id;
	d.method = v->c.method;
	d.fwd = v->c.forward;
	d.family = v->c.listen.family;
	d.table_size = v->table_n;
	if (v->c.forward == LB_FWD_GUE)
		d.encap_port = htons(s->file.gue_port);
	if (v->snat_ok) {
		d.snat_addr = v->snat;
		d.flags |= LB_VIP_F_SNAT_SET;
	}
	return lb_dp_vip_set(s->dp, &k, &d);
}

static bool table_eq(const __u32 *a, __u32 an, const __u32 *b, __u32 bn)
{
	return an == bn && (!an || !memcmp(a, b, an * sizeof(*a)));
}

static void vip_log_name(const struct lb_model_vip *v, char *buf, size_t len)
{
	char ep[LB_ADDRSTRLEN];

	snprintf(buf, len, "vip %s (%s%s)", v->c.name, lb_endpoint_str(&v->c.listen, ep, sizeof(ep)),
		 v->c.proto == IPPROTO_UDP ? " udp" : "");
}

/* ---- announcements (bgp.c) --------------------------------------------- */

/* A backend that takes new flows because it is up, weighted and healthy:
 * the fail-open table of a VIP whose backends are all down does not count. */
static bool vip_healthy(const struct lb_svc *s, const struct lb_model_vip *v)
{
	for (int i = 0; i < v->nbe; i++) {
		const struct lb_model_be *b = &v->be[i];

		if (b->c.state == LB_BE_UP && b->c.weight &&
		    lb_health_up(s->health, v->c.name, &b->c.ep))
			return true;
	}
	return false;
}

static bool dp_attached(const struct lb_svc *s)
{
	if (s->px)
		return true;
	for (int i = 0; i < s->nifs; i++)
		if (s->ifs[i].mode >= 0)
			return true;
	return false;
}

/* What the node may announce: every VIP address with a healthy backend,
 * while a data path serves it. Called after every change that can move
 * either (apply, health, link events, ticks); bgp.c acts on differences. */
static void bgp_sync(struct lb_svc *s)
{
	struct lb_bgp_route r[LB_MAX_VIPS];
	int n = 0;

	if (!s->bgp)
		return;
	for (int i = 0; dp_attached(s) && i < s->m.n && n < LB_MAX_VIPS; i++) {
		const struct lb_model_vip *v = &s->m.v[i];

		if (!vip_healthy(s, v))
			continue;
		r[n].addr = v->c.listen.addr;
		r[n].family = v->c.listen.family;
		n++;
	}
	lb_bgp_set_routes(s->bgp, r, n);
}

int lb_svc_bgp_start(struct lb_svc *s, struct lb_loop *loop)
{
	int err;

	s->loop = loop;
	if (!s->file.bgp.set)
		return 0;
	err = lb_bgp_new(loop, &s->file.bgp, s->file.state_dir, &s->bgp);
	if (!err)
		bgp_sync(s);
	if (!err && s->file.bgp.nsync_peers && s->dp &&
	    lb_owner_open(loop, s->dp, &s->file.bgp, &s->owner))
		lb_warn("flow sync is off: a drain breaks the flows the router moves");
	return err;
}

/* Drain the node: peers learn its flows first (so they forward the ones the
 * router moves to them), then the routes change. */
static bool svc_drain(struct lb_svc *s, bool drain)
{
	bool active = lb_bgp_state(s->bgp) == LB_NODE_ACTIVE;

	/* The peers put the flows in their maps from their own loops, and
	 * push theirs (hash-threshold ECMP moves some of theirs too): a
	 * packet the router moves before then is reset. So the routes change
	 * SVC_SYNC_DELAY_MS later, in a tick. */
	if (drain && s->owner && active) {
		lb_owner_drain(s->owner);
		s->drain_at = lb_now_ms() + SVC_SYNC_DELAY_MS;
		lb_info("node: flows pushed to the peers: draining in %d ms", SVC_SYNC_DELAY_MS);
		return true;
	}
	if (!drain && s->drain_at) {
		s->drain_at = 0;
		return true;
	}
	return lb_bgp_drain(s->bgp, drain);
}

static void drain_tick(struct lb_svc *s)
{
	if (s->drain_at && lb_now_ms() >= s->drain_at) {
		s->drain_at = 0;
		lb_bgp_drain(s->bgp, true);
	}
	lb_owner_tick(s->owner);
}

/* A reload's bgp block: started, changed or removed. */
static void bgp_reload(struct lb_svc *s, const struct lb_conf *nc)
{
	if (!s->loop)
		return;
	if (s->bgp && !nc->bgp.set) {
		lb_info("bgp: block removed: withdrawing and stopping");
		lb_bgp_free(s->bgp);
		s->bgp = NULL;
	} else if (s->bgp) {
		lb_bgp_reconf(s->bgp, &nc->bgp);
	} else if (nc->bgp.set && lb_bgp_new(s->loop, &nc->bgp, nc->state_dir, &s->bgp)) {
		s->bgp = NULL;
	}
	/* the peers and port as the block says now */
	if (s->owner && (!nc->bgp.set || !nc->bgp.nsync_peers ||
			 memcmp(s->file.bgp.sync_peers, nc->bgp.sync_peers, sizeof(nc->bgp.sync_peers)) ||
			 nc->bgp.sync_port != s->file.bgp.sync_port)) {
		lb_owner_close(s->owner);
		s->owner = NULL;
	}
	if (!s->owner && s->bgp && nc->bgp.nsync_peers && s->dp &&
	    lb_owner_open(s->loop, s->dp, &nc->bgp, &s->owner))
		lb_warn("flow sync is off: a drain breaks the flows the router moves");
	bgp_sync(s);
}

bool lb_svc_drain_for_stop(struct lb_svc *s)
{
	if (!s->bgp || !s->file.bgp.stop_drain_ms || lb_bgp_state(s->bgp) == LB_NODE_DRAINED)
		return false;
	if (svc_drain(s, true))
		lb_info("stopping: draining first (at most %.1f s; a second signal stops at once)",
			s->file.bgp.stop_drain_ms / 1000.0);
	return true;
}

__u64 lb_svc_stop_drain_ms(const struct lb_svc *s)
{
	return s->file.bgp.stop_drain_ms;
}

bool lb_svc_drained(const struct lb_svc *s)
{
	return !s->bgp || lb_bgp_state(s->bgp) == LB_NODE_DRAINED;
}

/* ---- health ---------------------------------------------------------- */

/* One VIP's table again, after a health change or a slow-start step; the
 * data path gets it only when it differs. */
static void vip_refresh(struct lb_svc *s, struct lb_model_vip *v)
{
	char name[128];
	__u32 *tab, n;
	int err;

	vip_log_name(v, name, sizeof(name));
	for (int i = 0; i < v->nbe; i++) {
		err = be_write(s, v, &v->be[i]);
		if (err)
			lb_err("%s: cannot write backend %u: %s", name, v->be[i].id, strerror(-err));
	}
	err = vip_table(s, v, &tab, &n);
	if (err) {
		lb_err("%s: cannot build its table: %s", name, strerror(-err));
		return;
	}
	if (table_eq(v->table, v->table_n, tab, n)) {
		free(tab);
		return;
	}
	err = n ? lb_dp_table_swap(s->dp, v->id, tab, n) : lb_dp_table_clear(s->dp, v->id);
	if (err) {
		lb_err("%s: cannot swap its table: %s", name, strerror(-err));
		free(tab);
		return;
	}
	free(v->table);
	v->table = tab;
	v->table_n = n;
	vip_count_slots(v);
	vip_digest(s, v);
	err = vip_write(s, v);
	if (err)
		lb_err("%s: cannot write it: %s", name, strerror(-err));
	if (s->px)
		proxy_push(s);
}

static void on_health(void *ctx, const char *vip, const struct lb_endpoint *ep, bool up,
		      const char *reason)
{
	struct lb_svc *s = ctx;
	struct lb_model_vip *v = lb_model_find_vip(&s->m, vip);

	(void)ep, (void)up, (void)reason; /* health.c logged the change */
	if (v)
		vip_refresh(s, v);
	bgp_sync(s);
}

/* Passive checks need both directions of a TCP flow: full NAT only (the
 * proxy will feed its own connect failures). */
static bool passive_fed(const struct lb_model_vip *v)
{
	return v->c.forward == LB_FWD_NAT && v->c.proto == IPPROTO_TCP;
}

static int health_sync(struct lb_svc *s)
{
	struct lb_health_target *t;
	int n = 0, k = 0, err;

	lb_health_set_concurrency(s->health, (int)s->file.health_concurrency);
	for (int i = 0; i < s->m.n; i++)
		n += s->m.v[i].nbe;
	t = calloc(n ? n : 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (int i = 0; i < s->m.n; i++) {
		const struct lb_model_vip *v = &s->m.v[i];

		for (int j = 0; j < v->nbe; j++, k++) {
			const struct lb_model_be *b = &v->be[j];

			t[k].vip = v->c.name;
			t[k].ep = b->c.ep;
			lb_health_effective(&v->c.health, &b->c, &t[k].hc);
			t[k].max_fails = passive_fed(v) ? b->c.max_fails : 0;
			t[k].fail_timeout_ms = b->c.fail_timeout_ms;
			t[k].src_set = v->snat_ok;
			t[k].src = v->snat;
		}
	}
	err = lb_health_sync(s->health, t, k);
	free(t);
	if (err)
		lb_err("health checks: cannot update the targets: %s", strerror(-err));
	return err;
}

/* Once a second: passive checks from the data path's counters, and the
 * slow-start steps (a table differs at most once per tick). */
static void health_tick(struct lb_svc *s)
{
	__u64 now = lb_now_ms();

	if (!s->health)
		return;
	for (int i = 0; i < s->m.n; i++) {
		struct lb_model_vip *v = &s->m.v[i];
		bool ramp = false;

		for (int j = 0; j < v->nbe; j++) {
			const struct lb_model_be *b = &v->be[j];
			struct lb_backend_stats st;
			struct lb_health_status hs;

			struct lb_proxy_be_stats ps;

			/* the proxy sees its own connects: refused and timed out fail */
			if (s->px && v->c.proto == IPPROTO_TCP && b->c.max_fails &&
			    !lb_proxy_backend_stats(s->px, b->id, &ps))
				lb_health_feed_syn(s->health, v->c.name, &b->c.ep, b->id, ps.conns,
						   ps.connected, ps.connect_fail);
			else if (passive_fed(v) && b->c.max_fails && !lb_dp_backend_stats(s->dp, b->id, &st))
				lb_health_feed_syn(s->health, v->c.name, &b->c.ep, b->id, st.syn,
						   st.synack, st.rst_syn);
			/* one more step after the end, to land on full weights */
			if (v->c.slow_start_ms &&
			    !lb_health_status(s->health, v->c.name, &b->c.ep, &hs) &&
			    hs.up && hs.up_since_ms > s->health_t0 &&
			    now - hs.up_since_ms < v->c.slow_start_ms + 2000)
				ramp = true;
		}
		if (ramp)
			vip_refresh(s, v);
	}
}

int lb_svc_health_start(struct lb_svc *s, struct lb_loop *loop)
{
	int err = lb_health_new(loop, on_health, s, &s->health);

	if (err)
		return err;
	err = health_sync(s);
	s->health_t0 = lb_now_ms();
	return err;
}

/*
 * Make the data path match `nm`, then make `nm` the current model. Ids of
 * VIPs (same name and key) and backends (same endpoint in the same VIP) are
 * kept; everything else is allocated. Order per VIP: backends, then the
 * table, then the VIP entry; removals last, so no packet ever sees a table
 * slot pointing at a released backend.
 */
static void local_sock_register(struct lb_svc *s, const struct lb_model_vip *v,
				struct lb_model_be *b);

static int apply(struct lb_svc *s, struct lb_model *nm)
{
	struct lb_model *om = &s->m;
	bool *vused = calloc(LB_MAX_VIPS, sizeof(bool));
	bool *bused = calloc(LB_MAX_BACKENDS, sizeof(bool));
	int err = 0;

	if (!vused || !bused) {
		err = -ENOMEM;
		goto out;
	}
	/* ids that stay */
	for (int i = 0; i < nm->n; i++) {
		struct lb_model_vip *v = &nm->v[i], *o = lb_model_find_vip(om, v->c.name);

		v->id = UINT32_MAX;
		if (o && lb_model_same_key(&o->c, &v->c)) {
			v->id = o->id;
			vused[v->id] = true;
		}
		for (int j = 0; j < v->nbe; j++) {
			struct lb_model_be *ob = o && v->id != UINT32_MAX ? lb_model_find_be(o, &v->be[j].c.ep) : NULL;

			v->be[j].id = ob ? ob->id : UINT32_MAX;
			/* adopted from the maps: no time known, count from now */
			v->be[j].state_ms = ob && ob->state_ms && ob->c.state == v->be[j].c.state
						    ? ob->state_ms : lb_now_ms();
			if (ob)
				bused[ob->id] = true;
		}
	}
	/* ids of the old model that are not reused stay reserved until released */
	for (int i = 0; i < om->n; i++) {
		vused[om->v[i].id] = true;
		for (int j = 0; j < om->v[i].nbe; j++)
			bused[om->v[i].be[j].id] = true;
	}
	for (int i = 0; i < nm->n; i++) {
		struct lb_model_vip *v = &nm->v[i];
		char name[128];

		vip_log_name(v, name, sizeof(name));
		if (v->id == UINT32_MAX) {
			int id = id_alloc(vused, LB_MAX_VIPS);

			if (id < 0) {
				err = id;
				goto out;
			}
			v->id = id;
			vused[id] = true;
		}
		for (int j = 0; j < v->nbe; j++) {
			struct lb_model_be *b = &v->be[j];

			if (b->id == UINT32_MAX) {
				int id = id_alloc(bused, LB_MAX_BACKENDS);

				if (id < 0) {
					err = id;
					goto out;
				}
				b->id = id;
				bused[id] = true;
				s->gen[id]++;
			}
			err = be_write(s, v, b);
			if (err) {
				lb_err("%s: cannot write backend %u: %s", name, b->id, strerror(-err));
				goto out;
			}
			/* before the table that sends it connections */
			if (v->c.forward == LB_FWD_LOCAL && b->pid > 0)
				local_sock_register(s, v, b);
		}
		vip_snat(s, v);
		if ((v->c.forward == LB_FWD_NAT || lb_fwd_encap(v->c.forward)) && !v->snat_ok && v->nbe) {
			const struct lb_model_vip *ov = lb_model_find_vip(om, v->c.name);

			/* once, not at every change */
			if (!ov || ov->snat_ok || !ov->nbe)
				lb_warn("%s: no source address towards its backends: set %s", name,
					v->c.forward == LB_FWD_NAT ? "snat" : "encap_source");
		}
		err = vip_table(s, v, &v->table, &v->table_n);
		if (err) {
			lb_err("%s: cannot build its table: %s", name, strerror(-err));
			goto out;
		}
		vip_count_slots(v);
		vip_digest(s, v);
		{
			struct lb_model_vip *o = lb_model_find_vip(om, v->c.name);
			bool same = o && o->id == v->id &&
				    table_eq(o->table, o->table_n, v->table, v->table_n);

			if (!same)
				err = v->table_n ? lb_dp_table_swap(s->dp, v->id, v->table, v->table_n)
						 : lb_dp_table_clear(s->dp, v->id);
			if (err) {
				lb_err("%s: cannot swap its table: %s", name, strerror(-err));
				goto out;
			}
			if (!same)
				lb_info("%s: table of %u slots over %d backend(s)", name, v->table_n, v->nbe);
		}
		err = vip_write(s, v);
		if (err) {
			lb_err("%s: cannot write it: %s", name, strerror(-err));
			goto out;
		}
	}
	/* removals */
	for (int i = 0; i < om->n; i++) {
		struct lb_model_vip *o = &om->v[i], *v = lb_model_find_vip(nm, o->c.name);
		bool gone = !v || v->id != o->id;
		char name[128];

		vip_log_name(o, name, sizeof(name));
		if (gone) {
			struct lb_vip_key k = vip_key(&o->c);

			lb_dp_vip_del(s->dp, &k);
			lb_dp_table_clear(s->dp, o->id);
			lb_info("%s: removed", name);
		}
		for (int j = 0; j < o->nbe; j++) {
			char ep[LB_ADDRSTRLEN];

			if (!gone && lb_model_find_be(v, &o->be[j].c.ep))
				continue;
			be_release(s, o->be[j].id);
			if (!gone)
				lb_info("%s: backend %s removed", name,
					lb_endpoint_str(&o->be[j].c.ep, ep, sizeof(ep)));
		}
	}
	{
		struct lb_model old = *om;

		*om = *nm;
		memset(nm, 0, sizeof(*nm));
		if (s->px)
			proxy_push(s);
		vip_addrs_sync(s, &old);
		lb_model_free(&old);
		neigh_warm_all(s);
		if (s->health)
			health_sync(s);
		/* flows route again: cached next hops (struct lb_nh) */
		if (s->dp)
			lb_dp_fib_bump(s->dp);
		bgp_sync(s);
	}
out:
	free(vused);
	free(bused);
	return err;
}

/* The model an earlier lbd left in the pinned maps, so apply() keeps the ids
 * that established flows carry (backend id and generation). Adopted VIPs
 * take the name of the new VIP with the same key; the rest are released. */
static int model_from_maps(struct lb_svc *s, const struct lb_model *nm, struct lb_model *om)
{
	int vfd = lb_dp_map_fd(s->dp, LB_MAP_VIPS);
	struct lb_vip_key k, next, *prev = NULL;
	int err = 0, anon = 0;

	memset(om, 0, sizeof(*om));
	while (!err && !bpf_map_get_next_key(vfd, prev, &next)) {
		struct lb_vip_conf c;
		struct lb_model_vip *v;
		struct lb_vip d;

		k = next;
		prev = &k;
		if (!k.proto || bpf_map_lookup_elem(vfd, &k, &d))
			continue; /* per-address marker */
		memset(&c, 0, sizeof(c));
		c.listen.addr = k.addr;
		c.listen.port = k.port;
		c.listen.family = k.family;
		c.proto = k.proto;
		snprintf(c.name, sizeof(c.name), "#adopted-%d", anon++);
		for (int i = 0; i < nm->n; i++)
			if (lb_model_same_key(&nm->v[i].c, &c))
				snprintf(c.name, sizeof(c.name), "%s", nm->v[i].c.name);
		err = lb_model_add_vip(om, &c, &v);
		if (!err)
			v->id = d.id;
	}
	for (__u32 id = 0; !err && id < LB_MAX_BACKENDS; id++) {
		struct lb_backend d;

		if (lb_dp_backend_get(s->dp, id, &d))
			continue;
		s->gen[id] = d.gen;
		if (d.state == LB_BE_UNUSED)
			continue;
		for (int i = 0; i < om->n; i++) {
			struct lb_backend_conf bc;

			if (om->v[i].id != d.vip_id)
				continue;
			memset(&bc, 0, sizeof(bc));
			bc.ep.addr = d.addr;
			bc.ep.port = d.port;
			bc.ep.family = d.family;
			bc.state = d.state;
			bc.weight = d.weight;
			err = lb_model_add_be(&om->v[i], &bc);
			if (!err)
				om->v[i].be[om->v[i].nbe - 1].id = id;
			break;
		}
	}
	if (err)
		lb_model_free(om);
	return err;
}

/* ---- VIP addresses ---------------------------------------------------- */

/*
 * A VIP address lives on lo so the node answers ARP for it on any interface
 * (arp_ignore 0) and the stack treats stray packets for it as local. IPv6
 * neighbour discovery only answers for addresses of the receiving device,
 * so IPv6 VIPs also get a proxy entry on every attached interface.
 */
static int nl_addr(struct lb_svc *s, bool add, const union lb_addr *a, __u8 fam, int ifindex,
		   bool proxy)
{
	if (!s->nl)
		return -ENOTCONN;
	if (proxy)
		return add ? lb_nl_proxy_add(s->nl, ifindex, a, fam) : lb_nl_proxy_del(s->nl, ifindex, a, fam);
	return add ? lb_nl_addr_add(s->nl, ifindex, a, fam, 0) : lb_nl_addr_del(s->nl, ifindex, a, fam, 0);
}

/*
 * bpf_fib_lookup only forwards to neighbours the kernel has resolved, and
 * XDP traffic never makes the kernel resolve one: ask it to, ahead of the
 * first packet of a flow (and again before entries go stale).
 */
static void neigh_warm(struct lb_svc *s, const struct lb_endpoint *ep)
{
	if (s->nl)
		lb_nl_neigh_warm(s->nl, &ep->addr, ep->family);
}

static void neigh_warm_all(struct lb_svc *s)
{
	for (int i = 0; i < s->m.n; i++)
		for (int j = 0; j < s->m.v[i].nbe; j++)
			neigh_warm(s, &s->m.v[i].be[j].c.ep);
}

/* Sets a per-interface sysctl (path pattern with one %s) to 1. */
static void if_sysctl_on(const char *pattern, const char *ifname)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), pattern, ifname);
	f = fopen(p, "we");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
}

/* A packet the data path hands to the stack (no neighbour entry yet) may
 * already carry a local source: the SNAT address towards a backend, the VIP
 * towards a client. Without accept_local the kernel drops it as martian
 * instead of resolving the neighbour and forwarding it. */
static void if_sysctls(const char *ifname)
{
	if_sysctl_on("/proc/sys/net/ipv4/conf/%s/accept_local", ifname);
}

static void proxy_ndp_on(const char *ifname)
{
	if_sysctl_on("/proc/sys/net/ipv6/conf/%s/proxy_ndp", ifname);
}

static bool addr_in_model(const struct lb_model *m, const struct lb_vip_conf *c,
			  const struct lb_model_vip *skip)
{
	for (int i = 0; i < m->n; i++)
		if (&m->v[i] != skip && m->v[i].c.listen.family == c->listen.family &&
		    !memcmp(&m->v[i].c.listen.addr, &c->listen.addr, sizeof(c->listen.addr)))
			return true;
	return false;
}

/* Addresses for every VIP of the model; proxy entries on attached links. */
static void vip_addrs_sync(struct lb_svc *s, const struct lb_model *old)
{
	for (int i = 0; i < s->m.n; i++) {
		const struct lb_model_vip *v = &s->m.v[i];
		char a[LB_ADDRSTRLEN];
		int err;

		lb_addr_str(&v->c.listen.addr, v->c.listen.family, a, sizeof(a));
		err = nl_addr(s, true, &v->c.listen.addr, v->c.listen.family, 1, false);
		if (err)
			lb_warn("vip %s: cannot add %s to lo: %s", v->c.name, a, strerror(-err));
		for (int j = 0; v->c.listen.family == LB_AF_INET6 && j < s->nifs; j++) {
			if (s->ifs[j].ifindex <= 0)
				continue;
			proxy_ndp_on(s->ifs[j].name);
			nl_addr(s, true, &v->c.listen.addr, LB_AF_INET6, s->ifs[j].ifindex, true);
		}
	}
	for (int i = 0; old && i < old->n; i++) {
		const struct lb_model_vip *o = &old->v[i];

		if (addr_in_model(&s->m, &o->c, NULL))
			continue;
		nl_addr(s, false, &o->c.listen.addr, o->c.listen.family, 1, false);
		for (int j = 0; o->c.listen.family == LB_AF_INET6 && j < s->nifs; j++)
			if (s->ifs[j].ifindex > 0)
				nl_addr(s, false, &o->c.listen.addr, LB_AF_INET6, s->ifs[j].ifindex, true);
	}
}

static void vip_addrs_remove(struct lb_svc *s)
{
	struct lb_model none = { 0 }, cur = s->m;

	s->m = none;
	vip_addrs_sync(s, &cur);
	s->m = cur;
}

/* ---- interfaces ------------------------------------------------------- */

static int mode_chain(enum lb_attach_mode m, enum lb_dp_mode chain[3])
{
	switch (m) {
	case LB_ATTACH_AUTO:
		chain[0] = LB_DP_XDP;
		chain[1] = LB_DP_XDP_GENERIC;
		chain[2] = LB_DP_TC;
		return 3;
	case LB_ATTACH_XDP:
		chain[0] = LB_DP_XDP;
		return 1;
	case LB_ATTACH_XDP_GENERIC:
		chain[0] = LB_DP_XDP_GENERIC;
		return 1;
	case LB_ATTACH_TC:
		chain[0] = LB_DP_TC;
		return 1;
	default:
		return 0;
	}
}

/* Walk the attach chain: the first mode the kernel accepts wins; each
 * refusal is logged with the kernel's reason. */
static int if_attach(struct lb_svc *s, struct svc_if *f)
{
	enum lb_dp_mode chain[3];
	int n = mode_chain(s->file.mode, chain), err = -EOPNOTSUPP;

	f->ifindex = if_nametoindex(f->name);
	f->mode = -1;
	if (!f->ifindex) {
		snprintf(f->why, sizeof(f->why), "no such interface");
		lb_err("interface %s: no such interface", f->name);
		return -ENODEV;
	}
	if (!n && s->file.mode == LB_ATTACH_PROXY) {
		/* watched only: VIP addresses and IPv6 proxy entries go on it */
		snprintf(f->why, sizeof(f->why), "userspace proxy");
		return 0;
	}
	if (!s->dp) {
		snprintf(f->why, sizeof(f->why), "no BPF data path");
		return -EOPNOTSUPP;
	}
	if (!n) {
		snprintf(f->why, sizeof(f->why), "mode %s is not available yet", lb_mode_name(s->file.mode));
		lb_err("interface %s: %s", f->name, f->why);
		return -EOPNOTSUPP;
	}
	for (int i = 0; i < n; i++) {
		err = lb_dp_attach(s->dp, f->ifindex, chain[i]);
		if (!err) {
			if_sysctls(f->name);
			f->mode = chain[i];
			f->why[0] = '\0';
			lb_info("interface %s: attached in %s mode", f->name, lb_dp_mode_name(chain[i]));
			return 0;
		}
		snprintf(f->why, sizeof(f->why), "%s: %s", lb_dp_mode_name(chain[i]), strerror(-err));
		lb_warn("interface %s: %s mode failed: %s%s", f->name, lb_dp_mode_name(chain[i]),
			strerror(-err), i + 1 < n ? ", trying the next mode" : "");
	}
	return err;
}

static void if_detach(struct lb_svc *s, struct svc_if *f)
{
	int idx = f->ifindex ? f->ifindex : (int)if_nametoindex(f->name);

	if (!idx)
		return;
	for (int m = LB_DP_XDP; m <= LB_DP_TC; m++)
		if (!lb_dp_detach(s->dp, idx, m))
			lb_info("interface %s: detached (%s)", f->name, lb_dp_mode_name(m));
	lb_dp_detach_egress(idx); /* an earlier lbd's local delivery */
	f->mode = -1;
}

static int ifs_sync(struct lb_svc *s, const struct lb_conf *cf)
{
	struct svc_if nifs[LB_CONF_MAX_IFACES];
	int n = 0, failed = 0;

	for (int i = 0; i < cf->ninterfaces; i++) {
		struct svc_if *f = &nifs[n++];
		int j;

		memset(f, 0, sizeof(*f));
		f->mode = -1;
		snprintf(f->name, sizeof(f->name), "%s", cf->interfaces[i]);
		for (j = 0; j < s->nifs; j++)
			if (!strcmp(s->ifs[j].name, f->name) && s->ifs[j].mode >= 0 &&
			    s->ifs[j].ifindex == (int)if_nametoindex(f->name))
				break;
		if (j < s->nifs && cf->mode == s->file.mode)
			*f = s->ifs[j];
		else if (if_attach(s, f))
			failed++;
	}
	for (int j = 0; j < s->nifs; j++) {
		bool keep = false;

		for (int i = 0; i < n; i++)
			keep |= !strcmp(nifs[i].name, s->ifs[j].name) && nifs[i].mode >= 0;
		if (!keep && s->ifs[j].mode >= 0)
			if_detach(s, &s->ifs[j]);
	}
	memcpy(s->ifs, nifs, sizeof(nifs));
	s->nifs = n;
	return failed ? -ENODEV : 0;
}

/* ---- fallback proxy ---------------------------------------------------- */

/* The current model, whole, to the proxy. */
static int proxy_push(struct lb_svc *s)
{
	struct lb_proxy_vip *pv = calloc(s->m.n ? s->m.n : 1, sizeof(*pv));
	struct lb_proxy_backend **pb = calloc(s->m.n ? s->m.n : 1, sizeof(*pb));
	int err = pv && pb ? 0 : -ENOMEM;

	for (int i = 0; i < s->m.n && !err; i++) {
		const struct lb_model_vip *v = &s->m.v[i];

		pb[i] = calloc(v->nbe ? v->nbe : 1, sizeof(**pb));
		if (!pb[i]) {
			err = -ENOMEM;
			break;
		}
		for (int j = 0; j < v->nbe; j++) {
			pb[i][j].ep = v->be[j].c.ep;
			pb[i][j].id = v->be[j].id;
			pb[i][j].weight = v->be[j].c.weight;
		}
		pv[i] = (struct lb_proxy_vip){
			.name = v->c.name, .listen = v->c.listen, .proto = v->c.proto,
			.method = v->c.method, .hash_seed = s->file.hash_seed,
			.max_conns = v->c.max_conns, .proxy_protocol = v->c.proxy_protocol,
			.connect_timeout_ms = v->c.timeout_connect_ms,
			.idle_timeout_ms = v->c.timeout_idle_ms, .fin_timeout_ms = v->c.timeout_fin_ms,
			.table = v->table, .table_n = v->table_n,
			.be = pb[i], .nbe = v->nbe,
		};
	}
	if (!err)
		err = lb_proxy_update(s->px, pv, s->m.n);
	for (int i = 0; pb && i < s->m.n; i++)
		free(pb[i]);
	free(pb);
	free(pv);
	return err;
}

/* mode proxy, or the end of the auto chain: no interface took a BPF mode. */
static bool proxy_wanted(const struct lb_svc *s)
{
	if (s->file.mode == LB_ATTACH_PROXY)
		return true;
	if (s->file.mode != LB_ATTACH_AUTO)
		return false;
	for (int i = 0; i < s->nifs; i++)
		if (s->ifs[i].mode >= 0)
			return false;
	return true;
}

/* Takes the handed-over listeners, whatever happens. */
static int proxy_begin(struct lb_svc *s, const int *inherit, int ninherit)
{
	struct lb_proxy_opts o = { .inherit = inherit, .ninherit = ninherit,
				   .workers = (int)s->file.proxy_workers,
				   .state_dir = s->file.state_dir, .migrate_req = true };
	int err = lb_proxy_start(&o, &s->px);

	if (err) {
		lb_err("cannot start the userspace proxy: %s", strerror(-err));
		return err;
	}
	lb_info("serving the VIPs with the userspace proxy%s",
		s->file.mode == LB_ATTACH_AUTO ? " (no BPF mode attached)" : "");
	proxy_push(s); /* a VIP it cannot bind is logged; the others are served */
	return 0;
}

int lb_svc_listeners(struct lb_svc *s, struct lb_ctl_fds *pass, struct lb_buf *out)
{
	int n;

	if (!s->px)
		return -EOPNOTSUPP;
	n = lb_proxy_listeners(s->px, pass->fd + pass->n, LB_CTL_MAX_FDS - pass->n, out);
	if (n < 0)
		return n;
	pass->n += n;
	return n;
}

void lb_svc_proxy_stop(struct lb_svc *s)
{
	lb_proxy_stop(s->px);
	s->px = NULL;
}

void lb_svc_stop_accepting(struct lb_svc *s)
{
	if (s->px)
		lb_proxy_stop_accepting(s->px);
}

__u64 lb_svc_proxy_active(struct lb_svc *s)
{
	return s->px ? lb_proxy_active(s->px) : 0;
}

static int proxy_stats(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o, const char *only)
{
	bool first = true;

	lb_buf_printf(o, r->json ? "{\"mode\":\"proxy\",\"vips\":[" : "");
	for (int i = 0; i < s->m.n; i++) {
		const struct lb_model_vip *v = &s->m.v[i];

		if (only && strcmp(only, v->c.name))
			continue;
		lb_proxy_print_vip(s->px, v->c.name, r->json, first, o);
		for (int j = 0; j < v->nbe; j++) {
			char ep[LB_ADDRSTRLEN];

			lb_proxy_print_backend(s->px, v->be[j].id, lb_endpoint_str(&v->be[j].c.ep, ep, sizeof(ep)),
					       lb_backend_state_name(v->be[j].c.state), r->json, j == 0, o);
		}
		lb_buf_printf(o, r->json ? "]}" : "");
		first = false;
	}
	lb_buf_printf(o, r->json ? "]}\n" : "");
	return LB_CTL_OK;
}

/* Link events: a configured interface that appears (again) is attached, one
 * that is removed is detached cleanly (its pinned link would be stale). */
static void on_link(void *arg, enum lb_nl_link_ev ev, int ifindex, const char *name)
{
	struct lb_svc *s = arg;

	for (int i = 0; i < s->nifs; i++) {
		struct svc_if *f = &s->ifs[i];

		if (strcmp(f->name, name))
			continue;
		if (ev == LB_NL_LINK_DEL && f->mode >= 0) {
			lb_warn("interface %s is gone: detached", f->name);
			lb_dp_detach(s->dp, f->ifindex, f->mode);
			f->mode = -1;
			f->ifindex = 0;
			snprintf(f->why, sizeof(f->why), "interface is gone");
		} else if ((ev == LB_NL_LINK_NEW || ev == LB_NL_LINK_UP) &&
			   (f->mode < 0 || f->ifindex != ifindex)) {
			if (f->mode >= 0)
				lb_info("interface %s was re-created (index %d -> %d)", f->name,
					f->ifindex, ifindex);
			if (!if_attach(s, f))
				vip_addrs_sync(s, NULL);
		}
	}
	bgp_sync(s);
}

int lb_svc_netlink_start(struct lb_svc *s, struct lb_loop *loop)
{
	return s->nl ? lb_nl_loop_add(s->nl, loop) : -ENOTCONN;
}

/* ---- lifecycle -------------------------------------------------------- */

static void dp_config(const struct lb_conf *cf, struct lb_config *c)
{
	memset(c, 0, sizeof(*c));
	c->hash_seed = cf->hash_seed;
	c->snat_port_lo = cf->snat_port_lo;
	c->snat_port_hi = cf->snat_port_hi;
	for (int i = 0; i < cf->nvips; i++)
		if (!cf->vips[i].listen.port)
			c->flags |= LB_CFG_F_WILDCARD;
}

static void model_flags(const struct lb_model *m, struct lb_config *c)
{
	for (int i = 0; i < m->n; i++)
		if (!m->v[i].c.listen.port)
			c->flags |= LB_CFG_F_WILDCARD;
}

/* Pinned maps belong to one network namespace: adopting another's would
 * steer this namespace's traffic with someone else's state. */
static int owner_check(const struct lb_conf *cf, bool adopted)
{
	char path[LB_CONF_PATH_MAX + 32], want[LB_CONF_PATH_MAX + 64], have[LB_CONF_PATH_MAX + 64] = "";
	struct stat st;
	FILE *f;
	int err;

	if (stat("/proc/self/ns/net", &st))
		return -errno;
	snprintf(want, sizeof(want), "netns %lu bpffs %s\n", (unsigned long)st.st_ino, cf->bpffs);
	snprintf(path, sizeof(path), "%s/%s", cf->state_dir, SVC_OWNER_FILE);
	f = fopen(path, "re");
	if (f) {
		if (!fgets(have, sizeof(have), f))
			have[0] = '\0';
		fclose(f);
	}
	if (adopted && have[0] && strcmp(have, want)) {
		have[strcspn(have, "\n")] = '\0';
		lb_err("pinned state in %s belongs to %s, not this namespace: refusing to adopt it "
		       "(use another bpffs directory, or lbd --cleanup in its namespace)", cf->bpffs, have);
		return -EEXIST;
	}
	err = lb_mkdir_p(cf->state_dir, 0700);
	if (!err)
		err = lb_write_atomic(cf->state_dir, SVC_OWNER_FILE, want, strlen(want));
	if (err)
		lb_err("cannot write %s: %s", path, strerror(-err));
	return err;
}

int lb_svc_start(const char *conf_path, struct lb_conf *conf, const int *inherit, int ninherit,
		 struct lb_svc **out)
{
	struct lb_dp_opts o = {
		.pin_root = conf->bpffs,
		.ct_size = conf->conntrack_size,
		.ct_new_size = conf->conntrack_new_size,
		.load_tc = conf->mode == LB_ATTACH_AUTO || conf->mode == LB_ATTACH_TC,
	};
	struct lb_model nm, om;
	struct lb_config dc;
	struct lb_svc *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->gen = calloc(LB_MAX_BACKENDS, sizeof(*s->gen));
	if (!s->gen) {
		free(s);
		return -ENOMEM;
	}
	snprintf(s->conf_path, sizeof(s->conf_path), "%s", conf_path);
	s->start_ms = lb_now_ms();
	s->ct_since = lb_dp_now();
	s->file = *conf;
	/* mode proxy needs no BPF (nor root); mode auto goes on without it */
	err = conf->mode == LB_ATTACH_PROXY ? 0 : lb_mkdir_p(conf->bpffs, 0700);
	if (err)
		lb_err("cannot create %s: %s", conf->bpffs, strerror(-err));
	if (!err && conf->mode != LB_ATTACH_PROXY) {
		err = lb_dp_open(&o, &s->dp);
		if (err)
			lb_err("cannot load the data path (pinned in %s): %s", conf->bpffs, strerror(-err));
	}
	if (err && conf->mode == LB_ATTACH_AUTO) {
		lb_warn("no BPF data path: the userspace proxy will serve the VIPs");
		err = 0;
	}
	if (!err) {
		err = lb_nl_open(on_link, s, &s->nl);
		if (err)
			lb_err("cannot open rtnetlink: %s", strerror(-err));
	}
	if (!err)
		err = owner_check(conf, lb_dp_adopted(s->dp));
	if (!err) {
		err = rt_load(s);
		if (err)
			lb_err("cannot read the runtime layer in %s: %s", conf->state_dir, strerror(-err));
	}
	if (!err && (err = lb_model_build(conf, s->rt, s->nrt, s->sup, &nm)))
		lb_err("cannot build the model: %s", strerror(-err));
	if (err)
		goto fail;
	if (lb_dp_adopted(s->dp)) {
		err = model_from_maps(s, &nm, &om);
		if (err) {
			lb_model_free(&nm);
			lb_err("cannot read the pinned maps: %s", strerror(-err));
			goto fail;
		}
		lb_info("adopted pinned state in %s: %d VIP(s), flows kept", conf->bpffs, om.n);
		s->m = om;
		lb_model_keep_local(&nm, &om);
	}
	dp_config(conf, &dc);
	model_flags(&nm, &dc);
	err = lb_dp_set_config(s->dp, &dc);
	if (!err)
		err = apply(s, &nm);
	lb_model_free(&nm);
	if (err) {
		lb_err("cannot program the data path: %s", strerror(-err));
		goto fail;
	}
	/* A missing interface is not fatal: it may appear later (tick). */
	ifs_sync(s, conf);
	vip_addrs_sync(s, NULL);
	if (proxy_wanted(s)) {
		err = proxy_begin(s, inherit, ninherit);
		ninherit = 0;
		if (err)
			goto fail;
	}
	/* a BPF mode takes the VIPs' packets before any listener could */
	if (!s->px)
		lb_proxy_retire_orphans(conf->state_dir);
	if (ninherit)
		lb_info("a BPF mode serves the VIPs: the %d handed-over listener(s) are closed", ninherit);
	for (int i = 0; i < ninherit; i++)
		close(inherit[i]);
	for (int i = 0; !s->px && i < conf->nvips; i++)
		if (conf->vips[i].proxy_protocol)
			lb_warn("vip %s: proxy_protocol is for the userspace proxy; the BPF data path "
				"forwards packets and sends no header", conf->vips[i].name);
	memset(conf, 0, sizeof(*conf));
	*out = s;
	return 0;
fail:
	for (int i = 0; i < ninherit; i++)
		close(inherit[i]);
	s->file = (struct lb_conf){ 0 }; /* still the caller's */
	lb_model_free(&s->m);
	for (int i = 0; i < s->nrt; i++)
		free(s->rt[i]);
	lb_dp_close(s->dp);
	free(s->gen);
	free(s);
	return err;
}

static int rm_pins(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char p[LB_CONF_PATH_MAX + 300];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (!unlink(p))
			n++;
	}
	closedir(d);
	rmdir(dir);
	return n;
}

void lb_svc_stop(struct lb_svc *s, bool cleanup)
{
	if (!s)
		return;
	/* withdrawn before anything stops forwarding */
	lb_bgp_free(s->bgp);
	s->bgp = NULL;
	lb_owner_close(s->owner);
	s->owner = NULL;
	if (cleanup) {
		if (s->sk_local)
			lb_dp_detach_sk_lookup(s->dp);
		vip_addrs_remove(s);
		for (int i = 0; i < s->nifs; i++)
			if_detach(s, &s->ifs[i]);
	}
	if (cleanup)
		lb_sup_free(s->sup);
	else
		lb_sup_leave(s->sup);
	lb_health_free(s->health);
	lb_model_free(&s->m);
	lb_nl_close(s->nl);
	lb_dp_close(s->dp);
	/* like the data path, the proxy's workers serve on unless cleaned up */
	bool proxy = s->px != NULL;
	int left = 0;

	if (cleanup)
		lb_proxy_stop(s->px);
	else
		left = lb_proxy_leave(s->px);
	if (cleanup) {
		char p[LB_CONF_PATH_MAX + 32];
		int n = rm_pins(s->file.bpffs);

		snprintf(p, sizeof(p), "%s/%s", s->file.state_dir, SVC_OWNER_FILE);
		unlink(p);
		lb_info("cleaned up: detached, %d pinned object(s) removed from %s", n, s->file.bpffs);
	} else if (proxy) {
		lb_info(left ? "exiting; the proxy's workers serve on" : "exiting");
	} else {
		lb_info("exiting; the data path keeps forwarding (pinned in %s)", s->file.bpffs);
	}
	for (int i = 0; i < s->nrt; i++)
		free(s->rt[i]);
	lb_config_free(&s->file);
	free(s->gen);
	free(s);
}

int lb_svc_cleanup(const struct lb_conf *conf)
{
	struct lb_dp_opts o = { .pin_root = conf->bpffs, .load_tc = true };
	struct lb_dp *dp;
	char p[LB_CONF_PATH_MAX + 32];
	int err, n;

	n = lb_proxy_retire_orphans(conf->state_dir);
	if (n > 0)
		lb_info("cleaned up: %d proxy worker(s) retired (they finish their open connections)", n);
	if (access(conf->bpffs, F_OK)) {
		lb_info("nothing pinned in %s", conf->bpffs);
		return 0;
	}
	err = lb_dp_open(&o, &dp);
	if (err) {
		lb_err("cannot open the pinned data path in %s: %s", conf->bpffs, strerror(-err));
		return err;
	}
	for (int i = 0; i < conf->ninterfaces; i++) {
		int idx = if_nametoindex(conf->interfaces[i]);

		for (int m = LB_DP_XDP; idx && m <= LB_DP_TC; m++)
			if (!lb_dp_detach(dp, idx, m))
				lb_info("interface %s: detached (%s)", conf->interfaces[i], lb_dp_mode_name(m));
	}
	lb_dp_close(dp);
	{
		struct lb_nl *nl;

		if (!lb_nl_open(NULL, NULL, &nl)) {
			for (int i = 0; i < conf->nvips; i++)
				lb_nl_addr_del(nl, 1, &conf->vips[i].listen.addr,
					       conf->vips[i].listen.family, 0);
			lb_nl_close(nl);
		}
	}
	n = rm_pins(conf->bpffs);
	snprintf(p, sizeof(p), "%s/%s", conf->state_dir, SVC_OWNER_FILE);
	unlink(p);
	lb_info("cleaned up: %d pinned object(s) removed from %s", n, conf->bpffs);
	return 0;
}

bool lb_svc_metrics_addr(const struct lb_svc *s, struct lb_endpoint *ep)
{
	if (s->file.metrics_set)
		*ep = s->file.metrics;
	return s->file.metrics_set;
}

bool lb_svc_stop_requested(const struct lb_svc *s)
{
	return s->stop;
}

static const char *proto_name(__u8 p)
{
	return p == IPPROTO_UDP ? "udp" : "tcp";
}

/* ---- what a change changes ----------------------------------------------
 * One line per difference between the applied model and a new one, in the
 * words an operator reads in `lbctl` output and the log: "added backend
 * 10.0.0.2:3000 to vip web (weight 1, up)", or for a dry run "would add ...".
 */
enum { D_ADD, D_DEL, D_CHANGE };

struct svc_diff {
	struct lb_buf *o;
	bool dry, json;
	int n;             /* lines so far */
};

static void __attribute__((format(printf, 3, 4)))
diff_line(struct svc_diff *d, int kind, const char *fmt, ...)
{
	static const char *const verbs[][2] = {
		[D_ADD] = { "added", "would add" }, [D_DEL] = { "deleted", "would delete" },
		[D_CHANGE] = { "changed", "would change" },
	};
	char line[512];
	va_list ap;
	int k = snprintf(line, sizeof(line), "%s ", verbs[kind][d->dry]);

	va_start(ap, fmt);
	vsnprintf(line + k, sizeof(line) - k, fmt, ap);
	va_end(ap);
	if (d->json) {
		lb_buf_printf(d->o, "%s", d->n ? "," : "");
		lb_buf_json_str(d->o, line);
	} else {
		lb_buf_printf(d->o, "%s\n", line);
	}
	d->n++;
}

/* Appends ", what from -> to" (the first without its comma) when they differ. */
static void diff_field(char *buf, size_t len, const char *what, const char *from, const char *to)
{
	size_t k = strlen(buf);

	if (!strcmp(from, to) || k >= len)
		return;
	snprintf(buf + k, len - k, "%s%s %s -> %s", k ? ", " : "", what, from, to);
}

static void diff_num(char *buf, size_t len, const char *what, unsigned long long from,
		     unsigned long long to)
{
	char f[24], t[24];

	snprintf(f, sizeof(f), "%llu", from);
	snprintf(t, sizeof(t), "%llu", to);
	diff_field(buf, len, what, f, t);
}

static void diff_backends(struct svc_diff *d, const struct lb_model_vip *ov,
			  const struct lb_model_vip *nv)
{
	char ep[LB_ADDRSTRLEN], what[256];

	for (int j = 0; j < nv->nbe; j++) {
		const struct lb_backend_conf *n = &nv->be[j].c;
		const struct lb_model_be *ob = ov ? lb_model_find_be(ov, &n->ep) : NULL;

		lb_endpoint_str(&n->ep, ep, sizeof(ep));
		if (!ob) {
			diff_line(d, D_ADD, "backend %s to vip %s (weight %u, %s%s)", ep, nv->c.name,
				  n->weight, lb_backend_state_name(n->state), n->backup ? ", backup" : "");
			continue;
		}
		what[0] = '\0';
		diff_num(what, sizeof(what), "weight", ob->c.weight, n->weight);
		diff_field(what, sizeof(what), "state", lb_backend_state_name(ob->c.state),
			   lb_backend_state_name(n->state));
		diff_field(what, sizeof(what), "backup", ob->c.backup ? "yes" : "no", n->backup ? "yes" : "no");
		diff_num(what, sizeof(what), "max_fails", ob->c.max_fails, n->max_fails);
		diff_num(what, sizeof(what), "fail_timeout_ms", ob->c.fail_timeout_ms, n->fail_timeout_ms);
		diff_field(what, sizeof(what), "health_check", lb_hc_type_name(ob->c.health_check),
			   lb_hc_type_name(n->health_check));
		if (what[0])
			diff_line(d, D_CHANGE, "backend %s of vip %s: %s", ep, nv->c.name, what);
	}
	for (int j = 0; ov && j < ov->nbe; j++)
		if (!lb_model_find_be(nv, &ov->be[j].c.ep))
			diff_line(d, D_DEL, "backend %s from vip %s",
				  lb_endpoint_str(&ov->be[j].c.ep, ep, sizeof(ep)), nv->c.name);
}

static void diff_vips(struct svc_diff *d, const struct lb_model *om, const struct lb_model *nm)
{
	char a[LB_ADDRSTRLEN], b[LB_ADDRSTRLEN], what[512];

	for (int i = 0; i < nm->n; i++) {
		const struct lb_model_vip *nv = &nm->v[i], *ov = lb_model_find_vip(om, nv->c.name);
		const struct lb_vip_conf *n = &nv->c, *o = ov ? &ov->c : NULL;

		lb_endpoint_str(&n->listen, b, sizeof(b));
		if (!o) {
			diff_line(d, D_ADD, "vip %s (%s %s, method %s, forward %s, %d backend(s))", n->name, b,
				  proto_name(n->proto), lb_method_name(n->method), lb_fwd_name(n->forward),
				  nv->nbe);
			diff_backends(d, NULL, nv);
			continue;
		}
		what[0] = '\0';
		lb_endpoint_str(&o->listen, a, sizeof(a));
		diff_field(what, sizeof(what), "listen", a, b);
		diff_field(what, sizeof(what), "proto", proto_name(o->proto), proto_name(n->proto));
		diff_field(what, sizeof(what), "method", lb_method_name(o->method), lb_method_name(n->method));
		diff_field(what, sizeof(what), "forward", lb_fwd_name(o->forward), lb_fwd_name(n->forward));
		if (o->snat_set != n->snat_set || memcmp(&o->snat, &n->snat, sizeof(n->snat)))
			diff_field(what, sizeof(what), "snat",
				   o->snat_set ? lb_addr_str(&o->snat, o->listen.family, a, sizeof(a)) : "auto",
				   n->snat_set ? lb_addr_str(&n->snat, n->listen.family, b, sizeof(b)) : "auto");
		if (memcmp(&o->health, &n->health, sizeof(n->health))) {
			char t[48];

			snprintf(t, sizeof(t), "%s%s", lb_hc_type_name(n->health.type),
				 o->health.type == n->health.type ? " (other options)" : "");
			diff_field(what, sizeof(what), "health_check", lb_hc_type_name(o->health.type), t);
		}
		diff_num(what, sizeof(what), "slow_start_ms", o->slow_start_ms, n->slow_start_ms);
		diff_num(what, sizeof(what), "max_conns", o->max_conns, n->max_conns);
		diff_field(what, sizeof(what), "proxy_protocol", o->proxy_protocol ? "v2" : "off",
			   n->proxy_protocol ? "v2" : "off");
		diff_num(what, sizeof(what), "timeout_connect_ms", o->timeout_connect_ms,
			 n->timeout_connect_ms);
		diff_num(what, sizeof(what), "timeout_idle_ms", o->timeout_idle_ms, n->timeout_idle_ms);
		diff_num(what, sizeof(what), "timeout_fin_ms", o->timeout_fin_ms, n->timeout_fin_ms);
		if (what[0])
			diff_line(d, D_CHANGE, "vip %s: %s", n->name, what);
		diff_backends(d, ov, nv);
	}
	for (int i = 0; i < om->n; i++)
		if (!lb_model_find_vip(nm, om->v[i].c.name))
			diff_line(d, D_DEL, "vip %s (and its %d backend(s))", om->v[i].c.name, om->v[i].nbe);
}

static bool conf_has_worker(const struct lb_conf *c, const char *name)
{
	for (int i = 0; i < c->nworkers; i++)
		if (!strcmp(c->workers[i].name, name))
			return true;
	return false;
}

/* The lbd block and the workers, for a reload. */
static void encap_src_str(const struct lb_conf *c, char *buf, size_t len)
{
	char a[LB_ADDRSTRLEN] = "", b[LB_ADDRSTRLEN] = "";

	if (c->encap_src4_set)
		lb_addr_str(&c->encap_src4, LB_AF_INET, a, sizeof(a));
	if (c->encap_src6_set)
		lb_addr_str(&c->encap_src6, LB_AF_INET6, b, sizeof(b));
	snprintf(buf, len, "%s%s%s", a, a[0] && b[0] ? " " : "", b);
}

static void diff_conf(struct svc_diff *d, const struct lb_conf *o, const struct lb_conf *n)
{
	char what[512] = "", a[LB_ADDRSTRLEN] = "off", b[LB_ADDRSTRLEN] = "off";
	char fi[LB_CONF_MAX_IFACES * LB_CONF_IFNAME_MAX] = "", ni[sizeof(fi)] = "";

	for (int i = 0; i < o->ninterfaces; i++)
		snprintf(fi + strlen(fi), sizeof(fi) - strlen(fi), "%s%s", i ? "," : "", o->interfaces[i]);
	for (int i = 0; i < n->ninterfaces; i++)
		snprintf(ni + strlen(ni), sizeof(ni) - strlen(ni), "%s%s", i ? "," : "", n->interfaces[i]);
	diff_field(what, sizeof(what), "interfaces", fi, ni);
	diff_field(what, sizeof(what), "mode", lb_mode_name(o->mode), lb_mode_name(n->mode));
	diff_num(what, sizeof(what), "hash_seed", o->hash_seed, n->hash_seed);
	diff_num(what, sizeof(what), "maglev_size", o->maglev_size, n->maglev_size);
	diff_num(what, sizeof(what), "snat_ports low", o->snat_port_lo, n->snat_port_lo);
	diff_num(what, sizeof(what), "snat_ports high", o->snat_port_hi, n->snat_port_hi);
	diff_num(what, sizeof(what), "gue_port", o->gue_port, n->gue_port);
	{
		char oa[2 * LB_ADDRSTRLEN + 2] = "", na[2 * LB_ADDRSTRLEN + 2] = "";

		encap_src_str(o, oa, sizeof(oa));
		encap_src_str(n, na, sizeof(na));
		diff_field(what, sizeof(what), "encap_source", oa, na);
	}
	if (o->metrics_set)
		lb_endpoint_str(&o->metrics, a, sizeof(a));
	if (n->metrics_set)
		lb_endpoint_str(&n->metrics, b, sizeof(b));
	diff_field(what, sizeof(what), "metrics", a, b);
	if (what[0])
		diff_line(d, D_CHANGE, "lbd: %s", what);
	for (int i = 0; i < n->nworkers; i++)
		if (!conf_has_worker(o, n->workers[i].name))
			diff_line(d, D_ADD, "worker %s", n->workers[i].name);
	for (int i = 0; i < o->nworkers; i++)
		if (!conf_has_worker(n, o->workers[i].name))
			diff_line(d, D_DEL, "worker %s", o->workers[i].name);
}

static void err_to_buf(void *ctx, const char *msg)
{
	lb_buf_printf(ctx, "%s\n", msg);
}

/* The file re-read and checked, and the model it gives: what a reload would
 * apply. Errors go to eb and the log; nothing changes. */
static int reload_prepare(struct lb_svc *s, struct lb_conf *nc, struct lb_model *nm,
			  struct lb_buf *eb)
{
	struct lb_buf local = { 0 };
	int err;

	err = lb_config_load(s->conf_path, nc, err_to_buf, eb ? eb : &local);
	if (err) {
		eb = eb ? eb : &local;
		lb_err("reload of %s refused, nothing changed:\n%s", s->conf_path, eb->data ? eb->data : "");
		lb_buf_free(&local);
		return err;
	}
	/* what cannot change under a running data path */
	if (strcmp(nc->bpffs, s->file.bpffs) || strcmp(nc->state_dir, s->file.state_dir) ||
	    strcmp(nc->control, s->file.control) || nc->conntrack_size != s->file.conntrack_size ||
	    nc->conntrack_new_size != s->file.conntrack_new_size) {
		if (eb)
			lb_buf_printf(eb, "%s: bpffs, state_dir, control, conntrack_size and conntrack_new_size need a restart\n",
				      s->conf_path);
		lb_err("reload of %s refused: bpffs, state_dir, control, conntrack_size and conntrack_new_size need a restart",
		       s->conf_path);
		lb_config_free(nc);
		return -EINVAL;
	}
	if (s->px && nc->proxy_workers != s->file.proxy_workers)
		lb_warn("proxy_workers changed: it takes effect when lbd restarts");
	err = lb_model_build(nc, s->rt, s->nrt, s->sup, nm);
	if (err) {
		if (eb)
			lb_buf_printf(eb, "%s: %s\n", s->conf_path, strerror(-err));
		lb_err("reload of %s refused: %s", s->conf_path, strerror(-err));
		lb_config_free(nc);
	}
	return err;
}

/* Logs each line of a text diff. */
static void log_changes(const char *what, const struct lb_buf *b)
{
	const char *p = b->data;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		lb_info("%s: %.*s", what, len, p);
		p += len + (nl != NULL);
	}
}

/* Re-reads the file and applies it. `d`, if given, also gets what changed
 * (the log always does). */
static int reload(struct lb_svc *s, struct lb_buf *errs, struct svc_diff *d)
{
	struct lb_conf nc;
	struct lb_model nm;
	struct lb_config dc;
	struct lb_buf chg = { 0 };
	struct svc_diff logd = { .o = &chg };
	int err;

	err = reload_prepare(s, &nc, &nm, errs);
	if (err)
		return err;
	diff_conf(&logd, &s->file, &nc);
	diff_vips(&logd, &s->m, &nm);
	if (d) {
		diff_conf(d, &s->file, &nc);
		diff_vips(d, &s->m, &nm);
	}
	{
		/* tables depend on these: rebuild every VIP's */
		bool retable = nc.hash_seed != s->file.hash_seed || nc.maglev_size != s->file.maglev_size;
		struct lb_conf old = s->file;

		if (retable)
			for (int i = 0; i < s->m.n; i++)
				s->m.v[i].table_n = 0;
		dp_config(&nc, &dc);
		model_flags(&nm, &dc);
		s->file = nc;
		err = lb_dp_set_config(s->dp, &dc);
		if (!err)
			err = apply(s, &nm);
		lb_model_free(&nm);
		if (err) {
			if (errs)
				lb_buf_printf(errs, "applying %s failed: %s\n", s->conf_path, strerror(-err));
			lb_err("applying %s failed: %s", s->conf_path, strerror(-err));
			s->file = old;
			lb_config_free(&nc);
			lb_buf_free(&chg);
			return err;
		}
		s->file = old;
		if (!s->px)
			ifs_sync(s, &nc);
		if (s->sup)
			lb_sup_sync(s->sup, &nc);
		vip_addrs_sync(s, NULL);
		lb_log_set_level(nc.log_level);
		bgp_reload(s, &nc); /* s->file is still the old file */
		lb_config_free(&old);
		s->file = nc;
	}
	lb_info("reloaded %s: %d VIP(s), %d change(s)", s->conf_path, s->m.n, logd.n);
	log_changes("reload", &chg);
	lb_buf_free(&chg);
	return 0;
}

int lb_svc_reload(struct lb_svc *s, struct lb_buf *errs)
{
	return reload(s, errs, NULL);
}

/*
 * forward local: the socket-lookup program (bpf/lb_sk.bpf.c) runs on this
 * network namespace while some VIP forwards locally, and hands each new
 * connection to the socket of the instance its VIP's table picks. This
 * puts every registered instance's sockets in local_socks (found by port
 * in the instance process: any program will do) and forgets the ones that
 * left. See lb_sk.bpf.c for why no packet is rewritten.
 */
static struct svc_lsock *lsock_get(struct lb_svc *s, __u32 id)
{
	for (int i = 0; i < s->nlsock; i++)
		if (s->lsock[i].id == id)
			return &s->lsock[i];
	if (s->nlsock == (int)(sizeof(s->lsock) / sizeof(s->lsock[0])))
		return NULL;
	s->lsock[s->nlsock] = (struct svc_lsock){ .id = id };
	return &s->lsock[s->nlsock++];
}

/* Instance b of local VIP v: its sockets into local_socks, unless they
 * are there already (retried while none is found). */
static void local_sock_register(struct lb_svc *s, const struct lb_model_vip *v,
				struct lb_model_be *b)
{
	uint16_t port = ntohs(b->c.ep.port);
	struct svc_lsock *l = lsock_get(s, b->id);
	int fds[LB_PROCSOCK_MAX], n, set = 0;

	if (!l || !s->dp)
		return;
	l->seen = true;
	if (l->pid == b->pid && l->found)
		return;
	n = lb_procsock_find(b->pid, port, fds, LB_PROCSOCK_MAX);
	for (int i = 0; i < n; i++) {
		int err = lb_dp_local_sock_set(s->dp, b->id, fds[i]);

		if (err)
			lb_err("vip %s: port %u (pid %d): local_socks: %s", v->c.name, port,
			       (int)b->pid, strerror(-err));
		set += !err;
		close(fds[i]); /* the map holds the socket; the instance owns it */
	}
	if (set)
		lb_info("vip %s: %d socket(s) of pid %d on port %u take its connections",
			v->c.name, set, (int)b->pid, port);
	else if (l->pid != b->pid) /* said once per instance; retried every tick */
		lb_warn("vip %s: pid %d: no listening socket on port %u found%s%s", v->c.name,
			(int)b->pid, port, n < 0 ? ": " : "", n < 0 ? strerror(-n) : "");
	l->pid = b->pid;
	l->found = set > 0;
}

static void local_sync(struct lb_svc *s)
{
	bool want = false;
	int err;

	for (int i = 0; i < s->m.n; i++)
		want |= s->m.v[i].c.forward == LB_FWD_LOCAL;
	want = want && s->dp;
	if (want != s->sk_local) {
		err = want ? lb_dp_attach_sk_lookup(s->dp) : lb_dp_detach_sk_lookup(s->dp);
		if (err) {
			lb_err("local delivery: socket lookup program: %s", strerror(-err));
			return;
		}
		lb_info("local delivery: socket lookup program %s", want ? "attached" : "detached");
		s->sk_local = want;
	}
	if (!want)
		return;
	for (int i = 0; i < s->nlsock; i++)
		s->lsock[i].seen = false;
	for (int i = 0; i < s->m.n; i++)
		for (int j = 0; s->m.v[i].c.forward == LB_FWD_LOCAL && j < s->m.v[i].nbe; j++)
			if (s->m.v[i].be[j].pid > 0)
				local_sock_register(s, &s->m.v[i], &s->m.v[i].be[j]);
	for (int i = 0; i < s->nlsock; i++) {
		if (s->lsock[i].seen)
			continue;
		lb_dp_local_sock_del(s->dp, s->lsock[i].id);
		s->lsock[i--] = s->lsock[--s->nlsock];
	}
}

static void on_workers(void *ctx)
{
	struct lb_svc *s = ctx;
	struct lb_model nm;
	int err = lb_model_build(&s->file, s->rt, s->nrt, s->sup, &nm);

	if (!err) {
		/* instances that are gone stop taking flows now: the table
		 * rebuild in apply() takes tens of milliseconds */
		for (int i = 0; i < s->m.n; i++) {
			const struct lb_model_vip *v = &s->m.v[i], *nv = lb_model_find_vip(&nm, v->c.name);
			struct lb_backend d;

			for (int j = 0; nv && v->c.forward == LB_FWD_LOCAL && j < v->nbe; j++) {
				if (lb_model_find_be(nv, &v->be[j].c.ep) || lb_dp_backend_get(s->dp, v->be[j].id, &d))
					continue;
				d.state = LB_BE_DOWN;
				lb_dp_backend_set(s->dp, v->be[j].id, &d);
			}
		}
		err = apply(s, &nm);
		lb_model_free(&nm);
	}
	if (err)
		lb_err("workers: the data path refused the instance change: %s", strerror(-err));
	local_sync(s);
}

int lb_svc_workers_start(struct lb_svc *s, struct lb_loop *loop)
{
	struct lb_sup_opts o = { .loop = loop, .changed = on_workers, .ctx = s,
				 .state_dir = s->file.state_dir };
	int err = lb_sup_new(&o, &s->sup);

	if (!err)
		err = lb_sup_sync(s->sup, &s->file);
	on_workers(s); /* drops pinned instances that were not adopted */
	return err;
}

/* A VIP's data path counters: its own and its backends' (dataplane.h). */
static int vip_dp_stats(struct lb_svc *s, const struct lb_model_vip *v, struct lb_vip_stats *st)
{
	__u32 *ids = calloc((size_t)v->nbe + 1, sizeof(*ids));
	int err;

	if (!ids)
		return -ENOMEM;
	for (int i = 0; i < v->nbe; i++)
		ids[i] = v->be[i].id;
	err = lb_dp_vip_stats(s->dp, v->id, ids, (size_t)v->nbe, st);
	free(ids);
	return err;
}

/* Idle established flows go (lb_dp_ct_gc). Every SVC_CT_GC_TICKS ticks: a
 * sweep reads both established maps whole (batch lookups). */
#define SVC_CT_GC_TICKS 5

static void ct_collect(struct lb_svc *s)
{
	struct lb_ct_timeouts t = { s->file.ct_timeout_tcp, s->file.ct_timeout_udp,
				    s->file.ct_timeout_closed };
	struct lb_ct_gc_stats st;
	int err = lb_dp_ct_gc(s->dp, lb_dp_now(), s->ct_since, &t, &st);

	if (!err)
		err = lb_dp_conn_sweep(s->dp, &st.conns);
	if (err) {
		lb_warn("conntrack collection: %s", strerror(-err));
		return;
	}
	s->ct_gc.flows += st.flows;
	s->ct_gc.conns += st.conns;
	s->ct_gc.nat += st.nat;
	s->ct_gc.kept = st.kept;
	if (st.flows || st.nat)
		lb_debug("conntrack: %llu idle established flows and %llu reply mappings removed, "
			 "%llu kept", (unsigned long long)st.flows, (unsigned long long)st.nat,
			 (unsigned long long)st.kept);
}

/* The conntrack tiers as text or JSON members (status and stats). */
static void out_ct(struct lb_svc *s, bool json, struct lb_buf *o)
{
	struct lb_ct_counts c;

	if (!s->dp || lb_dp_ct_counts(s->dp, &c))
		return;
	if (json)
		lb_buf_printf(o, ",\"conntrack\":{\"established\":%llu,\"established_max\":%u,"
			      "\"new\":%llu,\"new_max\":%u,\"gc_removed\":%llu,"
			      "\"gc_conns_closed\":%llu}",
			      (unsigned long long)c.established, c.established_max,
			      (unsigned long long)c.new_flows, c.new_max,
			      (unsigned long long)s->ct_gc.flows,
			      (unsigned long long)s->ct_gc.conns);
	else
		lb_buf_printf(o, "conntrack: %llu established (room for %u a family), %llu new "
			      "(LRU, %u a family); %llu idle flows collected, %llu connections "
			      "counted out with no close seen\n",
			      (unsigned long long)c.established, c.established_max,
			      (unsigned long long)c.new_flows, c.new_max,
			      (unsigned long long)s->ct_gc.flows,
			      (unsigned long long)s->ct_gc.conns);
}

void lb_svc_tick(struct lb_svc *s)
{
	struct svc_rate *r = &s->rate[1];
	__u64 flows = 0;

	/* entries go stale and are collected: XDP traffic never refreshes them */
	if (++s->ticks % 10 == 0)
		neigh_warm_all(s);
	/* route and neighbour changes reach flows' cached next hops */
	if (s->dp)
		lb_dp_fib_bump(s->dp);
	if (s->dp && s->ticks % SVC_CT_GC_TICKS == 0)
		ct_collect(s);
	health_tick(s);
	local_sync(s);
	lb_proxy_tick(s->px);

	s->rate[0] = s->rate[1];
	r->ms = lb_now_ms();
	for (int i = 0; i < s->m.n; i++) {
		struct lb_vip_stats st;
		__u32 id = s->m.v[i].id;

		if (!vip_dp_stats(s, &s->m.v[i], &st)) {
			r->pkts[id] = st.packets + st.reply_packets;
			r->bytes[id] = st.bytes + st.reply_bytes;
			flows += st.new_flows;
		}
	}
	/* interfaces that were missing or re-created get attached again */
	for (int i = 0; i < s->nifs; i++) {
		struct svc_if *f = &s->ifs[i];
		int idx = if_nametoindex(f->name);

		if (idx && (f->mode < 0 || idx != f->ifindex)) {
			if (f->mode >= 0)
				lb_info("interface %s was re-created (index %d -> %d)", f->name, f->ifindex, idx);
			if_attach(s, f);
		} else if (!idx && f->mode >= 0) {
			lb_warn("interface %s is gone: detached", f->name);
			lb_dp_detach(s->dp, f->ifindex, f->mode);
			f->mode = -1;
			f->ifindex = 0;
			snprintf(f->why, sizeof(f->why), "interface is gone");
		}
	}
	bgp_sync(s);
	lb_bgp_tick(s->bgp, flows);
	drain_tick(s);
}

/* ---- control commands ------------------------------------------------- */

static const char *ifmode_name(const struct svc_if *f)
{
	return f->mode < 0 ? "detached" : lb_dp_mode_name(f->mode);
}

/* The health of a backend of the current model, if it has any. */
static void out_health(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o,
		       const struct lb_model_be *b)
{
	struct lb_health_status hs;
	const struct lb_model_vip *v = NULL;
	__u64 now = lb_now_ms();

	for (int i = 0; i < s->m.n && !v; i++)
		if (b >= s->m.v[i].be && b < s->m.v[i].be + s->m.v[i].nbe)
			v = &s->m.v[i];
	if (!v || lb_health_status(s->health, v->c.name, &b->c.ep, &hs))
		return;
	if (r->json) {
		lb_buf_printf(o, ",\"health\":\"%s\",\"health_check\":\"%s\",\"health_reason\":",
			      hs.up ? "up" : "down",
			      hs.checking ? lb_hc_type_name(b->c.health_check != LB_HC_INHERIT ?
								b->c.health_check : v->c.health.type) : "none");
		lb_buf_json_str(o, hs.reason);
		lb_buf_printf(o, ",\"health_ok_run\":%u,\"health_fail_run\":%u,\"health_checks\":%llu,"
			      "\"health_failures\":%llu,\"passive_fails\":%llu,\"health_changes\":%llu,"
			      "\"last_check_ms_ago\":%lld,\"last_change_ms_ago\":%lld,\"slow_start\":%u,"
			      "\"health_latency_us\":",
			      hs.ok_run, hs.fail_run, (unsigned long long)hs.checks,
			      (unsigned long long)hs.failures, (unsigned long long)hs.passive_fails,
			      (unsigned long long)hs.changes,
			      hs.last_check_ms ? (long long)(now - hs.last_check_ms) : -1LL,
			      hs.last_change_ms ? (long long)(now - hs.last_change_ms) : -1LL,
			      be_ramp(s, v, b) * 10);
		if (hs.checks)
			lb_buf_printf(o, "%llu", (unsigned long long)hs.latency_us);
		else
			lb_buf_printf(o, "null");
		return;
	}
	if (!hs.checking && hs.up && !hs.passive_fails)
		return;
	lb_buf_printf(o, "  health %s", hs.up ? "up" : "down");
	if (be_ramp(s, v, b) < 10)
		lb_buf_printf(o, " (slow start %u%%)", be_ramp(s, v, b) * 10);
	if (hs.last_change_ms)
		lb_buf_printf(o, " since %llds", (long long)(now - hs.last_change_ms) / 1000);
	lb_buf_printf(o, ": %s", hs.reason);
	if (hs.fail_run)
		lb_buf_printf(o, " (%u failed)", hs.fail_run);
}

/* Traffic towards a VIP or a backend (client to backend direction), from
 * whichever data path serves it: the proxy counts connections, not packets
 * (packets -1). */
struct svc_traffic {
	long long packets, bytes, new_flows, conns;
};

static void be_traffic(struct lb_svc *s, __u32 id, struct svc_traffic *t)
{
	struct lb_proxy_be_stats ps = { 0 };
	struct lb_backend_stats bs = { 0 };
	__s64 conns = 0;

	if (s->px) {
		lb_proxy_backend_stats(s->px, id, &ps);
		*t = (struct svc_traffic){ -1, (long long)ps.bytes_in, (long long)ps.conns, ps.active };
		return;
	}
	lb_dp_backend_stats(s->dp, id, &bs);
	lb_dp_backend_conns(s->dp, id, &conns);
	*t = (struct svc_traffic){ (long long)bs.packets, (long long)bs.bytes,
				   (long long)bs.new_flows, conns > 0 ? conns : 0 };
}

static void vip_traffic(struct lb_svc *s, const struct lb_model_vip *v, struct svc_traffic *t)
{
	struct lb_proxy_vip_stats ps = { 0 };
	struct lb_vip_stats st = { 0 };

	if (s->px) {
		lb_proxy_vip_stats(s->px, v->c.name, &ps);
		*t = (struct svc_traffic){ -1, (long long)ps.bytes_in, (long long)ps.accepted,
					   (long long)ps.active };
		return;
	}
	vip_dp_stats(s, v, &st);
	*t = (struct svc_traffic){ (long long)st.packets, (long long)st.bytes,
				   (long long)st.new_flows, 0 };
	for (int i = 0; i < v->nbe; i++) {
		struct svc_traffic bt;

		be_traffic(s, v->be[i].id, &bt);
		t->conns += bt.conns;
	}
}

static void out_traffic(struct lb_buf *o, const struct svc_traffic *t)
{
	if (t->packets < 0)
		lb_buf_printf(o, ",\"packets\":null");
	else
		lb_buf_printf(o, ",\"packets\":%lld", t->packets);
	lb_buf_printf(o, ",\"bytes\":%lld,\"new_flows\":%lld", t->bytes, t->new_flows);
}

static void out_backend(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o,
			const struct lb_model_be *b, bool first)
{
	struct svc_traffic t;
	char ep[LB_ADDRSTRLEN];

	be_traffic(s, b->id, &t);
	lb_endpoint_str(&b->c.ep, ep, sizeof(ep));
	if (r->json) {
		lb_buf_printf(o, "%s{\"address\":\"%s\",\"id\":%u,\"state\":\"%s\",\"weight\":%u,"
			      "\"backup\":%s,\"conns\":%lld,\"table_slots\":%u,\"state_since_ms\":%llu",
			      first ? "" : ",", ep, b->id, lb_backend_state_name(b->c.state), b->c.weight,
			      b->c.backup ? "true" : "false", t.conns, b->slots,
			      (unsigned long long)b->state_ms);
		out_traffic(o, &t);
	} else
		lb_buf_printf(o, "    %-24s %-6s weight %-5u conns %lld%s", ep,
			      lb_backend_state_name(b->c.state), b->c.weight, t.conns,
			      b->c.backup ? "  backup" : "");
	out_health(s, r, o, b);
	lb_buf_printf(o, r->json ? "}" : "\n");
}

static void out_vip(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o,
		    const struct lb_model_vip *v, bool first, bool backends)
{
	char ep[LB_ADDRSTRLEN], sn[LB_ADDRSTRLEN];
	struct svc_traffic t;

	lb_endpoint_str(&v->c.listen, ep, sizeof(ep));
	if (v->snat_ok)
		lb_addr_str(&v->snat, v->c.listen.family, sn, sizeof(sn));
	else
		snprintf(sn, sizeof(sn), "%s",
			 v->c.forward == LB_FWD_NAT || lb_fwd_encap(v->c.forward) ? "unresolved" : "-");
	if (r->json) {
		lb_buf_printf(o, "%s{\"name\":", first ? "" : ",");
		lb_buf_json_str(o, v->c.name);
		lb_buf_printf(o, ",\"listen\":\"%s\",\"proto\":\"%s\",\"method\":\"%s\",\"forward\":\"%s\","
			      "\"snat\":\"%s\",\"id\":%u,\"table_size\":%u,\"table_digest\":\"%016llx\","
			      "\"runtime\":%s", ep,
			      proto_name(v->c.proto), lb_method_name(v->c.method), lb_fwd_name(v->c.forward),
			      sn, v->id, v->table_n, (unsigned long long)v->digest,
			      v->runtime ? "true" : "false");
		vip_traffic(s, v, &t);
		out_traffic(o, &t);
		lb_buf_printf(o, ",\"conns\":%lld", t.conns);
		if (backends) {
			lb_buf_printf(o, ",\"backends\":[");
			for (int i = 0; i < v->nbe; i++)
				out_backend(s, r, o, &v->be[i], i == 0);
			lb_buf_printf(o, "]");
		}
		lb_buf_printf(o, "}");
		return;
	}
	lb_buf_printf(o, "  %-12s %s %s  method %s  forward %s  snat %s  table %u  digest %016llx%s\n",
		      v->c.name, ep, proto_name(v->c.proto), lb_method_name(v->c.method),
		      lb_fwd_name(v->c.forward), sn, v->table_n, (unsigned long long)v->digest,
		      v->runtime ? "  (runtime)" : "");
	if (backends) {
		for (int i = 0; i < v->nbe; i++)
			out_backend(s, r, o, &v->be[i], i == 0);
		if (!v->nbe)
			lb_buf_printf(o, "    (no backends)\n");
	}
}

static int cmd_status(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	char host[256] = "";

	if (r->json) {
		__u64 now = lb_now_ms();

		gethostname(host, sizeof(host) - 1);
		/* now_ms (CLOCK_MONOTONIC) dates the counters: two samples give rates */
		lb_buf_printf(o, "{\"version\":\"%s\",\"pid\":%d,\"host\":", LBD_VERSION,
			      (int)getpid());
		lb_buf_json_str(o, host);
		lb_buf_printf(o, ",\"now_ms\":%llu,\"uptime_ms\":%llu,\"config\":",
			      (unsigned long long)now, (unsigned long long)(now - s->start_ms));
		lb_buf_json_str(o, s->conf_path);
		lb_buf_printf(o, ",\"bpffs\":");
		lb_buf_json_str(o, s->file.bpffs);
		lb_buf_printf(o, ",\"proxy\":%s", s->px ? "true" : "false");
		if (s->px) {
			pid_t pids[LB_PROXY_MAX_WORKERS];
			int n = lb_proxy_workers(s->px, pids, LB_PROXY_MAX_WORKERS);

			lb_buf_printf(o, ",\"proxy_workers\":[");
			for (int i = 0; i < n; i++)
				lb_buf_printf(o, "%s%d", i ? "," : "", (int)pids[i]);
			lb_buf_printf(o, "]");
		}
		lb_buf_printf(o, ",\"adopted\":%s,\"hash_seed\":%u,\"interfaces\":[",
			      lb_dp_adopted(s->dp) ? "true" : "false", s->file.hash_seed);
		for (int i = 0; i < s->nifs; i++) {
			lb_buf_printf(o, "%s{\"name\":\"%s\",\"mode\":\"%s\",\"error\":", i ? "," : "",
				      s->ifs[i].name, ifmode_name(&s->ifs[i]));
			lb_buf_json_str(o, s->ifs[i].why);
			lb_buf_printf(o, "}");
		}
		lb_buf_printf(o, "],\"vips\":[");
		for (int i = 0; i < s->m.n; i++)
			out_vip(s, r, o, &s->m.v[i], i == 0, true);
		lb_buf_printf(o, "],\"node\":");
		if (s->bgp)
			lb_bgp_status(s->bgp, true, o);
		else
			lb_buf_printf(o, "null");
		lb_buf_printf(o, ",\"flow_sync\":");
		if (s->owner)
			lb_owner_status(s->owner, true, o);
		else
			lb_buf_printf(o, "null");
		lb_buf_printf(o, ",\"workers\":");
		lb_sup_list(s->sup, true, o);
		lb_buf_printf(o, ",\"runtime\":[");
		for (int i = 0; i < s->nrt; i++) {
			lb_buf_printf(o, "%s", i ? "," : "");
			lb_buf_json_str(o, s->rt[i]);
		}
		lb_buf_printf(o, "]}\n");
		return LB_CTL_OK;
	}
	lb_buf_printf(o, "lbd %d  config %s  pinned in %s%s  hash_seed 0x%x\n", (int)getpid(),
		      s->conf_path, s->file.bpffs, lb_dp_adopted(s->dp) ? " (adopted)" : "",
		      s->file.hash_seed);
	if (s->px) {
		pid_t pids[LB_PROXY_MAX_WORKERS];
		int n = lb_proxy_workers(s->px, pids, LB_PROXY_MAX_WORKERS);

		lb_buf_printf(o, "mode: proxy (userspace; no BPF data path attached), %d worker "
			      "process(es):", n);
		for (int i = 0; i < n; i++)
			lb_buf_printf(o, pids[i] ? " %d" : " (restarting)", (int)pids[i]);
		lb_buf_printf(o, "\n");
	}
	lb_buf_printf(o, "interfaces:\n");
	for (int i = 0; i < s->nifs; i++)
		lb_buf_printf(o, "  %-12s %s%s%s%s\n", s->ifs[i].name, ifmode_name(&s->ifs[i]),
			      s->ifs[i].why[0] ? "  (" : "", s->ifs[i].why, s->ifs[i].why[0] ? ")" : "");
	if (s->bgp)
		lb_bgp_status(s->bgp, false, o);
	if (s->owner)
		lb_owner_status(s->owner, false, o);
	out_ct(s, false, o);
	lb_buf_printf(o, "vips:\n");
	for (int i = 0; i < s->m.n; i++)
		out_vip(s, r, o, &s->m.v[i], i == 0, true);
	if (s->nrt) {
		lb_buf_printf(o, "runtime layer (%s/%s):\n", s->file.state_dir, SVC_RT_FILE);
		for (int i = 0; i < s->nrt; i++)
			lb_buf_printf(o, "  %s\n", s->rt[i]);
	}
	return LB_CTL_OK;
}

int lb_svc_status_json(struct lb_svc *s, struct lb_buf *o)
{
	char word[] = "status";
	char *argv[] = { word, NULL };
	struct lb_ctl_req r = { .argc = 1, .argv = argv, .json = true };

	cmd_status(s, &r, o);
	return o->oom ? -ENOMEM : 0;
}

static double rate(const struct lb_svc *s, const __u64 *prev, const __u64 *cur, __u32 id)
{
	__u64 dt = s->rate[1].ms - s->rate[0].ms;

	return dt && s->rate[0].ms && cur[id] >= prev[id] ? (cur[id] - prev[id]) * 1000.0 / dt : 0;
}

static int cmd_stats(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	const char *only = r->argc >= 3 && !strcmp(r->argv[1], "vip") ? r->argv[2] : NULL;
	__u64 drops[LB_DROP_REASONS] = { 0 }, ev[LB_EVENTS] = { 0 };
	bool first = true;

	if (r->argc >= 2 && !only) {
		lb_buf_printf(o, "stats: \"%s\": expected `stats` or `stats vip NAME`\n", r->argv[1]);
		return LB_CTL_USAGE;
	}
	if (only && !lb_model_find_vip(&s->m, only)) {
		lb_buf_printf(o, "stats vip %s: no such VIP\n", only);
		return LB_CTL_FAILED;
	}
	if (s->px)
		return proxy_stats(s, r, o, only);
	lb_dp_drops(s->dp, drops);
	lb_dp_events(s->dp, ev);
	lb_buf_printf(o, r->json ? "{\"vips\":[" : "");
	for (int i = 0; i < s->m.n; i++) {
		const struct lb_model_vip *v = &s->m.v[i];
		struct lb_vip_stats st = { 0 };

		if (only && strcmp(only, v->c.name))
			continue;
		vip_dp_stats(s, v, &st);
		if (r->json) {
			lb_buf_printf(o, "%s{\"name\":", first ? "" : ",");
			lb_buf_json_str(o, v->c.name);
			lb_buf_printf(o, ",\"packets\":%llu,\"bytes\":%llu,\"new_flows\":%llu,"
				      "\"reply_packets\":%llu,\"reply_bytes\":%llu,\"pps\":%.1f,\"bps\":%.1f,"
				      "\"backends\":[", (unsigned long long)st.packets,
				      (unsigned long long)st.bytes, (unsigned long long)st.new_flows,
				      (unsigned long long)st.reply_packets, (unsigned long long)st.reply_bytes,
				      rate(s, s->rate[0].pkts, s->rate[1].pkts, v->id),
				      rate(s, s->rate[0].bytes, s->rate[1].bytes, v->id) * 8);
		} else {
			lb_buf_printf(o, "vip %s: %llu packets, %llu bytes in; %llu packets, %llu bytes back; "
				      "%llu new flows; %.0f pkt/s, %.0f bit/s\n", v->c.name,
				      (unsigned long long)st.packets, (unsigned long long)st.bytes,
				      (unsigned long long)st.reply_packets, (unsigned long long)st.reply_bytes,
				      (unsigned long long)st.new_flows,
				      rate(s, s->rate[0].pkts, s->rate[1].pkts, v->id),
				      rate(s, s->rate[0].bytes, s->rate[1].bytes, v->id) * 8);
		}
		for (int j = 0; j < v->nbe; j++) {
			struct lb_backend_stats bs = { 0 };
			char ep[LB_ADDRSTRLEN];
			__s64 conns = 0;

			lb_dp_backend_stats(s->dp, v->be[j].id, &bs);
			lb_dp_backend_conns(s->dp, v->be[j].id, &conns);
			lb_endpoint_str(&v->be[j].c.ep, ep, sizeof(ep));
			if (r->json)
				lb_buf_printf(o, "%s{\"address\":\"%s\",\"packets\":%llu,\"bytes\":%llu,"
					      "\"new_flows\":%llu,\"conns\":%lld,\"syn\":%llu,\"rst_syn\":%llu",
					      j ? "," : "", ep, (unsigned long long)bs.packets,
					      (unsigned long long)bs.bytes, (unsigned long long)bs.new_flows,
					      (long long)conns, (unsigned long long)bs.syn,
					      (unsigned long long)bs.rst_syn);
			else
				lb_buf_printf(o, "  %-24s %-6s %10llu packets %12llu bytes %8llu flows %6lld conns",
					      ep, lb_backend_state_name(v->be[j].c.state),
					      (unsigned long long)bs.packets, (unsigned long long)bs.bytes,
					      (unsigned long long)bs.new_flows, (long long)conns);
			/* health state, reason and time of the last change */
			out_health(s, r, o, &v->be[j]);
			lb_buf_printf(o, r->json ? "}" : "\n");
		}
		lb_buf_printf(o, r->json ? "]}" : "");
		first = false;
	}
	if (r->json) {
		lb_buf_printf(o, "],\"drops\":{");
		for (unsigned int i = 0; i < LB_DROP_REASONS; i++)
			lb_buf_printf(o, "%s\"%s\":%llu", i ? "," : "", lb_drop_name(i),
				      (unsigned long long)drops[i]);
		lb_buf_printf(o, "},\"events\":{");
		for (unsigned int i = 0; i < LB_EVENTS; i++)
			lb_buf_printf(o, "%s\"%s\":%llu", i ? "," : "", lb_event_name(i),
				      (unsigned long long)ev[i]);
		lb_buf_printf(o, "}");
		out_ct(s, true, o);
		lb_buf_printf(o, "}\n");
		return LB_CTL_OK;
	}
	lb_buf_printf(o, "drops:");
	first = true;
	for (unsigned int i = 0; i < LB_DROP_REASONS; i++)
		if (drops[i]) {
			lb_buf_printf(o, " %s=%llu", lb_drop_name(i), (unsigned long long)drops[i]);
			first = false;
		}
	lb_buf_printf(o, "%s\nevents:", first ? " none" : "");
	for (unsigned int i = 0; i < LB_EVENTS; i++)
		lb_buf_printf(o, " %s=%llu", lb_event_name(i), (unsigned long long)ev[i]);
	lb_buf_printf(o, "\n");
	out_ct(s, false, o);
	return LB_CTL_OK;
}

/* ---- metrics (Prometheus text format 0.0.4) ---------------------------- */

/* One sample: name{k1="v1",...} value; the label pairs end with NULL. */
static void m_sample(struct lb_buf *o, const char *name, unsigned long long val, ...)
{
	const char *k;
	bool first = true;
	va_list ap;

	lb_buf_printf(o, "%s", name);
	va_start(ap, val);
	while ((k = va_arg(ap, const char *))) {
		lb_buf_printf(o, "%s%s=", first ? "{" : ",", k);
		lb_metrics_label(o, va_arg(ap, const char *));
		first = false;
	}
	va_end(ap);
	lb_buf_printf(o, "%s %llu\n", first ? "" : "}", val);
}

struct m_be {
	struct lb_backend_stats st;
	__s64 conns;
	char ep[LB_ADDRSTRLEN];
	struct lb_health_status hs; /* all zero without health checks */
	__u64 hs_change_unix;        /* wall-clock seconds of its last change, 0 = never */
};

enum { M_BE_PKTS, M_BE_BYTES, M_BE_FLOWS, M_BE_CONNS, M_BE_UP, M_BE_WEIGHT,
       M_BE_HEALTHY, M_BE_HC_FAILS, M_BE_PASSIVE_FAILS, M_BE_HC_CHANGES, M_BE_HC_LAST };

static const struct {
	const char *name, *type, *help;
} m_be_fams[] = {
	[M_BE_PKTS]   = { "lbd_backend_packets_total", "counter", "Packets forwarded to a backend." },
	[M_BE_BYTES]  = { "lbd_backend_bytes_total", "counter", "Bytes forwarded to a backend." },
	[M_BE_FLOWS]  = { "lbd_backend_new_flows_total", "counter", "Flows assigned to a backend." },
	[M_BE_CONNS]  = { "lbd_backend_connections", "gauge", "Live flows on a backend." },
	[M_BE_UP]     = { "lbd_backend_up", "gauge",
			  "1 if a backend takes new flows (state up), else 0; state says why." },
	[M_BE_WEIGHT] = { "lbd_backend_weight", "gauge", "Configured weight of a backend." },
	[M_BE_HEALTHY] = { "lbd_backend_healthy", "gauge",
			   "1 unless active or passive health checks hold a backend down." },
	[M_BE_HC_FAILS] = { "lbd_backend_health_check_failures_total", "counter",
			    "Active health checks of a backend that failed." },
	[M_BE_PASSIVE_FAILS] = { "lbd_backend_passive_failures_total", "counter",
				 "Refused or unanswered connections seen by passive checks." },
	[M_BE_HC_CHANGES] = { "lbd_backend_health_changes_total", "counter",
			      "Health state changes (up to down or back) of a backend." },
	[M_BE_HC_LAST] = { "lbd_backend_health_last_change_seconds", "gauge",
			   "Unix time of a backend's last health state change (0: none)." },
};

static unsigned long long m_be_value(unsigned int fam, const struct m_be *b,
				     const struct lb_backend_conf *c)
{
	switch (fam) {
	case M_BE_PKTS:  return b->st.packets;
	case M_BE_BYTES: return b->st.bytes;
	case M_BE_FLOWS: return b->st.new_flows;
	case M_BE_CONNS: return b->conns > 0 ? (unsigned long long)b->conns : 0;
	case M_BE_UP:    return c->state == LB_BE_UP;
	case M_BE_HEALTHY: return b->hs.up;
	case M_BE_HC_FAILS: return b->hs.failures;
	case M_BE_PASSIVE_FAILS: return b->hs.passive_fails;
	case M_BE_HC_CHANGES: return b->hs.changes;
	case M_BE_HC_LAST: return b->hs_change_unix;
	default:         return c->weight;
	}
}

int lb_svc_metrics(void *ctx, struct lb_buf *o)
{
	struct lb_svc *s = ctx;
	__u64 drops[LB_DROP_REASONS] = { 0 }, ev[LB_EVENTS] = { 0 };
	struct lb_vip_stats *vs;
	struct m_be *bs, *b;
	int nbe = 0;

	for (int i = 0; i < s->m.n; i++)
		nbe += s->m.v[i].nbe;
	vs = calloc((size_t)s->m.n + 1, sizeof(*vs));
	bs = calloc((size_t)nbe + 1, sizeof(*bs));
	if (!vs || !bs) {
		free(vs);
		free(bs);
		return -ENOMEM;
	}
	/* every counter is read once, so the families of one scrape agree */
	b = bs;
	for (int i = 0; i < s->m.n; i++) {
		const struct lb_model_vip *v = &s->m.v[i];

		/* the VIP's totals from the backend counters read here */
		lb_dp_vip_base_stats(s->dp, v->id, &vs[i]);
		for (int j = 0; j < v->nbe; j++, b++) {
			lb_dp_backend_stats(s->dp, v->be[j].id, &b->st);
			lb_vip_stats_add(&vs[i], &b->st);
			lb_dp_backend_conns(s->dp, v->be[j].id, &b->conns);
			lb_endpoint_str(&v->be[j].c.ep, b->ep, sizeof(b->ep));
			if (lb_health_status(s->health, v->c.name, &v->be[j].c.ep, &b->hs))
				b->hs.up = true;
			else if (b->hs.last_change_ms)
				b->hs_change_unix = (__u64)time(NULL) -
						    (lb_now_ms() - b->hs.last_change_ms) / 1000;
		}
	}
	lb_dp_drops(s->dp, drops);
	lb_dp_events(s->dp, ev);

	lb_metrics_head(o, "lbd_vip_packets_total", "counter",
			"Packets of a VIP: in from clients, out the replies translated back.");
	for (int i = 0; i < s->m.n; i++) {
		const char *vn = s->m.v[i].c.name;

		m_sample(o, "lbd_vip_packets_total", vs[i].packets, "vip", vn, "direction", "in", NULL);
		m_sample(o, "lbd_vip_packets_total", vs[i].reply_packets, "vip", vn, "direction", "out", NULL);
	}
	lb_metrics_head(o, "lbd_vip_bytes_total", "counter",
			"Bytes of a VIP: in from clients, out the replies translated back.");
	for (int i = 0; i < s->m.n; i++) {
		const char *vn = s->m.v[i].c.name;

		m_sample(o, "lbd_vip_bytes_total", vs[i].bytes, "vip", vn, "direction", "in", NULL);
		m_sample(o, "lbd_vip_bytes_total", vs[i].reply_bytes, "vip", vn, "direction", "out", NULL);
	}
	lb_metrics_head(o, "lbd_vip_new_flows_total", "counter", "Flows a VIP assigned to a backend.");
	for (int i = 0; i < s->m.n; i++)
		m_sample(o, "lbd_vip_new_flows_total", vs[i].new_flows, "vip", s->m.v[i].c.name, NULL);

	for (unsigned int f = 0; f < sizeof(m_be_fams) / sizeof(m_be_fams[0]); f++) {
		const char *name = m_be_fams[f].name;

		lb_metrics_head(o, name, m_be_fams[f].type, m_be_fams[f].help);
		b = bs;
		for (int i = 0; i < s->m.n; i++)
			for (int j = 0; j < s->m.v[i].nbe; j++, b++) {
				const struct lb_backend_conf *c = &s->m.v[i].be[j].c;
				const char *vip = s->m.v[i].c.name;

				if (f == M_BE_UP)
					m_sample(o, name, c->state == LB_BE_UP, "vip", vip, "backend", b->ep,
						 "state", lb_backend_state_name(c->state), NULL);
				else
					m_sample(o, name, m_be_value(f, b, c), "vip", vip, "backend", b->ep, NULL);
			}
	}

	lb_metrics_head(o, "lbd_drops_total", "counter", "Packets the data path dropped, by reason.");
	for (unsigned int i = 0; i < LB_DROP_REASONS; i++)
		m_sample(o, "lbd_drops_total", drops[i], "reason", lb_drop_name(i), NULL);
	lb_metrics_head(o, "lbd_events_total", "counter", "Data-path events, by kind.");
	for (unsigned int i = 0; i < LB_EVENTS; i++)
		m_sample(o, "lbd_events_total", ev[i], "event", lb_event_name(i), NULL);
	{
		struct lb_ct_counts c;

		if (s->dp && !lb_dp_ct_counts(s->dp, &c)) {
			lb_metrics_head(o, "lbd_conntrack_flows", "gauge",
					"Tracked flows by tier: established (never evicted) and new (LRU).");
			m_sample(o, "lbd_conntrack_flows", c.established, "tier", "established", NULL);
			m_sample(o, "lbd_conntrack_flows", c.new_flows, "tier", "new", NULL);
			lb_metrics_head(o, "lbd_conntrack_collected_total", "counter",
					"Idle established flows removed by lbd.");
			m_sample(o, "lbd_conntrack_collected_total", s->ct_gc.flows, NULL);
		}
	}
	lb_metrics_head(o, "lbd_interface_mode", "gauge", "The attach mode in use per interface (always 1).");
	for (int i = 0; i < s->nifs; i++)
		m_sample(o, "lbd_interface_mode", 1, "interface", s->ifs[i].name, "mode",
			 ifmode_name(&s->ifs[i]), NULL);
	lb_metrics_head(o, "lbd_runtime_changes", "gauge",
			"Runtime statements (lbctl changes) applied on top of the file.");
	m_sample(o, "lbd_runtime_changes", (unsigned long long)s->nrt, NULL);
	lb_metrics_head(o, "lbd_build_info", "gauge", "lbd's version (always 1).");
	m_sample(o, "lbd_build_info", 1, "version", LBD_VERSION, NULL);
	if (s->bgp)
		lb_bgp_metrics(s->bgp, o);
	free(vs);
	free(bs);
	return o->oom ? -ENOMEM : 0;
}

/* Which VIP and backend a canonical statement is about. */
static void stmt_key(const char *stmt, char *vip, size_t vl, char *ep, size_t el, char *op, size_t ol)
{
	char buf[LB_MODEL_STMT_MAX * 2], err[64], *w[LB_MODEL_MAX_WORDS];
	int n = lb_config_split(stmt, w, LB_MODEL_MAX_WORDS, buf, sizeof(buf), err, sizeof(err));

	vip[0] = ep[0] = op[0] = '\0';
	if (n < 3)
		return;
	snprintf(op, ol, "%s %s", w[0], w[1]);
	if (!strcmp(w[0], "vip")) {
		snprintf(vip, vl, "%s", w[2]);
		return;
	}
	snprintf(ep, el, "%s", w[2]);
	for (int i = 3; i < n; i++)
		if (!strncmp(w[i], "vip=", 4))
			snprintf(vip, vl, "%s", w[i] + 4);
}

static bool file_has(const struct lb_conf *cf, const char *vip, const char *ep)
{
	const struct lb_vip_conf *v = lb_config_vip(cf, vip);
	struct lb_endpoint e;

	if (!v || !ep[0])
		return v != NULL;
	if (lb_endpoint_parse(ep, &e))
		return false;
	for (int i = 0; i < v->nbackends; i++)
		if (lb_endpoint_eq(&v->backends[i].ep, &e))
			return true;
	return false;
}

/* The runtime layer with `stmt` added, without entries it makes moot, so it
 * stays as short as the changes it describes. */
static int rt_with(const struct lb_svc *s, const char *stmt, char **out, int *nout)
{
	char vip[LB_CONF_NAME_MAX], ep[LB_ADDRSTRLEN], op[32];
	bool del, keep_new = true;
	int n = 0;

	stmt_key(stmt, vip, sizeof(vip), ep, sizeof(ep), op, sizeof(op));
	del = !strcmp(op, "backend del") || !strcmp(op, "vip del");
	for (int i = 0; i < s->nrt; i++) {
		char v2[LB_CONF_NAME_MAX], e2[LB_ADDRSTRLEN], o2[32];
		bool moot;

		stmt_key(s->rt[i], v2, sizeof(v2), e2, sizeof(e2), o2, sizeof(o2));
		if (!strcmp(op, "vip del"))
			moot = !strcmp(v2, vip);
		else if (!strcmp(op, "backend del") || !strcmp(op, "backend add"))
			moot = !strcmp(v2, vip) && !strcmp(e2, ep);
		else
			moot = false;
		if (!moot)
			out[n++] = s->rt[i];
	}
	/* deleting what only the runtime layer had created leaves no trace */
	if (del && !file_has(&s->file, vip, !strcmp(op, "vip del") ? "" : ep))
		keep_new = false;
	if (keep_new) {
		if (n >= SVC_MAX_RT)
			return -E2BIG;
		out[n++] = (char *)stmt;
	}
	*nout = n;
	return 0;
}

/* Slots of `v`'s table that would point at another backend with `nv`. */
static void dry_run(struct lb_svc *s, const struct lb_model_vip *v, struct lb_model_vip *nv,
		    struct lb_buf *o, bool json, bool first)
{
	__u32 *tab = NULL, n = 0, moved = 0;
	int err;

	/* ids as apply() would keep them; new backends get ids no table has */
	for (int j = 0; j < nv->nbe; j++) {
		const struct lb_model_be *ob = v ? lb_model_find_be(v, &nv->be[j].c.ep) : NULL;

		nv->be[j].id = ob ? ob->id : 0x80000000u + j;
	}
	err = vip_table(s, nv, &tab, &n);
	if (err) {
		lb_buf_printf(o, json ? "%s{\"vip\":\"%s\",\"error\":\"%s\"}" : "%svip %s: %s\n",
			      json && !first ? "," : "", nv->c.name, strerror(-err));
		return;
	}
	if (v && v->table_n == n) {
		for (__u32 i = 0; i < n; i++)
			moved += tab[i] != v->table[i];
	} else {
		moved = n > (v ? v->table_n : 0) ? n : v->table_n;
	}
	if (json)
		lb_buf_printf(o, "%s{\"vip\":\"%s\",\"slots\":%u,\"moved\":%u}", first ? "" : ",",
			      nv->c.name, n, moved);
	else
		lb_buf_printf(o, "vip %s: %u of %u table slots (%.2f%%) would move to another backend%s\n",
			      nv->c.name, moved, n ? n : (v ? v->table_n : 0),
			      n ? 100.0 * moved / n : (moved ? 100.0 : 0.0),
			      v && (v->c.method == LB_METHOD_ROUND_ROBIN || v->c.method == LB_METHOD_LEAST_CONN)
				      ? " (new flows only: established flows never move)"
				      : "; established flows stay on their backend");
	free(tab);
}

static int cmd_change(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	char canon[LB_MODEL_STMT_MAX], err[320], *rt[SVC_MAX_RT];
	struct lb_buf chg = { 0 };
	struct lb_model nm;
	int e, nrt;

	if (r->argc > LB_MODEL_MAX_WORDS) {
		lb_buf_printf(o, "%s: too many arguments\n", r->argv[0]);
		return LB_CTL_USAGE;
	}
	e = lb_model_build(&s->file, s->rt, s->nrt, s->sup, &nm);
	if (e) {
		lb_buf_printf(o, "%s\n", strerror(-e));
		return LB_CTL_FAILED;
	}
	err[0] = '\0';
	e = lb_model_stmt(&nm, r->argv, r->argc, false, canon, sizeof(canon), err, sizeof(err));
	if (e) {
		lb_buf_printf(o, "%s %s: %s\n", r->argv[0], r->argc > 1 ? r->argv[1] : "",
			      err[0] ? err : strerror(-e));
		lb_model_free(&nm);
		return e == -EINVAL ? LB_CTL_USAGE : LB_CTL_FAILED;
	}
	if (r->dry_run) {
		struct svc_diff d = { .o = o, .dry = true, .json = r->json };

		if (r->json)
			lb_buf_printf(o, "{\"dry_run\":true,\"statement\":\"%s\",\"changes\":[", canon);
		else
			lb_buf_printf(o, "dry run: %s\n", canon);
		diff_vips(&d, &s->m, &nm);
		lb_buf_printf(o, r->json ? "],\"vips\":[" : "");
		for (int i = 0, k = 0; i < nm.n; i++) {
			const struct lb_model_vip *v = lb_model_find_vip(&s->m, nm.v[i].c.name);

			if (!strstr(canon, nm.v[i].c.name))
				continue;
			dry_run(s, v, &nm.v[i], o, r->json, k++ == 0);
		}
		lb_buf_printf(o, r->json ? "]}\n" : "nothing was changed\n");
		lb_model_free(&nm);
		return LB_CTL_OK;
	}
	/* what it changes, said once it is done */
	{
		struct svc_diff d = { .o = &chg, .json = r->json };

		diff_vips(&d, &s->m, &nm);
	}
	e = rt_with(s, canon, rt, &nrt);
	if (!e)
		e = rt_save(s, rt, nrt);
	if (e) {
		lb_buf_printf(o, "cannot persist the change in %s: %s; nothing was changed\n",
			      s->file.state_dir, strerror(-e));
		lb_model_free(&nm);
		lb_buf_free(&chg);
		return LB_CTL_FAILED;
	}
	e = apply(s, &nm);
	lb_model_free(&nm);
	if (e) {
		rt_save(s, s->rt, s->nrt);
		lb_buf_printf(o, "%s: the data path refused it: %s\n", canon, strerror(-e));
		lb_buf_free(&chg);
		return LB_CTL_FAILED;
	}
	{
		/* adopt the new list: free what was dropped, own the new statement */
		char *dup = strdup(canon);
		bool kept = false;

		for (int i = 0; i < s->nrt; i++) {
			bool still = false;

			for (int j = 0; j < nrt; j++)
				still |= rt[j] == s->rt[i];
			if (!still)
				free(s->rt[i]);
		}
		for (int j = 0; j < nrt; j++)
			if (rt[j] == canon) {
				rt[j] = dup;
				kept = true;
			}
		if (!kept)
			free(dup);
		memcpy(s->rt, rt, nrt * sizeof(*rt));
		s->nrt = nrt;
	}
	lb_info("runtime change: %s", canon);
	if (r->json)
		lb_buf_printf(o, "{\"ok\":true,\"statement\":\"%s\",\"changes\":[%s]}\n", canon,
			      chg.data ? chg.data : "");
	else
		lb_buf_printf(o, "ok: %s\n%s", canon, chg.data ? chg.data : "no change\n");
	lb_buf_free(&chg);
	return LB_CTL_OK;
}

/* A reload, or with -n what it would change: the same checks, the same
 * difference, the table slots that would move, and nothing applied. */
static int cmd_reload(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	struct lb_buf chg = { 0 }, errs = { 0 };
	struct svc_diff d = { .o = &chg, .dry = r->dry_run, .json = r->json };
	struct lb_conf nc, cur;
	struct lb_model nm;
	int e;

	if (!r->dry_run) {
		e = reload(s, &errs, &d);
	} else {
		e = reload_prepare(s, &nc, &nm, &errs);
		if (!e) {
			diff_conf(&d, &s->file, &nc);
			diff_vips(&d, &s->m, &nm);
		}
	}
	if (e) {
		lb_buf_printf(o, "%s", errs.data ? errs.data : "");
		lb_buf_printf(o, "%s: reload refused, nothing was changed\n", s->conf_path);
		lb_buf_free(&errs);
		lb_buf_free(&chg);
		return LB_CTL_FAILED;
	}
	if (r->json) {
		lb_buf_printf(o, "{\"%s\":true,\"config\":", r->dry_run ? "dry_run" : "ok");
		lb_buf_json_str(o, s->conf_path);
		lb_buf_printf(o, ",\"changes\":[%s]", chg.data ? chg.data : "");
	} else {
		lb_buf_printf(o, "%s %s\n%s", r->dry_run ? "dry run: reload of" : "reloaded", s->conf_path,
			      chg.data ? chg.data : "no change\n");
	}
	if (r->dry_run) {
		/* table estimates with the new seed and size, for VIPs whose backends change */
		cur = s->file;
		s->file = nc;
		lb_buf_printf(o, r->json ? ",\"vips\":[" : "");
		for (int i = 0, k = 0; i < nm.n; i++) {
			const struct lb_model_vip *v = lb_model_find_vip(&s->m, nm.v[i].c.name);
			struct lb_buf scratch = { 0 };
			struct svc_diff bd = { .o = &scratch };

			diff_backends(&bd, v, &nm.v[i]);
			lb_buf_free(&scratch);
			if (v && (bd.n || nc.hash_seed != cur.hash_seed || nc.maglev_size != cur.maglev_size))
				dry_run(s, v, &nm.v[i], o, r->json, k++ == 0);
		}
		s->file = cur;
		lb_buf_printf(o, r->json ? "]" : "nothing was changed\n");
		lb_model_free(&nm);
		lb_config_free(&nc);
	}
	lb_buf_printf(o, r->json ? "}\n" : "");
	lb_buf_free(&chg);
	lb_buf_free(&errs);
	return LB_CTL_OK;
}

/* `lbctl stop` removes the data path (lbd.c cleans up when it sees s->stop). */
static int cmd_stop(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	char ifs[LB_CONF_MAX_IFACES * (LB_CONF_IFNAME_MAX + 2)] = "";
	char what[sizeof(ifs) + LB_CONF_PATH_MAX + 96];
	size_t k = 0;

	for (int i = 0; i < s->nifs && k < sizeof(ifs); i++)
		k += (size_t)snprintf(ifs + k, sizeof(ifs) - k, "%s%s", i ? ", " : "", s->ifs[i].name);
	snprintf(what, sizeof(what), "%s it from %s and %s the pinned data path in %s",
		 r->dry_run ? "detach" : "detaching", s->nifs ? ifs : "no interface",
		 r->dry_run ? "remove" : "removing", s->file.bpffs);
	if (!r->dry_run)
		s->stop = true;
	if (r->json) {
		lb_buf_printf(o, "{\"%s\":true,\"changes\":[", r->dry_run ? "dry_run" : "ok");
		lb_buf_json_str(o, what);
		lb_buf_printf(o, "]}\n");
	} else {
		lb_buf_printf(o, r->dry_run ? "dry run: would stop lbd, %s\nnothing was changed\n"
					    : "lbd is stopping: %s\n", what);
	}
	return LB_CTL_OK;
}

static int cmd_vip(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	if (r->argc < 2 || !strcmp(r->argv[1], "list")) {
		lb_buf_printf(o, r->json ? "[" : "");
		for (int i = 0; i < s->m.n; i++)
			out_vip(s, r, o, &s->m.v[i], i == 0, false);
		lb_buf_printf(o, r->json ? "]\n" : "");
		return LB_CTL_OK;
	}
	if (!strcmp(r->argv[1], "show")) {
		const struct lb_model_vip *v = r->argc >= 3 ? lb_model_find_vip(&s->m, r->argv[2]) : NULL;

		if (!v) {
			lb_buf_printf(o, "vip show: %s%s%s\n", r->argc >= 3 ? "no such VIP \"" : "missing NAME",
				      r->argc >= 3 ? r->argv[2] : "", r->argc >= 3 ? "\"" : "");
			return r->argc >= 3 ? LB_CTL_FAILED : LB_CTL_USAGE;
		}
		out_vip(s, r, o, v, true, true);
		lb_buf_printf(o, r->json ? "\n" : "");
		return LB_CTL_OK;
	}
	return cmd_change(s, r, o);
}

/* `node status|drain|undrain`: the node's announcements (bgp block). */
static int cmd_node(struct lb_svc *s, const struct lb_ctl_req *r, struct lb_buf *o)
{
	const char *sub = r->argc > 1 ? r->argv[1] : "status";
	bool drain = !strcmp(sub, "drain");

	if (r->argc > 2 || (strcmp(sub, "status") && !drain && strcmp(sub, "undrain"))) {
		lb_buf_printf(o, "usage: node [status|drain|undrain]\n");
		return LB_CTL_USAGE;
	}
	if (!s->bgp) {
		lb_buf_printf(o, "node %s: no bgp block in the lbd block: this node announces nothing\n",
			      sub);
		return LB_CTL_FAILED;
	}
	if (!strcmp(sub, "status")) {
		lb_bgp_status(s->bgp, r->json, o);
		lb_buf_printf(o, r->json ? "\n" : "");
		return LB_CTL_OK;
	}
	{
		bool active = lb_bgp_state(s->bgp) == LB_NODE_ACTIVE && !s->drain_at;
		bool change = drain == active;
		const char *what = drain ? (change ? "draining: VIPs announced with GRACEFUL_SHUTDOWN, "
						     "then withdrawn; open flows go on"
						   : "already draining")
					 : (change ? "undrained: VIPs announced again" : "already active");

		if (change && !r->dry_run)
			svc_drain(s, drain);
		if (r->json) {
			lb_buf_printf(o, "{\"%s\":true,\"changes\":[", r->dry_run ? "dry_run" : "ok");
			if (change)
				lb_buf_json_str(o, what);
			lb_buf_printf(o, "]}\n");
		} else if (r->dry_run) {
			lb_buf_printf(o, "dry run: %s%s\nnothing was changed\n", change ? "would be " : "",
				      what);
		} else {
			lb_buf_printf(o, "node %s\n", what);
		}
	}
	return LB_CTL_OK;
}

/* What a member of control_readonly_group may run: nothing that changes
 * state, and no dry run either (it would still take the change path). */
static bool reads_only(const struct lb_ctl_req *r)
{
	const char *c = r->argv[0], *sub = r->argc > 1 ? r->argv[1] : "";

	if (r->dry_run)
		return false;
	return !strcmp(c, "status") || !strcmp(c, "stats") ||
	       (!strcmp(c, "node") && (r->argc < 2 || !strcmp(sub, "status"))) ||
	       (!strcmp(c, "worker") && (!strcmp(sub, "list") || !strcmp(sub, "logs")));
}

int lb_svc_command(void *ctx, const struct lb_ctl_req *r, struct lb_buf *o)
{
	struct lb_svc *s = ctx;
	const char *c = r->argv[0];

	if (r->readonly && !reads_only(r)) {
		lb_warn("control: uid %u (read-only group) may not run \"%s\"", (unsigned)r->uid, c);
		lb_buf_printf(o, "permission denied: \"%s\" changes state; the read-only group may "
			      "run status, stats, worker list and worker logs\n", c);
		return LB_CTL_FAILED;
	}

	if (!strcmp(c, "status"))
		return cmd_status(s, r, o);
	if (!strcmp(c, "stats"))
		return cmd_stats(s, r, o);
	if (!strcmp(c, "vip"))
		return cmd_vip(s, r, o);
	if (!strcmp(c, "backend"))
		return cmd_change(s, r, o);
	if (!strcmp(c, "worker") && s->sup)
		return lb_sup_command(s->sup, r->argc, r->argv, r->json, r->dry_run, o);
	if (!strcmp(c, "reload"))
		return cmd_reload(s, r, o);
	if (!strcmp(c, "stop"))
		return cmd_stop(s, r, o);
	if (!strcmp(c, "node"))
		return cmd_node(s, r, o);
	lb_buf_printf(o, "unknown command \"%s\" (status, vip, backend, stats, worker, node, reload, "
		      "stop)\n", c);
	return LB_CTL_USAGE;
}
