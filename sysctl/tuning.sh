# shellcheck shell=bash
# The kernel tuning ringd recommends, and the helpers that check.sh, apply.sh and revert.sh share.
# Sourced, not run. Every file the scripts read or write lives under "$DESTDIR" (empty on a host),
# so that tests and packagers can stage them; /proc/sys itself is always the running kernel's.

# key|rule|target|reason. Rules: min (current >= target), max (current <= target), eq, range
# (a "low high" pair whose span must cover the target's).
TUNING=(
  "net.core.somaxconn|min|65535|caps every listen() backlog: ringd's backlog (4096 by default) is silently cut to it"
  "net.ipv4.tcp_max_syn_backlog|min|65535|half-open connections kept during a SYN burst before SYN cookies take over"
  "net.core.netdev_max_backlog|min|16384|packets queued per CPU when the NIC delivers faster than the kernel drains them (host-wide)"
  "net.ipv4.ip_local_port_range|range|1024 65535|more ephemeral ports for outgoing connections (health checks, proxies, load generators)"
  "net.ipv4.tcp_tw_reuse|eq|1|lets new outgoing connections reuse ports in TIME_WAIT (safe with TCP timestamps)"
  "net.ipv4.tcp_fin_timeout|max|15|frees orphaned FIN_WAIT_2 sockets of vanished clients after 15 s instead of 60"
  "net.ipv4.tcp_migrate_req|eq|1|a closing SO_REUSEPORT listener hands its queued connections to a live one instead of resetting them (5.14+)"
  "fs.file-max|min|2097152|system-wide open-file cap: every connection is a descriptor"
  "fs.nr_open|min|1048576|per-process descriptor cap: the unit's LimitNOFILE=1048576 cannot exceed it"
  "kernel.io_uring_disabled|eq|0|1 or 2 switch io_uring off (1 allows only kernel.io_uring_group): ringd cannot create its rings"
)

# Files, all under DESTDIR. (Used by the scripts that source this file.)
# shellcheck disable=SC2034
DESTDIR=${DESTDIR:-}
# shellcheck disable=SC2034
SYSCTL_DROPIN="$DESTDIR/etc/sysctl.d/90-ringd.conf"
SAVED_FILE="$DESTDIR/var/lib/ringd-sysctl/saved.conf"
# shellcheck disable=SC2034
LIMITS_FILE="$DESTDIR/etc/security/limits.d/90-ringd.conf"
# The first line of every file we write: revert.sh removes only files that carry it.
MARKER="# Written by ringd's sysctl/apply.sh; sysctl/revert.sh removes it."

# The ulimit side, matching deploy/ringd.service (LimitNOFILE=, LimitMEMLOCK=).
LIMIT_NOFILE=1048576
LIMIT_MEMLOCK_KIB=131072

# Set by parse_common_args.
DRY_RUN=0
ONLY=""

die() {
  echo "error: $*" >&2
  exit 1
}

# The calling script's header comment.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# For scripts that take only the common flags: parse them, answer --help, refuse the rest.
parse_only_common_args() {
  parse_common_args "$@"
  local a
  for a in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
    case $a in
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument $a (see --help)" ;;
    esac
  done
}

# Handles the flags every script takes; the rest are left in REST_ARGS.
parse_common_args() {
  REST_ARGS=()
  while (($#)); do
    case $1 in
      --dry-run | -n) DRY_RUN=1 ;;
      --only)
        [ $# -ge 2 ] || die "--only needs a key prefix (e.g. --only net.)"
        ONLY=$2
        shift
        ;;
      --only=*) ONLY=${1#--only=} ;;
      *) REST_ARGS+=("$1") ;;
    esac
    shift
  done
}

# True if KEY is selected by --only.
selected() {
  [ -z "$ONLY" ] || [[ $1 == "$ONLY"* ]]
}

# Prints KEY's current value with runs of blanks squeezed to one space; fails if the running
# kernel (or this network namespace) has no such key.
current_value() {
  local path="/proc/sys/${1//./\/}"
  [ -r "$path" ] || return 1
  tr -s ' \t' '  ' <"$path" | sed 's/ *$//'
}

# True if CURRENT meets RULE TARGET.
meets() {
  local rule=$1 target=$2 current=$3
  case $rule in
    min) ((current >= target)) ;;
    max) ((current <= target)) ;;
    eq) [ "$current" = "$target" ] ;;
    range)
      local clow chigh tlow thigh
      read -r clow chigh <<<"$current"
      read -r tlow thigh <<<"$target"
      ((clow <= tlow && chigh >= thigh))
      ;;
    *) die "unknown rule $rule" ;;
  esac
}

# "key" -> "rule target" text as shown to people.
describe_target() {
  case $1 in
    min) echo ">= $2" ;;
    max) echo "<= $2" ;;
    eq) echo "= $2" ;;
    range) echo "covers $2" ;;
  esac
}

# Prints the saved value of KEY; fails if none was saved.
saved_value() {
  [ -f "$SAVED_FILE" ] || return 1
  local line
  line=$(grep -m1 -- "^$1=" "$SAVED_FILE") || return 1
  printf '%s\n' "${line#*=}"
}

# Prints the keys in the saved file, in file order.
saved_keys() {
  [ -f "$SAVED_FILE" ] || return 0
  grep -v '^#' "$SAVED_FILE" | grep '=' | cut -d= -f1
}

# Prints the target of KEY from TUNING.
target_of() {
  local entry key rule target
  for entry in "${TUNING[@]}"; do
    IFS='|' read -r key rule target _ <<<"$entry"
    [ "$key" = "$1" ] && { printf '%s\n' "$target"; return 0; }
  done
  return 1
}

# Writes CONTENT to FILE (mode MODE) unless it already holds exactly that; says what it did.
# Honours DRY_RUN.
write_file() {
  local file=$1 mode=$2 content=$3
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
    echo "  unchanged  $file"
    return 0
  fi
  if ((DRY_RUN)); then
    echo "  would write $file"
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.tmp.$$"
  chmod "$mode" "$file.tmp.$$"
  mv -f "$file.tmp.$$" "$file"
  echo "  wrote      $file"
}

# Removes FILE if we wrote it (it starts with MARKER). Honours DRY_RUN.
remove_ours() {
  local file=$1
  [ -e "$file" ] || return 0
  if [ "$(head -n1 "$file")" != "$MARKER" ]; then
    echo "  kept       $file (not written by apply.sh)"
    return 0
  fi
  if ((DRY_RUN)); then
    echo "  would remove $file"
  else
    rm -f "$file"
    echo "  removed    $file"
  fi
}

# The sysctl.d drop-in for the keys apply.sh has raised (those with a saved previous value),
# plus the keys given as arguments (those a dry run would raise).
render_dropin() {
  local key
  local -A seen=()
  echo "$MARKER"
  echo "# ringd's kernel tuning (sysctl/check.sh prints the reason for each value)."
  while read -r key; do
    if [ -z "$key" ] || [ -n "${seen[$key]:-}" ]; then continue; fi
    seen[$key]=1
    echo "$key = $(target_of "$key")"
  done < <(saved_keys; printf '%s\n' "$@")
}

render_limits() {
  local who=$1
  cat <<EOF
$MARKER
# Descriptor and locked-memory limits for ringd started from a login session or any service
# manager that goes through PAM (pam_limits reads this). Under systemd the unit's LimitNOFILE= and
# LimitMEMLOCK= apply instead. memlock is in KiB: workers x (buffers.count x buffers.size + ~100 KiB
# per 1024 ring entries).
$who  soft  nofile   $LIMIT_NOFILE
$who  hard  nofile   $LIMIT_NOFILE
$who  soft  memlock  $LIMIT_MEMLOCK_KIB
$who  hard  memlock  $LIMIT_MEMLOCK_KIB
EOF
}

need_root() {
  ((DRY_RUN)) && return 0
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (sysctl -w); try --dry-run to see what it would do"
}
