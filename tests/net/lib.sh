# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# The one network-namespace harness of lbd: every tests/net script, the demo
# and the benchmarks source this file. It builds this topology, nothing of it
# in the root namespace:
#
#   client ns                lb ns                      switch ns     backend ns i
#   eth0 198.18.0.1/24 ---- eth0 198.18.0.254/24
#        2001:2::1/64            2001:2::fe/64
#                           eth1 198.18.1.254/24 ---- lb  [br0]  bei ---- eth0 198.18.1.(i+1)/24
#                                2001:2:0:1::fe/64                            2001:2:0:1::(i+1)/64
#
# The lb ns forwards (IPv4 and IPv6), so before lbd runs the client reaches
# the backends by plain routing. VIPs are lbd's to add (topo_add_vip puts one
# on lb's lo for tests without lbd).
#
# Usage:
#   . "$(dirname "$0")/lib.sh"
#   t_require_root
#   topo_up 3 || exit 1          # installs the cleanup trap
#   start_backends 3000 || exit 1
#   in_client curl -s http://198.18.1.2:3000/ ...
#   t_pass name / t_fail name msg / t_skip name why
#   t_done
#
# Namespaces are named "$TOPO_PREFIX<role>", TOPO_PREFIX defaulting to
# "lbt<pid>-", so parallel runs never collide. Every wait is bounded.

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/../.." && pwd)
O=${O:-build}
case $O in /*) ;; *) O=$REPO_DIR/$O ;; esac
DEMO_BACKEND=${DEMO_BACKEND:-$O/examples/demo_backend}
LBLOAD=${LBLOAD:-$O/tools/lbload}
LBD=${LBD:-$O/lbd}
LBCTL=${LBCTL:-$O/lbctl}

TOPO_PREFIX=${TOPO_PREFIX:-lbt$$-}

# Fixed addresses of the topology (backends: BE_ADDRS/BE6_ADDRS).
CLIENT_ADDR=198.18.0.1
CLIENT6_ADDR=2001:2::1
LB_CLIENT_ADDR=198.18.0.254
LB_CLIENT6_ADDR=2001:2::fe
LB_BACKEND_ADDR=198.18.1.254
LB_BACKEND6_ADDR=2001:2:0:1::fe

NS_CLIENT= NS_LB= NS_SW=
NS_BE=() BE_ADDRS=() BE6_ADDRS=()  # indexed 1..NBACKENDS
NBACKENDS=0
TOPO_DIR=                          # scratch dir of this run (bg_start logs)
BG_PIDS=()                         # pids started by bg_start
BG_PID=                            # pid of the last bg_start

# ---------------------------------------------------------------- reporting

T_PASSED=0 T_FAILED=0 T_SKIPPED=0
T_NAME=${T_NAME:-$(basename "$0" .sh)}

# t_pass NAME: prints "PASS: NAME".
t_pass() { echo "PASS: $1"; T_PASSED=$((T_PASSED + 1)); }

# t_fail NAME MSG: prints "FAIL: NAME: MSG".
t_fail() { echo "FAIL: $1: $2"; T_FAILED=$((T_FAILED + 1)); }

# t_skip NAME WHY: prints "SKIP: NAME: WHY".
t_skip() { echo "SKIP: $1: $2"; T_SKIPPED=$((T_SKIPPED + 1)); }

# t_check NAME MSG CMD...: t_pass NAME if CMD succeeds, else t_fail NAME MSG.
t_check() {
	local name=$1 msg=$2
	shift 2
	if "$@"; then t_pass "$name"; else t_fail "$name" "$msg"; fi
}

# t_require_root: not root -> one SKIP line for the whole script, exit 0.
t_require_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	t_skip "$T_NAME" "needs root (network namespaces)"
	exit 0
}

# t_require_cmd CMD...: a missing command -> SKIP line, exit 0.
t_require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && continue
		t_skip "$T_NAME" "'$c' not installed (make deps)"
		exit 0
	done
}

# t_require_bin PATH...: a binary not built -> FAIL line, exit 1.
t_require_bin() {
	local b
	for b in "$@"; do
		[ -x "$b" ] && continue
		t_fail "$T_NAME" "$b not built (make O=$O)"
		exit 1
	done
}

# t_done: prints the tally; returns non-zero if any t_fail was called.
t_done() {
	echo "$T_NAME: $T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
	[ "$T_FAILED" -eq 0 ]
}

# wait_for [-t SECONDS] CMD...: runs CMD every 0.1 s until it succeeds or
# SECONDS (default $WAIT_TIMEOUT or 5) pass. Returns 0 or 1 (timed out).
wait_for() {
	local secs=${WAIT_TIMEOUT:-5} end
	if [ "${1:-}" = -t ]; then secs=$2; shift 2; fi
	# a deadline, not a count of tries: a slow CMD must not stretch the wait
	end=$((SECONDS + secs))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- namespaces

# in_ns NS CMD...: runs CMD in namespace NS (ip netns exec: fresh /sys).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# in_client CMD... / in_lb CMD...: CMD in the client / lb namespace.
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_lb() { ip netns exec "$NS_LB" "$@"; }
# in_be I CMD...: CMD in backend namespace I (1..NBACKENDS).
in_be() { local i=$1; shift; ip netns exec "${NS_BE[$i]}" "$@"; }
# lb_nsenter CMD...: CMD in the lb network namespace only, keeping the host's
# mounts (/sys/fs/bpf): the way lbd must be started so its pins outlive it.
lb_nsenter() { nsenter --net="/run/netns/$NS_LB" "$@"; }

# bg_start NS CMD...: starts CMD in the background in namespace NS (via
# ip netns exec; NS "@lb" means lb_nsenter, "-" the current namespace),
# output to $TOPO_DIR/bg.<pid>.log. Sets BG_PID; topo_down kills it.
bg_start() {
	local ns=$1 log
	shift
	log=$(mktemp "$TOPO_DIR/bg.XXXXXX")
	case $ns in
	-) "$@" >"$log" 2>&1 </dev/null & ;;
	@lb) nsenter --net="/run/netns/$NS_LB" "$@" >"$log" 2>&1 </dev/null & ;;
	*) ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null & ;;
	esac
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
	echo "$BG_PID" >>"$TOPO_DIR/pids"
	# The log keeps its name: the child may not have opened it yet, and a
	# rename before that open would leave its output in a file nobody reads.
	echo "$BG_PID $log" >>"$TOPO_DIR/logs"
}

# bg_log PID: prints the output of a process started by bg_start.
bg_log() {
	local f
	f=$(awk -v p="$1" '$1 == p { f = $2 } END { print f }' "$TOPO_DIR/logs" 2>/dev/null)
	[ -n "$f" ] && cat "$f" 2>/dev/null
}

# bg_stop PID...: SIGTERM, up to 3 s grace, then SIGKILL. Bounded.
bg_stop() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		for ((i = 0; i < 30; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

# Names of all namespaces this run created (those that exist).
_topo_namespaces() {
	ip netns list 2>/dev/null | awk -v p="$TOPO_PREFIX" 'index($1, p) == 1 { print $1 }'
}

_ns_setup() { # NS: create, lo up, no IPv6 DAD, quiet defaults
	ip netns add "$1"
	in_ns "$1" ip link set lo up
	in_ns "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# GRO on: XDP_REDIRECT/XDP_TX into a veth needs it (or an XDP program) on the
# receiving side. TX checksum offload off: a veth hands the peer a packet
# whose L4 checksum is only the pseudo-header part (CHECKSUM_PARTIAL), and in
# XDP that state is lost, so an XDP NAT's incremental update of it would send
# a wrong checksum. Real NICs deliver complete checksums.
_veth_tune() { # NS DEV
	in_ns "$1" ethtool -K "$2" gro on tx off >/dev/null
	in_ns "$1" ip link set "$2" up
}

# Enslaving a veth to the bridge leaves its peer without XDP_REDIRECT
# (ndo_xdp_xmit) support even though GRO is on, and frames redirected into the
# peer are dropped (seen on 6.18); toggling GRO afterwards re-enables it.
_gro_refresh() { # NS DEV
	in_ns "$1" ethtool -K "$2" gro off >/dev/null
	in_ns "$1" ethtool -K "$2" gro on >/dev/null
}

# TOPO_QUEUES (default 1): rx/tx queues of every veth; a veth hands a frame
# to the rx queue of the sending CPU, so N queues let N CPUs work at once.
_veth() { # NS1 DEV1 NS2 DEV2
	local q=${TOPO_QUEUES:-1}
	ip -n "$1" link add "$2" numtxqueues "$q" numrxqueues "$q" type veth \
		peer name "$4" netns "$3" numtxqueues "$q" numrxqueues "$q"
	_veth_tune "$1" "$2"
	_veth_tune "$3" "$4"
}

_addr() { # NS DEV V4/LEN V6/LEN
	in_ns "$1" ip addr add "$3" dev "$2"
	in_ns "$1" ip -6 addr add "$4" dev "$2" nodad
}

# Runs in a subshell with set -e: any failing step fails topo_up.
_topo_build() {
	set -e
	local i
	for ns in "$NS_CLIENT" "$NS_LB" "$NS_SW" "${NS_BE[@]}"; do
		_ns_setup "$ns"
	done

	_veth "$NS_CLIENT" eth0 "$NS_LB" eth0
	_addr "$NS_CLIENT" eth0 "$CLIENT_ADDR/24" "$CLIENT6_ADDR/64"
	in_client ip route add default via "$LB_CLIENT_ADDR"
	in_client ip -6 route add default via "$LB_CLIENT6_ADDR"
	# Many short connections from one address (lbload, benchmarks).
	in_client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1

	in_ns "$NS_SW" ip link add br0 type bridge stp_state 0 mcast_snooping 0
	in_ns "$NS_SW" ip link set br0 up
	in_ns "$NS_SW" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1

	_veth "$NS_LB" eth1 "$NS_SW" lb
	in_ns "$NS_SW" ip link set lb master br0
	_gro_refresh "$NS_SW" lb
	_addr "$NS_LB" eth0 "$LB_CLIENT_ADDR/24" "$LB_CLIENT6_ADDR/64"
	_addr "$NS_LB" eth1 "$LB_BACKEND_ADDR/24" "$LB_BACKEND6_ADDR/64"
	in_lb sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0

	for ((i = 1; i <= NBACKENDS; i++)); do
		_veth "${NS_BE[$i]}" eth0 "$NS_SW" "be$i"
		in_ns "$NS_SW" ip link set "be$i" master br0
		_gro_refresh "$NS_SW" "be$i"
		_addr "${NS_BE[$i]}" eth0 "${BE_ADDRS[$i]}/24" "${BE6_ADDRS[$i]}/64"
		in_be "$i" ip route add default via "$LB_BACKEND_ADDR"
		in_be "$i" ip -6 route add default via "$LB_BACKEND6_ADDR"
	done
}

# topo_up [NBACKENDS]: builds the topology above with NBACKENDS (default 3)
# backends, sets NS_* / BE_ADDRS / BE6_ADDRS and installs the cleanup trap
# (topo_down on EXIT, INT, TERM). On failure cleans up and returns 1.
topo_up() {
	local n=${1:-3} i
	NBACKENDS=$n
	NS_CLIENT=${TOPO_PREFIX}client
	NS_LB=${TOPO_PREFIX}lb
	NS_SW=${TOPO_PREFIX}sw
	NS_BE=() BE_ADDRS=() BE6_ADDRS=()
	for ((i = 1; i <= n; i++)); do
		NS_BE[$i]=${TOPO_PREFIX}be$i
		BE_ADDRS[$i]=198.18.1.$((i + 1))
		BE6_ADDRS[$i]=2001:2:0:1::$((i + 1))
	done
	if ((n < 1 || n > 200)); then
		echo "topo_up: NBACKENDS must be 1..200" >&2
		return 1
	fi
	if [ -n "$(_topo_namespaces)" ]; then
		echo "topo_up: namespaces with prefix $TOPO_PREFIX already exist" >&2
		return 1
	fi
	TOPO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/${TOPO_PREFIX}XXXXXX") || return 1
	trap topo_down EXIT
	trap 'topo_down; trap - EXIT; exit 130' INT
	trap 'topo_down; trap - EXIT; exit 143' TERM
	if ! (_topo_build); then
		echo "topo_up: building the topology failed" >&2
		topo_down
		return 1
	fi
}

# topo_add_vip ADDR: puts ADDR/32 (or /128) on lb's lo, for tests without lbd.
topo_add_vip() {
	case $1 in
	*:*) in_lb ip -6 addr add "$1/128" dev lo nodad ;;
	*) in_lb ip addr add "$1/32" dev lo ;;
	esac
}

# topo_down: stops bg_start processes and anything else left in this run's
# namespaces, deletes the namespaces and the scratch dir. Idempotent.
topo_down() {
	local ns pids p
	if [ -n "$TOPO_DIR" ] && [ -f "$TOPO_DIR/pids" ]; then
		mapfile -t pids <"$TOPO_DIR/pids"
		bg_stop "${pids[@]}"
	fi
	BG_PIDS=()
	for ns in $(_topo_namespaces); do
		# Stragglers (children of tests, lbd workers): ours by construction.
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$TOPO_DIR" ] && [ -d "$TOPO_DIR" ]; then
		[ -n "${TOPO_KEEP_LOGS:-}" ] || rm -rf "$TOPO_DIR"
	fi
	# an lbd of this run pins under PIN (see lbd_start)
	case ${PIN:-} in /sys/fs/bpf/?*) rm -rf "$PIN" ;; esac
	TOPO_DIR=
	return 0
}

# wait_http URL SECONDS: until an HTTP GET of URL from the client answers
# (wait_for counts tries, not seconds: a 1 s curl would stretch it).
wait_http() {
	local end=$((SECONDS + $2))
	while ((SECONDS < end)); do
		in_client curl -s -m 1 -o /dev/null "$1" && return 0
		sleep 0.2
	done
	return 1
}

# stream_mbps ADDR PORT MIB: MB/s of one MIB MiB TCP stream from the client
# to ADDR:PORT (something there must swallow it: socat ... OPEN:/dev/null);
# 0 when it failed. Bounded at 120 s.
stream_mbps() {
	local t0 t1
	t0=$(date +%s%N)
	in_client timeout 120 bash -c "head -c $(($3 << 20)) /dev/zero | socat -u -b 262144 - TCP:$1:$2" ||
		{ echo 0; return; }
	t1=$(date +%s%N)
	awk -v mb="$3" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", mb / (ns / 1e9) }'
}

# ---------------------------------------------------------------- backends

# _listening NS PORT: a TCP and a UDP socket listen on PORT in NS.
_listening() {
	in_ns "$1" ss -Hltn "sport = :$2" | grep -q . &&
		in_ns "$1" ss -Hlun "sport = :$2" | grep -q .
}

# start_backends [PORT] [ARGS...]: starts demo_backend in every backend ns,
# TCP and UDP on PORT (default 3000, v4 and v6), named be1..beN, extra ARGS
# passed on (--status 500, --rst, ...). BE_PIDS[i] is backend i's pid.
# Waits until each listens; returns 1 if one does not within 5 s.
start_backends() {
	local port=${1:-3000} i
	shift || true
	BE_PIDS=()
	for ((i = 1; i <= NBACKENDS; i++)); do
		start_backend "$i" "$port" "$@" || return 1
	done
}

# start_backend I [PORT] [ARGS...]: (re)starts backend I's demo_backend.
start_backend() {
	local i=$1 port=${2:-3000}
	shift 2 || shift
	[ -z "${BE_PIDS[$i]:-}" ] || bg_stop "${BE_PIDS[$i]}"
	bg_start "${NS_BE[$i]}" "$DEMO_BACKEND" -n "be$i" \
		-l "0.0.0.0:$port" -l "[::]:$port" -u "0.0.0.0:$port" -u "[::]:$port" "$@"
	BE_PIDS[$i]=$BG_PID
	if ! wait_for _listening "${NS_BE[$i]}" "$port"; then
		echo "start_backend: be$i does not listen on $port:" >&2
		bg_log "$BG_PID" >&2
		return 1
	fi
}

# stop_backend I: stops backend I's demo_backend.
stop_backend() {
	[ -z "${BE_PIDS[$1]:-}" ] || bg_stop "${BE_PIDS[$1]}"
	BE_PIDS[$1]=
}

# ---------------------------------------------------------------- lbd

# The tests that run lbd set CONF (its configuration), SOCK (its control
# socket) and PIN (its bpffs directory, one per run: topo_down removes it).

# lbctl ARGS...: lbctl on this run's socket.
lbctl() { "$LBCTL" -s "$SOCK" "$@"; }
lbd_up() { lbctl status >/dev/null 2>&1; }

# _alive PID: PID runs (a zombie, not yet reaped by this shell, does not).
_alive() {
	local st
	st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

# lbd_wait PID CMD...: runs CMD every 0.1 s until it succeeds (0), for at
# most LBD_START_WAIT seconds (default 30: loading and verifying the BPF
# objects takes seconds on a loaded machine, minutes under emulation), and
# gives up at once (1) when PID (lbd, or whatever CMD waits for) has exited:
# a generous bound costs nothing when the start fails.
lbd_wait() {
	local pid=$1 end=$((SECONDS + ${LBD_START_WAIT:-30}))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		_alive "$pid" || return 1
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# lbd_start: lbd -f -c $CONF in the lb namespace (nsenter: the host's bpffs
# stays visible, so pins outlive it); waits until it answers (lbd_wait).
# Sets LBD_PID.
lbd_start() {
	bg_start @lb "$LBD" -f -c "$CONF"
	LBD_PID=$BG_PID
	if ! lbd_wait "$LBD_PID" lbd_up; then
		_alive "$LBD_PID" && echo "lbd did not answer within ${LBD_START_WAIT:-30} s:" >&2
		_alive "$LBD_PID" || echo "lbd exited before it answered:" >&2
		bg_log "$LBD_PID" >&2
		return 1
	fi
}

# lbd_topo_up [NBACKENDS] [PORT]: the usual start of an lbd test: the
# topology with NBACKENDS backends (3) serving PORT (3000; none: the test
# starts what serves itself), and CONF, SOCK, PIN set for this run (topo_down
# removes all of it). Fails the test if any step fails.
lbd_topo_up() {
	PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
	topo_up "${1:-3}" || { t_fail "$T_NAME" "topology"; exit 1; }
	[ "${2:-}" = none ] || start_backends "${2:-3000}" || { t_fail "$T_NAME" "backends"; exit 1; }
	CONF=$TOPO_DIR/lbd.conf
	SOCK=$TOPO_DIR/lbd.sock
}

# lbd_conf_head [LINE...]: the lbd block of this run (the interfaces
# LBD_IFACES, eth0 and eth1 of the lb namespace by default, $MODE, this
# run's socket, state, pins and pid file) with LINEs added inside it. Print
# the VIP blocks after it.
lbd_conf_head() {
	local l
	printf 'lbd {\n    interfaces %s;\n    mode %s;\n    control %s;\n' \
		"${LBD_IFACES:-eth0 eth1}" "${MODE:-xdp}" "$SOCK"
	printf '    state_dir %s/state;\n    bpffs %s;\n    pid_file %s/lbd.pid;\n' \
		"$TOPO_DIR" "$PIN" "$TOPO_DIR"
	for l in "$@"; do printf '    %s\n' "$l"; done
	printf '}\n'
}

# keep_ok NAME LBLOAD-PID: t_pass NAME if the keep connections of that
# lbload (bg_start) neither failed nor moved to another backend.
keep_ok() {
	local out rc
	wait "$2"; rc=$?
	out=$(bg_log "$2")
	if [ "$(field keep_failed "$out")" = 0 ] && [ "$(field keep_switched "$out")" = 0 ] &&
		[ -n "$(field keep "$out")" ]; then
		t_pass "$1 ($(grep -o 'keep=[0-9]* keep_failed=[0-9]* keep_switched=[0-9]*' <<<"$out"))"
	else
		# the summary and the first failures, not the per-connection list
		t_fail "$1" "rc=$rc: $(grep -m1 'keep=' <<<"$out"; grep -m3 'failed:' <<<"$out";
			grep -o 'failed: [a-z_]*' <<<"$out" | sort | uniq -c | tr '\n' ' ')"
	fi
}

# count NAME OUTPUT: what lbload printed for backend NAME (0 if nothing).
count() { awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }' <<<"$2"; }
# field KEY OUTPUT: the number of "KEY=N" in lbload's summary.
field() { grep -o "$1=[0-9]*" <<<"$2" | head -1 | cut -d= -f2; }
# within N EXPECTED PERCENT: |N - EXPECTED| <= PERCENT% of EXPECTED.
within() {
	awk -v n="$1" -v e="$2" -v p="$3" 'BEGIN { d = n - e; if (d < 0) d = -d; exit !(d <= e * p / 100) }'
}
