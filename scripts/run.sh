#!/usr/bin/env bash
# Runs the whole system on embedded defaults until Ctrl-C: the backend (SQLite under ./data)
# serving the SPA, and on this machine pcscd with the vpcd readers, two virtual demo cards in them
# (a cardholder's and an RA officer's, issued through the card agent on first run), and the card
# agent on ws://127.0.0.1:47101.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh" run
build_spa

step "Building the backend, the card agent and the virtual card (release)"
cargo build --release -p backend -p card-agent -p virtual-card

BIN="$ROOT/target/release"
DEMO="$ROOT/data/demo"
mkdir -p "$DEMO"
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  # scripts/demo-blank-card.sh may have put the holder's card back as another process.
  [[ -f $DEMO/holder.pid ]] && kill "$(cat "$DEMO/holder.pid")" 2>/dev/null || true
  stop_pcscd
}
trap cleanup EXIT INT TERM

start_pcscd

# The demo cards persist in data/demo, so a passcode you change or block stays that way across
# runs. They are issued the product's way: blank cards, issued through the card agent by
# `backend admin issue-card` (the RA console's issuance), each with its own random PUK and
# management key kept sealed by the backend.
DEMO_PIN=280419
if [[ -d $DEMO && ! -f $DEMO/.issued-attested ]]; then
  # Cards from before attested issuance had no attestation key; start those over.
  mv "$DEMO" "$DEMO.old-$(date +%s)"
  mkdir -p "$DEMO"
fi
# The virtual cards' maker: each card gets an attestation key (slot F9) it certified, and the
# backend trusts it as an attestation root, so demo issuance is attested as a YubiKey's would be.
for card in holder ra; do
  if [[ ! -f $DEMO/$card/card.json ]]; then
    mkdir -p "$DEMO/$card"
    "$BIN/virtual-card" init --state "$DEMO/$card/card.json" --maker-ca "$DEMO/maker-ca"
  fi
done
export SELFSERVICE_ATTESTATION_ROOTS="[\"$DEMO/maker-ca/ca.cert.pem\"]"
# The agent acts only on envelopes the backend signed: it trusts the backend's key for the site.
ENVELOPE_KEY=$("$BIN/backend" admin envelope-key)

# The cardholder's card sits in the first virtual reader, the RA's in the second.
"$BIN/virtual-card" run --state "$DEMO/holder/card.json" --vpcd 127.0.0.1:35963 2>"$DEMO/holder.log" &
children+=($!)
echo $! >"$DEMO/holder.pid"
"$BIN/virtual-card" run --state "$DEMO/ra/card.json" --vpcd 127.0.0.1:35964 2>"$DEMO/ra.log" &
children+=($!)
"$BIN/card-agent" --allow-origin http://127.0.0.1:8080 --allow-origin http://localhost:8080 \
  --envelope-key "http://127.0.0.1:8080=$ENVELOPE_KEY" --envelope-key "http://localhost:8080=$ENVELOPE_KEY" \
  --self-service-url http://127.0.0.1:8080 2>"$DEMO/card-agent.log" &
children+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/47101) 2>/dev/null && break
  sleep 0.1
done

# issue <card> <reader> <user id> <holder> <email> [--role ra]: the user, and their card issued
# through the agent on first run.
issue() {
  "$BIN/backend" admin add-user --user-id "$3" --name "$4" --email "$5" "${@:6}" >/dev/null
  if [[ ! -f $DEMO/$1/issued ]]; then
    step "Issuing the demo card of $4 through the card agent"
    printf '%s\n' "$DEMO_PIN" | "$BIN/backend" admin issue-card --user-id "$3" --reader "$2" \
      --origin http://127.0.0.1:8080 --reason "Demo card"
    touch "$DEMO/$1/issued"
  fi
}
issue holder "Virtual PCD 00 00" 900000000001 "Demo Cardholder" demo.cardholder@nhs.net
issue ra "Virtual PCD 00 01" 900000000002 "Demo RA Officer" demo.ra@nhs.net --role ra
touch "$DEMO/.issued-attested"

cat <<MSG

  Demo cardholder (user 900000000001): card in reader "Virtual PCD 00 00", passcode $DEMO_PIN
  Demo RA officer (user 900000000002): card in reader "Virtual PCD 00 01", passcode $DEMO_PIN
  (see the cards with: pcsc_scan, opensc-tool -l, pkcs15-tool -D; their state: $DEMO/*/card.json)
  Card agent on ws://127.0.0.1:47101 (log: $DEMO/card-agent.log)
  Email (no SMTP server configured): written as .eml files to $ROOT/data/mail
  To try an unlock: sign in and register (My Profile), sign out, enter a wrong passcode three
  times, then follow "unlock your card" (http://127.0.0.1:8080/unlock). The cards keep their
  state: after an unlock the passcode is the one you chose (delete $DEMO to start over).
  To issue a card in the RA console (http://127.0.0.1:8080/ra): sign in with the RA card, add a
  person, "Issue a card", then in another terminal run scripts/demo-blank-card.sh: it takes the
  cardholder's card out of reader 00 00 and puts a new blank card there until Ctrl-C.

MSG
step "Starting the backend"
"$BIN/backend" serve
