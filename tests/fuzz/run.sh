#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target of $FUZZ_O for FUZZ_SECONDS seconds,
# starting from the seeds in tests/fuzz/NAME/ and the corpus it grew before
# ($FUZZ_O/corpus/NAME/, which is where new inputs go). FUZZ_TARGETS=a,b
# chooses targets. Ends with one line per target (executions, exec/s, new
# inputs, crashes) and fails when any target crashed: the crashing input is
# $FUZZ_O/crash/NAME-*; add it to tests/fuzz/NAME/ with the fix, and
# `make test` replays it from then on. The bpf target needs root.
set -u
cd "$(dirname "$0")/../.."
FUZZ_O=${FUZZ_O:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-}
root=$PWD
failed=0
summary=()

mkdir -p "$FUZZ_O/crash" "$FUZZ_O/logs"
# An empty working directory: config includes resolve in it.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

for bin in "$FUZZ_O"/fuzz_*; do
	name=${bin##*/fuzz_}
	[ -z "$FUZZ_TARGETS" ] || [[ ",$FUZZ_TARGETS," == *",$name,"* ]] || continue
	if [ "$name" = bpf ] && [ "$(id -u)" -ne 0 ]; then
		echo "!!! SKIPPED: fuzz target bpf needs root (BPF_PROG_TEST_RUN)"
		summary+=("$(printf '%-8s SKIPPED (needs root)' "$name")")
		continue
	fi
	corpus=$FUZZ_O/corpus/$name
	log=$FUZZ_O/logs/$name.log
	mkdir -p "$corpus"
	before=$(find "$corpus" -type f | wc -l)
	cmd=("$root/$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048
	     -max_len=4096 -print_final_stats=1 -artifact_prefix="$root/$FUZZ_O/crash/$name-"
	     "$root/$corpus" "$root/tests/fuzz/$name")
	echo "=== fuzz $name: ${cmd[*]}"
	(cd "$work" && timeout --kill-after=10 $((FUZZ_SECONDS + 120)) "${cmd[@]}") \
		</dev/null >"$log" 2>&1
	rc=$?
	execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
	rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
	new=$(( $(find "$corpus" -type f | wc -l) - before ))
	if [ $rc -ne 0 ]; then
		failed=1
		grep -E 'ERROR|invariant|SUMMARY|Test unit written|timeout' "$log" | head -20
		echo "FAIL: fuzz $name: exit $rc, log $log"
	fi
	summary+=("$(printf '%-8s %4ss  %10s execs  %8s exec/s  %5s new inputs  %s' "$name" \
		"$FUZZ_SECONDS" "${execs:-?}" "${rate:-?}" "$new" \
		"$([ $rc -eq 0 ] && echo ok || echo CRASH)")")
done

echo
echo "fuzz summary (FUZZ_SECONDS=$FUZZ_SECONDS):"
printf '  %s\n' "${summary[@]}"
exit $failed
