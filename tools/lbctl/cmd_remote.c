// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The commands lbd answers. lbctl only checks that the line has the right
 * shape (a known subcommand, enough words) and sends the words as they are:
 * what they mean is lbd's to judge, so lbctl never disagrees with it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "lbctl.h"

/* lbd never blocks, so an answer this late means it is wedged. */
#define LBCTL_TIMEOUT_MS 30000

struct sub {
	const char *name;
	int min_args; /* words after the subcommand */
	int max_args; /* -1: any */
};

struct remote {
	const char *name;
	const char *usage;
	const struct sub *subs; /* NULL: no subcommand */
	int max_args;           /* without subcommands; -1: any */
};

static const struct sub vip_subs[] = {
	{ "list", 0, 0 },
	{ "show", 1, 1 },
	{ "add", 2, -1 },
	{ "del", 1, 1 },
	{ NULL, 0, 0 },
};

static const struct sub backend_subs[] = {
	{ "add", 1, -1 },
	{ "set", 2, -1 },
	{ "del", 1, -1 },
	{ NULL, 0, 0 },
};

static const struct sub worker_subs[] = {
	{ "list", 0, 0 },
	{ "reload", 1, 1 },
	{ "restart", 1, 1 },
	{ "start", 1, 1 },
	{ "stop", 1, 1 },
	{ "scale", 2, 2 },
	{ "logs", 1, 4 },
	{ NULL, 0, 0 },
};

static const struct sub node_subs[] = {
	{ "status", 0, 0 },
	{ "drain", 0, 0 },
	{ "undrain", 0, 0 },
	{ NULL, 0, 0 },
};

static const struct remote remotes[] = {
	{ "status",
	  "usage: lbctl status\n"
	  "\n"
	  "Shows lbd's state: the data path in use (xdp native, xdp generic, tc or\n"
	  "the userspace proxy) per interface, the VIPs and backends, and uptime.\n",
	  NULL, 0 },
	{ "vip",
	  "usage: lbctl vip list\n"
	  "       lbctl vip show NAME\n"
	  "       lbctl vip add NAME LISTEN [udp] [method=METHOD] [forward=MODE]\n"
	  "       lbctl vip del NAME\n"
	  "\n"
	  "LISTEN is ADDR:PORT ([ADDR]:PORT for IPv6).\n"
	  "METHOD is maglev (default), ip_hash, round_robin or least_conn;\n"
	  "MODE is nat (default), dsr or local. Deleting a VIP drops its flows.\n",
	  vip_subs, 0 },
	{ "backend",
	  "usage: lbctl backend add ADDR:PORT [weight=N] [state=STATE] [vip=NAME]\n"
	  "       lbctl backend set ADDR:PORT [weight=N] [state=STATE] [vip=NAME]\n"
	  "       lbctl backend del ADDR:PORT [vip=NAME]\n"
	  "\n"
	  "STATE is up, drain (no new flows, established ones finish) or down.\n"
	  "vip=NAME is needed when more than one VIP is configured. Changes are\n"
	  "applied at once and persisted, so they survive a restart.\n",
	  backend_subs, 0 },
	{ "stats",
	  "usage: lbctl stats [vip NAME]\n"
	  "\n"
	  "Packets, bytes, connections and drops (by reason), per VIP and backend.\n",
	  NULL, 2 },
	{ "reload",
	  "usage: lbctl reload\n"
	  "\n"
	  "Re-reads lbd's config file and applies only the difference; an invalid\n"
	  "file changes nothing and its errors are printed.\n",
	  NULL, 0 },
	{ "worker",
	  "usage: lbctl worker list\n"
	  "       lbctl worker reload NAME\n"
	  "       lbctl worker restart NAME\n"
	  "       lbctl worker start|stop NAME\n"
	  "       lbctl worker scale NAME N\n"
	  "       lbctl worker logs NAME [-f] [-n LINES]\n"
	  "\n"
	  "list: every instance with pid, port, core, CPU, memory, uptime, restarts\n"
	  "and state (like pm2 ls). reload: rolling, one instance at a time, the new\n"
	  "one ready before the old one drains and stops. restart: stop, then start\n"
	  "(also brings back an errored instance). stop keeps them down until start.\n"
	  "scale holds until the next config reload. logs: the last LINES (20) of\n"
	  "each instance's log file; -f follows them (across rotation) until\n"
	  "interrupted or stdout closes.\n",
	  worker_subs, 0 },
	{ "node",
	  "usage: lbctl node status\n"
	  "       lbctl node drain\n"
	  "       lbctl node undrain\n"
	  "\n"
	  "The node's BGP announcements (the bgp block of lbd.conf). drain announces\n"
	  "the VIPs with the GRACEFUL_SHUTDOWN community (65535:0) for drain_grace,\n"
	  "then withdraws them; flows that still arrive are forwarded. status shows\n"
	  "draining until no new flow arrived for drain_quiet, then drained, with the\n"
	  "time since the last new flow, and the BGP sessions. undrain announces\n"
	  "again. The state is persisted: a drained node stays drained after a restart.\n",
	  node_subs, 0 },
	{ "stop",
	  "usage: lbctl stop\n"
	  "\n"
	  "Stops lbd, detaches it from its interfaces and removes the pinned data\n"
	  "path: traffic to the VIPs is no longer balanced. To restart or upgrade\n"
	  "lbd without dropping flows, send it SIGTERM instead (systemctl restart):\n"
	  "the pinned data path keeps forwarding and the next lbd adopts it.\n",
	  NULL, 0 },
};

static const struct remote *find_remote(const char *name)
{
	for (size_t i = 0; i < sizeof(remotes) / sizeof(remotes[0]); i++)
		if (!strcmp(remotes[i].name, name))
			return &remotes[i];
	return NULL;
}

static int usage_error(const struct remote *r, const char *fmt, const char *word)
{
	lbctl_usage_error(r->name, fmt, word);
	fputs(r->usage, stderr);
	return LBCTL_EXIT_USAGE;
}

/* The shape of the line only; lbd checks what the words mean. */
static int check_shape(const struct remote *r, int argc, char **argv)
{
	const struct sub *s;
	int n;

	if (!r->subs) {
		if (r->max_args >= 0 && argc - 1 > r->max_args)
			return usage_error(r, "unexpected argument '%s'", argv[r->max_args + 1]);
		if (!strcmp(r->name, "stats") && argc > 1 &&
		    (strcmp(argv[1], "vip") || argc != 3))
			return usage_error(r, "expected 'vip NAME', not '%s'", argv[1]);
		return LBCTL_EXIT_OK;
	}
	if (argc < 2)
		return usage_error(r, "%s", "missing subcommand");
	for (s = r->subs; s->name && strcmp(s->name, argv[1]); s++)
		;
	if (!s->name)
		return usage_error(r, "unknown subcommand '%s'", argv[1]);
	n = argc - 2;
	if (n < s->min_args)
		return usage_error(r, "'%s' needs more arguments", s->name);
	if (s->max_args >= 0 && n > s->max_args)
		return usage_error(r, "unexpected argument '%s'", argv[2 + s->max_args]);
	return LBCTL_EXIT_OK;
}

static int report_call_error(const char *cmd, const char *sock, int err)
{
	switch (-err) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
	case ENOTSOCK:
		fprintf(stderr, "lbctl: cannot reach lbd at %s: %s (is lbd running?)\n", sock,
			strerror(-err));
		return LBCTL_EXIT_FAIL;
	case EACCES:
	case EPERM:
		fprintf(stderr,
			"lbctl: cannot reach lbd at %s: %s (run as root or as a member of lbd's "
			"control group)\n", sock, strerror(-err));
		return LBCTL_EXIT_FAIL;
	case ENAMETOOLONG:
	case EINVAL:
		return lbctl_usage_error(NULL, "bad socket path '%s'", sock);
	case E2BIG:
		return lbctl_usage_error(cmd, "command line too long (limit %d bytes, %d words)",
					 LB_CTL_MAX_REQ, LB_CTL_MAX_WORDS);
	case ETIMEDOUT:
		return lbctl_fail(cmd, "lbd at %s did not answer within %d s", sock,
				  LBCTL_TIMEOUT_MS / 1000);
	case EPROTO:
		return lbctl_fail(cmd, "malformed answer from lbd at %s", sock);
	default:
		return lbctl_fail(cmd, "talking to lbd at %s: %s", sock, strerror(-err));
	}
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

static bool is_worker_logs(int argc, char **argv)
{
	return argc >= 3 && !strcmp(argv[0], "worker") && !strcmp(argv[1], "logs");
}

/* The options of `worker logs NAME [-f] [-n LINES]`: -f is lbctl's (it
 * follows the files itself), -n goes to lbd too. */
static int logs_args(const struct remote *r, int argc, char **argv, bool *follow, long *lines)
{
	char *end;

	*follow = false;
	*lines = 20;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "-f")) {
			*follow = true;
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			errno = 0;
			*lines = strtol(argv[++i], &end, 10);
			if (errno || *end || *lines < 1 || *lines > 10000)
				return usage_error(r, "-n wants 1..10000 lines, not '%s'", argv[i]);
		} else {
			return usage_error(r, "unexpected argument '%s'", argv[i]);
		}
	}
	return LBCTL_EXIT_OK;
}

int cmd_remote_check(int argc, char **argv)
{
	const struct remote *r = find_remote(argv[0]);

	if (!r)
		return lbctl_usage_error(argv[0], "not a remote command");
	bool follow;
	long lines;
	int rc;

	if (wants_help(argc, argv))
		return LBCTL_EXIT_OK;
	rc = check_shape(r, argc, argv);
	if (!rc && is_worker_logs(argc, argv))
		rc = logs_args(r, argc, argv, &follow, &lines);
	return rc;
}

int cmd_remote(int argc, char **argv)
{
	const struct lbctl_opts *o = lbctl_opts();
	const struct remote *r = find_remote(argv[0]);
	struct lb_buf out = { 0 };
	char flags[3];
	size_t nf = 0;
	int rc;

	if (r && wants_help(argc, argv)) {
		fputs(r->usage, stdout);
		return LBCTL_EXIT_OK;
	}
	rc = cmd_remote_check(argc, argv);
	if (rc)
		return rc;
	if (is_worker_logs(argc, argv)) {
		bool follow;
		long lines;

		logs_args(r, argc, argv, &follow, &lines); /* checked above */
		if (follow) {
			rc = cmd_logs_follow(o->sock, argv[2], lines);
			return rc < 0 ? report_call_error(r->name, o->sock, rc) : rc;
		}
	}
	if (o->json)
		flags[nf++] = 'j';
	if (o->dry_run)
		flags[nf++] = 'n';
	flags[nf] = '\0';

	rc = lb_ctl_call(o->sock, flags, argc, argv, LBCTL_TIMEOUT_MS, &out);
	if (rc < 0) {
		lb_buf_free(&out);
		return report_call_error(r->name, o->sock, rc);
	}
	if (out.len)
		fwrite(out.data, 1, out.len, rc == LBCTL_EXIT_OK ? stdout : stderr);
	else if (rc != LBCTL_EXIT_OK)
		fprintf(stderr, "lbctl: %s: lbd answered status %d without a message\n", r->name,
			rc);
	lb_buf_free(&out);
	return rc;
}
