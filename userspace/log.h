/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One log line per event: "lbd[pid]: LEVEL message". */
#ifndef LBD_LOG_H
#define LBD_LOG_H

#include <stdbool.h>

enum lb_log_level { LB_LOG_ERR, LB_LOG_WARN, LB_LOG_INFO, LB_LOG_DEBUG };

void lb_log_set_level(enum lb_log_level lvl);
/* Where lines go: stderr (default) or syslog when daemonized. */
void lb_log_use_syslog(const char *ident);
/* True once lines go to syslog (a daemon's stdio is not its log). */
bool lb_log_syslog(void);
void lb_log(enum lb_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define lb_err(...)   lb_log(LB_LOG_ERR, __VA_ARGS__)
#define lb_warn(...)  lb_log(LB_LOG_WARN, __VA_ARGS__)
#define lb_info(...)  lb_log(LB_LOG_INFO, __VA_ARGS__)
#define lb_debug(...) lb_log(LB_LOG_DEBUG, __VA_ARGS__)

#endif
