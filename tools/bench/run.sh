#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make bench`: every benchmark of lbd in one run, figures as ratios taken in
# that same run (the machines here are noisy). Prints tables and writes
# them as CSV (and PNG plots when gnuplot is there) under
# bench-results/<timestamp>/, with bench-results/latest pointing at it.
#
#   1. XDP per-packet cost (tools/bench_xdp.c; method described there):
#      lb_xdp vs a bare MAC-swap XDP_TX program, BPF_PROG_RUN live frames.
#   2. Maglev build time and disruption (tools/bench_maglev.c).
#   3. End to end, short connections (wrk, Connection: close), client ->
#      VIP -> 3 backends on the tests/net topology: lbd in XDP mode vs
#      direct to one backend vs an nftables DNAT load balancer.
#
# Environment: O (build dir), BENCH_RUNS (median of, default 7),
# BENCH_ONLY=xdp,maglev,e2e,proxy (sections), WRK_SECONDS (3), WRK_CONNS (32),
# E2E_ROUNDS (3).
# Needs root for sections 1 and 3 (namespaces, BPF); says so and skips
# them otherwise. Everything it starts it stops, also on Ctrl-C.
set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
O=${O:-build}
case $O in /*) ;; *) O=$REPO_DIR/$O ;; esac
export O
BENCH_RUNS=${BENCH_RUNS:-7}
BENCH_ONLY=${BENCH_ONLY:-xdp,maglev,e2e,proxy}
WRK_SECONDS=${WRK_SECONDS:-3}
E2E_ROUNDS=${E2E_ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
VIP=198.18.0.10
VIP_PORT=80
BE_PORT=3000
PIN_ROOT=/sys/fs/bpf/lbd-bench

RES=$REPO_DIR/bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" || exit 1
ln -sfn "$(basename "$RES")" "$REPO_DIR/bench-results/latest"
SUMMARY=$RES/summary.txt
failed=0

want() { [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
is_root() { [ "$(id -u)" -eq 0 ]; }
say() { echo "$@" | tee -a "$SUMMARY"; }
skip() { say "SKIP: bench $1: $2"; }
# fmt CSV: the CSV file as an aligned table (into the summary too).
fmt() { column -t -s, "$1" | tee -a "$SUMMARY"; }

# ------------------------------------------------------------- 1. XDP cost

bench_xdp() {
	local csv=$RES/xdp.csv
	say ""
	say "== XDP per-packet cost: lb_xdp vs bare MAC-swap XDP_TX (BPF_PROG_RUN live frames,"
	say "   ns/packet from the kernel's timer, median of $BENCH_RUNS runs)"
	if ! is_root; then skip xdp "needs root (BPF_PROG_RUN, network namespace)"; return; fi
	timeout --kill-after=5 300 "$O/tools/bench_xdp" -R "$BENCH_RUNS" >"$csv" &
	if ! wait $!; then
		say "FAIL: bench_xdp exited with an error"
		failed=1
		return
	fi
	fmt "$csv"
	awk -F, '$1 == "established" {
		printf "established flow: %.2fx bare XDP_TX (best runs: %.2fx; target <= 1.60x): %s\n",
		       $5, $6, ($5 <= 1.6 ? "met" : "NOT met") }' "$csv" | tee -a "$SUMMARY"
	grep -q ',FAIL:' "$csv" && { say "FAIL: a case measured the wrong path (check column)"; failed=1; }
	have_gnuplot || return 0
	gnuplot <<-EOF 2>/dev/null
		set terminal pngcairo size 800,480 noenhanced
		set output "$RES/xdp.png"
		set datafile separator ","
		set title "XDP per-packet cost (ns, lower is better)"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set boxwidth 0.9
		set key top left
		set logscale y
		set yrange [10:*]
		set ylabel "ns/packet"
		plot "$csv" every ::1 using 3:xtic(1) title "bare (bench_tx / bench_pass)", \
		     "" every ::1 using 4 title "lb_xdp"
	EOF
}

# ------------------------------------------------------------- 2. Maglev

bench_maglev() {
	local csv=$RES/maglev.csv raw=$RES/maglev.raw
	say ""
	say "== Maglev (M = 65537): build time, median of 21 builds; disruption = share of"
	say "   all slots whose backend changes when one backend leaves/joins (ideal: its share)"
	if ! timeout 60 "$O/tools/bench_maglev" >"$raw"; then
		say "FAIL: bench_maglev exited with an error"
		failed=1
		return
	fi
	{
		echo "what,backends,value,ideal_or_min,max,unit"
		awk -F, '$1 == "maglev_build" && ($2 == 100 || $2 == 1000) {
				printf "build,%s,%s,%s,%s,us\n", $2, $4, $5, $6 }
			 $1 == "maglev_disruption" && $2 == 100 {
				printf "disruption_%s,%s,%s,%s,,%%slots\n", $5, $2, $3, $4 }' "$raw"
	} >"$csv"
	fmt "$csv"
	awk -F, '$1 == "maglev_disruption" && $2 == 100 && $5 == "remove" {
		# moved slots that were not the removed backend own, as a share of theirs
		other = ($3 - $4) / (100 - $4) * 100
		printf "removing 1 of 100 moves %.2f%% of the other backends'"'"' slots (target <= 1.5%%)\n", other }
		$1 == "maglev_build" && $2 == 1000 {
		printf "1000-backend build: %.2f ms (target < 5 ms, aim < 1 ms)\n", $4 / 1000 }' \
		"$raw" | tee -a "$SUMMARY"
}

# ------------------------------------------------------------- 3. end to end

E2E_RUNS=      # one row per wrk run: target,round,requests/s,errors
E2E_CSV=       # one row per target: medians over the rounds
E2E_TMP=
LBD_PID=
NFT_VIP=198.18.0.11 # nftables gets its own VIP and SNAT address
NFT_SNAT=198.18.1.253

# wrk_runtime LOG: seconds the wrk run of LOG took, from its own figure.
wrk_runtime() {
	awk '/ requests in / { t = $4; sub(/,$/, "", t); v = t + 0
		if (t ~ /ms$/) v /= 1000; else if (t ~ /m$/) v *= 60; else if (t ~ /h$/) v *= 3600
		printf "%.2f\n", v }' "$1"
}

# wrk_stalled LOG: wrk ended more than a fifth (at least 0.5 s) late.
wrk_stalled() {
	local t
	t=$(wrk_runtime "$1")
	[ -n "$t" ] && awk -v t="$t" -v d="$WRK_SECONDS" 'BEGIN {
		l = d / 5; if (l < 0.5) l = 0.5; exit !(t > d + l) }'
}

# wrk_run NAME ROUND URL...: wrk from the client namespace, Connection:
# close, for WRK_SECONDS. One URL: one wrk of WRK_THREADS threads; several:
# one single-threaded wrk per URL at once, the connections split between
# them, the figures summed. Appends a row to E2E_RUNS.
wrk_run() {
	local name=$1 round=$2 n i rps=0 errs=0 r e log pids try stalled
	shift 2
	n=$#
	for try in 1 2; do
		pids=()
		for ((i = 1; i <= n; i++)); do
			log=$RES/wrk-$name-r$round-$i.txt
			# In the background: `wait` lets a Ctrl-C reach our trap at once
			# (wrk catches SIGINT itself, and bash would then carry on).
			in_client timeout --kill-after=5 $((WRK_SECONDS + 15)) wrk \
				-t"$((n > 1 ? 1 : WRK_THREADS))" -c"$(((WRK_CONNS + n - 1) / n))" \
				-d"${WRK_SECONDS}s" -H 'Connection: close' "${!i}" >"$log" 2>&1 &
			pids+=($!)
		done
		wait "${pids[@]}"
		stalled=
		for ((i = 1; i <= n; i++)); do
			wrk_stalled "$RES/wrk-$name-r$round-$i.txt" && stalled=$i
		done
		[ -z "$stalled" ] && break
		# wrk's timers run even when the network is dead, so it ends on time
		# then; a late end means wrk itself did not run (host CPU
		# contention), and answers in flight across that gap count as its
		# "timeout" errors: no figure of the target. Once more.
		stalled="WARNING: e2e $name round $round: wrk ran $(wrk_runtime \
			"$RES/wrk-$name-r$round-$stalled.txt") s of $WRK_SECONDS s: the client was stalled"
		if [ "$try" = 2 ]; then
			say "$stalled again; figures kept"
			break
		fi
		say "$stalled, not the target; run again"
		for ((i = 1; i <= n; i++)); do
			mv "$RES/wrk-$name-r$round-$i.txt" "$RES/wrk-$name-r$round-$i.stalled.txt"
		done
	done
	for ((i = 1; i <= n; i++)); do
		log=$RES/wrk-$name-r$round-$i.txt
		r=$(awk '/^Requests\/sec:/ { print $2 }' "$log")
		# socket errors and non-2xx answers
		e=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); for (j = 1; j <= NF; j++) s += $j }
			 /Non-2xx/ { s += $NF } END { print s + 0 }' "$log")
		if [ -z "$r" ]; then
			say "FAIL: e2e $name: wrk gave no figure (see $log)"
			failed=1
			return 1
		fi
		rps=$(awk -v a="$rps" -v b="$r" 'BEGIN { printf "%.2f", a + b }')
		errs=$((errs + e))
	done
	echo "$name,$round,$rps,$errs" >>"$E2E_RUNS"
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

# An nftables DNAT load balancer on NFT_VIP: jhash over the client's
# address and port, SNAT towards the backends (full NAT, like lbd). Loaded
# only for its own runs, so no other run pays for conntrack; its SNAT
# address is its own, so its reply ports never meet lbd's NAT flows.
nft_up() {
	in_lb nft -f - <<-EOF || { say "FAIL: e2e nftables: ruleset refused"; return 1; }
		table ip lbbench {
			chain pre {
				type nat hook prerouting priority dstnat; policy accept;
				ip daddr $NFT_VIP tcp dport $VIP_PORT dnat to jhash ip saddr . tcp sport mod 3 seed 0x5eed map { 0 : ${BE_ADDRS[1]}, 1 : ${BE_ADDRS[2]}, 2 : ${BE_ADDRS[3]} } : $BE_PORT
			}
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				ct original ip daddr $NFT_VIP snat ip to $NFT_SNAT
			}
		}
	EOF
	wait_http "http://$NFT_VIP:$VIP_PORT/" 5 && return 0
	say "FAIL: e2e nftables: VIP does not answer"
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

# Issue 4: lbd in XDP mode on VIP, config syntax as in examples/. Returns 1
# (after saying why) when lbd is not built or does not serve the VIP.
e2e_lbd_up() {
	local conf=$E2E_TMP/lbd.conf i
	if [ ! -x "$O/lbd" ]; then
		say "lbd: not built yet"
		return 1
	fi
	cat >"$conf" <<-EOF
		lbd {
		    interfaces eth0 eth1;
		    mode xdp;
		    control $E2E_TMP/lbd.sock;
		    state_dir $E2E_TMP;
		    bpffs $PIN_ROOT;
		}
		vip web {
		    listen $VIP:$VIP_PORT;
		    backend ${BE_ADDRS[1]}:$BE_PORT weight=1;
		    backend ${BE_ADDRS[2]}:$BE_PORT weight=1;
		    backend ${BE_ADDRS[3]}:$BE_PORT weight=1;
		}
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
	wait_http "http://$VIP:$VIP_PORT/" 10 && return 0
	say "FAIL: e2e lbd: VIP does not answer through lbd; its log:"
	bg_log "$LBD_PID" | tail -20 | tee -a "$SUMMARY"
	return 1
}

e2e_lbd_down() {
	[ -n "$LBD_PID" ] || return 0
	bg_stop "$LBD_PID"
	LBD_PID=
	lb_nsenter timeout 10 "$O/lbd" --cleanup -c "$E2E_TMP/lbd.conf" >/dev/null 2>&1
	rm -rf "$PIN_ROOT"
}

e2e_cleanup() {
	e2e_lbd_down
	topo_down
	[ -z "$E2E_TMP" ] || rm -rf "$E2E_TMP"
	E2E_TMP=
	rm -rf "$PIN_ROOT"
}

# The rows of E2E_RUNS reduced to one per target: median requests/s over
# the rounds, errors summed.
e2e_medians() {
	echo "target,requests_per_s,errors,rounds"
	local t
	for t in direct direct_all nftables lbd; do
		awk -F, -v t="$t" '$1 == t { print $3, $4 }' "$E2E_RUNS" | sort -n | awk -v t="$t" '
			{ r[NR] = $1; e += $2 }
			END { if (NR) printf "%s,%.0f,%d,%d\n", t, r[int((NR + 1) / 2)], e, NR }'
	done
}

bench_e2e() {
	say ""
	say "== End to end: HTTP requests/s, wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s, Connection: close,"
	say "   client -> VIP -> 3 demo backends (tests/net topology), median of $E2E_ROUNDS rounds;"
	say "   each round runs every target in turn. direct: one backend, as issue 4 asks;"
	say "   direct_all: all 3 at once (the balancer's ideal). Everything crosses lb's stack."
	if ! is_root; then skip e2e "needs root (network namespaces)"; return; fi
	local c i r lbd_ok=0 nft_ok=0
	for c in wrk nft curl ethtool; do
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
	# The VIPs are on the client's subnet: lb must answer ARP for them.
	topo_add_vip "$NFT_VIP"
	in_lb ip addr add "$NFT_SNAT/24" dev eth1
	if nft_up; then nft_ok=1; nft_down; else failed=1; fi
	if e2e_lbd_up; then lbd_ok=1; elif [ -x "$O/lbd" ]; then failed=1; fi
	for ((r = 1; r <= E2E_ROUNDS; r++)); do
		wrk_run direct "$r" "http://${BE_ADDRS[1]}:$BE_PORT/"
		wrk_run direct_all "$r" "http://${BE_ADDRS[1]}:$BE_PORT/" \
			"http://${BE_ADDRS[2]}:$BE_PORT/" "http://${BE_ADDRS[3]}:$BE_PORT/"
		if ((nft_ok)) && nft_up; then
			wrk_run nftables "$r" "http://$NFT_VIP:$VIP_PORT/"
			nft_down
		fi
		((lbd_ok)) && wrk_run lbd "$r" "http://$VIP:$VIP_PORT/"
	done
	e2e_cleanup
	trap - EXIT INT TERM
	e2e_medians >"$E2E_CSV"
	fmt "$E2E_CSV"
	awk -F, 'NR > 1 { r[$1] = $2; if ($3 > 0) printf "WARNING: %s: %d failed requests\n", $1, $3 }
		END {
			if (r["direct"] && r["nftables"])
				printf "nftables / direct: %.2fx\n", r["nftables"] / r["direct"]
			if (r["direct"] && r["lbd"])
				printf "lbd / direct: %.2fx (target >= 0.95x)\n", r["lbd"] / r["direct"]
			if (r["direct_all"] && r["nftables"])
				printf "nftables / direct_all: %.2fx\n", r["nftables"] / r["direct_all"]
			if (r["direct_all"] && r["lbd"])
				printf "lbd / direct_all: %.2fx\n", r["lbd"] / r["direct_all"]
			if (r["nftables"] && r["lbd"])
				printf "lbd / nftables: %.2fx (target >= 1.00x)\n", r["lbd"] / r["nftables"]
		}' "$E2E_CSV" | tee -a "$SUMMARY"
	have_gnuplot || return 0
	gnuplot <<-EOF 2>/dev/null
		set terminal pngcairo size 640,400 noenhanced
		set output "$RES/e2e.png"
		set datafile separator ","
		set title "Short HTTP connections through the balancer (requests/s)"
		set style data histograms
		set style fill solid 0.8 border -1
		set boxwidth 0.8
		set yrange [0:*]
		plot "$E2E_CSV" every ::1 using 2:xtic(1) notitle
	EOF
}

have_gnuplot() { command -v gnuplot >/dev/null; }

# ------------------------------------------------------------- main

for b in "$O/tools/bench_xdp" "$O/tools/bench_maglev"; do
	[ -x "$b" ] || { echo "bench: $b not built (make O=$O)" >&2; exit 1; }
done
say "lbd benchmark $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
want xdp && bench_xdp
want maglev && bench_maglev
want e2e && bench_e2e
# 4. The fallback proxy against HAProxy (tools/bench/proxy.sh).
want proxy && { PROXY_RES=$RES "$BENCH_DIR/proxy.sh" || failed=1; }
say ""
say "results: $RES"
exit $failed
