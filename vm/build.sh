#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Builds the QEMU lab under $VM_DIR (default $O/vm):
#   cache/             downloaded .deb files (apt-get download; never installed)
#   kernel/<pkg>/      a linux-image package extracted with dpkg-deb -x
#   vmlinuz            the kernel the lab boots (a symlink)
#   root/              the initramfs tree: busybox-static, host binaries with
#                      their shared libraries, the kernel modules, the build
#   initramfs.cpio     root/ as a newc archive (uncompressed: TCG unpacks it
#                      faster than it would inflate it)
#
# Environment: O (the project build, default build), VM_DIR, KERNEL_PKG (a
# linux-image package name, default the newest *-cloud-amd64 apt knows),
# KERNEL (a bzImage of your own: then MODULES=dir names its lib/modules/<ver>
# tree, if its drivers are modules). A second run reuses the kernel and
# rebuilds only the initramfs (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
O=${O:-build}
case $O in /*) ;; *) O=$REPO/$O ;; esac
VM_DIR=${VM_DIR:-$O/vm}
case $VM_DIR in /*) ;; *) VM_DIR=$REPO/$VM_DIR ;; esac
mkdir -p "$VM_DIR/cache" "$VM_DIR/kernel"

# Host tools are taken from the system's directories, not from a user's
# PATH (pyenv shims, cargo, /usr/local).
SYSPATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vm: $*"; }
die() { echo "vm: error: $*" >&2; exit 1; }

command -v busybox >/dev/null || die "busybox-static missing (make deps)"
[ -x "$O/lbd" ] || die "$O/lbd not built (make O=$O)"

# ---------------------------------------------------------------- kernel
# apt-get download + dpkg-deb -x of PKG into kernel/PKG (once).
fetch_deb() { # PKG -> prints the extracted dir
	local pkg=$1 dir=$VM_DIR/kernel/$1 deb
	if [ ! -f "$dir/.done" ]; then
		deb=$(ls "$VM_DIR/cache/${pkg}_"*.deb 2>/dev/null | tail -1 || true)
		if [ -z "$deb" ]; then
			say "downloading $pkg" >&2
			(cd "$VM_DIR/cache" && apt-get -o APT::Sandbox::User=root download -q "$pkg" >&2) || die "apt-get download $pkg failed"
			deb=$(ls "$VM_DIR/cache/${pkg}_"*.deb | tail -1)
		fi
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
		touch "$dir/.done"
	fi
	echo "$dir"
}

# A meta package (linux-image-cloud-amd64, linux-image-6.12-cloud-amd64)
# stands for the versioned image it depends on.
resolve_pkg() { # PKG
	local dep
	dep=$(apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	echo "${dep:-$1}"
}

MODDIR='' KVER=''
if [ -n "${KERNEL:-}" ]; then
	[ -f "$KERNEL" ] || die "KERNEL=$KERNEL: no such file"
	ln -sfn "$(cd "$(dirname "$KERNEL")" && pwd)/$(basename "$KERNEL")" "$VM_DIR/vmlinuz"
	if [ -n "${MODULES:-}" ]; then
		MODDIR=$MODULES
		KVER=$(basename "$MODDIR")
	fi
	say "kernel: $KERNEL (your own${MODDIR:+, modules from $MODDIR})"
else
	pkg=${KERNEL_PKG:-}
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache pkgnames linux-image- | grep -E '^linux-image-[0-9][^ ]*-cloud-amd64$' | sort -V | tail -1)
		[ -n "$pkg" ] || die "apt knows no linux-image-*-cloud-amd64 (apt-get update?)"
	fi
	pkg=$(resolve_pkg "$pkg")
	kdir=$(fetch_deb "$pkg")
	img=$(ls "$kdir"/boot/vmlinuz-* | head -1)
	[ -f "$img" ] || die "$pkg has no /boot/vmlinuz-*"
	KVER=${img##*/vmlinuz-}
	MODDIR=$kdir/lib/modules/$KVER
	ln -sfn "$img" "$VM_DIR/vmlinuz"
	say "kernel: $pkg ($KVER)"
fi
echo "${KVER:-custom}" >"$VM_DIR/kernel.version"

# ---------------------------------------------------------------- root tree
ROOT=$VM_DIR/root
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,run,tmp,etc,var,lab,root}
cp /usr/bin/busybox "$ROOT/bin/busybox"
for a in $(busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"
done

# copy_elf FILE [DEST]: FILE and every shared library it needs (ldd), at the
# paths the dynamic loader will look for them.
declare -A COPIED=()
copy_elf() {
	local f=$1 dest=${2:-$1} lib
	mkdir -p "$ROOT$(dirname "$dest")"
	cp -L "$f" "$ROOT$dest"
	while read -r lib; do
		[ -n "$lib" ] && [ -z "${COPIED[$lib]:-}" ] || continue
		COPIED[$lib]=1
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# Host tools the test suites and benchmarks call; those missing here are
# skipped by the suites loudly, so they are optional. They shadow busybox's
# applets (PATH puts /usr first) where the GNU options matter (timeout -k,
# grep -o, sort -V, mktemp -d TEMPLATE).
HOST_TOOLS=(bash ip tc ss bridge ethtool nsenter unshare curl sysctl ps pkill
	timeout mktemp grep sed awk mawk sort uniq cut tr wc head tail tee stat
	seq date env id nproc readlink basename dirname sleep cat ls cp mv rm mkdir
	ln chmod bpftool jq socat nft tcpdump wrk taskset getconf column
	haproxy nginx dash python3 capsh setpriv chown)
missing=()
for t in "${HOST_TOOLS[@]}"; do
	p=$(PATH=$SYSPATH command -v "$t" 2>/dev/null || true)
	case $p in
	/*) copy_elf "$(readlink -f "$p")" "/usr/bin/$t" ;;
	*) missing+=("$t") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] || say "not on the host, not in the guest: ${missing[*]}"
# /bin/sh is dash, as on Debian: busybox sh prefers its own applets over
# PATH, so system("ip ...") in the tests would get busybox's ip.
[ -x "$ROOT/usr/bin/dash" ] && ln -sf /usr/bin/dash "$ROOT/bin/sh"
# python3 (test_supervisor's listeners, test_proxy's clients) with its
# standard library, minus what no test imports.
py=$(PATH=$SYSPATH python3 -c 'import sys; print(sys.prefix + "/lib/python%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ -n "$py" ] && [ -d "$py" ]; then
	tar -C / -cf - --exclude=__pycache__ --exclude=test --exclude=tests --exclude=idlelib \
		--exclude=tkinter --exclude=turtledemo --exclude=ensurepip --exclude=lib2to3 \
		--exclude='config-*' --exclude=dist-packages --exclude=site-packages "${py#/}" |
		tar -C "$ROOT" -xf -
	for so in "$ROOT$py"/lib-dynload/*.so; do copy_elf "${so#"$ROOT"}"; done
fi

# Guest-only Debian packages (the host need not have them): fetched like the
# kernel and extracted straight into the tree. ipvsadm is the benchmark's
# IPVS peer.
read -ra GUEST_DEBS <<<"${GUEST_DEBS:-ipvsadm libnl-genl-3-200 libpopt0}"
for pkg in "${GUEST_DEBS[@]}"; do
	deb=$(ls "$VM_DIR/cache/${pkg}_"*.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		(cd "$VM_DIR/cache" && apt-get -o APT::Sandbox::User=root download -q "$pkg" >/dev/null 2>&1) || { say "apt-get download $pkg failed: not in the guest"; continue; }
		deb=$(ls "$VM_DIR/cache/${pkg}_"*.deb | tail -1)
	fi
	dpkg-deb -x "$deb" "$ROOT"
done
rm -rf "${ROOT:?}/usr/share" "$ROOT/etc/init.d" "$ROOT/etc/default"

# The project's build: binaries, tests, BPF objects, at the same layout.
B=/lab/build
for f in "$O"/lbd "$O"/lbctl "$O"/tools/* "$O"/examples/* "$O"/tests/unit/test_* "$O"/tests/bpf/test_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	copy_elf "$f" "$B${f#"$O"}"
done
mkdir -p "$ROOT$B/bpf"
cp "$O"/bpf/*.bpf.o "$ROOT$B/bpf/" 2>/dev/null || true
# The scripts (tests/run.sh, tests/net, examples, tools/bench, vm/) at /lab.
for d in tests/run.sh tests/net examples tools/bench vm bpf; do
	mkdir -p "$ROOT/lab/$(dirname "$d")"
	cp -r "$REPO/$d" "$ROOT/lab/$d"
done
mkdir -p "$ROOT/lab/tests/unit" "$ROOT/lab/tests/bpf"
cp "$REPO"/tests/unit/test_*.c "$ROOT/lab/tests/unit/" 2>/dev/null || true
cp "$REPO"/tests/bpf/test_*.c "$ROOT/lab/tests/bpf/" 2>/dev/null || true

# ---------------------------------------------------------------- modules
# Each wanted module and its dependencies, in load order. The packages leave
# modules.dep to depmod at install time, so the dependencies come from each
# module's own modinfo "depends=" string (no kmod needed on the host).
WANT_MODS=(virtio_net virtio_blk ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_mh
	ipip fou fou6 ip6_tunnel sit veth bridge nf_conntrack nf_nat
	nf_tables nft_nat nft_chain_nat nft_ct nft_hash sch_ingress cls_bpf act_bpf sch_fq_codel tun
	pktgen 9p 9pnet_virtio)
ko_cat() { # FILE: the module, uncompressed, on stdout
	case $1 in
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -qdc "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}
if [ -n "$MODDIR" ] && [ -d "$MODDIR/kernel" ]; then
	declare -A MOD_PATH=() MOD_SEEN=()
	while read -r f; do
		n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
		MOD_PATH[$n]=$f
	done < <(cd "$MODDIR" && find kernel -name '*.ko*')
	: >"$ROOT/lab/modules.order"
	add_mod() { # NAME
		local name=${1//-/_} path dst dep
		path=${MOD_PATH[$name]:-}
		[ -n "$path" ] || return 0 # built in, or not in this kernel
		[ -z "${MOD_SEEN[$name]:-}" ] || return 0
		MOD_SEEN[$name]=1
		dst=/lib/modules/$KVER/${path%.ko*}.ko
		mkdir -p "$ROOT$(dirname "$dst")"
		ko_cat "$MODDIR/$path" >"$ROOT$dst"
		for dep in $(tr '\0' '\n' <"$ROOT$dst" | sed -n 's/^depends=//p' | tr ',' ' '); do
			add_mod "$dep"
		done
		echo "$dst" >>"$ROOT/lab/modules.order"
	}
	for m in "${WANT_MODS[@]}"; do add_mod "$m"; done
	say "modules: $(wc -l <"$ROOT/lab/modules.order") (${WANT_MODS[*]} and their dependencies)"
else
	say "modules: none (no ${MODDIR:-MODULES=} tree): the kernel must have its drivers built in"
fi

# ---------------------------------------------------------------- init
cp "$REPO/vm/init" "$ROOT/init"
chmod 755 "$ROOT/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$ROOT/etc/nsswitch.conf"
git -C "$REPO" rev-parse --short HEAD >"$ROOT/lab/REVISION" 2>/dev/null || true

(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) >"$VM_DIR/initramfs.cpio.tmp"
mv "$VM_DIR/initramfs.cpio.tmp" "$VM_DIR/initramfs.cpio"
say "initramfs: $VM_DIR/initramfs.cpio ($(du -m "$VM_DIR/initramfs.cpio" | cut -f1) MiB)"
say "ready: vm/run.sh (O=$O) boots it"
