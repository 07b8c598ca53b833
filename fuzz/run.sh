#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads outside input.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz if it is missing, builds the targets (the stable toolchain
# with RUSTC_BOOTSTRAP=1), seeds each target's corpus in fuzz/corpus/<target>/
# from the project's own files, and fuzzes each target in turn, one process at a
# time at low priority, for SECONDS_PER_TARGET (default 600). libFuzzer's output
# goes to fuzz/logs/<target>.log; a crash or a timeout is saved under
# fuzz/artifacts/<target>/. Exits non-zero if any target found something.
set -euo pipefail

SECONDS_PER_TARGET=${1:-600}
shift || true
ALL_TARGETS=(bounce_read upstream_feed front_matter csv_import message_layout counted_request archive_read backup_read)
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$FUZZ_DIR")
cd "$FUZZ_DIR"
export RUSTC_BOOTSTRAP=1
# FUZZ_DEV=1 builds without optimisation: slower fuzzing, a build several times
# quicker (what a short smoke run in CI wants).
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    BUILD_FLAGS=--dev
    PROFILE=debug
else
    BUILD_FLAGS=
    PROFILE=release
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "${#TARGETS[@]}" -eq 1 ]; then
    nice -n 10 cargo fuzz build $BUILD_FLAGS "${TARGETS[0]}"
else
    nice -n 10 cargo fuzz build $BUILD_FLAGS
fi

# Seeds: the project's own files, the committed regression inputs, and a few
# small inputs written here where the project has no files of that kind.
copy_seeds() { # target, files...
    local dir="corpus/$1"
    shift
    mkdir -p "$dir"
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        cp "$f" "$dir/seed-$(sha1sum "$f" | cut -c1-16)"
    done
}

write_seed() { # target, name; the seed's bytes on stdin
    mkdir -p "corpus/$1"
    cat >"corpus/$1/seed-$2"
}

seed() {
    local target=$1
    mkdir -p "corpus/$target"
    if [ -d "$ROOT/tests/data/fuzz/$target" ]; then
        copy_seeds "$target" "$ROOT"/tests/data/fuzz/"$target"/*
    fi
    case "$target" in
    bounce_read)
        mapfile -t files < <(find "$ROOT/tests/data/bounces" -type f)
        copy_seeds bounce_read "${files[@]}"
        ;;
    upstream_feed)
        mapfile -t files < <(grep -rlE '<rss|<feed' "$ROOT/tests" 2>/dev/null | grep -v '\.rs$' || true)
        copy_seeds upstream_feed "${files[@]}"
        write_seed upstream_feed rss2 <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>블로그</title><link>https://blog.example.com/</link><description>d</description>
<item><title><![CDATA[첫 글]]></title><link>https://blog.example.com/2026/11/first.html</link>
<guid isPermaLink="false">tag:blog,1</guid><pubDate>Mon, 02 Nov 2026 21:30:00 +0900</pubDate>
<description><![CDATA[<p>요약 <a href="/x">링크</a></p>]]></description>
<content:encoded><![CDATA[<p onclick="x()">본문<script>alert(1)</script><img src="a.png" srcset="a.png 1x, /b.png 2x"></p>]]></content:encoded>
<category>일상</category></item>
<item><title>no guid</title><link>https://blog.example.com/123</link><description>plain</description></item>
</channel></rss>
EOF
        write_seed upstream_feed atom <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>아톰</title><id>urn:blog</id><updated>2026-11-01T00:00:00+09:00</updated>
<entry><title type="html">오래된 &lt;em&gt;글&lt;/em&gt;</title><id>urn:old</id><link rel="alternate" href="https://atom.example.com/old"/><updated>2026-10-01T09:00:00+09:00</updated><content type="html">&lt;p&gt;옛 글&lt;/p&gt;</content><category term="t" label="Tag"/></entry>
<entry><title>xhtml</title><id></id><published>2026-10-02T09:00:00Z</published><summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></summary></entry>
</feed>
EOF
        write_seed upstream_feed rdf <<'EOF'
<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://r.example.com/"><title>RSS 1.0</title><link>https://r.example.com/</link></channel>
<item rdf:about="https://r.example.com/a"><title>A</title><link>https://r.example.com/a</link><dc:date>2026-11-01T00:00:00Z</dc:date></item>
</rdf:RDF>
EOF
        printf '<?xml version="1.0" encoding="euc-kr"?><rss version="2.0"><channel><title>\xc7\xd1\xb1\xdb</title><item><title>\xc7\xd1</title></item></channel></rss>' |
            write_seed upstream_feed euc-kr
        write_seed upstream_feed json <<'EOF'
{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[{"id":"1","url":"https://j.example.com/1","title":"One","content_html":"<p>x</p>","date_published":"2026-11-01T00:00:00Z","tags":["a"]}]}
EOF
        ;;
    front_matter)
        mapfile -t files < <(find "$ROOT/posts" -type f -name '*.md')
        copy_seeds front_matter "${files[@]}"
        write_seed front_matter yaml-all-keys <<'EOF'
---
title: "All keys"
date: 2026-03-08 02:30
updated: 2026-11-01T10:00:00+09:00
slug: all-keys
summary: "s"
tags: [a, b, a]
draft: true
email: false
line_breaks: paragraph
---
Line one
line two

![img](img/a.png "t") [link](../x/) <img srcset="a.png 1x, b.png 2x">

| a | b |
|---|---|
| 1 | 2 |

[^1]: note
EOF
        ;;
    csv_import)
        copy_seeds csv_import "$ROOT"/subscribers/*.csv
        write_seed csv_import choices <<'EOF'
Email,Name,Frequency,Topics
"a@example.com","Kim, ""Minji""",digest,notes;에세이
b@EXAMPLE.com,,each,
A@example.com,dup,,
bad address,x,,
c@example.org,c,weekly,
d@example.org,d,,unknown
EOF
        printf '\xef\xbb\xbfemail\r\nx@example.com\r\n' | write_seed csv_import bom-crlf
        ;;
    message_layout)
        local f title body
        for f in $(find "$ROOT/posts" -type f -name '*.md' | sort); do
            title=$(grep -m1 -E '^title' "$f" | sed -E 's/^title *[:=] *//; s/^"//; s/"$//')
            body=$(awk 'n>=2 {print} /^(\+\+\+|---)$/ {n++}' "$f")
            printf '%s\xff김민지\xffminji.kim@example.com\xff%s\n\nUnsubscribe: \xee\x80\x80unsubscribe\xee\x80\x81\xff<p>%s</p><a href="\xee\x80\x80preferences\xee\x80\x81">\xee\x80\x80name\xee\x80\x81</a>' \
                "$title" "$body" "$body" | write_seed message_layout "$(basename "$f" .md | sha1sum | cut -c1-12)"
        done
        printf 'Re: Subject: x\r\nBcc: evil@example.com\xffA "quoted", <name>: x; y\xffo'\''neil+tag@example.com\xfftext\rwith\nbare\r\nends\xff<pre>  a  b  </pre>' |
            write_seed message_layout header-like
        ;;
    counted_request)
        printf 'Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )' | write_seed counted_request feedly
        printf 'NewsBlur Feed Fetcher - 12 subscribers - https://www.newsblur.com/site/9/x' | write_seed counted_request newsblur
        printf 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' | write_seed counted_request firefox
        printf 'AAAAAAAAAAAAAAAAaHR0cHM6Ly9leGFtcGxlLm9yZy9h.AAAAAAAAAAHdnw6L2qZHprIYhtn5xWWyoZj13w' | write_seed counted_request token
        ;;
    backup_read)
        body='{"posthorn_backup":1,"schema":14,"engine":"sqlite","taken_at":"2026-12-04T21:33:13Z","posthorn":"0.1.0"}
{"table":"meta","columns":[{"name":"key","kind":"text"},{"name":"value","kind":"text"}]}
["created_at","1796419993307"]
{"end":"meta","rows":1}
{"table":"subscriber_growth","columns":[{"name":"hour","kind":"integer"},{"name":"series","kind":"text"},{"name":"n","kind":"integer"}]}
[499005,"confirmed",2]
[499005,"new",null]
{"end":"subscriber_growth","rows":2}
{"table":"issue_counts","columns":[{"name":"issue_id","kind":"integer"},{"name":"clickers","kind":"bytes"}]}
[1,"00ff"]
{"end":"issue_counts","rows":1}'
        sha=$(printf '%s\n' "$body" | sha256sum | cut -c1-64)
        printf '%s\n{"end":"backup","rows":4,"tables":3,"sha256":"%s"}\n' "$body" "$sha" |
            write_seed backup_read small
        ;;
    archive_read)
        write_seed archive_read wxr <<'EOF2'
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>Old</title><link>https://old.example.com</link><wp:wxr_version>1.2</wp:wxr_version>
<item><title>첫 글</title><link>https://old.example.com/first/</link>
<content:encoded><![CDATA[<p>Hi <a href="/x" rel="nofollow">x</a></p><figure><img src="/a.png" srcset="/a.png 1x"></figure>

Two.]]></content:encoded>
<wp:post_id>1</wp:post_id><wp:post_date_gmt>2020-01-02 03:04:05</wp:post_date_gmt>
<wp:post_name>%ec%b2%ab</wp:post_name><wp:status>publish</wp:status><wp:post_type>post</wp:post_type>
<category domain="post_tag" nicename="a"><![CDATA[a]]></category></item>
<item><title>page</title><wp:post_type>page</wp:post_type></item>
</channel></rss>
EOF2
        write_seed archive_read ghost <<'EOF2'
{"db":[{"meta":{"version":"5.0.0"},"data":{"posts":[{"id":"1","title":"T","slug":"t","html":"<p>x<img src=\"__GHOST_URL__/a.png\"></p>","type":"post","status":"published","published_at":"2022-01-01T00:00:00.000Z"}],"tags":[{"id":"2","name":"n"}],"posts_tags":[{"post_id":"1","tag_id":"2"}]}}]}
EOF2
        ;;
    esac
}

# libFuzzer's options for a target: inputs up to 64 KiB, 10 s before an input
# counts as a hang, the target's dictionary if it has one.
options() {
    echo -max_len=65536 -timeout=10
    if [ -f "dicts/$1.dict" ]; then
        echo "-dict=dicts/$1.dict"
    fi
}

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p logs
found=()
for target in "${TARGETS[@]}"; do
    seed "$target"
    mkdir -p "artifacts/$target"
    scratch=$(mktemp -d "${TMPDIR_FOR_FUZZ:-/dev/shm}/posthorn-fuzz.XXXXXX" 2>/dev/null || mktemp -d)
    echo "== $target: ${SECONDS_PER_TARGET}s, corpus $(find "corpus/$target" -type f | wc -l) files"
    rm -f fuzz-*.log
    status=0
    stamp="$scratch/started"
    touch "$stamp"
    # One process fuzzes at a time: -jobs=1 -workers=1 starts one child (its
    # output goes to fuzz-0.log), and that child, with -fork=1, runs one fuzzing
    # process after another, so that a crash or a hang is saved and fuzzing goes
    # on for the whole time rather than stopping at the first one. The binary
    # is run as it was built: `cargo fuzz run` would afterwards run it once more
    # through `cargo run` for every input it saved.
    # shellcheck disable=SC2046
    TMPDIR=$scratch nice -n 10 "target/$TRIPLE/$PROFILE/$target" "corpus/$target" \
        -artifact_prefix="artifacts/$target/" \
        $(options "$target") -max_total_time="$SECONDS_PER_TARGET" \
        -jobs=1 -workers=1 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -print_final_stats=1 >"logs/$target.run.log" 2>&1 || status=$?
    cat fuzz-0.log >"logs/$target.log" 2>/dev/null || cp "logs/$target.run.log" "logs/$target.log"
    rm -f fuzz-*.log
    # The last status line: total executions, coverage, corpus, crashes.
    grep -E '^#[0-9]+: cov:' "logs/$target.log" | tail -1 || true
    echo "corpus: $(find "corpus/$target" -type f | wc -l) files"
    artifacts=$(find "artifacts/$target" -type f -newer "$stamp" 2>/dev/null | wc -l)
    if [ "$status" -ne 0 ] || [ "$artifacts" -gt 0 ]; then
        found+=("$target")
        echo "$artifacts new in fuzz/artifacts/$target/; the first:"
        find "artifacts/$target" -type f -newer "$stamp" -print -quit
    fi
    rm -rf "$scratch"
done

if [ "${#found[@]}" -gt 0 ]; then
    echo "found something in: ${found[*]} (see fuzz/logs and fuzz/artifacts)"
    exit 1
fi
echo "no crash and no timeout in: ${TARGETS[*]}"
