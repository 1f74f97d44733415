#!/usr/bin/env bash
# The agent at idle: resident memory and CPU time of one `veltrix agent` registered in a local
# etcd, checking a `veltrix testserver` over HTTP once a second (lease TTL 10 s, so a keepalive
# every ~3.3 s). Samples /proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/stat (utime+stime)
# after the registration and again DURATION seconds later; CPU per hour is that difference
# extrapolated linearly to one hour (an idle agent does the same work every second).
# Targets (docs/agent.md): RSS <= 4 MiB; CPU per hour at idle: a few seconds at most.
# Env: DURATION (seconds, default 30), INTERVAL (check interval, default 1s), VELTRIX_BIN.
# Loopback only; everything started here is stopped on exit.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VELTRIX_BIN:-$top/build/release/veltrix}
dur=${DURATION:-30}
interval=${INTERVAL:-1s}
. "$top/bench/lib.sh"

command -v etcd >/dev/null || { echo "etcd is not installed (scripts/install-deps.sh installs it)"; exit 1; }

cport=$(free_port); pport=$(free_port); sport=$(free_port)
etcd --name bench --data-dir "$work/etcd" \
	--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
	--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	--initial-cluster "bench=http://127.0.0.1:$pport" >"$work/etcd.log" 2>&1 &
pids+=($!)
"$bin" testserver --port "$sport" >"$work/testserver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$cport/health" || exit 1
wait_http "http://127.0.0.1:$sport/healthz" || exit 1

(cd "$work" && exec "$bin" agent --service bench --port "$sport" --address 127.0.0.1 --check http:/healthz \
	--interval "$interval" --ttl 10s --drain-timeout 0s --etcd "http://127.0.0.1:$cport") >"$work/agent.log" 2>&1 &
agent=$!
pids+=($agent)
for _ in $(seq 1 100); do
	grep -q 'msg=registered' "$work/agent.log" && break
	sleep 0.1
done
grep -q 'msg=registered' "$work/agent.log" || { echo "the agent did not register"; cat "$work/agent.log"; exit 1; }
sleep 1

# CPU time in nanoseconds from the scheduler (utime/stime tick at 10 ms, too coarse here).
cpu_ns() { awk '{ print $1 }' "/proc/$agent/schedstat"; }
kib() { awk -v k="$2:" '$1 == k { print $2 }' "$1"; }
c0=$(cpu_ns)
sleep "$dur"
c1=$(cpu_ns)
st=/proc/$agent/status roll=/proc/$agent/smaps_rollup
rss=$(kib $st VmRSS) hwm=$(kib $st VmHWM) anon=$(kib $st RssAnon) file=$(kib $st RssFile)
pss=$(kib $roll Pss) priv=$(( $(kib $roll Private_Clean) + $(kib $roll Private_Dirty) ))

awk -v c0="$c0" -v c1="$c1" -v d="$dur" -v rss="$rss" -v hwm="$hwm" -v anon="$anon" -v file="$file" \
	-v pss="$pss" -v priv="$priv" -v iv="$interval" 'BEGIN {
	cpu = (c1 - c0) / 1e9
	printf "agent idle, http check every %s, TTL 10s, %d s window\n", iv, d
	printf "  RSS            %7.2f MiB  (target <= 4 MiB; peak %.2f MiB)\n", rss / 1024, hwm / 1024
	printf "    anonymous    %7.2f MiB  (heap, stacks, relocated library data: the agent'"'"'s own)\n", anon / 1024
	printf "    file-backed  %7.2f MiB  (shared library pages, shared with every process using them)\n", file / 1024
	printf "  private        %7.2f MiB  (pages no other process shares)\n", priv / 1024
	printf "  PSS            %7.2f MiB  (shared pages divided among the processes mapping them)\n", pss / 1024
	printf "  CPU in window  %7.4f s\n", cpu
	printf "  CPU per hour   %7.2f s  (%.4f%% of one core; extrapolated from the window)\n", cpu * 3600 / d, cpu / d * 100
}'
kill -TERM "$agent"
wait "$agent" 2>/dev/null
grep -q 'lease revoked' "$work/agent.log" || { echo "the agent did not revoke its lease on SIGTERM"; exit 1; }
