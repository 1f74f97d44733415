#!/usr/bin/env bash
# Runs every benchmark: the bench/*.sh scripts and the bench programs built into BUILD_DIR/bench/,
# each with VELTRIX_BIN pointing at BUILD_DIR/veltrix. Output goes to stdout (Markdown tables
# where the benchmark prints them); the final numbers go into docs/benchmarks.md by hand.
# Usage: scripts/run-bench.sh BUILD_DIR [NAME_FILTER]
set -u
build=${1:?usage: run-bench.sh BUILD_DIR [FILTER]}
filter=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build=$top/$build ;; esac
export VELTRIX_BIN="$build/veltrix"
export VX_TOP="$top"
fail=0
for b in "$top"/bench/*.sh "$build"/bench/*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	case "$b" in *.d|*.o) continue ;; esac
	[ -n "$filter" ] && case "$b" in *"$filter"*) ;; *) continue ;; esac
	echo "=== $(basename "$b")"
	if ! "$b"; then
		echo "=== $(basename "$b"): FAILED"
		fail=1
	fi
done
exit $fail
