#!/bin/sh
# Installs the Debian packages Veltrix needs to build, test and benchmark.
# Idempotent: silent when everything is present; runs `apt-get update` once,
# and only when something is missing.
set -eu

PKGS="gcc make pkg-config libcurl4-openssl-dev libjansson-dev libfyaml-dev libev-dev
libcmocka-dev clang libclang-rt-14-dev etcd-server etcd-client haproxy socat wrk openssl
ca-certificates iproute2 procps curl"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The packages ship systemd units; Veltrix never relies on them. On machines where
# the package scripts started a system etcd or haproxy, stop it so it holds no ports.
for svc in etcd haproxy; do
	if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
echo "install-deps: done" >&2
