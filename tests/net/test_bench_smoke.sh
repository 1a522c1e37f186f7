#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The plumbing of `make bench`, cheaply, so it cannot rot: the report
# frame's arithmetic on known samples (median, min, max, ratio, targets),
# then tools/bench/run.sh with QUICK=1 and tiny settings over the sections
# that take seconds, and REPORT.md parsed: header, target lines, one table
# per section whose every row is numeric and ordered min <= median <= max,
# every embedded plot present.
set -u
. "$(dirname "$0")/lib.sh"
t_require_root
t_require_cmd gnuplot column
t_require_bin "$O/tools/bench_maglev" "$O/tools/bench_xdp" "$O/tools/lbgen"

TMP=$(mktemp -d /tmp/lbd-bench-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- the frame
(
	set -e
	. "$REPO_DIR/tools/bench/report.sh"
	bench_init "$TMP/frame"
	bench_section s "Synthetic" >/dev/null
	for v in 5 1 3; do bench_sample s a ops/s "$v"; done
	for v in 2 1 4 3; do bench_sample s b ops/s "$v"; done   # median 2.5
	bench_stat s c ns 7 6 9 5 0.5
	bench_baseline s a b
	bench_target s a '>=' 1.0 "a over b"
	bench_target s a '<=' 1.0 "a over b again"
	bench_target s c '<=' 0.4 "c own ratio"
	bench_target s b/a '<=' 1.0 "b over a"
	bench_target s nothing '>=' 1 "no such figure"
	echo "| own | table |" >"$TMP/frame/own.md"
	bench_markdown s "$TMP/frame/own.md"
	bench_sample s 'bad name' ops/s 1 2>/dev/null && exit 1
	bench_sample s a ops/s 12abc 2>/dev/null && exit 1
	bench_report
) >"$TMP/frame.out" 2>&1
t_check frame_runs "the frame failed: $(tail -3 "$TMP/frame.out")" test -s "$TMP/frame/REPORT.md"
figs=$(cat "$TMP/frame/figures.csv" 2>/dev/null)
t_check frame_median_odd "want s,a,ops/s,3,1,5,3,b,1.200; got: $figs" \
	grep -qx 's,a,ops/s,3,1,5,3,b,1.200' <<<"$figs"
t_check frame_median_even "want s,b,ops/s,2.5,1,4,4; got: $figs" \
	grep -qx 's,b,ops/s,2.5,1,4,4,,' <<<"$figs"
t_check frame_stat_own_ratio "want s,c,ns,7,6,9,5,,0.5; got: $figs" \
	grep -qx 's,c,ns,7,6,9,5,,0.5' <<<"$figs"
md=$(cat "$TMP/frame/REPORT.md" 2>/dev/null)
t_check frame_target_met "a/b 1.2x >= 1.0 should be met" \
	grep -q '^- Target a over b (>= 1.0x): 1.200x, met$' <<<"$md"
t_check frame_target_missed "a/b 1.2x <= 1.0 should be missed" \
	grep -q '^- Target a over b again (<= 1.0x): 1.200x, \*\*missed\*\*$' <<<"$md"
t_check frame_target_quotient "b/a 2.5/3 should be 0.833x, met" \
	grep -q '^- Target b over a (<= 1.0x): 0.833x, met$' <<<"$md"
t_check frame_target_missing "a target without its figure says so" \
	grep -q '^- Target no such figure (>= 1): -, \*\*no figure\*\*$' <<<"$md"
t_check frame_markdown "a section's own table is in the report" grep -qx '| own | table |' <<<"$md"
t_check frame_bad_input_refused "a bad figure name or value reached the samples" \
	test "$(wc -l <"$TMP/frame/samples.csv")" -eq 7

# ---------------------------------------------------------------- lbgen
# The generator's flows are what it says: lb's conntrack holds one entry
# for each (unanswered UDP flows stay for 30 s).
topo_up 1 || { t_fail topology "topo_up failed"; t_done; exit 1; }
trap 'topo_down; rm -rf "$TMP"' EXIT
_gro_refresh "$NS_CLIENT" eth0 # frames into lb need it, see tools/bench/run.sh
_gro_refresh "$NS_LB" eth0
in_lb nft add table ip smoke
in_lb nft add chain ip smoke counting '{ type filter hook forward priority 0; }'
in_lb nft add rule ip smoke counting ct state new counter # conntrack on in lb
gen() { # lbgen ARGS... to backend 1 through lb
	in_client "$O/tools/lbgen" -i eth0 -s "$CLIENT_ADDR" -d "${BE_ADDRS[1]}:3000" \
		--dmac "$(ip -n "$NS_LB" -br link show eth0 | awk '{ print $3 }')" "$@"
}
flows() { in_lb cat /proc/sys/net/netfilter/nf_conntrack_count; }
out=$(gen -f 300 -t 0.1 -c 0)
t_check lbgen_flows "300 flows sent ($out): lb tracks $(flows)" test "$(flows)" -eq 300
out=$(gen -f 300 -n 1000 -r 2000 -t 0.25 -c 0)
new=$(grep -o 'new=[0-9]*' <<<"$out" | cut -d= -f2)
t_check lbgen_new_flows "every frame a new flow ($out): lb tracks $(flows), want 300 + $new" \
	test "${new:-0}" -gt 100 -a "$(flows)" -eq $((300 + ${new:-0}))
topo_down
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- a quick run
# shellcheck disable=SC2054 # commas inside values
# pps with the two contenders that need no lbd start (seconds each)
SMOKE_ENV=(QUICK=1 BENCH_ONLY=maglev,pps PPS_CONTENDERS=forward,nftables PPS_SECONDS=0.3
	BENCH_RESULTS="$TMP/res")
start=$SECONDS
env "${SMOKE_ENV[@]}" O="$O" timeout 120 "$REPO_DIR/tools/bench/run.sh" >"$TMP/run.out" 2>&1
rc=$?
t_check run_exits_0 "run.sh exited $rc: $(tail -5 "$TMP/run.out")" test "$rc" -eq 0
echo "quick run: $((SECONDS - start)) s"
R=$TMP/res/latest/REPORT.md
t_check report_written "no $R" test -s "$R"
# lbgen's frames are valid: the kernel forwards every one of them
runs=$(cat "$TMP/res/latest/pps-runs.csv" 2>/dev/null)
t_check generator_forwarded "want forward,1 with received >= 90% of sent > 0: $runs" \
	awk -F, '$1 == "forward" && $2 == 1 && $4 > 0 && $5 >= $4 * 0.9 { ok = 1 } END { exit !ok }' <<<"$runs"

# report_ok FILE: the checks a reader relies on; prints what is wrong.
report_ok() {
	awk -F'|' -v dir="$(dirname "$1")" '
		function num(x) { gsub(/ /, "", x); return x ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ }
		function bad(m) { print FILENAME ":" FNR ": " m; err = 1 }
		/^\| (Date|Machine|CPU|Kernel|Command) \|/ { head[$2]++ }
		/^## Targets/ { sec = "targets"; next }
		/^## [0-9]+\. / { sec = "s"; nsec++; next }
		/^## / { sec = ""; next }
		sec == "targets" && /^\| [a-z]/ && $2 !~ /Section/ {
			ntarget++
			if ($5 !~ /^ (met|\*\*missed\*\*|\*\*no figure\*\*) $/) bad("target without met/missed: " $0)
		}
		sec == "s" && /^\| [^F-]/ && $2 !~ /^ Figure/ {
			nrow++
			if (!num($4) || !num($5) || !num($6) || !num($7)) bad("not a number: " $0)
			else if ($5 + 0 > $4 + 0 || $4 + 0 > $6 + 0) bad("min <= median <= max does not hold: " $0)
			if ($9 !~ /^ *([0-9.]+x)? *$/) bad("ratio: " $0)
		}
		/^!\[/ {
			f = $0; sub(/.*\(/, "", f); sub(/\).*/, "", f)
			if ((getline line < (dir "/" f)) <= 0) bad("embedded plot missing: " f)
			nplot++
		}
		END {
			if (length(head) < 5) bad("header lacks Date/Machine/CPU/Kernel/Command")
			if (!nsec) bad("no section")
			if (!nrow) bad("no figure row")
			if (!ntarget) bad("no target line")
			if (!nplot) bad("no plot")
			exit err
		}' "$1"
}
out=$(report_ok "$R" 2>&1)
t_check report_parses "$out" test -z "$out"
t_check summary_line "no one-line summary per section on the terminal" \
	grep -q '^== maglev: ' "$TMP/run.out"
t_check summary_line_pps "no pps summary line" grep -q '^== pps: ' "$TMP/run.out"
t_check progress_line "no progress line" grep -q '^   \[[0-9]*:[0-9][0-9]\] ' "$TMP/run.out"
t_done
