// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "lb_hash.h"
#include "log.h"
#include "loop.h"

#define PX_PIPE_SIZE     (64 * 1024)  /* what one splice moves at most */
#define PX_BUF_SIZE      (16 * 1024)  /* read/write mode: per worker, shared */
#define PX_PIPE_POOL     64           /* empty pipes kept per worker */
#define PX_ACCEPT_BURST  64
#define PX_EVENTS        256
#define PX_SWEEP_MS      100
#define PX_UDP_BUCKETS   4096
#define PX_MAX_TRIES     8
#define PX_DGRAM_MAX     65536

enum { T_EVENT, T_LISTEN, T_CLIENT, T_BACKEND, T_UDP_BE };

struct ptag {
	int kind;
};

typedef _Atomic __u64 cnt_t;

static inline void cnt_add(cnt_t *c, __u64 v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline __u64 cnt_get(cnt_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

struct pbstat {
	cnt_t conns, connected, fails, bytes_in, bytes_out;
	_Atomic __s64 active;
};

struct pworker;
struct svip;

/* One worker's listener of a VIP. Only that worker touches it after the
 * update that bound it. */
struct plisten {
	struct ptag tag;
	struct pvip *pv;
	int fd;
	bool armed;             /* in the worker's epoll */
	bool paused;            /* out of fds: re-armed by the sweep */
	struct svip *sv;        /* the VIP in the worker's current snapshot */
	__u32 rr;               /* round_robin cursor of this worker */
};

/* What persists of a VIP across updates: listeners and counters. */
struct pvip {
	_Atomic int ref;
	char name[LB_CONF_NAME_MAX];
	struct lb_endpoint listen;
	__u8 proto;
	bool bound;
	struct plisten *l;      /* one per worker */
	int nl;
	_Atomic __s64 active;
	cnt_t accepted, refused_limit, no_backend, connect_fail, retries, idle_closed;
	cnt_t bytes_in, bytes_out, dgrams_in, dgrams_out;
};

struct sbe {
	struct sockaddr_storage sa;
	socklen_t salen;
	__u32 id, weight;
	bool in_table;          /* may take new flows */
};

struct svip {
	struct pvip *pv;
	enum lb_method method;
	__u32 seed;
	__u32 max_conns;
	bool pp2;               /* PROXY v2 header first on each backend connection */
	__u32 *tab;             /* slots: indexes into be[] */
	__u32 n;
	struct sbe *be;
	int nbe;
};

struct psnap {
	_Atomic int ref;
	struct svip *v;
	int n;
};

struct pdir {
	int pipe[2];            /* -1: none held */
	char *buf;              /* read/write mode: bytes a short write left */
	size_t off;
	size_t pending;         /* in the pipe or buf */
	bool eof, shut;
	bool bulk;              /* a read filled the buffer: splice from now on */
};

struct pconn {
	struct ptag ctag, btag;
	struct pconn *prev, *next;
	struct psnap *snap;
	struct svip *sv;
	int cfd, bfd;
	int be;                 /* index in sv->be, -1 none */
	__u32 slot;
	int tries;
	int tried[PX_MAX_TRIES];
	bool connecting, dead;
	__u64 deadline;         /* connect deadline */
	__u64 last;             /* last activity */
	struct pdir d[2];       /* 0: client -> backend, 1: backend -> client */
};

struct pudp {
	struct ptag tag;
	struct pudp *hnext;
	struct pudp *prev, *next;
	struct psnap *snap;
	struct svip *sv;
	struct plisten *l;
	struct sockaddr_storage client;
	socklen_t clen;
	__u32 hash;
	int fd, be;
	__u64 last;
	bool dead;
};

struct pworker {
	struct ptag tag;        /* T_EVENT: the eventfd */
	struct lb_proxy *p;
	int idx;
	pthread_t th;
	bool started;
	int epfd, evfd;
	struct psnap *snap;
	unsigned int gen;
	struct pconn *conns;    /* live connections, any state */
	struct pconn *dead;     /* freed after the event batch */
	struct pudp *udp;       /* live sessions */
	struct pudp *udp_dead;
	struct pudp **ubucket;
	int pipes[PX_PIPE_POOL][2];
	int npipes;
	char *buf;
	__u64 now, next_sweep;
};

struct lb_proxy {
	struct lb_proxy_opts o;
	int *inh;               /* handed-over listeners not taken yet (-1: taken) */
	int ninh;
	_Atomic bool handed_over; /* a successor accepts: listen no more */
	pthread_mutex_t lock;   /* cur */
	struct psnap *cur;
	_Atomic unsigned int gen;
	_Atomic bool stopping;
	struct pbstat *bs;      /* LB_MAX_BACKENDS */
	struct pworker *w;
	int nw;
};

/* ---- snapshots --------------------------------------------------------- */

static void pvip_unref(struct pvip *pv)
{
	if (!pv || atomic_fetch_sub(&pv->ref, 1) != 1)
		return;
	for (int i = 0; i < pv->nl; i++)
		if (pv->l[i].fd >= 0)
			close(pv->l[i].fd);
	free(pv->l);
	free(pv);
}

static void snap_unref(struct psnap *s)
{
	if (!s || atomic_fetch_sub(&s->ref, 1) != 1)
		return;
	for (int i = 0; i < s->n; i++) {
		pvip_unref(s->v[i].pv);
		free(s->v[i].tab);
		free(s->v[i].be);
	}
	free(s->v);
	free(s);
}

static void snap_ref(struct psnap *s)
{
	atomic_fetch_add(&s->ref, 1);
}

static int listen_socket(const struct pvip *pv)
{
	struct sockaddr_storage ss;
	socklen_t sl = lb_endpoint_sockaddr(&pv->listen, &ss);
	int type = pv->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int one = 1, fd, err;

	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* the VIP address may be added to the host after we bind */
	if (ss.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sl) ||
	    (type == SOCK_STREAM && listen(fd, 4096))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* A handed-over listener bound where pv listens, or -1. */
static int inherit_take(struct lb_proxy *p, const struct pvip *pv)
{
	struct sockaddr_storage want;
	int want_type = pv->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;

	lb_endpoint_sockaddr(&pv->listen, &want);
	for (int i = 0; i < p->ninh; i++) {
		struct sockaddr_storage ss = { 0 };
		socklen_t sl = sizeof(ss), tl = sizeof(int);
		int fd = p->inh[i], type = -1;

		if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != want_type ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) || !lb_proxy_client_eq(&ss, &want))
			continue;
		p->inh[i] = -1;
		return fd;
	}
	return -1;
}

/* After the first update: what no VIP took goes (its queued connections
 * with it: the successor's configuration no longer has that VIP). */
static void inherit_drop(struct lb_proxy *p)
{
	int n = 0;

	for (int i = 0; i < p->ninh; i++) {
		if (p->inh[i] >= 0) {
			close(p->inh[i]);
			n++;
		}
	}
	if (n)
		lb_info("proxy: closed %d handed-over listener(s) no VIP uses", n);
	free(p->inh);
	p->inh = NULL;
	p->ninh = 0;
}

/* Bind one listener per worker (or take the handed-over ones); all or
 * none. */
static int pvip_bind(struct lb_proxy *p, struct pvip *pv)
{
	char ep[LB_ADDRSTRLEN];
	int err = 0, taken = 0;

	if (!pv->listen.port) {
		lb_err("proxy: vip %s: a wildcard-port VIP cannot be proxied", pv->name);
		return -EOPNOTSUPP;
	}
	for (int i = 0; i < p->nw && !err; i++) {
		int fd = inherit_take(p, pv);

		if (fd >= 0)
			taken++;
		else
			fd = listen_socket(pv);
		if (fd < 0)
			err = fd;
		else
			pv->l[i].fd = fd;
	}
	if (err) {
		for (int i = 0; i < p->nw; i++) {
			if (pv->l[i].fd >= 0)
				close(pv->l[i].fd);
			pv->l[i].fd = -1;
		}
		lb_err("proxy: vip %s: cannot listen on %s%s: %s", pv->name,
		       lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
		       pv->proto == IPPROTO_UDP ? " udp" : "", strerror(-err));
		return err;
	}
	pv->bound = true;
	lb_info("proxy: vip %s: listening on %s%s (%d workers, %d listener(s) handed over)",
		pv->name, lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
		pv->proto == IPPROTO_UDP ? " udp" : "", p->nw, taken);
	return 0;
}

static struct pvip *pvip_find(const struct psnap *s, const struct lb_proxy_vip *v)
{
	for (int i = 0; s && i < s->n; i++) {
		struct pvip *pv = s->v[i].pv;

		if (!strcmp(pv->name, v->name) && pv->proto == v->proto &&
		    lb_endpoint_eq(&pv->listen, &v->listen))
			return pv;
	}
	return NULL;
}

static struct pvip *pvip_new(struct lb_proxy *p, const struct lb_proxy_vip *v)
{
	struct pvip *pv = calloc(1, sizeof(*pv));

	if (!pv || !(pv->l = calloc(p->nw, sizeof(*pv->l)))) {
		free(pv);
		return NULL;
	}
	atomic_init(&pv->ref, 1);
	snprintf(pv->name, sizeof(pv->name), "%s", v->name);
	pv->listen = v->listen;
	pv->proto = v->proto;
	pv->nl = p->nw;
	for (int i = 0; i < p->nw; i++) {
		pv->l[i].tag.kind = T_LISTEN;
		pv->l[i].pv = pv;
		pv->l[i].fd = -1;
	}
	return pv;
}

static int svip_fill(struct svip *sv, const struct lb_proxy_vip *v)
{
	int *idx;

	sv->method = v->method;
	sv->seed = v->hash_seed;
	sv->max_conns = v->max_conns;
	sv->pp2 = v->proxy_protocol && v->proto == IPPROTO_TCP;
	sv->nbe = v->nbe;
	sv->be = calloc(v->nbe ? v->nbe : 1, sizeof(*sv->be));
	sv->tab = calloc(v->table_n ? v->table_n : 1, sizeof(*sv->tab));
	idx = malloc(LB_MAX_BACKENDS * sizeof(*idx));
	if (!sv->be || !sv->tab || !idx) {
		free(idx);
		return -ENOMEM;
	}
	memset(idx, 0xff, LB_MAX_BACKENDS * sizeof(*idx));
	for (int i = 0; i < v->nbe; i++) {
		if (v->be[i].id >= LB_MAX_BACKENDS) {
			free(idx);
			return -EINVAL;
		}
		sv->be[i].salen = lb_endpoint_sockaddr(&v->be[i].ep, &sv->be[i].sa);
		sv->be[i].id = v->be[i].id;
		sv->be[i].weight = v->be[i].weight;
		idx[v->be[i].id] = i;
	}
	/* slots hold backend ids; workers want indexes into be[] */
	for (__u32 s = 0; s < v->table_n; s++) {
		int k = v->table[s] < LB_MAX_BACKENDS ? idx[v->table[s]] : -1;

		if (k < 0) {
			free(idx);
			return -EINVAL;
		}
		sv->tab[s] = (__u32)k;
		sv->be[k].in_table = true;
	}
	free(idx);
	sv->n = v->table_n;
	return 0;
}

int lb_proxy_update(struct lb_proxy *p, const struct lb_proxy_vip *v, int n)
{
	struct psnap *ns, *old;
	int err = 0, first_bind = 0;

	ns = calloc(1, sizeof(*ns));
	if (!ns || !(ns->v = calloc(n ? n : 1, sizeof(*ns->v)))) {
		free(ns);
		return -ENOMEM;
	}
	atomic_init(&ns->ref, 1);
	pthread_mutex_lock(&p->lock);
	old = p->cur;
	if (old)
		snap_ref(old);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n && !err; i++) {
		struct svip *sv = &ns->v[i];
		struct pvip *pv = pvip_find(old, &v[i]);

		if (pv)
			atomic_fetch_add(&pv->ref, 1);
		else if (!(pv = pvip_new(p, &v[i])))
			err = -ENOMEM;
		sv->pv = pv;
		ns->n = i + 1;
		if (!err)
			err = svip_fill(sv, &v[i]);
		if (!err && !pv->bound && !atomic_load(&p->handed_over)) {
			int e = pvip_bind(p, pv);

			if (e && !first_bind)
				first_bind = e;
		}
	}
	if (err) {
		snap_unref(old);
		snap_unref(ns);
		lb_err("proxy: cannot apply the VIP set: %s", strerror(-err));
		return err;
	}
	pthread_mutex_lock(&p->lock);
	p->cur = ns;
	atomic_fetch_add(&p->gen, 1);
	pthread_mutex_unlock(&p->lock);
	snap_unref(old); /* our reference */
	snap_unref(old); /* the proxy's */
	inherit_drop(p);
	for (int i = 0; i < p->nw; i++) {
		__u64 one = 1;

		if (write(p->w[i].evfd, &one, sizeof(one)) < 0)
			lb_warn("proxy: cannot wake worker %d: %s", i, strerror(errno));
	}
	return first_bind;
}

/* ---- backend choice ---------------------------------------------------- */

static void sa_addr(const struct sockaddr_storage *ss, union lb_addr *a, __u16 *port, __u8 *fam)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		memcpy(a->b, &s6->sin6_addr, 16);
		*port = s6->sin6_port;
		*fam = LB_AF_INET6;
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		a->v4 = s4->sin_addr.s_addr;
		*port = s4->sin_port;
		*fam = LB_AF_INET;
	}
}

void lb_proxy_flow_key(const struct sockaddr_storage *client, const struct lb_endpoint *vip,
		       __u8 proto, struct lb_flow_key *k)
{
	__u8 fam;

	memset(k, 0, sizeof(*k));
	sa_addr(client, &k->src, &k->sport, &fam);
	k->dst = vip->addr;
	k->dport = vip->port;
	k->proto = proto;
	k->family = vip->family;
}

__u32 lb_proxy_hash_slot(enum lb_method method, const struct lb_flow_key *k, __u32 seed,
			 __u32 n)
{
	if (method == LB_METHOD_IP_HASH)
		return lb_hash_addr(&k->src, seed) % n;
	return lb_hash_flow(k, seed) % n;
}

/* The slot a new flow starts from, exactly as bpf/lib/select.h computes it
 * (round_robin: this worker's cursor; least_conn: see pick_least). */
static __u32 first_slot(struct plisten *l, const struct svip *sv,
			const struct sockaddr_storage *client)
{
	struct lb_flow_key k;

	if (sv->method == LB_METHOD_ROUND_ROBIN || sv->method == LB_METHOD_LEAST_CONN) {
		__u32 s = l->rr < sv->n ? l->rr : 0;

		l->rr = s + 1;
		return s;
	}
	lb_proxy_flow_key(client, &l->pv->listen, l->pv->proto, &k);
	return lb_proxy_hash_slot(sv->method, &k, sv->seed, sv->n);
}

/* Fewest live connections per unit of weight, over the backends in the
 * table, ties broken from the slot (the cursor) on. */
static __u32 pick_least(struct lb_proxy *p, const struct svip *sv, __u32 slot)
{
	__u32 best = slot;
	__s64 bc = -1;
	__u32 bw = 1;

	for (__u32 i = 0; i < (__u32)sv->nbe; i++) {
		__u32 k = (sv->tab[slot] + i) % (__u32)sv->nbe;
		const struct sbe *b = &sv->be[k];
		__s64 c = atomic_load_explicit(&p->bs[b->id].active, memory_order_relaxed);

		if (!b->in_table || !b->weight)
			continue;
		if (c < 0)
			c = 0;
		if (bc < 0 || (__u64)c * bw < (__u64)bc * b->weight) {
			best = k;
			bc = c;
			bw = b->weight;
		}
	}
	return best;
}

static bool tried(const struct pconn *c, int be)
{
	for (int i = 0; i < c->tries; i++)
		if (c->tried[i] == be)
			return true;
	return false;
}

/* The next backend, in table order, not tried yet by this connection. */
static int next_backend(struct lb_proxy *p, struct pconn *c)
{
	const struct svip *sv = c->sv;

	if (!sv->n)
		return -1;
	if (!c->tries && sv->method == LB_METHOD_LEAST_CONN)
		return (int)pick_least(p, sv, c->slot);
	for (__u32 i = c->tries ? 1 : 0; i < sv->n; i++) {
		int k = (int)sv->tab[(c->slot + i) % sv->n];

		if (!tried(c, k)) {
			c->slot = (c->slot + i) % sv->n;
			return k;
		}
	}
	return -1;
}

/* ---- TCP ---------------------------------------------------------------- */

static void conn_kill(struct pworker *w, struct pconn *c);

static void pipe_put(struct pworker *w, struct pdir *d)
{
	if (d->pipe[0] < 0)
		return;
	if (!d->pending && w->npipes < PX_PIPE_POOL) {
		w->pipes[w->npipes][0] = d->pipe[0];
		w->pipes[w->npipes][1] = d->pipe[1];
		w->npipes++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

static int pipe_get(struct pworker *w, struct pdir *d)
{
	if (d->pipe[0] >= 0)
		return 0;
	if (w->npipes) {
		w->npipes--;
		d->pipe[0] = w->pipes[w->npipes][0];
		d->pipe[1] = w->pipes[w->npipes][1];
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	fcntl(d->pipe[1], F_SETPIPE_SZ, PX_PIPE_SIZE);
	return 0;
}

static void count_bytes(struct pworker *w, struct pconn *c, int dir, size_t n)
{
	struct pbstat *b = &w->p->bs[c->sv->be[c->be].id];

	cnt_add(dir ? &c->sv->pv->bytes_out : &c->sv->pv->bytes_in, n);
	cnt_add(dir ? &b->bytes_out : &b->bytes_in, n);
	c->last = w->now;
}

/* Move what src has to dst until one side would block. 0, or -errno when
 * the connection is broken. */
static int pump(struct pworker *w, struct pconn *c, int dir)
{
	struct pdir *d = &c->d[dir];
	int src = dir ? c->bfd : c->cfd, dst = dir ? c->cfd : c->bfd;
	/* Small exchanges are cheaper through the worker's buffer (no pipe);
	 * splice takes over once a direction carries bulk data, as HAProxy's
	 * splice-auto does. */
	bool use_splice = !w->p->o.no_splice && d->bulk && !d->buf;
	ssize_t n;

	for (;;) {
		if (d->pending) {
			if (d->buf)
				n = send(dst, d->buf + d->off, d->pending, MSG_NOSIGNAL | MSG_DONTWAIT);
			else
				n = splice(d->pipe[0], NULL, dst, NULL, d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0)
				return errno == EAGAIN ? 0 : -errno;
			d->pending -= (size_t)n;
			d->off += (size_t)n;
			count_bytes(w, c, dir, (size_t)n);
			if (!d->pending) {
				free(d->buf);
				d->buf = NULL;
				d->off = 0;
			}
			continue;
		}
		if (d->eof) {
			if (!d->shut) {
				shutdown(dst, SHUT_WR);
				d->shut = true;
			}
			pipe_put(w, d);
			return 0;
		}
		if (use_splice && pipe_get(w, d))
			use_splice = false;
		if (use_splice) {
			n = splice(src, NULL, d->pipe[1], NULL, PX_PIPE_SIZE,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno != EAGAIN)
					return -errno;
				pipe_put(w, d); /* an idle connection holds no pipe */
				return 0;
			}
			if (!n)
				d->eof = true;
			d->pending = (size_t)n;
			continue;
		}
		n = recv(src, w->buf, PX_BUF_SIZE, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (!n) {
			d->eof = true;
			continue;
		}
		if (n == PX_BUF_SIZE)
			d->bulk = true;
		{
			ssize_t m = send(dst, w->buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (m < 0 && errno != EAGAIN)
				return -errno;
			if (m < 0)
				m = 0;
			count_bytes(w, c, dir, (size_t)m);
			if (m < n) {
				/* keep the rest; stop reading until it is written */
				d->buf = malloc((size_t)(n - m));
				if (!d->buf)
					return -ENOMEM;
				memcpy(d->buf, w->buf + m, (size_t)(n - m));
				d->pending = (size_t)(n - m);
				d->off = 0;
				return 0;
			}
		}
	}
}

static void conn_pump(struct pworker *w, struct pconn *c)
{
	int err = pump(w, c, 0);

	if (!err)
		err = pump(w, c, 1);
	if (err || (c->d[0].shut && c->d[1].shut))
		conn_kill(w, c);
}

static void be_release(struct pworker *w, struct pconn *c)
{
	if (c->be >= 0)
		atomic_fetch_sub(&w->p->bs[c->sv->be[c->be].id].active, 1);
	c->be = -1;
	if (c->bfd >= 0)
		close(c->bfd);
	c->bfd = -1;
}

static void connect_next(struct pworker *w, struct pconn *c);

static void connect_failed(struct pworker *w, struct pconn *c)
{
	struct pbstat *b = &w->p->bs[c->sv->be[c->be].id];

	cnt_add(&b->fails, 1);
	cnt_add(&c->sv->pv->connect_fail, 1);
	be_release(w, c);
	connect_next(w, c);
}

int lb_proxy_pp2_header(const struct sockaddr_storage *client, const struct sockaddr_storage *vip,
			__u8 *out, size_t len)
{
	static const __u8 sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	int fam = client->ss_family == vip->ss_family ? client->ss_family : AF_UNSPEC;
	size_t alen = fam == AF_INET ? 4 : fam == AF_INET6 ? 16 : 0;
	size_t body = alen ? 2 * alen + 4 : 0;
	__u8 *q = out + 16;

	if (len < 16 + body)
		return -ENOSPC;
	memcpy(out, sig, sizeof(sig));
	out[12] = 0x21;                 /* version 2, command PROXY */
	out[13] = fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00; /* TCP over ... */
	out[14] = (__u8)(body >> 8);    /* length of what follows, big endian */
	out[15] = (__u8)body;
	if (fam == AF_INET) {
		const struct sockaddr_in *a = (const void *)client, *b = (const void *)vip;

		memcpy(q, &a->sin_addr, 4);
		memcpy(q + 4, &b->sin_addr, 4);
		memcpy(q + 8, &a->sin_port, 2);
		memcpy(q + 10, &b->sin_port, 2);
	} else if (fam == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)client, *b = (const void *)vip;

		memcpy(q, &a->sin6_addr, 16);
		memcpy(q + 16, &b->sin6_addr, 16);
		memcpy(q + 32, &a->sin6_port, 2);
		memcpy(q + 34, &b->sin6_port, 2);
	}
	return (int)(16 + body);
}

/* The PROXY v2 header, before any client byte. The addresses come from the
 * client socket itself (no copy held per connection for the VIPs without
 * it). A fresh connection's send buffer takes it whole; should it not, the
 * rest waits in the direction's buffer like any short write. */
static int pp2_send(struct pconn *c)
{
	struct sockaddr_storage cl, vip;
	socklen_t cll = sizeof(cl), vipl = sizeof(vip);
	struct pdir *d = &c->d[0];
	__u8 h[LB_PP2_MAX];
	ssize_t m;
	int n;

	if (getpeername(c->cfd, (struct sockaddr *)&cl, &cll) ||
	    getsockname(c->cfd, (struct sockaddr *)&vip, &vipl))
		return -errno;
	n = lb_proxy_pp2_header(&cl, &vip, h, sizeof(h));
	if (n < 0)
		return n;
	m = send(c->bfd, h, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (m == n)
		return 0;
	if (m < 0 && errno != EAGAIN)
		return -errno;
	if (m < 0)
		m = 0;
	d->buf = malloc((size_t)(n - m));
	if (!d->buf)
		return -ENOMEM;
	memcpy(d->buf, h + m, (size_t)(n - m));
	d->pending = (size_t)(n - m);
	d->off = 0;
	return 0;
}

static void connected(struct pworker *w, struct pconn *c)
{
	int one = 1;

	c->connecting = false;
	c->last = w->now;
	cnt_add(&w->p->bs[c->sv->be[c->be].id].connected, 1);
	setsockopt(c->bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->sv->pp2) {
		int err = pp2_send(c);

		if (err) {
			lb_debug("proxy: vip %s: PROXY header: %s", c->sv->pv->name, strerror(-err));
			conn_kill(w, c);
			return;
		}
	}
	conn_pump(w, c);
}

static void connect_next(struct pworker *w, struct pconn *c)
{
	struct lb_proxy *p = w->p;

	while (c->tries < p->o.connect_tries) {
		int k = next_backend(p, c), fd;
		const struct sbe *b;

		if (k < 0)
			break;
		if (c->tries)
			cnt_add(&c->sv->pv->retries, 1);
		c->tried[c->tries++] = k;
		b = &c->sv->be[k];
		c->be = k;
		atomic_fetch_add(&p->bs[b->id].active, 1);
		cnt_add(&p->bs[b->id].conns, 1);
		fd = socket(b->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			lb_warn("proxy: vip %s: socket: %s", c->sv->pv->name, strerror(errno));
			be_release(w, c);
			break;
		}
		c->bfd = fd;
		if (connect(fd, (const struct sockaddr *)&b->sa, b->salen) && errno != EINPROGRESS) {
			cnt_add(&p->bs[b->id].fails, 1);
			cnt_add(&c->sv->pv->connect_fail, 1);
			be_release(w, c);
			continue;
		}
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
			.data.ptr = &c->btag,
		};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			be_release(w, c);
			break;
		}
		c->connecting = true;
		c->deadline = w->now + p->o.connect_timeout_ms;
		return;
	}
	cnt_add(&c->sv->pv->no_backend, 1);
	conn_kill(w, c);
}

static void conn_free(struct pconn *c)
{
	free(c->d[0].buf);
	free(c->d[1].buf);
	free(c);
}

static void conn_kill(struct pworker *w, struct pconn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	/* counted out before the client can see the close */
	atomic_fetch_sub(&c->sv->pv->active, 1);
	be_release(w, c);
	close(c->cfd);
	for (int i = 0; i < 2; i++) {
		if (c->d[i].pipe[0] >= 0) {
			close(c->d[i].pipe[0]);
			close(c->d[i].pipe[1]);
		}
		c->d[i].pipe[0] = c->d[i].pipe[1] = -1;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = w->dead;
	w->dead = c;
}

static bool limit_take(struct pvip *pv, const struct svip *sv)
{
	__s64 a = atomic_fetch_add(&pv->active, 1);

	if (sv->max_conns && a >= (__s64)sv->max_conns) {
		atomic_fetch_sub(&pv->active, 1);
		cnt_add(&pv->refused_limit, 1);
		return false;
	}
	cnt_add(&pv->accepted, 1);
	return true;
}

static void listen_pause(struct pworker *w, struct plisten *l)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &l->tag };

	epoll_ctl(w->epfd, EPOLL_CTL_MOD, l->fd, &ev);
	l->paused = true;
}

static void tcp_accept(struct pworker *w, struct plisten *l)
{
	for (int i = 0; i < PX_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct svip *sv = l->sv;
		struct pconn *c;
		int one = 1;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				lb_warn("proxy: vip %s: accept: %s", l->pv->name, strerror(errno));
				listen_pause(w, l);
			}
			return;
		}
		if (!sv || !limit_take(l->pv, sv)) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			atomic_fetch_sub(&l->pv->active, 1);
			close(fd);
			continue;
		}
		c->ctag.kind = T_CLIENT;
		c->btag.kind = T_BACKEND;
		c->cfd = fd;
		c->bfd = -1;
		c->be = -1;
		c->d[0].pipe[0] = c->d[0].pipe[1] = c->d[1].pipe[0] = c->d[1].pipe[1] = -1;
		c->snap = w->snap;
		snap_ref(c->snap);
		c->sv = sv;
		c->last = w->now;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
			.data.ptr = &c->ctag,
		};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			conn_kill(w, c);
			continue;
		}
		if (!sv->n) {
			cnt_add(&sv->pv->no_backend, 1);
			conn_kill(w, c);
			continue;
		}
		c->slot = first_slot(l, sv, &ss);
		connect_next(w, c);
	}
}

static void backend_event(struct pworker *w, struct pconn *c, uint32_t events)
{
	if (c->connecting) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		/* writable without an error is connected: no SO_ERROR call */
		if (events & (EPOLLERR | EPOLLHUP))
			connect_failed(w, c);
		else
			connected(w, c);
		return;
	}
	conn_pump(w, c);
}

/* ---- UDP ---------------------------------------------------------------- */

__u32 lb_proxy_client_hash(const struct sockaddr_storage *ss, uintptr_t scope)
{
	struct lb_flow_key k;
	__u8 fam;

	memset(&k, 0, sizeof(k));
	sa_addr(ss, &k.src, &k.sport, &fam);
	k.family = fam;
	k.dst.v6[0] = (__u32)scope;
	k.dst.v6[1] = (__u32)((__u64)scope >> 32);
	return lb_hash_flow(&k, 0);
}

bool lb_proxy_client_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

	return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static void udp_kill(struct pworker *w, struct pudp *u)
{
	struct pudp **pp = &w->ubucket[u->hash % PX_UDP_BUCKETS];

	if (u->dead)
		return;
	u->dead = true;
	while (*pp && *pp != u)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = u->hnext;
	close(u->fd);
	atomic_fetch_sub(&w->p->bs[u->sv->be[u->be].id].active, 1);
	atomic_fetch_sub(&u->sv->pv->active, 1);
	if (u->prev)
		u->prev->next = u->next;
	else
		w->udp = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = w->udp_dead;
	w->udp_dead = u;
}

static struct pudp *udp_session(struct pworker *w, struct plisten *l,
				const struct sockaddr_storage *ss, socklen_t sl)
{
	__u32 h = lb_proxy_client_hash(ss, (uintptr_t)l->pv);
	struct pudp *u;
	struct svip *sv = l->sv;
	struct sbe *b;
	int k;

	for (u = w->ubucket[h % PX_UDP_BUCKETS]; u; u = u->hnext)
		if (u->l == l && lb_proxy_client_eq(&u->client, ss))
			return u;
	if (!sv || !sv->n) {
		if (sv)
			cnt_add(&sv->pv->no_backend, 1);
		return NULL;
	}
	if (!limit_take(l->pv, sv))
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		atomic_fetch_sub(&l->pv->active, 1);
		return NULL;
	}
	{
		__u32 slot = first_slot(l, sv, ss);

		k = sv->method == LB_METHOD_LEAST_CONN ? (int)pick_least(w->p, sv, slot)
						       : (int)sv->tab[slot];
	}
	b = &sv->be[k];
	u->tag.kind = T_UDP_BE;
	u->l = l;
	u->sv = sv;
	u->be = k;
	u->client = *ss;
	u->clen = sl;
	u->hash = h;
	u->last = w->now;
	u->fd = socket(b->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &u->tag };
	if (u->fd < 0 || connect(u->fd, (const struct sockaddr *)&b->sa, b->salen) ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, u->fd, &ev)) {
		lb_warn("proxy: vip %s: udp session: %s", l->pv->name, strerror(errno));
		if (u->fd >= 0)
			close(u->fd);
		free(u);
		atomic_fetch_sub(&l->pv->active, 1);
		cnt_add(&sv->pv->connect_fail, 1);
		return NULL;
	}
	u->snap = w->snap;
	snap_ref(u->snap);
	atomic_fetch_add(&w->p->bs[b->id].active, 1);
	cnt_add(&w->p->bs[b->id].conns, 1);
	u->hnext = w->ubucket[h % PX_UDP_BUCKETS];
	w->ubucket[h % PX_UDP_BUCKETS] = u;
	u->next = w->udp;
	if (w->udp)
		w->udp->prev = u;
	w->udp = u;
	return u;
}

static void udp_from_client(struct pworker *w, struct plisten *l)
{
	for (int i = 0; i < PX_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(l->fd, w->buf, PX_DGRAM_MAX, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
		struct pudp *u;

		if (n < 0)
			return;
		u = udp_session(w, l, &ss, sl);
		if (!u)
			continue;
		u->last = w->now;
		cnt_add(&l->pv->dgrams_in, 1);
		cnt_add(&l->pv->bytes_in, (__u64)n);
		cnt_add(&w->p->bs[u->sv->be[u->be].id].bytes_in, (__u64)n);
		if (send(u->fd, w->buf, (size_t)n, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
			cnt_add(&w->p->bs[u->sv->be[u->be].id].fails, 1);
	}
}

static void udp_from_backend(struct pworker *w, struct pudp *u)
{
	for (int i = 0; i < PX_ACCEPT_BURST; i++) {
		ssize_t n = recv(u->fd, w->buf, PX_DGRAM_MAX, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ECONNREFUSED)
				cnt_add(&w->p->bs[u->sv->be[u->be].id].fails, 1);
			return;
		}
		u->last = w->now;
		if (u->l->fd < 0)
			return;
		cnt_add(&u->sv->pv->dgrams_out, 1);
		cnt_add(&u->sv->pv->bytes_out, (__u64)n);
		cnt_add(&w->p->bs[u->sv->be[u->be].id].bytes_out, (__u64)n);
		/* from the VIP's own socket: the client sees the VIP answer */
		sendto(u->l->fd, w->buf, (size_t)n, MSG_DONTWAIT,
		       (const struct sockaddr *)&u->client, u->clen);
	}
}

/* ---- worker ------------------------------------------------------------- */

static void listen_arm(struct pworker *w, struct plisten *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->tag };

	if (l->fd < 0 || l->armed)
		return;
	if (!epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
		l->armed = true;
}

/* Out of the epoll set first: a handed-over socket stays open in the other
 * lbd, and close() alone would leave it registered here. */
static void listen_close(struct pworker *w, struct plisten *l)
{
	if (l->fd >= 0) {
		if (l->armed)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
	}
	l->fd = -1;
	l->armed = false;
}

/* A listener that accepts no more: its UDP sessions go too (replies leave
 * through the listener's socket; the successor or nobody serves them). */
static void listen_retire(struct pworker *w, struct plisten *l)
{
	for (struct pudp *u = w->udp, *nx; u; u = nx) {
		nx = u->next;
		if (u->l == l)
			udp_kill(w, u);
	}
	listen_close(w, l);
}

static bool snap_has(const struct psnap *s, const struct pvip *pv)
{
	for (int i = 0; s && i < s->n; i++)
		if (s->v[i].pv == pv)
			return true;
	return false;
}

/* Switch to the proxy's current snapshot: arm new listeners, close the ones
 * of VIPs that are gone (their connections go on with the old snapshot). */
static void worker_resync(struct pworker *w)
{
	struct lb_proxy *p = w->p;
	struct psnap *ns, *os = w->snap;
	unsigned int gen = atomic_load(&p->gen);

	if (gen == w->gen)
		return;
	pthread_mutex_lock(&p->lock);
	ns = p->cur;
	if (ns)
		snap_ref(ns);
	w->gen = atomic_load(&p->gen);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; ns && i < ns->n; i++) {
		struct plisten *l = &ns->v[i].pv->l[w->idx];

		l->sv = &ns->v[i];
		if (atomic_load(&p->handed_over))
			listen_retire(w, l);
		else
			listen_arm(w, l);
	}
	for (int i = 0; os && i < os->n; i++) {
		struct pvip *pv = os->v[i].pv;
		struct plisten *l = &pv->l[w->idx];

		if (snap_has(ns, pv))
			continue;
		listen_retire(w, l);
		l->sv = NULL;
	}
	w->snap = ns;
	snap_unref(os);
}

static void worker_reap(struct pworker *w)
{
	while (w->dead) {
		struct pconn *c = w->dead;

		w->dead = c->next;
		snap_unref(c->snap);
		conn_free(c);
	}
	while (w->udp_dead) {
		struct pudp *u = w->udp_dead;

		w->udp_dead = u->next;
		snap_unref(u->snap);
		free(u);
	}
}

static void worker_sweep(struct pworker *w)
{
	const struct lb_proxy_opts *o = &w->p->o;

	for (struct pconn *c = w->conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->connecting) {
			if (w->now >= c->deadline)
				connect_failed(w, c);
		} else if (w->now - c->last >= o->idle_timeout_ms) {
			cnt_add(&c->sv->pv->idle_closed, 1);
			conn_kill(w, c);
		}
	}
	for (struct pudp *u = w->udp, *nx; u; u = nx) {
		nx = u->next;
		if (w->now - u->last >= o->udp_idle_timeout_ms) {
			cnt_add(&u->sv->pv->idle_closed, 1);
			udp_kill(w, u);
		}
	}
	for (int i = 0; w->snap && i < w->snap->n; i++) {
		struct plisten *l = &w->snap->v[i].pv->l[w->idx];

		if (l->paused && l->fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->tag };

			if (!epoll_ctl(w->epfd, EPOLL_CTL_MOD, l->fd, &ev))
				l->paused = false;
		}
	}
	w->next_sweep = w->now + PX_SWEEP_MS;
}

static void dispatch(struct pworker *w, struct ptag *t, uint32_t events)
{
	switch (t->kind) {
	case T_EVENT: {
		__u64 v;

		if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			lb_warn("proxy: worker %d: eventfd: %s", w->idx, strerror(errno));
		worker_resync(w);
		break;
	}
	case T_LISTEN: {
		struct plisten *l = (struct plisten *)t;

		if (l->fd < 0)
			break;
		if (l->pv->proto == IPPROTO_UDP)
			udp_from_client(w, l);
		else
			tcp_accept(w, l);
		break;
	}
	case T_CLIENT: {
		struct pconn *c = (struct pconn *)((char *)t - offsetof(struct pconn, ctag));

		if (!c->dead && !c->connecting)
			conn_pump(w, c);
		break;
	}
	case T_BACKEND: {
		struct pconn *c = (struct pconn *)((char *)t - offsetof(struct pconn, btag));

		if (!c->dead)
			backend_event(w, c, events);
		break;
	}
	case T_UDP_BE: {
		struct pudp *u = (struct pudp *)t;

		if (!u->dead)
			udp_from_backend(w, u);
		break;
	}
	}
}

static void *worker_main(void *arg)
{
	struct pworker *w = arg;
	struct epoll_event ev[PX_EVENTS];

	while (!atomic_load(&w->p->stopping)) {
		int timeout = w->conns || w->udp ? PX_SWEEP_MS : -1, n;

		n = epoll_wait(w->epfd, ev, PX_EVENTS, timeout);
		w->now = lb_now_ms();
		for (int i = 0; i < n; i++)
			dispatch(w, ev[i].data.ptr, ev[i].events);
		worker_reap(w);
		if (w->now >= w->next_sweep) {
			worker_sweep(w);
			worker_reap(w);
		}
	}
	return NULL;
}

static void worker_cleanup(struct pworker *w)
{
	while (w->conns)
		conn_kill(w, w->conns);
	while (w->udp)
		udp_kill(w, w->udp);
	worker_reap(w);
	snap_unref(w->snap);
	w->snap = NULL;
	for (int i = 0; i < w->npipes; i++) {
		close(w->pipes[i][0]);
		close(w->pipes[i][1]);
	}
	w->npipes = 0;
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	free(w->ubucket);
	free(w->buf);
}

static int worker_init(struct lb_proxy *p, struct pworker *w, int idx)
{
	struct epoll_event ev = { .events = EPOLLIN };

	w->p = p;
	w->idx = idx;
	w->tag.kind = T_EVENT;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->buf = malloc(PX_DGRAM_MAX);
	w->ubucket = calloc(PX_UDP_BUCKETS, sizeof(*w->ubucket));
	if (w->epfd < 0 || w->evfd < 0)
		return -errno;
	if (!w->buf || !w->ubucket)
		return -ENOMEM;
	ev.data.ptr = &w->tag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev))
		return -errno;
	return 0;
}

/* Many connections want many fds: two sockets each (and a pipe per
 * direction while bulk data flows). The soft limit goes up to the hard one;
 * the hard one needs CAP_SYS_RESOURCE to rise, so it is what bounds the
 * connections one lbd process can hold: said once at start. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY)
		lb_info("proxy: open-file limit %llu: at most about %llu TCP connections at once "
			"(two sockets each)", (unsigned long long)rl.rlim_cur,
			(unsigned long long)rl.rlim_cur / 2);
}

int lb_proxy_start(const struct lb_proxy_opts *o, struct lb_proxy **out)
{
	struct lb_proxy *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int err = 0;

	if (!p)
		return -ENOMEM;
	p->o = *o;
	if (!p->o.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		p->o.workers = n > 0 ? (int)n : 1;
	}
	if (!p->o.connect_timeout_ms)
		p->o.connect_timeout_ms = 2000;
	if (!p->o.idle_timeout_ms)
		p->o.idle_timeout_ms = 600000;
	if (!p->o.udp_idle_timeout_ms)
		p->o.udp_idle_timeout_ms = 30000;
	if (p->o.connect_tries <= 0)
		p->o.connect_tries = 3;
	if (p->o.connect_tries > PX_MAX_TRIES)
		p->o.connect_tries = PX_MAX_TRIES;
	pthread_mutex_init(&p->lock, NULL);
	p->nw = p->o.workers;
	if (o->ninherit > 0) {
		p->inh = malloc(sizeof(int) * (size_t)o->ninherit);
		if (!p->inh) {
			for (int i = 0; i < o->ninherit; i++)
				close(o->inherit[i]);
			free(p);
			return -ENOMEM;
		}
		memcpy(p->inh, o->inherit, sizeof(int) * (size_t)o->ninherit);
		p->ninh = o->ninherit;
	}
	p->o.inherit = NULL;
	p->o.ninherit = 0;
	p->bs = calloc(LB_MAX_BACKENDS, sizeof(*p->bs));
	p->w = calloc(p->nw, sizeof(*p->w));
	if (!p->bs || !p->w) {
		inherit_drop(p);
		free(p->bs);
		free(p->w);
		free(p);
		return -ENOMEM;
	}
	for (int i = 0; i < p->nw; i++)
		p->w[i].epfd = p->w[i].evfd = -1;
	for (int i = 0; i < p->nw && !err; i++)
		err = worker_init(p, &p->w[i], i);
	raise_nofile();
	/* Workers take no signals: lbd's main thread reads them from its
	 * signalfd, and a SIGPIPE from splice() stays harmlessly pending. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < p->nw && !err; i++) {
		err = -pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
		p->w[i].started = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		lb_err("proxy: cannot start its workers: %s", strerror(-err));
		lb_proxy_stop(p);
		return err;
	}
	lb_info("proxy: %d worker(s), %s forwarding", p->nw, p->o.no_splice ? "read/write" : "splice");
	*out = p;
	return 0;
}

void lb_proxy_stop(struct lb_proxy *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, true);
	for (int i = 0; i < p->nw; i++) {
		__u64 one = 1;

		if (p->w[i].started) {
			if (write(p->w[i].evfd, &one, sizeof(one)) < 0)
				lb_warn("proxy: cannot wake worker %d: %s", i, strerror(errno));
			pthread_join(p->w[i].th, NULL);
		}
	}
	for (int i = 0; i < p->nw; i++)
		worker_cleanup(&p->w[i]);
	snap_unref(p->cur);
	inherit_drop(p);
	pthread_mutex_destroy(&p->lock);
	free(p->bs);
	free(p->w);
	free(p);
}

int lb_proxy_listeners(struct lb_proxy *p, int *fds, int max, struct lb_buf *desc)
{
	int n = 0, err = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; p->cur && i < p->cur->n && !err; i++) {
		struct pvip *pv = p->cur->v[i].pv;
		char ep[LB_ADDRSTRLEN];

		for (int j = 0; j < pv->nl && !err; j++) {
			/* Only update() (this thread) closes the listeners of a
			 * current VIP: none goes away under this dup. */
			if (pv->l[j].fd < 0)
				continue;
			if (n == max) {
				err = -E2BIG;
			} else if ((fds[n] = fcntl(pv->l[j].fd, F_DUPFD_CLOEXEC, 0)) < 0) {
				err = -errno;
			} else {
				n++;
				lb_buf_printf(desc, "listener %s %s%s\n", pv->name,
					      lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
					      pv->proto == IPPROTO_UDP ? " udp" : "");
			}
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (err) {
		while (n)
			close(fds[--n]);
		return err;
	}
	return n;
}

void lb_proxy_stop_accepting(struct lb_proxy *p)
{
	atomic_store(&p->handed_over, true);
	atomic_fetch_add(&p->gen, 1);
	for (int i = 0; i < p->nw; i++) {
		__u64 one = 1;

		if (write(p->w[i].evfd, &one, sizeof(one)) < 0)
			lb_warn("proxy: cannot wake worker %d: %s", i, strerror(errno));
	}
}

__u64 lb_proxy_active(struct lb_proxy *p)
{
	__u64 n = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; p->cur && i < p->cur->n; i++) {
		__s64 a = atomic_load(&p->cur->v[i].pv->active);

		n += a > 0 ? (__u64)a : 0;
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

int lb_proxy_vip_stats(struct lb_proxy *p, const char *name, struct lb_proxy_vip_stats *out)
{
	int err = -ENOENT;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	for (int i = 0; p->cur && i < p->cur->n; i++) {
		struct pvip *pv = p->cur->v[i].pv;
		__s64 a = atomic_load(&pv->active);

		if (strcmp(pv->name, name))
			continue;
		out->listening = pv->bound;
		out->accepted = cnt_get(&pv->accepted);
		out->active = a > 0 ? (__u64)a : 0;
		out->refused_limit = cnt_get(&pv->refused_limit);
		out->no_backend = cnt_get(&pv->no_backend);
		out->connect_fail = cnt_get(&pv->connect_fail);
		out->retries = cnt_get(&pv->retries);
		out->idle_closed = cnt_get(&pv->idle_closed);
		out->bytes_in = cnt_get(&pv->bytes_in);
		out->bytes_out = cnt_get(&pv->bytes_out);
		out->dgrams_in = cnt_get(&pv->dgrams_in);
		out->dgrams_out = cnt_get(&pv->dgrams_out);
		err = 0;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

int lb_proxy_backend_stats(struct lb_proxy *p, __u32 id, struct lb_proxy_be_stats *out)
{
	struct pbstat *b;

	if (id >= LB_MAX_BACKENDS)
		return -EINVAL;
	b = &p->bs[id];
	out->conns = cnt_get(&b->conns);
	out->connected = cnt_get(&b->connected);
	out->active = atomic_load(&b->active);
	out->connect_fail = cnt_get(&b->fails);
	out->bytes_in = cnt_get(&b->bytes_in);
	out->bytes_out = cnt_get(&b->bytes_out);
	return 0;
}

void lb_proxy_print_vip(struct lb_proxy *p, const char *name, bool json, bool first,
			struct lb_buf *o)
{
	struct lb_proxy_vip_stats st;

	lb_proxy_vip_stats(p, name, &st);
	if (json) {
		lb_buf_printf(o, "%s{\"name\":", first ? "" : ",");
		lb_buf_json_str(o, name);
		lb_buf_printf(o, ",\"listening\":%s,\"new_flows\":%llu,\"active\":%llu,"
			      "\"refused_limit\":%llu,\"no_backend\":%llu,\"connect_fail\":%llu,"
			      "\"retries\":%llu,\"idle_closed\":%llu,\"bytes\":%llu,"
			      "\"reply_bytes\":%llu,\"datagrams\":%llu,\"reply_datagrams\":%llu,"
			      "\"backends\":[", st.listening ? "true" : "false",
			      (unsigned long long)st.accepted, (unsigned long long)st.active,
			      (unsigned long long)st.refused_limit, (unsigned long long)st.no_backend,
			      (unsigned long long)st.connect_fail, (unsigned long long)st.retries,
			      (unsigned long long)st.idle_closed, (unsigned long long)st.bytes_in,
			      (unsigned long long)st.bytes_out, (unsigned long long)st.dgrams_in,
			      (unsigned long long)st.dgrams_out);
		return;
	}
	lb_buf_printf(o, "vip %s (proxy%s): %llu connections, %llu active, %llu refused by max_conns, "
		      "%llu without a backend, %llu connect failures, %llu retries, %llu idle-closed; "
		      "%llu bytes in, %llu bytes back\n", name, st.listening ? "" : ", NOT listening",
		      (unsigned long long)st.accepted, (unsigned long long)st.active,
		      (unsigned long long)st.refused_limit, (unsigned long long)st.no_backend,
		      (unsigned long long)st.connect_fail, (unsigned long long)st.retries,
		      (unsigned long long)st.idle_closed, (unsigned long long)st.bytes_in,
		      (unsigned long long)st.bytes_out);
}

void lb_proxy_print_backend(struct lb_proxy *p, __u32 id, const char *ep, const char *state,
			    bool json, bool first, struct lb_buf *o)
{
	struct lb_proxy_be_stats bs = { 0 };

	lb_proxy_backend_stats(p, id, &bs);
	if (json)
		lb_buf_printf(o, "%s{\"address\":\"%s\",\"new_flows\":%llu,\"conns\":%lld,"
			      "\"connect_fail\":%llu,\"bytes\":%llu,\"reply_bytes\":%llu}",
			      first ? "" : ",", ep, (unsigned long long)bs.conns, (long long)bs.active,
			      (unsigned long long)bs.connect_fail, (unsigned long long)bs.bytes_in,
			      (unsigned long long)bs.bytes_out);
	else
		lb_buf_printf(o, "  %-24s %-6s %8llu flows %6lld conns %6llu connect failures "
			      "%12llu bytes %12llu bytes back\n", ep, state,
			      (unsigned long long)bs.conns, (long long)bs.active,
			      (unsigned long long)bs.connect_fail, (unsigned long long)bs.bytes_in,
			      (unsigned long long)bs.bytes_out);
}
