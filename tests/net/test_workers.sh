#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Supervised workers with local delivery, end to end (tests/net/lib.sh):
# lbd in the lb namespace runs demo_backend as 2 instances (PORT=3000+i)
# behind a `forward local` VIP; the client reaches them through the VIP.
#   - both instances answer through the VIP (XDP/TC rewrite + PASS, replies
#     reversed by the TC egress program): the client only ever sees VIP:80;
#     connections from the lb node itself (through lo) are balanced too
#   - lbctl worker list shows 2 online instances on 3000 and 3001
#   - kill -9 of an instance: it leaves the table at once, is restarted,
#     and serves again (time measured); requests during it: failures counted
#   - rolling reload (lbctl worker reload) under lbload --duration: zero
#     failed requests, instances on the spare ports afterwards
#   - a config reload that changes the command rolls the instances too
#   - kill -9 of lbd under load: no failed request; the restarted lbd adopts
#     the running instances; lbctl stop stops them
# LBD_MODE picks the attach mode (xdp by default).
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool ss
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

LBD_IFACES=eth0
lbd_topo_up 1 none
VIP=198.18.0.10

write_conf() { # extra env line for the worker
	cat >"$CONF" <<EOF
$(lbd_conf_head)
vip app {
    listen $VIP:80;
    forward local;
}
worker app {
    command $DEMO_BACKEND;
    instances 2;
    port 3000;
    vip app;
    ready tcp;
    restart_delay 100ms;
    min_uptime 500ms;
    kill_timeout 1s;
    log $TOPO_DIR/app-%i.log;
$1
}
EOF
}

online() { [ "$(lbctl worker list | grep -c ' online$')" -eq "${1:-2}" ]; }
load() { in_client "$LBLOAD" -t 2000 "$@" "$VIP:80" 2>&1; }
ipid() { # the pid of instance I from lbctl worker list
	lbctl worker list | awk -v i="$1" '$1 == "app" && $2 == i && $NF == "online" { print $3 }'
}

write_conf ""
out=$("$LBD" -t -c "$CONF" 2>&1)
t_check "conf-check" "lbd -t: $out" test $? -eq 0

bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
if ! wait_for -t 10 lbd_up || ! wait_for -t 10 online 2; then
	t_fail "$T_NAME" "lbd or its workers did not come up"
	bg_log "$LBD_PID" >&2
	lbctl worker list >&2
	t_done; exit 1
fi
list=$(lbctl worker list)
echo "$list"
if grep -Eq '^app +0 +[0-9]+ +3000 ' <<<"$list" && grep -Eq '^app +1 +[0-9]+ +3001 ' <<<"$list"; then
	t_pass "worker-list"
else
	t_fail "worker-list" "want instances 0 and 1 on 3000 and 3001"
fi

# ---------------------------------------------------------------- delivery
out=$(load -c 400 -p 8)
field failed "$out" | grep -qx 0 || { lbctl stats; bg_log "$LBD_PID" | tail -20; }
echo "$out"
if [ "$(field failed "$out")" = 0 ] && [ "$(count 0 "$out")" -ge 50 ] && [ "$(count 1 "$out")" -ge 50 ]; then
	t_pass "local-delivery-both-instances"
else
	t_fail "local-delivery-both-instances" "want 400 ok over both instances: $out"
fi
# the node itself: its connections cross lo, not eth0
out=$(in_lb "$LBLOAD" -t 2000 -c 200 -p 4 "$VIP:80" 2>&1)
if [ "$(field failed "$out")" = 0 ] && [ "$(count 0 "$out")" -ge 20 ] && [ "$(count 1 "$out")" -ge 20 ]; then
	t_pass "local-delivery-from-the-node"
else
	t_fail "local-delivery-from-the-node" "want 200 ok over both instances: $out"
fi
ev=$(lbctl stats 2>/dev/null | grep -Eo 'local(_reply)?[ =:]+[0-9]+' | tr '\n' ' ')
echo "  events: $ev"
# the client never saw an instance port: the reply came from VIP:80
if in_client ss -Htn state time-wait "dst $VIP" | awk '{ print $NF }' | grep -qv ":80$"; then
	t_fail "replies-from-vip-port" "the client saw replies from another port"
else
	t_pass "replies-from-vip-port"
fi
st=$(lbctl status)
if grep -q "127\|$VIP:3000" <<<"$st" || grep -q "3000" <<<"$st"; then
	t_pass "instances-are-backends"
else
	t_fail "instances-are-backends" "lbctl status does not list the instances: $st"
fi
if [ -f "$TOPO_DIR/app-0.log" ] && [ -f "$TOPO_DIR/app-1.log" ]; then
	t_pass "instance-logs"
else
	t_fail "instance-logs" "no $TOPO_DIR/app-{0,1}.log"
fi

# ---------------------------------------------------------------- kill -9
pid0=$(ipid 0)
bg_start "$NS_CLIENT" "$LBLOAD" -t 2000 -p 4 --duration 4 "$VIP:80"
LOAD_PID=$BG_PID
sleep 0.5
t0=$(date +%s%N)
kill -9 "$pid0"
gone=0
for _ in $(seq 100); do # the dead instance leaves the table before its restart
	if ! lbctl status | grep -q "$VIP:3000 "; then gone=1; break; fi
	sleep 0.01
done
wait_for -t 10 online 2
t1=$(date +%s%N)
newpid=$(ipid 0)
wait "$LOAD_PID" 2>/dev/null
lout=$(bg_log "$LOAD_PID")
echo "  crash: new pid $newpid after $(((t1 - t0) / 1000000)) ms; load: $(grep total= <<<"$lout")"
grep 'failed:' <<<"$lout" | head -5
if [ -n "$newpid" ] && [ "$newpid" != "$pid0" ]; then
	t_pass "crash-restart ($(((t1 - t0) / 1000000)) ms to serving again)"
else
	t_fail "crash-restart" "instance 0 not restarted (old $pid0, new '$newpid')"
fi
t_check "crash-leaves-table" "instance 0 still listed as a backend after its death" test "$gone" = 1
out=$(load -c 200 -p 4)
if [ "$(field failed "$out")" = 0 ] && [ "$(count 0 "$out")" -ge 20 ]; then
	t_pass "after-crash-no-failure"
else
	t_fail "after-crash-no-failure" "$out"
fi
echo "  requests failed around the crash: $(field failed "$lout") of $(field total "$lout")," \
	"between +$(grep -o '+[0-9.]*s' <<<"$lout" | head -1) and +$(grep -o '+[0-9.]*s' <<<"$lout" | tail -1)" \
	"(kill at +0.5s): $(grep -o 'failed: [a-z]*' <<<"$lout" | sort | uniq -c | tr -s ' \n' ' ')"

# ---------------------------------------------------------------- rolling reload
p0=$(ipid 0) p1=$(ipid 1)
bg_start "$NS_CLIENT" "$LBLOAD" -t 2000 -p 8 --duration 6 --keep 4 "$VIP:80"
LOAD_PID=$BG_PID
sleep 1
rl=$(lbctl worker reload app)
echo "  $rl"
done_roll() { lbctl worker list | grep -Eq '^app +0 +[0-9]+ +3002 .*online$' &&
	lbctl worker list | grep -Eq '^app +1 +[0-9]+ +3003 .*online$' &&
	[ "$(lbctl worker list | grep -c '^app')" -eq 2 ]; }
t0=$(date +%s%N)
wait_for -t 15 done_roll; rc=$?
t1=$(date +%s%N)
wait "$LOAD_PID" 2>/dev/null
lout=$(bg_log "$LOAD_PID")
echo "  rolling reload: $(((t1 - t0) / 1000000)) ms; load: $(grep total= <<<"$lout")"
lbctl worker list
if [ $rc -ne 0 ]; then
	t_fail "rolling-reload" "instances not on 3002/3003 after 15 s"
elif [ "$(ipid 0)" = "$p0" ] || [ "$(ipid 1)" = "$p1" ]; then
	t_fail "rolling-reload" "pids unchanged"
else
	t_pass "rolling-reload"
fi
if [ -n "$(field total "$lout")" ] && [ "$(field failed "$lout")" = 0 ]; then
	t_pass "rolling-reload-zero-failed ($(field total "$lout") requests)"
	# keep-alive connections held past the old instance's drain (kill_timeout)
	# are closed with it: reported, not counted as failed requests
	echo "  keep-alive connections: $(grep -o 'keep=[0-9]* keep_failed=[0-9]*' <<<"$lout")"
else
	t_fail "rolling-reload-zero-failed" "$(grep -E 'total=|failed' <<<"$lout" | head -8)"
fi

# ---------------------------------------------------------------- config reload
write_conf "    env GREETING=hello;"
p0=$(ipid 0)
bg_start "$NS_CLIENT" "$LBLOAD" -t 2000 -p 8 --duration 5 "$VIP:80"
LOAD_PID=$BG_PID
sleep 0.5
lbctl reload >/dev/null
back() { lbctl worker list | grep -Eq '^app +0 +[0-9]+ +3000 .*online$' &&
	lbctl worker list | grep -Eq '^app +1 +[0-9]+ +3001 .*online$' &&
	[ "$(lbctl worker list | grep -c '^app')" -eq 2 ]; }
wait_for -t 15 back; rc=$?
wait "$LOAD_PID" 2>/dev/null
lout=$(bg_log "$LOAD_PID")
echo "  config reload: load: $(grep total= <<<"$lout")"
if [ $rc -eq 0 ] && [ "$(ipid 0)" != "$p0" ] && [ "$(field failed "$lout")" = 0 ]; then
	t_pass "config-reload-rolls"
else
	t_fail "config-reload-rolls" "rc=$rc old=$p0 new=$(ipid 0): $(grep -E 'total=|failed' <<<"$lout" | head -5)"
fi

# ---------------------------------------------------------------- lbd restart
# kill -9 of lbd: the instances (own process groups) and the pinned data
# path keep serving; a new lbd adopts them (pid files, start times)
p0=$(ipid 0) p1=$(ipid 1)
bg_start "$NS_CLIENT" "$LBLOAD" -t 3000 -p 4 --duration 4 "$VIP:80"
LOAD_PID=$BG_PID
sleep 0.5
{ kill -9 "$LBD_PID"; wait "$LBD_PID"; } 2>/dev/null
sleep 1
bg_start @lb "$LBD" -f -c "$CONF"
LBD_PID=$BG_PID
wait_for -t 10 lbd_up && wait_for -t 10 online 2
wait "$LOAD_PID" 2>/dev/null
lout=$(bg_log "$LOAD_PID")
echo "  kill -9 lbd + restart: load: $(grep total= <<<"$lout")"
if [ "$(ipid 0)" = "$p0" ] && [ "$(ipid 1)" = "$p1" ] && bg_log "$LBD_PID" | grep -q "instance 1 adopted"; then
	t_pass "lbd-restart-adopts-workers"
else
	t_fail "lbd-restart-adopts-workers" "pids $p0 $p1 -> $(ipid 0) $(ipid 1)"
	bg_log "$LBD_PID" | grep worker >&2
fi
t_check "lbd-restart-no-failed-request" "$(grep -E 'total=|failed' <<<"$lout" | head -5)" \
	test "$(field failed "$lout")" = 0
out=$(load -c 200 -p 4)
t_check "after-adoption-both-serve" "$out" test "$(count 0 "$out")" -ge 20 -a "$(count 1 "$out")" -ge 20

# ---------------------------------------------------------------- stop
# lbctl stop (cleanup) stops the workers; SIGTERM would leave them running
lbctl stop >/dev/null
wait_for -t 5 bash -c "! kill -0 $LBD_PID"
left=$(ip netns pids "$NS_LB" | wc -l)
t_check "lbctl-stop-stops-workers" "$left process(es) left in the lb namespace" test "$left" -eq 0
t_done
