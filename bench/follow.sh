#!/usr/bin/env bash
# Following a blog, side by side with rss2email (PyPI) on the same work: a local
# feed gains ENTRIES new entries, each to be mailed to one recipient over SMTP to
# Postfix's smtp-sink. Both first see the feed once (and must send nothing), then
# the new entries appear; the second run is timed. Both must deliver exactly ENTRIES.
# With SUBSCRIBERS > 1 (the realistic case: 50 readers, 20 new entries) posthorn
# mails every reader; rss2email, which mails one address, is left out of that run.
# Like with like: the timed posthorn site mails each entry on its own, as
# rss2email does (`max_new_per_tick` above ENTRIES). A second site with the
# default (`max_new_per_tick = 3`) is timed too: it sends one digest per reader.
#
#   bench/follow.sh [ENTRIES=200] [SUBSCRIBERS=1]
set -euo pipefail
N=${1:-200}
S=${2:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

export PATH="$PATH:/usr/sbin"
command -v smtp-sink >/dev/null || apt_install postfix
command -v r2e >/dev/null || python3 -m pip install --quiet --root-user-action=ignore rss2email
BIN=$(release_binary)
WORK=$(mktemp -d)
PIDS=()
SINK_PID=""
cleanup() { for p in "${PIDS[@]:-}" "$SINK_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

# feed OLD NEW: an RSS feed with OLD entries from last month and NEW entries of today.
feed() {
  python3 - "$1" "$2" "$WORK/www/feed.xml" <<'PY'
import sys, datetime, email.utils
old, new, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
now = datetime.datetime.now(datetime.timezone.utc)
items = []
for i in range(new):
    items.append((f"새 글 {i}: a new essay", f"https://blog.example.com/new/{i}", now - datetime.timedelta(minutes=i)))
for i in range(old):
    items.append((f"지난 글 {i}", f"https://blog.example.com/old/{i}", now - datetime.timedelta(days=30 + i)))
body = "<p>" + "한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. " * 20 + "</p>"
out = ['<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>블로그</title>'
       '<link>https://blog.example.com/</link><description>d</description>']
for title, link, date in items:
    out.append(f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
               f"<pubDate>{email.utils.format_datetime(date)}</pubDate>"
               f"<description><![CDATA[{body}]]></description></item>")
out.append("</channel></rss>")
open(path, "w").write("".join(out))
PY
}

mkdir -p "$WORK/www"
feed 20 0
HTTP=$(free_port)
(cd "$WORK/www" && exec python3 -m http.server "$HTTP" --bind 127.0.0.1) >/dev/null 2>&1 &
PIDS+=($!)
wait_for_url "http://127.0.0.1:$HTTP/feed.xml"
SINK=$(free_port)

# posthorn: a site that follows the feed and has one subscriber (or S).
posthorn_site() { # DIR EXTRA-TOML
SITE=$1
mkdir -p "$SITE/posts"
cat > "$SITE/config.toml" <<TOML
[site]
title = "팔로워"
base_url = "https://essays.example.com"
author = "Bench"
timezone = "Asia/Seoul"
[posts]
feed = "http://127.0.0.1:$HTTP/feed.xml"
[email]
from = "Bench <bench@example.com>"
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = $SINK
tls = "none"
rate_per_second = 0
$2
TOML
"$BIN" --config "$SITE/config.toml" subscribers add reader@example.com >/dev/null
for i in $(seq 2 "$S"); do echo "reader$i@example.com"; done | sed '1i email' > "$WORK/more.csv"
[ "$S" -le 1 ] || "$BIN" --config "$SITE/config.toml" subscribers import "$WORK/more.csv" >/dev/null
}
posthorn_site "$WORK/digest" ""
DIGEST_SITE=$SITE
posthorn_site "$WORK/posthorn" "$(printf '[schedule]\nmax_new_per_tick = %s' "$((N + 1))")"

# rss2email: the same feed, the same recipient, the same SMTP server.
R2E="r2e -c $WORK/r2e.cfg -d $WORK/r2e.json"
$R2E new reader@example.com >/dev/null
$R2E add blog "http://127.0.0.1:$HTTP/feed.xml" >/dev/null
python3 - "$WORK/r2e.cfg" "$SINK" <<'PY'
import sys, configparser
path, port = sys.argv[1], sys.argv[2]
c = configparser.ConfigParser(interpolation=None)
c.read(path)
c["DEFAULT"].update({"from": "bench@example.com", "email-protocol": "smtp", "smtp-server": "127.0.0.1",
                     "smtp-port": port, "smtp-ssl": "False", "smtp-auth": "False"})
with open(path, "w") as f:
    c.write(f)
PY

# For the record: rss2email's default first run mails the whole archive.
FLOOD="r2e -c $WORK/flood.cfg -d $WORK/flood.json"
$FLOOD new reader@example.com >/dev/null
$FLOOD add blog "http://127.0.0.1:$HTTP/feed.xml" >/dev/null
cp "$WORK/r2e.cfg" "$WORK/flood.cfg"
start_sink "$SINK" "$WORK/sink.out"
$FLOOD run >/dev/null 2>&1 || true
FLOODED=$(stop_sink "$WORK/sink.out")

# First sight of the feed: posthorn sends nothing by itself; rss2email needs --no-send.
start_sink "$SINK" "$WORK/sink.out"
"$BIN" --config "$SITE/config.toml" check >/dev/null
"$BIN" --config "$DIGEST_SITE/config.toml" check >/dev/null
P_FIRST=$(stop_sink "$WORK/sink.out")
start_sink "$SINK" "$WORK/sink.out"
$R2E run --no-send >/dev/null 2>&1 || true
R_FIRST=$(stop_sink "$WORK/sink.out")

# The blog publishes N entries.
feed 20 "$N"
start_sink "$SINK" "$WORK/sink.out"
t0=$(now); RUST_LOG=posthorn=debug "$BIN" --config "$SITE/config.toml" check >/dev/null 2>"$WORK/check.log"; t1=$(now)
# Where posthorn's time went, from the tick's own timing line.
PHASES=$(grep -o 'tick timing.*' "$WORK/check.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1)
P_SENT=$(stop_sink "$WORK/sink.out")
start_sink "$SINK" "$WORK/sink.out"
t4=$(now); "$BIN" --config "$DIGEST_SITE/config.toml" check >/dev/null 2>&1; t5=$(now)
D_SENT=$(stop_sink "$WORK/sink.out")
if [ "$S" -eq 1 ]; then
  start_sink "$SINK" "$WORK/sink.out"
  t2=$(now); $R2E run >/dev/null 2>&1; t3=$(now)
  R_SENT=$(stop_sink "$WORK/sink.out")
else
  t2=0; t3=0; R_SENT=0
fi

python3 - <<PY
n, s = $N, $S
p, r = $t1 - $t0, $t3 - $t2
print(f"\nfollowing a blog: the feed gains {n} entries, {s} recipient(s), smtp-sink on loopback")
print(f"  first look at the feed (20 old entries): posthorn sent {$P_FIRST}, rss2email --no-send sent {$R_FIRST} (must be 0);")
print(f"  rss2email's default first run would have mailed {$FLOODED} old entries")
print(f"  posthorn check   {p:7.2f} s   delivered {$P_SENT} (must be {n * s}), each entry its own email")
if s == 1:
    print(f"  rss2email run    {r:7.2f} s   delivered {$R_SENT}")
    print(f"  ratio rss2email/posthorn wall time: {r/p:.1f}x  (goal >= 10x; both must deliver exactly {n})")
print("  posthorn phases (ms): $PHASES")
d = $t5 - $t4
print(f"  posthorn with the default max_new_per_tick = 3: {d:.2f} s, delivered {$D_SENT} "
      f"(one digest per reader: must be {s if n > 3 else n * s})")
PY
