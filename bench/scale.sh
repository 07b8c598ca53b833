#!/usr/bin/env bash
# Scaling out: one issue to N subscribers on PostgreSQL with 1, 2 and 4 worker
# processes (`posthorn check` started together, each with the same config), against
# the single SQLite process in the same run, all sending to Postfix's smtp-sink.
#
#   bench/scale.sh [SUBSCRIBERS=100000] ["WORKERS…"="1 2 4"] [SESSIONS PER WORKER=8]
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres (the server to make databases on)
#
# Then the same on PostgreSQL against a sink that answers each message after
# DELAY seconds (default 0.05), as a far-away server does: LATENCY_N
# subscribers (default 4000), 1, 2 and 4 workers; the goal is 1.8x and 3.4x of
# one worker, and every subscriber gets exactly one message.
set -euo pipefail
N=${1:-100000}
WORKERS=${2:-"1 2 4"}
SESSIONS=${3:-8}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

export PATH="$PATH:/usr/sbin"
command -v smtp-sink >/dev/null || apt_install postfix
command -v psql >/dev/null || apt_install postgresql-client
BIN=$(release_binary)
WORK=$(mktemp -d)
SINK_PID=""
DATABASES=()
cleanup() {
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  for db in "${DATABASES[@]:-}"; do [ -n "$db" ] && psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(free_port)
python3 - "$WORK/subscribers.csv" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email\n")
    for i in range(int(sys.argv[2])):
        f.write(f"reader{i}@example.com\n")
PY

# The sink: Postfix's smtp-sink, or with DELAY set the delaying sink, whose
# count is of distinct recipients (a duplicate would not raise it).
DELAY=""
sink_start() {
  if [ -z "$DELAY" ]; then
    start_sink "$PORT" "$1/sink.out"
  else
    python3 "$ROOT/bench/delay_sink.py" "$PORT" "$DELAY" "$1/rcpts.log" &
    SINK_PID=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0; sleep 0.1; done
  fi
}
sink_stop() {
  if [ -z "$DELAY" ]; then
    stop_sink "$1/sink.out"
  else
    kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
    local total unique
    total=$(wc -l < "$1/rcpts.log"); unique=$(sort -u "$1/rcpts.log" | wc -l)
    [ "$total" = "$unique" ] && echo "$unique" || echo "DUPLICATES:$total/$unique"
  fi
}

# run ENGINE WORKERS: prints "seconds logged_sent sink_messages sent_per_worker".
run() {
  local engine=$1 workers=$2 dir="$WORK/$1-$2" url
  mkdir -p "$dir/posts"
  if [ "$engine" = postgres ]; then
    local db="posthorn_bench_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
    psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    DATABASES+=("$db")
    url="${PG_URL%/*}/$db"
  else
    url="sqlite://subscribers/posthorn.db"
  fi
  site_config "$dir/config.toml" <<TOML
[database]
url = "$url"
[email]
from = "Bench <bench@example.com>"
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = $PORT
tls = "none"
concurrency = $SESSIONS
rate_per_second = 0
TOML
  "$BIN" --config "$dir/config.toml" subscribers import "$WORK/subscribers.csv" >/dev/null
  # Written after the database exists, so it is a new post, not archive.
  python3 - "$dir/posts/essay.md" <<'PY'
import sys, datetime
para = "한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. Walking to work for a year, I learned the city by its corners. "
body = "\n\n".join(f"## {i}장\n\n{para * 3}" for i in range(10))
# After the import, so after the database was made: a new post.
now = datetime.datetime.now(datetime.timezone.utc)
open(sys.argv[1], "w").write(f'+++\ntitle = "벤치마크 에세이"\ndate = "{now.isoformat()}"\n+++\n\n{body}\n')
PY
  sink_start "$dir"
  local t0 t1 pids=()
  t0=$(now)
  for w in $(seq "$workers"); do
    "$BIN" --config "$dir/config.toml" --json check > "$dir/worker$w.json" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now)
  local got logged per
  got=$(sink_stop "$dir")
  logged=$("$BIN" --config "$dir/config.toml" --json status | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['counts']['sent'])")
  per=$(for w in $(seq "$workers"); do python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['deliveries']['sent'])" "$dir/worker$w.json"; done | paste -sd/)
  echo "$(python3 -c "print($t1 - $t0)") $logged $got $per"
}

ROWS=("sqlite 1 $(run sqlite 1)")
for w in $WORKERS; do ROWS+=("postgres $w $(run postgres "$w")"); done

python3 - "$N" "$SESSIONS" "${ROWS[@]}" <<'PY'
import sys
n, sessions = int(sys.argv[1]), int(sys.argv[2])
print(f"\nscaling out: one issue to {n} subscribers, `posthorn check` workers with {sessions} SMTP sessions each")
print(f"{'database':>9} {'workers':>7} {'seconds':>8} {'msg/s':>8} {'vs SQLite':>9}  checks")
base = None
for row in sys.argv[3:]:
    engine, workers, secs, logged, got, per = row.split()
    rate = n / float(secs)
    base = base or rate
    ok = "OK" if int(logged) == n and int(got) == n else "MISMATCH"
    print(f"{engine:>9} {workers:>7} {float(secs):8.2f} {rate:8.0f} {rate/base:9.2f}  {ok}: logged {logged}, sink {got}, per worker {per}")
PY

# Latency, not CPU: one PostgreSQL database, 1, 2 and 4 workers, a sink that
# waits before each answer.
DELAY=${DELAY_SECONDS:-0.05}
N=${LATENCY_N:-4000}
python3 - "$WORK/subscribers.csv" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email\n")
    for i in range(int(sys.argv[2])):
        f.write(f"reader{i}@example.com\n")
PY
ROWS=()
for w in 1 2 4; do ROWS+=("postgres $w $(run postgres "$w")"); done
python3 - "$N" "$SESSIONS" "$DELAY" "${ROWS[@]}" <<'PY'
import sys
n, sessions, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"\nscaling out against latency: {n} subscribers, a sink that answers each message after {delay*1000:.0f} ms, "
      f"{sessions} sessions per worker, PostgreSQL")
print(f"{'workers':>7} {'seconds':>8} {'msg/s':>8} {'vs 1':>6} {'goal':>6}  checks")
base = None
goals = {"1": 1.0, "2": 1.8, "4": 3.4}
for row in sys.argv[4:]:
    _, workers, secs, logged, got, per = row.split()
    rate = n / float(secs)
    base = base or rate
    ok = "OK" if int(logged) == n and got == str(n) else "MISMATCH"
    print(f"{workers:>7} {float(secs):8.2f} {rate:8.0f} {rate/base:6.2f} {goals[workers]:6.1f}  "
          f"{ok}: logged {logged}, distinct recipients at the sink {got}, per worker {per}")
PY
