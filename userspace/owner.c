// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow ownership sync (see owner.h). One datagram:
 *
 *   "LBO1"  mac[6]  count (u16, network order)  count x struct lb_flow_key
 *   "LBOR"  (12 bytes): a node starts draining, push yours too
 *
 * Every node pushes, not only the one that drains: when one next hop
 * leaves, Linux's default multipath (hash-threshold) also moves flows
 * between the nodes that stay, and those would break as well. Each node
 * pushes its open flows once a second for drain_grace + 5 s after a drain
 * began, then stops: the whole table first, then only the flows it has not
 * sent since (the ones opened meanwhile), and the whole table again every
 * OWNER_RESYNC_MS in case a datagram was lost (UDP) or a peer restarted.
 * What was sent is remembered as 64-bit digests of the tuples (8 bytes a
 * flow, not the 40 of a tuple): two tuples with one digest would keep the
 * second from going out until the next full push, at 1M flows a chance
 * of about 1 in 10^7.
 *
 * mac is the sender's address on the interface towards the peer, which in
 * the deployment this serves (nodes and router on one segment) is where the
 * router's packets reach the sender too. The receiver takes the interface
 * the datagram arrived on (IPV6_PKTINFO) as the one the moved flows will
 * arrive on. Datagrams from anyone but a configured peer are dropped: the
 * fabric is trusted as far as the BGP sessions on it are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "addr.h"
#include "dataplane.h"
#include "log.h"
#include "loop.h"
#include "owner.h"

#define OWNER_MAGIC "LBO1"
#define OWNER_REQ   "LBOR"
#define OWNER_EXTRA_MS 5000
#define OWNER_HDR   12
#define OWNER_BATCH 34    /* keys per datagram: 12 + 34 * 40 = 1372 bytes */
#define OWNER_RESYNC_MS 5000

/* Digests of the tuples sent since the last full push: open addressing,
 * 0 is an empty slot, at most half full. */
struct sent_set {
	__u64 *slot;
	size_t cap, n;
};

struct lb_owner_sync {
	struct lb_loop *loop;
	struct lb_dp *dp;
	struct lb_bgp_conf c;
	int fd;
	struct lb_loop_handler h;
	unsigned long long pushed, received, rejected, sent_bytes, full_pushes;
	unsigned pushes;
	__u64 push_until;     /* push every tick until then (lb_now_ms) */
	__u64 full_at;        /* the next push sends everything (lb_now_ms) */
	__u8 sent_mac[6];     /* the MAC the sent set went out with */
	struct sent_set sent;
};

static __u64 key_digest(const struct lb_flow_key *k)
{
	__u64 w[sizeof(*k) / 8], h = 0x9e3779b97f4a7c15ull;

	_Static_assert(sizeof(*k) % 8 == 0, "lb_flow_key is whole 64-bit words");
	memcpy(w, k, sizeof(w));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		/* splitmix64's finalizer over each word chained in */
		h ^= w[i];
		h ^= h >> 30;
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 27;
		h *= 0x94d049bb133111ebull;
		h ^= h >> 31;
	}
	return h ? h : 1;
}

static void sent_clear(struct sent_set *s)
{
	if (s->slot)
		memset(s->slot, 0, s->cap * sizeof(*s->slot));
	s->n = 0;
}

/* Adds d; true when it was not there. Out of memory: true (the flow goes
 * out again, which is only more bytes). */
static bool sent_add(struct sent_set *s, __u64 d)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		__u64 *slot = calloc(cap, sizeof(*slot));

		if (!slot)
			return true;
		for (size_t k = 0; k < s->cap; k++) {
			if (!s->slot[k])
				continue;
			for (i = s->slot[k] & (cap - 1); slot[i]; i = (i + 1) & (cap - 1))
				;
			slot[i] = s->slot[k];
		}
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	for (i = d & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (s->slot[i] == d)
			return false;
	s->slot[i] = d;
	s->n++;
	return true;
}

/* A new window starts with a full push. */
static void push_window(struct lb_owner_sync *o)
{
	__u64 now = lb_now_ms();

	if (now >= o->push_until)
		o->full_at = now;
	o->push_until = now + o->c.drain_grace_ms + OWNER_EXTRA_MS;
}

static void sa_of(const struct lb_endpoint *ep, __u16 port, struct sockaddr_in6 *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons(port);
	if (ep->family == LB_AF_INET6) {
		memcpy(&sa->sin6_addr, ep->addr.b, 16);
	} else {
		sa->sin6_addr.s6_addr[10] = sa->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sa->sin6_addr.s6_addr[12], &ep->addr.v4, 4);
	}
}

static const struct lb_endpoint *peer_of(const struct lb_owner_sync *o, const struct sockaddr_in6 *sa)
{
	for (int i = 0; i < o->c.nsync_peers; i++) {
		struct sockaddr_in6 p;

		sa_of(&o->c.sync_peers[i], 0, &p);
		if (!memcmp(&p.sin6_addr, &sa->sin6_addr, 16))
			return &o->c.sync_peers[i];
	}
	return NULL;
}

static void on_datagram(void *arg, uint32_t events)
{
	struct lb_owner_sync *o = arg;
	unsigned char buf[2048], cbuf[256];
	struct sockaddr_in6 from;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	int fd = lb_dp_map_fd(o->dp, LB_MAP_OWNERS);

	(void)events;
	for (int budget = 0; budget < 64; budget++) {
		struct lb_owner val = { 0 };
		ssize_t n = recvmsg(o->fd, &mh, MSG_DONTWAIT);
		unsigned count, ok = 0;

		if (n < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
				val.ifindex = ((struct in6_pktinfo *)CMSG_DATA(cm))->ipi6_ifindex;
		if (n == OWNER_HDR && !memcmp(buf, OWNER_REQ, 4) && peer_of(o, &from)) {
			if (lb_now_ms() >= o->push_until)
				lb_info("flow sync: a peer drains: pushing this node's flows");
			/* the asking peer may be one that restarted: all of them */
			o->full_at = lb_now_ms();
			push_window(o);
			lb_owner_push(o);
			mh.msg_namelen = sizeof(from);
			mh.msg_controllen = sizeof(cbuf);
			continue;
		}
		count = n >= OWNER_HDR ? (unsigned)buf[10] << 8 | buf[11] : 0;
		if (n < OWNER_HDR || memcmp(buf, OWNER_MAGIC, 4) || !peer_of(o, &from) ||
		    (size_t)n != OWNER_HDR + count * sizeof(struct lb_flow_key) || !val.ifindex || fd < 0) {
			o->rejected++;
			mh.msg_namelen = sizeof(from);
			mh.msg_controllen = sizeof(cbuf);
			continue;
		}
		memcpy(val.mac, buf + 4, 6);
		for (unsigned i = 0; i < count; i++) {
			struct lb_flow_key k;

			memcpy(&k, buf + OWNER_HDR + i * sizeof(k), sizeof(k));
			if (k.proto != IPPROTO_TCP || k.pad ||
			    (k.family != LB_AF_INET && k.family != LB_AF_INET6))
				continue;
			ok += !bpf_map_update_elem(fd, &k, &val, BPF_ANY);
		}
		o->received += ok;
		mh.msg_namelen = sizeof(from);
		mh.msg_controllen = sizeof(cbuf);
	}
}

int lb_owner_open(struct lb_loop *loop, struct lb_dp *dp, const struct lb_bgp_conf *c,
		  struct lb_owner_sync **out)
{
	struct lb_owner_sync *o = calloc(1, sizeof(*o));
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	int one = 1, zero = 0, err;

	if (!o)
		return -ENOMEM;
	o->loop = loop;
	o->dp = dp;
	o->c = *c;
	sa.sin6_port = htons(c->sync_port);
	o->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (o->fd < 0 || setsockopt(o->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(o->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) ||
	    bind(o->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		lb_err("flow sync: cannot listen on udp port %u: %s", c->sync_port, strerror(-err));
		goto fail;
	}
	/* a push is a burst of datagrams: room for about 5000 of them */
	if (setsockopt(o->fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ 8 << 20 }, sizeof(int)))
		lb_warn("flow sync: SO_RCVBUFFORCE: %s (a large push may lose flows)", strerror(errno));
	o->h = (struct lb_loop_handler){ on_datagram, o };
	err = lb_loop_add(loop, o->fd, EPOLLIN, &o->h);
	if (err)
		goto fail;
	lb_info("flow sync: udp port %u, %d peer(s): a draining node's flows go on at the owner",
		c->sync_port, c->nsync_peers);
	*out = o;
	return 0;
fail:
	if (o->fd >= 0)
		close(o->fd);
	free(o);
	return err;
}

void lb_owner_close(struct lb_owner_sync *o)
{
	if (!o)
		return;
	lb_loop_del(o->loop, o->fd);
	close(o->fd);
	free(o->sent.slot);
	free(o);
}

/* This node's MAC on the interface its datagrams to peer leave by. */
static int own_mac(const struct sockaddr_in6 *peer, __u8 mac[6])
{
	struct sockaddr_in6 local;
	socklen_t len = sizeof(local);
	struct ifaddrs *ifa, *i;
	char ifname[IF_NAMESIZE] = "";
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), zero = 0, err = -ENOENT;
	bool v4 = IN6_IS_ADDR_V4MAPPED(&peer->sin6_addr);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (connect(fd, (const struct sockaddr *)peer, sizeof(*peer)) ||
	    getsockname(fd, (struct sockaddr *)&local, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i && !ifname[0]; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (v4 && i->ifa_addr->sa_family == AF_INET &&
		    !memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, &local.sin6_addr.s6_addr[12], 4))
			snprintf(ifname, sizeof(ifname), "%s", i->ifa_name);
		if (!v4 && i->ifa_addr->sa_family == AF_INET6 &&
		    !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, &local.sin6_addr, 16))
			snprintf(ifname, sizeof(ifname), "%s", i->ifa_name);
	}
	for (i = ifa; i && ifname[0]; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && !strcmp(i->ifa_name, ifname) &&
		    ((struct sockaddr_ll *)i->ifa_addr)->sll_halen == 6) {
			memcpy(mac, ((struct sockaddr_ll *)i->ifa_addr)->sll_addr, 6);
			err = 0;
			break;
		}
	freeifaddrs(ifa);
	return err;
}

struct push {
	unsigned char buf[OWNER_HDR + OWNER_BATCH * sizeof(struct lb_flow_key)];
	unsigned n;
	struct sockaddr_in6 to[LB_BGP_MAX_NEIGHBORS];
	bool ok[LB_BGP_MAX_NEIGHBORS];
};

static void push_flush(struct lb_owner_sync *o, struct push *p)
{
	if (!p->n)
		return;
	p->buf[10] = (unsigned char)(p->n >> 8);
	p->buf[11] = (unsigned char)p->n;
	for (int i = 0; i < o->c.nsync_peers; i++) {
		if (!p->ok[i])
			continue;
		if (sendto(o->fd, p->buf, OWNER_HDR + p->n * sizeof(struct lb_flow_key), 0,
			   (struct sockaddr *)&p->to[i], sizeof(p->to[i])) > 0)
			o->sent_bytes += OWNER_HDR + p->n * sizeof(struct lb_flow_key);
	}
	p->n = 0;
}

/* Queues k unless an incremental push sent it already; 1 when queued. */
static int push_key(struct lb_owner_sync *o, struct push *p, const struct lb_flow_key *k, bool full)
{
	if (!sent_add(&o->sent, key_digest(k)) && !full)
		return 0;
	memcpy(p->buf + OWNER_HDR + p->n * sizeof(*k), k, sizeof(*k));
	if (++p->n == OWNER_BATCH)
		push_flush(o, p);
	return 1;
}

/* Closed connections stay in the LRU until evicted: only open ones matter
 * (on a busy node most entries are closed short connections). */
static bool flow_live(int fd, const void *key)
{
	struct lb_flow f;

	return !bpf_map_lookup_elem(fd, key, &f) && !(f.flags & LB_FLOW_F_CLOSING);
}

/* The open TCP flows of one IPv4 conntrack map, queued (push_key); returns
 * how many. */
static int push_map4(struct lb_owner_sync *o, struct push *p, int fd, bool full)
{
	struct lb_flow_key4 k4, n4, *prev4 = NULL;
	int flows = 0;

	while (!bpf_map_get_next_key(fd, prev4, &n4)) {
		struct lb_flow_key k = { .family = LB_AF_INET };

		k4 = n4;
		prev4 = &k4;
		if (k4.proto != IPPROTO_TCP || !flow_live(fd, &k4))
			continue;
		k.src.v4 = k4.src;
		k.dst.v4 = k4.dst;
		k.sport = k4.sport;
		k.dport = k4.dport;
		k.proto = k4.proto;
		flows += push_key(o, p, &k, full);
	}
	return flows;
}

static int push_map6(struct lb_owner_sync *o, struct push *p, int fd, bool full)
{
	struct lb_flow_key k6, n6, *prev6 = NULL;
	int flows = 0;

	while (!bpf_map_get_next_key(fd, prev6, &n6)) {
		k6 = n6;
		prev6 = &k6;
		if (k6.proto != IPPROTO_TCP || !flow_live(fd, &k6))
			continue;
		flows += push_key(o, p, &k6, full);
	}
	return flows;
}

int lb_owner_push(struct lb_owner_sync *o)
{
	struct push *p = calloc(1, sizeof(*p));
	/* both conntrack tiers: confirmed flows live in the established one */
	int fd4 = lb_dp_map_fd(o->dp, LB_MAP_CT4), fd6 = lb_dp_map_fd(o->dp, LB_MAP_CT);
	int fd4e = lb_dp_map_fd(o->dp, LB_MAP_CT4_EST), fd6e = lb_dp_map_fd(o->dp, LB_MAP_CT_EST);
	__u8 mac[6] = { 0 }, first[6] = { 0 };
	int npeers = 0, flows = 0;
	bool full;

	if (!p)
		return -ENOMEM;
	if (fd4 < 0 || fd6 < 0 || fd4e < 0 || fd6e < 0) {
		free(p);
		return -ENODEV;
	}
	/* One MAC for all: the peers share the router's segment. */
	for (int i = 0; i < o->c.nsync_peers; i++) {
		sa_of(&o->c.sync_peers[i], o->c.sync_port, &p->to[i]);
		p->ok[i] = !own_mac(&p->to[i], mac);
		if (p->ok[i] && !npeers++)
			memcpy(first, mac, 6);
		else if (p->ok[i] && memcmp(first, mac, 6))
			p->ok[i] = false; /* another segment: its flows never arrive there */
	}
	memcpy(p->buf, OWNER_MAGIC, 4);
	memcpy(p->buf + 4, first, 6);
	/* another MAC: what the peers have points elsewhere */
	full = lb_now_ms() >= o->full_at || memcmp(first, o->sent_mac, 6);
	if (full && npeers) {
		sent_clear(&o->sent);
		memcpy(o->sent_mac, first, 6);
		o->full_at = lb_now_ms() + OWNER_RESYNC_MS;
		o->full_pushes++;
	}
	if (npeers)
		flows = push_map4(o, p, fd4e, full) + push_map4(o, p, fd4, full) +
			push_map6(o, p, fd6e, full) + push_map6(o, p, fd6, full);
	push_flush(o, p);
	free(p);
	o->pushed += (unsigned long long)flows;
	if (!o->pushes++ || !npeers)
		lb_info("flow sync: %d flow(s) pushed to %d peer(s)%s", flows, npeers,
			full ? "" : " (the ones not sent yet)");
	return npeers ? flows : -EHOSTUNREACH;
}

void lb_owner_drain(struct lb_owner_sync *o)
{
	unsigned char req[OWNER_HDR] = OWNER_REQ;

	push_window(o);
	lb_owner_push(o);
	for (int i = 0; i < o->c.nsync_peers; i++) {
		struct sockaddr_in6 to;

		sa_of(&o->c.sync_peers[i], o->c.sync_port, &to);
		sendto(o->fd, req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to));
	}
}

void lb_owner_tick(struct lb_owner_sync *o)
{
	if (!o)
		return;
	if (lb_now_ms() < o->push_until) {
		lb_owner_push(o);
	} else if (o->sent.slot) {
		/* the window is over: the next one starts with a full push */
		free(o->sent.slot);
		o->sent = (struct sent_set){ 0 };
	}
}

void lb_owner_status(const struct lb_owner_sync *o, bool json, struct lb_buf *out)
{
	if (json) {
		lb_buf_printf(out, "{\"port\":%u,\"peers\":%d,\"pushed\":%llu,\"received\":%llu,"
			      "\"rejected\":%llu,\"sent_bytes\":%llu,\"full_pushes\":%llu}",
			      o->c.sync_port, o->c.nsync_peers, o->pushed, o->received, o->rejected,
			      o->sent_bytes, o->full_pushes);
		return;
	}
	lb_buf_printf(out, "flow sync: udp %u, %d peer(s); flows pushed %llu (%llu bytes sent), "
		      "received %llu%s\n", o->c.sync_port, o->c.nsync_peers, o->pushed,
		      o->sent_bytes, o->received, o->rejected ? " (datagrams rejected)" : "");
}
