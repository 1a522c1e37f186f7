# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# Helpers the bench drivers share (run.sh, proxy.sh, workers.sh); they run
# clients with tests/net/lib.sh's in_client (which also has stream_mbps)
# and read WRK_SECONDS, WRK_THREADS, WRK_CONNS and SUMMARY.

# say TEXT...: to the terminal and the run's summary.
say() { echo "$@" | tee -a "$SUMMARY"; }

# median: the median of the numbers on stdin, rounded.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.0f", v[int((NR + 1) / 2)] }'; }

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

# wrk_runs LOG URL...: wrk from the client namespace, Connection: close, for
# WRK_SECONDS, output in LOG-1.txt .. LOG-N.txt. One URL: one wrk of
# WRK_THREADS threads; several: one single-threaded wrk per URL at once,
# the connections split between them.
wrk_runs() {
	local log=$1 n i pids try stalled
	shift
	n=$#
	for try in 1 2; do
		pids=()
		for ((i = 1; i <= n; i++)); do
			# In the background: `wait` lets a Ctrl-C reach our trap at once
			# (wrk catches SIGINT itself, and bash would then carry on).
			in_client timeout --kill-after=5 $((WRK_SECONDS + 15)) wrk \
				-t"$((n > 1 ? 1 : WRK_THREADS))" -c"$(((WRK_CONNS + n - 1) / n))" \
				-d"${WRK_SECONDS}s" -H 'Connection: close' "${!i}" >"$log-$i.txt" 2>&1 &
			pids+=($!)
		done
		wait "${pids[@]}"
		stalled=
		for ((i = 1; i <= n; i++)); do
			wrk_stalled "$log-$i.txt" && stalled=$i
		done
		[ -z "$stalled" ] && break
		# wrk's timers run even when the network is dead, so it ends on time
		# then; a late end means wrk itself did not run (host CPU
		# contention), and answers in flight across that gap count as its
		# "timeout" errors: no figure of the target. Once more.
		stalled="WARNING: $(basename "$log"): wrk ran $(wrk_runtime "$log-$stalled.txt") s of $WRK_SECONDS s: the client was stalled"
		if [ "$try" = 2 ]; then
			say "$stalled again; figures kept"
			break
		fi
		say "$stalled, not the target; run again"
		for ((i = 1; i <= n; i++)); do
			mv "$log-$i.txt" "$log-$i.stalled.txt"
		done
	done
}

# wrk_result LOG N -> "requests/s errors", summed over LOG-1.txt .. LOG-N.txt
# (errors: socket errors and non-2xx answers). Fails, printing nothing,
# when a log has no figure.
wrk_result() {
	local log=$1 n=$2 i r e rps=0 errs=0
	for ((i = 1; i <= n; i++)); do
		r=$(awk '/^Requests\/sec:/ { print $2 }' "$log-$i.txt")
		[ -n "$r" ] || return 1
		e=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); for (j = 1; j <= NF; j++) s += $j }
			 /Non-2xx/ { s += $NF } END { print s + 0 }' "$log-$i.txt")
		rps=$(awk -v a="$rps" -v b="$r" 'BEGIN { printf "%.2f", a + b }')
		errs=$((errs + e))
	done
	echo "$rps $errs"
}

# The user-space peers of section 3 (run.sh on its topology, proxy.sh on its
# own), configured alike wherever they run.

# haproxy_cfg VIP PORT SPORT BE_PORT ADDR...: HAProxy in tcp mode as its
# docs suggest for a TCP balancer (one thread per core, splice both ways, no
# logging): VIP:PORT round robin over every ADDR:BE_PORT, VIP:SPORT to the
# first ADDR's SPORT (the stream's sink).
haproxy_cfg() {
	local vip=$1 port=$2 sport=$3 bport=$4 i=0 a
	shift 4
	cat <<-EOF
		global
		    nbthread $(nproc)
		    maxconn 7000
		    tune.maxaccept 64
		defaults
		    mode tcp
		    timeout connect 2s
		    timeout client 60s
		    timeout server 60s
		    option splice-auto
		listen web
		    bind $vip:$port
		    balance roundrobin
	EOF
	for a in "$@"; do
		i=$((i + 1))
		echo "    server be$i $a:$bport"
	done
	printf 'listen stream\n    bind %s:%s\n    server be1 %s:%s\n' "$vip" "$sport" "$1" "$sport"
}

# nginx_stream_module: the path of NGINX's stream module (Debian's
# libnginx-mod-stream), nothing (and status 1) when it or nginx is missing.
nginx_stream_module() {
	command -v nginx >/dev/null && ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null
}

# nginx_head DIR: the top of an NGINX configuration of a bench peer: a
# worker per core, in the foreground, its pid and error log (nginx.err) in DIR.
nginx_head() {
	printf 'worker_processes auto;\npid %s/nginx.pid;\nerror_log %s/nginx.err warn;\n' "$1" "$1"
	printf 'daemon off;\nevents { worker_connections 8000; }\n'
}

# nginx_stream_conf MODULE DIR VIP PORT SPORT BE_PORT ADDR...: NGINX stream,
# the same two services as haproxy_cfg (nginx_head DIR).
nginx_stream_conf() {
	local mod=$1 dir=$2 vip=$3 port=$4 sport=$5 bport=$6 a servers=
	shift 6
	for a in "$@"; do servers+="server $a:$bport; "; done
	echo "load_module $mod;"
	nginx_head "$dir"
	cat <<-EOF
		stream {
		    upstream web { ${servers% } }
		    upstream stream { server $1:$sport; }
		    server { listen $vip:$port reuseport; proxy_pass web; }
		    server { listen $vip:$sport; proxy_pass stream; }
		}
	EOF
}
