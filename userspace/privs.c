// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The capability sets are per thread: lbd drops them in its main thread
 * before it starts the proxy threads or any worker, so everything it creates
 * inherits the reduced sets. libcap does the bookkeeping (names, the set
 * layout across kernel versions, the bounding and ambient sets).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include "log.h"
#include "privs.h"

/* What each kept capability is for:
 *   bpf, perfmon: load and verify programs later as at start (a TC fallback
 *     on a new interface, a mode change on reload), create the inner tables
 *     of every table swap;
 *   net_admin: attach XDP/TC, VIP addresses, routes, neighbours, sysctls;
 *   net_raw: health checks;
 *   net_bind_service: proxy listeners below 1024 added by a reload;
 *   setuid, setgid, kill: workers that run as another user. */
static const cap_value_t base_caps[] = {
	CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE,
};
static const cap_value_t worker_caps[] = { CAP_SETUID, CAP_SETGID, CAP_KILL };
/* sys_ptrace: pidfd_getfd of an instance that runs as another user (local
 * delivery hands connections to the instance's own socket); no more than
 * setuid already allows. */
static const cap_value_t local_caps[] = { CAP_SYS_PTRACE };

#define LB_PRIVS_MAX 16

static int keep_list(const struct lb_privs_need *need, cap_value_t *out)
{
	int n = 0;

	for (size_t i = 0; i < sizeof(base_caps) / sizeof(base_caps[0]); i++)
		out[n++] = base_caps[i];
	if (need->workers)
		for (size_t i = 0; i < sizeof(worker_caps) / sizeof(worker_caps[0]); i++)
			out[n++] = worker_caps[i];
	if (need->workers && need->local)
		for (size_t i = 0; i < sizeof(local_caps) / sizeof(local_caps[0]); i++)
			out[n++] = local_caps[i];
	return n;
}

static bool in_list(cap_value_t c, const cap_value_t *l, int n)
{
	for (int i = 0; i < n; i++)
		if (l[i] == c)
			return true;
	return false;
}

const char *lb_privs_describe(const struct lb_privs_need *need, char *buf, int len)
{
	cap_value_t keep[LB_PRIVS_MAX];
	int n = keep_list(need, keep), off = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && off < len; i++) {
		char *name = cap_to_name(keep[i]);

		off += snprintf(buf + off, (size_t)(len - off), "%s%s", i ? "," : "",
				name ? name : "?");
		cap_free(name);
	}
	return buf;
}

/* True when the thread holds any permitted capability outside keep. */
static bool holds_more(cap_t cur, const cap_value_t *keep, int n)
{
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (!in_list(c, keep, n) && !cap_get_flag(cur, c, CAP_PERMITTED, &v) &&
		    v == CAP_SET)
			return true;
	}
	return false;
}

static int drop_bounding(const cap_value_t *keep, int n)
{
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (in_list(c, keep, n) || cap_get_bound(c) != 1)
			continue;
		if (cap_drop_bound(c) < 0)
			return -errno;
	}
	return 0;
}

int lb_privs_drop(const struct lb_privs_need *need)
{
	cap_value_t keep[LB_PRIVS_MAX], have[LB_PRIVS_MAX];
	int n = keep_list(need, keep), nhave = 0, err = 0;
	char desc[256];
	cap_t cur, next = NULL;

	cur = cap_get_proc();
	if (!cur) {
		err = -errno;
		lb_err("capabilities: cannot read this process's sets: %s", strerror(-err));
		return err;
	}
	if (!holds_more(cur, keep, n))
		goto out; /* a plain user, or already reduced: nothing to give up */
	/* The bounding set first, while CAP_SETPCAP is still effective, so a
	 * worker exec'd as root can never regain what lbd gave up. */
	err = drop_bounding(keep, n);
	if (err) /* no CAP_SETPCAP (a container): the sets below still shrink */
		lb_warn("capabilities: cannot reduce the bounding set: %s", strerror(-err));
	err = 0;
	for (int i = 0; i < n; i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (!cap_get_flag(cur, keep[i], CAP_PERMITTED, &v) && v == CAP_SET)
			have[nhave++] = keep[i];
	}
	next = cap_init();
	if (!next || (nhave && (cap_set_flag(next, CAP_PERMITTED, nhave, have, CAP_SET) ||
				cap_set_flag(next, CAP_EFFECTIVE, nhave, have, CAP_SET)))) {
		err = -ENOMEM;
		lb_err("capabilities: cannot build the reduced set");
		goto out;
	}
	if (cap_set_proc(next) < 0) {
		err = -errno;
		lb_err("capabilities: cannot drop to %s: %s",
		       lb_privs_describe(need, desc, sizeof(desc)), strerror(-err));
		goto out;
	}
	/* Nothing may come back through exec: no ambient capabilities. */
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0)
		lb_warn("capabilities: cannot clear the ambient set: %s", strerror(errno));
	lb_info("capabilities: kept %s, dropped the rest",
		lb_privs_describe(need, desc, sizeof(desc)));
out:
	cap_free(next);
	cap_free(cur);
	return err;
}
