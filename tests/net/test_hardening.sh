#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Hardening (tests/net/lib.sh topology).
# Least privilege: lbd started as root keeps only
# the capabilities it needs once its sockets are bound, and still does all
# of its jobs with them:
#   - permitted, effective and bounding sets are exactly
#     net_bind_service,net_admin,net_raw,perfmon,bpf (+ kill,setgid,setuid
#     when workers are configured); inheritable and ambient are empty
#   - with those: traffic through the VIP, `lbctl backend add` (a table swap
#     creates a new inner map), a reload that adds a VIP (address on lo,
#     map writes), a tcp health check taking a dead backend out
#   - a worker running as `user nobody` has no capability at all, and one
#     running as root cannot regain what lbd dropped (its bounding set)
#   - `capabilities keep;` keeps the full set
# The control socket: a stranger is turned away, control_readonly_group may
# run status/stats but no change (nor a dry run of one), control_group may.
# Limits: max_backends and max_vips refuse runtime additions past them with
# a message naming the limit, and state stays as it was; a request larger
# than control_max_request is refused and lbd keeps serving.
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool capsh getent jq setpriv
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"
lbd_topo_up 2
VIP=198.18.0.10
VIP2=198.18.0.11
BASE=cap_net_bind_service,cap_net_admin,cap_net_raw,cap_perfmon,cap_bpf
WORKERS=cap_kill,cap_setgid,cap_setuid,$BASE

# caps PID SET: the named set (Eff, Prm, Bnd, Inh, Amb) of PID, as names.
caps() {
	local hex
	hex=$(awk -v k="Cap$2:" '$1 == k { print $2 }' "/proc/$1/status")
	capsh --decode="$hex" | cut -d= -f2
}

# check_sets WHAT PID EXPECTED: Eff, Prm and Bnd are EXPECTED, Inh and Amb empty.
check_sets() {
	local got s ok=1
	for s in Eff Prm Bnd; do
		got=$(caps "$2" $s)
		[ "$got" = "$3" ] || { t_fail "$1" "Cap$s is $got, expected $3"; ok=0; }
	done
	for s in Inh Amb; do
		got=$(awk -v k="Cap$s:" '$1 == k { print $2 }' "/proc/$2/status")
		[ "$got" = 0000000000000000 ] || { t_fail "$1" "Cap$s is $got, expected none"; ok=0; }
	done
	[ $ok -eq 0 ] || t_pass "$1"
}

write_conf() { # [WORKERS-BLOCK] [LBD-LINE...]
	{
		lbd_conf_head "${@:2}"
		cat <<EOF
vip web {
    listen $VIP:80;
    health_check tcp interval=300ms timeout=250ms rise=1 fall=1;
    backend ${BE_ADDRS[1]}:3000;
}
${1:-}
EOF
	} >"$CONF"
}

load() { in_client "$LBLOAD" -t 1000 "$@" 2>&1; }
served() { # ADDR: 50 connections through ADDR:80, all answered
	[ "$(field ok "$(load -c 50 "$1:80")")" = 50 ]
}
reaches() { # BACKEND-NAME: some of 40 connections land on it
	[ "$(count "$1" "$(load -c 40 "$VIP:80")")" -gt 0 ]
}
health_is() { # BACKEND STATE: health per lbctl -j status
	[ "$(lbctl -j status | jq -r --arg b "$1" \
		'.vips[] | select(.name == "web") | .backends[] | select(.address == $b) | .health')" = "$2" ]
}
stopped() { ! kill -0 "$LBD_PID" 2>/dev/null; }
lbd_stop() { lbctl stop >/dev/null 2>&1; wait_for -t 5 stopped || t_fail "$T_NAME" "lbd did not stop"; }
worker_block() { # NAME [USER]
	printf 'worker %s {\n    command /bin/sleep 60;\n    instances 1;\n    ready none;\n' "$1"
	[ -z "${2:-}" ] || printf '    user %s;\n' "$2"
	printf '}\n'
}
wpid() { lbctl worker list | awk -v n="$1" '$1 == n && $NF == "online" { print $3 }'; }
online() { [ -n "$(wpid "$1")" ]; }
execd() { [ "$(cat "/proc/$(wpid "$1")/comm" 2>/dev/null)" = sleep ]; }
# as_user NAME UID: NAME's instance has exec'd as UID (online comes at fork)
as_user() { awk -v u="$2" '$1 == "Uid:" && $2 == u { f = 1 } END { exit !f }' "/proc/$(wpid "$1")/status"; }

# ---- no workers: the base set, and every job still works
write_conf
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }
check_sets "sets without workers" "$LBD_PID" "$BASE"
t_check "traffic through the VIP after the drop" "not all 50 answered" served $VIP
t_check "backend add after the drop" "lbctl refused it" lbctl backend add "${BE_ADDRS[2]}:3000" vip=web
t_check "the added backend serves" "be2 got nothing in 5 s" wait_for -t 5 reaches be2
write_conf
cat >>"$CONF" <<EOF
vip web2 {
    listen $VIP2:80;
    backend ${BE_ADDRS[2]}:3000;
}
EOF
kill -HUP "$LBD_PID"
t_check "a reload that adds a VIP works after the drop" "web2 did not serve in 5 s" wait_for -t 5 served $VIP2
stop_backend 1
t_check "a tcp check takes a dead backend down" "still not down after 5 s" wait_for -t 5 health_is "${BE_ADDRS[1]}:3000" down
start_backend 1 3000
lbd_stop

# ---- workers: lbd keeps what supervising needs; workers get nothing back
if getent passwd nobody >/dev/null; then
	write_conf "$(worker_block asroot; worker_block asnobody nobody)"
else
	write_conf "$(worker_block asroot)"
fi
lbd_start || { t_fail "$T_NAME" "lbd start with workers"; exit 1; }
check_sets "sets with workers" "$LBD_PID" "$WORKERS"
if wait_for -t 5 execd asroot; then
	got=$(caps "$(wpid asroot)" Bnd)
	[ "$got" = "$WORKERS" ] && t_pass "a root worker's bounding set is lbd's" ||
		t_fail "a root worker's bounding set is lbd's" "CapBnd $got"
else
	t_fail "a root worker's bounding set is lbd's" "asroot is not online"
fi
if ! getent passwd nobody >/dev/null; then
	t_skip "a worker as nobody has no capability" "no user nobody on this machine"
elif wait_for -t 5 as_user asnobody "$(id -u nobody)"; then
	p=$(wpid asnobody)
	got=$(awk '$1 ~ /^Cap(Eff|Prm|Amb):$/ { print $2 }' "/proc/$p/status" | sort -u)
	[ "$got" = 0000000000000000 ] && t_pass "a worker as nobody has no capability" ||
		t_fail "a worker as nobody has no capability" "$(grep ^Cap "/proc/$p/status" | tr '\n' ' ')"
else
	t_fail "a worker as nobody has no capability" "asnobody is not online"
fi
lbd_stop

# ---- the control socket: owner, control_group, control_readonly_group
# (numeric groups: the test adds no group to the system)
write_conf "" "control_group 4241;" "control_readonly_group 4242;"
chmod 0711 "$TOPO_DIR" # let nobody reach the socket file itself
lbd_start || { t_fail "$T_NAME" "lbd start with control groups"; exit 1; }
as_nobody() { # GROUPS ARGS...: lbctl as uid nobody with supplementary GROUPS
	local g=--clear-groups
	[ -z "$1" ] || g=--groups=$1
	shift
	setpriv --reuid=65534 --regid=65534 "$g" "$LBCTL" -s "$SOCK" "$@" 2>&1
}
out=$(as_nobody "" status); rc=$?
[ $rc -ne 0 ] && grep -qi "permission denied" <<<"$out" && t_pass "a stranger cannot use the socket" ||
	t_fail "a stranger cannot use the socket" "rc $rc: $out"
out=$(as_nobody 4242 status); rc=$?
[ $rc -eq 0 ] && grep -q web <<<"$out" && t_pass "the read-only group runs status" ||
	t_fail "the read-only group runs status" "rc $rc: $out"
quiet() { "$@" >/dev/null; }
t_check "the read-only group runs stats" "stats refused" quiet as_nobody 4242 stats
before=$(lbctl -j status | jq -c '[.vips[].backends[].address]')
out=$(as_nobody 4242 backend add "${BE_ADDRS[2]}:3000" vip=web); rc=$?
after=$(lbctl -j status | jq -c '[.vips[].backends[].address]')
[ $rc -eq 1 ] && [ "$out" = 'permission denied: "backend" changes state; the read-only group may run status, stats, worker list and worker logs' ] &&
	[ "$before" = "$after" ] && t_pass "the read-only group cannot change state" ||
	t_fail "the read-only group cannot change state" "rc $rc: $out; backends $before -> $after"
out=$(as_nobody 4242 -n backend add "${BE_ADDRS[2]}:3000" vip=web); rc=$?
[ $rc -eq 1 ] && t_pass "the read-only group cannot dry-run changes" ||
	t_fail "the read-only group cannot dry-run changes" "rc $rc: $out"
t_check "control_group changes state" "backend add refused" quiet as_nobody 4241 backend add "${BE_ADDRS[1]}:3001" vip=web
lbd_stop

# ---- limits
write_conf "" "max_backends 1;" "max_vips 1;" "control_max_request 1024;"
lbd_start || { t_fail "$T_NAME" "lbd start with limits"; exit 1; }
before=$(lbctl -j status | jq -c '[.vips[] | [.name, [.backends[].address]]]')
out=$(lbctl backend add "${BE_ADDRS[2]}:3000" vip=web 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$out" = "backend add: ${BE_ADDRS[2]}:3000: web has 1 backends already (max_backends 1)" ] &&
	t_pass "max_backends refuses one more" || t_fail "max_backends refuses one more" "rc $rc: $out"
out=$(lbctl vip add web2 $VIP2:80 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$out" = "vip add: web2: there are 1 VIPs already (max_vips 1)" ] &&
	t_pass "max_vips refuses one more" || t_fail "max_vips refuses one more" "rc $rc: $out"
big=$(printf 'x%.0s' $(seq 1100))
out=$(lbctl backend add "${BE_ADDRS[2]}:3000" vip="$big" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "request too large (.* bytes, limit 1024: control_max_request)" <<<"$out" &&
	t_pass "control_max_request refuses a larger request" ||
	t_fail "control_max_request refuses a larger request" "rc $rc: $out"
after=$(lbctl -j status | jq -c '[.vips[] | [.name, [.backends[].address]]]')
[ "$before" = "$after" ] && t_pass "refused changes change nothing" ||
	t_fail "refused changes change nothing" "$before -> $after"
t_check "traffic still flows" "not all 50 answered" served $VIP
lbd_stop

# ---- capabilities keep: nothing dropped
write_conf "" "capabilities keep;"
lbd_start || { t_fail "$T_NAME" "lbd start with capabilities keep"; exit 1; }
mine=$(caps $$ Eff)
got=$(caps "$LBD_PID" Eff)
[ "$got" = "$mine" ] && t_pass "capabilities keep keeps the full set" ||
	t_fail "capabilities keep keeps the full set" "CapEff $got, the test has $mine"
lbd_stop

t_done
