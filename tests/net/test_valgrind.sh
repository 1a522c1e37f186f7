#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# lbd under valgrind's memcheck (tests/net/lib.sh topology), through a whole
# start-reload-stop cycle: start with one VIP and a health check, a request
# through the VIP, a reload by SIGHUP that adds a backend and a VIP, a
# runtime `lbctl backend add`, an `lbctl reload` that removes the VIP again,
# an invalid reload (refused), then `lbctl stop`. Fails on any memcheck
# error (invalid access, uninitialised value used, bad free) and on any
# definite or indirect leak; the valgrind log is printed then.
# tests/net/valgrind.supp silences what memcheck misreads in libbpf's
# bpf(2) and netlink calls (each entry says why), nothing of lbd's.
# The SAN=1 build cannot run under valgrind (ASan owns the shadow memory):
# there this test is a loud skip, and the plain build's run counts.
. "$(dirname "$0")/lib.sh"
MODE=${LBD_MODE:-xdp}

t_require_root
t_require_cmd ip nsenter ethtool curl valgrind nm
t_require_bin "$LBD" "$LBCTL" "$DEMO_BACKEND"
if nm "$LBD" 2>/dev/null | grep -q __asan_init; then
	t_skip "$T_NAME" "$LBD is an ASan build (make SAN=1); valgrind runs on the plain build"
	exit 0
fi
lbd_topo_up 2
VIP=198.18.0.10
VIP2=198.18.0.11
VGLOG=${VGLOG:-$TOPO_DIR/valgrind.log}
# Under valgrind lbd runs some 20 times slower: every wait is longer.
WAIT=120

write_conf() { # [EXTRA-VIP-BLOCK] [EXTRA-BACKEND-LINE]
	{
		lbd_conf_head
		cat <<EOF
vip web {
    listen $VIP:80;
    health_check tcp interval=500ms timeout=400ms rise=1 fall=2;
    backend ${BE_ADDRS[1]}:3000;
    ${2:-}
}
${1:-}
EOF
	} >"$CONF"
}

served() { in_client curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$1/" | grep -qx 200; }
backends() { lbctl stats 2>/dev/null | grep -c "${BE_ADDRS[$1]}:3000"; }
has_vip() { lbctl vip list 2>/dev/null | grep -qw "$1"; }

write_conf
bg_start @lb valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	${VG_EXTRA:-} --track-origins=yes --suppressions="$LIB_DIR/valgrind.supp" --log-file="$VGLOG" \
	"$LBD" -f -c "$CONF"
VG_PID=$BG_PID
if wait_for -t $WAIT lbd_up; then
	t_pass "lbd starts under valgrind"
else
	t_fail "lbd starts under valgrind" "no answer on $SOCK within $WAIT s"
	bg_log "$VG_PID"; cat "$VGLOG"; t_done; exit 1
fi
t_check "a request through the VIP" "no HTTP 200 from $VIP" wait_for -t 30 served "$VIP"

write_conf "vip web2 { listen $VIP2:80; backend ${BE_ADDRS[2]}:3000; }" \
	"backend ${BE_ADDRS[2]}:3000;"
kill -HUP "$VG_PID"
t_check "SIGHUP reload adds a backend and a VIP" "lbctl does not show them" \
	wait_for -t $WAIT eval 'has_vip web2 && [ "$(backends 2)" -ge 2 ]'
t_check "the new VIP serves" "no HTTP 200 from $VIP2" wait_for -t 30 served "$VIP2"

t_check "lbctl backend add" "refused" \
	eval 'lbctl backend add "${BE_ADDRS[2]}:3001" vip=web >/dev/null'

write_conf
t_check "lbctl reload removes the VIP" "failed or web2 still there" \
	eval 'lbctl reload >/dev/null && wait_for -t $WAIT eval "! has_vip web2"'
echo 'vip broken {' >>"$CONF"
t_check "an invalid reload is refused" "lbctl reload accepted a broken file" \
	eval '! lbctl reload >/dev/null 2>&1'
t_check "lbd still serves after it" "no HTTP 200 from $VIP" wait_for -t 30 served "$VIP"

lbctl stop >/dev/null 2>&1
rc=
for ((i = 0; i < WAIT * 10; i++)); do
	kill -0 "$VG_PID" 2>/dev/null || { wait "$VG_PID"; rc=$?; break; }
	sleep 0.1
done
if [ -z "$rc" ]; then
	t_fail "lbctl stop ends lbd" "still running after $WAIT s"
	bg_stop "$VG_PID"
elif [ "$rc" -eq 99 ]; then
	t_fail "valgrind: no errors, no definite or indirect leaks" "see the log below"
	grep -E 'ERROR SUMMARY|Invalid|uninitialised|definitely lost|indirectly lost|at 0x|by 0x' \
		"$VGLOG" | head -80
elif [ "$rc" -ne 0 ]; then
	t_fail "lbctl stop ends lbd" "exit status $rc"
	bg_log "$VG_PID" | tail -20
else
	t_pass "lbctl stop ends lbd (status 0)"
	t_check "valgrind: no errors, no definite or indirect leaks" \
		"$(grep 'ERROR SUMMARY' "$VGLOG")" grep -q 'ERROR SUMMARY: 0 errors' "$VGLOG"
fi
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost' "$VGLOG"
t_done
