// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "procsock.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sock_int(int fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -1 : v;
}

/* A socket that takes new connections (or datagrams) on port. */
static bool serves(int fd, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int dom = sock_int(fd, SOL_SOCKET, SO_DOMAIN), type = sock_int(fd, SOL_SOCKET, SO_TYPE);
	uint16_t p;

	if ((dom != AF_INET && dom != AF_INET6) || getsockname(fd, (struct sockaddr *)&ss, &len))
		return false;
	p = ntohs(dom == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (p != port)
		return false;
	if (type == SOCK_STREAM)
		return sock_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
	if (type == SOCK_DGRAM) {
		len = sizeof(ss);
		return getpeername(fd, (struct sockaddr *)&ss, &len) && errno == ENOTCONN;
	}
	return false;
}

static bool seen(const int *fds, int n, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a))
		return true;
	for (int i = 0; i < n; i++)
		if (!fstat(fds[i], &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return true;
	return false;
}

int lb_procsock_find(pid_t pid, uint16_t port, int *fds, int max)
{
	int pidfd, n = 0, err = 0, misses = 0;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	/* Descriptor numbers are tried in turn rather than listed from
	 * /proc/PID/fd, which lbd cannot read for an instance of another user
	 * once it has dropped CAP_DAC_*; pidfd_getfd needs only the ptrace
	 * right. A listener is opened early: the first LB_PROCSOCK_SCAN
	 * numbers, and the search stops after a long run of unused ones. */
	for (int i = 0; i < LB_PROCSOCK_SCAN && n < max && misses < 256; i++) {
		struct stat st;
		int fd = (int)syscall(SYS_pidfd_getfd, pidfd, i, 0);

		if (fd < 0) {
			if (errno == EPERM || errno == ESRCH) {
				err = -errno;
				break;
			}
			misses++;
			continue;
		}
		misses = 0;
		if (!fstat(fd, &st) && S_ISSOCK(st.st_mode) && serves(fd, port) && !seen(fds, n, fd))
			fds[n++] = fd;
		else
			close(fd);
	}
	close(pidfd);
	return n ? n : err;
}
