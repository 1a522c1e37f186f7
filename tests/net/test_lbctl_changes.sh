#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# lbctl commands that change state, through a real lbd (tests/net/lib.sh
# topology, TC mode, a VIP and a supervised worker):
#   - each says exactly what it changed: backend add, backend set, reload,
#     worker scale, stop
#   - the same command with -n (--dry-run) says exactly what it would change,
#     ends with "nothing was changed", and lbd's state is as it was: status
#     (clocks aside), the runtime layer file, the worker instances, the pins
#   - -n on a bad command fails the way the real one does
. "$(dirname "$0")/lib.sh"

t_require_root
t_require_cmd ip nsenter ethtool jq
t_require_bin "$LBD" "$LBCTL"

MODE=tc
lbd_topo_up 2
RT=$TOPO_DIR/state/runtime.conf
BE1=${BE_ADDRS[1]}:3000 BE2=${BE_ADDRS[2]}:3000

write_conf() { # EXTRA-VIP-BLOCK
	cat >"$CONF" <<EOF
$(lbd_conf_head)
vip web {
    listen 198.18.0.10:80;
    backend $BE1 weight=1;
}
worker sleeper {
    command /bin/sleep 600;
    instances 1;
}
$1
EOF
}
write_conf ""
lbd_start || { t_fail "$T_NAME" "lbd did not start"; exit 1; }
instances() { lbctl -j worker list | jq -r "[.[] | select(.state == \"online\")] | length"; }
test_instances() { [ "$(instances)" = "$1" ]; }
json_ok() { jq -e "$@" >/dev/null; }   # jq -e ARGS... <JSON, quietly
lbd_gone() { ! kill -0 "$LBD_PID" 2>/dev/null; }
pins_gone() { [ -z "$(ls -A "$PIN" 2>/dev/null)" ]; }
# the worker settles first: its own state changes are not ours to see
wait_for -t 5 test_instances 1

# lbd's state: status without what moves by itself (clocks and times since
# something, the workers' CPU and memory), the runtime layer, the workers'
# instances.
state() {
	lbctl -j status | jq -S 'walk(if type == "object" then with_entries(select(.key |
		test("_ms$|_ms_ago$|^uptime_s$|^cpu_seconds$|^memory_kib$") | not)) else . end)'
	cat "$RT" 2>/dev/null
	lbctl -j worker list | jq -c '[.[] | [.name, .instance, .pid, .state]]'
}

# dry NAME WANT ARGS...: `lbctl -n ARGS` prints exactly WANT and "nothing
# was changed", exits 0, and the state does not move.
dry() {
	local name=$1 want=$2 before after out rc
	shift 2
	before=$(state)
	out=$(lbctl -n "$@" 2>&1)
	rc=$?
	after=$(state)
	t_check "dry run: $name: exact answer" "exit $rc, got: $out" \
		[ "$out" = "$(printf '%s\nnothing was changed' "$want")" ]
	t_check "dry run: $name: nothing changed" "state moved: $(diff <(echo "$before") <(echo "$after"))" \
		[ "$before" = "$after" ]
}

# real NAME WANT ARGS...: `lbctl ARGS` prints exactly WANT and exits 0.
real() {
	local name=$1 want=$2 out rc
	shift 2
	out=$(lbctl "$@" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ "$out" = "$want" ] && rc=ok
	t_check "$name: says what it changed" "exit $rc, got: $out" [ "$rc" = ok ]
}

# backend add: the conditional, then the real thing.
want_add="would add backend $BE2 to vip web (weight 2, up)"
before=$(state)
out=$(lbctl -n backend add "$BE2" weight=2 vip=web 2>&1)
t_check "dry run: backend add: the change" "got: $out" \
	grep -qxF "$want_add" <<<"$out"
t_check "dry run: backend add: the table estimate" "got: $out" \
	grep -q "^vip web: [0-9]* of 65537 table slots (.*) would move to another backend" <<<"$out"
t_check "dry run: backend add: nothing changed" "state moved" [ "$before" = "$(state)" ]
real "backend add" "$(printf 'ok: backend add %s weight=2 vip=web\nadded backend %s to vip web (weight 2, up)' "$BE2" "$BE2")" \
	backend add "$BE2" weight=2 vip=web
t_check "backend add: applied" "status: $(lbctl status)" \
	[ "$(lbctl -j status | jq -r '.vips[0].backends | length')" = 2 ]

# backend set
before=$(state)
out=$(lbctl -n backend set "$BE1" state=drain vip=web 2>&1)
t_check "dry run: backend set: the change" "got: $out" \
	grep -qxF "would change backend $BE1 of vip web: state up -> drain" <<<"$out"
after=$(state)
t_check "dry run: backend set: nothing changed" "state moved: $(diff <(echo "$before") <(echo "$after"))" \
	[ "$before" = "$after" ]
real "backend set" "$(printf 'ok: backend set %s state=drain vip=web\nchanged backend %s of vip web: state up -> drain' "$BE1" "$BE1")" \
	backend set "$BE1" state=drain vip=web

# -j: the same lines as the "changes" of a JSON answer
out=$(lbctl -j -n backend set "$BE1" weight=4 vip=web 2>&1)
t_check "dry run -j: backend set" "got: $out" json_ok --arg w "would change backend $BE1 of vip web: weight 1 -> 4" \
	'.dry_run == true and .changes == [$w] and (.vips[0].slots > 0)' <<<"$out"

# a bad command fails the same with -n, and changes nothing
before=$(state)
out=$(lbctl -n backend set 198.18.1.99:3000 weight=3 vip=web 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "198.18.1.99:3000" <<<"$out" && rc=ok
t_check "dry run: bad backend: fails, says why" "exit $rc, got: $out" [ "$rc" = ok ]
after=$(state)
t_check "dry run: bad backend: nothing changed" "state moved: $(diff <(echo "$before") <(echo "$after"))" \
	[ "$before" = "$after" ]

# reload: a new VIP in the file
write_conf "vip api {
    listen 198.18.0.11:80;
    backend $BE2;
}"
dry "reload" "$(printf 'dry run: reload of %s\nwould add vip api (198.18.0.11:80 tcp, method maglev, forward nat, 1 backend(s))\nwould add backend %s to vip api (weight 1, up)' "$CONF" "$BE2")" \
	reload
real "reload" "$(printf 'reloaded %s\nadded vip api (198.18.0.11:80 tcp, method maglev, forward nat, 1 backend(s))\nadded backend %s to vip api (weight 1, up)' "$CONF" "$BE2")" \
	reload
real "reload, nothing new" "$(printf 'reloaded %s\nno change' "$CONF")" reload
out=$(lbctl -j -n reload 2>&1)
t_check "dry run -j: reload" "got: $out" json_ok --arg c "$CONF" \
	'.dry_run == true and .config == $c and .changes == [] and .vips == []' <<<"$out"

# workers
dry "worker scale" "dry run: worker sleeper: would scale from 1 to 2 instance(s)" worker scale sleeper 2
dry "worker stop" "dry run: worker sleeper: would stop 1 running instance(s)" worker stop sleeper
dry "worker restart" "dry run: worker sleeper: would restart 1 instance(s)" worker restart sleeper
real "worker scale" "worker sleeper: scaled from 1 to 2 instance(s)" worker scale sleeper 2
t_check "worker scale: applied" "list: $(lbctl worker list)" \
	wait_for -t 5 test_instances 2

# stop: the conditional keeps lbd; the real one removes it and its pins
dry "stop" "dry run: would stop lbd, detach it from eth0, eth1 and remove the pinned data path in $PIN" stop
t_check "dry run: stop: lbd still runs" "lbd is gone" kill -0 "$LBD_PID"
real "stop" "lbd is stopping: detaching it from eth0, eth1 and removing the pinned data path in $PIN" stop
t_check "stop: lbd exits" "still running" wait_for -t 10 lbd_gone
t_check "stop: pins removed" "left: $(ls "$PIN" 2>&1)" wait_for -t 5 pins_gone

t_done
