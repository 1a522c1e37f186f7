#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Health checks end to end (issue 5), in namespaces (tests/net/lib.sh), lbd
# in mode LBD_MODE (xdp by default; test_health_proxy.sh runs it in proxy
# mode, where passive health counts the proxy's connect failures), checks
# every 500 ms, rise 2, fall 2:
#   - a stopped backend leaves the table within interval x fall + interval
#     (measured), lbctl status says down, no new connection reaches it and
#     none fails; restarted, it comes back after rise checks (measured)
#   - a backend answering HTTP 500 is down for an http check, up for a tcp one
#   - a backup takes traffic only once every primary is down
#   - passive (no active check): a backend that RSTs every SYN is taken out
#     by max_fails from the data path's counters, then tried again after
#     fail_timeout
#   - bad check parameters are config errors with FILE:LINE
# shellcheck source=tests/net/lib.sh
. "$(dirname "$0")/lib.sh"
T_NAME=${T_NAME_OVERRIDE:-$T_NAME}
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool curl ss jq
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

lbd_topo_up 4
VIP=198.18.0.10
B1=${BE_ADDRS[1]}:3000 B2=${BE_ADDRS[2]}:3000 B3=${BE_ADDRS[3]}:3000 B4=${BE_ADDRS[4]}:3000
# nothing listens on 3001 in be3: its kernel answers every SYN with a RST
P3=${BE_ADDRS[3]}:3001 P4=${BE_ADDRS[4]}:3000
# be3 drops every packet to 3002: SYNs go unanswered
P5=${BE_ADDRS[3]}:3002

cat >"$CONF" <<EOF
$(lbd_conf_head "metrics 127.0.0.1:9464;")
# active http checks only (max_fails=0), so the timings are the checks'
vip web {
    listen $VIP:80;
    health_check http interval=500ms timeout=400ms rise=2 fall=2 uri=/ status=200-399;
    backend $B1 max_fails=0;
    backend $B2 max_fails=0;
    backend $B3 max_fails=0;
}
vip tcp {
    listen $VIP:81;
    health_check tcp interval=500ms timeout=400ms rise=2 fall=2 port=3000;
    backend ${BE_ADDRS[1]}:3000 max_fails=0;
    backend ${BE_ADDRS[2]}:3000 max_fails=0;
    backend $B4 backup max_fails=0;
}
vip slow {
    listen $VIP:83;
    health_check tcp interval=500ms timeout=400ms rise=1 fall=1;
    slow_start 8s;
    backend $B3 max_fails=0;
    backend $B4 max_fails=0;
}
vip blackhole {
    listen $VIP:84;
    backend $P5 max_fails=3 fail_timeout=10s;
    backend $P4 max_fails=3 fail_timeout=10s;
}
vip passive {
    listen $VIP:82;
    backend $P3 max_fails=3 fail_timeout=4s;
    backend $P4 max_fails=3 fail_timeout=4s;
}
EOF

# health VIP BACKEND: up/down as lbctl -j status says
health() {
	lbctl -j status 2>/dev/null | jq -r --arg v "$1" --arg b "$2" \
		'.. | objects | select(.name? == $v) | .backends[] | select(.address == $b) | .health'
}
reason() {
	lbctl -j status 2>/dev/null | jq -r --arg v "$1" --arg b "$2" \
		'.. | objects | select(.name? == $v) | .backends[] | select(.address == $b) | .health_reason'
}
is_health() { [ "$(health "$1" "$2")" = "$3" ]; }
load() { in_client "$LBLOAD" -t 1000 "$@" 2>&1; }
now_ms() { date +%s%3N; }
# expect_share NAME PORT BACKEND all|none|some: 200 connections to the VIP's
# PORT all succeed and BACKEND (be1..be4) gets all, none or some of them.
expect_share() {
	local out n
	out=$(load -c 200 -p 8 "$VIP:$2")
	n=$(count "$3" "$out")
	if [ "$(field ok "$out")" = 200 ] && case $4 in
		all) [ "$n" = 200 ] ;; none) [ "$n" = 0 ] ;; *) [ "$n" -gt 0 ] ;; esac; then
		t_pass "$1"
	else
		t_fail "$1" "want 200 ok, $4 on $3: $out"
	fi
}
# wait_state VIP BACKEND STATE SECONDS: prints the ms it took; 1 on timeout
wait_state() {
	local t0 i
	t0=$(now_ms)
	for ((i = 0; i < $4 * 20; i++)); do
		if is_health "$1" "$2" "$3"; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- config errors
printf 'vip bad {\n    listen 198.18.0.11:80;\n    health_check http interval=1s timeout=2s;\n}\n' \
	>"$TOPO_DIR/bad.conf"
out=$("$LBD" -t -c "$TOPO_DIR/bad.conf" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "^$TOPO_DIR/bad.conf:3: .*exceeds the interval" <<<"$out"; then
	t_pass "bad-check-is-config-error"
else
	t_fail "bad-check-is-config-error" "want exit 1 and bad.conf:3: ...exceeds, got $rc: $out"
fi

bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
if ! wait_for -t 10 lbd_up; then
	t_fail "$T_NAME" "lbd does not start in $MODE mode"
	bg_log "$LBD_PID" >&2
	t_done; exit 1
fi

# ---------------------------------------------------------------- all up
ok=1
for b in "$B1" "$B2" "$B3"; do
	wait_for -t 3 is_health web "$b" up || ok=0
done
out=$(load -c 300 -p 8 "$VIP:80")
if [ $ok = 1 ] && [ "$(field ok "$out")" = 300 ] && [ "$(count be1 "$out")" -gt 0 ] &&
	[ "$(count be2 "$out")" -gt 0 ] && [ "$(count be3 "$out")" -gt 0 ]; then
	t_pass "all-up"
else
	t_fail "all-up" "want 3 healthy backends sharing 300 requests: $(lbctl status) $out"
fi
expect_share backup-idle-while-primaries-up 81 be4 none

# ---------------------------------------------------------------- stop / start
# A steady client meanwhile: one short connection at a time, 6 s.
bg_start "$NS_CLIENT" "$LBLOAD" -t 1000 -c 100000 -p 1 --duration 6 "$VIP:80"
STEADY=$BG_PID
sleep 0.5
stop_backend 1
if ms=$(wait_state web "$B1" down 5); then
	t_pass "stopped-backend-down (${ms} ms; limit 1500 ms = 500 ms x fall 2 + 500 ms)"
	[ "$ms" -le 2000 ] || t_fail "stopped-backend-down-in-time" "took $ms ms"
	echo "  reason: $(reason web "$B1")"
else
	t_fail "stopped-backend-down" "still $(health web "$B1") after 5 s: $(lbctl status)"
fi
expect_share no-new-connection-to-down-backend 80 be1 none
out=$(in_client "$LBLOAD" -t 1000 -c 100000 -p 1 --duration 2 "$VIP:80" 2>&1)
if [ "$(field failed "$out")" = 0 ] && [ "$(count be1 "$out")" = 0 ] && [ "$(field ok "$out")" -gt 100 ]; then
	t_pass "steady-client-no-failure-after-removal ($(field ok "$out") ok in 2 s)"
else
	t_fail "steady-client-no-failure-after-removal" "$out"
fi
if grep -q "vip web backend $B1 down: " <(bg_log "$LBD_PID"); then
	t_pass "state-change-logged"
else
	t_fail "state-change-logged" "no 'vip web backend $B1 down:' line: $(bg_log "$LBD_PID" | tail -5)"
fi
wait_for -t 10 bash -c "! kill -0 $STEADY 2>/dev/null"
steady=$(bg_log "$STEADY")
echo "  steady client (1 connection at a time, 6 s) over the failure: $(grep -o 'ok=[0-9]* failed=[0-9]*' <<<"$steady" | head -1)"

start_backend 1 3000 || t_fail "$T_NAME" "be1 does not restart"
if ms=$(wait_state web "$B1" up 5); then
	t_pass "restarted-backend-up (${ms} ms; rise 2 x 500 ms)"
else
	t_fail "restarted-backend-up" "still $(health web "$B1") after 5 s"
fi
expect_share restarted-backend-gets-traffic 80 be1 some

# ---------------------------------------------------------------- http 500
start_backend 2 3000 --status 500 || t_fail "$T_NAME" "be2 does not restart"
if wait_state web "$B2" down 5 >/dev/null; then
	r=$(reason web "$B2")
	if grep -q "http status 500 (expected 200-399)" <<<"$r"; then
		t_pass "http-500-down"
	else
		t_fail "http-500-down" "reason: $r"
	fi
else
	t_fail "http-500-down" "be2 answering 500 is $(health web "$B2")"
fi
sleep 1.2 # more than two tcp checks
t_check "http-500-up-for-tcp-check" "tcp check: $(health tcp "$B2")" is_health tcp "$B2" up
m=$(in_lb curl -sS -m 3 http://127.0.0.1:9464/metrics 2>&1)
if grep -q "^lbd_backend_healthy{vip=\"web\",backend=\"$B2\"} 0\$" <<<"$m" &&
	grep -q "^lbd_backend_healthy{vip=\"tcp\",backend=\"$B2\"} 1\$" <<<"$m" &&
	grep -Eq "^lbd_backend_health_changes_total\{vip=\"web\",backend=\"$B2\"\} [1-9]" <<<"$m" &&
	grep -Eq "^lbd_backend_health_last_change_seconds\{vip=\"web\",backend=\"$B2\"\} 1[0-9]{9}\$" <<<"$m"; then
	t_pass "health-in-metrics"
else
	t_fail "health-in-metrics" "$(grep "$B2" <<<"$m" | grep health)"
fi
st=$(lbctl status)
line=$(awk -v b="$B2" '$1 == "web" { w = 1; next } /^  [^ ]/ { w = 0 } w && $1 == b' <<<"$st")
echo "  lbctl status: $line"
if grep -q "health down since [0-9]*s: http status 500 (expected 200-399)" <<<"$line"; then
	t_pass "health-in-lbctl-status"
else
	t_fail "health-in-lbctl-status" "$st"
fi
# A reload (same file) keeps the state: be2 stays down, nothing is logged.
nlog=$(bg_log "$LBD_PID" | grep -c "backend $B2 up")
lbctl reload >/dev/null 2>&1
if is_health web "$B2" down && sleep 0.3 && is_health web "$B2" down &&
	[ "$(bg_log "$LBD_PID" | grep -c "backend $B2 up")" = "$nlog" ]; then
	t_pass "reload-keeps-health-state"
else
	t_fail "reload-keeps-health-state" "be2 is $(health web "$B2") after a reload"
fi

# ---------------------------------------------------------------- backup
stop_backend 1
stop_backend 2
if wait_state tcp "$B1" down 5 >/dev/null && wait_state tcp "$B2" down 5 >/dev/null; then
	expect_share backup-takes-over 81 be4 all
else
	t_fail "backup-takes-over" "primaries not down: $(lbctl status)"
fi
start_backend 1 3000
start_backend 2 3000
if wait_state tcp "$B1" up 5 >/dev/null; then
	expect_share backup-idle-again 81 be4 none
else
	t_fail "backup-idle-again" "be1 not back"
fi

# ---------------------------------------------------------------- slow start
# be4 comes back into a VIP with slow_start 8s: its share of the VIP's table
# (table_slots: what the data path picks new connections from) ramps from
# about 1/11 (weight 1/10 against 1) to 1/2, and every sample of 400
# connections lands on be4 as the table said while the sample ran. Samples
# are judged against the table they ran on, not against the time since be4
# came back: on a loaded machine a sample takes anywhere from a fraction of
# a second to several seconds.
# be4_mille: be4's share of vip slow's table in thousandths (0: not in it).
be4_mille() {
	lbctl -j status 2>/dev/null | jq -r --arg b "$B4" '.. | objects | select(.name? == "slow") |
		([.backends[].table_slots] | add) as $t | .backends[] | select(.address == $b) |
		if $t > 0 then (.table_slots * 1000 / $t | floor) else 0 end' | head -1
}
stop_backend 4
if wait_state slow "$B4" down 5 >/dev/null; then
	start_backend 4 3000
	samples=() shares=() why=
	end=$((SECONDS + 90))
	while [ "$SECONDS" -lt "$end" ]; do
		f0=$(be4_mille)
		if ! [ "${f0:-0}" -gt 0 ] 2>/dev/null; then sleep 0.1; continue; fi # not back yet
		out=$(load -c 400 -p 8 "$VIP:83")
		f1=$(be4_mille)
		n=$(count be4 "$out") ok=$(field ok "$out"); ok=${ok:-0}
		samples+=("$f0-$f1:$n/$ok") shares+=("$n")
		# binomial: 60 is 6 standard deviations at 400; it also covers
		# client ports reused after thousands of connections, whose
		# closed flows keep the backend they had (lb_flow_reused)
		lo=$((ok * (f0 < f1 ? f0 : f1) / 1000 - 60)) hi=$((ok * (f0 > f1 ? f0 : f1) / 1000 + 60))
		[ "$n" -ge "$lo" ] && [ "$n" -le "$hi" ] || why+=" $n of $ok outside $lo..$hi;"
		[ "$f1" -ge "$f0" ] || why+=" share fell from $f0 to $f1;"
		[ "${#samples[@]}" -eq 1 ] || [ "$f0" -ge "$last" ] || why+=" share fell from $last to $f0;"
		last=$f1
		[ "$f0" -lt 490 ] || break # a sample on the full table (1/2; 9/10 is 473)
		# paced: fewer connections in all, fewer client ports used twice
		sleep 0.9
	done
	echo "  be4: share of the table in 1/1000 before-after each sample: be4's connections/ok: ${samples[*]}"
	first=${samples[0]%%-*}
	[ "${#samples[@]}" -ge 3 ] || why+=" ${#samples[@]} samples;"
	[ "${first:-1000}" -le 300 ] || why+=" first sample on a share of ${first:-none}/1000;"
	[ "${f0:-0}" -ge 490 ] && [ "${n:-0}" -ge 160 ] || why+=" no sample on the full table with >= 160;"
	if [ -z "$why" ]; then
		t_pass "slow-start-ramps (${shares[*]})"
	else
		t_fail "slow-start-ramps" "want a rising share from <= 300/1000 to about 1/2 and the connections to follow it:$why"
	fi
else
	t_fail "slow-start-ramps" "be4 not down"
	start_backend 4 3000
fi

# ---------------------------------------------------------------- passive
# Every connection to be3:3001 is refused; lbd learns it from the data path
# within a tick or two and then sends everything to be4.
out=$(load -c 100 -p 4 "$VIP:82")
t0=$(now_ms)
if ms=$(wait_state passive "$P3" down 4); then
	t_pass "passive-refused-syns-down (<= $((ms)) ms after the burst)"
	echo "  reason: $(reason passive "$P3")"
	expect_share passive-down-gets-nothing 82 be4 all
	if ms=$(wait_state passive "$P3" up 6); then
		t_pass "passive-tried-again-after-fail_timeout ($(($(now_ms) - t0)) ms after, fail_timeout 4 s)"
	else
		t_fail "passive-tried-again-after-fail_timeout" "$(health passive "$P3")"
	fi
else
	t_fail "passive-refused-syns-down" "$(lbctl status) first burst: $out"
fi

# SYNs that are never answered count too (3 s after they were sent).
if in_be 3 nft 'add table inet lbdtest; add chain inet lbdtest in { type filter hook input priority 0; }; add rule inet lbdtest in tcp dport 3002 drop'; then
	out=$(in_client "$LBLOAD" -t 300 -c 40 -p 8 "$VIP:84" 2>&1)
	if ms=$(wait_state blackhole "$P5" down 6); then
		t_pass "passive-unanswered-syns-down ($ms ms after the burst)"
		echo "  reason: $(reason blackhole "$P5")"
		expect_share passive-unanswered-gets-nothing 84 be4 all
	else
		t_fail "passive-unanswered-syns-down" "$(health blackhole "$P5"); burst: $out"
	fi
else
	t_skip "passive-unanswered-syns-down" "nft cannot filter in the backend namespace"
fi

lbctl stop >/dev/null 2>&1
wait_for -t 5 bash -c "! kill -0 $LBD_PID 2>/dev/null"
t_done
