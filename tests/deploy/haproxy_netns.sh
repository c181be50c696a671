#!/usr/bin/env bash
# Part of tests/deploy/run.sh: two ringd backends behind one HAProxy, each in a network
# namespace of its own made here and joined by veth pairs (10.200.x.y exists only inside them:
# no packet reaches the host's network), wrk in a fourth. HAProxy runs
# deploy/haproxy/haproxy.cfg as shipped (its global section and addresses swapped): PROXY v2 to
# the backends, /readyz checks on their admin port, retries and redispatch.
#   (a) under wrk, backend 1 is drained (SIGTERM) and started again, then backend 2: /readyz
#       takes each out of HAProxy while a request in progress on it completes, and no request
#       may fail;
#   (b) under wrk, backend 1 is killed (SIGKILL): the failed requests are reported (the target,
#       asserted, is none: GETs are retried on the other backend);
#   (c) the backends' access logs name the client's address, never HAProxy's.
# Prints "ok NAME" / "FAIL NAME" lines and the figures ("  haproxy: ..."). Needs root, ip,
# haproxy, wrk, curl, python3 and a built ringd (the newer of target/release and target/debug).
# Cleans up every namespace and process it made, however it ends; about 30 s.
# Usage: bash tests/deploy/haproxy_netns.sh WORKDIR
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
repo=$(pwd)
work=${1:?usage: haproxy_netns.sh WORKDIR}
mkdir -p "$work"

ok() { echo "ok $1"; }
bad() {
  echo "FAIL $1"
  [ -z "${2:-}" ] || while IFS= read -r l; do echo "  $l"; done <<<"$2"
}
say() { echo "  haproxy: $*"; }

bin="$repo/target/release/ringd"
if [ ! -x "$bin" ] || { [ -x "$repo/target/debug/ringd" ] && [ "$repo/target/debug/ringd" -nt "$bin" ]; }; then
  bin="$repo/target/debug/ringd"
fi
[ -x "$bin" ] || { bad "no target/release/ringd (or target/debug/ringd): cargo build -p ringd"; exit 1; }
for tool in ip haproxy wrk curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { bad "$tool is missing (apt-get install iproute2 haproxy wrk curl python3)"; exit 1; }
done
say "testing $bin"

# ---- namespaces, joined by veth pairs; cleaned up whatever happens --------------------------------
tag="rdha$$"
C="$tag-client" L="$tag-lb" B1="$tag-b1" B2="$tag-b2"
CLIENT=10.200.1.1 LB=10.200.1.2
B1_IP=10.200.2.2 B1_LB=10.200.2.1
B2_IP=10.200.3.2 B2_LB=10.200.3.1
declare -A pid=()
cleanup() {
  local p ns
  exec 2>/dev/null # no job reports for what is killed here
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done
  for ns in "$C" "$L" "$B1" "$B2"; do
    # Anything still running in a namespace of ours was started by this script.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  wait 2>/dev/null
}
trap cleanup EXIT
# A signal (the caller's timeout) ends the script through the EXIT trap too.
trap 'exit 1' INT TERM

net_up() {
  local ns
  for ns in "$C" "$L" "$B1" "$B2"; do
    ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
  done
  # Each pair is created inside its namespaces: the host's own namespace never holds an end.
  ip -n "$C" link add c0 type veth peer name lc netns "$L" &&
    ip -n "$B1" link add b0 type veth peer name l1 netns "$L" &&
    ip -n "$B2" link add b0 type veth peer name l2 netns "$L" || return 1
  ip -n "$C" addr add "$CLIENT/24" dev c0 && ip -n "$C" link set c0 up &&
    ip -n "$L" addr add "$LB/24" dev lc && ip -n "$L" link set lc up &&
    ip -n "$L" addr add "$B1_LB/24" dev l1 && ip -n "$L" link set l1 up &&
    ip -n "$L" addr add "$B2_LB/24" dev l2 && ip -n "$L" link set l2 up &&
    ip -n "$B1" addr add "$B1_IP/24" dev b0 && ip -n "$B1" link set b0 up &&
    ip -n "$B2" addr add "$B2_IP/24" dev b0 && ip -n "$B2" link set b0 up
}
if out=$(net_up 2>&1); then ok "four network namespaces joined by veth pairs"; else bad "setting up the namespaces" "$out"; exit 1; fi

# ---- backends ---------------------------------------------------------------------------------
# Backend 1 takes its listener from a config file (the per-address switch), backend 2 from the
# flags; both trust only HAProxy's address on their link.
cat >"$work/b1.toml" <<EOF
listen = [{ address = "$B1_IP:8080", proxy_protocol = true }]
admin = "$B1_IP:9090"

[access_log]
path = "$work/b1-access.log"

[proxy_protocol]
trusted = ["$B1_LB/32"]
EOF
start_backend() { # start_backend 1|2
  local n=$1
  if [ "$n" = 1 ]; then
    ip netns exec "$B1" "$bin" serve --config "$work/b1.toml" --workers 1 --pin false --drain-timeout 20 \
      --log-format human >>"$work/b1.log" 2>&1 &
  else
    ip netns exec "$B2" "$bin" serve --listen "$B2_IP:8080" --proxy-protocol --proxy-protocol-trusted "$B2_LB/32" \
      --admin "$B2_IP:9090" --access-log "$work/b2-access.log" --workers 1 --pin false --drain-timeout 20 \
      --log-format human >>"$work/b2.log" 2>&1 &
  fi
  pid[b$n]=$!
}
backend_ip() { if [ "$1" = 1 ]; then echo "$B1_IP"; else echo "$B2_IP"; fi; }
readyz() { # readyz 1|2: the status code HAProxy's namespace gets from /readyz
  ip netns exec "$L" curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(backend_ip "$1"):9090/readyz"
}
wait_ready() { # wait_ready 1|2 (bounded)
  local deadline=$((SECONDS + 30))
  until [ "$(readyz "$1")" = 200 ]; do
    ((SECONDS < deadline)) || { echo "backend $1 not ready after 30 s"; tail -5 "$work/b$1.log"; return 1; }
    kill -0 "${pid[b$1]}" 2>/dev/null || { echo "backend $1 exited"; tail -5 "$work/b$1.log"; return 1; }
    sleep 0.1
  done
}
start_backend 1
start_backend 2
if out=$( { wait_ready 1 && wait_ready 2; } 2>&1); then ok "two ringd backends answer /readyz"; else bad "starting the backends" "$out"; exit 1; fi

# ---- HAProxy: the shipped defaults, frontend and backend, with this test's addresses ------------
{
  cat <<EOF
global
    stats socket $work/haproxy.sock level admin
    maxconn 4096

EOF
  sed -n '/^defaults/,$p' deploy/haproxy/haproxy.cfg |
    sed -e "s|^\( *bind\) .*|\1 $LB:8080|" -e '/^ *server /d'
  echo "    server b1 $B1_IP:8080"
  echo "    server b2 $B2_IP:8080"
} >"$work/haproxy.cfg"
if out=$(haproxy -c -f "$work/haproxy.cfg" 2>&1); then :; else bad "haproxy -c on the test's configuration" "$out"; exit 1; fi
ip netns exec "$L" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pid[haproxy]=$!

hastat() { # hastat PROXY SERVER FIELD...: fields of `show stat`
  python3 - "$work/haproxy.sock" "$@" <<'PY'
import csv, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
rows = list(csv.reader(data.decode().lstrip("# ").splitlines()))
head = rows[0]
for r in rows[1:]:
    if len(r) >= len(head) - 1 and r[0] == sys.argv[2] and r[1] == sys.argv[3]:
        print(" ".join(r[head.index(f)] or "0" for f in sys.argv[4:]))
        break
PY
}
wait_up() { # wait_up b1|b2: until HAProxy's checks say UP (bounded)
  local deadline=$((SECONDS + 30)) st=""
  while :; do
    st=$(hastat ringd "$1" status 2>/dev/null)
    [ "$st" = UP ] && return 0
    ((SECONDS < deadline)) || { echo "HAProxy says $1 is ${st:-unknown} after 30 s"; tail -5 "$work/haproxy.log"; return 1; }
    sleep 0.2
  done
}
if out=$( { wait_up b1 && wait_up b2; } 2>&1); then ok "HAProxy sees both backends UP (GET /readyz)"; else bad "HAProxy health checks" "$out"; exit 1; fi

# ---- load ---------------------------------------------------------------------------------------
# wrk runs until told to stop (SIGINT makes it print its figures). It is niced, so that on a busy
# two-core machine the backends, HAProxy and its checks are not starved by the load itself.
start_wrk() { # start_wrk NAME
  ip netns exec "$C" nice -n 10 wrk -t2 -c16 -d300s --timeout 10s "http://$LB:8080/plaintext" >"$work/wrk-$1.out" 2>&1 &
  pid[wrk]=$!
}
stop_wrk() {
  kill -INT "${pid[wrk]}" 2>/dev/null
  wait "${pid[wrk]}" 2>/dev/null
  unset 'pid[wrk]'
}
# wrk_figures NAME: "REQUESTS FAILED (detail)"; failed = non-2xx/3xx + socket errors.
wrk_figures() {
  local f="$work/wrk-$1.out" req non2xx c r w t
  req=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$f")
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9][0-9]*\).*/\1/p' "$f")
  read -r c r w t < <(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$f")
  echo "${req:-0} $((${non2xx:-0} + ${c:-0} + ${r:-0} + ${w:-0} + ${t:-0})) (non-2xx ${non2xx:-0}, connect ${c:-0}, read ${r:-0}, write ${w:-0}, timeout ${t:-0})"
}
served_since() { # served_since FILE LINES_BEFORE: access log lines added since
  local now
  now=$(wc -l <"$1" 2>/dev/null || echo 0)
  echo $((now - $2))
}
log_lines() { wc -l <"$work/b$1-access.log" 2>/dev/null || echo 0; }

# ---- (a) rolling restart: drain and restart backend 1, then backend 2 ---------------------------
# A request in progress on the backend (sent from HAProxy's namespace, half its head) keeps its
# drain going until the test finishes it, so that the test sees /readyz take the backend out of
# HAProxy while it still runs; then the request is answered and the drain ends.
HOLD='
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 8080), timeout=60)
s.sendall(b"PROXY TCP4 10.200.1.1 10.200.1.2 40000 8080\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n")
print("sent", flush=True)
deadline = time.time() + 60
while not os.path.exists(sys.argv[2]):
    if time.time() > deadline:
        sys.exit("never told to finish the request")
    time.sleep(0.05)
s.sendall(b"\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n")[0].decode().replace("\r\n", " | "))
'
restart() { # restart N: SIGTERM, HAProxy takes it out, the drain ends, start again, back UP
  local n=$1 started st hold go down code deadline
  go="$work/go-$n"
  rm -f "$go"
  ip netns exec "$L" python3 -c "$HOLD" "$(backend_ip "$n")" "$go" >"$work/hold-$n.out" 2>&1 &
  hold=$!
  deadline=$((SECONDS + 20))
  until grep -q '^sent' "$work/hold-$n.out"; do
    ((SECONDS < deadline)) || { echo "the held request was not sent"; cat "$work/hold-$n.out"; return 1; }
    sleep 0.05
  done
  started=$SECONDS
  kill -TERM "${pid[b$n]}"
  # Still running (the held request), answering /readyz 503: HAProxy's checks take it out.
  deadline=$((SECONDS + 20))
  until [ "$(hastat ringd "b$n" status 2>/dev/null)" = DOWN ]; do
    ((SECONDS < deadline)) || { echo "HAProxy did not mark backend $n DOWN within 20 s"; return 1; }
    sleep 0.1
  done
  down=$((SECONDS - started))
  code=$(readyz "$n")
  kill -0 "${pid[b$n]}" 2>/dev/null || { echo "backend $n exited before its request was finished"; return 1; }
  [ "$code" = 503 ] || { echo "backend $n: /readyz said $code while draining"; return 1; }
  touch "$go"
  wait "$hold" || { echo "the held request failed"; cat "$work/hold-$n.out"; return 1; }
  grep -q '^HTTP/1.1 200 .*Connection: close' "$work/hold-$n.out" || { echo "the held request:"; cat "$work/hold-$n.out"; return 1; }
  wait "${pid[b$n]}"
  st=$?
  ((st == 0)) || { echo "backend $n exited $st after SIGTERM"; tail -5 "$work/b$n.log"; return 1; }
  grep -q 'drained in' "$work/b$n.log" || { echo "backend $n did not drain in time"; tail -5 "$work/b$n.log"; return 1; }
  local drained=$((SECONDS - started))
  start_backend "$n"
  wait_ready "$n" && wait_up "b$n" || return 1
  say "backend $n: SIGTERM; /readyz 503 and DOWN in HAProxy after ${down}s, its request in progress answered 200 with Connection: close; drained and exited 0 after ${drained}s; UP again after $((SECONDS - started))s"
}
before1=$(log_lines 1) before2=$(log_lines 2)
retries_before=$(hastat ringd BACKEND wretr wredis)
start_wrk rolling
sleep 2
# In this shell, not a subshell: it waits for and restarts its own children.
{ restart 1 && sleep 1 && restart 2 && sleep 2; } >"$work/rolling.out" 2>&1
rc=$?
stop_wrk
out=$(cat "$work/rolling.out")
grep '^  haproxy: ' <<<"$out"
read -r req failed detail < <(wrk_figures rolling)
read -r r0 d0 <<<"$retries_before"
read -r r1 d1 < <(hastat ringd BACKEND wretr wredis)
say "(a) rolling restart: $req requests through HAProxy, $failed failed $detail; HAProxy retried $((r1 - r0)), redispatched $((d1 - d0))"
say "(a) served: backend 1 $(served_since "$work/b1-access.log" "$before1"), backend 2 $(served_since "$work/b2-access.log" "$before2") requests (access logs)"
if ((rc == 0)) && ((req > 0)) && ((failed == 0)); then
  ok "(a) drain + restart of each backend under wrk: $req requests, 0 failed"
else
  bad "(a) drain + restart of each backend under wrk: $req requests, $failed failed" "$out"$'\n'"$(cat "$work/wrk-rolling.out")"
fi

# ---- (b) backend 1 killed -----------------------------------------------------------------------
before2=$(log_lines 2)
retries_before=$(hastat ringd BACKEND wretr wredis)
start_wrk kill
sleep 2
kill -KILL "${pid[b1]}"
wait "${pid[b1]}" 2>/dev/null
unset 'pid[b1]'
killed_at=$SECONDS
# Long enough for HAProxy to mark it DOWN (inter 1s x fall 2) and to serve on without it.
down=""
while ((SECONDS - killed_at < 15)); do
  [ "$(hastat ringd b1 status 2>/dev/null)" = DOWN ] && { down=$((SECONDS - killed_at)); break; }
  sleep 0.2
done
sleep 2
stop_wrk
read -r req failed detail < <(wrk_figures kill)
read -r r0 d0 <<<"$retries_before"
read -r r1 d1 < <(hastat ringd BACKEND wretr wredis)
say "(b) SIGKILL of backend 1: $req requests through HAProxy, $failed failed $detail; HAProxy retried $((r1 - r0)), redispatched $((d1 - d0)); marked DOWN after ${down:-?}s"
if [ -n "$down" ] && ((req > 0)) && ((failed == 0)); then
  ok "(b) SIGKILL of a backend under wrk: $req requests, 0 failed (retried on the other)"
else
  bad "(b) SIGKILL of a backend under wrk: $req requests, $failed failed, DOWN after ${down:-never}" "$(cat "$work/wrk-kill.out")"
fi

# ---- (c) the access logs name the client --------------------------------------------------------
# Backend 1's lines up to its kill were written when it drained or by its once-a-second flush.
check_log() { # check_log N
  local f="$work/b$1-access.log" total from_client
  total=$(wc -l <"$f")
  from_client=$(awk -v c="$CLIENT" '$1 == c' "$f" | wc -l)
  echo "backend $1: $total lines, $from_client from $CLIENT"
  ((total > 0 && total == from_client)) || { grep -v "^$CLIENT " "$f" | head -5; return 1; }
}
sleep 1.5 # the survivor's last lines: flushed at least once a second
if out=$( { check_log 1 && check_log 2; } 2>&1); then
  ok "(c) access logs show the client's address ($CLIENT), not HAProxy's ($B1_LB, $B2_LB)"
  while IFS= read -r l; do say "(c) $l"; done <<<"$out"
else
  bad "(c) access logs show the client's address" "$out"
fi
refused=$(ip netns exec "$L" curl -s -m 2 "http://$B2_IP:9090/metrics" | awk '/^ringd_proxy_protocol_refused_total/ { n += $2 } END { print n + 0 }')
if [ "$refused" = 0 ]; then ok "no PROXY header refused by backend 2"; else bad "backend 2 refused $refused PROXY connections"; fi
