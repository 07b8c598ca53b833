#!/usr/bin/env bash
# Backup and restore at size: `posthorn backup FILE` of a site with N deliveries
# (default 1,000,000: N/10 subscribers × 10 issues, each delivery with its
# attempt in the log, so N delivery events too), and `posthorn restore FILE` of
# that file into a new database, on SQLite and on PostgreSQL, RUNS times each.
# Each run is beside the engine's own tool on the same data in the same run:
# `sqlite3 .dump | gzip -1` and `gunzip | sqlite3`, `pg_dump -Fc -Z1` and
# `pg_restore`. Prints the median wall time, the peak RSS (the largest single
# process of the command: on PostgreSQL the server's work is not in it), the
# file's size and the ratio to the reference (below 1.00 is faster). MB = 2^20
# bytes.
#
#   bench/backup.sh [N=1000000] [RUNS=3]
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres (skipped when no server answers)
#   BENCH_CACHE=~/.cache/posthorn-bench (the SQLite data set, kept between runs)
set -euo pipefail
N=${1:-1000000}
RUNS=${2:-3}
ISSUES=10
S=$(( (N + ISSUES - 1) / ISSUES )) # subscribers
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/posthorn-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

command -v /usr/bin/time >/dev/null || apt_install time
command -v sqlite3 >/dev/null || apt_install sqlite3
BIN=$(release_binary)
scratch # $WORK, and $DBS to drop at exit

# The data, as SQL both engines run: SERIES is a row source of n = 1..COUNT
# and HEX a hexadecimal of an integer, per engine (printf formats). Most
# deliveries sent, with a relay's reply; some bounced or complained after
# the 250, some failed after six tries, some skipped (no attempt: their event
# says so). Issue k went out k weeks ago, as a digest of the one post.
NOW=$(python3 -c 'import time; print(int(time.time() * 1000))')
data_sql() {
  local series=$1 hex=$2
  local issue="((n - 1) / $S + 1)" week=604800000 joined=$((NOW - 100 * 604800000))
  local sent_at="$NOW - ($ISSUES - $issue) * $week + (n % 3600) * 1000"
  cat <<SQL
INSERT INTO subscribers (id, email, email_key, name, status, created_at, updated_at, confirmed_at, unsubscribed_at, hard_bounces)
SELECT n, 'reader' || n || '@example.com', 'reader' || n || '@example.com', '독자 ' || n,
       CASE WHEN n % 50 = 0 THEN 'unsubscribed' WHEN n % 31 = 0 THEN 'bounced' ELSE 'active' END,
       $joined - (n % 365) * 86400000, $joined - (n % 365) * 86400000, $joined - (n % 365) * 86400000 + 60000,
       CASE WHEN n % 50 = 0 THEN $NOW - (n % 60) * 86400000 ELSE NULL END,
       CASE WHEN n % 31 = 0 THEN 1 ELSE 0 END
FROM $(printf "$series" "$S");
-- The growth the store counts as it adds subscribers, written here in one go.
INSERT INTO subscriber_growth (hour, series, n)
  SELECT created_at / 3600000, 'new', COUNT(*) FROM subscribers GROUP BY created_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
  SELECT confirmed_at / 3600000, 'confirmed', COUNT(*) FROM subscribers GROUP BY confirmed_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
  SELECT unsubscribed_at / 3600000, 'unsubscribed', COUNT(*) FROM subscribers WHERE unsubscribed_at IS NOT NULL GROUP BY unsubscribed_at / 3600000;
-- Digests, not posts' own issues: a post has only one of those.
INSERT INTO issues (id, post_id, subject, origin, created_at, kind, frequency)
SELECT n, (SELECT MIN(id) FROM posts), '이번 주의 편지 ' || n, 'schedule', $NOW - ($ISSUES - n) * $week, 'digest', 'digest'
FROM $(printf "$series" "$ISSUES");
INSERT INTO issue_posts (issue_id, post_id) SELECT id, post_id FROM issues;
INSERT INTO deliveries (id, issue_id, subscriber_id, status, attempts, attempt_base, last_error, smtp_reply,
                        created_at, updated_at, next_attempt_at, lease_until, sent_at, lease_owner, relay)
SELECT n, $issue, (n - 1) % $S + 1,
       CASE WHEN n % 31 = 0 THEN 'bounced' WHEN n % 500 = 0 THEN 'complained' WHEN n % 67 = 0 THEN 'failed'
            WHEN n % 71 = 0 THEN 'skipped' ELSE 'sent' END,
       CASE WHEN n % 31 = 0 OR n % 500 = 0 THEN 1 WHEN n % 67 = 0 THEN 6 WHEN n % 71 = 0 THEN 0 ELSE 1 END, 0,
       CASE WHEN n % 31 = 0 THEN '550 5.1.1 <reader' || ((n - 1) % $S + 1) || '@example.com>: Recipient address rejected: User unknown'
            WHEN n % 500 = 0 THEN NULL
            WHEN n % 67 = 0 THEN '451 4.7.1 Service unavailable - try again later'
            WHEN n % 71 = 0 THEN 'unsubscribed before it was sent' END,
       CASE WHEN n % 31 = 0 OR n % 500 = 0 OR (n % 67 <> 0 AND n % 71 <> 0)
            THEN '250 2.0.0 Ok: queued as ' || $(printf "$hex" "n * 2654435761 % 68719476736") END,
       $NOW - ($ISSUES - $issue) * $week, $sent_at, $sent_at, NULL,
       CASE WHEN n % 67 = 0 AND n % 31 <> 0 AND n % 500 <> 0 OR n % 71 = 0 AND n % 31 <> 0 AND n % 500 <> 0 THEN NULL ELSE $sent_at END,
       NULL, CASE WHEN n % 71 = 0 AND n % 31 <> 0 AND n % 500 <> 0 THEN NULL ELSE 'smtp' END
FROM $(printf "$series" "$N");
INSERT INTO delivery_events (id, delivery_id, at, kind, outcome, detail, report_id, relay)
SELECT id, id, updated_at, 'attempt', CASE WHEN status IN ('bounced', 'complained') THEN 'sent' ELSE status END,
       COALESCE(smtp_reply, last_error), NULL, relay
FROM deliveries;
SQL
}
SQLITE_SERIES="(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s)"
SQLITE_HEX="printf('%%X', %s)"
PG_SERIES="generate_series(CAST(1 AS BIGINT), %s) AS g(n)"
PG_HEX="upper(to_hex(%s))"

seconds_since() { python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$1"; }

# config DIR URL: a site at DIR on the database at URL, with nothing else.
config() {
  mkdir -p "$1"
  site_config "$1/config.toml" <<TOML
[database]
url = "$2"
[email]
from = "Bench <bench@example.com>"
transport = "file"
outbox_dir = "outbox"
TOML
}

# seed DIR URL SQL-COMMAND SERIES HEX: a site of `posthorn init` on the
# database at URL, its schema and its one post made by `posthorn check`, then
# the data (SQL-COMMAND runs SQL from standard input on the database).
seed() {
  local dir=$1 url=$2 sql=$3
  "$BIN" init "$dir" >/dev/null
  sed -i "s|^url = .*|url = \"$url\"|" "$dir/config.toml"
  "$BIN" --config "$dir/config.toml" check >"$dir/check.out" 2>&1 || { cat "$dir/check.out" >&2; exit 1; }
  data_sql "$4" "$5" | $sql
}

# timed OUT COMMAND…: runs COMMAND, its output into OUT; prints "seconds peak_kb".
# A command that fails stops the script, with what it printed.
timed() {
  local out=$1; shift
  if ! /usr/bin/time -f "%e %M" -o "$out.time" "$@" >"$out" 2>&1; then
    echo "!!! failed: $*" >&2
    cat "$out" "$out.time" >&2
    exit 1
  fi
  tail -1 "$out.time"
}

# expect WHAT GOT: stops the script unless GOT is N (a restore that lost rows).
expect() {
  [ "$2" = "$N" ] || { echo "!!! $1: $2, not $N" >&2; exit 1; }
}

report_rows=()
# record OP ENGINE REFERENCE-NAME "posthorn runs" "reference runs": each runs
# list is "seconds kb bytes;…".
record() { report_rows+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"); }

echo "backup: $N deliveries ($S subscribers × $ISSUES issues) and $N delivery events, $RUNS runs each, each beside a reference run"

# SQLite. The data set is built once per size, schema and data SQL and kept;
# each run of the script backs up a copy, so posthorn's migrations and the
# sqlite3 shell never write into the kept one.
mkdir -p "$CACHE"
key=$({ cat "$ROOT"/migrations/sqlite/*.sql; declare -f data_sql; echo "$ISSUES"; } | sha256sum | cut -c1-12)
cached="$CACHE/backup-$N-$key.db"
if [ -f "$cached" ]; then
  echo "  SQLite data from $cached"
else
  find "$CACHE" -maxdepth 1 -name "backup-$N-*.db*" -delete # an older schema's
  t0=$(now)
  sqlite_seed() { sqlite3 -bail "$WORK/seed/subscribers/posthorn.db" >/dev/null; }
  seed "$WORK/seed" "sqlite://subscribers/posthorn.db" sqlite_seed "$SQLITE_SERIES" "$SQLITE_HEX"
  # One file, with no WAL beside it, to copy.
  sqlite3 "$WORK/seed/subscribers/posthorn.db" "PRAGMA wal_checkpoint(TRUNCATE);" "PRAGMA journal_mode=DELETE;" >/dev/null
  cp "$WORK/seed/subscribers/posthorn.db" "$cached.partial"
  mv "$cached.partial" "$cached"
  rm -rf "$WORK/seed"
  echo "  SQLite data written in $(seconds_since "$t0") s, kept in $cached"
fi
config "$WORK/sqlite" "sqlite://subscribers/posthorn.db"
mkdir -p "$WORK/sqlite/subscribers"
cp "$cached" "$WORK/sqlite/subscribers/posthorn.db"
SRC="$WORK/sqlite/subscribers/posthorn.db"
# Opening it once runs any migration and turns WAL on, before anything is timed.
"$BIN" --config "$WORK/sqlite/config.toml" status >"$WORK/status.out" 2>&1 || { cat "$WORK/status.out" >&2; exit 1; }

pb="" rb="" pr="" rr=""
for run in $(seq "$RUNS"); do
  d="$WORK/run$run"
  mkdir -p "$d"
  # Backup: the shell's whole-database dump, compressed as posthorn compresses.
  t=$(timed "$d/ref-backup.out" bash -c 'set -o pipefail; sqlite3 "$1" .dump | gzip -1 > "$2"' _ "$SRC" "$d/ref.sql.gz")
  rb+="$t $(stat -c %s "$d/ref.sql.gz");"
  t=$(timed "$d/backup.out" "$BIN" --config "$WORK/sqlite/config.toml" backup "$d/posthorn.gz")
  grep -q "^backed up " "$d/backup.out" || { cat "$d/backup.out" >&2; exit 1; }
  pb+="$t $(stat -c %s "$d/posthorn.gz");"
  # Restore, each into a new file: the dump's SQL read by the shell, and the
  # backup by posthorn (which first makes the schema).
  t=$(timed "$d/ref-restore.out" bash -c 'set -o pipefail; gunzip -c "$1" | sqlite3 -bail "$2"' _ "$d/ref.sql.gz" "$d/ref.db")
  expect "deliveries in the sqlite3 restore" "$(sqlite3 "$d/ref.db" "SELECT COUNT(*) FROM deliveries")"
  rr+="$t 0;"
  config "$d/site" "sqlite://subscribers/posthorn.db"
  t=$(timed "$d/restore.out" "$BIN" --config "$d/site/config.toml" restore "$d/posthorn.gz")
  grep -q "^restored " "$d/restore.out" || { cat "$d/restore.out" >&2; exit 1; }
  expect "deliveries restored" "$(sqlite3 "$d/site/subscribers/posthorn.db" "SELECT COUNT(*) FROM deliveries")"
  expect "delivery events restored" "$(sqlite3 "$d/site/subscribers/posthorn.db" "SELECT COUNT(*) FROM delivery_events")"
  pr+="$t 0;"
  rm -rf "$d"
done
record backup SQLite "sqlite3 .dump | gzip -1" "$pb" "$rb"
record restore SQLite "gunzip | sqlite3" "$pr" "$rr"

# PostgreSQL: the same data written by generate_series into a new database,
# made again each time (a database left on a shared server would outlive us).
pg_up() { python3 -c "import socket,sys,urllib.parse; u=urllib.parse.urlparse(sys.argv[1]); socket.create_connection((u.hostname, u.port or 5432), 2)" "$PG_URL" 2>/dev/null; }
new_db() { # prints the name of a new, empty database, dropped at exit
  local db
  db="posthorn_backup_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
  psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
  echo "$db"
}
pg_count() { psql "${PG_URL%/*}/$1" -Atc "SELECT COUNT(*) FROM $2"; }
if pg_up; then
  command -v pg_dump >/dev/null || apt_install postgresql-client
  SRC_DB=$(new_db)
  DBS+=("$SRC_DB")
  t0=$(now)
  pg_seed() { psql "${PG_URL%/*}/$SRC_DB" -q -v ON_ERROR_STOP=1 >/dev/null; }
  seed "$WORK/pgseed" "${PG_URL%/*}/$SRC_DB" pg_seed "$PG_SERIES" "$PG_HEX"
  # Sequences past the ids, as the store's own inserts leave them; and every
  # row frozen, so that no backup run pays for setting hint bits.
  psql "${PG_URL%/*}/$SRC_DB" -q -v ON_ERROR_STOP=1 \
    -c "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $S); SELECT setval(pg_get_serial_sequence('issues', 'id'), $ISSUES)" \
    -c "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), $N); SELECT setval(pg_get_serial_sequence('delivery_events', 'id'), $N)" \
    -c "VACUUM (FREEZE, ANALYZE)" >/dev/null
  echo "  PostgreSQL data written in $(seconds_since "$t0") s"
  PG_SRC="${PG_URL%/*}/$SRC_DB"
  pb="" rb="" pr="" rr=""
  for run in $(seq "$RUNS"); do
    d="$WORK/pgrun$run"
    mkdir -p "$d"
    # pg_dump's custom format, compressed at posthorn's level (its default is 6).
    t=$(timed "$d/ref-backup.out" pg_dump -Fc -Z1 -f "$d/ref.dump" "$PG_SRC")
    rb+="$t $(stat -c %s "$d/ref.dump");"
    config "$d/src" "$PG_SRC"
    t=$(timed "$d/backup.out" "$BIN" --config "$d/src/config.toml" backup "$d/posthorn.gz")
    grep -q "^backed up " "$d/backup.out" || { cat "$d/backup.out" >&2; exit 1; }
    pb+="$t $(stat -c %s "$d/posthorn.gz");"
    db=$(new_db); DBS+=("$db")
    t=$(timed "$d/ref-restore.out" pg_restore --exit-on-error -d "${PG_URL%/*}/$db" "$d/ref.dump")
    expect "deliveries in the pg_restore" "$(pg_count "$db" deliveries)"
    rr+="$t 0;"
    psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    db=$(new_db); DBS+=("$db")
    config "$d/site" "${PG_URL%/*}/$db"
    t=$(timed "$d/restore.out" "$BIN" --config "$d/site/config.toml" restore "$d/posthorn.gz")
    grep -q "^restored " "$d/restore.out" || { cat "$d/restore.out" >&2; exit 1; }
    expect "deliveries restored" "$(pg_count "$db" deliveries)"
    expect "delivery events restored" "$(pg_count "$db" delivery_events)"
    pr+="$t 0;"
    psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    rm -rf "$d"
  done
  record backup PostgreSQL "pg_dump -Fc -Z1" "$pb" "$rb"
  record restore PostgreSQL "pg_restore" "$pr" "$rr"
else
  echo "!!! PostgreSQL at $PG_URL does not answer: its half is skipped !!!"
fi

python3 - "$RUNS" "${report_rows[@]}" <<'PY'
import statistics, sys
runs = sys.argv[1]
def parse(s):
    return [tuple(float(x) for x in r.split()) for r in s.split(";") if r.strip()]
head = f"{'operation':<9} {'engine':<10} {'runs':>4} {'median s':>9} {'peak MB':>8} {'file MB':>8}   {'reference':<24} {'median s':>9} {'peak MB':>8} {'file MB':>8} {'ratio':>6}"
print()
print(head)
print("-" * len(head))
detail = []
for row in sys.argv[2:]:
    op, engine, ref_name, ours, refs = row.split("\t")
    ours, refs = parse(ours), parse(refs)
    med = lambda rs: statistics.median(r[0] for r in rs)
    peak = lambda rs: max(r[1] for r in rs) / 1024
    size = lambda rs: f"{statistics.median(r[2] for r in rs) / 2**20:8.1f}" if any(r[2] for r in rs) else f"{'':>8}"
    print(f"{op:<9} {engine:<10} {len(ours):>4} {med(ours):9.2f} {peak(ours):8.1f} {size(ours)}   "
          f"{ref_name:<24} {med(refs):9.2f} {peak(refs):8.1f} {size(refs)} {med(ours) / med(refs):6.2f}")
    detail.append(f"  {op} {engine}: posthorn {', '.join(f'{r[0]:.2f}' for r in ours)} s; "
                  f"{ref_name} {', '.join(f'{r[0]:.2f}' for r in refs)} s")
print()
print("each run:")
print("\n".join(detail))
PY
