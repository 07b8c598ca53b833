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

# release_binary: builds posthorn in release mode and prints its path.
release_binary() {
  (cd "$ROOT" && cargo build --release --quiet)
  echo "$ROOT/target/release/posthorn"
}
