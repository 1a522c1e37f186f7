#!/usr/bin/env bash
# shellcheck disable=SC2054 # commas separate QEMU sub-options, not array elements
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Boots the lab built by vm/build.sh and runs one thing in it:
#   vm/run.sh smoke|virtio|test|bench|multi|shell [lab.NAME=VALUE...]
# (lab.TESTS=unit,bpf and lab.FILTER=x reach tests/run.sh in the guest.)
# multi is three VMs (client, lb, backend) joined by multi-queue virtio-net:
# vm/multi.sh, sourced from here once the accelerator is known.
#
# Accelerator: KVM when a probe guest reaches its init within VM_PROBE_TIMEOUT
# seconds (on some hosts /dev/kvm exists but guests hang at kernel entry),
# TCG otherwise; VM_ACCEL=kvm|tcg skips the probe. The probe's answer is kept
# for this host boot in $VM_DIR/accel.
# The console goes to the terminal and to $VM_DIR/console.log; a guest that
# runs longer than VM_TIMEOUT seconds is killed. The exit status is the
# guest's (its LAB-EXIT line), 124 if it was killed, 125 if it never said.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
O=${O:-build}
case $O in /*) ;; *) O=$PWD/$O ;; esac
VM_DIR=${VM_DIR:-$O/vm}
RUN=${1:-shell}
shift || true
if [ "$RUN" = multi ]; then
	# Three guests on the host's cores: one vCPU each, multi-queue NICs.
	VM_MEM=${VM_MEM:-1024}
	VM_SMP=${VM_SMP:-1}
fi
VM_MEM=${VM_MEM:-2048}
VM_SMP=${VM_SMP:-$(nproc)}
QEMU=${QEMU:-qemu-system-x86_64}
LOG=$VM_DIR/console.log

case $RUN in
smoke | probe) VM_TIMEOUT=${VM_TIMEOUT:-480} ;;
virtio) VM_TIMEOUT=${VM_TIMEOUT:-600} ;;
multi) VM_TIMEOUT=${VM_TIMEOUT:-720} ;;
# Under TCG the verifier is ~10x slower and some BPF test programs load the
# data path once per case: each suite program gets 30 min, the run 2 h.
test | bench) VM_TIMEOUT=${VM_TIMEOUT:-7200} ;;
shell) VM_TIMEOUT=${VM_TIMEOUT:-86400} ;;
*) echo "usage: vm/run.sh probe|smoke|virtio|test|bench|multi|shell [lab.NAME=VALUE...]" >&2; exit 2 ;;
esac

say() { echo "vm: $*"; }
[ -e "$VM_DIR/vmlinuz" ] && [ -f "$VM_DIR/initramfs.cpio" ] || { say "no lab in $VM_DIR: make vm O=$O first" >&2; exit 2; }
command -v "$QEMU" >/dev/null || { say "$QEMU missing (make deps)" >&2; exit 2; }

BASE=(-kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initramfs.cpio" -m "$VM_MEM"
	-display none -monitor none -no-reboot)
# No network to the host. The virtio run gets two virtio-net NICs on one QEMU
# hub (frames go NIC to NIC through QEMU, never to the host); the other runs
# build their networks from namespaces and veth pairs inside the guest.
if [ "$RUN" = virtio ]; then
	NET=(-netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0
		-netdev hubport,id=n1,hubid=0 -device virtio-net-pci,netdev=n1)
else
	NET=(-nic none)
fi
CMDLINE="console=ttyS0 quiet loglevel=3 panic=-1 oops=panic"

# kvm_works: a guest under KVM prints LAB-PROBE-OK in time.
kvm_works() {
	local plog=$VM_DIR/probe.log
	[ -w /dev/kvm ] || return 1
	rm -f "$plog"
	timeout -k 2 "${VM_PROBE_TIMEOUT:-20}" "$QEMU" "${BASE[@]}" -nic none -accel kvm -smp 1 \
		-serial "file:$plog" -append "$CMDLINE lab.run=probe" </dev/null >/dev/null 2>&1
	grep -q LAB-PROBE-OK "$plog" 2>/dev/null
}

ACCEL=${VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
	key="$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) $("$QEMU" --version | head -1) $(readlink -f "$VM_DIR/vmlinuz")"
	if [ -f "$VM_DIR/accel" ] && [ "$(sed 1d "$VM_DIR/accel")" = "$key" ]; then
		ACCEL=$(head -1 "$VM_DIR/accel")
		say "accelerator: $ACCEL (probed earlier on this host boot; VM_ACCEL= to choose)"
	else
		t0=$(date +%s.%N)
		if kvm_works; then ACCEL=kvm; why="a KVM guest reached its init"
		else ACCEL=tcg; why="no working KVM (/dev/kvm missing or its guest did not reach init in ${VM_PROBE_TIMEOUT:-20} s)"; fi
		printf '%s\n%s\n' "$ACCEL" "$key" >"$VM_DIR/accel"
		say "accelerator: $ACCEL: $why (probe took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
	fi
fi
case $ACCEL in
kvm) ACC=(-accel kvm -cpu max) ;;
# One host thread for all vCPUs by default: with a thread per vCPU (QEMU's
# multi-threaded TCG) a 2-vCPU guest oopsed on an int3 while its kernel
# live-patched code the other vCPU was running (vm/README.md); in one thread
# a code write invalidates the other vCPU's translations before it runs
# again. VM_TCG_THREAD=multi for the faster, racy mode.
tcg) ACC=(-accel "tcg,thread=${VM_TCG_THREAD:-single}" -cpu max) ;;
*) say "VM_ACCEL=$ACCEL: want kvm or tcg" >&2; exit 2 ;;
esac

if [ "$RUN" = multi ]; then
	. vm/multi.sh
	exit $?
fi
say "booting $(cat "$VM_DIR/kernel.version" 2>/dev/null) under $ACCEL, $VM_SMP cpus, $VM_MEM MiB, run=$RUN, bound ${VM_TIMEOUT}s, console $LOG"
rm -f "$LOG"
t0=$(date +%s.%N)
if [ "$RUN" = shell ]; then
	"$QEMU" "${BASE[@]}" -nic none "${ACC[@]}" -smp "$VM_SMP" \
		-chardev "stdio,id=con,signal=on,logfile=$LOG" -serial chardev:con \
		-append "$CMDLINE lab.run=shell $*"
	exit $?
fi
# timeout puts QEMU in a process group of its own: a signal to ours (make
# killed, Ctrl-C) must take the guest down with it, not leave it running
timeout -k 5 "$VM_TIMEOUT" "$QEMU" "${BASE[@]}" "${NET[@]}" "${ACC[@]}" -smp "$VM_SMP" \
	-chardev "stdio,id=con,signal=off,logfile=$LOG" -serial chardev:con \
	-append "$CMDLINE lab.run=$RUN lab.TEST_TIMEOUT=${TEST_TIMEOUT:-1800} $*" </dev/null &
qpid=$!
trap 'kill -TERM "$qpid" 2>/dev/null; wait "$qpid"; say "stopped: the guest was killed"; exit 143' INT TERM
wait "$qpid"
qrc=$?
trap - INT TERM
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ready=$(tr -d '\r' <"$LOG" | grep -m1 '^LAB-READY:' | sed -n 's/.* \([0-9.]*\)s since kernel start.*/\1/p')
grc=$(tr -d '\r' <"$LOG" | sed -n 's/^LAB-EXIT: \([0-9]*\)$/\1/p' | tail -1)
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	say "guest killed after ${VM_TIMEOUT}s (hung?); console: $LOG"
	exit 124
fi
if [ -z "$grc" ]; then
	say "guest ended without a LAB-EXIT line (qemu status $qrc, ${secs}s); console: $LOG"
	exit 125
fi
# Benchmark figures (BENCH: lines) to the host's results directory.
if grep -q '^BENCH: ' <(tr -d '\r' <"$LOG"); then
	res=${VM_RESULTS:-$VM_DIR/results}
	mkdir -p "$res"
	out=$res/vm-$RUN-$(date +%Y%m%d-%H%M%S).txt
	{
		echo "# vm/run.sh $RUN: $(cat "$VM_DIR/kernel.version" 2>/dev/null) under $ACCEL, $VM_SMP cpus; $(tr -d '\r' <"$LOG" | grep -m1 '^LAB-READY:')"
		tr -d '\r' <"$LOG" | sed -n 's/^BENCH: //p'
	} >"$out"
	say "results: $out"
fi
# Files the guest printed between LAB-FILE: NAME and LAB-FILE-END lines (the
# in-guest bench suite's CSVs), into a directory of their own.
if grep -q '^LAB-FILE: ' <(tr -d '\r' <"$LOG"); then
	dir=${VM_RESULTS:-$VM_DIR/results}/vm-$RUN-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$dir"
	tr -d '\r' <"$LOG" | awk -v dir="$dir" '
		/^LAB-FILE-END$/ { f = ""; next }
		/^LAB-FILE: / { f = dir "/" $2; gsub(/[^A-Za-z0-9._\/-]/, "_", f); printf "" > f; next }
		f != "" { print >> f }'
	say "result files: $dir ($(ls "$dir" | tr '\n' ' '))"
fi
say "guest exit status $grc; init reached ${ready:-?}s after kernel start; ${secs}s in all under $ACCEL"
exit "$grc"
