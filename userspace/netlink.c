// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "netlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>

/* What lbd last reported about a link: events are the difference between
 * this and the cache, which makes an overflowed event socket harmless (the
 * cache is refilled and compared again). */
struct lb_nl_known {
	int ifindex;
	bool up;
	bool seen;
	char name[IF_NAMESIZE];
};

struct lb_nl {
	struct nl_sock *ev;     /* link events, owned by the cache manager */
	struct nl_sock *req;    /* requests: addresses, routes, neighbours */
	struct nl_cache_mngr *mngr;
	struct nl_cache *links;
	lb_nl_link_fn fn;
	void *arg;
	struct lb_nl_known *known;
	int nknown, cap;
	struct lb_loop_handler h;
};

/* libnl folds the kernel's errno into its own codes; give callers errnos. */
static int nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0: return 0;
	case NLE_EXIST: return -EEXIST;
	case NLE_NOADDR: return -EADDRNOTAVAIL;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NODEV: return -ENODEV;
	case NLE_PERM: return -EPERM;
	case NLE_NOACCESS: return -EACCES;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_BUSY: return -EBUSY;
	case NLE_INVAL: return -EINVAL;
	case NLE_RANGE: return -ERANGE;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_MSGSIZE: return -EMSGSIZE;
	default: return -EIO;
	}
}

static int af_of(__u8 family)
{
	return family == LB_AF_INET6 ? AF_INET6 : AF_INET;
}

static int alen_of(__u8 family)
{
	return family == LB_AF_INET6 ? 16 : 4;
}

/* ---- requests ------------------------------------------------------- */

struct req_state {
	int err;    /* the kernel's errno (negative) */
	bool done;  /* ack or error seen */
	int (*valid)(struct nl_msg *m, void *arg);
	void *arg;
};

static int req_valid(struct nl_msg *m, void *arg)
{
	struct req_state *st = arg;

	return st->valid ? st->valid(m, st->arg) : NL_OK;
}

static int req_ack(struct nl_msg *m, void *arg)
{
	(void)m;
	((struct req_state *)arg)->done = true;
	return NL_STOP;
}

static int req_err(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct req_state *st = arg;

	(void)nla;
	st->err = e->error < 0 ? e->error : -e->error;
	st->done = true;
	return NL_STOP;
}

/* Send m (consumed) and wait for the kernel's ack, passing replies to
 * valid(). Returns 0 or the kernel's errno. */
static int request(struct lb_nl *nl, struct nl_msg *m,
		   int (*valid)(struct nl_msg *, void *), void *arg)
{
	struct req_state st = { .valid = valid, .arg = arg };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int err;

	if (!cb) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, req_valid, &st);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, req_ack, &st);
	nl_cb_err(cb, NL_CB_CUSTOM, req_err, &st);
	nlmsg_hdr(m)->nlmsg_flags |= NLM_F_ACK;
	err = nl_send_auto(nl->req, m);
	nlmsg_free(m);
	while (err >= 0 && !st.done)
		err = nl_recvmsgs(nl->req, cb);
	nl_cb_put(cb);
	if (st.err)
		return st.err;
	return err < 0 ? nle_errno(err) : 0;
}

static struct nl_addr *build_addr(const union lb_addr *a, __u8 family)
{
	return nl_addr_build(af_of(family), a->b, (size_t)alen_of(family));
}

static int addr_change(struct lb_nl *nl, bool add, int ifindex, const union lb_addr *a,
		       __u8 family, int prefix)
{
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *na = build_addr(a, family);
	struct nl_msg *m = NULL;
	int err = -ENOMEM;

	if (prefix < 0 || prefix > alen_of(family) * 8)
		err = -EINVAL;
	else if (ra && na) {
		nl_addr_set_prefixlen(na, prefix ? prefix : alen_of(family) * 8);
		rtnl_addr_set_ifindex(ra, ifindex);
		rtnl_addr_set_family(ra, af_of(family));
		err = nle_errno(rtnl_addr_set_local(ra, na));
		if (family == LB_AF_INET6)
			rtnl_addr_set_flags(ra, IFA_F_NODAD);
		if (!err)
			err = nle_errno(add ? rtnl_addr_build_add_request(ra, 0, &m)
					    : rtnl_addr_build_delete_request(ra, 0, &m));
		if (!err)
			err = request(nl, m, NULL, NULL);
	}
	nl_addr_put(na);
	rtnl_addr_put(ra);
	if (add && err == -EEXIST)
		return 0;
	if (!add && err == -EADDRNOTAVAIL)
		return 0;
	return err;
}

int lb_nl_addr_add(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family,
		   int prefix)
{
	return addr_change(nl, true, ifindex, a, family, prefix);
}

int lb_nl_addr_del(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family,
		   int prefix)
{
	return addr_change(nl, false, ifindex, a, family, prefix);
}

static int proxy_change(struct lb_nl *nl, bool add, int ifindex, const union lb_addr *a,
			__u8 family)
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *na = build_addr(a, family);
	struct nl_msg *m = NULL;
	int err = -ENOMEM;

	if (n && na) {
		rtnl_neigh_set_ifindex(n, ifindex);
		rtnl_neigh_set_family(n, af_of(family));
		rtnl_neigh_set_dst(n, na);
		rtnl_neigh_set_flags(n, NTF_PROXY);
		err = nle_errno(add ? rtnl_neigh_build_add_request(n, NLM_F_CREATE | NLM_F_REPLACE, &m)
				    : rtnl_neigh_build_delete_request(n, 0, &m));
		if (!err)
			err = request(nl, m, NULL, NULL);
	}
	nl_addr_put(na);
	rtnl_neigh_put(n);
	return !add && err == -ENOENT ? 0 : err;
}

int lb_nl_proxy_add(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family)
{
	return proxy_change(nl, true, ifindex, a, family);
}

int lb_nl_proxy_del(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family)
{
	return proxy_change(nl, false, ifindex, a, family);
}

struct route_reply {
	struct lb_nl_route *r;
	int alen;
	bool got;
};

static int route_valid(struct nl_msg *m, void *arg)
{
	struct route_reply *rr = arg;
	struct nlattr *tb[RTA_MAX + 1];
	struct nlmsghdr *h = nlmsg_hdr(m);

	if (h->nlmsg_type != RTM_NEWROUTE ||
	    nlmsg_parse(h, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0)
		return NL_SKIP;
	if (tb[RTA_OIF])
		rr->r->ifindex = (int)nla_get_u32(tb[RTA_OIF]);
	if (tb[RTA_PREFSRC] && nla_len(tb[RTA_PREFSRC]) == rr->alen)
		memcpy(rr->r->src.b, nla_data(tb[RTA_PREFSRC]), (size_t)rr->alen);
	if (tb[RTA_GATEWAY] && nla_len(tb[RTA_GATEWAY]) == rr->alen) {
		memcpy(rr->r->nexthop.b, nla_data(tb[RTA_GATEWAY]), (size_t)rr->alen);
		rr->r->gateway = true;
	}
	rr->got = true;
	return NL_OK;
}

int lb_nl_route_get(struct lb_nl *nl, const union lb_addr *dst, __u8 family,
		    struct lb_nl_route *r)
{
	struct rtmsg rtm = { .rtm_family = (unsigned char)af_of(family),
			     .rtm_dst_len = (unsigned char)(alen_of(family) * 8) };
	struct route_reply rr = { .r = r, .alen = alen_of(family) };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST);
	int err;

	if (!m)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	if (nlmsg_append(m, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(m, RTA_DST, alen_of(family), dst->b) < 0) {
		nlmsg_free(m);
		return -EMSGSIZE;
	}
	err = request(nl, m, route_valid, &rr);
	if (err)
		return err;
	if (!rr.got || !r->ifindex)
		return -ENETUNREACH;
	if (!r->gateway)
		r->nexthop = *dst;
	return 0;
}

int lb_nl_source_addr(struct lb_nl *nl, const union lb_addr *dst, __u8 family,
		      union lb_addr *src)
{
	static const union lb_addr none;
	struct lb_nl_route r;
	int err = lb_nl_route_get(nl, dst, family, &r);

	if (err)
		return err;
	if (!memcmp(&r.src, &none, sizeof(none)))
		return -EADDRNOTAVAIL; /* the egress interface has no address */
	*src = r.src;
	return 0;
}

static int neigh_state_valid(struct nl_msg *m, void *arg)
{
	const struct ndmsg *nd = nlmsg_data(nlmsg_hdr(m));

	*(int *)arg = nd->ndm_state;
	return NL_OK;
}

/* The state of the neighbour entry of na on ifindex; -ENOENT when none. */
static int neigh_state(struct lb_nl *nl, int ifindex, __u8 family, struct nl_addr *na, int *state)
{
	struct ndmsg nd = { .ndm_family = (__u8)af_of(family), .ndm_ifindex = ifindex };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETNEIGH, 0);

	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &nd, sizeof(nd), NLMSG_ALIGNTO) < 0 || nla_put_addr(m, NDA_DST, na) < 0) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	*state = -1;
	return request(nl, m, neigh_state_valid, state);
}

int lb_nl_neigh_warm(struct lb_nl *nl, const union lb_addr *dst, __u8 family)
{
	struct rtnl_neigh *n;
	struct nl_addr *na;
	struct lb_nl_route r;
	struct nl_msg *m = NULL;
	int state, err = lb_nl_route_get(nl, dst, family, &r);

	if (err)
		return err;
	if (r.ifindex == 1)
		return 0; /* local: nothing to resolve */
	n = rtnl_neigh_alloc();
	na = build_addr(&r.nexthop, family);
	err = -ENOMEM;
	/* An operator's static entry is resolved already, and the request
	 * below would replace it with one the kernel must resolve again. */
	if (n && na && !neigh_state(nl, r.ifindex, family, na, &state) && state >= 0 &&
	    (state & (NUD_PERMANENT | NUD_NOARP)))
		err = 0;
	else if (n && na) {
		rtnl_neigh_set_ifindex(n, r.ifindex);
		rtnl_neigh_set_family(n, af_of(family));
		rtnl_neigh_set_dst(n, na);
		/* NUD_NONE + NTF_USE: create the entry if needed and have the
		 * kernel resolve (or re-probe) it, as a packet to it would. */
		rtnl_neigh_set_state(n, NUD_NONE);
		rtnl_neigh_set_flags(n, NTF_USE);
		err = nle_errno(rtnl_neigh_build_add_request(n, NLM_F_CREATE | NLM_F_REPLACE, &m));
		if (!err)
			err = request(nl, m, NULL, NULL);
	}
	nl_addr_put(na);
	rtnl_neigh_put(n);
	return err;
}

/* ---- links ---------------------------------------------------------- */

/* Returns 1: one event reported. */
static int emit(struct lb_nl *nl, enum lb_nl_link_ev ev, const struct lb_nl_known *k)
{
	if (nl->fn)
		nl->fn(nl->arg, ev, k->ifindex, k->name);
	return 1;
}

static struct lb_nl_known *known_find(struct lb_nl *nl, int ifindex)
{
	for (int i = 0; i < nl->nknown; i++)
		if (nl->known[i].ifindex == ifindex)
			return &nl->known[i];
	return NULL;
}

static struct lb_nl_known *known_add(struct lb_nl *nl)
{
	if (nl->nknown == nl->cap) {
		int cap = nl->cap ? nl->cap * 2 : 16;
		struct lb_nl_known *k = realloc(nl->known, (size_t)cap * sizeof(*k));

		if (!k)
			return NULL;
		nl->known = k;
		nl->cap = cap;
	}
	return &nl->known[nl->nknown++];
}

/* Compare the cache with what was reported and report the difference. */
static int links_diff(struct lb_nl *nl)
{
	struct nl_object *o;
	int events = 0;

	for (int i = 0; i < nl->nknown; i++)
		nl->known[i].seen = false;
	for (o = nl_cache_get_first(nl->links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		int ifindex = rtnl_link_get_ifindex(l);
		bool up = rtnl_link_get_flags(l) & IFF_UP;
		struct lb_nl_known *k = known_find(nl, ifindex);

		if (!name || ifindex <= 0)
			continue;
		if (k && strcmp(k->name, name)) {
			if (k->up)
				events += emit(nl, LB_NL_LINK_DOWN, k);
			events += emit(nl, LB_NL_LINK_DEL, k);
			k->up = false;
			snprintf(k->name, sizeof(k->name), "%s", name);
			events += emit(nl, LB_NL_LINK_NEW, k);
		} else if (!k) {
			k = known_add(nl);
			if (!k)
				return -ENOMEM;
			*k = (struct lb_nl_known){ .ifindex = ifindex };
			snprintf(k->name, sizeof(k->name), "%s", name);
			events += emit(nl, LB_NL_LINK_NEW, k);
		}
		k->seen = true;
		if (k->up != up) {
			k->up = up;
			events += emit(nl, up ? LB_NL_LINK_UP : LB_NL_LINK_DOWN, k);
		}
	}
	for (int i = 0; i < nl->nknown;) {
		struct lb_nl_known gone = nl->known[i];

		if (gone.seen) {
			i++;
			continue;
		}
		nl->known[i] = nl->known[--nl->nknown];
		if (gone.up)
			events += emit(nl, LB_NL_LINK_DOWN, &gone);
		events += emit(nl, LB_NL_LINK_DEL, &gone);
	}
	return events;
}

static void link_change(struct nl_cache *c, struct nl_object *o, int action, void *arg)
{
	/* links_diff() reports once the whole batch is in the cache. */
	(void)c, (void)o, (void)action, (void)arg;
}

int lb_nl_open(lb_nl_link_fn fn, void *arg, struct lb_nl **out)
{
	struct lb_nl *nl = calloc(1, sizeof(*nl));
	int err = -ENOMEM;

	if (!nl)
		return -ENOMEM;
	nl->fn = fn;
	nl->arg = arg;
	nl->req = nl_socket_alloc();
	nl->ev = nl_socket_alloc();
	if (!nl->req || !nl->ev)
		goto fail;
	err = nle_errno(nl_connect(nl->req, NETLINK_ROUTE));
	if (!err)
		err = nle_errno(nl_cache_mngr_alloc(nl->ev, NETLINK_ROUTE, 0, &nl->mngr));
	if (!err)
		err = nle_errno(nl_cache_mngr_add(nl->mngr, "route/link", link_change, nl,
						  &nl->links));
	if (!err)
		err = nle_errno(nl_socket_set_nonblocking(nl->ev));
	if (err)
		goto fail;
	err = links_diff(nl);
	if (err < 0)
		goto fail;
	*out = nl;
	return 0;
fail:
	lb_nl_close(nl);
	return err;
}

void lb_nl_close(struct lb_nl *nl)
{
	if (!nl)
		return;
	if (nl->mngr)
		nl_cache_mngr_free(nl->mngr); /* frees the cache too */
	nl_socket_free(nl->ev);
	nl_socket_free(nl->req);
	free(nl->known);
	free(nl);
}

int lb_nl_fd(const struct lb_nl *nl)
{
	return nl_socket_get_fd(nl->ev);
}

int lb_nl_dispatch(struct lb_nl *nl)
{
	int err = nl_cache_mngr_data_ready(nl->mngr);

	if (err < 0 && err != -NLE_AGAIN) {
		/* Most likely an overflow (ENOBUFS): events were lost, so
		 * read the whole table again. What is still queued is older
		 * than that dump and would replay stale states: drop it. */
		char sink[8192];

		for (int i = 0; i < 100000; i++)
			if (recv(lb_nl_fd(nl), sink, sizeof(sink), MSG_DONTWAIT) < 0 && errno != ENOBUFS)
				break;
		err = nl_cache_refill(nl->req, nl->links);
		if (err < 0)
			return nle_errno(err);
	}
	return links_diff(nl);
}

static void on_readable(void *arg, uint32_t events)
{
	(void)events;
	lb_nl_dispatch(arg);
}

int lb_nl_loop_add(struct lb_nl *nl, struct lb_loop *l)
{
	nl->h.fn = on_readable;
	nl->h.arg = nl;
	return lb_loop_add(l, lb_nl_fd(nl), EPOLLIN, &nl->h);
}

int lb_nl_ifindex(const struct lb_nl *nl, const char *name)
{
	int i = rtnl_link_name2i(nl->links, name);

	return i > 0 ? i : -ENODEV;
}

bool lb_nl_link_is_up(const struct lb_nl *nl, int ifindex)
{
	struct rtnl_link *l = rtnl_link_get(nl->links, ifindex);
	bool up = l && (rtnl_link_get_flags(l) & IFF_UP);

	rtnl_link_put(l);
	return up;
}
