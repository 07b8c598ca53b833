#!/usr/bin/env bash
# Feed readers against a running server: starts `posthorn serve` on a fresh copy of
# the sample site on a free loopback port and runs feedparser_check.py against it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Build (a no-op when up to date) and use the binary wherever cargo puts it.
(cd "$ROOT" && cargo build --quiet)
BIN=${POSTHORN_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/posthorn}

SITE=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$SITE"; }
trap cleanup EXIT
cp -r "$ROOT/config.toml" "$ROOT/posts" "$SITE/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
POSTHORN_SERVER__BIND="127.0.0.1:$PORT" "$BIN" --config "$SITE/config.toml" serve > "$SITE/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz')" 2>/dev/null && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "posthorn serve exited:" >&2; cat "$SITE/serve.log" >&2; exit 1
  fi
  sleep 0.1
done
python3 "$ROOT/tests/readers/feedparser_check.py" "http://127.0.0.1:$PORT"
