#!/usr/bin/env bash
# Forgetting benchmark: a site on the file transport with N readers and one essay
# sent to each (N `.eml` files in the outbox, ~6 KB each). Each run forgets one
# more reader with `posthorn subscribers forget`: the address cut out of the
# database, SQLite compacted, and the reader's letter found and deleted in the
# outbox (headers read only).
#
# Reference, in the same run: GNU grep finding a reader's letter in the same
# outbox by its address (`grep -rliF`), which is what doing it by hand costs
# before touching the database at all.
#
#   bench/forget.sh [READERS=20000] [RUNS=5]
set -euo pipefail
N=${1:-20000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

BIN=$(release_binary)
WORK=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
SITE="$WORK/site"
mkdir -p "$SITE/posts"
site_config "$SITE/config.toml" <<'TOML'
[email]
from = "Bench <bench@example.com>"
transport = "file"
outbox_dir = "outbox"
TOML
import_readers "$SITE/config.toml" "$N"
"$BIN" --config "$SITE/config.toml" check >/dev/null
python3 - "$SITE/posts" <<'PY'
import sys, datetime
when = datetime.datetime.now(datetime.timezone.utc).isoformat()
para = "한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. 숫자를 내려놓자 책이 다시 이야기가 되었다. "
body = "\n\n".join(para * 4 for _ in range(8))
open(f"{sys.argv[1]}/essay.md", "w").write(f'+++\ntitle = "에세이"\ndate = "{when}"\n+++\n\n{body}\n')
PY
sleep 1.1
"$BIN" --config "$SITE/config.toml" check >/dev/null
FILES=$(find "$SITE/outbox" -name '*.eml' | wc -l)
[ "$FILES" -eq "$N" ] || { echo "expected $N letters, found $FILES" >&2; exit 1; }

ROWS=()
for r in $(seq "$RUNS"); do
  # Different readers for the two sides, so each finds exactly one letter.
  mine="reader$((r * 7))@example.com"
  theirs="reader$((r * 7 + 3))@example.com"
  t0=$(now)
  removed=$("$BIN" --config "$SITE/config.toml" --json subscribers forget "$mine" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox_files_removed"])')
  t1=$(now)
  found=$(grep -rliF "<$theirs>" "$SITE/outbox" | wc -l)
  t2=$(now)
  left=$(find "$SITE/outbox" -name '*.eml' | wc -l)
  ROWS+=("$(python3 -c "print($t1 - $t0, $t2 - $t1)") $removed $found $left")
done

python3 - "$N" "${ROWS[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
rows = [r.split() for r in sys.argv[2:]]
print(f"\nposthorn forget benchmark: {n} readers, {n} letters in the file transport's outbox")
print(f"{'run':>3} {'forget s':>9} {'grep -rliF s':>12} {'ratio':>6}  checks")
ratios, forgets, greps = [], [], []
for i, (f, g, removed, found, left) in enumerate(rows, 1):
    f, g = float(f), float(g)
    ratios.append(g / f); forgets.append(f); greps.append(g)
    ok = "OK" if removed == "1" and found == "1" and int(left) == n - i else "MISMATCH"
    print(f"{i:>3} {f:9.3f} {g:12.3f} {g / f:6.2f}  {ok}: removed {removed}, grep found {found}, {left} letters left")
print(f"median: forget {statistics.median(forgets):.3f} s, grep alone {statistics.median(greps):.3f} s, "
      f"grep / forget {statistics.median(ratios):.2f}")
PY
