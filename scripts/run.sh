#!/usr/bin/env bash
# Runs the whole system on embedded defaults until Ctrl-C: the backend (SQLite under ./data)
# serving the SPA, and on this machine pcscd with the vpcd readers, two personalised virtual demo
# cards in them (a cardholder's and an RA officer's, both seeded as users in the database), and
# the card agent on ws://127.0.0.1:47101.
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

# The demo cards persist in data/demo, so a PIN you change or block stays that way across runs.
# make_card <name> <holder>: a personalised virtual card, exported for the issuer (guid, certs).
make_card() {
  local card="$DEMO/$1"
  if [[ ! -f $card/card.json ]]; then
    step "Creating the virtual card for $2"
    mkdir -p "$card"
    "$BIN/virtual-card" init --state "$card/card.json"
    "$BIN/virtual-card" personalise --state "$card/card.json" --ca-dir "$DEMO/ca" --name "$2"
    "$BIN/virtual-card" export --state "$card/card.json" --out-dir "$card/export"
  fi
}
# issue_card <name> <user id> <holder> <email> [--role ra]: the user and their card in the database.
issue_card() {
  local export="$DEMO/$1/export"
  "$BIN/backend" admin add-user --user-id "$2" --name "$3" --email "$4" "${@:5}" >/dev/null
  # The virtual card's initial PUK (virtual-card init's default), recorded sealed on first run.
  printf '12345678\n' | "$BIN/backend" admin bind-card --user-id "$2" --guid "$(cat "$export/guid")" \
    --piv-auth-cert "$export/piv-auth.pem" --card-auth-cert "$export/card-auth.pem" --puk-stdin >/dev/null
}
make_card holder "Demo Cardholder"
make_card ra "Demo RA Officer"
step "Seeding the demo users and their cards"
issue_card holder 900000000001 "Demo Cardholder" demo.cardholder@nhs.net
issue_card ra 900000000002 "Demo RA Officer" demo.ra@nhs.net --role ra

# The cardholder's card sits in the first virtual reader, the RA's in the second.
"$BIN/virtual-card" run --state "$DEMO/holder/card.json" --vpcd 127.0.0.1:35963 2>"$DEMO/holder.log" &
children+=($!)
"$BIN/virtual-card" run --state "$DEMO/ra/card.json" --vpcd 127.0.0.1:35964 2>"$DEMO/ra.log" &
children+=($!)
"$BIN/card-agent" --allow-origin http://127.0.0.1:8080 --allow-origin http://localhost:8080 \
  --self-service-url http://127.0.0.1:8080 2>"$DEMO/card-agent.log" &
children+=($!)

cat <<MSG

  Demo cardholder (user 900000000001): card in reader "Virtual PCD 00 00", passcode 123456
  Demo RA officer (user 900000000002): card in reader "Virtual PCD 00 01", passcode 123456
  (see the cards with: pcsc_scan, opensc-tool -l, pkcs15-tool -D; their state: $DEMO/*/card.json)
  Card agent on ws://127.0.0.1:47101 (log: $DEMO/card-agent.log)
  Email (no SMTP server configured): written as .eml files to $ROOT/data/mail
  To try an unlock: sign in and register (My Profile), sign out, enter a wrong passcode three
  times, then follow "unlock your card" (http://127.0.0.1:8080/unlock). The cards keep their
  state: after an unlock the passcode is the one you chose (delete $DEMO to start over).

MSG
step "Starting the backend"
"$BIN/backend" serve
