#!/usr/bin/env bash
# The benchmarks (issue 16, README "Performance"): builds the release programs, starts a
# PostgreSQL server configured as in production (fsync on), runs every scenario of bench/ beside
# its limit and writes target/bench/report.md. About 16-18 minutes on 2 cores
# (2026-12-03, 2026-12-04). Arguments after the first go to the harness, e.g. `--only answers,routes` or
# `--people 100000` (bench/src/main.rs).
#
# `scripts/bench.sh --quick`: seconds and a few people, on the test command's debug build and
# PostgreSQL server (scripts/test.sh runs it so the harness keeps working); the numbers mean
# nothing, but a failed request or an inexact limit fails it.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

if [[ ${1:-} == --quick ]]; then
  shift
  BIN="$ROOT/target/debug"
  ARGS=(--quick --out "$ROOT/target/bench/quick.md")
else
  "$ROOT/scripts/install.sh" bench
  build_spa
  step "Building the backend, the card agent and the load harness (release)"
  cargo build --release -p backend -p card-agent -p bench
  BIN="$ROOT/target/release"
  ARGS=(--out "$ROOT/target/bench/report.md")
fi

if [[ -z ${TEST_POSTGRES_URL:-} ]]; then
  trap stop_postgres EXIT
  if [[ ${ARGS[0]} == --quick ]]; then start_postgres; else start_postgres durable; fi
fi

step "Running the benchmarks"
"$BIN/bench" "${ARGS[@]}" --postgres "$TEST_POSTGRES_URL" "$@"
