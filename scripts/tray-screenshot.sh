#!/usr/bin/env bash
# Takes a screenshot of the card agent's tray icon as a desktop shows it, with a locked virtual
# card in the reader and the icon's menu open: Xvfb, XFCE's panel (its status tray hosts
# StatusNotifierItems), the agent in desktop mode. Writes target/tray-screenshot.png.
# Not part of the test suite (the tray's registration and menu are tested over D-Bus in
# tests/tests/end_to_end/tray.rs); this is for seeing it. Needs a free display :77.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
missing=()
for p in xvfb xfce4-panel imagemagick xdotool; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cargo build -p card-agent -p virtual-card

work=$(mktemp -d)
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_pcscd
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
start_pcscd

step "A virtual card with its passcode blocked"
target/debug/virtual-card init --state "$work/card.json" >/dev/null
target/debug/virtual-card personalise --state "$work/card.json" --ca-dir "$work/ca" --name "Sam Example" >/dev/null
target/debug/virtual-card run --state "$work/card.json" --vpcd 127.0.0.1:35963 2>/dev/null &
children+=($!)
sleep 3
for _ in 1 2 3; do yubico-piv-tool -r "Virtual PCD 00 00" -a verify-pin -P 000000 >/dev/null 2>&1 || true; done
target/debug/card-agent --diagnostics | grep 'Virtual PCD 00 00'

step "Xvfb, the XFCE panel and the agent"
Xvfb :77 -screen 0 480x240x24 >/dev/null 2>&1 &
children+=($!)
sleep 1
mkdir -p "$work/config/xfce4/xfconf/xfce-perchannel-xml"
cp card-agent/packaging/linux/screenshot-panel.xml "$work/config/xfce4/xfconf/xfce-perchannel-xml/xfce4-panel.xml"
DISPLAY=:77 XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state" dbus-run-session -- bash -c '
  # The panel and the agent end with this session (a leftover agent would keep reading cards).
  trap "kill \$(jobs -p) 2>/dev/null" EXIT
  xfce4-panel --disable-wm-check >/dev/null 2>&1 &
  sleep 3
  target/debug/card-agent --port 0 --allow-origin http://127.0.0.1:8080 \
    --self-service-url http://127.0.0.1:8080 >/dev/null 2>&1 &
  sleep 4
  xdotool mousemove 12 12 click 1   # the first icon in the status tray: ours
  sleep 2
  import -window root target/tray-screenshot.png
'
echo "Wrote $ROOT/target/tray-screenshot.png"
