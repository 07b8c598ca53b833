#!/usr/bin/env bash
# Bounce reading: every message of the labelled corpus (tests/data/bounces),
# copied until there are at least N, read by `posthorn bounces parse` and by
# Debian's packaged Sisimai (libsisimai-perl) in the same run, alternating.
# Prints messages per second and peak RSS for each, and the ratio.
#
#   bench/bounces.sh [N=10000] [RUNS=3]
set -euo pipefail
N=${1:-10000}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

perl -MSisimai -e1 2>/dev/null || apt_install libsisimai-perl
command -v bc >/dev/null || apt_install bc
BIN=$(release_binary)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A Maildir-like folder of N messages: Sisimai reads the folder, posthorn its files.
mkdir -p "$WORK/mail"
corpus=("$ROOT"/tests/data/bounces/emails/*.eml)
i=0
while [ "$i" -lt "$N" ]; do
  for f in "${corpus[@]}"; do
    cp "$f" "$WORK/mail/$i.eml"
    i=$((i + 1))
    [ "$i" -ge "$N" ] && break
  done
done
echo "messages: $N ($(du -sh "$WORK/mail" | cut -f1)), runs: $RUNS"

run_posthorn() {
  (cd "$WORK/mail" && ls | xargs "$BIN" bounces parse --json > "$WORK/posthorn.out")
}
run_sisimai() {
  perl -MSisimai -e 'my $v = Sisimai->make($ARGV[0]) || []; print scalar(@$v), "\n"' "$WORK/mail" > "$WORK/sisimai.out"
}

# measure NAME FUNCTION: seconds and peak RSS (KiB) of one run.
measure() {
  local start end rss
  start=$(now)
  rss=$( { /usr/bin/time -f '%M' bash -c "$(declare -f "$2"); BIN=$BIN WORK=$WORK $2" ; } 2>&1 >/dev/null | tail -1)
  end=$(now)
  echo "$(echo "$end - $start" | bc) $rss"
}

export BIN WORK
declare -a P_T S_T P_M S_M
for r in $(seq "$RUNS"); do
  read -r t m < <(measure posthorn run_posthorn); P_T+=("$t"); P_M+=("$m")
  read -r t m < <(measure sisimai run_sisimai); S_T+=("$t"); S_M+=("$m")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pt=$(median "${P_T[@]}"); st=$(median "${S_T[@]}")
pm=$(median "${P_M[@]}"); sm=$(median "${S_M[@]}")
echo "posthorn: $(wc -l < "$WORK/posthorn.out") reports; Sisimai: $(cat "$WORK/sisimai.out") bounces"
printf 'posthorn bounces parse: median %.2f s  %8.0f msg/s  peak RSS %s KiB  (runs: %s)\n' "$pt" "$(echo "$N / $pt" | bc -l)" "$pm" "${P_T[*]}"
printf 'Sisimai %s (Perl):   median %.2f s  %8.0f msg/s  peak RSS %s KiB  (runs: %s)\n' "$(perl -MSisimai -e 'print $Sisimai::VERSION')" "$st" "$(echo "$N / $st" | bc -l)" "$sm" "${S_T[*]}"
printf 'ratio (posthorn / Sisimai, messages per second): %.1fx\n' "$(echo "$st / $pt" | bc -l)"
