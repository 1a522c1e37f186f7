#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The Debian package end to end:
#   - `dpkg-buildpackage -us -uc -b` (-j2) builds lbd_*.deb from a copy of this tree
#     (tracked and untracked files, not build output) under $O/pkg/src
#   - the .deb holds lbd, lbctl, the man pages, the unit, the completion, the
#     BPF objects, and /etc/lbd/lbd.conf as a conffile
#   - installed with apt into a throwaway copy of a minbase debootstrap chroot
#     (so its Depends resolve on a bare Debian): `lbd -t` accepts the shipped
#     config, rejects a broken one with FILE:LINE, lbctl runs, the unit points
#     at the installed lbd, the completion loads in bash; purge removes it all
#
# The base chroot ($O/pkg/base-SUITE, with apt lists; built while the
# package builds) and the packages apt fetched are kept, so a second run needs
# no network and costs the build and a copy. Needs root, and the Debian mirror ($DEB_MIRROR) for the first run
# or when the base is older than a week; without them it skips, loudly.
. "$(dirname "$0")/../net/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	t_skip "$T_NAME" "needs root (debootstrap, chroot)"
	t_done
	exit 0
fi
t_require_cmd dpkg-buildpackage dh debootstrap chroot curl tar

SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME")
MIRROR=${DEB_MIRROR:-http://deb.debian.org/debian}
PKG=$O/pkg
BASE=$PKG/base-$SUITE
ARCHIVES=$PKG/apt-archives
WORK=
mkdir -p "$PKG" "$ARCHIVES"

BASE_PID=
cleanup() {
	if [ -n "$BASE_PID" ] && kill -0 "$BASE_PID" 2>/dev/null; then
		kill "$BASE_PID" 2>/dev/null
		wait "$BASE_PID" 2>/dev/null
	fi
	[ -n "$WORK" ] || return 0
	umount "$WORK/proc" 2>/dev/null
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM

# make_base: a minbase root with apt's lists, built aside and renamed into
# place only when complete. Bounded.
make_base() {
	rm -rf --one-file-system "$BASE" "$BASE.tmp"
	timeout 900 debootstrap --variant=minbase "$SUITE" "$BASE.tmp" "$MIRROR" >"$PKG/debootstrap.log" 2>&1 &&
		timeout 300 chroot "$BASE.tmp" apt-get update -qq >>"$PKG/debootstrap.log" 2>&1 || return 1
	rm -f "$BASE.tmp"/var/cache/apt/archives/*.deb
	touch "$BASE.tmp/.lbd-base"
	mv "$BASE.tmp" "$BASE"
}

# -------------------------------------------------------------- the base root
# Built in the background while the package builds: one waits on the mirror
# and the disk, the other on the compilers.
if [ ! -f "$BASE/.lbd-base" ] || [ -n "$(find "$BASE/.lbd-base" -mtime +7)" ]; then
	if ! curl -sfI -m 10 "$MIRROR/dists/$SUITE/Release" >/dev/null; then
		t_skip "$T_NAME" "no base chroot cached and $MIRROR is not reachable"
		t_done
		exit 0
	fi
	echo "building the base chroot ($SUITE, minbase) in $BASE, in the background"
	base_start=$SECONDS
	make_base &
	BASE_PID=$!
fi

# ------------------------------------------------------------- the package
start=$SECONDS
SRC=$PKG/src/lbd
rm -rf "$PKG/src"
mkdir -p "$SRC"
(cd "$REPO_DIR" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$SRC"
if (cd "$SRC" && timeout 600 dpkg-buildpackage -us -uc -b -j2) >"$PKG/build.log" 2>&1; then
	t_pass "dpkg-buildpackage -us -uc -b ($((SECONDS - start)) s)"
else
	tail -30 "$PKG/build.log"
	t_fail "dpkg-buildpackage" "failed (log above, all of it in $PKG/build.log)"
	exit 1
fi
DEB=$(find "$PKG/src" -maxdepth 1 -name 'lbd_*_*.deb' | head -1)
if [ -n "$BASE_PID" ]; then
	if ! wait "$BASE_PID"; then
		BASE_PID=
		tail -20 "$PKG/debootstrap.log"
		t_fail "$T_NAME" "debootstrap of $SUITE from $MIRROR failed (log above)"
		exit 1
	fi
	BASE_PID=
	echo "base chroot: ready $((SECONDS - base_start)) s after it started"
fi
[ -f "$DEB" ] || { t_fail "$T_NAME" "no lbd_*.deb in $PKG/src"; exit 1; }

contents=$(dpkg-deb -c "$DEB" | awk '{ print $NF }')
miss=()
for f in ./usr/sbin/lbd ./usr/sbin/lbctl ./usr/share/man/man8/lbd.8.gz ./usr/share/man/man8/lbctl.8.gz \
	./usr/share/man/man5/lbd.conf.5.gz ./lib/systemd/system/lbd.service \
	./usr/share/bash-completion/completions/lbctl ./usr/lib/lbd/lb_xdp.bpf.o ./usr/lib/lbd/lb_tc.bpf.o \
	./etc/lbd/lbd.conf ./usr/share/doc/lbd/examples/grafana-dashboard.json; do
	grep -qx "$f" <<<"$contents" || miss+=("$f")
done
t_check "the .deb holds every file" "missing: ${miss[*]}" [ ${#miss[@]} -eq 0 ]
conffiles=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles 2>/dev/null)
t_check "/etc/lbd/lbd.conf is a conffile" "conffiles: '$conffiles'" [ "$conffiles" = /etc/lbd/lbd.conf ]

# ------------------------------------------------------ install into a copy
start=$SECONDS
WORK=$(mktemp -d "$PKG/root.XXXXXX")
cp -a "$BASE/." "$WORK/"
cp "$ARCHIVES"/*.deb "$WORK/var/cache/apt/archives/" 2>/dev/null
cp "$DEB" "$WORK/tmp/lbd.deb"
mount -t proc proc "$WORK/proc"
in_root() { timeout 300 chroot "$WORK" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
if in_root apt-get install -y -q --no-install-recommends /tmp/lbd.deb >"$PKG/install.log" 2>&1; then
	t_pass "apt-get install lbd.deb into a minbase $SUITE root ($((SECONDS - start)) s)"
else
	tail -20 "$PKG/install.log"
	t_fail "apt-get install" "failed (log above)"
	exit 1
fi
# keep what apt fetched for the next run
cp -n "$WORK"/var/cache/apt/archives/*.deb "$ARCHIVES/" 2>/dev/null

out=$(in_root lbd -t -c /etc/lbd/lbd.conf 2>&1)
t_check "lbd -t on the shipped config" "exit $?, '$out'" [ "$out" = "/etc/lbd/lbd.conf: ok" ]
out=$(in_root lbd -t 2>&1)
t_check "lbd -t reads /etc/lbd/lbd.conf by default" "'$out'" [ "$out" = "/etc/lbd/lbd.conf: ok" ]
printf 'lbd {\n    interfaces eth0;\n    mode warp;\n}\n' >"$WORK/tmp/bad.conf"
out=$(in_root lbd -t -c /tmp/bad.conf 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q '^/tmp/bad.conf:3: .*mode' <<<"$out" && ok=1 || ok=0
t_check "lbd -t rejects a broken config with FILE:LINE" "exit $rc, '$out'" [ "$ok" = 1 ]
out=$(in_root lbd -V 2>&1)
t_check "lbd -V" "'$out'" grep -qx 'lbd [0-9.]*' <<<"$out"
out=$(in_root lbctl -s /run/none.sock status 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q 'cannot reach lbd' <<<"$out" && ok=1 || ok=0
t_check "lbctl runs (no lbd: exit 1, says so)" "exit $rc, '$out'" [ "$ok" = 1 ]
unit=$(grep -E '^Exec' "$WORK/lib/systemd/system/lbd.service")
t_check "the unit runs /usr/sbin/lbd on /etc/lbd/lbd.conf" "$unit" \
	[ "$(grep -c '/usr/sbin/lbd -[tf] -c /etc/lbd/lbd.conf' <<<"$unit")" -eq 2 ]
t_check "the service is not enabled on install" "found a wants link" \
	[ ! -e "$WORK/etc/systemd/system/multi-user.target.wants/lbd.service" ]
out=$(in_root bash -c '. /usr/share/bash-completion/completions/lbctl &&
	COMP_LINE="lbctl vi" COMP_POINT=8 && _lbctl lbctl && echo "${COMPREPLY[*]}"' 2>&1)
t_check "the completion loads and completes" "'$out'" [ "$out" = vip ]
in_root dpkg --purge lbd >>"$PKG/install.log" 2>&1
left=$(ls -d "$WORK"/usr/sbin/lbd "$WORK"/usr/sbin/lbctl "$WORK"/etc/lbd 2>/dev/null)
t_check "dpkg --purge removes binaries and conffile" "left: $left" [ -z "$left" ]
echo "install and checks: $((SECONDS - start)) s"

t_done
