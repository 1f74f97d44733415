#!/usr/bin/env bash
# The demo's side-by-side table (docs/benchmarks.md): `veltrix demo --json`, static HAProxy vs
# Veltrix under the same load and faults, run one after the other (about two minutes). Prints
# the command, the table and a one-line summary per stack from the JSON, which it keeps.
# Env: VELTRIX_BIN, DEMO_ARGS (e.g. --quick), OUT (directory for demo.json and demo.html,
# default build/bench-demo). Needs a quiet machine: the numbers are only as good as its CPU.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VELTRIX_BIN:-$top/build/release/veltrix}
out=${OUT:-$top/build/bench-demo}
[ -x "$bin" ] || { echo "no veltrix binary at $bin (run make)"; exit 1; }
mkdir -p "$out"
cmd=("$bin" demo --quiet ${DEMO_ARGS:-} --json "$out/demo.json" --html "$out/demo.html")
echo "command: veltrix demo ${DEMO_ARGS:-} --json $out/demo.json   ($(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg))"
"${cmd[@]}"
rc=$?
if [ -s "$out/demo.json" ] && command -v python3 >/dev/null; then
	python3 - "$out/demo.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("static", "veltrix"):
    r = d[k]; t = r["totals"]
    print(f"{k:8} verdict={r['verdict']} requests={t['requests']} failed={t['failed']} "
          f"error_rate={t['error_rate']*100:.2f}% p99_ms={t['latency']['p99_us']/1000:.1f} "
          f"sustained_rps={t['sustained_rps']:.0f} degraded_s={t['degraded_seconds']}/{t['seconds']}")
PY
fi
exit $rc
