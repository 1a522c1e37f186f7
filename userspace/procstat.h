/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A process's /proc/PID/stat, parsed: its start time names it for good
 * with its pid (pids are reused), for the pid files lbd leaves for the next
 * lbd (worker instances, proxy workers), and its CPU time for lbctl.
 */
#ifndef LBD_PROCSTAT_H
#define LBD_PROCSTAT_H

#include <sys/types.h>

struct lb_procstat {
	pid_t ppid;
	unsigned long long utime, stime; /* clock ticks */
	unsigned long long start;        /* clock ticks after boot */
};

/* 0, or -ESRCH: no such process (or nothing to parse). */
int lb_procstat(pid_t pid, struct lb_procstat *out);
/* pid's start time, 0 when there is no such process. */
unsigned long long lb_proc_start(pid_t pid);

#endif
