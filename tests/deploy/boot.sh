#!/usr/bin/env bash
# Part of tests/deploy/run.sh (RINGD_BOOT_TEST=1): boots a real systemd in a container and runs
# tests/deploy/boot_inside.sh there, which installs ringd with deploy/install.sh and drives it with
# systemctl. The Debian root is made once with debootstrap and cached in
# $RINGD_BOOT_CACHE (default /var/cache/ringd-boottest); each run boots a throw-away copy of it
# with its own network namespace (--private-network: only loopback). Needs root, a built ringd
# (the newer of target/release and target/debug) and, the first time, Debian's package mirror.
# Prints "ok NAME" / "FAIL NAME" lines.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
repo=$(pwd)
cache=${RINGD_BOOT_CACHE:-/var/cache/ringd-boottest}
suite=bookworm

fail() {
  echo "FAIL $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2"
  exit 1
}

# The newer of the two builds: a stale release binary must not stand in for the code under test.
bin="$repo/target/release/ringd"
if [ ! -x "$bin" ] || { [ -x "$repo/target/debug/ringd" ] && [ "$repo/target/debug/ringd" -nt "$bin" ]; }; then
  bin="$repo/target/debug/ringd"
fi
[ -x "$bin" ] || fail "no target/release/ringd (or target/debug/ringd): cargo build --release -p ringd"
echo "  boot: testing $bin"
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container; do
  command -v "${tool%%:*}" >/dev/null 2>&1 && continue
  if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }; then
    fail "cannot install ${tool#*:}"
  fi
done

if [ ! -x "$cache/root/lib/systemd/systemd" ]; then
  echo "  boot: debootstrap $suite into $cache/root (once; about 1-2 minutes)"
  rm -rf "$cache/root.tmp"
  mkdir -p "$cache"
  out=$(debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl \
    "$suite" "$cache/root.tmp" http://deb.debian.org/debian 2>&1) || fail "debootstrap" "$(tail -20 <<<"$out")"
  mv "$cache/root.tmp" "$cache/root"
fi

work=$(mktemp -d /tmp/ringd-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
machine=$work/root
cp -a "$cache/root" "$machine" || fail "copying the cached root"
mkdir -p "$work/result" "$work/bin"
cp "$bin" "$work/bin/ringd"

# The test runs as a oneshot unit once the container reaches multi-user.target.
cat >"$machine/etc/systemd/system/ringd-boottest.service" <<'EOF'
[Unit]
Description=ringd deployment test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /src/tests/deploy/boot_inside.sh
StandardOutput=journal+console
EOF
mkdir -p "$machine/etc/systemd/system/default.target.wants"
ln -sf ../ringd-boottest.service "$machine/etc/systemd/system/default.target.wants/ringd-boottest.service"
echo ringd-boot >"$machine/etc/hostname"

# Can this host raise hard limits at all (CAP_SYS_RESOURCE in its bounding set)? Some sandboxes
# cannot; then the container cannot give ringd the unit's limits either.
if prlimit --nofile="$(($(ulimit -Hn) + 1))" true 2>/dev/null; then
  touch "$work/result/can-raise-limits"
else
  echo "  boot: this host cannot raise hard rlimits (no CAP_SYS_RESOURCE): ringd's process limits are not checked"
fi
# --keep-unit/--register=no: the host need not run systemd or machined. The container's systemd
# lacks CAP_SYS_RESOURCE, so it cannot raise hard limits above what nspawn hands it: give it
# room for the unit's LimitNOFILE=/LimitMEMLOCK= (a host's PID 1 has that room by itself).
start=$(date +%s)
timeout 150 systemd-nspawn --quiet --register=no --keep-unit --private-network -D "$machine" \
  --rlimit=RLIMIT_NOFILE=1048576 --rlimit=RLIMIT_MEMLOCK=infinity \
  --bind-ro="$repo:/src" --bind-ro="$work/bin:/ringd-bin" --bind="$work/result:/result" \
  -b >"$work/console.log" 2>&1
rc=$?
echo "  boot: container ran for $(($(date +%s) - start)) s (nspawn exit $rc)"
[ -s "$work/result/log" ] || fail "boot: no result from inside the container (nspawn exit $rc)" "$(tail -30 "$work/console.log")"
cat "$work/result/log"
grep -q '^FAIL ' "$work/result/log" && { echo "  console:"; tail -40 "$work/console.log" | sed 's/^/  /'; }
exit 0
