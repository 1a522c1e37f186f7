// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "procstat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int lb_procstat(pid_t pid, struct lb_procstat *out)
{
	char p[64], buf[1024], *e;
	int ppid = 0;
	size_t n;
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return -ESRCH;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command (field 2) may hold spaces and parentheses: it ends at
	 * the last ')'; fields 3 (state) to 22 (start time) follow */
	e = strrchr(buf, ')');
	if (!e || sscanf(e + 1, "%*s %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %*s %*s %*s "
			 "%*s %*s %*s %llu", &ppid, &out->utime, &out->stime, &out->start) != 4)
		return -ESRCH;
	out->ppid = ppid;
	return 0;
}

unsigned long long lb_proc_start(pid_t pid)
{
	struct lb_procstat s;

	return lb_procstat(pid, &s) ? 0 : s.start;
}
