/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Endpoint parsing and printing: "198.18.0.10:80", "[2001:2::10]:80". */
#ifndef LBD_ADDR_H
#define LBD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include "lb_abi.h"

struct lb_endpoint {
	union lb_addr addr;
	__u16 port;   /* network order */
	__u8  family; /* LB_AF_INET or LB_AF_INET6 */
};

/* "ADDR:PORT", "[V6]:PORT". Port 0..65535. Returns 0 or -EINVAL. */
int lb_endpoint_parse(const char *s, struct lb_endpoint *ep);
/* A bare address, v4 or v6 (no brackets). Returns 0 or -EINVAL. */
int lb_addr_parse(const char *s, union lb_addr *addr, __u8 *family);

#define LB_ADDRSTRLEN 48  /* fits "[v6]:port" */
/* Format into buf (LB_ADDRSTRLEN); returns buf. */
const char *lb_addr_str(const union lb_addr *addr, __u8 family, char *buf, size_t len);
const char *lb_endpoint_str(const struct lb_endpoint *ep, char *buf, size_t len);
bool lb_endpoint_eq(const struct lb_endpoint *a, const struct lb_endpoint *b);
/* ep as a sockaddr_in or sockaddr_in6 in *ss; returns its length. */
socklen_t lb_endpoint_sockaddr(const struct lb_endpoint *ep, struct sockaddr_storage *ss);

#endif
