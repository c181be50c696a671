#!/usr/bin/env bash
# Runs ringd's whole test suite: unit tests, property tests, the end-to-end tests that start the
# real `ringd` binary on loopback and talk to it with raw sockets, curl, Python's http.client, wrk
# and headless Chromium, a short run of the benchmark harness against nginx, a soak, and the
# deploy/sysctl tests. Arguments go to `cargo test` (e.g. `tests/run.sh -p ringd --test tls`).
#
# What it needs:
# - Rust (rustup; the version in Cargo.toml's rust-version or newer) and a Debian-like host: the
#   tools the tests drive are installed with apt-get when missing, as root or through sudo
#   (Python modules too, from Debian's python3-* packages: a fresh Debian has no pip).
# - root or sudo for tests/deploy (network namespaces, a booted container).
# - nothing special of an ordinary user's limits: 1024 open files (the tests that open thousands
#   of connections raise their own soft limit up to the hard one, and fit themselves to a hard
#   limit below 4096), 8 MiB of locked memory (a test binary's servers share half of it).
#
# Every part runs even when an earlier one fails; the end lists each failure, and the exit
# status is 1 if there was any.
#
# RINGD_TESTS_INSTALL_ONLY=1 installs what the tests need and stops (to provision a machine);
# RINGD_DEPLOY_TESTS=0 leaves out tests/deploy (inside a container, which they cannot nest in).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# command -> Debian package. nginx lives in /usr/sbin, off an ordinary user's PATH.
declare -A tools=([nginx]=nginx [curl]=curl [wrk]=wrk [python3]=python3 [cc]=gcc [setpriv]=util-linux [prlimit]=util-linux [chromium]=chromium [ss]=iproute2 [systemd-socket-activate]=systemd [unshare]=util-linux [openssl]=openssl [testssl]=testssl.sh [nghttp]=nghttp2-client [h2load]=nghttp2-client [haproxy]=haproxy)
# Python module -> Debian package: Prometheus' parser for /metrics, h2 for many HTTP/2 streams,
# Brotli and zstd decoders for the compression tests.
declare -A pymods=([prometheus_client]=python3-prometheus-client [h2]=python3-h2 [brotli]=python3-brotli [zstandard]=python3-zstandard)
missing=()
for tool in "${!tools[@]}"; do
  PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${tools[$tool]}")
done
# The tests run Debian's Python for these (common::debian_python): another python3 earlier on
# the PATH (pyenv's, say) would not see Debian's packages.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for mod in "${!pymods[@]}"; do
  "$py" -c "import $mod" >/dev/null 2>&1 || missing+=("${pymods[$mod]}")
done
# The benchmark chart's test draws text with DejaVu Sans.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "tests/run.sh: installing $pkgs" >&2
  $sudo apt-get update -qq || { echo "tests/run.sh: apt-get update failed" >&2; exit 1; }
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
  rc=$?
  [ -z "$policy" ] || $sudo rm -f "$policy"
  ((rc == 0)) || { echo "tests/run.sh: apt-get install $pkgs failed" >&2; exit 1; }
fi
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
for mod in "${!pymods[@]}"; do
  "$py" -c "import $mod" 2>/dev/null && continue
  echo "tests/run.sh: $py cannot import $mod although ${pymods[$mod]} is installed" >&2
  exit 1
done
# The HTTP/2 conformance test runs httpwg's RFC 9113 cases (a crate, not a Debian package; it
# builds in a few minutes). RINGD_INSTALL_HTTPWG=0 leaves it out (the README test's container
# runs a subset without that test).
if [ "${RINGD_INSTALL_HTTPWG:-1}" = 1 ] && ! command -v httpwg >/dev/null 2>&1; then
  command -v cargo >/dev/null && cargo install httpwg-cli --version 0.2.5 --locked ||
    echo "tests/run.sh: could not install httpwg (cargo install httpwg-cli --version 0.2.5 --locked): the HTTP/2 conformance test will fail" >&2
fi
if [ "${RINGD_TESTS_INSTALL_ONLY:-0}" = 1 ]; then
  echo "tests/run.sh: every tool the tests need is installed"
  exit 0
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
echo "tests/run.sh: $(id -un), open files $(ulimit -Sn) (hard $(ulimit -Hn)), locked memory $(ulimit -Sl) KiB"

failures=()
log=$(mktemp /tmp/ringd-tests.XXXXXX)
trap 'rm -f "$log"' EXIT

# Every test binary, even after one fails; cargo lists the failed ones at the end.
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
if ((PIPESTATUS[0] != 0)); then
  # "binary: test" for each failed test (cargo's "Running tests/x.rs (...)" names the binary).
  while IFS= read -r line; do failures+=("cargo test: $line"); done < <(
    awk '/^ *(Running|Doc-tests) / { bin = $2 } / \.\.\. FAILED$/ { sub(/^test /, ""); sub(/ \.\.\. FAILED$/, ""); print bin ": " $0 }' "$log"
  )
  # A binary that did not build or run has no FAILED line: name cargo's own error.
  grep -qE ' \.\.\. FAILED$' "$log" || failures+=("cargo test: $(grep -E '^error' "$log" | head -1)")
fi

# The vendored tokio-uring's unit tests, ringd's patches' among them (it is outside the
# workspace, with a lock file of its own); only in a whole run, not when arguments pick tests.
if (($# == 0)); then
  cargo test --manifest-path vendor/tokio-uring/Cargo.toml --locked --lib --target-dir target/vendor-tokio-uring 2>&1 |
    tee "$log"
  ((PIPESTATUS[0] == 0)) || failures+=("cargo test: vendor/tokio-uring (its FAILED lines above)")
fi

# A short soak of the real binary under mixed load: no fd leak, bounded RSS, no wrong answer
# (benches/soak --seconds 600 is the long version).
if [ -x target/debug/ringd ]; then
  python3 benches/soak --seconds 20 --ringd-bin target/debug/ringd || failures+=("benches/soak")
else
  failures+=("benches/soak: no target/debug/ringd (the build failed)")
fi

# deploy/ and sysctl/: shellcheck, the unit's security score, the sysctl scripts inside a network
# namespace, staged installs, a real systemd booted in a container, and the README's two commands
# as an ordinary user in a fresh Debian 12 container (needs root).
if [ "${RINGD_DEPLOY_TESTS:-1}" = 0 ]; then
  echo "tests/run.sh: tests/deploy left out (RINGD_DEPLOY_TESTS=0)"
else
  # sudo clears the environment: pass on what the deploy tests take from it (the README test
  # binds this Rust into its container).
  sysroot=${RINGD_RUST_SYSROOT:-$(rustc --print sysroot 2>/dev/null)}
  $sudo env RINGD_RUST_SYSROOT="$sysroot" RINGD_BOOT_TEST="${RINGD_BOOT_TEST:-auto}" \
    RINGD_README_TEST="${RINGD_README_TEST:-1}" ${RINGD_README_TESTS:+RINGD_README_TESTS="$RINGD_README_TESTS"} \
    bash tests/deploy/run.sh || failures+=("tests/deploy/run.sh (its FAIL lines above)")
fi

if ((${#failures[@]})); then
  echo
  echo "tests/run.sh: ${#failures[@]} failure(s):"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "tests/run.sh: everything passed"
