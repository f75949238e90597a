#!/usr/bin/env bash
# Fuzzes every target (fuzz/fuzz_targets/; what each checks is in fuzzing/src/lib.rs) under
# libFuzzer with cargo fuzz (rustup's nightly toolchain), each for SECONDS (default 60):
#   scripts/fuzz.sh [SECONDS] [--keep N]
# Writes target/fuzz/report.md (target, executions, crashes, corpus). A crash's input is saved in
# fuzz/artifacts/<target>/: fix it with a regression test and put the input in
# fuzz/corpus/<target>/, which the test command replays (fuzzing/tests/corpus.rs).
# --keep N: after the run, minimise each corpus (cargo fuzz cmin) and keep up to N of its
# smallest inputs in fuzz/corpus/<target>/ for the repository.
# Not part of scripts/test.sh, which replays the committed corpus only.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

SECONDS_PER_TARGET=60
KEEP=0
while (($#)); do
  case $1 in
    --keep) KEEP=$2; shift 2 ;;
    *) SECONDS_PER_TARGET=$1; shift ;;
  esac
done

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "cargo fuzz needs rustup's nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  step "cargo install cargo-fuzz"
  # As install.sh builds its tools: no LTO, parallel codegen, opt-level 1, one shared target.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/smartcard-selfservice-tools" \
    cargo install cargo-fuzz --locked
fi

# cargo fuzz runs from outside the repository: nightly cargo honours the [unstable] build-std of
# its .cargo/config.toml (meant for the wasm and Windows builds), and nightly has no std sources.
fuzz() { (cd "${TMPDIR:-/tmp}" && cargo +nightly fuzz "$1" -O --fuzz-dir "$ROOT/fuzz" "${@:2}"); }

step "Building the fuzz targets (nightly, coverage and AddressSanitizer)"
fuzz build

mkdir -p target/fuzz
report=target/fuzz/report.md
{
  echo "| target | seconds | executions | executions/s | crashes | corpus |"
  echo "|---|---|---|---|---|---|"
} >"$report"
failed=0
for source in fuzz/fuzz_targets/*.rs; do
  target=$(basename "$source" .rs)
  step "Fuzzing $target for ${SECONDS_PER_TARGET}s"
  work=$ROOT/target/fuzz/corpus/$target
  mkdir -p "$work" "fuzz/artifacts/$target"
  log=$ROOT/target/fuzz/$target.log
  crashes=0
  # New inputs go to the work corpus; the committed one is read only.
  if ! fuzz run "$target" "$work" "$ROOT/fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -max_len=4096 -rss_limit_mb=4096 \
      >"$log" 2>&1; then
    crashes=1
    failed=1
    echo "CRASH in $target: see $log and fuzz/artifacts/$target/" >&2
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  inputs=$(find "$work" -type f | wc -l)
  echo "| $target | $SECONDS_PER_TARGET | ${executions:-?} | ${per_second:-?} | $crashes | $inputs |" >>"$report"
  if ((KEEP > 0)) && ((crashes == 0)); then
    fuzz cmin "$target" "$work" >/dev/null 2>&1
    # The N smallest (a list first: head closing the pipe early would fail it under pipefail).
    find "$work" -type f -printf '%s %p\n' | sort -n >"$work.sizes"
    head -n "$KEEP" "$work.sizes" | while read -r _ path; do
      cp "$path" "fuzz/corpus/$target/min-$(basename "$path" | cut -c1-16)"
    done
    rm -f "$work.sizes"
  fi
done
# The API's routes on an in-process app (a Rust test, not libFuzzer: each body needs a running
# backend and its databases). Bodies per route scale with the time given to each target.
step "Hostile bodies on every API route, on SQLite and PostgreSQL"
trap stop_postgres EXIT
start_postgres
bodies=$((SECONDS_PER_TARGET * 10))
if HOSTILE_BODIES=$bodies cargo test -p backend --test api -- hostile_bodies >"$ROOT/target/fuzz/api_routes.log" 2>&1; then
  echo "| api_routes (in-process app) | - | $bodies bodies × each route × 2 engines | - | 0 | - |" >>"$report"
else
  failed=1
  echo "| api_routes (in-process app) | - | $bodies bodies × each route × 2 engines | - | 1 | - |" >>"$report"
  echo "A hostile body broke an API route: see target/fuzz/api_routes.log" >&2
fi
cat "$report"
exit "$failed"
