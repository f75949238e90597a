#!/usr/bin/env bash
# Runs the whole system on embedded defaults (SQLite under ./data) until Ctrl-C.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
build_spa

step "Building the backend (release)"
cargo build --release -p backend

step "Starting the backend"
exec "$ROOT/target/release/backend" serve
