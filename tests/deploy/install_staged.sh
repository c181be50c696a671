#!/usr/bin/env bash
# Part of tests/deploy/run.sh: deploy/install.sh and deploy/uninstall.sh into a DESTDIR staging
# tree (no systemd needed), plus the refusal on a host without systemd (inside a mount namespace
# where /run is an empty tmpfs). Prints "ok NAME" / "FAIL NAME" per test.
# Usage: bash tests/deploy/install_staged.sh WORKDIR
# Test bodies are functions called through t/check (SC2317), and use `A && B || { report; return 1; }`
# where the report must run when either fails (SC2015).
# shellcheck disable=SC2317,SC2015
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
work=${1:?usage: install_staged.sh WORKDIR}
stage="$work/stage"
prefix=/opt/ringd
mkdir -p "$work"

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

# A stand-in binary: these tests are about files, not about ringd itself.
printf '#!/bin/sh\necho ringd stand-in\n' >"$work/ringd" && chmod 0755 "$work/ringd"
site=$(sed -n '/^\[/q; s/^root *= *"\([^"]*\)".*/\1/p' deploy/ringd.toml)
[ -n "$site" ] || site=""
files() { (cd "$stage" && find . -printf '%y %m %T@ %p\n' | sort -k4); }

out=$(DESTDIR="$stage" deploy/install.sh --prefix "$prefix" --bin "$work/ringd" 2>&1)
rc=$?
if ((rc == 0)); then ok "install.sh into DESTDIR exits 0"; else bad "install.sh (exit $rc)" "$out"; fi

landed() {
  local f mode
  while read -r f mode; do
    [ -f "$stage$f" ] || { echo "missing $f"; return 1; }
    [ "$(stat -c %a "$stage$f")" = "$mode" ] || { echo "$f has mode $(stat -c %a "$stage$f"), want $mode"; return 1; }
  done <<EOF
$prefix/bin/ringd 755
/etc/systemd/system/ringd.service 644
/etc/systemd/system/ringd.socket 644
/etc/logrotate.d/ringd 644
/etc/ringd/ringd.toml 644
EOF
  cmp "$work/ringd" "$stage$prefix/bin/ringd" || return 1
  cmp deploy/ringd.toml "$stage/etc/ringd/ringd.toml" || return 1
  grep -qx "ExecStart=$prefix/bin/ringd serve --config /etc/ringd/ringd.toml" "$stage/etc/systemd/system/ringd.service" || { echo "ExecStart not rewritten for --prefix"; return 1; }
  # Apart from ExecStart the installed unit is deploy/ringd.service.
  diff <(grep -v '^ExecStart=' deploy/ringd.service) <(grep -v '^ExecStart=' "$stage/etc/systemd/system/ringd.service") || return 1
  if [ -n "$site" ]; then
    [ -f "$stage$site/index.html" ] && [ "$(stat -c %a "$stage$site/index.html")" = 644 ] || { echo "no index page in $site"; return 1; }
    [ "$(stat -c %a "$stage$site")" = 755 ] || { echo "site root mode $(stat -c %a "$stage$site")"; return 1; }
  fi
  [ ! -e "$stage/usr/local/bin/ringd" ] || { echo "binary installed under /usr/local despite --prefix"; return 1; }
}
check "binary (755), unit (644, ExecStart under --prefix), config (644), site root ${site:-none} with index.html land in DESTDIR" landed

staged_verify() {
  local out
  sed "s#^ExecStart=$prefix/bin/ringd #ExecStart=$stage$prefix/bin/ringd #" "$stage/etc/systemd/system/ringd.service" >"$work/installed-ringd.service"
  out=$(systemd-analyze verify "$work/installed-ringd.service" 2>&1) && [ -z "$out" ] || { echo "$out"; return 1; }
}
check "the installed unit passes systemd-analyze verify" staged_verify

before=$(files)
sleep 0.01
out=$(DESTDIR="$stage" deploy/install.sh --prefix "$prefix" --bin "$work/ringd" 2>&1)
rc=$?
if ((rc == 0)) && [ "$(files)" = "$before" ] && ! grep -q 'installed ' <<<"$out"; then
  ok "install.sh twice changes nothing (files, modes, mtimes)"
else
  bad "second install.sh (exit $rc)" "$out"$'\n'"$(diff <(echo "$before") <(files))"
fi

# An operator's configuration and index page survive a reinstall with a new binary.
echo '# mine' >>"$stage/etc/ringd/ringd.toml"
[ -z "$site" ] || echo '<p>mine</p>' >"$stage$site/index.html"
printf '#!/bin/sh\necho ringd v2\n' >"$work/ringd"
out=$(DESTDIR="$stage" deploy/install.sh --prefix "$prefix" --bin "$work/ringd" 2>&1)
kept_ok() {
  grep -q '^# mine$' "$stage/etc/ringd/ringd.toml" || { echo "config overwritten"; return 1; }
  [ -z "$site" ] || grep -q mine "$stage$site/index.html" || { echo "index page overwritten"; return 1; }
  cmp "$work/ringd" "$stage$prefix/bin/ringd" || { echo "new binary not installed"; return 1; }
}
check "reinstall keeps an edited config and index page, updates the binary" kept_ok

# Without systemd (and without DESTDIR) both scripts refuse, with a clear message, touching nothing.
refuse() {
  local script=$1 out rc
  out=$(unshare -m bash -c 'mount -t tmpfs none /run && exec "$@"' _ "$script" --prefix "$work/never" --bin "$work/ringd" 2>&1)
  rc=$?
  ((rc != 0)) || { echo "exit 0: $out"; return 1; }
  grep -q '^error: this host is not running systemd' <<<"$out" || { echo "$out"; return 1; }
  [ ! -e "$work/never" ] || { echo "files written"; return 1; }
}
check "install.sh refuses on a host without systemd" refuse deploy/install.sh
refuse_uninstall() {
  local out rc
  out=$(unshare -m bash -c 'mount -t tmpfs none /run && exec deploy/uninstall.sh' 2>&1)
  rc=$?
  ((rc != 0)) && grep -q '^error: this host is not running systemd' <<<"$out" || { echo "exit $rc: $out"; return 1; }
}
check "uninstall.sh refuses on a host without systemd" refuse_uninstall
# shellcheck disable=SC2016 # expanded by the inner bash
check "install.sh rejects a relative --prefix" bash -c '! DESTDIR="$1" deploy/install.sh --prefix opt --bin "$2" 2>/dev/null' _ "$stage" "$work/ringd"
# shellcheck disable=SC2016 # expanded by the inner bash
check "install.sh names a missing binary" bash -c 'DESTDIR="$1" deploy/install.sh --bin /nonexistent 2>&1 | grep -q "cargo build --release -p ringd"' _ "$stage"

# uninstall removes binary and unit, keeps config and site; --purge removes those too.
out=$(DESTDIR="$stage" deploy/uninstall.sh --prefix "$prefix" 2>&1)
rc=$?
removed_ok() {
  ((rc == 0)) || { echo "exit $rc: $out"; return 1; }
  [ ! -e "$stage$prefix/bin/ringd" ] && [ ! -e "$stage/etc/systemd/system/ringd.service" ] || { echo "$out"; return 1; }
  [ -f "$stage/etc/ringd/ringd.toml" ] || { echo "config removed without --purge"; return 1; }
}
check "uninstall.sh removes binary and unit, keeps the config" removed_ok

# Reinstall a pristine tree, then purge it: nothing but empty directories may remain.
rm -rf "$stage"
DESTDIR="$stage" deploy/install.sh --prefix "$prefix" --bin "$work/ringd" >/dev/null 2>&1
out=$(DESTDIR="$stage" deploy/uninstall.sh --prefix "$prefix" --purge 2>&1)
rc=$?
purged_ok() {
  ((rc == 0)) || { echo "exit $rc: $out"; return 1; }
  local left
  left=$(cd "$stage" && find . ! -type d)
  [ -z "$left" ] || { echo "left behind: $left"; return 1; }
  [ ! -e "$stage/etc/ringd" ] || { echo "/etc/ringd left"; return 1; }
  [ -z "$site" ] || [ ! -e "$stage$site" ] || { echo "site root left"; return 1; }
}
check "uninstall.sh --purge removes config, default index page and site root" purged_ok
out=$(DESTDIR="$stage" deploy/uninstall.sh --prefix "$prefix" --purge 2>&1)
rc=$?
if ((rc == 0)); then ok "uninstall.sh twice is a no-op"; else bad "second uninstall.sh (exit $rc)" "$out"; fi

# --purge keeps a site the operator filled.
rm -rf "$stage"
DESTDIR="$stage" deploy/install.sh --prefix "$prefix" --bin "$work/ringd" >/dev/null 2>&1
if [ -n "$site" ]; then
  echo hi >"$stage$site/about.html"
  DESTDIR="$stage" deploy/uninstall.sh --prefix "$prefix" --purge >/dev/null 2>&1
  if [ -f "$stage$site/about.html" ] && [ ! -e "$stage$site/index.html" ]; then
    ok "uninstall.sh --purge keeps the operator's site files"
  else
    bad "uninstall.sh --purge and operator files" "$(files)"
  fi
fi
