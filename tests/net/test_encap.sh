#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# forward ipip and gue end to end: client -> lbd (XDP) -> tunnel -> backends
# that own the VIPs on lo and decapsulate with `lbd --decap eth0` (no ipip
# or fou module here) -> the backends answer the client directly, over a
# second client interface on the backends' segment, never through the
# balancer's namespace. IPv4 and IPv6, real TCP connections (lbload), spread
# over the backends; established connections keep their backend while one
# is added; table digests follow the table, not the history of changes.
# MODE=tc runs lbd's TC data path, DECAP_MODE=tc (or xdp-generic) the
# backends' decapsulation in TC. DECAP_MODE=kernel (test_encap_kernel.sh):
# the backends decapsulate with the kernel's own ipip, ip6_tunnel and fou
# modules instead, as unmodified Linux backends would; a kernel without them
# (this host's) skips it, the VM lab's has them.
. "$(dirname "$0")/lib.sh"
t_require_root
t_require_cmd ip nsenter ethtool jq
t_require_bin "$LBD" "$LBCTL" "$LBLOAD" "$DEMO_BACKEND"

MODE=${MODE:-xdp}             # lbd's data path
DECAP_MODE=${DECAP_MODE:-auto} # lbd --decap's, or kernel
if [ "$DECAP_MODE" = kernel ]; then
	for m in ipip ip6_tunnel fou fou6; do
		[ -d "/sys/module/$m" ] || modprobe -q "$m" 2>/dev/null || {
			t_skip "$T_NAME" "this kernel has no $m module (run it in the VM lab: make vm-test VM_TESTS=net FILTER=test_encap_kernel)"
			exit 0
		}
	done
fi
# counted per backend on the kernel's tunnel devices
kernel_rx() { # I DEV
	in_be "$1" cat "/sys/class/net/$2/statistics/rx_packets" 2>/dev/null || echo 0
}
CL_SEG=198.18.1.200 CL6_SEG=2001:2:0:1::c8
VIPS=(198.18.0.10 198.18.0.11 2001:2::10 2001:2::11)
NAMES=(ipip4 gue4 ipip6 gue6)
FWDS=(ipip gue ipip gue)

lbd_topo_up 4 none

# The client's second leg on the backends' segment: the way back.
_veth "$NS_CLIENT" eth1 "$NS_SW" cl
in_ns "$NS_SW" ip link set cl master br0
_gro_refresh "$NS_SW" cl
_addr "$NS_CLIENT" eth1 "$CL_SEG/24" "$CL6_SEG/64"
in_client sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
for ((i = 1; i <= NBACKENDS; i++)); do
	in_be "$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
	for v in "${VIPS[@]}"; do
		case $v in
		*:*) in_be "$i" ip -6 addr add "$v/128" dev lo nodad ;;
		*) in_be "$i" ip addr add "$v/32" dev lo ;;
		esac
	done
	in_be "$i" ip route add "$CLIENT_ADDR/32" via "$CL_SEG"
	in_be "$i" ip -6 route add "$CLIENT6_ADDR/128" via "$CL6_SEG"
	start_backend "$i" 80 || { t_fail "$T_NAME" "backend $i"; exit 1; }
	if [ "$DECAP_MODE" = kernel ]; then
		# tunl0 and ip6tnl0 are the modules' catch-all devices (any
		# remote); fou hands GUE's inner packet to them by its protocol
		in_be "$i" ip link set tunl0 up &&
			in_be "$i" ip link set ip6tnl0 up &&
			in_be "$i" sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 &&
			in_be "$i" ip fou add port 6080 gue &&
			in_be "$i" ip fou add port 6080 gue -6 ||
			{ t_fail "$T_NAME" "kernel tunnel devices on backend $i"; exit 1; }
		continue
	fi
	bg_start "${NS_BE[$i]}" "$LBD" --decap eth0 --gue-port 6080 --decap-mode "$DECAP_MODE"
	DECAP_PIDS[$i]=$BG_PID
done
decap_up() { bg_log "$1" | grep -q "decap: [a-z-]* on eth0"; }
if [ "$DECAP_MODE" = kernel ]; then
	t_pass "decap-kernel-devices ($(in_be 1 ip -d link show ip6tnl0 | grep -o 'ip6tnl [a-z0-9]*'), tunl0, fou 6080 gue v4 and v6 on $NBACKENDS backends)"
else
	for ((i = 1; i <= NBACKENDS; i++)); do
		if ! wait_for -t 30 decap_up "${DECAP_PIDS[$i]}"; then
			t_fail "decap-attached-be$i" "$(bg_log "${DECAP_PIDS[$i]}")"
			exit 1
		fi
	done
	t_pass "decap-attached (lbd --decap on $NBACKENDS backends: $(bg_log "${DECAP_PIDS[1]}" | grep -o 'decap: [a-z-]* on eth0'))"
fi

# Backends 1-3 serve every VIP; backend 4 joins later.
vip_block() { # NAME LISTEN FWD
	printf 'vip %s {\n    listen %s;\n    forward %s;\n' "$1" "$2" "$3"
	for ((b = 1; b <= 3; b++)); do
		case $2 in
		\[*) printf '    backend [%s]:80;\n' "${BE6_ADDRS[$b]}" ;;
		*) printf '    backend %s:80;\n' "${BE_ADDRS[$b]}" ;;
		esac
	done
	printf '}\n'
}
{
	lbd_conf_head "hash_seed 0x5eed;" "gue_port 6080;"
	for k in 0 1 2 3; do
		case ${VIPS[$k]} in
		*:*) vip_block "${NAMES[$k]}" "[${VIPS[$k]}]:80" "${FWDS[$k]}" ;;
		*) vip_block "${NAMES[$k]}" "${VIPS[$k]}:80" "${FWDS[$k]}" ;;
		esac
	done
} >"$CONF"
lbd_start || { t_fail "$T_NAME" "lbd start"; exit 1; }

rx_eth1() { in_client cat /sys/class/net/eth1/statistics/rx_packets; }
ep() { case $1 in *:*) echo "[$1]:80" ;; *) echo "$1:80" ;; esac; }

for k in 0 1 2 3; do
	name=${NAMES[$k]}
	r0=$(rx_eth1)
	out=$(in_client "$LBLOAD" -c 90 -p 6 -t 3000 "$(ep "${VIPS[$k]}")" 2>&1)
	r1=$(rx_eth1)
	ok=$(field ok "$out")
	spread="be1=$(count be1 "$out") be2=$(count be2 "$out") be3=$(count be3 "$out")"
	if [ "$ok" = 90 ]; then
		t_pass "$name-connections (90/90 over ${FWDS[$k]}: $spread)"
	else
		t_fail "$name-connections" "$(tail -3 <<<"$out")"
	fi
	if [ "$(count be1 "$out")" -ge 10 ] && [ "$(count be2 "$out")" -ge 10 ] &&
		[ "$(count be3 "$out")" -ge 10 ]; then
		t_pass "$name-spread ($spread)"
	else
		t_fail "$name-spread" "$spread"
	fi
	# 90 connections: at least a SYN-ACK and the answer each, on eth1
	if [ $((r1 - r0)) -ge 180 ]; then
		t_pass "$name-replies-bypass-balancer ($((r1 - r0)) packets in on the client's segment leg)"
	else
		t_fail "$name-replies-bypass-balancer" "only $((r1 - r0)) packets on eth1"
	fi
done
enc=$(lbctl -j stats | jq '.events.encap // 0')
if [ "$enc" -gt 0 ]; then t_pass "encap-counted ($enc)"; else t_fail "encap-counted" "$enc"; fi

# A backend joins under traffic: open connections stay where they are, new
# ones reach it; the digest changes with the table and comes back with it.
digest() { lbctl -j status | jq -r --arg n "$1" '.vips[] | select(.name == $n) | .table_digest'; }
d0=$(digest gue4)
bg_start "$NS_CLIENT" "$LBLOAD" --keep 30 --keep-period 100 --duration 4 -c 0 -t 3000 "${VIPS[1]}:80"
KEEP=$BG_PID
sleep 1
lbctl backend add "${BE_ADDRS[4]}:80" vip=gue4 >/dev/null || t_fail "backend-add" "lbctl failed"
d1=$(digest gue4)
keep_ok "established-keep-backend-on-add" "$KEEP"
out=$(in_client "$LBLOAD" -c 80 -p 4 -t 3000 "${VIPS[1]}:80" 2>&1)
if [ "$(field ok "$out")" = 80 ] && [ "$(count be4 "$out")" -ge 5 ]; then
	t_pass "new-backend-takes-new-flows (be4=$(count be4 "$out") of 80)"
else
	t_fail "new-backend-takes-new-flows" "$(tail -3 <<<"$out")"
fi
lbctl backend del "${BE_ADDRS[4]}:80" vip=gue4 >/dev/null
msg=$(lbctl backend add "${BE_ADDRS[4]}:8080" vip=gue4 2>&1)
rc=$?
if [ "$rc" = 2 ] && grep -q "cannot rewrite ports: use port 80" <<<"$msg"; then
	t_pass "backend-add-other-port-refused ($msg)"
else
	t_fail "backend-add-other-port-refused" "rc=$rc: $msg"
fi
d2=$(digest gue4)
if [ -n "$d0" ] && [ "$d0" != "$d1" ] && [ "$d0" = "$d2" ]; then
	t_pass "digest-follows-table ($d0 -> $d1 -> $d2)"
else
	t_fail "digest-follows-table" "$d0 -> $d1 -> $d2"
fi
# the same backends in the reverse order in the file (reload): the same
# digest (other ids and histories: tests/unit/test_digest.c)
awk '/^vip gue4/ { inb = 1 } inb && /backend/ { l[++n] = $0; next }
	inb && /^}/ { for (i = n; i >= 1; i--) print l[i]; inb = 0 } { print }' "$CONF" >"$CONF.new" &&
	mv "$CONF.new" "$CONF"
lbctl reload >/dev/null || t_fail "reload" "lbctl reload failed"
d3=$(digest gue4)
if [ "$d3" = "$d0" ]; then t_pass "digest-order-independent ($d3)"; else t_fail "digest-order-independent" "$d0 vs $d3"; fi

lbctl stop >/dev/null 2>&1
wait_for -t 10 bash -c "! kill -0 $LBD_PID 2>/dev/null"
if [ "$DECAP_MODE" = kernel ]; then
	t4=0 t6=0
	for ((i = 1; i <= NBACKENDS; i++)); do
		t4=$((t4 + $(kernel_rx "$i" tunl0))) t6=$((t6 + $(kernel_rx "$i" ip6tnl0)))
	done
	# ipip4 and gue4 arrive on tunl0, ipip6 and gue6 on ip6tnl0
	if [ "$t4" -gt 0 ] && [ "$t6" -gt 0 ]; then
		t_pass "decap-kernel-counted (tunl0 $t4, ip6tnl0 $t6 packets)"
	else
		t_fail "decap-kernel-counted" "tunl0 $t4 ip6tnl0 $t6"
	fi
	t_done
	exit
fi
for ((i = 1; i <= NBACKENDS; i++)); do
	bg_stop "${DECAP_PIDS[$i]}"
	echo "  be$i: $(bg_log "${DECAP_PIDS[$i]}" | grep -o 'ipip [0-9]*, gue [0-9]*.*')"
done
tot=$(for ((i = 1; i <= NBACKENDS; i++)); do bg_log "${DECAP_PIDS[$i]}"; done |
	awk '/exiting/ { for (i = 1; i <= NF; i++) if ($i == "ipip" || $i == "gue") s[$i] += $(i + 1) + 0 }
	END { printf "%d %d", s["ipip"], s["gue"] }')
read -r ti tg <<<"$tot"
if [ "$ti" -gt 0 ] && [ "$tg" -gt 0 ]; then
	t_pass "decap-counted (ipip $ti, gue $tg)"
else
	t_fail "decap-counted" "ipip $ti gue $tg"
fi
t_done
