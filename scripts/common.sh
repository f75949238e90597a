# Shared helpers for the project's scripts (sourced, not run).
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

# Each step says how far into the run it starts, so a slow CI run shows where the time went.
step() { printf '\n\033[1;32m==> %s\033[0m  (at %dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)) >&2; }

# The wasm build uses Debian's compiler with -Zbuild-std (TOOLCHAIN.md); never set these globally.
wasm_env() { RUSTUP_TOOLCHAIN=debian-web RUSTC_BOOTSTRAP=1 "$@"; }

# The shipped SPA panics by aborting on the spot (no panic messages compiled in: ~10% smaller
# wasm); the wasm tests keep the default so a failing assertion says why.
SPA_RUSTFLAGS="--cfg=erase_components -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none"
build_spa() {
  npm_assets
  # Skipped when nothing that goes into the bundles changed since the last build (a warm rerun
  # of the tests would otherwise spend a minute re-optimising the same wasm).
  local inputs
  inputs=$(spa_inputs)
  if [[ -f $ROOT/dist/index.html && -f $ROOT/dist/ra/index.html && -f $ROOT/dist/.inputs \
        && $(cat "$ROOT/dist/.inputs") == "$inputs" ]]; then
    step "The SPA and the RA console are up to date (dist/)"
    return
  fi
  step "Building the SPA's CSS (NHS design system subset, sass)"
  (cd "$ROOT/frontend" && npx sass --no-source-map --style=compressed --load-path=node_modules \
    style/nhsuk.scss style/build/nhsuk.css)
  step "Building the SPA (trunk, release)"
  (cd "$ROOT" && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$SPA_RUSTFLAGS" wasm_env trunk build --release)
  # The RA console is its own bundle under /ra (after the SPA: trunk replaces its whole dist).
  step "Building the RA console (trunk, release)"
  (cd "$ROOT" && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$SPA_RUSTFLAGS" wasm_env \
    trunk build --release --dist dist/ra --public-url /ra/ frontend/ra.html)
  printf '%s' "$inputs" >"$ROOT/dist/.inputs"
}

# The cardholders' SPA is downloaded by everyone, often on slow hospital Wi-Fi: its wasm, JS and
# CSS together, gzip -9, must stay within 250 KiB (the RA console, for staff only, is reported).
SPA_BUDGET_BYTES=256000
# Each file gzipped on its own, as it is served.
gzipped_size() {
  local total=0 file
  for file in "$@"; do total=$((total + $(gzip -9c "$file" | wc -c))); done
  echo "$total"
}
check_spa_size() {
  local spa ra
  spa=$(gzipped_size "$ROOT"/dist/*.wasm "$ROOT"/dist/*.js "$ROOT"/dist/*.css)
  ra=$(gzipped_size "$ROOT"/dist/ra/*.wasm "$ROOT"/dist/ra/*.js "$ROOT"/dist/ra/*.css)
  step "SPA size (gzip -9): $spa bytes of $SPA_BUDGET_BYTES; RA console $ra bytes"
  if ((spa > SPA_BUDGET_BYTES)); then
    echo "The cardholders' SPA is over its size budget by $((spa - SPA_BUDGET_BYTES)) bytes: make room first (README, Size)." >&2
    return 1
  fi
}

# A digest of everything the bundles are built from: the SPA's and the shared crates' sources,
# the build settings and the tools' versions.
spa_inputs() {
  (
    cd "$ROOT"
    find frontend protocol -type f -not -path 'frontend/node_modules/*' -not -path 'frontend/style/build/*' -print0 \
      | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock Trunk.toml .cargo/config.toml
    echo "$SPA_RUSTFLAGS"
    trunk --version; wasm-bindgen --version; wasm-opt --version
  ) | sha256sum | cut -d' ' -f1
}

# The npm packages in frontend/package-lock.json: the NHS design system CSS that trunk bundles,
# and axe-core for the accessibility checks in the browser tests. Reinstalled when the lock changes.
npm_assets() {
  local stamp="$ROOT/frontend/node_modules/.lock-installed"
  if [[ ! -f $stamp || "$ROOT/frontend/package-lock.json" -nt $stamp ]]; then
    step "Installing the front-end npm packages (npm ci)"
    (cd "$ROOT/frontend" && npm ci --no-audit --no-fund)
    touch "$stamp"
  fi
}

# Runs "$@" as the postgres system user when we are root (PostgreSQL refuses to run as root).
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts a throw-away PostgreSQL server from Debian's package on a free port and exports
# TEST_POSTGRES_URL. It is stopped and deleted by stop_postgres (call it from an EXIT trap).
PG_BIN=/usr/lib/postgresql/15/bin
# `start_postgres durable`: as a production server runs (fsync on, more shared buffers), for the
# benchmarks; by default as the tests want it, fast and forgetful.
start_postgres() {
  local settings="-c fsync=off -c synchronous_commit=off"
  [[ ${1:-} == durable ]] && settings="-c shared_buffers=1GB -c max_wal_size=4GB"
  step "Starting a throw-away PostgreSQL server"
  PG_DIR=$(mktemp -d /tmp/selfservice-pg.XXXXXX)
  [[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o \
    "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 $settings -c max_connections=300" \
    start >/dev/null
  export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}
stop_postgres() {
  if [[ -n ${PG_DIR:-} && -d $PG_DIR ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# pcscd with vsmartcard's vpcd reader (Debian's /etc/reader.conf.d/vpcd: ports 35963/35964).
# There is one per machine: reuse a running one, otherwise start it and remember to stop it.
start_pcscd() {
  if pgrep -x pcscd >/dev/null; then
    PCSCD_STARTED=""
  else
    step "Starting pcscd (with the vpcd virtual reader)"
    pcscd
    PCSCD_STARTED=1
  fi
}
stop_pcscd() {
  if [[ -n ${PCSCD_STARTED:-} ]]; then pkill -x pcscd || true; fi
}
