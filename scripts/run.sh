#!/usr/bin/env bash
# Runs the whole system on embedded defaults until Ctrl-C: the backend (SQLite under ./data)
# serving the SPA, and on this machine pcscd with the vpcd reader, a personalised virtual demo
# card in it, and the card agent on ws://127.0.0.1:47101.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
build_spa

step "Building the backend, the card agent and the virtual card (release)"
cargo build --release -p backend -p card-agent -p virtual-card

BIN="$ROOT/target/release"
DEMO="$ROOT/data/demo"
mkdir -p "$DEMO"
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_pcscd
}
trap cleanup EXIT INT TERM

start_pcscd

# The demo card persists in data/demo, so a PIN you change or block stays that way across runs.
if [[ ! -f $DEMO/card.json ]]; then
  step "Creating the virtual demo card"
  "$BIN/virtual-card" init --state "$DEMO/card.json"
  "$BIN/virtual-card" personalise --state "$DEMO/card.json" --ca-dir "$DEMO/ca" --name "Demo Cardholder"
fi
"$BIN/virtual-card" run --state "$DEMO/card.json" 2>"$DEMO/virtual-card.log" &
children+=($!)
"$BIN/card-agent" --allow-origin http://127.0.0.1:8080 --allow-origin http://localhost:8080 2>"$DEMO/card-agent.log" &
children+=($!)

cat <<MSG

  Virtual demo card in reader "Virtual PCD 00 00" — passcode (PIN) 123456, PUK 12345678
  (see it with: pcsc_scan, opensc-tool -l, pkcs15-tool -D; its state: $DEMO/card.json)
  Card agent on ws://127.0.0.1:47101 (log: $DEMO/card-agent.log)

MSG
step "Starting the backend"
"$BIN/backend" serve
