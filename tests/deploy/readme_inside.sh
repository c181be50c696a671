#!/usr/bin/env bash
# Part of tests/deploy/readme.sh: runs inside the container, as the ordinary user `newcomer`, in
# a fresh clone (the working directory), with only loopback. The README's two commands, each
# checked: writes "ok NAME" / "FAIL NAME" lines to /result/log.
# shellcheck disable=SC2015
set -uo pipefail
exec 3>/result/log

ok() { echo "ok   $1" >&3; }
bad() {
  echo "FAIL $1" >&3
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2" >&3
}

echo "  readme: $(id -un) (uid $(id -u)), $(cargo --version), open files $(ulimit -Sn) (hard $(ulimit -Hn)), locked memory $(ulimit -Sl) KiB, PATH=$PATH" >&3

# 1. `cargo run --release -p ringd`: builds, then serves the built-in site on 127.0.0.1:8080.
# cargo run becomes ringd (it execs the program), so $! is the server once it runs.
start=$(date +%s)
cargo run --release -p ringd >"$HOME/run.log" 2>&1 &
pid=$!
page=""
while kill -0 "$pid" 2>/dev/null; do
  page=$(curl -sS --max-time 5 http://127.0.0.1:8080/ 2>/dev/null) && break
  sleep 1
done
if grep -q '<h1>ringd is running</h1>' <<<"$page" &&
  [ "$(curl -sS --max-time 5 http://127.0.0.1:8080/plaintext)" = "Hello, World!" ]; then
  ok "cargo run --release -p ringd builds and serves the built-in site on 127.0.0.1:8080 ($(($(date +%s) - start)) s)"
else
  bad "cargo run --release -p ringd: no built-in page on 127.0.0.1:8080" "$(tail -30 "$HOME/run.log")"
fi
grep -q 'target/release/ringd' <<<"$page" && ok "the built-in page says where the ringd command is (target/release/ringd)" ||
  bad "the built-in page does not name target/release/ringd"
# Ctrl-C.
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
if ((rc == 0)) && grep -q 'SIGINT received' "$HOME/run.log"; then
  ok "Ctrl-C (SIGINT) stops it with exit status 0"
else
  bad "after SIGINT: exit status $rc" "$(tail -20 "$HOME/run.log")"
fi
# The shipped config, checked before installing as README says.
out=$(target/release/ringd check --config deploy/ringd.toml --root . 2>&1 >/dev/null) &&
  ok "ringd check --config deploy/ringd.toml --root . (the README's way before installing)" ||
  bad "ringd check --config deploy/ringd.toml --root ." "$out"

# 2. `tests/run.sh`, every part of it that can run in here (a subset of the test binaries: see
# tests/deploy/readme.sh).
start=$(date +%s)
# shellcheck disable=SC2086
RINGD_DEPLOY_TESTS=0 RINGD_INSTALL_HTTPWG=0 tests/run.sh $RINGD_README_TESTS >"$HOME/tests.log" 2>&1
rc=$?
summary=$(grep -E '^test result:' "$HOME/tests.log" | awk '{ p += $4; f += $6 } END { print p " passed, " f " failed in " NR " test binaries" }')
if ((rc == 0)); then
  ok "tests/run.sh $(tr -s ' \n' ' ' <<<"$RINGD_README_TESTS")passes: $summary, and the soak ($(($(date +%s) - start)) s)"
else
  bad "tests/run.sh (exit $rc): $summary" "$(sed -n '/^tests\/run.sh: [0-9]* failure/,$p' "$HOME/tests.log")"$'\n'"$(grep -E 'panicked at|^---- |^soak: ' "$HOME/tests.log" | head -60)"
  cp "$HOME/tests.log" /result/tests.log
fi
# What the suite found of the kernel in here (a container's filter may refuse cachestat).
cat >"$HOME/cachestat.py" <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
with open(os.path.expanduser("~/cachestat.py"), "rb") as f:
    rng, stat = (ctypes.c_uint64 * 2)(0, 4096), (ctypes.c_uint64 * 5)()
    rc = libc.syscall(451, f.fileno(), rng, stat, 0)
print("answers" if rc == 0 else "refused: " + os.strerror(ctypes.get_errno()))
EOF
echo "  readme: cachestat in the container: $(python3 "$HOME/cachestat.py" 2>&1)" >&3
exit 0
