/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbd.conf parser. The same lexer and backend grammar serve control commands
 * (`backend add 198.18.1.2:3000 weight=1 vip=web;`), so lbctl, the control
 * socket and the file can never disagree about a word.
 *
 * The parsed result is `struct lb_conf` (struct lb_config is taken by the BPF
 * config map value in lb_abi.h).
 */
#ifndef LBD_CONFIG_H
#define LBD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "addr.h"
#include "lb_abi.h"
#include "log.h"

#define LB_CONF_MAX_BACKENDS  4096 /* per VIP */
#define LB_CONF_HEALTH_CONCURRENCY  256 /* checks in flight */
#define LB_CONF_MAX_IFACES    16
#define LB_CONF_INCLUDE_DEPTH 8
#define LB_CONF_NAME_MAX      64   /* vip/worker names, incl. NUL */
#define LB_CONF_IFNAME_MAX    16   /* IFNAMSIZ */
#define LB_CONF_PATH_MAX      256
#define LB_CONF_SOCK_MAX      108  /* sizeof(sun_path) */
#define LB_CONF_STR_MAX       256  /* health-check strings */
#define LB_HC_MAX_STATUS      8    /* status=LO-HI ranges */
#define LB_CONF_DEFAULT_HASH_SEED 0x6c626431u /* "lbd1": same default on every node */

enum lb_attach_mode {
	LB_ATTACH_AUTO = 0,   /* XDP native, XDP generic, TC, proxy: first that works */
	LB_ATTACH_XDP,
	LB_ATTACH_XDP_GENERIC,
	LB_ATTACH_TC,
	LB_ATTACH_PROXY,
};

enum lb_hc_type {
	LB_HC_INHERIT = 0, /* backends only: use the VIP's check */
	LB_HC_NONE,
	LB_HC_TCP,
	LB_HC_HTTP,
	LB_HC_UDP,
};

enum lb_ready {
	LB_READY_TCP = 0, /* port accepts a connection */
	LB_READY_NOTIFY,  /* sd_notify-style READY=1 */
	LB_READY_NONE,    /* ready as soon as it is spawned */
};

enum lb_instances_kind {
	LB_INST_AUTO = 0, /* ncpu - 1, at least 1 */
	LB_INST_MAX,      /* ncpu */
	LB_INST_COUNT,    /* n */
	LB_INST_LESS,     /* ncpu - n, at least 1 */
};

struct lb_status_range {
	__u16 lo, hi;
};

struct lb_health_conf {
	enum lb_hc_type type;      /* LB_HC_NONE: no active check */
	__u64 interval_ms;         /* 2000 */
	__u64 timeout_ms;          /* min(interval, 1000) unless set */
	__u64 jitter_ms;           /* 0 */
	__u32 rise, fall;          /* 2, 3 */
	__u16 port;                /* host order; 0 = the backend's port */
	char uri[LB_CONF_STR_MAX];     /* "/" */
	char method[8];                /* "GET" */
	char host[LB_CONF_STR_MAX];    /* "" = the backend's address */
	struct lb_status_range status[LB_HC_MAX_STATUS]; /* 200-399 */
	int nstatus;
	char expect[LB_CONF_STR_MAX];  /* "" = anything */
	char send[LB_CONF_STR_MAX];    /* udp payload */
};

struct lb_backend_conf {
	struct lb_endpoint ep;
	__u32 weight;              /* 0..65535, default 1 */
	__u32 max_fails;           /* default 1; 0 disables passive checks */
	__u64 fail_timeout_ms;     /* default 10 s */
	enum lb_hc_type health_check; /* LB_HC_INHERIT unless overridden */
	bool backup;
	enum lb_backend_state state;  /* LB_BE_UP unless state=drain|down */
	char vip[LB_CONF_NAME_MAX];   /* vip=NAME: control commands only */
};

struct lb_vip_conf {
	char name[LB_CONF_NAME_MAX];
	struct lb_endpoint listen; /* port 0 = wildcard */
	__u8 proto;                /* IPPROTO_TCP or IPPROTO_UDP */
	enum lb_method method;
	enum lb_fwd forward;
	bool snat_set;             /* else lbd uses the egress address */
	union lb_addr snat;        /* family is listen.family */
	struct lb_health_conf health;
	__u64 slow_start_ms;       /* 0 = none */
	__u32 max_conns;           /* 0 = unlimited */
	bool proxy_protocol;       /* `proxy_protocol v2`: userspace proxy, TCP only */
	/* `timeout connect= idle= fin=`: the userspace proxy's, 0 = its default */
	__u64 timeout_connect_ms, timeout_idle_ms, timeout_fin_ms;
	struct lb_backend_conf *backends; /* malloc'ed, nbackends entries */
	int nbackends;
};

struct lb_worker_conf {
	char name[LB_CONF_NAME_MAX];
	char **argv;               /* NULL-terminated, argc entries */
	int argc;
	enum lb_instances_kind instances;
	int instances_n;           /* for LB_INST_COUNT / LB_INST_LESS */
	__u16 port;                /* host order; 0 = none. Instance i: port + i */
	char vip[LB_CONF_NAME_MAX]; /* "" = none */
	enum lb_ready ready;       /* default tcp with a port, else none */
	char **env;                /* "KEY=VALUE", NULL-terminated */
	int nenv;
	char user[LB_CONF_NAME_MAX];
	char cwd[LB_CONF_PATH_MAX];
	__u64 min_uptime_ms;       /* 1000 */
	__u32 max_restarts;        /* 16 */
	__u64 restart_delay_ms;    /* 100 */
	__u64 kill_timeout_ms;     /* 1600, as PM2 */
	__u64 max_memory;          /* bytes, 0 = unlimited */
	char log[LB_CONF_PATH_MAX]; /* "%i" = instance; "" = lbd's stderr */
	__u64 log_max_size;        /* bytes, 0 = never rotate */
	__u32 log_keep;            /* 5 */
};

#define LB_BGP_MAX_NEIGHBORS   16
#define LB_BGP_MAX_COMMUNITIES 16

struct lb_bgp_neighbor {
	union lb_addr addr;
	__u8 family;               /* LB_AF_INET or LB_AF_INET6 */
	__u32 as;
	int bfd;                   /* -1: the block's `bfd`, 0 off, 1 on */
};

/* The `bgp` block of the lbd block: lbd announces its VIPs through BIRD2
 * (bgp.c). */
struct lb_bgp_conf {
	bool set;                  /* a bgp block is present */
	__u32 router_id;           /* IPv4 address, network order */
	__u32 local_as;
	struct lb_bgp_neighbor nb[LB_BGP_MAX_NEIGHBORS];
	int nnb;
	bool bfd;                  /* default for neighbours: off */
	__u64 bfd_interval_ms;     /* 100 */
	__u32 bfd_multiplier;      /* 3 */
	__u32 communities[LB_BGP_MAX_COMMUNITIES]; /* (ASN << 16) | VALUE */
	int ncommunities;
	bool next_hop_self;        /* on */
	bool source_set;
	union lb_addr source;
	__u8 source_family;
	bool external;             /* `bird external`: use a running BIRD */
	char bird[LB_CONF_PATH_MAX];        /* the binary: "bird" */
	char dir[LB_CONF_PATH_MAX];         /* generated files: /run/lbd/bird */
	char socket[LB_CONF_SOCK_MAX];      /* "" = DIR/bird.ctl */
	__u64 drain_grace_ms;      /* graceful-shutdown announcement before withdrawal: 2 s */
	__u64 drain_quiet_ms;      /* no new flow for this long: drained, 5 s */
	__u64 stop_drain_ms;       /* SIGTERM drains this long at most, 10 s; 0: no drain */
	/* flow ownership sharing with peer nodes (owner.c): a draining node
	 * pushes its flows to them over UDP sync_port */
	struct lb_endpoint sync_peers[LB_BGP_MAX_NEIGHBORS]; /* port: sync_port */
	int nsync_peers;
	__u16 sync_port;           /* host order, 6934 */
};

struct lb_conf {
	char interfaces[LB_CONF_MAX_IFACES][LB_CONF_IFNAME_MAX];
	int ninterfaces;
	enum lb_attach_mode mode;
	char control[LB_CONF_SOCK_MAX];           /* /run/lbd/lbd.sock */
	char control_group[LB_CONF_NAME_MAX];     /* "" = owner only */
	char control_ro_group[LB_CONF_NAME_MAX];  /* "" = none; status/stats only */
	char state_dir[LB_CONF_PATH_MAX];         /* /var/lib/lbd */
	char bpffs[LB_CONF_PATH_MAX];             /* /sys/fs/bpf/lbd */
	char pid_file[LB_CONF_PATH_MAX];          /* /run/lbd/lbd.pid */
	__u32 hash_seed;
	bool metrics_set;
	struct lb_endpoint metrics;
	__u32 conntrack_size;                     /* established, LB_CT_DEFAULT_SIZE */
	__u32 conntrack_new_size;                 /* new (LRU), LB_CT_NEW_DEFAULT_SIZE */
	__u32 ct_timeout_tcp, ct_timeout_udp, ct_timeout_closed; /* s, LB_CT_*_TIMEOUT */
	__u32 maglev_size;                        /* LB_MAGLEV_DEFAULT_SIZE */
	__u16 snat_port_lo, snat_port_hi;         /* host order, inclusive */
	/* forward ipip/gue: outer source per family (else the address
	 * towards the backends) and the backends' GUE port */
	bool encap_src4_set, encap_src6_set;
	union lb_addr encap_src4, encap_src6;
	__u16 gue_port;                           /* host order, 6080 */
	enum lb_log_level log_level;              /* info */
	bool keep_caps;                           /* `capabilities keep;` */
	/* limits (documented in lbd.conf(5)); the data path's maps fix the
	 * upper bounds of the first two */
	__u32 max_vips;                           /* LB_MAX_VIPS */
	__u32 max_backends;                       /* per VIP, LB_CONF_MAX_BACKENDS */
	__u32 control_max_request;                /* bytes, LB_CTL_MAX_REQ */
	__u32 control_max_clients;                /* LB_CTL_MAX_CLIENTS */
	__u32 health_concurrency;                 /* checks in flight, 0 = no limit */
	__u32 proxy_workers;                      /* proxy processes, 0 = auto (one per CPU) */
	struct lb_bgp_conf bgp;
	struct lb_vip_conf *vips;
	int nvips;
	struct lb_worker_conf *workers;
	int nworkers;
};

/* Called once per error with "FILE:LINE: message". */
typedef void (*lb_config_err_fn)(void *ctx, const char *msg);

/* Parse a file (with includes). Returns 0, -EINVAL when any error was
 * reported, or -errno when `path` itself cannot be read (also reported).
 * *cfg is written only on success; free it with lb_config_free(). */
int lb_config_load(const char *path, struct lb_conf *cfg,
		   lb_config_err_fn err, void *ctx);
/* The same for text in memory; `name` is the file name in messages and the
 * base for relative includes. */
int lb_config_parse_string(const char *name, const char *text, struct lb_conf *cfg,
			   lb_config_err_fn err, void *ctx);
void lb_config_free(struct lb_conf *cfg);

/* vip and worker names end up in file names, metrics labels and commands:
 * 1-63 of letters, digits, "_", "-", ".". */
bool lb_config_name_ok(const char *s);

/* Look up a VIP by name; NULL if none. */
const struct lb_vip_conf *lb_config_vip(const struct lb_conf *cfg, const char *name);

/* One backend's words, as after `backend`: "198.18.1.2:3000", "weight=1",
 * "backup", "state=drain", "vip=web" ... Defaults fill what is not given.
 * On error writes a message naming the bad word into err and returns -EINVAL. */
int lb_config_parse_backend(char *const *words, int n, struct lb_backend_conf *out,
			    char *err, size_t errlen);

/* Options a backend statement named, for `backend set` (only what is named
 * changes). */
enum {
	LB_BE_OPT_WEIGHT       = 1u << 0,
	LB_BE_OPT_MAX_FAILS    = 1u << 1,
	LB_BE_OPT_FAIL_TIMEOUT = 1u << 2,
	LB_BE_OPT_HEALTH_CHECK = 1u << 3,
	LB_BE_OPT_BACKUP       = 1u << 4,
	LB_BE_OPT_STATE        = 1u << 5,
	LB_BE_OPT_VIP          = 1u << 6,
};
/* lb_config_parse_backend, also returning in *given the LB_BE_OPT_* bits of
 * the options present. */
int lb_config_parse_backend_given(char *const *words, int n, struct lb_backend_conf *out,
				  unsigned int *given, char *err, size_t errlen);

/* Split one control statement with the config lexer (quotes, escapes, `#`
 * comments, an optional trailing `;`). Words are stored in buf. Returns the
 * word count, -EINVAL (syntax) or -E2BIG (too many words or buf too small),
 * with a message in err. */
int lb_config_split(const char *line, char **words, int max_words,
		    char *buf, size_t buflen, char *err, size_t errlen);

/* "250ms", "2s", "5m", "1h", "1d"; a bare number is seconds. 0 or -EINVAL. */
int lb_parse_duration_ms(const char *s, __u64 *ms);
/* "512", "64k", "10M", "1G" (binary units, either case). 0 or -EINVAL. */
int lb_parse_size(const char *s, __u64 *bytes);

/* How many instances to run on ncpu cores. */
int lb_worker_instances(const struct lb_worker_conf *w, int ncpu);

/* The config words for enum values, for status output. */
const char *lb_mode_name(enum lb_attach_mode m);
const char *lb_method_name(enum lb_method m);
const char *lb_fwd_name(enum lb_fwd f);
/* ipip and gue: encapsulated direct server return. */
bool lb_fwd_encap(enum lb_fwd f);
const char *lb_backend_state_name(enum lb_backend_state s);
const char *lb_hc_type_name(enum lb_hc_type t);

#endif
