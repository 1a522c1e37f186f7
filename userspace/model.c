// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The effective model: the config file's VIPs and backends, the runtime
 * layer of lbctl statements on top, the ready worker instances last. It is
 * rebuilt from scratch for every change and checked before service.c
 * applies it, so a refused statement leaves nothing behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "control.h"
#include "model.h"
#include "supervisor.h"
#include "table.h"

static void vip_free(struct lb_model_vip *v)
{
	free(v->be);
	free(v->table);
	memset(v, 0, sizeof(*v));
}

void lb_model_free(struct lb_model *m)
{
	for (int i = 0; i < m->n; i++)
		vip_free(&m->v[i]);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

struct lb_model_vip *lb_model_find_vip(const struct lb_model *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].c.name, name))
			return &m->v[i];
	return NULL;
}

struct lb_model_be *lb_model_find_be(const struct lb_model_vip *v, const struct lb_endpoint *ep)
{
	for (int i = 0; i < v->nbe; i++)
		if (lb_endpoint_eq(&v->be[i].c.ep, ep))
			return &v->be[i];
	return NULL;
}

int lb_model_add_be(struct lb_model_vip *v, const struct lb_backend_conf *c)
{
	struct lb_model_be *nb;

	if (v->nbe >= LB_CONF_MAX_BACKENDS)
		return -E2BIG;
	nb = realloc(v->be, (v->nbe + 1) * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	v->be = nb;
	memset(&nb[v->nbe], 0, sizeof(nb[0]));
	nb[v->nbe].c = *c;
	nb[v->nbe].c.vip[0] = '\0';
	v->nbe++;
	return 0;
}

int lb_model_add_vip(struct lb_model *m, const struct lb_vip_conf *c, struct lb_model_vip **out)
{
	struct lb_model_vip *nv = realloc(m->v, (m->n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	m->v = nv;
	memset(&nv[m->n], 0, sizeof(nv[0]));
	nv[m->n].c = *c;
	nv[m->n].c.backends = NULL;
	nv[m->n].c.nbackends = 0;
	*out = &nv[m->n++];
	return 0;
}

static int model_from_conf(const struct lb_conf *cf, struct lb_model *m)
{
	memset(m, 0, sizeof(*m));
	m->max_vips = cf->max_vips;
	m->max_be = cf->max_backends;
	for (int i = 0; i < cf->nvips; i++) {
		struct lb_model_vip *v;
		int err = lb_model_add_vip(m, &cf->vips[i], &v);

		for (int j = 0; !err && j < cf->vips[i].nbackends; j++)
			err = lb_model_add_be(v, &cf->vips[i].backends[j]);
		if (err) {
			lb_model_free(m);
			return err;
		}
	}
	return 0;
}

bool lb_model_same_key(const struct lb_vip_conf *a, const struct lb_vip_conf *b)
{
	return a->proto == b->proto && lb_endpoint_eq(&a->listen, &b->listen);
}

static const char *vip_list(const struct lb_model *m, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < m->n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", m->v[i].c.name);
	return buf;
}

/* The VIP a backend statement is for: vip=NAME, or the only one. */
static struct lb_model_vip *pick_vip(struct lb_model *m, const char *name, char *err, size_t errlen)
{
	char names[256];
	struct lb_model_vip *v;

	if (name && name[0]) {
		v = lb_model_find_vip(m, name);
		if (!v)
			snprintf(err, errlen, "vip=%s: no such VIP (configured: %s)", name,
				 m->n ? vip_list(m, names, sizeof(names)) : "none");
		return v;
	}
	if (m->n == 1)
		return &m->v[0];
	if (m->n == 0)
		snprintf(err, errlen, "no VIP is configured: add one first (lbctl vip add)");
	else
		snprintf(err, errlen, "%d VIPs are configured (%s): say which with vip=NAME",
			 m->n, vip_list(m, names, sizeof(names)));
	return NULL;
}

static int parse_state(const char *s, enum lb_backend_state *st)
{
	if (!strcmp(s, "up"))
		*st = LB_BE_UP;
	else if (!strcmp(s, "drain"))
		*st = LB_BE_DRAIN;
	else if (!strcmp(s, "down"))
		*st = LB_BE_DOWN;
	else
		return -EINVAL;
	return 0;
}

/* backend add|set|del ADDR:PORT [k=v ...] [vip=NAME]. `lenient` is for
 * replaying the runtime layer over a file that may have changed under it:
 * an add of an existing backend updates it, a del of a missing one is a no-op. */
static int stmt_backend(struct lb_model *m, char **w, int n, bool lenient,
			char *canon, size_t clen, char *err, size_t errlen)
{
	const char *op = w[1];
	struct lb_backend_conf bc;
	struct lb_model_vip *v;
	struct lb_model_be *b;
	char eps[LB_ADDRSTRLEN];
	int off;

	if (n < 3) {
		snprintf(err, errlen, "backend %s: missing ADDR:PORT", op);
		return -EINVAL;
	}
	if (!strcmp(op, "add")) {
		if (lb_config_parse_backend(w + 2, n - 2, &bc, err, errlen))
			return -EINVAL;
	} else if (!strcmp(op, "set") || !strcmp(op, "del")) {
		memset(&bc, 0, sizeof(bc));
		if (lb_endpoint_parse(w[2], &bc.ep) || !bc.ep.port) {
			snprintf(err, errlen, "\"%s\": not ADDR:PORT (198.18.1.2:3000, [2001:db8::2]:3000)", w[2]);
			return -EINVAL;
		}
		for (int i = 3; i < n; i++)
			if (!strncmp(w[i], "vip=", 4))
				snprintf(bc.vip, sizeof(bc.vip), "%s", w[i] + 4);
	} else {
		snprintf(err, errlen, "backend \"%s\": expected add, set or del", op);
		return -EINVAL;
	}
	v = pick_vip(m, bc.vip, err, errlen);
	if (!v)
		return -ENOENT;
	if (bc.ep.family != v->c.listen.family) {
		snprintf(err, errlen, "\"%s\": VIP %s is IPv%d", w[2], v->c.name, v->c.listen.family);
		return -EINVAL;
	}
	b = lb_model_find_be(v, &bc.ep);
	lb_endpoint_str(&bc.ep, eps, sizeof(eps));
	off = snprintf(canon, clen, "backend %s %s", op, eps);
	/* as the config file checks it (a layer replayed from before is let be) */
	if (!strcmp(op, "add") && !lenient && v->c.listen.port && bc.ep.port != v->c.listen.port &&
	    (v->c.forward == LB_FWD_DSR || lb_fwd_encap(v->c.forward))) {
		snprintf(err, errlen, "%s: VIP %s forwards by %s, which cannot rewrite ports: use port %u",
			 eps, v->c.name, lb_fwd_name(v->c.forward), ntohs(v->c.listen.port));
		return -EINVAL;
	}

	if (!strcmp(op, "add")) {
		if (b && !lenient) {
			snprintf(err, errlen, "%s: already a backend of %s (use backend set)", eps, v->c.name);
			return -EEXIST;
		}
		for (int i = 3; i < n; i++)
			if (strncmp(w[i], "vip=", 4))
				off += snprintf(canon + off, clen - off, " %s", w[i]);
		snprintf(canon + off, clen - off, " vip=%s", v->c.name);
		if (b) {
			b->c = bc;
			b->c.vip[0] = '\0';
			return 0;
		}
		if ((__u32)v->nbe >= m->max_be) {
			snprintf(err, errlen, "%s: %s has %d backends already (max_backends %u)",
				 eps, v->c.name, v->nbe, m->max_be);
			return -E2BIG;
		}
		return lb_model_add_be(v, &bc);
	}
	if (!b) {
		if (lenient)
			return 0;
		snprintf(err, errlen, "%s: not a backend of %s", eps, v->c.name);
		return -ENOENT;
	}
	if (!strcmp(op, "del")) {
		snprintf(canon + off, clen - off, " vip=%s", v->c.name);
		*b = v->be[--v->nbe];
		return 0;
	}
	/* set: only what is named changes */
	{
		struct lb_backend_conf nc = b->c;
		bool any = false;

		for (int i = 3; i < n; i++) {
			char *e;

			if (!strncmp(w[i], "weight=", 7)) {
				unsigned long wt = strtoul(w[i] + 7, &e, 10);

				if (!w[i][7] || *e || wt > 65535) {
					snprintf(err, errlen, "\"%s\": weight must be 0..65535", w[i]);
					return -EINVAL;
				}
				nc.weight = wt;
			} else if (!strncmp(w[i], "state=", 6)) {
				if (parse_state(w[i] + 6, &nc.state)) {
					snprintf(err, errlen, "\"%s\": state must be up, drain or down", w[i]);
					return -EINVAL;
				}
			} else if (!strncmp(w[i], "vip=", 4)) {
				continue;
			} else {
				snprintf(err, errlen, "\"%s\": backend set takes weight=N and state=up|drain|down", w[i]);
				return -EINVAL;
			}
			off += snprintf(canon + off, clen - off, " %s", w[i]);
			any = true;
		}
		if (!any) {
			snprintf(err, errlen, "backend set %s: nothing to set (weight=N, state=up|drain|down)", eps);
			return -EINVAL;
		}
		snprintf(canon + off, clen - off, " vip=%s", v->c.name);
		b->c = nc;
	}
	return 0;
}

static int parse_method(const char *s, enum lb_method *m)
{
	for (int i = 0; i < LB_METHOD_MAX; i++)
		if (!strcmp(s, lb_method_name(i))) {
			*m = i;
			return 0;
		}
	return -EINVAL;
}

static int parse_fwd(const char *s, enum lb_fwd *f)
{
	for (int i = 0; i < LB_FWD_MAX; i++)
		if (!strcmp(s, lb_fwd_name(i))) {
			*f = i;
			return 0;
		}
	return -EINVAL;
}

/* vip add NAME LISTEN [udp] [method=M] [forward=F] [snat=ADDR] | vip del NAME */
static int stmt_vip(struct lb_model *m, char **w, int n, bool lenient,
		    char *canon, size_t clen, char *err, size_t errlen)
{
	struct lb_vip_conf c;
	struct lb_model_vip *v;
	int off;

	if (n < 3) {
		snprintf(err, errlen, "vip %s: missing NAME", w[1]);
		return -EINVAL;
	}
	if (!strcmp(w[1], "del")) {
		v = lb_model_find_vip(m, w[2]);
		if (!v) {
			if (lenient)
				return 0;
			snprintf(err, errlen, "vip del %s: no such VIP", w[2]);
			return -ENOENT;
		}
		snprintf(canon, clen, "vip del %s", w[2]);
		vip_free(v);
		*v = m->v[--m->n];
		return 0;
	}
	if (strcmp(w[1], "add")) {
		snprintf(err, errlen, "vip \"%s\": expected list, show, add or del", w[1]);
		return -EINVAL;
	}
	memset(&c, 0, sizeof(c));
	if (!lb_config_name_ok(w[2])) {
		snprintf(err, errlen, "\"%s\": VIP names are 1-63 of [A-Za-z0-9._-]", w[2]);
		return -EINVAL;
	}
	snprintf(c.name, sizeof(c.name), "%s", w[2]);
	if (n < 4 || lb_endpoint_parse(w[3], &c.listen)) {
		snprintf(err, errlen, "vip add %s: \"%s\": expected LISTEN ADDR:PORT", w[2],
			 n < 4 ? "" : w[3]);
		return -EINVAL;
	}
	c.proto = IPPROTO_TCP;
	c.method = LB_METHOD_MAGLEV;
	c.forward = LB_FWD_NAT;
	c.health.type = LB_HC_NONE;
	off = snprintf(canon, clen, "vip add %s %s", w[2], w[3]);
	for (int i = 4; i < n; i++) {
		if (!strcmp(w[i], "udp") || !strcmp(w[i], "tcp")) {
			c.proto = w[i][0] == 'u' ? IPPROTO_UDP : IPPROTO_TCP;
		} else if (!strncmp(w[i], "method=", 7)) {
			if (parse_method(w[i] + 7, &c.method)) {
				snprintf(err, errlen, "\"%s\": method is maglev, ip_hash, round_robin or least_conn", w[i]);
				return -EINVAL;
			}
		} else if (!strncmp(w[i], "forward=", 8)) {
			if (parse_fwd(w[i] + 8, &c.forward) || c.forward == LB_FWD_LOCAL) {
				snprintf(err, errlen, "\"%s\": forward is nat, dsr, ipip or gue", w[i]);
				return -EINVAL;
			}
		} else if (!strncmp(w[i], "snat=", 5)) {
			__u8 fam;

			if (lb_addr_parse(w[i] + 5, &c.snat, &fam) || fam != c.listen.family) {
				snprintf(err, errlen, "\"%s\": not an IPv%d address", w[i], c.listen.family);
				return -EINVAL;
			}
			c.snat_set = true;
		} else {
			snprintf(err, errlen, "\"%s\": vip add takes udp, method=, forward=, snat=", w[i]);
			return -EINVAL;
		}
		off += snprintf(canon + off, clen - off, " %s", w[i]);
	}
	for (int i = 0; i < m->n; i++) {
		if (!strcmp(m->v[i].c.name, c.name) || lb_model_same_key(&m->v[i].c, &c)) {
			if (lenient && !strcmp(m->v[i].c.name, c.name))
				return 0;
			snprintf(err, errlen, "vip add %s: %s already serves %s", c.name,
				 m->v[i].c.name, w[3]);
			return -EEXIST;
		}
	}
	if ((__u32)m->n >= m->max_vips) {
		snprintf(err, errlen, "%s: there are %d VIPs already (max_vips %u)", c.name,
			 m->n, m->max_vips);
		return -E2BIG;
	}
	if (lb_model_add_vip(m, &c, &v))
		return -ENOMEM;
	v->runtime = true;
	return 0;
}

/* One runtime statement against the model. canon receives the normalised
 * statement, the form that is persisted. */
int lb_model_stmt(struct lb_model *m, char **w, int n, bool lenient,
		  char *canon, size_t clen, char *err, size_t errlen)
{
	if (n >= 2 && !strcmp(w[0], "backend"))
		return stmt_backend(m, w, n, lenient, canon, clen, err, errlen);
	if (n >= 2 && !strcmp(w[0], "vip"))
		return stmt_vip(m, w, n, lenient, canon, clen, err, errlen);
	snprintf(err, errlen, "\"%s\": not a runtime statement", n ? w[0] : "");
	return -EINVAL;
}

static int model_replay(struct lb_model *m, char **rt, int nrt)
{
	for (int i = 0; i < nrt; i++) {
		char buf[LB_MODEL_STMT_MAX * 2], err[256], canon[LB_MODEL_STMT_MAX], *w[LB_MODEL_MAX_WORDS];
		int n = lb_config_split(rt[i], w, LB_MODEL_MAX_WORDS, buf, sizeof(buf), err, sizeof(err));

		if (n < 0 || lb_model_stmt(m, w, n, true, canon, sizeof(canon), err, sizeof(err)) == -ENOMEM)
			return n < 0 ? n : -ENOMEM;
	}
	return 0;
}

/* Ready worker instances are `local` backends of their VIP (VIP address,
 * instance port). They come after the runtime layer and are never
 * persisted: the supervisor knows them. */
static void model_worker_be(void *ctx, const struct lb_worker_conf *w, uint16_t port, int state,
			    pid_t pid)
{
	struct lb_model *m = ctx;
	struct lb_model_vip *v = w->vip[0] ? lb_model_find_vip(m, w->vip) : NULL;
	struct lb_backend_conf c;
	char *word = "0.0.0.0:1", err[64];

	struct lb_model_be *b;

	if (!v || lb_config_parse_backend(&word, 1, &c, err, sizeof(err)))
		return;
	c.ep = v->c.listen;
	c.ep.port = htons(port);
	c.state = state;
	if (!lb_model_find_be(v, &c.ep))
		lb_model_add_be(v, &c);
	b = lb_model_find_be(v, &c.ep);
	if (b)
		b->pid = pid;
}

/* After a restart, the pinned local backends (worker instances the last
 * lbd left running) stay until the supervisor has adopted or replaced
 * them, so their established flows keep their backend. */
void lb_model_keep_local(struct lb_model *nm, const struct lb_model *om)
{
	for (int i = 0; i < nm->n; i++) {
		struct lb_model_vip *v = &nm->v[i];
		const struct lb_model_vip *ov = lb_model_find_vip(om, v->c.name);

		for (int j = 0; ov && v->c.forward == LB_FWD_LOCAL && j < ov->nbe; j++)
			if (!lb_model_find_be(v, &ov->be[j].c.ep))
				lb_model_add_be(v, &ov->be[j].c);
	}
}

int lb_model_build(const struct lb_conf *cf, char **rt, int nrt, const struct lb_sup *sup,
		   struct lb_model *m)
{
	int err = model_from_conf(cf, m);

	if (!err)
		err = model_replay(m, rt, nrt);
	if (!err && sup)
		lb_sup_backends(sup, model_worker_be, m);
	if (err)
		lb_model_free(m);
	return err;
}

/* ---- self-check (the service fuzz target) ---------------------------- */

/* Everything a statement may change, one line a VIP and a backend, in model
 * order: equal dumps are equal models for what lbd applies and persists. */
static void model_dump(const struct lb_model *m, struct lb_buf *out)
{
	for (int i = 0; i < m->n; i++) {
		const struct lb_model_vip *v = &m->v[i];
		char ep[LB_ADDRSTRLEN], sn[LB_ADDRSTRLEN] = "";

		lb_endpoint_str(&v->c.listen, ep, sizeof(ep));
		if (v->c.snat_set)
			lb_addr_str(&v->c.snat, v->c.listen.family, sn, sizeof(sn));
		lb_buf_printf(out, "vip %s %s p%u m%d f%d snat=%s rt%d\n", v->c.name, ep, v->c.proto,
			      v->c.method, v->c.forward, sn, v->runtime);
		for (int j = 0; j < v->nbe; j++) {
			const struct lb_backend_conf *b = &v->be[j].c;

			lb_endpoint_str(&b->ep, ep, sizeof(ep));
			lb_buf_printf(out, " be %s w%u mf%u ft%llu hc%d bk%d st%d\n", ep, b->weight,
				      b->max_fails, (unsigned long long)b->fail_timeout_ms,
				      b->health_check, b->backup, b->state);
		}
	}
}

static bool buf_eq(const struct lb_buf *a, const struct lb_buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static int model_rules(const struct lb_model *m, char *err, size_t errlen)
{
	if ((__u32)m->n > m->max_vips && m->n > 0) {
		snprintf(err, errlen, "%d VIPs > max_vips %u", m->n, m->max_vips);
		return -EPROTO;
	}
	for (int i = 0; i < m->n; i++) {
		const struct lb_model_vip *v = &m->v[i];

		if (!lb_config_name_ok(v->c.name)) {
			snprintf(err, errlen, "VIP name '%s' accepted", v->c.name);
			return -EPROTO;
		}
		for (int k = 0; k < i; k++)
			if (!strcmp(m->v[k].c.name, v->c.name) || lb_model_same_key(&m->v[k].c, &v->c)) {
				snprintf(err, errlen, "VIPs %s and %s collide", m->v[k].c.name, v->c.name);
				return -EPROTO;
			}
		if ((__u32)v->nbe > m->max_be || v->nbe > LB_CONF_MAX_BACKENDS) {
			snprintf(err, errlen, "vip %s: %d backends > max_backends %u", v->c.name,
				 v->nbe, m->max_be);
			return -EPROTO;
		}
		for (int j = 0; j < v->nbe; j++) {
			const struct lb_backend_conf *b = &v->be[j].c;

			if (b->ep.family != v->c.listen.family || b->weight > 65535 || b->vip[0]) {
				snprintf(err, errlen, "vip %s: backend %d (family %u, weight %u)",
					 v->c.name, j, b->ep.family, b->weight);
				return -EPROTO;
			}
			for (int k = 0; k < j; k++)
				if (lb_endpoint_eq(&v->be[k].c.ep, &b->ep)) {
					snprintf(err, errlen, "vip %s: backend %d twice", v->c.name, j);
					return -EPROTO;
				}
		}
	}
	return 0;
}

/* Every VIP's selection table, as vip_table builds it with every backend
 * healthy: an entry is an id of a backend that takes new flows. */
static int model_tables(const struct lb_model *m, const struct lb_conf *cf, char *err,
			size_t errlen)
{
	for (int i = 0; i < m->n; i++) {
		const struct lb_model_vip *v = &m->v[i];
		struct lb_maglev_backend *mb = calloc(v->nbe ? v->nbe : 1, sizeof(*mb));
		__u32 *tab = NULL, n = 0;
		int k = 0, rc;

		if (!mb)
			return -ENOMEM;
		for (int pass = 0; pass < 2 && !k; pass++)
			for (int j = 0; j < v->nbe; j++) {
				const struct lb_backend_conf *b = &v->be[j].c;

				if (b->state != LB_BE_UP || b->backup != (pass == 1) || !b->weight)
					continue;
				mb[k] = (struct lb_maglev_backend){ .addr = b->ep.addr, .port = b->ep.port,
					.family = b->ep.family, .weight = b->weight, .id = 1000 + j };
				k++;
			}
		rc = k ? lb_table_build(v->c.method, mb, k, cf->hash_seed, cf->maglev_size, &tab, &n)
		       : 0;
		free(mb);
		if (rc == -ENOMEM)
			return rc;
		if (rc || (k && !n)) {
			snprintf(err, errlen, "vip %s: table of %d backends: %d (%u entries)",
				 v->c.name, k, rc, n);
			free(tab);
			return -EPROTO;
		}
		for (__u32 e = 0; e < n; e++) {
			__u32 j = tab[e] - 1000;

			if (tab[e] < 1000 || j >= (__u32)v->nbe || v->be[j].c.state != LB_BE_UP ||
			    !v->be[j].c.weight) {
				snprintf(err, errlen, "vip %s: table entry %u is %u", v->c.name, e, tab[e]);
				free(tab);
				return -EPROTO;
			}
		}
		free(tab);
	}
	return 0;
}

int lb_model_check(const struct lb_conf *cf, char *const *stmts, int n, char *err,
		   size_t errlen)
{
	struct lb_buf before = { 0 }, after = { 0 }, replayed = { 0 };
	struct lb_model m, r;
	char **canon = calloc(n ? n : 1, sizeof(*canon));
	int ncanon = 0, rc;

	err[0] = '\0';
	if (!canon)
		return -ENOMEM;
	rc = model_from_conf(cf, &m);
	if (rc) {
		free(canon);
		return rc;
	}
	rc = model_rules(&m, err, errlen);
	for (int i = 0; !rc && i < n; i++) {
		char buf[LB_MODEL_STMT_MAX * 2], msg[256] = "", cs[LB_MODEL_STMT_MAX] = "";
		char *w[LB_MODEL_MAX_WORDS];
		int nw = lb_config_split(stmts[i], w, LB_MODEL_MAX_WORDS, buf, sizeof(buf), msg,
					 sizeof(msg));

		if (nw <= 0)
			continue;
		before.len = 0;
		model_dump(&m, &before);
		rc = lb_model_stmt(&m, w, nw, false, cs, sizeof(cs), msg, sizeof(msg));
		if (rc == -ENOMEM)
			break;
		after.len = 0;
		model_dump(&m, &after);
		if (before.oom || after.oom) {
			rc = -ENOMEM;
		} else if (rc) {
			rc = 0;
			if (!msg[0])
				snprintf(err, errlen, "'%s' refused without a message", stmts[i]);
			else if (!buf_eq(&before, &after))
				snprintf(err, errlen, "'%s' refused (%s) but changed the model",
					 stmts[i], msg);
		} else if (!cs[0] || !(canon[ncanon] = strdup(cs))) {
			snprintf(err, errlen, "'%s' accepted without a canonical form", stmts[i]);
		} else {
			ncanon++;
			rc = model_rules(&m, err, errlen);
		}
		if (!rc && err[0])
			rc = -EPROTO;
	}
	/* What lbd persists (the canonical statements) must bring a restarted
	 * lbd to the same model, strictly statement by statement as well. */
	if (!rc && !(rc = model_from_conf(cf, &r))) {
		for (int i = 0; !rc && i < ncanon; i++) {
			char buf[LB_MODEL_STMT_MAX * 2], msg[256] = "", cs[LB_MODEL_STMT_MAX], *w[LB_MODEL_MAX_WORDS];
			int nw = lb_config_split(canon[i], w, LB_MODEL_MAX_WORDS, buf, sizeof(buf), msg,
						 sizeof(msg));

			if (nw <= 0 || lb_model_stmt(&r, w, nw, false, cs, sizeof(cs), msg, sizeof(msg))) {
				snprintf(err, errlen, "persisted '%s' does not replay: %s", canon[i], msg);
				rc = -EPROTO;
			}
		}
		after.len = 0;
		model_dump(&m, &after);
		model_dump(&r, &replayed);
		if (!rc && (after.oom || replayed.oom))
			rc = -ENOMEM;
		else if (!rc && !buf_eq(&after, &replayed)) {
			snprintf(err, errlen, "the persisted layer replays to another model");
			rc = -EPROTO;
		}
		lb_model_free(&r);
	}
	if (!rc)
		rc = model_tables(&m, cf, err, errlen);
	for (int i = 0; i < ncanon; i++)
		free(canon[i]);
	free(canon);
	lb_model_free(&m);
	lb_buf_free(&before);
	lb_buf_free(&after);
	lb_buf_free(&replayed);
	return rc;
}
