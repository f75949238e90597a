#!/usr/bin/env bash
# Takes a screenshot of the Windows card agent's notification-area icon with its menu open, as
# Wine's own shell draws it (Xvfb, `explorer /desktop=shell`, the agent in desktop mode). Writes
# target/tray-screenshot-windows.png. Not part of the test suite (Wine's tray is not Windows';
# the MSI and the headless agent are tested in tests/tests/end_to_end/windows_agent.rs); this is
# for seeing that the Win32 tray code runs. Without PC/SC under Wine the icon says the Smart Card
# service is not running. Needs a free display :78.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
missing=()
for p in xvfb imagemagick xdotool; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
scripts/package-agent-windows.sh --profile dev >/dev/null

work=$(mktemp -d)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml=" DISPLAY=:78
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  /usr/lib/wine/wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step "Xvfb, Wine's shell and the agent"
Xvfb :78 -screen 0 640x400x24 >/dev/null 2>&1 &
children+=($!)
sleep 1
/usr/lib/wine/wine64 explorer /desktop=shell,640x400 >/dev/null 2>&1 &
children+=($!)
sleep 8
/usr/lib/wine/wine64 target/x86_64-win7-windows-gnu/debug/card-agent.exe --port 0 \
  --allow-origin http://127.0.0.1:8080 --self-service-url http://127.0.0.1:8080 >/dev/null 2>&1 &
children+=($!)
# Until the agent's log (desktop mode writes it in %LOCALAPPDATA%) says the tray has its state.
for _ in $(seq 60); do
  grep -qs "tray state" "$WINEPREFIX"/drive_c/users/*/AppData/Local/SmartcardSelfService/card-agent.log && break
  sleep 1
done
sleep 2
# Wine draws the notification area as a small window at the top left: ours is its first icon.
import -window root target/tray-screenshot-windows-start.png
xdotool mousemove 12 32 click 3
sleep 2
import -window root target/tray-screenshot-windows.png
xdotool key Down Down Down Return   # "Diagnostics": the report in a message box
sleep 4
import -window root target/tray-screenshot-windows-diagnostics.png
xdotool mousemove 14 30
sleep 3
import -window root target/tray-screenshot-windows-icon.png
# Wine's notification-area window is not always drawn the first time: run again if blank.
echo "Wrote $ROOT/target/tray-screenshot-windows{-start,,-diagnostics,-icon}.png (icon, menu, report, tooltip)"
