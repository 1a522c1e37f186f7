/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The userspace fallback proxy: serves the VIPs where no BPF path attaches.
 *
 * Per-core worker processes (lbd forks them and restarts one that dies),
 * each with its own epoll loop, its own open-file budget and its own
 * SO_REUSEPORT listener per VIP, forward TCP (through the worker's buffer,
 * then splice through a pipe per direction once a direction carries bulk
 * data; idle connections hold no pipe; the client's first bytes are read
 * at accept and sent right after the backend's connect, as HAProxy does,
 * which saves an epoll round per connection) and UDP (per-client
 * sessions, in the worker the kernel's SO_REUSEPORT hash gives the
 * client's flow). A new flow picks its backend from the same selection
 * table and with the same hash (bpf/lb_hash.h over the struct lb_flow_key
 * the BPF path builds) as the data path, so a flow lands on the same
 * backend either way:
 *   maglev       lb_hash_flow({client, VIP, ports, proto}) % table size
 *   ip_hash      lb_hash_addr(client) % table size
 *   round_robin  the weighted sequence, one cursor per worker (the BPF path
 *                keeps one per CPU: the same approximation)
 *   least_conn   exact here: fewest live connections per unit of weight,
 *                counted over all workers
 * A failed or timed-out connect retries the next backend in table order.
 * It is a full proxy: backends see the proxy's address, as with full NAT;
 * a VIP with `proxy_protocol v2` tells them the client's address and port
 * in a PROXY protocol v2 header, the first bytes on each backend connection.
 *
 * lbd and its workers share one mapping of counters (each worker writes its
 * own row; a VIP's and a backend's live connections are shared atomic
 * totals, so max_conns and least_conn hold across workers). Configuration
 * goes to the workers whole, as an immutable snapshot (a sealed memfd they
 * map) sent over a socket with the listeners: the workers switch to it,
 * connections keep the one they started with. lbd keeps a copy of every
 * listener: a VIP that stays keeps its listeners across reloads and worker
 * restarts (no refused connection); a VIP that goes stops accepting and its
 * connections finish. A dead worker's connections are gone with it; lbd
 * takes its share out of the totals and starts it again.
 */
#ifndef LBD_PROXY_H
#define LBD_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "addr.h"
#include "lb_abi.h"

struct lb_proxy;

#define LB_PROXY_MAX_WORKERS 256

struct lb_proxy_opts {
	int workers;                 /* processes; 0: one per CPU lbd may run on */
	__u64 connect_timeout_ms;    /* 0: 2000 */
	__u64 idle_timeout_ms;       /* TCP, 0: 600000 */
	__u64 udp_idle_timeout_ms;   /* 0: 30000 */
	/* TCP with one way already closed (HAProxy's client-fin/server-fin):
	 * a peer that vanished after its FIN must not hold the connection for
	 * the whole idle timeout. 0: 60000 (the kernel's tcp_fin_timeout) */
	__u64 fin_timeout_ms;
	int connect_tries;           /* backends tried per connection, 0: 3 */
	bool no_splice;              /* read/write buffers only, never splice */
	/* Listening sockets a previous lbd handed over (lbd --takeover): a VIP
	 * takes those bound to its address and protocol before it binds new
	 * ones. The proxy owns them; the first update closes those no VIP
	 * wants. */
	const int *inherit;
	int ninherit;
	/* where the workers' pids are kept for the next lbd (lb_proxy_leave);
	 * NULL: nowhere */
	const char *state_dir;
	/* set net.ipv4.tcp_migrate_req before retiring them, so that no
	 * connection queued on their listeners is reset (lbd's choice: a
	 * sysctl of the network namespace) */
	bool migrate_req;
};

struct lb_proxy_backend {
	struct lb_endpoint ep;
	__u32 id;                    /* what the table slots hold; < LB_MAX_BACKENDS */
	__u32 weight;
};

struct lb_proxy_vip {
	const char *name;
	struct lb_endpoint listen;   /* port 0 (wildcard) cannot be proxied */
	__u8 proto;                  /* IPPROTO_TCP or IPPROTO_UDP */
	enum lb_method method;
	__u32 hash_seed;             /* the seed the table was built with */
	__u32 max_conns;             /* 0: unlimited (UDP: sessions) */
	bool proxy_protocol;         /* TCP: a PROXY v2 header to each backend */
	/* this VIP's timeouts, 0: the proxy's (struct lb_proxy_opts); idle is
	 * the UDP session's for a UDP VIP */
	__u64 connect_timeout_ms, idle_timeout_ms, fin_timeout_ms;
	const __u32 *table;          /* lb_table_build() output: backend ids */
	__u32 table_n;               /* 0: no usable backend, new flows refused */
	const struct lb_proxy_backend *be;
	int nbe;
};

struct lb_proxy_vip_stats {
	bool listening;              /* every worker has its listener */
	__u64 accepted;              /* connections (UDP: sessions) taken */
	__u64 active;
	__u64 refused_limit;         /* closed at once: max_conns reached */
	__u64 no_backend;            /* closed: no backend could be reached */
	__u64 connect_fail;          /* failed or timed-out backend connects */
	__u64 retries;               /* connects to a next backend */
	__u64 idle_closed;           /* closed by the idle timeout */
	__u64 bytes_in;              /* client -> backend */
	__u64 bytes_out;             /* backend -> client */
	__u64 dgrams_in, dgrams_out; /* UDP */
};

struct lb_proxy_be_stats {
	__u64 conns;                 /* connects (sessions) tried on it */
	__u64 connected;             /* TCP connects it accepted */
	__s64 active;
	__u64 connect_fail;          /* refused or timed out: passive health */
	__u64 bytes_in, bytes_out;
};

/* The PROXY protocol v2 header (haproxy.org/download/2.6/doc/proxy-protocol.txt)
 * for a TCP connection from client to vip (getpeername/getsockname of the
 * accepted socket): PROXY, TCP over IPv4 (28 bytes) or IPv6 (52 bytes); a
 * family mismatch or a non-IP family gives the 16-byte PROXY/UNSPEC header
 * (the receiver then uses the connection's own addresses). Returns the
 * length written, or -ENOSPC when len is below it. */
#define LB_PP2_MAX 52
int  lb_proxy_pp2_header(const struct sockaddr_storage *client, const struct sockaddr_storage *vip,
			 __u8 *out, size_t len);

/* Forks the workers (signals blocked in lbd stay lbd's: workers reset
 * theirs). */
int  lb_proxy_start(const struct lb_proxy_opts *o, struct lb_proxy **out);
/* Kills the workers: every listener and connection closes at once. The
 * workers an earlier lbd left serving, if not retired yet, are retired. */
void lb_proxy_stop(struct lb_proxy *p);
/* lbd exits but its workers serve on (SIGTERM, as the BPF data path keeps
 * forwarding): the next lbd's proxy retires them (SIGTERM: they accept no
 * more and exit once their connections are done) after it has bound its
 * own listeners. After a handover: lb_proxy_stop(). Returns how many serve
 * on. */
int  lb_proxy_leave(struct lb_proxy *p);
/* lbd --cleanup, or a BPF mode that serves instead: retire the workers
 * earlier lbds left serving (their pid files in state_dir; a running lbd's
 * are left alone); returns how many were signalled. */
int  lb_proxy_retire_orphans(const char *state_dir);
/* Once a second from lbd's loop: a worker that died is restarted (at once,
 * or after a growing pause when it keeps dying young). */
void lb_proxy_tick(struct lb_proxy *p);
/* The workers' pids (0: not running) in pids (at most max); returns the
 * worker count. */
int  lb_proxy_workers(struct lb_proxy *p, pid_t *pids, int max);

/* Replace the whole VIP set. Listeners of new VIPs are bound here (a VIP
 * whose bind fails is logged and served once a later update can bind it);
 * returns 0 or the first bind error (the rest is applied anyway), or
 * -ENOMEM/-EINVAL with nothing changed. */
int  lb_proxy_update(struct lb_proxy *p, const struct lb_proxy_vip *v, int n);

/* Listener handover, the old lbd's half. lb_proxy_listeners() puts a
 * duplicate of every listening socket of the current VIPs in fds (at most
 * max: -E2BIG beyond) and returns how many; lb_proxy_stop_accepting(), once
 * the successor serves, closes this proxy's own listeners (updates bind no
 * new ones) while its open connections go on. */
struct lb_buf;
int  lb_proxy_listeners(struct lb_proxy *p, int *fds, int max, struct lb_buf *desc);
void lb_proxy_stop_accepting(struct lb_proxy *p);
/* Connections (UDP: sessions) open on the current VIPs. */
__u64 lb_proxy_active(struct lb_proxy *p);

/* Counters of a VIP of the current set (-ENOENT if none) / of a backend id. */
int  lb_proxy_vip_stats(struct lb_proxy *p, const char *name, struct lb_proxy_vip_stats *out);
int  lb_proxy_backend_stats(struct lb_proxy *p, __u32 id, struct lb_proxy_be_stats *out);

/* lbctl stats output for one VIP (JSON: the object up to and including
 * `"backends":[`; the caller closes it) and for one of its backends. */
void lb_proxy_print_vip(struct lb_proxy *p, const char *name, bool json, bool first,
			struct lb_buf *o);
void lb_proxy_print_backend(struct lb_proxy *p, __u32 id, const char *ep, const char *state,
			    bool json, bool first, struct lb_buf *o);

/* The byte-level pieces of a worker's flow handling, pure functions shared
 * with the tests and tests/fuzz/fuzz_proxy.c. */
/* The struct lb_flow_key the BPF path builds for this client of a VIP. */
void  lb_proxy_flow_key(const struct sockaddr_storage *client, const struct lb_endpoint *vip,
			__u8 proto, struct lb_flow_key *k);
/* The table slot (< n, n > 0) maglev and ip_hash give a new flow. */
__u32 lb_proxy_hash_slot(enum lb_method method, const struct lb_flow_key *k, __u32 seed,
			 __u32 n);
/* A UDP session's key: the client's address and port (other sockaddr bytes
 * do not count) within a scope (the listener). Equal clients hash equal. */
__u32 lb_proxy_client_hash(const struct sockaddr_storage *ss, uintptr_t scope);
bool  lb_proxy_client_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
