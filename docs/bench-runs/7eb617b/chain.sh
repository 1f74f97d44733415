#!/bin/bash
# Benchmarks re-run for docs/benchmarks.md at commit 7eb617b (release build, nothing else running):
# the ones whose code changed since 32f09a0 (watch catch-up, new servers wait for their checks,
# restart carry, the runtime API's outage probes, reg_view, the load generator's end of run).
# Agent, etcd client and lease load are unchanged since 32f09a0.
cd "$(dirname "$0")/../../.." || exit 1
export VELTRIX_BIN=$PWD/build/release/veltrix VX_TOP=$PWD
B=build/release/bench
o=docs/bench-runs/7eb617b
run() { name=$1; shift; echo "== $name $(date +%T)" >> $o/progress; timeout -k 10 1500 "$@" > $o/$name.txt 2> $o/$name.err; echo "rc=$? $(date +%T)" >> $o/progress; }
TMPDIR=/dev/shm run fleet1 $B/bench_fleet
TMPDIR=/dev/shm run fleet2 $B/bench_fleet
TMPDIR=/dev/shm run fleet3 $B/bench_fleet
run converge $B/bench_converge
run controller $B/bench_controller
run reg_view $B/bench_reg_view
run load_wrk bench/bench_load_vs_wrk.sh
RUNS=3 run targets bench/bench_targets.sh
echo "== done $(date +%T)" >> $o/progress
