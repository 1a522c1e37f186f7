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
t_require_cmd ip nsenter ethtool curl ss bpftool unshare
t_require_bin "$LBD" "$LBCTL" "$DEMO_BACKEND"

# Every object the build made, loaded by bpftool: tells which programs this
# kernel's verifier refuses, independently of lbd. The objects' maps are
# pinned by name, and libbpf pins those under /sys/fs/bpf itself (bpftool
# has no option for the pin root), so each load runs in a mount namespace
# of its own with a private bpffs there: nothing outlives it, on a guest or
# on a host.
for obj in "$O"/bpf/*.bpf.o; do
	[ -f "$obj" ] || continue
	name=$(basename "$obj" .bpf.o)
	# shellcheck disable=SC2016 # expanded by the inner shell
	if out=$(unshare -m bash -c 'mount -t bpf bpf /sys/fs/bpf && bpftool prog loadall "$1" /sys/fs/bpf/scratch &&
		echo "programs: $(ls /sys/fs/bpf/scratch | wc -l)"' _ "$obj" 2>&1); then
		# what each program costs the verifier here (its limit: 1,000,000)
		insns=$("$O"/tools/bpf_insns "$obj" 2>/dev/null | awk -F, 'NR > 1 { printf "%s%s %s", s, $2, $3; s = ", " }')
		t_pass "load-$name ($(sed -n 's/^programs: //p' <<<"$out") programs${insns:+; verified insns: $insns})"
	else
		t_fail "load-$name" "$(grep -v '^libbpf: ' <<<"$out" | tail -5 | tr '\n' ' ')"
	fi
done

lab_up
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
