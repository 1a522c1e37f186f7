// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbctl maglev: build a Maglev table offline, with the same code and seed as
 * lbd, to see where flows would go or how evenly weights are honoured.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "lbctl.h"
#include "maglev.h"

#define CMD "maglev"

struct maglev_args {
	__u32 size;
	__u32 seed;
	bool stats;
	size_t n;
	struct lb_maglev_backend *be;
	char (*name)[LB_ADDRSTRLEN]; /* be[i] printed, for every slot line */
};

static void maglev_usage(FILE *f)
{
	fprintf(f,
		"usage: lbctl maglev [--size M] [--seed S] [--stats] ADDR:PORT[=WEIGHT]...\n"
		"\n"
		"Prints the table lbd would build for these backends: one slot a line,\n"
		"slot 0 first. IPv6 backends are written [ADDR]:PORT; WEIGHT defaults to 1,\n"
		"and a backend of weight 0 gets no slot.\n"
		"\n"
		"  --size M   table size, a prime in 2..%u (default %u)\n"
		"  --seed S   hash seed, decimal or 0x-prefixed hex (default 0)\n"
		"  --stats    print each backend's slot count and share instead\n",
		LB_MAGLEV_MAX_SIZE, LB_MAGLEV_DEFAULT_SIZE);
}

/* Decimal, or hex with a 0x prefix when hex_ok; the whole string, no sign. */
static int parse_u32(const char *s, bool hex_ok, __u32 *out)
{
	int base = 10;
	unsigned long long v;
	char *end;

	if (hex_ok && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	/* strtoull alone would accept blanks, signs and an empty string. */
	if (!(base == 16 ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s)))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > 0xffffffffull)
		return -EINVAL;
	*out = (__u32)v;
	return 0;
}

static int parse_backend(const char *arg, struct lb_maglev_backend *b)
{
	char buf[LB_ADDRSTRLEN + 16];
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	struct lb_endpoint ep;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, arg, len);
	buf[len] = '\0';
	if (lb_endpoint_parse(buf, &ep))
		return -EINVAL;
	b->weight = 1;
	if (eq && parse_u32(eq + 1, false, &b->weight))
		return -EINVAL;
	b->addr = ep.addr;
	b->port = ep.port;
	b->family = ep.family;
	return 0;
}

static bool same_identity(const struct lb_maglev_backend *a, const struct lb_maglev_backend *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

static int add_backend(struct maglev_args *a, const char *arg)
{
	struct lb_maglev_backend *b = &a->be[a->n];
	struct lb_endpoint ep;

	memset(b, 0, sizeof(*b));
	if (parse_backend(arg, b))
		return lbctl_usage_error(CMD, "'%s' is not ADDR:PORT[=WEIGHT]", arg);
	for (size_t i = 0; i < a->n; i++)
		if (same_identity(&a->be[i], b))
			return lbctl_usage_error(CMD, "'%s' is given twice", arg);
	b->id = (__u32)a->n;
	ep = (struct lb_endpoint){ .addr = b->addr, .port = b->port, .family = b->family };
	lb_endpoint_str(&ep, a->name[a->n], sizeof(a->name[a->n]));
	a->n++;
	return 0;
}

/* Options may come anywhere before "--"; "--opt=value" works too. */
static int parse_args(int argc, char **argv, struct maglev_args *a)
{
	bool opts_done = false;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *val = NULL;
		bool is_size, is_seed;
		size_t olen;
		int err;

		if (opts_done || arg[0] != '-') {
			if ((err = add_backend(a, arg)))
				return err;
			continue;
		}
		if (!strcmp(arg, "--")) {
			opts_done = true;
			continue;
		}
		if (!strcmp(arg, "--stats")) {
			a->stats = true;
			continue;
		}
		olen = strcspn(arg, "=");
		is_size = olen == 6 && !strncmp(arg, "--size", olen);
		is_seed = olen == 6 && !strncmp(arg, "--seed", olen);
		if (!is_size && !is_seed)
			return lbctl_usage_error(CMD, "unknown option '%s' (try 'lbctl maglev --help')",
						 arg);
		if (arg[olen] == '=')
			val = arg + olen + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val)
			return lbctl_usage_error(CMD, "'%.*s' needs a value", (int)olen, arg);
		if (is_size && (parse_u32(val, false, &a->size) || !lb_is_prime(a->size) ||
				a->size > LB_MAGLEV_MAX_SIZE))
			return lbctl_usage_error(CMD, "size '%s' is not a prime in 2..%u", val,
						 LB_MAGLEV_MAX_SIZE);
		if (is_seed && parse_u32(val, true, &a->seed))
			return lbctl_usage_error(CMD, "seed '%s' is not a 32-bit number", val);
	}
	if (!a->n)
		return lbctl_usage_error(CMD, "no backends given (try 'lbctl maglev --help')");
	return 0;
}

static void print_table(const struct maglev_args *a, const __u32 *table, bool json)
{
	if (json)
		printf("{\"size\":%u,\"seed\":%u,\"table\":[", a->size, a->seed);
	for (__u32 s = 0; s < a->size; s++) {
		if (json)
			printf("%s\"%s\"", s ? "," : "", a->name[table[s]]);
		else
			puts(a->name[table[s]]);
	}
	if (json)
		puts("]}");
}

static int print_stats(const struct maglev_args *a, const __u32 *table, bool json)
{
	__u32 *slots = calloc(a->n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (__u32 s = 0; s < a->size; s++)
		slots[table[s]]++;
	if (json)
		printf("{\"size\":%u,\"seed\":%u,\"backends\":[", a->size, a->seed);
	else
		printf("%-47s %10s %8s %8s\n", "backend", "weight", "slots", "share");
	for (size_t i = 0; i < a->n; i++) {
		double share = (double)slots[i] / a->size;

		if (json)
			printf("%s{\"backend\":\"%s\",\"weight\":%u,\"slots\":%u,\"share\":%.6f}",
			       i ? "," : "", a->name[i], a->be[i].weight, slots[i], share);
		else
			printf("%-47s %10u %8u %7.3f%%\n", a->name[i], a->be[i].weight, slots[i],
			       share * 100.0);
	}
	if (json)
		puts("]}");
	free(slots);
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

static void free_args(struct maglev_args *a)
{
	free(a->name);
	free(a->be);
}

/* Allocates what parse_args fills: at most one backend per word. */
static int read_args(int argc, char **argv, struct maglev_args *a)
{
	*a = (struct maglev_args){ .size = LB_MAGLEV_DEFAULT_SIZE };
	a->be = calloc((size_t)argc, sizeof(*a->be));
	a->name = calloc((size_t)argc, sizeof(*a->name));
	if (!a->be || !a->name)
		return lbctl_fail(CMD, "out of memory");
	return parse_args(argc, argv, a);
}

int cmd_maglev_check(int argc, char **argv)
{
	struct maglev_args a;
	int rc;

	if (wants_help(argc, argv))
		return LBCTL_EXIT_OK;
	rc = read_args(argc, argv, &a);
	free_args(&a);
	return rc;
}

int cmd_maglev(int argc, char **argv)
{
	struct maglev_args a;
	__u32 *table = NULL;
	int rc, err;

	if (wants_help(argc, argv)) {
		maglev_usage(stdout);
		return LBCTL_EXIT_OK;
	}
	rc = read_args(argc, argv, &a);
	if (rc)
		goto out;
	table = malloc(a.size * sizeof(*table));
	err = table ? lb_maglev_build(a.be, a.n, a.seed, a.size, table) : -ENOMEM;
	if (!err && a.stats)
		err = print_stats(&a, table, lbctl_opts()->json);
	else if (!err)
		print_table(&a, table, lbctl_opts()->json);
	if (err == -ENOENT)
		rc = lbctl_fail(CMD, "no backend has a weight above 0");
	else if (err)
		rc = lbctl_fail(CMD, "%s", strerror(-err));
out:
	free(table);
	free_args(&a);
	return rc;
}
