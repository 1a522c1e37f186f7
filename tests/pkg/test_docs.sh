#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The man pages and the README against the code (no root needed):
#   - lbd(8), lbctl(8), lbd.conf(5): no mandoc -Tlint warning, and man(1)
#     renders each without a groff warning
#   - lbd.conf(5) has an entry for every directive of userspace/config.c's
#     directive tables, and names every backend and health_check option
#   - lbd(8) names every long option of userspace/lbd.c
#   - lbctl(8) names every command of lbctl's table and every subcommand of
#     cmd_remote.c
#   - the README names every metric family lbd exports
#   - examples/lbd.service passes systemd-analyze verify
. "$(dirname "$0")/../net/lib.sh"

t_require_cmd mandoc man awk
cd "$REPO_DIR" || exit 1

PAGES=(tools/lbd.8 tools/lbctl.8 tools/lbd.conf.5)

for p in "${PAGES[@]}"; do
	out=$(mandoc -Tlint -Wwarning "$p" 2>&1)
	t_check "lint $(basename "$p")" "mandoc: $out" [ -z "$out" ]
	# man -l through groff: warnings (bad requests, overlong lines) on stderr
	out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$p" 2>&1 >/dev/null)
	t_check "groff $(basename "$p")" "man -l: $out" [ -z "$out" ]
done

# missing WHAT PAGE NAME...: the NAMEs that PAGE lacks, one line. A name
# counts when it starts an entry (.B/.BI/.BR NAME) or, for options written
# "key=", appears with its "=".
missing() {
	local what=$1 page=$2 n absent=()
	shift 2
	for n in "$@"; do
		case $what in
		entry) grep -Eq "^\.(B|BI|BR) \"?$n( |\"|$)" "$page" ;;
		option) grep -Fq "$n=" "$page" ;;
		word) grep -Fq -- "$n" "$page" ;;
		esac || absent+=("$n")
	done
	echo "${absent[*]}"
}

# The directive tables: { "name", min, max, repeat, d_fn }.
mapfile -t dirs < <(awk '/^static const struct directive [a-z]+_dirs\[\] = \{/ { on = 1; next }
	on && /^\};/ { on = 0 } on && match($0, /\{ "[a-z_]+"/) { print substr($0, RSTART + 3, RLENGTH - 4) }' \
	userspace/config.c)
t_check "config.c has directive tables" "found ${#dirs[@]} directives" [ "${#dirs[@]}" -ge 30 ]
miss=$(missing entry tools/lbd.conf.5 "${dirs[@]}" include)
t_check "lbd.conf(5) has every directive (${#dirs[@]})" "missing: $miss" [ -z "$miss" ]

# Backend options (be_opts[]) and health_check keys (keys[]); "vip" is a
# control-command option only ("backup" is a flag, written bare).
mapfile -t opts < <(awk '/be_opts\[O_N\] = \{|keys\[K_N\] = \{/ { on = 1; next } on && /\};/ { on = 0 }
	on { while (match($0, /"[a-z_]+"/)) { print substr($0, RSTART + 1, RLENGTH - 2); $0 = substr($0, RSTART + RLENGTH) } }' \
	userspace/config.c | grep -vx 'vip\|backup')
t_check "config.c has option tables" "found ${#opts[@]} options" [ "${#opts[@]}" -ge 15 ]
miss=$(missing option tools/lbd.conf.5 "${opts[@]}")
t_check "lbd.conf(5) has every backend and health_check option (${#opts[@]})" "missing: $miss" [ -z "$miss" ]

# lbd's long options, as the man page escapes them (\-\-pid\-file).
mapfile -t longs < <(grep -oE '\{ "[a-z-]+", (no|required)_argument' userspace/lbd.c | cut -d'"' -f2)
miss=$(missing word tools/lbd.8 "${longs[@]//-/\\-}")
[ "${#longs[@]}" -ge 5 ] || miss="(the option table of lbd.c was not found)"
t_check "lbd(8) has every option (${#longs[@]})" "missing: $miss" [ -z "$miss" ]

# lbctl's commands ({ "name", cmd_fn, "summary" }) and remote subcommands.
mapfile -t cmds < <(grep -oE '^\s*\{ "[a-z]+",\s+cmd_[a-z_]+,' tools/lbctl/cli.c | cut -d'"' -f2)
mapfile -t subs < <(awk '/^static const struct sub [a-z]+_subs\[\] = \{/ { c = $4; sub(/_subs.*/, "", c); on = 1; next }
	on && /^\};/ { on = 0 } on && match($0, /\{ "[a-z]+"/) { print c " " substr($0, RSTART + 3, RLENGTH - 4) }' \
	tools/lbctl/cmd_remote.c)
miss=$(missing entry tools/lbctl.8 "${cmds[@]}" "${subs[@]}")
# "worker start NAME, worker stop NAME" is one entry: accept the name anywhere
read -ra again <<<"$miss"
[ -n "$miss" ] && miss=$(missing word tools/lbctl.8 "${again[@]}")
[ "${#cmds[@]}" -ge 5 ] && [ "${#subs[@]}" -ge 10 ] || miss="(the command tables were not found)"
t_check "lbctl(8) has every command and subcommand (${#cmds[@]} + ${#subs[@]})" "missing: $miss" \
	[ -z "$miss" ]

# Metric families: lb_metrics_head(o, "name", ...) and the backend table.
mapfile -t fams < <(grep -ohE '"lbd_[a-z_]+"' userspace/*.c | tr -d '"' | sort -u)
miss=$(missing word README.md "${fams[@]}")
[ "${#fams[@]}" -ge 10 ] || miss="(no metric families found in userspace/)"
t_check "README names every metric family (${#fams[@]})" "missing: $miss" [ -z "$miss" ]

# The systemd unit: systemd-analyze verify, with lbd at its built path and
# the man pages its Documentation= names findable.
if ! command -v systemd-analyze >/dev/null; then
	t_skip "systemd-analyze verify lbd.service" "systemd-analyze not installed"
elif [ ! -x "$LBD" ]; then
	t_skip "systemd-analyze verify lbd.service" "$LBD not built"
else
	tmp=$(mktemp -d)
	mkdir -p "$tmp/man/man8" "$tmp/man/man5"
	cp tools/lbd.8 tools/lbctl.8 "$tmp/man/man8/"
	cp tools/lbd.conf.5 "$tmp/man/man5/"
	sed "s|/usr/local/sbin/lbd|$LBD|g" examples/lbd.service >"$tmp/lbd.service"
	out=$(MANPATH=$tmp/man timeout 30 systemd-analyze verify "$tmp/lbd.service" 2>&1)
	rc=$?
	rm -rf "$tmp"
	[ $rc -eq 0 ] && [ -z "$out" ] && rc=ok
	t_check "systemd-analyze verify lbd.service" "exit $rc: $out" [ "$rc" = ok ]
fi

t_done
