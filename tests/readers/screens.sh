#!/usr/bin/env bash
# Pictures of the author's dashboard, with data in it, in Korean and English:
# drives headless Chromium through every page (the dashboard browser test) and
# saves a PNG of each into DIR (default target/screens), then lists them.
#
#   tests/readers/screens.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/screens}
rm -rf "$out"
mkdir -p "$out"
POSTHORN_SCREENS_DIR="$(cd "$out" && pwd)" REQUIRE_BROWSER_TESTS=1 \
  cargo test --locked --test it dashboard_browser -- --nocapture 2>&1 | grep -E "screenshot:|test result"
count=$(find "$out" -name '*.png' | wc -l)
if [ "$count" -lt 18 ]; then
  echo "expected 9 pages in 2 languages, got $count pictures" >&2
  exit 1
fi
echo "$count dashboard pictures in $out:"
ls -l "$out"
