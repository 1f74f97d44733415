#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time from its seed corpus
# (tests/fuzz/corpus/<target>/), printing "ok - <target>" or "not ok - <target>" (TAP).
# Usage: scripts/run-fuzz.sh [SECONDS_PER_TARGET]
set -u
secs=${1:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
if ! make --no-print-directory fuzz >build-fuzz.log 2>&1; then
	cat build-fuzz.log; rm -f build-fuzz.log
	echo "not ok - building the fuzz targets"
	exit 1
fi
rm -f build-fuzz.log
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
for t in build/fuzz/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	mkdir -p "$work/$name"
	seeds=tests/fuzz/corpus/$name
	[ -d "$seeds" ] || seeds=
	if timeout -k 5 $((secs + 60)) "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$work/" "$work/$name" $seeds >"$work/$name.log" 2>&1; then
		echo "ok - $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" || grep -Eo '#[0-9]+ +DONE' "$work/$name.log" | head -1))"
	else
		tail -n 40 "$work/$name.log"
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null | while read -r a; do
			echo "artifact: $a"; od -c "$a" | head -20
		done
		echo "not ok - $name"
		fail=1
	fi
done
exit $fail
