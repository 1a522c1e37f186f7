// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbctl's command line: global options, then a command word dispatched
 * through a table. lbctl_check() parses a line exactly as lbctl_main() does
 * but acts on nothing, so the parser can be fuzzed and tested offline.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbctl.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	int (*check)(int argc, char **argv); /* the arguments only, no action */
	const char *summary;
};

/* One line per command, in the order `lbctl help` lists them. */
static const struct command commands[] = {
	{ "status",  cmd_remote, cmd_remote_check, "lbd's state: data path mode, interfaces, counts" },
	{ "vip",     cmd_remote, cmd_remote_check, "list, show, add or delete virtual services" },
	{ "backend", cmd_remote, cmd_remote_check, "add, change (weight, state) or delete backends" },
	{ "stats",   cmd_remote, cmd_remote_check, "traffic counters, per VIP and backend" },
	{ "top",     cmd_top,    cmd_top_check,    "live view of VIPs, backends and workers (q quits)" },
	{ "reload",  cmd_remote, cmd_remote_check, "re-read the config file and apply the difference" },
	{ "worker",  cmd_remote, cmd_remote_check, "list, reload or restart supervised worker instances" },
	{ "node",    cmd_remote, cmd_remote_check, "drain, undrain or show the node's BGP announcements" },
	{ "stop",    cmd_remote, cmd_remote_check, "stop lbd and remove its data path (SIGTERM keeps it)" },
	{ "maglev",  cmd_maglev, cmd_maglev_check, "print the Maglev table for a set of backends (offline)" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Written by lbctl_main() before any command runs, read-only afterwards. */
static struct lbctl_opts opts;

const struct lbctl_opts *lbctl_opts(void)
{
	return &opts;
}

static void report(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "lbctl: ");
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int lbctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cmd, fmt, ap);
	va_end(ap);
	return LBCTL_EXIT_USAGE;
}

int lbctl_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cmd, fmt, ap);
	va_end(ap);
	return LBCTL_EXIT_FAIL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lbctl [-j] [-n] [-s PATH] COMMAND [ARGS...]\n"
		"       lbctl help [COMMAND]\n"
		"\n"
		"options:\n"
		"  -j, --json          print JSON instead of text\n"
		"  -n, --dry-run       show what would change, change nothing\n"
		"  -s, --socket PATH   lbd control socket (default $LBD_SOCKET, else %s)\n"
		"  -h, --help          this help\n"
		"\n"
		"commands (any unique prefix will do):\n", LBCTL_DEFAULT_SOCK);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-18s  %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"'lbctl help COMMAND' or 'lbctl COMMAND --help' shows a command's usage.\n"
		"Every command but maglev is sent to lbd, which checks its arguments and\n"
		"answers; its output goes to stdout on success, to stderr otherwise.\n"
		"\n"
		"exit status:\n"
		"  0  success\n"
		"  1  lbd returned an error, lbd cannot be reached, or the operation failed\n"
		"  2  usage error (bad option, command or argument)\n");
}

/* Exact name first, then a unique prefix, as iproute2 does. */
static const struct command *find_command(const char *word)
{
	const struct command *found = NULL;
	size_t len = strlen(word);

	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, word))
			return &commands[i];
	for (size_t i = 0; len && i < N_COMMANDS; i++) {
		if (strncmp(commands[i].name, word, len))
			continue;
		if (found)
			return NULL;
		found = &commands[i];
	}
	return found;
}

static int run(const char *word, int argc, char **argv, bool check_only)
{
	const struct command *c = find_command(word);

	if (!c)
		return lbctl_usage_error(NULL, "unknown or ambiguous command '%s' (try 'lbctl help')",
					 word);
	argv[0] = (char *)c->name;
	return check_only ? c->check(argc, argv) : c->fn(argc, argv);
}

static int help(int argc, char **argv, bool check_only)
{
	char opt_help[] = "--help";
	char *args[] = { argv[0], opt_help, NULL };

	if (argc < 1) {
		if (!check_only)
			usage(stdout);
		return LBCTL_EXIT_OK;
	}
	if (argc > 1)
		return lbctl_usage_error("help", "one command at a time");
	return run(argv[0], 2, args, check_only);
}

/* Global options end at the first word that is not one. Returns the index of
 * the command word, or -1 after printing why the line is wrong. */
static int parse_global(int argc, char **argv, bool *want_help)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*want_help = true;
		} else if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			opts.json = true;
		} else if (!strcmp(a, "-n") || !strcmp(a, "--dry-run")) {
			opts.dry_run = true;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--socket")) {
			if (++i == argc || !argv[i][0]) {
				lbctl_usage_error(NULL, "'%s' needs a PATH", a);
				return -1;
			}
			opts.sock = argv[i];
		} else if (!strncmp(a, "--socket=", 9) && a[9]) {
			opts.sock = a + 9;
		} else {
			lbctl_usage_error(NULL, "unknown option '%s' (try 'lbctl --help')", a);
			return -1;
		}
	}
	return i;
}

static int parse_and_run(int argc, char **argv, bool check_only)
{
	bool want_help = false;
	int first, rc;

	opts = (struct lbctl_opts){ 0 };
	first = parse_global(argc, argv, &want_help);
	if (first < 0)
		return LBCTL_EXIT_USAGE;
	if (!opts.sock) {
		const char *env = getenv("LBD_SOCKET");

		opts.sock = env && env[0] ? env : LBCTL_DEFAULT_SOCK;
	}
	if (want_help) {
		if (!check_only)
			usage(stdout);
		return LBCTL_EXIT_OK;
	}
	if (first == argc) {
		usage(stderr);
		return LBCTL_EXIT_USAGE;
	}
	if (!strcmp(argv[first], "help"))
		rc = help(argc - first - 1, argv + first + 1, check_only);
	else
		rc = run(argv[first], argc - first, argv + first, check_only);
	if (check_only)
		return rc;
	if (fflush(stdout) == EOF || ferror(stdout))
		return lbctl_fail(NULL, "writing to stdout failed");
	return rc;
}

int lbctl_main(int argc, char **argv)
{
	return parse_and_run(argc, argv, false);
}

int lbctl_check(int argc, char **argv)
{
	return parse_and_run(argc, argv, true);
}
