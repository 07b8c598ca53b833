#!/usr/bin/env bash
# Delivery benchmark: posthorn sends one issue to N subscribers through Postfix's
# smtp-sink on loopback, recording every delivery in SQLite. The reference is
# Postfix's smtp-source sending N messages of the same size over the same number
# of sessions to the same sink, measured in the same run.
#
#   bench/deliver.sh [SUBSCRIBERS=1000] [SESSIONS=8]
set -euo pipefail
N=${1:-1000}
SESSIONS=${2:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

export PATH="$PATH:/usr/sbin"
command -v smtp-sink >/dev/null || apt_install postfix
BIN=$(release_binary)

WORK=$(mktemp -d)
SINK_PID=""
cleanup() { [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(free_port)
# Dump what the sink receives when it is small enough to check recipient by recipient.
DUMP=$([ "$N" -le 20000 ] && echo yes || echo no)

start_sink() {
  local dump="$1"
  if [ "$DUMP" = yes ]; then
    smtp-sink -u nobody -m 1024 -D "$dump" "127.0.0.1:$PORT" 1024 &
  else
    smtp-sink -u nobody -m 1024 "127.0.0.1:$PORT" 1024 &
  fi
  SINK_PID=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "smtp-sink did not start" >&2
  exit 1
}
stop_sink() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""; }

# A site with one ~20 KB essay (Korean and English, HTML + text) and N subscribers.
SITE="$WORK/site"
mkdir -p "$SITE/posts"
chmod 777 "$WORK"
cat > "$SITE/config.toml" <<TOML
[site]
title = "벤치마크"
base_url = "https://essays.example.com"
author = "Bench"
language = "ko"
timezone = "Asia/Seoul"

[email]
from = "Bench <bench@example.com>"
transport = "smtp"

[smtp]
host = "127.0.0.1"
port = $PORT
tls = "none"
concurrency = $SESSIONS
rate_per_second = 0
timeout_seconds = 30
TOML
python3 - "$SITE/posts/bench.md" <<'PY'
import sys
para = ("한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. 숫자를 내려놓자 책이 다시 "
        "이야기가 되었다. Walking to work for a year, I learned the city by its corners. ")
body = "\n\n".join(f"## {i}장\n\n{para * 3}" for i in range(10))
open(sys.argv[1], "w").write(f'+++\ntitle = "벤치마크 에세이"\ndate = "2026-01-01"\n+++\n\n{body}\n')
PY
python3 - "$WORK/subscribers.csv" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,name\n")
    for i in range(int(sys.argv[2])):
        f.write(f"reader{i}@example.com,독자 {i}\n")
PY
"$BIN" --config "$SITE/config.toml" subscribers import "$WORK/subscribers.csv" >/dev/null
"$BIN" --config "$SITE/config.toml" check >/dev/null
SIZE=$("$BIN" --config "$SITE/config.toml" preview bench --format eml | wc -c)

# posthorn
start_sink "$WORK/posthorn.dump"
t0=$(now)
"$BIN" --config "$SITE/config.toml" --json send bench --yes > "$WORK/send.json"
t1=$(now)
stop_sink
P_SECS=$(python3 -c "print($t1 - $t0)")
SENT=$(python3 -c "import json; print(json.load(open('$WORK/send.json'))['deliveries']['sent'])")
LOGGED=$("$BIN" --config "$SITE/config.toml" --json status bench | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['counts']['sent'])")

# smtp-source: same count, size and sessions; -d reuses each connection like posthorn does.
start_sink "$WORK/source.dump"
t0=$(now)
smtp-source -d -s "$SESSIONS" -m "$N" -l "$SIZE" -f bench@example.com -t sink@example.com "127.0.0.1:$PORT"
t1=$(now)
stop_sink
S_SECS=$(python3 -c "print($t1 - $t0)")

CHECK="not checked (N > 20000)"
if [ "$DUMP" = yes ]; then
  CHECK=$(python3 - "$WORK/posthorn.dump" "$N" <<'PY'
import sys, collections
counts = collections.Counter()
with open(sys.argv[1], "rb") as f:
    for line in f:
        if line.startswith(b"X-Rcpt-Args:"):
            counts[line.split(b":", 1)[1].strip().strip(b"<>")] += 1
n = int(sys.argv[2])
expected = {f"reader{i}@example.com".encode() for i in range(n)}
ok = set(counts) == expected and all(c == 1 for c in counts.values())
print(f"{'OK' if ok else 'MISMATCH'}: {len(counts)} distinct recipients, {sum(counts.values())} messages")
PY
)
fi

python3 - <<PY
n, sessions, size = $N, $SESSIONS, $SIZE
p, s = $P_SECS, $S_SECS
print(f"\nposthorn delivery benchmark: {n} subscribers, {sessions} sessions, {size} bytes per message")
print(f"  posthorn send   {p:8.2f} s  {n/p:9.0f} msg/s  (sent {$SENT}, logged as sent {$LOGGED})")
print(f"  smtp-source     {s:8.2f} s  {n/s:9.0f} msg/s")
print(f"  ratio posthorn/smtp-source: {(n/p)/(n/s):.2f}")
print(f"  sink check: $CHECK")
PY
