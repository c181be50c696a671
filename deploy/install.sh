#!/usr/bin/env bash
# Installs ringd as a systemd service: the binary, the unit, the default configuration
# /etc/ringd/ringd.toml (an existing one is kept), and a site root with an index page; then
# daemon-reload, enable and (re)start. Running it again changes only what differs.
#
# Usage: deploy/install.sh [--prefix DIR] [--bin FILE] [--unitdir DIR] [--no-start]
#   --prefix DIR   the binary goes to DIR/bin/ringd (default /usr/local)
#   --bin FILE     the ringd binary to install (default: target/release/ringd of this checkout;
#                  build it with `cargo build --release -p ringd`)
#   --unitdir DIR  where the unit goes (default /etc/systemd/system)
#   --no-start     install and enable, but do not start or restart the service
# Env: DESTDIR     stage every file under DESTDIR (for packaging and tests): no systemd is needed
#                  and systemctl is not run
#
# The service runs as a transient user (DynamicUser=yes), so no account is created.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=/usr/local
bin="$here/../target/release/ringd"
unitdir=/etc/systemd/system
start=1
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
    --bin) [ $# -ge 2 ] || die "--bin needs a file"; bin=$2; shift ;;
    --bin=*) bin=${1#--bin=} ;;
    --unitdir) [ $# -ge 2 ] || die "--unitdir needs a directory"; unitdir=$2; shift ;;
    --unitdir=*) unitdir=${1#--unitdir=} ;;
    --no-start) start=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
case $prefix in /*) ;; *) die "--prefix must be an absolute path, not $prefix" ;; esac
case $unitdir in /*) ;; *) die "--unitdir must be an absolute path, not $unitdir" ;; esac
prefix=${prefix%/}

live=0
if [ -z "$DESTDIR" ]; then
  # /run/systemd/system exists exactly when systemd is the running init (sd_booted(3)).
  [ -d /run/systemd/system ] || die "this host is not running systemd (no /run/systemd/system): ringd is installed as a systemd service. To stage the files anyway (packaging), set DESTDIR=/some/dir"
  [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or stage with DESTDIR=/some/dir)"
  live=1
fi
[ -f "$bin" ] || die "no ringd binary at $bin: build it with 'cargo build --release -p ringd' or pass --bin FILE"
[ -x "$bin" ] || die "$bin is not executable"
[ -f "$here/ringd.toml" ] || die "missing $here/ringd.toml (the default configuration)"
[ -f "$here/ringd.service" ] || die "missing $here/ringd.service"

changed=0
# install_file SRC DEST MODE: copies SRC to DEST unless DEST already has the same bytes and mode.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
    echo "  unchanged  $dest"
    return 0
  fi
  install -D -m "$mode" "$src" "$dest"
  echo "  installed  $dest"
  changed=1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The binary.
install_file "$bin" "$DESTDIR$prefix/bin/ringd" 0755

# 2. The unit, pointing at the binary's real path.
sed "s#^ExecStart=/usr/local/bin/ringd #ExecStart=$prefix/bin/ringd #" "$here/ringd.service" >"$tmp/ringd.service"
grep -q "^ExecStart=$prefix/bin/ringd " "$tmp/ringd.service" || die "could not set ExecStart in the unit"
install_file "$tmp/ringd.service" "$DESTDIR$unitdir/ringd.service" 0644
# The optional socket unit: installed, not enabled (`systemctl enable --now ringd.socket`).
install_file "$here/ringd.socket" "$DESTDIR$unitdir/ringd.socket" 0644
# Rotation of the access log (SIGUSR1 makes ringd reopen it).
install_file "$here/ringd.logrotate" "$DESTDIR/etc/logrotate.d/ringd" 0644

# 3. The configuration: never overwrite the operator's.
conf="$DESTDIR/etc/ringd/ringd.toml"
if [ -e "$conf" ]; then
  if cmp -s "$here/ringd.toml" "$conf"; then
    echo "  unchanged  $conf"
  else
    echo "  kept       $conf (yours; the shipped default is $here/ringd.toml)"
  fi
else
  install -d -m 0755 "$DESTDIR/etc/ringd"
  install_file "$here/ringd.toml" "$conf" 0644
fi

# 4. The site root named by the configuration's top-level `root = "..."`, with an index page
# unless it already has one. World-readable: the dynamic service user owns nothing.
site=$(sed -n '/^\[/q; s/^[[:space:]]*root[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$conf" | head -n1)
if [ -z "$site" ]; then
  echo "  skipped    site root ($conf sets no root: ringd serves its built-in site)"
else
  case $site in /*) ;; *) die "root = \"$site\" in $conf is not an absolute path" ;; esac
  install -d -m 0755 "$DESTDIR$site"
  if [ -e "$DESTDIR$site/index.html" ]; then
    echo "  kept       $DESTDIR$site/index.html"
  else
    cat >"$tmp/index.html" <<'EOF'
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ringd</title></head>
<body>
<h1>ringd is running</h1>
<p>This page is the default index of the site root set in /etc/ringd/ringd.toml
(<code>root = ...</code>). Replace it with your site.</p>
</body>
</html>
EOF
    install_file "$tmp/index.html" "$DESTDIR$site/index.html" 0644
  fi
fi

if ((!live)); then
  echo "install: staged under $DESTDIR (systemctl not run)"
  exit 0
fi

# 5. systemd: load, enable, and start (restart if the binary or unit changed while running).
systemctl daemon-reload
systemctl enable --quiet ringd.service
echo "  enabled    ringd.service"
if ((start)); then
  if systemctl is-active --quiet ringd.service; then
    if ((changed)); then
      systemctl restart ringd.service
      echo "  restarted  ringd.service"
    else
      echo "  running    ringd.service"
    fi
  else
    systemctl start ringd.service || {
      journalctl -u ringd.service -n 20 --no-pager >&2 || true
      die "ringd.service did not start (its log is above; 'systemctl status ringd' tells more)"
    }
    echo "  started    ringd.service"
  fi
fi
echo "install: done; config /etc/ringd/ringd.toml, logs: journalctl -u ringd"
