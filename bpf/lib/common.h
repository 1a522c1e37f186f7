/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small definitions every data-path piece needs. */
#ifndef LB_COMMON_H
#define LB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_abi.h"
#include "lb_hash.h"

#ifndef AF_INET
#define AF_INET  2
#define AF_INET6 10
#endif

#define ETH_P_8021Q_  0x8100
#define ETH_P_8021AD_ 0x88A8

/* linux/icmp.h drags in libc socket headers that do not build for BPF. */
#define ICMP_DEST_UNREACH   3
#define ICMP_TIME_EXCEEDED  11
#define ICMP_PARAMETERPROB  12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PARAMPROB    4

#define IP_MF     0x2000
#define IP_OFFSET 0x1FFF

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static __always_inline void lb_addr_copy(union lb_addr *d, const union lb_addr *s)
{
	d->v6[0] = s->v6[0];
	d->v6[1] = s->v6[1];
	d->v6[2] = s->v6[2];
	d->v6[3] = s->v6[3];
}

static __always_inline int lb_addr_eq(const union lb_addr *a, const union lb_addr *b)
{
	return ((a->v6[0] ^ b->v6[0]) | (a->v6[1] ^ b->v6[1]) |
		(a->v6[2] ^ b->v6[2]) | (a->v6[3] ^ b->v6[3])) == 0;
}

#endif
