# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# make vm-bench: three VMs joined by multi-queue virtio-net, lbd against IPVS.
# Sourced by vm/run.sh (RUN=multi) once the accelerator is chosen; uses its
# BASE, ACC, CMDLINE, VM_DIR, VM_SMP, VM_TIMEOUT, QEMU and say.
#
# On the host, only inside a network namespace this script creates (never
# the host's own network): two bridges and four multi-queue taps.
#
#   client VM [c0] --brf-- [l0] lb VM [l1] --brb-- [b0] backend VM
#
# Each NIC is a virtio-net-pci with mq=on and VM_QUEUES (2) queue pairs on a
# tap opened with queues=VM_QUEUES; each VM has VM_SMP (1) vCPU and VM_MEM
# (1024) MiB. vm/mvm.sh is the guest side (one role per VM); the client VM
# drives the run, and the whole run is bounded by VM_TIMEOUT (720 s): the
# other two VMs are stopped when the client's ends, or at that bound.
# Results: bench-results/vm-<time>/ (VM_RESULTS=dir to choose) holds
# vm-bench.csv and vm-bench.md; the consoles are $VM_DIR/multi-<role>.log.
[ "$(id -u)" -eq 0 ] || { say "multi needs root (taps in a network namespace)" >&2; exit 2; }
VM_QUEUES=${VM_QUEUES:-2}
MNS=labvm$$
declare -A MVM_PID=()

mvm_down() {
	local r
	for r in "${!MVM_PID[@]}"; do kill "${MVM_PID[$r]}" 2>/dev/null; done
	for r in "${!MVM_PID[@]}"; do wait "${MVM_PID[$r]}" 2>/dev/null; done
	MVM_PID=()
	ip netns del "$MNS" 2>/dev/null
}
trap mvm_down EXIT
trap 'exit 130' INT TERM

ip netns add "$MNS" || exit 2
for br in brf brb; do
	ip -n "$MNS" link add "$br" type bridge && ip -n "$MNS" link set "$br" up || exit 2
done
# tap NAME BRIDGE
mk_tap() {
	ip -n "$MNS" tuntap add dev "$1" mode tap multi_queue &&
		ip -n "$MNS" link set "$1" master "$2" && ip -n "$MNS" link set "$1" up
}
mk_tap c0 brf && mk_tap l0 brf && mk_tap l1 brb && mk_tap b0 brb || exit 2

# nic TAP=MAC: QEMU arguments for a multi-queue virtio-net NIC on TAP (the
# guest finds its NICs by these MACs; vm/mvm.sh knows them).
nic() {
	local tap=${1%%=*} mac=${1#*=}
	echo "-netdev tap,id=$tap,ifname=$tap,script=no,downscript=no,vhost=off,queues=$VM_QUEUES"
	echo "-device virtio-net-pci,netdev=$tap,mac=$mac,mq=on,vectors=$((2 * VM_QUEUES + 2))"
}
# start_vm ROLE NIC-ARGS...: one guest in the background, console to its log
# (the client's to the terminal too).
start_vm() {
	local role=$1 log=$VM_DIR/multi-$1.log ser
	shift
	rm -f "$log"
	if [ "$role" = client ]; then
		ser=(-chardev "stdio,id=con,signal=off,logfile=$log" -serial chardev:con)
	else
		ser=(-serial "file:$log")
	fi
	# shellcheck disable=SC2046 # nic's words are separate arguments
	ip netns exec "$MNS" ${MVM_CPUS[$role]:+taskset -c "${MVM_CPUS[$role]}"} timeout -k 5 "$VM_TIMEOUT" "$QEMU" "${BASE[@]}" "${ACC[@]}" -smp "$VM_SMP" \
		$(for n in "$@"; do nic "$n"; done) "${ser[@]}" \
		-append "$CMDLINE lab.run=mvm lab.ROLE=$role lab.TEST_TIMEOUT=$VM_TIMEOUT ${MVM_ARGS[*]}" </dev/null &
	MVM_PID[$role]=$!
}

MVM_ARGS=("$@")
# With two host cores or more, the lb VM gets one to itself and the client
# and backend VMs share another (VM_PIN=0: no pinning): the lb is then what
# the figures measure, not the scheduler's mix of three emulated CPUs.
declare -A MVM_CPUS=()
if [ "${VM_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	MVM_CPUS=([lb]=1 [client]=0 [backend]=0)
fi
say "booting 3 VMs: $(cat "$VM_DIR/kernel.version" 2>/dev/null) under $ACCEL, $VM_SMP vCPU and $VM_MEM MiB each, virtio-net with $VM_QUEUES queues, bound ${VM_TIMEOUT}s, consoles $VM_DIR/multi-*.log"
t0=$(date +%s.%N)
start_vm backend b0=52:54:00:12:01:02
start_vm lb l0=52:54:00:12:00:fe l1=52:54:00:12:01:fe
start_vm client c0=52:54:00:12:00:01
wait "${MVM_PID[client]}"
qrc=$?
unset 'MVM_PID[client]'
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
mvm_down

LOG=$VM_DIR/multi-client.log
grc=$(tr -d '\r' <"$LOG" | sed -n 's/^LAB-EXIT: \([0-9]*\)$/\1/p' | tail -1)
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	say "client VM killed after ${VM_TIMEOUT}s (hung?); consoles: $VM_DIR/multi-*.log"
	exit 124
fi
[ -n "$grc" ] || { say "client VM ended without a LAB-EXIT line (qemu status $qrc); console: $LOG"; exit 125; }

# boot_s ROLE: seconds from kernel start to init, from the LAB-READY line.
boot_s() {
	tr -d '\r' <"$VM_DIR/multi-$1.log" 2>/dev/null | grep -m1 '^LAB-READY:' |
		sed -n 's/.* \([0-9.]*\)s since kernel start.*/\1/p'
}
dir=${VM_RESULTS:-$VM_DIR/results}/vm-$(date +%Y%m%d-%H%M%S)
mkdir -p "$dir"
{
	echo "peer,round,metric,value,note"
	for r in client lb backend; do echo "$r,,boot_to_init_s,$(boot_s "$r"),kernel start to init"; done
	tr -d '\r' <"$LOG" | sed -n 's/^BENCH: //p'
} >"$dir/vm-bench.csv"
tally=$(tr -d '\r' <"$LOG" | grep -m1 '^vm-bench: [0-9]* passed')
# The markdown section: per peer and measure the median over the rounds with
# its range, and the ratios of the medians.
awk -F, -v kernel="$(cat "$VM_DIR/kernel.version" 2>/dev/null)" -v accel="$ACCEL" \
	-v smp="$VM_SMP" -v mem="$VM_MEM" -v q="$VM_QUEUES" -v rev="$(git rev-parse --short HEAD 2>/dev/null)" \
	-v secs="$secs" -v tally="$tally" -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" \
	-v pin="${MVM_CPUS[lb]:+the lb VM alone on host CPU ${MVM_CPUS[lb]}, the others on CPU ${MVM_CPUS[client]}}" '
	NR == 1 { next }
	$3 == "boot_to_init_s" { boot = boot sprintf("%s%s %s s", boot == "" ? "" : ", ", $1, $4); next }
	$3 == "start_s" { start = start sprintf("%s%s", start == "" ? "" : ", ", $4); next }
	$3 == "requests_per_s" || $3 == "packets_per_s" { k = $1 SUBSEP $3; x[k, ++n[k]] = $4 + 0; if ($2 > rounds) rounds = $2 }
	function median(k,   i, j, t, a, c) {
		c = n[k]
		for (i = 1; i <= c; i++) a[i] = x[k, i]
		for (i = 2; i <= c; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		lo[k] = a[1]; hi[k] = a[c]
		return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
	}
	function cell(p, m,   k) {
		k = p SUBSEP m
		if (!n[k]) return "-"
		med[k] = median(k)
		return n[k] > 1 ? sprintf("%d (%d-%d)", med[k], lo[k], hi[k]) : sprintf("%d", med[k])
	}
	function ratio(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "n/a" }
	function row(name, m,   l, i, r) {
		l = cell("lbd", m); i = cell("ipvs", m); r = cell("route", m)
		printf "| %s | %s | %s | %s | %s | %s |\n", name, l, i,
			ratio(med["lbd", m], med["ipvs", m]), r, ratio(med["lbd", m], med["route", m])
	}
	END {
		printf "## VM lab: lbd against IPVS across three VMs (%s)\n\n", when
		printf "`make vm-bench` (vm/run.sh multi), build %s, kernel %s under %s.\n", rev, kernel, toupper(accel)
		printf "Client, lb and backend VMs with %s vCPU and %s MiB each, joined by virtio-net\n", smp, mem
		printf "(mq=on, %s queue pairs) on taps bridged in a network namespace of the host. lbd runs\n", q
		printf "native XDP on both virtio_net NICs of the lb VM; IPVS runs NAT, round robin,\n"
		printf "on the same VM; routing only: the lb VM forwards client to one backend, no\n"
		printf "balancer (the ceiling of this path).\n"
		if (pin != "") printf "Pinned: %s.\n", pin
		printf "\nMedian (min-max) over %d rounds, each round running the three in another order.\n\n", rounds
		printf "| measure | lbd (XDP, NAT) | IPVS (NAT) | lbd / IPVS | routing only | lbd / routing |\n"
		printf "|---|---|---|---|---|---|\n"
		row("requests/s (a connection each)", "requests_per_s")
		row("packets/s (64-byte UDP, 256 flows)", "packets_per_s")
		printf "\nBoot to init: %s.\nlbd answering after its start: %s s.\n", boot, start
		printf "Guest checks: %s. %s s in all.\n", tally, secs
		if (accel == "tcg")
			printf "Under TCG every guest instruction is emulated and the three vCPUs share the\nhost cores: the figures compare the peers in this run only, not with hardware.\n"
	}' "$dir/vm-bench.csv" >"$dir/vm-bench.md"
cat "$dir/vm-bench.md"
say "results: $dir/vm-bench.csv, $dir/vm-bench.md"
say "client exit status $grc; ${secs}s in all under $ACCEL"
exit "$grc"
