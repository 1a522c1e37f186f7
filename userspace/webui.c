// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The page goes into .rodata with the assembler's .incbin, so it is edited as
 * the HTML file it is, and not as a C string. The path is relative to the
 * top of the tree, where make runs the compiler; the Makefile makes this
 * object depend on the file.
 */
#include "webui.h"

__asm__(".section .rodata\n"
	".global lb_webui_html\n"
	".type lb_webui_html, @object\n"
	".balign 16\n"
	"lb_webui_html:\n"
	".incbin \"userspace/webui.html\"\n"
	".global lb_webui_html_end\n"
	"lb_webui_html_end:\n"
	".byte 0\n"
	".size lb_webui_html, . - lb_webui_html\n"
	".previous\n");

extern const char lb_webui_html_end[];

size_t lb_webui_html_len(void)
{
	return (size_t)(lb_webui_html_end - lb_webui_html);
}
