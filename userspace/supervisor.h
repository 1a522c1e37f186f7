/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-core worker processes (PM2 cluster mode): each `worker` block runs N
 * instances, instance i pinned to a core with PORT and LBD_INSTANCE in its
 * environment, restarted with backoff, stopped with SIGTERM then SIGKILL,
 * replaced one at a time on a rolling reload. Everything runs from lbd's
 * loop: children are watched through pidfds, timing through one timerfd.
 *
 * The supervisor does not touch the data path: it tells its owner that the
 * set of registered instances changed, and the owner reads that set back
 * with lb_sup_backends() (ready instances are UP, the old ones of a rolling
 * reload DRAIN; dead and starting ones are absent).
 */
#ifndef LBD_SUPERVISOR_H
#define LBD_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>
#include "config.h"
#include "control.h"

struct lb_loop;
struct lb_sup;

typedef void (*lb_sup_changed_fn)(void *ctx);

struct lb_sup_opts {
	struct lb_loop *loop;
	int ncpu;                    /* 0: the cores lbd may run on */
	lb_sup_changed_fn changed;   /* the registered set changed */
	void *ctx;
	uint32_t ready_timeout_ms;   /* 0: 10 s; an instance not ready by then is
	                              * restarted (or a rolling reload aborted) */
	uint32_t backoff_cap_ms;     /* 0: 15 s */
	uint32_t backoff_reset_ms;   /* 0: 30 s of uptime resets the delay */
	const char *state_dir;       /* pid files, so that a restarted lbd adopts
	                              * running instances; NULL: none */
};

int  lb_sup_new(const struct lb_sup_opts *o, struct lb_sup **out);
/* Stops every instance: SIGTERM, then SIGKILL after kill_timeout. This one
 * waits (bounded by the largest kill_timeout): it runs when lbd exits. */
void lb_sup_free(struct lb_sup *s);
/* lbd exits but its instances stay (in their own process groups, pid files
 * kept) for the next lbd to adopt. */
void lb_sup_leave(struct lb_sup *s);

/* Follow the worker blocks of cf: start new ones (adopting the instances a
 * previous lbd left running: pid file in state_dir, verified by the
 * process's start time; adopted ones are registered at once), stop removed ones, scale
 * on an instance count change, rolling-reload one whose command, env or
 * other settings changed. cf is copied. */
int  lb_sup_sync(struct lb_sup *s, const struct lb_conf *cf);

/* Rolling reload (new instance ready before the old one drains and stops)
 * or restart (stop, then start) of a worker. -ENOENT: no such worker. */
int  lb_sup_reload(struct lb_sup *s, const char *name);
int  lb_sup_restart(struct lb_sup *s, const char *name);

/* What the data path should hold: fn once per registered instance with
 * its worker, port (host order), LB_BE_UP or LB_BE_DRAIN, and its pid
 * (whose sockets take the connections of forward local). */
typedef void (*lb_sup_be_fn)(void *ctx, const struct lb_worker_conf *w, uint16_t port,
			     int state, pid_t pid);
void lb_sup_backends(const struct lb_sup *s, lb_sup_be_fn fn, void *ctx);

/* Every instance (like pm2 ls): a table, or a JSON array of objects with
 * name, instance, pid, port, core, cpu_seconds, memory_kib, uptime_s,
 * restarts and state. NULL lists none. */
void lb_sup_list(const struct lb_sup *s, bool json, struct lb_buf *out);

/* `worker list|logs|reload|restart|start|stop|scale ...` (argv[0] is
 * "worker"): says what it changed, or with `dry` what it would change and
 * changes nothing. Returns an LB_CTL_* code. */
int  lb_sup_command(struct lb_sup *s, int argc, char **argv, bool json, bool dry,
		    struct lb_buf *out);

/* Counters for tests and status. */
struct lb_sup_inst_info {
	pid_t pid;              /* 0: not running */
	int core;
	uint16_t port;
	uint32_t restarts;
	const char *state;      /* "starting", "online", "draining", ... */
	uint64_t next_delay_ms; /* the next restart's delay */
};
/* Instance slot i of worker name (the current one, not a replacement in
 * progress). -ENOENT when there is none. */
int  lb_sup_inst(const struct lb_sup *s, const char *name, int i, struct lb_sup_inst_info *out);

#endif
