// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lbctl's entry point; the command line is cli.c's (which the fuzz target
 * links without this file). */
#include "lbctl.h"

int main(int argc, char **argv)
{
	return lbctl_main(argc, argv);
}
