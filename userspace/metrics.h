/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The metrics endpoint (`metrics ADDR:PORT;` in the lbd block): a tiny
 * HTTP/1.0 and 1.1 server inside lbd's event loop that serves the Prometheus
 * text exposition format (0.0.4), lbd's status as JSON and a stats page.
 * Read-only: nothing it serves changes anything.
 *
 *   GET /metrics   200, Content-Type: text/plain; version=0.0.4, the body
 *                  the render callback produced (500 if it failed)
 *   GET /api/status  200, application/json from the status callback (the
 *                  same document as `lbctl -j status`); 404 without one
 *   GET /          200, the stats page (webui.h): one self-contained HTML
 *                  document that polls /api/status, and links /metrics
 *   HEAD           as GET without the body
 *   other paths    404; other methods 405 (Allow: GET, HEAD)
 *   malformed      400; a request head over LB_METRICS_MAX_REQ bytes: 431
 *
 * Every response carries Connection: close and the connection is closed after
 * it (scrapers reconnect; it keeps the server trivially correct). Reads and
 * writes are non-blocking and buffered per client; a client that makes no
 * progress for the idle timeout is dropped; past the client limit a new
 * connection gets a 503 and is closed.
 */
#ifndef LBD_METRICS_H
#define LBD_METRICS_H

#include "addr.h"
#include "control.h"
#include "loop.h"

#define LB_METRICS_MAX_REQ        (8 * 1024)
#define LB_METRICS_MAX_CLIENTS    64
#define LB_METRICS_TIMEOUT_MS     10000
#define LB_METRICS_CONTENT_TYPE   "text/plain; version=0.0.4; charset=utf-8"

/* Appends the exposition body to out; returns 0 or a negative errno (the
 * scrape then gets a 500). Runs in the loop: it must not block. */
typedef int (*lb_metrics_render_fn)(void *ctx, struct lb_buf *out);

struct lb_metrics;

struct lb_metrics_opts {
	struct lb_endpoint addr;  /* v4 or v6; port 0 picks a free port (tests) */
	lb_metrics_render_fn render;
	lb_metrics_render_fn status; /* NULL: no /api/status */
	void *ctx;
	/* 0 means the default; tests shorten the timeout and lower the limit. */
	int client_timeout_ms;    /* LB_METRICS_TIMEOUT_MS */
	int max_clients;          /* LB_METRICS_MAX_CLIENTS */
};

/* Binds, listens and registers with the loop. Failures are logged here with
 * the address and the reason. */
int  lb_metrics_open(struct lb_loop *loop, const struct lb_metrics_opts *o, struct lb_metrics **out);
/* Closes the listener and every client. NULL is fine. Must not be called
 * from inside a loop callback of this server's own fds (lbd closes it
 * between two lb_loop_run_once calls). */
void lb_metrics_close(struct lb_metrics *m);
/* Timer hook: drops idle clients. Call about once a second. */
void lb_metrics_tick(struct lb_metrics *m);
/* The address actually bound (the port chosen when it was 0). */
void lb_metrics_addr(const struct lb_metrics *m, struct lb_endpoint *out);

/* Exposition helpers for renderers. A label value in double quotes with
 * backslash, double quote and newline escaped, as the format demands. */
void lb_metrics_label(struct lb_buf *b, const char *value);
/* "# HELP name text\n# TYPE name type\n" (help text escaped). */
void lb_metrics_head(struct lb_buf *b, const char *name, const char *type, const char *help);

#endif
