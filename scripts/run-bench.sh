#!/usr/bin/env bash
# Runs every benchmark: each program in BUILD_DIR/bench/ and each bench/*.sh script, one after
# the other (benchmarks must not compete for the CPU), and prints their output under a header.
# Usage: scripts/run-bench.sh BUILD_DIR [NAME_FILTER]
# Env: BENCH_TIMEOUT (seconds per benchmark, default 600); each benchmark reads its own knobs.
set -u
build=${1:?usage: run-bench.sh BUILD_DIR [FILTER]}
filter=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build=$top/$build ;; esac
export VELTRIX_BIN="$build/veltrix"
export VX_TOP="$top"
failed=0
for b in "$build"/bench/* "$top"/bench/*.sh; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	case "$b" in *.d|*.o) continue ;; esac
	[ -n "$filter" ] && case "$b" in *"$filter"*) ;; *) continue ;; esac
	echo "== $(basename "$b")"
	if ! timeout -k 10 "${BENCH_TIMEOUT:-600}" "$b"; then
		echo "!! $(basename "$b") failed"
		failed=1
	fi
done
exit $failed
