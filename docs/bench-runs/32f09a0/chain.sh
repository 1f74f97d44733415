#!/bin/bash
# Benchmark chain for docs/benchmarks.md, at the commit of /work/wt-bench.
cd /work/wt-bench || exit 1
export VELTRIX_BIN=$PWD/build/release/veltrix VX_TOP=$PWD
B=build/release/bench
o=/work/bo
run() { name=$1; shift; echo "== $name $(date +%T)" >> $o/progress; timeout -k 10 ${T:-1500} "$@" > $o/$name.txt 2> $o/$name.err; echo "rc=$? $(date +%T)" >> $o/progress; }
run converge $B/bench_converge
TMPDIR=/dev/shm run fleet1 $B/bench_fleet
TMPDIR=/dev/shm run fleet2 $B/bench_fleet
TMPDIR=/dev/shm run fleet3 $B/bench_fleet
run controller $B/bench_controller
BENCH_CTL_RATES=none BENCH_CTL_INSTANCES=100000 BENCH_CTL_SERVICES=1000 run controller100k $B/bench_controller
run etcd $B/bench_etcd
DURATION=30 run agent bench/bench_agent.sh
BENCH_LEASES_TTLS=10 BENCH_LEASES_SWEEP=none run leases_own $B/bench_leases
BENCH_LEASES_TTLS=10 BENCH_LEASES_SWEEP=none BENCH_LEASES_N=500 BENCH_LEASES_KEYS=20 run leases_host500 $B/bench_leases
BENCH_LEASES_TTLS=10,30 BENCH_LEASES_SWEEP=none BENCH_LEASES_N=100 BENCH_LEASES_KEYS=100 run leases_host100 $B/bench_leases
RUNS=3 run targets bench/bench_targets.sh
run demo bench/bench_demo.sh
run reg_view $B/bench_reg_view
run load_wrk bench/bench_load_vs_wrk.sh
echo "== done $(date +%T)" >> $o/progress
