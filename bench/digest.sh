#!/usr/bin/env bash
# Digest benchmark: N readers with mixed choices (90 % weekly digest, 10 % every
# essay; a third follow every topic, a third only "에세이", a third only "notes";
# 1 % of the digest readers had the first essay already, as readers who switched
# mid-week). Six essays of the week (two per topic, two untagged) are planned and
# sent in one tick through Postfix's smtp-sink on loopback, 16 sessions:
# every-essay readers get their essays, digest readers one letter each.
#
# Printed: the time to plan the posts and the digests (from posthorn's own timing
# line), the time to send every letter, and as the reference, Postfix's
# smtp-source sending as many messages of the same mean size over as many
# sessions to the same sink, in the same run.
#
#   bench/digest.sh [READERS=100000] [RUNS=3]
set -euo pipefail
N=${1:-100000}
RUNS=${2:-3}
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

# site DIR TRANSPORT-TOML: a site whose digest is due every second.
site() {
  local dir=$1
  mkdir -p "$dir/posts"
  site_config "$dir/config.toml" <<TOML
[posts]
topics = ["에세이", "notes"]

[schedule]
digest = "* * * * * *"
max_new_per_tick = 10

[email]
from = "Bench <bench@example.com>"
$2
TOML
}

# readers DIR COUNT: the mixed list, imported.
readers() {
  python3 - "$1/readers.csv" "$2" <<'PY'
import sys
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    f.write("email,name,frequency,topics\n")
    for i in range(n):
        frequency = "each" if i % 10 == 0 else "digest"
        topics = ["", "에세이", "notes"][i % 3]
        f.write(f"reader{i}@example.com,독자 {i},{frequency},{topics}\n")
PY
  "$BIN" --config "$1/config.toml" subscribers import "$1/readers.csv" >/dev/null
}

# essays DIR: the week's six essays, ~6 KB each, dated now (after the list began,
# so they are mailed; the caller waits a second so they are due).
essays() {
  python3 - "$1/posts" <<'PY'
import sys, datetime
when = datetime.datetime.now(datetime.timezone.utc).isoformat()
para = ("한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. 숫자를 내려놓자 책이 다시 "
        "이야기가 되었다. Walking to work for a year, I learned the city by its corners. ")
for i, tags in enumerate([["에세이"], ["notes"], [], ["에세이"], ["notes"], []]):
    tag_list = ", ".join(f'"{t}"' for t in tags)
    body = "\n\n".join(f"{para * 2}" for _ in range(8))
    with open(f"{sys.argv[1]}/week-{i}.md", "w") as f:
        f.write(f'+++\ntitle = "이번 주 {i}"\ndate = "{when}"\ntags = [{tag_list}]\n+++\n\n{body}\n')
PY
}

# The mean message size, from the same letters written as files by a small copy
# of the site (one reader of each kind).
SIZES="$WORK/sizes"
site "$SIZES" $'transport = "file"\noutbox_dir = "outbox"'
readers "$SIZES" 30
"$BIN" --config "$SIZES/config.toml" check >/dev/null 2>&1
essays "$SIZES"
sleep 1.1
"$BIN" --config "$SIZES/config.toml" check >/dev/null 2>&1
# Thirty readers: the big list's mix exactly.
MEAN=$(python3 - "$SIZES/outbox" <<'PY'
import sys, os, email
sizes = {}
for name in os.listdir(sys.argv[1]):
    raw = open(os.path.join(sys.argv[1], name), "rb").read()
    to = email.message_from_bytes(raw)["To"]
    i = int(to.split("reader")[1].split("@")[0])
    sizes.setdefault(i, []).append(len(raw))
total = count = 0
for i, msgs in sizes.items():
    total += sum(msgs)
    count += len(msgs)
print(round(total / count))
PY
)

run() { # prints "plan_posts_ms plan_digests_ms send_s letters_logged sink_got"
  local dir="$WORK/run-$1"
  site "$dir" "$(printf 'transport = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = %s\ntls = "none"\nconcurrency = 16\nrate_per_second = 0\ntimeout_seconds = 30' "$PORT")"
  readers "$dir" "$N"
  "$BIN" --config "$dir/config.toml" check >/dev/null
  essays "$dir"
  # 1 % of the digest readers had the first essay already (they switched after
  # it reached them): reading the posts stores them, planning nothing.
  "$BIN" --config "$dir/config.toml" preview week-0 --format text >/dev/null
  python3 - "$dir/subscribers/posthorn.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
t = int(time.time() * 1000)
post = db.execute("SELECT id FROM posts WHERE slug = 'week-0'").fetchone()[0]
db.execute("INSERT INTO issues (post_id, subject, origin, created_at, kind, frequency) VALUES (?, '이번 주 0', 'manual', ?, 'post', 'each')", (post, t))
issue = db.execute("SELECT id FROM issues WHERE post_id = ?", (post,)).fetchone()[0]
db.execute("INSERT INTO issue_posts (issue_id, post_id) VALUES (?, ?)", (issue, post))
db.execute("INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at, sent_at) SELECT ?, id, 'sent', 1, ?, ?, ?, ? FROM subscribers WHERE id % 100 = 1 AND frequency = 'digest'", (issue, t, t, t, t))
db.commit()
PY
  sleep 1.1
  start_sink "$PORT" "$WORK/sink.out"
  local t0 t1
  t0=$(now)
  RUST_LOG=warn,posthorn=debug "$BIN" --config "$dir/config.toml" check > /dev/null 2> "$dir/log"
  t1=$(now)
  local got; got=$(stop_sink "$WORK/sink.out")
  local logged
  # Sent in this tick: everything logged sent, less the 1 % who had the first essay.
  logged=$("$BIN" --config "$dir/config.toml" --json status | python3 -c "import json,sys; print(sum(s['counts']['sent'] for s in json.load(sys.stdin)))")
  logged=$((logged - $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM deliveries WHERE created_at < (SELECT MAX(created_at) FROM deliveries)\").fetchone()[0])" "$dir/subscribers/posthorn.db")))
  python3 - "$dir/log" "$t0" "$t1" "$logged" "$got" <<'PY'
import re, sys
log = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1]).read())
plan = re.search(r"planning timing posts_ms=(\d+) digests_ms=(\d+) commit_ms=(\d+)", log)
tick = re.search(r"tick timing .*delivery_ms=(\d+)", log)
print(plan.group(1), int(plan.group(2)) + int(plan.group(3)), int(tick.group(1)) / 1000, sys.argv[4], sys.argv[5])
PY
  rm -rf "$dir"
}

RESULTS=()
for r in $(seq "$RUNS"); do
  read -r posts_ms digests_ms send_s logged got < <(run "$r")
  start_sink "$PORT" "$WORK/sink.out"
  t0=$(now)
  smtp-source -d -s 16 -m "$got" -l "$MEAN" -f bench@example.com -t sink@example.com "127.0.0.1:$PORT"
  t1=$(now)
  src_got=$(stop_sink "$WORK/sink.out")
  RESULTS+=("$posts_ms $digests_ms $send_s $logged $got $(python3 -c "print($t1 - $t0)") $src_got")
done

python3 - "$N" "$MEAN" "${RESULTS[@]}" <<'PY'
import statistics, sys
n, mean = int(sys.argv[1]), int(sys.argv[2])
rows = [r.split() for r in sys.argv[3:]]
print(f"\nposthorn digest benchmark: {n} readers (90 % digest, 10 % every essay; topics all / 에세이 / notes),")
print(f"six essays in one tick, mean message {mean} bytes, smtp-sink on loopback, 16 sessions")
print(f"{'run':>3} {'plan posts':>10} {'plan digests':>12} {'send s':>7} {'msg/s':>7} {'smtp-source s':>13} {'msg/s':>7} {'ratio':>6}  checks")
ratios, plans, digests, sends = [], [], [], []
for i, (p, d, s, logged, got, ss, sgot) in enumerate(rows, 1):
    s, ss, got = float(s), float(ss), int(got)
    ratio = (got / s) / (got / ss)
    ratios.append(ratio); plans.append(int(p)); digests.append(int(d)); sends.append(s)
    ok = "OK" if int(logged) == got == int(sgot) else "MISMATCH"
    print(f"{i:>3} {p:>8} ms {d:>10} ms {s:7.2f} {got/s:7.0f} {ss:13.2f} {got/ss:7.0f} {ratio:6.2f}  {ok}: logged sent {logged}, sink got {got}, smtp-source sink got {sgot}")
print(f"median: plan posts {statistics.median(plans)} ms, plan digests {statistics.median(digests)} ms, "
      f"send {statistics.median(sends):.2f} s, send ratio to smtp-source {statistics.median(ratios):.2f}")
PY
