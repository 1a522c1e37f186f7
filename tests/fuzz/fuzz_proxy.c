// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The proxy's flow code (userspace/proxy.c) and the selection tables it
 * reads (userspace/table.c, maglev.c). The input is a little program:
 *   byte 0      method (mod 4), byte 1 VIP family/proto bits
 *   bytes 2-5   hash seed
 *   byte 6      Maglev size choice, byte 7 backend count (mod 17)
 *   then per backend: 2 bytes weight, 2 bytes port, 16 bytes address
 *   then client sockaddrs, 36 bytes each (family bit, port, address, and
 *   bytes the key must ignore).
 * Invariants: the table build succeeds exactly when some backend has a
 * weight, every slot holds the id of a weighted backend and, in a weighted
 * sequence (round_robin, least_conn), every weighted backend has one; the
 * hash slot is in range and is the BPF path's lb_hash_flow/lb_hash_addr of
 * the key; a UDP session key ignores everything but address and port; the
 * PROXY v2 header decodes (as a receiver reads it) to the client and VIP
 * addresses, and never outgrows the buffer it is given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "lb_hash.h"
#include "proxy.h"
#include "table.h"

#define MAX_BE 16

/* The default size (65537) costs milliseconds a build: byte 6 = 255 only. */
static const __u32 sizes[] = { 2, 3, 5, 7, 13, 31, 251, 4099 };

struct rd {
	const uint8_t *p;
	size_t n;
};

static bool take(struct rd *r, void *out, size_t n)
{
	if (r->n < n)
		return false;
	memcpy(out, r->p, n);
	r->p += n;
	r->n -= n;
	return true;
}

static void check_table(const struct lb_maglev_backend *be, size_t n, const __u32 *t,
			__u32 tn, bool all_present)
{
	bool present[MAX_BE] = { false };

	FZ_CHECK(tn > 0, "empty table");
	for (__u32 s = 0; s < tn; s++) {
		FZ_CHECK(t[s] < n && be[t[s]].weight > 0, "slot %u holds %u", s, t[s]);
		present[t[s]] = true;
	}
	for (size_t i = 0; all_present && i < n; i++)
		FZ_CHECK(!be[i].weight || present[i], "backend %zu (weight %u) has no slot", i,
			 be[i].weight);
}

static void client_sa(const uint8_t c[36], struct sockaddr_storage *ss, bool junk)
{
	memset(ss, junk ? c[35] : 0, sizeof(*ss));
	if (c[0] & 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_port, c + 1, 2);
		memcpy(&s6->sin6_addr, c + 3, 16);
		if (junk) {
			memcpy(&s6->sin6_flowinfo, c + 19, 4);
			memcpy(&s6->sin6_scope_id, c + 23, 4);
		}
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_port, c + 1, 2);
		memcpy(&s4->sin_addr, c + 3, 4);
	}
}

/* Decode the header as HAProxy would and compare with what went in. */
static void check_pp2(const struct sockaddr_storage *cl, const struct lb_endpoint *vip,
		      size_t buflen)
{
	static const uint8_t sig[12] = "\r\n\r\n\0\r\nQUIT\n";
	struct sockaddr_storage vs;
	bool same = cl->ss_family == (vip->family == LB_AF_INET6 ? AF_INET6 : AF_INET);
	size_t alen = !same ? 0 : cl->ss_family == AF_INET6 ? 16 : 4;
	size_t want = 16 + (alen ? 2 * alen + 4 : 0);
	uint8_t *h = malloc(buflen ? buflen : 1); /* exact size: ASan sees any overrun */
	const uint8_t *q;
	int n;

	if (!h)
		return;
	lb_endpoint_sockaddr(vip, &vs);
	n = lb_proxy_pp2_header(cl, &vs, h, buflen);
	if (buflen < want) {
		FZ_CHECK(n == -ENOSPC, "%zu-byte buffer for %zu bytes: %d", buflen, want, n);
		free(h);
		return;
	}
	FZ_CHECK(n == (int)want, "header of %d bytes, want %zu", n, want);
	FZ_CHECK(!memcmp(h, sig, 12) && h[12] == 0x21, "bad signature or version");
	FZ_CHECK((size_t)(h[14] << 8 | h[15]) == want - 16, "length field %u", h[14] << 8 | h[15]);
	FZ_CHECK(h[13] == (alen == 4 ? 0x11 : alen == 16 ? 0x21 : 0), "family byte %02x", h[13]);
	q = h + 16;
	if (alen == 4) {
		const struct sockaddr_in *a = (const void *)cl;

		FZ_CHECK(!memcmp(q, &a->sin_addr, 4) && !memcmp(q + 4, vip->addr.b, 4) &&
			 !memcmp(q + 8, &a->sin_port, 2) && !memcmp(q + 10, &vip->port, 2),
			 "IPv4 addresses differ");
	} else if (alen == 16) {
		const struct sockaddr_in6 *a = (const void *)cl;

		FZ_CHECK(!memcmp(q, &a->sin6_addr, 16) && !memcmp(q + 16, vip->addr.b, 16) &&
			 !memcmp(q + 32, &a->sin6_port, 2) && !memcmp(q + 34, &vip->port, 2),
			 "IPv6 addresses differ");
	}
	free(h);
}

static void check_client(const uint8_t c[36], const struct lb_endpoint *vip, __u8 proto,
			 enum lb_method m, __u32 seed, __u32 tn)
{
	struct sockaddr_storage a, b;
	struct lb_flow_key k, want;
	__u32 slot;

	client_sa(c, &a, false);
	client_sa(c, &b, true);
	lb_proxy_flow_key(&a, vip, proto, &k);
	/* what bpf/lib/parse.h fills in for the same packet */
	memset(&want, 0, sizeof(want));
	if (c[0] & 1)
		memcpy(want.src.b, c + 3, 16);
	else
		memcpy(want.src.b, c + 3, 4);
	memcpy(&want.sport, c + 1, 2);
	want.dst = vip->addr;
	want.dport = vip->port;
	want.proto = proto;
	want.family = vip->family;
	FZ_CHECK(!memcmp(&k, &want, sizeof(k)), "flow key differs from the data path's");
	if (m == LB_METHOD_MAGLEV || m == LB_METHOD_IP_HASH) {
		slot = lb_proxy_hash_slot(m, &k, seed, tn);
		FZ_CHECK(slot < tn, "slot %u of %u", slot, tn);
		FZ_CHECK(slot == (m == LB_METHOD_IP_HASH ? lb_hash_addr(&k.src, seed)
							  : lb_hash_flow(&k, seed)) % tn,
			 "slot %u is not the data path's", slot);
	}
	/* a UDP session: the same client whatever the other sockaddr bytes */
	FZ_CHECK(lb_proxy_client_eq(&a, &b) && lb_proxy_client_eq(&b, &a),
		 "client not equal to itself");
	FZ_CHECK(lb_proxy_client_hash(&a, 42) == lb_proxy_client_hash(&b, 42),
		 "equal clients hash differently");
	check_pp2(&b, vip, c[34] % (LB_PP2_MAX + 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };
	uint8_t hdr[8], c[36];
	struct lb_maglev_backend be[MAX_BE];
	struct lb_endpoint vip = { 0 };
	enum lb_method m;
	__u32 seed, msize, *t = NULL, tn = 0;
	size_t n;
	bool any = false;
	__u8 proto;
	int err;

	if (!take(&r, hdr, sizeof(hdr)))
		return 0;
	m = (enum lb_method)(hdr[0] % 4);
	vip.family = hdr[1] & 1 ? LB_AF_INET6 : LB_AF_INET;
	proto = hdr[1] & 2 ? IPPROTO_UDP : IPPROTO_TCP;
	vip.port = htons((__u16)(hdr[1] >> 2));
	memcpy(&seed, hdr + 2, 4);
	msize = hdr[6] == 255 ? LB_MAGLEV_DEFAULT_SIZE : sizes[hdr[6] % (sizeof(sizes) / sizeof(sizes[0]))];
	n = hdr[7] % (MAX_BE + 1);
	memset(be, 0, sizeof(be));
	for (size_t i = 0; i < n; i++) {
		uint8_t b[20];
		__u16 w;

		if (!take(&r, b, sizeof(b)))
			return 0;
		memcpy(&w, b, 2);
		be[i].weight = w;
		memcpy(&be[i].port, b + 2, 2);
		be[i].family = vip.family;
		memcpy(be[i].addr.b, b + 4, vip.family == LB_AF_INET6 ? 16 : 4);
		be[i].id = (__u32)i;
		any |= w > 0;
	}
	memcpy(vip.addr.b, seed & 1 ? "\x20\x01\x0d\xb8" : "\xc6\x12\x0a\x01", 4);
	err = lb_table_build(m, be, n, seed, msize, &t, &tn);
	if (!any) {
		FZ_CHECK(err == -ENOENT, "no weighted backend, yet build returned %d", err);
		return 0;
	}
	FZ_CHECK(err == 0, "build failed: %d", err);
	/* Weighted Maglev may leave a light backend without a slot. */
	check_table(be, n, t, tn, m == LB_METHOD_ROUND_ROBIN || m == LB_METHOD_LEAST_CONN);
	while (take(&r, c, sizeof(c)))
		check_client(c, &vip, proto, m, seed, tn);
	free(t);
	return 0;
}
