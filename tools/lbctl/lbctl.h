/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbctl - shared pieces of the command line: global options, exit codes and
 * the command handlers. A new command is a file tools/lbctl/cmd_WORD.c with
 * one handler declared below and one line in main.c's command table.
 */
#ifndef LBCTL_H
#define LBCTL_H

#include <stdbool.h>

#define LBCTL_DEFAULT_SOCK "/run/lbd/lbd.sock"

/* Exit codes, documented in `lbctl help`. */
enum {
	LBCTL_EXIT_OK    = 0,
	LBCTL_EXIT_FAIL  = 1, /* lbd returned an error, or the operation failed */
	LBCTL_EXIT_USAGE = 2, /* bad command line */
};

/* Global options, parsed before the command word. */
struct lbctl_opts {
	bool json;        /* -j: JSON on stdout instead of text */
	const char *sock; /* -s PATH, else $LBD_SOCKET, else LBCTL_DEFAULT_SOCK */
	bool dry_run;     /* -n: say what would change, change nothing */
};

const struct lbctl_opts *lbctl_opts(void);

/* The whole command line (argv[0] is the program name): returns the exit
 * code. lbctl_check parses it the same way, options and the command's own
 * arguments included, and returns 0 or LBCTL_EXIT_USAGE (with the message
 * on stderr) without contacting lbd or printing a result. */
int lbctl_main(int argc, char **argv);
int lbctl_check(int argc, char **argv);

/* "lbctl: CMD: message" on stderr; return the exit code to hand back. */
int lbctl_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int lbctl_fail(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Handlers: argv[0] is the command word; "--help" prints the command's usage
 * on stdout and returns LBCTL_EXIT_OK. Each has a _check twin that only
 * checks the arguments (for lbctl_check). */
int cmd_maglev(int argc, char **argv);
int cmd_maglev_check(int argc, char **argv);
/* A live view (ncurses on a terminal, plain frames otherwise) drawn from
 * lbd's status document. */
int cmd_top(int argc, char **argv);
int cmd_top_check(int argc, char **argv);
/* Every command that lbd answers (status, vip, backend, ...): argv[0] says
 * which; the words go to lbd over the control socket. */
int cmd_remote(int argc, char **argv);
/* `worker logs NAME -f`: lbd names the files, lbctl prints their last
 * LINES and follows them (across rotation) until stdout goes away.
 * Returns an exit code, or a negative errno when lbd was not reached. */
int cmd_logs_follow(const char *sock, const char *name, long lines);
int cmd_remote_check(int argc, char **argv);

#endif
