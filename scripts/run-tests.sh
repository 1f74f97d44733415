#!/usr/bin/env bash
# Runs every test program of a build directory, each in its own process group with a timeout,
# counts TAP results ("ok"/"not ok" lines), prints the logs of failures, and ends with
#   N passed, N failed
# Usage: scripts/run-tests.sh BUILD_DIR [NAME_FILTER]
# Env: JOBS (parallel test programs, default 2), TEST_TIMEOUT (seconds per program, default 300),
#      FUZZ_SECONDS (per fuzz target in the bounded fuzz run; 0 skips it).
set -u
build=${1:?usage: run-tests.sh BUILD_DIR [FILTER]}
filter=${2:-}
jobs=${JOBS:-2}
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$build/test-logs
rm -rf "$logs" && mkdir -p "$logs"

export VELTRIX_BIN="$top/$build/veltrix"
export VX_TOP="$top"
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
export TMPDIR=${TMPDIR:-/tmp}

list=$logs/list
: >"$list"
for t in "$build"/tests/unit/* "$build"/tests/integration/* "$top"/tests/integration/*.sh; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	case "$t" in *.d|*.o) continue ;; esac
	[ -n "$filter" ] && case "$t" in *"$filter"*) ;; *) continue ;; esac
	echo "$t" >>"$list"
done

# One test program: a new process group via `timeout`, which kills the whole group on expiry;
# whatever the program left behind in its group is killed afterwards too.
run_one() {
	t=$1
	name=$(basename "$t")
	log=$logs/$name.log
	start=$(date +%s)
	timeout -k 10 "${TEST_TIMEOUT:-300}" "$t" >"$log" 2>&1 &
	pid=$!
	wait $pid
	rc=$?
	kill -9 -- "-$pid" 2>/dev/null
	end=$(date +%s)
	echo "$rc $((end - start))" >"$log.rc"
}

i=0
while read -r t; do
	run_one "$t" &
	i=$((i + 1))
	if [ "$i" -ge "$jobs" ]; then
		wait -n
		i=$((i - 1))
	fi
done <"$list"
wait

passed=0
failed=0
while read -r t; do
	name=$(basename "$t")
	log=$logs/$name.log
	read -r rc secs <"$log.rc"
	ok=$(grep -c '^ok ' "$log")
	nok=$(grep -c '^not ok ' "$log")
	status="ok"
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		nok=1 # crashed, timed out (124/137) or a sanitizer report: count the program as failed
	fi
	[ "$nok" -gt 0 ] && status="FAILED (exit $rc)"
	passed=$((passed + ok))
	failed=$((failed + nok))
	printf '%-40s %4d passed %3d failed %4ss  %s\n' "$name" "$ok" "$nok" "$secs" "$status"
	if [ "$nok" -gt 0 ]; then
		echo "---- $log"
		tail -n 80 "$log"
		echo "----"
	fi
done <"$list"

if [ "${FUZZ_SECONDS:-10}" != 0 ] && [ -z "$filter" ]; then
	fz=$logs/fuzz.log
	if "$top/scripts/run-fuzz.sh" "${FUZZ_SECONDS:-10}" >"$fz" 2>&1; then
		n=$(grep -c '^ok ' "$fz")
		passed=$((passed + n))
		printf '%-40s %4d passed %3d failed\n' "fuzz (bounded run)" "$n" 0
	else
		n=$(grep -c '^not ok ' "$fz")
		[ "$n" -eq 0 ] && n=1
		failed=$((failed + n))
		echo "---- $fz"
		tail -n 60 "$fz"
		echo "----"
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
