#!/usr/bin/env bash
# DKIM with a real verifier: for an RSA-2048 key in PKCS#8 (what `openssl genrsa`
# writes) and in PKCS#1, and for an Ed25519 key, send the sample essay (Korean
# subject) to the sample subscribers through the file transport and verify every
# message with dkimpy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Build (a no-op when up to date) and use the binary wherever cargo puts it.
(cd "$ROOT" && cargo build --quiet)
BIN=${POSTHORN_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/posthorn}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

check() {
  local kind=$1 key=$2 record=$3 extra=${4:-}
  local site="$WORK/$kind"
  mkdir -p "$site"
  cp -r "$ROOT/config.toml" "$ROOT/posts" "$ROOT/subscribers" "$site/"
  rm -f "$site"/subscribers/*.db*
  cp "$key" "$site/dkim.pem"
  printf '\n[dkim]\ndomain = "example.com"\nselector = "posthorn"\nprivate_key_file = "dkim.pem"\n%b' "$extra" >> "$site/config.toml"
  "$BIN" --config "$site/config.toml" subscribers import "$site/subscribers/sample.csv" >/dev/null
  "$BIN" --config "$site/config.toml" send slow-reading --yes >/dev/null
  # A confirmation email too, through the web form of a running server.
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  POSTHORN_SERVER__BIND="127.0.0.1:$port" "$BIN" --config "$site/config.toml" serve >/dev/null 2>&1 &
  local server=$!
  python3 - "$port" <<'PY'
import sys, time, urllib.request, urllib.parse
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/healthz"); break
    except OSError:
        time.sleep(0.1)
data = urllib.parse.urlencode({"email": "new.reader@example.com", "name": "새 독자"}).encode()
urllib.request.urlopen(base + "/subscribe", data)
PY
  kill "$server"; wait "$server" 2>/dev/null || true
  echo "== $kind"
  python3 "$ROOT/tests/readers/dkim_verify.py" "$record" "$site"/outbox/*.eml
}

openssl genrsa -out "$WORK/rsa8.pem" 2048 2>/dev/null
openssl genrsa -traditional -out "$WORK/rsa1.pem" 2048 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/ed.pem"
RSA8="v=DKIM1; k=rsa; p=$(openssl rsa -in "$WORK/rsa8.pem" -pubout -outform DER 2>/dev/null | base64 -w0)"
RSA1="v=DKIM1; k=rsa; p=$(openssl rsa -in "$WORK/rsa1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)"
ED="v=DKIM1; k=ed25519; p=$(openssl pkey -in "$WORK/ed.pem" -pubout -outform DER | tail -c 32 | base64 -w0)"
check rsa-pkcs8 "$WORK/rsa8.pem" "$RSA8"
check rsa-pkcs1 "$WORK/rsa1.pem" "$RSA1"
check ed25519 "$WORK/ed.pem" "$ED"
# Dual signing (RFC 8463): RSA under one selector, Ed25519 under another.
check dual "$WORK/rsa8.pem" "posthorn=$RSA8||posthorn-ed=$ED" \
  "second_private_key_file = \"$WORK/ed.pem\"\nsecond_selector = \"posthorn-ed\"\n"
