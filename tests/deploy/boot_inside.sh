#!/usr/bin/env bash
# Part of tests/deploy/boot.sh: runs inside the booted container (as a oneshot unit, after
# multi-user.target), installs ringd with deploy/install.sh for real and drives it through
# systemctl. Writes "ok NAME" / "FAIL NAME" lines to /result/log, then powers the container off.
# The checkout is bind-mounted read-only at /src, the ringd binary at /ringd-bin/ringd.
# shellcheck disable=SC2317,SC2015
set -uo pipefail
exec >/result/log 2>&1
trap 'systemctl --no-block poweroff' EXIT

ok() { echo "ok $1"; }
bad() {
  echo "FAIL $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2"
}
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
prop() { systemctl show ringd.service -p "$1" --value; }

out=$(/src/deploy/install.sh --bin /ringd-bin/ringd 2>&1)
rc=$?
if ((rc == 0)) && systemctl is-active --quiet ringd.service; then
  ok "install.sh installs, enables and starts ringd.service (active)"
else
  bad "install.sh live (exit $rc)" "$out"$'\n'"$(systemctl status ringd --no-pager 2>&1)"$'\n'"$(journalctl -u ringd --no-pager 2>&1 | tail -20)"
fi
check "ringd.service is enabled" systemctl is-enabled --quiet ringd.service

fetch() {
  local body
  body=$(curl -sS --max-time 5 http://127.0.0.1:8080/) || return 1
  grep -q 'ringd is running' <<<"$body" || { echo "$body"; return 1; }
}
check "curl http://127.0.0.1:8080/ returns the installed index page" fetch

limits() {
  local nofile memlock
  nofile=$(prop LimitNOFILE)
  memlock=$(prop LimitMEMLOCK)
  echo "LimitNOFILE=$nofile LimitMEMLOCK=$memlock"
  [ "$nofile" = 1048576 ] && [ "$memlock" = $((128 << 20)) ] || return 1
  # Whether they reach the process depends on the host: a container's systemd cannot raise its
  # hard limits beyond what the host gave nspawn (boot.sh says whether it could).
  [ -f /result/can-raise-limits ] || return 0
  local pid
  pid=$(prop MainPID)
  grep -q "^Max open files *1048576 *1048576" "/proc/$pid/limits" || {
    echo "ringd (pid $pid):"; grep -E 'open files|locked memory' "/proc/$pid/limits"
    echo "systemd (pid 1):"; grep -E 'open files|locked memory' /proc/1/limits
    return 1
  }
}
if [ -f /result/can-raise-limits ]; then
  check "systemctl show: LimitNOFILE=1048576, LimitMEMLOCK=128M, and ringd runs with them" limits
else
  check "systemctl show: LimitNOFILE=1048576, LimitMEMLOCK=128M (host lacks CAP_SYS_RESOURCE: process limits not checked)" limits
fi

sandbox() {
  local pid uid capeff seccomp
  pid=$(prop MainPID)
  uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
  capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
  seccomp=$(awk '/^Seccomp:/ { print $2 }' "/proc/$pid/status")
  echo "uid=$uid CapEff=$capeff Seccomp=$seccomp"
  ((uid != 0)) || return 1
  # Only CAP_NET_BIND_SERVICE (bit 10).
  [ "$capeff" = 0000000000000400 ] || return 1
  [ "$seccomp" = 2 ] || return 1
}
check "ringd runs as a dynamic non-root user with only CAP_NET_BIND_SERVICE, under seccomp" sandbox
check "ringd's journal shows it started (READY=1 reached systemd)" bash -c 'journalctl -u ringd.service --no-pager | grep -q "Started ringd.service"'

access_log() {
  # Written at least once a second; the curl above made a line.
  for _ in $(seq 50); do
    grep -q '"GET / HTTP/1.1" 200' /var/log/ringd/access.log 2>/dev/null && break
    sleep 0.1
  done
  grep '"GET / HTTP/1.1" 200' /var/log/ringd/access.log
}
check "the access log (LogsDirectory=) has the request" access_log

watchdog() {
  [ "$(prop WatchdogUSec)" = 10s ] || { echo "WatchdogUSec=$(prop WatchdogUSec)"; return 1; }
  journalctl -u ringd.service --no-pager | grep "feeding the systemd watchdog"
}
check "the watchdog is armed (WatchdogSec=10s) and ringd feeds it" watchdog

# `systemctl reload` (ExecReload= sends SIGHUP): ringd re-reads its config in place.
reload() {
  local pid
  pid=$(prop MainPID)
  systemctl reload ringd.service || return 1
  for _ in $(seq 100); do
    journalctl -u ringd.service --no-pager | grep -q "SIGHUP: configuration reloaded" && break
    sleep 0.1
  done
  journalctl -u ringd.service --no-pager | grep "SIGHUP: configuration reloaded" || return 1
  [ "$(prop MainPID)" = "$pid" ] && systemctl is-active --quiet ringd.service
}
check "systemctl reload re-reads the config in the same process" reload

pid=$(prop MainPID)
out=$(/src/deploy/install.sh --bin /ringd-bin/ringd 2>&1)
rc=$?
if ((rc == 0)) && [ "$(prop MainPID)" = "$pid" ] && systemctl is-active --quiet ringd.service; then
  ok "install.sh again leaves the running service alone"
else
  bad "second install.sh (exit $rc)" "$out"
fi

stop() {
  systemctl stop ringd.service || return 1
  local result status
  result=$(prop Result)
  status=$(prop ExecMainStatus)
  echo "Result=$result ExecMainStatus=$status"
  [ "$result" = success ] && [ "$status" = 0 ] || return 1
  ! curl -s --max-time 2 http://127.0.0.1:8080/ >/dev/null
}
check "systemctl stop: ringd exits 0 (Result=success) and stops listening" stop
own_logs() {
  local lines
  lines=$(journalctl -u ringd.service --no-pager -o cat _COMM=ringd)
  [ -n "$lines" ] || { journalctl -u ringd.service --no-pager; return 1; }
}
check "the journal has ringd's own log lines" own_logs

out=$(/src/deploy/uninstall.sh --purge 2>&1)
rc=$?
if ((rc == 0)) && ! systemctl cat ringd.service >/dev/null 2>&1 && [ ! -e /usr/local/bin/ringd ] && [ ! -e /etc/ringd ]; then
  ok "uninstall.sh --purge stops, disables and removes everything"
else
  bad "uninstall.sh (exit $rc)" "$out"
fi
