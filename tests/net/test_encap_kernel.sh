#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_encap.sh with backends that decapsulate with the kernel's ipip,
# ip6_tunnel and fou modules (skipped on a kernel without them; the VM lab's
# kernel has them).
DECAP_MODE=kernel T_NAME=test_encap_kernel exec "$(dirname "$0")/test_encap.sh"
