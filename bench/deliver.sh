#!/usr/bin/env bash
# Delivery benchmark: posthorn sends one issue to N subscribers through Postfix's
# smtp-sink on loopback, recording every delivery in SQLite. The reference is
# Postfix's smtp-source sending N messages of the same size over the same number of
# sessions to the same sink, in the same run. Also: posthorn's peak RSS for N and
# for N/10 subscribers (16 sessions).
#
#   bench/deliver.sh [SUBSCRIBERS=100000] ["SESSIONS…"="1 4 16"]
#
# SESSIONS "" skips the comparison with smtp-source and runs the signed sends only.
set -euo pipefail
N=${1:-100000}
SESSIONS=${2-"1 4 16"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

export PATH="$PATH:/usr/sbin"
missing=()
command -v smtp-sink >/dev/null || missing+=(postfix)
[ -x /usr/bin/time ] || missing+=(time)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
BIN=$(release_binary)

WORK=$(mktemp -d)
SINK_PID=""
cleanup() { [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(free_port)

write_essay "$WORK/bench.md"

# site SUBSCRIBERS SESSIONS [EXTRA-TOML]: a fresh site (own database) ready to send.
site() {
  local n=$1 sessions=$2 extra=${3:-}; local dir="$WORK/site-$1-$2-${#extra}"
  mkdir -p "$dir/posts"
  cp "$WORK/bench.md" "$dir/posts/"
  site_config "$dir/config.toml" <<TOML
[email]
from = "Bench <bench@example.com>"
transport = "smtp"

[smtp]
host = "127.0.0.1"
port = $PORT
tls = "none"
concurrency = $sessions
rate_per_second = 0
timeout_seconds = 30
$extra
TOML
  import_readers "$dir/config.toml" "$n"
  "$BIN" --config "$dir/config.toml" check >/dev/null
  echo "$dir"
}

# send DIR: sends the essay; prints "seconds peak_rss_kb sent_rows sink_messages".
send() {
  local dir=$1
  start_sink "$PORT" "$WORK/sink.out"
  local t0 t1
  t0=$(now)
  /usr/bin/time -f "%M" -o "$dir/rss" "$BIN" --config "$dir/config.toml" --json send bench --yes > "$dir/send.json"
  t1=$(now)
  local got; got=$(stop_sink "$WORK/sink.out")
  local logged
  logged=$("$BIN" --config "$dir/config.toml" --json status bench | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['counts']['sent'])")
  echo "$(python3 -c "print($t1 - $t0)") $(cat "$dir/rss") $logged $got"
}

SIZE=""
RESULTS=()
for s in $SESSIONS; do
  dir=$(site "$N" "$s")
  [ -n "$SIZE" ] || SIZE=$("$BIN" --config "$dir/config.toml" preview bench --format eml | wc -c)
  read -r secs rss logged got < <(send "$dir")
  start_sink "$PORT" "$WORK/sink.out"
  t0=$(now)
  smtp-source -d -s "$s" -m "$N" -l "$SIZE" -f bench@example.com -t sink@example.com "127.0.0.1:$PORT"
  t1=$(now)
  src_got=$(stop_sink "$WORK/sink.out")
  RESULTS+=("$s $secs $rss $logged $got $(python3 -c "print($t1 - $t0)") $src_got")
  rm -rf "$dir"
done

# Signed sends, 16 sessions. Signing and sending share the cores, so the most an
# RSA-2048 send can reach is 1 / (1/unsigned + 1/S), with S OpenSSL's own signing
# rate on every core; all three are measured now. Ed25519 against the unsigned send.
openssl genrsa -out "$WORK/rsa.pem" 2048 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/ed.pem"
signed() { # KEY: prints msg/s of a signed send
  local dir
  dir=$(site "$N" 16 "$(printf '[dkim]\ndomain = "example.com"\nselector = "bench"\nprivate_key_file = "%s"' "$1")")
  read -r secs _ logged got < <(send "$dir")
  rm -rf "$dir"
  [ "$logged" = "$N" ] && [ "$got" = "$N" ] || echo "signed send MISMATCH: logged $logged, sink $got" >&2
  python3 -c "print($N / $secs)"
}
unsigned_dir=$(site "$N" 16)
read -r unsigned_secs _ _ _ < <(send "$unsigned_dir")
rm -rf "$unsigned_dir"
rsa_rate=$(signed "$WORK/rsa.pem")
ed_rate=$(signed "$WORK/ed.pem")
openssl_rate=$(openssl speed -multi "$(nproc)" -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $6}')
python3 - "$N" "$unsigned_secs" "$rsa_rate" "$ed_rate" "$openssl_rate" <<'PY'
import sys
n, unsigned_secs, rsa, ed, ossl = int(sys.argv[1]), *map(float, sys.argv[2:])
unsigned = n / unsigned_secs
print(f"\nsigned sends, 16 sessions, {n} subscribers: unsigned {unsigned:.0f} msg/s")
limit = 1 / (1 / unsigned + 1 / ossl)
print(f"  RSA-2048 {rsa:8.0f} msg/s   openssl speed rsa2048 (all cores) {ossl:.0f} signs/s")
print(f"           limit 1/(1/unsigned + 1/openssl) {limit:.0f} msg/s   ratio to limit {rsa/limit:.2f} (goal 0.90)")
print(f"  Ed25519  {ed:8.0f} msg/s   ratio to unsigned {ed/unsigned:.2f} (goal 0.80)")
PY

[ -n "$SESSIONS" ] || exit 0

# Memory: the same send to N/10 subscribers, 16 sessions.
SMALL=$((N / 10))
dir=$(site "$SMALL" 16)
read -r small_secs small_rss small_logged small_got < <(send "$dir")
rm -rf "$dir"

python3 - "$N" "$SIZE" "$SMALL" "$small_rss" "$small_logged" "${RESULTS[@]}" <<'PY'
import sys
n, size, small, small_rss, small_logged = map(int, sys.argv[1:6])
print(f"\nposthorn delivery benchmark: {n} subscribers, {size}-byte messages, smtp-sink on loopback")
print(f"{'sessions':>8} {'posthorn s':>10} {'msg/s':>8} {'smtp-source s':>13} {'msg/s':>8} {'ratio':>6} {'peak RSS':>9}  checks")
big_rss = None
for row in sys.argv[6:]:
    s, secs, rss, logged, got, ssecs, sgot = row.split()
    secs, ssecs, rss = float(secs), float(ssecs), int(rss)
    big_rss = rss if s == "16" else big_rss
    ok = "OK" if int(logged) == n and int(got) == n and int(sgot) == n else "MISMATCH"
    print(f"{s:>8} {secs:10.2f} {n/secs:8.0f} {ssecs:13.2f} {n/ssecs:8.0f} {(n/secs)/(n/ssecs):6.2f} {rss/1024:7.1f} MB  "
          f"{ok}: logged sent {logged}, sink got {got}, smtp-source sink got {sgot}")
if big_rss:
    print(f"\npeak RSS, 16 sessions: {small} subscribers {small_rss/1024:.1f} MB, {n} subscribers {big_rss/1024:.1f} MB "
          f"(ratio {big_rss/small_rss:.2f}; goal within 1.10 and under 50 MB); {small} logged sent: {small_logged}")
PY
