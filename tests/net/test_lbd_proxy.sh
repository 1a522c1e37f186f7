#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# test_lbd.sh with the userspace proxy forced (mode proxy): the controller's
# end-to-end suite, kill -9 of lbd under load included.
LBD_MODE=proxy T_NAME_OVERRIDE=test_lbd_proxy exec "$(dirname "$0")/test_lbd.sh"
