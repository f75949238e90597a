#!/usr/bin/env bash
# Runs every test: formatting, lints, native tests (backend on SQLite and PostgreSQL), the SPA's
# wasm tests in headless Chromium, and the browser tests in Chromium and Firefox ESR.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

build_spa
check_spa_size

trap 'stop_postgres; stop_pcscd' EXIT
start_postgres
start_pcscd

step "Building the workspace's programs (the end-to-end tests start them)"
cargo build --workspace --bins

step "Building the card agent's Debian package (a test installs it)"
# The dev profile's binary from the step above (--no-build): the test checks the packaging, and
# building card-agent alone would compile its dependencies again under other features (4 minutes
# of a cold CI run). A release package: cargo deb -p card-agent.
cargo deb -p card-agent --profile dev --no-build

step "Cross-building the Windows card agent and its MSI (a test installs it under Wine)"
# The dev profile, as for the Debian package: the test checks the packaging, not the optimiser.
scripts/package-agent-windows.sh --profile dev

step "Native tests (unit, API on SQLite and PostgreSQL, PC/SC with PIV tools, Wine, browsers)"
cargo test --workspace

step "The load harness, quick mode (scripts/bench.sh; its numbers mean nothing here)"
# Seconds of each scenario with a few people, so the harness keeps working: a failed request
# or an inexact per-person limit fails it; no timing is checked.
scripts/bench.sh --quick

step "SPA wasm tests in headless Chromium"
# The runner reads frontend/webdriver.json (headless, no sandbox as root) from its working folder.
(cd "$ROOT/frontend" && CHROMEDRIVER=$(command -v chromedriver) wasm_env \
  cargo test -p frontend --target wasm32-unknown-unknown --profile wasm-test)

step "All tests passed"
