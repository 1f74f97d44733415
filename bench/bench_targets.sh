#!/usr/bin/env bash
# DESIGN's data-plane targets, each a scenario under bench/scenarios/ run on both stacks
# (static HAProxy configuration and Veltrix), RUNS times, one after the other:
#   drain.yaml   failed requests while one of 4 backends is drained at 2,000 req/s   (target 0)
#   kill.yaml    failed requests when one of 4 backends is killed -9 at 2,000 req/s  (target <= 0.1%)
#   hetero.yaml  throughput within the SLO, capacities 1:2:4, vs equal-weight round robin (target >= 2x)
# Prints one line per run (the scenario's "whole run" summary) and the medians.
# Env: RUNS (3), VELTRIX_BIN. Loopback only; each run tears its stack down.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VELTRIX_BIN:-$top/build/release/veltrix}
runs=${RUNS:-3}
[ -x "$bin" ] || { echo "no veltrix binary at $bin (run make)"; exit 1; }

median() { sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "?"}'; }

# run SCENARIO STACK -> "failed_pct sustained_rps" per run, on stdout; the summary on stderr
run_one() {
	local out
	out=$("$bin" scenario run --quiet --stack "$2" "$top/bench/scenarios/$1.yaml" 2>/dev/null | grep 'whole run:')
	echo "  $1 $2: ${out#  whole run: }" >&2
	echo "$out" | sed -E 's/.*failed \(([0-9.]+)%\).*sustained ([0-9]+) req\/s.*/\1 \2/'
}

echo "command: RUNS=$runs bench/bench_targets.sh   ($(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg))"
echo "| scenario | stack | failed % (median) | sustained req/s (median) |"
echo "|---|---|---|---|"
for sc in drain kill hetero; do
	for st in static veltrix; do
		res=$(for i in $(seq 1 "$runs"); do run_one "$sc" "$st"; done)
		f=$(echo "$res" | awk '{print $1}' | median)
		s=$(echo "$res" | awk '{print $2}' | median)
		echo "| $sc | $st | $f | $s |"
	done
done
