# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# What the lab's guest scripts (vm/smoke.sh, vm/virtio.sh, vm/mvm.sh) share, on top of
# tests/net/lib.sh: the topology with two backends and lbd serving one VIP.
. /lab/tests/net/lib.sh

VIP=198.18.0.10

# lab_up: topology with two backends on port 3000, cleanup trap (removes the
# pin root too). Exits the script with a FAIL line if a step fails.
lab_up() {
	PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
	topo_up 2 || { t_fail "topology" "topo_up failed"; t_done; exit 1; }
	trap 'topo_down; rm -rf "$PIN"' EXIT
	start_backends 3000 || { t_fail "backends" "demo_backend did not start"; t_done; exit 1; }
}

# lab_conf MODE IFACES BACKEND...: an lbd.conf on stdout: lbd in MODE on
# IFACES (one word, names separated by spaces), VIP:80 on each BACKEND:3000
# (maglev); control socket, state and pid file under $TOPO_DIR, pins under
# $PIN.
lab_conf() {
	local mode=$1 ifaces=$2 b
	shift 2
	cat <<EOF
lbd {
    interfaces $ifaces;
    mode $mode;
    control $TOPO_DIR/lbd.sock;
    state_dir $TOPO_DIR/state;
    bpffs $PIN;
    pid_file $TOPO_DIR/lbd.pid;
}
vip web {
    listen $VIP:80;
    method maglev;
EOF
	for b in "$@"; do echo "    backend $b:3000;"; done
	echo "}"
}

# lab_lbd MODE IFACE...: lbd in the lb ns, MODE on IFACEs, VIP:80 on both
# backends; sets CONF, SOCK, LBD_PID. Exits with a FAIL line if lbd does not
# answer on its control socket within LBD_START_WAIT (120) s (under TCG on
# a busy host the verifier alone can take a minute), or exits first.
lab_lbd() {
	local mode=$1
	shift
	CONF=$TOPO_DIR/lbd.conf
	SOCK=$TOPO_DIR/lbd.sock
	lab_conf "$mode" "$*" "${BE_ADDRS[1]}" "${BE_ADDRS[2]}" >"$CONF"
	bg_start @lb "$LBD" -f -c "$CONF"
	LBD_PID=$BG_PID
	local t0=$SECONDS
	if ! LBD_START_WAIT=${LBD_START_WAIT:-120} lbd_wait "$LBD_PID" "$LBCTL" -s "$SOCK" status; then
		t_fail "lbd-start" "lbd did not come up in $mode mode: $(bg_log "$LBD_PID" | tail -20 | tr '\n' ' ')"
		t_done
		exit 1
	fi
	echo "lbd answered $((SECONDS - t0)) s after its start"
}
