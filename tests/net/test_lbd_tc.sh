#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_lbd.sh with the tc attach mode forced.
LBD_MODE=tc T_NAME_OVERRIDE=test_lbd_tc exec "$(dirname "$0")/test_lbd.sh"
