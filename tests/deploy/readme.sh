#!/usr/bin/env bash
# Part of tests/deploy/run.sh: the README's two commands as a newcomer runs them, on a fresh
# Debian 12 (bookworm) root made with debootstrap (git, build-essential, ca-certificates and sudo
# added, nothing else), in systemd-nspawn, as an ordinary user with sudo and the stock limits:
# 1024 open files (hard: this host's, at most Debian's 524288) and 8 MiB of locked memory.
#
# - The repository is cloned in the container from a bare clone of this checkout's HEAD.
# - Rust is this host's, bound in read-only: $RINGD_RUST_SYSROOT (a toolchain directory, such as
#   `rustup run 1.87 rustc --print sysroot`; .ci/run passes the workspace's rust-version), else
#   that of the rustc on PATH.
# - Crates come from `cargo vendor` of this host's cache (read-only in the container, with
#   cargo offline), so the container needs no crates.io.
# - First, with the host's network, `RINGD_TESTS_INSTALL_ONLY=1 tests/run.sh` as the user: the test
#   command's own apt-get through sudo, as on a fresh machine.
# - Then with only loopback (--private-network): `cargo run --release -p ringd` until the built-in
#   page answers on 127.0.0.1:8080, Ctrl-C (SIGINT) and exit 0; then `tests/run.sh` with
#   RINGD_DEPLOY_TESTS=0 (this script runs inside tests/deploy; a container cannot nest another)
#   and the cargo arguments in $RINGD_README_TESTS (see below for the default subset).
#
# The Debian root is made once and cached in $RINGD_README_CACHE (default
# /var/cache/ringd-readmetest); each run mounts a throw-away overlay on it. Needs root, and the
# first time Debian's package mirror. Prints "ok NAME" / "FAIL NAME" lines.
# cleanup runs from the EXIT trap (SC2317).
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
repo=$(pwd)
cache=${RINGD_README_CACHE:-/var/cache/ringd-readmetest}
suite=bookworm
mirror=http://deb.debian.org/debian
packages=git,build-essential,ca-certificates,sudo
# The test binaries the container runs: a subset that stands for the whole suite within CI's
# time (the whole suite takes about twice as long): the unit and property tests, every test of a
# stock limit or kernel feature this test is about (descriptors, locked memory, cachestat and
# the other fallbacks, Debian's Python, nginx in /usr/sbin), and a sample of the protocol tests.
# RINGD_README_TESTS=" " (a blank) runs everything.
subset="--lib --bins --test proptest_parser --test timeouts --test static_large --test kernel_fallbacks
  --test receive_ring --test metrics --test bench_harness --test load --test startup_errors
  --test http_framing --test check --test tls --test systemd_notify"
tests=${RINGD_README_TESTS:-$subset}

fail() {
  echo "FAIL $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2"
  exit 1
}

for tool in debootstrap:debootstrap systemd-nspawn:systemd-container git:git; do
  command -v "${tool%%:*}" >/dev/null 2>&1 && continue
  if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }; then
    fail "cannot install ${tool#*:}"
  fi
done

# Who ran the suite (through sudo, or root itself): the vendoring runs as them, with their cargo
# and crate cache.
invoker=${SUDO_USER:-root}
invoker_home=$(getent passwd "$invoker" | cut -d: -f6)
sysroot=${RINGD_RUST_SYSROOT:-}
if [ -z "$sysroot" ]; then
  rustc=$(command -v rustc || echo "$invoker_home/.cargo/bin/rustc")
  sysroot=$(runuser -u "$invoker" -- "$rustc" --print sysroot 2>/dev/null) || sysroot=""
fi
if ! { [ -x "$sysroot/bin/cargo" ] && [ -x "$sysroot/bin/rustc" ]; }; then
  fail "no Rust toolchain to bind in (RINGD_RUST_SYSROOT=${RINGD_RUST_SYSROOT:-unset}, rustc --print sysroot: ${sysroot:-none})"
fi
rust_version=$("$sysroot/bin/rustc" --version)
echo "  readme: $rust_version from $sysroot"

if [ ! -x "$cache/root/usr/bin/gcc" ] || [ "$(cat "$cache/root.packages" 2>/dev/null)" != "$packages" ]; then
  echo "  readme: debootstrap $suite with $packages into $cache/root (once; about a minute)"
  rm -rf "$cache/root.tmp" "$cache/root"
  mkdir -p "$cache"
  out=$(debootstrap --variant=minbase --include="$packages" "$suite" "$cache/root.tmp" "$mirror" 2>&1) ||
    fail "debootstrap" "$(tail -20 <<<"$out")"
  mv "$cache/root.tmp" "$cache/root"
  echo "$packages" >"$cache/root.packages"
fi

work=$(mktemp -d /tmp/ringd-readme.XXXXXX)
machine=$work/root
cleanup() {
  mountpoint -q "$machine" && umount "$machine"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/upper" "$work/overlay-work" "$machine" "$work/result" "$work/vendor" "$work/setup"
mount -t overlay overlay -o "lowerdir=$cache/root,upperdir=$work/upper,workdir=$work/overlay-work" "$machine" ||
  fail "overlay mount of the cached root"
chmod 0777 "$work/result"
chmod 0755 "$work"

# The checkout's HEAD, as a bare repository to clone from (uncommitted changes are not tested).
git clone -q --bare "$repo" "$work/ringd.git" || fail "git clone --bare $repo"
echo "  readme: testing $(git -C "$work/ringd.git" log -1 --format='%h %s' HEAD | cut -c1-100)"
# Owned by the newcomer (uid 59901 below), or git in the container refuses it ("dubious ownership").
chown -R 59901:59901 "$work/ringd.git"
# Crates for the lockfile and the benchmark's hyper peer (its test builds it), from the invoker's
# cache (online only for what it lacks).
chown "$invoker" "$work/vendor"
vendor() {
  runuser -u "$invoker" -- env HOME="$invoker_home" PATH="$sysroot/bin:$PATH" \
    cargo vendor --locked --versioned-dirs --sync benches/peers/hyper/Cargo.toml "$@" "$work/vendor" >/dev/null
}
out=$(vendor --offline 2>&1) || out=$(vendor 2>&1) || fail "cargo vendor" "$(tail -20 <<<"$out")"
# Crates keep their archives' modes, some 0640: the newcomer must read them all.
chmod -R a+rX "$work/vendor"

# The newcomer: an ordinary user with sudo, a uid no user of this host is likely to have (locked
# memory is counted per uid, and the container shares the host's).
cat >"$work/setup/setup.sh" <<'EOF'
set -e
useradd -m -u 59901 -s /bin/bash newcomer
echo 'newcomer ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/newcomer
chmod 0440 /etc/sudoers.d/newcomer
mkdir -p /home/newcomer/.cargo
cat >/home/newcomer/.cargo/config.toml <<'TOML'
[source.crates-io]
replace-with = "vendored"
[source.vendored]
directory = "/opt/vendor"
[net]
offline = true
TOML
echo 'export PATH=/opt/rust/bin:$PATH' >>/home/newcomer/.profile
chown -R newcomer: /home/newcomer
runuser -u newcomer -- git clone -q /opt/ringd.git /home/newcomer/ringd
EOF
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] || ((hard_nofile <= 524288)) || hard_nofile=524288
[ "$hard_nofile" != unlimited ] || hard_nofile=524288
# --keep-unit/--register=no: the host need not run systemd or machined. A login shell (bash -l)
# gives the user Debian's PATH for an ordinary user (/etc/profile: no sbin directories).
nspawn() {
  local seconds=$1
  shift
  timeout "$seconds" systemd-nspawn --quiet --register=no --keep-unit --console=pipe -D "$machine" -M "ringd-readme-$$" \
    --bind-ro="$sysroot:/opt/rust" --bind-ro="$work/vendor:/opt/vendor" \
    --bind-ro="$work/ringd.git:/opt/ringd.git" --bind-ro="$repo/tests/deploy:/opt/tests" \
    --bind-ro="$work/setup:/opt/setup" --bind="$work/result:/result" \
    --rlimit=RLIMIT_NOFILE=1024:"$hard_nofile" --rlimit=RLIMIT_MEMLOCK=$((8 << 20)) \
    --setenv=RINGD_README_TESTS="$tests" "$@" </dev/null
}

out=$(nspawn 120 --private-network /bin/bash /opt/setup/setup.sh 2>&1) || fail "creating the user and the clone in the container" "$out"

start=$(date +%s)
out=$(nspawn 900 --user=newcomer --chdir=/home/newcomer/ringd \
  /bin/bash -lc 'RINGD_TESTS_INSTALL_ONLY=1 RINGD_INSTALL_HTTPWG=0 tests/run.sh' 2>&1)
rc=$?
if ((rc == 0)); then
  echo "ok   as the user, tests/run.sh installs what the tests need with sudo apt-get ($(($(date +%s) - start)) s)"
else
  fail "tests/run.sh's installs as the user (exit $rc)" "$(tail -30 <<<"$out")"
fi

start=$(date +%s)
nspawn 2400 --private-network --user=newcomer --chdir=/home/newcomer/ringd \
  /bin/bash -l /opt/tests/readme_inside.sh >"$work/console.log" 2>&1
rc=$?
echo "  readme: the container ran the two commands for $(($(date +%s) - start)) s (exit $rc)"
[ -s "$work/result/log" ] || fail "no result from inside the container (exit $rc)" "$(tail -40 "$work/console.log")"
cat "$work/result/log"
if grep -q '^FAIL ' "$work/result/log"; then
  # The test command's whole output, kept for a look after the run.
  if [ -s "$work/result/tests.log" ]; then
    cp "$work/result/tests.log" "/tmp/ringd-readme-tests.$$.log"
    echo "  readme: the container's tests/run.sh output: /tmp/ringd-readme-tests.$$.log"
  fi
  echo "  console (last 60 lines):"
  # (nspawn's own complaint about a propagation directory off tmpfs is left out: it means nothing.)
  grep -v 'Attempted to remove disk file system' "$work/console.log" | tail -60 | sed 's/^/  /'
fi
exit 0
