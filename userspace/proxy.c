// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "proxy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "file.h"
#include "lb_hash.h"
#include "log.h"
#include "loop.h"
#include "procstat.h"

#define PX_PIPE_SIZE     (64 * 1024)  /* what one splice moves at most */
#define PX_BUF_SIZE      (16 * 1024)  /* read/write mode: per worker, shared */
#define PX_PIPE_POOL     64           /* empty pipes kept per worker */
#define PX_ACCEPT_BURST  64
#define PX_EVENTS        256
#define PX_SWEEP_MS      100
#define PX_UDP_BUCKETS   4096
#define PX_MAX_TRIES     8
#define PX_DGRAM_MAX     65536
/* Counter slots of VIPs: a removed VIP's slot is reused only once no
 * worker can count on it any more, hence more slots than VIPs. */
#define PX_VSLOTS        (2 * LB_MAX_VIPS)
#define PX_MSG_FDS       64           /* listeners per message */
#define PX_SNAP_MAGIC    0x6c627073u
#define PX_RESTART_MAX_MS 10000
#define PX_MIN_UPTIME_MS 1000
#define PX_ORPHANS_MAX   (4 * LB_PROXY_MAX_WORKERS)
#define PX_ORPHAN_FILES  16

enum { T_CTL, T_LISTEN, T_CLIENT, T_BACKEND, T_UDP_BE, T_SIG };

/* lbd -> worker, on the worker's socket (SOCK_SEQPACKET). */
enum { M_LISTEN = 1, M_SNAP, M_STOP };

struct pmsg {
	__u32 type;
	__u32 n;                /* M_LISTEN: listeners (fds) in this message */
	__u64 gen;              /* M_SNAP */
	__u32 slot[PX_MSG_FDS]; /* M_LISTEN: the VIP slot of each fd */
};

struct ptag {
	int kind;
};

/* ---- shared counters ------------------------------------------------------
 * One MAP_SHARED mapping made before the first fork: every worker has a row
 * that only it writes (plain loads and stores, no locked instruction, no
 * cache line shared with another worker), lbd sums the rows. Two totals
 * are shared read-modify-write atomics because decisions need them exact
 * across workers: a VIP's live connections (max_conns) and a backend's
 * (least_conn). A worker's own share of them sits in its row, so when it
 * dies lbd takes exactly that share back out of the totals. */
typedef _Atomic __u64 cnt_t;
typedef _Atomic __s64 act_t;

static inline void own_add(cnt_t *c, __u64 v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline void own_act(act_t *c, __s64 v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline __u64 cnt_get(cnt_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

struct vcnt {
	cnt_t accepted, refused_limit, no_backend, connect_fail, retries, idle_closed;
	cnt_t bytes_in, bytes_out, dgrams_in, dgrams_out;
	act_t active;           /* this worker's share of vip_active */
};

struct bcnt {
	cnt_t conns, connected, fails, bytes_in, bytes_out;
	act_t active;           /* this worker's share of be_active */
};

struct prow {
	_Alignas(64) _Atomic __u64 gen; /* the last configuration it applied */
	struct vcnt v[PX_VSLOTS];
	struct bcnt b[LB_MAX_BACKENDS];
};

struct pshm {
	act_t vip_active[PX_VSLOTS];
	act_t be_active[LB_MAX_BACKENDS];
	struct prow w[];
};

/* ---- configuration snapshots ---------------------------------------------
 * lbd writes each VIP set once into a sealed memfd and passes it to every
 * worker, which maps it read-only and forwards straight from it: tables
 * and backend addresses are never copied, never change under a reader, and
 * a connection keeps the snapshot it started with. */
struct sbe {
	struct sockaddr_storage sa;
	socklen_t salen;
	__u32 id, weight;
	bool in_table;          /* may take new flows */
};

struct mvip {
	char name[LB_CONF_NAME_MAX];
	struct lb_endpoint listen;
	__u32 method, seed, max_conns;
	__u32 slot;             /* counters and listeners */
	__u32 n, nbe;           /* table slots, backends */
	__u64 be_off, tab_off;  /* struct sbe[nbe]; __u32[n]: indexes into be */
	__u8 proto;
	bool pp2;               /* PROXY v2 header first on each backend connection */
	__u64 connect_ms, idle_ms, fin_ms; /* resolved: never 0 */
};

struct mhdr {
	__u32 magic;
	__u32 n;
	__u64 gen;
	struct mvip v[];
};

/* ---- lbd's side ---------------------------------------------------------- */

/* Workers earlier lbds left serving (worker_orphan), found by the pid files
 * each lbd keeps in state_dir ("PID STARTTIME LBD_PID" a line, one file
 * per lbd: proxy-LBD_PID.pids). */
struct orphans {
	int n, nfiles;
	pid_t pid[PX_ORPHANS_MAX];
	unsigned long long t[PX_ORPHANS_MAX];
	char file[PX_ORPHAN_FILES][64];  /* names in state_dir */
};

/* What persists of a VIP across updates: its counter slot and listeners. */
struct pvip {
	char name[LB_CONF_NAME_MAX];
	struct lb_endpoint listen;
	__u8 proto;
	__u32 slot;
	bool bound;
	bool fresh;             /* bound by this update: its workers lack it */
	int *fd;                /* one SO_REUSEPORT listener per worker; lbd keeps
				 * them so a worker that restarts finds its queue */
};

/* One worker process. */
struct pproc {
	pid_t pid;              /* 0: not running */
	int pidfd, sock;
	__u64 t_start, t_due;   /* started; restart not before */
	int quick_exits;        /* in a row, each before PX_MIN_UPTIME_MS */
};

struct lb_proxy {
	struct lb_proxy_opts o;
	struct pshm *sh;
	size_t shlen;
	struct pvip **v;        /* the current VIP set */
	int nv;
	int snapfd;             /* its snapshot, -1 before the first update */
	__u64 gen;
	bool slot_busy[PX_VSLOTS];
	__u64 slot_freed[PX_VSLOTS]; /* the gen that removed its VIP, 0: in use */
	int *inh;               /* handed-over listeners not taken yet (-1: taken) */
	int ninh;
	bool handed_over;       /* a successor accepts: listen no more */
	struct pproc *w;
	int nw;
	/* retired once this proxy's listeners are bound (the first update) */
	struct orphans orph;
	bool pids_warned;
	char state_dir[LB_CONF_PATH_MAX];
};

/* ---- worker's side ------------------------------------------------------- */

struct svip {
	const struct mvip *m;
	const struct sbe *be;
	const __u32 *tab;
};

struct psnap {
	int ref;
	void *map;
	size_t len;
	struct svip *v;
	int n;
};

/* A worker's listener of a VIP (by slot). */
struct plisten {
	struct ptag tag;
	int fd;
	bool armed;             /* in the worker's epoll */
	bool paused;            /* out of fds: re-armed by the sweep */
	struct svip *sv;        /* the VIP in the worker's current snapshot */
	__u32 rr;               /* round_robin cursor of this worker */
};

struct pdir {
	int pipe[2];            /* -1: none held */
	char *buf;              /* bytes a short write left, or held for a backend
				 * not connected yet */
	size_t off;
	size_t pending;         /* in the pipe or buf */
	size_t hdr;             /* of them, PROXY header bytes (not client bytes) */
	bool eof, shut;
	bool bulk;              /* a read filled the buffer: splice from now on */
};

/* Sides: 0 the client socket, 1 the backend one. Directions: 0 client ->
 * backend, 1 backend -> client (direction i reads side i). */
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
	/* Readiness as edge-triggered epoll last said it: a side known to be
	 * drained or full costs no syscall until its next event. fin: the
	 * peer's FIN (EPOLLRDHUP without an error) was seen. */
	bool rd[2], wr[2], rdhup[2], fin[2];
	__u64 deadline;         /* connect deadline */
	__u64 last;             /* last activity */
	struct pdir d[2];
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
	struct ptag tag;        /* T_CTL: the socket from lbd */
	int idx, sock, epfd;
	const struct lb_proxy_opts *o;
	struct pshm *sh;
	struct prow *row;
	struct psnap *snap;
	struct plisten *ls;     /* PX_VSLOTS, by VIP slot */
	bool stopped;           /* M_STOP: a successor accepts */
	/* lbd is gone (its socket closed without M_STOP's retirement): this
	 * worker serves on with what it has until the next lbd (or lbd
	 * --cleanup) retires it with SIGTERM, as a crashed lbd's XDP program
	 * keeps forwarding until the next one adopts it */
	bool orphan;
	bool retiring;          /* SIGTERM: accept no more, exit once drained */
	struct ptag sigtag;     /* T_SIG: sigfd */
	int sigfd;
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

/* ---- counters (worker) --------------------------------------------------- */

static struct vcnt *vc_of(struct pworker *w, const struct svip *sv)
{
	return &w->row->v[sv->m->slot];
}

static struct bcnt *bc_of(struct pworker *w, const struct svip *sv, int be)
{
	return &w->row->b[sv->be[be].id];
}

/* A new connection (UDP: session) of a VIP: counted in, or refused when
 * the VIP's total over all workers is at max_conns. */
static bool limit_take(struct pworker *w, const struct svip *sv)
{
	struct vcnt *vc = vc_of(w, sv);
	__s64 a;

	own_act(&vc->active, 1);
	a = atomic_fetch_add(&w->sh->vip_active[sv->m->slot], 1);
	if (sv->m->max_conns && a >= (__s64)sv->m->max_conns) {
		atomic_fetch_sub(&w->sh->vip_active[sv->m->slot], 1);
		own_act(&vc->active, -1);
		own_add(&vc->refused_limit, 1);
		return false;
	}
	own_add(&vc->accepted, 1);
	return true;
}

static void limit_put(struct pworker *w, const struct svip *sv)
{
	own_act(&vc_of(w, sv)->active, -1);
	atomic_fetch_sub(&w->sh->vip_active[sv->m->slot], 1);
}

static void be_take(struct pworker *w, const struct svip *sv, int be)
{
	struct bcnt *b = bc_of(w, sv, be);

	own_act(&b->active, 1);
	own_add(&b->conns, 1);
	atomic_fetch_add(&w->sh->be_active[sv->be[be].id], 1);
}

static void be_put(struct pworker *w, const struct svip *sv, int be)
{
	own_act(&bc_of(w, sv, be)->active, -1);
	atomic_fetch_sub(&w->sh->be_active[sv->be[be].id], 1);
}

/* ---- snapshots (worker) -------------------------------------------------- */

static void snap_unref(struct psnap *s)
{
	if (!s || --s->ref)
		return;
	munmap(s->map, s->len);
	free(s->v);
	free(s);
}

/* Map a snapshot lbd wrote; everything in it is checked against its size
 * before a pointer into it is kept. */
static struct psnap *snap_map(int fd)
{
	struct psnap *s = calloc(1, sizeof(*s));
	const struct mhdr *h;
	struct stat st;

	if (!s || fstat(fd, &st) || (size_t)st.st_size < sizeof(*h))
		goto bad;
	s->len = (size_t)st.st_size;
	s->map = mmap(NULL, s->len, PROT_READ, MAP_SHARED, fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		goto bad;
	}
	h = s->map;
	if (h->magic != PX_SNAP_MAGIC || h->n > PX_VSLOTS ||
	    sizeof(*h) + (size_t)h->n * sizeof(h->v[0]) > s->len)
		goto bad;
	s->v = calloc(h->n ? h->n : 1, sizeof(*s->v));
	if (!s->v)
		goto bad;
	for (__u32 i = 0; i < h->n; i++) {
		const struct mvip *m = &h->v[i];

		if (m->slot >= PX_VSLOTS || m->be_off > s->len ||
		    (s->len - m->be_off) / sizeof(struct sbe) < m->nbe || m->tab_off > s->len ||
		    (s->len - m->tab_off) / sizeof(__u32) < m->n || (m->n && !m->nbe))
			goto bad;
		s->v[i].m = m;
		s->v[i].be = (const struct sbe *)((const char *)s->map + m->be_off);
		s->v[i].tab = (const __u32 *)((const char *)s->map + m->tab_off);
		for (__u32 k = 0; k < m->n; k++)
			if (s->v[i].tab[k] >= m->nbe)
				goto bad;
		for (__u32 k = 0; k < m->nbe; k++)
			if (s->v[i].be[k].id >= LB_MAX_BACKENDS)
				goto bad;
	}
	s->n = (int)h->n;
	s->ref = 1;
	return s;
bad:
	lb_err("proxy: an invalid configuration snapshot: ignored");
	if (s && s->map)
		munmap(s->map, s->len);
	if (s)
		free(s->v);
	free(s);
	return NULL;
}

/* ---- backend choice ------------------------------------------------------ */

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
	const struct mvip *m = sv->m;
	struct lb_flow_key k;

	if (m->method == LB_METHOD_ROUND_ROBIN || m->method == LB_METHOD_LEAST_CONN) {
		__u32 s = l->rr < m->n ? l->rr : 0;

		l->rr = s + 1;
		return s;
	}
	lb_proxy_flow_key(client, &m->listen, m->proto, &k);
	return lb_proxy_hash_slot((enum lb_method)m->method, &k, m->seed, m->n);
}

/* Fewest live connections per unit of weight, over the backends in the
 * table, ties broken from the slot (the cursor) on. The counts are the
 * totals of every worker: exact at the moment of the choice. */
static __u32 pick_least(struct pworker *w, const struct svip *sv, __u32 slot)
{
	__u32 nbe = sv->m->nbe, best = sv->tab[slot], bw = 1;
	__s64 bc = -1;

	for (__u32 i = 0; i < nbe; i++) {
		__u32 k = (sv->tab[slot] + i) % nbe;
		const struct sbe *b = &sv->be[k];
		__s64 c = atomic_load_explicit(&w->sh->be_active[b->id], memory_order_relaxed);

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
static int next_backend(struct pworker *w, struct pconn *c)
{
	const struct svip *sv = c->sv;
	__u32 n = sv->m->n;

	if (!n)
		return -1;
	if (!c->tries && sv->m->method == LB_METHOD_LEAST_CONN)
		return (int)pick_least(w, sv, c->slot);
	for (__u32 i = c->tries ? 1 : 0; i < n; i++) {
		int k = (int)sv->tab[(c->slot + i) % n];

		if (!tried(c, k)) {
			c->slot = (c->slot + i) % n;
			return k;
		}
	}
	return -1;
}

/* ---- TCP ------------------------------------------------------------------ */

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
	struct vcnt *vc = vc_of(w, c->sv);
	struct bcnt *b = bc_of(w, c->sv, c->be);

	own_add(dir ? &vc->bytes_out : &vc->bytes_in, n);
	own_add(dir ? &b->bytes_out : &b->bytes_in, n);
	c->last = w->now;
}

/* n bytes of what direction dir held went out. */
static void dir_sent(struct pworker *w, struct pconn *c, int dir, size_t n)
{
	struct pdir *d = &c->d[dir];
	size_t h = n < d->hdr ? n : d->hdr;

	d->hdr -= h;
	d->pending -= n;
	d->off += n;
	count_bytes(w, c, dir, n - h);
	if (!d->pending) {
		free(d->buf);
		d->buf = NULL;
		d->off = 0;
	}
}

/* Bytes for the backend before it is connected (the PROXY header, the
 * client's first bytes): after what the direction holds already. */
static int dir_hold(struct pdir *d, const void *p, size_t n)
{
	char *nb = realloc(d->buf, d->off + d->pending + n);

	if (!nb)
		return -ENOMEM;
	memcpy(nb + d->off + d->pending, p, n);
	d->buf = nb;
	d->pending += n;
	return 0;
}

/* Move what side `dir` has to the other side until one would block. 0, or
 * -errno when the connection is broken. */
static int pump(struct pworker *w, struct pconn *c, int dir)
{
	struct pdir *d = &c->d[dir];
	int src = dir ? c->bfd : c->cfd, dst = dir ? c->cfd : c->bfd, out = !dir;
	/* Small exchanges are cheaper through the worker's buffer (no pipe);
	 * splice takes over once a direction carries bulk data, as HAProxy's
	 * splice-auto does. */
	bool use_splice = !w->o->no_splice && d->bulk && !d->buf;
	ssize_t n;

	for (;;) {
		if (d->pending) {
			if (!c->wr[out])
				return 0;
			if (d->buf)
				n = send(dst, d->buf + d->off, d->pending, MSG_NOSIGNAL | MSG_DONTWAIT);
			else
				n = splice(d->pipe[0], NULL, dst, NULL, d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno != EAGAIN)
					return -errno;
				c->wr[out] = false;
				return 0;
			}
			dir_sent(w, c, dir, (size_t)n);
			continue;
		}
		if (d->eof) {
			/* The other way already ended: the connection closes
			 * now, and close() sends this FIN (dst's receive queue
			 * was read to its end). */
			if (!d->shut && !c->d[!dir].shut)
				shutdown(dst, SHUT_WR);
			d->shut = true;
			pipe_put(w, d);
			return 0;
		}
		if (!c->rd[dir]) {
			pipe_put(w, d); /* an idle connection holds no pipe */
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
				c->rd[dir] = false;
				continue;
			}
			if (!n)
				d->eof = true;
			d->pending = (size_t)n;
			continue;
		}
		n = recv(src, w->buf, PX_BUF_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN)
				return -errno;
			c->rd[dir] = false;
			continue;
		}
		if (!n) {
			d->eof = true;
			continue;
		}
		if (n == PX_BUF_SIZE)
			d->bulk = true;
		else if (c->fin[dir])
			/* A short read emptied the receive queue, and the FIN,
			 * which follows all the peer's data, came before it:
			 * this was the end, no recv() just to be told 0
			 * (HAProxy's read0 on a HUP). */
			d->eof = true;
		else if (!c->rdhup[dir])
			/* A short read emptied the receive queue: what arrives
			 * after it raises a new edge. (Not so for splice, which
			 * also stops short when the pipe's slots run out.) */
			c->rd[dir] = false;
		{
			ssize_t m = c->wr[out] ? send(dst, w->buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT)
					       : -1;

			if (m < 0 && c->wr[out] && errno != EAGAIN)
				return -errno;
			if (m < 0)
				m = 0;
			if (m < n)
				c->wr[out] = false;
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
		be_put(w, c->sv, c->be);
	c->be = -1;
	if (c->bfd >= 0)
		close(c->bfd);
	c->bfd = -1;
	c->rd[1] = c->wr[1] = c->rdhup[1] = c->fin[1] = false;
}

static void connect_next(struct pworker *w, struct pconn *c);

/* The backend connect failed: counted (passive health), let go. */
static void connect_lost(struct pworker *w, struct pconn *c)
{
	own_add(&bc_of(w, c->sv, c->be)->fails, 1);
	own_add(&vc_of(w, c->sv)->connect_fail, 1);
	be_release(w, c);
}

static void connect_failed(struct pworker *w, struct pconn *c)
{
	connect_lost(w, c);
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

/* The PROXY v2 header, before any client byte: held from the accept on
 * and sent with them (connect_next). The VIP's address comes from the
 * client socket itself (no copy held per connection for the VIPs without
 * it). */
static int pp2_hold(struct pconn *c, const struct sockaddr_storage *cl)
{
	struct sockaddr_storage vip;
	socklen_t vipl = sizeof(vip);
	__u8 h[LB_PP2_MAX];
	int n, err;

	if (getsockname(c->cfd, (struct sockaddr *)&vip, &vipl))
		return -errno;
	n = lb_proxy_pp2_header(cl, &vip, h, sizeof(h));
	if (n < 0)
		return n;
	err = dir_hold(&c->d[0], h, (size_t)n);
	if (!err)
		c->d[0].hdr = (size_t)n;
	return err;
}

/* HAProxy's speculative read: the client has mostly sent its first bytes
 * by the time it is accepted. Read now, they leave with the backend's
 * connect (connect_next), which saves an epoll round per connection; if
 * none are there yet, the client's next EPOLLIN edge says when. */
static int early_read(struct pworker *w, struct pconn *c)
{
	ssize_t n = recv(c->cfd, w->buf, PX_BUF_SIZE, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (!n) {
		c->d[0].eof = true;
		return 0;
	}
	/* a full buffer: there may be more, pump() reads on once connected */
	c->rd[0] = n == PX_BUF_SIZE;
	c->d[0].bulk = c->rd[0];
	return dir_hold(&c->d[0], w->buf, (size_t)n);
}

static void connected(struct pworker *w, struct pconn *c)
{
	c->connecting = false;
	c->last = w->now;
	own_add(&bc_of(w, c->sv, c->be)->connected, 1);
	conn_pump(w, c);
}

static void connect_next(struct pworker *w, struct pconn *c)
{
	const struct lb_proxy_opts *o = w->o;

	while (c->tries < o->connect_tries) {
		int k = next_backend(w, c), fd, one = 1;
		const struct sbe *b;

		if (k < 0)
			break;
		if (c->tries)
			own_add(&vc_of(w, c->sv)->retries, 1);
		c->tried[c->tries++] = k;
		b = &c->sv->be[k];
		c->be = k;
		be_take(w, c->sv, k);
		fd = socket(b->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			lb_warn("proxy: vip %s: socket: %s", c->sv->m->name, strerror(errno));
			be_release(w, c);
			break;
		}
		c->bfd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (const struct sockaddr *)&b->sa, b->salen) && errno != EINPROGRESS) {
			connect_lost(w, c);
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
		c->deadline = w->now + c->sv->m->connect_ms;
		if (c->d[0].pending) {
			/* Send before polling: over a fast path the handshake
			 * is often over by now. A send that goes through says
			 * the backend is connected (no wait for EPOLLOUT),
			 * EAGAIN that it is not yet, an error that it failed. */
			ssize_t n = send(fd, c->d[0].buf + c->d[0].off, c->d[0].pending,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n < 0 && errno != EAGAIN) {
				connect_lost(w, c);
				continue;
			}
			if (n >= 0) {
				dir_sent(w, c, 0, (size_t)n);
				c->wr[1] = !c->d[0].pending;
				connected(w, c);
			}
		}
		return;
	}
	own_add(&vc_of(w, c->sv)->no_backend, 1);
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
	limit_put(w, c->sv);
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

static void listen_pause(struct pworker *w, struct plisten *l)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &l->tag };

	epoll_ctl(w->epfd, EPOLL_CTL_MOD, l->fd, &ev);
	l->paused = true;
}

static void tcp_accept(struct pworker *w, struct plisten *l)
{
	struct svip *sv = l->sv;

	for (int i = 0; i < PX_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct pconn *c;
		int err;
		/* TCP_NODELAY comes from the listener */
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				lb_warn("proxy: vip %s: accept: %s", sv ? sv->m->name : "?",
					strerror(errno));
				listen_pause(w, l);
			}
			return;
		}
		if (!sv || !limit_take(w, sv)) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			limit_put(w, sv);
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
		c->snap->ref++;
		c->sv = sv;
		c->last = w->now;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
			.data.ptr = &c->ctag,
		};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			conn_kill(w, c);
			continue;
		}
		if (!sv->m->n) {
			own_add(&vc_of(w, sv)->no_backend, 1);
			conn_kill(w, c);
			continue;
		}
		err = sv->m->pp2 ? pp2_hold(c, &ss) : 0;
		if (!err)
			err = early_read(w, c);
		if (err) {
			lb_debug("proxy: vip %s: new connection: %s", sv->m->name, strerror(-err));
			conn_kill(w, c);
			continue;
		}
		c->slot = first_slot(l, sv, &ss);
		connect_next(w, c);
	}
}

/* What epoll says of one side of a connection. */
static void conn_ready(struct pconn *c, int side, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
		c->rd[side] = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		c->wr[side] = true;
	if (events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
		c->rdhup[side] = true;
	if ((events & (EPOLLRDHUP | EPOLLERR)) == EPOLLRDHUP)
		c->fin[side] = true;
}

static void backend_event(struct pworker *w, struct pconn *c, uint32_t events)
{
	conn_ready(c, 1, events);
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

/* ---- UDP ------------------------------------------------------------------ */

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
	be_put(w, u->sv, u->be);
	limit_put(w, u->sv);
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
	__u32 h = lb_proxy_client_hash(ss, (uintptr_t)l);
	struct svip *sv = l->sv;
	const struct sbe *b;
	struct pudp *u;
	__u32 slot;
	int k;

	for (u = w->ubucket[h % PX_UDP_BUCKETS]; u; u = u->hnext)
		if (u->l == l && lb_proxy_client_eq(&u->client, ss))
			return u;
	if (!sv || !sv->m->n) {
		if (sv)
			own_add(&vc_of(w, sv)->no_backend, 1);
		return NULL;
	}
	if (!limit_take(w, sv))
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		limit_put(w, sv);
		return NULL;
	}
	slot = first_slot(l, sv, ss);
	k = sv->m->method == LB_METHOD_LEAST_CONN ? (int)pick_least(w, sv, slot) : (int)sv->tab[slot];
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
		lb_warn("proxy: vip %s: udp session: %s", sv->m->name, strerror(errno));
		if (u->fd >= 0)
			close(u->fd);
		free(u);
		limit_put(w, sv);
		own_add(&vc_of(w, sv)->connect_fail, 1);
		return NULL;
	}
	u->snap = w->snap;
	u->snap->ref++;
	be_take(w, sv, k);
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
		own_add(&vc_of(w, u->sv)->dgrams_in, 1);
		own_add(&vc_of(w, u->sv)->bytes_in, (__u64)n);
		own_add(&bc_of(w, u->sv, u->be)->bytes_in, (__u64)n);
		if (send(u->fd, w->buf, (size_t)n, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
			own_add(&bc_of(w, u->sv, u->be)->fails, 1);
	}
}

static void udp_from_backend(struct pworker *w, struct pudp *u)
{
	for (int i = 0; i < PX_ACCEPT_BURST; i++) {
		ssize_t n = recv(u->fd, w->buf, PX_DGRAM_MAX, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ECONNREFUSED)
				own_add(&bc_of(w, u->sv, u->be)->fails, 1);
			return;
		}
		u->last = w->now;
		if (u->l->fd < 0)
			return;
		own_add(&vc_of(w, u->sv)->dgrams_out, 1);
		own_add(&vc_of(w, u->sv)->bytes_out, (__u64)n);
		own_add(&bc_of(w, u->sv, u->be)->bytes_out, (__u64)n);
		/* from the VIP's own socket: the client sees the VIP answer */
		sendto(u->l->fd, w->buf, (size_t)n, MSG_DONTWAIT,
		       (const struct sockaddr *)&u->client, u->clen);
	}
}

/* ---- worker ---------------------------------------------------------------- */

static void listen_arm(struct pworker *w, struct plisten *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->tag };

	if (l->fd < 0 || l->armed)
		return;
	if (!epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
		l->armed = true;
}

/* A listener that accepts no more here (its VIP is gone, or a successor
 * took the sockets over): its UDP sessions go too, as replies leave
 * through the listener's socket. Out of the epoll set first: lbd (or the
 * successor) still holds the socket, and close() alone would leave it
 * registered here. */
static void listen_retire(struct pworker *w, struct plisten *l)
{
	for (struct pudp *u = w->udp, *nx; u; u = nx) {
		nx = u->next;
		if (u->l == l)
			udp_kill(w, u);
	}
	if (l->fd >= 0) {
		if (l->armed)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
	}
	l->fd = -1;
	l->armed = l->paused = false;
}

static bool snap_has(const struct psnap *s, __u32 slot)
{
	for (int i = 0; s && i < s->n; i++)
		if (s->v[i].m->slot == slot)
			return true;
	return false;
}

/* Switch to a new snapshot: arm the listeners of its VIPs, retire those of
 * VIPs that are gone (their connections go on with the old snapshot). */
static void worker_switch(struct pworker *w, struct psnap *ns)
{
	struct psnap *os = w->snap;

	for (int i = 0; i < ns->n; i++) {
		struct plisten *l = &w->ls[ns->v[i].m->slot];

		l->sv = &ns->v[i];
		if (w->stopped)
			listen_retire(w, l);
		else
			listen_arm(w, l);
	}
	for (int i = 0; os && i < os->n; i++) {
		__u32 slot = os->v[i].m->slot;

		if (snap_has(ns, slot))
			continue;
		listen_retire(w, &w->ls[slot]);
		w->ls[slot].sv = NULL;
	}
	w->snap = ns;
	snap_unref(os);
}

/* Accept no more: the listeners go (with net.ipv4.tcp_migrate_req, the
 * connections in their queues move to the other listeners of the VIP's
 * SO_REUSEPORT group: the successor's); open connections go on. */
static void worker_stop_accepting(struct pworker *w)
{
	w->stopped = true;
	for (int i = 0; i < PX_VSLOTS; i++)
		listen_retire(w, &w->ls[i]);
}

/* lbd's end of the socket closed without stopping this worker first: lbd
 * crashed, or left on SIGTERM (lb_proxy_leave). Serve on. */
static void worker_orphan(struct pworker *w)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->sock, NULL);
	close(w->sock);
	w->sock = -1;
	w->orphan = true;
	if (!w->stopped)
		lb_warn("proxy: worker %d (pid %d): lbd is gone: serving on until the next lbd "
			"retires this worker", w->idx, (int)getpid());
}

/* SIGTERM: lbd's successor (or lbd --cleanup) retires this worker. */
static void worker_signal(struct pworker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo != SIGTERM || w->retiring)
			continue;
		w->retiring = true;
		worker_stop_accepting(w);
		lb_info("proxy: worker %d (pid %d): retired by pid %u: finishing its connections",
			w->idx, (int)getpid(), si.ssi_pid);
	}
}

/* Messages from lbd. Its end closed: lbd is gone (worker_orphan). */
static void worker_ctl(struct pworker *w)
{
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * PX_MSG_FDS)];
		struct pmsg m = { 0 };
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		int fds[PX_MSG_FDS], nfd = 0;
		ssize_t n = recvmsg(w->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			worker_orphan(w);
			return;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
				if (nfd < PX_MSG_FDS)
					fds[nfd++] = fd;
				else
					close(fd);
			}
		}
		if (m.type == M_LISTEN) {
			for (int k = 0; k < nfd; k++) {
				__u32 s = (__u32)k < m.n ? m.slot[k] : PX_VSLOTS;

				if (s >= PX_VSLOTS) {
					close(fds[k]);
					continue;
				}
				listen_retire(w, &w->ls[s]);
				w->ls[s].fd = fds[k];
			}
		} else if (m.type == M_SNAP && nfd == 1) {
			struct psnap *ns = snap_map(fds[0]);

			close(fds[0]);
			if (ns) {
				worker_switch(w, ns);
				atomic_store(&w->row->gen, m.gen);
			}
		} else {
			if (m.type == M_STOP)
				worker_stop_accepting(w);
			for (int k = 0; k < nfd; k++)
				close(fds[k]);
		}
	}
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
	for (struct pconn *c = w->conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->connecting) {
			if (w->now >= c->deadline)
				connect_failed(w, c);
		} else if (w->now - c->last >=
			   (c->d[0].shut || c->d[1].shut ? c->sv->m->fin_ms : c->sv->m->idle_ms)) {
			own_add(&vc_of(w, c->sv)->idle_closed, 1);
			conn_kill(w, c);
		}
	}
	for (struct pudp *u = w->udp, *nx; u; u = nx) {
		nx = u->next;
		if (w->now - u->last >= u->sv->m->idle_ms) {
			own_add(&vc_of(w, u->sv)->idle_closed, 1);
			udp_kill(w, u);
		}
	}
	for (int i = 0; w->snap && i < w->snap->n; i++) {
		struct plisten *l = &w->ls[w->snap->v[i].m->slot];

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
	case T_CTL:
		worker_ctl(w);
		break;
	case T_LISTEN: {
		struct plisten *l = (struct plisten *)t;

		if (l->fd < 0)
			break;
		if (l->sv && l->sv->m->proto == IPPROTO_UDP)
			udp_from_client(w, l);
		else
			tcp_accept(w, l);
		break;
	}
	case T_CLIENT: {
		struct pconn *c = (struct pconn *)((char *)t - offsetof(struct pconn, ctag));

		if (c->dead)
			break;
		conn_ready(c, 0, events);
		if (!c->connecting)
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
	case T_SIG:
		worker_signal(w);
		break;
	}
}

/* The worker process, from fork to its end: it owns nothing of lbd but the
 * shared counters (mapped before the fork) and its socket from lbd. */
static void __attribute__((noreturn))
worker_run(const struct lb_proxy *p, int idx, int sock, pid_t parent)
{
	struct pworker w = { .tag.kind = T_CTL, .sigtag.kind = T_SIG, .idx = idx, .o = &p->o,
			     .sh = p->sh };
	struct epoll_event ev[PX_EVENTS];
	sigset_t term;

	/* no PR_SET_PDEATHSIG: a worker outlives a crashed lbd (worker_orphan) */
	if (getppid() != parent)
		_exit(0);
	/* lbd's terminal signals are for lbd: it stops its workers itself */
	setpgid(0, 0);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_SETMASK, &term, NULL);
	closelog();
	/* stdio is lbd's until it detaches it (a daemon, after it is ready):
	 * a worker must not hold the terminal or a caller's pipe open */
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (lb_log_syslog())
				dup2(null, 2);
			if (null > 2)
				close(null);
		}
	}
	if (sock != 3) {
		dup2(sock, 3);
		sock = 3;
	}
	close_range(4, ~0u, 0);
	w.sock = sock;
	w.row = &p->sh->w[idx];
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	w.buf = malloc(PX_DGRAM_MAX);
	w.ubucket = calloc(PX_UDP_BUCKETS, sizeof(*w.ubucket));
	w.ls = calloc(PX_VSLOTS, sizeof(*w.ls));
	if (w.epfd < 0 || !w.buf || !w.ubucket || !w.ls) {
		lb_err("proxy: worker %d: cannot start: %s", idx, strerror(errno));
		_exit(1);
	}
	for (int i = 0; i < PX_VSLOTS; i++) {
		w.ls[i].tag.kind = T_LISTEN;
		w.ls[i].fd = -1;
	}
	w.sigfd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC);
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &w.tag };
	ev[1] = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &w.sigtag };
	if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, sock, &ev[0]) || w.sigfd < 0 ||
	    epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.sigfd, &ev[1])) {
		lb_err("proxy: worker %d: epoll: %s", idx, strerror(errno));
		_exit(1);
	}
	for (;;) {
		int timeout = w.conns || w.udp ? PX_SWEEP_MS : -1;
		int n = epoll_wait(w.epfd, ev, PX_EVENTS, timeout);

		if (n < 0 && errno != EINTR) {
			lb_err("proxy: worker %d: epoll_wait: %s", idx, strerror(errno));
			_exit(1);
		}
		w.now = lb_now_ms();
		for (int i = 0; i < n; i++)
			dispatch(&w, ev[i].data.ptr, ev[i].events);
		worker_reap(&w);
		if (w.now >= w.next_sweep) {
			worker_sweep(&w);
			worker_reap(&w);
		}
		/* retired, or lbd gone after it had stopped this worker
		 * (a handover's old lbd): done once drained */
		if ((w.retiring || (w.orphan && w.stopped)) && !w.conns && !w.udp)
			_exit(0);
	}
}

/* ---- lbd: listeners ------------------------------------------------------ */

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
	/* accepted sockets inherit it: no setsockopt per connection */
	if (type == SOCK_STREAM)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

static void pvip_close(struct lb_proxy *p, struct pvip *pv)
{
	for (int i = 0; i < p->nw; i++) {
		if (pv->fd[i] >= 0)
			close(pv->fd[i]);
		pv->fd[i] = -1;
	}
	pv->bound = false;
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
			pv->fd[i] = fd;
	}
	if (err) {
		pvip_close(p, pv);
		lb_err("proxy: vip %s: cannot listen on %s%s: %s", pv->name,
		       lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
		       pv->proto == IPPROTO_UDP ? " udp" : "", strerror(-err));
		return err;
	}
	pv->bound = pv->fresh = true;
	lb_info("proxy: vip %s: listening on %s%s (%d workers, %d listener(s) handed over)",
		pv->name, lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
		pv->proto == IPPROTO_UDP ? " udp" : "", p->nw, taken);
	return 0;
}

/* ---- lbd: counter slots -------------------------------------------------- */

static bool proc_running(const struct pproc *w)
{
	return w->pid > 0;
}

/* A slot is free, or its VIP is gone, every running worker has applied
 * the update that removed it and none of its connections is left: nothing
 * will count on it again. */
static int slot_alloc(struct lb_proxy *p)
{
	for (int s = 0; s < PX_VSLOTS; s++) {
		bool ok = !p->slot_busy[s];

		if (!ok && p->slot_freed[s] &&
		    !atomic_load(&p->sh->vip_active[s])) {
			ok = true;
			for (int i = 0; i < p->nw && ok; i++)
				ok = !proc_running(&p->w[i]) ||
				     atomic_load(&p->sh->w[i].gen) >= p->slot_freed[s];
		}
		if (!ok)
			continue;
		for (int i = 0; i < p->nw; i++)
			memset(&p->sh->w[i].v[s], 0, sizeof(p->sh->w[i].v[s]));
		p->slot_busy[s] = true;
		p->slot_freed[s] = 0;
		return s;
	}
	return -ENOSPC;
}

static struct pvip *pvip_find(struct lb_proxy *p, const struct lb_proxy_vip *v)
{
	for (int i = 0; i < p->nv; i++) {
		struct pvip *pv = p->v[i];

		if (!strcmp(pv->name, v->name) && pv->proto == v->proto &&
		    lb_endpoint_eq(&pv->listen, &v->listen))
			return pv;
	}
	return NULL;
}

static struct pvip *pvip_new(struct lb_proxy *p, const struct lb_proxy_vip *v)
{
	struct pvip *pv = calloc(1, sizeof(*pv));
	int s;

	if (!pv || !(pv->fd = calloc(p->nw, sizeof(*pv->fd)))) {
		free(pv);
		return NULL;
	}
	s = slot_alloc(p);
	if (s < 0) {
		lb_err("proxy: vip %s: no counter slot free (VIPs removed with connections "
		       "still open hold theirs)", v->name);
		free(pv->fd);
		free(pv);
		return NULL;
	}
	snprintf(pv->name, sizeof(pv->name), "%s", v->name);
	pv->listen = v->listen;
	pv->proto = v->proto;
	pv->slot = (__u32)s;
	for (int i = 0; i < p->nw; i++)
		pv->fd[i] = -1;
	return pv;
}

/* gen: the update that removed the VIP (0: it never served). */
static void pvip_free(struct lb_proxy *p, struct pvip *pv, __u64 gen)
{
	pvip_close(p, pv);
	if (gen)
		p->slot_freed[pv->slot] = gen;
	else
		p->slot_busy[pv->slot] = false;
	free(pv->fd);
	free(pv);
}

/* ---- lbd: snapshots ------------------------------------------------------ */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* The VIP set as a sealed memfd (see struct mhdr); -errno, -EINVAL for a
 * table slot that names no backend of its VIP. */
static int snap_write(const struct lb_proxy_opts *o, const struct lb_proxy_vip *v, struct pvip **pv,
		      int n, __u64 gen)
{
	size_t len = align8(sizeof(struct mhdr) + (size_t)n * sizeof(struct mvip)), off = len;
	int *idx = malloc(LB_MAX_BACKENDS * sizeof(*idx)), fd = -1, err = 0;
	struct mhdr *h = MAP_FAILED;

	if (!idx)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		len += align8((size_t)v[i].nbe * sizeof(struct sbe)) + align8((size_t)v[i].table_n * 4);
	fd = memfd_create("lbd-proxy-conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)len) ||
	    (h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	memset(idx, 0xff, LB_MAX_BACKENDS * sizeof(*idx));
	h->magic = PX_SNAP_MAGIC;
	h->n = (__u32)n;
	h->gen = gen;
	for (int i = 0; i < n && !err; i++) {
		struct mvip *m = &h->v[i];
		struct sbe *be = (struct sbe *)((char *)h + off);
		__u32 *tab;

		snprintf(m->name, sizeof(m->name), "%s", v[i].name);
		m->listen = v[i].listen;
		m->proto = v[i].proto;
		m->method = v[i].method;
		m->seed = v[i].hash_seed;
		m->max_conns = v[i].max_conns;
		m->pp2 = v[i].proxy_protocol && v[i].proto == IPPROTO_TCP;
		m->connect_ms = v[i].connect_timeout_ms ? v[i].connect_timeout_ms : o->connect_timeout_ms;
		m->idle_ms = v[i].idle_timeout_ms ? v[i].idle_timeout_ms
			     : v[i].proto == IPPROTO_UDP ? o->udp_idle_timeout_ms : o->idle_timeout_ms;
		m->fin_ms = v[i].fin_timeout_ms ? v[i].fin_timeout_ms : o->fin_timeout_ms;
		m->slot = pv[i]->slot;
		m->nbe = (__u32)v[i].nbe;
		m->n = v[i].table_n;
		m->be_off = off;
		off += align8((size_t)v[i].nbe * sizeof(struct sbe));
		m->tab_off = off;
		tab = (__u32 *)((char *)h + off);
		off += align8((size_t)v[i].table_n * 4);
		for (int j = 0; j < v[i].nbe && !err; j++) {
			if (v[i].be[j].id >= LB_MAX_BACKENDS) {
				err = -EINVAL;
				break;
			}
			be[j].salen = lb_endpoint_sockaddr(&v[i].be[j].ep, &be[j].sa);
			be[j].id = v[i].be[j].id;
			be[j].weight = v[i].be[j].weight;
			idx[v[i].be[j].id] = j;
		}
		/* slots hold backend ids; workers want indexes into be[] */
		for (__u32 s = 0; s < v[i].table_n && !err; s++) {
			int k = v[i].table[s] < LB_MAX_BACKENDS ? idx[v[i].table[s]] : -1;

			if (k < 0) {
				err = -EINVAL;
				break;
			}
			tab[s] = (__u32)k;
			be[k].in_table = true;
		}
		for (int j = 0; j < v[i].nbe; j++)
			if (v[i].be[j].id < LB_MAX_BACKENDS)
				idx[v[i].be[j].id] = -1;
	}
out:
	if (h != MAP_FAILED)
		munmap(h, len);
	free(idx);
	/* read-only from here on, for every worker that maps it */
	if (!err && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL))
		err = -errno;
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

/* ---- lbd: workers an earlier lbd left ------------------------------------ */

/* A pid file's name in state_dir: "proxy-LBDPID.pids". */
static bool pids_file(const char *name, int *lbd)
{
	char tail[8] = "";

	return sscanf(name, "proxy-%d%7s", lbd, tail) == 2 && !strcmp(tail, ".pids") && *lbd > 0;
}

/*
 * The workers earlier lbds left serving: from each pid file in dir (not
 * this lbd's), those that still run (same pid, same start time) without
 * the lbd that wrote it. A file whose workers still have that lbd for
 * parent is a running lbd's (one this lbd takes over from, or fails to):
 * left alone. The others are marked for orphans_forget.
 */
static void orphans_read(const char *dir, struct orphans *o)
{
	char path[LB_CONF_PATH_MAX + 300];
	struct dirent *e;
	DIR *d;

	memset(o, 0, sizeof(*o));
	if (!dir[0] || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		struct lb_procstat ps;
		unsigned long long t;
		int lbd, pid, parent, n0 = o->n;
		bool running = false;
		FILE *f;

		if (!pids_file(e->d_name, &lbd) || lbd == getpid() ||
		    strlen(e->d_name) >= sizeof(o->file[0]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		while (fscanf(f, "%d %llu %d", &pid, &t, &parent) == 3) {
			if (pid <= 1 || !t || lb_procstat(pid, &ps) || ps.start != t)
				continue; /* gone */
			if (ps.ppid == parent)
				running = true;
			else if (o->n < PX_ORPHANS_MAX) {
				o->pid[o->n] = pid;
				o->t[o->n++] = t;
			}
		}
		fclose(f);
		if (running) {
			o->n = n0; /* its lbd is alive after all */
		} else if (o->nfiles < PX_ORPHAN_FILES) {
			snprintf(o->file[o->nfiles++], sizeof(o->file[0]), "%s", e->d_name);
		}
	}
	closedir(d);
}

/* pid appended to a log line's space-separated list (list of size bytes,
 * *len used; what does not fit is left out). */
static void pid_list_add(char *list, size_t size, size_t *len, pid_t pid)
{
	*len += (size_t)snprintf(list + *len, size - *len, "%s%d", *len ? " " : "", (int)pid);
	if (*len >= size)
		*len = size - 1;
}

/* SIGTERM: each stops accepting and exits once its connections are done
 * (worker_signal). */
static int orphans_retire(const struct orphans *o)
{
	char list[PX_ORPHANS_MAX * 12] = "";
	size_t len = 0;
	int done = 0;

	for (int i = 0; i < o->n; i++) {
		/* A pidfd holds the process: checked again through it, the pid
		 * cannot go to another before the signal (without pidfds, as
		 * under valgrind, the window is the check's to the kill's). */
		int fd = (int)syscall(SYS_pidfd_open, o->pid[i], 0), rc;

		if (lb_proc_start(o->pid[i]) != o->t[i])
			rc = -1;
		else if (fd >= 0)
			rc = (int)syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0);
		else
			rc = kill(o->pid[i], SIGTERM);
		if (fd >= 0)
			close(fd);
		if (rc)
			continue;
		done++;
		pid_list_add(list, sizeof(list), &len, o->pid[i]);
	}
	if (done)
		lb_info("proxy: retired %d worker(s) an earlier lbd left serving (pid %s): they "
			"accept no more and exit once their connections are done", done, list);
	return done;
}

/* Retired (or gone): their pid files go. */
static void orphans_forget(const char *dir, struct orphans *o)
{
	char path[LB_CONF_PATH_MAX + 300];

	for (int i = 0; i < o->nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, o->file[i]);
		unlink(path);
	}
	o->n = o->nfiles = 0;
}

int lb_proxy_retire_orphans(const char *state_dir)
{
	const char *dir = state_dir ? state_dir : "";
	struct orphans *o = malloc(sizeof(*o));
	int n;

	if (!o)
		return -ENOMEM;
	orphans_read(dir, o);
	n = orphans_retire(o);
	orphans_forget(dir, o);
	free(o);
	return n;
}

/*
 * A listener that closes hands the connections queued on it to another
 * listener of its SO_REUSEPORT group (Linux 5.14) instead of resetting
 * them: retiring an earlier lbd's workers, whose listeners still take
 * their share of new connections, then refuses none. Per network
 * namespace; root only.
 */
static void migrate_req_on(void)
{
	int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDWR | O_CLOEXEC);
	char c = 0;

	if (fd >= 0 && pread(fd, &c, 1, 0) == 1 && c == '1') {
		close(fd);
		return;
	}
	if (fd < 0 || pwrite(fd, "1", 1, 0) != 1)
		lb_warn("proxy: cannot set net.ipv4.tcp_migrate_req (%s): connections queued on the "
			"retired workers' listeners are reset", strerror(errno));
	else
		lb_info("proxy: net.ipv4.tcp_migrate_req set to 1: the retired workers' queued "
			"connections move to this lbd's listeners");
	if (fd >= 0)
		close(fd);
}

/* This lbd's pid file (state_dir/proxy-PID.pids): its workers, for the
 * next lbd should this one leave them serving. */
static void pids_path(const struct lb_proxy *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/proxy-%d.pids", p->state_dir, (int)getpid());
}

static void pids_write(struct lb_proxy *p)
{
	char buf[LB_PROXY_MAX_WORKERS * 48], name[32];
	size_t len = 0;
	int err;

	if (!p->state_dir[0])
		return;
	/* a line is at most 43 bytes */
	for (int i = 0; i < p->nw; i++)
		if (p->w[i].pid > 0)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%d %llu %d\n",
						(int)p->w[i].pid, lb_proc_start(p->w[i].pid),
						(int)getpid());
	snprintf(name, sizeof(name), "proxy-%d.pids", (int)getpid());
	err = lb_mkdir_p(p->state_dir, 0700);
	if (!err)
		err = lb_write_atomic(p->state_dir, name, buf, len);
	if (err && !p->pids_warned)
		lb_warn("proxy: cannot write %s/%s (%s): should lbd crash, the next one cannot find "
			"and retire the workers it leaves serving", p->state_dir, name, strerror(-err));
	p->pids_warned = err != 0;
}

/* ---- lbd: worker processes ----------------------------------------------- */

static void proc_kill(struct pproc *w)
{
	if (proc_running(w))
		kill(w->pid, SIGKILL);
}

/* A message that does not go through (the worker is stuck or gone) ends
 * the worker: the restart gives it the whole state again. */
static int proc_send(struct pproc *w, int idx, const struct pmsg *m, const int *fds, int nfd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * PX_MSG_FDS)] = { 0 };
	struct iovec iov = { .iov_base = (void *)m,
			     .iov_len = offsetof(struct pmsg, slot) + m->n * sizeof(__u32) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (!proc_running(w) || w->sock < 0)
		return -ESRCH;
	if (nfd) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfd);
	}
	if (sendmsg(w->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		int err = -errno;

		lb_err("proxy: worker %d (pid %d) does not take its configuration (%s): restarting it",
		       idx, (int)w->pid, strerror(-err));
		proc_kill(w);
		close(w->sock);
		w->sock = -1;
		return err;
	}
	return 0;
}

/* Its listeners (all, or those bound by this update), then the snapshot. */
static void proc_sync(struct lb_proxy *p, int idx, bool all)
{
	struct pproc *w = &p->w[idx];
	struct pmsg m = { .type = M_LISTEN };
	int fds[PX_MSG_FDS];

	for (int i = 0; i < p->nv && !p->handed_over; i++) {
		struct pvip *pv = p->v[i];

		if (!pv->bound || (!all && !pv->fresh) || pv->fd[idx] < 0)
			continue;
		m.slot[m.n] = pv->slot;
		fds[m.n++] = pv->fd[idx];
		if (m.n == PX_MSG_FDS) {
			if (proc_send(w, idx, &m, fds, (int)m.n))
				return;
			m.n = 0;
		}
	}
	if (m.n && proc_send(w, idx, &m, fds, (int)m.n))
		return;
	if (p->snapfd >= 0) {
		m = (struct pmsg){ .type = M_SNAP, .gen = p->gen };
		proc_send(w, idx, &m, &p->snapfd, 1);
	}
	if (p->handed_over) {
		m = (struct pmsg){ .type = M_STOP };
		proc_send(w, idx, &m, NULL, 0);
	}
}

static int proc_spawn(struct lb_proxy *p, int idx)
{
	struct pproc *w = &p->w[idx];
	int sv[2], err, big = 1 << 20;
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		lb_err("proxy: worker %d: fork: %s", idx, strerror(-err));
		return err;
	}
	if (!pid) {
		close(sv[0]);
		worker_run(p, idx, sv[1], parent);
	}
	close(sv[1]);
	w->pid = pid;
	w->sock = sv[0];
	w->t_start = lb_now_ms();
	/* SIGCHLD waits in lbd's signalfd until its loop runs: the pid cannot
	 * be reaped (and reused) before this */
	w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* without pidfds (valgrind has none): waitpid on the pid, which is
	 * ours until reaped */
	if (w->pidfd < 0 && errno != ENOSYS) {
		err = -errno;
		lb_err("proxy: worker %d: pidfd_open: %s", idx, strerror(-err));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(w->sock);
		w->sock = -1;
		w->pid = 0;
		return err;
	}
	fcntl(w->sock, F_SETFL, O_NONBLOCK);
	proc_sync(p, idx, true);
	pids_write(p);
	return 0;
}

/* The dead worker's share of the shared totals goes: its connections died
 * with it. Its other counters stay (they only ever grow). */
static void proc_release(struct lb_proxy *p, int idx)
{
	struct prow *r = &p->sh->w[idx];

	for (int s = 0; s < PX_VSLOTS; s++) {
		__s64 a = atomic_exchange(&r->v[s].active, 0);

		if (a)
			atomic_fetch_sub(&p->sh->vip_active[s], a);
	}
	for (int b = 0; b < LB_MAX_BACKENDS; b++) {
		__s64 a = atomic_exchange(&r->b[b].active, 0);

		if (a)
			atomic_fetch_sub(&p->sh->be_active[b], a);
	}
}

static void exit_how(const siginfo_t *si, char *how, size_t len)
{
	if (si->si_code == CLD_EXITED)
		snprintf(how, len, "exited with status %d", si->si_status);
	else
		snprintf(how, len, "killed by signal %d (%s)", si->si_status, strsignal(si->si_status));
}

/* Wait for a worker that has ended; block: one lb_proxy_stop() killed. */
static void proc_reap(struct lb_proxy *p, int idx, bool block, char *how, size_t len)
{
	struct pproc *w = &p->w[idx];
	siginfo_t si = { 0 };

	snprintf(how, len, "ended");
	/* lbd's SIGCHLD handler may have reaped it first: the status is lost */
	if (!waitid(w->pidfd >= 0 ? P_PIDFD : P_PID, w->pidfd >= 0 ? (id_t)w->pidfd : (id_t)w->pid,
		    &si, WEXITED | (block ? 0 : WNOHANG)) && si.si_pid)
		exit_how(&si, how, len);
	if (w->pidfd >= 0)
		close(w->pidfd);
	if (w->sock >= 0)
		close(w->sock);
	w->pidfd = w->sock = -1;
	w->pid = 0;
	if (!block) /* lbd stopping the proxy counts no more */
		proc_release(p, idx);
}

/* Without a pidfd: ended (a zombie, or reaped by lbd's SIGCHLD handler). */
static bool proc_gone(pid_t pid)
{
	siginfo_t si = { 0 };

	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT))
		return errno == ECHILD;
	return si.si_pid == pid;
}

void lb_proxy_tick(struct lb_proxy *p)
{
	__u64 now = lb_now_ms();

	for (int i = 0; p && i < p->nw; i++) {
		struct pproc *w = &p->w[i];

		if (proc_running(w)) {
			struct pollfd pfd = { .fd = w->pidfd, .events = POLLIN };
			__u64 up = now - w->t_start, delay = 0;
			pid_t pid = w->pid;
			char how[96];

			if (w->pidfd >= 0 ? poll(&pfd, 1, 0) <= 0 : !proc_gone(w->pid))
				continue;
			proc_reap(p, i, false, how, sizeof(how));
			if (up < PX_MIN_UPTIME_MS) {
				w->quick_exits++;
				delay = 100ull << (w->quick_exits < 7 ? w->quick_exits : 7);
				if (delay > PX_RESTART_MAX_MS)
					delay = PX_RESTART_MAX_MS;
			} else {
				w->quick_exits = 0;
			}
			w->t_due = now + delay;
			lb_warn("proxy: worker %d (pid %d) %s after %llu ms: restarting it%s", i,
				(int)pid, how, (unsigned long long)up, delay ? " after a pause" : "");
		}
		if (!proc_running(w) && now >= w->t_due && proc_spawn(p, i) == 0)
			lb_info("proxy: worker %d restarted (pid %d)", i, (int)w->pid);
	}
}

int lb_proxy_workers(struct lb_proxy *p, pid_t *pids, int max)
{
	int n = 0;

	for (int i = 0; i < p->nw && n < max; i++)
		pids[n++] = p->w[i].pid;
	return p->nw;
}

/* ---- lbd: the API ----------------------------------------------------------- */

int lb_proxy_update(struct lb_proxy *p, const struct lb_proxy_vip *v, int n)
{
	struct pvip **nv = calloc(n ? n : 1, sizeof(*nv));
	int err = nv ? 0 : -ENOMEM, first_bind = 0, fd = -1;

	for (int i = 0; i < n && !err; i++) {
		nv[i] = pvip_find(p, &v[i]);
		if (!nv[i] && !(nv[i] = pvip_new(p, &v[i])))
			err = -ENOMEM;
	}
	if (!err) {
		fd = snap_write(&p->o, v, nv, n, p->gen + 1);
		if (fd < 0)
			err = fd;
	}
	if (err) {
		for (int i = 0; nv && i < n; i++)
			if (nv[i] && !pvip_find(p, &v[i]))
				pvip_free(p, nv[i], 0);
		free(nv);
		lb_err("proxy: cannot apply the VIP set: %s", strerror(-err));
		return err;
	}
	for (int i = 0; i < n; i++) {
		if (!nv[i]->bound && !p->handed_over) {
			int e = pvip_bind(p, nv[i]);

			if (e && !first_bind)
				first_bind = e;
		}
	}
	p->gen++;
	for (int i = 0; i < p->nv; i++) {
		bool kept = false;

		for (int j = 0; j < n && !kept; j++)
			kept = nv[j] == p->v[i];
		if (!kept)
			pvip_free(p, p->v[i], p->gen);
	}
	free(p->v);
	p->v = nv;
	p->nv = n;
	if (p->snapfd >= 0)
		close(p->snapfd);
	p->snapfd = fd;
	inherit_drop(p);
	for (int i = 0; i < p->nw; i++)
		proc_sync(p, i, false);
	for (int i = 0; i < n; i++)
		nv[i]->fresh = false;
	/* this proxy's listeners are in the VIPs' SO_REUSEPORT groups now:
	 * the earlier lbd's workers may go */
	/* Not while a VIP lacks its listener: the earlier lbd's workers may
	 * be all that serves it. Tried again at the next update. */
	if (p->orph.n && first_bind)
		lb_warn("proxy: the %d worker(s) an earlier lbd left serve on until every VIP is bound",
			p->orph.n);
	else if (p->orph.n || p->orph.nfiles) {
		if (p->orph.n && p->o.migrate_req)
			migrate_req_on();
		orphans_retire(&p->orph);
		orphans_forget(p->state_dir, &p->orph);
	}
	return first_bind;
}

/* Many connections want many fds: two sockets each (and a pipe per
 * direction while bulk data flows). The soft limit goes up to the hard one
 * (each worker process has that many); the hard one needs
 * CAP_SYS_RESOURCE to rise, so it and the worker count bound the
 * connections: said once at start. */
static void raise_nofile(int nw)
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
		lb_info("proxy: open-file limit %llu per worker: at most about %llu TCP connections "
			"at once (two sockets each)", (unsigned long long)rl.rlim_cur,
			(unsigned long long)rl.rlim_cur / 2 * (unsigned long long)nw);
}

static void proxy_free(struct lb_proxy *p)
{
	for (int i = 0; i < p->nv; i++)
		pvip_free(p, p->v[i], 0);
	free(p->v);
	if (p->snapfd >= 0)
		close(p->snapfd);
	inherit_drop(p);
	munmap(p->sh, p->shlen);
	free(p->w);
	free(p);
}

/* This lbd's workers killed, its pid file gone; an earlier lbd's workers
 * are left as they are. */
static void proxy_kill(struct lb_proxy *p)
{
	char path[LB_CONF_PATH_MAX + 32], how[96];

	for (int i = 0; i < p->nw; i++)
		proc_kill(&p->w[i]);
	for (int i = 0; i < p->nw; i++)
		if (proc_running(&p->w[i]))
			proc_reap(p, i, true, how, sizeof(how));
	if (p->state_dir[0]) {
		pids_path(p, path, sizeof(path));
		unlink(path);
	}
	proxy_free(p);
}

int lb_proxy_start(const struct lb_proxy_opts *o, struct lb_proxy **out)
{
	struct lb_proxy *p = calloc(1, sizeof(*p));
	int err = 0;

	if (!p) {
		for (int i = 0; i < o->ninherit; i++)
			close(o->inherit[i]);
		return -ENOMEM;
	}
	p->o = *o;
	snprintf(p->state_dir, sizeof(p->state_dir), "%s", o->state_dir ? o->state_dir : "");
	p->o.state_dir = p->state_dir;
	if (p->o.workers <= 0) {
		cpu_set_t set;

		p->o.workers = sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
	}
	if (p->o.workers > LB_PROXY_MAX_WORKERS)
		p->o.workers = LB_PROXY_MAX_WORKERS;
	if (!p->o.connect_timeout_ms)
		p->o.connect_timeout_ms = 2000;
	if (!p->o.idle_timeout_ms)
		p->o.idle_timeout_ms = 600000;
	if (!p->o.udp_idle_timeout_ms)
		p->o.udp_idle_timeout_ms = 30000;
	if (!p->o.fin_timeout_ms)
		p->o.fin_timeout_ms = 60000;
	if (p->o.connect_tries <= 0)
		p->o.connect_tries = 3;
	if (p->o.connect_tries > PX_MAX_TRIES)
		p->o.connect_tries = PX_MAX_TRIES;
	p->nw = p->o.workers;
	p->snapfd = -1;
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
	p->shlen = sizeof(struct pshm) + (size_t)p->nw * sizeof(struct prow);
	p->sh = mmap(NULL, p->shlen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	p->w = calloc(p->nw, sizeof(*p->w));
	if (p->sh == MAP_FAILED || !p->w) {
		err = p->sh == MAP_FAILED ? -errno : -ENOMEM;
		if (p->sh != MAP_FAILED)
			munmap(p->sh, p->shlen);
		inherit_drop(p);
		free(p->w);
		free(p);
		lb_err("proxy: cannot set up: %s", strerror(-err));
		return err;
	}
	for (int i = 0; i < p->nw; i++)
		p->w[i].pidfd = p->w[i].sock = -1;
	orphans_read(p->state_dir, &p->orph);
	if (p->orph.n)
		lb_info("proxy: %d worker(s) an earlier lbd left are serving: retired once this "
			"lbd's listeners are bound", p->orph.n);
	raise_nofile(p->nw);
	for (int i = 0; i < p->nw && !err; i++)
		err = proc_spawn(p, i);
	if (err) {
		lb_err("proxy: cannot start its workers: %s", strerror(-err));
		proxy_kill(p); /* an earlier lbd's serve on */
		return err;
	}
	lb_info("proxy: %d worker process(es), %s forwarding", p->nw,
		p->o.no_splice ? "read/write" : "splice");
	*out = p;
	return 0;
}

void lb_proxy_stop(struct lb_proxy *p)
{
	if (!p)
		return;
	orphans_retire(&p->orph);
	orphans_forget(p->state_dir, &p->orph);
	proxy_kill(p);
}

int lb_proxy_leave(struct lb_proxy *p)
{
	char list[LB_PROXY_MAX_WORKERS * 12] = "";
	size_t len = 0;
	int n = 0;

	if (!p)
		return 0;
	/* the successor serves; what is left of this one's goes with it, as
	 * lbd's handover drain (lbd.c) says */
	if (p->handed_over) {
		lb_proxy_stop(p);
		return 0;
	}
	for (int i = 0; i < p->nw; i++) {
		struct pproc *w = &p->w[i];

		if (!proc_running(w))
			continue;
		/* the worker's socket reads end of file: worker_orphan */
		if (w->sock >= 0)
			close(w->sock);
		if (w->pidfd >= 0)
			close(w->pidfd);
		w->sock = w->pidfd = -1;
		pid_list_add(list, sizeof(list), &len, w->pid);
		n++;
	}
	if (n)
		lb_info("proxy: %d worker(s) left serving (pid %s): the next lbd retires them, "
			"lbd --cleanup stops them", n, list);
	proxy_free(p);
	return n;
}

int lb_proxy_listeners(struct lb_proxy *p, int *fds, int max, struct lb_buf *desc)
{
	int n = 0, err = 0;

	for (int i = 0; i < p->nv && !err; i++) {
		struct pvip *pv = p->v[i];
		char ep[LB_ADDRSTRLEN];

		for (int j = 0; j < p->nw && !err; j++) {
			if (pv->fd[j] < 0)
				continue;
			if (n == max) {
				err = -E2BIG;
			} else if ((fds[n] = fcntl(pv->fd[j], F_DUPFD_CLOEXEC, 0)) < 0) {
				err = -errno;
			} else {
				n++;
				lb_buf_printf(desc, "listener %s %s%s\n", pv->name,
					      lb_endpoint_str(&pv->listen, ep, sizeof(ep)),
					      pv->proto == IPPROTO_UDP ? " udp" : "");
			}
		}
	}
	if (err) {
		while (n)
			close(fds[--n]);
		return err;
	}
	return n;
}

void lb_proxy_stop_accepting(struct lb_proxy *p)
{
	struct pmsg m = { .type = M_STOP };

	p->handed_over = true;
	for (int i = 0; i < p->nw; i++)
		proc_send(&p->w[i], i, &m, NULL, 0);
	for (int i = 0; i < p->nv; i++)
		pvip_close(p, p->v[i]);
}

__u64 lb_proxy_active(struct lb_proxy *p)
{
	__u64 n = 0;

	for (int i = 0; i < p->nv; i++) {
		__s64 a = atomic_load(&p->sh->vip_active[p->v[i]->slot]);

		n += a > 0 ? (__u64)a : 0;
	}
	return n;
}

int lb_proxy_vip_stats(struct lb_proxy *p, const char *name, struct lb_proxy_vip_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < p->nv; i++) {
		const struct pvip *pv = p->v[i];
		__s64 a = atomic_load(&p->sh->vip_active[pv->slot]);

		if (strcmp(pv->name, name))
			continue;
		out->listening = pv->bound;
		out->active = a > 0 ? (__u64)a : 0;
		for (int j = 0; j < p->nw; j++) {
			struct vcnt *c = &p->sh->w[j].v[pv->slot];

			out->accepted += cnt_get(&c->accepted);
			out->refused_limit += cnt_get(&c->refused_limit);
			out->no_backend += cnt_get(&c->no_backend);
			out->connect_fail += cnt_get(&c->connect_fail);
			out->retries += cnt_get(&c->retries);
			out->idle_closed += cnt_get(&c->idle_closed);
			out->bytes_in += cnt_get(&c->bytes_in);
			out->bytes_out += cnt_get(&c->bytes_out);
			out->dgrams_in += cnt_get(&c->dgrams_in);
			out->dgrams_out += cnt_get(&c->dgrams_out);
		}
		return 0;
	}
	return -ENOENT;
}

int lb_proxy_backend_stats(struct lb_proxy *p, __u32 id, struct lb_proxy_be_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (id >= LB_MAX_BACKENDS)
		return -EINVAL;
	for (int j = 0; j < p->nw; j++) {
		struct bcnt *b = &p->sh->w[j].b[id];

		out->conns += cnt_get(&b->conns);
		out->connected += cnt_get(&b->connected);
		out->connect_fail += cnt_get(&b->fails);
		out->bytes_in += cnt_get(&b->bytes_in);
		out->bytes_out += cnt_get(&b->bytes_out);
	}
	out->active = atomic_load(&p->sh->be_active[id]);
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
