#!/usr/bin/env bash
# Tests of deploy/ and sysctl/, for real on this machine: shellcheck of every script; the systemd
# unit through `systemd-analyze verify` and `systemd-analyze security --offline=yes` (exposure
# <= 2.0); the sysctl scripts inside a fresh network namespace (`unshare -n`, where net.* values are
# the namespace's own) with every file staged under a DESTDIR; install.sh/uninstall.sh into a
# staging tree; tests/deploy/boot.sh, a real systemd in a container (RINGD_BOOT_TEST=0 skips it);
# tests/deploy/haproxy_netns.sh, HAProxy in front of two ringd backends in network namespaces
# (a rolling restart and a killed backend under wrk); tests/deploy/readme.sh, the README's two
# commands as an ordinary user in a fresh Debian 12 container (RINGD_README_TEST=0 skips it).
# Needs root (unshare, ip netns, mount); installs shellcheck/systemd/util-linux/procps/iproute2/
# haproxy/wrk/curl with apt-get if missing.
# Last line: "deploy: N passed, M failed"; exit status 1 if any failed.
# Test bodies are functions called through t/check (SC2317), and use `A && B || { report; return 1; }`
# where the report must run when either fails (SC2015).
# shellcheck disable=SC2317,SC2015
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1


passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "ok    $1"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL  $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "      $l"; done <<<"$2"
}
# t NAME CMD...: runs CMD, passes if it exits 0; its output is shown only on failure.
t() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
finish() {
  echo "deploy: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

if [ "$(id -u)" -ne 0 ]; then
  fail "run as root (unshare -n, mount namespaces, apt-get): sudo tests/deploy/run.sh"
  finish
fi

# ---- tools ------------------------------------------------------------------------------------
declare -A tools=([shellcheck]=shellcheck [systemd-analyze]=systemd [unshare]=util-linux [sysctl]=procps)
tools+=([ip]=iproute2 [haproxy]=haproxy [wrk]=wrk [curl]=curl [python3]=python3)
missing=()
for tool in "${!tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${tools[$tool]}")
done
if ((${#missing[@]})); then
  echo "tests/deploy: installing ${missing[*]}" >&2
  # The haproxy package must not start the system's HAProxy (on port 80): policy-rc.d answering
  # 101 tells package scripts not to start services.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -z "$policy" ] || rm -f "$policy"
fi

work=$(mktemp -d /tmp/ringd-deploy-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- shellcheck -------------------------------------------------------------------------------
for f in deploy/*.sh sysctl/*.sh tests/deploy/*.sh; do
  t "shellcheck $f" shellcheck -x -P "$(dirname "$f")" "$f"
done

# ---- the unit ---------------------------------------------------------------------------------
unit=deploy/ringd.service
# verify wants ExecStart= to exist: point it at a stand-in executable.
mkdir -p "$work/verify"
printf '#!/bin/sh\nexit 0\n' >"$work/verify/ringd" && chmod 0755 "$work/verify/ringd"
sed "s#^ExecStart=/usr/local/bin/ringd #ExecStart=$work/verify/ringd #" "$unit" >"$work/verify/ringd.service"
verify_clean() {
  local out
  out=$(systemd-analyze verify "$1" 2>&1) || { echo "$out"; return 1; }
  # verify exits 0 on settings it ignores ("Unknown key", "Failed to parse"): any output fails.
  [ -z "$out" ] || { echo "$out"; return 1; }
}
t "unit: systemd-analyze verify prints nothing" verify_clean "$work/verify/ringd.service"
cp deploy/ringd.socket "$work/verify/ringd.socket"
t "socket unit: systemd-analyze verify prints nothing" verify_clean "$work/verify/ringd.socket"

exposure_at_most() {
  local max=$1 file=$2 out score
  out=$(systemd-analyze security --offline=yes "$file" 2>&1)
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
  [ -n "$score" ] || { echo "no score in: $out"; return 1; }
  echo "exposure $score"
  awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' || { echo "$out" | grep '✗'; return 1; }
}
if out=$(exposure_at_most 2.0 "$work/verify/ringd.service"); then
  pass "unit: systemd-analyze security --offline=yes: ${out##*$'\n'} <= 2.0"
else
  fail "unit: systemd-analyze security --offline=yes exposure <= 2.0" "$out"
fi

unit_has_io_uring() {
  local allow deny call
  allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit")
  deny=$(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$unit")
  for call in io_uring_setup io_uring_enter io_uring_register; do
    # Named explicitly: @system-service lacks them before systemd 249.
    grep -qw "$call" <<<"$allow" || { echo "allow list lacks $call"; return 1; }
    if grep -qwE "$call|@aio|@io-event" <<<"$deny"; then echo "deny list removes $call"; return 1; fi
  done
  # This systemd's own expansion of the deny list must not contain them either.
  local set
  for set in $deny; do
    case $set in @*) ;; *) continue ;; esac
    if systemd-analyze syscall-filter "$set" | grep -qw 'io_uring_[a-z]*'; then echo "$set holds io_uring calls"; return 1; fi
  done
  # @resources holds sched_setaffinity, with which each worker pins itself.
  if grep -qw '@resources' <<<"$deny"; then echo "deny list blocks sched_setaffinity (@resources)"; return 1; fi
}
t "unit: SystemCallFilter keeps io_uring_setup/enter/register and sched_setaffinity" unit_has_io_uring

unit_basics() {
  grep -qx 'Type=notify' "$unit" || { echo "not Type=notify"; return 1; }
  grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$unit" || { echo "no CAP_NET_BIND_SERVICE"; return 1; }
  grep -qE '^(DynamicUser=yes|User=.+)$' "$unit" || { echo "runs as root"; return 1; }
  grep -q '^ExecStart=/usr/local/bin/ringd serve --config /etc/ringd/ringd.toml$' "$unit" || { echo "ExecStart"; return 1; }
  local nofile
  nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$unit")
  ((nofile >= 65536)) || { echo "LimitNOFILE=$nofile is below 65536"; return 1; }
}
t "unit: Type=notify, CAP_NET_BIND_SERVICE, unprivileged, ExecStart, LimitNOFILE" unit_basics

# LimitMEMLOCK must hold the default config's buffers and rings for 64 workers (CPUs):
# workers x (count x size + 128 KiB per 1024 ring entries).
memlock_fits() {
  local m unitsuffix count size entries need
  m=$(sed -n 's/^LimitMEMLOCK=\([0-9]*\)\([KMG]\{0,1\}\)$/\1 \2/p' "$unit")
  read -r m unitsuffix <<<"$m"
  case ${unitsuffix:-} in K) m=$((m << 10)) ;; M) m=$((m << 20)) ;; G) m=$((m << 30)) ;; esac
  count=$(sed -n '/^\[buffers\]/,/^\[/s/^count *= *\([0-9]*\).*/\1/p' deploy/ringd.toml)
  size=$(sed -n '/^\[buffers\]/,/^\[/s/^size *= *\([0-9]*\).*/\1/p' deploy/ringd.toml)
  entries=$(sed -n 's/^ring_entries *= *\([0-9]*\).*/\1/p' deploy/ringd.toml)
  [ -n "$count" ] && [ -n "$size" ] && [ -n "$entries" ] || { echo "deploy/ringd.toml lacks buffers.count/size or ring_entries"; return 1; }
  need=$((64 * (count * size + (entries + 1023) * 128 * 1024 / 1024)))
  echo "LimitMEMLOCK=$m bytes, 64 workers need $need"
  ((m >= need))
}
t "unit: LimitMEMLOCK holds 64 workers' buffers and rings (deploy/ringd.toml)" memlock_fits

# ---- sysctl scripts in a network namespace -----------------------------------------------------
# sysctl_netns.sh runs inside `unshare -n` and prints "ok NAME" / "FAIL NAME" lines.
host_before=$(sysctl -n net.core.somaxconn net.ipv4.tcp_fin_timeout net.ipv4.ip_local_port_range | tr -s ' \t\n' ' ')
netns_out=$(unshare -n bash tests/deploy/sysctl_netns.sh "$work/sysctl" 2>&1)
netns_rc=$?
while IFS= read -r line; do
  case $line in
    "ok "*) pass "sysctl: ${line#ok }" ;;
    "FAIL "*) fail "sysctl: ${line#FAIL }" ;;
    "  "*) echo "$line" ;;
  esac
done <<<"$netns_out"
((netns_rc == 0)) || grep -q '^FAIL ' <<<"$netns_out" || fail "sysctl: netns run exited $netns_rc" "$netns_out"
host_after=$(sysctl -n net.core.somaxconn net.ipv4.tcp_fin_timeout net.ipv4.ip_local_port_range | tr -s ' \t\n' ' ')
if [ "$host_before" = "$host_after" ]; then pass "sysctl: the host's own values are untouched"; else fail "sysctl: host values changed: $host_before -> $host_after"; fi

host_check() {
  local out
  out=$(DESTDIR="$work/hostcheck" sysctl/check.sh 2>&1)
  local key
  for key in fs.file-max fs.nr_open kernel.io_uring_disabled net.core.netdev_max_backlog; do
    grep -q "^$key " <<<"$out" || { echo "$out"; echo "no line for $key"; return 1; }
  done
  # Every key line carries current, recommended, state and a reason.
  awk 'NR > 1 && /^[a-z]+\./ && NF < 5 { bad = 1 } END { exit bad }' <<<"$out" || { echo "$out"; return 1; }
}
t "sysctl: check.sh on the host lists fs.*, kernel.io_uring_disabled with reasons" host_check
t "sysctl: apply.sh rejects an unknown flag" bash -c '! sysctl/apply.sh --bogus 2>/dev/null'

# ---- install.sh / uninstall.sh into a staging tree ----------------------------------------------
bash tests/deploy/install_staged.sh "$work/install" >"$work/install.log" 2>&1
while IFS= read -r line; do
  case $line in
    "ok "*) pass "install: ${line#ok }" ;;
    "FAIL "*) fail "install: ${line#FAIL }" ;;
    "  "*) echo "$line" ;;
  esac
done <"$work/install.log"
grep -qE '^(ok|FAIL) ' "$work/install.log" || fail "install: install_staged.sh ran no test" "$(cat "$work/install.log")"

# ---- HAProxy in front of two ringd backends, in network namespaces ------------------------------
# Needs a built ringd, as the boot test; bounded (it takes about 30 s).
if [ -x target/release/ringd ] || [ -x target/debug/ringd ]; then
  timeout 150 bash tests/deploy/haproxy_netns.sh "$work/haproxy" >"$work/haproxy.log" 2>&1
  haproxy_rc=$?
  while IFS= read -r line; do
    case $line in
      "ok "*) pass "haproxy: ${line#ok }" ;;
      "FAIL "*) fail "haproxy: ${line#FAIL }" ;;
      "  "*) echo "$line" ;;
    esac
  done <"$work/haproxy.log"
  ((haproxy_rc == 0)) || grep -q '^FAIL ' "$work/haproxy.log" || fail "haproxy: haproxy_netns.sh exited $haproxy_rc" "$(tail -20 "$work/haproxy.log")"
else
  fail "haproxy: no target/{release,debug}/ringd (cargo build -p ringd)"
fi

# ---- a real systemd in a container ---------------------------------------------------------------
# On by default when a ringd binary is built (about 10 s; the first run also debootstraps a Debian
# root into /var/cache/ringd-boottest, about 80 s). RINGD_BOOT_TEST=0 skips it, =1 requires it.
boot=${RINGD_BOOT_TEST:-auto}
if [ "$boot" = auto ]; then
  if [ -x target/release/ringd ] || [ -x target/debug/ringd ]; then boot=1; else
    echo "note  boot test skipped: no target/{release,debug}/ringd (cargo build --release -p ringd)"
    boot=0
  fi
fi
if [ "$boot" = 1 ]; then
  bash tests/deploy/boot.sh >"$work/boot.log" 2>&1
  while IFS= read -r line; do
    case $line in
      "ok "*) pass "boot: ${line#ok }" ;;
      "FAIL "*) fail "boot: ${line#FAIL }" ;;
      "  boot: "*) echo "$line" ;;
      "  "*) echo "$line" ;;
    esac
  done <"$work/boot.log"
  grep -qE '^(ok|FAIL) ' "$work/boot.log" || fail "boot: boot.sh ran no test" "$(cat "$work/boot.log")"
fi

# ---- the README's two commands, as a newcomer on a fresh Debian 12 -------------------------------
# About 10 minutes (two builds of the workspace in the container; the first run also debootstraps
# into /var/cache/ringd-readmetest, about a minute). RINGD_README_TEST=0 skips it.
if [ "${RINGD_README_TEST:-1}" = 1 ]; then
  bash tests/deploy/readme.sh >"$work/readme.log" 2>&1
  while IFS= read -r line; do
    case $line in
      "ok "*) pass "readme: ${line#ok }" ;;
      "FAIL "*) fail "readme: ${line#FAIL }" ;;
      "  "*) echo "$line" ;;
    esac
  done <"$work/readme.log"
  grep -qE '^(ok|FAIL) ' "$work/readme.log" || fail "readme: readme.sh ran no test" "$(cat "$work/readme.log")"
else
  echo "note  the README test skipped (RINGD_README_TEST=0)"
fi
finish
