// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lb_addr_parse(const char *s, union lb_addr *addr, __u8 *family)
{
	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, s, &addr->v4) == 1) {
		*family = LB_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr->b) == 1) {
		*family = LB_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static int parse_port(const char *s, __u16 *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*port = htons((__u16)v);
	return 0;
}

int lb_endpoint_parse(const char *s, struct lb_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs = s;
	size_t hl;

	memset(ep, 0, sizeof(*ep));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare v6 needs brackets */
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (lb_addr_parse(host, &ep->addr, &ep->family))
		return -EINVAL;
	if (*s == '[' && ep->family != LB_AF_INET6)
		return -EINVAL;
	return parse_port(colon + 1, &ep->port);
}

const char *lb_addr_str(const union lb_addr *addr, __u8 family, char *buf, size_t len)
{
	if (!inet_ntop(family == LB_AF_INET6 ? AF_INET6 : AF_INET, addr->b, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *lb_endpoint_str(const struct lb_endpoint *ep, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	lb_addr_str(&ep->addr, ep->family, a, sizeof(a));
	if (ep->family == LB_AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, ntohs(ep->port));
	else
		snprintf(buf, len, "%s:%u", a, ntohs(ep->port));
	return buf;
}

bool lb_endpoint_eq(const struct lb_endpoint *a, const struct lb_endpoint *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr.b, b->addr.b, sizeof(a->addr.b)) == 0;
}

socklen_t lb_endpoint_sockaddr(const struct lb_endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == LB_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = ep->port;
		memcpy(&s6->sin6_addr, ep->addr.b, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = ep->port;
	s4->sin_addr.s_addr = ep->addr.v4;
	return sizeof(*s4);
}
