#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# lbd end to end, in namespaces (tests/net/lib.sh): real TCP and UDP through
# the VIP in the attach mode LBD_MODE (xdp by default; test_lbd_tc.sh,
# test_lbd_generic.sh and test_lbd_proxy.sh run this file in tc, xdp-generic
# and proxy mode).
#   - lbd -t: a good file passes, a bad one prints FILE:LINE: message
#   - weights 1:1:2 hold within 10% over 3000 connections
#   - UDP and IPv6 VIPs
#   - lbctl backend add/set/del reach new connections and leave open ones
#     on their backend; --dry-run changes nothing; vip= is required with
#     several VIPs
#   - an invalid reload changes nothing and its error reaches lbctl
#   - kill -9 of lbd under load loses no request; a restart adopts the
#     pinned state and the runtime layer (proxy: the killed lbd's workers
#     serve on, the restarted lbd retires them once it listens, and they
#     exit when their connections are done)
#   - lbctl stop detaches and removes the pins
. "$(dirname "$0")/lib.sh"
T_NAME=${T_NAME_OVERRIDE:-$T_NAME}
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool curl ss jq
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

LBD_IFACES="eth0 eth1 ext0"
lbd_topo_up 4
VIP=198.18.0.10
VIP6=2001:2::10
LBD_PID=

write_conf() { # extra lines for the web VIP
	cat >"$CONF" <<EOF
# lbd test configuration ($MODE mode)
$(lbd_conf_head "hash_seed 0x5eed;")
vip web {
    listen $VIP:80;
    method maglev;
    backend ${BE_ADDRS[1]}:3000 weight=1;
    backend ${BE_ADDRS[2]}:3000 weight=1;
    backend ${BE_ADDRS[3]}:3000 weight=2;
$1
}
vip dns {
    listen $VIP:53 udp;
    backend ${BE_ADDRS[1]}:3000;
    backend ${BE_ADDRS[2]}:3000;
}
vip web6 {
    listen [$VIP6]:80;
    method round_robin;
    backend [${BE6_ADDRS[1]}]:3000;
    backend [${BE6_ADDRS[2]}]:3000;
    backend [${BE6_ADDRS[3]}]:3000;
}
EOF
}




load() { in_client "$LBLOAD" -t 1000 "$@" 2>&1; }

# ---------------------------------------------------------------- lbd -t
write_conf ""
out=$("$LBD" -t -c "$CONF" 2>&1)
t_check "conf-check-ok" "lbd -t rejected a good file: $out" test $? -eq 0
printf 'vip bad {\n    listen 198.18.0.11:80;\n    method fastest;\n}\n' >"$TOPO_DIR/bad.conf"
out=$("$LBD" -t -c "$TOPO_DIR/bad.conf" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "^$TOPO_DIR/bad.conf:3: .*fastest" <<<"$out"; then
	t_pass "conf-check-bad"
else
	t_fail "conf-check-bad" "want exit 1 and bad.conf:3: ...fastest, got $rc: $out"
fi

# ext0: an interface the test deletes and re-creates under lbd
in_lb ip link add ext0 type veth peer name ext0p
in_lb ip link set ext0 up
in_lb ip link set ext0p up

# ---------------------------------------------------------------- start
if ! lbd_start; then
	t_fail "$T_NAME" "lbd does not start in $MODE mode"
	t_done; exit 1
fi
st=$(lbctl status)
attached() { in_lb ip link show eth0 | grep -q "prog/xdp" || [ -n "$(in_lb tc filter show dev eth0 ingress 2>/dev/null)" ]; }
if [ "$MODE" = proxy ]; then
	t_check "status-mode-proxy" "want 'mode: proxy' and nothing attached: $st" \
		eval 'grep -q "^mode: proxy" <<<"$st" && ! attached'
elif grep -Eq "^  eth0 +$MODE\b" <<<"$st" && grep -Eq "^  eth1 +$MODE\b" <<<"$st"; then
	t_pass "status-mode-$MODE"
else
	t_fail "status-mode-$MODE" "lbctl status does not show $MODE on eth0/eth1: $st"
fi

# ---------------------------------------------------------------- weights
out=$(load -c 3000 -p 32 "$VIP:80")
ok=$(field ok "$out")
b1=$(count be1 "$out") b2=$(count be2 "$out") b3=$(count be3 "$out")
if [ "$ok" = 3000 ] && within "$b1" 750 10 && within "$b2" 750 10 && within "$b3" 1500 10; then
	t_pass "weights-1-1-2 ($b1/$b2/$b3)"
else
	t_fail "weights-1-1-2" "want 750/750/1500 +-10% of 3000 ok, got ok=$ok $b1/$b2/$b3: $out"
fi

# ---------------------------------------------------------------- UDP, IPv6
out=$(load --udp -c 200 -p 8 "$VIP:53")
if [ "$(field ok "$out")" = 200 ] && [ "$(count be1 "$out")" -gt 0 ] && [ "$(count be2 "$out")" -gt 0 ]; then
	t_pass "udp-vip"
else
	t_fail "udp-vip" "want 200 answers from be1 and be2: $out"
fi
out=$(load -c 300 -p 8 "[$VIP6]:80")
b1=$(count be1 "$out") b2=$(count be2 "$out") b3=$(count be3 "$out")
if [ "$(field ok "$out")" = 300 ] && within "$b1" 100 15 && within "$b2" 100 15 && within "$b3" 100 15; then
	t_pass "ipv6-vip-round-robin ($b1/$b2/$b3)"
else
	t_fail "ipv6-vip-round-robin" "want 300 ok spread evenly: $out"
fi
body=$(in_client curl -s -m 3 "http://$VIP/")
t_check "curl-through-vip" "curl got '$body'" grep -q "^Here we are! be[123]" <<<"$body"

# ---------------------------------------------------------------- lbctl
out=$(lbctl backend add 198.18.1.9:3000 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "web" <<<"$out" && grep -q "dns" <<<"$out" && grep -q "vip=NAME" <<<"$out"; then
	t_pass "backend-add-needs-vip"
else
	t_fail "backend-add-needs-vip" "want an error listing the VIPs, got $rc: $out"
fi
out=$(lbctl backend add 198.18.1.5:99999 vip=web 2>&1); rc=$?
t_check "backend-add-bad-arg" "want exit 2 naming the argument, got $rc: $out" \
	eval '[ $rc -eq 2 ] && grep -q "198.18.1.5:99999" <<<"$out"'
before=$(lbctl status)
out=$(lbctl -n backend add "${BE_ADDRS[4]}:3000" weight=1 vip=web 2>&1)
after=$(lbctl status)
if grep -q "would move" <<<"$out" && [ "$before" = "$after" ]; then
	t_pass "dry-run"
else
	t_fail "dry-run" "want a 'would move' estimate and no change: $out"
fi

# Long-lived connections stay on their backend through add, drain and set.
bg_start "$NS_CLIENT" "$LBLOAD" --keep 6 --duration 8 -c 0 "$VIP:80"
KEEP_PID=$BG_PID
sleep 1
out=$(lbctl backend add "${BE_ADDRS[4]}:3000" weight=1 vip=web 2>&1)
t_check "backend-add" "lbctl backend add failed: $out" grep -q "^ok" <<<"$out"
out=$(load -c 600 -p 16 "$VIP:80")
t_check "backend-add-takes-new" "be4 got no new connection: $out" test "$(count be4 "$out")" -gt 50
lbctl backend set "${BE_ADDRS[1]}:3000" state=drain vip=web >/dev/null
out=$(load -c 600 -p 16 "$VIP:80")
t_check "backend-drain" "drained be1 still gets new connections: $out" test "$(count be1 "$out")" -eq 0
lbctl backend set "${BE_ADDRS[1]}:3000" state=up weight=3 vip=web >/dev/null
out=$(load -c 600 -p 16 "$VIP:80")
t_check "backend-set-weight" "be1 at weight 3 should lead: $out" \
	test "$(count be1 "$out")" -gt "$(count be2 "$out")"
wait "$KEEP_PID"; rc=$?
out=$(bg_log "$KEEP_PID")
if [ $rc -eq 0 ] && [ "$(field keep_failed "$out")" = 0 ] && [ "$(field keep_switched "$out")" = 0 ]; then
	t_pass "open-connections-stay-through-changes"
else
	t_fail "open-connections-stay-through-changes" "rc=$rc: $out"
fi
lbctl backend del "${BE_ADDRS[2]}:3000" vip=web >/dev/null
out=$(load -c 600 -p 16 "$VIP:80")
t_check "backend-del" "deleted be2 still gets connections: $out" test "$(count be2 "$out")" -eq 0

# ---------------------------------------------------------------- reload
cp "$CONF" "$TOPO_DIR/good.conf"
before=$(lbctl status)
printf 'vip broken {\n    listen 198.18.0.12:80;\n    backend 198.18.1.2:3000 weight=banana;\n}\n' >>"$CONF"
out=$(lbctl reload 2>&1); rc=$?
after=$(lbctl status)
if [ $rc -ne 0 ] && grep -q "lbd.conf:[0-9]*: .*banana" <<<"$out" && [ "$before" = "$after" ]; then
	t_pass "invalid-reload-changes-nothing"
else
	t_fail "invalid-reload-changes-nothing" "rc=$rc out=$out"
fi
cp "$TOPO_DIR/good.conf" "$CONF"
out=$(load -c 200 -p 8 "$VIP:80")
t_check "traffic-after-invalid-reload" "requests failed: $out" test "$(field failed "$out")" = 0

# ---------------------------------------------------------------- kill -9
bg_start "$NS_CLIENT" "$LBLOAD" --duration 5 -p 8 -c 1000000 "$VIP:80"
STREAM_PID=$BG_PID
bg_start "$NS_CLIENT" "$LBLOAD" --keep 4 --duration 6 -c 0 "$VIP:80"
KEEP_PID=$BG_PID
sleep 1.5
proxy_workers() { lbctl -j status | jq -r '.proxy_workers // [] | map(tostring) | join(" ")'; }
OLD_WORKERS=$( [ "$MODE" != proxy ] || proxy_workers)
kill -9 "$LBD_PID"
wait "$LBD_PID" 2>/dev/null
sleep 1.5
lbd_start || t_fail "restart" "lbd does not restart"
st=$(lbctl status)
if [ "$MODE" = proxy ]; then
	# no pins to adopt: the killed lbd's workers served on, and this one
	# retired them once it had its own listeners
	adopted() { [ -n "$OLD_WORKERS" ] && bg_log "$LBD_PID" | grep -q "retired 2 worker(s) an earlier lbd left"; }
else
	adopted() { grep -q "(adopted)" <<<"$st"; }
fi
if adopted && grep -q "${BE_ADDRS[4]}:3000" <<<"$st" && \
   ! grep -q "${BE_ADDRS[2]}:3000" <<<"$(lbctl vip show web)"; then
	t_pass "restart-adopts-state-and-runtime-layer"
else
	t_fail "restart-adopts-state-and-runtime-layer" "old workers: '$OLD_WORKERS' $st $(bg_log "$LBD_PID" | grep proxy)"
fi
wait "$STREAM_PID"; rc=$?
out=$(bg_log "$STREAM_PID")
if [ $rc -eq 0 ] && [ "$(field failed "$out")" = 0 ] && [ "$(field ok "$out")" -gt 100 ]; then
	t_pass "kill-9-loses-nothing (ok=$(field ok "$out"))"
else
	t_fail "kill-9-loses-nothing" "rc=$rc: $out
drops: $(lbctl -j stats | jq -c '.drops')"
fi
wait "$KEEP_PID"; rc=$?
out=$(bg_log "$KEEP_PID")
if [ $rc -eq 0 ] && [ "$(field keep_failed "$out")" = 0 ] && [ "$(field keep_switched "$out")" = 0 ]; then
	t_pass "open-connections-survive-restart"
else
	t_fail "open-connections-survive-restart" "rc=$rc: $out"
fi
if [ "$MODE" = proxy ]; then
	old_gone() { local p; for p in $OLD_WORKERS; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
	t_check "retired-workers-exit-when-done" "still running of '$OLD_WORKERS': $(ps -o pid=,args= -p "${OLD_WORKERS// /,}" 2>&1)" \
		wait_for -t 5 old_gone
fi
# Every connection so far is closed: the data path's per-backend counts
# (least_conn's figures) are back to 0. None may be below: a connection
# counted out twice (the client's and the backend's FIN crossing on two
# CPUs, a flow being promoted to the established tier) drove them negative
# by tens over the stream. Up to 2 may stay above: a flow the LRU tier
# evicted before its close was seen stays counted (generic XDP, 1 in 3 runs).
conns_of() { lbctl -j stats | jq -c '[.vips[] | {(.name): ([.backends[] | {(.address): .conns}] | add)}] | add'; }
conns_zero() {
	lbctl -j stats | jq -e '[.vips[].backends[].conns] | (min // 0) >= 0 and (add // 0) <= 2' >/dev/null
}
if wait_for -t 10 conns_zero; then
	t_pass "connection-counts-back-to-zero"
else
	t_fail "connection-counts-back-to-zero" "conns by backend: $(conns_of)"
fi

# ---------------------------------------------------------------- links
ext_mode() { lbctl status | awk '$1 == "ext0" { print $2 }'; }
if [ "$MODE" = proxy ]; then
	t_skip "link-removed-detached" "mode proxy attaches nothing to links"
	t_skip "link-recreated-reattached" "mode proxy attaches nothing to links"
else
in_lb ip link del ext0
if wait_for -t 5 eval '[ "$(ext_mode)" = detached ]'; then
	t_pass "link-removed-detached"
else
	t_fail "link-removed-detached" "lbctl status: $(lbctl status | grep ext0)"
fi
in_lb ip link add ext0 type veth peer name ext0p
in_lb ip link set ext0 up
in_lb ip link set ext0p up
if wait_for -t 5 eval '[ "$(ext_mode)" = "$MODE" ]'; then
	t_pass "link-recreated-reattached"
else
	t_fail "link-recreated-reattached" "lbctl status: $(lbctl status | grep ext0)"
fi
fi

# ---------------------------------------------------------------- cleanup
OLD_WORKERS=$( [ "$MODE" != proxy ] || proxy_workers)
kill -9 "$LBD_PID"; wait "$LBD_PID" 2>/dev/null
out=$(lb_nsenter "$LBD" --cleanup -c "$CONF" 2>&1); rc=$?
# proxy: --cleanup retires the workers the killed lbd left serving
if [ $rc -eq 0 ] && [ ! -e "$PIN" ] && ! attached && { [ "$MODE" != proxy ] ||
	{ [ -n "$OLD_WORKERS" ] && wait_for -t 5 old_gone; }; }; then
	t_pass "cleanup-after-kill"
else
	t_fail "cleanup-after-kill" "rc=$rc pins: $(ls "$PIN" 2>&1 | head -3) workers '$OLD_WORKERS' out: $out"
fi
lbd_start || t_fail "restart-after-cleanup" "lbd does not start"
out=$(load -c 100 -p 8 "$VIP:80")
t_check "traffic-after-cleanup-restart" "requests failed: $out" test "$(field ok "$out")" = 100

# ---------------------------------------------------------------- SIGTERM
# lbd exits in order but leaves the VIPs served for the next one (the data
# path pinned; proxy: its workers running): nothing fails across it.
bg_start "$NS_CLIENT" "$LBLOAD" --duration 4 -p 8 -c 1000000 "$VIP:80"
STREAM_PID=$BG_PID
sleep 1
OLD_WORKERS=$( [ "$MODE" != proxy ] || proxy_workers)
kill -TERM "$LBD_PID"
wait_for -t 5 eval '! kill -0 "$LBD_PID" 2>/dev/null'
wait "$LBD_PID" 2>/dev/null
sleep 1
lbd_start || t_fail "restart-after-sigterm" "lbd does not start"
wait "$STREAM_PID"; rc=$?
out=$(bg_log "$STREAM_PID")
t_check "sigterm-loses-nothing" "rc=$rc: $out" \
	eval '[ $rc -eq 0 ] && [ "$(field failed "$out")" = 0 ] && [ "$(field ok "$out")" -gt 100 ]'
if [ "$MODE" = proxy ]; then
	t_check "sigterm-workers-retired" "still running of '$OLD_WORKERS': $(ps -o pid=,args= -p "${OLD_WORKERS// /,}" 2>&1)" \
		eval '[ -n "$OLD_WORKERS" ] && wait_for -t 5 old_gone'
fi

# ---------------------------------------------------------------- stop
lbctl stop >/dev/null
for ((i = 0; i < 50; i++)); do kill -0 "$LBD_PID" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$LBD_PID" 2>/dev/null && [ ! -e "$PIN" ] && ! attached; then
	t_pass "stop-cleans-up"
else
	t_fail "stop-cleans-up" "lbd alive, pins left in $PIN or program still attached"
fi

t_done
