#!/usr/bin/env bash
# The dashboard at size: 100,000 subscribers and 1,000,000 delivery rows over
# 20 issues (with bounces and complaints), on SQLite and on PostgreSQL. Times
# the overview, an issue page and a deep page of its log over 50 requests each
# (median and p95), against a static file served by the same server in the same
# run (the feed, cached in memory) as the floor.
#
#   bench/dashboard.sh [SUBSCRIBERS=100000] [DELIVERIES=1000000] [REQUESTS=50]
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres (skipped when no server answers)
set -euo pipefail
N=${1:-100000}
D=${2:-1000000}
REQUESTS=${3:-50}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

BIN=$(release_binary)
WORK=$(mktemp -d)
SERVER_PID=""
PG_DB=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "$PG_DB" ] && psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# The data, as SQL both engines run: subscribers over the last 120 days, and
# for each issue 1/20 of the deliveries, most sent, some bounced, complained,
# failed or skipped.
data_sql() {
  local series=$1 # a row source of n = 1..COUNT, per engine
  cat <<SQL
INSERT INTO subscribers (id, email, email_key, name, status, created_at, updated_at, confirmed_at, unsubscribed_at, hard_bounces)
SELECT n, 'reader' || n || '@example.com', 'reader' || n || '@example.com', '독자 ' || n,
       CASE WHEN n % 50 = 0 THEN 'unsubscribed' WHEN n % 33 = 0 THEN 'bounced' WHEN n % 97 = 0 THEN 'pending' ELSE 'active' END,
       $NOW - (n % 120) * 86400000, $NOW - (n % 120) * 86400000,
       CASE WHEN n % 97 = 0 THEN NULL ELSE $NOW - (n % 120) * 86400000 + 60000 END,
       CASE WHEN n % 50 = 0 THEN $NOW - (n % 60) * 86400000 ELSE NULL END, 0
FROM $(printf "$series" "$N");
-- The growth the store counts as it adds subscribers, written here in one go.
INSERT INTO subscriber_growth (hour, series, n)
  SELECT created_at / 3600000, 'new', COUNT(*) FROM subscribers GROUP BY created_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
  SELECT confirmed_at / 3600000, 'confirmed', COUNT(*) FROM subscribers WHERE confirmed_at IS NOT NULL GROUP BY confirmed_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
  SELECT unsubscribed_at / 3600000, 'unsubscribed', COUNT(*) FROM subscribers WHERE unsubscribed_at IS NOT NULL GROUP BY unsubscribed_at / 3600000;
INSERT INTO deliveries (id, issue_id, subscriber_id, status, attempts, last_error, smtp_reply, created_at, updated_at, next_attempt_at, sent_at)
SELECT n, i.id, ((n - 1) % $N) + 1,
       CASE WHEN n % 31 = 0 THEN 'bounced' WHEN n % 500 = 0 THEN 'complained' WHEN n % 67 = 0 THEN 'failed' WHEN n % 71 = 0 THEN 'skipped' ELSE 'sent' END,
       1, CASE WHEN n % 31 = 0 THEN '550 5.1.1 user unknown' ELSE NULL END, '250 2.0.0 Ok',
       $NOW, $NOW, $NOW, $NOW
FROM $(printf "$series" "$D") JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k FROM issues) i
  ON i.k = (n - 1) / ($D / 20);
SQL
}

# site DIR URL SQL-COMMAND: a site with 20 essays, issued (SQL-COMMAND runs SQL
# from standard input on its database).
site() {
  local dir=$1 url=$2 sql=$3
  mkdir -p "$dir/posts"
  cat > "$dir/config.toml" <<TOML
[site]
title = "느린 편지"
base_url = "http://127.0.0.1:$PORT"
author = "Bench"
language = "ko"
timezone = "Asia/Seoul"
[server]
bind = "127.0.0.1:$PORT"
admin_token = "bench-admin-token-0123"
[database]
url = "$url"
[email]
from = "Bench <bench@example.com>"
transport = "file"
outbox_dir = "outbox"
TOML
  "$BIN" --config "$dir/config.toml" check >/dev/null 2>&1
  # The database is made 400 days ago, so the essays below are new, not archive.
  echo "UPDATE meta SET value = CAST(CAST(value AS BIGINT) - 34560000000 AS TEXT) WHERE key = 'created_at';" | $sql
  python3 - "$dir/posts" <<'PY'
import sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
for i in range(20):
    date = (now - datetime.timedelta(days=20 - i, seconds=-30)).isoformat()
    open(f"{sys.argv[1]}/essay-{i:02}.md", "w").write(
        f'+++\ntitle = "에세이 {i}"\ndate = "{date}"\n+++\n\n천천히 읽는 글입니다.\n')
PY
  # The issues, with nobody to send to yet.
  "$BIN" --config "$dir/config.toml" check >/dev/null 2>&1
}

# measure LABEL: times the pages on the running server; prints one line per page.
measure() {
  python3 - "$PORT" "$REQUESTS" "$1" <<'PY'
import http.client, re, statistics, sys, time, urllib.parse
port, n, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def request(method, path, body=None, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read(); c.close()
    return r, data
r, page = request("GET", "/admin")
login = re.search(r"posthorn_login=([^;]+)", r.getheader("Set-Cookie")).group(1)
csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
r, _ = request("POST", "/admin/login", urllib.parse.urlencode({"csrf": csrf, "token": "bench-admin-token-0123"}),
               {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"posthorn_login={login}"})
session = re.search(r"posthorn_admin=([^;]+)", r.getheader("Set-Cookie")).group(1)
auth = {"Cookie": f"posthorn_admin={session}"}
_, overview = request("GET", "/admin", headers=auth)
slug = re.search(rb'href="/admin/issues/([^"]+)"', overview).group(1).decode()
_, issue = request("GET", f"/admin/issues/{slug}", headers=auth)
ids = [int(x) for x in re.findall(rb'href="/admin/deliveries/(\d+)"', issue)]
deep = f"/admin/issues/{slug}?after={ids[0] + 49000}"
pages = [("feed (floor)", "/feed.xml", {}), ("overview", "/admin", auth),
         (f"issue page", f"/admin/issues/{slug}", auth), ("log, deep page", deep, auth),
         ("log, bounced only", f"/admin/issues/{slug}?status=bounced&after={ids[0] + 40000}", auth)]
for name, path, headers in pages:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r, body = request("GET", path, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status == 200, (path, r.status)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{label:>9} {name:<20} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   ({len(body)} bytes)")
PY
}

serve() {
  "$BIN" --config "$1/config.toml" serve >"$1/serve.log" 2>&1 &
  SERVER_PID=$!
  wait_for_url "http://127.0.0.1:$PORT/healthz"
}

stop() {
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

NOW=$(python3 -c 'import time; print(int(time.time() * 1000))')
echo "dashboard: $N subscribers, $D deliveries over 20 issues, $REQUESTS requests per page"

# SQLite.
PORT=$(free_port)
sqlite_sql() {
  python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.executescript(sys.stdin.read()); db.commit()' "$WORK/sqlite/subscribers/posthorn.db"
}
site "$WORK/sqlite" "sqlite://subscribers/posthorn.db" sqlite_sql
t0=$(now)
{ data_sql "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s)"; echo "ANALYZE;"; } | sqlite_sql
echo "  SQLite data written in $(python3 -c "print(round($(now) - $t0, 1))") s"
serve "$WORK/sqlite"
measure sqlite
stop

# PostgreSQL.
if python3 -c "import socket,sys,urllib.parse; u=urllib.parse.urlparse(sys.argv[1]); socket.create_connection((u.hostname, u.port or 5432), 2)" "$PG_URL" 2>/dev/null; then
  command -v psql >/dev/null || apt_install postgresql-client
  PG_DB="posthorn_bench_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
  psql "$PG_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
  PORT=$(free_port)
  pg_sql() { psql "${PG_URL%/*}/$PG_DB" -q -v ON_ERROR_STOP=1 >/dev/null; }
  site "$WORK/postgres" "${PG_URL%/*}/$PG_DB" pg_sql
  t0=$(now)
  data_sql "generate_series(CAST(1 AS BIGINT), %s) AS g(n)" | pg_sql
  psql "${PG_URL%/*}/$PG_DB" -qc "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $N); SELECT setval(pg_get_serial_sequence('deliveries', 'id'), $D)" -c "VACUUM ANALYZE" >/dev/null
  echo "  PostgreSQL data written in $(python3 -c "print(round($(now) - $t0, 1))") s"
  serve "$WORK/postgres"
  measure postgres
  stop
else
  echo "!!! PostgreSQL at $PG_URL does not answer: its half is skipped !!!"
fi
