// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Replays fuzz inputs through a target without libFuzzer: every file named
 * on the command line, or every file of a directory named there, once.
 * `make test` runs it over tests/fuzz/NAME/, so a crash once found stays
 * fixed. Prints "PASS: fuzz NAME: N inputs replayed" at the end; a broken
 * invariant, a crash or a sanitizer report ends it with the name of the
 * input on stderr (REPLAY_VERBOSE=1 names every input as it goes).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* The sanitizers' hook, there only in a sanitized build. */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*cb)(void));

static const char *current;
static bool verbose;

/* Async-signal-safe: the input that was running when it all ended. */
static void say_current(void)
{
	static const char pre[] = "replay: the input that failed: ";

	if (!current)
		return;
	(void)!write(2, pre, sizeof(pre) - 1);
	(void)!write(2, current, strlen(current));
	(void)!write(2, "\n", 1);
}

static void on_fatal(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal(void)
{
	static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(say_current);
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 4096);

			if (!nb) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		if (!n)
			break;
		len += n;
	}
	fclose(f);
	if (verbose)
		fprintf(fz_stderr(), "replay: %s (%zu bytes)\n", path, len);
	current = path;
	LLVMFuzzerTestOneInput(buf, len);
	current = NULL;
	free(buf);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* In name order, so a failing run repeats the same way. */
static int replay_dir(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char **nn;

		if (e->d_name[0] == '.')
			continue;
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (!nn)
			break;
		names = nn;
		if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0)
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		if (!rc && replay_file(names[i]) == 0)
			(*count)++;
		else
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int count = 0, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", name);
		return 2;
	}
	verbose = getenv("REPLAY_VERBOSE") != NULL;
	LLVMFuzzerInitialize(&argc, &argv);
	catch_fatal();
	for (int i = 1; i < argc && !rc; i++) {
		struct stat st;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = replay_dir(argv[i], &count);
		} else if (replay_file(argv[i]) == 0) {
			count++;
		} else {
			rc = -1;
		}
	}
	if (rc || !count) {
		fprintf(fz_stdout(), "FAIL: fuzz %s: %s\n", name,
			rc ? "an input could not be read" : "no inputs");
		return 1;
	}
	fprintf(fz_stdout(), "PASS: fuzz %s: %d inputs replayed\n", name, count);
	return 0;
}
