#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# lbd in native XDP mode on virtio_net (make vm-virtio; in the guest as
# lab.run=virtio). vm/run.sh gives this guest two virtio-net NICs joined by a
# QEMU hub, so a frame sent on one arrives on the other through QEMU's
# virtio path. Inside the guest, tests/net/lib.sh's topology, then:
#
#   client ns  eth2 (virtio) 198.19.0.1/24  ==QEMU hub==  eth2 (virtio) 198.19.0.254/24  lb ns
#
# and the client routes the VIP over eth2. lbd attaches native XDP to eth2
# (virtio_net), eth0 and eth1 (veth): requests arrive on virtio, are NATed
# and redirected to a veth; replies are redirected into virtio_net's
# ndo_xdp_xmit. Checks: the XDP mode of eth2, requests through the VIP, the
# an lbload run (connections per second); with BENCH=1 (make vm-bench) the
# same run through IPVS in NAT mode on the same path after lbd stops.
. /lab/vm/lib.sh
T_NAME=vm-virtio
t_require_root
t_require_cmd ip nsenter ethtool curl ss
t_require_bin "$LBD" "$LBCTL" "$DEMO_BACKEND" "$LBLOAD"

# The two virtio NICs, whatever the kernel named them.
mapfile -t NICS < <(for d in /sys/class/net/*; do
	[ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = virtio_net ] && basename "$d"
done)
if [ ${#NICS[@]} -lt 2 ]; then
	t_fail "$T_NAME" "want two virtio_net NICs, found: ${NICS[*]:-none}"
	t_done; exit 1
fi

lab_up

ip link set "${NICS[0]}" netns "$NS_LB" name eth2
ip link set "${NICS[1]}" netns "$NS_CLIENT" name eth2
# Complete checksums on the wire (as from a real NIC): the client's stack
# would otherwise hand over partial ones, which XDP NAT cannot finish.
in_client ethtool -K eth2 tx off tso off gso off >/dev/null 2>&1
in_lb ethtool -K eth2 tx off tso off gso off >/dev/null 2>&1
in_lb ip addr add 198.19.0.254/24 dev eth2
in_lb ip link set eth2 up
in_client ip addr add 198.19.0.1/24 dev eth2
in_client ip link set eth2 up
in_client ip route add "$VIP/32" via 198.19.0.254 dev eth2
# Backends answer 198.19.0.1 through the lb ns (their default route).

lab_lbd xdp eth0 eth1 eth2
st=$("$LBCTL" -s "$SOCK" status)
if grep -Eq "^  eth2 +xdp\b" <<<"$st" && in_lb ip -d link show eth2 | grep -q "prog/xdp "; then
	t_pass "native-xdp-on-virtio_net"
else
	t_fail "native-xdp-on-virtio_net" "status: $st; link: $(in_lb ip -d link show eth2 | grep xdp)"
fi

ok=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
	body=$(in_client curl -s -m 5 "http://$VIP/" 2>/dev/null)
	grep -q "^Here we are! be[12]" <<<"$body" && ok=$((ok + 1))
done
t_check "requests-over-virtio ($ok/10)" "only $ok of 10 requests answered" test "$ok" -eq 10

# rate NAME: an lbload run from the client over virtio_net; prints the
# BENCH line vm/run.sh copies to the host, returns non-zero unless all ok.
NCONN=${BENCH_CONNS:-2000}
rate() {
	local out n r
	out=$(in_client "$LBLOAD" -t 1000 -c "$NCONN" -p 16 "$VIP:80" 2>&1)
	n=$(grep -o 'ok=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
	r=$(grep -o 'rate=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
	echo "BENCH: $1 over virtio_net: ${r:-0} connections/s (HTTP request each, $NCONN connections, 16 parallel, ${n:-0} ok): $(tr '\n' ' ' <<<"$out")"
	[ "${n:-0}" -eq "$NCONN" ]
}
t_check "lbd-xdp-load" "not every connection through lbd succeeded" rate "lbd native XDP (NAT)"
"$LBCTL" -s "$SOCK" status | sed 's/^/  /'

# The same load through IPVS (NAT mode, round robin) in the same lb ns, on
# the same path, once lbd has detached.
if [ -n "${BENCH:-}" ]; then
	"$LBCTL" -s "$SOCK" stop >/dev/null 2>&1
	wait_for -t 10 bash -c "! kill -0 $LBD_PID 2>/dev/null"
	if ! command -v ipvsadm >/dev/null; then
		t_skip "ipvs-load" "ipvsadm not in the guest"
	elif in_lb ip -d link show eth2 | grep -q "prog/xdp"; then
		t_fail "ipvs-load" "lbd left its XDP program on eth2"
	else
		in_lb ip addr add "$VIP/32" dev lo
		in_lb ipvsadm -A -t "$VIP:80" -s rr
		in_lb ipvsadm -a -t "$VIP:80" -r "${BE_ADDRS[1]}:3000" -m
		in_lb ipvsadm -a -t "$VIP:80" -r "${BE_ADDRS[2]}:3000" -m
		t_check "ipvs-load" "not every connection through IPVS succeeded" rate "IPVS NAT (rr)"
		in_lb ipvsadm -C
	fi
fi
t_done
