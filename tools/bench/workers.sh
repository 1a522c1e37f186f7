#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Local delivery (issue 6) against the same worker instance reached directly
# on its port, on the tests/net topology: lbd in the lb namespace supervises
# the workers; the client reaches them through a `forward local` VIP
# (198.18.0.10) or directly on lb's address and the instance's port. Same
# instance, same client, same run, in rounds (the order flips every round),
# so the ratio holds on a noisy machine.
#   - short connections: wrk, Connection: close, requests/s
#     (worker `app`: demo_backend, WORKERS_INSTANCES instances, VIP :80)
#   - one long stream: STREAM_MB MiB client -> instance (socat sink worker
#     `sink`, VIP :5001), MB/s
#
# Environment: O (build dir), WRK_SECONDS (3), WRK_CONNS (32), WRK_THREADS
# (2), WORKERS_ROUNDS (5), WORKERS_MODE (lbd attach mode: xdp), STREAM_MB
# (512), WORKERS_INSTANCES (1; with more, the direct target spreads the
# connections over every instance port, one wrk each), WORKERS_RES
# (results dir; default bench-results/latest).
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
ROUNDS=${WORKERS_ROUNDS:-5}
MODE=${WORKERS_MODE:-xdp}
STREAM_MB=${STREAM_MB:-512}
NINST=${WORKERS_INSTANCES:-1}
RES=${WORKERS_RES:-$REPO_DIR/bench-results/latest}
case $RES in /*) ;; *) RES=$REPO_DIR/$RES ;; esac
[ -n "${WORKERS_RES:-}" ] || [ -d "$RES" ] || RES=$REPO_DIR/bench-results/workers-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" || exit 1
SUMMARY=$RES/summary.txt
VIP=198.18.0.10 PORT=80 APP_PORT=3000 SINK_PORT=5001
failed=0

# say, median, wrk_runs, wrk_result (shared with run.sh)
# shellcheck source=tools/bench/lib.sh
. "$BENCH_DIR/lib.sh"

say ""
say "== Workers, local delivery ($MODE) vs the same $NINST instance(s) reached directly on their port:"
say "   wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s Connection: close, one ${STREAM_MB} MiB stream; median of $ROUNDS rounds"
if [ "$(id -u)" -ne 0 ]; then say "SKIP: bench workers: needs root (network namespaces)"; exit 0; fi
for c in wrk socat curl; do
	command -v $c >/dev/null || { say "SKIP: bench workers: '$c' not installed (make deps)"; exit 0; }
done
for b in "$O/lbd" "$O/lbctl" "$O/examples/demo_backend"; do
	[ -x "$b" ] || { say "FAIL: bench workers: $b not built"; exit 1; }
done

# shellcheck disable=SC2034 # read by lib.sh
TOPO_PREFIX=lbk$$-
# shellcheck source=tests/net/lib.sh
. "$REPO_DIR/tests/net/lib.sh"
PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
topo_up 1 || { say "FAIL: bench workers: topology"; exit 1; }
CONF=$TOPO_DIR/lbd.conf SOCK=$TOPO_DIR/lbd.sock
cat >"$CONF" <<EOF
lbd {
    interfaces eth0;
    mode $MODE;
    control $SOCK;
    state_dir $TOPO_DIR/state;
    bpffs $PIN;
    log_level warn;
}
vip web {
    listen $VIP:$PORT;
    forward local;
}
vip stream {
    listen $VIP:$SINK_PORT;
    forward local;
}
worker app {
    command $DEMO_BACKEND;
    instances $NINST;
    port $APP_PORT;
    vip web;
    ready tcp;
}
worker sink {
    command socat -u -b 262144 TCP-LISTEN:$SINK_PORT,fork,reuseaddr OPEN:/dev/null;
    instances 1;
    port $SINK_PORT;
    vip stream;
    ready tcp;
}
EOF
# topo_down (the trap) stops lbd, its workers and anything else in the
# namespaces, and removes PIN.
if ! lbd_start; then
	say "FAIL: bench workers: lbd does not start"
	exit 1
fi
online() { [ "$(lbctl worker list | grep -c ' online$')" -eq $((NINST + 1)) ]; }
if ! wait_for -t 10 online || ! wait_http "http://$VIP:$PORT/" 10; then
	say "FAIL: bench workers: the instances do not serve through the VIP; lbd's log:"
	bg_log "$LBD_PID" | tail -10 | tee -a "$SUMMARY"
	lbctl worker list | tee -a "$SUMMARY"
	exit 1
fi

RUNS=$RES/workers-runs.csv
echo "target,round,requests_per_s,errors,stream_MBps" >"$RUNS"

# wrk_rps NAME ROUND URL... -> "rps errors" (wrk_runs: one URL, or one wrk
# per URL with the connections split between them, the figures summed)
wrk_rps() {
	local log=$RES/wrk-workers-$1-r$2
	shift 2
	wrk_runs "$log" "$@"
	wrk_result "$log" $# || echo "0 0"
}

direct_urls=()
for ((i = 0; i < NINST; i++)); do direct_urls+=("http://$LB_CLIENT_ADDR:$((APP_PORT + i))/"); done
for ((r = 1; r <= ROUNDS; r++)); do
	order=(local direct)
	((r % 2)) || order=(direct local)
	for t in "${order[@]}"; do
		if [ "$t" = local ]; then
			read -r rps errs < <(wrk_rps local "$r" "http://$VIP:$PORT/")
			mbps=$(stream_mbps "$VIP" "$SINK_PORT" "$STREAM_MB")
		else
			read -r rps errs < <(wrk_rps direct "$r" "${direct_urls[@]}")
			mbps=$(stream_mbps "$LB_CLIENT_ADDR" "$SINK_PORT" "$STREAM_MB")
		fi
		echo "$t,$r,$rps,$errs,$mbps" >>"$RUNS"
	done
done
lbctl stats >"$RES/workers-lbd-stats.txt" 2>&1

CSV=$RES/workers.csv
echo "target,requests_per_s,errors,stream_MBps" >"$CSV"
col() { awk -F, -v t="$1" -v c="$2" '$1 == t { print $c }' "$RUNS"; }
for t in local direct; do
	grep -q "^$t," "$RUNS" || continue
	errs=$(col "$t" 4 | awk '{ e += $1 } END { print e + 0 }')
	echo "$t,$(col "$t" 3 | median),$errs,$(col "$t" 5 | median)" >>"$CSV"
done
column -t -s, "$CSV" | tee -a "$SUMMARY"
awk -F, 'NR > 1 { r[$1] = $2; s[$1] = $4; if ($3 > 0) printf "WARNING: workers %s: %d failed requests\n", $1, $3 }
	END {
		if (r["direct"] && r["local"])
			printf "local / direct requests/s: %.2fx (target >= 0.95x)\n", r["local"] / r["direct"]
		if (s["direct"] && s["local"])
			printf "local / direct stream: %.2fx\n", s["local"] / s["direct"]
	}' "$CSV" | tee -a "$SUMMARY"
# The same ratio paired within each round (both targets ran back to back),
# median over the rounds: steadier when the machine's load drifts.
awk -F, 'NR > 1 { v[$2 "," $1] = $3 } END {
		for (r = 1; (r "," "local") in v; r++) if (v[r ",direct"] > 0) x[n++] = v[r ",local"] / v[r ",direct"]
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		if (n) printf "local / direct requests/s paired by round: median %.2fx (min %.2fx, max %.2fx, %d rounds)\n",
			x[int((n - 1) / 2)], x[0], x[n - 1], n }' "$RUNS" | tee -a "$SUMMARY"
grep -q '^local,' "$CSV" && grep -q '^direct,' "$CSV" || failed=1
exit $failed
