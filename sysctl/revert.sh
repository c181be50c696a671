#!/usr/bin/env bash
# Restores the kernel settings sysctl/apply.sh changed to the values they had before (saved in
# var/lib/ringd-sysctl/saved.conf), and removes the sysctl.d drop-in, the saved values and the
# limits.d file it wrote. Settings apply.sh did not change are left alone. Running it again
# changes nothing.
#
# Usage: sysctl/revert.sh [--dry-run] [--only PREFIX]
#   --dry-run      print what would change, change nothing
#   --only PREFIX  only keys starting with PREFIX; the others stay applied (and so do the
#                  drop-in lines for them and the limits.d file)
# Env: DESTDIR  root for every file read or removed (default: /)
set -euo pipefail
# shellcheck source=tuning.sh
. "$(dirname "${BASH_SOURCE[0]}")/tuning.sh"

parse_only_common_args "$@"
need_root revert.sh
((DRY_RUN)) && echo "dry run: nothing will be changed"

if [ ! -f "$SAVED_FILE" ]; then
  echo "  nothing saved in $SAVED_FILE: no setting to restore"
fi
restored=0
kept=()
while read -r key; do
  [ -n "$key" ] || continue
  if ! selected "$key"; then
    kept+=("$key=$(saved_value "$key")")
    continue
  fi
  old=$(saved_value "$key")
  if ! current=$(current_value "$key"); then
    printf '  n/a        %-30s not in this kernel or network namespace; dropping its saved value %s\n' "$key" "$old"
  elif [ "$current" = "$old" ]; then
    printf '  ok         %-30s %s\n' "$key" "$current"
  elif ((DRY_RUN)); then
    printf '  would set  %-30s %s -> %s\n' "$key" "$current" "$old"
  else
    sysctl -q -w "$key=$old" || die "sysctl -w $key=$old failed"
    printf '  restored   %-30s %s -> %s\n' "$key" "$current" "$(current_value "$key")"
    restored=$((restored + 1))
  fi
done < <(saved_keys)

if ((${#kept[@]})); then
  # Partial revert: keep the saved values (and drop-in lines) of the keys not selected.
  content="$MARKER"$'\n'"# key=value before apply.sh first changed it"
  for kv in "${kept[@]}"; do content+=$'\n'"$kv"; done
  write_file "$SAVED_FILE" 0644 "$content"
  # shellcheck disable=SC2119 # no extra keys: only the saved ones
  write_file "$SYSCTL_DROPIN" 0644 "$(render_dropin)"
else
  remove_ours "$SYSCTL_DROPIN"
  remove_ours "$SAVED_FILE"
  [ -n "$ONLY" ] || remove_ours "$LIMITS_FILE"
  if ! ((DRY_RUN)); then
    rmdir "$(dirname "$SAVED_FILE")" 2>/dev/null || true
  fi
fi
if ((DRY_RUN)); then
  echo "revert: dry run done"
else
  echo "revert: $restored setting(s) restored"
fi
