#!/usr/bin/env bash
# For the demo started by scripts/run.sh: takes the demo cardholder's card out of reader
# "Virtual PCD 00 00" and inserts a new blank virtual card there (factory PIN, PUK and management
# key, no keys, no CHUID), to issue from the RA console. Ctrl-C removes it and puts the
# cardholder's card back. The issued cards stay in data/demo/issued/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
BIN="$ROOT/target/release"
DEMO="$ROOT/data/demo"
[[ -f $DEMO/holder.pid ]] || { echo "Start the demo first: scripts/run.sh" >&2; exit 1; }

kill "$(cat "$DEMO/holder.pid")" 2>/dev/null || true
mkdir -p "$DEMO/issued"
card="$DEMO/issued/card-$(date +%Y%m%d-%H%M%S).json"
"$BIN/virtual-card" init --state "$card" --maker-ca "$DEMO/maker-ca"
step "A blank card is in reader \"Virtual PCD 00 00\" ($card). Ctrl-C takes it out."
put_back() {
  "$BIN/virtual-card" run --state "$DEMO/holder/card.json" --vpcd 127.0.0.1:35963 2>>"$DEMO/holder.log" &
  echo $! >"$DEMO/holder.pid"
  disown
  echo "The demo cardholder's card is back in reader \"Virtual PCD 00 00\"."
}
trap put_back EXIT
"$BIN/virtual-card" run --state "$card" --vpcd 127.0.0.1:35963 || true
