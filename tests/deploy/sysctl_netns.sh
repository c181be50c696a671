#!/usr/bin/env bash
# Part of tests/deploy/run.sh: runs inside `unshare -n` (a fresh network namespace, whose net.*
# sysctls are its own) and drives sysctl/{check,apply,revert}.sh with every file under a DESTDIR.
# Only net.* keys are written (--only net.): fs.* and kernel.* are host-wide even here.
# Prints "ok NAME" or "FAIL NAME" per test, with indented detail after a failure.
# Usage: unshare -n bash tests/deploy/sysctl_netns.sh WORKDIR
# Test bodies are functions called through t/check (SC2317), and use `A && B || { report; return 1; }`
# where the report must run when either fails (SC2015).
# shellcheck disable=SC2317,SC2015
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
work=${1:?usage: sysctl_netns.sh WORKDIR}
export DESTDIR="$work/root"
mkdir -p "$DESTDIR"

ok() { echo "ok $1"; }
bad() {
  echo "FAIL $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2"
}
check() { # check NAME CMD...
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] || { bad "not in a new network namespace (run with unshare -n)"; exit 1; }

# The net.* keys of the table, with this namespace's starting values.
mapfile -t keys < <(bash -c '. sysctl/tuning.sh; for e in "${TUNING[@]}"; do k=${e%%|*}; [[ $k == net.* ]] && [ -r "/proc/sys/${k//.//}" ] && echo "$k"; done')
[ "${#keys[@]}" -ge 5 ] || bad "too few net.* keys readable here: ${keys[*]}"
values() {
  local k
  for k in "${keys[@]}"; do printf '%s=%s\n' "$k" "$(tr -s ' \t' '  ' <"/proc/sys/${k//.//}")"; done
}
# Files under DESTDIR with their checksum, mode and mtime.
files() { (cd "$DESTDIR" && find . -type f -printf '%p %m %T@ ' -exec sha256sum {} \; | sort); }
dropin="$DESTDIR/etc/sysctl.d/90-ringd.conf"
saved="$DESTDIR/var/lib/ringd-sysctl/saved.conf"
limits="$DESTDIR/etc/security/limits.d/90-ringd.conf"

before=$(values)

# check fails on a fresh namespace (somaxconn 4096 < 65535 by default) and names the key.
out=$(sysctl/check.sh --only net. 2>&1)
rc=$?
if ((rc != 0)) && grep -qE '^net.core.somaxconn +[0-9]+ +>= 65535 +TUNE ' <<<"$out"; then
  ok "check.sh exits non-zero and marks net.core.somaxconn TUNE before apply"
else
  bad "check.sh before apply (exit $rc)" "$out"
fi

# --dry-run changes nothing: no value, no file.
out=$(sysctl/apply.sh --dry-run --only net. 2>&1)
rc=$?
if ((rc == 0)) && [ "$(values)" = "$before" ] && [ -z "$(files)" ] && grep -q 'would set  net.core.somaxconn' <<<"$out"; then
  ok "apply.sh --dry-run reports the changes and changes nothing"
else
  bad "apply.sh --dry-run (exit $rc)" "$out"$'\n'"$(files)"
fi

# apply raises every key below target, writes the drop-in, the saved values and limits.d.
out=$(sysctl/apply.sh --only net. 2>&1)
rc=$?
if ((rc == 0)); then ok "apply.sh exits 0"; else bad "apply.sh (exit $rc)" "$out"; fi
applied_ok() {
  local entry key rule target cur
  # shellcheck source=../../sysctl/tuning.sh
  . sysctl/tuning.sh
  for entry in "${TUNING[@]}"; do
    IFS='|' read -r key rule target _ <<<"$entry"
    [[ $key == net.* ]] || continue
    cur=$(current_value "$key") || continue
    meets "$rule" "$target" "$cur" || { echo "$key=$cur does not meet $rule $target"; return 1; }
    grep -qx "$key = $target" "$dropin" || { echo "drop-in lacks '$key = $target'"; cat "$dropin"; return 1; }
  done
}
check "apply.sh sets every net.* value and lists each in the sysctl.d drop-in" applied_ok
saved_ok() {
  local kv
  while IFS= read -r kv; do
    # Every changed key's previous value is saved exactly.
    local k=${kv%%=*}
    if [ "$(grep -c "^$k=" "$saved")" -gt 1 ]; then echo "$k saved twice"; return 1; fi
    grep -q "^$k = " "$dropin" || continue
    grep -qxF "$kv" "$saved" || { echo "saved file lacks $kv"; cat "$saved"; return 1; }
  done <<<"$before"
  grep -qxF 'net.core.somaxconn=4096' "$saved" || grep -q '^net.core.somaxconn=' <<<"$before" || return 1
}
check "apply.sh saves the previous values under DESTDIR" saved_ok
modes_ok() {
  local f
  for f in "$dropin" "$saved" "$limits"; do
    [ -f "$f" ] || { echo "missing $f"; return 1; }
    [ "$(stat -c %a "$f")" = 644 ] || { echo "$f has mode $(stat -c %a "$f")"; return 1; }
  done
  grep -qE '^\*  soft  nofile   [0-9]+$' "$limits" || { cat "$limits"; return 1; }
  grep -qE '^\*  hard  memlock  [0-9]+$' "$limits" || { cat "$limits"; return 1; }
  [ ! -e /etc/sysctl.d/90-ringd.conf ] || [ "${RINGD_TEST_ALLOW_HOST_DROPIN:-0}" = 1 ] || { echo "a drop-in appeared in the host's /etc"; return 1; }
}
check "apply.sh writes drop-in, saved values and limits.d (mode 644) only under DESTDIR" modes_ok

out=$(sysctl/check.sh --only net. 2>&1)
rc=$?
if ((rc == 0)) && ! grep -q ' TUNE ' <<<"$out"; then ok "check.sh passes after apply"; else bad "check.sh after apply (exit $rc)" "$out"; fi

# Idempotent: a second apply changes no value and rewrites no file.
applied=$(values)
files_applied=$(files)
sleep 0.01
out=$(sysctl/apply.sh --only net. 2>&1)
rc=$?
if ((rc == 0)) && [ "$(values)" = "$applied" ] && [ "$(files)" = "$files_applied" ] && grep -q '0 setting(s) changed' <<<"$out"; then
  ok "apply.sh twice changes nothing (values, files, mtimes)"
else
  bad "second apply.sh (exit $rc)" "$out"$'\n'"$(diff <(echo "$files_applied") <(files))"
fi

# revert --dry-run changes nothing.
out=$(sysctl/revert.sh --dry-run 2>&1)
rc=$?
if ((rc == 0)) && [ "$(values)" = "$applied" ] && [ "$(files)" = "$files_applied" ]; then
  ok "revert.sh --dry-run changes nothing"
else
  bad "revert.sh --dry-run (exit $rc)" "$out"
fi

# revert restores every original value and removes the files.
out=$(sysctl/revert.sh 2>&1)
rc=$?
if ((rc == 0)) && [ "$(values)" = "$before" ]; then
  ok "revert.sh restores every original value"
else
  bad "revert.sh (exit $rc)" "$out"$'\n'"$(diff <(echo "$before") <(values))"
fi
if [ ! -e "$dropin" ] && [ ! -e "$saved" ] && [ ! -e "$limits" ]; then
  ok "revert.sh removes the drop-in, the saved values and limits.d"
else
  bad "revert.sh left files" "$(files)"
fi
out=$(sysctl/revert.sh 2>&1)
rc=$?
if ((rc == 0)) && [ "$(values)" = "$before" ] && [ -z "$(files)" ]; then
  ok "revert.sh twice changes nothing"
else
  bad "second revert.sh (exit $rc)" "$out"
fi

# A file the operator wrote under our name is not removed.
mkdir -p "$(dirname "$limits")"
echo "* soft nofile 4096" >"$limits"
out=$(sysctl/revert.sh 2>&1)
if [ -f "$limits" ] && grep -q 'kept' <<<"$out"; then ok "revert.sh keeps a limits.d file it did not write"; else bad "revert.sh removed a foreign file" "$out"; fi
rm -f "$limits"

# Partial apply/revert with --only keeps the other keys' saved values and drop-in lines.
partial() {
  sysctl/apply.sh --only net.core. >/dev/null || return 1
  sysctl/apply.sh --only net.ipv4.tcp_fin_timeout >/dev/null || return 1
  grep -q '^net.core.somaxconn = ' "$dropin" && grep -q '^net.ipv4.tcp_fin_timeout = ' "$dropin" || { cat "$dropin"; return 1; }
  sysctl/revert.sh --only net.ipv4. >/dev/null || return 1
  grep -q '^net.core.somaxconn = ' "$dropin" && ! grep -q 'tcp_fin_timeout' "$dropin" "$saved" || { cat "$dropin" "$saved"; return 1; }
  [ "$(sysctl -n net.ipv4.tcp_fin_timeout)" = "$(sed -n 's/^net.ipv4.tcp_fin_timeout=//p' <<<"$before")" ] || return 1
  sysctl/revert.sh >/dev/null || return 1
  [ "$(values)" = "$before" ] && [ -z "$(files)" ] || { values; files; return 1; }
}
check "apply.sh/revert.sh --only: partial runs keep the drop-in consistent" partial
