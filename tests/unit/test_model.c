// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * model.c through its header: the file's model with a runtime layer
 * replayed leniently on top, statements and their canonical (persisted)
 * form, refused statements that say why and change nothing, and the
 * self-check the service fuzz target runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "model.h"

static const char conf_text[] =
	"lbd { max_vips 3; max_backends 3; maglev_size 251; }\n"
	"vip web { listen 198.51.100.1:80; backend 10.0.0.2:8080; backend 10.0.0.3:8080 weight=2; }\n"
	"vip six { listen [2001:db8::1]:443; backend [2001:db8::2]:443; }\n";

static struct lb_conf cf;

static void no_err(void *ctx, const char *msg)
{
	(void)ctx;
	fail_msg("config: %s", msg);
}

static int setup(void **st)
{
	(void)st;
	return lb_config_parse_string("model.conf", conf_text, &cf, no_err, NULL);
}

static int teardown(void **st)
{
	(void)st;
	lb_config_free(&cf);
	return 0;
}

static struct lb_model_be *be(const struct lb_model *m, const char *vip, const char *ep)
{
	struct lb_model_vip *v = lb_model_find_vip(m, vip);
	struct lb_endpoint e;

	assert_non_null(v);
	assert_int_equal(lb_endpoint_parse(ep, &e), 0);
	return lb_model_find_be(v, &e);
}

/* stmt: 0 or the error, with canon and err filled. */
static int stmt(struct lb_model *m, const char *line, char *canon, char *err)
{
	char buf[LB_MODEL_STMT_MAX * 2], *w[LB_MODEL_MAX_WORDS];
	int n = lb_config_split(line, w, LB_MODEL_MAX_WORDS, buf, sizeof(buf), err, 256);

	assert_true(n > 0);
	canon[0] = err[0] = '\0';
	return lb_model_stmt(m, w, n, false, canon, LB_MODEL_STMT_MAX, err, 256);
}

static void test_build_replays_leniently(void **st)
{
	/* a layer written against an older file: its add of a backend the
	 * file has now updates it; its del of one the file dropped is a no-op */
	char *rt[] = { "backend add 10.0.0.2:8080 weight=7 vip=web",
		       "backend del 10.0.0.9:8080 vip=web",
		       "vip add api 198.51.100.2:8443",
		       "backend add 10.0.0.5:8443 vip=api" };
	struct lb_model m;

	(void)st;
	assert_int_equal(lb_model_build(&cf, rt, 4, NULL, &m), 0);
	assert_int_equal(m.n, 3);
	assert_int_equal(be(&m, "web", "10.0.0.2:8080")->c.weight, 7);
	assert_int_equal(be(&m, "web", "10.0.0.3:8080")->c.weight, 2);
	assert_int_equal(lb_model_find_vip(&m, "web")->nbe, 2);
	assert_true(lb_model_find_vip(&m, "api")->runtime);
	assert_false(lb_model_find_vip(&m, "web")->runtime);
	assert_non_null(be(&m, "api", "10.0.0.5:8443"));
	assert_null(lb_model_find_vip(&m, "nope"));
	lb_model_free(&m);
	assert_int_equal(m.n, 0);
	assert_null(m.v);
}

static void test_canonical_form(void **st)
{
	char canon[LB_MODEL_STMT_MAX], err[256];
	struct lb_model m;

	(void)st;
	assert_int_equal(lb_model_build(&cf, NULL, 0, NULL, &m), 0);
	assert_int_equal(stmt(&m, "backend add 10.0.0.4:8080 weight=3 vip=web;", canon, err), 0);
	assert_string_equal(canon, "backend add 10.0.0.4:8080 weight=3 vip=web");
	assert_int_equal(stmt(&m, "backend set 10.0.0.4:8080 vip=web state=drain", canon, err), 0);
	assert_string_equal(canon, "backend set 10.0.0.4:8080 state=drain vip=web");
	assert_int_equal(be(&m, "web", "10.0.0.4:8080")->c.state, LB_BE_DRAIN);
	assert_int_equal(be(&m, "web", "10.0.0.4:8080")->c.weight, 3);
	assert_int_equal(stmt(&m, "backend del 10.0.0.4:8080 vip=web", canon, err), 0);
	assert_string_equal(canon, "backend del 10.0.0.4:8080 vip=web");
	assert_null(be(&m, "web", "10.0.0.4:8080"));
	assert_int_equal(stmt(&m, "vip del six", canon, err), 0);
	assert_string_equal(canon, "vip del six");
	/* one VIP left: vip= may be left out, the canonical form names it */
	assert_int_equal(stmt(&m, "backend add 10.0.0.6:8080", canon, err), 0);
	assert_string_equal(canon, "backend add 10.0.0.6:8080 vip=web");
	lb_model_free(&m);
}

static void test_refused_changes_nothing(void **st)
{
	static const struct {
		const char *stmt, *says;
		int err;
	} cases[] = {
		{ "backend add 10.0.0.4:8080", "say which with vip=NAME", -ENOENT },
		{ "backend add 10.0.0.4:8080 vip=nope", "vip=nope: no such VIP", -ENOENT },
		{ "backend add 10.0.0.2:8080 vip=web", "already a backend of web", -EEXIST },
		{ "backend add [2001:db8::9]:80 vip=web", "VIP web is IPv4", -EINVAL },
		{ "backend set 10.0.0.2:8080 weight=70000 vip=web", "weight must be 0..65535", -EINVAL },
		{ "backend set 10.0.0.2:8080 vip=web", "nothing to set", -EINVAL },
		{ "backend del 10.0.0.9:8080 vip=web", "not a backend of web", -ENOENT },
		{ "vip add web 198.51.100.9:80", "web already serves", -EEXIST },
		{ "vip add other 198.51.100.1:80", "web already serves", -EEXIST },
		{ "vip add bad/name 198.51.100.9:80", "VIP names are", -EINVAL },
		{ "vip add x 198.51.100.9:80 forward=local", "forward is nat, dsr, ipip or gue", -EINVAL },
		{ "vip del nope", "no such VIP", -ENOENT },
		{ "route add 1.2.3.4", "not a runtime statement", -EINVAL },
	};
	char canon[LB_MODEL_STMT_MAX], err[256];
	struct lb_model m;

	(void)st;
	assert_int_equal(lb_model_build(&cf, NULL, 0, NULL, &m), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = stmt(&m, cases[i].stmt, canon, err);

		if (rc != cases[i].err || !strstr(err, cases[i].says))
			fail_msg("'%s': %d '%s', want %d '%s'", cases[i].stmt, rc, err, cases[i].err,
				 cases[i].says);
		assert_int_equal(m.n, 2);
		assert_int_equal(lb_model_find_vip(&m, "web")->nbe, 2);
		assert_int_equal(be(&m, "web", "10.0.0.2:8080")->c.weight, 1);
	}
	/* limits: max_backends 3, max_vips 3 */
	assert_int_equal(stmt(&m, "backend add 10.0.0.4:8080 vip=web", canon, err), 0);
	assert_int_equal(stmt(&m, "backend add 10.0.0.5:8080 vip=web", canon, err), -E2BIG);
	assert_non_null(strstr(err, "max_backends 3"));
	assert_int_equal(stmt(&m, "vip add a 198.51.100.7:80", canon, err), 0);
	assert_int_equal(stmt(&m, "vip add b 198.51.100.8:80", canon, err), -E2BIG);
	assert_non_null(strstr(err, "max_vips 3"));
	assert_int_equal(m.n, 3);
	lb_model_free(&m);
}

static void test_same_key_and_keep_local(void **st)
{
	struct lb_vip_conf a = { 0 }, b = { 0 };
	struct lb_backend_conf bc = { 0 };
	struct lb_model nm, om = { 0 };
	struct lb_model_vip *v;

	(void)st;
	assert_int_equal(lb_endpoint_parse("198.51.100.1:80", &a.listen), 0);
	b = a;
	a.proto = b.proto = IPPROTO_TCP;
	assert_true(lb_model_same_key(&a, &b));
	b.proto = IPPROTO_UDP;
	assert_false(lb_model_same_key(&a, &b));

	/* a local VIP keeps the instances the last lbd left (pinned) until
	 * the supervisor has adopted them; other VIPs do not */
	assert_int_equal(lb_model_build(&cf, NULL, 0, NULL, &nm), 0);
	lb_model_find_vip(&nm, "web")->c.forward = LB_FWD_LOCAL;
	snprintf(a.name, sizeof(a.name), "web");
	assert_int_equal(lb_model_add_vip(&om, &a, &v), 0);
	assert_int_equal(lb_endpoint_parse("198.51.100.1:3000", &bc.ep), 0);
	assert_int_equal(lb_model_add_be(v, &bc), 0);
	snprintf(a.name, sizeof(a.name), "six");
	assert_int_equal(lb_model_add_vip(&om, &a, &v), 0);
	assert_int_equal(lb_model_add_be(v, &bc), 0);
	lb_model_keep_local(&nm, &om);
	assert_non_null(be(&nm, "web", "198.51.100.1:3000"));
	assert_int_equal(lb_model_find_vip(&nm, "six")->nbe, 1);
	lb_model_free(&nm);
	lb_model_free(&om);
}

static void test_check(void **st)
{
	/* accepted and refused statements alike: the rules hold throughout */
	char *ok[] = { "backend add 10.0.0.4:8080 weight=3 vip=web",
		       "backend set 10.0.0.2:8080 state=down vip=web",
		       "vip add api 198.51.100.2:8443 method=round_robin",
		       "backend add 10.0.0.5:8443 vip=api", "backend add 10.0.0.5:8443 vip=api",
		       "vip del six", "nonsense" };
	char err[256];

	(void)st;
	assert_int_equal(lb_model_check(&cf, ok, 7, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_build_replays_leniently),
		T(test_canonical_form),
		T(test_refused_changes_nothing),
		T(test_same_key_and_keep_local),
		T(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
