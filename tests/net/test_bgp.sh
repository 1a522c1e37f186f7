#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Scale-out behind BGP/ECMP (issue 10), in namespaces, all bounded:
#
#   client 198.18.0.1 -- router 198.18.0.254 | 198.18.10.1 --[fabric]--+-- n1 198.18.10.11 | 198.18.1.251 --+
#                        BIRD2, ECMP (merge paths,                     +-- n2 198.18.10.12 | 198.18.1.252 --+-- be1..be3
#                        L4 multipath hash, fixed seed)                +-- n3 198.18.10.13 | 198.18.1.253 --+   198.18.1.2..4
#
# Three lbd nodes (XDP, full NAT: each SNATs to its own address), each with
# its own BIRD2 started by lbd (bgp block), announce VIP 198.18.100.10 to the
# router's BIRD2 (eBGP, BFD). Asserted:
#   - the router has one next hop per node for the VIP
#   - a node whose backends all fail their health checks withdraws (and
#     comes back), drain withdraws, undrain announces again
#   - per-node share of new connections within 10% of 1/N
#   - status (text and JSON) and metrics show the node and session state
#   - SIGTERM drains before lbd exits
#   - full NAT with flow sync (sync_peer): a drain breaks 0 of KEEP
#     long-lived connections (the others send n1's moved flows on to it)
#   - forward ipip (backends with lbd --decap answer the client directly):
#     a drain and a kill -9 of a node each break 0 connections
# Measured and printed (BGP_FIGURES=FILE appends "key value" lines there,
# for tools/bench/cluster.sh): established connections broken by a drain
# with plain withdrawal (default multipath, and a resilient nexthop group
# put in the router by hand), with flow sync, by a node's link loss and by
# a kill -9, and the router's failover times.
# shellcheck source=tests/net/lib.sh
. "$(dirname "$0")/lib.sh"

t_require_root
t_require_cmd ip nsenter ethtool curl ss jq bird birdc
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

N=3
VIP=198.18.100.10
VIP_TUN=198.18.100.11     # forward ipip
KEEP=${BGP_KEEP:-60}        # long-lived connections held through each scenario
FIG=${BGP_FIGURES:-}
NS_R="" NS_N=()
PINS=()

cleanup() {
	local p
	topo_down
	for p in "${PINS[@]}"; do rm -rf "$p"; done
}

fig() { # KEY VALUE: a measured figure
	echo "figure: $1 $2"
	[ -z "$FIG" ] || echo "$1 $2" >>"$FIG"
}

build() {
	set -e
	local i
	for ns in "$NS_CLIENT" "$NS_R" "$NS_SW" "${NS_N[@]:1}" "${NS_BE[@]:1}"; do _ns_setup "$ns"; done
	in_ns "$NS_SW" ip link add fab type bridge stp_state 0
	in_ns "$NS_SW" ip link add bes type bridge stp_state 0
	in_ns "$NS_SW" ip link set fab up
	in_ns "$NS_SW" ip link set bes up

	_veth "$NS_CLIENT" eth0 "$NS_R" eth0
	in_client ip addr add "$CLIENT_ADDR/24" dev eth0
	in_client ip route add default via 198.18.0.254
	in_client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
	in_ns "$NS_R" ip addr add 198.18.0.254/24 dev eth0
	_veth "$NS_R" eth1 "$NS_SW" r
	in_ns "$NS_SW" ip link set r master fab
	in_ns "$NS_R" ip addr add 198.18.10.1/24 dev eth1
	in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
	# a fixed seed: the same flows take the same paths in every run
	in_ns "$NS_R" sysctl -qw net.ipv4.fib_multipath_hash_seed=4242 2>/dev/null || true

	for ((i = 1; i <= N; i++)); do
		_veth "${NS_N[$i]}" eth0 "$NS_SW" "n${i}f"
		_veth "${NS_N[$i]}" eth1 "$NS_SW" "n${i}b"
		in_ns "$NS_SW" ip link set "n${i}f" master fab
		in_ns "$NS_SW" ip link set "n${i}b" master bes
		_gro_refresh "$NS_SW" "n${i}f"
		_gro_refresh "$NS_SW" "n${i}b"
		in_ns "${NS_N[$i]}" ip addr add "198.18.10.1$i/24" dev eth0
		in_ns "${NS_N[$i]}" ip addr add "198.18.1.25$i/24" dev eth1
		in_ns "${NS_N[$i]}" ip route add default via 198.18.10.1
		in_ns "${NS_N[$i]}" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	done
	for ((i = 1; i <= NBACKENDS; i++)); do
		_veth "${NS_BE[$i]}" eth0 "$NS_SW" "be$i"
		in_ns "$NS_SW" ip link set "be$i" master bes
		_gro_refresh "$NS_SW" "be$i"
		in_ns "${NS_BE[$i]}" ip addr add "${BE_ADDRS[$i]}/24" dev eth0
		in_ns "${NS_BE[$i]}" sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
			net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.eth0.rp_filter=0
		in_ns "${NS_BE[$i]}" ip addr add "$VIP_TUN/32" dev lo
		in_ns "${NS_BE[$i]}" ip route add 198.18.0.0/24 via 198.18.1.1
	done
	# the router's leg on the backends' segment: ipip backends answer through it
	_veth "$NS_R" eth2 "$NS_SW" rb
	in_ns "$NS_SW" ip link set rb master bes
	in_ns "$NS_R" ip addr add 198.18.1.1/24 dev eth2
}

router_conf() {
	local i
	cat <<EOF
router id 198.18.10.1;
log stderr all;
protocol device { }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
protocol bfd {
	interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };
}
# RFC 8326: a route with GRACEFUL_SHUTDOWN loses to the others
filter from_node {
	if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
	accept;
}
template bgp node {
	local 198.18.10.1 as 65000;
	bfd on;
	connect retry time 2;
	error wait time 1, 10;
	ipv4 { import filter from_node; export none; };
}
EOF
	for ((i = 1; i <= N; i++)); do
		echo "protocol bgp n$i from node { neighbor 198.18.10.1$i as 65001; }"
	done
}

node_conf() { # I [FORWARD]
	local i=$1 b
	cat <<EOF
lbd {
    interfaces eth0 eth1;
    mode xdp;
    control $TOPO_DIR/n$i/lbd.sock;
    state_dir $TOPO_DIR/n$i/state;
    bpffs ${PINS[$i]};
    pid_file $TOPO_DIR/n$i/lbd.pid;
    metrics 127.0.0.1:9464;
    bgp {
        router_id 198.18.10.1$i;
        local_as 65001;
        neighbor 198.18.10.1 as=65000;
        bfd on;
        bfd_multiplier 5;
        community 65001:$i;
        bird_dir $TOPO_DIR/n$i/bird;
        drain_grace 1s;
        drain_quiet 2s;
        stop_drain 8s;
$(for ((k = 1; SYNC && k <= N; k++)); do [ $k = "$i" ] || echo "        sync_peer 198.18.10.1$k;"; done)
    }
}
vip web {
    listen $VIP:80;
    health_check tcp interval=300ms timeout=250ms rise=1 fall=2;
EOF
	for ((b = 1; b <= NBACKENDS; b++)); do
		echo "    backend ${BE_ADDRS[$b]}:3000 max_fails=0;"
	done
	echo "}"
	# forward ipip: the backends (lbd --decap) answer the client directly
	printf 'vip tun {\n    listen %s:3000;\n    forward ipip;\n' "$VIP_TUN"
	echo "    health_check tcp interval=300ms timeout=250ms rise=1 fall=2;"
	for ((b = 1; b <= NBACKENDS; b++)); do
		echo "    backend ${BE_ADDRS[$b]}:3000 max_fails=0;"
	done
	echo "}"
}

# jq_ok JSON FILTER: FILTER is true of JSON.
jq_ok() { jq -e "$2" >/dev/null <<<"$1"; }
nctl() { local i=$1; shift; "$LBCTL" -s "$TOPO_DIR/n$i/lbd.sock" "$@"; }

SYNC=0   # 1: nodes push their flows to each other when they drain
NODE_PID=()
node_start() { # I
	local i=$1
	mkdir -p "$TOPO_DIR/n$i"
	node_conf "$i" >"$TOPO_DIR/n$i/lbd.conf"
	bg_start - nsenter --net="/run/netns/${NS_N[$i]}" "$LBD" -f -c "$TOPO_DIR/n$i/lbd.conf"
	NODE_PID[$i]=$BG_PID
	wait_for -t 15 nctl "$i" status || { echo "n$i did not come up:"; bg_log "$BG_PID"; return 1; }
	# BFD at 100 ms wants its packets answered in time on a loaded host
	wait_for -t 5 eval '[ "$(nctl '"$i"' -j status | jq .node.bgp.bird_pid)" -gt 0 ]'
	renice -n -10 -p "$(nctl "$i" -j status | jq .node.bgp.bird_pid)" >/dev/null 2>&1
	return 0
}

# next hops of the VIP's route in the router, as "198.18.10.11 198.18.10.12"
nexthops() {
	in_ns "$NS_R" ip -4 route show "$VIP/32" 2>/dev/null | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | xargs
}
want_nexthops() { [ "$(nexthops)" = "$1" ]; }
all_nodes() { local i s=""; for ((i = 1; i <= N; i++)); do s+="198.18.10.1$i "; done; echo "${s% }"; }
without() { all_nodes | tr ' ' '\n' | grep -vx "198.18.10.1$1" | xargs; }

new_flows() { # I: the VIP's new flows on node I
	nctl "$1" -j stats | jq '[.vips[].new_flows] | add // 0' 2>/dev/null || echo 0
}

# keep_run SECONDS ACTION...: KEEP long-lived connections and a stream of
# new ones for SECONDS; ACTION runs after 2 s. Prints lbload's output;
# KEEP_FAILED, NEW_FAILED are set.
keep_run() {
	local secs=$1 out pid
	shift
	out=$TOPO_DIR/keep.out
	in_client timeout $((secs + 20)) "$LBLOAD" -c 100000000 -p 2 -t 1000 --duration "$secs" \
		--keep "$KEEP" --keep-period 100 "${KEEP_TARGET:-$VIP:80}" >"$out" 2>"$out.err" &
	pid=$!
	sleep 2
	"$@"
	wait "$pid"
	KEEP_FAILED=$(field keep_failed "$(cat "$out")")
	NEW_FAILED=$(field failed "$(cat "$out")")
	KEEP_FAILED=${KEEP_FAILED:-$KEEP} NEW_FAILED=${NEW_FAILED:-0}
}

# ------------------------------------------------------------------ setup

TOPO_PREFIX=${TOPO_PREFIX:-lbg$$-}
NS_CLIENT=${TOPO_PREFIX}client NS_R=${TOPO_PREFIX}router NS_SW=${TOPO_PREFIX}sw
NBACKENDS=3
for ((i = 1; i <= N; i++)); do
	NS_N[$i]=${TOPO_PREFIX}n$i
	PINS[$i]=/sys/fs/bpf/${TOPO_PREFIX}n$i
done
for ((i = 1; i <= NBACKENDS; i++)); do
	NS_BE[$i]=${TOPO_PREFIX}be$i
	BE_ADDRS[$i]=198.18.1.$((i + 1))
done
[ -z "$(_topo_namespaces)" ] || { t_fail "$T_NAME" "namespaces $TOPO_PREFIX* exist"; exit 1; }
TOPO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/${TOPO_PREFIX}XXXXXX")
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
(build) || { t_fail "$T_NAME" "topology"; exit 1; }
for ((i = 1; i <= NBACKENDS; i++)); do
	bg_start "${NS_BE[$i]}" "$DEMO_BACKEND" -n "be$i" -l "0.0.0.0:3000"
	wait_for eval "in_ns ${NS_BE[$i]} ss -Hltn 'sport = :3000' | grep -q ." ||
		{ t_fail "$T_NAME" "be$i does not listen"; exit 1; }
done

router_conf >"$TOPO_DIR/router.conf"
bg_start - nsenter --net="/run/netns/$NS_R" bird -f -c "$TOPO_DIR/router.conf" -s "$TOPO_DIR/router.ctl"
rbirdc() { birdc -s "$TOPO_DIR/router.ctl" "$@"; }
wait_for -t 10 rbirdc show status || { t_fail "router BIRD" "$(bg_log "$BG_PID")"; exit 1; }
renice -n -10 -p "$BG_PID" >/dev/null 2>&1

for ((i = 1; i <= N; i++)); do
	node_start "$i" || { t_fail "$T_NAME" "lbd n$i"; exit 1; }
done

# ------------------------------------------------------------------ routes

if wait_for -t 30 want_nexthops "$(all_nodes)"; then
	t_pass "router: one next hop per node for $VIP ($(nexthops))"
else
	t_fail "router: one next hop per node" "have '$(nexthops)'; $(rbirdc show protocols 2>&1 | tr '\n' ' ')"
	for ((i = 1; i <= N; i++)); do nctl "$i" status; bg_log "${NODE_PID[$i]}" | tail -20; done
	exit 1
fi

st=$(nctl 1 status)
if grep -q "^node: active" <<<"$st" && grep -Eq "198\.18\.10\.1 .* up +Established" <<<"$st"; then
	t_pass "status: node active, session established"
else
	t_fail "status: node active, session established" "$st"
fi
js=$(nctl 1 -j status)
t_check "status -j: node and session" "$(jq -c .node <<<"$js")" \
	jq_ok "$js" '.node.state == "active" and .node.announced == ["198.18.100.10", "198.18.100.11"] and
		.node.bgp.sessions[0].established and .node.bgp.bird_pid > 0'
m=$(in_ns "${NS_N[1]}" curl -s -m 5 http://127.0.0.1:9464/metrics)
t_check "metrics: lbd_node_state, lbd_bgp_session_up" "$(grep -E '^lbd_(node|bgp)' <<<"$m")" \
	grep -q '^lbd_bgp_session_up{neighbor="198.18.10.1"} 1' <<<"$m"
# the communities reach the router
t_check "router sees community 65001:2 on n2's route" "$(rbirdc show route "$VIP/32" all 2>&1)" \
	grep -q "(65001,2)" <<<"$(rbirdc show route "$VIP/32" all protocol n2 2>&1)"

# ------------------------------------------------------------------ share

# A BFD flap on a loaded host takes a node out for a moment: such a round
# says nothing about the spread, and is measured again (at most 3 times).
for ((try = 1; try <= 3; try++)); do
	wait_for -t 20 want_nexthops "$(all_nodes)"
	for ((i = 1; i <= N; i++)); do F0[$i]=$(new_flows "$i"); done
	out=$(in_client timeout 60 "$LBLOAD" -c 3000 -p 8 -t 1000 "$VIP:80" 2>&1)
	total=0
	for ((i = 1; i <= N; i++)); do D[$i]=$(($(new_flows "$i") - F0[i])); total=$((total + D[i])); done
	flaps=$(rbirdc show protocols | awk '$1 ~ /^n[0-9]/ && $6 != "Established"' | wc -l)
	want_nexthops "$(all_nodes)" && [ "$flaps" = 0 ] && break
	echo "info: share round $try: the router's next hops changed meanwhile; again"
done
ok=1 shares=""
for ((i = 1; i <= N; i++)); do
	shares+="n$i=${D[$i]} "
	within "${D[$i]}" $((total / N)) 10 || ok=0
	fig "share_n$i" "$(awk -v a="${D[$i]}" -v t="$total" 'BEGIN { printf "%.3f", t ? a / t : 0 }')"
done
if [ $ok = 1 ] && [ "$(field failed "$out")" = 0 ]; then
	t_pass "share of new connections within 10% of 1/$N ($shares)"
else
	t_fail "share of new connections within 10% of 1/$N" "$shares; $(tail -1 <<<"$out")"
fi

# ------------------------------------------------------------------ health

# n3 loses its way to every backend (its backend-side link), the others do not
in_ns "${NS_N[3]}" ip link set eth1 down
t0=$(date +%s%N)
if wait_for -t 10 want_nexthops "$(without 3)"; then
	t_pass "a node whose backends are all down withdraws ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else
	t_fail "a node whose backends are all down withdraws" "next hops '$(nexthops)'"
fi
in_ns "${NS_N[3]}" ip link set eth1 up
_gro_refresh "${NS_N[3]}" eth1
t_check "it announces again once they are back" "next hops '$(nexthops)'" \
	wait_for -t 15 want_nexthops "$(all_nodes)"

# ------------------------------------------------------------------ drain

out=$(nctl 2 node drain)
t_check "node drain" "$out" grep -q "draining" <<<"$out"
st=$(nctl 2 -j node status)
t_check "status: draining with graceful shutdown first" "$st" \
	jq_ok "$st" '.state == "draining" and .graceful_shutdown'
t_check "drain withdraws (next hops without n2)" "next hops '$(nexthops)'" \
	wait_for -t 10 want_nexthops "$(without 2)"
t_check "status: drained once no new flow arrives" "$(nctl 2 node status)" \
	wait_for -t 10 eval '[ "$(nctl 2 -j node status | jq -r .state)" = drained ]'
st=$(nctl 2 node status)
t_check "status text: drained, time since the last new flow" "$st" \
	grep -Eq "^node: drained .*last new flow" <<<"$st"
nctl 2 node undrain >/dev/null
t_check "undrain announces again" "next hops '$(nexthops)'" \
	wait_for -t 10 want_nexthops "$(all_nodes)"

# The baseline: nothing happens, nothing breaks.
keep_run 6 true
fig idle_keep_broken "$KEEP_FAILED"
t_check "baseline: $KEEP long-lived connections and new ones, nothing changes, none breaks" \
	"$KEEP_FAILED long-lived and $NEW_FAILED new failed: $(cat "$TOPO_DIR/keep.out.err" | tail -3)" \
	[ "$KEEP_FAILED" = 0 ] && [ "$NEW_FAILED" = 0 ]

# Established connections through a drain: plain withdrawal, full NAT.
# The router moves the drained node's flows to the others, which have no
# state for them. Linux's default multipath (hash-threshold) also moves
# some flows between the nodes that stay when the next hop that leaves is
# not the last one: n1 (the first) is drained.
wait_for -t 5 want_nexthops "$(all_nodes)"
keep_run 12 eval "nctl 1 node drain >/dev/null"
fig drain_keep_broken_fullnat "$KEEP_FAILED"
fig drain_keep_total "$KEEP"
fig drain_new_failed_fullnat "$NEW_FAILED"
echo "info: drain of n1 with $KEEP long-lived connections: $KEEP_FAILED broken, $NEW_FAILED new failed"
nctl 1 node undrain >/dev/null
wait_for -t 10 want_nexthops "$(all_nodes)"

# The same withdrawal with a resilient nexthop group in the router: BIRD
# 2.0 installs plain multipath routes, so its kernel protocol is switched
# off and the route is put in by hand (ip nexthop ... type resilient), then
# n1 leaves the group as a withdrawal would take it out: only n1's buckets
# move.
resilient() {
	in_ns "$NS_R" ip nexthop add id 1 via 198.18.10.11 dev eth1 &&
		in_ns "$NS_R" ip nexthop add id 2 via 198.18.10.12 dev eth1 &&
		in_ns "$NS_R" ip nexthop add id 3 via 198.18.10.13 dev eth1 &&
		in_ns "$NS_R" ip nexthop add id 10 group 1/2/3 type resilient buckets 120
}
if resilient 2>/dev/null && rbirdc disable kernel1 >/dev/null &&
	wait_for -t 5 eval '! in_ns "$NS_R" ip -4 route show "$VIP/32" | grep -q .' &&
	in_ns "$NS_R" ip route add "$VIP/32" nhid 10; then
	keep_run 12 in_ns "$NS_R" ip nexthop replace id 10 group 2/3 type resilient buckets 120
	fig drain_keep_broken_fullnat_resilient "$KEEP_FAILED"
	fig drain_new_failed_fullnat_resilient "$NEW_FAILED"
	echo "info: n1 out of a resilient group with $KEEP long-lived connections: $KEEP_FAILED broken, $NEW_FAILED new failed"
else
	t_skip "resilient nexthop group in the router" "ip nexthop ... type resilient refused"
fi
in_ns "$NS_R" ip route del "$VIP/32" 2>/dev/null
for id in 10 1 2 3; do in_ns "$NS_R" ip nexthop del id $id 2>/dev/null; done
rbirdc enable kernel1 >/dev/null
t_check "BIRD's route is back after the resilient group" "next hops '$(nexthops)'" \
	wait_for -t 10 want_nexthops "$(all_nodes)"

# Flow ownership: the nodes push their flows to each other when they drain
# (sync_peer), and a node that gets a flow it does not own but knows sends
# it on at L2 to its owner. A reload turns it on.
SYNC=1
for ((i = 1; i <= N; i++)); do
	node_conf "$i" >"$TOPO_DIR/n$i/lbd.conf"
	nctl "$i" reload >/dev/null || t_fail "reload n$i with sync_peer" "$(nctl "$i" reload 2>&1)"
done
to_owner() { nctl "$1" -j stats | jq '.events.to_owner // 0'; }
o2=$(to_owner 2) o3=$(to_owner 3)
keep_run 12 eval "nctl 1 node drain >/dev/null"
fig drain_keep_broken_fullnat_sync "$KEEP_FAILED"
fig drain_new_failed_fullnat_sync "$NEW_FAILED"
moved=$(($(to_owner 2) - o2 + $(to_owner 3) - o3))
echo "info: drain of n1 with flow sync: $KEEP_FAILED of $KEEP long-lived broken, $NEW_FAILED new failed; $moved packets sent on to n1 by n2 and n3"
js=$(nctl 1 -j status)
t_check "flow sync: n1 pushed its flows" "$(jq -c .flow_sync <<<"$js")" \
	jq_ok "$js" '.flow_sync.pushed > 0'
t_check "flow sync: the others sent n1's moved flows on to it ($moved packets)" "0 packets" [ "$moved" -gt 0 ]
t_check "full NAT, flow sync: draining a node breaks 0 established connections" \
	"$KEEP_FAILED of $KEEP broken, $NEW_FAILED new failed: $(tail -3 "$TOPO_DIR/keep.out.err")" \
	[ "$KEEP_FAILED" = 0 ]
nctl 1 node undrain >/dev/null
wait_for -t 10 want_nexthops "$(all_nodes)"

# ------------------------------------------------------------------ crash

# failover NAME WHAT CMD...: CMD takes n3 away under load; the time until
# the router drops its next hop (FAILOVER_MS) and what broke are figures.
_takedown() {
	"$@"
	T_CRASH=$(date +%s%N)
	wait_for -t 10 want_nexthops "$(without 3)"
	T_GONE=$(date +%s%N)
}
failover() {
	local name=$1 what=$2
	shift 2
	keep_run 10 _takedown "$@"
	FAILOVER_MS=$(((T_GONE - T_CRASH) / 1000000))
	fig "${name}_failover_ms" "$FAILOVER_MS"
	fig "${name}_keep_broken_${FIG_MODE:-fullnat}" "$KEEP_FAILED"
	fig "${name}_new_failed_${FIG_MODE:-fullnat}" "$NEW_FAILED"
	echo "info: $what: route gone after $FAILOVER_MS ms; $KEEP_FAILED of $KEEP long-lived broken, $NEW_FAILED new failed"
}

# n3's link to the router goes down (as a dead host: nothing tells the
# router): BFD takes its route out within 5 x 100 ms
failover linkdown "n3's link down" in_ns "$NS_SW" ip link set n3f down
t_check "link down: BFD failover in < 1 s ($FAILOVER_MS ms)" "$FAILOVER_MS ms" [ "$FAILOVER_MS" -lt 1000 ]
in_ns "$NS_SW" ip link set n3f up
_gro_refresh "$NS_SW" n3f
t_check "n3 back after its link" "next hops '$(nexthops)'" wait_for -t 20 want_nexthops "$(all_nodes)"

# kill -9 of lbd and its BIRD: the kernel closes BIRD's TCP session
bird3=$(nctl 3 -j status | jq -r .node.bgp.bird_pid)
failover kill "kill -9 of n3 (lbd and BIRD)" kill -KILL "${NODE_PID[3]}" "$bird3"
t_check "kill -9: route gone in < 1 s ($FAILOVER_MS ms)" "$FAILOVER_MS ms" [ "$FAILOVER_MS" -lt 1000 ]
node_start 3 || t_fail "n3 restarts" "lbd"
t_check "n3 restarted announces again" "next hops '$(nexthops)'" \
	wait_for -t 20 want_nexthops "$(all_nodes)"

# ------------------------------------------------------------------ ipip

# forward ipip: every node picks the same backend for a flow (same seed,
# identity-based Maglev), and the backend answers the client itself, so a
# flow the router moves needs no state from the node it left.
DECAP_OK=1
for ((b = 1; b <= NBACKENDS; b++)); do
	bg_start "${NS_BE[$b]}" "$LBD" --decap eth0
	wait_for -t 30 eval "bg_log $BG_PID | grep -q 'decap: [a-z-]* on eth0'" || DECAP_OK=0
done
if [ $DECAP_OK = 1 ] && wait_for -t 10 \
	in_client curl -s -m 1 -o /dev/null "http://$VIP_TUN:3000/"; then
	wait_for -t 10 want_nexthops "$(all_nodes)"
	KEEP_TARGET=$VIP_TUN:3000 keep_run 12 eval "nctl 2 node drain >/dev/null"
	fig drain_keep_broken_ipip "$KEEP_FAILED"
	fig drain_new_failed_ipip "$NEW_FAILED"
	echo "info: ipip: drain of n2: $KEEP_FAILED of $KEEP long-lived broken, $NEW_FAILED new failed"
	t_check "ipip: draining a node breaks 0 established connections" \
		"$KEEP_FAILED of $KEEP broken: $(tail -3 "$TOPO_DIR/keep.out.err")" [ "$KEEP_FAILED" = 0 ]
	nctl 2 node undrain >/dev/null
	wait_for -t 10 want_nexthops "$(all_nodes)"
	bird3=$(nctl 3 -j status | jq -r .node.bgp.bird_pid)
	KEEP_TARGET=$VIP_TUN:3000 FIG_MODE=ipip failover kill "ipip: kill -9 of n3 (lbd and BIRD)" \
		kill -KILL "${NODE_PID[3]}" "$bird3"
	t_check "ipip: killing a node breaks 0 connections (its own continue on the others)" \
		"$KEEP_FAILED of $KEEP broken: $(tail -3 "$TOPO_DIR/keep.out.err")" [ "$KEEP_FAILED" = 0 ]
	node_start 3 || t_fail "n3 restarts" "lbd"
	wait_for -t 20 want_nexthops "$(all_nodes)"
else
	t_fail "ipip: lbd --decap on the backends and a request through $VIP_TUN" \
		"$(bg_log "$BG_PID" | tail -3)"
fi

# ------------------------------------------------------------------ stop

t0=$(date +%s%N)
kill -TERM "${NODE_PID[1]}"
t_check "SIGTERM withdraws first (drain)" "next hops '$(nexthops)'" \
	wait_for -t 5 want_nexthops "$(without 1)"
for ((k = 0; k < 150; k++)); do kill -0 "${NODE_PID[1]}" 2>/dev/null || break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
if ! kill -0 "${NODE_PID[1]}" 2>/dev/null && bg_log "${NODE_PID[1]}" | grep -q "drained: exiting"; then
	t_pass "SIGTERM: drained, then exited ($ms ms)"
else
	t_fail "SIGTERM: drained, then exited" "$(bg_log "${NODE_PID[1]}" | tail -5)"
fi
t_check "its BIRD is gone too" "$(pgrep -af "$TOPO_DIR/n1/bird")" \
	wait_for -t 5 eval '! pgrep -f "$TOPO_DIR/n1/bird/bird.conf" >/dev/null'

t_done
