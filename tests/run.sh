#!/usr/bin/env bash
# Runs ringd's whole test suite: unit tests, property tests, the end-to-end tests that start the
# real `ringd` binary on loopback and talk to it with raw sockets, curl, Python's http.client, wrk
# and headless Chromium, a short run of the benchmark harness against nginx, and the deploy/sysctl
# tests. On a Debian-like host it installs the tools it needs (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A tools=([nginx]=nginx [curl]=curl [wrk]=wrk [python3]=python3 [cc]=gcc [setpriv]=util-linux [prlimit]=util-linux [chromium]=chromium [ss]=iproute2 [systemd-socket-activate]=systemd [unshare]=util-linux [openssl]=openssl [testssl]=testssl.sh [nghttp]=nghttp2-client [h2load]=nghttp2-client)
# tests/deploy/haproxy_netns.sh: HAProxy in front of ringd backends.
tools[haproxy]=haproxy
missing=()
for tool in "${!tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${tools[$tool]}")
done
# HTTP/2 tests drive many streams with Python's h2 (Debian's package, for Debian's python3).
/usr/bin/python3 -c 'import h2' 2>/dev/null || missing+=(python3-h2)
# The benchmark chart's test draws text with DejaVu Sans.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# The compression tests decode Brotli and zstd with Debian's Python modules.
/usr/bin/python3 -c 'import brotli, zstandard' 2>/dev/null || missing+=(python3-brotli python3-zstandard)
if ((${#missing[@]})); then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "tests/run.sh: installing $pkgs" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Installing nginx must not start the system's nginx on port 80: the benchmark harness runs
  # its own instance. policy-rc.d answering 101 tells the package scripts not to start services.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $pkgs >/dev/null
  [ -z "$policy" ] || $sudo rm -f "$policy"
fi
# The metrics test validates /metrics with a real Prometheus parser.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus-client
command -v cargo >/dev/null || { echo "tests/run.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
# The HTTP/2 conformance test runs httpwg's RFC 9113 cases (a crate, not a Debian package).
command -v httpwg >/dev/null 2>&1 || cargo install httpwg-cli --version 0.2.5 --locked

cargo test --workspace --locked "$@"

# A short soak of the real binary under mixed load: no fd leak, bounded RSS, no wrong answer
# (benches/soak --seconds 600 is the long version).
python3 benches/soak --seconds 20 --ringd-bin target/debug/ringd

# deploy/ and sysctl/: shellcheck, the unit's security score, the sysctl scripts inside a network
# namespace, staged installs, and a real systemd booted in a container (needs root).
if [ "$(id -u)" -eq 0 ]; then
  bash tests/deploy/run.sh
else
  sudo bash tests/deploy/run.sh
fi
