/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control socket: a unix stream server inside lbd's event loop, and the
 * client half lbctl uses. One request per connection.
 *
 * Wire format
 *   request:  u32 N (big endian, 1..LB_CTL_MAX_REQ), then N bytes: NUL-
 *             terminated words. Word 0 is the option word: zero or more of
 *             'j' (JSON output) and 'n' (dry run); the rest is the command,
 *             e.g. "backend" "add" "10.0.0.2:3000" "weight=1".
 *   response: u32 status (big endian; the lbctl exit code: 0 ok, 1 failed,
 *             2 bad usage), then the output text until the server closes.
 *             An answer may carry file descriptors (SCM_RIGHTS on its first
 *             bytes): the `handover` of the userspace proxy's listeners.
 *
 * The server checks the peer's credentials (root, lbd's own uid, or a member
 * of the configured group), answers a malformed or oversized request with
 * status 2 and a message without calling the handler, and serves many
 * clients at once without blocking the loop (reads and writes are
 * non-blocking and buffered per client; a client idle for
 * LB_CTL_CLIENT_TIMEOUT_MS is dropped).
 */
#ifndef LBD_CONTROL_H
#define LBD_CONTROL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "loop.h"

#define LB_CTL_MAX_REQ           (64 * 1024)  /* default; control_max_request */
#define LB_CTL_REQ_LIMIT         (16u << 20)  /* what the framing allows at most */
#define LB_CTL_MAX_WORDS         256
#define LB_CTL_MAX_CLIENTS       256
#define LB_CTL_CLIENT_TIMEOUT_MS 5000
#define LB_CTL_MAX_FDS           253  /* SCM_MAX_FD: what one answer can carry */

enum lb_ctl_status {
	LB_CTL_OK = 0,
	LB_CTL_FAILED = 1,
	LB_CTL_USAGE = 2,
};

/* A growing output buffer. On allocation failure it keeps what it has and
 * sets oom; the server then answers status 1 "out of memory". */
struct lb_buf {
	char *data;
	size_t len, cap;
	bool oom;
};

void lb_buf_printf(struct lb_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lb_buf_vprintf(struct lb_buf *b, const char *fmt, va_list ap);
/* s as a JSON string literal, quotes included. */
void lb_buf_json_str(struct lb_buf *b, const char *s);
void lb_buf_free(struct lb_buf *b);
/* Raw bytes; data stays NUL-terminated after any successful append. */
void lb_buf_append(struct lb_buf *b, const void *p, size_t n);

/* Descriptors a handler attaches to its answer. The server owns them from
 * then on: it sends them with the answer's first bytes and closes them once
 * sent (or when the client goes away first). */
struct lb_ctl_fds {
	int fd[LB_CTL_MAX_FDS];
	int n;
};

struct lb_ctl_req {
	int argc;          /* >= 1 */
	char **argv;       /* argv[0] is the command word */
	bool json;
	bool dry_run;
	bool readonly;     /* the peer is only in control_readonly_group */
	uid_t uid;         /* the peer's credentials */
	pid_t pid;
	struct lb_ctl_fds *pass; /* empty; the handler may fill it */
};

/* Runs in the loop; returns an enum lb_ctl_status. Output goes to out. It
 * must not call lb_ctl_close(); to stop lbd, set a flag and return. A request
 * carries at most LB_CTL_MAX_WORDS words after the option word. */
typedef int (*lb_ctl_handler_fn)(void *ctx, const struct lb_ctl_req *req, struct lb_buf *out);

struct lb_ctl;

struct lb_ctl_opts {
	const char *path;   /* socket path; its directory is created (0755) */
	const char *group;  /* NULL/"": owner only (0600), else 0660 and chgrp */
	const char *ro_group; /* NULL/"": none, else an ACL entry; read-only requests */
	lb_ctl_handler_fn handler;
	void *ctx;
	/* 0 means the default; tests shorten the timeout and lower the limit. */
	int client_timeout_ms;  /* LB_CTL_CLIENT_TIMEOUT_MS */
	int max_clients;        /* LB_CTL_MAX_CLIENTS */
	size_t max_request;     /* LB_CTL_MAX_REQ, at most LB_CTL_REQ_LIMIT */
};

/* Binds (replacing a stale socket file only when nothing answers on it:
 * a live lbd on the same path is -EADDRINUSE) and registers with the loop.
 * Every failure is logged here with its reason; callers need not repeat it. */
int  lb_ctl_open(struct lb_loop *loop, const struct lb_ctl_opts *o, struct lb_ctl **out);
/* 0 when a server accepts connections on path, else the connect's -errno
 * (-ECONNREFUSED, -ENOENT: nobody serves there). */
int  lb_ctl_probe(const char *path);
/* Moves the bound socket file to path (lbd --takeover binds beside the old
 * lbd's socket, then takes its name once it is gone). */
int  lb_ctl_rename(struct lb_ctl *c, const char *path);
/* Closes every client and unlinks the socket file. */
void lb_ctl_close(struct lb_ctl *c);
/* Timer hook: drops idle clients. Call about once a second. */
void lb_ctl_tick(struct lb_ctl *c);
/* Clients whose answer is not fully written yet: after a `stop` request lbd
 * keeps running the loop (bounded) until this is 0, so the answer arrives. */
int  lb_ctl_pending(const struct lb_ctl *c);

/* Client side (lbctl): sends argv with the option word, waits up to
 * timeout_ms for the whole answer. Returns the status (>= 0) with the output
 * in out, or a negative errno when the socket cannot be reached or the answer
 * is malformed. */
int lb_ctl_call(const char *path, const char *opts, int argc, char *const *argv,
		int timeout_ms, struct lb_buf *out);
/* The same, also taking the descriptors the answer carries (close-on-exec):
 * up to max into fds, their count in *nfds; any beyond max are closed. */
int lb_ctl_call_fds(const char *path, const char *opts, int argc, char *const *argv,
		    int timeout_ms, struct lb_buf *out, int *fds, int max, int *nfds);

#endif
