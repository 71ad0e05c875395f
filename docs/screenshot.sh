#!/usr/bin/env bash
# Makes docs/report.png, the README's picture of --report: the report of
# captures/incident.pcapng, drawn by headless chromium with the flags
# tests/report.rs uses (Debian: apt-get install chromium fonts-dejavu-core).
#   bash docs/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/ldm-sniff -q -r captures/incident.pcapng --report "$tmp/incident.html" || [ $? -eq 1 ]
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --disable-background-networking --disable-component-update --user-data-dir="$tmp/profile" \
  --window-size=1240,2120 --screenshot="$PWD/docs/report.png" "file://$tmp/incident.html" 2> /dev/null
echo "wrote docs/report.png"
