/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The fuzz targets' shared pieces. Each tests/fuzz/fuzz_NAME.c defines
 * LLVMFuzzerTestOneInput and is linked twice: with libFuzzer by `make fuzz`
 * (clang -fsanitize=fuzzer,address,undefined), and with replay.c's main by
 * `make`, so `make test` replays the corpus tests/fuzz/NAME/ (the seeds and
 * every crash ever found) with the ordinary build.
 *
 * A target checks its invariants with FZ_CHECK: a broken one aborts, which
 * libFuzzer reports as a crash and saves the input.
 */
#ifndef LBD_TESTS_FUZZ_H
#define LBD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Called once before the first input (libFuzzer's hook). common.c has a
 * default, fz_quiet(); a target that needs more defines its own. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_CHECK(cond, ...)                                                        \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(fz_stderr(), "%s:%d: invariant '%s' broken: ",    \
				__FILE__, __LINE__, #cond);                        \
			fprintf(fz_stderr(), __VA_ARGS__);                         \
			fputc('\n', fz_stderr());                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* The code under test reports bad input on stdout/stderr by design; at
 * thousands of inputs a second that is noise. fz_quiet() points the stdio
 * streams at /dev/null (file descriptors 1 and 2 stay: the sanitizers'
 * reports still show); fz_stdout() and fz_stderr() are the real ones. */
void fz_quiet(void);
FILE *fz_stdout(void);
FILE *fz_stderr(void);

#endif
