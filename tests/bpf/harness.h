/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared harness of the BPF suite: a private network namespace with a client
 * side and a backend side, the real XDP object loaded through dataplane.c, a
 * packet builder that writes every header (checksums computed from scratch),
 * BPF_PROG_TEST_RUN, and an exact comparison that prints a hex diff.
 *
 * Topology (built by h_init in a fresh netns; gone when the process exits):
 *   veth0 (client side)  198.18.0.254/24  2001:2::fe/64      02:00:00:00:00:fe
 *     clients  198.18.0.N / 2001:2::N          MAC 02:00:00:00:00:0N (N = 1..4)
 *   veth2 (backend side) 198.18.1.254/24  2001:2:0:1::fe/64  02:00:00:00:01:fe
 *     backends 198.18.1.N / 2001:2:0:1::N      MAC 02:00:00:00:01:0N (N = 1..8)
 *   198.18.9.0/24, 2001:2:0:9::/64: unreachable routes
 *   198.18.1.99, 2001:2:0:1::99: on link, no neighbour entry
 * VIPs live in 198.18.10.0/24 and 2001:2:0:a::/64; the SNAT addresses are
 * veth2's own.
 */
#ifndef LBD_TESTS_BPF_HARNESS_H
#define LBD_TESTS_BPF_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_abi.h"
#include "dataplane.h"

#define H_CLIENT_IF  "veth0"
#define H_BACKEND_IF "veth2"
#define H_SNAT4      "198.18.1.254"
#define H_SNAT6      "2001:2:0:1::fe"
#define H_VIP4       "198.18.10.1"
#define H_VIP6       "2001:2:0:a::1"
#define H_CL4        "198.18.0.1"   /* client 1 */
#define H_CL6        "2001:2::1"
#define H_BE4        "198.18.1.1"   /* backend 1 */
#define H_BE6        "2001:2:0:1::1"

extern const uint8_t h_mac_client_if[6];  /* veth0 */
extern const uint8_t h_mac_backend_if[6]; /* veth2 */
extern const uint8_t h_mac_peer[6];       /* some router that sent us a frame */
/* MAC of client N / backend N (as in the neighbour table). */
void h_mac_client(int n, uint8_t mac[6]);
void h_mac_backend(int n, uint8_t mac[6]);

int h_ifindex_client(void);
int h_ifindex_backend(void);

/* Netns and topology; prints SKIP and exits 0 when not root. */
void h_init(void);
/* cmocka per-test setup/teardown: a freshly loaded data path each test. */
int h_dp_up(void **state);
/* h_dp_up with these conntrack sizes (0: the default). */
int h_dp_open(uint32_t ct_size, uint32_t ct_new_size);
int h_dp_down(void **state);
/* h_dp_up with the TC object loaded too. */
int h_tc_up(void **state);
struct lb_dp *h_dp(void);

/* ---- packets ---- */

#define H_PKT_MAX 4096

struct h_pkt {
	uint8_t b[H_PKT_MAX];
	size_t len;
	size_t l3off, l4off; /* where the builder put the headers */
};

struct h_ext {          /* an IPv6 extension header */
	uint8_t type;       /* IPPROTO_HOPOPTS, _ROUTING, _DSTOPTS, _FRAGMENT */
	uint8_t len8;       /* Hdr Ext Len (units of 8 bytes beyond the first 8) */
	uint16_t frag;      /* fragment header: offset/flags word, host order */
};

struct h_spec {
	uint8_t dmac[6], smac[6];
	int nvlan;
	uint16_t tpid[2], vid[2];
	uint16_t ethertype;   /* family 0: raw frame with this type + payload */
	int family;           /* 4, 6 or 0 */
	const char *src, *dst;
	uint8_t ttl;          /* 0 means 64 */
	uint16_t ip_id, frag; /* IPv4 identification, flags/offset word */
	uint8_t ipopt_len;    /* IPv4 option bytes (multiple of 4) */
	struct h_ext ext[8];
	int next;
	uint8_t proto;        /* TCP, UDP, ICMP, ICMPV6 */
	uint16_t sport, dport;
	uint8_t tcp_flags;
	uint32_t seq, ack;
	uint8_t icmp_type, icmp_code;
	uint32_t icmp_rest;   /* ICMP bytes 4..7 (e.g. the MTU), host order */
	bool udp_nocsum;      /* IPv4 UDP sent without checksum */
	const void *payload;
	size_t plen;
};

/* Tag s with nvlan (1: 802.1Q 100; 2: 802.1ad 100, then 802.1Q 200). */
void h_vlan(struct h_spec *s, int nvlan);

/* Build the frame; every checksum is computed over the finished bytes. */
void h_build(const struct h_spec *s, struct h_pkt *p);

/* The Internet checksum of buf, folded, not inverted, starting from sum. */
uint32_t h_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t h_csum_fold(uint32_t sum);

/* Run the XDP program once on `in` as received on ifindex. */
int h_run(const struct h_pkt *in, int ifindex, struct h_pkt *out);
/* The same with the TC program (h_tc_up). */
int h_run_tc(const struct h_pkt *in, int ifindex, struct h_pkt *out);
/* Run any program once with the given context; returns its verdict. */
int h_test_run(int prog_fd, void *ctx, size_t ctx_size, const struct h_pkt *in,
	       struct h_pkt *out);

/* The usual frames of one NAT flow on this topology:
 * client 1 -> VIP (on veth0, SYN carrying a small request), */
struct h_spec h_from_client(int fam, uint8_t proto, uint16_t sport, uint16_t dport);
/* what the balancer sends backend 1 (port 8080) for it with this SNAT port
 * (host order), */
struct h_spec h_to_backend(const struct h_spec *in, uint16_t snat_port);
/* and backend 1's SYN-ACK to that SNAT port (on veth2). */
struct h_spec h_from_backend(int fam, uint8_t proto, uint16_t snat_port);

/* Assert verdict and bytes; on mismatch print a hex diff and fail. */
#define h_expect(verdict, want_verdict, got, want) \
	h_expect_at(__FILE__, __LINE__, verdict, want_verdict, got, want)
void h_expect_at(const char *file, int line, int verdict, int want_verdict,
		 const struct h_pkt *got, const struct h_pkt *want);
const char *h_verdict_name(int v);

/* Network-order port at offset 0 (source) or 2 (dest) of the L4 header. */
uint16_t h_port(const struct h_pkt *p, int dest);

/* ---- maps ---- */

struct h_be {
	uint32_t id;
	const char *addr;
	uint16_t port;   /* host order */
	uint32_t weight; /* 0 means 1 */
};

struct h_svc {
	uint32_t vip_id;
	int family;
	const char *vip;
	uint16_t port;   /* host order; 0 = wildcard */
	uint8_t proto;
	uint8_t method, fwd;
	uint16_t encap_port; /* host order: forward gue */
	const struct h_be *be;
	size_t nbe;
};

/* Write backends, the selection table and the VIP. */
void h_svc_add(const struct h_svc *s);
/* Replace the VIP's backend set: new table swapped in, sizes updated. */
void h_svc_backends(const struct h_svc *s, const struct h_be *be, size_t nbe);
/* The selection table h_svc_add installs for these backends (malloc'ed). */
void h_svc_table(const struct h_svc *s, const struct h_be *be, size_t nbe,
		 __u32 **tbl, __u32 *n);
void h_backend_state(uint32_t id, uint8_t state);
void h_config(uint16_t snat_lo, uint16_t snat_hi, uint32_t seed);

uint64_t h_drops(unsigned int reason);
uint64_t h_event(unsigned int ev);
int64_t h_conns(uint32_t be_id);
/* Backend id recorded in the conntrack entry of a client tuple. */
int h_flow_backend(int family, const char *src, uint16_t sport, const char *dst,
		   uint16_t dport, uint8_t proto, uint32_t *be_id);
/* Which backend (by index in be[]) the forwarded frame was sent to, by its
 * destination address, or -1. */
int h_which_backend(const struct h_pkt *out, int family, const struct h_be *be, size_t nbe);

void h_addr(int family, const char *s, union lb_addr *a);

#endif
