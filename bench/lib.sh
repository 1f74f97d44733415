# Shared by the bench/*.sh scripts (sourced, not run): a work directory and the processes
# started in it, both cleaned up on exit; a free loopback port; waiting for an HTTP answer.
# The caller sets `bin` (the veltrix binary) before sourcing.
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

[ -x "$bin" ] || { echo "no veltrix binary at $bin (run make)"; exit 1; }

# A port that was free on 127.0.0.1 a moment ago (python3 when present, else a random guess).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

# Waits up to 5 s for URL to answer anything.
wait_http() {
	for _ in $(seq 1 100); do
		curl -s -o /dev/null "$1" && return 0
		sleep 0.05
	done
	echo "nothing answers at $1" >&2
	return 1
}
