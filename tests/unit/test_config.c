// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* config.c: lbd.conf grammar, validation messages, includes, control words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* ---------------------------------------------------------------- helpers */

struct errs {
	char text[8192]; /* every message, each followed by "\n" */
	int n;
};

static void collect(void *ctx, const char *msg)
{
	struct errs *e = ctx;
	size_t len = strlen(e->text);

	snprintf(e->text + len, sizeof(e->text) - len, "%s\n", msg);
	e->n++;
}

static int parse(const char *text, struct lb_conf *cfg, struct errs *e)
{
	memset(e, 0, sizeof(*e));
	return lb_config_parse_string("t.conf", text, cfg, collect, e);
}

/* Parses text that must fail with exactly `want` (messages joined by "\n"). */
static void expect_errors(const char *text, const char *want)
{
	struct lb_conf cfg;
	struct errs e;
	char w[8192];

	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(parse(text, &cfg, &e), -EINVAL);
	snprintf(w, sizeof(w), "%s\n", want);
	assert_string_equal(e.text, w);
	/* *cfg is never written on failure. */
	for (size_t i = 0; i < sizeof(cfg); i++)
		assert_int_equal(((unsigned char *)&cfg)[i], 0xa5);
}

static void parse_ok(const char *text, struct lb_conf *cfg)
{
	struct errs e;
	int rc = parse(text, cfg, &e);

	if (rc)
		fprintf(stderr, "unexpected errors:\n%s", e.text);
	assert_int_equal(rc, 0);
	assert_int_equal(e.n, 0);
}

static struct lb_endpoint ep(const char *s)
{
	struct lb_endpoint r;

	assert_int_equal(lb_endpoint_parse(s, &r), 0);
	return r;
}

static void assert_ep(const struct lb_endpoint *got, const char *want)
{
	struct lb_endpoint w = ep(want);

	assert_true(lb_endpoint_eq(got, &w));
}

static const char issue4[] =
	"lbd {\n"
	"    interfaces eth0;            # one or more\n"
	"    mode auto;                  # auto | xdp | xdp-generic | tc | proxy\n"
	"    control /run/lbd/lbd.sock;\n"
	"    state_dir /var/lib/lbd;\n"
	"    hash_seed 0x5eed;\n"
	"    metrics 127.0.0.1:9464;     # Prometheus text format over HTTP\n"
	"}\n"
	"vip web {\n"
	"    listen 198.18.0.10:80;      # add \"udp\" for UDP; [v6]:port for IPv6\n"
	"    method maglev;              # ip_hash | round_robin | least_conn\n"
	"    forward nat;                # dsr | local\n"
	"    snat 198.18.0.254;          # default: the egress interface's address\n"
	"    backend 198.18.1.2:3000 weight=1;\n"
	"    backend 198.18.1.3:3000 weight=5;\n"
	"}\n";

static void check_issue4(const struct lb_conf *c)
{
	const struct lb_vip_conf *v;
	union lb_addr snat = { 0 };

	assert_int_equal(c->ninterfaces, 1);
	assert_string_equal(c->interfaces[0], "eth0");
	assert_int_equal(c->mode, LB_ATTACH_AUTO);
	assert_string_equal(c->control, "/run/lbd/lbd.sock");
	assert_string_equal(c->state_dir, "/var/lib/lbd");
	assert_int_equal(c->hash_seed, 0x5eed);
	assert_true(c->metrics_set);
	assert_ep(&c->metrics, "127.0.0.1:9464");
	assert_int_equal(c->nvips, 1);
	assert_int_equal(c->nworkers, 0);
	v = &c->vips[0];
	assert_ptr_equal(lb_config_vip(c, "web"), v);
	assert_null(lb_config_vip(c, "api"));
	assert_string_equal(v->name, "web");
	assert_ep(&v->listen, "198.18.0.10:80");
	assert_int_equal(v->proto, IPPROTO_TCP);
	assert_int_equal(v->method, LB_METHOD_MAGLEV);
	assert_int_equal(v->forward, LB_FWD_NAT);
	assert_true(v->snat_set);
	inet_pton(AF_INET, "198.18.0.254", &snat.v4);
	assert_memory_equal(v->snat.b, snat.b, 16);
	assert_int_equal(v->health.type, LB_HC_NONE);
	assert_int_equal(v->slow_start_ms, 0);
	assert_int_equal(v->max_conns, 0);
	assert_int_equal(v->nbackends, 2);
	assert_ep(&v->backends[0].ep, "198.18.1.2:3000");
	assert_ep(&v->backends[1].ep, "198.18.1.3:3000");
	assert_int_equal(v->backends[0].weight, 1);
	assert_int_equal(v->backends[1].weight, 5);
	for (int i = 0; i < 2; i++) {
		const struct lb_backend_conf *b = &v->backends[i];

		assert_int_equal(b->max_fails, 1);
		assert_int_equal(b->fail_timeout_ms, 10000);
		assert_int_equal(b->health_check, LB_HC_INHERIT);
		assert_false(b->backup);
		assert_int_equal(b->state, LB_BE_UP);
		assert_string_equal(b->vip, "");
	}
}

/* ------------------------------------------------------------- good input */

static void test_issue4_example(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok(issue4, &c);
	check_issue4(&c);
	lb_config_free(&c);
}

/* examples/lbd.conf is the issue's text, byte for byte, and parses the same. */
static void test_issue4_example_file(void **state)
{
	struct lb_conf c;
	struct errs e = { 0 };
	char text[sizeof(issue4) + 16] = "";
	FILE *f = fopen("examples/lbd.conf", "r");
	size_t n;

	(void)state;
	if (!f)
		fail_msg("examples/lbd.conf: run from the repository root (tests/run.sh does)");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_string_equal(text, issue4);
	assert_int_equal(lb_config_load("examples/lbd.conf", &c, collect, &e), 0);
	check_issue4(&c);
	lb_config_free(&c);
}

/* Every shipped example is a valid config. */
static void test_examples_parse(void **state)
{
	glob_t g;
	int bad = 0;

	(void)state;
	assert_int_equal(glob("examples/*.conf", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 4);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct lb_conf c;
		struct errs e = { 0 };

		if (lb_config_load(g.gl_pathv[i], &c, collect, &e)) {
			fprintf(stderr, "%s", e.text);
			bad++;
			continue;
		}
		assert_true(c.nvips >= 1);
		lb_config_free(&c);
	}
	globfree(&g);
	assert_int_equal(bad, 0);
}

static void test_defaults(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("# nothing but a comment\n", &c);
	assert_int_equal(c.ninterfaces, 0);
	assert_int_equal(c.mode, LB_ATTACH_AUTO);
	assert_string_equal(c.control, "/run/lbd/lbd.sock");
	assert_string_equal(c.control_group, "");
	assert_string_equal(c.state_dir, "/var/lib/lbd");
	assert_string_equal(c.bpffs, "/sys/fs/bpf/lbd");
	assert_string_equal(c.pid_file, "/run/lbd/lbd.pid");
	assert_int_equal(c.hash_seed, LB_CONF_DEFAULT_HASH_SEED);
	assert_false(c.metrics_set);
	assert_int_equal(c.conntrack_size, LB_CT_DEFAULT_SIZE);
	assert_int_equal(c.conntrack_new_size, LB_CT_NEW_DEFAULT_SIZE);
	assert_int_equal(c.ct_timeout_tcp, LB_CT_TCP_TIMEOUT);
	assert_int_equal(c.ct_timeout_udp, LB_CT_UDP_TIMEOUT);
	assert_int_equal(c.ct_timeout_closed, LB_CT_CLOSED_TIMEOUT);
	assert_int_equal(c.maglev_size, LB_MAGLEV_DEFAULT_SIZE);
	assert_int_equal(c.snat_port_lo, LB_SNAT_PORT_LO);
	assert_int_equal(c.snat_port_hi, LB_SNAT_PORT_HI);
	assert_int_equal(c.log_level, LB_LOG_INFO);
	assert_false(c.keep_caps);
	assert_int_equal(c.max_vips, LB_MAX_VIPS);
	assert_int_equal(c.max_backends, LB_CONF_MAX_BACKENDS);
	assert_int_equal(c.control_max_request, 64 * 1024);
	assert_int_equal(c.control_max_clients, 256);
	assert_int_equal(c.health_concurrency, 256);
	assert_int_equal(c.nvips, 0);
	assert_null(c.vips);
	lb_config_free(&c);
}

static void test_lbd_block_all(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("lbd {\n"
		 "  interfaces eth0 eth1;\n"
		 "  interfaces veth-lb0;\n"
		 "  mode xdp-generic;\n"
		 "  control /tmp/x.sock; control_group lbd;\n"
		 "  state_dir /tmp/s; bpffs /sys/fs/bpf/lbd2; pid_file /tmp/p.pid;\n"
		 "  hash_seed 4294967295;\n"
		 "  metrics [::1]:9464;\n"
		 "  conntrack_size 1M;\n"
		 "  conntrack_new_size 2k; conntrack_timeout udp=1m closed=5s tcp=2h;\n"
		 "  maglev_size 251;\n"
		 "  snat_ports 20000-29999;\n"
		 "  log_level debug;\n"
		 "  capabilities keep;\n"
		 "  max_vips 10; max_backends 20; control_max_request 2048;\n"
		 "  control_max_clients 8; health_concurrency 0;\n"
		 "  proxy_workers 3;\n"
		 "}\n", &c);
	assert_int_equal(c.ninterfaces, 3);
	assert_string_equal(c.interfaces[2], "veth-lb0");
	assert_int_equal(c.mode, LB_ATTACH_XDP_GENERIC);
	assert_string_equal(c.control, "/tmp/x.sock");
	assert_string_equal(c.control_group, "lbd");
	assert_string_equal(c.state_dir, "/tmp/s");
	assert_string_equal(c.bpffs, "/sys/fs/bpf/lbd2");
	assert_string_equal(c.pid_file, "/tmp/p.pid");
	assert_int_equal(c.hash_seed, 0xffffffffu);
	assert_ep(&c.metrics, "[::1]:9464");
	assert_int_equal(c.conntrack_size, 1 << 20);
	assert_int_equal(c.conntrack_new_size, 2048);
	assert_int_equal(c.ct_timeout_tcp, 7200);
	assert_int_equal(c.ct_timeout_udp, 60);
	assert_int_equal(c.ct_timeout_closed, 5);
	assert_int_equal(c.maglev_size, 251);
	assert_int_equal(c.snat_port_lo, 20000);
	assert_int_equal(c.snat_port_hi, 29999);
	assert_int_equal(c.log_level, LB_LOG_DEBUG);
	assert_true(c.keep_caps);
	assert_int_equal(c.max_vips, 10);
	assert_int_equal(c.max_backends, 20);
	assert_int_equal(c.control_max_request, 2048);
	assert_int_equal(c.control_max_clients, 8);
	assert_int_equal(c.health_concurrency, 0);
	assert_int_equal(c.proxy_workers, 3);
	lb_config_free(&c);
}

/* The userspace proxy's timeouts per VIP; a UDP VIP has idle= only. */
static void test_vip_timeouts(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("vip v { listen 1.2.3.4:80; timeout connect=500ms idle=10m fin=20s; }\n"
		 "vip u { listen 1.2.3.4:53 udp; timeout idle=45s; }\n"
		 "vip d { listen 1.2.3.4:81; }\n", &c);
	assert_int_equal(c.vips[0].timeout_connect_ms, 500);
	assert_int_equal(c.vips[0].timeout_idle_ms, 600000);
	assert_int_equal(c.vips[0].timeout_fin_ms, 20000);
	assert_int_equal(c.vips[1].timeout_idle_ms, 45000);
	assert_int_equal(c.vips[1].timeout_connect_ms, 0);
	assert_int_equal(c.vips[2].timeout_connect_ms + c.vips[2].timeout_idle_ms +
			 c.vips[2].timeout_fin_ms, 0);
	lb_config_free(&c);
}

/* forward ipip/gue: the node's outer source per family, the GUE port. */
static void test_encap(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("lbd { }\nvip v { listen 1.2.3.4:80; forward gue; backend 10.0.0.2:80; }\n", &c);
	assert_int_equal(c.gue_port, LB_GUE_DEFAULT_PORT);
	assert_false(c.encap_src4_set || c.encap_src6_set);
	assert_int_equal(c.vips[0].forward, LB_FWD_GUE);
	lb_config_free(&c);
	parse_ok("lbd { encap_source 2001:db8::1 198.18.0.254; gue_port 5555; }\n", &c);
	assert_int_equal(c.gue_port, 5555);
	assert_true(c.encap_src4_set && c.encap_src6_set);
	assert_int_equal(c.encap_src4.v4, htonl(0xc61200fe));
	assert_int_equal(c.encap_src6.b[15], 1);
	lb_config_free(&c);
	expect_errors("lbd { encap_source 1.2.3.4 5.6.7.8; }\n",
		      "t.conf:1: encap_source \"5.6.7.8\": one address per family");
	expect_errors("lbd { encap_source 1.2.3; }\n",
		      "t.conf:1: invalid encap_source address \"1.2.3\"");
	expect_errors("lbd {\n gue_port 65536;\n}\n",
		      "t.conf:2: invalid gue_port \"65536\" (expected 1..65535)");
	expect_errors("vip v {\n listen 1.2.3.4:80;\n forward ipip;\n backend 10.0.0.2:8080;\n}\n",
		      "t.conf:4: backend port 8080 differs from listen port 80: forward ipip cannot rewrite ports");
	expect_errors("vip v {\n listen 1.2.3.4:80;\n forward gue;\n snat 1.2.3.5;\n}\n",
		      "t.conf:4: snat needs forward nat (vip \"v\" uses gue)");
}

static void test_proxy_workers(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("lbd { proxy_workers auto; }\n", &c);
	assert_int_equal(c.proxy_workers, 0);
	lb_config_free(&c);
	expect_errors("lbd {\n proxy_workers 0;\n}\n",
		      "t.conf:2: invalid proxy_workers \"0\" (expected auto or 1..256)");
	expect_errors("lbd { proxy_workers 257; }\n",
		      "t.conf:1: invalid proxy_workers \"257\" (expected auto or 1..256)");
	expect_errors("lbd { proxy_workers two; }\n",
		      "t.conf:1: invalid proxy_workers \"two\" (expected auto or 1..256)");
}

static void test_bgp_block(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("lbd {\n bgp {\n  router_id 198.18.10.11;\n  local_as 4200000001;\n"
		 "  neighbor 198.18.10.1 as=65000 bfd=off;\n  neighbor 2001:db8::1 as=65000;\n"
		 "  bfd on;\n  bfd_interval 50ms;\n  bfd_multiplier 4;\n"
		 "  community 65001:100 65535:1;\n  community 1:2;\n  next_hop_self off;\n"
		 "  source 198.18.10.11;\n  bird_binary /usr/sbin/bird;\n  bird_dir /run/x;\n"
		 "  bird_socket /run/x.ctl;\n  drain_grace 0;\n  drain_quiet 3s;\n  stop_drain 0;\n"
		 "  sync_peer 198.18.10.12;\n  sync_peer 2001:db8::12;\n  sync_port 7000;\n"
		 " }\n}\n", &c);
	assert_int_equal(c.bgp.nsync_peers, 2);
	assert_int_equal(c.bgp.sync_port, 7000);
	assert_int_equal(c.bgp.sync_peers[1].family, LB_AF_INET6);
	assert_true(c.bgp.set);
	assert_int_equal(c.bgp.router_id, htonl(0xc6120a0b));
	assert_int_equal(c.bgp.local_as, 4200000001u);
	assert_int_equal(c.bgp.nnb, 2);
	assert_int_equal(c.bgp.nb[0].bfd, 0);
	assert_int_equal(c.bgp.nb[1].bfd, -1);
	assert_int_equal(c.bgp.nb[1].family, LB_AF_INET6);
	assert_true(c.bgp.bfd);
	assert_int_equal(c.bgp.bfd_interval_ms, 50);
	assert_int_equal(c.bgp.bfd_multiplier, 4);
	assert_int_equal(c.bgp.ncommunities, 3);
	assert_int_equal(c.bgp.communities[1], 0xffff0001u);
	assert_false(c.bgp.next_hop_self);
	assert_true(c.bgp.source_set);
	assert_string_equal(c.bgp.bird, "/usr/sbin/bird");
	assert_string_equal(c.bgp.dir, "/run/x");
	assert_string_equal(c.bgp.socket, "/run/x.ctl");
	assert_int_equal(c.bgp.drain_grace_ms, 0);
	assert_int_equal(c.bgp.drain_quiet_ms, 3000);
	assert_int_equal(c.bgp.stop_drain_ms, 0);
	lb_config_free(&c);
	/* without the block: off, with the defaults a block would get */
	parse_ok("lbd { }\n", &c);
	assert_false(c.bgp.set);
	assert_int_equal(c.bgp.drain_grace_ms, 2000);
	assert_int_equal(c.bgp.stop_drain_ms, 10000);
	assert_string_equal(c.bgp.dir, "/run/lbd/bird");
	assert_int_equal(c.bgp.sync_port, 6934);
	assert_int_equal(c.bgp.nsync_peers, 0);
	lb_config_free(&c);
	expect_errors("lbd {\n bgp {\n  router_id 1.2.3.4;\n  local_as 1;\n  neighbor 10.0.0.1 as=2;\n"
		      "  sync_peer 10.0.0.2;\n  sync_peer 10.0.0.2;\n  sync_peer x;\n  sync_port 0;\n }\n}\n",
		      "t.conf:7: duplicate sync_peer 10.0.0.2\n"
		      "t.conf:8: invalid sync_peer \"x\" (expected an IPv4 or IPv6 address)\n"
		      "t.conf:9: invalid sync_port \"0\" (expected 1..65535)");
}

static void test_listen_forms(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("vip a { listen 198.18.0.10:80; }\n"
		 "vip b { listen 198.18.0.10:53 udp; }\n"
		 "vip c { listen [2001:2::10]:80; backend [2001:2::1:2]:3000; }\n"
		 "vip d { listen 198.18.0.10:80 udp; }\n" /* same port, other proto */
		 "vip e { listen 198.18.0.11:*; forward dsr; backend 198.18.1.2:443; }\n",
		 &c);
	assert_int_equal(c.nvips, 5);
	assert_int_equal(c.vips[0].proto, IPPROTO_TCP);
	assert_int_equal(c.vips[1].proto, IPPROTO_UDP);
	assert_int_equal(c.vips[1].listen.port, htons(53));
	assert_int_equal(c.vips[2].listen.family, LB_AF_INET6);
	assert_ep(&c.vips[2].listen, "[2001:2::10]:80");
	assert_int_equal(c.vips[3].proto, IPPROTO_UDP);
	assert_int_equal(c.vips[4].listen.port, 0);
	assert_int_equal(c.vips[4].listen.family, LB_AF_INET);
	assert_int_equal(c.vips[4].forward, LB_FWD_DSR);
	lb_config_free(&c);
}

static void test_proxy_protocol(void **state)
{
	struct lb_conf c;

	(void)state;
	parse_ok("vip a { listen 198.18.0.10:80; proxy_protocol v2; }\n"
		 "vip b { listen [2001:2::10]:80; proxy_protocol v2; }\n"
		 "vip d { listen 198.18.0.10:82; proxy_protocol off; }\n"
		 "vip c { listen 198.18.0.10:81; }\n", &c);
	assert_true(c.vips[0].proxy_protocol);
	assert_true(c.vips[1].proxy_protocol);
	assert_false(c.vips[3].proxy_protocol);
	assert_false(c.vips[2].proxy_protocol);
	lb_config_free(&c);
}

static void test_issue5_health(void **state)
{
	struct lb_conf c;
	const struct lb_vip_conf *v;
	const struct lb_health_conf *h;

	(void)state;
	parse_ok("vip web {\n"
		 "    listen 198.18.0.10:80;\n"
		 "    health_check http interval=2s timeout=1s rise=2 fall=3 uri=/ status=200-399;\n"
		 "    slow_start 30s;\n"
		 "    backend 198.18.1.2:3000 weight=1 max_fails=3 fail_timeout=10s;\n"
		 "    backend 198.18.1.3:3000 weight=1 health_check=tcp;\n"
		 "    backend 198.18.1.9:3000 backup;\n"
		 "}\n", &c);
	v = &c.vips[0];
	h = &v->health;
	assert_int_equal(h->type, LB_HC_HTTP);
	assert_int_equal(h->interval_ms, 2000);
	assert_int_equal(h->timeout_ms, 1000);
	assert_int_equal(h->jitter_ms, 0);
	assert_int_equal(h->rise, 2);
	assert_int_equal(h->fall, 3);
	assert_int_equal(h->port, 0);
	assert_string_equal(h->uri, "/");
	assert_string_equal(h->method, "GET");
	assert_string_equal(h->host, "");
	assert_int_equal(h->nstatus, 1);
	assert_int_equal(h->status[0].lo, 200);
	assert_int_equal(h->status[0].hi, 399);
	assert_int_equal(v->slow_start_ms, 30000);
	assert_int_equal(v->nbackends, 3);
	assert_int_equal(v->backends[0].max_fails, 3);
	assert_int_equal(v->backends[0].fail_timeout_ms, 10000);
	assert_int_equal(v->backends[1].health_check, LB_HC_TCP);
	assert_true(v->backends[2].backup);
	assert_int_equal(v->backends[2].weight, 1);
	lb_config_free(&c);
}

static void test_health_full(void **state)
{
	struct lb_conf c;
	const struct lb_health_conf *h;

	(void)state;
	parse_ok("vip web { listen 198.18.0.10:80;\n"
		 " health_check http interval=500ms jitter=100ms port=8080 method=HEAD"
		 " host=example.org uri=\"/health?x=1\" status=200,204-206 status=301"
		 " \"expect=Here we are\";\n"
		 "}\n"
		 "vip dns { listen 198.18.0.10:53 udp;\n"
		 " health_check udp send=\"PING\\n\" expect=PONG interval=5s;\n"
		 "}\n", &c);
	h = &c.vips[0].health;
	assert_int_equal(h->interval_ms, 500);
	assert_int_equal(h->timeout_ms, 500); /* min(interval, 1s) */
	assert_int_equal(h->jitter_ms, 100);
	assert_int_equal(h->port, 8080);
	assert_string_equal(h->method, "HEAD");
	assert_string_equal(h->host, "example.org");
	assert_string_equal(h->uri, "/health?x=1");
	assert_int_equal(h->nstatus, 3);
	assert_int_equal(h->status[0].lo, 200);
	assert_int_equal(h->status[0].hi, 200);
	assert_int_equal(h->status[1].lo, 204);
	assert_int_equal(h->status[1].hi, 206);
	assert_int_equal(h->status[2].lo, 301);
	assert_string_equal(h->expect, "Here we are");
	h = &c.vips[1].health;
	assert_int_equal(h->type, LB_HC_UDP);
	assert_string_equal(h->send, "PING\n");
	assert_string_equal(h->expect, "PONG");
	assert_int_equal(h->timeout_ms, 1000);
	lb_config_free(&c);
}

static void test_issue6_worker(void **state)
{
	struct lb_conf c;
	const struct lb_worker_conf *w;

	(void)state;
	parse_ok("vip web { listen 198.18.0.10:80; forward local; }\n"
		 "worker app {\n"
		 "    command node examples/app.js;   # argv, no shell\n"
		 "    instances auto;                 # auto = cores - 1 (at least 1) | max | N | -N\n"
		 "    port 3000;                      # instance i gets PORT=3000+i\n"
		 "    vip web;                        # ready instances become `local` backends\n"
		 "    ready tcp;                      # ready when it accepts on its port | notify\n"
		 "    env NODE_ENV=production;\n"
		 "    user app; cwd /srv/app;\n"
		 "    min_uptime 1s; max_restarts 16; restart_delay 100ms;\n"
		 "    kill_timeout 2s; max_memory 300M;\n"
		 "    log /var/log/lbd/app-%i.log;    # stdout+stderr, rotated: size and keep\n"
		 "}\n", &c);
	assert_int_equal(c.nworkers, 1);
	w = &c.workers[0];
	assert_string_equal(w->name, "app");
	assert_int_equal(w->argc, 2);
	assert_string_equal(w->argv[0], "node");
	assert_string_equal(w->argv[1], "examples/app.js");
	assert_null(w->argv[2]);
	assert_int_equal(w->instances, LB_INST_AUTO);
	assert_int_equal(w->port, 3000);
	assert_string_equal(w->vip, "web");
	assert_int_equal(w->ready, LB_READY_TCP);
	assert_int_equal(w->nenv, 1);
	assert_string_equal(w->env[0], "NODE_ENV=production");
	assert_null(w->env[1]);
	assert_string_equal(w->user, "app");
	assert_string_equal(w->cwd, "/srv/app");
	assert_int_equal(w->min_uptime_ms, 1000);
	assert_int_equal(w->max_restarts, 16);
	assert_int_equal(w->restart_delay_ms, 100);
	assert_int_equal(w->kill_timeout_ms, 2000);
	assert_int_equal(w->max_memory, 300ull << 20);
	assert_string_equal(w->log, "/var/log/lbd/app-%i.log");
	assert_int_equal(w->log_max_size, 0);
	assert_int_equal(w->log_keep, 5);
	lb_config_free(&c);
}

static void test_worker_defaults(void **state)
{
	struct lb_conf c;
	const struct lb_worker_conf *w;

	(void)state;
	parse_ok("worker a { command /bin/sleep 100; }\n"
		 "worker b { command x; instances -2; port 4000; env A=1 B=2; env C=; "
		 "log_max_size 10M; log_keep 3; ready notify; }\n"
		 "worker c { command x; instances max; }\n"
		 "worker d { command x; instances 6; }\n", &c);
	assert_int_equal(c.nworkers, 4);
	w = &c.workers[0];
	assert_int_equal(w->instances, LB_INST_AUTO);
	assert_int_equal(w->ready, LB_READY_NONE); /* no port */
	assert_int_equal(w->min_uptime_ms, 1000);
	assert_int_equal(w->max_restarts, 16);
	assert_int_equal(w->restart_delay_ms, 100);
	assert_int_equal(w->kill_timeout_ms, 1600);
	assert_int_equal(w->max_memory, 0);
	assert_null(w->env);
	assert_int_equal(w->nenv, 0);
	w = &c.workers[1];
	assert_int_equal(w->instances, LB_INST_LESS);
	assert_int_equal(w->instances_n, 2);
	assert_int_equal(w->ready, LB_READY_NOTIFY);
	assert_int_equal(w->nenv, 3);
	assert_string_equal(w->env[2], "C=");
	assert_int_equal(w->log_max_size, 10 << 20);
	assert_int_equal(w->log_keep, 3);
	assert_int_equal(c.workers[2].instances, LB_INST_MAX);
	assert_int_equal(c.workers[3].instances, LB_INST_COUNT);
	assert_int_equal(c.workers[3].instances_n, 6);
	lb_config_free(&c);
}

static void test_worker_instances(void **state)
{
	struct lb_worker_conf w = { .instances = LB_INST_AUTO };

	(void)state;
	assert_int_equal(lb_worker_instances(&w, 8), 7);
	assert_int_equal(lb_worker_instances(&w, 1), 1);
	assert_int_equal(lb_worker_instances(&w, 0), 1);
	w.instances = LB_INST_MAX;
	assert_int_equal(lb_worker_instances(&w, 8), 8);
	w.instances = LB_INST_COUNT;
	w.instances_n = 3;
	assert_int_equal(lb_worker_instances(&w, 2), 3);
	w.instances = LB_INST_LESS;
	assert_int_equal(lb_worker_instances(&w, 8), 5);
	assert_int_equal(lb_worker_instances(&w, 2), 1);
}

static void test_lexer_quotes_comments(void **state)
{
	struct lb_conf c;

	(void)state;
	/* Quotes, glued segments, escapes, '#' inside a word, no spaces before
	 * braces, statements on one line. */
	parse_ok("vip 'web'{listen \"198.18.0.10\":80;backend 198.18.1.2:3000 'weight'=2;}#end\n"
		 "worker w\n{ command \"/bin/echo\"#x 'a b' \"c\\\"d\" e\\;f \"t\\tx\" \"\" ; }\n",
		 &c);
	assert_string_equal(c.vips[0].name, "web");
	assert_int_equal(c.vips[0].backends[0].weight, 2);
	assert_string_equal(c.workers[0].name, "w");
	assert_string_equal(c.workers[0].argv[0], "/bin/echo#x");
	assert_int_equal(c.workers[0].argc, 6);
	assert_string_equal(c.workers[0].argv[1], "a b");
	assert_string_equal(c.workers[0].argv[2], "c\"d");
	assert_string_equal(c.workers[0].argv[3], "e;f");
	assert_string_equal(c.workers[0].argv[4], "t\tx");
	assert_string_equal(c.workers[0].argv[5], "");
	lb_config_free(&c);
}

/* ------------------------------------------------------------ error cases */

struct err_case {
	const char *name;
	const char *text;
	const char *want;
};

#define V4 "vip web {\n listen 198.18.0.10:80;\n"

static const struct err_case err_cases[] = {
	{ "unknown_method", V4 " method fastest;\n}\n",
	  "t.conf:3: unknown method \"fastest\" (expected maglev, ip_hash, round_robin, least_conn)" },
	{ "unknown_forward", V4 " forward tunnel;\n}\n",
	  "t.conf:3: unknown forward mode \"tunnel\" (expected nat, dsr, local, ipip, gue)" },
	{ "unknown_mode", "lbd {\n mode turbo;\n}\n",
	  "t.conf:2: unknown mode \"turbo\" (expected auto, xdp, xdp-generic, tc, proxy)" },
	{ "unknown_log_level", "lbd { log_level loud; }\n",
	  "t.conf:1: unknown log_level \"loud\" (expected error, warn, info, debug)" },
	{ "unknown_capabilities", "lbd { capabilities some; }\n",
	  "t.conf:1: unknown capabilities \"some\" (expected drop, keep)" },
	{ "max_vips_zero", "lbd { max_vips 0; }\n",
	  "t.conf:1: invalid max_vips \"0\" (expected 1..1024)" },
	{ "max_backends_big", "lbd { max_backends 5000; }\n",
	  "t.conf:1: invalid max_backends \"5000\" (expected 1..4096)" },
	{ "control_max_request_small", "lbd { control_max_request 100; }\n",
	  "t.conf:1: invalid control_max_request \"100\" (expected 1024..16777216)" },
	{ "over_max_vips", "lbd { max_vips 1; }\n" V4 "}\nvip two {\n listen 198.18.0.11:80;\n}\n",
	  "t.conf:5: vip \"two\" is one more than max_vips 1" },
	{ "over_max_backends", V4 " backend 198.18.1.2:80;\n backend 198.18.1.3:80;\n}\n"
	  "lbd { max_backends 1; }\n",
	  "t.conf:1: vip \"web\" has 2 backends, more than max_backends 1" },
	{ "bgp_errors", "lbd {\n bgp {\n  router_id 2001:db8::1;\n  local_as 0;\n"
	  "  neighbor 198.18.10.1 as=65000 bfd=yes;\n  neighbor 198.18.10.2;\n"
	  "  neighbor 198.18.10.3 as=1 ttl=2;\n  community 1:2 65536:1;\n  bfd_interval 5ms;\n"
	  "  bird internal;\n  drain_quiet 0;\n  peer x;\n }\n bgp;\n}\n",
	  "t.conf:3: invalid router_id \"2001:db8::1\" (expected an IPv4 address)\n"
	  "t.conf:4: invalid local_as \"0\" (expected 1..4294967295)\n"
	  "t.conf:5: invalid neighbor option \"bfd=yes\" (expected bfd=on or bfd=off)\n"
	  "t.conf:6: neighbor 198.18.10.2 needs its AS: neighbor ADDR as=N\n"
	  "t.conf:7: unknown neighbor option \"ttl=2\" (expected as=N, bfd=on|off)\n"
	  "t.conf:8: invalid community \"65536:1\" (expected ASN:VALUE, 0..65535 each)\n"
	  "t.conf:9: invalid bfd_interval \"5ms\" (expected 10ms..60s)\n"
	  "t.conf:10: unknown bird \"internal\" (expected own, external)\n"
	  "t.conf:11: invalid drain_quiet \"0\" (expected a duration above 0..1h such as 5s)\n"
	  "t.conf:12: unknown directive \"peer\" in bgp block\n"
	  "t.conf:14: \"bgp\" needs a block: bgp { ... }\n"
	  "t.conf:2: bgp block without router_id\n"
	  "t.conf:2: bgp block without local_as\n"
	  "t.conf:2: bgp block without a neighbor (or `bird external;`)" },
	{ "bgp_duplicates", "lbd {\n bgp {\n  router_id 1.2.3.4;\n  local_as 1;\n"
	  "  neighbor 10.0.0.1 as=2;\n  neighbor 10.0.0.1 as=3;\n  bird external;\n }\n"
	  " bgp {\n }\n}\n",
	  "t.conf:6: duplicate neighbor 10.0.0.1\n"
	  "t.conf:9: duplicate \"bgp\" block (first at t.conf:2)\n"
	  "t.conf:9: `bird external` needs bird_socket (the running BIRD's control socket)" },
	{ "unknown_top", "server {\n}\n",
	  "t.conf:1: unknown directive \"server\" (expected lbd, vip, worker, include)" },
	{ "unknown_top_stmt", "\nlisten 1.2.3.4:80;\n",
	  "t.conf:2: unknown directive \"listen\" (expected lbd, vip, worker, include)" },
	{ "unknown_vip_dir", V4 " proxy_pass x;\n}\n",
	  "t.conf:3: unknown directive \"proxy_pass\" in vip block" },
	{ "unknown_lbd_dir", "lbd {\n interface eth0;\n}\n",
	  "t.conf:2: unknown directive \"interface\" in lbd block" },
	{ "unknown_worker_dir", "worker a {\n command x;\n restart always;\n}\n",
	  "t.conf:3: unknown directive \"restart\" in worker block" },
	{ "nested_block", V4 " backend 1.2.3.4:5 { weight 1; }\n}\n",
	  "t.conf:3: \"backend\" does not take a block" },
	{ "lbd_without_block", "lbd;\n", "t.conf:1: \"lbd\" needs a block: lbd { ... }" },
	{ "vip_without_block", "vip web;\n", "t.conf:1: \"vip\" needs a block: vip NAME { ... }" },
	{ "vip_without_name", "vip {\n listen 1.2.3.4:80;\n}\n",
	  "t.conf:1: invalid number of arguments in \"vip\" (expected vip NAME { ... })" },
	{ "vip_bad_name", "vip \"we b\" {\n listen 1.2.3.4:80;\n}\n",
	  "t.conf:1: invalid vip name \"we b\" (letters, digits, \"_\", \"-\", \".\", at most 63)" },
	{ "args_count", V4 " method maglev ip_hash;\n}\n",
	  "t.conf:3: invalid number of arguments in \"method\"" },
	{ "duplicate_directive", V4 " method maglev;\n method ip_hash;\n}\n",
	  "t.conf:4: duplicate \"method\" (first at t.conf:3)" },
	{ "duplicate_lbd", "lbd { }\nlbd { }\n", "t.conf:2: duplicate \"lbd\" block (first at t.conf:1)" },
	{ "missing_listen", "vip web {\n backend 198.18.1.2:80;\n}\n",
	  "t.conf:1: vip \"web\" has no listen" },
	{ "duplicate_vip", "vip web { listen 1.2.3.4:80; }\nvip web { listen 1.2.3.4:81; }\n",
	  "t.conf:2: duplicate vip \"web\" (first at t.conf:1)" },
	{ "duplicate_listen", "vip a { listen 1.2.3.4:80; }\nvip b {\n listen 1.2.3.4:80 tcp;\n}\n",
	  "t.conf:3: listen address of vip \"b\" already used by vip \"a\" (t.conf:1)" },
	{ "duplicate_backend", V4 " backend 198.18.1.2:3000;\n backend 198.18.1.2:3000 weight=3;\n}\n",
	  "t.conf:4: duplicate backend \"198.18.1.2:3000\" (first at t.conf:3)" },
	{ "backend_family", V4 " backend [2001:db8::2]:80;\n}\n",
	  "t.conf:3: backend \"[2001:db8::2]:80\" is IPv6 but vip \"web\" listens on IPv4" },
	{ "backend_family_before_listen", "vip web {\n backend 1.2.3.4:80;\n listen [::1]:80;\n}\n",
	  "t.conf:2: backend \"1.2.3.4:80\" is IPv4 but vip \"web\" listens on IPv6" },
	{ "snat_family", V4 " snat 2001:db8::1;\n}\n",
	  "t.conf:3: snat address is IPv6 but vip \"web\" listens on IPv4" },
	{ "snat_bad", V4 " snat 1.2.3;\n}\n", "t.conf:3: invalid snat address \"1.2.3\"" },
	{ "snat_with_dsr", V4 " snat 1.2.3.4;\n forward dsr;\n}\n",
	  "t.conf:3: snat needs forward nat (vip \"web\" uses dsr)" },
	{ "dsr_port", V4 " forward dsr;\n backend 198.18.1.2:3000;\n}\n",
	  "t.conf:4: backend port 3000 differs from listen port 80: forward dsr cannot rewrite ports" },
	{ "weight_range", V4 " backend 198.18.1.2:3000 weight=70000;\n}\n",
	  "t.conf:3: invalid weight in \"weight=70000\" (expected 0..65535)" },
	{ "weight_missing_value", V4 " backend 198.18.1.2:3000 weight;\n}\n",
	  "t.conf:3: invalid weight in \"weight\" (expected 0..65535)" },
	{ "backend_port_0", V4 " backend 198.18.1.2:0;\n}\n",
	  "t.conf:3: invalid backend port in \"198.18.1.2:0\" (expected 1..65535)" },
	{ "backend_bad_addr", V4 " backend 198.18.1.300:80;\n}\n",
	  "t.conf:3: invalid backend address \"198.18.1.300:80\" (expected ADDR:PORT or [V6]:PORT)" },
	{ "backend_vip_in_file", V4 " backend 198.18.1.2:80 vip=web;\n}\n",
	  "t.conf:3: unknown backend option \"vip=web\"" },
	{ "backend_no_addr", V4 " backend;\n}\n", "t.conf:3: invalid number of arguments in \"backend\"" },
	{ "listen_port_0", "vip web {\n listen 198.18.0.10:0;\n}\n",
	  "t.conf:2: invalid listen port 0 in \"198.18.0.10:0\" (use ADDR:* for a wildcard-port VIP)\n"
	  "t.conf:1: vip \"web\" has no listen" },
	{ "listen_bad", "vip web {\n listen 198.18.0.10:65536;\n}\n",
	  "t.conf:2: invalid listen address \"198.18.0.10:65536\" (expected ADDR:PORT, [V6]:PORT or ADDR:*)\n"
	  "t.conf:1: vip \"web\" has no listen" },
	{ "listen_proto", "vip web {\n listen 198.18.0.10:80 sctp;\n}\n",
	  "t.conf:2: unknown protocol \"sctp\" (expected tcp, udp)\n"
	  "t.conf:1: vip \"web\" has no listen" },
	{ "ifname_long", "lbd {\n interfaces eth0 abcdefghijklmnop;\n}\n",
	  "t.conf:2: interface name \"abcdefghijklmnop\" too long (max 15 characters)" },
	{ "ifname_bad", "lbd { interfaces eth/0; }\n", "t.conf:1: invalid interface name \"eth/0\"" },
	{ "ifname_dup", "lbd { interfaces eth0;\n interfaces eth0; }\n",
	  "t.conf:2: duplicate interface \"eth0\"" },
	{ "too_many_ifaces", "lbd { interfaces a b c d e f g h i j k l m n o p q; }\n",
	  "t.conf:1: too many interfaces at \"q\" (max 16)" },
	{ "hc_rise_0", V4 " health_check tcp rise=0;\n}\n",
	  "t.conf:3: invalid health_check rise in \"rise=0\" (expected 1..1000)" },
	{ "hc_fall_0", V4 " health_check tcp fall=0;\n}\n",
	  "t.conf:3: invalid health_check fall in \"fall=0\" (expected 1..1000)" },
	{ "hc_timeout_gt_interval", V4 " health_check tcp interval=1s timeout=1500ms;\n}\n",
	  "t.conf:3: health_check \"timeout=1500ms\" exceeds the interval (1000 ms)" },
	{ "hc_interval_bad", V4 " health_check tcp interval=2x;\n}\n",
	  "t.conf:3: invalid health_check interval in \"interval=2x\" (expected a duration above 0 such as 2s)" },
	{ "hc_jitter", V4 " health_check tcp interval=1s jitter=1s;\n}\n",
	  "t.conf:3: health_check jitter must be below the interval (1000 ms)" },
	{ "hc_status_low", V4 " health_check http status=99-200;\n}\n",
	  "t.conf:3: invalid health_check status in \"status=99-200\" (expected LO-HI[,LO-HI...] within 100-599)" },
	{ "hc_status_high", V4 " health_check http status=200-600;\n}\n",
	  "t.conf:3: invalid health_check status in \"status=200-600\" (expected LO-HI[,LO-HI...] within 100-599)" },
	{ "hc_status_reversed", V4 " health_check http status=300-200;\n}\n",
	  "t.conf:3: invalid health_check status in \"status=300-200\" (expected LO-HI[,LO-HI...] within 100-599)" },
	{ "hc_uri_tcp", V4 " health_check tcp uri=/;\n}\n",
	  "t.conf:3: health_check option \"uri=/\" does not apply to tcp checks" },
	{ "hc_uri_relative", V4 " health_check http uri=health;\n}\n",
	  "t.conf:3: invalid health_check uri in \"uri=health\" (expected a path starting with \"/\", no spaces)" },
	{ "hc_method", V4 " health_check http method=get;\n}\n",
	  "t.conf:3: invalid health_check method in \"method=get\" (expected an upper-case HTTP method)" },
	{ "hc_port", V4 " health_check tcp port=0;\n}\n",
	  "t.conf:3: invalid health_check port in \"port=0\" (expected 1..65535)" },
	{ "hc_udp_send", V4 " health_check udp;\n}\n", "t.conf:3: udp health_check needs send=PAYLOAD" },
	{ "hc_unknown_type", V4 " health_check icmp;\n}\n",
	  "t.conf:3: unknown health check \"icmp\" (expected none, tcp, http, udp)" },
	{ "hc_unknown_option", V4 " health_check tcp retries=3;\n}\n",
	  "t.conf:3: unknown health_check option \"retries=3\"" },
	{ "hc_dup_option", V4 " health_check tcp rise=1 rise=2;\n}\n",
	  "t.conf:3: duplicate health_check option \"rise=2\"" },
	{ "backend_hc_bad", V4 " backend 1.2.3.4:80 health_check=icmp;\n}\n",
	  "t.conf:3: invalid health_check in \"health_check=icmp\" (expected tcp, http, udp, none)" },
	{ "backend_state_bad", V4 " backend 1.2.3.4:80 state=sleeping;\n}\n",
	  "t.conf:3: invalid state in \"state=sleeping\" (expected up, drain, down)" },
	{ "slow_start_bad", V4 " slow_start soon;\n}\n",
	  "t.conf:3: invalid slow_start \"soon\" (expected a duration such as 30s)" },
	{ "max_conns_bad", V4 " max_conns -1;\n}\n",
	  "t.conf:3: invalid max_conns \"-1\" (expected 0..4294967295)" },
	{ "timeout_key", V4 " timeout client=5s;\n}\n",
	  "t.conf:3: invalid timeout \"client=5s\" (expected connect=, idle= or fin= and a duration such as 30s)" },
	{ "timeout_bare", V4 " timeout 5s;\n}\n",
	  "t.conf:3: invalid timeout \"5s\" (expected connect=, idle= or fin= and a duration such as 30s)" },
	{ "timeout_twice", V4 " timeout idle=5s idle=6s;\n}\n", "t.conf:3: timeout idle given twice" },
	{ "timeout_range", V4 " timeout connect=1ms;\n}\n",
	  "t.conf:3: invalid timeout connect \"1ms\" (expected 10ms to 600s)" },
	{ "timeout_value", V4 " timeout fin=soon;\n}\n",
	  "t.conf:3: invalid timeout fin \"soon\" (expected 100ms to 604800s)" },
	{ "timeout_udp_fin", "vip dns {\n listen 1.2.3.4:53 udp;\n timeout fin=5s;\n}\n",
	  "t.conf:3: timeout connect= and fin= need a tcp vip (vip \"dns\" is udp: idle= only)" },
	{ "proxy_protocol_v1", V4 " proxy_protocol v1;\n}\n",
	  "t.conf:3: unknown proxy_protocol \"v1\" (expected off, v2)" },
	{ "proxy_protocol_udp", "vip dns {\n listen 1.2.3.4:53 udp;\n proxy_protocol v2;\n}\n",
	  "t.conf:3: proxy_protocol needs a tcp vip (vip \"dns\" is udp)" },
	{ "snat_ports_reversed", "lbd {\n snat_ports 2000-1000;\n}\n",
	  "t.conf:2: invalid snat_ports \"2000-1000\" (expected LO-HI, 1 <= LO <= HI <= 65535)" },
	{ "snat_ports_zero", "lbd { snat_ports 0-100; }\n",
	  "t.conf:1: invalid snat_ports \"0-100\" (expected LO-HI, 1 <= LO <= HI <= 65535)" },
	{ "snat_ports_form", "lbd { snat_ports 1000; }\n",
	  "t.conf:1: invalid snat_ports \"1000\" (expected LO-HI, 1 <= LO <= HI <= 65535)" },
	{ "maglev_not_prime", "lbd { maglev_size 65536; }\n",
	  "t.conf:1: invalid maglev_size \"65536\" (expected a prime 7..1000003, such as 65537)" },
	{ "maglev_too_big", "lbd { maglev_size 1000033; }\n",
	  "t.conf:1: invalid maglev_size \"1000033\" (expected a prime 7..1000003, such as 65537)" },
	{ "maglev_lt_backends", "lbd { maglev_size 7; }\nvip web { listen 1.2.3.4:80;\n"
	  " backend 1.1.1.1:1; backend 1.1.1.1:2; backend 1.1.1.1:3; backend 1.1.1.1:4;\n"
	  " backend 1.1.1.1:5; backend 1.1.1.1:6; backend 1.1.1.1:7; backend 1.1.1.1:8;\n}\n",
	  "t.conf:2: vip \"web\" has 8 backends, more than maglev_size 7" },
	{ "conntrack_small", "lbd { conntrack_size 10; }\n",
	  "t.conf:1: invalid conntrack_size \"10\" (expected 1024..268435456 flows, k/M allowed)" },
	{ "conntrack_new_small", "lbd {\n conntrack_new_size 1000; }\n",
	  "t.conf:2: invalid conntrack_new_size \"1000\" (expected 1024..268435456 flows, k/M allowed)" },
	{ "conntrack_timeout_key", "lbd { conntrack_timeout tcp=1m icmp=5s; }\n",
	  "t.conf:1: invalid conntrack_timeout \"icmp=5s\" (expected tcp=, udp= or closed= and a "
	  "duration of 1s to 7d)" },
	{ "conntrack_timeout_short", "lbd { conntrack_timeout udp=500ms; }\n",
	  "t.conf:1: invalid conntrack_timeout \"udp=500ms\" (expected tcp=, udp= or closed= and a "
	  "duration of 1s to 7d)" },
	{ "hash_seed_big", "lbd { hash_seed 0x100000000; }\n",
	  "t.conf:1: invalid hash_seed \"0x100000000\" (expected a 32-bit number)" },
	{ "hash_seed_neg", "lbd { hash_seed -1; }\n",
	  "t.conf:1: invalid hash_seed \"-1\" (expected a 32-bit number)" },
	{ "metrics_port_0", "lbd { metrics 127.0.0.1:0; }\n",
	  "t.conf:1: invalid metrics address \"127.0.0.1:0\" (expected ADDR:PORT, port 1..65535)" },
	{ "state_dir_relative", "lbd {\n state_dir var/lib/lbd;\n}\n",
	  "t.conf:2: \"state_dir\" needs an absolute path, got \"var/lib/lbd\"" },
	{ "control_too_long", "lbd { control /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock; }\n",
	  "t.conf:1: \"control\" value \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\" too long (max 107 characters)" },
	{ "worker_no_command", "worker app {\n port 3000;\n}\n", "t.conf:1: worker \"app\" has no command" },
	{ "worker_ready_tcp_no_port", "worker app {\n command x;\n ready tcp;\n}\n",
	  "t.conf:3: \"ready tcp\" needs a port in worker \"app\"" },
	{ "worker_vip_no_port", "vip web { listen 1.2.3.4:80; }\nworker app {\n command x;\n vip web;\n}\n",
	  "t.conf:4: worker \"app\" joins vip \"web\" but has no port" },
	{ "worker_unknown_vip", "worker app {\n command x; port 3000;\n vip api;\n}\n",
	  "t.conf:3: worker \"app\": unknown vip \"api\"" },
	{ "worker_instances_0", "worker app { command x;\n instances 0; }\n",
	  "t.conf:2: invalid instances \"0\" (expected auto, max, N or -N, N 1..4096)" },
	{ "worker_instances_word", "worker app { command x;\n instances many; }\n",
	  "t.conf:2: invalid instances \"many\" (expected auto, max, N or -N, N 1..4096)" },
	{ "worker_port_0", "worker app { command x;\n port 0; }\n",
	  "t.conf:2: invalid port \"0\" (expected 1..65535)" },
	{ "worker_port_overflow", "worker app { command x;\n port 65535; instances 2; }\n",
	  "t.conf:2: ports 65535..65536 of worker \"app\" exceed 65535" },
	{ "worker_env_bad", "worker app { command x;\n env NODE_ENV; env 1A=2; }\n",
	  "t.conf:2: invalid env \"NODE_ENV\" (expected NAME=VALUE)\n"
	  "t.conf:2: invalid env \"1A=2\" (expected NAME=VALUE)" },
	{ "worker_env_dup", "worker app { command x;\n env A=1;\n env A=2; }\n",
	  "t.conf:3: duplicate env \"A\"" },
	{ "worker_dup", "worker a { command x; }\nworker a { command y; }\n",
	  "t.conf:2: duplicate worker \"a\" (first at t.conf:1)" },
	{ "worker_duration", "worker a { command x;\n kill_timeout 2 s; }\n",
	  "t.conf:2: invalid number of arguments in \"kill_timeout\"" },
	{ "worker_duration_unit", "worker a { command x;\n min_uptime 5x; }\n",
	  "t.conf:2: invalid min_uptime \"5x\" (expected a duration such as 2s or 100ms)" },
	{ "worker_size", "worker a { command x;\n max_memory 3T; }\n",
	  "t.conf:2: invalid max_memory \"3T\" (expected a size such as 300M)" },
	{ "worker_ready_bad", "worker a { command x;\n ready http; }\n",
	  "t.conf:2: unknown ready check \"http\" (expected tcp, notify, none)" },
	{ "missing_semicolon", V4 " method maglev\n}\n",
	  "t.conf:4: missing \";\" before \"}\" (after \"maglev\")" },
	{ "stray_close", "vip web { listen 1.2.3.4:80; }\n}\n", "t.conf:2: unexpected \"}\"" },
	{ "stray_semicolon", "lbd { ; }\n", "t.conf:1: unexpected \";\"" },
	{ "stray_open", "{ mode x; }\n", "t.conf:1: unexpected \"{\"" },
	{ "eof_in_block", "vip web {\n listen 1.2.3.4:80;\n",
	  "t.conf:3: unexpected end of file, expecting \"}\" to close the block at line 1" },
	{ "eof_in_stmt", "lbd {\n mode auto",
	  "t.conf:2: unexpected end of file, expecting \";\" after \"auto\"\n"
	  "t.conf:2: unexpected end of file, expecting \"}\" to close the block at line 1" },
	{ "unterminated_quote", "lbd {\n control \"/run/x;\n}\n", "t.conf:2: unterminated quoted string" },
	{ "include_args", "include;\n", "t.conf:1: invalid number of arguments in \"include\" (expected 1)" },
	{ "include_block", "include x { }\n", "t.conf:1: \"include\" does not take a block" },
	{ "many_errors",
	  "lbd {\n mode turbo;\n hash_seed x;\n}\n"
	  "vip web {\n listen 1.2.3.4:80;\n method fastest;\n backend 1.2.3.4:0;\n}\n"
	  "vip web { listen 1.2.3.4:80; }\n",
	  "t.conf:2: unknown mode \"turbo\" (expected auto, xdp, xdp-generic, tc, proxy)\n"
	  "t.conf:3: invalid hash_seed \"x\" (expected a 32-bit number)\n"
	  "t.conf:7: unknown method \"fastest\" (expected maglev, ip_hash, round_robin, least_conn)\n"
	  "t.conf:8: invalid backend port in \"1.2.3.4:0\" (expected 1..65535)\n"
	  "t.conf:10: listen address of vip \"web\" already used by vip \"web\" (t.conf:6)\n"
	  "t.conf:10: duplicate vip \"web\" (first at t.conf:5)" },
};

static void test_error_case(void **state)
{
	const struct err_case *c = *state;

	expect_errors(c->text, c->want);
}

/* --------------------------------------------------------------- includes */

static char tmpdir[64];

static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int load(const char *rel, struct lb_conf *cfg, struct errs *e)
{
	char path[PATH_MAX];

	memset(e, 0, sizeof(*e));
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	return lb_config_load(path, cfg, collect, e);
}

/* Expected messages name files under tmpdir: "@" stands for it. */
static void assert_errs(const struct errs *e, const char *want)
{
	char w[8192] = "";
	size_t n = 0;

	for (const char *p = want; *p && n < sizeof(w) - 80; p++) {
		if (*p == '@')
			n += (size_t)snprintf(w + n, sizeof(w) - n, "%s", tmpdir);
		else
			w[n++] = *p;
	}
	w[n] = '\0';
	assert_string_equal(e->text, w);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lbd-conf-test.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_include_glob(void **state)
{
	struct lb_conf c;
	struct errs e;
	char sub[PATH_MAX];
	int rc;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file("main.conf", "lbd { include lbd.inc; }\ninclude conf.d/*.conf;\n"
		   "include empty.d/*.conf; # no match is fine\n");
	write_file("lbd.inc", "mode tc;\ninterfaces eth1;\n");
	write_file("conf.d/b.conf", "vip b { listen 1.2.3.4:81; include ../backends.inc; }\n");
	write_file("conf.d/a.conf", "vip a { listen 1.2.3.4:80; }\n");
	write_file("backends.inc", "backend 10.0.0.1:80;\nbackend 10.0.0.2:80 weight=2;\n");
	rc = load("main.conf", &c, &e);
	assert_errs(&e, "");
	assert_int_equal(rc, 0);
	assert_int_equal(c.mode, LB_ATTACH_TC);
	assert_string_equal(c.interfaces[0], "eth1");
	assert_int_equal(c.nvips, 2);
	assert_string_equal(c.vips[0].name, "a"); /* glob order is sorted */
	assert_string_equal(c.vips[1].name, "b");
	assert_int_equal(c.vips[1].nbackends, 2);
	assert_int_equal(c.vips[1].backends[1].weight, 2);
	lb_config_free(&c);
}

/* Blocks nested past the limit are an error at the block that goes too
 * deep, not a stack overflow (make fuzz found one: 3,000 "{" in a row). */
static void test_nested_too_deep(void **state)
{
	char text[4096] = "vip v ", want[2048] = "";
	size_t n = strlen(text);

	(void)state;
	for (int i = 0; i < 3000; i++)
		text[n++] = '{';
	text[n] = 0;
	/* the vip block, then 16 bare "{", the last one too deep */
	for (int i = 0; i < 16; i++)
		strcat(want, "t.conf:1: unexpected \"{\"\n");
	strcat(want, "t.conf:1: blocks nested more than 16 deep");
	expect_errors(text, want);
}

static void test_include_error_location(void **state)
{
	struct lb_conf c;
	struct errs e;

	(void)state;
	write_file("err.conf", "# top\ninclude err.inc;\nvip x { listen 1.2.3.4:80; method slow; }\n");
	write_file("err.inc", "\n\nlbd { mode fast; }\n");
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(load("err.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/err.inc:3: unknown mode \"fast\" (expected auto, xdp, xdp-generic, tc, proxy)\n"
		    "@/err.conf:3: unknown method \"slow\" (expected maglev, ip_hash, round_robin, least_conn)\n");
	assert_int_equal(c.nvips, 0x5a5a5a5a);
}

static void test_include_missing(void **state)
{
	struct lb_conf c;
	struct errs e;

	(void)state;
	write_file("miss.conf", "\ninclude nothere.conf;\n");
	assert_int_equal(load("miss.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/miss.conf:2: cannot read include \"@/nothere.conf\": No such file or directory\n");
}

static void test_include_cycle(void **state)
{
	struct lb_conf c;
	struct errs e;

	(void)state;
	write_file("cyc_a.conf", "include cyc_b.conf;\n");
	write_file("cyc_b.conf", "lbd { }\n\ninclude cyc_a.conf;\n");
	assert_int_equal(load("cyc_a.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/cyc_b.conf:3: include cycle: \"@/cyc_a.conf\" is already being read\n");

	write_file("self.conf", "include ./self.conf;\n");
	assert_int_equal(load("self.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/self.conf:1: include cycle: \"@/./self.conf\" is already being read\n");
}

static void test_include_depth(void **state)
{
	struct lb_conf c;
	struct errs e;
	char name[32], text[64];

	(void)state;
	/* d0 includes d1 ... d(N-1) includes dN: N levels of include. */
	for (int i = 0; i <= LB_CONF_INCLUDE_DEPTH + 1; i++) {
		snprintf(name, sizeof(name), "d%d.conf", i);
		snprintf(text, sizeof(text), "include d%d.conf;\n", i + 1);
		write_file(name, i == LB_CONF_INCLUDE_DEPTH + 1 ? "lbd { }\n" : text);
	}
	/* d1 -> d9 is exactly LB_CONF_INCLUDE_DEPTH levels: fine. */
	assert_int_equal(load("d1.conf", &c, &e), 0);
	lb_config_free(&c);
	assert_int_equal(load("d0.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/d8.conf:1: includes nested too deeply at \"@/d9.conf\" (max 8 levels)\n");
}

static void test_load_missing_file(void **state)
{
	struct lb_conf c;
	struct errs e;

	(void)state;
	assert_int_equal(load("absent.conf", &c, &e), -ENOENT);
	assert_errs(&e, "@/absent.conf:0: cannot read \"@/absent.conf\": No such file or directory\n");
	assert_int_equal(load("", &c, &e), -EISDIR);
}

static void test_nul_byte(void **state)
{
	struct lb_conf c;
	struct errs e;
	char path[PATH_MAX];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("lbd {\n}\n\0x\n", 1, 11, f);
	fclose(f);
	assert_int_equal(load("nul.conf", &c, &e), -EINVAL);
	assert_errs(&e, "@/nul.conf:3: NUL byte in file\n");
}

/* ----------------------------------------------- durations, sizes, names */

static void test_durations(void **state)
{
	static const struct { const char *s; __u64 ms; } ok[] = {
		{ "0", 0 }, { "250ms", 250 }, { "2s", 2000 }, { "5m", 300000 },
		{ "1h", 3600000 }, { "1d", 86400000 }, { "30", 30000 }, { "1m30s", 90000 },
		{ "1h1ms", 3600001 },
	};
	static const char *const bad[] = {
		"", "s", "-1s", "1.5s", "2 s", "10x", "1m30", "ms", "1S", "99999999999999999999",
		"18446744073709551615d",
	};
	__u64 v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		assert_int_equal(lb_parse_duration_ms(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (lb_parse_duration_ms(bad[i], &v) != -EINVAL)
			fail_msg("duration \"%s\" accepted", bad[i]);
	}
}

static void test_sizes(void **state)
{
	static const struct { const char *s; __u64 b; } ok[] = {
		{ "0", 0 }, { "512", 512 }, { "64k", 65536 }, { "64K", 65536 },
		{ "10M", 10485760 }, { "10m", 10485760 }, { "1G", 1073741824 },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const char *const bad[] = {
		"", "k", "-1", "1.5M", "1 M", "1T", "1MB", "17179869184G", "99999999999999999999",
	};
	__u64 v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(lb_parse_size(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (lb_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("size \"%s\" accepted", bad[i]);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(lb_mode_name(LB_ATTACH_XDP_GENERIC), "xdp-generic");
	assert_string_equal(lb_mode_name(LB_ATTACH_PROXY), "proxy");
	assert_string_equal(lb_mode_name((enum lb_attach_mode)99), "?");
	assert_string_equal(lb_method_name(LB_METHOD_IP_HASH), "ip_hash");
	assert_string_equal(lb_method_name(LB_METHOD_LEAST_CONN), "least_conn");
	assert_string_equal(lb_method_name(LB_METHOD_MAX), "?");
	assert_string_equal(lb_fwd_name(LB_FWD_LOCAL), "local");
	assert_string_equal(lb_fwd_name(LB_FWD_MAX), "?");
	assert_string_equal(lb_backend_state_name(LB_BE_DRAIN), "drain");
	assert_string_equal(lb_backend_state_name((enum lb_backend_state)-1), "?");
	assert_string_equal(lb_hc_type_name(LB_HC_HTTP), "http");
	assert_string_equal(lb_hc_type_name(LB_HC_INHERIT), "inherit");
}

/* Every name printed must parse back to the same value. */
static void test_names_round_trip(void **state)
{
	char text[256];

	(void)state;
	for (int m = 0; m < LB_METHOD_MAX; m++) {
		for (int f = 0; f < LB_FWD_MAX; f++) {
			struct lb_conf c;

			snprintf(text, sizeof(text), "vip v { listen 1.2.3.4:80; method %s; forward %s; }",
				 lb_method_name((enum lb_method)m), lb_fwd_name((enum lb_fwd)f));
			parse_ok(text, &c);
			assert_int_equal(c.vips[0].method, m);
			assert_int_equal(c.vips[0].forward, f);
			lb_config_free(&c);
		}
	}
	for (int m = LB_ATTACH_AUTO; m <= LB_ATTACH_PROXY; m++) {
		struct lb_conf c;

		snprintf(text, sizeof(text), "lbd { mode %s; }", lb_mode_name((enum lb_attach_mode)m));
		parse_ok(text, &c);
		assert_int_equal(c.mode, m);
		lb_config_free(&c);
	}
}

/* ----------------------------------------------------- control statements */

static int split(const char *line, char **w, int max, char *err)
{
	static char buf[256];

	return lb_config_split(line, w, max, buf, sizeof(buf), err, 128);
}

static void test_split_basic(void **state)
{
	char *w[8], err[128];

	(void)state;
	assert_int_equal(split("backend add 10.0.0.2:3000 weight=1", w, 8, err), 4);
	assert_string_equal(w[0], "backend");
	assert_string_equal(w[3], "weight=1");
	assert_int_equal(split("  status ;  # trailing comment", w, 8, err), 1);
	assert_string_equal(w[0], "status");
	assert_int_equal(split("", w, 8, err), 0);
	assert_int_equal(split("   # only a comment", w, 8, err), 0);
}

static void test_split_quotes(void **state)
{
	char *w[8], err[128];

	(void)state;
	assert_int_equal(split("a \"b c\" 'd \"e\"' f\\ g \"h\\\"i\\\\\" \"\" x\"y\"z 'n\\n';", w, 8, err), 8);
	assert_string_equal(w[1], "b c");
	assert_string_equal(w[2], "d \"e\"");
	assert_string_equal(w[3], "f g");
	assert_string_equal(w[4], "h\"i\\");
	assert_string_equal(w[5], "");
	assert_string_equal(w[6], "xyz");
	assert_string_equal(w[7], "n\n");
	/* '#' inside a word or quotes is not a comment. */
	assert_int_equal(split("a#b \"#c\" #d", w, 8, err), 2);
	assert_string_equal(w[0], "a#b");
	assert_string_equal(w[1], "#c");
}

static void test_split_errors(void **state)
{
	char *w[4], err[128], small[8];

	(void)state;
	assert_int_equal(split("a \"b", w, 4, err), -EINVAL);
	assert_string_equal(err, "unterminated quoted string");
	assert_int_equal(split("a; b", w, 4, err), -EINVAL);
	assert_string_equal(err, "unexpected \"b\" after \";\"");
	assert_int_equal(split("a;;", w, 4, err), -EINVAL);
	assert_string_equal(err, "unexpected \";\" after \";\"");
	assert_int_equal(split("vip x {", w, 4, err), -EINVAL);
	assert_string_equal(err, "unexpected \"{\"");
	assert_int_equal(split("a\\", w, 4, err), -EINVAL);
	assert_string_equal(err, "backslash at end of input");
	assert_int_equal(split("a b c d e", w, 4, err), -E2BIG);
	assert_string_equal(err, "too many words (max 4)");
	assert_int_equal(lb_config_split("abc defgh", w, 4, small, sizeof(small), err, sizeof(err)),
			 -E2BIG);
	assert_string_equal(err, "statement too long (max 8 bytes)");
	assert_int_equal(lb_config_split("abc def", w, 4, small, sizeof(small), err, sizeof(err)), 2);
}

/* --------------------------------------------------------- parse_backend */

static int pb(const char *line, struct lb_backend_conf *b, char *err)
{
	static char buf[256];
	char *w[16], e2[128];
	int n = lb_config_split(line, w, 16, buf, sizeof(buf), e2, sizeof(e2));

	assert_true(n >= 0);
	return lb_config_parse_backend(w, n, b, err, 160);
}

static void test_backend_ok(void **state)
{
	struct lb_backend_conf b;
	char err[160];

	(void)state;
	assert_int_equal(pb("10.0.0.2:3000", &b, err), 0);
	assert_ep(&b.ep, "10.0.0.2:3000");
	assert_int_equal(b.weight, 1);
	assert_int_equal(b.max_fails, 1);
	assert_int_equal(b.fail_timeout_ms, 10000);
	assert_int_equal(b.health_check, LB_HC_INHERIT);
	assert_false(b.backup);
	assert_int_equal(b.state, LB_BE_UP);
	assert_string_equal(b.vip, "");
	assert_int_equal(pb("[2001:db8::2]:443 weight=0 max_fails=0 fail_timeout=1m "
			    "health_check=none backup state=drain vip=web", &b, err), 0);
	assert_int_equal(b.ep.family, LB_AF_INET6);
	assert_int_equal(b.weight, 0);
	assert_int_equal(b.max_fails, 0);
	assert_int_equal(b.fail_timeout_ms, 60000);
	assert_int_equal(b.health_check, LB_HC_NONE);
	assert_true(b.backup);
	assert_int_equal(b.state, LB_BE_DRAIN);
	assert_string_equal(b.vip, "web");
	assert_int_equal(pb("1.2.3.4:1 weight=65535 state=down health_check=udp", &b, err), 0);
	assert_int_equal(b.weight, 65535);
	assert_int_equal(b.state, LB_BE_DOWN);
	assert_int_equal(b.health_check, LB_HC_UDP);
}

static void test_backend_given(void **state)
{
	static char buf[256];
	struct lb_backend_conf b;
	char *w[16], err[160];
	unsigned int given = 0xdead;
	int n = lb_config_split("10.0.0.2:3000 state=drain vip=web weight=3", w, 16, buf,
				sizeof(buf), err, sizeof(err));

	(void)state;
	assert_int_equal(lb_config_parse_backend_given(w, n, &b, &given, err, sizeof(err)), 0);
	assert_int_equal(given, LB_BE_OPT_STATE | LB_BE_OPT_VIP | LB_BE_OPT_WEIGHT);
	assert_int_equal(b.weight, 3);
	assert_int_equal(lb_config_parse_backend_given(w, 1, &b, &given, err, sizeof(err)), 0);
	assert_int_equal(given, 0);
	n = lb_config_split("10.0.0.2:3000 backup max_fails=2 fail_timeout=1s health_check=tcp",
			    w, 16, buf, sizeof(buf), err, sizeof(err));
	assert_int_equal(lb_config_parse_backend_given(w, n, &b, &given, err, sizeof(err)), 0);
	assert_int_equal(given, LB_BE_OPT_BACKUP | LB_BE_OPT_MAX_FAILS | LB_BE_OPT_FAIL_TIMEOUT |
				LB_BE_OPT_HEALTH_CHECK);
}

static void test_backend_errors(void **state)
{
	static const struct { const char *line, *err; } cases[] = {
		{ "", "missing backend address" },
		{ "10.0.0.2", "invalid backend address \"10.0.0.2\" (expected ADDR:PORT or [V6]:PORT)" },
		{ "2001:db8::1:80", "invalid backend address \"2001:db8::1:80\" (expected ADDR:PORT or [V6]:PORT)" },
		{ "10.0.0.2:0", "invalid backend port in \"10.0.0.2:0\" (expected 1..65535)" },
		{ "10.0.0.2:1 weight=-1", "invalid weight in \"weight=-1\" (expected 0..65535)" },
		{ "10.0.0.2:1 weight=65536", "invalid weight in \"weight=65536\" (expected 0..65535)" },
		{ "10.0.0.2:1 weight=", "invalid weight in \"weight=\" (expected 0..65535)" },
		{ "10.0.0.2:1 max_fails=x", "invalid max_fails in \"max_fails=x\" (expected 0..65535)" },
		{ "10.0.0.2:1 fail_timeout=0", "invalid fail_timeout in \"fail_timeout=0\" (expected a duration above 0 such as 10s)" },
		{ "10.0.0.2:1 state=up2", "invalid state in \"state=up2\" (expected up, drain, down)" },
		{ "10.0.0.2:1 state=unused", "invalid state in \"state=unused\" (expected up, drain, down)" },
		{ "10.0.0.2:1 health_check=inherit", "invalid health_check in \"health_check=inherit\" (expected tcp, http, udp, none)" },
		{ "10.0.0.2:1 vip=a/b", "invalid vip in \"vip=a/b\" (expected letters, digits, \"_\", \"-\", \".\", at most 63)" },
		{ "10.0.0.2:1 backup=yes", "unknown backend option \"backup=yes\"" },
		{ "10.0.0.2:1 weigth=2", "unknown backend option \"weigth=2\"" },
		{ "10.0.0.2:1 down", "unknown backend option \"down\"" },
		{ "10.0.0.2:1 weight=1 weight=2", "duplicate backend option \"weight=2\"" },
		{ "10.0.0.2:1 backup backup", "duplicate backend option \"backup\"" },
	};
	struct lb_backend_conf b;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&b, 0x77, sizeof(b));
		assert_int_equal(pb(cases[i].line, &b, err), -EINVAL);
		assert_string_equal(err, cases[i].err);
		assert_int_equal(b.weight, 0x77777777); /* untouched */
	}
}

/* ------------------------------------------------------------------ main */

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_issue4_example),
		cmocka_unit_test(test_issue4_example_file),
		cmocka_unit_test(test_examples_parse),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_lbd_block_all),
		cmocka_unit_test(test_bgp_block),
		cmocka_unit_test(test_listen_forms),
		cmocka_unit_test(test_proxy_protocol),
		cmocka_unit_test(test_proxy_workers),
		cmocka_unit_test(test_vip_timeouts),
		cmocka_unit_test(test_encap),
		cmocka_unit_test(test_issue5_health),
		cmocka_unit_test(test_health_full),
		cmocka_unit_test(test_issue6_worker),
		cmocka_unit_test(test_worker_defaults),
		cmocka_unit_test(test_worker_instances),
		cmocka_unit_test(test_lexer_quotes_comments),
		cmocka_unit_test(test_include_glob),
		cmocka_unit_test(test_include_error_location),
		cmocka_unit_test(test_nested_too_deep),
		cmocka_unit_test(test_include_missing),
		cmocka_unit_test(test_include_cycle),
		cmocka_unit_test(test_include_depth),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_split_basic),
		cmocka_unit_test(test_split_quotes),
		cmocka_unit_test(test_split_errors),
		cmocka_unit_test(test_backend_ok),
		cmocka_unit_test(test_backend_given),
		cmocka_unit_test(test_backend_errors),
	};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	size_t nerr = sizeof(err_cases) / sizeof(err_cases[0]);
	struct CMUnitTest *all = calloc(nfixed + nerr, sizeof(*all));
	char (*names)[64] = calloc(nerr, sizeof(*names));
	int rc;

	if (!all || !names)
		return 1;
	memcpy(all, fixed, sizeof(fixed));
	/* One named test per error case, so a failure says which one. */
	for (size_t i = 0; i < nerr; i++) {
		snprintf(names[i], sizeof(names[i]), "error_%s", err_cases[i].name);
		all[nfixed + i] = (struct CMUnitTest){
			.name = names[i], .test_func = test_error_case,
			.initial_state = (void *)&err_cases[i],
		};
	}
	rc = _cmocka_run_group_tests("config", all, nfixed + nerr, setup_dir, teardown_dir);
	free(all);
	free(names);
	return rc;
}
