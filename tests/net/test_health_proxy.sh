#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_health.sh with the userspace proxy forced (mode proxy).
LBD_MODE=proxy T_NAME_OVERRIDE=test_health_proxy exec "$(dirname "$0")/test_health.sh"
