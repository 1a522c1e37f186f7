#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Workers (issue 6) on the tests/net topology: lbd in the lb namespace
# supervises the instances and delivers a `forward local` VIP (198.18.0.10)
# to them. Every figure the issue names, in one run:
#   - requests/s, short connections (wrk, Connection: close), through the
#     VIP (local) against the same instance(s) reached directly on lb's
#     address and the instance port (direct); one long stream (STREAM_MB
#     MiB into a socat sink worker) both ways. After one untimed warm-up run
#     of every target, in rounds, the order flipped every round, so the
#     ratio holds on a noisy machine (it is also paired within each round).
#     Worker `app`: demo_backend, WORKERS_INSTANCES instances, VIP :80.
#     With one instance, every round also runs both at once (two wrk, the
#     connections split): the ratio of that pair does not drift with the
#     machine's load (concurrent.local_per_direct).
#   - the PM2 deployment lbd replaces (issue 6): examples/app.js under PM2
#     in cluster mode (NODE_INSTANCES instances, one shared port) behind
#     NGINX as an HTTP reverse proxy (198.18.0.12:80, keep-alive upstream),
#     against the same app.js as NODE_INSTANCES lbd workers behind VIP :8080;
#     same wrk, in the same rounds.
#   - resident memory (VmRSS, after the rounds) of lbd supervising every
#     instance above (target for 8: under 10 MiB), of the PM2 daemon
#     supervising its NODE_INSTANCES, and of NGINX (master and workers).
#   - failed requests during a rolling reload under load: lbload (short
#     HTTP connections, 8 in flight) through the VIP for RELOAD_SECONDS
#     while `lbctl worker reload node` replaces every app.js instance one by
#     one (target 0; worker `app` without node); the same against PM2
#     (`pm2 reload app`, its graceful reload) through NGINX.
#   - crash to serving: kill -9 of the only instance of worker `crash`
#     (demo_backend: lbd's own part) and of `crash_node` (app.js: with
#     node's start) until the replacement answers an HTTP request through
#     its VIP (:81, :82), CRASH_ROUNDS times each (after a `lbctl worker
#     restart`, so every sample starts from restart_delay 100 ms, not from a
#     grown backoff). One bash in the client namespace kills and polls: no
#     fork per try.
#
# PM2 is not a Debian package: PM2 (path to its pm2) or, by default, an
# `npm install pm2` into $O/pm2 made once (PM2=none skips the peer; without
# node, npm or nginx the run says so and goes on without it).
#
# Writes workers-runs.csv (target,round,requests_per_s,errors,stream_MBps),
# workers.csv (medians) and workers-figures.csv (figure,unit,value: the
# memory, reload and crash figures, a row per sample) to WORKERS_RES.
#
# Environment: O (build dir), WRK_SECONDS (3), WRK_CONNS (32), WRK_THREADS
# (2), WORKERS_ROUNDS (5), WORKERS_MODE (lbd attach mode: xdp), STREAM_MB
# (512), WORKERS_INSTANCES (1; with more, the direct target spreads the
# connections over every instance port, one wrk each), NODE_INSTANCES (8),
# RELOAD_SECONDS (45), CRASH_ROUNDS (5), PM2, LBD_START_WAIT (seconds lbd and
# its instances get to serve, 60), WORKERS_RES (results dir; default
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
ROUNDS=${WORKERS_ROUNDS:-5}
MODE=${WORKERS_MODE:-xdp}
STREAM_MB=${STREAM_MB:-512}
NINST=${WORKERS_INSTANCES:-1}
NODE_INST=${NODE_INSTANCES:-8}
RELOAD_SECONDS=${RELOAD_SECONDS:-45}
CRASH_ROUNDS=${CRASH_ROUNDS:-5}
export LBD_START_WAIT=${LBD_START_WAIT:-60}
RES=${WORKERS_RES:-$REPO_DIR/bench-results/latest}
case $RES in /*) ;; *) RES=$REPO_DIR/$RES ;; esac
[ -n "${WORKERS_RES:-}" ] || [ -d "$RES" ] || RES=$REPO_DIR/bench-results/workers-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" || exit 1
SUMMARY=$RES/summary.txt
VIP=198.18.0.10 PORT=80 APP_PORT=3000 SINK_PORT=5001
CRASH_PORT=81 CRASH_BASE=3100 CRASH_NODE_PORT=82 CRASH_NODE_BASE=3110
NODE_PORT=8080 NODE_BASE=3200
PM2_VIP=198.18.0.12 PM2_APP_PORT=4000
APP_JS=$REPO_DIR/examples/app.js
failed=0

# say, median, wrk_runs, wrk_result (shared with run.sh); bench_progress
# shellcheck source=tools/bench/lib.sh
. "$BENCH_DIR/lib.sh"
# shellcheck source=tools/bench/report.sh
. "$BENCH_DIR/report.sh"

say ""
say "== Workers: local delivery ($MODE) vs the same $NINST instance(s) reached directly on their port;"
say "   app.js x$NODE_INST under lbd vs PM2 cluster mode + NGINX; memory; rolling reload under load; crash to serving"
say "   wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s Connection: close, one ${STREAM_MB} MiB stream; median of $ROUNDS rounds"
if [ "$(id -u)" -ne 0 ]; then say "SKIP: bench workers: needs root (network namespaces)"; exit 0; fi
for c in wrk socat curl; do
	command -v $c >/dev/null || { say "SKIP: bench workers: '$c' not installed (make deps)"; exit 0; }
done
for b in "$O/lbd" "$O/lbctl" "$O/examples/demo_backend" "$O/tools/lbload"; do
	[ -x "$b" ] || { say "FAIL: bench workers: $b not built"; exit 1; }
done
NODE=$(command -v node)
[ -n "$NODE" ] || say "   node not installed (make deps): no app.js workers, no PM2 peer; the crash worker runs demo_backend"

# pm2_find: sets PM2 to a usable pm2, or says why there is none.
pm2_find() {
	local dir=$O/pm2
	if [ "${PM2:-}" = none ]; then PM2=; say "   PM2 peer: skipped (PM2=none)"; return; fi
	if [ -z "$NODE" ]; then PM2=; return; fi
	if ! command -v nginx >/dev/null; then PM2=; say "   PM2 peer: skipped: nginx not installed (make deps)"; return; fi
	[ -n "${PM2:-}" ] || PM2=$dir/node_modules/.bin/pm2
	[ -x "$PM2" ] && return
	if ! command -v npm >/dev/null; then
		say "   PM2 peer: skipped: no pm2 and no npm to install it (PM2=path/to/pm2)"
		PM2=
		return
	fi
	say "   PM2 peer: npm install pm2 into $dir (once)"
	mkdir -p "$dir"
	if ! timeout 300 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error pm2 >"$dir/npm.log" 2>&1 ||
		[ ! -x "$PM2" ]; then
		say "   PM2 peer: skipped: npm install pm2 failed: $(tail -1 "$dir/npm.log")"
		PM2=
	fi
}
pm2_find

# shellcheck disable=SC2034 # read by lib.sh
TOPO_PREFIX=lbk$$-
# shellcheck source=tests/net/lib.sh
. "$REPO_DIR/tests/net/lib.sh"
PIN=/sys/fs/bpf/${TOPO_PREFIX%-}
topo_up 1 || { say "FAIL: bench workers: topology"; exit 1; }
CONF=$TOPO_DIR/lbd.conf SOCK=$TOPO_DIR/lbd.sock
PM2_HOME=$TOPO_DIR/pm2
export PM2_HOME
# topo_down (the trap) stops lbd, its workers, PM2 and NGINX (everything in
# the namespaces), and removes PIN; PM2 is asked first, so its daemon does
# not restart what topo_down kills.
pm2_stop() { [ -z "${PM2:-}" ] || [ ! -d "$PM2_HOME" ] || timeout 20 "$PM2" kill >/dev/null 2>&1; }
cleanup() { pm2_stop; topo_down; }
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM

{
	LBD_IFACES=eth0 lbd_conf_head "log_level warn;"
	cat <<-EOF
		vip web { listen $VIP:$PORT; forward local; }
		vip stream { listen $VIP:$SINK_PORT; forward local; }
		vip crash { listen $VIP:$CRASH_PORT; forward local; }
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
		worker crash {
		    command $DEMO_BACKEND;
		    instances 1;
		    port $CRASH_BASE;
		    vip crash;
		    ready tcp;
		    restart_delay 100ms;
		}
	EOF
	[ -z "$NODE" ] || cat <<-EOF
		vip crash_node { listen $VIP:$CRASH_NODE_PORT; forward local; }
		worker crash_node {
		    command $NODE $APP_JS;
		    instances 1;
		    port $CRASH_NODE_BASE;
		    vip crash_node;
		    ready tcp;
		    restart_delay 100ms;
		}
		vip node { listen $VIP:$NODE_PORT; forward local; }
		worker node {
		    command $NODE $APP_JS;
		    instances $NODE_INST;
		    port $NODE_BASE;
		    vip node;
		    ready tcp;
		    env NODE_ENV=production;
		}
	EOF
} >"$CONF"
NALL=$((NINST + 2))
[ -z "$NODE" ] || NALL=$((NALL + NODE_INST + 1))
if ! lbd_start; then
	say "FAIL: bench workers: lbd does not start"
	exit 1
fi
online() { [ "$(lbctl worker list | grep -c ' online$')" -eq "$NALL" ]; }
if ! lbd_wait "$LBD_PID" online || ! wait_http "http://$VIP:$PORT/" 10; then
	say "FAIL: bench workers: the instances do not serve through the VIP; lbd's log:"
	bg_log "$LBD_PID" | tail -10 | tee -a "$SUMMARY"
	lbctl worker list | tee -a "$SUMMARY"
	exit 1
fi
FIGS=$RES/workers-figures.csv
echo "figure,unit,value" >"$FIGS"
fig() { echo "$1,$2,$3" >>"$FIGS"; }

# PM2 in cluster mode in the lb namespace (its daemon forks there), app.js
# on one port shared by its instances, NGINX in front as PM2's docs show:
# a reverse proxy with a keep-alive upstream.
pm2_up() {
	local ngx=$TOPO_DIR/nginx
	mkdir -p "$ngx" "$PM2_HOME"
	topo_add_vip "$PM2_VIP"
	if ! PORT=$PM2_APP_PORT NODE_ENV=production in_lb timeout 60 "$PM2" start "$APP_JS" \
		-i "$NODE_INST" --name app >"$PM2_HOME/start.log" 2>&1; then
		say "FAIL: bench workers: pm2 start: $(tail -3 "$PM2_HOME/start.log")"
		return 1
	fi
	{
		nginx_head "$ngx"
		cat <<-EOF
			http {
			    access_log off;
			    client_body_temp_path $ngx/body;
			    proxy_temp_path $ngx/proxy;
			    upstream app { server 127.0.0.1:$PM2_APP_PORT; keepalive 64; }
			    server {
			        listen $PM2_VIP:$PORT reuseport;
			        location / {
			            proxy_pass http://app;
			            proxy_http_version 1.1;
			            proxy_set_header Connection "";
			        }
			    }
			}
		EOF
	} >"$ngx/nginx.conf"
	bg_start "$NS_LB" nginx -c "$ngx/nginx.conf"
	NGX_PID=$BG_PID
	if ! lbd_wait "$NGX_PID" wait_http "http://$PM2_VIP:$PORT/" 1; then
		say "FAIL: bench workers: PM2 + NGINX do not answer; NGINX: $(tail -3 "$ngx/nginx.err" 2>/dev/null)"
		timeout 20 "$PM2" ls 2>&1 | tail -12 | tee -a "$SUMMARY"
		return 1
	fi
}

NGX_PID=
if [ -n "$PM2" ] && ! pm2_up; then
	failed=1
	pm2_stop
	PM2=
fi

RUNS=$RES/workers-runs.csv
echo "target,round,requests_per_s,errors,stream_MBps" >"$RUNS"

# wrk_rps NAME ROUND URL... -> "rps errors" (wrk_runs: one URL, or one wrk
# per URL with the connections split between them, the figures summed)
wrk_rps() {
	local log=$RES/wrk-workers-$1-r$2
	shift 2
	wrk_runs "$log" "$@" >&2 # its warnings: to the terminal, not our answer
	wrk_result "$log" $# || echo "0 0"
}

# urls TARGET: the URLs of TARGET
direct_urls=()
for ((i = 0; i < NINST; i++)); do direct_urls+=("http://$LB_CLIENT_ADDR:$((APP_PORT + i))/"); done
urls() {
	case $1 in
	local) echo "http://$VIP:$PORT/" ;;
	direct) echo "${direct_urls[@]}" ;;
	node_lbd) echo "http://$VIP:$NODE_PORT/" ;;
	node_pm2_nginx) echo "http://$PM2_VIP:$PORT/" ;;
	esac
}
TARGETS=(local direct)
[ -z "$NODE" ] || TARGETS+=(node_lbd)
[ -z "$PM2" ] || TARGETS+=(node_pm2_nginx)

# One untimed run of every target first: the first run after a start pays
# for cold caches, page faults of fresh processes and the client's first
# neighbour lookups, and it was always the same target's.
for t in "${TARGETS[@]}"; do
	# shellcheck disable=SC2046 # urls prints a word per URL
	WRK_SECONDS=1 wrk_runs "$RES/wrk-workers-$t-warmup" $(urls "$t") >&2
done
# Each round: the wrk runs back to back (the pairs closest in time), then
# the streams; the order flips every round.
declare -A RPS ERRS MBPS
for ((r = 1; r <= ROUNDS; r++)); do
	order=("${TARGETS[@]}")
	((r % 2)) || mapfile -t order < <(printf '%s\n' "${TARGETS[@]}" | tac)
	for t in "${order[@]}"; do
		bench_progress "workers round $r/$ROUNDS: $t"
		# shellcheck disable=SC2046
		read -r "RPS[$t]" "ERRS[$t]" < <(wrk_rps "$t" "$r" $(urls "$t"))
		MBPS[$t]=
	done
	for t in "${order[@]}"; do
		case $t in
		local) MBPS[$t]=$(stream_mbps "$VIP" "$SINK_PORT" "$STREAM_MB") ;;
		direct) MBPS[$t]=$(stream_mbps "$LB_CLIENT_ADDR" "$SINK_PORT" "$STREAM_MB") ;;
		esac
	done
	for t in "${order[@]}"; do echo "$t,$r,${RPS[$t]},${ERRS[$t]},${MBPS[$t]}" >>"$RUNS"; done
	# Both at once, the connections split: whatever the machine does
	# meanwhile, it does to both alike, so their ratio is steadier than
	# that of runs taken one after the other (the same instance serves
	# both; a path that costs more shows as a smaller share).
	# Which wrk starts first (and where the scheduler puts it) swings a
	# pair by up to 2x on a loaded machine: the roles swap every round.
	if ((NINST == 1)); then
		both=("http://$VIP:$PORT/" "${direct_urls[0]}") l=1 d=2
		((r % 2)) || both=("${direct_urls[0]}" "http://$VIP:$PORT/") l=2 d=1
		wrk_runs "$RES/wrk-workers-both-r$r" "${both[@]}" >&2
		q=$(for i in $l $d; do awk '/^Requests\/sec:/ { print $2 }' "$RES/wrk-workers-both-r$r-$i.txt"; done |
			awk 'NR == 1 { l = $1 } NR == 2 && $1 > 0 { printf "%.3f", l / $1 }')
		[ -z "$q" ] || fig concurrent.local_per_direct x "$q"
	fi
done
lbctl stats >"$RES/workers-lbd-stats.txt" 2>&1
lbctl worker list >"$RES/workers-list.txt" 2>&1

# ---------------------------------------------------------------- memory
# rss_kib PID...: the VmRSS sum of the processes, KiB
rss_kib() {
	local p
	for p in "$@"; do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done |
		awk '{ s += $1 } END { print s + 0 }'
}
fig rss.lbd KiB "$(rss_kib "$LBD_PID")"
fig hwm.lbd KiB "$(awk '/^VmHWM:/ { print $2 }' "/proc/$LBD_PID/status")"
fig instances.lbd count "$(lbctl worker list | grep -c ' online$')"
if [ -n "$PM2" ]; then
	pm2_pid=$(cat "$PM2_HOME/pm2.pid" 2>/dev/null)
	[ -n "$pm2_pid" ] && fig rss.pm2_daemon KiB "$(rss_kib "$pm2_pid")"
	# shellcheck disable=SC2046 # pids
	fig rss.nginx KiB "$(rss_kib "$NGX_PID" $(pgrep -P "$NGX_PID"))"
	fig instances.pm2 count "$(timeout 20 "$PM2" jlist 2>/dev/null | grep -o '"status":"online"' | wc -l)"
fi

# ---------------------------------------------------------------- rolling reload
# pids WORKER: its instances' pids, sorted, one line
pids_of() { lbctl worker list | awk -v w="$1" '$1 == w { print $3 }' | sort -n | tr '\n' ' '; }
# rolled WORKER N OLD: N online instances of WORKER, none of them in OLD,
# nothing else of it left
rolled() {
	local l
	l=$(lbctl worker list | awk -v w="$1" '$1 == w')
	[ "$(grep -c ' online$' <<<"$l")" -eq "$2" ] && [ "$(wc -l <<<"$l")" -eq "$2" ] || return 1
	for p in $3; do awk '{ print $3 }' <<<"$l" | grep -qx "$p" && return 1; done
	return 0
}
# reload_under_load NAME ADDR:PORT CMD...: lbload through ADDR:PORT for
# RELOAD_SECONDS, CMD (the reload) a second in, waiting for the reload with
# the rest of the arguments' helper; figures NAME.failed, NAME.requests.
reload_under_load() {
	local name=$1 dst=$2 out t0 t1
	shift 2
	bg_start "$NS_CLIENT" "$LBLOAD" -t 2000 -p 8 --duration "$RELOAD_SECONDS" "$dst"
	local load=$BG_PID
	sleep 1
	t0=$(date +%s%N)
	"$@"
	local rc=$?
	t1=$(date +%s%N)
	wait "$load" 2>/dev/null
	out=$(bg_log "$load")
	if [ $rc -ne 0 ] || [ -z "$(field total "$out")" ]; then
		say "FAIL: bench workers: $name: the reload did not complete ($rc) or lbload gave no figure: $(tail -2 <<<"$out")"
		failed=1
		return 1
	fi
	fig "$name.failed" requests "$(field failed "$out")"
	fig "$name.requests" requests "$(field total "$out")"
	fig "$name.time" ms $(((t1 - t0) / 1000000))
	(((t1 - t0) / 1000000 < (RELOAD_SECONDS - 1) * 1000)) ||
		say "WARNING: bench workers: $name took $(((t1 - t0) / 1000000)) ms, longer than the load (RELOAD_SECONDS $RELOAD_SECONDS)"
	grep 'failed:' <<<"$out" | head -3 >>"$RES/workers-reload-failures.txt"
}
# lbd_reload WORKER N
lbd_reload() {
	local old
	old=$(pids_of "$1")
	lbctl worker reload "$1" >/dev/null || return 1
	wait_for -t 120 rolled "$1" "$2" "$old"
}
pm2_reload() { timeout 120 "$PM2" reload app >/dev/null 2>&1; }
bench_progress "workers: rolling reload under load"
if [ -n "$NODE" ]; then
	reload_under_load reload.lbd_app_js "$VIP:$NODE_PORT" lbd_reload node "$NODE_INST"
else
	reload_under_load reload.lbd_demo_backend "$VIP:$PORT" lbd_reload app "$NINST"
fi
[ -z "$PM2" ] || reload_under_load reload.pm2_nginx_app_js "$PM2_VIP:$PORT" pm2_reload

# ---------------------------------------------------------------- crash
# One bash in the client namespace kills the instance (pids are the same in
# every network namespace) and polls the VIP with /dev/tcp until an HTTP
# answer comes: ms from the kill to that answer, or "timeout" after 10 s.
crash_once() {
	# shellcheck disable=SC2016 # for the inner bash
	in_client env LC_ALL=C bash -c '
		exec 2>/dev/null
		pid=$1 vip=$2 port=$3
		t0=$EPOCHREALTIME
		kill -9 "$pid" || { echo "nokill"; exit 1; }
		while :; do
			if exec 3<>"/dev/tcp/$vip/$port"; then
				printf "GET / HTTP/1.0\r\n\r\n" >&3
				if read -r -t 2 line <&3 && [[ $line == "HTTP/1."?" 200"* ]]; then
					exec 3<&-
					break
				fi
				exec 3<&-
			fi
			t=$EPOCHREALTIME
			(( ${t%.*} - ${t0%.*} < 10 )) || { echo timeout; exit 1; }
		done 2>/dev/null
		t=$EPOCHREALTIME
		echo $(( (${t/./} - ${t0/./}) / 1000 ))' _ "$1" "$VIP" "$2"
}
# crash_rounds WORKER PORT FIGURE
crash_rounds() {
	local w=$1 port=$2 r pid ms
	crash_ok() { rolled "$w" 1 "" && in_client curl -s -m 1 -o /dev/null "http://$VIP:$port/"; }
	for ((r = 1; r <= CRASH_ROUNDS; r++)); do
		bench_progress "workers: crash $r/$CRASH_ROUNDS of $w"
		# a fresh instance with the configured restart_delay, up past
		# min_uptime
		lbctl worker restart "$w" >/dev/null
		sleep 0.3
		if ! wait_for -t 30 crash_ok; then
			say "FAIL: bench workers: worker $w does not serve before crash $r"
			failed=1
			return
		fi
		sleep 1.2
		pid=$(pids_of "$w")
		ms=$(crash_once "${pid% }" "$port")
		case $ms in
		'' | *[!0-9]*) say "FAIL: bench workers: crash $r of $w: instance $pid: $ms"; failed=1 ;;
		*) fig "$3" ms "$ms" ;;
		esac
	done
}
crash_rounds crash "$CRASH_PORT" crash_to_serve.demo_backend
[ -z "$NODE" ] || crash_rounds crash_node "$CRASH_NODE_PORT" crash_to_serve.app_js
_bench_progress_clear

# ---------------------------------------------------------------- summary
CSV=$RES/workers.csv
echo "target,requests_per_s,errors,stream_MBps" >"$CSV"
col() { awk -F, -v t="$1" -v c="$2" '$1 == t { print $c }' "$RUNS"; }
for t in "${TARGETS[@]}"; do
	grep -q "^$t," "$RUNS" || continue
	errs=$(col "$t" 4 | awk '{ e += $1 } END { print e + 0 }')
	echo "$t,$(col "$t" 3 | median),$errs,$(col "$t" 5 | grep . | median)" >>"$CSV"
done
column -t -s, "$CSV" | tee -a "$SUMMARY"
awk -F, 'NR > 1 { r[$1] = $2; s[$1] = $4; if ($3 > 0) printf "WARNING: workers %s: %d failed requests\n", $1, $3 }
	END {
		if (r["direct"] && r["local"])
			printf "local / direct requests/s: %.2fx (target >= 0.95x)\n", r["local"] / r["direct"]
		if (s["direct"] && s["local"])
			printf "local / direct stream: %.2fx\n", s["local"] / s["direct"]
		if (r["node_pm2_nginx"] && r["node_lbd"])
			printf "app.js: lbd / PM2 cluster + NGINX requests/s: %.2fx\n", r["node_lbd"] / r["node_pm2_nginx"]
	}' "$CSV" | tee -a "$SUMMARY"
# The same ratio paired within each round (both targets ran back to back),
# median over the rounds: steadier when the machine's load drifts; and split
# by which of the two ran first (odd rounds: local), to see an order effect.
awk -F, 'function med(a, n,   i, j, t) {
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n - 1) / 2)]
	}
	NR > 1 { v[$2 "," $1] = $3 } END {
		for (r = 1; (r "," "local") in v; r++) {
			if (v[r ",direct"] <= 0) continue
			q = v[r ",local"] / v[r ",direct"]
			x[n++] = q
			if (r % 2) f[nf++] = q; else s[ns++] = q
		}
		if (!n) exit
		printf "local / direct requests/s paired by round: median %.2fx", med(x, n)
		printf " (min %.2fx, max %.2fx, %d rounds)\n", x[0], x[n - 1], n
		if (nf && ns) printf "   local first: median %.2fx (%d rounds); direct first: median %.2fx (%d rounds)\n",
			med(f, nf), nf, med(s, ns), ns
	}' "$RUNS" | tee -a "$SUMMARY"
# figure,unit,value rows: one line a figure, median (min, max) of repeats
awk -F, 'NR > 1 { if (!($1 in n)) o[++k] = $1; u[$1] = $2; c[$1, ++n[$1]] = $3 }
	END {
		for (x = 1; x <= k; x++) {
			f = o[x]; m = n[f]
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
				if (c[f, j] + 0 < c[f, i] + 0) { t = c[f, i]; c[f, i] = c[f, j]; c[f, j] = t }
			if (m == 1) printf "%s: %s %s\n", f, c[f, 1], u[f]
			else printf "%s: median %s %s (min %s, max %s, %d repeats)\n", f, c[f, int((m + 1) / 2)], u[f], c[f, 1], c[f, m], m
		}
	}' "$FIGS" | tee -a "$SUMMARY"
grep -q '^local,' "$CSV" && grep -q '^direct,' "$CSV" || failed=1
exit $failed
