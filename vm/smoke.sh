#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The lab's smoke test (make vm-smoke; runs inside the guest as lab.run=smoke):
# the BPF objects load and the verifier accepts them on this kernel, lbd
# attaches in native XDP mode (LBD_MODE) to the topology of tests/net/lib.sh,
# and one HTTP request from the client namespace through the VIP reaches a
# backend. One PASS/FAIL line each; exit status 1 if any failed.
. /lab/vm/lib.sh
# shellcheck disable=SC2034 # read by tests/net/lib.sh
T_NAME=vm-smoke
MODE=${LBD_MODE:-xdp}
t_require_root
t_require_cmd ip nsenter ethtool curl ss bpftool
t_require_bin "$LBD" "$LBCTL" "$DEMO_BACKEND"

# Every object the build made, loaded by bpftool into a scratch pin dir:
# tells which programs this kernel's verifier refuses, independently of lbd.
SCRATCH=/sys/fs/bpf/vm-smoke
for obj in "$O"/bpf/*.bpf.o; do
	[ -f "$obj" ] || continue
	name=$(basename "$obj" .bpf.o)
	rm -rf "$SCRATCH"
	if out=$(bpftool prog loadall "$obj" "$SCRATCH" 2>&1); then
		t_pass "load-$name ($(ls "$SCRATCH" | wc -l) programs)"
	else
		t_fail "load-$name" "$(grep -v '^libbpf: ' <<<"$out" | tail -5 | tr '\n' ' ')"
	fi
	rm -rf "$SCRATCH"
done

lab_up
trap 'topo_down; rm -rf "$PIN" "$SCRATCH"' EXIT
lab_lbd "$MODE" eth0 eth1
st=$("$LBCTL" -s "$SOCK" status)
if grep -Eq "^  eth0 +$MODE\b" <<<"$st"; then
	t_pass "lbd-attached-$MODE"
else
	t_fail "lbd-attached-$MODE" "lbctl status: $st"
fi
body=$(in_client curl -s -m 10 "http://$VIP/")
t_check "request-through-vip" "curl got '$body'" grep -q "^Here we are! be[12]" <<<"$body"
t_done
