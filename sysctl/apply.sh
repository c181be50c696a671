#!/usr/bin/env bash
# Raises every kernel setting below ringd's recommendation (sysctl/check.sh lists them with the
# reason for each): at once with `sysctl -w`, and at boot through a sysctl.d drop-in. The value a
# key had before its first change is saved, so that sysctl/revert.sh can restore it. Settings that
# already meet the recommendation are never touched (apply.sh never lowers a limit). Also writes a
# limits.d file with the descriptor and locked-memory limits of deploy/ringd.service.
# Running it again changes nothing.
#
# Usage: sysctl/apply.sh [--dry-run] [--only PREFIX] [--user NAME]
#   --dry-run      print what would change, change nothing
#   --only PREFIX  only keys starting with PREFIX (e.g. net. inside a network namespace)
#   --user NAME    the limits.d lines' domain (default "*": every user but root)
# Env: DESTDIR  root for every file written or read: the drop-in etc/sysctl.d/90-ringd.conf,
#               the saved values var/lib/ringd-sysctl/saved.conf, etc/security/limits.d/90-ringd.conf
set -euo pipefail
# shellcheck source=tuning.sh
. "$(dirname "${BASH_SOURCE[0]}")/tuning.sh"

parse_common_args "$@"
limits_user='*'
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while (($#)); do
  case $1 in
    --user) [ $# -ge 2 ] || die "--user needs a name"; limits_user=$2; shift ;;
    --user=*) limits_user=${1#--user=} ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
need_root apply.sh
((DRY_RUN)) && echo "dry run: nothing will be changed"

changed=0
would=()
for entry in "${TUNING[@]}"; do
  IFS='|' read -r key rule target reason <<<"$entry"
  selected "$key" || continue
  if ! current=$(current_value "$key"); then
    printf '  n/a        %-30s not in this kernel or network namespace\n' "$key"
    continue
  fi
  if meets "$rule" "$target" "$current"; then
    printf '  ok         %-30s %s\n' "$key" "$current"
    continue
  fi
  if ((DRY_RUN)); then
    printf '  would set  %-30s %s -> %s  (%s)\n' "$key" "$current" "$target" "$reason"
    would+=("$key")
    continue
  fi
  # Save the value from before our first change only: a second apply must not overwrite it.
  if ! saved_value "$key" >/dev/null; then
    mkdir -p "$(dirname "$SAVED_FILE")"
    [ -f "$SAVED_FILE" ] || printf '%s\n# key=value before apply.sh first changed it\n' "$MARKER" >"$SAVED_FILE"
    printf '%s=%s\n' "$key" "$current" >>"$SAVED_FILE"
  fi
  sysctl -q -w "$key=$target" || die "sysctl -w $key=$target failed"
  now=$(current_value "$key")
  meets "$rule" "$target" "$now" || die "$key is $now after sysctl -w $key=$target (a container or LSM may forbid it)"
  printf '  set        %-30s %s -> %s  (%s)\n' "$key" "$current" "$now" "$reason"
  changed=$((changed + 1))
done

# The drop-in lists every key apply.sh has raised so far (those with a saved value), so that it
# stays complete across runs with different --only.
if [ -n "$(saved_keys)" ] || ((${#would[@]})); then
  write_file "$SYSCTL_DROPIN" 0644 "$(render_dropin "${would[@]+"${would[@]}"}")"
fi
write_file "$LIMITS_FILE" 0644 "$(render_limits "$limits_user")"
if ((DRY_RUN)); then
  echo "apply: dry run done"
else
  echo "apply: $changed setting(s) changed; saved previous values in $SAVED_FILE"
fi
