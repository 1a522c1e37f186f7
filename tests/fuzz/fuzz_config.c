// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd.conf parser (userspace/config.c): any text either parses into a
 * configuration whose fields are in range, or is refused with at least one
 * "FILE:LINE: message" error; never a crash, a leak or undefined behaviour.
 * Also drives the pieces lbctl's words reach: the statement splitter, the
 * backend words, durations and sizes.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

struct errs {
	int n;
};

static void on_err(void *ctx, const char *msg)
{
	struct errs *e = ctx;

	/* "FILE:LINE: message"; the file is fuzz.conf or one it included */
	FZ_CHECK(msg && strstr(msg, ": ") && strlen(msg) > 3, "bad message '%s'", msg);
	e->n++;
}

static void check_str(const char *s, size_t size)
{
	FZ_CHECK(memchr(s, '\0', size) != NULL, "string field not terminated");
}

static void check_conf(const struct lb_conf *c)
{
	FZ_CHECK(c->ninterfaces >= 0 && c->ninterfaces <= LB_CONF_MAX_IFACES, "%d interfaces",
		 c->ninterfaces);
	check_str(c->control, sizeof(c->control));
	check_str(c->state_dir, sizeof(c->state_dir));
	check_str(c->bpffs, sizeof(c->bpffs));
	FZ_CHECK(c->snat_port_lo <= c->snat_port_hi, "snat ports %u-%u", c->snat_port_lo,
		 c->snat_port_hi);
	FZ_CHECK(c->nvips >= 0 && (c->nvips == 0 || c->vips), "%d vips", c->nvips);
	for (int i = 0; i < c->nvips; i++) {
		const struct lb_vip_conf *v = &c->vips[i];

		check_str(v->name, sizeof(v->name));
		FZ_CHECK(lb_config_vip(c, v->name) != NULL, "vip '%s' not found by name", v->name);
		FZ_CHECK(v->proto == 6 || v->proto == 17, "vip %s proto %u", v->name, v->proto);
		FZ_CHECK(v->nbackends >= 0 && v->nbackends <= LB_CONF_MAX_BACKENDS,
			 "vip %s: %d backends", v->name, v->nbackends);
		FZ_CHECK(v->health.nstatus >= 0 && v->health.nstatus <= LB_HC_MAX_STATUS,
			 "vip %s: %d status ranges", v->name, v->health.nstatus);
		for (int s = 0; s < v->health.nstatus; s++)
			FZ_CHECK(v->health.status[s].lo <= v->health.status[s].hi,
				 "vip %s: status range %u-%u", v->name, v->health.status[s].lo,
				 v->health.status[s].hi);
		for (int b = 0; b < v->nbackends; b++)
			FZ_CHECK(v->backends[b].weight <= 65535, "vip %s: weight %u", v->name,
				 v->backends[b].weight);
	}
	FZ_CHECK(c->nworkers >= 0, "%d workers", c->nworkers);
	for (int i = 0; i < c->nworkers; i++) {
		const struct lb_worker_conf *w = &c->workers[i];

		FZ_CHECK(w->argc > 0 && w->argv && w->argv[w->argc] == NULL,
			 "worker %s: argv of %d", w->name, w->argc);
		for (int k = 0; k < w->nenv; k++)
			FZ_CHECK(strchr(w->env[k], '='), "worker %s: env '%s'", w->name, w->env[k]);
		FZ_CHECK(lb_worker_instances(w, 4) >= 1, "worker %s: no instance", w->name);
	}
}

/* The text as one control statement, as lbd splits a runtime command. */
static void split_words(const char *text)
{
	char *w[64], buf[4096], err[256] = "";
	struct lb_backend_conf bc;
	unsigned int given;
	int n = lb_config_split(text, w, 64, buf, sizeof(buf), err, sizeof(err));
	__u64 v;

	if (n < 0) {
		FZ_CHECK(err[0], "split failed (%d) without a message", n);
		return;
	}
	FZ_CHECK(n <= 64, "%d words", n);
	for (int i = 0; i < n; i++) {
		FZ_CHECK(w[i] >= buf && w[i] < buf + sizeof(buf), "word %d outside buf", i);
		lb_parse_duration_ms(w[i], &v);
		lb_parse_size(w[i], &v);
	}
	err[0] = '\0';
	if (n > 0 && lb_config_parse_backend_given(w, n, &bc, &given, err, sizeof(err)))
		FZ_CHECK(err[0], "backend words refused without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct errs e = { 0 };
	struct lb_conf cfg;
	int rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* Relative includes resolve next to "fuzz.conf", in the current
	 * directory: make fuzz runs in an empty one. */
	rc = lb_config_parse_string("fuzz.conf", text, &cfg, on_err, &e);
	if (rc == 0) {
		FZ_CHECK(e.n == 0, "parsed, yet %d errors reported", e.n);
		check_conf(&cfg);
		lb_config_free(&cfg);
	} else {
		FZ_CHECK(rc < 0 && e.n > 0, "refused (%d) with %d errors reported", rc, e.n);
	}
	split_words(text);
	free(text);
	return 0;
}
