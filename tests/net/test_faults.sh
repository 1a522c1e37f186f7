#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Fault injection (tests/net/lib.sh topology). What each part proves:
#   - conntrack full: a flood of 60000 new UDP and TCP flows against a
#     conntrack of 1024 established and 1024 new flows a family: the LRU
#     tier evicts all the time, the established tier fills and refuses
#     promotions (counted: ct_established_full), and a protected set of 50
#     keep-alive connections (a request each 100 ms), established before
#     the flood, neither fails nor moves; drops are counted by reason
#   - the backend table at its maximum (max_backends 3, VIP web brought to
#     3 by lbctl): one more is refused with the reason and changes nothing
#     (status, state file), traffic keeps reaching all three backends, and
#     a removal makes room for a re-add
#   - a VIP change while 10000 connections are open: none fails or moves
#   - interface down/up, then delete and re-create, of the backend-side
#     interface under traffic: lbd re-attaches and traffic comes back
#   - lbd killed (SIGKILL) at random points while changes are committed:
#     after a restart every acknowledged change is there and traffic flows
#   - disk full while persisting: the change is refused with the reason,
#     the old state file survives byte for byte, nothing changed
#   - the control socket flooded (idle, slow, oversized and churning
#     clients): lbctl changes still complete quickly (the oldest clients
#     without a whole request make room), a health check still takes a dead
#     backend down on time
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool jq python3 mount
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"
lbd_topo_up 3
VIP=198.18.0.10
STATE=$TOPO_DIR/state
faults_down() { umount "$STATE" 2>/dev/null; topo_down; }
trap faults_down EXIT
trap 'faults_down; trap - EXIT; exit 130' INT
trap 'faults_down; trap - EXIT; exit 143' TERM

write_conf() { # [LBD-LINE...]
	{
		lbd_conf_head "$@"
		cat <<EOF
vip web {
    listen $VIP:80;
    health_check tcp interval=300ms timeout=250ms rise=1 fall=1;
    backend ${BE_ADDRS[1]}:3000;
    backend ${BE_ADDRS[2]}:3000;
}
vip dns {
    listen $VIP:53 udp;
    backend ${BE_ADDRS[1]}:3000;
    backend ${BE_ADDRS[2]}:3000;
    backend ${BE_ADDRS[3]}:3000;
}
EOF
	} >"$CONF"
}

load() { in_client "$LBLOAD" -t 1000 "$@" 2>&1; }
served() { [ "$(field ok "$(load -c 30 "$VIP:80")")" = 30 ]; }
stopped() { ! kill -0 "$LBD_PID" 2>/dev/null; }
lbd_stop() { lbctl stop >/dev/null 2>&1; wait_for -t 5 stopped || t_fail "$T_NAME" "lbd did not stop"; }
flows_new() { lbctl -j stats | jq '[.events.flow_new] | add // 0'; }

# ---------------------------------------------------------------- conntrack full
write_conf "conntrack_size 1024; conntrack_new_size 1024;"
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
bg_start "$NS_CLIENT" "$LBLOAD" --keep 50 --duration 8 -c 0 -t 5000 "$VIP:80"
KEEP=$BG_PID
sleep 1
n0=$(flows_new)
bg_start "$NS_CLIENT" "$LBLOAD" -c 20000 -p 100 -t 2000 "$VIP:80"
TCPF=$BG_PID
udp=$(load --udp -c 40000 -p 400 "$VIP:53")
wait "$TCPF"
tcp=$(bg_log "$TCPF")
n1=$(flows_new)
keep_ok "conntrack-full-keeps-protected-flows" "$KEEP"
echo "  flood: udp $(grep -o 'ok=[0-9]* failed=[0-9]*' <<<"$udp"), tcp $(grep -o 'ok=[0-9]* failed=[0-9]*' <<<"$tcp"), new flows $((n1 - n0)) into 1024-flow maps"
if [ $((n1 - n0)) -ge 40000 ]; then
	t_pass "conntrack-flood-was-real ($((n1 - n0)) new flows)"
else
	t_fail "conntrack-flood-was-real" "only $((n1 - n0)) new flows"
fi
stats=$(lbctl -j stats)
echo "  conntrack: $(jq -c '.conntrack' <<<"$stats"); events: $(jq -c '.events | {flow_new, ct_promoted, ct_established_full}' <<<"$stats")"
if jq -e '.conntrack.established <= 2 * .conntrack.established_max and .events.ct_established_full > 0' \
	<<<"$stats" >/dev/null; then
	t_pass "conntrack-established-tier-full-refuses-promotions $(jq -c '{established: .conntrack.established, full: .events.ct_established_full}' <<<"$stats")"
else
	t_fail "conntrack-established-tier-full-refuses-promotions" "$(jq -c '.conntrack, .events' <<<"$stats")"
fi
drops=$(jq -c '.drops' <<<"$stats")
if jq -e 'type == "object" and all(.[]; type == "number")' <<<"$drops" >/dev/null; then
	t_pass "drops-counted-by-reason $drops"
else
	t_fail "drops-counted-by-reason" "$drops"
fi
lbd_stop
# ---------------------------------------------------------------- backend table at its maximum
write_conf "max_backends 3;"
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
web_bes() { lbctl -j status | jq -c '[.vips[] | select(.name == "web") | .backends[].address] | sort'; }
be_flows() { lbctl -j stats | jq -c '[.vips[] | select(.name == "web") | .backends[] | {(.address): .new_flows}] | add'; }
t_check "max-backends: the third backend fits" "refused" \
	lbctl backend add "${BE_ADDRS[3]}:3000" vip=web
before=$(web_bes)
cp "$STATE/runtime.conf" "$TOPO_DIR/runtime.before"
out=$(lbctl backend add 198.18.2.250:3000 vip=web 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "max_backends 3" <<<"$out" && [ "$(web_bes)" = "$before" ] &&
	cmp -s "$STATE/runtime.conf" "$TOPO_DIR/runtime.before"; then
	t_pass "max-backends: one more is refused, nothing changed ($out)"
else
	t_fail "max-backends: one more is refused, nothing changed" "rc $rc: $out; $before -> $(web_bes)"
fi
f0=$(be_flows)
r=$(load -c 90 "$VIP:80")
f1=$(be_flows)
if [ "$(field ok "$r")" = 90 ] && jq -e --argjson a "$f0" --argjson b "$f1" \
	'($b | keys | length) == 3 and all($b | keys[]; $b[.] > $a[.])' <<<null >/dev/null; then
	t_pass "max-backends: traffic reaches all three backends ($f1)"
else
	t_fail "max-backends: traffic reaches all three backends" "$r; $f0 -> $f1"
fi
t_check "max-backends: removal works" "refused" lbctl backend del "${BE_ADDRS[3]}:3000" vip=web
t_check "max-backends: re-add works" "refused" lbctl backend add "${BE_ADDRS[3]}:3000" vip=web
out=$(lbctl backend add 198.18.2.250:3000 vip=web 2>&1) &&
	t_fail "max-backends: still full after the re-add" "accepted: $out" ||
	t_pass "max-backends: still full after the re-add"
t_check "max-backends: traffic after the re-add" "requests fail" served
lbd_stop
# the next sections start from their own file, not this one's lbctl changes
rm -f "$STATE/runtime.conf"

# ---------------------------------------------------------------- 10k open + VIP change
write_conf
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
bg_start "$NS_CLIENT" "$LBLOAD" --keep 10000 --keep-period 3000 --duration 30 -c 0 -t 10000 "$VIP:80"
KEEP=$BG_PID
est() { [ "$(in_client ss -Htn state established dst "$VIP" | wc -l)" -ge 10000 ]; }
if wait_for -t 20 est; then
	t_pass "10k-connections-open"
else
	t_fail "10k-connections-open" "$(in_client ss -Htn state established dst "$VIP" | wc -l) established"
	# what the others are doing, and what lbload, the data path and lbd saw
	echo "  client sockets: $(in_client ss -Htn dst "$VIP" | awk '{ print $1 }' | sort | uniq -c | tr '\n' ' ')"
	echo "  lbload so far: $(bg_log "$KEEP" | grep -o 'failed: [a-z_]*' | sort | uniq -c | tr '\n' ' ')"
	echo "  drops: $(lbctl -j stats | jq -c '.drops | with_entries(select(.value > 0))')"
	bg_log "$LBD_PID" | grep -E ' (down|up)[:;]' | head -5
fi
# the change: a third backend, another weight, a reload on top
lbctl backend add "${BE_ADDRS[3]}:3000" vip=web weight=3 >/dev/null
lbctl backend set "${BE_ADDRS[1]}:3000" vip=web weight=4 >/dev/null
sed -i "s/^    backend ${BE_ADDRS[2]}:3000;$/    backend ${BE_ADDRS[2]}:3000 weight=2;/" "$CONF"
kill -HUP "$LBD_PID"
keep_ok "vip-change-with-10k-open" "$KEEP"
lbd_stop

# ---------------------------------------------------------------- links under traffic
write_conf
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
eth1_mode() { [ "$(lbctl status | awk '$1 == "eth1" { print $2 }')" = "$MODE" ]; }
bg_start "$NS_CLIENT" "$LBLOAD" --duration 6 -p 4 -c 1000000 -t 1000 "$VIP:80"
FLOW=$BG_PID
sleep 1
in_lb ip link set eth1 down
sleep 1
in_lb ip link set eth1 up
wait "$FLOW"
echo "  eth1 down 1 s: $(bg_log "$FLOW" | grep -o 'total=.*')"
t_check "link-down-up: attached again" "lbctl status: $(lbctl status | grep eth1)" wait_for -t 5 eth1_mode
t_check "link-down-up: traffic is back" "requests fail" wait_for -t 10 served
# delete and re-create eth1 (and its switch port) the way the topology made it
in_lb ip link del eth1
in_ns "$NS_SW" ip link del lb 2>/dev/null
sleep 1
_veth "$NS_LB" eth1 "$NS_SW" lb
in_ns "$NS_SW" ip link set lb master br0
_gro_refresh "$NS_SW" lb
_addr "$NS_LB" eth1 "$LB_BACKEND_ADDR/24" "$LB_BACKEND6_ADDR/64"
t_check "link-recreated: attached to the new eth1" "lbctl status: $(lbctl status | grep eth1)" \
	wait_for -t 5 eth1_mode
t_check "link-recreated: traffic is back" "requests fail" wait_for -t 10 served
lbd_stop

# ---------------------------------------------------------------- kill -9 during changes
# Each round: a stream of backend adds, lbd SIGKILLed at a random moment,
# a restart. Every add that lbctl acknowledged must be there afterwards.
write_conf
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
acked=()
bad=""
for round in 1 2 3 4 5; do
	(
		for k in $(seq 1 40); do
			a=198.18.2.$(( (round - 1) * 40 + k ))
			"$LBCTL" -s "$SOCK" backend add "$a:3000" vip=dns state=down >/dev/null 2>&1 &&
				echo "$a:3000"
		done
	) >"$TOPO_DIR/acked.$round" &
	adder=$!
	sleep "0.$((RANDOM % 9 + 1))"
	{ kill -9 "$LBD_PID"; wait "$LBD_PID"; } 2>/dev/null
	wait "$adder"
	mapfile -t -O "${#acked[@]}" acked <"$TOPO_DIR/acked.$round"
	lbd_start || { t_fail "$T_NAME" "restart after kill (round $round)"; exit 1; }
	have=$(lbctl -j status | jq -r '.vips[] | select(.name == "dns") | .backends[].address')
	for a in "${acked[@]}"; do
		grep -qx "$a" <<<"$have" || bad="$bad $a(round $round)"
	done
done
if [ -z "$bad" ] && [ "${#acked[@]}" -gt 0 ]; then
	t_pass "kill-9-keeps-every-acked-change (${#acked[@]} acked adds over 5 kills)"
else
	t_fail "kill-9-keeps-every-acked-change" "${#acked[@]} acked; missing:$bad"
fi
t_check "kill-9: traffic after the last restart" "requests fail" served
lbd_stop

# ---------------------------------------------------------------- disk full
mkdir -p "$STATE"
mount -t tmpfs -o size=64k lbt-state "$STATE"
write_conf
lbd_start || { t_fail "$T_NAME" "lbd start on a small state_dir"; exit 1; }
lbctl backend add "${BE_ADDRS[3]}:3000" vip=web >/dev/null
rt=$STATE/runtime.conf
cp "$rt" "$TOPO_DIR/runtime.before"
before=$(lbctl -j status | jq -c '[.vips[] | [.name, [.backends[].address]]]')
dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null
out=$(lbctl backend add "${BE_ADDRS[3]}:3001" vip=web 2>&1); rc=$?
after=$(lbctl -j status | jq -c '[.vips[] | [.name, [.backends[].address]]]')
if [ $rc -ne 0 ] && grep -qi "no space" <<<"$out" && cmp -s "$rt" "$TOPO_DIR/runtime.before" &&
	[ "$before" = "$after" ]; then
	t_pass "disk-full: refused, old state file intact, nothing changed ($out)"
else
	t_fail "disk-full" "rc $rc: $out; state file same: $(cmp -s "$rt" "$TOPO_DIR/runtime.before" && echo yes || echo no); $before -> $after"
fi
rm -f "$STATE/fill"
t_check "disk-full: the same change works once there is room" "refused" \
	lbctl backend add "${BE_ADDRS[3]}:3001" vip=web
lbd_stop
umount "$STATE"

# ---------------------------------------------------------------- control socket flood
write_conf "control_max_clients 64;"
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
# 60 idle clients, 40 that send a header and then one byte a second, 200
# oversized requests, 2000 connect-and-close; all at once, for 6 s.
python3 - "$SOCK" >"$TOPO_DIR/flood.log" 2>&1 <<'PY' &
import socket, struct, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s
hold = []
for _ in range(60):
    hold.append(conn())
slow = []
for _ in range(40):
    s = conn(); s.send(struct.pack(">I", 4000)); slow.append(s)
big = 0
for _ in range(200):
    s = conn(); s.send(struct.pack(">I", 1 << 30))
    try:
        s.settimeout(2); r = s.recv(200)
        big += b"too large" in r
    except OSError:
        pass
    s.close()
for _ in range(2000):
    try:
        conn().close()
    except OSError:
        pass
end = time.time() + 6
while time.time() < end:
    for s in slow:
        try: s.send(b"x")
        except OSError: pass
    time.sleep(1)
print("flood done, oversized requests refused:", big)
PY
FLOOD=$!
sleep 1
t0=$(date +%s%N)
out=$(lbctl backend set "${BE_ADDRS[2]}:3000" vip=web weight=7 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc -eq 0 ] && [ $ms -lt 1000 ]; then
	t_pass "flood: a change still completes ($ms ms)"
else
	t_fail "flood: a change still completes" "rc $rc after $ms ms: $out"
fi
down_web1() {
	[ "$(lbctl -j status | jq -r --arg b "${BE_ADDRS[1]}:3000" \
		'.vips[] | select(.name == "web") | .backends[] | select(.address == $b) | .health')" = down ]
}
stop_backend 1
t0=$SECONDS
if wait_for -t 3 down_web1; then
	t_pass "flood: a health check takes a dead backend down on time ($((SECONDS - t0)) s)"
else
	t_fail "flood: a health check takes a dead backend down on time" "not down after 3 s"
fi
start_backend 1 3000
wait "$FLOOD"
echo "  $(tail -1 "$TOPO_DIR/flood.log")"
grep -q "refused: [1-9]" "$TOPO_DIR/flood.log" && t_pass "flood: oversized requests are refused" ||
	t_fail "flood: oversized requests are refused" "$(tail -3 "$TOPO_DIR/flood.log")"
bg_log "$LBD_PID" | grep -q "dropped [0-9]* that sent no whole request" &&
	t_pass "flood: idle and slow clients past control_max_clients make room" ||
	t_fail "flood: idle and slow clients past control_max_clients make room" "no such log line"
t_check "flood: lbd answers after the flood" "status failed" lbd_up
lbd_stop

t_done
