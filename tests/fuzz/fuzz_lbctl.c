// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbctl's command line (tools/lbctl/cli.c and the commands' argument
 * checks), offline through lbctl_check(): the input is the argument words,
 * NUL-separated. Every line is either accepted (0) or refused as a usage
 * error (2) with a message; the same line always gets the same answer (no
 * state leaks from one line into the next).
 */
#include <string.h>

#include "fuzz.h"
#include "../../tools/lbctl/lbctl.h"

#define MAX_WORDS 256

static int check(char *buf, size_t size)
{
	char prog[] = "lbctl";
	char *argv[MAX_WORDS + 2];
	int argc = 0;

	argv[argc++] = prog;
	for (size_t off = 0; off < size && argc <= MAX_WORDS; off += strlen(buf + off) + 1)
		argv[argc++] = buf + off;
	argv[argc] = NULL;
	return lbctl_check(argc, argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	int a, b;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	a = check(buf, size);
	FZ_CHECK(a == LBCTL_EXIT_OK || a == LBCTL_EXIT_USAGE, "lbctl_check returned %d", a);
	b = check(buf, size);
	FZ_CHECK(a == b, "the same line gave %d, then %d", a, b);
	free(buf);
	return 0;
}
