#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The metrics endpoint end to end (tests/net/lib.sh topology): lbd in the lb
# namespace with `metrics 127.0.0.1:9464;`, real TCP through the VIP, then
# scrapes with curl from inside the lb namespace:
#   - 200, Content-Type text/plain; version=0.0.4; 404, 405, the index page
#   - the body parses: every line is a comment, HELP, TYPE or a sample of the
#     exposition grammar; every family has one HELP and one TYPE before its
#     samples, its samples together, no series twice; counters end in _total
#   - every family of the contract is there, and every metric and label the
#     example Grafana dashboard queries
#   - the VIP and backend counters are > 0 and lie between two `lbctl -j stats`
#     taken before and after the scrape (same for drops and events)
#   - backend state/weight/connections gauges, interface mode, runtime changes follow
#     lbctl; a half-sent request does not hold up other scrapes; 50 at once
#   - a reload moves the endpoint (another port, off, IPv6) without a restart
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool curl ss jq
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

lbd_topo_up 3
VIP=198.18.0.10
MURL=http://127.0.0.1:9464

write_conf() { # METRICS-LINE
	{ lbd_conf_head ${1:+"$1"}; cat <<EOF; } >"$CONF"
vip web {
    listen $VIP:80;
    backend ${BE_ADDRS[1]}:3000 weight=1;
    backend ${BE_ADDRS[2]}:3000 weight=2;
    backend ${BE_ADDRS[3]}:3000 weight=1 state=drain;
}
vip dns {
    listen $VIP:53 udp;
    backend ${BE_ADDRS[1]}:3000;
}
EOF
}

scrape() { in_lb curl -sS -m 3 "$@"; }          # URL and curl options
code() { in_lb curl -s -m 3 -o /dev/null -w '%{http_code}' "$@"; }
serves() { [ "$(code "$1")" = 200 ]; }
refuses() { [ "$(code "$1")" = 000 ]; }
# value SERIES BODY: the value of one series (exact name and labels).
value() { awk -v s="$1" 'index($0, s " ") == 1 { print $NF; f = 1 } END { if (!f) print "none" }' <<<"$2"; }

# The exposition grammar (text format 0.0.4). Prints one line per problem.
check_format() {
	awk '
	function bad(msg) { print "line " NR ": " msg ": " $0; errs++ }
	BEGIN {
		name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
		lname = "[a-zA-Z_][a-zA-Z0-9_]*"
		lval = "\"([^\"\\\\]|\\\\[\\\\\"n])*\""
		pair = lname "=" lval
		num = "[-+]?(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?|Inf|NaN)"
		sample_re = "^" name "(\\{(" pair "(," pair ")*,?)?\\})? " num "( -?[0-9]+)?$"
	}
	/^$/ { next }
	/^# HELP / {
		if ($3 !~ "^" name "$") bad("bad HELP name")
		if (help[$3]++) bad("second HELP")
		if ($3 in seen) bad("HELP after samples")
		next
	}
	/^# TYPE / {
		if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("bad TYPE")
		if (type[$3]) bad("second TYPE")
		if ($3 in seen) bad("TYPE after samples")
		type[$3] = $4
		next
	}
	/^#/ { next }
	{
		if ($0 !~ sample_re) { bad("not a sample"); next }
		m = $0; sub(/[{ ].*/, "", m)
		if (!(m in help)) bad("no HELP for " m)
		if (!(m in type)) bad("no TYPE for " m)
		if (type[m] == "counter" && m !~ /_total$/) bad("counter without _total")
		if (m != last && (m in seen)) bad("samples of " m " not together")
		seen[m] = 1; last = m
		series = $0; sub(/ [^ ]+$/, "", series)
		if (dup[series]++) bad("series twice")
		samples++
	}
	END {
		if (!samples) { print "no samples"; errs++ }
		exit errs > 0
	}'
}

# lbctl -j stats as exposition lines, for the counters both can show.
stats_series() {
	lbctl -j stats | jq -r '
		(.vips[] as $v |
			("lbd_vip_packets_total{vip=\"\($v.name)\",direction=\"in\"} \($v.packets)",
			 "lbd_vip_packets_total{vip=\"\($v.name)\",direction=\"out\"} \($v.reply_packets)",
			 "lbd_vip_bytes_total{vip=\"\($v.name)\",direction=\"in\"} \($v.bytes)",
			 "lbd_vip_bytes_total{vip=\"\($v.name)\",direction=\"out\"} \($v.reply_bytes)",
			 "lbd_vip_new_flows_total{vip=\"\($v.name)\"} \($v.new_flows)",
			 ($v.backends[] |
				"lbd_backend_packets_total{vip=\"\($v.name)\",backend=\"\(.address)\"} \(.packets)",
				"lbd_backend_bytes_total{vip=\"\($v.name)\",backend=\"\(.address)\"} \(.bytes)",
				"lbd_backend_new_flows_total{vip=\"\($v.name)\",backend=\"\(.address)\"} \(.new_flows)"))),
		(.drops | to_entries[] | "lbd_drops_total{reason=\"\(.key)\"} \(.value)"),
		(.events | to_entries[] | "lbd_events_total{event=\"\(.key)\"} \(.value)")'
}

# between BEFORE SCRAPE AFTER: every series of BEFORE is in SCRAPE with
# BEFORE <= value <= AFTER. Prints the count compared, or the problems.
between() {
	awk '
	FILENAME == ARGV[1] { k = $0; sub(/ [^ ]+$/, "", k); lo[k] = $NF; next }
	FILENAME == ARGV[2] { k = $0; sub(/ [^ ]+$/, "", k); if (k in lo) m[k] = $NF; next }
	{
		k = $0; sub(/ [^ ]+$/, "", k)
		if (!(k in lo)) next
		n++
		if (!(k in m)) { print "missing: " k; errs++ }
		else if (m[k] + 0 < lo[k] + 0 || m[k] + 0 > $NF + 0) {
			print k ": scrape " m[k] " not within lbctl " lo[k] ".." $NF; errs++
		}
	}
	END { if (!errs) print n; exit errs > 0 }' "$1" "$2" "$3"
}

# ---------------------------------------------------------------- start
write_conf "metrics 127.0.0.1:9464;"
bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
if ! wait_for -t 10 lbd_up || ! wait_for serves "$MURL/metrics"; then
	t_fail "$T_NAME" "lbd with metrics did not come up in $MODE mode"
	bg_log "$LBD_PID"
	t_done; exit 1
fi

hdr=$(scrape -D - -o /dev/null "$MURL/metrics")
if grep -q "^HTTP/1.1 200" <<<"$hdr" && \
   grep -qi "^Content-Type: text/plain; version=0.0.4" <<<"$hdr"; then
	t_pass "scrape-200-content-type"
else
	t_fail "scrape-200-content-type" "$hdr"
fi
c404=$(code "$MURL/nope") c405=$(code -X POST -d x "$MURL/metrics")
index=$(scrape "$MURL/")
if [ "$c404" = 404 ] && [ "$c405" = 405 ] && grep -q 'href="/metrics"' <<<"$index"; then
	t_pass "404-405-index"
else
	t_fail "404-405-index" "404->$c404 405->$c405 index: $index"
fi

# ---------------------------------------------------------------- traffic
out=$(in_client "$LBLOAD" -t 1000 -c 300 -p 8 "$VIP:80" 2>&1)
[ "$(field ok "$out")" = 300 ] || t_fail "traffic" "300 requests through the VIP: $out"
in_client "$LBLOAD" -t 1000 --udp -c 20 -p 2 "$VIP:53" >/dev/null 2>&1

stats_series >"$TOPO_DIR/before"
body=$(scrape "$MURL/metrics")
stats_series >"$TOPO_DIR/after"
printf '%s\n' "$body" >"$TOPO_DIR/scrape"

if problems=$(check_format <<<"$body"); then
	t_pass "exposition-grammar ($(grep -vc '^#' <<<"$body") samples)"
else
	t_fail "exposition-grammar" "$problems"
fi

missing=
for f in lbd_vip_packets_total lbd_vip_bytes_total lbd_vip_new_flows_total \
	lbd_backend_packets_total lbd_backend_bytes_total lbd_backend_new_flows_total \
	lbd_backend_connections lbd_backend_up lbd_backend_weight lbd_drops_total \
	lbd_events_total lbd_conntrack_flows lbd_interface_mode lbd_runtime_changes lbd_build_info; do
	grep -q "^# TYPE $f " <<<"$body" && grep -q "^${f}[{ ]" <<<"$body" || missing+=" $f"
done
t_check "every-family-present" "missing:$missing" test -z "$missing"

# examples/grafana-dashboard.json: every metric its queries (panels and
# variables) name is a family of this scrape with samples, and every label
# they group, select or match by is on that family's samples.
dash_problems() {
	local expr m l metrics labels found
	jq -r '.. | objects | (.expr?, .definition?) | strings' "$REPO_DIR/examples/grafana-dashboard.json" |
	while IFS= read -r expr; do
		metrics=$(grep -o 'lbd_[a-z_]*' <<<"$expr" | sort -u)
		[ -n "$metrics" ] || { echo "no lbd metric in: $expr"; continue; }
		labels=$(grep -oE '(by|ignoring) \([a-z_, ]*\)|[a-z_]+=~?"' <<<"$expr" |
			sed -E 's/^(by|ignoring) \(//; s/\)$//; s/=~?"$//' | tr ', ' '\n\n' | grep -vxE 'instance|job|' | sort -u)
		for m in $metrics; do
			grep -q "^# TYPE $m " <<<"$body" && grep -q "^${m}[{ ]" <<<"$body" ||
				echo "$m (in: $expr) is not in /metrics"
		done
		for l in $labels; do
			found=
			for m in $metrics; do grep -Eq "^${m}\\{(.*,)?$l=\"" <<<"$body" && found=1; done
			[ -n "$found" ] || echo "label $l (in: $expr) is on no sample of $metrics"
		done
	done
}
problems=$(dash_problems)
nq=$(jq '[.. | objects | (.expr?, .definition?) | strings] | length' "$REPO_DIR/examples/grafana-dashboard.json")
t_check "grafana-dashboard-queries-exist ($nq queries)" "$problems" [ -z "$problems" ]

ok=1 why=
for s in 'lbd_vip_packets_total{vip="web",direction="in"}' \
	 'lbd_vip_packets_total{vip="web",direction="out"}' \
	 'lbd_vip_bytes_total{vip="web",direction="in"}' \
	 'lbd_vip_bytes_total{vip="web",direction="out"}' \
	 'lbd_vip_new_flows_total{vip="dns"}' \
	 "lbd_backend_packets_total{vip=\"web\",backend=\"${BE_ADDRS[1]}:3000\"}" \
	 "lbd_backend_bytes_total{vip=\"web\",backend=\"${BE_ADDRS[2]}:3000\"}" \
	 "lbd_backend_new_flows_total{vip=\"web\",backend=\"${BE_ADDRS[2]}:3000\"}"; do
	v=$(value "$s" "$body")
	if ! [ "$v" -gt 0 ] 2>/dev/null; then ok=0; why+=" $s=$v"; fi
done
flows=$(value 'lbd_vip_new_flows_total{vip="web"}' "$body")
[ "$flows" -ge 300 ] 2>/dev/null || { ok=0; why+=" web new flows=$flows (want >= 300)"; }
drained=$(value "lbd_backend_new_flows_total{vip=\"web\",backend=\"${BE_ADDRS[3]}:3000\"}" "$body")
[ "$drained" = 0 ] || { ok=0; why+=" drained be3 got $drained flows"; }
t_check "counters-after-traffic" "$why" test $ok = 1

if n=$(between "$TOPO_DIR/before" "$TOPO_DIR/scrape" "$TOPO_DIR/after"); then
	t_pass "consistent-with-lbctl-stats ($n series)"
else
	t_fail "consistent-with-lbctl-stats" "$n"
fi

up1=$(value "lbd_backend_up{vip=\"web\",backend=\"${BE_ADDRS[1]}:3000\",state=\"up\"}" "$body")
up3=$(value "lbd_backend_up{vip=\"web\",backend=\"${BE_ADDRS[3]}:3000\",state=\"drain\"}" "$body")
w2=$(value "lbd_backend_weight{vip=\"web\",backend=\"${BE_ADDRS[2]}:3000\"}" "$body")
m0=$(value "lbd_interface_mode{interface=\"eth0\",mode=\"$MODE\"}" "$body")
rt=$(value lbd_runtime_changes "$body")
bi=$(grep -c '^lbd_build_info{version="[^"]*"} 1$' <<<"$body")
if [ "$up1" = 1 ] && [ "$up3" = 0 ] && [ "$w2" = 2 ] && [ "$m0" = 1 ] && [ "$rt" = 0 ] && [ "$bi" = 1 ]; then
	t_pass "gauges"
else
	t_fail "gauges" "up(be1)=$up1 up(be3,drain)=$up3 weight(be2)=$w2 mode(eth0)=$m0 runtime=$rt build_info=$bi"
fi

lbctl backend set "${BE_ADDRS[1]}:3000" state=down weight=7 vip=web >/dev/null
body=$(scrape "$MURL/metrics")
up1=$(value "lbd_backend_up{vip=\"web\",backend=\"${BE_ADDRS[1]}:3000\",state=\"down\"}" "$body")
w1=$(value "lbd_backend_weight{vip=\"web\",backend=\"${BE_ADDRS[1]}:3000\"}" "$body")
rt=$(value lbd_runtime_changes "$body")
if [ "$up1" = 0 ] && [ "$w1" = 7 ] && [ "$rt" -ge 1 ] 2>/dev/null; then
	t_pass "gauges-follow-lbctl"
else
	t_fail "gauges-follow-lbctl" "up(be1,down)=$up1 weight=$w1 runtime=$rt"
fi

# Open connections show up in the connections gauge. They stay open until
# the gauge has been read (not for a fixed time a loaded machine may spend
# starting lbload and curl), and are seen open by the client first.
bg_start "$NS_CLIENT" "$LBLOAD" --keep 4 --duration 60 -c 0 "$VIP:80"
KEEP_PID=$BG_PID
sum_conns() { scrape "$MURL/metrics" | awk '/^lbd_backend_connections\{vip="web",/ { n += $NF } END { print n + 0 }'; }
conns_at_least_4() { [ "$(sum_conns)" -ge 4 ]; }
client_open() { [ "$(in_client ss -Htn state established "dst $VIP:80" | wc -l)" -ge 4 ]; }
if ! wait_for -t 20 client_open; then
	t_fail "connections-gauge" "the client did not get 4 connections open to $VIP:80"
elif wait_for -t 20 conns_at_least_4; then
	t_pass "connections-gauge ($(sum_conns) open)"
else
	t_fail "connections-gauge" "want >= 4 open on web, got $(sum_conns)"
fi
kill "$KEEP_PID" 2>/dev/null
wait "$KEEP_PID" 2>/dev/null

# ---------------------------------------------------------------- clients
# A client that sends half a request and waits must not hold up scrapes.
bg_start "$NS_LB" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464; printf "GET /metr" >&3; sleep 4'
SLOW_PID=$BG_PID
sleep 0.3
t0=$(date +%s%N)
c=$(code "$MURL/metrics")
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$c" = 200 ] && [ "$ms" -lt 1000 ]; then
	t_pass "slow-client-blocks-nobody (${ms} ms)"
else
	t_fail "slow-client-blocks-nobody" "status $c after $ms ms"
fi
bg_stop "$SLOW_PID"

# shellcheck disable=SC2016 # expanded by the inner shell
in_lb bash -c 'for i in $(seq 50); do
	curl -s -m 5 -o /dev/null -w "%{http_code}\n" http://127.0.0.1:9464/metrics &
done; wait' >"$TOPO_DIR/fifty"
n=$(grep -c '^200$' "$TOPO_DIR/fifty")
t_check "50-concurrent-scrapes" "$n of 50 got 200" test "$n" = 50

# ---------------------------------------------------------------- reload
write_conf "metrics 127.0.0.1:9465;"
out=$(lbctl reload 2>&1)
if wait_for serves http://127.0.0.1:9465/metrics && refuses "$MURL/metrics"; then
	t_pass "reload-moves-endpoint"
else
	t_fail "reload-moves-endpoint" "9465: $(code http://127.0.0.1:9465/metrics) 9464: $(code "$MURL/metrics") reload: $out"
fi
write_conf ""
lbctl reload >/dev/null 2>&1
if wait_for refuses http://127.0.0.1:9465/metrics; then
	t_pass "reload-removes-endpoint"
else
	t_fail "reload-removes-endpoint" "9465 still answers"
fi
write_conf "metrics [::1]:9464;"
lbctl reload >/dev/null 2>&1
if wait_for serves "http://[::1]:9464/metrics" && refuses "$MURL/metrics"; then
	t_pass "reload-ipv6-endpoint"
else
	t_fail "reload-ipv6-endpoint" "[::1]:9464: $(code "http://[::1]:9464/metrics")"
fi

# ---------------------------------------------------------------- stop
lbctl stop >/dev/null
for ((i = 0; i < 50; i++)); do kill -0 "$LBD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$LBD_PID" 2>/dev/null; then t_fail "stop" "lbd still running"; else t_pass "stop"; fi

t_done
