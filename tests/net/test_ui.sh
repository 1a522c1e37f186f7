#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The operator views end to end (tests/net/lib.sh topology): lbd in the lb
# namespace with `metrics 127.0.0.1:9464;`, a VIP of three backends (weights
# 1 and 2, the third drained, tcp health checks), a worker block behind a
# local VIP, and steady traffic through the VIP meanwhile.
#   - lbctl -j status carries what the views draw: traffic counters, table
#     slots (1/3, 2/3, none for the drained one), check latency, workers,
#     when each backend's state last changed
#   - /api/status is the same document as lbctl -j status (volatile numbers
#     aside), JSON, read-only (POST 405), and only on the configured address
#   - lbctl top, stdout not a terminal: exactly -n plain frames, every
#     backend with its state and share, rates > 0 where traffic goes and 0
#     for the drained backend, the worker online; bad arguments exit 2, no
#     lbd exits 1
#   - lbctl top on a terminal (a tmux pty): draws the same rows in place,
#     follows a state change, quits on q with status 0
#   - the stats page in headless Chromium, loaded from lbd: after its script
#     ran (two samples, so rates), the DOM has every backend with its state
#     and the worker, then follows `backend set ... state=down`; a screenshot
#     is kept as $O/test-artifacts/stats-page.png
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool curl ss jq tmux chromium timeout
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

TMUX_SOCK=lbd-ui-$$
lbd_topo_up 3
cleanup() {
	tmux -L "$TMUX_SOCK" kill-server >/dev/null 2>&1
	topo_down
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM

VIP=198.18.0.10
MURL=http://127.0.0.1:9464
B1=${BE_ADDRS[1]}:3000 B2=${BE_ADDRS[2]}:3000 B3=${BE_ADDRS[3]}:3000
ARTIFACTS=$O/test-artifacts
mkdir -p "$ARTIFACTS"

{ lbd_conf_head "metrics 127.0.0.1:9464;"; cat <<EOF; } >"$CONF"
# active checks only (max_fails=0): the views show their state and latency
vip web {
    listen $VIP:80;
    health_check tcp interval=500ms timeout=400ms rise=1 fall=2;
    backend $B1 weight=1 max_fails=0;
    backend $B2 weight=2 max_fails=0;
    backend $B3 weight=1 state=drain max_fails=0;
}
vip app {
    listen $VIP:81;
    forward local;
}
worker app {
    command $DEMO_BACKEND;
    instances 1;
    port 4000;
    vip app;
    ready tcp;
    log $TOPO_DIR/app-%i.log;
}
EOF

scrape() { in_lb curl -sS -m 3 "$@"; }
code() { in_lb curl -s -m 3 -o /dev/null -w '%{http_code}' "$@"; }
serves() { [ "$(code "$1")" = 200 ]; }
online() { [ "$(lbctl -j status | jq '[.workers[] | select(.state == "online")] | length')" = 1 ]; }

bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
if ! wait_for -t 10 lbd_up || ! wait_for serves "$MURL/metrics" || ! wait_for -t 10 online; then
	t_fail "$T_NAME" "lbd with metrics and a worker did not come up in $MODE mode"
	bg_log "$LBD_PID"
	t_done; exit 1
fi

# Steady traffic (and a few held connections) for the rest of the test;
# bounded by its duration, and topo_down stops it in any case.
bg_start "$NS_CLIENT" "$LBLOAD" -c 1000000 -p 1 --keep 3 --duration 60 "$VIP:80"
LOAD_PID=$BG_PID
sleep 1.2 # the first checks are done and the counters move

# ---------------------------------------------------------------- status data
st=$(lbctl -j status)
want='[.vips[] | select(.name == "web") | .table_size as $m | .backends[] |
	{a: .address, s: .state, slots: .table_slots, m: $m,
	 counters: ((.packets | type) == "number" and (.bytes | type) == "number" and
		    (.new_flows | type) == "number"),
	 lat: (.health_latency_us | type)}]'
got=$(jq -c "$want" <<<"$st")
m=$(jq -r '.vips[] | select(.name == "web") | .table_size' <<<"$st")
s1=$(jq -r --arg b "$B1" '.[] | select(.a == $b) | .slots' <<<"$got")
s2=$(jq -r --arg b "$B2" '.[] | select(.a == $b) | .slots' <<<"$got")
s3=$(jq -r --arg b "$B3" '.[] | select(.a == $b) | .slots' <<<"$got")
if [ "$((s1 + s2))" = "$m" ] && [ "$s3" = 0 ] && [ "$((s2 - 2 * s1))" -le 2 ] &&
   [ "$((2 * s1 - s2))" -le 2 ] && ! grep -q '"counters":false' <<<"$got" &&
   ! grep -q '"lat":"null"' <<<"$got" &&
   jq -e '.now_ms > 0 and .uptime_ms >= 0 and (.workers | length) == 1 and
	  (.workers[0] | .pid > 0 and .memory_kib > 0 and (.cpu_seconds | type) == "number")' \
	  <<<"$st" >/dev/null; then
	t_pass "status-has-view-data (slots $s1/$s2/$s3 of $m)"
else
	t_fail "status-has-view-data" "$got workers: $(jq -c .workers <<<"$st")"
fi

# ---------------------------------------------------------------- /api/status
stable() { # the document without the numbers that move between two reads
	jq -S 'del(.now_ms, .uptime_ms) | walk(if type == "object" then
		del(.packets, .bytes, .new_flows, .conns, .last_check_ms_ago, .last_change_ms_ago,
		    .health_latency_us, .health_checks, .health_ok_run, .cpu_seconds, .uptime_s,
		    .memory_kib, .health_reason) else . end)'
}
hdr=$(scrape -D - -o "$TOPO_DIR/api.json" "$MURL/api/status")
lbctl -j status >"$TOPO_DIR/ctl.json"
if grep -qi '^Content-Type: application/json' <<<"$hdr" &&
   diff <(stable <"$TOPO_DIR/api.json") <(stable <"$TOPO_DIR/ctl.json") >"$TOPO_DIR/api.diff" &&
   jq -e '.vips | length == 2' "$TOPO_DIR/api.json" >/dev/null; then
	t_pass "api-status-is-lbctl-status"
else
	t_fail "api-status-is-lbctl-status" "$hdr $(head -20 "$TOPO_DIR/api.diff")"
fi
c_post=$(code -X POST -d x "$MURL/api/status")
listeners=$(in_lb ss -Hltn 'sport = :9464' | awk '{ print $4 }' | sort -u | tr '\n' ' ')
page=$(scrape "$MURL/")
if [ "$c_post" = 405 ] && [ "$listeners" = "127.0.0.1:9464 " ] &&
   grep -q 'fetch("/api/status"' <<<"$page" && ! grep -Eq '(src|href)="(https?:)?//' <<<"$page"; then
	t_pass "read-only-on-configured-address-self-contained"
else
	t_fail "read-only-on-configured-address-self-contained" \
		"POST -> $c_post, listeners: $listeners, page external refs: $(grep -Eo '(src|href)="[^"]*"' <<<"$page" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- lbctl top, plain
# stdout is a pipe here: plain frames without -b
lbctl top -n 2 -d 0.5 >"$TOPO_DIR/top.txt" 2>&1
rc=$?
top=$(cat "$TOPO_DIR/top.txt")
frames=$(grep -c '^lbd .* on .*  pid [0-9]' <<<"$top")
last=$(awk '/^lbd .* on / { f = "" } { f = f $0 "\n" } END { printf "%s", f }' <<<"$top")
row() { grep -F "  $1 " <<<"$last" | head -1; }
col() { row "$1" | awk -v c="$2" '{ print $c }'; } # fields: addr state health... see BE_HEAD
# backend rows: ADDR STATE HEALTH(2 words: "up tcp") WEIGHT SHARE CONNS FLOWS PKTS BYTES UNIT CHECK CHANGED
r1=$(row "$B1") r2=$(row "$B2") r3=$(row "$B3")
ok=1 why=
[ "$rc" = 0 ] && [ "$frames" = 2 ] || { ok=0; why+=" rc=$rc frames=$frames"; }
[ "$(col "$B1" 2)" = up ] && [ "$(col "$B2" 2)" = up ] && [ "$(col "$B3" 2)" = drain ] ||
	{ ok=0; why+=" states"; }
[ "$(col "$B1" 6)" = 33.3% ] && [ "$(col "$B2" 6)" = 66.7% ] && [ "$(col "$B3" 6)" = 0.0% ] ||
	{ ok=0; why+=" shares"; }
for b in "$B1" "$B2"; do
	f=$(col "$b" 8)
	[ "$f" != 0 ] && [ "$f" != - ] || { ok=0; why+=" no flows/s on $b"; }
done
[ "$(col "$B3" 8)" = 0 ] && [ "$(col "$B3" 9)" = 0 ] || { ok=0; why+=" drained backend has traffic"; }
grep -Eq '^app +0 +[0-9]+ +4000 +[0-9]+ online +[0-9.]+% +[0-9.]+ [KM]iB' <<<"$last" ||
	{ ok=0; why+=" worker row"; }
t_check "top-plain-frames" "$why: $top" test $ok = 1

o1=$(lbctl top -n 0 2>&1); r_n=$?
o2=$(lbctl top -d 0.01 2>&1); r_d=$?
o3=$("$LBCTL" -s "$TOPO_DIR/nope.sock" top -n 1 2>&1); r_s=$?
if [ $r_n = 2 ] && grep -q "bad count '0'" <<<"$o1" && [ $r_d = 2 ] && grep -q "bad delay '0.01'" <<<"$o2" &&
   [ $r_s = 1 ] && grep -q "cannot reach lbd" <<<"$o3"; then
	t_pass "top-bad-arguments"
else
	t_fail "top-bad-arguments" "-n 0: $r_n $o1 / -d 0.01: $r_d $o2 / no lbd: $r_s $o3"
fi

# ---------------------------------------------------------------- lbctl top, terminal
screen() { tmux -L "$TMUX_SOCK" capture-pane -p -t ui 2>/dev/null; }
on_screen() { screen | grep -Eq "$1"; }
tmux -L "$TMUX_SOCK" new-session -d -s ui -x 140 -y 40 \
	"'$LBCTL' -s '$SOCK' top -d 0.3; echo \"top exited \$?\"; sleep 30"
ok=1 why=
wait_for -t 5 on_screen "^  ${B3//./\\.} +drain " || { ok=0; why+=" no drain row;"; }
wait_for -t 5 on_screen "^app +0 .* online " || { ok=0; why+=" no worker row;"; }
on_screen "q quit" || { ok=0; why+=" no footer;"; }
lbctl backend set "$B1" state=down vip=web >/dev/null
wait_for -t 5 on_screen "^  ${B1//./\\.} +down " || { ok=0; why+=" state change not shown;"; }
lbctl backend set "$B1" state=up vip=web >/dev/null
tmux -L "$TMUX_SOCK" send-keys -t ui q
wait_for -t 5 on_screen "^top exited 0$" || { ok=0; why+=" q did not quit with 0;"; }
t_check "top-terminal" "$why $(screen)" test $ok = 1
tmux -L "$TMUX_SOCK" kill-server >/dev/null 2>&1

# ---------------------------------------------------------------- the page in Chromium
# A fresh profile each time, and everything that would reach out switched
# off (this network is closed: Chromium would wait on it).
chrome() { # ARGS...: chromium in the lb namespace against the page, bounded
	local prof
	prof=$(mktemp -d "$TOPO_DIR/chrome.XXXXXX")
	in_lb timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --disable-extensions --user-data-dir="$prof" \
		--window-size=1280,960 --virtual-time-budget=4000 "$@" "$MURL/" 2>>"$TOPO_DIR/chrome.log"
}
# dom_row DOM ATTR VALUE: the opening <tr> tag whose ATTR is VALUE.
dom_row() { grep -o "<tr [^>]*$2=\"$3\"[^>]*>" <<<"$1" | head -1; }
dom_state() { dom_row "$1" "$2" "$3" | grep -o 'data-state="[a-z]*"' | cut -d'"' -f2; }

dom=$(chrome --dump-dom)
echo "$dom" >"$TOPO_DIR/dom1.html"
samples=$(grep -o 'data-samples="[0-9]*"' <<<"$dom" | head -1 | grep -o '[0-9]*')
ok=1 why=
grep -q '<body[^>]*data-live="ok"' <<<"$dom" || { ok=0; why+=" page not live;"; }
[ "${samples:-0}" -ge 2 ] || { ok=0; why+=" $samples samples (rates need 2);"; }
[ "$(dom_state "$dom" data-backend "$B1")" = up ] && [ "$(dom_state "$dom" data-backend "$B2")" = up ] &&
	[ "$(dom_state "$dom" data-backend "$B3")" = drain ] || { ok=0; why+=" backend states;"; }
[ "$(dom_state "$dom" data-worker app)" = online ] || { ok=0; why+=" worker state;"; }
grep -q '<section data-vip="web">' <<<"$dom" && grep -q '<section data-vip="app">' <<<"$dom" ||
	{ ok=0; why+=" VIP sections;"; }
t_check "page-renders-in-chromium" "$why $(head -c 600 <<<"$dom") $(tail -5 "$TOPO_DIR/chrome.log")" test $ok = 1

lbctl backend set "$B1" state=down vip=web >/dev/null
be() { # BACKEND JQ: JQ of the backend's object ($now: the document's now_ms)
	lbctl -j status | jq -r --arg b "$1" ".now_ms as \$now | .vips[].backends[] | select(.address == \$b) | $2"
}
a1=$(be "$B1" '$now - .state_since_ms') a2=$(be "$B2" '$now - .state_since_ms')
n1=$(be "$B1" .table_slots) n2=$(be "$B2" .table_slots)
if [ "$a1" -lt 1000 ] 2>/dev/null && [ "$a2" -gt "$a1" ] && [ "$n1" = 0 ] && [ "$n2" = "$m" ]; then
	t_pass "state-change-time-and-share (be1 ${a1} ms ago, be2 ${a2} ms)"
else
	t_fail "state-change-time-and-share" "be1 changed $a1 ms ago, be2 $a2 ms ago; slots be1 $n1, be2 $n2 of $m"
fi
dom=$(chrome --dump-dom)
echo "$dom" >"$TOPO_DIR/dom2.html"
t_check "page-follows-state-change" "be1 is '$(dom_state "$dom" data-backend "$B1")'" \
	test "$(dom_state "$dom" data-backend "$B1")" = down

rm -f "$ARTIFACTS/stats-page.png"
chrome --screenshot="$ARTIFACTS/stats-page.png" >/dev/null
if [ "$(head -c 8 "$ARTIFACTS/stats-page.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
   [ "$(stat -c %s "$ARTIFACTS/stats-page.png")" -gt 20000 ]; then
	t_pass "page-screenshot ($ARTIFACTS/stats-page.png)"
else
	t_fail "page-screenshot" "no PNG at $ARTIFACTS/stats-page.png: $(tail -5 "$TOPO_DIR/chrome.log")"
fi

bg_stop "$LOAD_PID"
lbctl stop >/dev/null
for ((i = 0; i < 50; i++)); do kill -0 "$LBD_PID" 2>/dev/null || break; sleep 0.1; done
t_done
