#!/usr/bin/env bash
# Feeds benchmark, two parts, each against a reference measured in the same run:
#  1. `posthorn build` on N generated posts (mixed Korean/English, ~5 KB each)
#     against Hugo building the same posts (pages + RSS, 50 items, like posthorn).
#  2. `posthorn serve` answering GET /feed.xml under wrk on loopback, against nginx
#     serving the identical bytes as a static file.
#
#   bench/feeds.sh [POSTS=10000] [SECONDS=10]
set -euo pipefail
N=${1:-10000}
DURATION=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

missing=()
command -v hugo >/dev/null || missing+=(hugo)
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
BIN=$(release_binary)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

# The same N posts for both generators.
SITE="$WORK/site"; HUGO="$WORK/hugo"
mkdir -p "$SITE/posts" "$HUGO/content/posts" "$HUGO/layouts/_default"
python3 - "$N" "$SITE/posts" "$HUGO/content/posts" <<'PY'
import sys, datetime, random
n, ours, hugo = int(sys.argv[1]), sys.argv[2], sys.argv[3]
random.seed(7)
ko = "한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. 숫자를 내려놓자 책이 다시 이야기가 되었다. "
en = "Walking to work for a year, I learned the city by its corners, its bakeries and its leaning persimmon trees. "
start = datetime.datetime(2015, 1, 1, 9, 0)
for i in range(n):
    date = start + datetime.timedelta(hours=7 * i)
    paras = []
    size = 0
    while size < 5000:
        p = (ko * random.randint(1, 3)) + (en * random.randint(0, 2))
        if random.random() < 0.3:
            p += f"[다음 글](../post-{(i + 1) % n}/) "
        paras.append(p)
        size += len(p.encode())
    body = "\n\n".join(paras)
    front = f'+++\ntitle = "에세이 {i}: essay number {i}"\ndate = "{date:%Y-%m-%dT%H:%M:%S}+09:00"\ntags = ["tag{i % 20}"]\n+++\n\n'
    for folder in (ours, hugo):
        with open(f"{folder}/post-{i}.md", "w") as f:
            f.write(front + body + "\n")
PY
site_config "$SITE/config.toml" <<TOML
[email]
from = "Bench <bench@example.com>"
[feeds]
limit = 50
TOML
cat > "$HUGO/config.toml" <<'TOML'
baseURL = "https://essays.example.com/"
languageCode = "ko"
title = "벤치마크"
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]
[services.rss]
limit = 50
TOML
cat > "$HUGO/layouts/_default/single.html" <<'HTML'
<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><h1>{{ .Title }}</h1><p>{{ .Date.Format "2006-01-02" }}</p>{{ .Content }}</body></html>
HTML
cat > "$HUGO/layouts/_default/list.html" <<'HTML'
<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><ol>{{ range .Pages }}<li><a href="{{ .Permalink }}">{{ .Title }}</a> {{ .Summary }}</li>{{ end }}</ol></body></html>
HTML

# Part 1: static builds. posthorn's first build also creates its database and
# stores every post; the second finds nothing changed; the third follows a change
# to one post and must equal a whole build byte for byte. Peak RSS of each first
# build from /usr/bin/time.
[ -x /usr/bin/time ] || apt_install time
t0=$(now); /usr/bin/time -f "%M" -o "$WORK/p.rss" "$BIN" --config "$SITE/config.toml" build --out "$WORK/out" >/dev/null; t1=$(now)
t2=$(now); "$BIN" --config "$SITE/config.toml" build --out "$WORK/out" >/dev/null; t3=$(now)
echo "한 문단을 더했다." >> "$SITE/posts/post-$((N / 2)).md"
t6=$(now); "$BIN" --config "$SITE/config.toml" build --out "$WORK/out" >/dev/null; t7=$(now)
"$BIN" --config "$SITE/config.toml" build --out "$WORK/whole" >/dev/null
diff -r "$WORK/out" "$WORK/whole" >/dev/null || { echo "the updated build differs from a whole build" >&2; exit 1; }
t4=$(now); /usr/bin/time -f "%M" -o "$WORK/h.rss" hugo --quiet -s "$HUGO" -d "$WORK/hugo-out" >/dev/null 2>&1; t5=$(now)
P_COLD=$(python3 -c "print($t1-$t0)"); P_WARM=$(python3 -c "print($t3-$t2)"); P_ONE=$(python3 -c "print($t7-$t6)"); H=$(python3 -c "print($t5-$t4)")
P_RSS=$(cat "$WORK/p.rss"); H_RSS=$(cat "$WORK/h.rss")
P_FILES=$(find "$WORK/out" -type f | wc -l); H_FILES=$(find "$WORK/hugo-out" -type f | wc -l)

# Part 2: serving the feed.
PORT=$(free_port)
POSTHORN_SERVER__BIND="127.0.0.1:$PORT" "$BIN" --config "$SITE/config.toml" serve >/dev/null 2>&1 &
PIDS+=($!)
wait_for_url "http://127.0.0.1:$PORT/healthz"
mkdir -p "$WORK/www"
# nginx's workers run as www-data: let them into the folder.
chmod a+rx "$WORK" "$WORK/www"
python3 -c "import urllib.request,sys; open(sys.argv[1],'wb').write(urllib.request.urlopen('http://127.0.0.1:$PORT/feed.xml').read())" "$WORK/www/feed.xml"
cmp -s "$WORK/www/feed.xml" "$WORK/out/feed.xml" || { echo "served feed differs from the built one" >&2; exit 1; }
NPORT=$(free_port)
cat > "$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { application/rss+xml xml; }
  server { listen 127.0.0.1:$NPORT; root $WORK/www; etag on; }
}
CONF
/usr/sbin/nginx -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_for_url "http://127.0.0.1:$NPORT/feed.xml"
python3 -c "import urllib.request,sys; b=urllib.request.urlopen('http://127.0.0.1:$NPORT/feed.xml').read(); sys.exit(b != open(sys.argv[1],'rb').read())" "$WORK/www/feed.xml" \
  || { echo "nginx does not serve the same bytes" >&2; exit 1; }

rps() {
  local out
  out=$(wrk -t2 -c32 -d"${DURATION}s" "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk got error responses from $1:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
P_RPS=$(rps "http://127.0.0.1:$PORT/feed.xml")
N_RPS=$(rps "http://127.0.0.1:$NPORT/feed.xml")
SIZE=$(wc -c < "$WORK/www/feed.xml")

python3 - <<PY
n = $N
pc, pw, po, h = $P_COLD, $P_WARM, $P_ONE, $H
print(f"\nposthorn feeds benchmark: {n} posts of ~5 KB")
print(f"  posthorn build (first, creates the database) {pc:7.2f} s  ({$P_FILES} files)")
print(f"  posthorn build (again, nothing changed)      {pw:7.2f} s")
print(f"  posthorn build (one post changed)            {po:7.2f} s  (equal to a whole build: checked)")
print(f"  hugo build                                   {h:7.2f} s  ({$H_FILES} files)")
print(f"  ratio posthorn/hugo wall time: first {pc/h:.2f} (goal <= 0.5), again {pw/h:.2f} (goal <= 0.1), one changed {po/h:.2f}")
print(f"  peak RSS of the first build: posthorn {$P_RSS/1024:.0f} MB, hugo {$H_RSS/1024:.0f} MB, ratio {$P_RSS/$H_RSS:.2f} (goal <= 0.25)")
print(f"\nGET /feed.xml ({$SIZE} bytes, 50 items), wrk -t2 -c32 -d${DURATION}s")
print(f"  posthorn serve {$P_RPS:10.0f} req/s")
print(f"  nginx          {$N_RPS:10.0f} req/s")
print(f"  ratio posthorn/nginx: {$P_RPS/$N_RPS:.2f}  (goal >= 0.70)")
PY
