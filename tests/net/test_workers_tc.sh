#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_workers.sh with the tc attach mode forced (local delivery by TC ingress).
LBD_MODE=tc T_NAME=test_workers_tc exec "$(dirname "$0")/test_workers.sh"
