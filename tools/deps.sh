#!/usr/bin/env bash
# Install the Debian packages lbd needs to build, test and benchmark.
# Installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm libbpf-dev libelf-dev zlib1g-dev libnl-3-dev
	libnl-route-3-dev libcmocka-dev libsystemd-dev libcap-dev libacl1-dev bpftool pkg-config
	libncurses-dev libjansson-dev  # lbctl top
	# make fuzz: libFuzzer and the sanitizer runtimes of clang 14
	libclang-rt-14-dev
	# tests and demo
	iproute2 curl procps util-linux libcap2-bin valgrind ethtool tcpdump socat jq python3
	chromium tmux  # the stats page in a real browser; lbctl top on a pty
	# examples/app.js, run as a worker by tests/net/test_workers_node.sh
	nodejs
	# benchmark peers and tools
	wrk nftables haproxy nginx-light libnginx-mod-stream gnuplot-nox bsdextrautils
	linux-perf  # bench proxy: syscalls per request (perf stat on syscall tracepoints)
	# BGP: the bgp block runs BIRD2; tests/net/test_bgp.sh runs a router with it
	bird2
	# the QEMU lab (vm/): the guest's kernel modules are xz-compressed
	qemu-system-x86 busybox-static xz-utils
	# man page checks, the Debian package and its install test (tests/pkg)
	mandoc debhelper dpkg-dev fakeroot debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables and starts these on install; lbd's benchmark runs its own.
for svc in haproxy nginx bird; do
	$SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "deps: done"
