#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20) with the committed seed corpus and
# the HTTP dictionary. Exits non-zero if any target crashes, times out, runs out of memory or
# fails to build; the last line is `fuzz: N passed, M failed`.
#
#   fuzz/run.sh 20                         # CI: ~1 minute of fuzzing plus the build
#   FUZZ_SANITIZER=address fuzz/run.sh 60  # AddressSanitizer build (5-7x fewer execs/s)
#   FUZZ_TARGETS="chunked" fuzz/run.sh 300 # a subset
#
# New inputs found during the run go to a temporary directory, not to corpus/, so a CI run
# leaves the work tree clean. A crashing input is saved under fuzz/artifacts/<target>/ and
# printed in hex; reproduce it with `cargo fuzz run -s none <target> <file>`.
set -uo pipefail

secs="${1:-20}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# cargo-fuzz drives libFuzzer through -Z flags; stable rustc accepts them with this.
export RUSTC_BOOTSTRAP=1
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
sanitizer="${FUZZ_SANITIZER:-none}"
targets="${FUZZ_TARGETS:-parse_request chunked differential response proxy}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || { echo "fuzz: cannot install cargo-fuzz" >&2; exit 1; }
fi

passed=0
failed=0
n_targets=$(wc -w <<<"$targets")

build_start=$SECONDS
if ! cargo fuzz build -s "$sanitizer"; then  # all targets in one cargo build
    echo "fuzz: build failed" >&2
    echo "fuzz: 0 passed, $n_targets failed"
    exit 1
fi
echo "fuzz: built the targets (sanitizer: $sanitizer) in $((SECONDS - build_start))s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for t in $targets; do
    mkdir -p "$scratch/$t" "corpus/$t" "artifacts/$t"
    log="$scratch/$t.log"
    # First corpus dir is the writable one; corpus/$t is only read.
    cargo fuzz run -s "$sanitizer" "$t" "$scratch/$t" "corpus/$t" -- \
        -dict=http.dict \
        -max_total_time="$secs" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -close_fd_mask=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz: $t ok: ${execs:-?} execs in ${secs}s, $cov"
    else
        failed=$((failed + 1))
        echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} execs; last 60 log lines:"
        tail -n 60 "$log"
        for f in $(grep -o "artifacts/$t/[^ ]*" "$log" | sort -u); do
            [ -f "$f" ] || continue
            echo "fuzz: crashing input $here/$f (hex):"
            od -An -tx1 -v "$f" | head -n 64
        done
    fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
