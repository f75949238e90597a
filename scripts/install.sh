#!/usr/bin/env bash
# Installs what the run command (`install.sh run`: building and running the system) or the test
# command (`install.sh`, the default: also browsers, PostgreSQL, the SMTP sink, the PIV tools and
# packaging) needs on a fresh Debian 12 machine.
# Idempotent: every step checks first, so a rerun costs seconds. See ../README.md.
set -euo pipefail
MODE=${1:-test}

APT_PACKAGES=(
  # wasm toolchain (TOOLCHAIN.md): Debian's compiler ships std sources for -Zbuild-std
  build-essential pkg-config rustc-web cargo-web rust-web-src lld-22
  # the native linker (.cargo/config.toml): links in a fraction of ld's time
  mold
  # PC/SC stack, the virtual reader driver, and the tools the demo's message suggests
  pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc openssl
  # what the agent's desktop mode calls: notifications and opening pages
  libnotify-bin xdg-utils
  # the npm registry hosts wasm-opt (binaryen)
  nodejs npm
)
if [[ $MODE == bench ]]; then
  # scripts/bench.sh: what running needs, and the PostgreSQL server the benchmarks measure
  APT_PACKAGES+=(postgresql)
fi
if [[ $MODE == test ]]; then
  APT_PACKAGES+=(
    # an independent PIV tool the tests check the card with
    yubico-piv-tool
    # browsers for the journey tests
    chromium chromium-driver firefox-esr
    # real servers the tests start: PostgreSQL and an SMTP sink
    postgresql python3-aiosmtpd
    # a card agent whose clock is hours off (the clock-skew test)
    faketime
    # the tray test: a session D-Bus, a StatusNotifierWatcher in Python, gdbus to inspect the icon
    dbus-daemon python3-dbus python3-gi libglib2.0-bin
    # the Windows agent (TOOLCHAIN.md): its linker, the MSI builder, and Wine to test both
    gcc-mingw-w64-x86-64 wixl wine64
  )
fi

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere on the machine (nvm, /usr/local); accept those.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  log "apt packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The distro's pcscd is socket-activated by systemd; we start our own instances, so make sure
# a stale system one does not hold the vpcd port. (No-op in containers without systemd.)

if ! rustup toolchain list | grep -q '^debian-web'; then
  log "rustup toolchain link debian-web /usr"
  rustup toolchain link debian-web /usr
fi

cargo_install() { # name version bin [--locked]
  local name=$1 version=$2 bin=$3; shift 3
  if command -v "$bin" >/dev/null 2>&1 && "$bin" --version 2>/dev/null | grep -q "$version"; then
    return
  fi
  log "cargo install $name $version"
  # The tools without LTO and with parallel codegen: trunk's own profile asks for fat LTO with one
  # codegen unit, minutes of linking on a 2-core CI machine for nothing we need (trunk measured
  # here: 9m39s as published, 8m29s this way).
  # One target folder for all the tools, so the dependencies they share (tokio, serde, clap, …)
  # are compiled once; opt-level 1, since none of them does work whose speed a test run notices.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/smartcard-selfservice-tools" \
    cargo install "$name" --version "$version" "$@"
}
# No --locked: the crates.io mirror lacks the newest version of one of its dependencies.
cargo_install wasm-bindgen-cli 0.2.130 wasm-bindgen
cargo_install trunk 0.21.14 trunk --locked
if [[ $MODE == test ]]; then
  cargo_install geckodriver 0.37.1 geckodriver
  cargo_install cargo-deb 3.8.0 cargo-deb --locked
fi

if ! (command -v wasm-opt >/dev/null 2>&1 && wasm-opt --version | grep -q 'version 132'); then
  log "npm install -g binaryen@132 (wasm-opt)"
  npm install -g --no-fund --no-audit binaryen@132 >/dev/null
fi
