// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* addr.c: endpoint parsing and printing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "addr.h"

static void test_parse_v4(void **state)
{
	struct lb_endpoint ep;
	const __u8 want[16] = { 198, 18, 0, 10 };

	(void)state;
	assert_int_equal(lb_endpoint_parse("198.18.0.10:80", &ep), 0);
	assert_int_equal(ep.family, LB_AF_INET);
	assert_int_equal(ep.port, htons(80));
	/* The rest of the union is zero: maps key on all 16 bytes. */
	assert_memory_equal(ep.addr.b, want, sizeof(want));
}

static void test_parse_v6(void **state)
{
	struct lb_endpoint ep;
	const __u8 want[16] = { 0x20, 0x01, 0, 2, [15] = 0x10 };

	(void)state;
	assert_int_equal(lb_endpoint_parse("[2001:2::10]:8080", &ep), 0);
	assert_int_equal(ep.family, LB_AF_INET6);
	assert_int_equal(ep.port, htons(8080));
	assert_memory_equal(ep.addr.b, want, sizeof(want));
}

static void test_port_bounds(void **state)
{
	struct lb_endpoint ep;

	(void)state;
	assert_int_equal(lb_endpoint_parse("10.0.0.1:0", &ep), 0);
	assert_int_equal(ep.port, 0);
	assert_int_equal(lb_endpoint_parse("10.0.0.1:65535", &ep), 0);
	assert_int_equal(ep.port, htons(65535));
	assert_int_equal(lb_endpoint_parse("10.0.0.1:65536", &ep), -EINVAL);
	assert_int_equal(lb_endpoint_parse("[::1]:65536", &ep), -EINVAL);
	assert_int_equal(lb_endpoint_parse("10.0.0.1:99999999999999999999", &ep), -EINVAL);
}

static void test_rejects_bad_input(void **state)
{
	static const char *const bad[] = {
		"",                   /* empty */
		"10.0.0.1",           /* missing port */
		"10.0.0.1:",          /* empty port */
		":80",                /* missing address */
		"2001:2::10:80",      /* bare v6: the port is ambiguous */
		"2001:2::10",         /* bare v6, no port */
		"[2001:2::10]",       /* brackets, no port */
		"[2001:2::10]80",     /* no colon after the bracket */
		"[2001:2::10:80",     /* unclosed bracket */
		"[10.0.0.1]:80",      /* brackets are for v6 only */
		"[]:80",
		"10.0.0.256:80",
		"host.example:80",    /* names are not resolved */
		"10.0.0.1:http",
		"10.0.0.1:-1",
		"10.0.0.1:+80",
		"10.0.0.1: 80",
		"10.0.0.1:80 ",
		"10.0.0.1:80x",
	};
	struct lb_endpoint ep;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lb_endpoint_parse(bad[i], &ep) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
}

/* Canonical text survives parse -> str unchanged; other spellings become
 * canonical and then stay put. */
static void test_round_trip(void **state)
{
	static const char *const in[][2] = {
		{ "198.18.0.10:80", "198.18.0.10:80" },
		{ "0.0.0.0:0", "0.0.0.0:0" },
		{ "[2001:2::10]:443", "[2001:2::10]:443" },
		{ "[2001:0002:0000::0010]:443", "[2001:2::10]:443" },
		{ "[::ffff:198.18.0.1]:53", "[::ffff:198.18.0.1]:53" },
		{ "[::]:65535", "[::]:65535" },
		{ "10.0.0.1:080", "10.0.0.1:80" },
	};
	char buf[LB_ADDRSTRLEN];
	struct lb_endpoint a, b;

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(lb_endpoint_parse(in[i][0], &a), 0);
		assert_string_equal(lb_endpoint_str(&a, buf, sizeof(buf)), in[i][1]);
		assert_int_equal(lb_endpoint_parse(buf, &b), 0);
		assert_true(lb_endpoint_eq(&a, &b));
	}
}

static void test_longest_fits(void **state)
{
	const char *s = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
	char buf[LB_ADDRSTRLEN];
	struct lb_endpoint ep;

	(void)state;
	assert_int_equal(lb_endpoint_parse(s, &ep), 0);
	assert_string_equal(lb_endpoint_str(&ep, buf, sizeof(buf)),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_eq(void **state)
{
	struct lb_endpoint a, b;

	(void)state;
	assert_int_equal(lb_endpoint_parse("10.0.0.1:80", &a), 0);
	assert_int_equal(lb_endpoint_parse("10.0.0.1:81", &b), 0);
	assert_false(lb_endpoint_eq(&a, &b));
	assert_int_equal(lb_endpoint_parse("[::ffff:10.0.0.1]:80", &b), 0);
	assert_false(lb_endpoint_eq(&a, &b)); /* v4-mapped v6 is not v4 */
	assert_int_equal(lb_endpoint_parse("10.0.0.1:80", &b), 0);
	assert_true(lb_endpoint_eq(&a, &b));
}

static void test_addr_parse_bare(void **state)
{
	union lb_addr a;
	__u8 family;

	(void)state;
	assert_int_equal(lb_addr_parse("198.18.0.1", &a, &family), 0);
	assert_int_equal(family, LB_AF_INET);
	assert_int_equal(a.v4, htonl(0xc6120001u));
	assert_int_equal(lb_addr_parse("2001:2::1", &a, &family), 0);
	assert_int_equal(family, LB_AF_INET6);
	assert_int_equal(lb_addr_parse("[2001:2::1]", &a, &family), -EINVAL);
	assert_int_equal(lb_addr_parse("198.18.0.1:80", &a, &family), -EINVAL);
	assert_int_equal(lb_addr_parse("", &a, &family), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_v4),
		cmocka_unit_test(test_parse_v6),
		cmocka_unit_test(test_port_bounds),
		cmocka_unit_test(test_rejects_bad_input),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_longest_fits),
		cmocka_unit_test(test_eq),
		cmocka_unit_test(test_addr_parse_bare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
