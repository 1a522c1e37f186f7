/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Small file helpers shared by the modules that persist or generate files. */
#ifndef LBD_FILE_H
#define LBD_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* dir/name replaced atomically (temp file, fsync, rename, fsync of dir).
 * Returns 0 or -errno. */
int lb_write_atomic(const char *dir, const char *name, const char *data, size_t len);
/* mkdir -p with mode for each created component. Returns 0 or -errno. */
int lb_mkdir_p(const char *path, mode_t mode);

#endif
