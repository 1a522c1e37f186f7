/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel's view of the node, over rtnetlink (libnl-route-3): a link cache
 * that reports links appearing, disappearing, going up and down (for
 * re-attaching the data path); VIP addresses; the source address and next hop
 * the kernel would use towards a backend (default SNAT address, neighbour
 * warm-up); and neighbour resolution ahead of the first packet.
 *
 * Functions return 0 (or a value) or a negative errno, the kernel's reason
 * where it gave one, and log nothing: callers know the context.
 */
#ifndef LBD_NETLINK_H
#define LBD_NETLINK_H

#include <stdbool.h>
#include <net/if.h>
#include "lb_abi.h"
#include "loop.h"

struct lb_nl;

enum lb_nl_link_ev {
	LB_NL_LINK_NEW,  /* a link appeared (also reported for each at open) */
	LB_NL_LINK_DEL,  /* it is gone (or was renamed away from `name`) */
	LB_NL_LINK_UP,   /* administratively up (IFF_UP) */
	LB_NL_LINK_DOWN,
};

/* A new link that is up gets NEW then UP; a removed one that was up gets
 * DOWN then DEL. A rename is DEL of the old name then NEW of the new one. */
typedef void (*lb_nl_link_fn)(void *arg, enum lb_nl_link_ev ev, int ifindex,
			      const char *name);

/* Fill the link cache and subscribe to link events. fn (may be NULL) is
 * called for every link already there with NEW (and UP), before this
 * returns, then from lb_nl_dispatch(). */
int  lb_nl_open(lb_nl_link_fn fn, void *arg, struct lb_nl **out);
void lb_nl_close(struct lb_nl *nl);

/* The event socket: non-blocking; readable (EPOLLIN) when events wait. */
int  lb_nl_fd(const struct lb_nl *nl);
/* Read what is pending and call fn for each change; never blocks. After an
 * event overflow (the kernel dropped some) the cache is refilled and the
 * difference reported, so no change is lost. Returns the number of events
 * reported or a negative errno. */
int  lb_nl_dispatch(struct lb_nl *nl);
/* Register lb_nl_fd() with an event loop (lb_nl_dispatch on EPOLLIN). */
int  lb_nl_loop_add(struct lb_nl *nl, struct lb_loop *l);

/* From the cache: ifindex of `name` (or -ENODEV), whether it is up. */
int  lb_nl_ifindex(const struct lb_nl *nl, const char *name);
bool lb_nl_link_is_up(const struct lb_nl *nl, int ifindex);

/* Put the address on ifindex (prefix 0: host route, /32 or /128; IPv6 without
 * duplicate address detection) or take it off. Idempotent: adding one that
 * is there, or removing one that is not, is a success. */
int lb_nl_addr_add(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family,
		   int prefix);
int lb_nl_addr_del(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family,
		   int prefix);

/* Answer neighbour discovery for `a` on ifindex (a proxy entry, NTF_PROXY):
 * IPv6 only answers for addresses of the receiving device, so an IPv6 VIP on
 * lo needs one on each interface clients reach it through. Idempotent. */
int lb_nl_proxy_add(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family);
int lb_nl_proxy_del(struct lb_nl *nl, int ifindex, const union lb_addr *a, __u8 family);

/* The kernel's route towards dst (RTM_GETROUTE, as `ip route get`). */
struct lb_nl_route {
	union lb_addr src;     /* source address it would pick (preferred source) */
	union lb_addr nexthop; /* gateway, or dst itself when on link */
	int ifindex;           /* egress interface */
	bool gateway;          /* nexthop is a gateway */
};
int lb_nl_route_get(struct lb_nl *nl, const union lb_addr *dst, __u8 family,
		    struct lb_nl_route *r);
/* The source address the kernel uses towards dst: the default SNAT address
 * of a VIP whose backends sit behind dst's route. */
int lb_nl_source_addr(struct lb_nl *nl, const union lb_addr *dst, __u8 family,
		      union lb_addr *src);

/*
 * Make the kernel resolve the next hop towards dst now, so that the data
 * path finds a neighbour entry (bpf_fib_lookup) for the first packet of a
 * flow. It asks for resolution directly (RTM_NEWNEIGH with NTF_USE on the
 * route's next hop: the kernel sends its ARP request / neighbour
 * solicitation, or re-probes a stale entry); nothing is sent to the backend
 * itself, unlike the "send an empty UDP datagram" trick, which would reach
 * the backend's port and needs a route lookup anyway. Returns at once; the
 * answer arrives asynchronously. Call again to refresh an entry.
 */
int lb_nl_neigh_warm(struct lb_nl *nl, const union lb_addr *dst, __u8 family);

#endif
