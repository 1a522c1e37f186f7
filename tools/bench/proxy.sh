#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The fallback proxy against HAProxy (tcp mode) and NGINX stream, on the
# tests/net topology:
# client -> VIP in the lb namespace -> 3 demo backends. Same machine, same
# run, in rounds (every target per round, medians), so the ratios hold on a
# noisy machine.
#   - short connections: wrk, Connection: close, requests/s
#   - one long stream: 2 GiB client -> backend through the VIP (socat), MB/s
#   - CPU the target itself spent per request and per GiB streamed (user +
#     system time of its processes and threads over the run, from
#     /proc/PID/task/*/stat): wall-clock rates swing with whatever else the
#     machine runs; the work each target does per request does not
#   - syscalls per request: one more wrk run per target under perf stat
#     (the syscall tracepoints of its processes and threads); like the CPU
#     per request, and unlike requests/s, it does not move with the load
#     (linux-perf; PROXY_SYSCALLS=0 leaves it out)
#   - memory per idle connection: RSS growth with 2000 idle client
#     connections (user space only; kernel socket buffers are not counted;
#     the sum over the process and its children: NGINX's connections live in
#     its worker processes)
# NGINX stream needs Debian's libnginx-mod-stream (make deps installs it);
# without it the run says so and goes on with the other two.
#
# Environment: O (build dir), WRK_SECONDS (3), WRK_CONNS (32), WRK_THREADS (2),
# PROXY_ROUNDS (3), PROXY_SYSCALLS (1), PROXY_RES (results dir; default
# bench-results/latest).
# Needs root (namespaces). Stops everything it starts, also on Ctrl-C.
set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
O=${O:-build}
case $O in /*) ;; *) O=$REPO_DIR/$O ;; esac
export O
WRK_SECONDS=${WRK_SECONDS:-3}
WRK_CONNS=${WRK_CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
ROUNDS=${PROXY_ROUNDS:-3}
STREAM_MB=${STREAM_MB:-2048}
IDLE_CONNS=${IDLE_CONNS:-2000}
# With make bench (run.sh) the results join its latest directory.
RES=${PROXY_RES:-$REPO_DIR/bench-results/latest}
case $RES in /*) ;; *) RES=$REPO_DIR/$RES ;; esac
[ -n "${PROXY_RES:-}" ] || [ -d "$RES" ] || RES=$REPO_DIR/bench-results/proxy-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" || exit 1
SUMMARY=$RES/summary.txt
LBD_VIP=198.18.0.10 HAP_VIP=198.18.0.11 NGX_VIP=198.18.0.12
PORT=80 SPORT=5001 BE_PORT=3000
failed=0

# say, median, wrk_runs, wrk_result (shared with run.sh)
# shellcheck source=tools/bench/lib.sh
. "$BENCH_DIR/lib.sh"

say ""
say "== Fallback proxy vs HAProxy (tcp mode) and NGINX stream: wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s Connection: close,"
say "   one ${STREAM_MB} MiB stream, RSS per idle connection; median of $ROUNDS rounds"
if [ "$(id -u)" -ne 0 ]; then say "SKIP: bench proxy: needs root (network namespaces)"; exit 0; fi
for c in wrk haproxy socat curl python3; do
	command -v $c >/dev/null || { say "SKIP: bench proxy: '$c' not installed"; exit 0; }
done
for b in "$O/lbd" "$O/examples/demo_backend"; do
	[ -x "$b" ] || { say "FAIL: bench proxy: $b not built"; exit 1; }
done
NGX_MOD=$(nginx_stream_module)
if [ -z "$NGX_MOD" ]; then
	say "SKIP: bench proxy: nginx stream: ngx_stream_module.so not installed (libnginx-mod-stream; make deps)"
fi

# shellcheck disable=SC2034 # read by lib.sh
TOPO_PREFIX=lbp$$-
# shellcheck source=tests/net/lib.sh
. "$REPO_DIR/tests/net/lib.sh"
TMP=$(mktemp -d /tmp/lbd-bench-proxy.XXXXXX)
PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
LBD_PID="" HAP_PID="" NGX_PID=""
cleanup() {
	[ -z "$LBD_PID" ] || bg_stop "$LBD_PID"
	[ -z "$HAP_PID" ] || bg_stop "$HAP_PID"
	[ -z "$NGX_PID" ] || bg_stop "$NGX_PID"
	topo_down
	rm -rf "$TMP" "$PIN"
}
topo_up 3 || { say "FAIL: bench proxy: topology"; exit 1; }
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
start_backends "$BE_PORT" || { say "FAIL: bench proxy: backends"; exit 1; }
# stream sinks: every backend swallows what it gets
for ((i = 1; i <= NBACKENDS; i++)); do
	bg_start "${NS_BE[$i]}" socat -u -b 262144 TCP-LISTEN:$SPORT,fork,reuseaddr OPEN:/dev/null
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# ------------------------------------------------------------ contenders
cat >"$TMP/lbd.conf" <<EOF
lbd {
    interfaces eth0 eth1;
    mode proxy;
    control $TMP/lbd.sock;
    state_dir $TMP/state;
    bpffs $PIN;
    pid_file $TMP/lbd.pid;
    log_level warn;
}
vip web {
    listen $LBD_VIP:$PORT;
    backend ${BE_ADDRS[1]}:$BE_PORT;
    backend ${BE_ADDRS[2]}:$BE_PORT;
    backend ${BE_ADDRS[3]}:$BE_PORT;
}
vip stream {
    listen $LBD_VIP:$SPORT;
    backend ${BE_ADDRS[1]}:$SPORT;
}
EOF
bg_start @lb "$O/lbd" -f -c "$TMP/lbd.conf"
LBD_PID=$BG_PID

# HAProxy and NGINX stream configured as in run.sh (lib.sh). Like for like:
# lbd's proxy_workers (auto), HAProxy's nbthread and NGINX's
# worker_processes are all one per CPU.
topo_add_vip "$HAP_VIP"
haproxy_cfg "$HAP_VIP" "$PORT" "$SPORT" "$BE_PORT" "${BE_ADDRS[@]}" >"$TMP/haproxy.cfg"
bg_start "$NS_LB" haproxy -db -f "$TMP/haproxy.cfg"
HAP_PID=$BG_PID

if [ -n "$NGX_MOD" ]; then
	topo_add_vip "$NGX_VIP"
	nginx_stream_conf "$NGX_MOD" "$TMP" "$NGX_VIP" "$PORT" "$SPORT" "$BE_PORT" "${BE_ADDRS[@]}" >"$TMP/nginx.conf"
	bg_start "$NS_LB" nginx -c "$TMP/nginx.conf"
	NGX_PID=$BG_PID
fi

TARGETS=()
for t in lbd_proxy:$LBD_VIP:$LBD_PID haproxy:$HAP_VIP:$HAP_PID ${NGX_PID:+nginx_stream:$NGX_VIP:$NGX_PID}; do
	if wait_http "http://$(cut -d: -f2 <<<"$t"):$PORT/" 10; then
		TARGETS+=("$t")
	else
		say "FAIL: bench proxy: $(cut -d: -f1 <<<"$t") does not answer on its VIP; its log:"
		bg_log "$(cut -d: -f3 <<<"$t")" | tail -5 | tee -a "$SUMMARY"
		failed=1
	fi
done

# ------------------------------------------------------------ runs
RUNS=$RES/proxy-runs.csv
echo "target,round,requests_per_s,errors,stream_MBps" >"$RUNS"
# apart: run.sh reads RUNS's five columns
CPU_RUNS=$RES/proxy-cpu-runs.csv
echo "target,round,cpu_us_per_req,cpu_ms_per_GiB" >"$CPU_RUNS"

# cpu_ticks PID: user + system clock ticks of PID, its children and all
# their threads so far (lbd's proxy workers and NGINX's are children).
cpu_ticks() {
	local p t s=0
	for p in "$1" $(pgrep -P "$1"); do
		for t in /proc/"$p"/task/*/stat; do
			[ -r "$t" ] && s=$((s + $(awk '{ print $14 + $15 }' "$t" 2>/dev/null || echo 0)))
		done
	done
	echo "$s"
}
HZ=$(getconf CLK_TCK)

for ((r = 1; r <= ROUNDS; r++)); do
	# every other round in reverse order: no target always runs first
	order=("${TARGETS[@]}")
	((r % 2)) || mapfile -t order < <(printf '%s\n' "${TARGETS[@]}" | tac)
	for t in "${order[@]}"; do
		name=${t%%:*} addr=$(cut -d: -f2 <<<"$t") pid=$(cut -d: -f3 <<<"$t")
		c0=$(cpu_ticks "$pid")
		wrk_runs "$RES/wrk-proxy-$name-r$r" "http://$addr:$PORT/"
		c1=$(cpu_ticks "$pid")
		read -r rps errs < <(wrk_result "$RES/wrk-proxy-$name-r$r" 1) || rps=0 errs=0
		reqs=$(awk '/ requests in / { print $1 }' "$RES/wrk-proxy-$name-r$r-1.txt" 2>/dev/null)
		mbps=$(stream_mbps "$addr" "$SPORT" "$STREAM_MB")
		c2=$(cpu_ticks "$pid")
		cpu_req=$(awk -v c=$((c1 - c0)) -v n="${reqs:-0}" -v hz="$HZ" \
			'BEGIN { if (n > 0) printf "%.1f", c * 1e6 / hz / n; else print 0 }')
		cpu_gib=$(awk -v c=$((c2 - c1)) -v mb="$STREAM_MB" -v hz="$HZ" \
			'BEGIN { printf "%.0f", c * 1e3 / hz / (mb / 1024) }')
		echo "$name,$r,$rps,$errs,$mbps" >>"$RUNS"
		echo "$name,$r,$cpu_req,$cpu_gib" >>"$CPU_RUNS"
	done
done

# ------------------------------------------------------------ syscalls
# The total counts every syscall (raw_syscalls); the breakdown, those a
# proxy makes per connection.
SYS_CSV=$RES/proxy-syscalls.csv
PER_CONN="accept4 epoll_wait epoll_ctl socket setsockopt getsockopt connect recvfrom sendto read write readv writev splice pipe2 shutdown close fcntl"
if [ "${PROXY_SYSCALLS:-1}" = 0 ]; then
	:
elif ! command -v perf >/dev/null || ! perf stat -e raw_syscalls:sys_enter -o /dev/null true 2>/dev/null; then
	say "SKIP: bench proxy: syscalls per request: perf (linux-perf) or its syscall tracepoints missing"
else
	ev=raw_syscalls:sys_enter
	for s in $PER_CONN; do ev+=,syscalls:sys_enter_$s; done
	echo "target,syscalls_per_req,${PER_CONN// /,}" >"$SYS_CSV"
	for t in "${TARGETS[@]}"; do
		name=${t%%:*} addr=$(cut -d: -f2 <<<"$t") pid=$(cut -d: -f3 <<<"$t")
		perf stat -x, -e "$ev" -p "$( (echo "$pid"; pgrep -P "$pid") | paste -sd,)" \
			-o "$TMP/perf-$name.txt" &
		perf_pid=$!
		sleep 1 # perf is attached
		wrk_runs "$RES/wrk-proxy-$name-syscalls" "http://$addr:$PORT/"
		kill -INT "$perf_pid"
		wait "$perf_pid"
		reqs=$(awk '/ requests in / { print $1 }' "$RES/wrk-proxy-$name-syscalls-1.txt" 2>/dev/null)
		awk -F, -v t="$name" -v n="${reqs:-0}" -v names="$PER_CONN" '
			{ sub(/^(raw_)?syscalls:sys_enter_?/, "", $3); c[$3 == "" ? "all" : $3] = $1 + 0 }
			END {
				if (n <= 0) exit
				printf "%s,%.2f", t, c["all"] / n
				k = split(names, s, " ")
				for (i = 1; i <= k; i++) printf ",%.2f", c[s[i]] / n
				printf "\n"
			}' "$TMP/perf-$name.txt" >>"$SYS_CSV"
	done
	# the columns nobody uses are left out of the table
	awk -F, 'NR == FNR { if (FNR > 1) for (i = 2; i <= NF; i++) if ($i + 0 > 0) keep[i] = 1; next }
		{ l = $1; for (i = 2; i <= NF; i++) if (keep[i]) l = l "," $i; print l }' "$SYS_CSV" "$SYS_CSV" |
		column -t -s, | tee -a "$SUMMARY"
	awk -F, '{ v[$1] = $2 } END { if (v["haproxy"] > 0 && v["lbd_proxy"] > 0)
		printf "proxy / haproxy syscalls per request: %.2fx (lower is less work)\n", v["lbd_proxy"] / v["haproxy"] }' \
		"$SYS_CSV" | tee -a "$SUMMARY"
fi

# Idle connections: RSS before and after IDLE_CONNS connections that send
# nothing (the backends wait for a request line).
idle_kib() { # ADDR PID -> KiB per connection
	local before after pids
	pids=$(pgrep -P "$2" | tr '\n' ,)$2
	before=$(IFS=,; for p in $pids; do awk '/^VmRSS/ { print $2 }' "/proc/$p/status"; done |
		awk '{ s += $1 } END { print s + 0 }')
	in_client python3 - "$1" "$PORT" "$IDLE_CONNS" "$pids" >"$TMP/idle.out" 2>&1 <<-'EOF'
		import socket, sys, time, resource
		hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
		resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
		addr, port, n, pids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
		s = [socket.create_connection((addr, port), timeout=5) for _ in range(n)]
		time.sleep(1.0)
		rss = 0
		for pid in pids.split(","):
		    for l in open("/proc/%s/status" % pid):
		        if l.startswith("VmRSS"):
		            rss += int(l.split()[1])
		print(rss)
		for c in s:
		    c.close()
	EOF
	after=$(tail -1 "$TMP/idle.out")
	case $after in ''|*[!0-9]*) echo "-"; cat "$TMP/idle.out" >&2; return ;; esac
	awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f", (a - b) / n }'
}
declare -A IDLE
for t in "${TARGETS[@]}"; do
	name=${t%%:*} addr=$(cut -d: -f2 <<<"$t") pid=$(cut -d: -f3 <<<"$t")
	IDLE[$name]=$(idle_kib "$addr" "$pid")
	sleep 0.5
done

CSV=$RES/proxy.csv
echo "target,requests_per_s,errors,stream_MBps,rss_KiB_per_idle_conn" >"$CSV"
# apart: run.sh reads CSV's five columns
CPU_CSV=$RES/proxy-cpu.csv
echo "target,cpu_us_per_req,cpu_ms_per_GiB" >"$CPU_CSV"
for t in "${TARGETS[@]}"; do
	name=${t%%:*}
	med() { awk -F, -v t="$name" -v c="$1" '$1 == t { print $c }' "${2:-$RUNS}" | median; }
	cmed() { # one decimal: CPU per request is tens of microseconds
		awk -F, -v t="$name" -v c="$1" '$1 == t { print $c }' "$CPU_RUNS" | sort -n |
			awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", v[int((NR + 1) / 2)] }'
	}
	errs=$(awk -F, -v t="$name" '$1 == t { e += $4 } END { print e + 0 }' "$RUNS")
	echo "$name,$(med 3),$errs,$(med 5),${IDLE[$name]}" >>"$CSV"
	[ "$ROUNDS" -gt 0 ] && echo "$name,$(cmed 3),$(med 4 "$CPU_RUNS")" >>"$CPU_CSV"
done
column -t -s, "$CSV" | tee -a "$SUMMARY"
[ "$ROUNDS" -gt 0 ] && column -t -s, "$CPU_CSV" | tee -a "$SUMMARY"
join -t, <(tail -n +2 "$CSV" | sort) <(tail -n +2 "$CPU_CSV" | sort) |
awk -F, '{ r[$1] = $2; s[$1] = $4; c[$1] = $6; g[$1] = $7
		if ($3 > 0) printf "WARNING: %s: %d failed requests\n", $1, $3 }
	END {
		if (r["haproxy"] && r["lbd_proxy"])
			printf "proxy / haproxy requests/s: %.2fx (target >= 1.00x)\n", r["lbd_proxy"] / r["haproxy"]
		if (s["haproxy"] && s["lbd_proxy"])
			printf "proxy / haproxy stream: %.2fx (target >= 0.90x)\n", s["lbd_proxy"] / s["haproxy"]
		if (c["haproxy"] && c["lbd_proxy"])
			printf "proxy / haproxy CPU per request: %.2fx (lower is less work)\n", c["lbd_proxy"] / c["haproxy"]
		if (g["haproxy"] && g["lbd_proxy"])
			printf "proxy / haproxy CPU per GiB streamed: %.2fx (lower is less work)\n", g["lbd_proxy"] / g["haproxy"]
		if (r["nginx_stream"] && r["lbd_proxy"])
			printf "proxy / nginx stream requests/s: %.2fx\n", r["lbd_proxy"] / r["nginx_stream"]
		if (s["nginx_stream"] && s["lbd_proxy"])
			printf "proxy / nginx stream stream: %.2fx\n", s["lbd_proxy"] / s["nginx_stream"]
	}' | tee -a "$SUMMARY"
# Each round runs the targets back to back: the ratio within a round
# compares like conditions; the range over rounds says how noisy it was.
awk -F, 'NR > 1 { r[$2, $1] = $3; s[$2, $1] = $5; if ($2 > n) n = $2 }
	END {
		for (i = 1; i <= n; i++) {
			if (r[i, "haproxy"] > 0) rl = rl sprintf(" %.2f", r[i, "lbd_proxy"] / r[i, "haproxy"])
			if (s[i, "haproxy"] > 0) sl = sl sprintf(" %.2f", s[i, "lbd_proxy"] / s[i, "haproxy"])
		}
		if (rl != "") printf "proxy / haproxy requests/s per round:%s\n", rl
		if (sl != "") printf "proxy / haproxy stream per round:%s\n", sl
	}' "$RUNS" | tee -a "$SUMMARY"
exit $failed
