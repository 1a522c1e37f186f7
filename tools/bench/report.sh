# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# The report frame of `make bench`, sourced by tools/bench/run.sh and by any
# section script it starts (they share the results directory, so a section
# may run in a child process). A section records what it measured; the frame
# turns that into bench-results/<run>/REPORT.md (median, min and max over the
# repeats, ratio to the baseline, targets met or missed, plots, raw CSV) and
# into one line per section on the terminal.
#
#   bench_init DIR                          results dir (run.sh does this)
#   bench_section ID TITLE                  starts section ID (xdp, pps, ...)
#   bench_method ID TEXT...                 a paragraph: how it was measured
#   bench_sample ID FIGURE UNIT VALUE       one repeat of FIGURE
#   bench_stat ID FIGURE UNIT MED MIN MAX N [RATIO]
#                                           FIGURE already reduced by its tool
#   bench_baseline ID FIGURE BASE           ratio of FIGURE = median / BASE's
#   bench_target ID FIGURE OP VALUE TEXT    OP is <= or >=; compares FIGURE's
#                                           ratio (or its median, if it has
#                                           no baseline) with VALUE; FIGURE
#                                           A/B: A's median over B's
#   bench_plot ID UNIT CAPTION [REGEX]      bar plot (median, min..max) of the
#                                           section's figures in UNIT
#   bench_image ID FILE CAPTION             a plot the section drew itself
#   bench_csv ID FILE                       a raw CSV of the section
#   bench_markdown ID FILE                  a Markdown file of the section's
#                                           own (a table), put in as it is
#   bench_figures                           the reduced figures so far, CSV:
#                                           section,figure,unit,median,min,
#                                           max,n,baseline,ratio
#   bench_note ID TEXT...                   a line under the section's table
#   bench_progress TEXT...                  the progress line
#   bench_section_end ID                    the section's one-line summary
#   bench_report                            writes REPORT.md
#
# FIGURE names are words ([A-Za-z0-9_.@+-]); UNIT is free text without commas.
# Every function appends to a file under BENCH_RES: nothing is lost when a
# section runs in another process.

BENCH_T0=${BENCH_T0:-$SECONDS}

# bench_init DIR: DIR holds this run's results; exported for child scripts.
bench_init() {
	export BENCH_RES=$1
	mkdir -p "$BENCH_RES" || return 1
	: >"$BENCH_RES/samples.csv"
	: >"$BENCH_RES/stats.csv"
	: >"$BENCH_RES/baselines.csv"
	: >"$BENCH_RES/targets.csv"
	: >"$BENCH_RES/sections.tsv"
	: >"$BENCH_RES/extras.tsv"
}

_bench_word() { # NAME VALUE: VALUE is one figure/section word
	[[ $2 =~ ^[A-Za-z0-9_.@+-]+$ ]] && return 0
	echo "bench: bad $1 '$2' (letters, digits, _.@+- only)" >&2
	return 1
}

_bench_num() { # VALUE: a plain decimal number
	[[ $1 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] && return 0
	echo "bench: '$1' is not a number" >&2
	return 1
}

# What the frame prints also goes to summary.txt.
_bench_say() { echo "$@" | tee -a "$BENCH_RES/summary.txt"; }

bench_section() {
	_bench_word section "$1" || return 1
	printf '%s\t%s\n' "$1" "$2" >>"$BENCH_RES/sections.tsv"
	_bench_say ""
	_bench_say "== $2"
}

bench_method() { local id=$1; shift; printf '%s\tmethod\t%s\n' "$id" "$*" >>"$BENCH_RES/extras.tsv"; }
bench_note() { local id=$1; shift; printf '%s\tnote\t%s\n' "$id" "$*" >>"$BENCH_RES/extras.tsv"; _bench_say "   $*"; }
bench_image() { printf '%s\timage\t%s\t%s\n' "$1" "$(basename "$2")" "$3" >>"$BENCH_RES/extras.tsv"; }
bench_csv() { printf '%s\tcsv\t%s\n' "$1" "$(basename "$2")" >>"$BENCH_RES/extras.tsv"; }
bench_markdown() { printf '%s\tmd\t%s\n' "$1" "$(basename "$2")" >>"$BENCH_RES/extras.tsv"; }
bench_plot() { printf '%s\tplot\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-.}" >>"$BENCH_RES/extras.tsv"; }

bench_sample() {
	_bench_word figure "$2" && _bench_num "$4" || return 1
	echo "$1,$2,$3,$4" >>"$BENCH_RES/samples.csv"
}

bench_stat() {
	_bench_word figure "$2" || return 1
	local v
	for v in "$4" "$5" "$6" "$7" ${8:+"$8"}; do _bench_num "$v" || return 1; done
	echo "$1,$2,$3,$4,$5,$6,$7,${8:-}" >>"$BENCH_RES/stats.csv"
}

bench_baseline() { echo "$1,$2,$3" >>"$BENCH_RES/baselines.csv"; }

bench_target() {
	case $3 in '<='|'>=') ;; *) echo "bench: target op '$3' (want <= or >=)" >&2; return 1 ;; esac
	_bench_num "$4" || return 1
	local id=$1 fig=$2 op=$3 val=$4
	shift 4
	echo "$id,$fig,$op,$val,${*//,/;}" >>"$BENCH_RES/targets.csv"
}

# bench_progress TEXT: one line that rewrites itself on a terminal, plain
# lines elsewhere (CI logs).
bench_progress() {
	local t=$((SECONDS - BENCH_T0))
	if [ -t 1 ]; then
		printf '\r\033[K   [%d:%02d] %s' $((t / 60)) $((t % 60)) "$*"
	else
		printf '   [%d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*"
	fi
}

_bench_progress_clear() { [ -t 1 ] && printf '\r\033[K'; return 0; }

# The figures of the run, reduced: section,figure,unit,median,min,max,n,
# baseline,ratio,better. Samples are reduced here; bench_stat rows as given
# (a tool's own ratio wins: it may pair runs, which medians cannot).
_bench_figures() {
	awk -F, '
		FILENAME ~ /baselines/ { base[$1 "," $2] = $3; next }
		FILENAME ~ /stats/ {
			k = $1 "," $2
			if (!(k in seen)) order[++n] = k
			seen[k] = 1; unit[k] = $3; med[k] = $4; mn[k] = $5; mx[k] = $6
			cnt[k] = $7; own[k] = $8
			next
		}
		{
			k = $1 "," $2
			if (!(k in seen)) order[++n] = k
			seen[k] = 1; unit[k] = $3; vals[k] = vals[k] " " $4; cnt[k]++
		}
		function reduce(k,   a, m, i, j, t) {
			m = split(substr(vals[k], 2), a, " ")
			for (i = 2; i <= m; i++)
				for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			mn[k] = a[1]; mx[k] = a[m]
			med[k] = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
		}
		END {
			for (i = 1; i <= n; i++) if (vals[order[i]] != "") reduce(order[i])
			for (i = 1; i <= n; i++) {
				k = order[i]; split(k, s, ","); b = base[k]; r = own[k]
				if (r == "" && b != "" && ((s[1] "," b) in med) && med[s[1] "," b] + 0 != 0)
					r = sprintf("%.3f", med[k] / med[s[1] "," b])
				printf "%s,%s,%g,%g,%g,%d,%s,%s\n", k, unit[k], med[k], mn[k], mx[k], cnt[k], b, r
			}
		}' "$BENCH_RES/baselines.csv" "$BENCH_RES/stats.csv" "$BENCH_RES/samples.csv"
}

bench_figures() { _bench_figures; }

# The targets with their outcome: section,figure,op,value,text,measured,
# met|missed|no figure,basis. FIGURE "A/B" is the ratio of A's median to
# B's. basis: the medians the measure comes from ("A m unit / B m unit").
_bench_targets() {
	awk -F, 'function fig(k, f) { return sprintf("%s %s %s", f, (m[k] + 0 >= 100 ? sprintf("%.0f", m[k]) : sprintf("%.3g", m[k])), u[k]) }
		NR == FNR { k = $1 "," $2; m[k] = $4; u[k] = $3; bs[k] = $8
			v[k] = ($9 != "" ? $9 : $4); r[k] = ($9 != ""); next }
		{
			k = $1 "," $2; basis = ""
			if (split($2, ab, "/") == 2) {
				a = $1 "," ab[1]; b = $1 "," ab[2]
				if ((a in m) && (b in m) && m[b] + 0 != 0) {
					v[k] = sprintf("%.3f", m[a] / m[b]); r[k] = 1
					basis = fig(a, ab[1]) " / " fig(b, ab[2])
				}
			} else if ((k in m) && bs[k] != "" && (($1 "," bs[k]) in m)) {
				basis = fig(k, $2) " / " fig($1 "," bs[k], bs[k])
			} else if (k in m) {
				basis = fig(k, $2)
			}
			if (!(k in v)) { print $0 ",,no figure,"; next }
			x = v[k]; ok = ($3 == "<=" ? x + 0 <= $4 + 0 : x + 0 >= $4 + 0)
			printf "%s,%s%s,%s,%s\n", $0, x, (r[k] ? "x" : ""), (ok ? "met" : "missed"), basis
		}' <(_bench_figures) "$BENCH_RES/targets.csv"
}

# bench_section_end ID: one line: the section's targets, or its figures
# with their ratios when it has none.
bench_section_end() {
	_bench_progress_clear
	local line
	line=$(_bench_targets | awk -F, -v id="$1" '$1 == id {
			printf "%s%s: %s (target %s %s%s): %s", sep, $5, $6, $3, $4, ($6 ~ /x$/ ? "x" : ""), toupper($7)
			sep = "; " }')
	[ -n "$line" ] || line=$(_bench_figures | awk -F, -v id="$1" '$1 == id && n < 4 {
			printf "%s%s %g %s%s", sep, $2, $4, $3, ($9 != "" ? sprintf(" (%.2fx %s)", $9, $8) : "")
			sep = "; "; n++ }')
	_bench_say "== $1: ${line:-no figures}"
}

_bench_plot() { # ID UNIT CAPTION REGEX FILE: bars of median with min..max
	local dat=$BENCH_RES/.plot.$$.dat
	_bench_figures | awk -F, -v id="$1" -v u="$2" -v re="$4" \
		'$1 == id && $3 == u && $2 ~ re { printf "%s %s %s %s\n", $2, $4, $5, $6 }' >"$dat"
	if [ -s "$dat" ]; then
		gnuplot <<-EOF 2>/dev/null
			set terminal pngcairo size 720,400 noenhanced
			set output "$BENCH_RES/$5"
			set title "$3"
			set style fill solid 0.7 border -1
			set boxwidth 0.6
			set yrange [0:*]
			set ylabel "$2"
			set xtics rotate by -30
			set grid ytics
			plot "$dat" using 0:2:xtic(1) with boxes notitle, \
			     "" using 0:2:3:4 with yerrorbars lc rgb "black" pt -1 notitle
		EOF
	fi
	rm -f "$dat"
	[ -s "$BENCH_RES/$5" ]
}

_md_num() { awk -v v="$1" 'BEGIN { if (v == "") print ""; else if (v + 0 >= 100 || v + 0 <= -100) printf "%.0f", v; else printf "%.3g", v }'; }

# bench_report: REPORT.md in BENCH_RES from everything recorded.
bench_report() {
	local out=$BENCH_RES/REPORT.md figs id title n=0 plotn=0
	figs=$(_bench_figures)
	{
		echo "# lbd benchmark report"
		echo ""
		echo "| | |"
		echo "|---|---|"
		echo "| Date | $(date -u +%FT%TZ) |"
		echo "| Machine | $(hostname) ($(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)) |"
		echo "| CPU | $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo) |"
		echo "| Kernel | $(uname -r) |"
		echo "| Commit | $(git -C "${REPO_DIR:-.}" describe --always --dirty 2>/dev/null || echo unknown) |"
		echo "| Command | \`${BENCH_CMD:-make bench}\` |"
		echo "| Duration | $(((SECONDS - BENCH_T0) / 60)) min $(((SECONDS - BENCH_T0) % 60)) s |"
		echo ""
		echo "Every figure is the median over its repeats, with the minimum and the"
		echo "maximum; a ratio is this figure's median over its baseline's median, both"
		echo "measured in this run. Absolute numbers depend on the machine (and on what"
		echo "else it was running); compare ratios."
		echo ""
		echo "## Targets"
		echo ""
		echo "| Section | Target | Measured | Result |"
		echo "|---|---|---|---|"
		_bench_targets | awk -F, '{ printf "| %s | %s: %s %s %s%s | %s%s | %s |\n", $1, $5, $2, $3, $4,
			($6 ~ /x$/ ? "x" : ""), ($6 == "" ? "-" : $6), ($8 == "" ? "" : " (" $8 ")"),
			($7 == "met" ? "met" : "**" $7 "**") }'
		while IFS=$'\t' read -r id title; do
			n=$((n + 1))
			echo ""
			echo "## $n. $title"
			echo ""
			awk -F'\t' -v id="$id" '$1 == id && $2 == "method" { print $3; print "" }' "$BENCH_RES/extras.tsv"
			if grep -q "^$id," <<<"$figs"; then
				echo "| Figure | Unit | Median | Min | Max | Repeats | Baseline | Ratio |"
				echo "|---|---|---:|---:|---:|---:|---|---:|"
				while IFS=, read -r _ f u med mn mx cnt b r; do
					echo "| $f | $u | $(_md_num "$med") | $(_md_num "$mn") | $(_md_num "$mx") | $cnt | ${b:--} | ${r:+$(_md_num "$r")x} |"
				done < <(grep "^$id," <<<"$figs")
				echo ""
			else
				echo "No figures (see the notes and the terminal output)."
				echo ""
			fi
			_bench_targets | awk -F, -v id="$id" '$1 == id { printf "- Target %s (%s %s%s): %s, %s\n", $5, $3, $4,
				($6 ~ /x$/ ? "x" : ""), ($6 == "" ? "-" : $6), ($7 == "met" ? "met" : "**" $7 "**") }'
			awk -F'\t' -v id="$id" '$1 == id && $2 == "note" { print "- " $3 }' "$BENCH_RES/extras.tsv"
			while IFS=$'\t' read -r _ kind a b c; do
				case $kind in
				plot)
					plotn=$((plotn + 1))
					command -v gnuplot >/dev/null &&
						_bench_plot "$id" "$a" "$b" "$c" "$id-$plotn.png" &&
						printf '\n![%s](%s)\n' "$b" "$id-$plotn.png" ;;
				image) [ -s "$BENCH_RES/$a" ] && printf '\n![%s](%s)\n' "$b" "$a" ;;
				csv) [ -s "$BENCH_RES/$a" ] && printf '\nRaw: [%s](%s)\n' "$a" "$a" ;;
				md) [ -s "$BENCH_RES/$a" ] && { echo; cat "$BENCH_RES/$a"; } ;;
				esac
			done < <(awk -F'\t' -v id="$id" '$1 == id && $2 ~ /^(plot|image|csv|md)$/' "$BENCH_RES/extras.tsv")
		done <"$BENCH_RES/sections.tsv"
		echo ""
		echo "## Raw data"
		echo ""
		echo "Every repeat: [samples.csv](samples.csv) (section,figure,unit,value);"
		echo "figures reduced by their tools: [stats.csv](stats.csv); the terminal"
		echo "output: [summary.txt](summary.txt)."
	} >"$out"
	_bench_figures >"$BENCH_RES/figures.csv"
}
