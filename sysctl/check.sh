#!/usr/bin/env bash
# Prints each kernel setting ringd cares about: current value, recommended value, and why.
# Exits 1 if any is below the recommendation, 0 if all meet it (keys this kernel or network
# namespace lacks are reported as n/a and do not fail the check).
#
# Usage: sysctl/check.sh [--only PREFIX]      e.g. --only net. (per network namespace keys)
# Env:   DESTDIR  where to look for the persistent drop-in and limits.d file (default: /)
set -euo pipefail
# shellcheck source=tuning.sh
. "$(dirname "${BASH_SOURCE[0]}")/tuning.sh"

parse_only_common_args "$@"

low=0
printf '%-30s %-14s %-18s %-5s %s\n' KEY CURRENT RECOMMENDED STATE REASON
for entry in "${TUNING[@]}"; do
  IFS='|' read -r key rule target reason <<<"$entry"
  selected "$key" || continue
  if ! current=$(current_value "$key"); then
    state=n/a current="-"
  elif meets "$rule" "$target" "$current"; then
    state=ok
  else
    state=TUNE low=$((low + 1))
  fi
  printf '%-30s %-14s %-18s %-5s %s\n' "$key" "$current" "$(describe_target "$rule" "$target")" "$state" "$reason"
done

# Persistence and the ulimit side: information, not part of the verdict (the shell running this
# is not the service; the unit sets its own limits).
echo
if [ -f "$SYSCTL_DROPIN" ]; then
  echo "persistent: $SYSCTL_DROPIN sets $(grep -c '^[a-z]' "$SYSCTL_DROPIN") key(s) at boot"
else
  echo "persistent: no $SYSCTL_DROPIN (sysctl/apply.sh writes it)"
fi
if [ -f "$LIMITS_FILE" ]; then
  echo "limits:     $LIMITS_FILE present"
else
  echo "limits:     no $LIMITS_FILE (sysctl/apply.sh writes it; the systemd unit has its own)"
fi
echo "this shell: nofile $(ulimit -n) (ringd.service: $LIMIT_NOFILE), memlock $(ulimit -l) KiB (ringd.service: $LIMIT_MEMLOCK_KIB)"

if ((low)); then
  echo "check: $low setting(s) below the recommendation; sysctl/apply.sh raises them" >&2
  exit 1
fi
echo "check: every setting meets the recommendation"
