// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * supervisor.c with real children (sh, sleep, python3 listeners) in a real
 * lb_loop: environment and core pinning as the child sees them, crash
 * restarts with growing delays, errored after max_restarts, SIGKILL after
 * kill_timeout for a child that ignores SIGTERM, tcp and notify readiness,
 * a dead instance leaving the registered set before its restart, rolling
 * reload (never an empty set, new ports, old ones gone) and a reload whose
 * new instance never gets ready (aborted, the old one keeps serving).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "procstat.h"
#include "supervisor.h"

struct t {
	char dir[64];
	struct lb_loop *loop;
	struct lb_sup *sup;
	int changed;
	uint16_t base;
	struct lb_worker_conf w;
	struct lb_conf cf;
	char *argv[8];
	char *env[4];
	char cmd[1024];
};

static struct t T;

static void on_changed(void *ctx)
{
	(void)ctx;
	T.changed++;
}

struct be_set {
	int up, drain;
	uint16_t ports[16];
	int n;
};

static void be_cb(void *ctx, const struct lb_worker_conf *w, uint16_t port, int state, pid_t pid)
{
	struct be_set *b = ctx;

	(void)w;
	(void)pid;
	if (state == LB_BE_UP)
		b->up++;
	else
		b->drain++;
	if (b->n < 16)
		b->ports[b->n++] = port;
}

static struct be_set backends(void)
{
	struct be_set b = { 0 };

	lb_sup_backends(T.sup, be_cb, &b);
	return b;
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	snprintf(T.dir, sizeof(T.dir), "/tmp/test_sup.XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	assert_int_equal(lb_loop_new(&T.loop), 0);
	/* loopback ports, away from the usual ones and from parallel runs,
	 * and below the ephemeral range (32768-60999): a connection's local
	 * port there held the listening port of CI's run for a whole test
	 * (EADDRINUSE at every restart) */
	T.base = (uint16_t)(20000 + (getpid() % 1000) * 8);
	snprintf(T.w.name, sizeof(T.w.name), "app");
	T.w.instances = LB_INST_COUNT;
	T.w.instances_n = 1;
	T.w.port = T.base;
	T.w.ready = LB_READY_NONE;
	T.w.min_uptime_ms = 1000;
	T.w.max_restarts = 16;
	T.w.restart_delay_ms = 100;
	T.w.kill_timeout_ms = 1600;
	T.w.log_keep = 5;
	T.argv[0] = "sh";
	T.argv[1] = "-c";
	T.argv[2] = T.cmd;
	T.w.argv = T.argv;
	T.w.argc = 3;
	T.w.env = T.env;
	T.cf.workers = &T.w;
	T.cf.nworkers = 1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	lb_sup_free(T.sup);
	lb_loop_free(T.loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", T.dir);
	if (system(cmd))
		return -1;
	return 0;
}

static void start(uint32_t ready_timeout_ms, int ncpu)
{
	struct lb_sup_opts o = { .loop = T.loop, .ncpu = ncpu, .changed = on_changed,
				 .ready_timeout_ms = ready_timeout_ms, .state_dir = T.dir };

	assert_int_equal(lb_sup_new(&o, &T.sup), 0);
	assert_int_equal(lb_sup_sync(T.sup, &T.cf), 0);
}

typedef bool (*pred_fn)(void);

/* Run the loop until pred() or timeout; returns the milliseconds taken. */
static long run_until(pred_fn pred, long timeout_ms)
{
	uint64_t t0 = lb_now_ms();

	while (!pred()) {
		if ((long)(lb_now_ms() - t0) > timeout_ms)
			return -1;
		lb_loop_run_once(T.loop, 20);
	}
	return (long)(lb_now_ms() - t0);
}

static void run_for(long ms)
{
	uint64_t t0 = lb_now_ms();

	while ((long)(lb_now_ms() - t0) < ms)
		lb_loop_run_once(T.loop, 10);
}

static struct lb_sup_inst_info inst(int i)
{
	struct lb_sup_inst_info in = { 0 };

	assert_int_equal(lb_sup_inst(T.sup, "app", i, &in), 0);
	return in;
}

static bool file_has_lines(const char *name, int n)
{
	char p[128], line[256];
	int k = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", T.dir, name);
	f = fopen(p, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		k++;
	fclose(f);
	return k >= n;
}

static bool both_env_files(void) { return file_has_lines("env-0", 2) && file_has_lines("env-1", 2); }

static void test_env_and_affinity(void **st)
{
	char p[128], l1[256], l2[256];

	(void)st;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		print_message("SKIP: test_env_and_affinity: needs 2 cores\n");
		skip();
	}
	T.w.instances_n = 2;
	T.env[0] = "FOO=bar baz";
	T.w.nenv = 1;
	snprintf(T.cmd, sizeof(T.cmd),
		 "f=%s/env-$LBD_INSTANCE; echo \"$PORT $LBD_INSTANCE $LBD_WORKER $FOO\" > $f.tmp; "
		 "grep Cpus_allowed_list /proc/self/status >> $f.tmp; mv $f.tmp $f; exec sleep 30",
		 T.dir);
	start(0, 2);
	assert_true(run_until(both_env_files, 5000) >= 0);
	for (int i = 0; i < 2; i++) {
		FILE *f;
		char want[128];

		snprintf(p, sizeof(p), "%s/env-%d", T.dir, i);
		f = fopen(p, "r");
		assert_non_null(f);
		assert_non_null(fgets(l1, sizeof(l1), f));
		assert_non_null(fgets(l2, sizeof(l2), f));
		fclose(f);
		snprintf(want, sizeof(want), "%u %d app bar baz\n", T.base + i, i);
		assert_string_equal(l1, want);
		snprintf(want, sizeof(want), "Cpus_allowed_list:\t%d\n", i);
		assert_string_equal(l2, want);
		assert_int_equal(inst(i).core, i);
	}
	/* ready none: both registered at once */
	assert_int_equal(backends().up, 2);
}

static bool errored(void) { return !strcmp(inst(0).state, "errored"); }

static void test_backoff_and_errored(void **st)
{
	long gaps[8];
	uint64_t t[8];
	char p[128];
	FILE *f;
	int n = 0;

	(void)st;
	T.w.max_restarts = 5;
	snprintf(T.cmd, sizeof(T.cmd),
		 "date +%%s%%N >> %s/starts; exit 3", T.dir);
	start(0, 1);
	assert_true(run_until(errored, 8000) >= 0);
	snprintf(p, sizeof(p), "%s/starts", T.dir);
	f = fopen(p, "r");
	assert_non_null(f);
	while (n < 8 && fscanf(f, "%lu", &t[n]) == 1)
		n++;
	fclose(f);
	/* 5 deaths before min_uptime: 1 start + 4 restarts, then errored */
	assert_int_equal(n, 5);
	assert_int_equal(inst(0).restarts, 4);
	for (int i = 1; i < n; i++)
		gaps[i - 1] = (long)((t[i] - t[i - 1]) / 1000000);
	print_message("  restart gaps: %ld %ld %ld %ld ms (delays 100 150 225 337)\n", gaps[0],
		      gaps[1], gaps[2], gaps[3]);
	assert_true(gaps[0] >= 100 && gaps[0] < 400);
	assert_true(gaps[1] >= 150);
	assert_true(gaps[2] >= 225);
	assert_true(gaps[3] >= 337);
	assert_true(gaps[3] > gaps[0]);
	/* it stays down */
	run_for(600);
	assert_int_equal(inst(0).pid, 0);
	assert_string_equal(inst(0).state, "errored");
	/* until an operator restarts it */
	assert_int_equal(lb_sup_restart(T.sup, "app"), 0);
	assert_true(inst(0).pid > 0);
}

static pid_t first_pid;
static bool new_pid(void) { return inst(0).pid > 0 && inst(0).pid != first_pid; }

static void test_kill_timeout(void **st)
{
	long ms;

	(void)st;
	T.w.kill_timeout_ms = 400;
	snprintf(T.cmd, sizeof(T.cmd), "trap '' TERM; while :; do sleep 0.05; done");
	start(0, 1);
	run_for(200);
	first_pid = inst(0).pid;
	assert_true(first_pid > 0);
	assert_int_equal(lb_sup_restart(T.sup, "app"), 0);
	assert_string_equal(inst(0).state, "stopping");
	assert_int_equal(backends().up, 0); /* left the set at once */
	ms = run_until(new_pid, 3000);
	print_message("  SIGTERM ignored: replaced after %ld ms (kill_timeout 400)\n", ms);
	assert_true(ms >= 380);
	assert_true(ms < 1500);
	assert_int_equal(kill(first_pid, 0), -1); /* reaped, no zombie */
	assert_int_equal(errno, ESRCH);
}

static void listener_cmd(const char *delay)
{
	snprintf(T.cmd, sizeof(T.cmd),
		 "exec python3 -c 'import os,socket,time\n"
		 "time.sleep(%s)\n"
		 "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		 "s.bind((\"127.0.0.1\", int(os.environ[\"PORT\"]))); s.listen(64)\n"
		 "while True: c,_=s.accept(); c.close()'", delay);
}

static bool one_up(void) { return backends().up == 1; }
static bool none_up(void) { return backends().up == 0; }

static void test_tcp_ready_and_crash(void **st)
{
	long ms;
	pid_t pid;

	(void)st;
	T.w.ready = LB_READY_TCP;
	listener_cmd("0.3");
	start(0, 1);
	assert_int_equal(backends().up, 0);
	ms = run_until(one_up, 5000);
	print_message("  tcp ready after %ld ms (listens after 300)\n", ms);
	assert_true(ms >= 250);
	assert_int_equal(backends().ports[0], T.base);
	assert_true(T.changed >= 1);

	/* kill -9: out of the set before the restart, back once ready */
	pid = inst(0).pid;
	kill(pid, SIGKILL);
	assert_true(run_until(none_up, 2000) >= 0);
	assert_true(inst(0).pid == 0 || inst(0).pid != pid);
	assert_string_not_equal(inst(0).state, "online");
	ms = run_until(one_up, 5000);
	print_message("  crash -> serving again after %ld ms\n", ms);
	assert_true(ms >= 0);
	assert_int_equal(inst(0).restarts, 1);
}

static void test_notify_ready(void **st)
{
	long ms;

	(void)st;
	T.w.ready = LB_READY_NOTIFY;
	snprintf(T.cmd, sizeof(T.cmd),
		 "exec python3 -c 'import os,socket,time\n"
		 "time.sleep(0.2)\n"
		 "a=os.environ[\"NOTIFY_SOCKET\"]\n"
		 "a=\"\\0\"+a[1:] if a[0]==\"@\" else a\n"
		 "s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
		 "s.sendto(b\"STATUS=warming\\nREADY=1\\n\", a)\n"
		 "time.sleep(30)'");
	start(0, 1);
	ms = run_until(one_up, 5000);
	print_message("  notify READY=1 after %ld ms\n", ms);
	assert_true(ms >= 150);
}

static struct be_set min_set;
static bool roll_done(void)
{
	struct be_set b = backends();

	if (b.up < min_set.up)
		min_set.up = b.up;
	return b.up == 2 && b.drain == 0 && inst(0).port == T.base + 2 &&
	       inst(1).port == T.base + 3 && !strcmp(inst(1).state, "online");
}

static bool two_up(void) { return backends().up == 2; }
static bool old_gone_pid[2];
static pid_t old_pids[2];

static void test_rolling_reload(void **st)
{
	struct lb_buf o = { 0 };
	char *argv[] = { "worker", "list" };
	long ms;

	(void)st;
	T.w.instances_n = 2;
	T.w.ready = LB_READY_TCP;
	T.w.kill_timeout_ms = 300;
	listener_cmd("0.1");
	start(0, 2);
	assert_true(run_until(two_up, 5000) >= 0);
	old_pids[0] = inst(0).pid;
	old_pids[1] = inst(1).pid;
	min_set.up = 2;
	assert_int_equal(lb_sup_reload(T.sup, "app"), 0);
	assert_int_equal(lb_sup_reload(T.sup, "app"), -EBUSY);
	ms = run_until(roll_done, 8000);
	print_message("  rolling reload of 2: %ld ms, fewest online during it: %d\n", ms,
		      min_set.up);
	assert_true(ms >= 0);
	assert_int_equal(min_set.up, 2); /* never fewer than 2 serving */
	run_for(800);                    /* drain (300) + stop */
	for (int i = 0; i < 2; i++) {
		old_gone_pid[i] = kill(old_pids[i], 0) && errno == ESRCH;
		assert_true(old_gone_pid[i]);
		assert_int_not_equal(inst(i).pid, old_pids[i]);
	}
	assert_int_equal(backends().drain, 0);
	assert_int_equal(lb_sup_command(T.sup, 2, argv, false, false, &o), LB_CTL_OK);
	print_message("%s", o.data);
	assert_non_null(strstr(o.data, "online"));
	lb_buf_free(&o);
}

/* Rows of `worker list`: the instances, a replacement, retired ones. */
static int listed(void)
{
	struct lb_buf o = { 0 };
	int n = 0;

	lb_sup_list(T.sup, false, &o);
	for (const char *p = o.data; p && (p = strstr(p, "\napp ")); p++)
		n++;
	lb_buf_free(&o);
	return n;
}

static bool repl_gone(void) { return listed() == 1; }

static bool base_serves(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(T.base),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa));

	if (fd >= 0)
		close(fd);
	return ok;
}

static void test_reload_never_ready_aborts(void **st)
{
	pid_t old;
	long ms;

	(void)st;
	/* The first instance is online at once: on a loaded machine python
	 * takes longer than this test's 600 ms ready timeout to listen, and a
	 * tcp-ready first instance would be restarted over and over. */
	T.w.ready = LB_READY_NONE;
	listener_cmd("0");
	start(600, 1);
	assert_int_equal(backends().up, 1);
	old = inst(0).pid;
	assert_true(run_until(base_serves, 20000) >= 0);
	/* the new settings wait for a port that never listens */
	T.w.ready = LB_READY_TCP;
	T.w.env[0] = "CHANGED=1";
	T.w.nenv = 1;
	snprintf(T.cmd, sizeof(T.cmd), "exec sleep 30");
	assert_int_equal(lb_sup_sync(T.sup, &T.cf), 0);
	assert_int_equal(listed(), 2); /* the replacement runs beside the old one */
	ms = run_until(repl_gone, 20000);
	print_message("  replacement that never got ready gone after %ld ms (ready timeout 600)\n",
		      ms);
	assert_true(ms >= 500);
	assert_int_equal(inst(0).pid, old);
	assert_string_equal(inst(0).state, "online");
	assert_int_equal(backends().up, 1);
	assert_int_equal(backends().ports[0], T.base);
	assert_true(base_serves());
}

static void test_scale_and_remove(void **st)
{
	(void)st;
	snprintf(T.cmd, sizeof(T.cmd), "exec sleep 30");
	start(0, 1);
	assert_int_equal(backends().up, 1);
	T.w.instances_n = 3;
	assert_int_equal(lb_sup_sync(T.sup, &T.cf), 0);
	assert_int_equal(backends().up, 3);
	T.w.instances_n = 1;
	assert_int_equal(lb_sup_sync(T.sup, &T.cf), 0);
	assert_int_equal(backends().up, 1);
	T.cf.nworkers = 0;
	assert_int_equal(lb_sup_sync(T.sup, &T.cf), 0);
	assert_int_equal(backends().up, 0);
	run_for(300);
	assert_int_equal(lb_sup_inst(T.sup, "app", 0, &(struct lb_sup_inst_info){ 0 }), -ENOENT);
}

/* lbd goes (kill -9, upgrade): the instances stay; the next one adopts
 * them by their pid files, and refuses a file whose process is not the
 * one it names (same pid, other start time). */
static void test_adopt(void **st)
{
	pid_t p0, p1;
	char path[128];
	FILE *f;

	(void)st;
	T.w.instances_n = 2;
	snprintf(T.cmd, sizeof(T.cmd), "exec sleep 30");
	start(0, 1);
	p0 = inst(0).pid;
	p1 = inst(1).pid;
	lb_sup_leave(T.sup);
	T.sup = NULL;
	assert_int_equal(kill(p0, 0), 0);
	/* instance 1's file now names a process that is not it */
	snprintf(path, sizeof(path), "%s/worker-app-1-0.pid", T.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%d 1 %u\n", (int)p1, T.base + 1);
	fclose(f);
	T.changed = 0;
	start(0, 1);
	assert_int_equal(inst(0).pid, p0);
	assert_string_equal(inst(0).state, "online");
	assert_int_not_equal(inst(1).pid, p1);
	assert_int_equal(backends().up, 2);
	assert_true(T.changed >= 1);
	kill(p1, SIGKILL); /* the orphan the false pid file hid */
}

static bool stopped(void) { return inst(0).pid == 0 && !strcmp(inst(0).state, "stopped"); }

/* lbctl worker stop|start|scale|logs */
static void test_commands(void **st)
{
	char *stop[] = { "worker", "stop", "app" }, *startc[] = { "worker", "start", "app" };
	char *scale[] = { "worker", "scale", "app", "3" }, *bad[] = { "worker", "scale", "app", "0" };
	char *logs[] = { "worker", "logs", "app", "-n", "2" }, *none[] = { "worker", "stop", "nope" };
	struct lb_buf o = { 0 };

	(void)st;
	snprintf(T.w.log, sizeof(T.w.log), "%s/app-%%i.log", T.dir);
	snprintf(T.cmd, sizeof(T.cmd), "echo one; echo two; echo \"three $LBD_INSTANCE\"; exec sleep 30");
	start(0, 1);
	assert_int_equal(lb_sup_command(T.sup, 3, stop, false, false, &o), LB_CTL_OK);
	assert_true(run_until(stopped, 3000) >= 0);
	run_for(300); /* no restart */
	assert_int_equal(inst(0).pid, 0);
	assert_int_equal(backends().up, 0);
	assert_int_equal(lb_sup_command(T.sup, 3, startc, false, false, &o), LB_CTL_OK);
	assert_true(inst(0).pid > 0);
	assert_int_equal(lb_sup_command(T.sup, 4, scale, false, false, &o), LB_CTL_OK);
	assert_int_equal(backends().up, 3);
	assert_int_equal(lb_sup_command(T.sup, 4, bad, false, false, &o), LB_CTL_USAGE);
	assert_int_equal(lb_sup_command(T.sup, 3, none, false, false, &o), LB_CTL_FAILED);
	run_for(300);
	lb_buf_free(&o);
	assert_int_equal(lb_sup_command(T.sup, 5, logs, false, false, &o), LB_CTL_OK);
	assert_non_null(strstr(o.data, "app-0.log (instance 0) <==\ntwo\nthree 0\n"));
	assert_non_null(strstr(o.data, "app-2.log (instance 2) <==\ntwo\nthree 2\n"));
	assert_null(strstr(o.data, "one"));
	lb_buf_free(&o);
}

static bool rotated(void)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/app-0.log.2", T.dir);
	return !stat(p, &st);
}

/* log_max_size: copy-truncate rotation, log_keep files kept. */
static void test_log_rotation(void **st)
{
	char p[128];
	struct stat sb;
	long ms;

	(void)st;
	snprintf(T.w.log, sizeof(T.w.log), "%s/app-%%i.log", T.dir);
	T.w.log_max_size = 4096;
	T.w.log_keep = 2;
	/* 100 lines of 100 bytes a second */
	snprintf(T.cmd, sizeof(T.cmd), "while :; do printf '%%099d\\n' 7; sleep 0.01; done");
	start(0, 1);
	ms = run_until(rotated, 8000);
	print_message("  two rotations after %ld ms\n", ms);
	assert_true(ms >= 0);
	snprintf(p, sizeof(p), "%s/app-0.log.1", T.dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size > 4096 && sb.st_size % 100 == 0);
	snprintf(p, sizeof(p), "%s/app-0.log", T.dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size < 4096 + 2000);
	snprintf(p, sizeof(p), "%s/app-0.log.3", T.dir);
	assert_int_not_equal(stat(p, &sb), 0); /* keep 2 */
}

/* The start time and parent that pid files rely on: this process's, a
 * child's (later than its parent's, and the same on every read), and none
 * for a process that is gone. */
static void test_procstat(void **st)
{
	struct lb_procstat me, kid, again;
	int status;
	pid_t pid;

	(void)st;
	assert_int_equal(lb_procstat(getpid(), &me), 0);
	assert_int_equal(me.ppid, getppid());
	assert_true(me.start > 0);
	assert_int_equal(lb_proc_start(getpid()), me.start);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		/* gone with the test, whatever becomes of it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(10);
		pause();
		_exit(0);
	}
	assert_int_equal(lb_procstat(pid, &kid), 0);
	assert_int_equal(kid.ppid, getpid());
	assert_true(kid.start >= me.start);
	assert_int_equal(lb_procstat(pid, &again), 0);
	assert_int_equal(again.start, kid.start);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(lb_procstat(pid, &kid), -ESRCH);
	assert_int_equal(lb_proc_start(pid), 0);
}

#define TS(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TS(test_env_and_affinity),
		TS(test_backoff_and_errored),
		TS(test_kill_timeout),
		TS(test_tcp_ready_and_crash),
		TS(test_notify_ready),
		TS(test_rolling_reload),
		TS(test_reload_never_ready_aborts),
		TS(test_scale_and_remove),
		TS(test_adopt),
		TS(test_commands),
		TS(test_log_rotation),
		cmocka_unit_test(test_procstat),
	};

	lb_log_set_level(LB_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
