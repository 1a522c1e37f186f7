#!/usr/bin/env bash
# Runs every test suite and prints one closing line:
#   tests: N passed, N failed, N skipped
# Unit tests always run; BPF and network suites need root and are reported
# as skipped (loudly) otherwise. The pkg suite (docs, completion, the Debian
# package) always runs; its scripts skip, loudly, the cases that need root.
# Set TESTS=unit,bpf,net,pkg to choose suites and FILTER=substring to choose
# test programs/scripts.
set -u
O=${O:-build}
TESTS=${TESTS:-unit,bpf,net,pkg}
FILTER=${FILTER:-}
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
failed_names=()
log=$(mktemp)
# Sanitizer reports (make test SAN=1) go to files, one per process, so that
# a report of a process no test waits for (lbd in a network test, at exit
# too: leaks) fails the test that ran it. Anyone may write there: some
# tests run lbd as another user.
san=$(mktemp -d); chmod 1777 "$san"
trap 'rm -f "$log"; rm -rf "$san"' EXIT
export ASAN_OPTIONS="log_path=$san/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$san/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Count cmocka's summary lines and PASS:/FAIL:/SKIP: lines of shell suites.
tally() { # name exit-code
	local p f s
	p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END{print s+0}')
	f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$(NF-1)} END{print s+0}')
	s=$(grep -Eo '^\[  SKIPPED \] [0-9]+' "$log" | awk '{s+=$NF} END{print s+0}')
	p=$((p + $(grep -c '^PASS: ' "$log")))
	f=$((f + $(grep -c '^FAIL: ' "$log")))
	s=$((s + $(grep -c '^SKIP: ' "$log")))
	if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or exited non-zero without saying which case failed
		echo "FAIL: $1 exited with status $2"
	fi
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failed_names+=("$1")
}

run() { # name command...
	local name=$1; shift
	[ -z "$FILTER" ] || [[ "$name" == *"$FILTER"* ]] || return 0
	echo "=== $name"
	timeout --kill-after=10 "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1
	local rc=$? r
	for r in "$san"/*; do
		[ -f "$r" ] || continue
		{ cat "$r"; echo "FAIL: $name: sanitizer report (${r##*/})"; } >>"$log"
		rm -f "$r"
	done
	cat "$log"
	[ $rc -eq 124 ] && echo "FAIL: $name timed out"
	tally "$name" "$rc"
}

want() { [[ ",$TESTS," == *",$1,"* ]]; }

# A fuzz target's corpus (its seeds and every crash once found) replayed
# through the ordinary build: tests/fuzz/run.sh explains.
replay() { # target
	local t=$O/tests/fuzz/replay_$1
	[ -x "$t" ] && run "fuzz/$1" "$t" "tests/fuzz/$1"
}

if want unit; then
	for t in "$O"/tests/unit/test_*; do
		[ -x "$t" ] && run "unit/$(basename "$t")" "$t"
	done
	for t in "$O"/tests/fuzz/replay_*; do
		[ "${t##*replay_}" = bpf ] || replay "${t##*replay_}"
	done
fi

if [ "$(id -u)" -ne 0 ]; then
	for s in bpf net; do
		want $s || continue
		n=$(ls tests/$s/test_* 2>/dev/null | wc -l)
		echo
		echo "!!! SKIPPED: the $s suite ($n programs) needs root (BPF_PROG_TEST_RUN, namespaces)."
		echo "!!! Run 'sudo make test' to run it. CI runs everything as root."
		skipped=$((skipped + n))
	done
else
	if want bpf; then
		for t in "$O"/tests/bpf/test_*; do
			[ -x "$t" ] && run "bpf/$(basename "$t")" "$t"
		done
		replay bpf
	fi
	if want net; then
		for t in tests/net/test_*.sh; do
			[ -f "$t" ] && run "net/$(basename "$t" .sh)" env O="$O" bash "$t"
		done
	fi
fi

if want pkg; then
	# test_deb's first run debootstraps a base root while the package builds
	# (each bounded inside): 5-6 min on a loaded 2-core machine.
	for t in tests/pkg/test_*.sh; do
		[ -f "$t" ] && TEST_TIMEOUT=${TEST_TIMEOUT:-1200} run "pkg/$(basename "$t" .sh)" env O="$O" bash "$t"
	done
fi

echo
[ ${#failed_names[@]} -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
