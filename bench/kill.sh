#!/usr/bin/env bash
# The crash window at full speed: posthorn sends one issue to N subscribers
# through Postfix's smtp-sink on loopback over SESSIONS sessions, and is killed
# with SIGKILL mid-send KILLS times in a row (at N/(KILLS+1), 2N/(KILLS+1), … messages
# taken by the sink), started again after each kill, and finally left to finish.
# After each kill it reads how many messages the sink holds and how many sends
# the log records: the difference is what the next run sends again. At the end
# every subscriber must be logged as sent, and the sink must hold exactly N plus
# those re-sends. Goal: at most 32 re-sends per kill.
#
#   bench/kill.sh [SUBSCRIBERS=100000] [KILLS=3] [SESSIONS=16]
set -euo pipefail
N=${1:-100000}
KILLS=${2:-3}
SESSIONS=${3:-16}
GOAL=32
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

export PATH="$PATH:/usr/sbin"
command -v smtp-sink >/dev/null || apt_install postfix
BIN=$(release_binary)

WORK=$(mktemp -d)
SINK_PID=""
SENDER=""
cleanup() {
  [ -n "$SENDER" ] && kill -9 "$SENDER" 2>/dev/null
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(free_port)
SINK="$WORK/sink.out"

mkdir -p "$WORK/site/posts"
write_essay "$WORK/site/posts/bench.md"
CONFIG="$WORK/site/config.toml"
site_config "$CONFIG" <<TOML
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
import_readers "$CONFIG" "$N"
"$BIN" --config "$CONFIG" check >/dev/null

# logged STATUS: how many deliveries of the essay the log has in STATUS.
logged() {
  "$BIN" --config "$CONFIG" --json status bench |
    python3 -c "import json,sys; print(json.load(sys.stdin)[0]['counts'].get(sys.argv[1], 0))" "$1"
}

# settled: the sink's count once it has stopped changing (the sessions of a
# killed sender end when the kernel closes its sockets).
settled() {
  local last=-1 n
  n=$(sink_count "$SINK")
  while [ "$n" != "$last" ]; do
    last=$n
    sleep 0.3
    n=$(sink_count "$SINK")
  done
  echo "$n"
}

start_sink "$PORT" "$SINK"
ROWS=()
prev_unlogged=0
for k in $(seq "$KILLS"); do
  at=$((N * k / (KILLS + 1)))
  "$BIN" --config "$CONFIG" send bench --yes >/dev/null 2>&1 &
  SENDER=$!
  # Bounded: 10 minutes of polling at most.
  for _ in $(seq 60000); do
    [ "$(sink_count "$SINK")" -ge "$at" ] && break
    kill -0 "$SENDER" 2>/dev/null || { echo "the sender finished before kill $k" >&2; exit 1; }
    sleep 0.01
  done
  kill -9 "$SENDER"
  wait "$SENDER" 2>/dev/null || true
  SENDER=""
  held=$(settled)
  sent=$(logged sent)
  unlogged=$((held - sent))
  ROWS+=("$k $at $held $sent $((unlogged - prev_unlogged))")
  prev_unlogged=$unlogged
done
"$BIN" --config "$CONFIG" send bench --yes >/dev/null
held=$(settled)
stop_sink "$SINK" >/dev/null
sent=$(logged sent)

python3 - "$N" "$SESSIONS" "$GOAL" "$held" "$sent" "${ROWS[@]}" <<'PY'
import sys
n, sessions, goal, held, sent = map(int, sys.argv[1:6])
print(f"\nposthorn killed mid-send: {n} subscribers, {sessions} sessions, smtp-sink on loopback")
print(f"{'kill':>4} {'at':>8} {'sink held':>10} {'logged sent':>12} {'re-sends':>9}")
worst, total = 0, 0
for row in sys.argv[6:]:
    k, at, h, s, again = map(int, row.split())
    worst, total = max(worst, again), total + again
    print(f"{k:>4} {at:>8} {h:>10} {s:>12} {again:>9}")
lost = n - sent
ok = lost == 0 and held == n + total and worst <= goal
print(f"\nend: logged sent {sent} of {n}, sink held {held} = {n} + {held - n} re-sent "
      f"(per-kill sum {total}); worst kill {worst} (goal {goal})  {'OK' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
