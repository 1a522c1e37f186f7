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

/* What most targets need before the first input: quiet stdio. A target with
 * more to set up defines its own, which the linker takes over this one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}
