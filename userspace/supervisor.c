// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Worker supervision in lbd's loop. Each instance is watched by its pidfd
 * (readable when the process exits; the exit status is read with
 * waitid(P_PIDFD) when lbd's SIGCHLD handler has not reaped it first), so
 * no wait ever blocks and no pid is confused with a reused one. Timing
 * (restart backoff, readiness polling and timeout, drain, SIGKILL after
 * kill_timeout, the memory check) is one timerfd armed for the earliest
 * deadline.
 *
 * Ports: instance i listens on port + i. A rolling reload starts the
 * replacement of instance i on the spare port port + n + i (and the next
 * reload goes back), so both can serve while the old one drains: the
 * replacement is registered as soon as it is ready, the old one is marked
 * draining (no new flows), given kill_timeout for its connections, then
 * stopped. If the replacement does not become ready, the reload is aborted
 * and the old instance keeps serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "procstat.h"
#include "supervisor.h"

#define SUP_MAX_INST      256
#define SUP_PROBE_MS      50      /* readiness polling */
#define SUP_MEM_CHECK_MS  1000

extern char **environ;

enum inst_state {
	ST_STOPPED = 0,
	ST_STARTING,   /* spawned, not ready yet */
	ST_ONLINE,     /* ready: registered */
	ST_DRAINING,   /* replaced: registered as draining until t_due */
	ST_STOPPING,   /* SIGTERM sent; SIGKILL at t_due */
	ST_BACKOFF,    /* died; respawn at t_due */
	ST_ERRORED,    /* died max_restarts times too soon: left down */
};

static const char *const state_names[] = {
	[ST_STOPPED] = "stopped", [ST_STARTING] = "starting", [ST_ONLINE] = "online",
	[ST_DRAINING] = "draining", [ST_STOPPING] = "stopping", [ST_BACKOFF] = "waiting",
	[ST_ERRORED] = "errored",
};

struct sup_worker;

struct inst {
	struct sup_worker *w;
	struct lb_sup *s;
	int slot;             /* LBD_INSTANCE */
	int bank;             /* 0: port + slot, 1: port + n + slot */
	uint16_t port;
	int core;
	enum inst_state st;
	pid_t pid;
	int pidfd, nfd, probe;
	struct lb_loop_handler ph, nh;
	uint64_t t_start, t_due;
	uint64_t delay;       /* next restart delay */
	uint32_t restarts, unstable;
	bool respawn;         /* after this stop, start again */
	bool retire;          /* after this stop, free */
	struct inst *old;     /* a replacement: the instance it replaces */
};

struct sup_worker {
	struct lb_worker_conf c;
	int n;
	struct inst *slot[SUP_MAX_INST];
	struct inst *retired[2 * SUP_MAX_INST]; /* draining or stopping for good */
	int nretired;
	struct inst *repl;    /* replacement in flight */
	int roll_next;        /* -1: no rolling reload */
	bool removed;
};

struct lb_sup {
	struct lb_sup_opts o;
	struct lb_loop *loop;
	int cpus[CPU_SETSIZE];
	int ncpu;
	int tfd;
	struct lb_loop_handler th;
	struct sup_worker **w;
	int nw;
	bool dirty;           /* the registered set changed */
	uint64_t mem_due;
	unsigned int seq;     /* notify socket names */
};

/* ---- worker conf copies --------------------------------------------- */

static char **strv_dup(char *const *v, int n)
{
	char **d = calloc(n + 1, sizeof(*d));

	for (int i = 0; d && i < n; i++) {
		d[i] = strdup(v[i]);
		if (!d[i]) {
			while (i--)
				free(d[i]);
			free(d);
			return NULL;
		}
	}
	return d;
}

static void strv_free(char **v)
{
	for (int i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int wconf_copy(struct lb_worker_conf *d, const struct lb_worker_conf *c)
{
	*d = *c;
	d->argv = strv_dup(c->argv, c->argc);
	d->env = strv_dup(c->env, c->nenv);
	if (!d->argv || !d->env) {
		strv_free(d->argv);
		strv_free(d->env);
		return -ENOMEM;
	}
	return 0;
}

static bool strv_eq(char *const *a, int an, char *const *b, int bn)
{
	if (an != bn)
		return false;
	for (int i = 0; i < an; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/* Same processes: what the instances were started with is unchanged
 * (the rest, timeouts, VIP, instance count, applies without a restart). */
static bool wconf_same_run(const struct lb_worker_conf *a, const struct lb_worker_conf *b)
{
	return a->port == b->port && a->ready == b->ready && !strcmp(a->user, b->user) &&
	       !strcmp(a->cwd, b->cwd) && !strcmp(a->log, b->log) &&
	       strv_eq(a->argv, a->argc, b->argv, b->argc) &&
	       strv_eq(a->env, a->nenv, b->env, b->nenv);
}

/* ---- timing ---------------------------------------------------------- */

static void arm(struct lb_sup *s)
{
	struct itimerspec its = { 0 };
	uint64_t due = UINT64_MAX;

	for (int i = 0; i < s->nw; i++) {
		struct sup_worker *w = s->w[i];

		for (int k = 0; k < w->n + w->nretired + 1; k++) {
			struct inst *in = k < w->n ? w->slot[k] : k < w->n + w->nretired ?
					  w->retired[k - w->n] : w->repl;

			if (in && in->t_due && in->t_due < due)
				due = in->t_due;
		}
		if ((w->c.max_memory || (w->c.log[0] && w->c.log_max_size)) && s->mem_due < due)
			due = s->mem_due;
	}
	if (due != UINT64_MAX) {
		/* absolute CLOCK_MONOTONIC, and never 0 (which disarms) */
		its.it_value.tv_sec = (time_t)(due / 1000);
		its.it_value.tv_nsec = (long)(due % 1000) * 1000000 + 1;
	}
	timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void flush(struct lb_sup *s)
{
	if (s->dirty) {
		s->dirty = false;
		if (s->o.changed)
			s->o.changed(s->o.ctx);
	}
	arm(s);
}

static bool registered(const struct inst *in)
{
	return in->st == ST_ONLINE || in->st == ST_DRAINING;
}

static void set_state(struct inst *in, enum inst_state st)
{
	if (registered(in) != (st == ST_ONLINE || st == ST_DRAINING) ||
	    (registered(in) && in->st != st))
		in->s->dirty = true;
	in->st = st;
}

/* ---- spawning -------------------------------------------------------- */

static void close_fd(struct lb_sup *s, int *fd, bool in_loop)
{
	if (*fd < 0)
		return;
	if (in_loop)
		lb_loop_del(s->loop, *fd);
	close(*fd);
	*fd = -1;
}

static bool env_has(char **env, int n, const char *kv)
{
	size_t kl = strcspn(kv, "=");

	for (int i = 0; i < n; i++)
		if (!strncmp(env[i], kv, kl) && env[i][kl] == '=')
			return true;
	return false;
}

/* Ours first (PORT, LBD_INSTANCE, ...), then the block's env, then lbd's
 * own environment for whatever neither names. */
static char **build_env(const struct inst *in, const char *notify)
{
	const struct lb_worker_conf *c = &in->w->c;
	int ne = 0, max = 8 + c->nenv;
	char **env;

	for (char **e = environ; e && *e; e++)
		max++;
	env = calloc(max + 1, sizeof(*env));
	if (!env)
		return NULL;
	if (asprintf(&env[ne++], "PORT=%u", in->port) < 0 ||
	    asprintf(&env[ne++], "LBD_INSTANCE=%d", in->slot) < 0 ||
	    asprintf(&env[ne++], "LBD_WORKER=%s", c->name) < 0 ||
	    (notify && asprintf(&env[ne++], "NOTIFY_SOCKET=%s", notify) < 0))
		goto fail;
	for (int i = 0; i < c->nenv; i++)
		if (!env_has(env, ne, c->env[i]) && !(env[ne++] = strdup(c->env[i])))
			goto fail;
	for (char **e = environ; e && *e; e++)
		if (!env_has(env, ne, *e) && strncmp(*e, "NOTIFY_SOCKET=", 14) &&
		    !(env[ne++] = strdup(*e)))
			goto fail;
	return env;
fail:
	strv_free(env);
	return NULL;
}

static void log_path(const struct inst *in, char *buf, size_t len)
{
	const char *p = in->w->c.log;
	size_t o = 0;

	for (; *p && o + 1 < len; p++) {
		if (p[0] == '%' && p[1] == 'i') {
			o += snprintf(buf + o, len - o, "%d", in->slot);
			p++;
		} else {
			buf[o++] = *p;
		}
		if (o >= len)
			o = len - 1;
	}
	buf[o] = '\0';
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child(const struct inst *in, char **env, const char *logp, uid_t uid, gid_t gid)
{
	const struct lb_worker_conf *c = &in->w->c;
	sigset_t none;
	int fd;

	setpgid(0, 0);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (in->core >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(in->core, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	if (logp[0]) {
		fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0640);
		if (fd < 0) {
			dprintf(2, "lbd: worker %s: cannot open %s: %s\n", c->name, logp, strerror(errno));
			_exit(126);
		}
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	} else {
		dup2(2, 1);
	}
	close_range(3, ~0u, 0);
	if (c->cwd[0] && chdir(c->cwd)) {
		dprintf(2, "lbd: worker %s: cannot chdir to %s: %s\n", c->name, c->cwd, strerror(errno));
		_exit(126);
	}
	if (c->user[0] && (setgroups(0, NULL) || setgid(gid) || setuid(uid))) {
		dprintf(2, "lbd: worker %s: cannot become %s: %s\n", c->name, c->user, strerror(errno));
		_exit(126);
	}
	execvpe(c->argv[0], c->argv, env);
	dprintf(2, "lbd: worker %s: cannot run %s: %s\n", c->name, c->argv[0], strerror(errno));
	_exit(127);
}

static int notify_open(struct inst *in, char *name, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t sl;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* abstract: nothing to clean up, and private to this netns */
	snprintf(name, len, "@lbd-%d-%s-%d-%u", (int)getpid(), in->w->c.name, in->slot, ++in->s->seq);
	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "%s", name + 1);
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	if (bind(fd, (struct sockaddr *)&sa, sl)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static void on_exit_ev(void *arg, uint32_t events);
static void on_notify(void *arg, uint32_t events);
static void inst_ready(struct inst *in);

/* ---- pid files: a restarted lbd adopts what is still running ---------- */

static bool pid_path(const struct inst *in, int bank, char *buf, size_t len)
{
	if (!in->s->o.state_dir)
		return false;
	snprintf(buf, len, "%s/worker-%s-%d-%d.pid", in->s->o.state_dir, in->w->c.name, in->slot,
		 bank);
	return true;
}

static void pid_write(const struct inst *in)
{
	char p[LB_CONF_PATH_MAX + 96], tmp[sizeof(p) + 8];
	FILE *f;

	if (!pid_path(in, in->bank, p, sizeof(p)))
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%d %llu %u\n", (int)in->pid, lb_proc_start(in->pid), in->port);
	if (fclose(f) || rename(tmp, p))
		unlink(tmp);
}

static void pid_unlink(const struct inst *in, int bank)
{
	char p[LB_CONF_PATH_MAX + 96];

	if (pid_path(in, bank, p, sizeof(p)))
		unlink(p);
}

/* The instance of this slot that a previous lbd left running, if its pid
 * file still names the very process (same start time). */
static bool adopt(struct inst *in)
{
	bool done = false;

	for (int bank = 0; bank < 2; bank++) {
		char p[LB_CONF_PATH_MAX + 96];
		unsigned long long start = 0;
		unsigned int port = 0;
		int pid = 0, fd;
		FILE *f;

		if (!pid_path(in, bank, p, sizeof(p)) || !(f = fopen(p, "re")))
			continue;
		if (fscanf(f, "%d %llu %u", &pid, &start, &port) != 3)
			pid = 0;
		fclose(f);
		if (pid <= 0 || !start || lb_proc_start(pid) != start) {
			lb_warn("worker %s: instance %d: pid %d of %s is gone: not adopted",
				in->w->c.name, in->slot, pid, p);
			unlink(p);
			continue;
		}
		if (done) { /* a reload was cut short: keep one */
			kill(-pid, SIGTERM);
			unlink(p);
			continue;
		}
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0)
			continue;
		in->pid = pid;
		in->pidfd = fd;
		in->bank = bank;
		in->port = (uint16_t)port;
		in->t_start = lb_now_ms();
		in->ph = (struct lb_loop_handler){ on_exit_ev, in };
		lb_loop_add(in->s->loop, in->pidfd, EPOLLIN, &in->ph);
		in->st = ST_STARTING;
		lb_info("worker %s: instance %d adopted (pid %d, port %u)", in->w->c.name, in->slot,
			pid, in->port);
		inst_ready(in); /* it was serving */
		done = true;
	}
	return done;
}

static int spawn(struct inst *in)
{
	struct lb_sup *s = in->s;
	const struct lb_worker_conf *c = &in->w->c;
	char notify[108] = "", logp[LB_CONF_PATH_MAX + 16] = "";
	uid_t uid = 0;
	gid_t gid = 0;
	char **env;
	pid_t pid;
	int err;

	in->port = (uint16_t)(c->port ? c->port + in->slot + (in->bank ? in->w->n : 0) : 0);
	if (c->user[0]) {
		struct passwd *pw = getpwnam(c->user);

		if (!pw) {
			lb_err("worker %s: no user %s", c->name, c->user);
			return -ENOENT;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (c->ready == LB_READY_NOTIFY) {
		in->nfd = notify_open(in, notify, sizeof(notify));
		if (in->nfd < 0) {
			err = in->nfd;
			in->nfd = -1;
			lb_err("worker %s: notify socket: %s", c->name, strerror(-err));
			return err;
		}
		in->nh = (struct lb_loop_handler){ on_notify, in };
		lb_loop_add(s->loop, in->nfd, EPOLLIN, &in->nh);
	}
	if (c->log[0])
		log_path(in, logp, sizeof(logp));
	env = build_env(in, notify[0] ? notify : NULL);
	if (!env) {
		close_fd(s, &in->nfd, true);
		return -ENOMEM;
	}
	pid = fork();
	if (pid == 0)
		child(in, env, logp, uid, gid);
	err = -errno;
	strv_free(env);
	if (pid < 0) {
		close_fd(s, &in->nfd, true);
		lb_err("worker %s: fork: %s", c->name, strerror(-err));
		return err;
	}
	/* SIGCHLD waits in lbd's signalfd until the loop runs: the pid cannot
	 * have been reaped (and reused) before this. */
	in->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (in->pidfd < 0) {
		err = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close_fd(s, &in->nfd, true);
		lb_err("worker %s: pidfd_open: %s", c->name, strerror(-err));
		return err;
	}
	in->pid = pid;
	pid_write(in);
	in->ph = (struct lb_loop_handler){ on_exit_ev, in };
	lb_loop_add(s->loop, in->pidfd, EPOLLIN, &in->ph);
	in->t_start = lb_now_ms();
	set_state(in, ST_STARTING);
	lb_info("worker %s: instance %d started (pid %d, port %u, core %d)", c->name, in->slot,
		(int)pid, in->port, in->core);
	if (c->ready == LB_READY_NONE || (c->ready == LB_READY_TCP && !in->port))
		inst_ready(in);
	else
		in->t_due = in->t_start + (c->ready == LB_READY_TCP ? 10 : s->o.ready_timeout_ms);
	return 0;
}

static struct inst *inst_new(struct lb_sup *s, struct sup_worker *w, int slot, int bank)
{
	struct inst *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->w = w;
	in->s = s;
	in->slot = slot;
	in->bank = bank;
	in->pidfd = in->nfd = in->probe = -1;
	in->delay = w->c.restart_delay_ms;
	/* auto leaves the first core to the system (and lbd) */
	in->core = s->ncpu > 1 ? s->cpus[(slot + (w->n < s->ncpu ? 1 : 0)) % s->ncpu] : -1;
	return in;
}

/* SIGTERM to the process group; SIGKILL after kill_timeout. */
static void inst_stop(struct inst *in)
{
	close_fd(in->s, &in->probe, false);
	if (!in->pid) {
		set_state(in, ST_STOPPED);
		in->t_due = 0;
		return;
	}
	if (in->st == ST_STOPPING)
		return;
	kill(-in->pid, SIGTERM);
	set_state(in, ST_STOPPING);
	in->t_due = lb_now_ms() + in->w->c.kill_timeout_ms;
}

/* ---- rolling reload -------------------------------------------------- */

static void retire(struct sup_worker *w, struct inst *in)
{
	in->retire = true;
	if (w->nretired < (int)(sizeof(w->retired) / sizeof(w->retired[0])))
		w->retired[w->nretired++] = in;
}

static void roll_step(struct lb_sup *s, struct sup_worker *w)
{
	while (w->roll_next >= 0 && w->roll_next < w->n && !w->repl) {
		struct inst *old = w->slot[w->roll_next], *nw;

		if (!old || !old->pid) {
			/* not running: just start it with the new settings */
			if (old) {
				old->st = ST_STOPPED;
				old->t_due = 0;
				old->unstable = 0;
				old->delay = w->c.restart_delay_ms;
				spawn(old);
			}
			w->roll_next++;
			continue;
		}
		nw = inst_new(s, w, w->roll_next, !old->bank);
		if (!nw)
			break;
		nw->old = old;
		nw->restarts = old->restarts;
		w->repl = nw;
		if (spawn(nw)) {
			free(nw);
			w->repl = NULL;
			lb_err("worker %s: reload aborted at instance %d", w->c.name, w->roll_next);
			w->roll_next = -1;
			return;
		}
	}
	if (w->roll_next >= w->n) {
		lb_info("worker %s: rolling reload done", w->c.name);
		w->roll_next = -1;
	}
}

static void roll_abort(struct sup_worker *w, const char *why)
{
	struct inst *nw = w->repl;

	lb_err("worker %s: reload aborted: instance %d %s; the old one keeps serving", w->c.name,
	       nw->slot, why);
	w->repl = NULL;
	w->roll_next = -1;
	retire(w, nw);
	inst_stop(nw);
}

/* ---- events ---------------------------------------------------------- */

static void inst_ready(struct inst *in)
{
	struct sup_worker *w = in->w;

	close_fd(in->s, &in->probe, false);
	close_fd(in->s, &in->nfd, true);
	in->t_due = 0;
	set_state(in, ST_ONLINE);
	lb_info("worker %s: instance %d ready on port %u (%llu ms)", w->c.name, in->slot, in->port,
		(unsigned long long)(lb_now_ms() - in->t_start));
	if (in == w->repl) {
		struct inst *old = in->old;

		w->slot[in->slot] = in;
		w->repl = NULL;
		in->old = NULL;
		retire(w, old);
		if (old->st == ST_ONLINE) {
			set_state(old, ST_DRAINING);
			old->t_due = lb_now_ms() + w->c.kill_timeout_ms;
		} else {
			inst_stop(old);
		}
		w->roll_next++;
		roll_step(in->s, w);
	}
}

/* tcp readiness: the port takes a connection. Non-blocking connect to
 * loopback answers at once; an EINPROGRESS one is looked at next round. */
static bool probe_tcp(struct inst *in)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(in->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	if (in->probe >= 0) {
		struct pollfd p = { .fd = in->probe, .events = POLLOUT };
		int e = 0;
		socklen_t l = sizeof(e);

		if (poll(&p, 1, 0) == 0)
			return false;
		getsockopt(in->probe, SOL_SOCKET, SO_ERROR, &e, &l);
		close_fd(in->s, &in->probe, false);
		return e == 0;
	}
	in->probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (in->probe < 0)
		return false;
	if (!connect(in->probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close_fd(in->s, &in->probe, false);
		return true;
	}
	if (errno != EINPROGRESS)
		close_fd(in->s, &in->probe, false);
	return false;
}

static void on_notify(void *arg, uint32_t events)
{
	struct inst *in = arg;
	char buf[4096];
	ssize_t n;

	(void)events;
	while (in->nfd >= 0 && (n = recv(in->nfd, buf, sizeof(buf) - 1, 0)) >= 0) {
		buf[n] = '\0';
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			if (!strcmp(l, "READY=1") && in->st == ST_STARTING) {
				inst_ready(in);
				break;
			}
	}
	flush(in->s);
}

static void exit_desc(int code, int status, char *buf, size_t len)
{
	if (code == CLD_EXITED)
		snprintf(buf, len, "exited with status %d", status);
	else if (code == CLD_KILLED || code == CLD_DUMPED)
		snprintf(buf, len, "killed by SIG%s", sigabbrev_np(status) ? sigabbrev_np(status) : "?");
	else
		snprintf(buf, len, "exited");
}

static void worker_gc(struct lb_sup *s, struct sup_worker *w);

static void on_exit_ev(void *arg, uint32_t events)
{
	struct inst *in = arg;
	struct lb_sup *s = in->s;
	struct sup_worker *w = in->w;
	const struct lb_worker_conf *c = &w->c;
	siginfo_t si = { 0 };
	uint64_t now = lb_now_ms(), up = now - in->t_start;
	char how[64] = "exited";
	enum inst_state was = in->st;

	(void)events;
	if (!waitid(P_PIDFD, (id_t)in->pidfd, &si, WEXITED | WNOHANG)) {
		if (!si.si_pid)
			return; /* spurious: still running */
		exit_desc(si.si_code, si.si_status, how, sizeof(how));
	}
	/* leftovers of its group go with it */
	kill(-in->pid, SIGKILL);
	pid_unlink(in, in->bank);
	close_fd(s, &in->pidfd, true);
	close_fd(s, &in->nfd, true);
	close_fd(s, &in->probe, false);
	in->pid = 0;
	in->t_due = 0;
	set_state(in, ST_STOPPED);

	if (in == w->repl) {
		roll_abort(w, how); /* stops nothing: already gone */
	} else if (in->retire || w->removed) {
		lb_info("worker %s: instance %d (port %u) %s", c->name, in->slot, in->port, how);
	} else if (was == ST_STOPPING && !in->respawn) {
		lb_info("worker %s: instance %d stopped (%s)", c->name, in->slot, how);
	} else if (in->respawn) {
		in->respawn = false;
		in->restarts++;
		spawn(in);
	} else {
		if (up >= s->o.backoff_reset_ms)
			in->delay = c->restart_delay_ms;
		in->unstable = up < c->min_uptime_ms ? in->unstable + 1 : 0;
		if (c->max_restarts && in->unstable >= c->max_restarts) {
			set_state(in, ST_ERRORED);
			lb_err("worker %s: instance %d %s after %llu ms, %u times in a row before "
			       "min_uptime: errored, left down", c->name, in->slot, how,
			       (unsigned long long)up, in->unstable);
		} else {
			set_state(in, ST_BACKOFF);
			in->t_due = now + in->delay;
			lb_warn("worker %s: instance %d %s after %llu ms; restart in %llu ms", c->name,
				in->slot, how, (unsigned long long)up, (unsigned long long)in->delay);
			in->delay = in->delay * 3 / 2;
			if (in->delay > s->o.backoff_cap_ms)
				in->delay = s->o.backoff_cap_ms;
			if (in->delay < 1)
				in->delay = 1;
		}
	}
	worker_gc(s, w);
	flush(s);
}

static uint64_t rss_bytes(pid_t pid)
{
	char p[64];
	unsigned long long size = 0, res = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/statm", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void inst_timer(struct lb_sup *s, struct inst *in, uint64_t now)
{
	const struct lb_worker_conf *c = &in->w->c;

	if (!in->t_due || in->t_due > now)
		return;
	in->t_due = 0;
	switch (in->st) {
	case ST_STARTING:
		if (c->ready == LB_READY_TCP && probe_tcp(in)) {
			inst_ready(in);
		} else if (now - in->t_start >= s->o.ready_timeout_ms) {
			if (in == in->w->repl) {
				roll_abort(in->w, "did not become ready");
			} else {
				lb_err("worker %s: instance %d not ready after %u ms: restarting",
				       c->name, in->slot, s->o.ready_timeout_ms);
				in->respawn = true;
				inst_stop(in);
			}
		} else {
			in->t_due = now + SUP_PROBE_MS;
		}
		break;
	case ST_BACKOFF:
		in->restarts++;
		spawn(in);
		break;
	case ST_DRAINING:
		inst_stop(in);
		break;
	case ST_STOPPING:
		lb_warn("worker %s: instance %d (pid %d) ignored SIGTERM for %llu ms: SIGKILL",
			c->name, in->slot, (int)in->pid, (unsigned long long)c->kill_timeout_ms);
		kill(-in->pid, SIGKILL);
		break;
	default:
		break;
	}
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, err = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			err = -EIO;
			break;
		}
	if (n < 0)
		err = -errno;
	close(in);
	close(out);
	return err;
}

/*
 * Size-based rotation, copy-truncate style: the instances keep their file
 * open (O_APPEND), so the file is copied to .1 (older ones shifted up to
 * .keep) and emptied in place; the next write lands at its new end. Lines
 * written between the copy and the truncation are lost: the price of not
 * piping every byte through lbd.
 */
static void log_rotate(struct sup_worker *w)
{
	if (!w->c.log[0] || !w->c.log_max_size)
		return;
	for (int k = 0; k < w->n; k++) {
		char p[LB_CONF_PATH_MAX + 16], a[sizeof(p) + 16], b[sizeof(p) + 16];
		struct inst tmp = { .w = w, .slot = k };
		struct stat st;
		int err;

		log_path(&tmp, p, sizeof(p));
		if (stat(p, &st) || (uint64_t)st.st_size <= w->c.log_max_size)
			continue;
		for (unsigned int i = w->c.log_keep; i > 1; i--) {
			snprintf(a, sizeof(a), "%s.%u", p, i - 1);
			snprintf(b, sizeof(b), "%s.%u", p, i);
			rename(a, b);
		}
		snprintf(a, sizeof(a), "%s.1", p);
		err = w->c.log_keep ? copy_file(p, a) : 0;
		if (err || truncate(p, 0))
			lb_warn("worker %s: cannot rotate %s: %s", w->c.name, p,
				strerror(err ? -err : errno));
	}
}

static void mem_check(struct sup_worker *w)
{
	for (int k = 0; k < w->n; k++) {
		struct inst *in = w->slot[k];
		uint64_t rss;

		if (!in || in->st != ST_ONLINE || !w->c.max_memory)
			continue;
		rss = rss_bytes(in->pid);
		if (rss > w->c.max_memory) {
			lb_warn("worker %s: instance %d uses %llu KiB > max_memory %llu KiB: restarting",
				w->c.name, k, (unsigned long long)rss >> 10,
				(unsigned long long)w->c.max_memory >> 10);
			in->respawn = true;
			inst_stop(in);
		}
	}
}

static void on_timer(void *arg, uint32_t events)
{
	struct lb_sup *s = arg;
	uint64_t now = lb_now_ms(), ticks;
	bool mem = now >= s->mem_due;

	(void)events;
	if (read(s->tfd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	if (mem)
		s->mem_due = now + SUP_MEM_CHECK_MS;
	for (int i = 0; i < s->nw; i++) {
		struct sup_worker *w = s->w[i];

		for (int k = 0; k < w->n; k++)
			if (w->slot[k])
				inst_timer(s, w->slot[k], now);
		for (int k = 0; k < w->nretired; k++)
			inst_timer(s, w->retired[k], now);
		if (w->repl)
			inst_timer(s, w->repl, now);
		if (mem) {
			mem_check(w);
			log_rotate(w);
		}
	}
	flush(s);
}

/* ---- workers --------------------------------------------------------- */

static void inst_free(struct lb_sup *s, struct inst *in)
{
	if (!in)
		return;
	close_fd(s, &in->pidfd, true);
	close_fd(s, &in->nfd, true);
	close_fd(s, &in->probe, false);
	free(in);
}

/* Free retired instances that are gone, and removed workers that are empty. */
static void worker_gc(struct lb_sup *s, struct sup_worker *w)
{
	for (int k = 0; k < w->nretired; k++) {
		if (w->retired[k]->pid)
			continue;
		inst_free(s, w->retired[k]);
		w->retired[k--] = w->retired[--w->nretired];
	}
	if (!w->removed)
		return;
	for (int k = 0; k < w->n; k++)
		if (w->slot[k] && w->slot[k]->pid)
			return;
	if (w->nretired || w->repl)
		return;
	for (int i = 0; i < s->nw; i++) {
		if (s->w[i] != w)
			continue;
		for (int k = 0; k < w->n; k++)
			inst_free(s, w->slot[k]);
		strv_free(w->c.argv);
		strv_free(w->c.env);
		free(w);
		s->w[i] = s->w[--s->nw];
		return;
	}
}

static struct sup_worker *worker_find(const struct lb_sup *s, const char *name)
{
	for (int i = 0; i < s->nw; i++)
		if (!s->w[i]->removed && !strcmp(s->w[i]->c.name, name))
			return s->w[i];
	return NULL;
}

static void worker_scale(struct lb_sup *s, struct sup_worker *w, int n)
{
	if (n > SUP_MAX_INST)
		n = SUP_MAX_INST;
	for (int k = n; k < w->n; k++) {
		if (!w->slot[k])
			continue;
		retire(w, w->slot[k]);
		inst_stop(w->slot[k]);
		w->slot[k] = NULL;
	}
	for (int k = w->n; k < n; k++)
		w->slot[k] = NULL;
	w->n = n;
	for (int k = 0; k < n; k++) {
		if (w->slot[k])
			continue;
		w->slot[k] = inst_new(s, w, k, 0);
		if (w->slot[k] && !adopt(w->slot[k]) && spawn(w->slot[k])) {
			/* retried like a crash */
			w->slot[k]->st = ST_BACKOFF;
			w->slot[k]->t_due = lb_now_ms() + w->slot[k]->delay;
		}
	}
	worker_gc(s, w);
}

static int worker_add(struct lb_sup *s, const struct lb_worker_conf *c)
{
	struct sup_worker **nw, *w = calloc(1, sizeof(*w));

	if (!w || wconf_copy(&w->c, c)) {
		free(w);
		return -ENOMEM;
	}
	nw = realloc(s->w, (s->nw + 1) * sizeof(*nw));
	if (!nw) {
		strv_free(w->c.argv);
		strv_free(w->c.env);
		free(w);
		return -ENOMEM;
	}
	s->w = nw;
	s->w[s->nw++] = w;
	w->roll_next = -1;
	worker_scale(s, w, lb_worker_instances(c, s->ncpu));
	return 0;
}

static void worker_remove(struct lb_sup *s, struct sup_worker *w)
{
	lb_info("worker %s: removed from the configuration: stopping", w->c.name);
	w->removed = true;
	w->roll_next = -1;
	if (w->repl) {
		retire(w, w->repl);
		inst_stop(w->repl);
		w->repl = NULL;
	}
	for (int k = 0; k < w->n; k++)
		if (w->slot[k])
			inst_stop(w->slot[k]);
	for (int k = 0; k < w->nretired; k++)
		inst_stop(w->retired[k]);
	worker_gc(s, w);
}

int lb_sup_sync(struct lb_sup *s, const struct lb_conf *cf)
{
	int err = 0;

	for (int i = 0; i < s->nw; i++) {
		struct sup_worker *w = s->w[i];
		bool kept = false;

		for (int j = 0; j < cf->nworkers; j++)
			kept |= !strcmp(cf->workers[j].name, w->c.name);
		if (!kept && !w->removed) {
			worker_remove(s, w);
			i = -1; /* the array may have changed */
		}
	}
	for (int j = 0; j < cf->nworkers && !err; j++) {
		const struct lb_worker_conf *c = &cf->workers[j];
		struct sup_worker *w = worker_find(s, c->name);
		struct lb_worker_conf nc;
		int n = lb_worker_instances(c, s->ncpu);

		if (!w) {
			err = worker_add(s, c);
			continue;
		}
		if (wconf_same_run(&w->c, c)) {
			char **argv = w->c.argv, **env = w->c.env;

			w->c = *c;
			w->c.argv = argv;
			w->c.env = env;
			if (n != w->n)
				worker_scale(s, w, n);
			continue;
		}
		err = wconf_copy(&nc, c);
		if (err)
			break;
		strv_free(w->c.argv);
		strv_free(w->c.env);
		w->c = nc;
		lb_info("worker %s: settings changed: rolling reload", c->name);
		if (n != w->n)
			worker_scale(s, w, n);
		lb_sup_reload(s, c->name);
	}
	flush(s);
	return err;
}

/* A rolling reload is under way, or the last one's instances still hold
 * their port bank. */
static bool reload_busy(const struct sup_worker *w)
{
	if (w->roll_next >= 0 || w->repl)
		return true;
	for (int k = 0; k < w->nretired; k++)
		if (w->retired[k]->pid)
			return true;
	return false;
}

int lb_sup_reload(struct lb_sup *s, const char *name)
{
	struct sup_worker *w = worker_find(s, name);

	if (!w)
		return -ENOENT;
	if (reload_busy(w))
		return -EBUSY;
	lb_info("worker %s: rolling reload of %d instance(s)", name, w->n);
	w->roll_next = 0;
	roll_step(s, w);
	flush(s);
	return 0;
}

int lb_sup_restart(struct lb_sup *s, const char *name)
{
	struct sup_worker *w = worker_find(s, name);

	if (!w)
		return -ENOENT;
	for (int k = 0; k < w->n; k++) {
		struct inst *in = w->slot[k];

		if (!in)
			continue;
		in->unstable = 0;
		in->delay = w->c.restart_delay_ms;
		if (in->pid) {
			in->respawn = true;
			inst_stop(in);
		} else {
			in->t_due = 0;
			in->st = ST_STOPPED;
			spawn(in);
		}
	}
	flush(s);
	return 0;
}

void lb_sup_backends(const struct lb_sup *s, lb_sup_be_fn fn, void *ctx)
{
	for (int i = 0; i < s->nw; i++) {
		const struct sup_worker *w = s->w[i];

		for (int k = 0; k < w->n + w->nretired + 1; k++) {
			const struct inst *in = k < w->n ? w->slot[k] : k < w->n + w->nretired ?
						w->retired[k - w->n] : w->repl;

			if (in && registered(in))
				fn(ctx, &w->c, in->port, in->st == ST_ONLINE ? LB_BE_UP : LB_BE_DRAIN,
				   in->pid);
		}
	}
}

int lb_sup_inst(const struct lb_sup *s, const char *name, int i, struct lb_sup_inst_info *out)
{
	const struct sup_worker *w = worker_find(s, name);
	const struct inst *in = w && i >= 0 && i < w->n ? w->slot[i] : NULL;

	if (!in)
		return -ENOENT;
	out->pid = in->pid;
	out->core = in->core;
	out->port = in->port;
	out->restarts = in->restarts;
	out->state = state_names[in->st];
	out->next_delay_ms = in->delay;
	return 0;
}

/* ---- lbctl worker ... -------------------------------------------------- */

static int lb_sup_scale(struct lb_sup *s, const char *name, int n)
{
	struct sup_worker *w = worker_find(s, name);

	if (!w)
		return -ENOENT;
	/* until the next config reload, which brings back the file's count */
	w->c.instances = LB_INST_COUNT;
	w->c.instances_n = n;
	lb_info("worker %s: scaled from %d to %d instance(s)", name, w->n, n);
	worker_scale(s, w, n);
	flush(s);
	return 0;
}

static int lb_sup_startstop(struct lb_sup *s, const char *name, bool start)
{
	struct sup_worker *w = worker_find(s, name);

	if (!w)
		return -ENOENT;
	if (!start && w->repl)
		roll_abort(w, "was stopped");
	for (int k = 0; k < w->n; k++) {
		struct inst *in = w->slot[k];

		if (!in)
			continue;
		in->respawn = false;
		if (!start) {
			inst_stop(in);
		} else if (!in->pid && (in->st == ST_STOPPED || in->st == ST_ERRORED)) {
			in->unstable = 0;
			in->delay = w->c.restart_delay_ms;
			in->t_due = 0;
			spawn(in);
		}
	}
	lb_info("worker %s: %s by the operator", name, start ? "started" : "stopped");
	flush(s);
	return 0;
}

/* The last lines of each instance's log file. */
static int cmd_logs(struct lb_sup *s, int argc, char **argv, struct lb_buf *o)
{
	struct sup_worker *w = worker_find(s, argv[2]);
	long lines = 20;

	if (argc == 5 && !strcmp(argv[3], "-n"))
		lines = strtol(argv[4], NULL, 10);
	if ((argc != 3 && argc != 5) || lines < 1 || lines > 10000) {
		lb_buf_printf(o, "usage: worker logs NAME [-n LINES] (1..10000)\n");
		return LB_CTL_USAGE;
	}
	if (!w) {
		lb_buf_printf(o, "worker logs: no such worker \"%s\"\n", argv[2]);
		return LB_CTL_FAILED;
	}
	if (!w->c.log[0]) {
		lb_buf_printf(o, "worker %s: no log file: its output goes to lbd's stderr\n", w->c.name);
		return LB_CTL_OK;
	}
	for (int k = 0; k < w->n; k++) {
		char p[LB_CONF_PATH_MAX + 16], line[1024];
		struct inst tmp = { .w = w, .slot = k };
		long total = 0, n = 0;
		FILE *f;

		log_path(&tmp, p, sizeof(p));
		f = fopen(p, "re");
		lb_buf_printf(o, "==> %s (instance %d) <==\n", p, k);
		if (!f)
			continue;
		/* two passes: count, then print the tail; bounded by the file */
		while (fgets(line, sizeof(line), f))
			total++;
		rewind(f);
		while (fgets(line, sizeof(line), f))
			if (n++ >= total - lines)
				lb_buf_printf(o, "%s", line);
		fclose(f);
	}
	return LB_CTL_OK;
}

static double cpu_seconds(pid_t pid)
{
	struct lb_procstat ps;

	if (lb_procstat(pid, &ps))
		return 0;
	return (double)(ps.utime + ps.stime) / (double)sysconf(_SC_CLK_TCK);
}

static void list_inst(struct lb_buf *o, bool json, bool *first, const struct sup_worker *w,
		      const struct inst *in)
{
	uint64_t up = in->pid ? (lb_now_ms() - in->t_start) / 1000 : 0;
	double cpu = in->pid ? cpu_seconds(in->pid) : 0;
	unsigned long long mem = in->pid ? rss_bytes(in->pid) >> 10 : 0;

	if (json) {
		lb_buf_printf(o, "%s{\"name\":", *first ? "" : ",");
		lb_buf_json_str(o, w->c.name);
		lb_buf_printf(o, ",\"instance\":%d,\"pid\":%d,\"port\":%u,\"core\":%d,"
			      "\"cpu_seconds\":%.2f,\"memory_kib\":%llu,\"uptime_s\":%llu,"
			      "\"restarts\":%u,\"state\":\"%s\"}", in->slot, (int)in->pid, in->port,
			      in->core, cpu, mem, (unsigned long long)up, in->restarts,
			      state_names[in->st]);
	} else {
		lb_buf_printf(o, "%-16s %4d %8d %6u %4d %8.2f %9llu %8llu %8u  %s\n", w->c.name,
			      in->slot, (int)in->pid, in->port, in->core, cpu, mem,
			      (unsigned long long)up, in->restarts, state_names[in->st]);
	}
	*first = false;
}

void lb_sup_list(const struct lb_sup *s, bool json, struct lb_buf *o)
{
	bool first = true;

	if (json)
		lb_buf_printf(o, "[");
	else
		lb_buf_printf(o, "%-16s %4s %8s %6s %4s %8s %9s %8s %8s  %s\n", "NAME", "INST",
			      "PID", "PORT", "CORE", "CPU(s)", "MEM(KiB)", "UPTIME", "RESTARTS",
			      "STATE");
	for (int i = 0; s && i < s->nw; i++) {
		const struct sup_worker *w = s->w[i];

		for (int k = 0; k < w->n; k++)
			if (w->slot[k])
				list_inst(o, json, &first, w, w->slot[k]);
		for (int k = 0; k < w->nretired; k++)
			list_inst(o, json, &first, w, w->retired[k]);
		if (w->repl)
			list_inst(o, json, &first, w, w->repl);
	}
	lb_buf_printf(o, json ? "]" : "");
}

/* What `sub` does to w's instances, counted before it runs: in the past
 * tense, or for a dry run as what it would do. */
static void worker_effect(const struct sup_worker *w, const char *sub, int n, bool dry,
			  char *buf, size_t len)
{
	int running = 0, down = 0;

	for (int k = 0; k < w->n; k++) {
		const struct inst *in = w->slot[k];

		if (in && in->pid)
			running++;
		else if (in && (in->st == ST_STOPPED || in->st == ST_ERRORED))
			down++;
	}
	if (!strcmp(sub, "scale"))
		snprintf(buf, len, "worker %s: %s from %d to %d instance(s)", w->c.name,
			 dry ? "would scale" : "scaled", w->n, n);
	else if (!strcmp(sub, "start"))
		snprintf(buf, len, "worker %s: %s %d stopped instance(s)", w->c.name,
			 dry ? "would start" : "started", down);
	else if (!strcmp(sub, "stop"))
		snprintf(buf, len, "worker %s: %s %d running instance(s)", w->c.name,
			 dry ? "would stop" : "stopping", running);
	else if (!strcmp(sub, "reload"))
		snprintf(buf, len, "worker %s: %s rolling reload of %d instance(s)", w->c.name,
			 dry ? "would start a" : "started a", w->n);
	else
		snprintf(buf, len, "worker %s: %s %d instance(s)", w->c.name,
			 dry ? "would restart" : "restarting", w->n);
}

static int worker_run(struct lb_sup *s, const char *sub, const char *name, int n)
{
	if (!strcmp(sub, "scale"))
		return lb_sup_scale(s, name, n);
	if (!strcmp(sub, "start") || !strcmp(sub, "stop"))
		return lb_sup_startstop(s, name, !strcmp(sub, "start"));
	return !strcmp(sub, "reload") ? lb_sup_reload(s, name) : lb_sup_restart(s, name);
}

int lb_sup_command(struct lb_sup *s, int argc, char **argv, bool json, bool dry, struct lb_buf *o)
{
	const char *sub = argc >= 2 ? argv[1] : "list";
	const struct sup_worker *w;
	char what[LB_CONF_NAME_MAX + 96];
	long n = 0;
	int err = 0;

	if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
		lb_sup_list(s, json, o);
		lb_buf_printf(o, json ? "\n" : "");
		return LB_CTL_OK;
	}
	if (argc < 3) {
		lb_buf_printf(o, "usage: worker list | worker reload|restart|start|stop|logs NAME | "
			      "worker scale NAME N\n");
		return LB_CTL_USAGE;
	}
	if (!strcmp(sub, "logs"))
		return cmd_logs(s, argc, argv, o);
	if (!strcmp(sub, "scale")) {
		char *end;

		n = argc == 4 ? strtol(argv[3], &end, 10) : 0;
		if (argc != 4 || *end || n < 1 || n > SUP_MAX_INST) {
			lb_buf_printf(o, "usage: worker scale NAME N (1..%d)\n", SUP_MAX_INST);
			return LB_CTL_USAGE;
		}
	} else if (strcmp(sub, "start") && strcmp(sub, "stop") && strcmp(sub, "reload") &&
		   strcmp(sub, "restart")) {
		lb_buf_printf(o, "worker: unknown subcommand \"%s\"\n", sub);
		return LB_CTL_USAGE;
	}
	w = worker_find(s, argv[2]);
	if (!w) {
		lb_buf_printf(o, "worker %s: no such worker \"%s\"\n", sub, argv[2]);
		return LB_CTL_FAILED;
	}
	if (!strcmp(sub, "reload") && reload_busy(w)) {
		lb_buf_printf(o, "worker %s: %s: a reload is still in progress\n", sub, argv[2]);
		return LB_CTL_FAILED;
	}
	worker_effect(w, sub, (int)n, dry, what, sizeof(what));
	if (!dry)
		err = worker_run(s, sub, argv[2], (int)n);
	if (err) {
		lb_buf_printf(o, "worker %s: %s: %s\n", sub, argv[2], strerror(-err));
		return LB_CTL_FAILED;
	}
	if (json) {
		lb_buf_printf(o, "{\"%s\":true,\"changes\":[", dry ? "dry_run" : "ok");
		lb_buf_json_str(o, what);
		lb_buf_printf(o, "]}\n");
	} else {
		lb_buf_printf(o, dry ? "dry run: %s\nnothing was changed\n" : "%s\n", what);
	}
	return LB_CTL_OK;
}

/* ---- life cycle -------------------------------------------------------- */

int lb_sup_new(const struct lb_sup_opts *o, struct lb_sup **out)
{
	struct lb_sup *s = calloc(1, sizeof(*s));
	cpu_set_t set;
	int err;

	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->loop = o->loop;
	if (!s->o.ready_timeout_ms)
		s->o.ready_timeout_ms = 10000;
	if (!s->o.backoff_cap_ms)
		s->o.backoff_cap_ms = 15000;
	if (!s->o.backoff_reset_ms)
		s->o.backoff_reset_ms = 30000;
	CPU_ZERO(&set);
	if (!sched_getaffinity(0, sizeof(set), &set))
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				s->cpus[s->ncpu++] = c;
	if (!s->ncpu)
		s->cpus[s->ncpu++] = 0;
	if (o->ncpu > 0 && o->ncpu < s->ncpu)
		s->ncpu = o->ncpu;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0) {
		err = -errno;
		free(s);
		return err;
	}
	s->th = (struct lb_loop_handler){ on_timer, s };
	err = lb_loop_add(s->loop, s->tfd, EPOLLIN, &s->th);
	if (err) {
		close(s->tfd);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

static void sup_release(struct lb_sup *s)
{
	for (int i = 0; i < s->nw; i++) {
		struct sup_worker *w = s->w[i];

		for (int k = 0; k < w->n; k++)
			inst_free(s, w->slot[k]);
		for (int k = 0; k < w->nretired; k++)
			inst_free(s, w->retired[k]);
		inst_free(s, w->repl);
		strv_free(w->c.argv);
		strv_free(w->c.env);
		free(w);
	}
	free(s->w);
	lb_loop_del(s->loop, s->tfd);
	close(s->tfd);
	free(s);
}

void lb_sup_leave(struct lb_sup *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nw; i++)
		lb_info("worker %s: instances left running for the next lbd", s->w[i]->c.name);
	sup_release(s);
}

/* At exit: every instance gets SIGTERM, then SIGKILL after kill_timeout. */
void lb_sup_free(struct lb_sup *s)
{
	uint64_t deadline, kt = 0, now;
	bool left;

	if (!s)
		return;
	for (int i = 0; i < s->nw; i++) {
		struct sup_worker *w = s->w[i];

		if (w->c.kill_timeout_ms > kt)
			kt = w->c.kill_timeout_ms;
		w->removed = true;
		if (w->repl) {
			retire(w, w->repl);
			w->repl = NULL;
		}
		for (int k = 0; k < w->n + w->nretired; k++) {
			struct inst *in = k < w->n ? w->slot[k] : w->retired[k - w->n];

			if (in && in->pid)
				kill(-in->pid, SIGTERM);
		}
	}
	deadline = lb_now_ms() + kt;
	do {
		left = false;
		now = lb_now_ms();
		for (int i = 0; i < s->nw; i++) {
			struct sup_worker *w = s->w[i];

			for (int k = 0; k < w->n + w->nretired; k++) {
				struct inst *in = k < w->n ? w->slot[k] : w->retired[k - w->n];
				struct pollfd p;

				if (!in || !in->pid)
					continue;
				p = (struct pollfd){ .fd = in->pidfd, .events = POLLIN };
				if (poll(&p, 1, 0) == 1) {
					siginfo_t si;

					waitid(P_PIDFD, (id_t)in->pidfd, &si, WEXITED | WNOHANG);
					kill(-in->pid, SIGKILL);
					pid_unlink(in, in->bank);
					in->pid = 0;
					continue;
				}
				if (now >= deadline)
					kill(-in->pid, SIGKILL);
				left = true;
			}
		}
		if (left)
			usleep(10000);
	} while (left && now < deadline + 1000);
	sup_release(s);
}
