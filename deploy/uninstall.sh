#!/usr/bin/env bash
# Removes what deploy/install.sh installed: stops and disables the service, removes the binary and
# the unit. The configuration and the site root are yours and stay, unless --purge: then
# /etc/ringd goes, and so does the site root's index page if it is still the one install.sh wrote
# (the site root itself only if that leaves it empty). Running it again changes nothing.
#
# Usage: deploy/uninstall.sh [--prefix DIR] [--unitdir DIR] [--purge]
#   --prefix DIR   as given to install.sh (default /usr/local)
#   --unitdir DIR  as given to install.sh (default /etc/systemd/system)
#   --purge        also remove the configuration and the untouched default index page
# Env: DESTDIR     remove from a staging tree instead of the host (systemctl is not run)
set -euo pipefail

prefix=/usr/local
unitdir=/etc/systemd/system
purge=0
DESTDIR=${DESTDIR:-}

die() {
  echo "error: $*" >&2
  exit 1
}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while (($#)); do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#--prefix=} ;;
    --unitdir) [ $# -ge 2 ] || die "--unitdir needs a directory"; unitdir=$2; shift ;;
    --unitdir=*) unitdir=${1#--unitdir=} ;;
    --purge) purge=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
prefix=${prefix%/}

live=0
if [ -z "$DESTDIR" ]; then
  [ -d /run/systemd/system ] || die "this host is not running systemd (no /run/systemd/system); to remove a staged tree set DESTDIR=/some/dir"
  [ "$(id -u)" -eq 0 ] || die "uninstalling from / needs root"
  live=1
fi

remove() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -f "$1"
    echo "  removed    $1"
  fi
}

unit="$DESTDIR$unitdir/ringd.service"
socket="$DESTDIR$unitdir/ringd.socket"
if ((live)) && { [ -e "$unit" ] || systemctl cat ringd.service >/dev/null 2>&1; }; then
  systemctl disable --now --quiet ringd.socket 2>/dev/null || true
  systemctl disable --now --quiet ringd.service 2>/dev/null || true
  echo "  stopped and disabled ringd.service (and ringd.socket)"
fi
remove "$unit"
remove "$socket"
remove "$DESTDIR/etc/logrotate.d/ringd"
remove "$DESTDIR$prefix/bin/ringd"
((live)) && systemctl daemon-reload

conf="$DESTDIR/etc/ringd/ringd.toml"
site=""
[ -f "$conf" ] && site=$(sed -n '/^\[/q; s/^[[:space:]]*root[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$conf" | head -n1)
if ((purge)); then
  # The index page goes only if install.sh wrote it and nobody changed it since.
  if [ -n "$site" ] && [ -f "$DESTDIR$site/index.html" ]; then
    if grep -q '<h1>ringd is running</h1>' "$DESTDIR$site/index.html" && grep -q 'Replace it with your site' "$DESTDIR$site/index.html"; then
      remove "$DESTDIR$site/index.html"
    else
      echo "  kept       $DESTDIR$site/index.html (not the default page)"
    fi
  fi
  if [ -n "$site" ] && [ -d "$DESTDIR$site" ]; then
    if rmdir "$DESTDIR$site" 2>/dev/null; then
      echo "  removed    $DESTDIR$site/"
      # install.sh created the parent too when it is ringd's own (/var/lib/ringd/www).
      parent=$(dirname "$DESTDIR$site")
      [ "$(basename "$parent")" = ringd ] && rmdir "$parent" 2>/dev/null && echo "  removed    $parent/"
    else
      echo "  kept       $DESTDIR$site/ (not empty)"
    fi
  fi
  if [ -d "$DESTDIR/etc/ringd" ]; then
    rm -rf "$DESTDIR/etc/ringd"
    echo "  removed    $DESTDIR/etc/ringd/"
  fi
else
  [ -e "$conf" ] && echo "  kept       $conf (--purge removes it)"
  [ -n "$site" ] && [ -d "$DESTDIR$site" ] && echo "  kept       $DESTDIR$site/ (--purge removes the default index page)"
fi
echo "uninstall: done"
