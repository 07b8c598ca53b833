#!/usr/bin/env bash
# Counted links and views: `posthorn serve` answering GET /c/TOKEN (verify the
# token, count the click in memory, 302) under wrk on loopback, against nginx
# answering the same 302 from its config; and a post's archive page (a view
# counted) against nginx serving the same bytes as a file. Medians of RUNS.
#
#   bench/clicks.sh [SECONDS=10] [RUNS=3]
set -euo pipefail
DURATION=${1:-10}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
BIN=$(release_binary)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

# A site with one essay, sent to one reader through the file transport: its
# email holds a real counted link of a real issue.
SITE="$WORK/site"
mkdir -p "$SITE/posts"
write_essay "$SITE/posts/bench.md"
cat >> "$SITE/posts/bench.md" <<'MD'

[더 읽을거리](https://example.org/reading?from=posthorn&n=1)
MD
site_config "$SITE/config.toml" <<TOML
[email]
from = "Bench <bench@example.com>"
transport = "file"
outbox_dir = "outbox"
TOML
"$BIN" --config "$SITE/config.toml" subscribers add reader@example.com >/dev/null
"$BIN" --config "$SITE/config.toml" check >/dev/null
"$BIN" --config "$SITE/config.toml" send bench --yes >/dev/null
CLICK_PATH=$(python3 - "$SITE/outbox" <<'PY'
import email, glob, re, sys
from email import policy
msg = email.message_from_binary_file(open(glob.glob(sys.argv[1] + "/*.eml")[0], "rb"), policy=policy.default)
html = msg.get_body(("html",)).get_content()
print(re.search(r'href="https?://[^/"]+(/c/[^"]+)"', html).group(1))
PY
)

PORT=$(free_port)
POSTHORN_SERVER__BIND="127.0.0.1:$PORT" "$BIN" --config "$SITE/config.toml" serve >/dev/null 2>&1 &
PIDS+=($!)
wait_for_url "http://127.0.0.1:$PORT/healthz"
LOCATION=$(python3 - "http://127.0.0.1:$PORT$CLICK_PATH" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
c.request("GET", u.path)
r = c.getresponse()
assert r.status == 302, r.status
print(r.getheader("Location"))
PY
)
[ "$LOCATION" = "https://example.org/reading?from=posthorn&n=1" ] || { echo "the link went to $LOCATION" >&2; exit 1; }

mkdir -p "$WORK/www/posts/bench"
chmod a+rx "$WORK" "$WORK/www" "$WORK/www/posts" "$WORK/www/posts/bench"
python3 -c "import urllib.request,sys; open(sys.argv[1],'wb').write(urllib.request.urlopen('http://127.0.0.1:$PORT/posts/bench/').read())" "$WORK/www/posts/bench/index.html"
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
  types { text/html html; }
  server {
    listen 127.0.0.1:$NPORT; root $WORK/www; etag on;
    location /c/ { return 302 "$LOCATION"; }
  }
}
CONF
/usr/sbin/nginx -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_for_url "http://127.0.0.1:$NPORT/posts/bench/"

AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
rps() {
  local out
  out=$(wrk -t2 -c32 -d"${DURATION}s" -H "User-Agent: $AGENT" "$1")
  if grep -q "Non-2xx" <<<"$out" && [ "${2:-}" != redirect ]; then echo "wrk got error responses from $1:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
C_P=(); C_N=(); V_P=(); V_N=()
for _ in $(seq "$RUNS"); do
  C_P+=("$(rps "http://127.0.0.1:$PORT$CLICK_PATH" redirect)")
  C_N+=("$(rps "http://127.0.0.1:$NPORT$CLICK_PATH" redirect)")
  V_P+=("$(rps "http://127.0.0.1:$PORT/posts/bench/")")
  V_N+=("$(rps "http://127.0.0.1:$NPORT/posts/bench/")")
done

python3 - "${C_P[*]}" "${C_N[*]}" "${V_P[*]}" "${V_N[*]}" <<PY
import statistics, sys
cp, cn, vp, vn = ([float(x) for x in a.split()] for a in sys.argv[1:5])
med = statistics.median
print(f"\nwrk -t2 -c32 -d${DURATION}s, medians of {len(cp)} runs (each run: posthorn then nginx)")
print(f"  GET /c/TOKEN -> 302      posthorn {med(cp):9.0f} req/s   nginx {med(cn):9.0f} req/s   ratio {med(cp)/med(cn):.2f} (goal >= 0.70)")
print(f"  GET /posts/bench/ (view) posthorn {med(vp):9.0f} req/s   nginx {med(vn):9.0f} req/s   ratio {med(vp)/med(vn):.2f}")
print(f"  runs: /c/ posthorn {cp} nginx {cn}; page posthorn {vp} nginx {vn}")
PY
