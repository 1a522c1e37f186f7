// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The service layer against the real data path (root: it loads the BPF
 * objects and pins them on a bpffs): runtime statements and their errors,
 * the persisted runtime layer, dry runs, reloads that apply only the
 * difference or nothing, and a restart that adopts the pinned state with the
 * same ids. Commands go through lb_svc_command, as the control socket does.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "control.h"
#include "service.h"

static char dir[64], conf_path[128], pin[96];

static const char *conf_text =
	"lbd {\n"
	"    control %s/lbd.sock;\n"
	"    state_dir %s/state;\n"
	"    bpffs %s;\n"
	"    pid_file %s/lbd.pid;\n"
	"    mode xdp;\n"
	"    hash_seed 0x5eed;\n"
	"}\n"
	"vip web {\n"
	"    listen 198.18.0.10:80;\n"
	"    backend 198.18.1.2:3000 weight=1;\n"
	"    backend 198.18.1.3:3000 weight=2;\n"
	"%s"
	"}\n"
	"vip api {\n"
	"    listen 198.18.0.11:443;\n"
	"    method ip_hash;\n"
	"    backend 198.18.1.4:8443;\n"
	"}\n";

static void write_conf(const char *extra)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fprintf(f, conf_text, dir, dir, pin, dir, extra);
	fclose(f);
}

static void no_err(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "config: %s\n", msg);
}

static struct lb_svc *start(void)
{
	struct lb_conf cf;
	struct lb_svc *s = NULL;

	assert_int_equal(lb_config_load(conf_path, &cf, no_err, NULL), 0);
	assert_int_equal(lb_svc_start(conf_path, &cf, NULL, 0, &s), 0);
	lb_config_free(&cf);
	return s;
}

/* Runs one command; returns its status, output in *out (caller frees). */
static int cmd(struct lb_svc *s, bool json, bool dry, char **out, ...)
{
	char *argv[32];
	struct lb_ctl_req r = { .argv = argv, .json = json, .dry_run = dry };
	struct lb_buf b = { 0 };
	va_list ap;
	int rc;

	va_start(ap, out);
	while ((argv[r.argc] = va_arg(ap, char *)))
		r.argc++;
	va_end(ap);
	rc = lb_svc_command(s, &r, &b);
	lb_buf_printf(&b, "%s", "");
	*out = b.data;
	return rc;
}

/* Drops every "key":NUMBER member (and its comma) from a JSON text. */
static void drop_member(char *js, const char *key)
{
	char pat[64], *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	while ((p = strstr(js, pat))) {
		char *e = p + strlen(pat);

		e += strspn(e, "-0123456789");
		if (*e == ',')
			e++;
		memmove(p, e, strlen(e) + 1);
	}
}

/* The status document without what moves with the clock alone, so two of
 * them compare equal when nothing changed. */
static char *status(struct lb_svc *s)
{
	static const char *const clock[] = { "now_ms", "uptime_ms" };
	char *o;

	assert_int_equal(cmd(s, true, false, &o, "status", NULL), 0);
	for (size_t i = 0; i < sizeof(clock) / sizeof(clock[0]); i++)
		drop_member(o, clock[i]);
	return o;
}

/* lbd's state is still `before` (status, clocks aside). */
static void assert_unchanged(struct lb_svc *s, const char *before)
{
	char *after = status(s);

	assert_string_equal(before, after);
	free(after);
}

static char *runtime_file(void)
{
	char p[160], *buf = calloc(1, 8192);
	int fd;

	snprintf(p, sizeof(p), "%s/state/runtime.conf", dir);
	fd = open(p, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, 8191);

		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return buf;
}

static int setup(void **state)
{
	(void)state;
	write_conf("");
	return 0;
}

static int teardown(void **state)
{
	char p[256];

	(void)state;
	snprintf(p, sizeof(p), "rm -rf %s %s/state", pin, dir);
	return system(p) ? -1 : 0;
}

static void test_vip_required(void **state)
{
	struct lb_svc *s = start();
	char *o;

	(void)state;
	assert_int_not_equal(cmd(s, false, false, &o, "backend", "add", "198.18.1.9:3000", NULL), 0);
	assert_non_null(strstr(o, "web"));
	assert_non_null(strstr(o, "api"));
	assert_non_null(strstr(o, "vip=NAME"));
	free(o);
	lb_svc_stop(s, true);
}

static void test_bad_arguments_named(void **state)
{
	struct lb_svc *s = start();
	char *before = status(s), *after, *o;

	(void)state;
	assert_int_equal(cmd(s, false, false, &o, "backend", "add", "198.18.1.9:99999", "vip=web", NULL), 2);
	assert_non_null(strstr(o, "198.18.1.9:99999"));
	free(o);
	assert_int_equal(cmd(s, false, false, &o, "backend", "set", "198.18.1.2:3000", "weight=abc",
			     "vip=web", NULL), 2);
	assert_non_null(strstr(o, "weight=abc"));
	free(o);
	assert_int_not_equal(cmd(s, false, false, &o, "backend", "add", "[2001:db8::1]:80", "vip=web", NULL), 0);
	assert_non_null(strstr(o, "IPv4"));
	free(o);
	assert_int_not_equal(cmd(s, false, false, &o, "backend", "del", "198.18.1.9:3000", "vip=web", NULL), 0);
	assert_non_null(strstr(o, "not a backend"));
	free(o);
	assert_int_not_equal(cmd(s, false, false, &o, "vip", "add", "web2", "198.18.0.10:80", NULL), 0);
	assert_non_null(strstr(o, "already serves"));
	free(o);
	after = status(s);
	assert_string_equal(before, after);
	free(before);
	free(after);
	lb_svc_stop(s, true);
}

static void test_runtime_layer_persisted_and_compact(void **state)
{
	struct lb_svc *s = start();
	char *o, *rt;

	(void)state;
	assert_int_equal(cmd(s, false, false, &o, "backend", "add", "198.18.1.9:3000", "weight=3",
			     "vip=web", NULL), 0);
	free(o);
	rt = runtime_file();
	assert_non_null(strstr(rt, "backend add 198.18.1.9:3000 weight=3 vip=web\n"));
	free(rt);
	assert_int_equal(cmd(s, false, false, &o, "backend", "set", "198.18.1.2:3000", "state=drain",
			     "vip=web", NULL), 0);
	free(o);
	/* deleting what only the runtime layer added leaves no trace of it */
	assert_int_equal(cmd(s, false, false, &o, "backend", "del", "198.18.1.9:3000", "vip=web", NULL), 0);
	free(o);
	rt = runtime_file();
	assert_null(strstr(rt, "198.18.1.9"));
	assert_non_null(strstr(rt, "backend set 198.18.1.2:3000 state=drain vip=web\n"));
	free(rt);
	o = status(s);
	assert_non_null(strstr(o, "\"address\":\"198.18.1.2:3000\",\"id\":"));
	assert_non_null(strstr(o, "\"state\":\"drain\""));
	free(o);
	lb_svc_stop(s, true);
}

/* Each change says what it changed; the same command with -n says it in
 * the conditional and leaves lbd as it was. */
static void test_changes_are_said(void **state)
{
	struct lb_svc *s = start();
	char *before = status(s), *o;

	(void)state;
	assert_int_equal(cmd(s, false, true, &o, "backend", "set", "198.18.1.2:3000", "weight=5",
			     "state=drain", "vip=web", NULL), 0);
	assert_non_null(strstr(o, "dry run: backend set 198.18.1.2:3000 weight=5 state=drain vip=web\n"
				  "would change backend 198.18.1.2:3000 of vip web: weight 1 -> 5, "
				  "state up -> drain\n"));
	free(o);
	assert_unchanged(s, before);
	assert_int_equal(cmd(s, false, false, &o, "backend", "set", "198.18.1.2:3000", "weight=5",
			     "state=drain", "vip=web", NULL), 0);
	assert_string_equal(o, "ok: backend set 198.18.1.2:3000 weight=5 state=drain vip=web\n"
			       "changed backend 198.18.1.2:3000 of vip web: weight 1 -> 5, state up -> drain\n");
	free(o);
	assert_int_equal(cmd(s, true, false, &o, "backend", "del", "198.18.1.3:3000", "vip=web", NULL), 0);
	assert_string_equal(o, "{\"ok\":true,\"statement\":\"backend del 198.18.1.3:3000 vip=web\","
			       "\"changes\":[\"deleted backend 198.18.1.3:3000 from vip web\"]}\n");
	free(o);
	assert_int_equal(cmd(s, false, true, &o, "vip", "del", "api", NULL), 0);
	assert_non_null(strstr(o, "\nwould delete vip api (and its 1 backend(s))\n"));
	free(o);
	assert_int_equal(cmd(s, false, true, &o, "stop", NULL), 0);
	assert_non_null(strstr(o, "dry run: would stop lbd, detach it from no interface and remove the "
				  "pinned data path in /sys/fs/bpf/"));
	free(o);
	assert_false(lb_svc_stop_requested(s));
	assert_int_equal(cmd(s, false, false, &o, "stop", NULL), 0);
	assert_true(lb_svc_stop_requested(s));
	free(o);
	free(before);
	lb_svc_stop(s, true);
}

static void test_dry_run_changes_nothing(void **state)
{
	struct lb_svc *s = start();
	char *before = status(s), *after, *o, *rt;

	(void)state;
	assert_int_equal(cmd(s, false, true, &o, "backend", "add", "198.18.1.9:3000", "vip=web", NULL), 0);
	/* one backend of weight 1 joining 1+2: about a quarter of the slots */
	assert_non_null(strstr(o, "would move"));
	assert_non_null(strstr(o, "of 65537 table slots (2"));
	free(o);
	after = status(s);
	assert_string_equal(before, after);
	rt = runtime_file();
	assert_null(strstr(rt, "198.18.1.9"));
	free(rt);
	free(before);
	free(after);
	lb_svc_stop(s, true);
}

/* The id a backend has in `lbctl -j status` output. */
static long be_id(const char *st, const char *ep)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"address\":\"%s\",\"id\":", ep);
	p = strstr(st, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void test_reload_invalid_changes_nothing(void **state)
{
	struct lb_svc *s = start();
	char *before = status(s), *after, *o;

	(void)state;
	write_conf("    backend 198.18.1.5:3000 weight=banana;\n");
	assert_int_equal(cmd(s, false, false, &o, "reload", NULL), 1);
	assert_non_null(strstr(o, "lbd.conf:13: "));
	assert_non_null(strstr(o, "banana"));
	free(o);
	after = status(s);
	assert_string_equal(before, after);
	free(before);
	free(after);
	write_conf("");
	lb_svc_stop(s, true);
}

static void test_reload_applies_difference(void **state)
{
	struct lb_svc *s = start();
	char *before = status(s), *after, *o;
	long id3 = be_id(before, "198.18.1.3:3000"), id4 = be_id(before, "198.18.1.4:8443");

	(void)state;
	assert_true(id3 >= 0 && id4 >= 0);
	write_conf("    backend 198.18.1.6:3000;\n");
	/* a dry run says what the reload would change, and changes nothing */
	assert_int_equal(cmd(s, false, true, &o, "reload", NULL), 0);
	assert_non_null(strstr(o, "dry run: reload of "));
	assert_non_null(strstr(o, "\nwould add backend 198.18.1.6:3000 to vip web (weight 1, up)\n"
				  "vip web: "));
	assert_non_null(strstr(o, " would move to another backend"));
	assert_non_null(strstr(o, "\nnothing was changed\n"));
	free(o);
	assert_unchanged(s, before);
	assert_int_equal(cmd(s, false, false, &o, "reload", NULL), 0);
	assert_non_null(strstr(o, "\nadded backend 198.18.1.6:3000 to vip web (weight 1, up)\n"));
	free(o);
	/* the same file again: nothing to do, and it says so */
	assert_int_equal(cmd(s, true, false, &o, "reload", NULL), 0);
	assert_non_null(strstr(o, "\"changes\":[]}"));
	free(o);
	after = status(s);
	/* unchanged backends keep their ids: established flows carry them */
	assert_int_equal(be_id(after, "198.18.1.3:3000"), id3);
	assert_int_equal(be_id(after, "198.18.1.4:8443"), id4);
	assert_true(be_id(after, "198.18.1.6:3000") >= 0);
	free(before);
	free(after);
	write_conf("");
	lb_svc_stop(s, true);
}

static void test_restart_adopts_ids_and_runtime(void **state)
{
	struct lb_svc *s = start();
	char *before, *after, *o;

	(void)state;
	assert_int_equal(cmd(s, false, false, &o, "backend", "add", "198.18.1.7:3000", "vip=api", NULL), 0);
	free(o);
	before = status(s);
	lb_svc_stop(s, false); /* as SIGTERM or kill -9: pins stay */
	s = start();
	after = status(s);
	assert_non_null(strstr(after, "\"adopted\":true"));
	assert_int_equal(be_id(after, "198.18.1.2:3000"), be_id(before, "198.18.1.2:3000"));
	assert_int_equal(be_id(after, "198.18.1.3:3000"), be_id(before, "198.18.1.3:3000"));
	assert_int_equal(be_id(after, "198.18.1.7:3000"), be_id(before, "198.18.1.7:3000"));
	assert_true(be_id(after, "198.18.1.7:3000") >= 0);
	free(before);
	free(after);
	lb_svc_stop(s, true);
}

static void test_runtime_vip(void **state)
{
	struct lb_svc *s = start();
	char *o;

	(void)state;
	assert_int_equal(cmd(s, false, false, &o, "vip", "add", "dns", "198.18.0.12:53", "udp",
			     "method=round_robin", NULL), 0);
	free(o);
	assert_int_equal(cmd(s, false, false, &o, "backend", "add", "198.18.1.2:53", "vip=dns", NULL), 0);
	free(o);
	assert_int_equal(cmd(s, false, false, &o, "vip", "show", "dns", NULL), 0);
	assert_non_null(strstr(o, "round_robin"));
	assert_non_null(strstr(o, "198.18.1.2:53"));
	free(o);
	assert_int_equal(cmd(s, false, false, &o, "vip", "del", "dns", NULL), 0);
	free(o);
	o = runtime_file();
	assert_null(strstr(o, "dns"));
	free(o);
	assert_int_not_equal(cmd(s, false, false, &o, "vip", "show", "dns", NULL), 0);
	free(o);
	lb_svc_stop(s, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vip_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_layer_persisted_and_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_are_said, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_invalid_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_applies_difference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_adopts_ids_and_runtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_vip, setup, teardown),
	};
	int rc;

	if (geteuid()) {
		printf("SKIP: test_service: needs root (BPF maps, bpffs)\n");
		return 0;
	}
	/* a private network namespace: VIP addresses land on its lo */
	if (unshare(CLONE_NEWNET) || system("ip link set lo up")) {
		printf("FAIL: test_service: cannot make a network namespace\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "/tmp/lbt-svc-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(conf_path, sizeof(conf_path), "%s/lbd.conf", dir);
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/lbt-svc-%d", (int)getpid());
	lb_log_set_level(LB_LOG_WARN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char c[256];

		snprintf(c, sizeof(c), "rm -rf %s %s", dir, pin);
		if (system(c))
			rc = rc ? rc : 1;
	}
	return rc;
}
