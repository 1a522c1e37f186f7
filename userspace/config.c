// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd.conf parser: an NGINX-flavoured lexer, a statement reader on top of it,
 * and one directive table per block. Everything is parsed into a private
 * struct lb_conf that is handed to the caller only when no error was seen, so
 * a reload with a bad file cannot leave half a config behind.
 */
#include "config.h"
#include "control.h"
#include "proxy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maglev.h"

#define CONF_FILE_MAX   (16u << 20) /* a bigger file is a mistake, not a config */
#define STMT_WORDS_MAX  1024
#define CT_SIZE_MIN     1024u
#define CT_SIZE_MAX     (1u << 28)
#define MAGLEV_SIZE_MIN 7u
#define WORKER_INST_MAX 4096
#define MSG_MAX         512

/* ------------------------------------------------------------------ lexer */

enum tok { T_WORD, T_SEMI, T_LBRACE, T_RBRACE, T_EOF, T_ERR };

struct lexer {
	const char *p, *end;
	int line;      /* line at p */
	int tok_line;  /* line the last token started on */
	char *buf;     /* last word, NUL-terminated */
	size_t len, cap;
	char err[128];
};

static void lex_init(struct lexer *lx, const char *text, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->p = text;
	lx->end = text + len;
	lx->line = 1;
}

static int lex_put(struct lexer *lx, char c)
{
	if (lx->len + 1 >= lx->cap) {
		size_t cap = lx->cap ? lx->cap * 2 : 64;
		char *b = realloc(lx->buf, cap);

		if (!b)
			return -ENOMEM;
		lx->buf = b;
		lx->cap = cap;
	}
	lx->buf[lx->len++] = c;
	lx->buf[lx->len] = '\0';
	return 0;
}

static char unescape(char e)
{
	switch (e) {
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	default: return e;
	}
}

static bool is_break(char c)
{
	return isspace((unsigned char)c) || c == ';' || c == '{' || c == '}';
}

static enum tok lex_fail(struct lexer *lx, const char *msg)
{
	snprintf(lx->err, sizeof(lx->err), "%s", msg);
	return T_ERR;
}

/* Reads a quoted segment starting at the opening quote; quotes may be glued
 * to unquoted text (uri="/a b"), as in a shell. */
static enum tok lex_quoted(struct lexer *lx)
{
	char q = *lx->p++;

	for (;;) {
		char c;

		if (lx->p >= lx->end)
			return lex_fail(lx, "unterminated quoted string");
		c = *lx->p++;
		if (c == q)
			return T_WORD;
		if (c == '\n')
			lx->line++;
		if (c == '\\' && lx->p < lx->end) {
			char e = *lx->p++;

			if (e == '\n')
				lx->line++;
			/* Unknown escapes keep their backslash, so "C:\dir" or a
			 * regex survives quoting. */
			if (e != q && e != '\\' && e != 'n' && e != 't' && e != 'r' &&
			    e != '"' && e != '\'' && lex_put(lx, '\\'))
				return lex_fail(lx, "out of memory");
			c = unescape(e);
		}
		if (lex_put(lx, c))
			return lex_fail(lx, "out of memory");
	}
}

static enum tok lex_next(struct lexer *lx)
{
	for (;;) {
		while (lx->p < lx->end && isspace((unsigned char)*lx->p)) {
			if (*lx->p == '\n')
				lx->line++;
			lx->p++;
		}
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
			continue;
		}
		break;
	}
	lx->tok_line = lx->line;
	if (lx->p >= lx->end)
		return T_EOF;
	switch (*lx->p) {
	case ';': lx->p++; return T_SEMI;
	case '{': lx->p++; return T_LBRACE;
	case '}': lx->p++; return T_RBRACE;
	}
	/* Reserve the buffer first: "" is a word too and needs its NUL. */
	lx->len = 0;
	if (lex_put(lx, '\0'))
		return lex_fail(lx, "out of memory");
	lx->len = 0;
	while (lx->p < lx->end && !is_break(*lx->p)) {
		char c = *lx->p;

		if (c == '"' || c == '\'') {
			if (lex_quoted(lx) == T_ERR)
				return T_ERR;
			continue;
		}
		lx->p++;
		if (c == '\\') {
			if (lx->p >= lx->end)
				return lex_fail(lx, "backslash at end of input");
			c = *lx->p++;
			if (c == '\n')
				lx->line++;
		}
		if (lex_put(lx, c))
			return lex_fail(lx, "out of memory");
	}
	return T_WORD;
}

static const char *tok_text(enum tok t)
{
	switch (t) {
	case T_SEMI: return ";";
	case T_LBRACE: return "{";
	case T_RBRACE: return "}";
	default: return "";
	}
}

/* ------------------------------------------------------------ small parsers */

static int parse_u64(const char *s, __u64 max, __u64 *out)
{
	__u64 v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (__u64)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (__u64)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_u32(const char *s, __u32 max, __u32 *out)
{
	__u64 v;

	if (parse_u64(s, max, &v))
		return -EINVAL;
	*out = (__u32)v;
	return 0;
}

int lb_parse_duration_ms(const char *s, __u64 *ms)
{
	__u64 total = 0;
	bool bare = true;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		__u64 v = 0, mult;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (v > (UINT64_MAX - 9) / 10)
				return -EINVAL;
			v = v * 10 + (__u64)(*s - '0');
		}
		if (s[0] == 'm' && s[1] == 's') {
			mult = 1;
			s += 2;
		} else {
			switch (*s) {
			case 's': mult = 1000; break;
			case 'm': mult = 60 * 1000; break;
			case 'h': mult = 3600 * 1000; break;
			case 'd': mult = 86400ull * 1000; break;
			case '\0':
				/* A bare number means seconds, but only on its own:
				 * "1m30" is a typo, not 1m30s. */
				if (!bare)
					return -EINVAL;
				mult = 1000;
				s--;
				break;
			default: return -EINVAL;
			}
			s++;
		}
		bare = false;
		if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
			return -EINVAL;
		total += v * mult;
	}
	*ms = total;
	return 0;
}

int lb_parse_size(const char *s, __u64 *bytes)
{
	__u64 v = 0, mult = 1;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (__u64)(*s - '0');
	}
	switch (*s) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; s++; break;
	case 'm': case 'M': mult = 1ull << 20; s++; break;
	case 'g': case 'G': mult = 1ull << 30; s++; break;
	default: return -EINVAL;
	}
	if (*s || v > UINT64_MAX / mult)
		return -EINVAL;
	*bytes = v * mult;
	return 0;
}

static int lookup_word(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] && !strcmp(s, names[i]))
			return i;
	return -1;
}

#define ARRAY_SIZE(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const mode_names[] = {
	[LB_ATTACH_AUTO] = "auto", [LB_ATTACH_XDP] = "xdp",
	[LB_ATTACH_XDP_GENERIC] = "xdp-generic", [LB_ATTACH_TC] = "tc",
	[LB_ATTACH_PROXY] = "proxy",
};
static const char *const method_names[] = {
	[LB_METHOD_MAGLEV] = "maglev", [LB_METHOD_IP_HASH] = "ip_hash",
	[LB_METHOD_ROUND_ROBIN] = "round_robin", [LB_METHOD_LEAST_CONN] = "least_conn",
};
static const char *const fwd_names[] = {
	[LB_FWD_NAT] = "nat", [LB_FWD_DSR] = "dsr", [LB_FWD_LOCAL] = "local",
	[LB_FWD_IPIP] = "ipip", [LB_FWD_GUE] = "gue",
};
static const char *const state_names[] = {
	[LB_BE_UNUSED] = "unused", [LB_BE_UP] = "up", [LB_BE_DRAIN] = "drain",
	[LB_BE_DOWN] = "down",
};
static const char *const hc_names[] = {
	[LB_HC_INHERIT] = "inherit", [LB_HC_NONE] = "none", [LB_HC_TCP] = "tcp",
	[LB_HC_HTTP] = "http", [LB_HC_UDP] = "udp",
};
static const char *const ready_names[] = {
	[LB_READY_TCP] = "tcp", [LB_READY_NOTIFY] = "notify", [LB_READY_NONE] = "none",
};
static const char *const level_names[] = {
	[LB_LOG_ERR] = "error", [LB_LOG_WARN] = "warn", [LB_LOG_INFO] = "info",
	[LB_LOG_DEBUG] = "debug",
};

#define NAME_FN(fn, type, tab)                                          \
	const char *fn(type v)                                          \
	{                                                               \
		return (int)v >= 0 && (int)v < ARRAY_SIZE(tab) && tab[v] ? tab[v] : "?"; \
	}
NAME_FN(lb_mode_name, enum lb_attach_mode, mode_names)
NAME_FN(lb_method_name, enum lb_method, method_names)
NAME_FN(lb_fwd_name, enum lb_fwd, fwd_names)
NAME_FN(lb_backend_state_name, enum lb_backend_state, state_names)
NAME_FN(lb_hc_type_name, enum lb_hc_type, hc_names)

bool lb_fwd_encap(enum lb_fwd f)
{
	return f == LB_FWD_IPIP || f == LB_FWD_GUE;
}

bool lb_config_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= LB_CONF_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

#define NAME_RULE "letters, digits, \"_\", \"-\", \".\", at most 63"

/* ---------------------------------------------------------------- backends */

enum { O_WEIGHT, O_MAX_FAILS, O_FAIL_TIMEOUT, O_HC, O_BACKUP, O_STATE, O_VIP, O_N };

static const char *const be_opts[O_N] = {
	"weight", "max_fails", "fail_timeout", "health_check", "backup", "state", "vip",
};

_Static_assert(LB_BE_OPT_WEIGHT == 1u << O_WEIGHT && LB_BE_OPT_STATE == 1u << O_STATE &&
	       LB_BE_OPT_VIP == 1u << O_VIP, "option bits follow the option table");

/* Applies one key=value option; false if the value is bad. */
static bool backend_opt(int o, const char *v, struct lb_backend_conf *b)
{
	int t;

	switch (o) {
	case O_WEIGHT:
		return !parse_u32(v, 65535, &b->weight);
	case O_MAX_FAILS:
		return !parse_u32(v, 65535, &b->max_fails);
	case O_FAIL_TIMEOUT:
		return !lb_parse_duration_ms(v, &b->fail_timeout_ms) && b->fail_timeout_ms;
	case O_HC:
		t = lookup_word(v, hc_names, ARRAY_SIZE(hc_names));
		if (t <= LB_HC_INHERIT)
			return false;
		b->health_check = (enum lb_hc_type)t;
		return true;
	case O_BACKUP:
		b->backup = true;
		return true;
	case O_STATE:
		t = lookup_word(v, state_names, ARRAY_SIZE(state_names));
		if (t <= LB_BE_UNUSED)
			return false;
		b->state = (enum lb_backend_state)t;
		return true;
	case O_VIP:
		if (!lb_config_name_ok(v))
			return false;
		snprintf(b->vip, sizeof(b->vip), "%s", v);
		return true;
	}
	return false;
}

static int parse_backend(char *const *words, int n, struct lb_backend_conf *out,
			 unsigned int *given, bool allow_vip, char *err, size_t errlen)
{
	static const char *const expect[O_N] = {
		"0..65535", "0..65535", "a duration above 0 such as 10s",
		"tcp, http, udp, none", "", "up, drain, down", NAME_RULE,
	};
	struct lb_backend_conf b = {
		.weight = 1, .max_fails = 1, .fail_timeout_ms = 10000,
		.health_check = LB_HC_INHERIT, .state = LB_BE_UP,
	};
	unsigned int seen = 0;

	if (n < 1) {
		snprintf(err, errlen, "missing backend address");
		return -EINVAL;
	}
	if (lb_endpoint_parse(words[0], &b.ep)) {
		snprintf(err, errlen, "invalid backend address \"%s\" (expected ADDR:PORT or [V6]:PORT)",
			 words[0]);
		return -EINVAL;
	}
	if (!b.ep.port) {
		snprintf(err, errlen, "invalid backend port in \"%s\" (expected 1..65535)", words[0]);
		return -EINVAL;
	}
	for (int i = 1; i < n; i++) {
		const char *w = words[i], *eq = strchr(w, '=');
		size_t klen = eq ? (size_t)(eq - w) : strlen(w);
		int o = -1;

		for (int k = 0; k < O_N; k++)
			if (strlen(be_opts[k]) == klen && !strncmp(w, be_opts[k], klen))
				o = k;
		/* In the file a backend's VIP is its block. */
		if (o < 0 || (o == O_VIP && !allow_vip) || (o == O_BACKUP && eq)) {
			snprintf(err, errlen, "unknown backend option \"%s\"", w);
			return -EINVAL;
		}
		if (seen & (1u << o)) {
			snprintf(err, errlen, "duplicate backend option \"%s\"", w);
			return -EINVAL;
		}
		seen |= 1u << o;
		if (!backend_opt(o, eq ? eq + 1 : "", &b)) {
			snprintf(err, errlen, "invalid %s in \"%s\" (expected %s)", be_opts[o], w,
				 expect[o]);
			return -EINVAL;
		}
	}
	*out = b;
	if (given)
		*given = seen;
	return 0;
}

int lb_config_parse_backend(char *const *words, int n, struct lb_backend_conf *out,
			    char *err, size_t errlen)
{
	return parse_backend(words, n, out, NULL, true, err, errlen);
}

int lb_config_parse_backend_given(char *const *words, int n, struct lb_backend_conf *out,
				  unsigned int *given, char *err, size_t errlen)
{
	return parse_backend(words, n, out, given, true, err, errlen);
}

/* ------------------------------------------------------------------ split */

int lb_config_split(const char *line, char **words, int max_words,
		    char *buf, size_t buflen, char *err, size_t errlen)
{
	struct lexer lx;
	size_t used = 0;
	int n = 0, rc = 0;
	bool ended = false;

	lex_init(&lx, line, strlen(line));
	for (;;) {
		enum tok t = lex_next(&lx);

		if (t == T_EOF)
			break;
		if (t == T_ERR) {
			snprintf(err, errlen, "%s", lx.err);
			rc = -EINVAL;
			break;
		}
		if (ended || t == T_LBRACE || t == T_RBRACE) {
			snprintf(err, errlen, "unexpected \"%s\"%s",
				 t == T_WORD ? lx.buf : tok_text(t), ended ? " after \";\"" : "");
			rc = -EINVAL;
			break;
		}
		if (t == T_SEMI) {
			ended = true;
			continue;
		}
		if (n >= max_words) {
			snprintf(err, errlen, "too many words (max %d)", max_words);
			rc = -E2BIG;
			break;
		}
		if (lx.len + 1 > buflen - used || buflen < used) {
			snprintf(err, errlen, "statement too long (max %zu bytes)", buflen);
			rc = -E2BIG;
			break;
		}
		memcpy(buf + used, lx.buf, lx.len + 1);
		words[n++] = buf + used;
		used += lx.len + 1;
	}
	free(lx.buf);
	return rc ? rc : n;
}

/* ----------------------------------------------------------------- parser */

struct loc {
	const char *file; /* owned by parser.files */
	int line;
};

struct stmt {
	char **w;
	int n, cap;
	struct loc at;
};

struct src {
	struct lexer lx;
	const char *name; /* owned by parser.files */
};

struct parser {
	struct lb_conf *cfg;
	lb_config_err_fn err;
	void *ctx;
	int nerr;
	char **files;
	int nfiles;
	char *stack[LB_CONF_INCLUDE_DEPTH + 1]; /* real paths being read */
	int depth;
	int nest;                 /* blocks open (parse_block) */
	struct loc *vip_loc;      /* per cfg->vips entry: its block */
	struct loc *listen_loc;   /* per cfg->vips entry: its listen */
	struct loc *worker_loc;   /* per cfg->workers entry */
	struct loc *worker_vip_loc;
	bool lbd_seen;
	struct loc lbd_loc;
	struct loc bgp_loc;       /* the bgp block, line 0 if none */
};

static void perr(struct parser *ps, struct loc at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *ps, struct loc at, const char *fmt, ...)
{
	char msg[MSG_MAX], line[MSG_MAX + PATH_MAX + 16];
	va_list ap;

	ps->nerr++;
	if (!ps->err)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s:%d: %s", at.file, at.line, msg);
	ps->err(ps->ctx, line);
}

static const char *keep_name(struct parser *ps, const char *name)
{
	char **f = realloc(ps->files, sizeof(*f) * (size_t)(ps->nfiles + 1));
	char *d;

	if (!f)
		return NULL;
	ps->files = f;
	d = strdup(name);
	if (!d)
		return NULL;
	f[ps->nfiles++] = d;
	return d;
}

static void stmt_clear(struct stmt *st)
{
	for (int i = 0; i < st->n; i++)
		free(st->w[i]);
	st->n = 0;
}

enum sres { S_SEMI, S_BLOCK, S_CLOSE, S_EOF, S_ERR };

static enum sres read_stmt(struct parser *ps, struct src *s, struct stmt *st)
{
	st->n = 0;
	for (;;) {
		enum tok t = lex_next(&s->lx);
		struct loc here = { s->name, s->lx.tok_line };

		switch (t) {
		case T_WORD:
			if (st->n == 0)
				st->at = here;
			if (st->n >= STMT_WORDS_MAX) {
				perr(ps, st->at, "too many words in \"%s\" (max %d)", st->w[0],
				     STMT_WORDS_MAX);
				stmt_clear(st);
				return S_ERR;
			}
			if (st->n == st->cap) {
				int cap = st->cap ? st->cap * 2 : 8;
				char **w = realloc(st->w, sizeof(*w) * (size_t)cap);

				if (!w)
					goto oom;
				st->w = w;
				st->cap = cap;
			}
			if (!(st->w[st->n] = strdup(s->lx.buf)))
				goto oom;
			st->n++;
			break;
		case T_SEMI:
			if (st->n == 0) {
				perr(ps, here, "unexpected \";\"");
				break;
			}
			return S_SEMI;
		case T_LBRACE:
			if (st->n == 0)
				st->at = here;
			return S_BLOCK;
		case T_RBRACE:
			if (st->n) {
				perr(ps, here, "missing \";\" before \"}\" (after \"%s\")",
				     st->w[st->n - 1]);
				stmt_clear(st);
			}
			st->at = here;
			return S_CLOSE;
		case T_EOF:
			st->at = here;
			if (st->n) {
				perr(ps, here, "unexpected end of file, expecting \";\" after \"%s\"",
				     st->w[st->n - 1]);
				stmt_clear(st);
			}
			return S_EOF;
		case T_ERR:
			perr(ps, here, "%s", s->lx.err);
			stmt_clear(st);
			return S_ERR;
		}
	}
oom:
	perr(ps, st->at, "out of memory");
	stmt_clear(st);
	return S_ERR;
}

/* Directive tables. A handler reports its own errors through perr(). */
struct block;
typedef void (*dir_fn)(struct parser *ps, const struct stmt *st, struct block *b);

struct directive {
	const char *name;
	int min, max; /* argument count, after the name; -1 = any */
	bool repeat;
	dir_fn fn;
};

enum ctx { C_TOP, C_LBD, C_BGP, C_VIP, C_WORKER, C_SKIP };

#define DIRS_MAX 32

struct vip_state {
	struct lb_vip_conf v;
	struct loc *be_loc;
	int be_cap;
	bool listen_set;
	__u8 snat_family;
	struct loc listen_loc, snat_loc, pp_loc, tcp_timeout_loc;
	bool tcp_timeout_set;   /* connect= or fin=: TCP only */
};

struct worker_state {
	struct lb_worker_conf w;
	bool ready_set;
	struct loc port_loc, vip_loc, ready_loc;
};

struct block {
	enum ctx kind;
	const struct directive *dirs;
	int ndirs;
	struct loc seen[DIRS_MAX];
	const char *what; /* for "unknown directive ... in WHAT" */
	struct lb_conf *cfg;
	struct vip_state *vs;
	struct worker_state *ws;
};

static int parse_block(struct parser *ps, struct src *s, struct block *b, bool nested,
		       struct loc open);
static int dispatch(struct parser *ps, struct src *s, struct block *b, struct stmt *st,
		    bool is_block);

static int skip_block(struct parser *ps, struct src *s, struct loc open)
{
	struct block skip = { .kind = C_SKIP };

	return parse_block(ps, s, &skip, true, open);
}

/* --------------------------------------------------------------- includes */

static int read_file(const char *path, char **text, size_t *len)
{
	struct stat sb;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	if (sb.st_size > (off_t)CONF_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* st_size is a hint only (procfs, pipes): read to EOF. */
	for (;;) {
		ssize_t r;

		if (got == (size_t)sb.st_size) {
			char c;

			r = read(fd, &c, 1);
			if (r == 0)
				break;
			free(buf);
			close(fd);
			return r < 0 ? -errno : -EFBIG;
		}
		r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(buf);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

static int parse_text(struct parser *ps, const char *name, const char *text, size_t len,
		      struct block *b)
{
	struct src s;
	const char *nul = memchr(text, '\0', len);
	int rc;

	s.name = keep_name(ps, name);
	if (!s.name) {
		perr(ps, (struct loc){ name, 0 }, "out of memory");
		return -ENOMEM;
	}
	if (nul) {
		int line = 1;

		for (const char *c = text; c < nul; c++)
			line += *c == '\n';
		perr(ps, (struct loc){ s.name, line }, "NUL byte in file");
		return -EINVAL;
	}
	lex_init(&s.lx, text, len);
	rc = parse_block(ps, &s, b, false, (struct loc){ s.name, 0 });
	free(s.lx.buf);
	return rc;
}

/* Pushes the real path of the file about to be read; include cycles are
 * found by identity, not by the spelling of the include. */
static int push_file(struct parser *ps, const char *path, struct loc from)
{
	char *real = realpath(path, NULL);

	if (!real)
		real = strdup(path);
	if (!real) {
		perr(ps, from, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < ps->depth; i++) {
		if (!strcmp(ps->stack[i], real)) {
			perr(ps, from, "include cycle: \"%s\" is already being read", path);
			free(real);
			return -ELOOP;
		}
	}
	if (ps->depth > LB_CONF_INCLUDE_DEPTH) {
		perr(ps, from, "includes nested too deeply at \"%s\" (max %d levels)", path,
		     LB_CONF_INCLUDE_DEPTH);
		free(real);
		return -ELOOP;
	}
	ps->stack[ps->depth++] = real;
	return 0;
}

static void pop_file(struct parser *ps)
{
	free(ps->stack[--ps->depth]);
}

static int parse_path(struct parser *ps, const char *path, struct block *b, struct loc from)
{
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len);

	if (rc) {
		if (from.line)
			perr(ps, from, "cannot read include \"%s\": %s", path, strerror(-rc));
		else
			perr(ps, (struct loc){ path, 0 }, "cannot read \"%s\": %s", path,
			     strerror(-rc));
		return rc;
	}
	rc = push_file(ps, path, from);
	if (!rc) {
		rc = parse_text(ps, path, text, len, b);
		pop_file(ps);
	}
	free(text);
	return rc;
}

static int glob_err(const char *path, int e)
{
	(void)path;
	return e != ENOENT && e != ENOTDIR;
}

static void do_include(struct parser *ps, const struct src *s, const struct stmt *st,
		       struct block *b)
{
	const char *pat, *slash = strrchr(s->name, '/');
	char path[PATH_MAX];
	glob_t g;
	int rc;

	if (st->n != 2) {
		perr(ps, st->at, "invalid number of arguments in \"include\" (expected 1)");
		return;
	}
	pat = st->w[1];
	if (pat[0] == '/' || !slash)
		rc = snprintf(path, sizeof(path), "%s", pat);
	else
		rc = snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - s->name), s->name, pat);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		perr(ps, st->at, "include path too long: \"%s\"", pat);
		return;
	}
	if (!strpbrk(pat, "*?[")) {
		parse_path(ps, path, b, st->at);
		return;
	}
	/* A pattern that matches nothing is fine (an empty or absent conf.d/),
	 * as in NGINX; an unreadable directory is not. */
	rc = glob(path, 0, glob_err, &g);
	if (rc == GLOB_NOMATCH)
		return;
	if (rc) {
		perr(ps, st->at, "cannot expand include \"%s\": %s", pat,
		     rc == GLOB_NOSPACE ? "out of memory" : "a directory cannot be read");
		globfree(&g);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (parse_path(ps, g.gl_pathv[i], b, st->at) == -ELOOP)
			break;
	globfree(&g);
}

/* ------------------------------------------------------------ block driver */

/* The grammar nests two deep (lbd { bgp { ... } }); a
 * fuzzed file of 3,000 "{" overflowed the stack, one frame per block. */
#define NEST_MAX 16

static int parse_block(struct parser *ps, struct src *s, struct block *b, bool nested,
		       struct loc open)
{
	struct stmt st = { 0 };
	int rc = 0;

	if (nested && ps->nest >= NEST_MAX) {
		perr(ps, open, "blocks nested more than %d deep", NEST_MAX);
		return -EINVAL;
	}
	ps->nest += nested;
	for (;;) {
		enum sres r = read_stmt(ps, s, &st);

		if (r == S_ERR) {
			rc = -EINVAL;
			break;
		}
		if (r == S_EOF) {
			if (nested) {
				perr(ps, st.at, "unexpected end of file, expecting \"}\" to close the block at line %d",
				     open.line);
				rc = -EINVAL;
			}
			break;
		}
		if (r == S_CLOSE) {
			if (nested)
				break;
			perr(ps, st.at, "unexpected \"}\"");
			continue;
		}
		if (st.n == 0) { /* a bare "{" */
			perr(ps, st.at, "unexpected \"{\"");
			rc = skip_block(ps, s, st.at);
		} else if (b->kind != C_SKIP && !strcmp(st.w[0], "include")) {
			if (r == S_BLOCK) {
				perr(ps, st.at, "\"include\" does not take a block");
				rc = skip_block(ps, s, st.at);
			} else {
				do_include(ps, s, &st, b);
			}
		} else {
			rc = dispatch(ps, s, b, &st, r == S_BLOCK);
		}
		stmt_clear(&st);
		if (rc)
			break;
	}
	stmt_clear(&st);
	free(st.w);
	ps->nest -= nested;
	return rc;
}

/* ------------------------------------------------------------ lbd block */

static bool valid_ifname(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) || !isprint((unsigned char)*s))
			return false;
	return true;
}

static void d_interfaces(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_conf *c = b->cfg;

	for (int i = 1; i < st->n; i++) {
		const char *n = st->w[i];
		bool dup = false;

		if (strlen(n) >= LB_CONF_IFNAME_MAX) {
			perr(ps, st->at, "interface name \"%s\" too long (max %d characters)", n,
			     LB_CONF_IFNAME_MAX - 1);
			continue;
		}
		if (!valid_ifname(n)) {
			perr(ps, st->at, "invalid interface name \"%s\"", n);
			continue;
		}
		for (int j = 0; j < c->ninterfaces; j++)
			dup |= !strcmp(c->interfaces[j], n);
		if (dup) {
			perr(ps, st->at, "duplicate interface \"%s\"", n);
			continue;
		}
		if (c->ninterfaces >= LB_CONF_MAX_IFACES) {
			perr(ps, st->at, "too many interfaces at \"%s\" (max %d)", n,
			     LB_CONF_MAX_IFACES);
			return;
		}
		snprintf(c->interfaces[c->ninterfaces++], LB_CONF_IFNAME_MAX, "%s", n);
	}
}

/* "unknown mode "x" (expected auto, xdp, ...)" from a name table. */
static int pick(struct parser *ps, const struct stmt *st, const char *word, const char *what,
		const char *const *names, int n, int first)
{
	char list[160] = "";
	size_t off = 0;
	int v = lookup_word(word, names, n);

	if (v >= first)
		return v;
	for (int i = first; i < n; i++)
		if (names[i])
			off += (size_t)snprintf(list + off, off < sizeof(list) ? sizeof(list) - off : 0,
						"%s%s", off ? ", " : "", names[i]);
	perr(ps, st->at, "unknown %s \"%s\" (expected %s)", what, word, list);
	return -1;
}

static void d_mode(struct parser *ps, const struct stmt *st, struct block *b)
{
	int v = pick(ps, st, st->w[1], "mode", mode_names, ARRAY_SIZE(mode_names), 0);

	if (v >= 0)
		b->cfg->mode = (enum lb_attach_mode)v;
}

static void set_str(struct parser *ps, const struct stmt *st, char *dst, size_t size,
		    bool absolute)
{
	const char *v = st->w[1];

	if (!*v) {
		perr(ps, st->at, "empty value for \"%s\"", st->w[0]);
		return;
	}
	if (strlen(v) >= size) {
		perr(ps, st->at, "\"%s\" value \"%s\" too long (max %zu characters)", st->w[0], v,
		     size - 1);
		return;
	}
	/* lbd chdirs to / when it daemonizes: relative paths would move. */
	if (absolute && v[0] != '/') {
		perr(ps, st->at, "\"%s\" needs an absolute path, got \"%s\"", st->w[0], v);
		return;
	}
	snprintf(dst, size, "%s", v);
}

static void d_control(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->control, sizeof(b->cfg->control), true);
}

static void d_control_group(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->control_group, sizeof(b->cfg->control_group), false);
}

static void d_control_ro_group(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->control_ro_group, sizeof(b->cfg->control_ro_group), false);
}

static void d_state_dir(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->state_dir, sizeof(b->cfg->state_dir), true);
}

static void d_bpffs(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->bpffs, sizeof(b->cfg->bpffs), true);
}

static void d_pid_file(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->pid_file, sizeof(b->cfg->pid_file), true);
}

static void d_hash_seed(struct parser *ps, const struct stmt *st, struct block *b)
{
	const char *v = st->w[1];
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 0);
	if (!isdigit((unsigned char)v[0]) || errno || *end || x > UINT32_MAX) {
		perr(ps, st->at, "invalid hash_seed \"%s\" (expected a 32-bit number)", v);
		return;
	}
	b->cfg->hash_seed = (__u32)x;
}

static void d_metrics(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_endpoint ep;

	if (lb_endpoint_parse(st->w[1], &ep) || !ep.port) {
		perr(ps, st->at, "invalid metrics address \"%s\" (expected ADDR:PORT, port 1..65535)",
		     st->w[1]);
		return;
	}
	b->cfg->metrics = ep;
	b->cfg->metrics_set = true;
}

static void d_conntrack_size(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u64 v;

	if (lb_parse_size(st->w[1], &v) || v < CT_SIZE_MIN || v > CT_SIZE_MAX) {
		perr(ps, st->at, "invalid conntrack_size \"%s\" (expected %u..%u flows, k/M allowed)",
		     st->w[1], CT_SIZE_MIN, CT_SIZE_MAX);
		return;
	}
	b->cfg->conntrack_size = (__u32)v;
}

static void d_conntrack_new_size(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u64 v;

	if (lb_parse_size(st->w[1], &v) || v < CT_SIZE_MIN || v > CT_SIZE_MAX) {
		perr(ps, st->at, "invalid conntrack_new_size \"%s\" (expected %u..%u flows, k/M allowed)",
		     st->w[1], CT_SIZE_MIN, CT_SIZE_MAX);
		return;
	}
	b->cfg->conntrack_new_size = (__u32)v;
}

/* conntrack_timeout [tcp=D] [udp=D] [closed=D]: idle established flows. */
static void d_conntrack_timeout(struct parser *ps, const struct stmt *st, struct block *b)
{
	for (int i = 1; i < st->n; i++) {
		const char *w = st->w[i], *eq = strchr(w, '=');
		__u32 *dst = NULL;
		__u64 ms;

		if (eq && !strncmp(w, "tcp=", 4))
			dst = &b->cfg->ct_timeout_tcp;
		else if (eq && !strncmp(w, "udp=", 4))
			dst = &b->cfg->ct_timeout_udp;
		else if (eq && !strncmp(w, "closed=", 7))
			dst = &b->cfg->ct_timeout_closed;
		if (!dst || lb_parse_duration_ms(eq + 1, &ms) || ms < 1000 || ms > 86400000ull * 7) {
			perr(ps, st->at, "invalid conntrack_timeout \"%s\" (expected tcp=, udp= or "
			     "closed= and a duration of 1s to 7d)", w);
			return;
		}
		*dst = (__u32)(ms / 1000);
	}
}

static void d_maglev_size(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u32 v;

	if (parse_u32(st->w[1], UINT32_MAX, &v) || v < MAGLEV_SIZE_MIN ||
	    v > LB_MAGLEV_MAX_SIZE || !lb_is_prime(v)) {
		perr(ps, st->at, "invalid maglev_size \"%s\" (expected a prime %u..%u, such as 65537)",
		     st->w[1], MAGLEV_SIZE_MIN, LB_MAGLEV_MAX_SIZE);
		return;
	}
	b->cfg->maglev_size = v;
}

static void d_snat_ports(struct parser *ps, const struct stmt *st, struct block *b)
{
	const char *v = st->w[1], *dash = strchr(v, '-');
	char lo_s[8];
	__u32 lo, hi;

	if (!dash || (size_t)(dash - v) >= sizeof(lo_s))
		goto bad;
	memcpy(lo_s, v, (size_t)(dash - v));
	lo_s[dash - v] = '\0';
	if (parse_u32(lo_s, 65535, &lo) || parse_u32(dash + 1, 65535, &hi) || lo < 1 || lo > hi)
		goto bad;
	b->cfg->snat_port_lo = (__u16)lo;
	b->cfg->snat_port_hi = (__u16)hi;
	return;
bad:
	perr(ps, st->at, "invalid snat_ports \"%s\" (expected LO-HI, 1 <= LO <= HI <= 65535)", v);
}

/* encap_source ADDR [ADDR]: one address per family. */
static void d_encap_source(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_conf *c = b->cfg;
	bool seen4 = false, seen6 = false;

	for (int i = 1; i < st->n; i++) {
		union lb_addr a;
		__u8 fam;

		if (lb_addr_parse(st->w[i], &a, &fam)) {
			perr(ps, st->at, "invalid encap_source address \"%s\"", st->w[i]);
			return;
		}
		if (fam == LB_AF_INET ? seen4 : seen6) {
			perr(ps, st->at, "encap_source \"%s\": one address per family", st->w[i]);
			return;
		}
		if (fam == LB_AF_INET) {
			seen4 = c->encap_src4_set = true;
			c->encap_src4 = a;
		} else {
			seen6 = c->encap_src6_set = true;
			c->encap_src6 = a;
		}
	}
}

static void d_gue_port(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u32 v;

	if (parse_u32(st->w[1], 65535, &v) || !v) {
		perr(ps, st->at, "invalid gue_port \"%s\" (expected 1..65535)", st->w[1]);
		return;
	}
	b->cfg->gue_port = (__u16)v;
}

static void d_capabilities(struct parser *ps, const struct stmt *st, struct block *b)
{
	static const char *const names[] = { "drop", "keep" };
	int v = pick(ps, st, st->w[1], "capabilities", names, ARRAY_SIZE(names), 0);

	if (v >= 0)
		b->cfg->keep_caps = v == 1;
}

/* A count directive: NAME N with N in lo..hi. */
static void set_count(struct parser *ps, const struct stmt *st, __u32 *dst, __u32 lo, __u32 hi)
{
	__u32 v;

	if (parse_u32(st->w[1], hi, &v) || v < lo) {
		perr(ps, st->at, "invalid %s \"%s\" (expected %u..%u)", st->w[0], st->w[1], lo, hi);
		return;
	}
	*dst = v;
}

static void d_max_vips(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->max_vips, 1, LB_MAX_VIPS);
}

static void d_max_backends(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->max_backends, 1, LB_CONF_MAX_BACKENDS);
}

static void d_control_max_request(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->control_max_request, 1024, LB_CTL_REQ_LIMIT);
}

static void d_control_max_clients(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->control_max_clients, 1, 4096);
}

static void d_health_concurrency(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->health_concurrency, 0, 65535);
}

/* proxy_workers auto|N: 0 stands for auto (one per CPU). */
static void d_proxy_workers(struct parser *ps, const struct stmt *st, struct block *b)
{
	if (!strcmp(st->w[1], "auto"))
		b->cfg->proxy_workers = 0;
	else if (parse_u32(st->w[1], LB_PROXY_MAX_WORKERS, &b->cfg->proxy_workers) ||
		 !b->cfg->proxy_workers)
		perr(ps, st->at, "invalid proxy_workers \"%s\" (expected auto or 1..%d)", st->w[1],
		     LB_PROXY_MAX_WORKERS);
}

static void d_log_level(struct parser *ps, const struct stmt *st, struct block *b)
{
	const char *v = st->w[1];
	int l;

	if (!strcmp(v, "err"))
		v = "error";
	else if (!strcmp(v, "warning"))
		v = "warn";
	l = pick(ps, st, v, "log_level", level_names,
		 ARRAY_SIZE(level_names), 0);
	if (l >= 0)
		b->cfg->log_level = (enum lb_log_level)l;
}

static const struct directive lbd_dirs[] = {
	{ "interfaces", 1, -1, true, d_interfaces },
	{ "mode", 1, 1, false, d_mode },
	{ "control", 1, 1, false, d_control },
	{ "control_group", 1, 1, false, d_control_group },
	{ "control_readonly_group", 1, 1, false, d_control_ro_group },
	{ "state_dir", 1, 1, false, d_state_dir },
	{ "bpffs", 1, 1, false, d_bpffs },
	{ "pid_file", 1, 1, false, d_pid_file },
	{ "hash_seed", 1, 1, false, d_hash_seed },
	{ "metrics", 1, 1, false, d_metrics },
	{ "conntrack_size", 1, 1, false, d_conntrack_size },
	{ "conntrack_new_size", 1, 1, false, d_conntrack_new_size },
	{ "conntrack_timeout", 1, 3, false, d_conntrack_timeout },
	{ "maglev_size", 1, 1, false, d_maglev_size },
	{ "snat_ports", 1, 1, false, d_snat_ports },
	{ "encap_source", 1, 2, false, d_encap_source },
	{ "gue_port", 1, 1, false, d_gue_port },
	{ "log_level", 1, 1, false, d_log_level },
	{ "capabilities", 1, 1, false, d_capabilities },
	{ "max_vips", 1, 1, false, d_max_vips },
	{ "max_backends", 1, 1, false, d_max_backends },
	{ "control_max_request", 1, 1, false, d_control_max_request },
	{ "control_max_clients", 1, 1, false, d_control_max_clients },
	{ "health_concurrency", 1, 1, false, d_health_concurrency },
	{ "proxy_workers", 1, 1, false, d_proxy_workers },
};

/* ------------------------------------------------------------- bgp block */

static bool parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "off"))
		*out = false;
	else
		return false;
	return true;
}

static void set_onoff(struct parser *ps, const struct stmt *st, bool *dst)
{
	if (!parse_onoff(st->w[1], dst))
		perr(ps, st->at, "invalid %s \"%s\" (expected on or off)", st->w[0], st->w[1]);
}

/* An AS number: 1..4294967295 (4-byte ASNs, RFC 6793). */
static int parse_asn(const char *v, __u32 *out)
{
	__u64 x;

	if (parse_u64(v, UINT32_MAX, &x) || !x)
		return -EINVAL;
	*out = (__u32)x;
	return 0;
}

static void d_router_id(struct parser *ps, const struct stmt *st, struct block *b)
{
	union lb_addr a;
	__u8 fam;

	if (lb_addr_parse(st->w[1], &a, &fam) || fam != LB_AF_INET || !a.v4) {
		perr(ps, st->at, "invalid router_id \"%s\" (expected an IPv4 address)", st->w[1]);
		return;
	}
	b->cfg->bgp.router_id = a.v4;
}

static void d_local_as(struct parser *ps, const struct stmt *st, struct block *b)
{
	if (parse_asn(st->w[1], &b->cfg->bgp.local_as))
		perr(ps, st->at, "invalid local_as \"%s\" (expected 1..4294967295)", st->w[1]);
}

/* neighbor ADDR as=N [bfd=on|off] */
static void d_neighbor(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_bgp_conf *g = &b->cfg->bgp;
	struct lb_bgp_neighbor n = { .bfd = -1 };
	bool as_set = false;

	if (lb_addr_parse(st->w[1], &n.addr, &n.family)) {
		perr(ps, st->at, "invalid neighbor address \"%s\" (expected an IPv4 or IPv6 address)",
		     st->w[1]);
		return;
	}
	for (int i = 2; i < st->n; i++) {
		const char *w = st->w[i], *eq = strchr(w, '=');
		bool on;

		if (eq && !strncmp(w, "as=", 3)) {
			if (as_set || parse_asn(eq + 1, &n.as)) {
				perr(ps, st->at, "%s neighbor option \"%s\" (expected as=1..4294967295)",
				     as_set ? "duplicate" : "invalid", w);
				return;
			}
			as_set = true;
		} else if (eq && !strncmp(w, "bfd=", 4)) {
			if (n.bfd >= 0 || !parse_onoff(eq + 1, &on)) {
				perr(ps, st->at, "%s neighbor option \"%s\" (expected bfd=on or bfd=off)",
				     n.bfd >= 0 ? "duplicate" : "invalid", w);
				return;
			}
			n.bfd = on;
		} else {
			perr(ps, st->at, "unknown neighbor option \"%s\" (expected as=N, bfd=on|off)", w);
			return;
		}
	}
	if (!as_set) {
		perr(ps, st->at, "neighbor %s needs its AS: neighbor ADDR as=N", st->w[1]);
		return;
	}
	for (int i = 0; i < g->nnb; i++)
		if (g->nb[i].family == n.family && !memcmp(&g->nb[i].addr, &n.addr, sizeof(n.addr))) {
			perr(ps, st->at, "duplicate neighbor %s", st->w[1]);
			return;
		}
	if (g->nnb >= LB_BGP_MAX_NEIGHBORS) {
		perr(ps, st->at, "too many neighbors (max %d)", LB_BGP_MAX_NEIGHBORS);
		return;
	}
	g->nb[g->nnb++] = n;
}

static void d_bfd(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_onoff(ps, st, &b->cfg->bgp.bfd);
}

static void d_bfd_interval(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u64 ms;

	if (lb_parse_duration_ms(st->w[1], &ms) || ms < 10 || ms > 60000) {
		perr(ps, st->at, "invalid bfd_interval \"%s\" (expected 10ms..60s)", st->w[1]);
		return;
	}
	b->cfg->bgp.bfd_interval_ms = ms;
}

static void d_bfd_multiplier(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->cfg->bgp.bfd_multiplier, 1, 255);
}

/* community ASN:VALUE..., standard communities (RFC 1997), 16 bits each */
static void d_community(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_bgp_conf *g = &b->cfg->bgp;

	for (int i = 1; i < st->n; i++) {
		const char *w = st->w[i], *colon = strchr(w, ':');
		char hi_s[8];
		__u32 hi, lo;

		if (!colon || (size_t)(colon - w) >= sizeof(hi_s)) {
			perr(ps, st->at, "invalid community \"%s\" (expected ASN:VALUE, 0..65535 each)", w);
			continue;
		}
		memcpy(hi_s, w, (size_t)(colon - w));
		hi_s[colon - w] = '\0';
		if (parse_u32(hi_s, 65535, &hi) || parse_u32(colon + 1, 65535, &lo)) {
			perr(ps, st->at, "invalid community \"%s\" (expected ASN:VALUE, 0..65535 each)", w);
			continue;
		}
		if (g->ncommunities >= LB_BGP_MAX_COMMUNITIES) {
			perr(ps, st->at, "too many communities at \"%s\" (max %d)", w,
			     LB_BGP_MAX_COMMUNITIES);
			return;
		}
		g->communities[g->ncommunities++] = hi << 16 | lo;
	}
}

static void d_next_hop_self(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_onoff(ps, st, &b->cfg->bgp.next_hop_self);
}

static void d_source(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_bgp_conf *g = &b->cfg->bgp;

	if (lb_addr_parse(st->w[1], &g->source, &g->source_family)) {
		perr(ps, st->at, "invalid source \"%s\" (expected an IPv4 or IPv6 address)", st->w[1]);
		return;
	}
	g->source_set = true;
}

static void d_bird(struct parser *ps, const struct stmt *st, struct block *b)
{
	static const char *const names[] = { "own", "external" };
	int v = pick(ps, st, st->w[1], "bird", names, ARRAY_SIZE(names), 0);

	if (v >= 0)
		b->cfg->bgp.external = v == 1;
}

static void d_bird_binary(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->bgp.bird, sizeof(b->cfg->bgp.bird), false);
}

static void d_bird_dir(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->bgp.dir, sizeof(b->cfg->bgp.dir), true);
}

static void d_bird_socket(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->cfg->bgp.socket, sizeof(b->cfg->bgp.socket), true);
}

static void set_drain_dur(struct parser *ps, const struct stmt *st, __u64 *out, bool zero_ok)
{
	__u64 ms;

	if (lb_parse_duration_ms(st->w[1], &ms) || (!zero_ok && !ms) || ms > 3600 * 1000) {
		perr(ps, st->at, "invalid %s \"%s\" (expected a duration %s..1h such as 5s)", st->w[0],
		     st->w[1], zero_ok ? "0" : "above 0");
		return;
	}
	*out = ms;
}

static void d_drain_grace(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_drain_dur(ps, st, &b->cfg->bgp.drain_grace_ms, true);
}

static void d_drain_quiet(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_drain_dur(ps, st, &b->cfg->bgp.drain_quiet_ms, false);
}

static void d_stop_drain(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_drain_dur(ps, st, &b->cfg->bgp.stop_drain_ms, true);
}

/* sync_peer ADDR: a peer node's address on the segment the router shares */
static void d_sync_peer(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_bgp_conf *g = &b->cfg->bgp;
	struct lb_endpoint ep = { 0 };

	if (lb_addr_parse(st->w[1], &ep.addr, &ep.family)) {
		perr(ps, st->at, "invalid sync_peer \"%s\" (expected an IPv4 or IPv6 address)", st->w[1]);
		return;
	}
	for (int i = 0; i < g->nsync_peers; i++)
		if (lb_endpoint_eq(&g->sync_peers[i], &ep)) {
			perr(ps, st->at, "duplicate sync_peer %s", st->w[1]);
			return;
		}
	if (g->nsync_peers >= LB_BGP_MAX_NEIGHBORS) {
		perr(ps, st->at, "too many sync_peer (max %d)", LB_BGP_MAX_NEIGHBORS);
		return;
	}
	g->sync_peers[g->nsync_peers++] = ep;
}

static void d_sync_port(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u32 v = 0;

	set_count(ps, st, &v, 1, 65535);
	if (v)
		b->cfg->bgp.sync_port = (__u16)v;
}

static const struct directive bgp_dirs[] = {
	{ "router_id", 1, 1, false, d_router_id },
	{ "local_as", 1, 1, false, d_local_as },
	{ "neighbor", 1, 3, true, d_neighbor },
	{ "bfd", 1, 1, false, d_bfd },
	{ "bfd_interval", 1, 1, false, d_bfd_interval },
	{ "bfd_multiplier", 1, 1, false, d_bfd_multiplier },
	{ "community", 1, -1, true, d_community },
	{ "next_hop_self", 1, 1, false, d_next_hop_self },
	{ "source", 1, 1, false, d_source },
	{ "bird", 1, 1, false, d_bird },
	{ "bird_binary", 1, 1, false, d_bird_binary },
	{ "bird_dir", 1, 1, false, d_bird_dir },
	{ "bird_socket", 1, 1, false, d_bird_socket },
	{ "drain_grace", 1, 1, false, d_drain_grace },
	{ "drain_quiet", 1, 1, false, d_drain_quiet },
	{ "stop_drain", 1, 1, false, d_stop_drain },
	{ "sync_peer", 1, 1, true, d_sync_peer },
	{ "sync_port", 1, 1, false, d_sync_port },
};

/* `bgp { ... }` inside the lbd block. */
static int lbd_bgp(struct parser *ps, struct src *s, const struct stmt *st)
{
	struct block b = {
		.kind = C_BGP, .dirs = bgp_dirs, .ndirs = ARRAY_SIZE(bgp_dirs),
		.what = "bgp block", .cfg = ps->cfg,
	};

	if (st->n != 1)
		perr(ps, st->at, "unexpected \"%s\" after \"bgp\"", st->w[1]);
	if (ps->bgp_loc.line)
		perr(ps, st->at, "duplicate \"bgp\" block (first at %s:%d)", ps->bgp_loc.file,
		     ps->bgp_loc.line);
	ps->bgp_loc = st->at;
	ps->cfg->bgp.set = true;
	return parse_block(ps, s, &b, true, st->at);
}

static void bgp_checks(struct parser *ps)
{
	const struct lb_bgp_conf *g = &ps->cfg->bgp;

	if (!g->set)
		return;
	if (!g->router_id)
		perr(ps, ps->bgp_loc, "bgp block without router_id");
	if (!g->local_as)
		perr(ps, ps->bgp_loc, "bgp block without local_as");
	if (!g->nnb && !g->external)
		perr(ps, ps->bgp_loc, "bgp block without a neighbor (or `bird external;`)");
	if (g->external && !g->socket[0])
		perr(ps, ps->bgp_loc, "`bird external` needs bird_socket (the running BIRD's control socket)");
}

/* ------------------------------------------------------------- vip block */

static const char *family_name(__u8 f)
{
	return f == LB_AF_INET6 ? "IPv6" : "IPv4";
}

static void d_listen(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct vip_state *vs = b->vs;
	const char *v = st->w[1];
	size_t len = strlen(v);
	char tmp[LB_ADDRSTRLEN + 8];
	bool wild = len >= 2 && !strcmp(v + len - 2, ":*");
	struct lb_endpoint ep;

	/* Port 0 must be spelt "*": a typo'd ":0" silently catching every
	 * port of the address would be a nasty surprise. */
	if (wild && len < sizeof(tmp)) {
		snprintf(tmp, sizeof(tmp), "%.*s:0", (int)(len - 2), v);
		v = tmp;
	}
	if (lb_endpoint_parse(v, &ep)) {
		perr(ps, st->at, "invalid listen address \"%s\" (expected ADDR:PORT, [V6]:PORT or ADDR:*)",
		     st->w[1]);
		return;
	}
	if (!ep.port && !wild) {
		perr(ps, st->at, "invalid listen port 0 in \"%s\" (use ADDR:* for a wildcard-port VIP)",
		     st->w[1]);
		return;
	}
	if (st->n == 3) {
		if (!strcmp(st->w[2], "tcp")) {
			vs->v.proto = IPPROTO_TCP;
		} else if (!strcmp(st->w[2], "udp")) {
			vs->v.proto = IPPROTO_UDP;
		} else {
			perr(ps, st->at, "unknown protocol \"%s\" (expected tcp, udp)", st->w[2]);
			return;
		}
	}
	vs->v.listen = ep;
	vs->listen_set = true;
	vs->listen_loc = st->at;
}

static void d_method(struct parser *ps, const struct stmt *st, struct block *b)
{
	int v = pick(ps, st, st->w[1], "method", method_names, ARRAY_SIZE(method_names), 0);

	if (v >= 0)
		b->vs->v.method = (enum lb_method)v;
}

static void d_forward(struct parser *ps, const struct stmt *st, struct block *b)
{
	int v = pick(ps, st, st->w[1], "forward mode", fwd_names, ARRAY_SIZE(fwd_names), 0);

	if (v >= 0)
		b->vs->v.forward = (enum lb_fwd)v;
}

static void d_snat(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u8 fam;

	if (lb_addr_parse(st->w[1], &b->vs->v.snat, &fam)) {
		perr(ps, st->at, "invalid snat address \"%s\"", st->w[1]);
		return;
	}
	/* The family is checked when the block closes: listen may come later. */
	b->vs->v.snat_set = true;
	b->vs->snat_loc = st->at;
	b->vs->snat_family = fam;
}

static int parse_status(const char *v, struct lb_health_conf *h)
{
	char *copy = strdup(v), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		__u32 lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_u32(tok, 599, &lo) || parse_u32(dash ? dash + 1 : tok, 599, &hi) ||
		    lo < 100 || hi < lo || h->nstatus >= LB_HC_MAX_STATUS) {
			rc = -EINVAL;
			break;
		}
		h->status[h->nstatus].lo = (__u16)lo;
		h->status[h->nstatus].hi = (__u16)hi;
		h->nstatus++;
	}
	if (!h->nstatus)
		rc = -EINVAL;
	free(copy);
	return rc;
}

static void health_defaults(struct lb_health_conf *h)
{
	memset(h, 0, sizeof(*h));
	h->type = LB_HC_NONE;
	h->interval_ms = 2000;
	h->timeout_ms = 1000;
	h->rise = 2;
	h->fall = 3;
	snprintf(h->uri, sizeof(h->uri), "/");
	snprintf(h->method, sizeof(h->method), "GET");
	h->status[0] = (struct lb_status_range){ 200, 399 };
	h->nstatus = 1;
}

static bool set_hc_str(char *dst, size_t size, const char *v)
{
	if (strlen(v) >= size)
		return false;
	snprintf(dst, size, "%s", v);
	return true;
}

static void d_health_check(struct parser *ps, const struct stmt *st, struct block *b)
{
	enum { K_INTERVAL, K_TIMEOUT, K_JITTER, K_RISE, K_FALL, K_PORT, K_URI, K_METHOD,
	       K_HOST, K_STATUS, K_EXPECT, K_SEND, K_N };
	static const char *const keys[K_N] = {
		"interval", "timeout", "jitter", "rise", "fall", "port", "uri", "method",
		"host", "status", "expect", "send",
	};
	/* Which check types each key applies to, as a bit mask of enum lb_hc_type. */
	static const unsigned int applies[K_N] = {
		[K_URI] = 1u << LB_HC_HTTP, [K_METHOD] = 1u << LB_HC_HTTP,
		[K_HOST] = 1u << LB_HC_HTTP, [K_STATUS] = 1u << LB_HC_HTTP,
		[K_EXPECT] = 1u << LB_HC_HTTP | 1u << LB_HC_UDP, [K_SEND] = 1u << LB_HC_UDP,
	};
	struct lb_health_conf h;
	bool seen[K_N] = { 0 }, ok = true;
	int widx[K_N] = { 0 };
	int t = pick(ps, st, st->w[1], "health check", hc_names, ARRAY_SIZE(hc_names), LB_HC_NONE);

	if (t < 0)
		return;
	health_defaults(&h);
	h.nstatus = 0;
	h.type = (enum lb_hc_type)t;
	for (int i = 2; i < st->n; i++) {
		const char *w = st->w[i], *eq = strchr(w, '='), *v = eq ? eq + 1 : "";
		size_t klen = eq ? (size_t)(eq - w) : 0;
		int k = -1;
		__u32 u;

		for (int j = 0; j < K_N && eq; j++)
			if (strlen(keys[j]) == klen && !strncmp(w, keys[j], klen))
				k = j;
		if (k < 0) {
			perr(ps, st->at, "unknown health_check option \"%s\"", w);
			ok = false;
			continue;
		}
		if (seen[k] && k != K_STATUS) {
			perr(ps, st->at, "duplicate health_check option \"%s\"", w);
			ok = false;
			continue;
		}
		seen[k] = true;
		widx[k] = i;
		if (applies[k] && !(applies[k] & (1u << t))) {
			perr(ps, st->at, "health_check option \"%s\" does not apply to %s checks", w,
			     hc_names[t]);
			ok = false;
			continue;
		}
		switch (k) {
		case K_INTERVAL:
			ok &= !lb_parse_duration_ms(v, &h.interval_ms) && h.interval_ms;
			break;
		case K_TIMEOUT:
			ok &= !lb_parse_duration_ms(v, &h.timeout_ms) && h.timeout_ms;
			break;
		case K_JITTER:
			ok &= !lb_parse_duration_ms(v, &h.jitter_ms);
			break;
		case K_RISE:
			ok &= !parse_u32(v, 1000, &h.rise) && h.rise >= 1;
			break;
		case K_FALL:
			ok &= !parse_u32(v, 1000, &h.fall) && h.fall >= 1;
			break;
		case K_PORT:
			ok &= !parse_u32(v, 65535, &u) && u >= 1;
			h.port = (__u16)u;
			break;
		case K_URI:
			ok &= v[0] == '/' && set_hc_str(h.uri, sizeof(h.uri), v) &&
			      !strpbrk(v, " \r\n");
			break;
		case K_METHOD: {
			bool upper = *v != '\0';

			for (const char *c = v; *c; c++)
				upper &= *c >= 'A' && *c <= 'Z';
			ok &= upper && set_hc_str(h.method, sizeof(h.method), v);
			break;
		}
		case K_HOST:
			ok &= *v && !strpbrk(v, " \r\n") && set_hc_str(h.host, sizeof(h.host), v);
			break;
		case K_STATUS:
			ok &= !parse_status(v, &h);
			break;
		case K_EXPECT:
			ok &= *v && set_hc_str(h.expect, sizeof(h.expect), v);
			break;
		case K_SEND:
			ok &= *v && set_hc_str(h.send, sizeof(h.send), v);
			break;
		}
		if (!ok) {
			static const char *const expect[K_N] = {
				"a duration above 0 such as 2s", "a duration above 0 such as 1s",
				"a duration such as 500ms", "1..1000", "1..1000", "1..65535",
				"a path starting with \"/\", no spaces", "an upper-case HTTP method",
				"a host name", "LO-HI[,LO-HI...] within 100-599",
				"a non-empty string", "a non-empty string",
			};

			perr(ps, st->at, "invalid health_check %s in \"%s\" (expected %s)", keys[k], w,
			     expect[k]);
			return;
		}
	}
	if (!ok)
		return;
	if (!h.nstatus) {
		h.status[0] = (struct lb_status_range){ 200, 399 };
		h.nstatus = 1;
	}
	if (!seen[K_TIMEOUT])
		h.timeout_ms = h.interval_ms < 1000 ? h.interval_ms : 1000;
	if (h.timeout_ms > h.interval_ms) {
		perr(ps, st->at, "health_check \"%s\" exceeds the interval (%llu ms)",
		     st->w[widx[K_TIMEOUT]], (unsigned long long)h.interval_ms);
		return;
	}
	if (h.jitter_ms >= h.interval_ms) {
		perr(ps, st->at, "health_check jitter must be below the interval (%llu ms)",
		     (unsigned long long)h.interval_ms);
		return;
	}
	if (t == LB_HC_UDP && !h.send[0]) {
		perr(ps, st->at, "udp health_check needs send=PAYLOAD");
		return;
	}
	b->vs->v.health = h;
}

static void d_slow_start(struct parser *ps, const struct stmt *st, struct block *b)
{
	if (lb_parse_duration_ms(st->w[1], &b->vs->v.slow_start_ms))
		perr(ps, st->at, "invalid slow_start \"%s\" (expected a duration such as 30s)",
		     st->w[1]);
}

static void d_max_conns(struct parser *ps, const struct stmt *st, struct block *b)
{
	if (parse_u32(st->w[1], UINT32_MAX, &b->vs->v.max_conns))
		perr(ps, st->at, "invalid max_conns \"%s\" (expected 0..%u)", st->w[1], UINT32_MAX);
}

/* Only v2: the binary header, which carries IPv6 as well, and which the
 * backend parses without scanning text (HAProxy's send-proxy-v2). */
static void d_proxy_protocol(struct parser *ps, const struct stmt *st, struct block *b)
{
	static const char *const names[] = { "off", "v2" };
	int v = pick(ps, st, st->w[1], "proxy_protocol", names, ARRAY_SIZE(names), 0);

	if (v >= 0) {
		b->vs->v.proxy_protocol = v == 1;
		b->vs->pp_loc = st->at;
	}
}

/* timeout connect=D idle=D fin=D: the userspace proxy's, per VIP, in
 * HAProxy's terms (timeout connect, client/server, client-fin/server-fin);
 * the BPF data path keeps flows by its conntrack instead. */
static void d_timeout(struct parser *ps, const struct stmt *st, struct block *b)
{
	static const struct {
		const char *key;
		__u64 min_ms, max_ms;
	} keys[] = {
		{ "connect", 10, 600000 },
		{ "idle", 100, 7ull * 86400 * 1000 },
		{ "fin", 100, 7ull * 86400 * 1000 },
	};
	__u64 *dst[] = { &b->vs->v.timeout_connect_ms, &b->vs->v.timeout_idle_ms,
			 &b->vs->v.timeout_fin_ms };
	bool seen[ARRAY_SIZE(keys)] = { false };

	for (int i = 1; i < st->n; i++) {
		const char *w = st->w[i], *eq = strchr(w, '=');
		size_t k;
		__u64 ms;

		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (eq && (size_t)(eq - w) == strlen(keys[k].key) &&
			    !strncmp(w, keys[k].key, (size_t)(eq - w)))
				break;
		if (k == ARRAY_SIZE(keys)) {
			perr(ps, st->at, "invalid timeout \"%s\" (expected connect=, idle= or fin= "
			     "and a duration such as 30s)", w);
			return;
		}
		if (seen[k]) {
			perr(ps, st->at, "timeout %s given twice", keys[k].key);
			return;
		}
		seen[k] = true;
		if (lb_parse_duration_ms(eq + 1, &ms) || ms < keys[k].min_ms || ms > keys[k].max_ms) {
			perr(ps, st->at, "invalid timeout %s \"%s\" (expected %llums to %llus)",
			     keys[k].key, eq + 1, (unsigned long long)keys[k].min_ms,
			     (unsigned long long)(keys[k].max_ms / 1000));
			return;
		}
		*dst[k] = ms;
		if (k != 1) {
			b->vs->tcp_timeout_set = true;
			b->vs->tcp_timeout_loc = st->at;
		}
	}
}

static void d_backend(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct vip_state *vs = b->vs;
	struct lb_backend_conf be;
	char err[MSG_MAX];

	if (parse_backend(st->w + 1, st->n - 1, &be, NULL, false, err, sizeof(err))) {
		perr(ps, st->at, "%s", err);
		return;
	}
	for (int i = 0; i < vs->v.nbackends; i++) {
		if (lb_endpoint_eq(&vs->v.backends[i].ep, &be.ep)) {
			perr(ps, st->at, "duplicate backend \"%s\" (first at %s:%d)", st->w[1],
			     vs->be_loc[i].file, vs->be_loc[i].line);
			return;
		}
	}
	if (vs->v.nbackends >= LB_CONF_MAX_BACKENDS) {
		perr(ps, st->at, "too many backends at \"%s\" (max %d per vip)", st->w[1],
		     LB_CONF_MAX_BACKENDS);
		return;
	}
	if (vs->v.nbackends == vs->be_cap) {
		int cap = vs->be_cap ? vs->be_cap * 2 : 8;
		struct lb_backend_conf *nb = realloc(vs->v.backends, sizeof(*nb) * (size_t)cap);
		struct loc *nl;

		if (nb)
			vs->v.backends = nb;
		nl = nb ? realloc(vs->be_loc, sizeof(*nl) * (size_t)cap) : NULL;
		if (!nl) {
			perr(ps, st->at, "out of memory");
			return;
		}
		vs->be_loc = nl;
		vs->be_cap = cap;
	}
	vs->be_loc[vs->v.nbackends] = st->at;
	vs->v.backends[vs->v.nbackends++] = be;
}

static const struct directive vip_dirs[] = {
	{ "listen", 1, 2, false, d_listen },
	{ "method", 1, 1, false, d_method },
	{ "forward", 1, 1, false, d_forward },
	{ "snat", 1, 1, false, d_snat },
	{ "health_check", 1, -1, false, d_health_check },
	{ "slow_start", 1, 1, false, d_slow_start },
	{ "max_conns", 1, 1, false, d_max_conns },
	{ "proxy_protocol", 1, 1, false, d_proxy_protocol },
	{ "timeout", 1, 3, false, d_timeout },
	{ "backend", 1, -1, true, d_backend },
};

/* ---------------------------------------------------------- worker block */

static void d_command(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_worker_conf *w = &b->ws->w;
	char **argv = calloc((size_t)st->n, sizeof(*argv));

	if (!argv) {
		perr(ps, st->at, "out of memory");
		return;
	}
	for (int i = 1; i < st->n; i++) {
		if (!(argv[i - 1] = strdup(st->w[i]))) {
			for (int j = 0; j < i - 1; j++)
				free(argv[j]);
			free(argv);
			perr(ps, st->at, "out of memory");
			return;
		}
	}
	if (!argv[0][0]) {
		perr(ps, st->at, "empty command");
		for (int i = 0; i < st->n - 1; i++)
			free(argv[i]);
		free(argv);
		return;
	}
	w->argv = argv;
	w->argc = st->n - 1;
}

static void d_instances(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_worker_conf *w = &b->ws->w;
	const char *v = st->w[1];
	__u32 n;

	if (!strcmp(v, "auto")) {
		w->instances = LB_INST_AUTO;
	} else if (!strcmp(v, "max")) {
		w->instances = LB_INST_MAX;
	} else if (!parse_u32(v[0] == '-' ? v + 1 : v, WORKER_INST_MAX, &n) && n >= 1) {
		w->instances = v[0] == '-' ? LB_INST_LESS : LB_INST_COUNT;
		w->instances_n = (int)n;
	} else {
		perr(ps, st->at, "invalid instances \"%s\" (expected auto, max, N or -N, N 1..%d)", v,
		     WORKER_INST_MAX);
	}
}

static void d_wport(struct parser *ps, const struct stmt *st, struct block *b)
{
	__u32 v;

	if (parse_u32(st->w[1], 65535, &v) || !v) {
		perr(ps, st->at, "invalid port \"%s\" (expected 1..65535)", st->w[1]);
		return;
	}
	b->ws->w.port = (__u16)v;
	b->ws->port_loc = st->at;
}

static void d_wvip(struct parser *ps, const struct stmt *st, struct block *b)
{
	if (!lb_config_name_ok(st->w[1])) {
		perr(ps, st->at, "invalid vip name \"%s\" (" NAME_RULE ")", st->w[1]);
		return;
	}
	snprintf(b->ws->w.vip, sizeof(b->ws->w.vip), "%s", st->w[1]);
	b->ws->vip_loc = st->at;
}

static void d_ready(struct parser *ps, const struct stmt *st, struct block *b)
{
	int v = pick(ps, st, st->w[1], "ready check", ready_names, ARRAY_SIZE(ready_names), 0);

	if (v < 0)
		return;
	b->ws->w.ready = (enum lb_ready)v;
	b->ws->ready_set = true;
	b->ws->ready_loc = st->at;
}

static void d_env(struct parser *ps, const struct stmt *st, struct block *b)
{
	struct lb_worker_conf *w = &b->ws->w;

	for (int i = 1; i < st->n; i++) {
		const char *kv = st->w[i], *eq = strchr(kv, '=');
		size_t klen = eq ? (size_t)(eq - kv) : 0;
		bool ok = klen > 0 && !isdigit((unsigned char)kv[0]);
		char **env;

		for (size_t j = 0; ok && j < klen; j++)
			ok = isalnum((unsigned char)kv[j]) || kv[j] == '_';
		if (!ok) {
			perr(ps, st->at, "invalid env \"%s\" (expected NAME=VALUE)", kv);
			continue;
		}
		for (int j = 0; j < w->nenv; j++) {
			if (!strncmp(w->env[j], kv, klen + 1)) {
				perr(ps, st->at, "duplicate env \"%.*s\"", (int)klen, kv);
				ok = false;
			}
		}
		if (!ok)
			continue;
		env = realloc(w->env, sizeof(*env) * (size_t)(w->nenv + 2));
		if (!env) {
			perr(ps, st->at, "out of memory");
			return;
		}
		w->env = env;
		if (!(env[w->nenv] = strdup(kv))) {
			perr(ps, st->at, "out of memory");
			env[w->nenv] = NULL;
			return;
		}
		env[++w->nenv] = NULL;
	}
}

static void d_user(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->ws->w.user, sizeof(b->ws->w.user), false);
}

static void d_cwd(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->ws->w.cwd, sizeof(b->ws->w.cwd), false);
}

static void d_wlog(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_str(ps, st, b->ws->w.log, sizeof(b->ws->w.log), false);
}

static void set_dur(struct parser *ps, const struct stmt *st, __u64 *out)
{
	if (lb_parse_duration_ms(st->w[1], out))
		perr(ps, st->at, "invalid %s \"%s\" (expected a duration such as 2s or 100ms)",
		     st->w[0], st->w[1]);
}

static void set_size(struct parser *ps, const struct stmt *st, __u64 *out)
{
	if (lb_parse_size(st->w[1], out))
		perr(ps, st->at, "invalid %s \"%s\" (expected a size such as 300M)", st->w[0],
		     st->w[1]);
}

static void d_min_uptime(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_dur(ps, st, &b->ws->w.min_uptime_ms);
}

static void d_restart_delay(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_dur(ps, st, &b->ws->w.restart_delay_ms);
}

static void d_kill_timeout(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_dur(ps, st, &b->ws->w.kill_timeout_ms);
}

static void d_max_restarts(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->ws->w.max_restarts, 0, 1000000);
}

static void d_log_keep(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_count(ps, st, &b->ws->w.log_keep, 0, 1000000);
}

static void d_max_memory(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_size(ps, st, &b->ws->w.max_memory);
}

static void d_log_max_size(struct parser *ps, const struct stmt *st, struct block *b)
{
	set_size(ps, st, &b->ws->w.log_max_size);
}

_Static_assert(ARRAY_SIZE(lbd_dirs) <= DIRS_MAX && ARRAY_SIZE(vip_dirs) <= DIRS_MAX,
	       "struct block tracks at most DIRS_MAX directives");

static const struct directive worker_dirs[] = {
	{ "command", 1, -1, false, d_command },
	{ "instances", 1, 1, false, d_instances },
	{ "port", 1, 1, false, d_wport },
	{ "vip", 1, 1, false, d_wvip },
	{ "ready", 1, 1, false, d_ready },
	{ "env", 1, -1, true, d_env },
	{ "user", 1, 1, false, d_user },
	{ "cwd", 1, 1, false, d_cwd },
	{ "min_uptime", 1, 1, false, d_min_uptime },
	{ "max_restarts", 1, 1, false, d_max_restarts },
	{ "restart_delay", 1, 1, false, d_restart_delay },
	{ "kill_timeout", 1, 1, false, d_kill_timeout },
	{ "max_memory", 1, 1, false, d_max_memory },
	{ "log", 1, 1, false, d_wlog },
	{ "log_max_size", 1, 1, false, d_log_max_size },
	{ "log_keep", 1, 1, false, d_log_keep },
};

/* ----------------------------------------------------------- top level */

static void free_worker(struct lb_worker_conf *w)
{
	for (int i = 0; w->argv && i < w->argc; i++)
		free(w->argv[i]);
	for (int i = 0; w->env && i < w->nenv; i++)
		free(w->env[i]);
	free(w->argv);
	free(w->env);
	w->argv = w->env = NULL;
}

static bool grow(void **arr, int n, size_t elem)
{
	void *p = realloc(*arr, elem * (size_t)(n + 1));

	if (p)
		*arr = p;
	return p != NULL;
}

static void finish_vip(struct parser *ps, struct vip_state *vs, struct loc at)
{
	struct lb_conf *c = ps->cfg;
	struct lb_vip_conf *v = &vs->v;

	if (!vs->listen_set) {
		perr(ps, at, "vip \"%s\" has no listen", v->name);
	} else {
		for (int i = 0; i < v->nbackends; i++) {
			const struct lb_backend_conf *be = &v->backends[i];
			char eps[LB_ADDRSTRLEN];

			if (be->ep.family != v->listen.family)
				perr(ps, vs->be_loc[i],
				     "backend \"%s\" is %s but vip \"%s\" listens on %s",
				     lb_endpoint_str(&be->ep, eps, sizeof(eps)), family_name(be->ep.family), v->name,
				     family_name(v->listen.family));
			else if ((v->forward == LB_FWD_DSR || lb_fwd_encap(v->forward)) && v->listen.port &&
				 be->ep.port != v->listen.port)
				perr(ps, vs->be_loc[i],
				     "backend port %u differs from listen port %u: forward %s cannot rewrite ports",
				     ntohs(be->ep.port), ntohs(v->listen.port), fwd_names[v->forward]);
		}
		if (v->snat_set) {
			struct loc sl = vs->snat_loc;
			__u8 fam = vs->snat_family;

			if (fam != v->listen.family)
				perr(ps, sl, "snat address is %s but vip \"%s\" listens on %s",
				     family_name(fam), v->name, family_name(v->listen.family));
			else if (v->forward != LB_FWD_NAT)
				perr(ps, sl, "snat needs forward nat (vip \"%s\" uses %s)", v->name,
				     fwd_names[v->forward]);
		}
		if (v->proxy_protocol && v->proto != IPPROTO_TCP)
			perr(ps, vs->pp_loc, "proxy_protocol needs a tcp vip (vip \"%s\" is udp)", v->name);
		if (vs->tcp_timeout_set && v->proto != IPPROTO_TCP)
			perr(ps, vs->tcp_timeout_loc,
			     "timeout connect= and fin= need a tcp vip (vip \"%s\" is udp: idle= only)",
			     v->name);
		for (int i = 0; i < c->nvips; i++) {
			const struct lb_vip_conf *o = &c->vips[i];

			if (o->proto == v->proto && lb_endpoint_eq(&o->listen, &v->listen))
				perr(ps, vs->listen_loc,
				     "listen address of vip \"%s\" already used by vip \"%s\" (%s:%d)",
				     v->name, o->name, ps->listen_loc[i].file, ps->listen_loc[i].line);
		}
	}
	for (int i = 0; i < c->nvips; i++)
		if (!strcmp(c->vips[i].name, v->name))
			perr(ps, at, "duplicate vip \"%s\" (first at %s:%d)", v->name,
			     ps->vip_loc[i].file, ps->vip_loc[i].line);
	if (c->nvips >= LB_MAX_VIPS) {
		perr(ps, at, "too many vips at \"%s\" (max %d)", v->name, LB_MAX_VIPS);
		free(v->backends);
		return;
	}
	/* Kept even when it has errors (the config is dropped anyway), so that
	 * later blocks are still checked against it. */
	if (!grow((void **)&c->vips, c->nvips, sizeof(*c->vips)) ||
	    !grow((void **)&ps->vip_loc, c->nvips, sizeof(*ps->vip_loc)) ||
	    !grow((void **)&ps->listen_loc, c->nvips, sizeof(*ps->listen_loc))) {
		perr(ps, at, "out of memory");
		free(v->backends);
		return;
	}
	ps->vip_loc[c->nvips] = at;
	ps->listen_loc[c->nvips] = vs->listen_loc;
	c->vips[c->nvips++] = *v;
}

static int top_vip(struct parser *ps, struct src *s, const struct stmt *st)
{
	struct vip_state vs = { 0 };
	struct block b = {
		.kind = C_VIP, .dirs = vip_dirs, .ndirs = ARRAY_SIZE(vip_dirs),
		.what = "vip block", .cfg = ps->cfg, .vs = &vs,
	};
	int rc;

	if (st->n != 2)
		perr(ps, st->at, "invalid number of arguments in \"vip\" (expected vip NAME { ... })");
	else if (!lb_config_name_ok(st->w[1]))
		perr(ps, st->at, "invalid vip name \"%s\" (" NAME_RULE ")", st->w[1]);
	else
		snprintf(vs.v.name, sizeof(vs.v.name), "%s", st->w[1]);
	vs.v.proto = IPPROTO_TCP;
	vs.v.method = LB_METHOD_MAGLEV;
	vs.v.forward = LB_FWD_NAT;
	health_defaults(&vs.v.health);
	rc = parse_block(ps, s, &b, true, st->at);
	/* A block with errors is still checked and kept (the whole config is
	 * dropped anyway), so later duplicates are reported too. */
	if (!rc && vs.v.name[0])
		finish_vip(ps, &vs, st->at);
	else
		free(vs.v.backends);
	free(vs.be_loc);
	return rc;
}

static void finish_worker(struct parser *ps, struct worker_state *ws, struct loc at)
{
	struct lb_conf *c = ps->cfg;
	struct lb_worker_conf *w = &ws->w;

	if (!w->argc)
		perr(ps, at, "worker \"%s\" has no command", w->name);
	if (!ws->ready_set)
		w->ready = w->port ? LB_READY_TCP : LB_READY_NONE;
	else if (w->ready == LB_READY_TCP && !w->port)
		perr(ps, ws->ready_loc, "\"ready tcp\" needs a port in worker \"%s\"", w->name);
	if (w->vip[0] && !w->port)
		perr(ps, ws->vip_loc, "worker \"%s\" joins vip \"%s\" but has no port", w->name,
		     w->vip);
	if (w->port && w->instances == LB_INST_COUNT && w->port + w->instances_n - 1 > 65535)
		perr(ps, ws->port_loc, "ports %u..%u of worker \"%s\" exceed 65535", w->port,
		     w->port + w->instances_n - 1, w->name);
	for (int i = 0; i < c->nworkers; i++)
		if (!strcmp(c->workers[i].name, w->name))
			perr(ps, at, "duplicate worker \"%s\" (first at %s:%d)", w->name,
			     ps->worker_loc[i].file, ps->worker_loc[i].line);
	if (!grow((void **)&c->workers, c->nworkers, sizeof(*c->workers)) ||
	    !grow((void **)&ps->worker_loc, c->nworkers, sizeof(*ps->worker_loc)) ||
	    !grow((void **)&ps->worker_vip_loc, c->nworkers, sizeof(*ps->worker_vip_loc))) {
		perr(ps, at, "out of memory");
		free_worker(w);
		return;
	}
	ps->worker_loc[c->nworkers] = at;
	ps->worker_vip_loc[c->nworkers] = ws->vip_loc;
	c->workers[c->nworkers++] = *w;
}

static int top_worker(struct parser *ps, struct src *s, const struct stmt *st)
{
	struct worker_state ws = { 0 };
	struct block b = {
		.kind = C_WORKER, .dirs = worker_dirs, .ndirs = ARRAY_SIZE(worker_dirs),
		.what = "worker block", .cfg = ps->cfg, .ws = &ws,
	};
	int rc;

	if (st->n != 2)
		perr(ps, st->at, "invalid number of arguments in \"worker\" (expected worker NAME { ... })");
	else if (!lb_config_name_ok(st->w[1]))
		perr(ps, st->at, "invalid worker name \"%s\" (" NAME_RULE ")", st->w[1]);
	else
		snprintf(ws.w.name, sizeof(ws.w.name), "%s", st->w[1]);
	ws.w.min_uptime_ms = 1000;
	ws.w.max_restarts = 16;
	ws.w.restart_delay_ms = 100;
	ws.w.kill_timeout_ms = 1600;
	ws.w.log_keep = 5;
	rc = parse_block(ps, s, &b, true, st->at);
	if (!rc && ws.w.name[0])
		finish_worker(ps, &ws, st->at);
	else
		free_worker(&ws.w);
	return rc;
}

static int top_stmt(struct parser *ps, struct src *s, struct stmt *st, bool is_block)
{
	const char *d = st->w[0];

	if (!strcmp(d, "lbd") || !strcmp(d, "vip") || !strcmp(d, "worker")) {
		if (!is_block) {
			perr(ps, st->at, "\"%s\" needs a block: %s%s { ... }", d, d,
			     strcmp(d, "lbd") ? " NAME" : "");
			return 0;
		}
		if (!strcmp(d, "vip"))
			return top_vip(ps, s, st);
		if (!strcmp(d, "worker")) {
			return top_worker(ps, s, st);
		} else {
			struct block b = {
				.kind = C_LBD, .dirs = lbd_dirs, .ndirs = ARRAY_SIZE(lbd_dirs),
				.what = "lbd block", .cfg = ps->cfg,
			};

			if (st->n != 1)
				perr(ps, st->at, "unexpected \"%s\" after \"lbd\"", st->w[1]);
			if (ps->lbd_seen)
				perr(ps, st->at, "duplicate \"lbd\" block (first at %s:%d)",
				     ps->lbd_loc.file, ps->lbd_loc.line);
			ps->lbd_seen = true;
			ps->lbd_loc = st->at;
			return parse_block(ps, s, &b, true, st->at);
		}
	}
	perr(ps, st->at, "unknown directive \"%s\" (expected lbd, vip, worker, include)", d);
	return is_block ? skip_block(ps, s, st->at) : 0;
}

static int dispatch(struct parser *ps, struct src *s, struct block *b, struct stmt *st,
		    bool is_block)
{
	const struct directive *d = NULL;
	int i, nargs = st->n - 1;

	if (b->kind == C_SKIP)
		return is_block ? skip_block(ps, s, st->at) : 0;
	if (b->kind == C_TOP)
		return top_stmt(ps, s, st, is_block);
	if (b->kind == C_LBD && !strcmp(st->w[0], "bgp")) {
		if (is_block)
			return lbd_bgp(ps, s, st);
		perr(ps, st->at, "\"bgp\" needs a block: bgp { ... }");
		return 0;
	}
	for (i = 0; i < b->ndirs; i++) {
		if (!strcmp(b->dirs[i].name, st->w[0])) {
			d = &b->dirs[i];
			break;
		}
	}
	if (!d) {
		perr(ps, st->at, "unknown directive \"%s\" in %s", st->w[0], b->what);
	} else if (is_block) {
		perr(ps, st->at, "\"%s\" does not take a block", st->w[0]);
	} else if (nargs < d->min || (d->max >= 0 && nargs > d->max)) {
		perr(ps, st->at, "invalid number of arguments in \"%s\"", st->w[0]);
	} else if (!d->repeat && b->seen[i].line) {
		perr(ps, st->at, "duplicate \"%s\" (first at %s:%d)", st->w[0], b->seen[i].file,
		     b->seen[i].line);
	} else {
		b->seen[i] = st->at;
		d->fn(ps, st, b);
	}
	return is_block ? skip_block(ps, s, st->at) : 0;
}

/* ------------------------------------------------------ whole-file checks */

static void final_checks(struct parser *ps)
{
	struct lb_conf *c = ps->cfg;
	long total = 0;

	bgp_checks(ps);
	for (int i = 0; i < c->nworkers; i++) {
		const struct lb_worker_conf *w = &c->workers[i];

		if (w->vip[0] && !lb_config_vip(c, w->vip))
			perr(ps, ps->worker_vip_loc[i], "worker \"%s\": unknown vip \"%s\"", w->name,
			     w->vip);
	}
	for (int i = 0; i < c->nvips; i++) {
		const struct lb_vip_conf *v = &c->vips[i];

		total += v->nbackends;
		if ((__u32)i == c->max_vips)
			perr(ps, ps->vip_loc[i], "vip \"%s\" is one more than max_vips %u", v->name,
			     c->max_vips);
		if ((__u32)v->nbackends > c->max_backends)
			perr(ps, ps->vip_loc[i], "vip \"%s\" has %d backends, more than max_backends %u",
			     v->name, v->nbackends, c->max_backends);
		if ((v->method == LB_METHOD_MAGLEV || v->method == LB_METHOD_IP_HASH) &&
		    (__u32)v->nbackends > c->maglev_size)
			perr(ps, ps->vip_loc[i], "vip \"%s\" has %d backends, more than maglev_size %u",
			     v->name, v->nbackends, c->maglev_size);
	}
	if (total > LB_MAX_BACKENDS && c->nvips)
		perr(ps, ps->vip_loc[c->nvips - 1], "%ld backends in all, more than %d", total,
		     LB_MAX_BACKENDS);
}

static void conf_defaults(struct lb_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = LB_ATTACH_AUTO;
	snprintf(c->control, sizeof(c->control), "/run/lbd/lbd.sock");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/lbd");
	snprintf(c->bpffs, sizeof(c->bpffs), "/sys/fs/bpf/lbd");
	snprintf(c->pid_file, sizeof(c->pid_file), "/run/lbd/lbd.pid");
	c->hash_seed = LB_CONF_DEFAULT_HASH_SEED;
	c->conntrack_size = LB_CT_DEFAULT_SIZE;
	c->conntrack_new_size = LB_CT_NEW_DEFAULT_SIZE;
	c->ct_timeout_tcp = LB_CT_TCP_TIMEOUT;
	c->ct_timeout_udp = LB_CT_UDP_TIMEOUT;
	c->ct_timeout_closed = LB_CT_CLOSED_TIMEOUT;
	c->maglev_size = LB_MAGLEV_DEFAULT_SIZE;
	c->max_vips = LB_MAX_VIPS;
	c->max_backends = LB_CONF_MAX_BACKENDS;
	c->control_max_request = LB_CTL_MAX_REQ;
	c->control_max_clients = LB_CTL_MAX_CLIENTS;
	c->health_concurrency = LB_CONF_HEALTH_CONCURRENCY;
	c->snat_port_lo = LB_SNAT_PORT_LO;
	c->snat_port_hi = LB_SNAT_PORT_HI;
	c->gue_port = LB_GUE_DEFAULT_PORT;
	c->log_level = LB_LOG_INFO;
	c->bgp.bfd_interval_ms = 100;
	c->bgp.bfd_multiplier = 3;
	c->bgp.next_hop_self = true;
	snprintf(c->bgp.bird, sizeof(c->bgp.bird), "bird");
	snprintf(c->bgp.dir, sizeof(c->bgp.dir), "/run/lbd/bird");
	c->bgp.drain_grace_ms = 2000;
	c->bgp.drain_quiet_ms = 5000;
	c->bgp.stop_drain_ms = 10000;
	c->bgp.sync_port = 6934;
}

static int finish(struct parser *ps, int rc, struct lb_conf *tmp, struct lb_conf *cfg)
{
	if (!rc)
		final_checks(ps);
	for (int i = 0; i < ps->nfiles; i++)
		free(ps->files[i]);
	free(ps->files);
	free(ps->vip_loc);
	free(ps->listen_loc);
	free(ps->worker_loc);
	free(ps->worker_vip_loc);
	while (ps->depth)
		pop_file(ps);
	if (ps->nerr || rc) {
		lb_config_free(tmp);
		return -EINVAL;
	}
	*cfg = *tmp;
	return 0;
}

static void parser_init(struct parser *ps, struct lb_conf *tmp, lb_config_err_fn err, void *ctx)
{
	memset(ps, 0, sizeof(*ps));
	conf_defaults(tmp);
	ps->cfg = tmp;
	ps->err = err;
	ps->ctx = ctx;
}

int lb_config_load(const char *path, struct lb_conf *cfg, lb_config_err_fn err, void *ctx)
{
	struct lb_conf tmp;
	struct parser ps;
	struct block top = { .kind = C_TOP, .what = "top level" };
	char *text;
	size_t len;
	int rc;

	parser_init(&ps, &tmp, err, ctx);
	rc = read_file(path, &text, &len);
	if (rc) {
		perr(&ps, (struct loc){ path, 0 }, "cannot read \"%s\": %s", path, strerror(-rc));
		finish(&ps, rc, &tmp, cfg);
		return rc == -EINVAL ? -EIO : rc;
	}
	rc = push_file(&ps, path, (struct loc){ path, 0 });
	if (!rc)
		rc = parse_text(&ps, path, text, len, &top);
	free(text);
	return finish(&ps, rc, &tmp, cfg);
}

int lb_config_parse_string(const char *name, const char *text, struct lb_conf *cfg,
			   lb_config_err_fn err, void *ctx)
{
	struct lb_conf tmp;
	struct parser ps;
	struct block top = { .kind = C_TOP, .what = "top level" };
	int rc;

	parser_init(&ps, &tmp, err, ctx);
	rc = push_file(&ps, name, (struct loc){ name, 0 });
	if (!rc)
		rc = parse_text(&ps, name, text, strlen(text), &top);
	return finish(&ps, rc, &tmp, cfg);
}

void lb_config_free(struct lb_conf *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < cfg->nvips; i++)
		free(cfg->vips[i].backends);
	free(cfg->vips);
	for (int i = 0; i < cfg->nworkers; i++)
		free_worker(&cfg->workers[i]);
	free(cfg->workers);
	cfg->vips = NULL;
	cfg->workers = NULL;
	cfg->nvips = cfg->nworkers = 0;
}

const struct lb_vip_conf *lb_config_vip(const struct lb_conf *cfg, const char *name)
{
	for (int i = 0; i < cfg->nvips; i++)
		if (!strcmp(cfg->vips[i].name, name))
			return &cfg->vips[i];
	return NULL;
}

int lb_worker_instances(const struct lb_worker_conf *w, int ncpu)
{
	int n;

	if (ncpu < 1)
		ncpu = 1;
	switch (w->instances) {
	case LB_INST_MAX: n = ncpu; break;
	case LB_INST_COUNT: n = w->instances_n; break;
	case LB_INST_LESS: n = ncpu - w->instances_n; break;
	case LB_INST_AUTO:
	default: n = ncpu - 1; break;
	}
	return n < 1 ? 1 : n;
}
