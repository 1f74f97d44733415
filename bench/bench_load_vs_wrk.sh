#!/usr/bin/env bash
# `veltrix load` against wrk: the same target, connections, threads and duration, in
# alternating order, several runs; prints the median requests/s of each, their ratio (the
# target is >= 1.0) and the CPU time each generator spent per request (user+sys of the process,
# from the shell's `times`).
#
# Target: a `veltrix testserver` started here (default), or, with BENCH_HAPROXY=1, an HAProxy
# (2 threads, keep-alive to the backend) in front of that testserver, or any URL given in
# BENCH_URL (then nothing is started).
# Env: RUNS (5), DURATION (5s), CONNS (50), THREADS (2), SERVER_THREADS (1), VELTRIX_BIN.
# Loopback only; everything started here is stopped on exit.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VELTRIX_BIN:-$top/build/release/veltrix}
runs=${RUNS:-5}
dur=${DURATION:-5s}
conns=${CONNS:-50}
threads=${THREADS:-2}
server_threads=${SERVER_THREADS:-1}
. "$top/bench/lib.sh"

command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install-deps.sh installs it)"; exit 1; }

start_target() {
	if [ -n "${BENCH_URL:-}" ]; then
		url=$BENCH_URL
		label="$url"
		return
	fi
	local ts_port
	ts_port=$(free_port)
	"$bin" testserver --port "$ts_port" --threads "$server_threads" 2>"$work/testserver.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$ts_port/healthz" || exit 1
	url="http://127.0.0.1:$ts_port/"
	label="testserver ($server_threads thread)"
	if [ "${BENCH_HAPROXY:-0}" = 1 ]; then
		local hp
		hp=$(free_port)
		cat >"$work/haproxy.cfg" <<CFG
global
    nbthread 2
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$hp
    default_backend be
backend be
    server ts 127.0.0.1:$ts_port pool-max-conn -1 pool-purge-delay 5s
CFG
		haproxy -f "$work/haproxy.cfg" -db 2>"$work/haproxy.log" &
		pids+=($!)
		wait_http "http://127.0.0.1:$hp/" || exit 1
		url="http://127.0.0.1:$hp/"
		label="haproxy (2 threads) -> testserver ($server_threads thread)"
	fi
}

# Runs a command with bash's `time`, stdout to $work/out; prints its CPU seconds (user+sys).
cpu_of() {
	local TIMEFORMAT='%3U %3S'
	{ time "$@" >"$work/out" 2>/dev/null; } 2>"$work/time"
	awk '{ print $1 + $2 }' "$work/time"
}

# One run: prints "<requests/s> <requests> <cpu seconds>".
run_wrk() {
	local cpu
	cpu=$(cpu_of wrk -t"$threads" -c"$conns" -d"$dur" "$url")
	awk -v cpu="$cpu" '/requests in/ { n = $1 } /^Requests\/sec:/ { r = $2 } END { print r, n, cpu }' "$work/out"
}

run_veltrix() {
	local cpu rps reqs
	cpu=$(cpu_of "$bin" load -t "$threads" -c "$conns" -d "$dur" --quiet --json "$work/v.json" "$url")
	rps=$(sed -n 's/.*"achieved_rps": \([0-9.]*\).*/\1/p' "$work/v.json" | head -n 1)
	reqs=$(sed -n 's/.*"responses": \([0-9]*\).*/\1/p' "$work/v.json" | head -n 1)
	echo "$rps $reqs $cpu"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_target
echo "target: $label, $url; $runs runs of $dur, -c $conns -t $threads"
: >"$work/wrk" && : >"$work/vx"
for i in $(seq 1 "$runs"); do
	if [ $((i % 2)) = 1 ]; then
		run_wrk >>"$work/wrk"
		run_veltrix >>"$work/vx"
	else
		run_veltrix >>"$work/vx"
		run_wrk >>"$work/wrk"
	fi
	printf 'run %d: wrk %.0f req/s, veltrix load %.0f req/s\n' "$i" "$(tail -n 1 "$work/wrk" | cut -d' ' -f1)" \
		"$(tail -n 1 "$work/vx" | cut -d' ' -f1)"
done
w_rps=$(cut -d' ' -f1 "$work/wrk" | median)
v_rps=$(cut -d' ' -f1 "$work/vx" | median)
w_cpu=$(awk '{ print $3 / $2 * 1e6 }' "$work/wrk" | median)
v_cpu=$(awk '{ print $3 / $2 * 1e6 }' "$work/vx" | median)
echo
echo "| generator | median req/s | CPU per request (us) |"
echo "|---|---|---|"
printf '| wrk | %.0f | %.2f |\n' "$w_rps" "$w_cpu"
printf '| veltrix load | %.0f | %.2f |\n' "$v_rps" "$v_cpu"
awk -v v="$v_rps" -v w="$w_rps" 'BEGIN { printf "\nratio veltrix/wrk: %.3f (target >= 1.0)\n", v / w }'
