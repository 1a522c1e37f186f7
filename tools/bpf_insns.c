// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_insns OBJ...: load each BPF object on this kernel and print, per
 * program, the instructions the verifier processed (the figure its limit
 * of 1,000,000 applies to):
 *
 *   object,program,verified_insns
 *
 * Nothing is pinned (pin paths are cleared) and nothing is attached, so it
 * runs next to a live lbd. A program the kernel refuses is reported with
 * its error and the tail of the verifier log; the exit status is then 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static char vlog[1 << 20];

static int report(const char *path)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .kernel_log_buf = vlog,
		    .kernel_log_size = sizeof(vlog), .kernel_log_level = 0);
	struct bpf_object *obj = bpf_object__open_file(path, &oo);
	struct bpf_program *p;
	struct bpf_map *m;
	int err;

	if (!obj) {
		fprintf(stderr, "bpf_insns: %s: open: %s\n", path, strerror(errno));
		return 1;
	}
	bpf_object__for_each_map(m, obj)
		bpf_map__set_pin_path(m, NULL);
	vlog[0] = 0;
	err = bpf_object__load(obj);
	if (err) {
		size_t n = strlen(vlog);

		fprintf(stderr, "bpf_insns: %s: load: %s\n%s\n", path, strerror(-err),
			n > 4096 ? vlog + n - 4096 : vlog);
		bpf_object__close(obj);
		return 1;
	}
	bpf_object__for_each_program(p, obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) {
			fprintf(stderr, "bpf_insns: %s: %s: %s\n", path, bpf_program__name(p),
				strerror(errno));
			err = -errno;
			continue;
		}
		printf("%s,%s,%u\n", path, bpf_program__name(p), info.verified_insns);
	}
	bpf_object__close(obj);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: bpf_insns OBJ...\n");
		return 2;
	}
	printf("object,program,verified_insns\n");
	for (int i = 1; i < argc; i++)
		rc |= report(argv[i]);
	return rc;
}
