#!/usr/bin/env bash
# Importing subscribers: `posthorn subscribers import` of an N-row CSV (default
# 1,000,000) into a new SQLite database and a new PostgreSQL database, RUNS
# times each; prints the median wall time, peak RSS, and the ratio to the goal
# (5 s on SQLite, 30 s on PostgreSQL: below 1.00 meets it).
#
#   bench/import.sh [N=1000000] [RUNS=3]
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres (skipped when no server answers)
set -euo pipefail
N=${1:-1000000}
RUNS=${2:-3}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

command -v /usr/bin/time >/dev/null || apt_install time
BIN=$(release_binary)
scratch # $WORK, and $DBS to drop at exit
python3 - "$WORK/subscribers.csv" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,name\n")
    for i in range(int(sys.argv[2])):
        f.write(f"reader{i}@example.com,독자 {i}\n")
PY

# The floor, measured in the same run: the sqlite3 shell's `.import` (or
# psql's `\copy`) of the same file into a table with the same unique address
# index, with no checks, no statuses and no report.
# Prints "seconds peak_kb".
ref_sqlite() {
  local dir
  dir=$(mktemp -d -p "$WORK")
  sqlite3 "$dir/ref.db" "PRAGMA journal_mode=WAL;" \
    "CREATE TABLE s (email TEXT NOT NULL, name TEXT NOT NULL);" \
    "CREATE UNIQUE INDEX s_key ON s (email);" >/dev/null
  /usr/bin/time -f "%e %M" -o "$dir/time" sqlite3 "$dir/ref.db" ".mode csv" ".import --skip 1 $WORK/subscribers.csv s" >/dev/null 2>&1
  cat "$dir/time"
}
ref_pg() { # URL
  psql "$1" -qc "CREATE TABLE s (email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)" >/dev/null
  /usr/bin/time -f "%e %M" -o "$WORK/pgtime" psql "$1" -qc "\\copy s (email, name) FROM '$WORK/subscribers.csv' WITH (FORMAT csv, HEADER true)" >/dev/null
  cat "$WORK/pgtime"
}

# once URL: imports into a new database at URL; prints "seconds peak_kb".
once() {
  local dir
  dir=$(mktemp -d -p "$WORK")
  cat > "$dir/config.toml" <<TOML
[site]
title = "bench"
base_url = "https://essays.example.com"
author = "Bench"
[database]
url = "$1"
[email]
from = "Bench <bench@example.com>"
transport = "file"
TOML
  /usr/bin/time -f "%e %M" -o "$dir/time" "$BIN" --config "$dir/config.toml" subscribers import "$WORK/subscribers.csv" >"$dir/out" 2>&1
  grep -q "added $N:" "$dir/out" || { cat "$dir/out" >&2; exit 1; }
  cat "$dir/time"
}

report() { # ENGINE GOAL REFERENCE-NAME "ref-seconds kb;…" "seconds kb"…
  python3 - "$@" <<'PY'
import statistics, sys
engine, goal, ref_name, refs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = [r.split() for r in sys.argv[5:]]
secs = statistics.median(float(s) for s, _ in runs)
rss = max(int(k) for _, k in runs) / 1024
ref = statistics.median(float(r.split()[0]) for r in refs.split(";") if r.strip())
print(f"{engine:>10}: median {secs:6.2f} s  peak RSS {rss:6.1f} MB  "
      f"({', '.join(s for s, _ in runs)})  vs goal {goal:.0f} s: {secs / goal:.2f}  "
      f"vs {ref_name} {ref:.2f} s: {secs / ref:.2f}x")
PY
}

command -v sqlite3 >/dev/null || apt_install sqlite3
echo "import: $N subscribers, $RUNS runs each, each beside a reference run"
rows=()
refs=""
for _ in $(seq "$RUNS"); do
  refs+="$(ref_sqlite);"
  rows+=("$(once "sqlite://subscribers/posthorn.db")")
done
report SQLite 5 "sqlite3 .import" "$refs" "${rows[@]}"
if python3 -c "import socket,sys,urllib.parse; u=urllib.parse.urlparse(sys.argv[1]); socket.create_connection((u.hostname, u.port or 5432), 2)" "$PG_URL" 2>/dev/null; then
  command -v psql >/dev/null || apt_install postgresql-client
  rows=()
  refs=""
  for _ in $(seq "$RUNS"); do
    for kind in ref run; do
      db="posthorn_import_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
      psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
      DBS+=("$db")
      if [ "$kind" = ref ]; then
        refs+="$(ref_pg "${PG_URL%/*}/$db");"
      else
        rows+=("$(once "${PG_URL%/*}/$db")")
      fi
    done
  done
  report PostgreSQL 30 "psql \\copy" "$refs" "${rows[@]}"
else
  echo "!!! PostgreSQL at $PG_URL does not answer: its half is skipped !!!"
fi
