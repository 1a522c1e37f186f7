/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stats page the metrics endpoint serves at `/`: userspace/webui.html,
 * built into the binary as it is, so lbd ships one file and the page needs
 * nothing from anywhere (no external scripts, styles or fonts). The page polls
 * /api/status (the `lbctl -j status` document) and draws what `lbctl top`
 * draws: rates come from the difference of two samples.
 */
#ifndef LBD_WEBUI_H
#define LBD_WEBUI_H

#include <stddef.h>

/* The page's bytes (followed by a NUL, not counted in the length). */
extern const char lb_webui_html[];
size_t lb_webui_html_len(void);

#endif
