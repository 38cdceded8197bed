#!/usr/bin/env bash
# The README's screenshot of the seed's HTML report (tools/report/seed-report.png): the quick start's
# run and report, drawn by headless Chromium at 0.6 scale (a 1280 x 3300 CSS-pixel window).
# Usage: tools/report/seed_screenshot.sh [OUT.png]   (after a build; needs Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/../.."
png=$(realpath -m "${1:-tools/report/seed-report.png}")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The page prints the command line that made it: the one README's quick start gives.
build/tools/epsim run --out out/seed --no-trace >/dev/null
build/tools/epsim report out/seed >/dev/null
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update \
  --hide-scrollbars --user-data-dir="$profile" --force-device-scale-factor=0.6 --window-size=1280,3300 \
  --screenshot="$png" "file://$PWD/out/seed/report.html" 2>/dev/null
echo "wrote $png"
