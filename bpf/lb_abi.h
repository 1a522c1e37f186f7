/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_abi.h - the one contract between the BPF data path and userspace.
 *
 * Everything here is shared by bpf/ and userspace/: fixed-width types only, no
 * pointers, explicit padding so both compilers lay structs out the same way.
 * Addresses and ports are kept in network byte order exactly as they appear
 * on the wire, so the data path never converts them.
 */
#ifndef LB_ABI_H
#define LB_ABI_H

#include <linux/types.h>

/* Limits. Map sizes that operators tune are set at load time; these are the
 * compile-time ceilings and defaults. */
#define LB_MAX_VIPS            1024
#define LB_MAX_BACKENDS        65536   /* global backend slots, all VIPs */
#define LB_MAX_DROP            32
#define LB_MAGLEV_DEFAULT_SIZE 65537   /* prime */
#define LB_MAGLEV_MAX_SIZE     1000003 /* prime */
#define LB_CT_DEFAULT_SIZE     262144  /* established flows, each family */
#define LB_CT_NEW_DEFAULT_SIZE 65536   /* new flows (LRU tier), each family */
#define LB_CT_TCP_TIMEOUT      900     /* seconds idle: established TCP flow */
#define LB_CT_UDP_TIMEOUT      300     /* seconds idle: established UDP flow */
#define LB_CT_CLOSED_TIMEOUT   30      /* seconds idle: FIN or RST seen */
#define LB_SNAT_PORT_LO        1024    /* default SNAT range: below the */
#define LB_SNAT_PORT_HI        32767   /* kernel's ephemeral ports */
#define LB_SNAT_TRIES          8       /* ports probed per new flow */
#define LB_MAX_VLAN            2
#define LB_MAX_EXTHDR          6       /* IPv6 extension headers skipped */

enum lb_family {
	LB_AF_NONE  = 0,
	LB_AF_INET  = 4,
	LB_AF_INET6 = 6,
};

/* How a new flow picks its backend. All four read the VIP's selection table
 * (see struct lb_vip.table_size); what userspace puts in the table differs. */
enum lb_method {
	LB_METHOD_MAGLEV      = 0, /* Maglev table, 5-tuple hash */
	LB_METHOD_IP_HASH     = 1, /* Maglev table, client address hash */
	LB_METHOD_ROUND_ROBIN = 2, /* smooth weighted sequence, per-CPU cursor */
	LB_METHOD_LEAST_CONN  = 3, /* one slot per backend, power of two choices */
	LB_METHOD_MAX,
};

enum lb_fwd {
	LB_FWD_NAT   = 0, /* full NAT: DNAT to backend, SNAT to the balancer */
	LB_FWD_DSR   = 1, /* L2 direct server return: rewrite MACs only */
	LB_FWD_LOCAL = 2, /* backend is a process on this node */
	LB_FWD_IPIP  = 3, /* DSR through an IPv4-in-IPv4 / IPv6-in-IPv6 tunnel */
	LB_FWD_GUE   = 4, /* DSR through GUE (UDP) to lb_vip.encap_port */
	LB_FWD_MAX,
};

enum lb_backend_state {
	LB_BE_UNUSED = 0, /* free slot */
	LB_BE_UP     = 1,
	LB_BE_DRAIN  = 2, /* no new flows; established flows stay */
	LB_BE_DOWN   = 3, /* established flows are reselected (reset semantics) */
};

/* Why a packet for a VIP was dropped. Names in lb_drop_names() (userspace). */
enum lb_drop_reason {
	LB_DROP_TRUNC_L2 = 0,   /* Ethernet/VLAN header truncated */
	LB_DROP_TRUNC_L3,       /* IP header truncated */
	LB_DROP_BAD_L3,         /* bad version, IHL or total length */
	LB_DROP_TRUNC_L4,       /* TCP/UDP header truncated */
	LB_DROP_BAD_L4,         /* bad TCP data offset */
	LB_DROP_FRAGMENT,       /* IP fragment: no ports to balance on */
	LB_DROP_EXTHDR,         /* too many IPv6 extension headers */
	LB_DROP_NO_BACKEND,     /* VIP has no usable backend */
	LB_DROP_NO_TABLE,       /* VIP has no selection table yet */
	LB_DROP_SNAT_EXHAUSTED, /* no free SNAT port for the new flow */
	LB_DROP_CT_INSERT,      /* conntrack insert failed */
	LB_DROP_FIB,            /* no route (blackhole, unreachable, ...) */
	LB_DROP_BAD_ICMP,       /* ICMP error too short to translate */
	LB_DROP_MTU,            /* forwarded packet exceeds the egress MTU */
	LB_DROP_NO_SOURCE,      /* ipip/gue VIP without an outer source address */
	LB_DROP_NO_PROG,        /* the new-flow program is missing (xdp_calls, tc_calls) */
	LB_DROP_REASONS,
};

/* Things the data path did that are not drops, counted per CPU. */
enum lb_event {
	LB_EV_PASS_TTL = 0,     /* TTL/hop limit would expire: left to the stack */
	LB_EV_PASS_NO_NEIGH,    /* no neighbour entry: left to the stack */
	LB_EV_TX,               /* XDP_TX / TC bounce on the ingress device */
	LB_EV_REDIRECT,         /* sent out another device */
	LB_EV_REPLY,            /* NAT reply reverse-translated */
	LB_EV_ICMP_FWD,         /* ICMP error translated for a NAT flow */
	LB_EV_FLOW_NEW,
	LB_EV_FLOW_RESELECT,    /* flow's backend was gone; picked again */
	LB_EV_REDIRECT_NEIGH,   /* TC: no neighbour entry, the kernel resolves it
	                         * and sends the packet (bpf_redirect_neigh) */
	LB_EV_LOCAL,            /* forward local: passed up to the stack as is */
	LB_EV_LOCAL_SOCK,       /* forward local: a new connection (or UDP
	                         * datagram) given to an instance's socket by
	                         * the socket-lookup program */
	LB_EV_ENCAP,            /* forward ipip/gue: encapsulated to a backend */
	LB_EV_TO_OWNER,         /* a peer node's flow sent on to it at L2 (owners) */
	LB_EV_CT_PROMOTE,       /* flow confirmed: moved to the established tier */
	LB_EV_CT_FULL,          /* established tier full: the flow stays in the
	                         * LRU tier (counted once a second per flow) */
	LB_EVENTS,
};

union lb_addr {
	__u32 v4;      /* IPv4: first word only, the rest zero */
	__u32 v6[4];
	__u8  b[16];
};

/* Key of the `vips` hash map. port 0 is the wildcard-port VIP. Userspace
 * also inserts one marker per VIP address, {addr, port 0, proto 0}, so that a
 * malformed packet can be recognised as addressed to a VIP and dropped. */
struct lb_vip_key {
	union lb_addr addr;
	__u16 port;   /* network order */
	__u8  proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8  family; /* enum lb_family */
};

#define LB_VIP_F_SNAT_SET (1u << 0) /* snat_addr is valid */

/* forward ipip/gue: snat_addr is the outer source address (the node's),
 * of the VIP's family; outer and inner family are the same. */
struct lb_vip {
	__u32 id;          /* index into vip_tables, vip_stats, rr_cursor */
	__u8  method;      /* enum lb_method */
	__u8  fwd;         /* enum lb_fwd */
	__u8  family;
	__u8  flags;
	__u32 table_size;  /* entries in this VIP's current inner table */
	__u16 encap_port;  /* forward gue: outer UDP destination port, network
			    * order (the backends' `gue_port`) */
	__u16 pad;
	union lb_addr snat_addr;
};

/* GUE (draft-ietf-intarea-gue), the header variant 0 that Linux's fou
 * module (`ip fou add port P gue`) and lb_decap.bpf.c decapsulate: version
 * 0, no optional fields, proto_ctype the inner protocol (IPPROTO_IPIP or
 * IPPROTO_IPV6). */
struct lb_guehdr {
	__u8  hlen_ver;    /* version (2 bits), C (1), hlen (5): all 0 */
	__u8  proto_ctype;
	__u16 flags;
};

#define LB_GUE_DEFAULT_PORT 6080

/*
 * The backends' decapsulation program (bpf/lb_decap.bpf.c, `lbd --decap`).
 * Key of its `decap_addrs` hash: the addresses configured on the backend
 * (the VIPs on lo among them); only packets whose inner destination is one
 * of them are decapsulated.
 */
struct lb_decap_key {
	union lb_addr addr;
	__u8  family;  /* enum lb_family */
	__u8  pad[3];
};

/* Single entry of `decap_cfg`. */
struct lb_decap_cfg {
	__u16 gue_port; /* network order; 0: no GUE */
	__u16 pad;
};

/* Per-CPU counters of `decap_stats`. */
enum lb_decap_stat {
	LB_DECAP_IPIP = 0,   /* ipip / ip6ip6 (and 4in6, 6in4) decapsulated */
	LB_DECAP_GUE,        /* GUE decapsulated */
	LB_DECAP_NOT_LOCAL,  /* a tunnel packet for an address not here: passed */
	LB_DECAP_BAD,        /* a tunnel packet cut short or malformed: passed */
	LB_DECAP_STATS,
};

#define LB_DECAP_MAX_ADDRS 4096
#define LB_ENCAP_TTL        64  /* outer TTL / hop limit */

/* Value of the `backends` array, indexed by backend id. */
struct lb_backend {
	union lb_addr addr;
	__u16 port;    /* network order */
	__u8  family;
	__u8  state;   /* enum lb_backend_state */
	__u32 weight;
	__u32 vip_id;
	__u32 gen;     /* bumped when the slot is reused; flows carry it */
};

/*
 * Value of conn_open: the backend slot a connection was counted in, with
 * the slot's generation then (its low 15 bits, under LB_CONN_F_GEN). lbd
 * zeroes a slot's count when it releases the slot and when it reuses it;
 * a connection of the slot's earlier backend is then counted out of
 * nothing, else the new backend started with the old one's live
 * connections (least_conn shunned it) or went below zero as they closed.
 * A value without LB_CONN_F_GEN (an lbd before this one counted it in)
 * is counted out as it always was.
 */
#define LB_CONN_F_GEN     (1u << 31)
#define LB_CONN_GEN_SHIFT 16
#define LB_CONN_GEN_MASK  0x7fffu
#define LB_CONN_ID_MASK   0xffffu /* LB_MAX_BACKENDS ids */
_Static_assert(LB_MAX_BACKENDS <= LB_CONN_ID_MASK + 1, "backend ids must fit conn_open values");

static inline __u32 lb_conn_val(__u32 be_id, __u32 gen)
{
	return LB_CONN_F_GEN | (gen & LB_CONN_GEN_MASK) << LB_CONN_GEN_SHIFT |
	       (be_id & LB_CONN_ID_MASK);
}

/* Whether conn_open value v still counts on a slot of generation gen. */
static inline int lb_conn_current(__u32 v, __u32 gen)
{
	return !(v & LB_CONN_F_GEN) ||
	       (v >> LB_CONN_GEN_SHIFT & LB_CONN_GEN_MASK) == (gen & LB_CONN_GEN_MASK);
}

/* 5-tuple as seen on the wire: conntrack key for both directions. */
struct lb_flow_key {
	union lb_addr src;
	union lb_addr dst;
	__u16 sport;
	__u16 dport;
	__u8  proto;
	__u8  family;
	__u16 pad;
};

/*
 * The same tuple for IPv4 flows, which live in maps of their own (ct4,
 * nat4) under this 16-byte key: the kernel hashes and compares the whole
 * key on every lookup, and the 40-byte one costs an established packet
 * about 6 ns more. lb_flow_key4() is the one way to build it.
 */
struct lb_flow_key4 {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u8  proto;
	__u8  pad[3];
};

static inline void lb_flow_key4(struct lb_flow_key4 *k4, const struct lb_flow_key *k)
{
	k4->src = k->src.v4;
	k4->dst = k->dst.v4;
	k4->sport = k->sport;
	k4->dport = k->dport;
	k4->proto = k->proto;
	k4->pad[0] = k4->pad[1] = k4->pad[2] = 0;
}

/*
 * Flow ownership across lbd nodes behind ECMP (the owners map): a node that
 * drains pushes its flows' client tuples to its peers (userspace/owner.c);
 * a peer that gets a packet of one of them, with no flow of its own, sends
 * it on at L2 to the owner, whose NAT state and SNAT address serve it.
 * Keyed by the client -> VIP struct lb_flow_key, both families.
 */
#define LB_OWNERS_MAX 65536

struct lb_owner {
	__u8  mac[6];     /* the owner's address on ifindex */
	__u16 pad;
	__u32 ifindex;    /* where the flow's packets arrive here, and leave */
};

#define LB_FLOW_F_CLOSING     (1u << 0) /* FIN or RST seen: counted out */
#define LB_FLOW_F_ESTABLISHED (1u << 1) /* backend answered the SYN */
#define LB_FLOW_F_COUNTED     (1u << 2) /* counted in backend_conns */
#define LB_FLOW_F_CONFIRMED   (1u << 3) /* new tier: the backend answered as for
					 * a connection it has; the client's next
					 * packet promotes the flow (conntrack.h) */
#define LB_FLOW_F_CSUM        (1u << 4) /* csum_l4/csum_l3 are set */
#define LB_FLOW_F_ANSWERED    (1u << 5) /* reply mapping: the backend answered
					 * the SYN, not with a SYN-ACK: a RST,
					 * or a TIME_WAIT's ACK (lb_reply_track) */

/*
 * Next hop of one direction of a flow, kept from its last bpf_fib_lookup so
 * its next packets skip the lookup (XDP). Valid while ifindex != 0,
 * gen == lb_config.fib_gen and the packet came in on iif; userspace bumps
 * fib_gen to make every flow route again (route or neighbour changes).
 * Only a successful lookup fills it.
 */
struct lb_nh {
	__u8  dmac[6];
	__u8  smac[6];
	__u32 ifindex; /* egress device; 0: empty */
	__u32 iif;     /* ingress device the lookup was made for */
	__u32 gen;     /* lb_config.fib_gen when filled */
	__u16 mtu;     /* the route's MTU: larger packets take the lookup */
	__u16 pad;
};

/*
 * Value of `ct` and `ct_est` (IPv4: ct4, ct4_est), keyed by the client's
 * tuple (client -> VIP). See bpf/lib/conntrack.h for the two tiers.
 */
struct lb_flow {
	__u32 backend_id;
	__u32 backend_gen;
	__u32 vip_id;
	__u16 snat_port;   /* network order; 0 in DSR/local/ipip; gue: the
			    * outer UDP destination port */
	__u8  flags;
	__u8  fwd;         /* enum lb_fwd: a flow keeps the mode and */
	union lb_addr snat_addr; /* SNAT (ipip/gue: outer source) address
				  * it began with */
	struct lb_nh nh;   /* towards the backend */
	__u32 seen;        /* lb_config.now at its last packet (established
			    * tier; new tier: of its last failed promotion) */
	/* Full NAT on XDP: what the rewrite adds to the L4 and IPv4 header
	 * checksums, folded (see csum.h). Constant for the flow's life (its
	 * tuple, SNAT and backend are), so an established packet adds one
	 * word each instead of summing the address and port changes again. */
	__u16 csum_l4;
	__u16 csum_l3;
};

/* Value of `nat`, keyed by the reply's tuple (backend -> SNAT addr:port). */
struct lb_nat {
	union lb_addr client;
	union lb_addr vip;
	__u16 client_port;
	__u16 vip_port;
	__u32 backend_id;
	__u32 vip_id;
	__u8  flags;
	__u8  pad[3];
	struct lb_nh nh;   /* towards the client */
	__u32 seen;        /* lb_config.now at its last reply (established tier) */
};

#define LB_CFG_F_WILDCARD (1u << 0) /* some VIP has port 0: look it up too */

/* Single entry of the `config` array. Written before traffic, rarely after. */
struct lb_config {
	__u32 hash_seed;
	__u16 snat_port_lo; /* host order, inclusive */
	__u16 snat_port_hi;
	__u32 flags;
	__u32 fib_gen;      /* see struct lb_nh; owned by lb_dp_set_config */
	__u32 now;          /* CLOCK_MONOTONIC seconds, refreshed by every
			     * config write (lbd's tick, each second): the
			     * established flows' last-seen clock, a load and
			     * a compare per packet instead of a helper call */
	__u32 pad;
};

/*
 * Per-CPU counters. The data path counts a forwarded packet once, on its
 * backend; vip_stats holds only what has no backend (replies, forward
 * local packets). A VIP's figures are the sum (lb_dp_vip_stats).
 */
struct lb_vip_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
	__u64 reply_packets;
	__u64 reply_bytes;
};

struct lb_backend_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
	__u64 syn;        /* SYNs of new flows sent to it */
	__u64 synack;     /* new flows it answered: a SYN-ACK, or a TIME_WAIT's ACK */
	__u64 rst_syn;    /* new flows whose SYN it answered with a RST (refused) */
};

/*
 * Key of `local_socks` (a SOCKHASH): the socket of a `forward local`
 * backend, a worker instance, for the socket-lookup program. One entry
 * per backend, family and protocol; a dual-stack IPv6 socket is entered
 * for both families.
 */
struct lb_sock_key {
	__u32 backend_id;
	__u8  family;   /* enum lb_family */
	__u8  proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u16 pad;
};

#define LB_MAX_LOCAL_SOCKS 4096

/* Map names, so pins and tools agree. */
#define LB_MAP_VIPS        "vips"
#define LB_MAP_BACKENDS    "backends"
#define LB_MAP_TABLES      "vip_tables"
#define LB_MAP_CT          "ct"       /* IPv6 flows; IPv4 ones in ct4 */
#define LB_MAP_NAT         "nat"      /* IPv6 flows; IPv4 ones in nat4 */
#define LB_MAP_CT4         "ct4"
#define LB_MAP_NAT4        "nat4"
#define LB_MAP_CT_EST      "ct_est"   /* established tier of ct, ... */
#define LB_MAP_NAT_EST     "nat_est"
#define LB_MAP_CT4_EST     "ct4_est"
#define LB_MAP_NAT4_EST    "nat4_est"
#define LB_MAP_CONFIG      "config"
#define LB_MAP_CONNS       "backend_conns"   /* __s64 each; mmapable */
#define LB_MAP_CONN_OPEN   "conn_open"
#define LB_MAP_RR          "rr_cursor"
#define LB_MAP_VIP_STATS   "vip_stats"
#define LB_MAP_VIP_RETIRED "vip_retired"
#define LB_MAP_BE_STATS    "backend_stats"
#define LB_MAP_DROPS       "drop_stats"
#define LB_MAP_EVENTS      "event_stats"
#define LB_MAP_LOCAL_SOCKS "local_socks"
#define LB_MAP_OWNERS      "owners"
#define LB_MAP_XDP_CALLS   "xdp_calls"
#define LB_MAP_TC_CALLS    "tc_calls"

/*
 * Slots of the prog arrays xdp_calls and tc_calls: the programs the main
 * XDP and TC programs tail-call. A packet that opens a flow (or needs its
 * backend picked again) leaves the main program for LB_CALL_NEW_FLOW, so
 * the verifier walks backend selection and conntrack insertion apart from
 * the established path. lbd fills the slots at every load: a pinned array
 * that an earlier lbd filled gets the programs of this one.
 */
enum lb_call {
	LB_CALL_NEW_FLOW = 0,
	LB_CALLS,
};

/*
 * tools/lbgen, the benchmarks' packet generator (bpf/lbgen.bpf.c), not part
 * of the data path. Flow f of a run has source port LB_GEN_PORT_LO +
 * f % LB_GEN_PORT_SPAN and source address template + f / LB_GEN_PORT_SPAN
 * (added to the address's last 16 bits), so LB_GEN_MAX_FLOWS tuples differ.
 */
#define LB_GEN_MAX_PKT    128
#define LB_GEN_PORT_LO    1024
#define LB_GEN_PORT_SPAN  64512
#define LB_GEN_ADDR_SPAN  250
#define LB_GEN_MAX_FLOWS  (LB_GEN_PORT_SPAN * LB_GEN_ADDR_SPAN)

/* Single entry of lbgen's `cfg` array; tmpl is a complete frame with valid
 * checksums for flow 0, flagged as an established packet (TCP: ACK). */
struct lb_gen_cfg {
	__u32 flows;        /* established flows, cycled through */
	__u32 new_permille; /* of each 1000 packets, this many open a new flow */
	__u16 len;          /* frame length */
	__u16 l4_off;       /* offset of the TCP/UDP header */
	__u8  ipv6;
	__u8  proto;        /* IPPROTO_TCP or IPPROTO_UDP */
	__u8  shards;       /* sending CPUs: CPU c sends the established flows
			     * f with f % shards == c % shards (as RSS would) */
	__u8  pad;
	__u8  tmpl[LB_GEN_MAX_PKT];
};

/* Per-CPU entry of lbgen's `state` array. */
struct lb_gen_state {
	__u64 packets;      /* frames sent */
	__u64 new_flows;    /* of which opened a new flow */
	__u32 seq;          /* position in the established flows */
	__u32 new_seq;      /* new flows opened on this CPU */
};

#endif /* LB_ABI_H */
