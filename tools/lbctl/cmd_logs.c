// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `lbctl worker logs NAME -f [-n LINES]`: like `tail -F` over every
 * instance's log file. lbd answers requests and never holds one open, so it
 * only names the files (the headers of its `worker logs` answer); lbctl
 * prints their last LINES and follows them itself, on the same host:
 *   - rotation and truncation are noticed by the path's inode and size,
 *     and by a new copy app-0.log.1 (a file emptied in place may have grown
 *     back past the old offset): the rest of the old file is printed (of a
 *     file lbd emptied in place, from that copy), then the new one from its
 *     start;
 *   - a file that does not exist yet (an instance not started) is waited for;
 *   - it ends when stdout goes away (a pipe to `head` that closed: POLLERR
 *     on stdout, or EPIPE on a write), on SIGINT/SIGTERM, or when LBCTL_
 *     FOLLOW_SECONDS (tests) have passed. A check every 200 ms is cheap and
 *     treats rename, copy-truncate and re-creation alike, which inotify
 *     watches of files and directories would each need their own case for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "lbctl.h"

#define FOLLOW_MAX_FILES 256
#define FOLLOW_TICK_MS   200
#define TAIL_MAX_BYTES   (1 << 20) /* read back for the last LINES */

/* What PATH.1 was when last looked at: a new copy there is a rotation. */
struct copy_sig {
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct followed {
	char path[PATH_MAX];
	int inst;
	int fd;        /* -1: not open (yet) */
	ino_t ino;
	off_t off;     /* printed up to here */
	struct copy_sig copy; /* PATH.1 as of the last rotation seen */
};

static int last_shown = -1; /* the file whose header was printed last */

/* Write all of buf to stdout; -1 when stdout is gone. */
static int out(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int header(const struct followed *f, int i)
{
	char h[PATH_MAX + 64];
	int n;

	if (last_shown == i)
		return 0;
	n = snprintf(h, sizeof(h), "%s==> %s (instance %d) <==\n", last_shown < 0 ? "" : "\n",
		     f->path, f->inst);
	last_shown = i;
	return out(h, (size_t)n);
}

/* f's copy, PATH.1, opened (-1: none). */
static int copy_open(const struct followed *f)
{
	char p[PATH_MAX + 4];

	if (snprintf(p, sizeof(p), "%s.1", f->path) >= (int)sizeof(p))
		return -1;
	return open(p, O_RDONLY | O_CLOEXEC);
}

static void copy_sig(const struct followed *f, struct copy_sig *c)
{
	struct stat st;
	int fd = copy_open(f);

	memset(c, 0, sizeof(*c));
	if (fd >= 0 && !fstat(fd, &st)) {
		c->ino = st.st_ino;
		c->size = st.st_size;
		c->mtime = st.st_mtim;
	}
	if (fd >= 0)
		close(fd);
}

static bool copy_sig_eq(const struct copy_sig *a, const struct copy_sig *b)
{
	return a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Open f->path (if it exists): *tail_lines of its end are to be printed
 * (0: from where it starts, a new file after rotation). */
static void fopen_at(struct followed *f, long tail_lines)
{
	struct stat st;
	char *buf;
	off_t start;
	ssize_t n;
	long nl = 0;

	f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st)) {
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		return;
	}
	f->ino = st.st_ino;
	f->off = 0;
	copy_sig(f, &f->copy);
	if (tail_lines <= 0 || st.st_size == 0)
		return;
	/* the last tail_lines lines, looked for in the last MiB */
	start = st.st_size > TAIL_MAX_BYTES ? st.st_size - TAIL_MAX_BYTES : 0;
	buf = malloc((size_t)(st.st_size - start));
	if (!buf)
		return;
	n = pread(f->fd, buf, (size_t)(st.st_size - start), start);
	f->off = st.st_size;
	for (ssize_t i = n - 1; i >= 0; i--) {
		if (buf[i] == '\n' && i != n - 1 && ++nl == tail_lines) {
			f->off = start + i + 1;
			break;
		}
		if (i == 0)
			f->off = start;
	}
	free(buf);
}

/* Print fd from f->off to end (-1: to its end); -1: stdout is gone. The
 * end a check saw keeps a file emptied and written again meanwhile from
 * being read on from the old offset (the next check notices it). */
static int print_from(struct followed *f, int i, int fd, off_t end)
{
	char buf[16384];
	ssize_t n;

	for (;;) {
		size_t want = sizeof(buf);

		if (end >= 0 && f->off >= end)
			return 0;
		if (end >= 0 && (off_t)want > end - f->off)
			want = (size_t)(end - f->off);
		n = pread(fd, buf, want, f->off);
		if (n <= 0)
			return 0;
		if (header(f, i) || out(buf, (size_t)n))
			return -1;
		f->off += n;
	}
}

/* f's file was emptied in place by lbd, which rotates copy-truncate style
 * (supervisor.c): what was written before and not printed yet is at the end
 * of its new copy, PATH.1. Without this, what came within one check before
 * the rotation was lost (a test's line, written just before it). */
static int print_rotated_copy(struct followed *f, int i)
{
	struct stat st;
	int fd = copy_open(f), rc = 0;

	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && st.st_size > f->off)
		rc = print_from(f, i, fd, -1);
	close(fd);
	return rc;
}

/* Whether f's file (size bytes) starts as its copy PATH.1 does: it is
 * that copy's source, not emptied yet. */
static bool same_start(const struct followed *f, off_t size, off_t copy_size)
{
	char a[256], b[256];
	size_t n = sizeof(a);
	bool same = false;
	int fd;

	if ((off_t)n > size)
		n = (size_t)size;
	if ((off_t)n > copy_size)
		n = (size_t)copy_size;
	if (!n || (fd = copy_open(f)) < 0)
		return false;
	same = pread(f->fd, a, n, 0) == (ssize_t)n && pread(fd, b, n, 0) == (ssize_t)n &&
	       !memcmp(a, b, n);
	close(fd);
	return same;
}

/*
 * Whether f's file was emptied in place since the last check, and whether
 * lbd did it (*copied: a new copy PATH.1 is there, holding what was not
 * printed yet). A new copy with the file no longer starting as it does
 * catches a file that grew back past the old offset within one check,
 * whose start the follower would skip; a file that still does is one lbd
 * has copied but not emptied yet (the next check decides). Shorter than
 * what was printed without a new copy: emptied by someone else.
 */
static bool emptied(const struct followed *f, const struct stat *st, bool *copied)
{
	struct copy_sig c;

	copy_sig(f, &c);
	*copied = c.size && !copy_sig_eq(&c, &f->copy);
	if (*copied)
		return st->st_size < c.size || !same_start(f, st->st_size, c.size);
	return st->st_size < f->off;
}

/* Print what f gained; reopen it when its path now names another file
 * (rotated) or it was emptied in place (copy-truncate). Looked at before
 * printing: an emptied file's bytes past the old offset are new ones, to be
 * printed after the copy's rest. -1: stdout is gone. */
static int drain(struct followed *f, int i)
{
	bool rotated, copied = false;
	struct stat st;

	if (f->fd < 0) {
		fopen_at(f, 0);
		if (f->fd < 0)
			return 0;
	}
	rotated = stat(f->path, &st) || st.st_ino != f->ino;
	if (!rotated && !emptied(f, &st, &copied))
		return print_from(f, i, f->fd, st.st_size);
	/* renamed away: the rest of it is still behind f->fd */
	if (rotated && print_from(f, i, f->fd, -1))
		return -1;
	if (!rotated && copied && print_rotated_copy(f, i))
		return -1;
	close(f->fd);
	f->fd = -1;
	fopen_at(f, 0); /* the new file, or the emptied one, from its start */
	return f->fd >= 0 ? print_from(f, i, f->fd, -1) : 0;
}

/* Paths from the headers of lbd's answer: "==> PATH (instance K) <==". */
static int parse_paths(const char *text, struct followed *fs, int max)
{
	int n = 0;

	for (const char *p = text; p && *p && n < max; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		const char *end, *inst;
		size_t len;

		if (strncmp(p, "==> ", 4))
			continue;
		end = strchr(p, '\n');
		inst = strstr(p, " (instance ");
		if (!inst || (end && inst > end))
			continue;
		len = (size_t)(inst - (p + 4));
		if (len >= sizeof(fs[n].path))
			continue;
		memcpy(fs[n].path, p + 4, len);
		fs[n].path[len] = '\0';
		fs[n].inst = atoi(inst + 11);
		fs[n].fd = -1;
		n++;
	}
	return n;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int cmd_logs_follow(const char *sock, const char *name, long lines)
{
	static struct followed fs[FOLLOW_MAX_FILES];
	char *argv[] = { "worker", "logs", (char *)name, "-n", "1" };
	const char *limit = getenv("LBCTL_FOLLOW_SECONDS");
	long deadline = limit ? now_ms() + atol(limit) * 1000L : 0;
	struct sigaction sa = { .sa_handler = on_signal };
	struct lb_buf ans = { 0 };
	int rc, n;

	rc = lb_ctl_call(sock, "", 5, argv, 30000, &ans);
	if (rc != LBCTL_EXIT_OK) {
		if (rc > 0 && ans.len)
			fwrite(ans.data, 1, ans.len, stderr);
		lb_buf_free(&ans);
		return rc; /* < 0: the caller says why lbd was not reached */
	}
	lb_buf_append(&ans, "", 1);
	n = parse_paths(ans.data, fs, FOLLOW_MAX_FILES);
	if (!n) { /* no log file: lbd says where the output goes */
		fwrite(ans.data, 1, strlen(ans.data), stdout);
		lb_buf_free(&ans);
		return LBCTL_EXIT_OK;
	}
	lb_buf_free(&ans);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (int i = 0; i < n; i++) {
		fopen_at(&fs[i], lines);
		if (header(&fs[i], i) || drain(&fs[i], i))
			stop = 1;
	}
	while (!stop && (!deadline || now_ms() < deadline)) {
		struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

		/* POLLERR/POLLHUP: the reader of our pipe is gone */
		if (poll(&p, 1, FOLLOW_TICK_MS) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
			break;
		for (int i = 0; i < n && !stop; i++)
			if (drain(&fs[i], i))
				stop = 1;
	}
	for (int i = 0; i < n; i++)
		if (fs[i].fd >= 0)
			close(fs[i].fd);
	return LBCTL_EXIT_OK;
}
