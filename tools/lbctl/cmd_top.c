// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbctl top: a live view of lbd (like pm2 monit or htop). Each refresh asks
 * lbd for `status` as JSON, the same document the stats page polls at
 * /api/status, and draws VIPs, backends and workers; every rate is the
 * difference of two samples over the difference of their now_ms (lbd's
 * monotonic clock when it read the counters), so no second data path exists.
 *
 * On a terminal it is a full-screen ncurses view that refreshes in place and
 * quits on q; otherwise (or with -b) it prints one plain frame per interval,
 * the first after one interval so every frame has rates, -n frames in all.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <ncurses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"
#include "lbctl.h"
#include "loop.h"

#define TOP_TIMEOUT_MS   5000  /* one status answer; lbd never blocks */
#define TOP_MIN_INTERVAL 0.1

static const char top_usage[] =
	"usage: lbctl top [-d SECONDS] [-n COUNT] [-b]\n"
	"\n"
	"A live view of lbd: VIPs and backends with state, weight, share of the\n"
	"selection table, connections, new flows/s, packets/s and bytes/s (towards\n"
	"the backends), health-check latency and the time since the last change of\n"
	"state or health; workers with CPU and memory. Rates are measured between\n"
	"two samples.\n"
	"\n"
	"On a terminal it refreshes in place: q quits, arrows and PgUp/PgDn scroll.\n"
	"Otherwise, or with -b, it prints a plain frame every interval.\n"
	"\n"
	"  -d, --delay SECONDS   time between refreshes (default 1, at least 0.1)\n"
	"  -n, --count COUNT     stop after COUNT frames (default: until q or ^C)\n"
	"  -b, --batch           plain output even on a terminal\n";

enum top_color { C_PLAIN, C_HEAD, C_TITLE, C_UP, C_WARN, C_DOWN, C_DIM, C_BAR };

/* Where a frame goes: stdout, or the curses screen (line `row` of the frame
 * is drawn at screen line row - skip, below the `fixed` header lines). */
struct top_out {
	bool curses;
	int row, col;
	int skip, fixed, rows; /* curses: scroll offset, header lines, screen lines for the frame */
};

struct top {
	double delay;
	long count;            /* frames; 0: unbounded */
	bool batch;
	json_t *cur, *old;     /* samples; old may be NULL */
	json_t *index;         /* "kind/key" -> object of old */
	int skip;
	char err[256];         /* the last failed refresh, shown in the footer */
};

/* ---- data ---- */

static double num(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void index_put(json_t *idx, const char *kind, const char *a, const char *b, json_t *o)
{
	char key[512];

	snprintf(key, sizeof(key), "%s/%s/%s", kind, a, b);
	json_object_set(idx, key, o);
}

static json_t *index_get(const struct top *t, const char *kind, const char *a, const char *b)
{
	char key[512];

	snprintf(key, sizeof(key), "%s/%s/%s", kind, a, b);
	return t->index ? json_object_get(t->index, key) : NULL;
}

/* The previous sample's objects by VIP name, VIP/backend address and
 * worker pid, so this sample's can find their counterparts. */
static json_t *index_of(json_t *st)
{
	json_t *idx = json_object(), *v, *b, *w;
	size_t i, j;
	char pid[32];

	if (!idx)
		return NULL;
	json_array_foreach(json_object_get(st, "vips"), i, v) {
		index_put(idx, "v", str(v, "name"), "", v);
		json_array_foreach(json_object_get(v, "backends"), j, b)
			index_put(idx, "b", str(v, "name"), str(b, "address"), b);
	}
	json_array_foreach(json_object_get(st, "workers"), i, w) {
		snprintf(pid, sizeof(pid), "%.0f", num(w, "pid"));
		index_put(idx, "w", pid, "", w);
	}
	return idx;
}

/* Seconds between the two samples (0: no previous one). */
static double top_dt(const struct top *t)
{
	double dt = t->old ? (num(t->cur, "now_ms") - num(t->old, "now_ms")) / 1000 : 0;

	return dt > 0 ? dt : 0;
}

/* Per-second rate of counter k between old and cur; NAN if it has no
 * earlier value, went backwards (lbd restarted) or is not counted. */
static double rate(const struct top *t, const json_t *cur, const json_t *old, const char *k)
{
	double dt = top_dt(t), a = num(cur, k), b = old ? num(old, k) : NAN;

	if (!dt || isnan(a) || isnan(b) || a < b)
		return NAN;
	return (a - b) / dt;
}

/* ---- formatting (the same units as the stats page) ---- */

static const char *fmt_si(char *buf, size_t n, double v)
{
	static const char *const p[] = { "", "k", "M", "G", "T" };
	int i = 0;

	if (isnan(v))
		return "-";
	while (fabs(v) >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	if (!i)
		snprintf(buf, n, v < 10 && v != floor(v) ? "%.1f" : "%.0f", v);
	else
		snprintf(buf, n, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, p[i]);
	return buf;
}

static const char *fmt_bytes(char *buf, size_t n, double v)
{
	static const char *const p[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	if (isnan(v))
		return "-";
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, !i ? "%.0f %s" : v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v,
		 p[i]);
	return buf;
}

static const char *fmt_dur(char *buf, size_t n, double ms)
{
	long long s = (long long)(ms / 1000);

	if (isnan(ms) || ms < 0)
		return "-";
	if (s >= 86400)
		snprintf(buf, n, "%lldd%lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, n, "%llds", s);
	return buf;
}

static const char *fmt_latency(char *buf, size_t n, double us)
{
	if (isnan(us))
		return "-";
	snprintf(buf, n, us < 10000 ? "%.2fms" : "%.0fms", us / 1000);
	return buf;
}

/* ---- output ---- */

static void seg(struct top_out *o, enum top_color c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seg(struct top_out *o, enum top_color c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int y;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!o->curses) {
		fputs(buf, stdout);
		o->col += (int)strlen(buf);
		return;
	}
	y = o->row < o->fixed ? o->row : o->row - o->skip;
	if (y >= (o->row < o->fixed ? 0 : o->fixed) && y < o->rows && o->col < COLS) {
		attrset(c == C_PLAIN ? A_NORMAL : COLOR_PAIR(c) | (c == C_TITLE || c == C_HEAD ? A_BOLD : 0));
		mvaddnstr(y, o->col, buf, COLS - o->col);
	}
	o->col += (int)strlen(buf);
}

static void eol(struct top_out *o);

/* A column-header line: on the screen its color runs to the right edge. */
static void eol_bar(struct top_out *o, enum top_color c)
{
	if (o->curses && o->col < COLS)
		seg(o, c, "%*s", COLS - o->col, "");
	eol(o);
}

static void eol(struct top_out *o)
{
	if (!o->curses)
		fputc('\n', stdout);
	o->row++;
	o->col = 0;
}

static enum top_color state_color(const char *s)
{
	if (!strcmp(s, "up") || !strcmp(s, "online"))
		return C_UP;
	if (!strcmp(s, "down") || !strcmp(s, "errored") || !strcmp(s, "stopped"))
		return C_DOWN;
	return C_WARN;
}

/* ---- the frame ---- */

struct totals {
	int nbe, nup;
	double conns, flows, pkts, bytes;
	bool rates, pkts_counted; /* the proxy counts no packets */
};

static void add_totals(const struct top *t, const json_t *v, struct totals *tot)
{
	const json_t *b, *ov = index_get(t, "v", str(v, "name"), "");
	double f = rate(t, v, ov, "new_flows");
	size_t j;

	tot->conns += isnan(num(v, "conns")) ? 0 : num(v, "conns");
	if (!isnan(f)) {
		tot->rates = true;
		tot->flows += f;
		if (!isnan(rate(t, v, ov, "packets"))) {
			tot->pkts += rate(t, v, ov, "packets");
			tot->pkts_counted = true;
		}
		tot->bytes += isnan(rate(t, v, ov, "bytes")) ? 0 : rate(t, v, ov, "bytes");
	}
	json_array_foreach(json_object_get(v, "backends"), j, b) {
		tot->nbe++;
		tot->nup += !strcmp(str(b, "state"), "up") && strcmp(str(b, "health"), "down");
	}
}

static void draw_header(const struct top *t, struct top_out *o)
{
	const json_t *st = t->cur, *f, *v;
	struct totals tot = { 0 };
	char a[32], b[32], c[32], d[32], when[32];
	time_t now = time(NULL);
	size_t i;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&now));
	seg(o, C_TITLE, "lbd %s on %s", str(st, "version"), str(st, "host"));
	seg(o, C_PLAIN, "  pid %.0f  up %s  %s  ", num(st, "pid"),
	    fmt_dur(a, sizeof(a), num(st, "uptime_ms")), when);
	/* the proxy serves where no interface has a BPF program */
	if (json_is_true(json_object_get(st, "proxy"))) {
		seg(o, C_WARN, "userspace proxy");
	} else {
		json_array_foreach(json_object_get(st, "interfaces"), i, f)
			seg(o, strcmp(str(f, "mode"), "detached") ? C_PLAIN : C_DOWN, "%s%s %s",
			    i ? ", " : "", str(f, "name"), str(f, "mode"));
	}
	eol(o);
	json_array_foreach(json_object_get(st, "vips"), i, v)
		add_totals(t, v, &tot);
	seg(o, C_PLAIN, "VIPs %zu  backends up %d/%d  conns %s  new flows/s %s  packets/s %s  "
	    "bytes/s %s", json_array_size(json_object_get(st, "vips")), tot.nup, tot.nbe,
	    fmt_si(a, sizeof(a), tot.conns), fmt_si(b, sizeof(b), tot.rates ? tot.flows : NAN),
	    fmt_si(c, sizeof(c), tot.pkts_counted ? tot.pkts : NAN),
	    fmt_bytes(d, sizeof(d), tot.rates ? tot.bytes : NAN));
	eol(o);
}

/* How long ago the last change of state (the operator's, or added) or of
 * health was: state_since_ms is on the clock of now_ms. */
static double changed_ms(const struct top *t, const json_t *b)
{
	double st = num(t->cur, "now_ms") - num(b, "state_since_ms");
	double hc = num(b, "last_change_ms_ago");

	if (!(hc >= 0))
		return st;
	return !(st >= 0) || hc < st ? hc : st;
}

#define BE_HEAD "%-26s %-6s %-12s %6s %6s %7s %8s %8s %10s %8s %8s"
#define BE_TOTALS_COL 60 /* where CONNS starts, minus its separating space */

static void draw_backend(const struct top *t, struct top_out *o, const json_t *v, const json_t *b)
{
	const json_t *ob = index_get(t, "b", str(v, "name"), str(b, "address"));
	double share = num(v, "table_size") > 0 ? 100 * num(b, "table_slots") / num(v, "table_size") : 0;
	const char *hc = str(b, "health_check"), *health = str(b, "health");
	char hbuf[32], s1[32], s2[32], s3[32], s4[32], s5[32], s6[32];

	if (!strcmp(hc, "none") || !hc[0])
		snprintf(hbuf, sizeof(hbuf), "%s", !strcmp(health, "down") ? "down passive" : "-");
	else
		snprintf(hbuf, sizeof(hbuf), "%s %s", health, hc);
	seg(o, C_PLAIN, "  %-24s ", str(b, "address"));
	seg(o, state_color(str(b, "state")), "%-6s ", str(b, "state"));
	seg(o, !strcmp(health, "down") ? C_DOWN : C_PLAIN, "%-12s ", hbuf);
	seg(o, C_PLAIN, "%6.0f %5.1f%% %7s %8s %8s %10s %8s %8s", num(b, "weight"), share,
	    fmt_si(s1, sizeof(s1), num(b, "conns")),
	    fmt_si(s2, sizeof(s2), rate(t, b, ob, "new_flows")),
	    fmt_si(s3, sizeof(s3), rate(t, b, ob, "packets")),
	    fmt_bytes(s4, sizeof(s4), rate(t, b, ob, "bytes")),
	    fmt_latency(s5, sizeof(s5), num(b, "health_latency_us")),
	    fmt_dur(s6, sizeof(s6), changed_ms(t, b)));
	eol(o);
}

static void draw_vips(const struct top *t, struct top_out *o)
{
	const json_t *v, *b;
	size_t i, j;

	seg(o, C_HEAD, BE_HEAD, "VIP / BACKEND", "STATE", "HEALTH", "WEIGHT", "SHARE", "CONNS",
	    "FLOWS/s", "PKTS/s", "BYTES/s", "CHECK", "CHANGED");
	eol_bar(o, C_HEAD);
	json_array_foreach(json_object_get(t->cur, "vips"), i, v) {
		const json_t *ov = index_get(t, "v", str(v, "name"), "");
		char s1[32], s2[32], s3[32], s4[32], name[160];

		/* the VIP's totals under the backends' columns, its shape before them */
		seg(o, C_TITLE, "%s", str(v, "name"));
		snprintf(name, sizeof(name), " %s %s %s %s", str(v, "listen"), str(v, "proto"),
			 str(v, "method"), str(v, "forward"));
		seg(o, C_DIM, "%-*s", o->col < BE_TOTALS_COL ? BE_TOTALS_COL - o->col : 0, name);
		seg(o, C_TITLE, " %7s %8s %8s %10s", fmt_si(s1, sizeof(s1), num(v, "conns")),
		    fmt_si(s2, sizeof(s2), rate(t, v, ov, "new_flows")),
		    fmt_si(s3, sizeof(s3), rate(t, v, ov, "packets")),
		    fmt_bytes(s4, sizeof(s4), rate(t, v, ov, "bytes")));
		eol(o);
		json_array_foreach(json_object_get(v, "backends"), j, b)
			draw_backend(t, o, v, b);
		if (!json_array_size(json_object_get(v, "backends"))) {
			seg(o, C_DIM, "  (no backends)");
			eol(o);
		}
	}
}

static void draw_workers(const struct top *t, struct top_out *o)
{
	const json_t *ws = json_object_get(t->cur, "workers"), *w;
	double dt = top_dt(t);
	size_t i;

	if (!json_array_size(ws))
		return;
	eol(o);
	seg(o, C_HEAD, "%-16s %4s %8s %6s %4s %-10s %7s %10s %8s %8s", "WORKER", "#", "PID", "PORT",
	    "CORE", "STATE", "CPU", "MEMORY", "RESTARTS", "UPTIME");
	eol_bar(o, C_HEAD);
	json_array_foreach(ws, i, w) {
		char pid[32], s1[32], s2[32], s3[32];
		const json_t *ow;
		double cpu = NAN;

		snprintf(pid, sizeof(pid), "%.0f", num(w, "pid"));
		ow = index_get(t, "w", pid, "");
		if (ow && dt && num(w, "pid") > 0)
			cpu = fmax(0, 100 * (num(w, "cpu_seconds") - num(ow, "cpu_seconds")) / dt);
		if (isnan(cpu))
			snprintf(s1, sizeof(s1), "-");
		else
			snprintf(s1, sizeof(s1), "%.1f%%", cpu);
		seg(o, C_PLAIN, "%-16s %4.0f %8s %6.0f %4.0f ", str(w, "name"), num(w, "instance"),
		    num(w, "pid") > 0 ? pid : "-", num(w, "port"), num(w, "core"));
		seg(o, state_color(str(w, "state")), "%-10s ", str(w, "state"));
		seg(o, C_PLAIN, "%7s %10s %8.0f %8s", s1,
		    num(w, "pid") > 0 ? fmt_bytes(s2, sizeof(s2), num(w, "memory_kib") * 1024) : "-",
		    num(w, "restarts"),
		    num(w, "pid") > 0 ? fmt_dur(s3, sizeof(s3), num(w, "uptime_s") * 1000) : "-");
		eol(o);
	}
}

/* Draws the frame; returns its height in lines. */
static int draw(const struct top *t, struct top_out *o)
{
	draw_header(t, o);
	eol(o);
	o->fixed = o->curses ? o->row : 0;
	draw_vips(t, o);
	draw_workers(t, o);
	return o->row;
}

/* ---- sampling ---- */

/* Takes a new sample; on failure keeps the old one and says why in t->err. */
static int sample(struct top *t)
{
	const struct lbctl_opts *opts = lbctl_opts();
	char word[] = "status";
	char *argv[] = { word, NULL };
	struct lb_buf out = { 0 };
	json_error_t jerr;
	json_t *st;
	int rc;

	rc = lb_ctl_call(opts->sock, "j", 1, argv, TOP_TIMEOUT_MS, &out);
	if (rc < 0) {
		snprintf(t->err, sizeof(t->err), "cannot reach lbd at %s: %s", opts->sock, strerror(-rc));
		lb_buf_free(&out);
		return -1;
	}
	if (rc != LB_CTL_OK) {
		snprintf(t->err, sizeof(t->err), "lbd answered status %d: %.*s", rc,
			 (int)(out.len > 200 ? 200 : out.len), out.data ? out.data : "");
		lb_buf_free(&out);
		return -1;
	}
	st = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
	lb_buf_free(&out);
	if (!json_is_object(st)) {
		snprintf(t->err, sizeof(t->err), "malformed status from lbd: %s", jerr.text);
		json_decref(st);
		return -1;
	}
	json_decref(t->index);
	json_decref(t->old);
	t->old = t->cur;
	t->index = t->old ? index_of(t->old) : NULL;
	t->cur = st;
	t->err[0] = '\0';
	return 0;
}

static void top_free(struct top *t)
{
	json_decref(t->index);
	json_decref(t->old);
	json_decref(t->cur);
}

/* ---- the two modes ---- */

static int run_plain(struct top *t)
{
	struct top_out o = { 0 };

	for (long n = 0; !t->count || n < t->count; n++) {
		usleep((useconds_t)(t->delay * 1e6));
		if (sample(t))
			return lbctl_fail("top", "%s", t->err);
		o.row = 0;
		draw(t, &o);
		fputc('\n', stdout);
		if (fflush(stdout) == EOF)
			return lbctl_fail("top", "writing to stdout failed");
	}
	return LBCTL_EXIT_OK;
}

static void curses_colors(void)
{
	if (!has_colors())
		return;
	start_color();
	use_default_colors();
	init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
	init_pair(C_TITLE, COLOR_CYAN, -1);
	init_pair(C_UP, COLOR_GREEN, -1);
	init_pair(C_WARN, COLOR_YELLOW, -1);
	init_pair(C_DOWN, COLOR_RED, -1);
	init_pair(C_DIM, COLOR_BLUE, -1);
	init_pair(C_BAR, COLOR_BLACK, COLOR_WHITE);
}

static void curses_frame(struct top *t)
{
	struct top_out o = { .curses = true, .skip = t->skip, .rows = LINES - 1 };
	int h, room;

	erase();
	h = draw(t, &o);
	/* keep the scroll offset within the frame */
	room = LINES - 1 - o.fixed;
	if (t->skip > 0 && t->skip > h - o.fixed - room) {
		t->skip = h - o.fixed - room > 0 ? h - o.fixed - room : 0;
		erase();
		o = (struct top_out){ .curses = true, .skip = t->skip, .rows = LINES - 1 };
		draw(t, &o);
	}
	attrset(COLOR_PAIR(C_BAR));
	mvhline(LINES - 1, 0, ' ', COLS);
	mvprintw(LINES - 1, 0, " q quit  arrows/PgUp/PgDn scroll  refresh %.1fs ", t->delay);
	if (t->err[0]) {
		attrset(COLOR_PAIR(C_DOWN) | A_BOLD);
		addnstr(t->err, COLS - getcurx(stdscr) > 0 ? COLS - getcurx(stdscr) : 0);
	}
	attrset(A_NORMAL);
	refresh();
}

/* Returns false to quit. */
static bool curses_key(struct top *t, int ch)
{
	int page = LINES > 8 ? LINES - 6 : 1;

	switch (ch) {
	case 'q':
	case 'Q':
		return false;
	case KEY_UP:
	case 'k':
		t->skip = t->skip > 0 ? t->skip - 1 : 0;
		break;
	case KEY_DOWN:
	case 'j':
		t->skip++;
		break;
	case KEY_PPAGE:
		t->skip = t->skip > page ? t->skip - page : 0;
		break;
	case KEY_NPAGE:
	case ' ':
		t->skip += page;
		break;
	case KEY_HOME:
	case 'g':
		t->skip = 0;
		break;
	default:
		break;
	}
	return true;
}

static int run_curses(struct top *t)
{
	long frames = 0;
	bool go = true;

	setlocale(LC_ALL, "");
	if (!initscr())
		return lbctl_fail("top", "cannot initialize the terminal");
	cbreak();
	noecho();
	curs_set(0);
	keypad(stdscr, TRUE);
	curses_colors();
	curses_frame(t);
	while (go && (!t->count || ++frames < t->count)) {
		uint64_t due = lb_now_ms() + (uint64_t)(t->delay * 1000);

		/* keys redraw at once; the next sample is still due on time */
		for (;;) {
			uint64_t now = lb_now_ms();
			int ch;

			if (now >= due)
				break;
			timeout((int)(due - now));
			ch = getch();
			if (ch == ERR)
				continue;
			if (!curses_key(t, ch)) {
				go = false;
				break;
			}
			curses_frame(t);
		}
		if (!go)
			break;
		sample(t);
		curses_frame(t);
	}
	endwin();
	return LBCTL_EXIT_OK;
}

/* ---- the command ---- */

static int parse_args(struct top *t, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
			t->batch = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--delay")) {
			if (++i == argc)
				return lbctl_usage_error("top", "'%s' needs SECONDS", a);
			errno = 0;
			t->delay = strtod(argv[i], &end);
			if (errno || end == argv[i] || *end || !(t->delay >= TOP_MIN_INTERVAL) ||
			    t->delay > 3600)
				return lbctl_usage_error("top", "bad delay '%s' (seconds, %.1f to 3600)",
							 argv[i], TOP_MIN_INTERVAL);
		} else if (!strcmp(a, "-n") || !strcmp(a, "--count")) {
			if (++i == argc)
				return lbctl_usage_error("top", "'%s' needs COUNT", a);
			errno = 0;
			t->count = strtol(argv[i], &end, 10);
			if (errno || end == argv[i] || *end || t->count < 1)
				return lbctl_usage_error("top", "bad count '%s' (a number of frames, >= 1)",
							 argv[i]);
		} else {
			return lbctl_usage_error("top", "unexpected argument '%s' (try 'lbctl top --help')",
						 a);
		}
	}
	return LBCTL_EXIT_OK;
}

int cmd_top_check(int argc, char **argv)
{
	struct top t = { .delay = 1 };

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return LBCTL_EXIT_OK;
	if (parse_args(&t, argc, argv))
		return LBCTL_EXIT_USAGE;
	if (lbctl_opts()->json)
		return lbctl_usage_error("top", "no JSON view: 'lbctl -j status' is the document top draws");
	return LBCTL_EXIT_OK;
}

int cmd_top(int argc, char **argv)
{
	struct top t = { .delay = 1 };
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(top_usage, stdout);
			return LBCTL_EXIT_OK;
		}
	}
	rc = parse_args(&t, argc, argv);
	if (rc) {
		fputs(top_usage, stderr);
		return rc;
	}
	if (lbctl_opts()->json)
		return lbctl_usage_error("top", "no JSON view: 'lbctl -j status' is the document top draws");
	/* the first sample says at once whether lbd is there */
	if (sample(&t)) {
		top_free(&t);
		return lbctl_fail("top", "%s", t.err);
	}
	rc = t.batch || !isatty(STDOUT_FILENO) ? run_plain(&t) : run_curses(&t);
	top_free(&t);
	return rc;
}
