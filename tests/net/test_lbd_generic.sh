#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_lbd.sh with the xdp-generic attach mode forced.
LBD_MODE=xdp-generic T_NAME_OVERRIDE=test_lbd_generic exec "$(dirname "$0")/test_lbd.sh"
