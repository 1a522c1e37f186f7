#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# One guest of make vm-bench's three-VM topology (lab.run=mvm lab.ROLE=...;
# vm/multi.sh starts the VMs). Each VM has one vCPU and virtio-net NICs with
# several queues on taps that vm/multi.sh bridges inside a network namespace
# of the host:
#
#   client VM  198.18.0.1 ==br f== 198.18.0.254 front  lb VM  back 198.18.1.254
#                                                                 ==br b== backend VM 198.18.1.2, .3
#
#   ROLE=backend  demo_backend on 198.18.1.2:3000 and .3:3000; UDP to port
#                 9000 counted and dropped by nftables; serves `ctl`.
#   ROLE=lb       serves `ctl`: "lbd" starts lbd in native XDP mode on front
#                 and back (both virtio_net), "ipvs" sets up IPVS (NAT, rr)
#                 for the same VIP, "stop" removes either.
#   ROLE=client   drives the run: for lbd, then IPVS, checks requests through
#                 the VIP, measures requests/s (lbload, one HTTP request per
#                 connection) and packets/s (pktgen UDP to the VIP, counted on
#                 the backend VM); then the same straight to one backend with
#                 the lb VM only routing (the path's ceiling); BENCH_ROUNDS
#                 (3) rounds, BENCH_SECS (10) s per measurement. It prints
#                 "BENCH: PEER,ROUND,METRIC,VALUE,NOTE" lines that
#                 vm/multi.sh turns into bench-results/ files.
# The control channel is one line over TCP port 7000 (socat on the server,
# bash's /dev/tcp on the client); the reply is the handler's output.
# `vm/mvm.sh ctl` is that handler (socat runs it per connection).
. /lab/vm/lib.sh
# shellcheck disable=SC2034 # read by tests/net/lib.sh
T_NAME=vm-bench
ROLE=${1:-${ROLE:-}}
export ROLE
CLIENT=198.18.0.1 LB_FRONT=198.18.0.254 LB_BACK=198.18.1.254
BE=(198.18.1.2 198.18.1.3)
CTL_PORT=7000
UDP_PORT=9000
SECS=${BENCH_SECS:-10}
TOPO_DIR=/run/mvm
PIN=/sys/fs/bpf/mvm
mkdir -p "$TOPO_DIR"

# nic MAC NAME ADDR/LEN: names the NIC with MAC (vm/multi.sh sets the MACs)
# and brings it up with ADDR. Complete checksums on the wire, as from a real
# NIC: a partial one would reach the peer's XDP, which cannot finish it.
nic() {
	local mac=$1 name=$2 addr=$3 d dev=''
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address")" = "$mac" ] && dev=${d##*/}
	done
	[ -n "$dev" ] || { echo "vm-bench: no NIC with MAC $mac" >&2; return 1; }
	[ "$dev" = "$name" ] || ip link set "$dev" name "$name"
	ethtool -K "$name" tx off tso off gso off >/dev/null 2>&1
	ip addr add "$addr" dev "$name"
	ip link set "$name" up
}

# serve: the control server, until the host stops the VM.
serve() {
	echo "vm-bench: $ROLE serving on port $CTL_PORT"
	exec socat TCP-LISTEN:$CTL_PORT,reuseaddr,fork EXEC:"bash /lab/vm/mvm.sh ctl" </dev/null
}

# ctl HOST CMD: one command to HOST's control server; prints its reply.
ctl() {
	# shellcheck disable=SC2016 # the inner bash expands them
	timeout 300 bash -c 'exec 3<>"/dev/tcp/$1/$2" && echo "$3" >&3 && cat <&3' _ "$1" "$CTL_PORT" "$2"
}

# ---------------------------------------------------------------- lb

lbd_conf() {
	lab_conf xdp "front back" "${BE[@]}"
	cat <<EOF
vip pps {
    listen $VIP:$UDP_PORT udp;
    method maglev;
    health_check none;
    backend ${BE[0]}:$UDP_PORT;
    backend ${BE[1]}:$UDP_PORT;
}
EOF
}

# queues NIC: "IN-USE/MAX" combined queue pairs of NIC.
queues() {
	ethtool -l "$1" 2>/dev/null | awk '/Combined/ { c[++n] = $2 } END { print c[2] "/" c[1] }'
}

# lb_nics: the lb's NICs, each left with as many queue pairs in use as its
# maximum less one per vCPU: virtio_net gives XDP_TX and XDP_REDIRECT a
# transmit queue per CPU of its own only when that many are free, and would
# otherwise share (and lock) the stack's. IPVS runs on the same setting.
lb_nics() {
	local nic max use
	for nic in front back; do
		max=$(queues "$nic")
		max=${max#*/}
		use=$((max - $(nproc)))
		[ "$use" -ge 1 ] || use=1
		ethtool -L "$nic" combined "$use" 2>/dev/null
	done
}

# lb_cmd CMD: the lb VM's side of the control channel.
lb_cmd() {
	local sock=$TOPO_DIR/lbd.sock
	case $1 in
	ping) echo OK ;;
	lbd)
		lbd_conf >"$TOPO_DIR/lbd.conf"
		local t0=$SECONDS pid
		setsid "$LBD" -f -c "$TOPO_DIR/lbd.conf" >"$TOPO_DIR/lbd.log" 2>&1 </dev/null &
		pid=$!
		# Under TCG the verifier alone takes tens of seconds.
		if ! wait_for -t 240 "$LBCTL" -s "$sock" status; then
			echo "ERR lbd did not come up in 240 s: $(tail -5 "$TOPO_DIR/lbd.log" | tr '\n' ' ')" \
				"$(grep -s State: "/proc/$pid/status") wchan $(cat "/proc/$pid/wchan" 2>/dev/null)"
			return
		fi
		echo "started in $((SECONDS - t0)) s"
		# ip link says "xdp" for a driver (native) attachment,
		# "xdpgeneric" for the skb fallback.
		echo "OK $(ip link show front | head -1)"
		echo "OK $(ip link show back | head -1)"
		echo "queues $(queues front)"
		if dmesg | grep -q 'locked tx mode'; then
			echo "xdp_tx shared queues (locked): $(dmesg | grep -m1 'locked tx mode')"
		else
			echo "xdp_tx own queues"
		fi
		;;
	ipvs)
		ip addr add "$VIP/32" dev lo 2>/dev/null
		ipvsadm -A -t "$VIP:80" -s rr && ipvsadm -A -u "$VIP:$UDP_PORT" -s rr &&
			ipvsadm -a -t "$VIP:80" -r "${BE[0]}:3000" -m && ipvsadm -a -t "$VIP:80" -r "${BE[1]}:3000" -m &&
			ipvsadm -a -u "$VIP:$UDP_PORT" -r "${BE[0]}:$UDP_PORT" -m &&
			ipvsadm -a -u "$VIP:$UDP_PORT" -r "${BE[1]}:$UDP_PORT" -m &&
			echo "OK ipvs: TCP and UDP VIP, $(ipvsadm -Ln | grep -c Masq) real servers in NAT (masq) mode" ||
			echo "ERR ipvsadm failed: $(ipvsadm -Ln 2>&1 | tr '\n' ' ')"
		;;
	stop)
		if [ -f "$TOPO_DIR/lbd.pid" ]; then
			"$LBCTL" -s "$sock" stop >/dev/null 2>&1
			wait_for -t 30 bash -c "! kill -0 $(cat "$TOPO_DIR/lbd.pid") 2>/dev/null"
			rm -rf "$TOPO_DIR/lbd.pid" "$PIN"
		fi
		command -v ipvsadm >/dev/null && ipvsadm -C
		ip addr del "$VIP/32" dev lo 2>/dev/null
		if ip link show front | grep -q ' xdp'; then echo "ERR an XDP program is still on front"; else echo OK; fi
		;;
	*) echo "ERR unknown command $1" ;;
	esac
}

# ---------------------------------------------------------------- backend

be_cmd() {
	case $1 in
	ping) echo OK ;;
	# UDP packets to port 9000 that reached this VM (nftables counter).
	udp) nft list chain inet lab input | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }' ;;
	*) echo "ERR unknown command $1" ;;
	esac
}

# ---------------------------------------------------------------- client

# pktgen_run SECS DST: pktgen floods UDP to DST:9000 from 256 source ports
# (256 flows) at the lb's front MAC for SECS seconds; prints packets sent.
pktgen_run() {
	local secs=$1 dst=$2 mac pg=/proc/net/pktgen
	mac=$(ip neigh show "$LB_FRONT" | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')
	[ -n "$mac" ] || { echo "vm-bench: no neighbour entry for $LB_FRONT" >&2; echo 0; return; }
	echo rem_device_all >"$pg/kpktgend_0"
	echo "add_device front" >"$pg/kpktgend_0"
	local c
	for c in "count 0" "clone_skb 0" "pkt_size 64" "delay 0" "flag UDPCSUM" \
		"dst $dst" "dst_mac $mac" "src_min $CLIENT" "src_max $CLIENT" \
		"udp_dst_min $UDP_PORT" "udp_dst_max $UDP_PORT" "udp_src_min 10000" "udp_src_max 10255"; do
		echo "$c" >"$pg/front"
	done
	echo start >"$pg/pgctrl" &
	sleep "$secs"
	echo stop >"$pg/pgctrl"
	wait
	awk '/pkts-sofar:/ { print $2 }' "$pg/front"
}

# measure PEER ROUND DST HTTP_PORT: checks and figures for whichever
# balancer the lb VM runs (DST the VIP), or for plain routing (DST a backend).
measure() {
	local peer=$1 round=$2 dst=$3 port=$4 ok=0 out n r f before after sent
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		curl -s -m 5 "http://$dst:$port/" 2>/dev/null | grep -q "^Here we are! be[12]" && ok=$((ok + 1))
	done
	t_check "$peer-requests-$round ($ok/10)" "only $ok of 10 requests through $peer answered" test "$ok" -eq 10
	out=$("$LBLOAD" -t 2000 -p 16 --duration "$SECS" "$dst:$port" 2>/dev/null)
	n=$(field ok "$out") r=$(field rate "$out") f=$(field failed "$out")
	echo "BENCH: $peer,$round,requests_per_s,${r:-0},lbload ${SECS}s 16 parallel one HTTP request per connection; ok=${n:-0} failed=${f:-?}"
	t_check "$peer-load-$round" "lbload through $peer: $(tr '\n' ' ' <<<"$out")" test "${n:-0}" -gt 0 -a "${f:-1}" -eq 0
	before=$(ctl "${BE[0]}" udp)
	sent=$(pktgen_run "$SECS" "$dst")
	sleep 1 # the last packets in flight
	after=$(ctl "${BE[0]}" udp)
	n=$((after - before))
	echo "BENCH: $peer,$round,packets_per_s,$((n / SECS)),pktgen 64-byte UDP 256 flows ${SECS}s; sent=$sent delivered=$n ($((sent / SECS)) sent/s)"
	t_check "$peer-pps-$round" "no UDP packet through $peer reached the backend VM (sent $sent)" test "$n" -gt 0
}

# peer PEER ROUND: sets the lb VM up as PEER (lbd, ipvs, or route: its
# kernel only routing, the client going to one backend directly, the
# ceiling of this path), measures, and takes it down again.
peer() {
	local peer=$1 round=$2 reply
	if [ "$peer" = route ]; then
		measure route "$round" "${BE[0]}" 3000
		return
	fi
	reply=$(ctl "$LB_FRONT" "$peer")
	while read -r l; do echo "  lb: $l"; done <<<"$reply"
	if [ "$peer" = lbd ]; then
		if grep -q '^OK .*front: .* xdp ' <<<"$reply" && ! grep -q xdpgeneric <<<"$reply"; then
			t_pass "lbd-native-xdp-on-virtio_net-$round"
			echo "BENCH: lbd,$round,xdp_mode,native,virtio_net queue pairs in use/max with XDP on: $(sed -n 's/^queues //p' <<<"$reply"); XDP_TX on $(sed -n 's/^xdp_tx //p' <<<"$reply")"
		else
			t_fail "lbd-native-xdp-on-virtio_net-$round" "lb VM: $(tr '\n' ' ' <<<"$reply")"
		fi
		echo "BENCH: lbd,$round,start_s,$(sed -n 's/^started in \([0-9]*\) s$/\1/p' <<<"$reply"),from exec to lbctl status answering (the verifier runs under emulation)"
	fi
	if grep -q '^OK' <<<"$reply"; then
		measure "$peer" "$round" "$VIP" 80
	else
		t_fail "$peer-setup-$round" "lb VM: $(tr '\n' ' ' <<<"$reply")"
	fi
	reply=$(ctl "$LB_FRONT" stop)
	t_check "$peer-stop-$round" "lb VM: $reply" grep -q '^OK' <<<"$reply"
}

# client: ROUNDS (BENCH_ROUNDS, 3) rounds of the three peers, each round in
# another order (lbd ipvs route, ipvs route lbd, route lbd ipvs, ...), so a
# drift in the host's load spreads over all of them.
client() {
	local peers=(lbd ipvs route) round i
	nic 52:54:00:12:00:01 front "$CLIENT/24" || exit 1
	ip route add "$VIP/32" via "$LB_FRONT"
	ip route add 198.18.1.0/24 via "$LB_FRONT"
	if ! wait_for -t 240 ctl "$LB_FRONT" ping || ! wait_for -t 240 ctl "${BE[0]}" ping; then
		t_fail "$T_NAME" "the lb or backend VM did not answer on port $CTL_PORT in 240 s"
		t_done
		return 1
	fi
	echo "vm-bench: all three VMs up $(cut -d' ' -f1 /proc/uptime)s after the client's kernel start"
	for ((round = 1; round <= ${BENCH_ROUNDS:-3}; round++)); do
		for i in 0 1 2; do
			peer "${peers[(i + round - 1) % 3]}" "$round"
		done
	done
	t_done
}

case $ROLE in
ctl)
	read -r cmd
	case $(hostname) in
	lb) lb_cmd "$cmd" ;;
	backend) be_cmd "$cmd" ;;
	esac
	;;
lb)
	hostname lb
	nic 52:54:00:12:00:fe front "$LB_FRONT/24" && nic 52:54:00:12:01:fe back "$LB_BACK/24" || exit 1
	sysctl -qw net.ipv4.ip_forward=1
	lb_nics
	serve
	;;
backend)
	hostname backend
	nic 52:54:00:12:01:02 front "${BE[0]}/24" || exit 1
	ip addr add "${BE[1]}/24" dev front
	ip route add default via "$LB_BACK"
	nft -f - <<-EOF
		table inet lab {
			chain input {
				type filter hook input priority 0;
				udp dport $UDP_PORT counter drop
			}
		}
	EOF
	"$DEMO_BACKEND" -l "${BE[0]}:3000" -n be1 >/run/mvm/be1.log 2>&1 </dev/null &
	"$DEMO_BACKEND" -l "${BE[1]}:3000" -n be2 >/run/mvm/be2.log 2>&1 </dev/null &
	serve
	;;
client) hostname client; client ;;
*) echo "vm/mvm.sh: ROLE=client|lb|backend|ctl, not '$ROLE'" >&2; exit 2 ;;
esac
