#!/usr/bin/env bash
# Render a cropglobe report in headless Chromium and save a PNG, to check that the page renders
# with no network (the report embeds its figures; it loads no CDN assets).
#   scripts/screenshot_report.sh demo-output/transfer/report.html report.png
# HEIGHT=9000 (pixels; default 2400) captures more of a long page.
# Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
report=$(realpath "${1:?usage: $0 REPORT.html OUT.png}")
out=$(realpath -m "${2:?usage: $0 REPORT.html OUT.png}")
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "Error: chromium is not installed; install Debian's package 'chromium'" >&2
  exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1400,"${HEIGHT:-2400}" \
  --screenshot="$out" "file://$report" >/dev/null 2>&1
test -s "$out"
echo "wrote $out"
