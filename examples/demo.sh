#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# make demo: lbd balancing real HTTP traffic between network namespaces.
#
#   client 198.18.0.1 --> [lb: lbd, XDP on eth0/eth1] --> be1 198.18.1.2:3000
#                          VIP 198.18.0.10:80              be2 198.18.1.3:3000
#                                                          be3 198.18.1.4:3000
#
# Everything lives in namespaces named lbdemo-*, addresses in 198.18.0.0/15;
# nothing is sent from or to the root namespace. All of it is removed at the
# end, on Ctrl-C, or on any error.
set -u
O=${O:-build}
export TOPO_PREFIX=lbdemo-
. "$(dirname "$0")/../tests/net/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root (network namespaces, XDP): sudo make demo" >&2
	exit 1
fi
for b in "$LBD" "$LBCTL" "$DEMO_BACKEND"; do
	[ -x "$b" ] || { echo "demo: $b is not built (make O=$O)" >&2; exit 1; }
done
mount | grep -q ' /sys/fs/bpf type bpf' || mount -t bpf bpf /sys/fs/bpf

PIN=/sys/fs/bpf/lbdemo
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[36m$ %s\033[0m\n' "$*"; "$@"; }
lbctl() { "$LBCTL" -s "$SOCK" "$@"; }
spread() { # N: N requests with curl from the client, tallied by backend
	local i
	for ((i = 0; i < $1; i++)); do
		in_client curl -s -m 2 "http://$VIP/" || echo "(request failed)"
	done | sort | uniq -c | sed 's/^/    /'
}

# A stale run (killed with -9) may have left namespaces or pins behind.
for ns in $(ip netns list 2>/dev/null | awk '/^lbdemo-/ { print $1 }'); do ip netns del "$ns"; done
rm -rf "$PIN"

cleanup() {
	[ -n "${SOCK:-}" ] && [ -S "$SOCK" ] && lbctl stop >/dev/null 2>&1
	topo_down
	rm -rf "$PIN"
}

step "building namespaces: client, lb, switch, three backends"
topo_up 3 || exit 1
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
start_backends 3000 || exit 1
# curl after curl from one client: without TIME_WAIT reuse each connection
# gets a fresh source port, so the spread shows the hash, not a reused tuple.
in_client sysctl -qw net.ipv4.tcp_tw_reuse=0
echo "backends: ${BE_ADDRS[1]}:3000 ${BE_ADDRS[2]}:3000 ${BE_ADDRS[3]}:3000 (demo_backend: \"Here we are! NAME\")"

VIP=198.18.0.10
SOCK=$TOPO_DIR/lbd.sock
CONF=$TOPO_DIR/lbd.conf
cat >"$CONF" <<EOF
lbd {
    interfaces eth0 eth1;
    mode auto;                  # XDP native, then XDP generic, then TC
    control $SOCK;
    state_dir $TOPO_DIR/state;
    bpffs $PIN;
    pid_file $TOPO_DIR/lbd.pid;
    hash_seed 0x5eed;
}
vip web {
    listen $VIP:80;
    method maglev;
    forward nat;
    backend ${BE_ADDRS[1]}:3000 weight=1;
    backend ${BE_ADDRS[2]}:3000 weight=2;
}
EOF
step "configuration ($CONF)"
sed 's/^/    /' "$CONF"
run "$LBD" -t -c "$CONF" || exit 1

step "starting lbd in the lb namespace"
bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
if ! wait_for -t 10 lbctl status; then
	echo "lbd did not start:" >&2
	bg_log "$LBD_PID" >&2
	exit 1
fi
run lbctl status

step "30 requests to http://$VIP/ (weights 1:2)"
spread 30

step "adding a backend live"
run lbctl backend add ${BE_ADDRS[3]}:3000 weight=1
spread 40

step "draining be1: no new connections, open ones finish"
run lbctl -n backend set ${BE_ADDRS[1]}:3000 state=drain
run lbctl backend set ${BE_ADDRS[1]}:3000 state=drain
spread 30

step "counters"
run lbctl stats
run lbctl status

step "lbd's log"
bg_log "$LBD_PID" | sed 's/^/    /'

step "cleaning up (lbctl stop detaches XDP and removes the pins; namespaces deleted)"
run lbctl stop
for ((i = 0; i < 50; i++)); do kill -0 "$LBD_PID" 2>/dev/null || break; sleep 0.1; done
echo "demo done"
