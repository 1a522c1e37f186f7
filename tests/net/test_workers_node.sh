#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# examples/app.js (Node.js, Debian's nodejs) as a supervised worker, the
# PM2 cluster-mode case lbd replaces (tests/net/lib.sh topology):
#   - 2 instances of `node examples/app.js` behind a `forward local` VIP
#     answer "Here we are! N" from the client and from the node itself
#   - each got PORT, LBD_INSTANCE and LBD_WORKER and runs on its own core,
#     as user nobody (lbd, with its reduced capabilities, still takes the
#     instance's listening socket for local delivery)
#   - lbctl worker reload under load: zero failed requests
#   - lbctl worker logs -n and -f: the tail, then new lines as they come,
#     across a rotation (copy and truncate), ended when its stdout closes
#   - lbctl worker stop: SIGTERM ends them (app.js closes its server)
#     before kill_timeout, no SIGKILL
# The other supervisor behaviours are tested with the C worker
# (test_workers.sh, tests/unit/test_supervisor.c).
. "$(dirname "$0")/lib.sh"

t_require_root
t_require_cmd ip nsenter node curl taskset
id nobody >/dev/null 2>&1 || { t_skip "$T_NAME" "no user nobody on this machine"; exit 0; }
t_require_bin "$LBD" "$LBCTL" "$LBLOAD"

APP=$REPO_DIR/examples/app.js
LBD_IFACES=eth0 MODE=auto
lbd_topo_up 1 none
VIP=198.18.0.10
cat >"$CONF" <<EOF
$(lbd_conf_head)
vip web {
    listen $VIP:80;
    forward local;
}
worker app {
    command node $APP;
    instances 2;
    port 3000;
    vip web;
    ready tcp;
    env NODE_ENV=production;
    user nobody;                # another user: lbd takes its socket all the same
    kill_timeout 10s;
    log $TOPO_DIR/app-%i.log;
    log_max_size 4K;
    log_keep 2;
}
EOF

online() { [ "$(lbctl worker list | grep -c ' online$')" -eq 2 ]; }
ipid() { lbctl worker list | awk -v i="$1" '$1 == "app" && $2 == i { print $3 }'; }
if ! lbd_start || ! wait_for -t 15 online; then
	t_fail "$T_NAME" "lbd or its node instances did not come up"
	bg_log "$LBD_PID" | tail -20 >&2
	cat "$TOPO_DIR"/app-*.log >&2 2>/dev/null
	t_done; exit 1
fi
lbctl worker list

out=$(in_client "$LBLOAD" -t 3000 -c 200 -p 4 "$VIP:80" 2>&1)
echo "$out"
t_check "node-through-vip" "want 200 answers over both instances: $out" \
	test "$(field failed "$out")" = 0 -a "$(count 0 "$out")" -ge 20 -a "$(count 1 "$out")" -ge 20
body=$(in_client curl -s -m 3 "http://$VIP/")
t_check "node-answer" "got '$body'" grep -Eq '^Here we are! [01]$' <<<"$body"
body=$(in_lb curl -s -m 3 "http://$VIP/")
t_check "node-answer-from-the-node" "got '$body'" grep -Eq '^Here we are! [01]$' <<<"$body"

ok=1
for i in 0 1; do
	pid=$(ipid "$i")
	env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null)
	aff=$(taskset -pc "$pid" 2>/dev/null | awk '{ print $NF }')
	echo "  instance $i: pid $pid user $(stat -c %U "/proc/$pid") cpus $aff $(grep -E '^(PORT|LBD_INSTANCE|LBD_WORKER|NODE_ENV)=' <<<"$env" | tr '\n' ' ')"
	grep -qx "PORT=$((3000 + i))" <<<"$env" && grep -qx "LBD_INSTANCE=$i" <<<"$env" &&
		grep -qx "LBD_WORKER=app" <<<"$env" && grep -qx "NODE_ENV=production" <<<"$env" &&
		[ "$aff" = "$((i % $(nproc)))" ] && [ "$(stat -c %U "/proc/$pid")" = nobody ] || ok=0
done
t_check "node-env-core-user" "PORT/LBD_INSTANCE/LBD_WORKER/NODE_ENV, the core or the user are wrong" test $ok = 1

bg_start "$NS_CLIENT" "$LBLOAD" -t 3000 -p 4 --duration 5 "$VIP:80"
LOAD_PID=$BG_PID
sleep 0.5
p0=$(ipid 0)
lbctl worker reload app >/dev/null
rolled() { lbctl worker list | grep -Eq '^app +0 +[0-9]+ +3002 .*online$' &&
	lbctl worker list | grep -Eq '^app +1 +[0-9]+ +3003 .*online$'; }
wait_for -t 20 rolled; rc=$?
wait "$LOAD_PID" 2>/dev/null
lout=$(bg_log "$LOAD_PID")
echo "  rolling reload: $(grep total= <<<"$lout")"
t_check "node-rolling-reload-zero-failed" "rc=$rc old=$p0 new=$(ipid 0): $(grep -E 'total=|failed' <<<"$lout" | head -5)" \
	test $rc -eq 0 -a "$(ipid 0)" != "$p0" -a -n "$(field total "$lout")" -a "$(field failed "$lout")" = 0

# ---------------------------------------------------------------- logs
LOG0=$TOPO_DIR/app-0.log
out=$(lbctl worker logs app -n 1)
tail_ok() { grep -q "==> $LOG0 (instance 0) <==" <<<"$out" && [ "$(grep -c 'app.js: instance' <<<"$out")" -eq 2 ]; }
t_check "logs-tail" "want each file's header and app.js's start line: $out" tail_ok
# -f: the last line, then what the instance writes, across a rotation
# (lines appended here stand in for the instance's output). lbd rotates
# copy-truncate style; a follower that did not run between a line and the
# rotation (stopped here, busy in CI) finds that line in app-0.log.1.
LBCTL_FOLLOW_SECONDS=15 "$LBCTL" -s "$SOCK" worker logs app -f -n 1 >"$TOPO_DIR/follow.out" 2>&1 &
FOLLOW_PID=$!
echo "follow-line-A" >>"$LOG0"
wait_for -t 5 grep -q follow-line-A "$TOPO_DIR/follow.out"
kill -STOP "$FOLLOW_PID"
printed=$(stat -c %s "$LOG0") # where the follower stands
echo "follow-line-B" >>"$LOG0"
head -c 6000 /dev/zero | tr '\0' 'x' | fold -w 100 >>"$LOG0" # > log_max_size
rotated() { [ -s "$LOG0.1" ] && [ "$(stat -c %s "$LOG0")" -lt 4096 ]; }
wait_for -t 5 rotated; rot=$?
# the emptied file grows back past where the follower stood: its start
# (line C) is no less new for that
echo "follow-line-C" >>"$LOG0"
head -c $((printed + 200)) /dev/zero | tr '\0' 'y' | fold -w 100 >>"$LOG0"
echo "follow-line-D" >>"$LOG0"
kill -CONT "$FOLLOW_PID"
wait_for -t 5 grep -q follow-line-D "$TOPO_DIR/follow.out"
kill "$FOLLOW_PID" 2>/dev/null
wait "$FOLLOW_PID" 2>/dev/null
f=$(grep -c . "$TOPO_DIR/follow.out")
echo "  logs -f: $f lines, rotated: $([ $rot = 0 ] && echo yes || echo no)"
t_check "logs-follow-across-rotation" "rotation $rot, follower at $printed; got: $(grep -v 'xxxx\|yyyy' "$TOPO_DIR/follow.out" | head -12)" \
	test $rot = 0 -a "$(grep -c 'follow-line-A' "$TOPO_DIR/follow.out")" = 1 \
	-a "$(grep -c 'follow-line-B' "$TOPO_DIR/follow.out")" = 1 \
	-a "$(grep -c 'follow-line-C' "$TOPO_DIR/follow.out")" = 1 \
	-a "$(grep -c 'follow-line-D' "$TOPO_DIR/follow.out")" = 1 -a "$printed" -lt 3500
# bounded: a reader that goes away (head) ends it
t0=$(date +%s%N)
first=$( { timeout 20 "$LBCTL" -s "$SOCK" worker logs app -f -n 1; echo "rc=$?" >"$TOPO_DIR/follow.rc"; } | head -n 1)
ms=$((($(date +%s%N) - t0) / 1000000))
t_check "logs-follow-ends-with-stdout" "first line '$first', $(cat "$TOPO_DIR/follow.rc"), $ms ms" \
	test "$(cat "$TOPO_DIR/follow.rc")" = rc=0 -a "$ms" -lt 5000

# SIGTERM: app.js closes its server and exits before kill_timeout (10 s:
# node is slow to exit on a loaded machine; SIGKILL is what must not happen)
p0=$(ipid 0) p1=$(ipid 1)
t0=$SECONDS
lbctl worker stop app >/dev/null
gone() { ! kill -0 "$p0" 2>/dev/null && ! kill -0 "$p1" 2>/dev/null; }
wait_for -t 15 gone; rc=$?
t_check "node-sigterm-stop" "instances $p0 $p1 still running after $((SECONDS - t0)) s" test $rc -eq 0
if bg_log "$LBD_PID" | grep -E "worker app.*(SIGKILL|killed)"; then
	t_fail "node-no-sigkill" "lbd had to SIGKILL an instance"
else
	t_pass "node-no-sigkill"
fi
t_done
