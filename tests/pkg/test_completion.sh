#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# tools/lbctl.bash-completion, sourced into this shell, asked for COMPREPLY
# the way bash asks (COMP_LINE, COMP_POINT) for a few lines:
#   - without lbd: commands (from lbctl --help), prefixes, subcommands (from
#     each command's --help), global options, option keys and their values
#   - as root, against a running lbd (tests/net/lib.sh topology): VIP names,
#     backends, worker names, the socket
#     taken from -s; and nothing (quickly) when the socket has no lbd
. "$(dirname "$0")/../net/lib.sh"

t_require_cmd jq timeout
t_require_bin "$LBCTL"
# shellcheck source=../../tools/lbctl.bash-completion
. "$REPO_DIR/tools/lbctl.bash-completion"

# comp LINE: COMPREPLY for the cursor at the end of LINE, sorted, one line.
comp() {
	COMP_LINE=$1 COMP_POINT=${#1} COMPREPLY=()
	_lbctl "$LBCTL" lbctl
	printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}

# expect LINE WANT: the completions of LINE are exactly WANT (sorted).
expect() {
	local got
	got=$(comp "$1")
	t_check "complete '$1'" "got '$got', want '$2'" [ "$got" = "$2" ]
}

expect "lbctl " "backend help maglev node reload stats status stop top vip worker"
expect "lbctl st" "stats status stop"
expect "lbctl -j -n st" "stats status stop"
expect "lbctl --d" "--dry-run"
expect "lbctl vip " "add del list show"
expect "lbctl back " "add del set"
expect "lbctl worker " "list logs reload restart scale start stop"
expect "lbctl node " "drain status undrain"
expect "lbctl help w" "worker"
expect "lbctl stats " "vip"
expect "lbctl backend set 198.18.1.2:3000 " "state= vip= weight="
expect "lbctl backend del 198.18.1.2:3000 " "vip="
# bash breaks words at ":" and "=": only what follows the break is offered
expect "lbctl backend add 198.18.1.2:3000 state=d" "down drain"
expect "lbctl vip add api 198.18.0.11:80 " "forward= method= udp"
expect "lbctl vip add api 198.18.0.11:80 method=r" "round_robin"
expect "lbctl maglev --s" "--seed --size --stats"

if [ "$(id -u)" -ne 0 ]; then
	t_skip "$T_NAME: names from a running lbd" "needs root (lbd in a network namespace)"
	t_done
	exit
fi
t_require_cmd ip nsenter ethtool
t_require_bin "$LBD"

PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
topo_up 2 || { t_fail "$T_NAME" "topology"; exit 1; }
CONF=$TOPO_DIR/lbd.conf
SOCK=$TOPO_DIR/lbd.sock
cat >"$CONF" <<EOF
$(MODE=tc lbd_conf_head)
vip web {
    listen 198.18.0.10:80;
    backend ${BE_ADDRS[1]}:3000;
    backend ${BE_ADDRS[2]}:3000;
}
vip api {
    listen 198.18.0.11:80;
    backend ${BE_ADDRS[2]}:4000;
}
worker sleeper {
    command /bin/sleep 600;
    instances 1;
}
EOF
lbd_start || { t_fail "$T_NAME" "lbd did not start"; exit 1; }

expect "lbctl -s $SOCK vip show " "api web"
expect "lbctl -s $SOCK stats vip w" "web"
expect "lbctl -s $SOCK backend set " "${BE_ADDRS[1]}:3000 ${BE_ADDRS[2]}:3000 ${BE_ADDRS[2]}:4000"
# after the colon only the port is offered, as bash then completes it
expect "lbctl -s $SOCK backend del ${BE_ADDRS[2]}:" "3000 4000"
expect "lbctl -s $SOCK backend add 198.18.1.9:80 vip=" "api web"
expect "lbctl -s $SOCK worker restart " "sleeper"
LBD_SOCKET=$SOCK expect "lbctl vip del a" "api"
start=$SECONDS
expect "lbctl -s $TOPO_DIR/nothing.sock vip show " ""
t_check "no lbd: answered at once" "took $((SECONDS - start)) s" [ $((SECONDS - start)) -le 2 ]

t_done
