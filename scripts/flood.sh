#!/usr/bin/env bash
# Floods a fresh backend's public routes from one client for N seconds each (default 60) and
# prints what got through, the rows left in each table and the memory (scripts/flood.py).
# Not part of the test command: it takes minutes. Needs a built backend (cargo build).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
SECONDS_PER_ROUTE=${1:-60}
work=$(mktemp -d /tmp/selfservice-flood.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SELFSERVICE_LISTEN=127.0.0.1:$port SELFSERVICE_DATA_DIR=$work/data SELFSERVICE_DIST_DIR=$work/none \
  RUST_LOG=warn target/debug/backend serve >"$work/backend.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
python3 "$ROOT/scripts/flood.py" "$port" "$pid" "$work/data/selfservice.db" "$SECONDS_PER_ROUTE"
