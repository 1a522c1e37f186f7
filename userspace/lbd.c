// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd: flags, daemonizing, and the wiring of the one event loop: signals
 * (signalfd), a one-second timer (timerfd), the control socket. Everything
 * the service does happens in callbacks of that loop.
 *
 * Listener handover (`lbd --takeover`): in proxy mode the VIPs are sockets
 * lbd listens on, and a stop-then-start leaves a gap in which connections
 * are refused. The new lbd therefore asks the running one, over the control
 * socket, for its listening sockets (SCM_RIGHTS, as HAProxy's `-x` and
 * Envoy's hot restart do), serves on them, then tells the old one to stop
 * accepting; the old one lets go of its control socket and metrics port and
 * exits once its open connections finish (at most LBD_DRAIN_MS). The sockets
 * and their accept queues are never closed, so nothing is refused. Chosen
 * over a re-exec that keeps the descriptors: it needs no cooperation from
 * the old binary's exec path, works across an upgrade to a new binary with
 * any process manager, keeps the old process (and its open connections)
 * alive until they finish, and a new lbd that fails before it serves leaves
 * the old one accepting as before. The control socket already checks the
 * peer's credentials; handover further requires root or lbd's own user.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "decap.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "privs.h"
#include "service.h"

#define LBD_DEFAULT_CONF "/etc/lbd/lbd.conf"
#define LBD_HANDOVER_TIMEOUT_MS 5000
#define LBD_DRAIN_MS 60000  /* an old lbd's open connections after a handover */

struct lbd {
	const char *conf_path;
	struct lb_loop *loop;
	struct lb_svc *svc;
	struct lb_ctl *ctl;
	struct lb_metrics *metrics;
	struct lb_endpoint metrics_ep;  /* as configured */
	bool metrics_on;
	bool metrics_check;             /* a reload may have moved it */
	int sfd, tfd;
	struct lb_loop_handler sig_h, timer_h;
	bool quit;
	bool tick_due;
	bool cleanup;
	bool takeover;                  /* --takeover */
	bool handed_over;               /* a successor took the listeners */
	uint64_t drain_end;             /* set once control and metrics are let go */
	uint64_t stop_end;              /* SIGTERM: draining the node until then */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lbd [-f] [-c FILE] [-p PIDFILE] [-d] [--takeover]\n"
		"       lbd -t [-c FILE]        check the configuration and exit (0 ok, 1 errors)\n"
		"       lbd --cleanup [-c FILE] detach and remove what lbd pinned for FILE\n"
		"       lbd --decap IFACE [--gue-port PORT] [--decap-mode MODE]\n"
		"                               a backend's decapsulation of forward ipip/gue\n"
		"\n"
		"  -c, --config FILE    configuration (default " LBD_DEFAULT_CONF ")\n"
		"  -f, --foreground     stay in the foreground, log to stderr\n"
		"  -p, --pid-file FILE  pid file (default: pid_file of the lbd block)\n"
		"  -d, --debug          log debug lines\n"
		"  -t, --test           check the configuration: FILE:LINE: message per error\n"
		"      --cleanup        detach every interface and remove the pinned maps\n"
		"      --takeover       take the listening sockets of the lbd running on the\n"
		"                       same control socket (proxy mode: a restart or upgrade\n"
		"                       refuses no connection); it drains and exits\n"
		"      --decap IFACE    on a backend: strip ipip/ip6ip6/GUE from packets on IFACE\n"
		"                       whose inner destination is an address of this host (the\n"
		"                       VIP on lo), in the foreground until SIGTERM/SIGINT\n"
		"      --gue-port PORT  the GUE port to decapsulate (default 6080; 0: none)\n"
		"      --decap-mode MODE  auto (native XDP, else generic), xdp, xdp-generic, tc\n"
		"  -V, --version\n"
		"\n"
		"Signals: SIGHUP reloads the file (only the difference is applied; an invalid\n"
		"file changes nothing). SIGTERM/SIGINT exit and leave the data path forwarding\n"
		"for the next lbd to adopt; `lbctl stop` or `lbd --cleanup` remove it. With a\n"
		"bgp block, SIGTERM first drains the node (at most stop_drain).\n");
}

static void print_err(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s\n", msg);
}

static void log_err(void *ctx, const char *msg)
{
	(void)ctx;
	lb_err("%s", msg);
}

/* The old lbd's half of a takeover. `handover`: "pid N", then the proxy's
 * listening sockets; `handover done`: the successor serves, stop accepting. */
static int handover_serve(struct lbd *d, const struct lb_ctl_req *req, struct lb_buf *out)
{
	struct lb_buf lines = { 0 };
	int n;

	if (req->readonly || (req->uid != 0 && req->uid != geteuid())) {
		lb_buf_printf(out, "handover: only root or lbd's own user may take its listeners\n");
		return LB_CTL_FAILED;
	}
	if (req->argc == 2 && !strcmp(req->argv[1], "done")) {
		if (!d->handed_over) {
			d->handed_over = true;
			lb_svc_stop_accepting(d->svc);
			lb_info("handover: pid %d serves the VIPs now; draining %llu connection(s)",
				(int)req->pid, (unsigned long long)lb_svc_proxy_active(d->svc));
		}
		lb_buf_printf(out, "ok\n");
		return LB_CTL_OK;
	}
	if (req->argc != 1) {
		lb_buf_printf(out, "usage: handover [done]\n");
		return LB_CTL_USAGE;
	}
	if (d->handed_over) {
		lb_buf_printf(out, "handover: already handed over; this lbd is draining\n");
		return LB_CTL_FAILED;
	}
	n = lb_svc_listeners(d->svc, req->pass, &lines);
	if (n < 0) {
		lb_buf_free(&lines);
		if (n == -EOPNOTSUPP)
			lb_buf_printf(out, "handover: this lbd runs a BPF data path, not the userspace "
				      "proxy: stop it and start the new one (it adopts the pinned state)\n");
		else
			lb_buf_printf(out, "handover: %s\n", strerror(-n));
		return LB_CTL_FAILED;
	}
	lb_buf_printf(out, "pid %d\n%s", (int)getpid(), lines.data ? lines.data : "");
	lb_buf_free(&lines);
	lb_info("handover: %d listening socket(s) passed to pid %d", n, (int)req->pid);
	return LB_CTL_OK;
}

/* After `handover done`: once its answer is out, let go of the control
 * socket and the metrics port (the successor binds them), then wait for
 * the open connections, bounded. */
static void handover_drain(struct lbd *d)
{
	if (d->ctl) {
		if (lb_ctl_pending(d->ctl))
			return;
		lb_metrics_close(d->metrics);
		d->metrics = NULL;
		lb_ctl_close(d->ctl);
		d->ctl = NULL;
		d->drain_end = lb_now_ms() + LBD_DRAIN_MS;
	}
	if (!lb_svc_proxy_active(d->svc)) {
		lb_info("handover: drained, exiting");
		d->quit = true;
	} else if (lb_now_ms() >= d->drain_end) {
		lb_warn("handover: %llu connection(s) still open after %d s: closing them",
			(unsigned long long)lb_svc_proxy_active(d->svc), LBD_DRAIN_MS / 1000);
		d->quit = true;
	}
}

static int handle_ctl(void *ctx, const struct lb_ctl_req *req, struct lb_buf *out)
{
	struct lbd *d = ctx;
	int rc;

	if (!strcmp(req->argv[0], "handover"))
		return handover_serve(d, req, out);
	if (!strcmp(req->argv[0], "reload"))
		sd_notify(0, "RELOADING=1");
	rc = lb_svc_command(d->svc, req, out);
	if (!strcmp(req->argv[0], "reload")) {
		sd_notify(0, "READY=1");
		d->metrics_check = true;
	}
	if (lb_svc_stop_requested(d->svc)) {
		d->quit = true;
		d->cleanup = true;
	}
	return rc;
}

static void on_signal(void *arg, uint32_t events)
{
	struct lbd *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(d->sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			lb_info("SIGHUP: reloading %s", d->conf_path);
			sd_notify(0, "RELOADING=1");
			lb_svc_reload(d->svc, NULL);
			sd_notify(0, "READY=1");
			d->metrics_check = true;
			break;
		case SIGTERM:
		case SIGINT:
			/* a node that announces VIPs drains first (bounded); a
			 * second signal does not wait */
			if (!d->stop_end && d->svc && lb_svc_drain_for_stop(d->svc)) {
				d->stop_end = lb_now_ms() + lb_svc_stop_drain_ms(d->svc);
				break;
			}
			lb_info("%s: exiting", strsignal(si.ssi_signo));
			d->quit = true;
			break;
		case SIGCHLD:
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			break;
		}
	}
}

static void on_timer(void *arg, uint32_t events)
{
	struct lbd *d = arg;
	uint64_t ticks;

	(void)events;
	if (read(d->tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
		d->tick_due = true;
}

/* Between two batches of events: ticks free idle clients, and a client freed
 * in the middle of a batch could still have an event later in it. */
static void run_ticks(struct lbd *d)
{
	if (!d->tick_due)
		return;
	d->tick_due = false;
	lb_svc_tick(d->svc);
	if (d->ctl)
		lb_ctl_tick(d->ctl);
	lb_metrics_tick(d->metrics);
}

/* Scrapes before the service is up (or while it stops) get a 500. */
static int render_metrics(void *ctx, struct lb_buf *out)
{
	struct lbd *d = ctx;

	return d->svc ? lb_svc_metrics(d->svc, out) : -EAGAIN;
}

static int render_status(void *ctx, struct lb_buf *out)
{
	struct lbd *d = ctx;

	return d->svc ? lb_svc_status_json(d->svc, out) : -EAGAIN;
}

static int metrics_open(struct lbd *d, const struct lb_endpoint *ep, struct lb_metrics **out)
{
	struct lb_metrics_opts mo = {
		.addr = *ep, .render = render_metrics, .status = render_status, .ctx = d,
	};

	return lb_metrics_open(d->loop, &mo, out);
}

/* After a reload: follow the metrics line. Runs between two loop rounds,
 * never inside a callback, so no event of the old server is still queued. */
static void metrics_sync(struct lbd *d)
{
	struct lb_endpoint ep;
	struct lb_metrics *nm = NULL;
	bool on = lb_svc_metrics_addr(d->svc, &ep);

	if (d->handed_over) /* the port is the successor's */
		return;
	if (on == !!d->metrics && (!on || lb_endpoint_eq(&ep, &d->metrics_ep)))
		return;
	if (on && metrics_open(d, &ep, &nm) == -EADDRINUSE && d->metrics) {
		/* the new address overlaps the old one: let go of it first */
		lb_metrics_close(d->metrics);
		d->metrics = NULL;
		metrics_open(d, &ep, &nm);
	}
	if (on && !nm) {
		lb_err("metrics: keeping %s", d->metrics ? "the old endpoint" : "the endpoint off");
		return;
	}
	lb_metrics_close(d->metrics);
	d->metrics = nm;
	d->metrics_ep = ep;
	if (!on)
		lb_info("metrics: endpoint removed");
}

static int setup_fds(struct lbd *d)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->sfd < 0 || d->tfd < 0 || timerfd_settime(d->tfd, 0, &its, NULL))
		return -errno;
	d->sig_h = (struct lb_loop_handler){ on_signal, d };
	d->timer_h = (struct lb_loop_handler){ on_timer, d };
	err = lb_loop_add(d->loop, d->sfd, EPOLLIN, &d->sig_h);
	if (!err)
		err = lb_loop_add(d->loop, d->tfd, EPOLLIN, &d->timer_h);
	return err;
}

/* A pid file names a live lbd: refuse to start a second one on it (but
 * for the one this lbd took over, still draining). */
static int pid_file_write(const char *path, pid_t taken_over)
{
	char buf[32];
	FILE *f = fopen(path, "re");
	int fd, n;

	if (f) {
		long pid = 0;

		if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid != getpid() && pid != taken_over &&
		    !kill(pid, 0)) {
			fclose(f);
			lb_err("lbd is already running with pid %ld (pid file %s)", pid, path);
			return -EEXIST;
		}
		fclose(f);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		lb_err("cannot write pid file %s: %s", path, strerror(errno));
		return -errno;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, n) != n) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

/* Fork into the background; the parent exits with the child's startup
 * result, so `lbd -c FILE` fails visibly when the service cannot start. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		char rc = 1;

		close(p[1]);
		if (read(p[0], &rc, 1) != 1)
			rc = 1;
		_exit(rc);
	}
	close(p[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/"))
		return -errno;
	*ready_fd = p[1];
	return 0;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
}

/* A pid file naming this lbd (taken_over: see pid_file_write). */
static int pid_file_open(const char *pidf, pid_t taken_over, bool *written)
{
	char dir[LB_CONF_PATH_MAX], *sl;
	int err;

	if (!pidf[0])
		return 0;
	snprintf(dir, sizeof(dir), "%s", pidf);
	sl = strrchr(dir, '/');
	if (sl && sl != dir) {
		*sl = '\0';
		mkdir(dir, 0755);
	}
	err = pid_file_write(pidf, taken_over);
	*written = !err;
	return err;
}

/* The new lbd's first half of a takeover: the running lbd's listening
 * sockets. No lbd answering on the socket is a plain start (*old = 0). */
static int takeover_begin(const char *sock, int *fds, int *nfds, pid_t *old)
{
	char *argv[] = { "handover" };
	struct lb_buf out = { 0 };
	long pid = 0;
	int rc;

	*old = 0;
	*nfds = 0;
	rc = lb_ctl_call_fds(sock, "", 1, argv, LBD_HANDOVER_TIMEOUT_MS, &out, fds, LB_CTL_MAX_FDS,
			     nfds);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		lb_info("takeover: no lbd answers on %s: a plain start", sock);
		rc = 0;
	} else if (rc < 0) {
		lb_err("takeover: cannot ask the lbd on %s: %s", sock, strerror(-rc));
	} else if (rc || !out.data || sscanf(out.data, "pid %ld", &pid) != 1 || pid <= 0) {
		lb_err("takeover: the lbd on %s refused: %s", sock,
		       out.data ? strtok(out.data, "\n") : "no answer");
		rc = -EPERM;
	} else {
		*old = (pid_t)pid;
		lb_info("takeover: %d listening socket(s) from lbd pid %ld", *nfds, pid);
	}
	if (rc)
		while (*nfds)
			close(fds[--*nfds]);
	lb_buf_free(&out);
	return rc;
}

/* The second half, once this lbd serves on them: the old one stops
 * accepting and lets go of its control socket and metrics port; this one
 * takes the socket's name, the pid file and the port. Only a failure before
 * the old lbd stopped accepting is returned (this one then exits and the old
 * one serves on); after it, this lbd is the one serving, and what it cannot
 * take is logged, not fatal. */
static int takeover_finish(struct lbd *d, pid_t old, const char *sock, const char *pidf,
			   bool *pid_written)
{
	char *argv[] = { "handover", "done" };
	struct lb_buf out = { 0 };
	uint64_t end;
	int rc = lb_ctl_call(sock, "", 2, argv, LBD_HANDOVER_TIMEOUT_MS, &out);

	lb_buf_free(&out);
	if (rc) {
		lb_err("takeover: lbd pid %d did not stop accepting: %s", (int)old,
		       rc < 0 ? strerror(-rc) : "it refused");
		return rc < 0 ? rc : -EPROTO;
	}
	end = lb_now_ms() + LBD_HANDOVER_TIMEOUT_MS;
	while ((rc = lb_ctl_probe(sock)) == 0 || rc == -EAGAIN) {
		if (lb_now_ms() >= end) {
			lb_err("takeover: lbd pid %d still holds %s: the control socket stays at "
			       "%s.new", (int)old, sock, sock);
			return 0;
		}
		usleep(10 * 1000);
	}
	/* each says why it failed */
	if (!lb_ctl_rename(d->ctl, sock) && pid_file_open(pidf, old, pid_written))
		lb_err("takeover: serving without a pid file");
	if (d->metrics_on && metrics_open(d, &d->metrics_ep, &d->metrics))
		lb_err("takeover: serving without the metrics endpoint");
	return 0;
}

static int run(struct lbd *d, struct lb_conf *cf, bool foreground, const char *pid_path)
{
	struct lb_ctl_opts co = { .handler = handle_ctl, .ctx = d };
	char pidf[LB_CONF_PATH_MAX], sock[LB_CONF_SOCK_MAX], group[LB_CONF_NAME_MAX];
	char ro_group[LB_CONF_NAME_MAX], tmp_sock[LB_CONF_SOCK_MAX + 8];
	int ready_fd = -1, nfds = 0, err;
	int fds[LB_CTL_MAX_FDS];
	bool pid_written = false;
	pid_t old = 0;
	char rc = 1;

	snprintf(pidf, sizeof(pidf), "%s", pid_path ? pid_path : cf->pid_file);
	if (!foreground) {
		err = daemonize(&ready_fd);
		if (err) {
			lb_err("cannot daemonize: %s", strerror(-err));
			return err;
		}
		lb_log_use_syslog("lbd");
	}
	err = lb_loop_new(&d->loop);
	if (!err)
		err = setup_fds(d);
	if (err) {
		lb_err("cannot set up the event loop: %s", strerror(-err));
		goto out;
	}
	if (d->takeover && (err = takeover_begin(cf->control, fds, &nfds, &old)))
		goto out;
	/* After a takeover, once the old lbd has let go of it. */
	if (!old && (err = pid_file_open(pidf, 0, &pid_written)))
		goto out;
	/* lb_svc_start takes cf over: keep what is still needed */
	snprintf(sock, sizeof(sock), "%s", cf->control);
	snprintf(group, sizeof(group), "%s", cf->control_group);
	snprintf(ro_group, sizeof(ro_group), "%s", cf->control_ro_group);
	/* A takeover binds beside the old lbd's socket (it answers there until
	 * it has let go of the listeners) and takes the name after. */
	snprintf(tmp_sock, sizeof(tmp_sock), "%s.new", sock);
	co.path = old ? tmp_sock : sock;
	co.group = group;
	co.ro_group = ro_group;
	co.max_request = cf->control_max_request;
	co.max_clients = (int)cf->control_max_clients;
	/* The socket first: a second lbd on the same socket stops here, before
	 * it touches the data path. */
	err = lb_ctl_open(d->loop, &co, &d->ctl);
	if (err)
		goto out_ctl; /* lb_ctl_open said why */
	d->metrics_ep = cf->metrics;
	d->metrics_on = cf->metrics_set;
	/* after a takeover, once the old lbd has let go of the port */
	if (d->metrics_on && !old) {
		err = metrics_open(d, &d->metrics_ep, &d->metrics);
		if (err)
			goto out_ctl; /* said why */
	}
	/* Sockets are bound: from here on lbd needs only what its data path,
	 * checks, proxy and workers use. Before lb_svc_start, so every thread
	 * and worker it creates inherits the reduced sets, and so the start
	 * itself proves the kept set suffices for a reload to do the same. */
	if (!cf->keep_caps) {
		struct lb_privs_need need = { .workers = cf->nworkers > 0 };

		for (int i = 0; i < cf->nworkers; i++)
			need.local |= cf->workers[i].vip[0] != '\0';

		err = lb_privs_drop(&need);
		if (err)
			goto out_metrics; /* said why */
	}
	err = lb_svc_start(d->conf_path, cf, fds, nfds, &d->svc);
	nfds = 0;
	if (err)
		goto out_metrics;
	if (old && (err = takeover_finish(d, old, sock, pidf, &pid_written))) {
		/* the running lbd serves on: no worker of ours may stay */
		lb_svc_proxy_stop(d->svc);
		lb_svc_stop(d->svc, false);
		goto out_metrics;
	}
	err = lb_svc_netlink_start(d->svc, d->loop);
	if (err)
		lb_warn("link events are off (links are re-checked every second): %s", strerror(-err));
	err = lb_svc_health_start(d->svc, d->loop);
	if (err)
		lb_err("health checks are off: %s", strerror(-err));
	err = lb_svc_workers_start(d->svc, d->loop);
	if (err)
		lb_err("workers: cannot start: %s", strerror(-err));
	err = lb_svc_bgp_start(d->svc, d->loop);
	if (err)
		lb_err("bgp: the VIPs are not announced: %s", strerror(-err));
	lb_info("lbd %s started (pid %d), control socket %s", LBD_VERSION, (int)getpid(), sock);
	sd_notifyf(0, "READY=1\nMAINPID=%d", (int)getpid());
	if (ready_fd >= 0) {
		rc = 0;
		if (write(ready_fd, &rc, 1) != 1)
			lb_warn("cannot tell the parent that lbd is ready");
		close(ready_fd);
		ready_fd = -1;
		detach_stdio();
	}
	while (!d->quit) {
		err = lb_loop_run_once(d->loop, 1000);
		if (err < 0) {
			lb_err("event loop: %s", strerror(-err));
			break;
		}
		run_ticks(d);
		if (d->metrics_check) {
			d->metrics_check = false;
			metrics_sync(d);
		}
		if (d->handed_over)
			handover_drain(d);
		if (d->stop_end && !d->quit) {
			if (lb_svc_drained(d->svc)) {
				lb_info("drained: exiting");
				d->quit = true;
			} else if (lb_now_ms() >= d->stop_end) {
				lb_warn("stop_drain over before the node drained (the withdrawal took "
					"long, or new flows kept coming within drain_quiet): exiting");
				d->quit = true;
			}
		}
	}
	err = 0;
	sd_notify(0, "STOPPING=1");
	/* after a handover the successor uses the VIP addresses: no cleanup */
	lb_svc_stop(d->svc, d->cleanup && !d->handed_over);
out_metrics:
	lb_metrics_close(d->metrics);
out_ctl:
	lb_ctl_close(d->ctl);
	/* after a handover the pid file names the successor */
	if (pid_written && !d->handed_over)
		unlink(pidf);
out:
	while (nfds)
		close(fds[--nfds]);
	if (ready_fd >= 0) {
		if (write(ready_fd, &rc, 1) != 1)
			err = err ? err : -EIO;
		close(ready_fd);
	}
	if (d->sfd > 0)
		close(d->sfd);
	if (d->tfd > 0)
		close(d->tfd);
	lb_loop_free(d->loop);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "debug", no_argument, NULL, 'd' },
		{ "test", no_argument, NULL, 't' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "takeover", no_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "decap", required_argument, NULL, 'D' },
		{ "gue-port", required_argument, NULL, 'G' },
		{ "decap-mode", required_argument, NULL, 'M' },
		{ 0 },
	};
	static const char *const decap_modes[] = { "auto", "xdp", "xdp-generic", "tc" };
	const char *decap_if = NULL, *gue_arg = NULL, *mode_arg = NULL;
	struct lbd d = { .conf_path = LBD_DEFAULT_CONF, .sfd = -1, .tfd = -1 };
	bool foreground = false, test = false, cleanup = false, debug = false;
	const char *pid_path = NULL;
	struct lb_conf cf;
	int c, err;

	while ((c = getopt_long(argc, argv, "c:fp:dtVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.conf_path = optarg; break;
		case 'f': foreground = true; break;
		case 'p': pid_path = optarg; break;
		case 'd': debug = true; break;
		case 't': test = true; break;
		case 'C': cleanup = true; break;
		case 'T': d.takeover = true; break;
		case 'V': printf("lbd %s\n", LBD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case 'D': decap_if = optarg; break;
		case 'G': gue_arg = optarg; break;
		case 'M': mode_arg = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lbd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (decap_if || gue_arg || mode_arg) {
		enum lb_decap_mode m = LB_DECAP_AUTO;
		unsigned long port = LB_GUE_DEFAULT_PORT;
		char *end = NULL;

		if (!decap_if) {
			fprintf(stderr, "lbd: --gue-port and --decap-mode go with --decap IFACE\n");
			return 2;
		}
		if (gue_arg) {
			errno = 0;
			port = strtoul(gue_arg, &end, 10);
			if (errno || !*gue_arg || *end || port > 65535) {
				fprintf(stderr, "lbd: --gue-port \"%s\": expected 0..65535\n", gue_arg);
				return 2;
			}
		}
		if (mode_arg) {
			for (m = LB_DECAP_AUTO; m <= LB_DECAP_TC; m++)
				if (!strcmp(mode_arg, decap_modes[m]))
					break;
			if (m > LB_DECAP_TC) {
				fprintf(stderr, "lbd: --decap-mode \"%s\": expected auto, xdp, xdp-generic or tc\n",
					mode_arg);
				return 2;
			}
		}
		lb_log_set_level(debug ? LB_LOG_DEBUG : LB_LOG_INFO);
		return lb_decap_run(decap_if, (__u16)port, m);
	}
	err = lb_config_load(d.conf_path, &cf, test ? print_err : log_err, NULL);
	if (test) {
		if (!err) {
			printf("%s: ok\n", d.conf_path);
			lb_config_free(&cf);
		}
		return err ? 1 : 0;
	}
	if (err)
		return 1;
	lb_log_set_level(debug ? LB_LOG_DEBUG : cf.log_level);
	if (cleanup) {
		err = lb_svc_cleanup(&cf);
		lb_config_free(&cf);
		return err ? 1 : 0;
	}
	err = run(&d, &cf, foreground, pid_path);
	if (d.svc == NULL)
		lb_config_free(&cf);
	return err ? 1 : 0;
}
