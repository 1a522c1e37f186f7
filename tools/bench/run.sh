#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make bench`: every benchmark of lbd in one run, figures as ratios taken in
# that same run (the machines here are noisy). Writes bench-results/<time>/
# (bench-results/latest points at it): REPORT.md (machine, every figure as
# median, min and max over its repeats with its ratio to the baseline,
# targets met or missed, plots), the raw CSV, and summary.txt (what the
# terminal showed). The report frame is tools/bench/report.sh: a section
# records figures through its functions and gets its table, plot and
# one-line summary from it.
#
#   1. xdp     XDP per-packet cost (tools/bench_xdp.c; method there)
#   2. pps     forwarded packets/s through the namespaces (tools/lbgen.c)
#   3. e2e     requests/s, short connections, and one stream: direct, lbd
#              XDP and TC, nftables DNAT
#      proxy   lbd's fallback proxy, HAProxy and NGINX stream, in the same
#              rounds on the same topology as e2e; memory per idle
#              connection (proxy.sh)
#   4. maglev  build time, disruption, table swap under traffic
#   5. control lbctl backend add to the first flow, changes per second
#   6. workers local delivery vs the same instance reached directly on its
#              port, app.js under lbd vs PM2 cluster mode + NGINX, memory,
#              rolling reload under load, crash to serving (workers.sh)
#
# Environment: O (build dir), QUICK=1 (about two minutes: fewer and shorter
# repeats), BENCH_ONLY=xdp,pps,e2e,proxy,maglev,control,workers,cluster (sections),
# BENCH_RESULTS (parent dir of the run, default bench-results), BENCH_RUNS
# (repeats of xdp), WRK_SECONDS, WRK_CONNS, E2E_ROUNDS, PPS_SECONDS,
# PPS_ROUNDS, PPS_CONTENDERS (forward,nftables,lbd_xdp,lbd_tc), PPS_FLOWS,
# PPS_NEW (per mille), PPS_PROTO (udp, tcp), LBD_START_WAIT (seconds lbd, or
# a peer (nftables, HAProxy, NGINX), gets to answer, 30; more under
# emulation, where the verifier is slow; a start that fails ends the wait at
# once), workers.sh's and proxy.sh's own (see them). Sections
# that need root (namespaces, BPF) say so and are skipped otherwise.
# Everything it starts it stops, also on Ctrl-C.
set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
O=${O:-build}
case $O in /*) ;; *) O=$REPO_DIR/$O ;; esac
export O
QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
if [ -n "$QUICK" ]; then
	BENCH_RUNS=${BENCH_RUNS:-3} WRK_SECONDS=${WRK_SECONDS:-1} E2E_ROUNDS=${E2E_ROUNDS:-1}
	E2E_STREAM_MB=${E2E_STREAM_MB:-64}
	export STREAM_MB=${STREAM_MB:-256} IDLE_CONNS=${IDLE_CONNS:-500}
	export WORKERS_ROUNDS=${WORKERS_ROUNDS:-1} CRASH_ROUNDS=${CRASH_ROUNDS:-2}
	export NODE_INSTANCES=${NODE_INSTANCES:-2} RELOAD_SECONDS=${RELOAD_SECONDS:-15}
fi
BENCH_RUNS=${BENCH_RUNS:-7}
E2E_STREAM_MB=${E2E_STREAM_MB:-512}
BENCH_CMD=${BENCH_CMD:-make bench${QUICK:+ QUICK=1}${BENCH_ONLY:+ BENCH_ONLY=$BENCH_ONLY}}
BENCH_ONLY=${BENCH_ONLY:-xdp,pps,e2e,proxy,maglev,control,workers,cluster}
WRK_SECONDS=${WRK_SECONDS:-3}
E2E_ROUNDS=${E2E_ROUNDS:-6}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
export WRK_SECONDS WRK_THREADS WRK_CONNS
VIP=198.18.0.10
VIP_PORT=80
BE_PORT=3000
PIN_ROOT=/sys/fs/bpf/lbd-bench

# shellcheck source=tools/bench/report.sh
. "$BENCH_DIR/report.sh"
# say, median, wrk_runs, wrk_result (shared with proxy.sh)
# shellcheck source=tools/bench/lib.sh
. "$BENCH_DIR/lib.sh"
RESULTS=${BENCH_RESULTS:-$REPO_DIR/bench-results}
RES=$RESULTS/$(date +%Y%m%d-%H%M%S)
bench_init "$RES" || exit 1
ln -sfn "$(basename "$RES")" "$RESULTS/latest"
export BENCH_CMD
SUMMARY=$RES/summary.txt
failed=0

want() { [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
is_root() { [ "$(id -u)" -eq 0 ]; }
skip() { say "SKIP: bench $1: $2"; bench_note "$1" "skipped: $2" >/dev/null; }
# fmt CSV: the CSV file as an aligned table (into the summary too).
fmt() { column -t -s, "$1" | tee -a "$SUMMARY"; }

# ------------------------------------------------------------- 1. XDP cost

bench_xdp() {
	local csv=$RES/xdp.csv
	bench_section xdp "XDP per-packet cost: lb_xdp vs a bare MAC-swap XDP_TX program"
	bench_method xdp "BPF_PROG_RUN in live-frames mode on a veth (tools/bench_xdp.c):" \
		"ns per packet from the kernel's timer, $BENCH_RUNS runs of each case, the bare" \
		"program (XDP_TX, or XDP_PASS for the pass case) timed back to back with lb_xdp;" \
		"the ratio is the median of those pairs. Cases: established (ACKs of a promoted" \
		"flow), new_tier (ACKs of a flow its backend has not answered: the conntrack's" \
		"LRU tier), nat_reply, non_vip_pass, new_flow (a SYN of a new tuple each packet)."
	if ! is_root; then skip xdp "needs root (BPF_PROG_RUN, network namespace)"; return; fi
	bench_progress "xdp: bench_xdp -R $BENCH_RUNS"
	timeout --kill-after=5 300 "$O/tools/bench_xdp" -R "$BENCH_RUNS" >"$csv" &
	if ! wait $!; then
		say "FAIL: bench_xdp exited with an error"
		failed=1
		return
	fi
	_bench_progress_clear
	fmt "$csv"
	bench_csv xdp "$csv"
	# case,bare_prog,bare_ns,lb_ns,ratio,ratio_best,extra_ns,bare_min,bare_max,lb_min,lb_max,repeat,runs,check
	while IFS=, read -r c bare bns lns ratio _ _ bmin bmax lmin lmax _ runs _; do
		bench_stat xdp "$c.$bare" ns/packet "$bns" "$bmin" "$bmax" "$runs"
		bench_stat xdp "$c.lb_xdp" ns/packet "$lns" "$lmin" "$lmax" "$runs" "$ratio"
		bench_baseline xdp "$c.lb_xdp" "$c.$bare"
	done < <(tail -n +2 "$csv")
	bench_target xdp established.lb_xdp '<=' 1.6 "established flow vs bare XDP_TX"
	bench_plot xdp ns/packet "Per-packet cost (ns, lower is better)"
	grep -q ',FAIL:' "$csv" && { say "FAIL: a case measured the wrong path (check column)"; failed=1; }
	bench_section_end xdp
	bench_xdp_scale
}

# How lb_xdp's cost grows (bench_xdp -S): live flows, VIPs, backends, and
# per selection method. QUICK: flows up to 100000, shorter runs.
bench_xdp_scale() {
	local csv=$RES/xdp-scale.csv id=xdp_scale args=(-S -R "$BENCH_RUNS" -r 500000 -n 50000)
	local dim val cs flows lns ratio lmin lmax bpf runs l3
	[ -n "$QUICK" ] && args=(-S -R "$BENCH_RUNS" -F 100000 -r 200000 -n 20000)
	bench_section $id "XDP per-packet cost as it scales: live flows, VIPs, backends, methods"
	bench_method $id "bench_xdp ${args[*]}: as the xdp section, on one data path (conntrack" \
		"of 2^21 entries a family) reconfigured per point. Established flows: 1000 flows" \
		"cycled (the flows points: that many), opened by SYNs first; new flows: a new tuple" \
		"every packet. VIPs share one table; 256 backends unless the point says otherwise." \
		"The flows points run twice: established visits the flows in the order they were" \
		"opened (their entries lie in that order in memory, so the CPU's prefetcher reads" \
		"ahead), established_shuffled in an order unrelated to it (k * stride mod flows), as" \
		"a real mix of clients arrives. random_read@memory: ns per dependent read of a cache" \
		"line at a random place in a buffer of that size (pointer chase, this thread's CPU" \
		"time): what a conntrack entry no cache holds costs here."
	bench_progress "$id: bench_xdp ${args[*]}"
	timeout --kill-after=5 900 "$O/tools/bench_xdp" "${args[@]}" >"$csv" &
	if ! wait $!; then
		say "FAIL: bench_xdp -S exited with an error"
		failed=1
		return
	fi
	_bench_progress_clear
	fmt "$csv"
	bench_csv $id "$csv"
	# dimension,value,case,method,vips,backends,flows,bare_ns,lb_ns,ratio,lb_min,lb_max,bytes_per_flow,runs,check
	while IFS=, read -r dim val cs _ _ _ _ _ lns ratio lmin lmax _ runs _; do
		if [ "$dim" = memory ]; then
			bench_stat $id "$cs@$dim.$((val >> 10))KiB" ns/read "$lns" "$lmin" "$lmax" "$runs"
		else
			bench_stat $id "$cs@$dim.$val" ns/packet "$lns" "$lmin" "$lmax" "$runs" "$ratio"
		fi
	done < <(tail -n +2 "$csv")
	bpf=$(awk -F, 'NR == 2 { print $13 }' "$csv")
	bench_note $id "Memory per IPv4 flow: $bpf bytes (ct4's and nat4's memlock over ct4's entries:" \
		"nat4 has twice the room; keys 16 B, values 60 B and 76 B, plus the kernel's element header)."
	flows=$(awk -F, '$1 == "flows" { v = $2 } END { print v }' "$csv")
	l3=$(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null)
	bench_note $id "$(awk -F, -v f="$flows" -v b="$bpf" -v l3="${l3:-?}" '
		$1 == "flows" { c[$2, $3] = $9 }
		$1 == "memory" { m[$2] = $9 }
		END {
			if (!((1000, "established") in c) || !((f, "established_shuffled") in c)) exit
			d1 = c[f, "established"] - c[1000, "established"]
			d2 = c[f, "established_shuffled"] - c[1000, "established_shuffled"]
			printf "Why the cost grows with live flows: from 1000 to %d flows it rises by %.0f ns a packet", f, d2
			printf " in the shuffled order (%.0f ns in the opening order). At %d B of map memory a flow, %d flows span %.0f MiB of", d1, b, f, f * b / 1048576
			printf " conntrack (and the hash buckets of 2^21 entries), against an L3 cache of %s shared", l3
			printf " with the rest of the machine, so the bucket and the entry of each packet come from"
			if (268435456 in m)
				printf " memory: a random read there costs %.0f ns on this machine (%.0f ns in 256 KiB), so the rise is about %.1f such reads a packet.", m[268435456], m[262144], d2 / m[268435456]
			else
				printf " memory."
			printf " No flow was evicted or created again (check column: ok, no new flow in the runs)."
			printf " That is the price of a table that outgrows the caches, the same for any hash-table conntrack;"
			printf " the opening order hides part of it (its entries are read in address order)."
		}' "$csv")"
	bench_target $id "established_shuffled@flows.$flows/established_shuffled@flows.1000" '<=' 1.1 \
		"established cost at $flows vs 1000 live flows, shuffled (flat within 10%)"
	bench_plot $id ns/packet "Per-packet cost as it scales (ns, lower is better)" '^(established|new_flow)@(vips|backends|method)'
	grep -q ',FAIL:' "$csv" && { say "FAIL: a scaling point measured the wrong path (check column)"; failed=1; }
	if command -v gnuplot >/dev/null; then
		gnuplot <<-EOF 2>/dev/null
			set terminal pngcairo size 720,400 noenhanced
			set output "$RES/xdp-flows.png"
			set datafile separator ","
			set title "Established flow, per-packet cost by live flows"
			set logscale x
			set xlabel "live flows (cycled)"
			set ylabel "ns/packet"
			set yrange [0:*]
			set key top left
			plot "< grep '^flows,[0-9]*,established,' $csv" using 7:9:11:12 with yerrorlines title "lb_xdp, flows in opening order", \
			     "< grep '^flows,[0-9]*,established_shuffled,' $csv" using 7:9:11:12 with yerrorlines title "lb_xdp, flows shuffled", \
			     "< grep '^flows,[0-9]*,established,' $csv" using 7:8 with linespoints title "bare XDP_TX"
		EOF
		[ -s "$RES/xdp-flows.png" ] && bench_image $id "$RES/xdp-flows.png" "Established flows: cost by live flows"
	fi
	bench_section_end $id
}

# ------------------------------------------------------------- 2. packets/s

# pps_received: frames the sink on the far end of lb's backend-side veth
# dropped so far.
pps_received() {
	in_ns "$NS_SW" ethtool -S lb | awk '/rx_queue_[0-9]+_xdp_drops:/ { s += $2 } END { print s + 0 }'
}

# pps_run NAME CORES DST ROUND: one lbgen run; a sample of NAME@<CORES>core.
pps_run() {
	local name=$1 cores=$2 dst=$3 round=$4 before after out ms pps sent
	before=$(pps_received)
	out=$(in_client timeout --kill-after=5 $((${PPS_SECONDS%.*} + 20)) "$O/tools/lbgen" \
		-i eth0 --dmac "$PPS_DMAC" -s "$CLIENT_ADDR" -d "$dst" --"$PPS_PROTO" \
		-f "$PPS_FLOWS" -n "$PPS_NEW" -t "$PPS_SECONDS" -c "0-$((cores - 1))" 2>&1)
	sleep 0.2 # what is still in flight
	after=$(pps_received)
	ms=$(grep -o 'elapsed_ms=[0-9]*' <<<"$out" | cut -d= -f2)
	sent=$(grep -o 'sent=[0-9]*' <<<"$out" | cut -d= -f2)
	if [ -z "$ms" ] || [ "$ms" -le 0 ]; then
		say "FAIL: pps $name: lbgen: $out"
		failed=1
		return 1
	fi
	pps=$(((after - before) * 1000 / ms))
	echo "$name,$cores,$round,$sent,$((after - before)),$ms,$pps" >>"$RES/pps-runs.csv"
	bench_sample pps "$name@${cores}core" packets/s "$pps"
	((after > before)) || bench_note pps "WARNING: $name, $cores core(s), round $round: nothing arrived (lbgen: $out)"
}

pps_neighbours() {
	local i
	for ((i = 1; i <= NBACKENDS; i++)); do
		lb_neigh eth1 "${NS_BE[$i]}" "${BE_ADDRS[$i]}"
	done
}

# pps_contender NAME up|down: sets PPS_DST for NAME; returns 1 if it failed.
pps_contender() {
	local name=$1
	case $name/$2 in
	forward/up) PPS_DST=${BE_ADDRS[1]}:$BE_PORT ;;
	nftables/up) PPS_DST=$NFT_VIP:$VIP_PORT; nft_up udp ;;
	nftables/down) nft_down ;;
	lbd_xdp/up | lbd_tc/up)
		PPS_DST=$VIP:$VIP_PORT
		e2e_lbd_up "${name#lbd_}" udp >/dev/null || return 1
		# lbd's neighbour warm-up (NTF_USE with NLM_F_REPLACE) turns a
		# permanent entry INCOMPLETE on this kernel, and the sink drops
		# ARP: put the backends' back.
		pps_neighbours ;;
	lbd_*/down) e2e_lbd_down ;;
	esac
}

bench_pps() {
	PPS_SECONDS=${PPS_SECONDS:-${QUICK:+0.5}} PPS_SECONDS=${PPS_SECONDS:-3}
	PPS_ROUNDS=${PPS_ROUNDS:-${QUICK:+1}} PPS_ROUNDS=${PPS_ROUNDS:-3}
	PPS_FLOWS=${PPS_FLOWS:-1000} PPS_NEW=${PPS_NEW:-0} PPS_PROTO=${PPS_PROTO:-udp}
	local cores_list="1 2" r c name i names
	IFS=, read -ra names <<<"${PPS_CONTENDERS:-forward,nftables,lbd_xdp,lbd_tc}"
	((${PPS_CORES:-$(nproc)} >= 2)) || cores_list=1
	bench_section pps "Forwarded packets/s: lbd XDP and TC vs nftables DNAT and kernel forwarding"
	bench_method pps "tools/lbgen sends ${PPS_PROTO^^} over IPv4 (64-byte frames, $PPS_FLOWS established flows," \
		"$PPS_NEW per mille new) from the client namespace for ${PPS_SECONDS} s per run," \
		"BPF_PROG_RUN live frames out of the client's veth into the balancer namespace;" \
		"the balancer forwards towards 3 backends, and the far end of its backend-side" \
		"veth drops at XDP and counts (the wire out of the balancer). The figure is what" \
		"arrived there per second. forward: plain kernel routing to one backend;" \
		"nftables: DNAT (jhash over 3) + SNAT; lbd_xdp and lbd_tc: lbd in that mode." \
		"N core(s): N sending threads pinned to CPUs 0..N-1; the balancer's softirq work" \
		"runs on the sending CPU, so the generator shares those cores (the same for" \
		"every contender). $PPS_ROUNDS round(s), every contender in turn."
	if ! is_root; then skip pps "needs root (namespaces, BPF)"; return; fi
	for c in nft ethtool; do
		command -v $c >/dev/null || { skip pps "'$c' not installed (make deps)"; return; }
	done
	[ -x "$O/tools/lbgen" ] || { say "FAIL: $O/tools/lbgen not built"; failed=1; return; }
	# shellcheck disable=SC2034 # read by lib.sh
	TOPO_PREFIX=lbq$$- TOPO_QUEUES=2
	# shellcheck source=tests/net/lib.sh
	. "$REPO_DIR/tests/net/lib.sh"
	topo_up 3 || { say "FAIL: pps: topology"; failed=1; return; }
	trap e2e_cleanup EXIT
	trap 'e2e_cleanup; trap - EXIT; exit 130' INT
	trap 'e2e_cleanup; trap - EXIT; exit 143' TERM
	E2E_TMP=$(mktemp -d /tmp/lbd-bench.XXXXXX)
	echo "contender,cores,round,sent,received,elapsed_ms,packets_per_s" >"$RES/pps-runs.csv"
	# What lb sends towards the backends ends at the switch's port: the
	# wire out of the balancer, without the bridge's and the backends' cost.
	in_ns "$NS_SW" "$O/tools/lbgen" --sink lb || { say "FAIL: pps: sink"; failed=1; e2e_cleanup; return; }
	# Frames sent into the client's veth reach lb only once GRO is toggled
	# there (veth's XDP transmit features, as _gro_refresh says in lib.sh);
	# the sink drops ARP too, so lb gets the backends' MACs as permanent
	# neighbours.
	_gro_refresh "$NS_CLIENT" eth0
	_gro_refresh "$NS_LB" eth0
	pps_neighbours
	PPS_DMAC=$(ip -n "$NS_LB" -br link show eth0 | awk '{ print $3 }')
	topo_add_vip "$NFT_VIP"
	in_lb ip addr add "$NFT_SNAT/24" dev eth1
	for ((r = 1; r <= PPS_ROUNDS; r++)); do
		for name in "${names[@]}"; do
			bench_progress "pps round $r/$PPS_ROUNDS: $name"
			if ! pps_contender "$name" up; then
				say "FAIL: pps $name: did not come up (round $r)"
				failed=1
				pps_contender "$name" down
				continue
			fi
			for c in $cores_list; do
				bench_progress "pps round $r/$PPS_ROUNDS: $name, $c core(s)"
				pps_run "$name" "$c" "$PPS_DST" "$r"
			done
			pps_contender "$name" down
		done
	done
	_bench_progress_clear
	e2e_cleanup
	trap - EXIT INT TERM
	bench_csv pps "$RES/pps-runs.csv"
	for c in $cores_list; do
		for name in nftables lbd_xdp lbd_tc; do bench_baseline pps "$name@${c}core" "forward@${c}core"; done
		bench_target pps "lbd_xdp@${c}core/nftables@${c}core" '>=' 1.0 "lbd XDP vs nftables ($c core(s))"
	done
	bench_plot pps packets/s "Forwarded packets/s (median, min..max)"
	bench_section_end pps
}

# ------------------------------------------------------------- 2. Maglev

bench_maglev() {
	local raw=$RES/maglev.raw.csv
	bench_section maglev "Maglev: build time, disruption, table swap"
	bench_method maglev "tools/bench_maglev.c, M = 65537: build time is the median of 21 builds" \
		"(min and max over them). Disruption is the share of all slots whose backend" \
		"changes when one backend leaves or joins, against the ideal (its own share);" \
		"its ratio is moved/ideal (1.0 is perfect). The table swap under traffic is" \
		"timed in the control section (swap.traffic against swap.idle)."
	bench_progress "maglev: bench_maglev"
	if ! timeout 120 "$O/tools/bench_maglev" >"$raw"; then
		say "FAIL: bench_maglev exited with an error"
		failed=1
		return
	fi
	bench_csv maglev "$raw"
	# maglev_build,<backends>,<M>,<median_us>,<min_us>,<max_us>
	# maglev_disruption,<backends>,<moved_pct>,<ideal_pct>,<remove|add>
	while IFS=, read -r what n a b c d; do
		case $what in
		maglev_build) bench_stat maglev "build@$n" us "$b" "$c" "$d" 21 ;;
		maglev_disruption)
			bench_stat maglev "$c.moved@$n" "% slots" "$a" "$a" "$a" 1
			bench_stat maglev "$c.ideal@$n" "% slots" "$b" "$b" "$b" 1
			bench_baseline maglev "$c.moved@$n" "$c.ideal@$n" ;;
		esac
	done <"$raw"
	bench_target maglev build@1000 '<=' 5000 "1000-backend build (us)"
	bench_plot maglev us "Maglev build time (us, M = 65537) by backends" '^build@'
	bench_plot maglev "% slots" "Slots moved when one backend leaves: measured and ideal" '^remove[.]'
	bench_section_end maglev
}

# ------------------------------------------------------------- 3. end to end

E2E_RUNS=      # one row per wrk run: target,round,requests/s,errors
E2E_CSV=       # one row per target: medians over the rounds
E2E_TMP=
LBD_PID=
NFT_VIP=198.18.0.11 # nftables gets its own VIP and SNAT address
HAP_VIP=198.18.0.12 # the user-space peers theirs
NGX_VIP=198.18.0.13
E2E_PEERS=()        # name:VIP of the user-space peers that answered
E2E_SPORT=5001      # the stream's port, on every target
NFT_SNAT=198.18.1.253

# wrk_run NAME ROUND URL...: wrk from the client namespace, Connection:
# close, for WRK_SECONDS. One URL: one wrk of WRK_THREADS threads; several:
# one single-threaded wrk per URL at once, the connections split between
# them, the figures summed. Appends a row to E2E_RUNS.
wrk_run() {
	local name=$1 round=$2 rps errs
	shift 2
	wrk_runs "$RES/wrk-$name-r$round" "$@"
	if ! read -r rps errs < <(wrk_result "$RES/wrk-$name-r$round" $#); then
		say "FAIL: e2e $name: wrk gave no figure (see $RES/wrk-$name-r$round-*.txt)"
		failed=1
		return 1
	fi
	echo "$name,$round,$rps,$errs" >>"$E2E_RUNS"
}

# wait_http: tests/net/lib.sh

# An nftables DNAT load balancer on NFT_VIP: jhash over the client's
# address and port, SNAT towards the backends (full NAT, like lbd). Loaded
# only for its own runs, so no other run pays for conntrack; its SNAT
# address is its own, so its reply ports never meet lbd's NAT flows.
# nft_up [udp]: for TCP (default; checked with a request) or UDP.
nft_up() {
	local p=${1:-tcp}
	in_lb nft -f - <<-EOF || { say "FAIL: nftables: ruleset refused"; return 1; }
		table ip lbbench {
			chain pre {
				type nat hook prerouting priority dstnat; policy accept;
				ip daddr $NFT_VIP $p dport $VIP_PORT dnat to jhash ip saddr . $p sport mod 3 seed 0x5eed map { 0 : ${BE_ADDRS[1]}, 1 : ${BE_ADDRS[2]}, 2 : ${BE_ADDRS[3]} } : $BE_PORT
				ip daddr $NFT_VIP tcp dport $E2E_SPORT dnat to ${BE_ADDRS[1]}:$E2E_SPORT
			}
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				ct original ip daddr $NFT_VIP snat ip to $NFT_SNAT
			}
		}
	EOF
	[ "$p" = udp ] && return 0
	# The ruleset is in place once nft returns; the first answer through
	# it takes a moment more, and much more under emulation (vm-bench):
	# the same bound as lbd's.
	wait_http "http://$NFT_VIP:$VIP_PORT/" "${LBD_START_WAIT:-30}" && return 0
	say "FAIL: e2e nftables: VIP does not answer within ${LBD_START_WAIT:-30} s"
	nft_down
	return 1
}

nft_down() { in_lb nft delete table ip lbbench 2>/dev/null; }

# lb_neigh DEV NS ADDR: a permanent neighbour entry in lb for ADDR, the
# address of eth0 in namespace NS.
lb_neigh() {
	local mac
	mac=$(ip -n "$2" -br link show eth0 | awk '{ print $3 }')
	in_lb ip neigh replace "$3" lladdr "$mac" dev "$1" nud permanent
}

# e2e_lbd_up MODE [udp]: lbd in MODE (xdp, tc) on VIP (TCP, checked with a
# request; or UDP, checked by lbctl status), config syntax as in examples/.
# Returns 1 (after saying why) when lbd is not built or does not serve it.
e2e_lbd_up() {
	local conf=$E2E_TMP/lbd.conf i
	if [ ! -x "$O/lbd" ]; then
		say "lbd: not built yet"
		return 1
	fi
	cat >"$conf" <<-EOF
		lbd {
		    interfaces eth0 eth1;
		    mode $1;
		    control $E2E_TMP/lbd.sock;
		    state_dir $E2E_TMP;
		    pid_file $E2E_TMP/lbd.pid;
		    bpffs $PIN_ROOT;
		}
		vip web {
		    listen $VIP:$VIP_PORT${2:+ $2};
		    backend ${BE_ADDRS[1]}:$BE_PORT weight=1;
		    backend ${BE_ADDRS[2]}:$BE_PORT weight=1;
		    backend ${BE_ADDRS[3]}:$BE_PORT weight=1;
		}
		${E2E_LBD_EXTRA:-}
	EOF
	# lb answers ARP for the VIP, and knows the backends' and the
	# client's MACs: lb_xdp passes a packet to the stack when
	# bpf_fib_lookup finds no neighbour, and one already SNATed to lb's
	# own address dies there as a martian, so the neighbour would never
	# resolve. (Both are lbd's job; harmless when it does them.)
	topo_add_vip "$VIP" 2>/dev/null
	lb_neigh eth0 "$NS_CLIENT" "$CLIENT_ADDR"
	for ((i = 1; i <= NBACKENDS; i++)); do
		lb_neigh eth1 "${NS_BE[$i]}" "${BE_ADDRS[$i]}"
	done
	bg_start @lb "$O/lbd" -f -c "$conf"
	LBD_PID=$BG_PID
	# loading the BPF objects takes seconds on a busy machine (lbd_wait:
	# up to LBD_START_WAIT, less if lbd exits)
	if [ "${2:-}" = udp ]; then
		lbd_wait "$LBD_PID" "$O/lbctl" -s "$E2E_TMP/lbd.sock" status && return 0
	else
		lbd_wait "$LBD_PID" in_client curl -s -m 1 -o /dev/null "http://$VIP:$VIP_PORT/" && return 0
	fi
	say "FAIL: e2e lbd $1: VIP does not answer through lbd; its log:"
	bg_log "$LBD_PID" | tail -20 | tee -a "$SUMMARY"
	return 1
}

# `lbctl stop` detaches and unpins in the running lbd (a fraction of a
# second); `lbd --cleanup` loads the objects again first (seconds): only
# when the stop did not work.
e2e_lbd_down() {
	[ -n "$LBD_PID" ] || return 0
	local stopped=0
	"$O/lbctl" -s "$E2E_TMP/lbd.sock" stop >/dev/null 2>&1 &&
		wait_for -t 10 eval "! kill -0 $LBD_PID" && stopped=1
	bg_stop "$LBD_PID"
	LBD_PID=
	((stopped)) || lb_nsenter timeout 30 "$O/lbd" --cleanup -c "$E2E_TMP/lbd.conf" >/dev/null 2>&1
	rm -rf "$PIN_ROOT"
}

e2e_cleanup() {
	e2e_lbd_down
	topo_down
	[ -z "$E2E_TMP" ] || rm -rf "$E2E_TMP"
	E2E_TMP=
	rm -rf "$PIN_ROOT"
}

# e2e_stream NAME ADDR: one E2E_STREAM_MB MiB stream to ADDR:E2E_SPORT.
e2e_stream() {
	local mbps
	mbps=$(stream_mbps "$2" "$E2E_SPORT" "$E2E_STREAM_MB")
	if [ "${mbps:-0}" = 0 ]; then
		bench_note e2e "WARNING: stream through $1 failed"
		return 1
	fi
	bench_sample e2e "stream.$1" MB/s "$mbps"
}

# The rows of E2E_RUNS reduced to one per target: median requests/s over
# the rounds, errors summed.
e2e_medians() {
	echo "target,requests_per_s,errors,rounds"
	local t
	for t in direct direct_all nftables lbd_xdp lbd_tc lbd_proxy haproxy nginx_stream; do
		awk -F, -v t="$t" '$1 == t { print $3, $4 }' "$E2E_RUNS" | sort -n | awk -v t="$t" '
			{ r[NR] = $1; e += $2 }
			END { if (NR) printf "%s,%.0f,%d,%d\n", t, r[int((NR + 1) / 2)], e, NR }'
	done
}

# e2e_peer_up NAME VIP CMD...: starts a user-space peer (HAProxy, NGINX
# stream) in lb for every round; adds NAME:VIP to E2E_PEERS once it answers.
e2e_peer_up() {
	local name=$1 vip=$2
	shift 2
	topo_add_vip "$vip"
	bg_start "$NS_LB" "$@"
	if lbd_wait "$BG_PID" in_client curl -s -m 1 -o /dev/null "http://$vip:$VIP_PORT/"; then
		E2E_PEERS+=("$name:$vip")
	else
		say "FAIL: e2e $name does not answer on its VIP; its log:"
		bg_log "$BG_PID" | tail -5 | tee -a "$SUMMARY"
		failed=1
	fi
}

# e2e_peers_up: HAProxy (tcp mode) and NGINX stream, configured as in
# proxy.sh (lib.sh); what is not installed is said and left out.
e2e_peers_up() {
	local mod
	ulimit -n "$(ulimit -Hn)" 2>/dev/null
	if command -v haproxy >/dev/null; then
		haproxy_cfg "$HAP_VIP" "$VIP_PORT" "$E2E_SPORT" "$BE_PORT" "${BE_ADDRS[@]}" >"$E2E_TMP/haproxy.cfg"
		e2e_peer_up haproxy "$HAP_VIP" haproxy -db -f "$E2E_TMP/haproxy.cfg"
	else
		bench_note e2e "haproxy: not installed (make deps)"
	fi
	if mod=$(nginx_stream_module); then
		nginx_stream_conf "$mod" "$E2E_TMP" "$NGX_VIP" "$VIP_PORT" "$E2E_SPORT" "$BE_PORT" "${BE_ADDRS[@]}" \
			>"$E2E_TMP/nginx.conf"
		e2e_peer_up nginx_stream "$NGX_VIP" nginx -c "$E2E_TMP/nginx.conf"
	else
		bench_note e2e "nginx stream: ngx_stream_module.so not installed (libnginx-mod-stream; make deps)"
	fi
}

# e2e_order ROUND A B: A B in odd rounds, B A in even ones.
e2e_order() { if (($1 % 2)); then echo "$2 $3"; else echo "$3 $2"; fi; }

# e2e_target NAME ROUND: one round of target NAME (wrk, then the stream),
# if it is in this run: nftables (nft_ok), lbd_MODE (ok_modes, which loses
# a mode that does not come up), a user-space peer (E2E_PEERS). bench_e2e's
# locals.
e2e_target() {
	local t=$1 r=$2 p m x on=0 keep=()
	case $t in
	nftables)
		((nft_ok)) || return 0
		bench_progress "e2e round $r/$E2E_ROUNDS: nftables"
		nft_up || return 0
		wrk_run nftables "$r" "http://$NFT_VIP:$VIP_PORT/"
		e2e_stream nftables "$NFT_VIP"
		nft_down
		;;
	lbd_*)
		m=${t#lbd_}
		for x in "${ok_modes[@]}"; do [ "$x" = "$m" ] && on=1; done
		((on)) || return 0
		bench_progress "e2e round $r/$E2E_ROUNDS: lbd $m"
		E2E_LBD_EXTRA="vip stream { listen $VIP:$E2E_SPORT; backend ${BE_ADDRS[1]}:$E2E_SPORT; }"
		if e2e_lbd_up "$m"; then
			wrk_run "$t" "$r" "http://$VIP:$VIP_PORT/"
			e2e_stream "$t" "$VIP"
			e2e_lbd_down
		else
			e2e_lbd_down
			failed=1
			for x in "${ok_modes[@]}"; do [ "$x" = "$m" ] || keep+=("$x"); done
			ok_modes=("${keep[@]}")
		fi
		E2E_LBD_EXTRA=
		;;
	*)
		for p in "${E2E_PEERS[@]}"; do
			[ "${p%%:*}" = "$t" ] || continue
			bench_progress "e2e round $r/$E2E_ROUNDS: $t"
			wrk_run "$t" "$r" "http://${p#*:}:$VIP_PORT/"
			e2e_stream "$t" "${p#*:}"
		done
		;;
	esac
}

# e2e_paired A B: A's requests/s over B's, one sample a round in which
# both ran (figure paired.A_per_B, in bench_e2e's section). Two runs a
# few seconds apart share the machine's state, which the medians over the
# rounds do not: this is the ratio the targets are judged on.
e2e_paired() {
	local v
	while read -r v; do
		bench_sample e2e "paired.${1}_per_$2" x "$v"
	done < <(awk -F, -v a="$1" -v b="$2" '
		$1 == a { x[$2] = $3 } $1 == b { y[$2] = $3 }
		END { for (r in x) if ((r in y) && y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$E2E_RUNS")
}

# bench_e2e: section 3 on one topology, every contender once per round:
# direct and direct_all always (the baselines); with e2e nftables, lbd XDP
# and TC; with proxy lbd's fallback proxy, HAProxy and NGINX stream.
bench_e2e() {
	say "   e2e: wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s, Connection: close, client -> VIP -> 3 demo"
	say "   backends, $E2E_ROUNDS rounds, every target in turn in each round, each next to its baseline"
	if ! is_root; then skip e2e "needs root (network namespaces)"; return; fi
	local c i r ok_modes=() kernel=0 nft_ok=0
	want e2e && kernel=1
	for c in wrk curl ethtool socat $( ((kernel)) && echo nft); do
		command -v $c >/dev/null || { skip e2e "'$c' not installed (make deps)"; return; }
	done
	[ -x "$O/examples/demo_backend" ] || { say "FAIL: $O/examples/demo_backend not built"; failed=1; return; }
	# shellcheck disable=SC2034 # read by lib.sh
	TOPO_PREFIX=lbb$$-
	# shellcheck source=tests/net/lib.sh
	. "$REPO_DIR/tests/net/lib.sh"
	E2E_RUNS=$RES/e2e-runs.csv
	E2E_CSV=$RES/e2e.csv
	echo "target,round,requests_per_s,errors" >"$E2E_RUNS"
	topo_up 3 || { say "FAIL: e2e: topology"; failed=1; return; }
	# topo_up's traps, widened to what this section adds.
	trap e2e_cleanup EXIT
	trap 'e2e_cleanup; trap - EXIT; exit 130' INT
	trap 'e2e_cleanup; trap - EXIT; exit 143' TERM
	E2E_TMP=$(mktemp -d /tmp/lbd-bench.XXXXXX)
	# veth leaves TCP checksums partial (offload); an XDP program forwards
	# the frame as is and the receiver drops it. Real NICs put complete
	# checksums on the wire: do the same here, for every contender alike.
	in_client ethtool -K eth0 tx off >/dev/null
	for ((i = 1; i <= NBACKENDS; i++)); do
		in_be "$i" ethtool -K eth0 tx off >/dev/null
	done
	if ! start_backends "$BE_PORT"; then
		say "FAIL: e2e: backends do not start"
		failed=1
		e2e_cleanup
		return
	fi
	# one long stream per target and round: a sink on every backend
	for ((i = 1; i <= NBACKENDS; i++)); do
		bg_start "${NS_BE[$i]}" socat -u -b 262144 TCP-LISTEN:$E2E_SPORT,fork,reuseaddr OPEN:/dev/null
	done
	# The VIPs are on the client's subnet: lb must answer ARP for them.
	if ((kernel)); then
		topo_add_vip "$NFT_VIP"
		in_lb ip addr add "$NFT_SNAT/24" dev eth1
		if nft_up; then nft_ok=1; nft_down; else failed=1; fi
	fi
	# The user-space peers run through every round: idle, they cost the
	# others nothing, and they see none of their packets.
	E2E_PEERS=()
	want proxy && e2e_peers_up
	# lbd runs only for its own runs (its XDP program would see the other
	# targets' packets too), once per mode and round; a mode that does not
	# come up is said and left out of the later rounds.
	((kernel)) && ok_modes=(xdp tc)
	want proxy && ok_modes+=(proxy)
	[ -x "$O/lbd" ] || { say "e2e: lbd not built"; ok_modes=(); failed=1; }
	for ((r = 1; r <= E2E_ROUNDS; r++)); do
		bench_progress "e2e round $r/$E2E_ROUNDS: direct"
		wrk_run direct "$r" "http://${BE_ADDRS[1]}:$BE_PORT/"
		e2e_stream direct "${BE_ADDRS[1]}"
		wrk_run direct_all "$r" "http://${BE_ADDRS[1]}:$BE_PORT/" \
			"http://${BE_ADDRS[2]}:$BE_PORT/" "http://${BE_ADDRS[3]}:$BE_PORT/"
		# Each target runs right next to the one it is compared with, and
		# which goes first flips every round: a drift of the machine's
		# load within a round favours neither (see e2e_paired).
		for c in $(e2e_order "$r" nftables lbd_xdp) lbd_tc $(e2e_order "$r" haproxy lbd_proxy) nginx_stream; do
			e2e_target "$c" "$r"
		done
	done
	_bench_progress_clear
	e2e_cleanup
	trap - EXIT INT TERM
	e2e_medians >"$E2E_CSV"
	fmt "$E2E_CSV"
	bench_csv e2e "$E2E_RUNS"
	awk -F, 'NR > 1 && $4 > 0 { printf "%s round %s: %d failed requests\n", $1, $2, $4 }' "$E2E_RUNS" |
		while read -r l; do bench_note e2e "WARNING: $l"; done
	while IFS=, read -r t _ rps _; do
		bench_sample e2e "$t" requests/s "$rps"
	done < <(tail -n +2 "$E2E_RUNS")
	for t in direct_all nftables lbd_xdp lbd_tc haproxy nginx_stream; do bench_baseline e2e "$t" direct; done
	for t in nftables lbd_xdp lbd_tc haproxy nginx_stream; do bench_baseline e2e "stream.$t" stream.direct; done
	bench_baseline e2e lbd_proxy haproxy
	bench_baseline e2e stream.lbd_proxy stream.haproxy
	e2e_paired lbd_xdp nftables
	e2e_paired lbd_proxy haproxy
}

# e2e_matrix: section 3 as one table, a row per contender (Markdown).
e2e_matrix() {
	echo "| Contender | Requests/s (min-max) | vs direct | Stream MB/s (min-max) | vs direct |"
	echo "|---|---:|---:|---:|---:|"
	bench_figures | awk -F, '$1 == "e2e" { m[$2] = $4; lo[$2] = $5; hi[$2] = $6 }
		function cell(f) { return (f in m) ? sprintf("%.0f (%.0f-%.0f)", m[f], lo[f], hi[f]) : "-" }
		function ratio(f, b) { return ((f in m) && (b in m) && m[b] > 0) ? sprintf("%.2fx", m[f] / m[b]) : "-" }
		END {
			n = split("direct direct_all lbd_xdp lbd_tc lbd_proxy nftables haproxy nginx_stream", t, " ")
			for (i = 1; i <= n; i++)
				if ((t[i] in m) || (("stream." t[i]) in m))
					printf "| %s | %s | %s | %s | %s |\n", t[i], cell(t[i]), ratio(t[i], "direct"),
						cell("stream." t[i]), ratio("stream." t[i], "stream.direct")
		}'
	echo ""
	echo "Every contender ran on one topology, once per round."
}

# Memory per idle connection of the user-space proxies (tools/bench/proxy.sh
# with no rounds: their requests/s and streams are section 3's rounds).
bench_proxy() {
	local csv=$RES/proxy.csv t kib
	bench_progress "proxy: tools/bench/proxy.sh (memory per idle connection)"
	PROXY_RES=$RES PROXY_ROUNDS=0 "$BENCH_DIR/proxy.sh" || failed=1
	_bench_progress_clear
	[ -s "$csv" ] || return 0
	bench_csv e2e "$csv"
	# target,requests_per_s,errors,stream_MBps,rss_KiB_per_idle_conn
	while IFS=, read -r t _ _ _ kib; do
		_bench_num "$kib" 2>/dev/null && bench_stat e2e "idle_rss.$t" KiB/connection "$kib" "$kib" "$kib" 1
	done < <(tail -n +2 "$csv")
}

# Workers (issue 6): local delivery against the same instance reached
# directly on its port, app.js under lbd against PM2 cluster mode behind
# NGINX, memory, rolling reload under load, crash to serving
# (tools/bench/workers.sh, its own topology).
bench_workers() {
	local runs=$RES/workers-runs.csv figs=$RES/workers-figures.csv t rps mbps f u v lbd pm2 ngx
	bench_section workers "Workers: local delivery, PM2 cluster mode + NGINX, memory, rolling reload, crash to serving"
	bench_method workers "lbd supervises demo_backend (VIP :80), a socat sink (VIP :5001), examples/app.js" \
		"x${NODE_INSTANCES:-8} (VIP :8080) and single-instance crash workers behind forward-local VIPs." \
		"local/direct: wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s with Connection: close and one socat" \
		"stream from the client namespace, through the VIP (local) or to lb's address and the" \
		"instance port (direct). node_lbd: the app.js workers through their VIP; node_pm2_nginx:" \
		"the same app.js under PM2 cluster mode (pm2 start app.js -i ${NODE_INSTANCES:-8}) behind NGINX" \
		"(reverse proxy, keep-alive upstream) in the same namespace. Every target once untimed," \
		"then in rounds, the order flipped each round. rss: VmRSS after the rounds (lbd with" \
		"every instance above; the PM2 daemon; NGINX master and workers). reload: lbload (8 short" \
		"HTTP connections in flight) during lbctl worker reload of the app.js worker, and during" \
		"pm2 reload through NGINX. crash_to_serve: kill -9 of a single instance until its" \
		"replacement answers through the VIP (restart_delay 100 ms included)." \
		"concurrent.local_per_direct: local and direct at once, two wrk of half the" \
		"connections each, once a round: a ratio the machine's load drifts cannot bias."
	bench_progress "workers: tools/bench/workers.sh"
	WORKERS_RES=$RES "$BENCH_DIR/workers.sh" || failed=1
	_bench_progress_clear
	if [ -s "$runs" ]; then
		bench_csv workers "$runs"
		# target,round,requests_per_s,errors,stream_MBps
		while IFS=, read -r t _ rps _ mbps; do
			bench_sample workers "$t" requests/s "$rps"
			[ -z "$mbps" ] || bench_sample workers "stream.$t" MB/s "$mbps"
		done < <(tail -n +2 "$runs")
		bench_baseline workers local direct
		bench_baseline workers stream.local stream.direct
		bench_baseline workers node_lbd node_pm2_nginx
		bench_target workers local '>=' 0.95 "local delivery vs direct (requests/s)"
		bench_plot workers requests/s "Short HTTP connections to worker instances (requests/s)"
	fi
	if [ -s "$figs" ]; then
		bench_csv workers "$figs"
		# figure,unit,value
		while IFS=, read -r f u v; do
			bench_sample workers "$f" "$u" "$v"
		done < <(tail -n +2 "$figs")
		grep -q '^concurrent.local_per_direct,' "$figs" &&
			bench_target workers concurrent.local_per_direct '>=' 0.95 \
				"local delivery vs direct, both at once (requests/s)"
		bench_target workers rss.lbd '<=' 10240 "lbd's resident memory supervising its instances (KiB)"
		grep -q '^reload.lbd_app_js.failed,' "$figs" &&
			bench_target workers reload.lbd_app_js.failed '<=' 0 "failed requests during a rolling reload"
		grep -q '^reload.lbd_demo_backend.failed,' "$figs" &&
			bench_target workers reload.lbd_demo_backend.failed '<=' 0 "failed requests during a rolling reload"
		lbd=$(awk -F, '$1 == "rss.lbd" { print $3 }' "$figs")
		pm2=$(awk -F, '$1 == "rss.pm2_daemon" { print $3 }' "$figs")
		ngx=$(awk -F, '$1 == "rss.nginx" { print $3 }' "$figs")
		[ -n "$lbd" ] && [ -n "$pm2" ] && [ -n "$ngx" ] &&
			bench_note workers "$(awk -v l="$lbd" -v p="$pm2" -v n="$ngx" -v i="$(awk -F, '$1 == "instances.lbd" { print $3 }' "$figs")" \
				'BEGIN { printf "Supervisor memory: lbd %.1f MiB for %d instances (and the data path); the PM2 daemon %.1f MiB, NGINX %.1f MiB: lbd is %.2fx the PM2 daemon, %.2fx PM2 and NGINX together.", l / 1024, i, p / 1024, n / 1024, l / p, l / (p + n) }')"
		bench_plot workers KiB "Resident memory (KiB): lbd, the PM2 daemon, NGINX" '^rss[.]'
		bench_plot workers ms "Crash (kill -9) to serving again through the VIP (ms)" '^crash_to_serve'
	fi
	bench_section_end workers
}

# ------------------------------------------------------------- 5. control plane

# ctl_watch NS OUT: in namespace NS, waits (at most 10 s) until the UDP
# counters (InDatagrams + NoPorts) grow, then writes the time (ns) to OUT.
# "go" in OUT first, once the baseline is read. One bash process polling
# /proc/net/snmp: no fork per poll.
ctl_watch() {
	# shellcheck disable=SC2016 # for the inner bash
	ip netns exec "$1" bash -c '
		udp() { local l; U=0; while read -r l; do
			case $l in "Udp: "[0-9]*) set -- $l; U=$(($2 + $3)); return ;; esac
		done </proc/net/snmp; }
		udp; base=$U; echo go >"$1"
		while ((SECONDS < 10)); do udp; ((U > base)) && { date +%s%N >>"$1"; exit 0; }; done
		exit 1' _ "$2" &
	CTL_WATCH=$!
}

# ctl_add_to_flow ROUND TRAFFIC: del be3, add it back with lbctl, and time
# (a) lbctl's answer (the table built and swapped in), (b) with TRAFFIC, the
# first packet of a new flow arriving at be3.
ctl_add_to_flow() {
	local out=$E2E_TMP/watch t0 t1 t2 i be=${BE_ADDRS[3]}:$BE_PORT
	lbctl backend del "$be" vip=web >/dev/null || return 1
	sleep 0.3
	: >"$out"
	if [ "$2" = traffic ]; then
		ctl_watch "${NS_BE[3]}" "$out"
		for ((i = 0; i < 50; i++)); do grep -q go "$out" && break; sleep 0.02; done
	fi
	t0=$(date +%s%N)
	lbctl backend add "$be" vip=web >/dev/null || return 1
	t1=$(date +%s%N)
	bench_sample control "swap.$2" ms "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')"
	[ "$2" = traffic ] || return 0
	if ! wait "$CTL_WATCH"; then
		bench_note control "WARNING: round $1: no new flow reached the added backend within 10 s"
		return 1
	fi
	t2=$(tail -1 "$out")
	bench_sample control add_to_first_flow ms "$(awk -v d=$((t2 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')"
}

bench_control() {
	local rounds=${CTL_ROUNDS:-${QUICK:+3}} changes=${CTL_CHANGES:-${QUICK:+20}} i r t0 t1 gen
	rounds=${rounds:-10} changes=${changes:-200}
	bench_section control "Control plane: lbctl backend add to the first new flow; changes per second with 1000 backends"
	bench_method control "lbd in XDP mode, a UDP VIP over backends be1 and be2; tools/lbgen sends" \
		"2000 frames/s from the client, each one a new flow. Each round deletes be3 and" \
		"adds it back with lbctl: add_to_first_flow is from starting lbctl to be3's kernel" \
		"counting the first UDP datagram (polled without forks); swap.traffic and" \
		"swap.idle are lbctl's round trip, the Maglev table built and swapped in, with" \
		"that traffic and without it; lbctl_status is the round trip of a command that" \
		"changes nothing (lbctl's start and the socket). $rounds rounds. changes_per_s: $changes lbctl" \
		"backend add, then as many del, on a second VIP holding 1000 backends (each" \
		"change rebuilds its table and persists the runtime layer; lbctl's own start is" \
		"included)."
	if ! is_root; then skip control "needs root (namespaces, BPF)"; return; fi
	if [ ! -x "$O/tools/lbgen" ] || [ ! -x "$O/lbd" ]; then
		say "FAIL: control: lbd or lbgen not built"
		failed=1
		return
	fi
	# shellcheck disable=SC2034 # read by lib.sh
	TOPO_PREFIX=lbc$$- TOPO_QUEUES=1
	# shellcheck source=tests/net/lib.sh
	. "$REPO_DIR/tests/net/lib.sh"
	topo_up 3 || { say "FAIL: control: topology"; failed=1; return; }
	trap e2e_cleanup EXIT
	trap 'e2e_cleanup; trap - EXIT; exit 130' INT
	trap 'e2e_cleanup; trap - EXIT; exit 143' TERM
	E2E_TMP=$(mktemp -d /tmp/lbd-bench.XXXXXX)
	SOCK=$E2E_TMP/lbd.sock
	_gro_refresh "$NS_CLIENT" eth0
	_gro_refresh "$NS_LB" eth0
	# 1000 backends on a subnet of their own (no host answers there)
	in_lb ip addr add 198.18.16.254/20 dev eth1
	E2E_LBD_EXTRA="vip big {
		    listen $VIP:81 udp;
		    $(for ((i = 1; i <= 1000; i++)); do printf 'backend 198.18.%d.%d:%d; ' $((16 + i / 250)) $((1 + i % 250)) "$BE_PORT"; done)
		}"
	bench_progress "control: lbd up (1000-backend VIP)"
	if ! e2e_lbd_up xdp udp >/dev/null; then
		E2E_LBD_EXTRA=
		say "FAIL: control: lbd did not come up"
		bg_log "$LBD_PID" | tail -5 | tee -a "$SUMMARY"
		failed=1
		e2e_cleanup
		trap - EXIT INT TERM
		return
	fi
	E2E_LBD_EXTRA=
	for ((r = 1; r <= rounds; r++)); do
		bench_progress "control: round $r/$rounds idle"
		ctl_add_to_flow "$r" idle || { say "FAIL: control: lbctl backend del/add"; failed=1; break; }
		# the floor: a command that changes nothing
		t0=$(date +%s%N)
		lbctl status >/dev/null
		t1=$(date +%s%N)
		bench_sample control lbctl_status ms "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')"
	done
	bg_start "$NS_CLIENT" "$O/tools/lbgen" -i eth0 -s "$CLIENT_ADDR" -d "$VIP:$VIP_PORT" \
		--dmac "$(ip -n "$NS_LB" -br link show eth0 | awk '{ print $3 }')" \
		-f 1 -n 1000 -r 2000 -t $((rounds * 2 + 10))
	gen=$BG_PID
	sleep 0.5
	for ((r = 1; r <= rounds; r++)); do
		bench_progress "control: round $r/$rounds under traffic"
		ctl_add_to_flow "$r" traffic
	done
	bg_stop "$gen"
	bench_progress "control: $changes adds and $changes deletes on 1000 backends"
	t0=$(date +%s%N)
	for ((i = 0; i < changes; i++)); do
		lbctl backend add "198.18.30.$((1 + i % 250)):$((4000 + i / 250))" vip=big >/dev/null || break
	done
	for ((i = 0; i < changes; i++)); do
		lbctl backend del "198.18.30.$((1 + i % 250)):$((4000 + i / 250))" vip=big >/dev/null || break
	done
	t1=$(date +%s%N)
	if ((i == changes)); then
		bench_sample control changes_per_s changes/s "$(awk -v n=$((2 * changes)) -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (d / 1e9) }')"
	else
		say "FAIL: control: lbctl change $i on the 1000-backend VIP failed"
		failed=1
	fi
	_bench_progress_clear
	e2e_cleanup
	trap - EXIT INT TERM
	bench_baseline control swap.traffic swap.idle
	bench_plot control ms "lbctl backend add: answered (swap) and first new flow (ms)"
	bench_section_end control
}

# ------------------------------------------------------------- main

for b in "$O/tools/bench_xdp" "$O/tools/bench_maglev"; do
	[ -x "$b" ] || { echo "bench: $b not built (make O=$O)" >&2; exit 1; }
done
say "lbd benchmark $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
say "sections: $BENCH_ONLY${QUICK:+ (QUICK)}; results: $RES"
want xdp && bench_xdp
want pps && bench_pps

if want e2e || want proxy; then
	bench_section e2e "Requests/s with short connections and one stream: direct, lbd XDP, lbd TC, lbd proxy, nftables DNAT, HAProxy, NGINX stream"
	bench_method e2e "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s with Connection: close from the" \
		"client namespace to a VIP in front of 3 demo backends (tests/net/lib.sh topology)." \
		"direct is one backend without a balancer, direct_all all three at once. Every" \
		"contender runs on that one topology once per round, right next to the one it is" \
		"compared with (lbd XDP and nftables, lbd proxy and HAProxy; which of the two goes" \
		"first flips every round). paired.A_per_B is A's requests/s over B's within each" \
		"round: the ratio the targets are judged on, as runs seconds apart share the" \
		"machine's load and the medians over the rounds do not. The contenders: the kernel paths" \
		"(nftables DNAT + SNAT, lbd XDP and TC: e2e) and the user-space proxies (lbd's" \
		"fallback proxy, HAProxy tcp mode, NGINX stream: proxy; each on a VIP of its own," \
		"configured as in tools/bench/lib.sh). A stream is one $E2E_STREAM_MB MiB socat" \
		"transfer through the VIP. idle_rss: memory per idle connection of the proxies," \
		"from tools/bench/proxy.sh (its own topology; IDLE_CONNS connections)."
	bench_e2e
	want proxy && bench_proxy
	want e2e && bench_target e2e paired.lbd_xdp_per_nftables '>=' 1.0 "lbd XDP vs nftables DNAT (requests/s, paired rounds)"
	want proxy && bench_target e2e paired.lbd_proxy_per_haproxy '>=' 1.0 "lbd proxy vs HAProxy (requests/s, paired rounds)"
	e2e_matrix >"$RES/e2e-matrix.md"
	bench_markdown e2e "$RES/e2e-matrix.md"
	bench_plot e2e requests/s "Short HTTP connections through the balancer (requests/s)"
	bench_plot e2e MB/s "One stream through each contender (MB/s)"
	bench_section_end e2e
fi
want maglev && bench_maglev
want control && bench_control
want workers && bench_workers
# several nodes behind BGP/ECMP (tools/bench/cluster.sh, tests/net/test_bgp.sh)
# shellcheck source=tools/bench/cluster.sh
want cluster && . "$BENCH_DIR/cluster.sh" && bench_cluster

bench_report
say ""
say "report: $RES/REPORT.md"
exit $failed
