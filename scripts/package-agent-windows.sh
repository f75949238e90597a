#!/usr/bin/env bash
# Builds the card agent for Windows and its MSI (../README.md, "Install on Windows"):
#   scripts/package-agent-windows.sh [--profile release|dev] [--version X.Y.Z] [--no-build] [--out FILE]
# The program: target/x86_64-win7-windows-gnu/<profile>/card-agent.exe (Windows 7 to 11).
# The package: target/windows/smartcard-selfservice-agent-<version>.msi unless --out says.
# --version builds a package of another version from the same program (the upgrade test's).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

TARGET=x86_64-win7-windows-gnu
PROFILE=release
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
BUILD=1
OUT=""
while (($#)); do
  case $1 in
    --profile) PROFILE=$2; shift 2 ;;
    --version) VERSION=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$ROOT/target/windows/smartcard-selfservice-agent-$VERSION.msi}
[[ $PROFILE == dev ]] && DIR=debug || DIR=$PROFILE
EXE=$ROOT/target/$TARGET/$DIR/card-agent.exe

if ((BUILD)); then
  # Warnings are errors here as clippy makes them elsewhere: clippy does not see the Windows code.
  CARGO_TARGET_X86_64_WIN7_WINDOWS_GNU_RUSTFLAGS="-D warnings" \
    wasm_env cargo build -p card-agent --bin card-agent --target "$TARGET" --profile "$PROFILE"
fi
[[ -f $EXE ]] || { echo "no $EXE: build it first (without --no-build)" >&2; exit 1; }

# wixl takes the files by names relative to where it runs.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$EXE" "$stage/card-agent.exe"
cp README.md "$stage/README.md"
cp card-agent/packaging/windows/card-agent.wxs "$stage/"
mkdir -p "$(dirname "$OUT")"
(cd "$stage" && wixl -a x64 -D Version="$VERSION" -D AgentExe=card-agent.exe -D Readme=README.md \
  -o package.msi card-agent.wxs)
mv "$stage/package.msi" "$OUT"
echo "$OUT"
