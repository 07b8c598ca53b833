#!/usr/bin/env bash
# Builds the Debian package and checks it: its contents, its conffile, the
# systemd unit's exposure (at most 3.0 by `systemd-analyze security`), and the
# packaged binary running the packaged config (state redirected to a temp
# folder): a tick, then the web server's /healthz.
#
#   packaging/check.sh            (installs cargo-deb with `cargo install` if missing)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
cargo deb --locked --quiet >/dev/null
version=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
arch=$(dpkg --print-architecture)
deb="target/debian/posthorn_${version}_${arch}.deb"
[ -f "$deb" ] || { echo "no $deb" >&2; exit 1; }
echo "built $deb ($(du -h "$deb" | cut -f1))"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in ./usr/bin/posthorn ./etc/posthorn/config.toml ./usr/lib/systemd/system/posthorn.service; do
  grep -qx "$path" <<<"$contents" || { echo "the package lacks $path" >&2; exit 1; }
done
dpkg-deb -f "$deb" Package Version Architecture
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/posthorn/config.toml "$work/control/conffiles" || { echo "config.toml is not a conffile" >&2; exit 1; }
echo "contents and conffile: ok"

# The unit as packaged, scored offline.
dpkg-deb -x "$deb" "$work/root"
unit="$work/root/usr/lib/systemd/system/posthorn.service"
score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "systemd-analyze gave no score" >&2; exit 1; }
echo "unit exposure: $score (at most 3.0)"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 3.0 else 1)" "$score" ||
  { echo "the unit's exposure $score is over 3.0" >&2; exit 1; }

# The packaged binary with the packaged config; state in the temp folder.
bin="$work/root/usr/bin/posthorn"
config="$work/root/etc/posthorn/config.toml"
mkdir -p "$work/state/posts"   # as StateDirectory= makes them
export POSTHORN_DATABASE__URL="sqlite://$work/state/posthorn.db"
export POSTHORN_POSTS__DIR="$work/state/posts"
export POSTHORN_EMAIL__OUTBOX_DIR="$work/state/outbox"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export POSTHORN_SERVER__BIND="127.0.0.1:$port"
"$bin" --version
"$bin" --config "$config" check >/dev/null
"$bin" --config "$config" serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    echo "packaged binary: check ran, serve answers /healthz"
    exit 0
  fi
  sleep 0.1
done
cat "$work/serve.log" >&2
echo "the packaged binary did not answer /healthz" >&2
exit 1
