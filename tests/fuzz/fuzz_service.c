// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The service's model (userspace/model.c), what lbctl's changes and a
 * reload go through before anything reaches the data path: a configuration
 * plus runtime statements (vip add/del, backend add/set/del), one a line.
 * lb_model_check applies them as lbd does and checks the rules lbd
 * relies on (see model.h); a broken rule aborts.
 *
 * Input: statements only, on a base configuration with an IPv4 and an IPv6
 * VIP; or "CONFIG\n%%\nSTATEMENTS" for a configuration of the input's own.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "model.h"

#define MAX_STMTS 64

static const char base_conf[] =
	"lbd { max_vips 4; max_backends 8; maglev_size 251; }\n"
	"vip web { listen 198.51.100.1:80; backend 10.0.0.2:8080; backend 10.0.0.3:8080 weight=2; }\n"
	"vip six { listen [2001:db8::1]:443; method ip_hash;\n"
	"          backend [2001:db8::2]:443; backend [2001:db8::3]:443 backup; }\n";

static void ignore_err(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *stmts[MAX_STMTS], *sep, *s, err[512];
	const char *conf = base_conf;
	struct lb_conf cfg;
	int n = 0, rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	s = text;
	sep = strstr(text, "\n%%\n");
	if (sep) {
		*sep = '\0';
		conf = text;
		s = sep + 4;
	}
	if (lb_config_parse_string("fuzz.conf", conf, &cfg, ignore_err, NULL)) {
		free(text);
		return 0;
	}
	for (char *line = strtok(s, "\n"); line && n < MAX_STMTS; line = strtok(NULL, "\n"))
		stmts[n++] = line;
	rc = lb_model_check(&cfg, stmts, n, err, sizeof(err));
	FZ_CHECK(rc == 0 || rc == -ENOMEM, "%s (%d)", err, rc);
	lb_config_free(&cfg);
	free(text);
	return 0;
}
