/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The effective model lbd serves: the config file's VIPs and backends, the
 * runtime layer (lbctl vip/backend statements, persisted in their canonical
 * form) replayed on top, and the ready worker instances as `local`
 * backends. service.c builds one for every change, applies it to the data
 * path and keeps the applied one, with the data-path ids and tables it
 * fills in.
 */
#ifndef LBD_MODEL_H
#define LBD_MODEL_H

#include <stdbool.h>
#include <sys/types.h>
#include "config.h"

#define LB_MODEL_STMT_MAX  512 /* a runtime statement, canonical form */
#define LB_MODEL_MAX_WORDS 32

struct lb_model_be {
	struct lb_backend_conf c;
	__u32 id;
	__u64 state_ms;         /* c.state set (or the backend added) then */
	__u32 slots;            /* entries of its VIP's table that name it */
	pid_t pid;              /* a worker instance's (forward local), else 0 */
};

struct lb_model_vip {
	struct lb_vip_conf c;   /* c.backends is not used: see be */
	struct lb_model_be *be;
	int nbe;
	__u32 id;
	__u32 *table;           /* what the data path has (applied models only) */
	__u32 table_n;
	__u64 digest;           /* of table, over identities (lb_table_digest) */
	union lb_addr snat;
	bool snat_ok;
	bool runtime;           /* created by `vip add` */
};

struct lb_model {
	struct lb_model_vip *v;
	int n;
	__u32 max_vips, max_be;  /* the file's max_vips, max_backends */
};

struct lb_sup;

/* cf's model, the runtime statements rt replayed leniently (a layer made
 * against an older file: an add of a backend that is there updates it, a
 * del of a missing one does nothing), then sup's ready instances (sup may
 * be NULL). 0 or a negative errno; on error m holds nothing. */
int  lb_model_build(const struct lb_conf *cf, char **rt, int nrt, const struct lb_sup *sup,
		    struct lb_model *m);
void lb_model_free(struct lb_model *m);

/* One runtime statement (`backend add|set|del ...`, `vip add|del ...`,
 * split into words) against m. canon gets the form that is persisted. A
 * refused statement says why in err and changes nothing. */
int  lb_model_stmt(struct lb_model *m, char **w, int n, bool lenient, char *canon, size_t clen,
		   char *err, size_t errlen);

struct lb_model_vip *lb_model_find_vip(const struct lb_model *m, const char *name);
struct lb_model_be *lb_model_find_be(const struct lb_model_vip *v, const struct lb_endpoint *ep);
/* Appended as they are (c.backends and c.vip are not used): -ENOMEM,
 * -E2BIG. */
int  lb_model_add_vip(struct lb_model *m, const struct lb_vip_conf *c, struct lb_model_vip **out);
int  lb_model_add_be(struct lb_model_vip *v, const struct lb_backend_conf *c);
/* Same listening address, port and protocol. */
bool lb_model_same_key(const struct lb_vip_conf *a, const struct lb_vip_conf *b);
/* After a restart: the local backends of om (instances the last lbd left
 * running) that nm lacks are added to nm, so their flows keep a backend
 * until the supervisor has adopted or replaced them. */
void lb_model_keep_local(struct lb_model *nm, const struct lb_model *om);

/* The fuzzer's view of the model (tests/fuzz/fuzz_service.c): applies the
 * runtime statements (lbctl vip/backend changes, one a string) to the model
 * of cf as lbd does, without a data path, and checks what lbd relies on: a
 * refused statement says why and changes nothing, limits and uniqueness
 * hold, the persisted (canonical) statements replay to the same model, and
 * every table entry names a backend that takes new flows. 0, -ENOMEM, or
 * -EPROTO with the broken rule in err. */
int  lb_model_check(const struct lb_conf *cf, char *const *stmts, int n, char *err,
		    size_t errlen);

#endif
