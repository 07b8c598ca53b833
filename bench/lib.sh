# Helpers shared by the benchmark scripts (sourced, not run).

# apt_install PACKAGE…: installs Debian packages that are missing.
apt_install() {
  echo "installing $*…" >&2
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

now() { date +%s.%N; }

# wait_for_url URL: up to 10 s for a 2xx answer.
wait_for_url() {
  for _ in $(seq 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1])" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# release_binary: builds posthorn in release mode and prints its path
# ($POSTHORN_BIN instead, when set: a build kept from before a change).
release_binary() {
  if [ -n "${POSTHORN_BIN:-}" ]; then echo "$POSTHORN_BIN"; return; fi
  (cd "$ROOT" && cargo build --release --quiet)
  echo "$ROOT/target/release/posthorn"
}

# start_sink PORT LOG: Postfix's smtp-sink on loopback, counting what it receives
# (-c) into LOG, in the background; sets SINK_PID.
start_sink() {
  smtp-sink -u nobody -c -m 1024 "127.0.0.1:$1" 1024 > "$2" &
  SINK_PID=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "smtp-sink did not start" >&2
  return 1
}

# stop_sink LOG: stops the sink and prints how many messages it took.
stop_sink() {
  kill "$SINK_PID" 2>/dev/null
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
  sink_count "$1"
}

# site_config FILE < TOML: a benchmark site's config — the same Korean site in
# every benchmark — followed by the TOML on stdin (its [email] section and
# whatever else it needs).
site_config() {
  {
    cat <<'TOML'
[site]
title = "벤치마크"
base_url = "https://essays.example.com"
author = "Bench"
language = "ko"
timezone = "Asia/Seoul"

TOML
    cat
  } > "$1"
}

# import_readers CONFIG N: N readers (readerI@example.com, "독자 I") imported into
# the site of CONFIG with $BIN.
import_readers() {
  local csv
  csv="$(dirname "$1")/readers.csv"
  python3 - "$csv" "$2" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,name\n")
    for i in range(int(sys.argv[2])):
        f.write(f"reader{i}@example.com,독자 {i}\n")
PY
  "$BIN" --config "$1" subscribers import "$csv" >/dev/null
}

# write_essay FILE: the benchmark essay (~21 KB as a message, Korean and
# English, HTML + text), with the slug `bench`.
write_essay() {
  python3 - "$1" <<'PY'
import sys
para = ("한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. 숫자를 내려놓자 책이 다시 "
        "이야기가 되었다. Walking to work for a year, I learned the city by its corners. ")
body = "\n\n".join(f"## {i}장\n\n{para * 3}" for i in range(10))
open(sys.argv[1], "w").write(f'+++\ntitle = "벤치마크 에세이"\ndate = "2026-01-01"\n+++\n\n{body}\n')
PY
}

# sink_count LOG: how many messages the running sink of LOG has taken so far.
sink_count() {
  local n
  n=$(tr '\r' '\n' < "$1" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
  echo "${n:-0}"
}

# A scratch folder ($WORK) and the PostgreSQL databases a script makes (it
# adds their names to DBS; PG_URL is the server), all removed at exit.
scratch() {
  WORK=$(mktemp -d)
  DBS=()
  trap scratch_cleanup EXIT
}
scratch_cleanup() {
  for db in "${DBS[@]:-}"; do [ -n "$db" ] && psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
