// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "fuzz.h"

#include <unistd.h>

static FILE *real_stdout, *real_stderr;

void fz_quiet(void)
{
	FILE *null = fopen("/dev/null", "w");

	if (!real_stderr)
		real_stderr = fdopen(dup(2), "w");
	if (!real_stdout)
		real_stdout = fdopen(dup(1), "w");
	if (!null)
		return;
	setvbuf(null, NULL, _IONBF, 0);
	stdout = null;
	stderr = null;
}

FILE *fz_stderr(void)
{
	return real_stderr ? real_stderr : stderr;
}

FILE *fz_stdout(void)
{
	return real_stdout ? real_stdout : stdout;
}
